// Package pcapfilter compiles tcpdump filter expressions (the language of
// pcap-filter(7)) into classic BPF programs, in Go, without libpcap.
//
// Its programs give the verdicts libpcap 1.10's give on the same packets,
// for the link types it supports: Ethernet, raw IP (DLT_RAW, DLT_IPV4,
// DLT_IPV6) and Linux cooked captures (SLL, SLL2). It accepts the
// expressions libpcap accepts for them and refuses the others: the whole
// language, from hosts, nets, ports and port ranges to vlan, mpls, pppoes
// and geneve (which move the offsets of everything after them),
// protochain, byte accessors with arithmetic, and the older LAN
// protocols. The project's tests prove it against libpcap on real
// captures, real expressions and generated ones.
//
// The programs suit any classic BPF consumer: the bpfmatch package's
// executor, golang.org/x/net/bpf, a Linux socket filter, gopacket's
// afpacket. A matching packet gets the snap length, others 0.
//
// Like regexp/syntax beside regexp, the package is in parts: a lexer and a
// recursive-descent parser build a syntax tree (Parse), and a code
// generator turns it into a program (Compile). Names are looked up as
// libpcap does: services and protocols in /etc/services and
// /etc/protocols (with a table of the common ones built in, for machines
// without them), host names with Go's resolver, Ethernet addresses in
// /etc/ethers, networks in /etc/networks.
//
// Limits: an expression of up to MaxExprLen bytes, nested (parentheses,
// not, brackets, unary minus) at most MaxDepth deep; past either, an
// error. Compiling costs time and memory linear in the expression's size:
// a few microseconds and a few kilobytes per primitive (5,000 or-ed
// host terms: some 20 ms and 15 MB, for about 150,000 instructions). A
// program may not exceed 4,194,304 instructions.
package pcapfilter

import (
	"fmt"
	"sync"

	"golang.org/x/net/bpf"
)

// LinkType is a data link type, numbered as libpcap's compiler numbers
// them (DLT_*): what a program's offsets are relative to.
type LinkType int

// The link types Compile generates code for.
const (
	LinkEthernet  LinkType = 1   // DLT_EN10MB
	LinkRaw       LinkType = 12  // DLT_RAW: an IPv4 or IPv6 header first
	LinkLinuxSLL  LinkType = 113 // DLT_LINUX_SLL: Linux cooked capture
	LinkIPv4      LinkType = 228 // DLT_IPV4: an IPv4 header first
	LinkIPv6      LinkType = 229 // DLT_IPV6: an IPv6 header first
	LinkLinuxSLL2 LinkType = 276 // DLT_LINUX_SLL2: Linux cooked capture v2
)

// String returns the name libpcap gives the link type, such as "EN10MB".
func (l LinkType) String() string {
	switch l {
	case LinkEthernet:
		return "EN10MB"
	case LinkRaw:
		return "RAW"
	case LinkLinuxSLL:
		return "LINUX_SLL"
	case LinkIPv4:
		return "IPV4"
	case LinkIPv6:
		return "IPV6"
	case LinkLinuxSLL2:
		return "LINUX_SLL2"
	}
	return fmt.Sprintf("DLT %d", int(l))
}

// DefaultSnapLen is the snap length tcpdump uses, and Compile when
// Options.SnapLen is 0.
const DefaultSnapLen = 262144

// Options tell Compile what to compile for. The zero value compiles for
// Ethernet with tcpdump's snap length and a netmask of 0.
type Options struct {
	// LinkType is the link type of the packets; 0 means LinkEthernet.
	LinkType LinkType
	// SnapLen is the snap length, the value the program returns for a
	// packet that matches; 0 means DefaultSnapLen.
	SnapLen int
	// Netmask is the IPv4 netmask of the local network, which "ip
	// broadcast" needs; 0, as tcpdump -r has it, makes "ip broadcast"
	// mean 0.0.0.0 or 255.255.255.255.
	Netmask uint32
}

// Error is the error of an expression that does not compile: what is
// wrong, and where.
type Error struct {
	Expr   string // the expression
	Offset int    // byte offset of the offending token in Expr, or -1
	Token  string // the offending token as written, "" at the end of the expression
	Msg    string // what is wrong
}

func (e *Error) Error() string {
	if e.Offset < 0 {
		return e.Msg
	}
	if e.Token == "" {
		return fmt.Sprintf("at offset %d (end of expression): %s", e.Offset, e.Msg)
	}
	tok := e.Token
	if len(tok) > 40 {
		tok = tok[:40] + "..."
	}
	return fmt.Sprintf("at offset %d (%q): %s", e.Offset, tok, e.Msg)
}

// compiler is the memory of a compilation, which the next one reuses: a
// tree's nodes, blocks and statements, kept in compilerPool.
type compiler struct {
	p parser
	g gen
}

var compilerPool = sync.Pool{New: func() any { return new(compiler) }}

// Compile compiles expr into a classic BPF program for the options'
// link type. An expression that does not compile gets an *Error; so does
// one libpcap refuses as "expression rejects all packets" (such as "tcp
// and udp", or "arp" on raw IP). An empty expression matches every
// packet. Compile is safe for concurrent use; host names are resolved at
// each call, the files of names read once.
func Compile(expr string, opts Options) ([]bpf.RawInstruction, error) {
	if opts.LinkType == 0 {
		opts.LinkType = LinkEthernet
	}
	if opts.SnapLen == 0 {
		opts.SnapLen = DefaultSnapLen
	}
	if opts.SnapLen < 0 {
		return nil, &Error{Expr: expr, Offset: -1, Msg: fmt.Sprintf("snap length %d is negative", opts.SnapLen)}
	}
	c := compilerPool.Get().(*compiler)
	defer func() {
		c.p.reset()
		compilerPool.Put(c)
	}()
	root, err := c.p.parse(expr)
	if err != nil {
		return nil, err
	}
	return c.g.generate(expr, root, &opts)
}
