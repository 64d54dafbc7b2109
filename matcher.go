// Package bpfmatch applies tcpdump filter expressions to traffic a service
// reads from ordinary sockets, without capturing packets.
//
// It builds the packet a capture would have seen arriving (a FakePacket:
// Ethernet, optional 802.1Q tag, IPv4 or IPv6, TCP or UDP, the payload) from
// a connection's metadata, and runs the program compiled for the
// expression (Compile), in Go. The verdicts are libpcap's own: the tests
// compare them with libpcap's on the same bytes and lengths.
// A Flow prepares one connection's headers once and matches each payload
// with no allocation. Listener, Router and PacketConn put a filter in front
// of a server.
//
// The package is pure Go. Compile compiles with the Go compiler of package
// pcapfilter, for Ethernet, raw IP and Linux cooked captures. libpcap is
// optional: built with cgo and the build tag libpcap (go build -tags
// libpcap, with libpcap's headers installed), WithLibpcap compiles with
// libpcap and runs the program with libpcap too, through gopacket's pcap
// package, for cross-checking and for link types the Go compiler does not
// know. Programs compiled ahead of time run anywhere (ParseProgram, Load).
package bpfmatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/headlessbpf/bpfmatch/pcapfilter"
	"golang.org/x/net/bpf"
)

// LinkType is a data link type as libpcap's compiler numbers them (DLT_*),
// which is what a filter's offsets are relative to.
type LinkType int

// The link types fake packets can be framed for. Compile also accepts
// Linux cooked captures (113, 276) and LINKTYPE_IPV4 and _IPV6 (228, 229),
// for MatchFrame; with WithLibpcap, any link type libpcap knows.
const (
	LinkEthernet LinkType = 1  // DLT_EN10MB
	LinkRaw      LinkType = 12 // DLT_RAW: the IP header first
)

// String returns "ethernet", "raw", or the name tcpdump gives the link
// type (LINUX_SLL, IPV6, ...), or "DLT N" for one it has no name for here.
func (l LinkType) String() string {
	switch l {
	case LinkEthernet:
		return "ethernet"
	case LinkRaw:
		return "raw"
	}
	if name, ok := dltNames[l]; ok {
		return name
	}
	return fmt.Sprintf("DLT %d", int(l))
}

// dltNames are tcpdump's names of the link types captures most often
// have, as -y takes them.
var dltNames = map[LinkType]string{
	0:   "NULL",
	6:   "IEEE802",
	8:   "SLIP",
	9:   "PPP",
	10:  "FDDI",
	50:  "PPP_SERIAL",
	51:  "PPP_ETHER",
	104: "C_HDLC",
	105: "IEEE802_11",
	108: "LOOP",
	113: "LINUX_SLL",
	119: "PRISM_HEADER",
	127: "IEEE802_11_RADIO",
	163: "IEEE802_11_RADIO_AVS",
	192: "PPI",
	195: "IEEE802_15_4",
	220: "USB_LINUX_MMAPPED",
	228: "IPV4",
	229: "IPV6",
	239: "NFLOG",
	249: "USBPCAP",
	276: "LINUX_SLL2",
}

// LinkTypeFromPcap returns the link type of a capture file's LINKTYPE_
// number. The two differ only for a few old types, raw IP among them
// (LINKTYPE_RAW is 101, DLT_RAW 12), as in libpcap's linktype_to_dlt.
func LinkTypeFromPcap(linktype uint32) LinkType {
	switch linktype {
	case 100:
		return 11 // ATM_RFC1483
	case 101:
		return LinkRaw
	case 102:
		return 15 // SLIP_BSDOS
	case 103:
		return 16 // PPP_BSDOS
	case 106:
		return 19 // ATM_CLIP
	}
	return LinkType(linktype)
}

// DefaultSnapLen is the snap length a Matcher uses unless told otherwise,
// tcpdump's default.
const DefaultSnapLen = 262144

// An Option changes how Compile compiles an expression.
type Option func(*options)

type options struct {
	link    LinkType
	snap    int
	netmask uint32
	libpcap bool
	err     error
}

