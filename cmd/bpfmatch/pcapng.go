package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// pcapng block types that ngChecker looks into.
const (
	ngSectionHeader       = 0x0a0d0d0a
	ngInterfaceDescriptor = 1
	ngPacket              = 2 // obsolete, still read by libpcap and pcapgo
	ngSimplePacket        = 3
	ngEnhancedPacket      = 6
	ngByteOrderMagic      = 0x1a2b3c4d

	// ngMaxBlock is the largest block read, as libpcap's limit: pcapgo
	// allocates what a block claims before reading it.
	ngMaxBlock = 16 << 20
)

// ngChecker passes a pcapng stream on to pcapgo one block at a time,
// each checked first. pcapgo allocates a packet's captured length before
// reading it and takes block lengths on trust, so a corrupt or truncated
// file could make it allocate gigabytes or report a truncated last packet
// as the end of the file. Here every block must be at most ngMaxBlock
// bytes, its length a multiple of 4 (as libpcap requires), every packet's
// captured bytes inside its block, and a block cut short is an error. It
// notes the link type of the first interface in full: pcapgo keeps only
// its low 8 bits (layers.LinkType is a uint8), which would misread
// LINKTYPE_LINUX_SLL2 (276), and for the same reason it refuses interfaces
// whose link types differ only above those bits. It reads a stream: no
// seeking, so standard input works.
type ngChecker struct {
	r        *bufio.Reader
	left     uint32 // bytes of the current block not yet passed on
	n        int    // blocks begun
	order    binary.ByteOrder
	snaps    []uint32 // snapshot lengths of the section's interfaces
	link     uint32   // the first interface's link type
	haveLink bool
	err      error // the first error, returned from then on
}

func newNgChecker(r *bufio.Reader) *ngChecker {
	return &ngChecker{r: r, order: binary.LittleEndian}
}

func (c *ngChecker) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.left == 0 {
		if err := c.next(); err != nil {
			c.err = err
			return 0, err
		}
	}
	if uint64(len(p)) > uint64(c.left) {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= uint32(n)
	if err == io.EOF {
		err = fmt.Errorf("block %d: file truncated", c.n)
	}
	if err != nil {
		c.err = err
	}
	return n, err
}

// fail records a malformed block.
func (c *ngChecker) fail(format string, args ...any) error {
	return fmt.Errorf("block %d: "+format, append([]any{c.n}, args...)...)
}

// next checks the block that starts here and lets it through.
func (c *ngChecker) next() error {
	head, err := c.r.Peek(8)
	if len(head) == 0 && err == io.EOF {
		if c.n == 0 {
			return errors.New("block 1: file truncated")
		}
		return io.EOF
	}
	c.n++
	if len(head) < 8 {
		return c.fail("file truncated")
	}
	typ := binary.LittleEndian.Uint32(head) // the SHB type reads the same either way
	if c.n == 1 && typ != ngSectionHeader {
		return errors.New("does not start with a section header block")
	}
	if typ == ngSectionHeader {
		h, _ := c.r.Peek(12)
		if len(h) < 12 {
			return c.fail("file truncated")
		}
		switch uint32(ngByteOrderMagic) {
		case binary.LittleEndian.Uint32(h[8:]):
			c.order = binary.LittleEndian
		case binary.BigEndian.Uint32(h[8:]):
			c.order = binary.BigEndian
		default:
			return c.fail("section header with a bad byte-order magic")
		}
		c.snaps = c.snaps[:0]
	}
	length := c.order.Uint32(head[4:])
	// The fixed part of each block type: type, length, the fields read
	// here, and the trailing length.
	need, fixed := uint32(12), 0
	switch typ {
	case ngSectionHeader:
		need = 28
	case ngInterfaceDescriptor:
		need, fixed = 20, 16
	case ngSimplePacket:
		need, fixed = 16, 12
	case ngPacket, ngEnhancedPacket:
		need, fixed = 32, 28
	}
	switch {
	case length < need || length%4 != 0:
		return c.fail("(type %#x): bad length %d", typ, length)
	case length > ngMaxBlock:
		return c.fail("(type %#x): length %d is more than the %d bytes allowed", typ, length, ngMaxBlock)
	}
	h, _ := c.r.Peek(fixed)
	if len(h) < fixed {
		return c.fail("file truncated")
	}
	room := length - 4 - uint32(fixed) // bytes for packet data and options
	var caplen uint32
	switch typ {
	case ngInterfaceDescriptor:
		c.snaps = append(c.snaps, c.order.Uint32(h[12:]))
		l := uint32(c.order.Uint16(h[8:]))
		switch {
		case !c.haveLink:
			c.link, c.haveLink = l, true
		case l != c.link && l&0xff == c.link&0xff:
			return c.fail("interfaces of link types %d and %d, which pcapgo cannot tell apart", c.link, l)
		}
	case ngPacket, ngEnhancedPacket:
		caplen = c.order.Uint32(h[20:])
	case ngSimplePacket:
		// pcapgo captures the original length, cut to the first
		// interface's snapshot length.
		caplen = c.order.Uint32(h[8:])
		if len(c.snaps) > 0 && c.snaps[0] != 0 {
			caplen = min(caplen, c.snaps[0])
		}
	}
	if caplen > room {
		return c.fail("captured length %d exceeds the block's %d bytes of data", caplen, room)
	}
	c.left = length
	return nil
}
