package bpfmatch

import (
	"math"
	"net/netip"
	"testing"

	"golang.org/x/net/bpf"
)

// hostilePrograms are loops that libpcap never leaves, each the slowest
// of its kind for the executor: the shortest loop, the 513-instruction
// loop, loops whose load leaves the interpreter's fast path (a halfword
// across the end of the header, a byte of the payload), and protochain
// over an AH header pointing at itself.
func hostilePrograms(t testing.TB) []struct {
	name string
	raw  []bpf.RawInstruction
} {
	body := make([]bpf.RawInstruction, 512) // "ld #0", 512 times
	divs := []bpf.RawInstruction{stmt(bpfLdImm, 0xffffffff)}
	for range 511 {
		divs = append(divs, alu(bpfDiv, 1))
	}
	pc6, err := ParseProgram(protochain6)
	if err != nil {
		t.Fatal(err)
	}
	return []struct {
		name string
		raw  []bpf.RawInstruction
	}{
		{"spin", prog(stmt(bpfLdImm, 0), stmt(bpfJa, 0xfffffffe), retK(1))},
		{"loop513", prog(body, stmt(bpfJa, 0xffffffff-512), retK(1))},
		{"div513", prog(divs, stmt(bpfJa, 0xffffffff-512), retK(1))},
		{"straddle", prog(stmt(bpfLdHAbs, 53), stmt(bpfJa, 0xfffffffe), retK(1))},
		{"payload", prog(stmt(bpfLdxImm, 60), stmt(bpfLdBInd, 0), stmt(bpfJa, 0xfffffffe), retK(1))},
		{"protochain-ah-self", pc6},
	}
}

// hugeFrame is a 16 MiB Ethernet frame of IPv6 whose first header is an
// AH header pointing at itself.
func hugeFrame() []byte {
	data := make([]byte, 16<<20)
	copy(data, ipv6Chain(51, 51, 8, 0, 0))
	return data
}

// BenchmarkHostileProgram times the hostile programs on a 16 MiB frame at
// the largest snap length (MatchFrame), and on the largest fake packet
// (Match), where loads also leave the fast path.
func BenchmarkHostileProgram(b *testing.B) {
	data := hugeFrame()
	pkt := FakePacket{Src: netip.MustParseAddrPort("192.0.2.1:1234"), Dst: netip.MustParseAddrPort("198.51.100.2:21"),
		Protocol: TCP, Payload: make([]byte, 65000)}
	for _, h := range hostilePrograms(b) {
		m, err := Load(h.raw, WithSnapLen(math.MaxInt32))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(h.name+"/frame16MiB", func(b *testing.B) {
			for b.Loop() {
				if ok, _ := m.MatchFrame(data, len(data)); ok {
					b.Fatal("a hostile loop matched")
				}
			}
		})
		b.Run(h.name+"/fakepacket64KiB", func(b *testing.B) {
			for b.Loop() {
				if ok, _ := m.Match(pkt); ok {
					b.Fatal("a hostile loop matched")
				}
			}
		})
	}
}

// TestBudgetHostile counts the instructions the hostile programs execute
// on a 16 MiB frame at the largest snap length and on the largest fake
// packet: the budget stops them all, after at most len+loopBudget.
func TestBudgetHostile(t *testing.T) {
	data := hugeFrame()
	pkt := FakePacket{Src: netip.MustParseAddrPort("192.0.2.1:1234"), Dst: netip.MustParseAddrPort("198.51.100.2:21"),
		Protocol: TCP, Payload: make([]byte, 65000)}
	for _, h := range hostilePrograms(t) {
		p, err := newProgram(h.raw)
		if err != nil {
			t.Fatal(err)
		}
		n := uint32(len(data))
		limit := uint64(len(h.raw)) + loopBudget
		if h.name == "div513" { // a turn: 511 divisions of divCost, 2 others
			limit = uint64(len(h.raw)) + 513*(loopBudget/(511*divCost+2)+1)
		}
		ret, stopped, steps := refRunSteps(h.raw, data, n, n)
		if ret != 0 || !stopped || steps > limit {
			t.Errorf("%s on 16 MiB: refRun returns %d, stopped %v after %d instructions, want 0, stopped, at most %d",
				h.name, ret, stopped, steps, limit)
		}
		f := frame{hdr: data, caplen: n, wirelen: n}
		if ret, back := p.runCounted(&f); ret != 0 || back != budgetSpent {
			t.Errorf("%s on 16 MiB: run returns %d, budget used %d, want 0 and the budget spent", h.name, ret, back)
		}
		m, err := Load(h.raw, WithSnapLen(math.MaxInt32))
		if err != nil {
			t.Fatal(err)
		}
		var ran *program
		if ret, err := m.runPacket(&pkt, &ran); ret != 0 || err != nil {
			t.Errorf("%s on a fake packet: returns %d, %v, want 0", h.name, ret, err)
		}
	}
}

// loopBound is what the proof on loopBudget allows the protochain loops
// of raw on c captured bytes, and how many of them are IPv6 loops. It
// fails the test on a backward jump of another shape than protochain's.
func loopBound(t *testing.T, expr string, raw []bpf.RawInstruction, c uint64) (bound uint64, v6 int) {
	t.Helper()
	loops := map[int][]uint64{} // by target, the distances of the jumps there
	for i, r := range raw {
		if r.Op == bpfJa && int32(r.K) < 0 {
			target := i + 1 + int(int32(r.K))
			loops[target] = append(loops[target], uint64(i+1-target))
		}
	}
	for target, d := range loops {
		switch {
		case len(d) == 2 && d[0] <= 15 && d[1] <= 28: // IPv6: extension headers, AH
			bound += d[0]*(c/4+1) + d[1]*513 + 8*slowLoadCost
			v6++
		case len(d) == 1 && d[0] <= 16: // IPv4: AH only
			bound += d[0]*513 + 8*slowLoadCost
		default:
			t.Fatalf("%q: backward jumps to %d going back %v: not protochain's loop\n%s", expr, target, d, FormatProgram(raw))
		}
	}
	return bound + slowLoadCost*uint64(len(raw)), v6
}

