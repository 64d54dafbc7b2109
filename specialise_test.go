package bpfmatch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/headlessbpf/bpfmatch/internal/libpcap"
	"golang.org/x/net/bpf"
)

// flowSnaps are the snap lengths the flow tests use: the default, and
// lengths that cut the headers or the payload of the fake packets.
var flowSnaps = []int{DefaultSnapLen, 40, 60, 68, 100}

// flowCase is a flow and the payloads it is tried with.
type flowCase struct {
	p        FakePacket // without payload
	payloads [][]byte
	frames   [][]byte // each payload's frame, as a capture holds it
}

// flowCases returns n varied flows of link, the same every run, each with
// payloads of every size that matters: empty, 1 to 7 bytes (padded in
// short Ethernet frames), starting with "GET ", random, and maximal.
func flowCases(t testing.TB, n int, link LinkType) []flowCase {
	r := rand.New(rand.NewPCG(8, uint64(link)))
	var out []flowCase
	for _, p := range generatedPackets(n, link) {
		p.Payload = nil
		var h header
		if err := h.build(&p, link); err != nil {
			t.Fatal(err)
		}
		payloads := [][]byte{nil, []byte("GET "), []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), []byte("GET")}
		for size := 1; size <= 7; size++ {
			payloads = append(payloads, randomBytes(r, size))
		}
		payloads = append(payloads, randomBytes(r, 20+r.IntN(60)), randomBytes(r, 200+r.IntN(1300)),
			bytes.Repeat([]byte{0xff}, h.maxPayload()))
		c := flowCase{p: p, payloads: payloads}
		for _, payload := range payloads {
			p.Payload = payload
			frame, err := p.AppendFrame(nil, link)
			if err != nil {
				t.Fatal(err)
			}
			c.frames = append(c.frames, frame)
		}
		out = append(out, c)
	}
	return out
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// flowStats counts what the flow tests compared.
type flowStats struct {
	flows, fixed, rebased, whole, fallback int
	fixedByTrace                           int // flows the headers-only run found fixed
	payloads, withLibpcap                  int
	// Of the flows that run a residual program: its length and the whole
	// program's, added.
	fullLen, residualLen int
}

func (s *flowStats) String() string {
	return fmt.Sprintf("%d flows (%d fixed, of which %d by a run on the headers alone; %d on the payload alone, %d on the whole frame, %d running the whole program; the residual programs of the others have %d instructions in all, their whole programs %d), %d payloads compared with Matcher.Match, %d with libpcap",
		s.flows, s.fixed, s.fixedByTrace, s.rebased, s.whole, s.fallback, s.residualLen, s.fullLen, s.payloads, s.withLibpcap)
}

// compareFlow checks that m's flow of c gives, for every payload, the
// verdict of m.Match, and with pcap, that of libpcap running m's program
// on the frame. It returns the disagreements.
func compareFlow(t *testing.T, m *Matcher, c *flowCase, pcap bool, st *flowStats) int {
	t.Helper()
	fl, err := m.NewFlow(c.p)
	if err != nil {
		t.Fatalf("%q: NewFlow(%v): %v", m, c.p, err)
	}
	st.flows++
	switch {
	case fl.fixed:
		st.fixed++
	case fl.rebased != nil:
		st.rebased++
	case fl.res != nil:
		st.whole++
	default:
		st.fallback++
	}
	// A run on the headers alone that reads nothing the payload decides
	// has a fixed verdict: the residual program must be that verdict.
	// (Programs with backward jumps are not specialised.)
	if fl.resRaw != nil {
		h := fl.h
		f := h.traceFrame(m.snap)
		ret := m.prog.run(&f)
		if !f.varies {
			st.fixedByTrace++
			if !fl.fixed || fl.match != (ret != 0) {
				t.Errorf("%q snap %d on %v: the headers alone give %d, but the residual program is\n%s",
					m, m.snap, c.p, ret, FormatProgram(fl.resRaw))
			}
		}
	}
	if fl.resRaw != nil && !fl.fixed {
		st.fullLen += len(m.raw)
		st.residualLen += len(fl.resRaw)
	}
	bad := 0
	for i, payload := range c.payloads {
		p := c.p
		p.Payload = payload
		got, err := fl.Match(payload)
		if err != nil {
			t.Fatalf("%q: Flow.Match(%d bytes) of %v: %v", m, len(payload), p, err)
		}
		want, err := m.Match(p)
		if err != nil {
			t.Fatal(err)
		}
		st.payloads++
		if got != want {
			bad++
			if bad <= 3 {
				t.Errorf("%q snap %d on %v, payload %q: Flow.Match = %v, Matcher.Match = %v\nresidual program:\n%s",
					m, m.snap, p, clip(payload), got, want, FormatProgram(fl.resRaw))
			}
		}
		if !pcap {
			continue
		}
		frame := c.frames[i]
		lib := libpcap.Filter(m.raw, frame, min(uint32(len(frame)), m.snap), uint32(len(frame))) != 0
		st.withLibpcap++
		if got != lib {
			bad++
			if bad <= 3 {
				t.Errorf("%q snap %d on %v, payload %q: Flow.Match = %v, libpcap = %v\nresidual program:\n%s",
					m, m.snap, p, clip(payload), got, lib, FormatProgram(fl.resRaw))
			}
		}
	}
	return bad
}

