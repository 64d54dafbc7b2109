//go:build !cgo

package bpfmatch

import "golang.org/x/net/bpf"

// HaveLibpcap reports whether this build links libpcap, so that Compile and
// WithLibpcap work: it needs cgo.
const HaveLibpcap = false

func compileLibpcap(expr string, link LinkType, _ int, _ uint32) ([]bpf.RawInstruction, error) {
	return nil, &CompileError{Expr: expr, LinkType: link, Msg: errNoLibpcap.Error()}
}

func libpcapRun([]bpf.RawInstruction, *frame) uint32 { return 0 }