// worstChain returns a frame of c bytes of IPv6 (Ethernet when eth) on
// which protochain's loop turns about as often as it can: 8-byte
// extension headers at every offset that is 0 modulo 8 from 40 on, then an
// AH header sending X back to 12, and headers at every offset that is 4
// modulo 8, the last of type 253, which no loop looks for.
func worstChain(c int, eth bool) []byte {
	nl := 0
	if eth {
		nl = 14
	}
	b := make([]byte, c)
	if eth {
		b[12], b[13] = 0x86, 0xdd
	}
	b[nl] = 0x60
	b[nl+6] = 60
	fits := func(x int) bool { return x+nl+1 < c }
	x := 40
	for fits(x + 8) {
		b[nl+x], b[nl+x+1] = 60, 0
		x += 8
	}
	b[nl+x-8] = 51                  // the last header's next is AH, at x
	b[nl+x], b[nl+x+1] = 60, 12/4-2 // AH: next is an extension header, at 12
	last := 0
	for x = 12; fits(x); x += 8 {
		b[nl+x], b[nl+x+1], last = 60, 0, x
	}
	b[nl+last] = 253
	return b
}

// worstAH returns a frame of IPv4 (Ethernet when eth) whose AH headers
// send X to every multiple of 4 from 24 to 1028, the last of type 253.
func worstAH(eth bool) []byte {
	nl := 0
	if eth {
		nl = 14
	}
	b := make([]byte, nl+1100)
	if eth {
		b[12], b[13] = 0x08, 0x00
	}
	b[nl], b[nl+9] = 0x45, 51
	x := 20
	for ; x < 1028; x += 4 {
		b[nl+x], b[nl+x+1] = 51, byte((x+4)/4-2)
	}
	b[nl+x] = 253
	return b
}

// TestBudgetProtochain checks the proof on loopBudget: on the programs
// both compilers emit for protochain, on frames built to make their
// loops turn as often as they can, runs use no more than the bound, the
// bound stays below the budget where the proof says so, and the verdict
// is libpcap's.
func TestBudgetProtochain(t *testing.T) {
	exprs := []string{"ip6 protochain 6", "ip protochain 6", "protochain 17", "ip6 protochain 51",
		"ip6 protochain 6 or ip6 protochain 17 or ip6 protochain 1 or ip6 protochain 58",
		"protochain 6 and protochain 17", "tcp port 80 and (ip6 protochain 44 or ip protochain 6)"}
	type compiler struct {
		name string
		comp func(expr string, link LinkType) ([]bpf.RawInstruction, error)
	}
	comps := []compiler{{"go", func(e string, l LinkType) ([]bpf.RawInstruction, error) {
		return compileGo(e, l, DefaultSnapLen, 0)
	}}}
	if HaveLibpcap {
		comps = append(comps, compiler{"libpcap", func(e string, l LinkType) ([]bpf.RawInstruction, error) {
			return compileLibpcap(e, l, DefaultSnapLen, 0)
		}})
	} else {
		t.Log("without libpcap (-tags libpcap): only the Go compiler's programs, and no verdicts to compare")
	}
	sizes := []int{1514, 65535, 262144, 1 << 20}
	frames := map[[2]int][]byte{}
	for _, c := range sizes {
		frames[[2]int{c, 1}], frames[[2]int{c, 0}] = worstChain(c, true), worstChain(c, false)
	}
	for _, link := range []LinkType{LinkEthernet, LinkRaw} {
		eth := 0
		if link == LinkEthernet {
			eth = 1
		}
		for _, cp := range comps {
			for _, expr := range exprs {
				raw, err := cp.comp(expr, link)
				if err != nil {
					t.Fatalf("%s, %v: %q: %v", cp.name, link, expr, err)
				}
				p, err := newProgram(raw)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range sizes {
					bound, v6 := loopBound(t, expr, raw, uint64(c))
					// The proof's claims: up to four IPv6 loops at 262,144
					// bytes, one up to 1 MiB.
					if (c <= 262144 && v6 <= 4 || v6 <= 1) && bound > loopBudget {
						t.Errorf("%s, %v: %q on %d bytes: bound %d above the budget %d", cp.name, link, expr, c, bound, loopBudget)
					}
					for _, data := range [][]byte{frames[[2]int{c, eth}], worstAH(eth == 1)} {
						n := uint32(len(data))
						f := frame{hdr: data, caplen: n, wirelen: n}
						ret, back := p.runCounted(&f)
						if back == budgetSpent && bound > loopBudget {
							continue // beyond what the proof claims: the budget cuts the chain
						}
						if back > bound {
							t.Errorf("%s, %v: %q on %d bytes: the run went back %d, more than the bound %d",
								cp.name, link, expr, n, back, bound)
						}
						if execOracle != nil && back != budgetSpent {
							if want := execOracle(raw, data, n, n); want != ret {
								t.Errorf("%s, %v: %q on %d bytes: run returns %d, libpcap %d", cp.name, link, expr, n, ret, want)
							}
						}
						if c == 262144 && len(data) == c {
							t.Logf("%s, %v: %q on %d bytes: went back %d, bound %d, budget %d", cp.name, link, expr, n, back, bound, loopBudget)
						}
					}
				}
			}
		}
	}
}
