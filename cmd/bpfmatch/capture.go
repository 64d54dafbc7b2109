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

// writeTime is the timestamp of the packet -w writes, as a capture would
// stamp it; tests replace it.
var writeTime = time.Now

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
	ci := gopacket.CaptureInfo{Timestamp: writeTime(), CaptureLength: min(len(frame), snap), Length: len(frame)}
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

// capture reads the packets of a pcap or pcapng file, or of standard
// input: it reads a stream, never seeking.
type capture struct {
	name     string
	in       io.ReadCloser
	link     bpfmatch.LinkType // of the file, or its first interface
	linktype uint32            // LINKTYPE_ number as the file gives it
	snap     int               // its snapshot length, as libpcap adjusts it
	fileSnap uint32            // its snapshot length as written

	ng    *pcapgo.NgReader
	check *ngChecker
	br    *bufio.Reader    // what pcap records are read from
	order binary.ByteOrder // of pcap's record headers
	nanos bool             // pcap timestamps in nanoseconds
	buf   []byte           // the last pcap record's data
}

// File format magic numbers, as the first four bytes read little-endian.
const (
	magicPcapNG        = 0x0a0d0d0a
	magicMicros        = 0xa1b2c3d4
	magicNanos         = 0xa1b23c4d
	magicMicrosSwapped = 0xd4c3b2a1
	magicNanosSwapped  = 0x4d3cb2a1
)

// openCapture opens a pcap or pcapng file, telling them by magic number;
// "-" is standard input, as in tcpdump.
func openCapture(path string, stdin io.Reader) (*capture, error) {
	c := &capture{name: path}
	if path == "-" {
		c.in = io.NopCloser(stdin)
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		c.in = f
	}
	if err := c.init(); err != nil {
		c.in.Close()
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return c, nil
}

func (c *capture) init() (err error) {
	defer recoverMalformed(&err)
	br := bufio.NewReaderSize(c.in, 1<<16)
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
		c.check = newNgChecker(br)
		// As libpcap, refuse packets of an interface whose link type is not
		// the first interface's: one program cannot match both.
		c.ng, err = pcapgo.NewNgReader(c.check, pcapgo.NgReaderOptions{ErrorOnMismatchingLinkType: true})
		if c.check.err != nil && c.check.err != io.EOF {
			return fmt.Errorf("reading pcapng: %v", c.check.err)
		}
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
		// The link type as the checker read it: pcapgo keeps only 8 bits.
		c.linktype, c.fileSnap = c.check.link, uint32(iface.SnapLength)
		c.link, c.snap = bpfmatch.LinkTypeFromPcap(c.linktype), adjustSnap(c.fileSnap)
		return nil
	case magicMicros, magicNanos, magicMicrosSwapped, magicNanosSwapped:
	default:
		return fmt.Errorf("not a pcap or pcapng file (magic number %#08x)", magic)
	}
	if len(hdr) < 24 {
		return errors.New("pcap file header truncated")
	}
	var order binary.ByteOrder = binary.LittleEndian
	if magic == magicMicrosSwapped || magic == magicNanosSwapped {
		order = binary.BigEndian
	}
	// The top bits of the link type field carry FCS information, not the
	// type.
	c.linktype = order.Uint32(hdr[20:]) & 0x03ffffff
	c.fileSnap = order.Uint32(hdr[16:])
	c.link, c.snap = bpfmatch.LinkTypeFromPcap(c.linktype), adjustSnap(c.fileSnap)
	c.br, c.order, c.nanos = br, order, magic == magicNanos || magic == magicNanosSwapped
	_, err = br.Discard(24)
	return err
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

// next returns the next packet's bytes and capture info, or io.EOF after
// the last. The bytes are valid until the next call.
func (c *capture) next() (data []byte, ci gopacket.CaptureInfo, err error) {
	defer recoverMalformed(&err)
	if c.ng == nil {
		return c.nextPcap()
	}
	data, ci, err = c.ng.ZeroCopyReadPacketData()
	switch {
	case c.check.err != nil && c.check.err != io.EOF:
		err = c.check.err
	case errors.Is(err, pcapgo.ErrNgLinkTypeMismatch):
		err = fmt.Errorf("an interface has a link type other than the first interface's (%v)", linkName(c.link))
	case err == io.ErrUnexpectedEOF:
		err = errors.New("file truncated")
	}
	return data, ci, err
}

// nextPcap reads a pcap record. libpcap, unlike pcapgo, takes records
// that claim fewer bytes on the wire than they hold, and those longer
// than the file's snapshot length (up to its maximum): so does this.
func (c *capture) nextPcap() ([]byte, gopacket.CaptureInfo, error) {
	var ci gopacket.CaptureInfo
	h, err := c.br.Peek(16)
	switch {
	case len(h) == 0 && err == io.EOF:
		return nil, ci, io.EOF
	case len(h) < 16:
		if err == io.EOF {
			err = errors.New("file truncated")
		}
		return nil, ci, err
	}
	sec, frac := c.order.Uint32(h[0:]), c.order.Uint32(h[4:])
	caplen, wire := c.order.Uint32(h[8:]), c.order.Uint32(h[12:])
	if caplen > maxSnapLen {
		// Also keeps a corrupt length from allocating gigabytes.
		return nil, ci, fmt.Errorf("capture length exceeds snap length (%d > %d)", caplen, maxSnapLen)
	}
	c.br.Discard(16)
	if cap(c.buf) < int(caplen) {
		c.buf = make([]byte, caplen)
	}
	data := c.buf[:caplen]
	if _, err := io.ReadFull(c.br, data); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = errors.New("file truncated")
		}
		return nil, ci, err
	}
	nsec := int64(frac) * 1000
	if c.nanos {
		nsec = int64(frac)
	}
	ci.Timestamp = time.Unix(int64(sec), nsec).UTC()
	ci.CaptureLength, ci.Length = int(caplen), int(wire)
	return data, ci, nil
}