func clip(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}

// TestFlowResidualCorpus checks flows against the whole program and
// against libpcap: every corpus expression that compiles for Ethernet or
// raw IP, compiled by the Go compiler and, with libpcap, by libpcap (its
// optimised programs, loaded), at several snap lengths, on varied flows
// and payloads.
func TestFlowResidualCorpus(t *testing.T) {
	if !canCompile {
		t.Skip("built without libpcap, and the Go compiler is not switched on: Compile cannot compile expressions")
	}
	if !libpcap.Available {
		t.Log("built without libpcap: comparing flows with Matcher.Match only")
	}
	nflows := 24
	if testing.Short() {
		nflows = 6
	}
	for _, lt := range []struct {
		link  LinkType
		files []string
	}{
		{LinkEthernet, []string{"libpcap-ethernet.txt", "realworld.txt"}},
		{LinkRaw, []string{"libpcap-raw.txt", "realworld.txt"}},
	} {
		t.Run(lt.link.String(), func(t *testing.T) {
			exprs := append(corpusFilters(t, lt.files...), getFilter, "len > 100", "tcp[16:2] > 0x8000",
				"ip[2:2] > 60 or ip6[4:2] > 40", "udp[4:2] > 12", "ip[10:2] != 0")
			slices.Sort(exprs)
			exprs = slices.Compact(exprs)
			cases := flowCases(t, nflows, lt.link)
			var st flowStats
			bad, programs := 0, 0
			for _, expr := range exprs {
				for _, snap := range flowSnaps {
					m, err := Compile(expr, WithLinkType(lt.link), WithSnapLen(snap))
					if err != nil {
						continue
					}
					programs++
					for i := range cases {
						bad += compareFlow(t, m, &cases[i], libpcap.Available, &st)
					}
					if !libpcap.Available {
						continue
					}
					raw, err := libpcap.Compile(expr, int(lt.link), snap, true, 0)
					if err != nil {
						continue
					}
					if m, err = Load(raw, WithLinkType(lt.link), WithSnapLen(snap)); err != nil {
						t.Fatalf("Load(libpcap's program of %q): %v", expr, err)
					}
					programs++
					for i := range cases {
						bad += compareFlow(t, m, &cases[i], true, &st)
					}
				}
			}
			t.Logf("%d programs of %d expressions: %v; %d disagreements", programs, len(exprs), &st, bad)
			if st.payloads == 0 {
				t.Fatal("no expression compiled: nothing was compared")
			}
		})
	}
}

