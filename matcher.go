// Package bpfmatch applies tcpdump filter expressions to traffic a service
// reads from ordinary sockets, without capturing packets.
//
// It builds the packet a capture would have seen arriving (a FakePacket:
// Ethernet, optional 802.1Q tag, IPv4 or IPv6, TCP or UDP, the payload) from
// a connection's metadata, and runs the program libpcap compiled for the
// expression (Compile), in Go. The verdicts are libpcap's own: the tests
// compare them with pcap_offline_filter on the same bytes and lengths.
// A Flow prepares one connection's headers once and matches each payload
// with no allocation. Only Compile needs cgo and libpcap; programs compiled
// ahead of time run anywhere (ParseProgram, Load). Listener, Router and
// PacketConn put a filter in front of a server.
package bpfmatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strings"

	"golang.org/x/net/bpf"
)

// LinkType is a data link type as libpcap's compiler numbers them (DLT_*),
// which is what a filter's offsets are relative to.
type LinkType int

// The link types fake packets can be framed for. Compile accepts any link
// type libpcap knows, for MatchFrame.
const (
	LinkEthernet LinkType = 1  // DLT_EN10MB
	LinkRaw      LinkType = 12 // DLT_RAW: the IP header first
)

// String returns "ethernet", "raw" or "DLT N".
func (l LinkType) String() string {
	switch l {
	case LinkEthernet:
		return "ethernet"
	case LinkRaw:
		return "raw"
	}
	return fmt.Sprintf("DLT %d", int(l))
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

// WithLibpcap makes the Matcher run programs with libpcap's
// pcap_offline_filter, through cgo, instead of in Go: slower, and there
// for cross-checking. Compile and Load fail with it in a build without cgo.
func WithLibpcap() Option { return func(o *options) { o.libpcap = true } }

// CompileError is the error of an expression libpcap would not compile.
type CompileError struct {
	Expr     string
	LinkType LinkType
	Msg      string // libpcap's message, or why the expression was not given to it
}

func (e *CompileError) Error() string {
	expr := e.Expr
	if len(expr) > 200 {
		expr = expr[:200] + "..." // the message of a huge expression stays readable
	}
	return fmt.Sprintf("bpfmatch: compiling %q for %v: %s", expr, e.LinkType, e.Msg)
}

// A Matcher is a filter expression compiled by libpcap, which tells whether
// packets match it. It is safe for concurrent use by multiple goroutines.
type Matcher struct {
	expr string
	link LinkType
	snap uint32
	raw  []bpf.RawInstruction
	prog *program // nil when libpcap executes raw
}

// Compile compiles a tcpdump filter expression with libpcap, for Ethernet
// frames and the default snap length unless options say otherwise. The
// error of an invalid expression is a *CompileError with libpcap's message.
// Compile needs cgo; a build without it can Load programs compiled before.
func Compile(expr string, opts ...Option) (*Matcher, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	if strings.IndexByte(expr, 0) >= 0 {
		return nil, &CompileError{Expr: expr, LinkType: o.link, Msg: "expression contains a NUL byte"}
	}
	raw, err := compileLibpcap(expr, o.link, o.snap, o.netmask)
	if err != nil {
		return nil, err
	}
	m, err := newMatcher(expr, raw, o)
	if err != nil {
		return nil, fmt.Errorf("bpfmatch: libpcap compiled %q into a program that does not validate: %w", expr, err)
	}
	return m, nil
}

// Load returns a Matcher that runs a program already compiled, such as
// ParseProgram reads from what tcpdump -ddd or bpfmatch -ddd print, for
// frames of the link type and snap length the options give (those it was
// compiled for). It needs no cgo. The program is validated as libpcap's
// bpf_validate does; an invalid one is an error.
// The Matcher's String is the program in the one-line form ParseProgram
// also reads.
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
	}
	return m, nil
}

var errNoLibpcap = errors.New("compiling expressions needs libpcap, and this program was built without cgo")

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

// Program returns a copy of the program libpcap compiled, as tcpdump -ddd
// prints it.
func (m *Matcher) Program() []bpf.RawInstruction {
	return append([]bpf.RawInstruction(nil), m.raw...)
}

// Match reports whether p matches, framed for m's link type, which must be
// LinkEthernet or LinkRaw. The error tells why p could not be built.
func (m *Matcher) Match(p FakePacket) (bool, error) {
	var h header
	if err := h.build(&p, m.link); err != nil {
		return false, err
	}
	// As h.frame, written out: the call and the copy of its result cost
	// a tenth of a match.
	hdr, rest := h.prepare(p.Payload)
	wire := uint32(len(hdr) + len(rest))
	f := frame{hdr: hdr, payload: rest, wirelen: wire, caplen: min(wire, m.snap),
		lazy: &h, lazyLo: uint32(h.csum), lazyHi: uint32(h.csum) + 2}
	return m.run(&f) != 0, nil
}

// MatchConn reports whether payload, arriving on c, matches: the packet
// from c.RemoteAddr() to c.LocalAddr(), as FromConn builds it. Asking c
// whether it is still open costs an allocation; a Flow made once per
// connection (NewFlowConn) matches each payload with none.
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
// frame captured whole). Bytes past the snap length are ignored.
func (m *Matcher) MatchFrame(data []byte, wireLen int) (bool, error) {
	if wireLen < len(data) || wireLen > math.MaxUint32 {
		return false, fmt.Errorf("bpfmatch: wire length %d is less than the %d bytes captured or more than 2^32-1", wireLen, len(data))
	}
	f := frame{hdr: data, caplen: min(uint32(len(data)), m.snap), wirelen: uint32(wireLen)}
	return m.run(&f) != 0, nil
}

func (m *Matcher) run(f *frame) uint32 {
	if m.prog == nil {
		return libpcapRun(m.raw, f)
	}
	return m.prog.run(f)
}