// WithLinkType compiles for frames of the given link type instead of
// LinkEthernet.
func WithLinkType(l LinkType) Option { return func(o *options) { o.link = l } }

// WithSnapLen sets the snap length: frames longer than n bytes are matched
// on their first n bytes, keeping their wire length, as a capture with that
// snap length would have held them.
func WithSnapLen(n int) Option { return func(o *options) { o.snap = n } }

// WithNetmask sets the netmask of the local network, which libpcap needs
// to compile "ip broadcast" (a destination whose host part is all zeros or
// all ones). The default is 0, as tcpdump -r has it: then "ip broadcast"
// means 0.0.0.0 or 255.255.255.255. mask must be an IPv4 address, such as
// 255.255.255.0.
func WithNetmask(mask netip.Addr) Option {
	return func(o *options) {
		if !mask.Unmap().Is4() {
			o.err = fmt.Errorf("bpfmatch: netmask %v is not an IPv4 address", mask)
			return
		}
		b := mask.Unmap().As4()
		o.netmask = binary.BigEndian.Uint32(b[:])
	}
}

// WithLibpcap makes Compile compile with libpcap's pcap_compile instead
// of the Go compiler, for any link type libpcap knows, and makes the
// Matcher run its program with libpcap's pcap_offline_filter (through
// gopacket's pcap package) instead of in Go: slower, and there for
// cross-checking. It needs a build with cgo and the build tag libpcap
// (HaveLibpcap); in any other build Compile and Load fail with it, saying
// so. A program with backward jumps first runs in the Go executor: where
// its budget stops the run (libpcap 1.10 would loop forever, on "ld #0;
// ja -2" or an IPv6 AH header pointing at itself), the Go executor's
// verdict, a rejection, is given and libpcap is not called.
func WithLibpcap() Option { return func(o *options) { o.libpcap = true } }

// useGoCompiler is THE SWITCH of Compile's compiler: true compiles with the
// Go compiler (package pcapfilter), false with libpcap as before, which
// needs the build tag libpcap. WithLibpcap always means libpcap. The
// godoc of the package, Compile and Matcher describe the state with the
// switch on.
const useGoCompiler = true

// goLinkTypes are the link types the Go compiler generates code for.
var goLinkTypes = []LinkType{
	LinkType(pcapfilter.LinkEthernet),
	LinkType(pcapfilter.LinkRaw),
	LinkType(pcapfilter.LinkLinuxSLL),
	LinkType(pcapfilter.LinkIPv4),
	LinkType(pcapfilter.LinkIPv6),
	LinkType(pcapfilter.LinkLinuxSLL2),
}

// CompileError is the error of an expression that does not compile: what
// is wrong and, from the Go compiler, where.
type CompileError struct {
	Expr     string
	LinkType LinkType
	// Offset is the byte offset in Expr of the offending token, or -1
	// where it is not known: libpcap's messages do not say where.
	Offset int
	// Token is the offending token as written, "" at the end of the
	// expression or where Offset is -1.
	Token string
	// Msg is what is wrong: the Go compiler's or libpcap's message, or
	// why the expression was not given to a compiler.
	Msg string
}

func (e *CompileError) Error() string {
	expr := e.Expr
	if len(expr) > 200 {
		expr = expr[:200] + "..." // the message of a huge expression stays readable
	}
	switch {
	case e.Offset < 0:
		return fmt.Sprintf("bpfmatch: compiling %q for %v: %s", expr, e.LinkType, e.Msg)
	case e.Token == "":
		return fmt.Sprintf("bpfmatch: compiling %q for %v: at offset %d (end of expression): %s", expr, e.LinkType, e.Offset, e.Msg)
	}
	tok := e.Token
	if len(tok) > 40 {
		tok = tok[:40] + "..."
	}
	return fmt.Sprintf("bpfmatch: compiling %q for %v: at offset %d (%q): %s", expr, e.LinkType, e.Offset, tok, e.Msg)
}

