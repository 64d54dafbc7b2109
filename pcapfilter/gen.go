package pcapfilter

import "golang.org/x/net/bpf"

func generate(expr string, root Node, o *Options) ([]bpf.RawInstruction, error) {
	return nil, &Error{Expr: expr, Offset: -1, Msg: "code generation is not written yet"}
}
