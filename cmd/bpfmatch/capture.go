package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"github.com/headlessbpf/bpfmatch"
)

// LINKTYPE_ numbers of the frames -w writes; a capture file names link
// types by these, not by DLT numbers (LINKTYPE_RAW is 101, DLT_RAW 12).
const (
	linktypeEthernet = 1
	linktypeRaw      = 101
)

// writeTime is the timestamp of the packet -w writes: a fixed one, so that
// the same flags write the same file.
var writeTime = time.Unix(0, 0).UTC()

// writePcap writes frame, of link type link, to path as a one-packet pcap
// file with snapshot length snap, truncating the frame to it.
func writePcap(path string, frame []byte, link bpfmatch.LinkType, snap int) error {
	var lt layers.LinkType
	switch link {
	case bpfmatch.LinkEthernet:
		lt = linktypeEthernet
	case bpfmatch.LinkRaw:
		lt = linktypeRaw
	default:
		return fmt.Errorf("-w %s: cannot write link type %v", path, link)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("-w: %v", err)
	}
	bw := bufio.NewWriter(f)
	w := pcapgo.NewWriter(bw)
	ci := gopacket.CaptureInfo{Timestamp: writeTime, CaptureLength: min(len(frame), snap), Length: len(frame)}
	err = w.WriteFileHeader(uint32(snap), lt)
	if err == nil {
		err = w.WritePacket(ci, frame[:ci.CaptureLength])
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("-w %s: %v", path, err)
	}
	return nil
}

// libpcap's largest snapshot length for most link types, which it uses
// instead of a capture file's 0 or larger one.
const maxSnapLen = bpfmatch.DefaultSnapLen

// capture reads the packets of a pcap or pcapng file.
type capture struct {
	f    *os.File
	link bpfmatch.LinkType // of the file, or its first interface
	snap int               // its snapshot length, as libpcap adjusts it

	pcap  *pcapgo.Reader
	ng    *pcapgo.NgReader
	br    *bufio.Reader    // what pcap reads from
	order binary.ByteOrder // of pcap's record headers
}

// File format magic numbers, as the first four bytes read little-endian.
const (
	magicPcapNG        = 0x0a0d0d0a
	magicMicros        = 0xa1b2c3d4
	magicNanos         = 0xa1b23c4d
	magicMicrosSwapped = 0xd4c3b2a1
	magicNanosSwapped  = 0x4d3cb2a1
)

// openCapture opens a pcap or pcapng file, telling them by magic number.
func openCapture(path string) (*capture, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	c := &capture{f: f}
	if err := c.init(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return c, nil
}

func (c *capture) init() (err error) {
	defer recoverMalformed(&err)
	br := bufio.NewReaderSize(c.f, 1<<16)
	hdr, err := br.Peek(24)
	if len(hdr) < 4 {
		if err == nil || err == io.EOF {
			return errors.New("not a pcap or pcapng file: too short")
		}
		return err
	}
	magic := binary.LittleEndian.Uint32(hdr)
	switch magic {
	case magicPcapNG:
		link, err := checkPcapng(br)
		if err != nil {
			return fmt.Errorf("reading pcapng: %v", err)
		}
		if _, err := c.f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		// As libpcap, refuse packets of an interface whose link type is not
		// the first interface's: one program cannot match both.
		c.ng, err = pcapgo.NewNgReader(bufio.NewReaderSize(c.f, 1<<16), pcapgo.NgReaderOptions{ErrorOnMismatchingLinkType: true})
		if err == io.EOF {
			return errors.New("reading pcapng: no interface description block")
		}
		if err != nil {
			return fmt.Errorf("reading pcapng: %v", err)
		}
		iface, err := c.ng.Interface(0)
		if err != nil {
			return fmt.Errorf("reading pcapng: %v", err)
		}
		// The link type as checkPcapng read it: pcapgo keeps only 8 bits.
		c.link, c.snap = bpfmatch.LinkTypeFromPcap(link), adjustSnap(iface.SnapLength)
		return nil
	case magicMicros, magicNanos, magicMicrosSwapped, magicNanosSwapped:
	default:
		return fmt.Errorf("not a pcap or pcapng file (magic number %#08x)", magic)
	}
	if len(hdr) < 24 {
		return errors.New("pcap file header truncated")
	}
	// pcapgo keeps only 8 bits of the link type, so read it here; the top
	// bits of the field carry FCS information, not the type.
	var order binary.ByteOrder = binary.LittleEndian
	if magic == magicMicrosSwapped || magic == magicNanosSwapped {
		order = binary.BigEndian
	}
	c.link = bpfmatch.LinkTypeFromPcap(order.Uint32(hdr[20:]) & 0x03ffffff)
	c.snap = adjustSnap(order.Uint32(hdr[16:]))
	c.br, c.order = br, order
	if c.pcap, err = pcapgo.NewReader(br); err != nil {
		return fmt.Errorf("reading pcap: %v", err)
	}
	// libpcap accepts records longer than the file's snapshot length (up
	// to its maximum) and matches their first snapshot-length bytes, as
	// MatchFrame does; pcapgo would refuse them. The limit still keeps a
	// corrupt length from allocating gigabytes.
	c.pcap.SetSnaplen(uint32(max(c.snap, maxSnapLen)))
	return nil
}

// recoverMalformed turns a panic of pcapgo, which some malformed files
// cause (a pcapng timestamp resolution of 2^-64 divides by zero), into an
// error.
func recoverMalformed(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("malformed capture file (%v)", r)
	}
}

