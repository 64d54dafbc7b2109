package pcapfilter

import "testing"

// BenchmarkCompilePhases splits the compilation of BenchmarkCompile's short
// expression into its phases, with one compiler's memory reused as
// Compile's pool reuses it: parse is the lexer and the parser; generate
// adds code generation and layout, without the optimiser; all adds the
// optimiser (the whole of Compile but its pool and options). The
// differences are the phases' costs.
func BenchmarkCompilePhases(b *testing.B) {
	const expr = "tcp dst port 21"
	opts := Options{LinkType: LinkEthernet, SnapLen: DefaultSnapLen}
	b.Run("parse", func(b *testing.B) {
		var c compiler
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.p.parse(expr); err != nil {
				b.Fatal(err)
			}
			c.p.reset()
		}
	})
	for _, phase := range []struct {
		name  string
		noOpt bool
	}{{"generate", true}, {"all", false}} {
		b.Run(phase.name, func(b *testing.B) {
			var c compiler
			c.g.noOpt = phase.noOpt
			b.ReportAllocs()
			for b.Loop() {
				root, err := c.p.parse(expr)
				if err == nil {
					_, err = c.g.generate(expr, root, &opts)
				}
				if err != nil {
					b.Fatal(err)
				}
				c.p.reset()
			}
		})
	}
}
