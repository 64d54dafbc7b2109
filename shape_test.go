package bpfmatch

import (
	"math/rand/v2"
	"testing"

	"golang.org/x/net/bpf"
)

// runShape runs the program Match runs on p, the residual of its shape
// where there is one, and returns what it returns, with the number of
// instructions of the program run.
func runShape(t *testing.T, m *Matcher, p *FakePacket) (ret uint32, insns int) {
	t.Helper()
	var ran *program
	ret, err := m.runPacket(p, &ran)
	if err != nil {
		t.Fatalf("%v: %v", p, err)
	}
	return ret, len(ran.insns)
}

// shapeSnaps are the snap lengths the residual programs are tested with:
// the default, and some that cut the headers of some shapes.
var shapeSnaps = []int{DefaultSnapLen, 96, 64, 58, 54, 40, 23, 14, 1}

// TestShapeCorpus compares the verdicts of the residual programs Match
// runs with those of the whole programs on the same packets' bytes, for
// every corpus expression, generated packets of every shape and snap
// lengths that cut their headers.
func TestShapeCorpus(t *testing.T) {
	sets := []struct {
		link  LinkType
		files []string
	}{
		{LinkEthernet, []string{"libpcap-ethernet.txt", "realworld.txt"}},
		{LinkRaw, []string{"libpcap-raw.txt"}},
	}
	for _, set := range sets {
		// Besides the corpus's, filters that are one test of a length or
		// a checksum, which Match computes only when read.
		exprs := append(corpusFilters(t, set.files...), getFilter, "tcp dst port 21", "tcp[16] > 0x80", "tcp[17] > 0x80",
			"tcp[16:2] > 0x8000", "udp[6:2] > 0x8000", "udp[7] > 0x80", "udp[4:2] > 100", "ip[10:2] > 0x8000", "ip[11] > 0x80",
			"ip[2:2] > 100", "ip6[4:2] > 100", "ip6[5] > 100", "ip[10:4] > 0x80000000", "tcp[17] != 0", "udp[7] != 0", "ip[11] != 0", "ip6[5] != 0")
		packets := generatedPackets(200, set.link)
		frames := make([][]byte, len(packets))
		for i, p := range packets {
			var err error
			if frames[i], err = p.AppendFrame(nil, set.link); err != nil {
				t.Fatalf("%v: %v", p, err)
			}
		}
		var compared, matched, specialised, whole, residualLen, wholeLen int
		for _, expr := range exprs {
			for _, snap := range shapeSnaps {
				m, err := Compile(expr, WithLinkType(set.link), WithSnapLen(snap))
				if err != nil {
					continue
				}
				for i := range packets {
					p := &packets[i]
					got, n := runShape(t, m, p)
					want, err := m.MatchFrame(frames[i], len(frames[i]))
					if err != nil {
						t.Fatal(err)
					}
					if (got != 0) != want {
						t.Errorf("%v snap %d: %q on %v: the residual program says %v, the whole program %v\nframe %x",
							set.link, snap, expr, p, got != 0, want, frames[i])
					}
					if ok, err := m.Match(*p); err != nil || ok != want {
						t.Errorf("%v snap %d: %q on %v: Match = %v, %v; the whole program says %v", set.link, snap, expr, p, ok, err, want)
					}
					compared++
					if want {
						matched++
					}
					if n < len(m.prog.insns) {
						specialised++
					}
					residualLen += n
					wholeLen += len(m.prog.insns)
				}
				if m.shapes == nil {
					whole++
				}
			}
		}
		t.Logf("%v: %d expressions x %d packets x %d snap lengths: %d comparisons, %d matches, %d on a shorter residual program (instructions: %d residual, %d whole); %d programs not specialised",
			set.link, len(exprs), len(packets), len(shapeSnaps), compared, matched, specialised, residualLen, wholeLen, whole)
		if specialised < compared/2 {
			t.Errorf("%v: only %d of %d comparisons ran a shorter residual program", set.link, specialised, compared)
		}
	}
}