// adjustSnap returns the snapshot length libpcap uses for a file's: its
// maximum for 0 or anything larger.
func adjustSnap(n uint32) int {
	if n == 0 || n > maxSnapLen {
		return maxSnapLen
	}
	return int(n)
}

// next returns the next packet's bytes and wire length, or io.EOF after
// the last.
func (c *capture) next() (data []byte, wireLen int, err error) {
	defer recoverMalformed(&err)
	var ci gopacket.CaptureInfo
	if c.ng != nil {
		data, ci, err = c.ng.ReadPacketData()
		if errors.Is(err, pcapgo.ErrNgLinkTypeMismatch) {
			err = fmt.Errorf("an interface has a link type other than the first interface's (%v)", c.link)
		}
	} else {
		// pcapgo takes a record's length as an int, negative on 32-bit
		// platforms past 2^31, which then passes its check: check first.
		if h, _ := c.br.Peek(16); len(h) == 16 && c.order.Uint32(h[8:]) > maxSnapLen {
			return nil, 0, fmt.Errorf("capture length exceeds snap length (%d > %d)", c.order.Uint32(h[8:]), maxSnapLen)
		}
		data, ci, err = c.pcap.ReadPacketData()
	}
	switch {
	case err == io.EOF && (data != nil || ci.CaptureLength > 0):
		// pcapgo reports io.EOF when the file ends right after a
		// packet's header.
		err = errors.New("file truncated")
	case err == io.ErrUnexpectedEOF:
		err = errors.New("file truncated")
	}
	return data, ci.Length, err
}

// runRead counts the packets of cfg.read that match, or prints the program
// compiled for the file.
func runRead(cfg *config, stdout, stderr io.Writer) int {
	c, err := openCapture(cfg.read)
	if err != nil {
		return fail(stderr, fmt.Errorf("-r: %v", err))
	}
	defer c.f.Close()

	// Compile before reading any packet, so that a bad expression is an
	// error even for a file without packets, as in tcpdump.
	m, err := bpfmatch.Compile(cfg.expr, cfg.options(c.link, c.snap)...)
	if err != nil {
		return fail(stderr, compileError(err, cfg.expr))
	}
	if cfg.dump > 0 {
		return printProgram(stdout, stderr, m.Program(), cfg.dump)
	}

	n := 0
	for i := 1; ; i++ {
		data, wireLen, err := c.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(stderr, fmt.Errorf("-r %s: packet %d: %v", cfg.read, i, err))
		}
		ok, err := m.MatchFrame(data, wireLen)
		if err != nil {
			return fail(stderr, fmt.Errorf("-r %s: packet %d: %v", cfg.read, i, err))
		}
		if ok {
			n++
		}
	}
	fmt.Fprintln(stdout, n)
	if n == 0 {
		return exitNoMatch
	}
	return exitMatch
}