// TestFlowResidualPrograms checks flows against the whole program on
// programs no compiler emits: the classic BPF test vectors of other
// projects, and random valid programs, which use every instruction
// (divisions by X, tax and txa, scratch memory, the length, msh) at
// offsets in and around the fake headers.
func TestFlowResidualPrograms(t *testing.T) {
	var programs [][]bpf.RawInstruction
	if b, err := os.ReadFile(filepath.Join(corpusDir, "bpf-vectors", "vectors.json")); err != nil {
		t.Logf("no BPF test vectors (%v): random programs only", err)
	} else {
		var vs struct {
			Vectors []struct {
				Insns [][4]uint32 `json:"insns"`
			} `json:"vectors"`
		}
		if err := json.Unmarshal(b, &vs); err != nil {
			t.Fatalf("reading the BPF test vectors: %v", err)
		}
		for _, v := range vs.Vectors {
			var raw []bpf.RawInstruction
			for _, in := range v.Insns {
				raw = append(raw, bpf.RawInstruction{Op: uint16(in[0]), Jt: uint8(in[1]), Jf: uint8(in[2]), K: in[3]})
			}
			programs = append(programs, raw)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	nrandom := 3000
	if testing.Short() {
		nrandom = 300
	}
	for range nrandom {
		programs = append(programs, randomProgram(r, 4+r.IntN(40)))
	}
	cases := append(flowCases(t, 8, LinkEthernet), flowCases(t, 4, LinkRaw)...)
	var st flowStats
	bad, valid := 0, 0
	for i, raw := range programs {
		snap := flowSnaps[i%len(flowSnaps)]
		for _, link := range []LinkType{LinkEthernet, LinkRaw} {
			m, err := Load(raw, WithLinkType(link), WithSnapLen(snap))
			if err != nil {
				break
			}
			valid++
			for j := range cases {
				if cases[j].p.VLAN != nil && link == LinkRaw || len(cases[j].frames) == 0 {
					continue
				}
				if _, err := m.NewFlow(cases[j].p); err != nil {
					continue // an Ethernet flow on a raw matcher
				}
				bad += compareFlow(t, m, &cases[j], false, &st)
			}
		}
	}
	t.Logf("%d programs, %d of them valid for a link type and snap length: %v; %d disagreements", len(programs), valid, &st, bad)
	if st.payloads == 0 {
		t.Fatal("no program was valid: nothing was compared")
	}
}

// randomProgram returns a random program of about n instructions, usually
// valid: loads mostly at offsets in and around the fake headers, every
// operation, forward jumps and now and then a backward one.
func randomProgram(r *rand.Rand, n int) []bpf.RawInstruction {
	off := func() uint32 {
		switch r.IntN(8) {
		case 0:
			return r.Uint32()
		case 1:
			return uint32(60 + r.IntN(60))
		}
		return uint32(r.IntN(70))
	}
	small := func() uint32 {
		if r.IntN(6) == 0 {
			return r.Uint32()
		}
		return uint32(r.IntN(40))
	}
	ops := []uint16{bpfLdWAbs, bpfLdHAbs, bpfLdBAbs, bpfLdWInd, bpfLdHInd, bpfLdBInd, bpfLdxMSH,
		bpfLdLen, bpfLdxLen, bpfLdImm, bpfLdxImm, bpfLdMem, bpfLdxMem, bpfSt, bpfStx, bpfTax, bpfTxa,
		bpfALU | bpfNeg, bpfJa, bpfJeqK, bpfJgtK, bpfJgeK, bpfJsetK, bpfJeqX, bpfJgtX, bpfJgeX, bpfJsetX}
	for _, alu := range []uint16{bpfAdd, bpfSub, bpfMul, bpfDiv, bpfOr, bpfAnd, bpfLsh, bpfRsh, bpfMod, bpfXor} {
		ops = append(ops, bpfALU|alu, bpfALU|bpfSrcX|alu)
	}
	raw := make([]bpf.RawInstruction, n)
	for i := range raw[:n-1] {
		op := ops[r.IntN(len(ops))]
		in := bpf.RawInstruction{Op: op}
		left := n - i - 2 // instructions a jump may skip
		switch {
		case op == bpfLdWAbs || op == bpfLdHAbs || op == bpfLdBAbs || op == bpfLdxMSH:
			in.K = off()
		case op == bpfLdWInd || op == bpfLdHInd || op == bpfLdBInd:
			in.K = small()
		case op == bpfLdMem || op == bpfLdxMem || op == bpfSt || op == bpfStx:
			in.K = uint32(r.IntN(memWords))
		case op == bpfJa:
			if i > 0 && r.IntN(10) == 0 {
				in.K = uint32(-1 - r.IntN(i)) // backward
			} else {
				in.K = uint32(r.IntN(left + 1))
			}
		case op&bpfClassOf == bpfJmp:
			in.Jt, in.Jf = uint8(r.IntN(min(left, 255)+1)), uint8(r.IntN(min(left, 255)+1))
			in.K = small()
			if r.IntN(3) == 0 {
				in.K = uint32(r.IntN(3)) << (8 * r.IntN(4))
			}
		case op&^bpfSrcX == bpfALU|bpfDiv || op&^bpfSrcX == bpfALU|bpfMod:
			in.K = 1 + uint32(r.IntN(20))
		default:
			in.K = small()
		}
		raw[i] = in
	}
	raw[n-1] = bpf.RawInstruction{Op: bpfRetK, K: 1 + uint32(r.IntN(2))}
	if r.IntN(3) == 0 {
		raw[n-1] = bpf.RawInstruction{Op: bpfRetA}
	}
	// Some returns in the middle, so that paths end early.
	for range r.IntN(3) {
		raw[r.IntN(n)] = bpf.RawInstruction{Op: bpfRetK, K: uint32(r.IntN(2))}
	}
	return raw
}

// TestFlowResidualShape checks what the specialiser leaves of programs
// whose residue is known: the reads of the payload, and nothing of the
// headers.
func TestFlowResidualShape(t *testing.T) {
	tests := []struct {
		name    string
		expr    string
		p       FakePacket
		opts    []Option
		rebased bool // runs on the payload alone
		maxLen  int  // the residual program's length at most
	}{
		{"GET", getFilter, tcp4(), nil, true, 4},
		{"GET over IPv6", getFilter, tcp6(), nil, true, 1}, // tcp[] is IPv4's: rejected
		{"GET in a VLAN", "vlan and " + getFilter, tcp4(withVLAN(7)), nil, true, 4},
		{"GET raw", getFilter, tcp4(), []Option{WithLinkType(LinkRaw)}, true, 4},
		{"port and GET", "tcp dst port 21 and " + getFilter, tcp4(), nil, true, 4},
		{"length", "len > 100", tcp4(), nil, true, 4},
		{"udp payload", "udp[8] = 0", udp4(nil), nil, true, 4},
		{"port", "tcp dst port 21", tcp4(), nil, true, 1},
		{"IP length", "ip[2:2] > 50", tcp4(), nil, false, 4},
		{"TCP checksum", "tcp[16:2] > 0x8000", tcp4(), nil, false, 4},
		{"GET cut by the snap length", getFilter, tcp4(), []Option{WithSnapLen(40)}, true, 1},
		// The loop's backward jump is never reached: TCP follows IPv6.
		{"protochain", "ip6 protochain 6", tcp6(), nil, true, 1},
		{"protochain and GET", "ip protochain 6 and " + getFilter, tcp4(), nil, true, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := compileOrSkip(t, tc.expr, tc.opts...)
			fl, err := m.NewFlow(tc.p)
			if err != nil {
				t.Fatal(err)
			}
			if fl.resRaw == nil {
				t.Fatalf("%q on %v: no residual program: the flow runs the whole program", tc.expr, tc.p)
			}
			if got := fl.rebased != nil || fl.fixed; got != tc.rebased || len(fl.resRaw) > tc.maxLen {
				t.Errorf("%q on %v: residual program of %d instructions (at most %d wanted), on the payload alone %v (want %v):\n%s",
					tc.expr, tc.p, len(fl.resRaw), tc.maxLen, got, tc.rebased, FormatProgram(fl.resRaw))
			}
		})
	}
}

// TestFlowResidualLayout checks that jumps over more than 255 residual
// instructions go through trampolines: the residue of a program whose
// branch on the payload makes A known on one side only is two copies of
// a long body, the first of which the branch's false side jumps over.
func TestFlowResidualLayout(t *testing.T) {
	raw := []bpf.RawInstruction{{Op: bpfLdWAbs, K: 54}, {Op: bpfJeqK, K: 0x47455420}}
	for i := range 300 { // loads of the payload, which stay: they may abort
		raw = append(raw, bpf.RawInstruction{Op: bpfLdxMSH, K: uint32(54 + i%8)})
	}
	raw = append(raw, bpf.RawInstruction{Op: bpfRetA})
	m, err := Load(raw)
	if err != nil {
		t.Fatal(err)
	}
	c := flowCases(t, 4, LinkEthernet)
	var st flowStats
	for i := range c {
		if bad := compareFlow(t, m, &c[i], libpcap.Available, &st); bad != 0 {
			t.Fatalf("%d disagreements", bad)
		}
	}
	trampolines := 0
	fl, err := m.NewFlow(tcp4())
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range fl.resRaw {
		if in.Op == bpfJa {
			trampolines++
		}
	}
	if trampolines == 0 {
		t.Fatalf("no trampoline in the residual program of %d instructions:\n%s", len(fl.resRaw), FormatProgram(fl.resRaw))
	}
	t.Logf("%v; %d instructions and %d trampolines in the residual program on %v", &st, len(fl.resRaw), trampolines, tcp4())
}

// FuzzFlowResidual checks that a flow's verdict is the whole program's
// for random programs, flows and payloads.
func FuzzFlowResidual(f *testing.F) {
	f.Add(uint64(1), uint8(0), uint16(60), []byte("GET / HTTP/1.1"))
	f.Add(uint64(2), uint8(3), uint16(40), []byte{})
	f.Add(uint64(3), uint8(5), uint16(1500), []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, seed uint64, flow uint8, snap uint16, payload []byte) {
		r := rand.New(rand.NewPCG(seed, uint64(flow)))
		raw := randomProgram(r, 2+r.IntN(30))
		link := LinkEthernet
		if flow&1 != 0 {
			link = LinkRaw
		}
		p := FakePacket{Src: netip.MustParseAddrPort("10.0.0.1:40000"), Dst: netip.MustParseAddrPort("192.0.2.21:21"), Protocol: TCP, Seq: r.Uint32()}
		if flow&2 != 0 {
			p.Protocol = UDP
		}
		if flow&4 != 0 {
			p.Src, p.Dst = netip.MustParseAddrPort("[2001:db8::1]:53"), netip.MustParseAddrPort("[2001:db8::2]:5353")
		}
		if flow&8 != 0 && link == LinkEthernet {
			p.VLAN = &VLAN{ID: uint16(flow)}
		}
		m, err := Load(raw, WithLinkType(link), WithSnapLen(max(int(snap), 1)))
		if err != nil {
			return
		}
		fl, err := m.NewFlow(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err1 := fl.Match(payload)
		p.Payload = payload
		want, err2 := m.Match(p)
		if err1 != nil || err2 != nil || got != want {
			t.Fatalf("program:\n%sresidual:\n%son %v snap %d: Flow.Match = %v, %v; Matcher.Match = %v, %v",
				FormatProgram(raw), FormatProgram(fl.resRaw), p, snap, got, err1, want, err2)
		}
	})
}

// TestFlowResidualAllocations checks that matching a payload allocates
// nothing, whichever way the flow runs its residual program: fixed, on
// the payload alone (padded or not), on the whole frame.
func TestFlowResidualAllocations(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector or coverage")
	}
	for _, expr := range []string{"tcp dst port 21", getFilter, "len > 100", "ip[2:2] > 50", "tcp[16:2] > 0x8000"} {
		m := compileOrSkip(t, expr)
		fl, err := m.NewFlow(tcp4())
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, 3, 512} {
			payload := bytes.Repeat([]byte("GET "), 128)[:n]
			if a := testing.AllocsPerRun(100, func() { fl.Match(payload) }); a != 0 {
				t.Errorf("%q: Flow.Match of %d bytes allocates %v times (residual program:\n%s)", expr, n, a, FormatProgram(fl.resRaw))
			}
		}
	}
}