// TestShapeRandomPrograms compares the return values of the residual
// programs with the reference interpreter's on the whole programs, for
// random programs that read the headers of fake packets of every shape
// and compute with what they read.
func TestShapeRandomPrograms(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 28))
	packets := generatedPackets(40, LinkEthernet)
	var compared, shorter int
	// Programs whose paths meet with different knowledge, then the
	// random ones.
	written := [][]bpf.RawInstruction{
		// M[0] is 0 on one path, a byte of the source address on the
		// other, which may be 0 too.
		prog(stmt(bpfLdBAbs, 26), jmp(bpfJeqK, 10, 0, 3), stmt(bpfLdImm, 0), stmt(bpfSt, 0), jmp(bpfJa, 2, 0, 0),
			stmt(bpfLdBAbs, 27), stmt(bpfSt, 0), stmt(bpfLdMem, 0), retA()),
		// X is 20 on one path, unknown on the other.
		prog(stmt(bpfLdBAbs, 30), jmp(bpfJgtK, 100, 0, 2), stmt(bpfLdxMSH, 14), jmp(bpfJa, 1, 0, 0),
			stmt(bpfLdxMSH, 29), stmt(bpfLdHInd, 16), retA()),
	}
	for i := range 3000 + len(written) {
		var raw []bpf.RawInstruction
		if i < len(written) {
			raw = written[i]
		} else {
			raw = shapeGenProgram(r)
		}
		for j := range 4 {
			link := []LinkType{LinkEthernet, LinkRaw}[j%2]
			snap := DefaultSnapLen
			if j >= 2 {
				snap = shapeSnaps[r.IntN(len(shapeSnaps))]
			}
			m, err := Load(raw, WithLinkType(link), WithSnapLen(snap))
			if err != nil {
				t.Fatalf("%v\n%s", err, FormatProgram(raw))
			}
			for i := range packets {
				p := packets[i]
				if link == LinkRaw {
					p.VLAN = nil
				}
				data, err := p.AppendFrame(nil, link)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := refRun(raw, data, uint32(min(len(data), snap)), uint32(len(data)))
				got, n := runShape(t, m, &p)
				if got != want {
					t.Fatalf("%v snap %d on %v: the residual program returns %#x, the whole program %#x\nprogram:\n%sframe %x",
						link, snap, p, got, want, FormatProgram(raw), data)
				}
				compared++
				if n < len(m.prog.insns) {
					shorter++
				}
			}
		}
	}
	t.Logf("%d comparisons, %d on a shorter residual program", compared, shorter)
	if shorter < compared/4 {
		t.Errorf("only %d of %d comparisons ran a shorter residual program: the random programs do not exercise the evaluation", shorter, compared)
	}
}

// shapeGenProgram returns a random program with forward jumps only that
// loads mostly from the offsets of header fields, absolute and from X,
// and computes, stores and tests what it loads.
func shapeGenProgram(r *rand.Rand) []bpf.RawInstruction {
	n := 2 + r.IntN(30)
	codes := []uint16{bpfLdWAbs, bpfLdHAbs, bpfLdBAbs, bpfLdWInd, bpfLdHInd, bpfLdBInd, bpfLdxMSH, bpfLdxMSH,
		bpfLdLen, bpfLdxLen, bpfLdImm, bpfLdxImm, bpfLdMem, bpfLdxMem, bpfSt, bpfStx, bpfJa,
		bpfJeqK, bpfJeqK, bpfJeqK, bpfJeqX, bpfJgtK, bpfJgtX, bpfJgeK, bpfJgeX, bpfJsetK, bpfJsetX,
		bpfALU | bpfNeg, bpfTax, bpfTax, bpfTxa, bpfRetK, bpfRetA}
	for _, op := range []uint16{bpfAdd, bpfSub, bpfMul, bpfDiv, bpfOr, bpfAnd, bpfLsh, bpfRsh, bpfMod, bpfXor} {
		codes = append(codes, bpfALU|op, bpfALU|bpfSrcX|op)
	}
	// The offsets of the fields a shape fixes, and others.
	offsets := []uint32{12, 14, 16, 17, 18, 20, 21, 22, 23, 24, 26, 27, 30, 32, 34, 36, 38, 40, 46, 47, 50, 52, 54, 56, 58, 60, 66, 0, 6, 0xffffffff}
	values := []uint32{0, 1, 6, 17, 20, 21, 40, 0x45, 0x50, 0x60, 0x800, 0x86dd, 0x8100, 0x4000, 0x1fff, 0xf0, 0x0f, 0x60000000}
	out := make([]bpf.RawInstruction, 0, n+1)
	for i := range n {
		code := codes[r.IntN(len(codes))]
		in := bpf.RawInstruction{Op: code}
		left := n - i - 1
		switch code {
		case bpfLdWAbs, bpfLdHAbs, bpfLdBAbs, bpfLdxMSH:
			in.K = offsets[r.IntN(len(offsets))]
			if code == bpfLdxMSH && r.IntN(2) == 0 {
				in.K = []uint32{14, 18, 0}[r.IntN(3)]
			}
		case bpfLdWInd, bpfLdHInd, bpfLdBInd:
			in.K = []uint32{0, 2, 6, 9, 12, 14, 16, 26, 27, 0xfffffff0}[r.IntN(10)]
		case bpfLdMem, bpfLdxMem, bpfSt, bpfStx:
			in.K = r.Uint32N(4)
		case bpfJa:
			if left == 0 {
				in = retA()
				break
			}
			in.K = r.Uint32N(uint32(left))
		case bpfJeqK, bpfJeqX, bpfJgtK, bpfJgtX, bpfJgeK, bpfJgeX, bpfJsetK, bpfJsetX:
			if left == 0 {
				in = retK(r.Uint32N(3))
				break
			}
			in.K = values[r.IntN(len(values))]
			in.Jt, in.Jf = uint8(r.IntN(min(left, 4))), uint8(r.IntN(min(left, 4)))
		case bpfALU | bpfDiv, bpfALU | bpfMod:
			in.K = max(values[r.IntN(len(values))], 1)
		case bpfALU | bpfLsh, bpfALU | bpfRsh:
			in.K = r.Uint32N(34)
		case bpfRetK:
			in.K = r.Uint32N(3)
		default:
			in.K = values[r.IntN(len(values))]
		}
		out = append(out, in)
	}
	if last := out[len(out)-1]; last.Op != bpfRetK && last.Op != bpfRetA {
		out = append(out, retA())
	}
	return out
}

