//go:build cgo && libpcap

package bpfmatch

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/headlessbpf/bpfmatch/internal/libpcap"
	"golang.org/x/net/bpf"
)

func init() {
	execCompile = func(expr string, link LinkType, snap int) ([]bpf.RawInstruction, error) {
		return compileLibpcap(expr, link, snap, 0)
	}
}

// TestProgramValidateDifferential checks that newProgram accepts exactly
// what libpcap's bpf_validate accepts, bar the stricter rules, on random
// programs and on every program libpcap compiles from the corpus.
func TestProgramValidateDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	codes := make([]uint16, 0, len(executable))
	for c := range executable {
		codes = append(codes, c)
	}
	slices.Sort(codes) // for the same programs every run
	ks := []uint32{0, 1, 2, 15, 16, 31, 32, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff}
	var accepted, rejected, stricter int
	for range 200000 {
		n := r.IntN(8)
		raw := make([]bpf.RawInstruction, n)
		for i := range raw {
			in := &raw[i]
			switch r.IntN(10) {
			case 0:
				in.Op = uint16(r.Uint32())
			case 1, 2:
				in.Op = uint16(r.IntN(256))
			default:
				in.Op = codes[r.IntN(len(codes))]
			}
			switch r.IntN(3) {
			case 0:
				in.K = ks[r.IntN(len(ks))]
			case 1:
				in.K = uint32(r.IntN(2*n+2) - n - 1)
			default:
				in.K = r.Uint32()
			}
			in.Jt, in.Jf = uint8(r.IntN(n+1)), uint8(r.IntN(n+1))
			if r.IntN(20) == 0 {
				in.Jt = uint8(r.IntN(256))
			}
		}
		if n > 0 && r.IntN(3) > 0 {
			raw[n-1].Op = []uint16{bpfRetK, bpfRetA, 0x0e, 0x1e}[r.IntN(4)]
		}
		_, err := newProgram(raw)
		lp := libpcap.Validate(raw)
		rule := stricterRule(raw)
		if want := lp && rule == ""; want != (err == nil) {
			t.Fatalf("newProgram accepts: %v (%v), libpcap: %v, stricter rule: %q\nprogram:\n%s",
				err == nil, err, lp, rule, FormatProgram(raw))
		}
		switch {
		case err == nil:
			accepted++
		case lp:
			stricter++
		default:
			rejected++
		}
	}
	t.Logf("random programs: %d accepted by both, %d rejected by both, %d by newProgram alone under a stricter rule",
		accepted, rejected, stricter)

	var exprs []string
	for _, name := range []string{"libpcap-ethernet.txt", "realworld.txt", "libpcap-raw.txt"} {
		exprs = append(exprs, corpusFilters(t, name)...)
	}
	var compiled int
	for _, link := range []LinkType{LinkEthernet, LinkRaw} {
		for _, e := range exprs {
			raw, err := compileLibpcap(e, link, DefaultSnapLen, 0)
			if err != nil {
				continue
			}
			compiled++
			if !libpcap.Validate(raw) {
				t.Errorf("%q for %v: libpcap does not validate its own program", e, link)
			}
			if _, err := newProgram(raw); err != nil {
				t.Errorf("%q for %v: newProgram: %v\n%s", e, link, err, FormatProgram(raw))
			}
		}
	}
	t.Logf("corpus: %d programs compiled by libpcap, all accepted", compiled)
}