// TestFlowResidualBound checks that a program whose residue would grow
// exponentially, each branch on the payload leaving a different constant
// in scratch memory, makes a flow that runs the whole program, and gives
// its verdicts.
func TestFlowResidualBound(t *testing.T) {
	const k = 12
	var raw []bpf.RawInstruction
	for i := range k {
		raw = append(raw,
			bpf.RawInstruction{Op: bpfLdBAbs, K: uint32(54 + i)},
			bpf.RawInstruction{Op: bpfJeqK, K: 'G', Jt: 0, Jf: 3},
			bpf.RawInstruction{Op: bpfLdImm, K: 1},
			bpf.RawInstruction{Op: bpfSt, K: uint32(i)},
			bpf.RawInstruction{Op: bpfJa, K: 2},
			bpf.RawInstruction{Op: bpfLdImm, K: 2},
			bpf.RawInstruction{Op: bpfSt, K: uint32(i)})
	}
	raw = append(raw, bpf.RawInstruction{Op: bpfLdImm})
	for i := range k { // every M[i] is live to the end
		raw = append(raw, bpf.RawInstruction{Op: bpfLdxMem, K: uint32(i)}, bpf.RawInstruction{Op: bpfALU | bpfSrcX | bpfAdd})
	}
	raw = append(raw, bpf.RawInstruction{Op: bpfRetA})
	m, err := Load(raw)
	if err != nil {
		t.Fatal(err)
	}
	fl, err := m.NewFlow(tcp4())
	if err != nil {
		t.Fatal(err)
	}
	if fl.resRaw != nil {
		t.Fatalf("a residual program of %d instructions for a whole program of %d", len(fl.resRaw), len(raw))
	}
	c := flowCases(t, 4, LinkEthernet)
	c = append(c, flowCase{p: tcp4(), payloads: [][]byte{[]byte("GGGGGGGGGGGG"), []byte("GxGxGxGxGxGx"), nil}})
	var st flowStats
	for i := range c {
		if bad := compareFlow(t, m, &c[i], false, &st); bad != 0 {
			t.Fatalf("%d disagreements", bad)
		}
	}
	t.Logf("%v", &st)
}