// A Matcher is a compiled filter expression, which tells whether packets
// match it. It is safe for concurrent use by multiple goroutines.
type Matcher struct {
	expr string
	link LinkType
	snap uint32
	raw  []bpf.RawInstruction
	prog *program // the Go executor's program; nil with WithLibpcap
	// shapes are prog's residual programs by the shape of a fake packet
	// (shape.go), for Match; nil, or a nil entry, where prog runs whole.
	shapes *shapeSet
	lib    *libpcapProgram // libpcap's, with WithLibpcap

	// For the tests' comparisons with libpcap: how raw was compiled.
	netmask    uint32
	goCompiled bool
}

// Compile compiles a tcpdump filter expression (pcap-filter(7)) with the
// Go compiler of package pcapfilter, for Ethernet frames and the default
// snap length unless options say otherwise. The Go compiler knows the link
// types LinkEthernet, LinkRaw, Linux cooked captures (113 and 276) and
// LINKTYPE_IPV4 and _IPV6 (228, 229); WithLibpcap compiles for any other.
// The error of an expression that does not compile is a *CompileError
// saying what is wrong and where.
func Compile(expr string, opts ...Option) (*Matcher, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	if i := strings.IndexByte(expr, 0); i >= 0 {
		return nil, &CompileError{Expr: expr, LinkType: o.link, Offset: i, Token: "\x00", Msg: "expression contains a NUL byte"}
	}
	var raw []bpf.RawInstruction
	byGo := useGoCompiler && !o.libpcap
	if byGo {
		raw, err = compileGo(expr, o.link, o.snap, o.netmask)
	} else {
		raw, err = compileLibpcap(expr, o.link, o.snap, o.netmask)
	}
	if err != nil {
		var ce *CompileError
		if h := linkTypeHint(o.link); h != "" && errors.As(err, &ce) && !strings.Contains(ce.Msg, h) {
			ce.Msg += h
		}
		return nil, err
	}
	m, err := newMatcher(expr, raw, o)
	if err != nil {
		by := "libpcap"
		if byGo {
			by = "the Go compiler"
		}
		return nil, fmt.Errorf("bpfmatch: %s compiled %q into a program that does not validate: %w", by, expr, err)
	}
	m.netmask, m.goCompiled = o.netmask, byGo
	return m, nil
}

// compileGo compiles expr with the Go compiler, whose errors become
// *CompileError with the offset and token it gives.
func compileGo(expr string, link LinkType, snap int, netmask uint32) ([]bpf.RawInstruction, error) {
	if !slices.Contains(goLinkTypes, link) {
		how := "WithLibpcap() compiles it"
		if !HaveLibpcap {
			how += ", in a build with cgo and -tags libpcap"
		}
		return nil, &CompileError{Expr: expr, LinkType: link, Offset: -1,
			Msg: fmt.Sprintf("the Go compiler does not know link type %v (it knows DLT 1 ethernet, 12 raw IP, 113 and 276 Linux cooked, 228 IPv4, 229 IPv6)%s; %s", link, linkTypeHint(link), how)}
	}
	raw, err := pcapfilter.Compile(expr, pcapfilter.Options{LinkType: pcapfilter.LinkType(link), SnapLen: snap, Netmask: netmask})
	if err != nil {
		var pe *pcapfilter.Error
		if errors.As(err, &pe) {
			return nil, &CompileError{Expr: expr, LinkType: link, Offset: pe.Offset, Token: pe.Token, Msg: pe.Msg}
		}
		return nil, &CompileError{Expr: expr, LinkType: link, Offset: -1, Msg: err.Error()}
	}
	return raw, nil
}

// linkTypeHint returns, for a link type numbered as capture files number
// them (LINKTYPE_*, as gopacket's layers.LinkType) where the compilers
// take another DLT number, the advice to convert it; else "".
func linkTypeHint(l LinkType) string {
	if l < 0 || int64(l) > 1<<32-1 {
		return ""
	}
	dlt := LinkTypeFromPcap(uint32(l))
	if dlt == l {
		return ""
	}
	return fmt.Sprintf(": %d is the number capture files and gopacket's layers.LinkType give it; compilers take DLT numbers: use LinkTypeFromPcap(%d), which is %d (%v)", int(l), int(l), int(dlt), dlt)
}

