//go:build !(cgo && libpcap)

package bpfmatch

import "golang.org/x/net/bpf"

// HaveLibpcap reports whether this build links libpcap, so that
// WithLibpcap works: it needs cgo and the build tag libpcap
// (go build -tags libpcap).
const HaveLibpcap = false

func compileLibpcap(expr string, link LinkType, _ int, _ uint32) ([]bpf.RawInstruction, error) {
	return nil, &CompileError{Expr: expr, LinkType: link, Offset: -1, Msg: errNoLibpcap.Error()}
}

// libpcapProgram is never made in a build without libpcap: newOptions
// refuses WithLibpcap.
type libpcapProgram struct{}

func newLibpcapProgram([]bpf.RawInstruction) (*libpcapProgram, error) { return nil, errNoLibpcap }

func (*libpcapProgram) run(*frame) uint32 { return 0 }
