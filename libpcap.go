//go:build cgo && libpcap

package bpfmatch

import (
	"github.com/headlessbpf/bpfmatch/internal/libpcap"
	"golang.org/x/net/bpf"
)

// HaveLibpcap reports whether this build links libpcap, so that
// WithLibpcap works: it needs cgo and the build tag libpcap
// (go build -tags libpcap).
const HaveLibpcap = true

// compileLibpcap compiles expr with libpcap's pcap_compile, optimised, with
// the netmask given, as tcpdump does. gopacket's pcap.NewBPF would do, but
// it cannot pass a netmask, and tcpdump -r compiles with netmask 0, not
// "unknown".
func compileLibpcap(expr string, link LinkType, snap int, netmask uint32) ([]bpf.RawInstruction, error) {
	raw, err := libpcap.Compile(expr, int(link), snap, true, netmask)
	if err != nil {
		return nil, &CompileError{Expr: expr, LinkType: link, Offset: -1, Msg: err.Error()}
	}
	return raw, nil
}

// libpcapProgram runs a Matcher's program with libpcap, through gopacket's
// pcap.BPF.Matches (libpcap.Program).
type libpcapProgram struct{ p *libpcap.Program }

func newLibpcapProgram(raw []bpf.RawInstruction) (*libpcapProgram, error) {
	p, err := libpcap.NewProgram(raw)
	if err != nil {
		return nil, err
	}
	return &libpcapProgram{p}, nil
}

// run runs the program on f. libpcap needs the captured bytes in one
// piece: they are copied, also because the frame's own memory may be on
// the caller's stack, which C must not see.
func (lp *libpcapProgram) run(f *frame) uint32 {
	if f.lazyHi > f.lazyLo {
		f.touch(f.lazyLo, f.lazyHi)
	}
	data := make([]byte, f.caplen)
	n := copy(data, f.hdr)
	copy(data[n:], f.payload)
	if lp.p.Match(data, f.wirelen) {
		return 1
	}
	return 0
}