// runRead counts the packets of cfg.read that match, writing them to
// cfg.write if given, or prints the program compiled for the file. As
// tcpdump, on a malformed or truncated file it still prints the count of
// the packets before the error, then the error, and exits 2.
func runRead(cfg *config, stdin io.Reader, stdout, stderr io.Writer) int {
	c, err := openCapture(cfg.read, stdin)
	if err != nil {
		return fail(stderr, fmt.Errorf("-r: %v", err))
	}
	defer c.in.Close()

	// Compile before reading any packet, so that a bad expression is an
	// error even for a file without packets, as in tcpdump.
	m, err := bpfmatch.Compile(cfg.expr, cfg.options(c.link, c.snap)...)
	if err != nil {
		return fail(stderr, compileError(err, cfg.expr))
	}
	if cfg.dump > 0 {
		return printProgram(stdout, stderr, m.Program(), cfg.dump)
	}
	var w *captureWriter
	if cfg.write != "" {
		if w, err = createCapture(cfg.write, c.ng != nil, c.nanos, c.linktype, c.fileSnap); err != nil {
			return fail(stderr, err)
		}
	}

	n := 0
	var readErr error
	for i := 1; ; i++ {
		data, ci, err := c.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = fmt.Errorf("-r %s: packet %d: %v", cfg.read, i, err)
			break
		}
		ok, err := m.MatchFrame(data, ci.Length)
		if err != nil {
			readErr = fmt.Errorf("-r %s: packet %d: %v", cfg.read, i, err)
			break
		}
		if !ok {
			continue
		}
		n++
		if w != nil {
			if err := w.write(data, ci.Timestamp, uint32(ci.Length)); err != nil {
				readErr = fmt.Errorf("-w %s: %v", cfg.write, err)
				break
			}
		}
	}
	if w != nil {
		if err := w.close(); err != nil && readErr == nil {
			readErr = err
		}
	}
	fmt.Fprintln(stdout, n)
	switch {
	case readErr != nil:
		return fail(stderr, readErr)
	case n == 0:
		return exitNoMatch
	}
	return exitMatch
}