// Load returns a Matcher that runs a program already compiled, such as
// ParseProgram reads from what tcpdump -ddd or bpfmatch -ddd print, for
// frames of the link type and snap length the options give (those it was
// compiled for). It needs no cgo. The program is validated as libpcap's
// bpf_validate does; an invalid one is an error.
// The Matcher's String is the program in the one-line form ParseProgram
// also reads.
//
// A run of any program stops after a fixed budget: once its backward jumps
// have gone back over 2^22 instructions in all, the packet is rejected, so
// that no match costs more than a few milliseconds whatever the program or
// the snap length. No program libpcap or this package compiles reaches it
// on frames up to 262,144 bytes (the README's executor section has the
// argument).
func Load(prog []bpf.RawInstruction, opts ...Option) (*Matcher, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	text := strings.TrimSuffix(strings.ReplaceAll(FormatProgram(prog), "\n", ","), ",")
	m, err := newMatcher(text, append([]bpf.RawInstruction(nil), prog...), o)
	if err != nil {
		return nil, fmt.Errorf("bpfmatch: invalid program: %w", err)
	}
	return m, nil
}

func newOptions(opts []Option) (options, error) {
	o := options{link: LinkEthernet, snap: DefaultSnapLen}
	for _, opt := range opts {
		opt(&o)
	}
	if o.err != nil {
		return o, o.err
	}
	if o.snap <= 0 || o.snap > math.MaxInt32 {
		return o, fmt.Errorf("bpfmatch: snap length %d is not between 1 and %d", o.snap, math.MaxInt32)
	}
	if o.libpcap && !HaveLibpcap {
		return o, fmt.Errorf("bpfmatch: WithLibpcap: %w", errNoLibpcap)
	}
	return o, nil
}

func newMatcher(expr string, raw []bpf.RawInstruction, o options) (*Matcher, error) {
	prog, err := newProgram(raw)
	if err != nil {
		return nil, err
	}
	m := &Matcher{expr: expr, link: o.link, snap: uint32(o.snap), raw: raw}
	if !o.libpcap {
		m.prog = prog
		m.shapes = shapePrograms(prog, raw, o.link, m.snap)
		return m, nil
	}
	if m.lib, err = newLibpcapProgram(raw); err != nil {
		return nil, err
	}
	return m, nil
}

var errNoLibpcap = errors.New("this program was built without libpcap: build it with cgo and -tags libpcap (libpcap's headers installed)")

// MustCompile is like Compile but panics if the expression cannot be
// compiled. It simplifies initialising global variables.
func MustCompile(expr string, opts ...Option) *Matcher {
	m, err := Compile(expr, opts...)
	if err != nil {
		panic(err)
	}
	return m
}

// String returns the expression m was compiled from, or for a Matcher
// from Load, its program.
func (m *Matcher) String() string { return m.expr }

// LinkType returns the link type m was compiled for.
func (m *Matcher) LinkType() LinkType { return m.link }

// SnapLen returns the snap length m matches frames with.
func (m *Matcher) SnapLen() int { return int(m.snap) }

// Program returns a copy of m's program, as tcpdump -ddd prints it.
func (m *Matcher) Program() []bpf.RawInstruction {
	return append([]bpf.RawInstruction(nil), m.raw...)
}

// Match reports whether p matches, framed for m's link type, which must be
// LinkEthernet or LinkRaw. The error tells why p could not be built.
func (m *Matcher) Match(p FakePacket) (bool, error) {
	return m.match(&p)
}

// match is Match on a pointer: p is copied once, by Match's caller.
func (m *Matcher) match(p *FakePacket) (bool, error) {
	s := -1
	if m.shapes != nil {
		var err error
		if s, err = p.check(m.link); err != nil {
			return false, err
		}
		if d := &m.shapes.direct[s]; d.src != directNone {
			if v, ok := d.decide(p); ok {
				return v, nil
			}
		}
	}
	ret, err := m.runShape(p, s, nil)
	return ret != 0, err
}

