package pcapfilter

import "golang.org/x/net/bpf"

// CompileUnoptimised is Compile without the optimiser, for the tests that
// prove it changes no verdict.
func CompileUnoptimised(expr string, opts Options) ([]bpf.RawInstruction, error) {
	if opts.LinkType == 0 {
		opts.LinkType = LinkEthernet
	}
	if opts.SnapLen == 0 {
		opts.SnapLen = DefaultSnapLen
	}
	c := new(compiler)
	root, err := c.p.parse(expr)
	if err != nil {
		return nil, err
	}
	c.g.noOpt = true
	return c.g.generate(expr, root, &opts)
}
