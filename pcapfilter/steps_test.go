package pcapfilter_test

// How many instructions the Go compiler's programs execute, against
// libpcap's optimised ones, counted by an interpreter of the test's own
// that is checked against libpcap's on every run.

import (
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/headlessbpf/bpfmatch/internal/libpcap"
)

// dtCountRun runs prog on the first caplen bytes of data, with wire length
// wire, as libpcap's pcap_offline_filter does, and returns what it
// returns and how many instructions it executed. ok is false when it
// stopped after budget instructions without returning.
func dtCountRun(prog []bpf.RawInstruction, data []byte, caplen, wire uint32, budget int) (ret uint32, steps int, ok bool) {
	ret, steps, ok, _ = dtTraceRun(prog, data, caplen, wire, budget)
	return ret, steps, ok
}

// dtTraceRun is countRun that also reports whether the program loaded a
// scratch memory word it had not stored, which libpcap's interpreter
// leaves uninitialised: its verdict is then undefined.
func dtTraceRun(prog []bpf.RawInstruction, data []byte, caplen, wire uint32, budget int) (ret uint32, steps int, ok, uninit bool) {
	var a, x uint32
	var mem [16]uint32
	var stored uint16
	p := data[:caplen]
	load := func(off uint64, n uint64) (uint32, bool) {
		if off+n > uint64(len(p)) {
			return 0, false
		}
		switch n {
		case 1:
			return uint32(p[off]), true
		case 2:
			return uint32(binary.BigEndian.Uint16(p[off:])), true
		}
		return binary.BigEndian.Uint32(p[off:]), true
	}
	sizes := map[uint16]uint64{0x00: 4, 0x08: 2, 0x10: 1}
	pc := 0
	for steps < budget {
		if pc < 0 || pc >= len(prog) {
			return 0, steps, true, uninit
		}
		in := prog[pc]
		steps++
		pc++
		k := in.K
		switch in.Op & 0x07 {
		case 0x00: // BPF_LD
			switch in.Op & 0xe0 {
			case 0x00:
				a = k
			case 0x20: // BPF_ABS
				v, in := load(uint64(k), sizes[in.Op&0x18])
				if !in {
					return 0, steps, true, uninit
				}
				a = v
			case 0x40: // BPF_IND
				v, in := load(uint64(x)+uint64(k), sizes[in.Op&0x18])
				if !in {
					return 0, steps, true, uninit
				}
				a = v
			case 0x60:
				uninit = uninit || stored&(1<<(k&15)) == 0
				a = mem[k&15]
			case 0x80:
				a = wire
			default:
				return 0, steps, true, uninit
			}
		case 0x01: // BPF_LDX
			switch in.Op & 0xe0 {
			case 0x00:
				x = k
			case 0x60:
				uninit = uninit || stored&(1<<(k&15)) == 0
				x = mem[k&15]
			case 0x80:
				x = wire
			case 0xa0: // BPF_MSH
				v, in := load(uint64(k), 1)
				if !in {
					return 0, steps, true, uninit
				}
				x = (v & 0xf) << 2
			default:
				return 0, steps, true, uninit
			}
		case 0x02:
			mem[k&15] = a
			stored |= 1 << (k & 15)
		case 0x03:
			mem[k&15] = x
			stored |= 1 << (k & 15)
		case 0x04: // BPF_ALU
			v := k
			if in.Op&0x08 != 0 {
				v = x
			}
			switch in.Op & 0xf0 {
			case 0x00:
				a += v
			case 0x10:
				a -= v
			case 0x20:
				a *= v
			case 0x30:
				if v == 0 {
					return 0, steps, true, uninit
				}
				a /= v
			case 0x90:
				if v == 0 {
					return 0, steps, true, uninit
				}
				a %= v
			case 0x40:
				a |= v
			case 0x50:
				a &= v
			case 0xa0:
				a ^= v
			case 0x60:
				if in.Op&0x08 == 0 {
					v &= 31 // libpcap shifts by k as the CPU does
				}
				a <<= v // Go, as libpcap for x, gives 0 for 32 or more
			case 0x70:
				if in.Op&0x08 == 0 {
					v &= 31
				}
				a >>= v
			case 0x80:
				a = -a
			default:
				return 0, steps, true, uninit
			}
		case 0x05: // BPF_JMP
			v := k
			if in.Op&0x08 != 0 {
				v = x
			}
			var cond bool
			switch in.Op & 0xf0 {
			case 0x00: // BPF_JA, whose offset may wrap to go back
				pc = int(uint32(pc) + k)
				continue
			case 0x10:
				cond = a == v
			case 0x20:
				cond = a > v
			case 0x30:
				cond = a >= v
			case 0x40:
				cond = a&v != 0
			default:
				return 0, steps, true, uninit
			}
			if cond {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case 0x06: // BPF_RET
			if in.Op&0x18 == 0x10 {
				return a, steps, true, uninit
			}
			return k, steps, true, uninit
		case 0x07: // BPF_MISC
			if in.Op&0xf8 == 0 {
				x = a
			} else {
				a = x
			}
		}
	}
	return 0, steps, false, uninit
}

// dtMayReadUninit reports whether some path through prog loads a scratch
// memory word that it has not stored on that path. Programs that jump
// backwards are assumed to.
func dtMayReadUninit(prog []bpf.RawInstruction) bool {
	if dtJumpsBack(prog) {
		return true
	}
	// stored[pc] is the set of words stored on every path to pc.
	stored := make([]uint16, len(prog)+1)
	reached := make([]bool, len(prog)+1)
	reached[0] = true
	flow := func(to int, set uint16) {
		if to > len(prog) {
			return
		}
		if !reached[to] {
			reached[to], stored[to] = true, set
		} else {
			stored[to] &= set
		}
	}
	for pc, in := range prog {
		if !reached[pc] {
			continue
		}
		set := stored[pc]
		switch in.Op {
		case 0x60, 0x61: // ld M[k], ldx M[k]
			if set&(1<<(in.K&15)) == 0 {
				return true
			}
		case 0x02, 0x03: // st, stx
			set |= 1 << (in.K & 15)
		}
		switch {
		case in.Op&0x07 == 0x06: // ret
		case in.Op == 0x05: // ja
			flow(pc+1+int(in.K), set)
		case in.Op&0x07 == 0x05:
			flow(pc+1+int(in.Jt), set)
			flow(pc+1+int(in.Jf), set)
		default:
			flow(pc+1, set)
		}
	}
	return false
}

// TestCountRunEqualsLibpcapDifferential runs the counting interpreter and
// libpcap's on programs of every instruction, with operands at the edges
// (shifts of 32 and more, division by 0, loads at and past the captured
// bytes), on packets of several lengths.
func TestCountRunEqualsLibpcapDifferential(t *testing.T) {
	dtLibpcapOrSkip(t)
	var progs [][]bpf.RawInstruction
	ks := []uint32{0, 1, 3, 4, 5, 13, 31, 32, 33, 198, 0x7fffffff, 0xfffffffe, 0xffffffff}
	for op := range dtImageForms {
		if op&0x07 == 0x05 || op&0x07 == 0x06 {
			continue // jumps and returns below
		}
		for _, k := range ks {
			if (op == 0x02 || op == 0x03) && k > 15 || (op == 0x60 || op == 0x61) && k != 3 && k != 4 {
				continue // memory past M[15], or not stored (libpcap leaves it uninitialised)
			}
			for _, x := range []uint32{0, 3, 32, 200, 0xffffffff} {
				progs = append(progs, []bpf.RawInstruction{
					{Op: 0x01, K: x},                   // ldx #x
					{Op: 0x00, K: 0x8f0ff0f1},          // ld #...
					{Op: 0x02, K: 3}, {Op: 0x03, K: 4}, // st M[3], stx M[4]
					{Op: op, K: k},
					{Op: 0x15, Jt: 1, K: 0}, // jeq #0: to ret #1
					{Op: 0x16},              // ret a
					{Op: 0x06, K: 1},        // ret #1
				})
			}
		}
	}
	for _, op := range []uint16{0x15, 0x25, 0x35, 0x45, 0x1d, 0x2d, 0x3d, 0x4d} {
		for _, k := range ks {
			progs = append(progs, []bpf.RawInstruction{
				{Op: 0x01, K: 33}, {Op: 0x20, K: 0}, {Op: op, Jt: 1, K: k}, {Op: 0x06, K: 7}, {Op: 0x06, K: 9},
			})
		}
	}
	var data [80]byte
	for i := range data {
		data[i] = byte(i*37 + 11)
	}
	var runs, failures int
	for _, prog := range progs {
		if !libpcap.Validate(prog) {
			continue
		}
		for _, caplen := range []uint32{0, 1, 3, 14, 15, 17, 34, 80} {
			for _, wire := range []uint32{caplen, 1500} {
				runs++
				got, _, ok := dtCountRun(prog, data[:], caplen, wire, 100)
				want := libpcap.Filter(prog, data[:], caplen, wire)
				if !ok || got != want {
					failures++
					if failures <= 10 {
						t.Errorf("caplen %d wire %d: the counting interpreter returns %#x, libpcap %#x, for\n%s", caplen, wire, got, want, dtListing(prog))
					}
				}
			}
		}
	}
	t.Logf("counting interpreter: compared %d runs of %d programs with libpcap's interpreter, %d differ", runs, len(progs), failures)
}

// dtPercentile returns the p-th percentile (0 to 100) of sorted values.
func dtPercentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p / 100 * float64(len(sorted)-1))
	return sorted[i]
}