// runPacket runs on p the program of its shape, which it sets *ran to
// when ran is not nil, and returns what it returns.
func (m *Matcher) runPacket(p *FakePacket, ran **program) (uint32, error) {
	s := -1
	if m.shapes != nil {
		var err error
		if s, err = p.check(m.link); err != nil {
			return 0, err
		}
	}
	return m.runShape(p, s, ran)
}

// runShape is runPacket for p, which check found of shape s, or s -1
// where m has no residual programs and p is yet to be checked.
func (m *Matcher) runShape(p *FakePacket, s int, ran **program) (uint32, error) {
	var h header
	prog, lengths := m.prog, true
	if s < 0 {
		if err := h.build(p, m.link); err != nil {
			return 0, err
		}
	} else {
		// Only the fields the program of the shape may read are written.
		h.buildShape(p, m.link, s, m.shapes.needs[s])
		if m.shapes.progs[s] != nil {
			prog, lengths = m.shapes.progs[s], m.shapes.lengths[s]
		}
	}
	// The frame's fields are set one by one: a literal is built aside
	// and then copied, and the copy's wide loads of narrow stores stall.
	// (A method setting them would make h escape, for f.lazy.)
	var f frame
	if lengths {
		f.hdr, f.payload = h.prepare(p.Payload)
		f.lazy, f.lazyLo, f.lazyHi = &h, uint32(h.csum), uint32(h.csum)+2
	} else {
		f.hdr, f.payload = h.split(p.Payload)
	}
	wire := uint32(len(f.hdr) + len(f.payload))
	f.wirelen, f.caplen = wire, min(wire, m.snap)
	if ran != nil {
		*ran = prog
	}
	switch {
	case prog == nil:
		return m.lib.run(&f), nil
	case prog.oneTest:
		return prog.runOneTest(&f), nil // as run would, a call sooner
	}
	return prog.run(&f), nil
}

// MatchConn reports whether payload, arriving on c, matches: the packet
// from c.RemoteAddr() to c.LocalAddr(), as FromConn builds it. Asking c
// whether it is still open costs an allocation; a Flow made once per
// connection (NewFlowConn) matches each payload with none.
//
// payload is matched as one packet, whatever it is: on a TCP connection,
// usually the bytes of one Read, which the network may have cut anywhere
// (a client that writes "GE" then "T / HTTP/1.1" may be read in two
// pieces, neither of which a filter on "GET " matches). To match a
// stream's first bytes, read until there are as many as the filter looks
// at (io.ReadFull), or put the filter in front of the listener with
// WithPayload, which does.
func (m *Matcher) MatchConn(c net.Conn, payload []byte) (bool, error) {
	p, err := FromConn(c, payload)
	if err != nil {
		return false, err
	}
	return m.Match(p)
}

// MatchFrom reports whether payload, sent from src to dst, matches; both
// addresses must be *net.UDPAddr or both *net.TCPAddr. For a datagram
// socket, src is what ReadFrom returned and dst the socket's LocalAddr.
func (m *Matcher) MatchFrom(src, dst net.Addr, payload []byte) (bool, error) {
	p, err := FromAddrs(src, dst, payload)
	if err != nil {
		return false, err
	}
	return m.Match(p)
}

// MatchFrame reports whether a frame of m's link type matches: data holds
// its captured bytes, wireLen is its length on the wire (len(data) for a
// frame captured whole). Bytes past the snap length are ignored. As in
// libpcap, a capture record may claim fewer bytes on the wire than it
// holds: loads read data, len is wireLen. The error is for a wireLen
// that is negative or beyond 2^32-1.
func (m *Matcher) MatchFrame(data []byte, wireLen int) (bool, error) {
	if wireLen < 0 || uint64(wireLen) > math.MaxUint32 {
		return false, fmt.Errorf("bpfmatch: wire length %d is not between 0 and 2^32-1", wireLen)
	}
	f := frame{hdr: data, caplen: min(uint32(len(data)), m.snap), wirelen: uint32(wireLen)}
	return m.run(&f) != 0, nil
}

func (m *Matcher) run(f *frame) uint32 {
	if m.prog == nil {
		return m.lib.run(f)
	}
	return m.prog.run(f)
}