// TestShapeBenchmarkFilters checks that the residual programs of
// BenchmarkVersus's filters on an IPv4 TCP packet in an Ethernet frame
// are what is left of them once the shape is known: a load of the
// destination port or of the payload's first word, a test, two returns.
func TestShapeBenchmarkFilters(t *testing.T) {
	for _, expr := range []string{"tcp dst port 21", getFilter} {
		m := MustCompile(expr)
		p := tcp4()
		ret, n := runShape(t, m, &p)
		if ret == 0 || n > 4 {
			t.Errorf("%q on %v: the residual program has %d instructions and returns %d, want at most 4 and a match\nwhole program:\n%s",
				expr, p, n, ret, FormatProgram(m.raw))
		}
	}
}

// TestRunOneTest compares programs that are one test, which run without
// the interpreter's loop, with the reference interpreter, for loads on
// either side of the end of the header part of a frame and of the
// captured bytes.
func TestRunOneTest(t *testing.T) {
	data := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
	var compared int
	for _, code := range []uint16{bpfLdBAbs, bpfLdHAbs, bpfLdWAbs} {
		for _, test := range []struct {
			code uint16
			k    func(v uint32) uint32
		}{
			{bpfJeqK, func(v uint32) uint32 { return v }},
			{bpfJeqK, func(v uint32) uint32 { return v + 1 }},
			{bpfJsetK, func(v uint32) uint32 { return 1 }},
			{bpfJgeK, func(v uint32) uint32 { return v }},
			{bpfJgeK, func(v uint32) uint32 { return v + 1 }},
		} {
			for off := range uint32(len(data) + 2) {
				v, _ := refLoad(data, off, code)
				raw := prog(stmt(code, off), jmp(test.code, test.k(v), 0, 1), retK(7), retK(3))
				p, err := newProgram(raw)
				if err != nil {
					t.Fatal(err)
				}
				if !p.oneTest && (code == bpfLdHAbs || test.code == bpfJeqK) {
					t.Fatalf("not run as one test:\n%s", FormatProgram(raw))
				}
				for caplen := uint32(0); caplen <= uint32(len(data)); caplen++ {
					ref, _ := refRun(raw, data, caplen, uint32(len(data)))
					for _, split := range []int{0, 1, 9, 10, 11, 12, len(data)} {
						for _, lazy := range [][2]uint32{{0, 0}, {10, 12}} {
							f := frame{hdr: data[:split], payload: data[split:], caplen: caplen, wirelen: uint32(len(data)),
								lazyLo: lazy[0], lazyHi: lazy[1], lazy: &header{}}
							if lazy[1] > uint32(split) {
								f.lazyLo, f.lazyHi, f.lazy = 0, 0, nil
							}
							if got := p.run(&f); got != ref {
								t.Errorf("split %d, caplen %d, lazy %v: %d, the reference %d\n%s", split, caplen, lazy, got, ref, FormatProgram(raw))
							}
							compared++
						}
					}
				}
			}
		}
	}
	t.Logf("%d comparisons", compared)
}

// refLoad is what a load of code at off reads from data, if it can.
func refLoad(data []byte, off uint32, code uint16) (uint32, bool) {
	n := map[uint16]uint32{bpfLdBAbs: 1, bpfLdHAbs: 2, bpfLdWAbs: 4}[code]
	if uint64(off)+uint64(n) > uint64(len(data)) {
		return 0, false
	}
	return be(data[off : off+n]), true
}