// TestInstructionsExecutedDifferential counts, over every corpus
// expression and packet of its link type, the instructions the Go
// compiler's program and libpcap's optimised one execute, and reports the
// ratios; it fails when the Go programs execute more at the median or the
// 90th percentile, or are longer at the median. The counting interpreter
// must give libpcap's verdict on every run, for both programs.
func TestInstructionsExecutedDifferential(t *testing.T) {
	dtLibpcapOrSkip(t)
	stride := 1
	if dtRaceEnabled || testing.Short() {
		stride = 7
		t.Logf("short or race mode: counting on one packet in %d", stride)
	}
	var runs, libRuns, mismatches, goSteps, libSteps int
	var ratios, lenRatios []float64
	var goLen, libLen int
	fail := func(msg string) {
		mismatches++
		if mismatches <= dtMaxReports {
			t.Error(msg)
		}
	}
	for _, link := range dtLinkTypes {
		pkts := dtPacketsFor(t, link, 0).packets
		if len(pkts) == 0 {
			continue
		}
		for _, e := range dtCorpusFilters(t, dtListsFor(link)...) {
			p, err := dtCompilePair(e.expr, e.where(), link)
			if err != nil {
				t.Error(err)
				continue
			}
			if p.libErr != nil {
				continue
			}
			if p.goM != nil {
				lenRatios = append(lenRatios, float64(len(p.goProg))/float64(len(p.lib)))
				goLen += len(p.goProg)
				libLen += len(p.lib)
			}
			for i := 0; i < len(pkts); i += stride {
				pk := pkts[i]
				caplen := uint32(len(pk.data))
				counts := [2]int{-1, -1}
				progs := [][]bpf.RawInstruction{p.lib, p.goProg}
				if p.goM == nil {
					progs = progs[:1]
				}
				for j, prog := range progs {
					ret, n, ok := dtCountRun(prog, pk.data, caplen, pk.wire, dtLoopBudget)
					if !ok {
						fail(fmt.Sprintf("%q for %v: program %d runs more than %d instructions on %v", p.expr, link, j, dtLoopBudget, pk))
						continue
					}
					libRuns++
					if want := libpcap.Filter(prog, pk.data, caplen, pk.wire); ret != want {
						fail(fmt.Sprintf("%q for %v: the counting interpreter returns %d, libpcap %d, on %v for\n%s",
							p.expr, link, ret, want, pk, dtListing(prog)))
					}
					counts[j] = n
				}
				if counts[0] <= 0 || counts[1] < 0 {
					continue
				}
				runs++
				libSteps += counts[0]
				goSteps += counts[1]
				ratios = append(ratios, float64(counts[1])/float64(counts[0]))
			}
		}
	}
	t.Logf("instructions executed: the counting interpreter compared with libpcap's on %d runs, %d differ", libRuns, mismatches)
	if runs == 0 {
		t.Fatal("no corpus expression compiled with both compilers: no instructions counted for the Go compiler")
	}
	slices.Sort(ratios)
	slices.Sort(lenRatios)
	t.Logf("instructions executed: compared %d runs (expression x packet) of both compilers' programs", runs)
	t.Logf("instructions executed, Go/libpcap optimised: median %.2f, 90th percentile %.2f, total %d/%d = %.2f",
		dtPercentile(ratios, 50), dtPercentile(ratios, 90), goSteps, libSteps, float64(goSteps)/float64(libSteps))
	t.Logf("program length, Go/libpcap optimised, over %d programs: median %.2f, 90th percentile %.2f, total %d/%d = %.2f",
		len(lenRatios), dtPercentile(lenRatios, 50), dtPercentile(lenRatios, 90), goLen, libLen, float64(goLen)/float64(libLen))
	// The optimiser's targets: no more instructions executed than
	// libpcap's optimised programs at the median and the 90th percentile,
	// and programs no longer at the median.
	for _, f := range []struct {
		what string
		got  float64
	}{
		{"instructions executed, median", dtPercentile(ratios, 50)},
		{"instructions executed, 90th percentile", dtPercentile(ratios, 90)},
		{"program length, median", dtPercentile(lenRatios, 50)},
	} {
		if f.got > 1 {
			t.Errorf("%s: Go/libpcap optimised is %.3f, above the target of 1.00", f.what, f.got)
		}
	}
}
