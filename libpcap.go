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
//
// libpcap 1.10 follows backward jumps forever ("ld #0; ja -2", or
// "ip6 protochain 6" over an AH header pointing at itself), and a cgo call
// cannot be interrupted. So a program with backward jumps first runs in
// the Go executor, within its fixed budget (loopBudget): where the budget
// stops it, the verdict is the Go executor's, a rejection, and libpcap is
// not called; where it does not, libpcap runs the same path to the end.
// For that path to be the same, libpcap runs such a program behind 17
// instructions that zero its scratch memory, as the Go executor does
// (libpcap leaves it uninitialised; the programs it compiles store before
// they load, so their verdicts are unchanged).
type libpcapProgram struct {
	p     *libpcap.Program
	guard *program // the Go executor's program, for one with backward jumps
}

func newLibpcapProgram(raw []bpf.RawInstruction) (*libpcapProgram, error) {
	guard, err := newProgram(raw)
	if err != nil {
		return nil, err
	}
	if !guard.loops {
		guard = nil
	} else {
		zeroed := make([]bpf.RawInstruction, 1, 1+memWords+len(raw)) // ld #0
		for i := range memWords {
			zeroed = append(zeroed, bpf.RawInstruction{Op: bpfSt, K: uint32(i)})
		}
		raw = append(zeroed, raw...)
	}
	p, err := libpcap.NewProgram(raw)
	if err != nil {
		return nil, err
	}
	return &libpcapProgram{p, guard}, nil
}

// run runs the program on f. libpcap needs the captured bytes in one
// piece: they are copied, also because the frame's own memory may be on
// the caller's stack, which C must not see.
func (lp *libpcapProgram) run(f *frame) uint32 {
	if f.lazyHi > f.lazyLo {
		f.touch(f.lazyLo, f.lazyHi)
	}
	if lp.guard != nil {
		if _, back := lp.guard.runCounted(f); back == budgetSpent {
			return 0
		}
	}
	data := make([]byte, f.caplen)
	n := copy(data, f.hdr)
	copy(data[n:], f.payload)
	if lp.p.Match(data, f.wirelen) {
		return 1
	}
	return 0
}
