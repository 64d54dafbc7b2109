package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// pcapng block types that checkPcapng looks into.
const (
	ngSectionHeader       = 0x0a0d0d0a
	ngInterfaceDescriptor = 1
	ngPacket              = 2 // obsolete, still read by libpcap and pcapgo
	ngSimplePacket        = 3
	ngEnhancedPacket      = 6
	ngByteOrderMagic      = 0x1a2b3c4d
)

// checkPcapng checks the block structure of a pcapng file before pcapgo
// reads it. pcapgo allocates a packet's captured length before reading it
// and takes block lengths on trust, so a corrupt or truncated file could
// make it allocate gigabytes or report a truncated last packet as the end
// of the file. Here every block must be whole, its length a multiple of 4
// (as libpcap requires), and every packet's captured bytes inside its block.
// It returns the link type of the first interface in full: pcapgo keeps
// only its low 8 bits (layers.LinkType is a uint8), which would misread
// LINKTYPE_LINUX_SLL2 (276), and for the same reason it refuses a file
// whose interfaces' link types differ only above those bits, which pcapgo
// would not tell apart.
func checkPcapng(r io.Reader) (link uint32, err error) {
	br := bufio.NewReaderSize(r, 1<<16)
	var order binary.ByteOrder = binary.LittleEndian
	var snaps []uint32 // snapshot lengths of the section's interfaces
	var head [28]byte
	haveLink := false
	for n := 1; ; n++ {
		if _, err := io.ReadFull(br, head[:8]); err != nil {
			if err == io.EOF && n > 1 {
				return link, nil
			}
			return 0, fmt.Errorf("block %d: %w", n, truncated(err))
		}
		typ := binary.LittleEndian.Uint32(head[0:]) // the SHB type reads the same either way
		if n == 1 && typ != ngSectionHeader {
			return 0, errors.New("does not start with a section header block")
		}
		if typ == ngSectionHeader {
			if _, err := io.ReadFull(br, head[8:12]); err != nil {
				return 0, fmt.Errorf("block %d: %w", n, truncated(err))
			}
			switch uint32(ngByteOrderMagic) {
			case binary.LittleEndian.Uint32(head[8:]):
				order = binary.LittleEndian
			case binary.BigEndian.Uint32(head[8:]):
				order = binary.BigEndian
			default:
				return 0, fmt.Errorf("block %d: section header with a bad byte-order magic", n)
			}
			snaps = snaps[:0]
		}
		length := order.Uint32(head[4:])
		// The fixed part each block type needs, with the type, length and
		// trailing length.
		need := uint32(12)
		switch typ {
		case ngSectionHeader:
			need = 28
		case ngInterfaceDescriptor:
			need = 20
		case ngSimplePacket:
			need = 16
		case ngPacket, ngEnhancedPacket:
			need = 32
		}
		if length < need || length%4 != 0 {
			return 0, fmt.Errorf("block %d (type %#x): bad length %d", n, typ, length)
		}
		read := uint32(8)
		if typ == ngSectionHeader {
			read = 12
		}
		// Read the fixed part of the blocks that give lengths.
		fixed := uint32(0)
		switch typ {
		case ngInterfaceDescriptor:
			fixed = 16
		case ngSimplePacket:
			fixed = 12
		case ngPacket, ngEnhancedPacket:
			fixed = 28
		}
		if fixed > 0 {
			if _, err := io.ReadFull(br, head[8:fixed]); err != nil {
				return 0, fmt.Errorf("block %d: %w", n, truncated(err))
			}
			read = fixed
		}
		room := length - 4 - fixed // bytes for packet data and options
		var caplen uint32
		switch typ {
		case ngInterfaceDescriptor:
			snaps = append(snaps, order.Uint32(head[12:]))
			l := uint32(order.Uint16(head[8:]))
			switch {
			case !haveLink:
				link, haveLink = l, true
			case l != link && l&0xff == link&0xff:
				return 0, fmt.Errorf("block %d: interfaces of link types %d and %d, which pcapgo cannot tell apart", n, link, l)
			}
		case ngPacket, ngEnhancedPacket:
			caplen = order.Uint32(head[20:])
		case ngSimplePacket:
			// pcapgo captures the original length, cut to the first
			// interface's snapshot length.
			caplen = order.Uint32(head[8:])
			if len(snaps) > 0 && snaps[0] != 0 {
				caplen = min(caplen, snaps[0])
			}
		}
		if caplen > room {
			return 0, fmt.Errorf("block %d: captured length %d exceeds the block's %d bytes of data", n, caplen, room)
		}
		if _, err := br.Discard(int(length - read)); err != nil {
			return 0, fmt.Errorf("block %d: %w", n, truncated(err))
		}
	}
}

func truncated(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errors.New("file truncated")
	}
	return err
}
