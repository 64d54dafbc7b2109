package bpfmatch

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
)

// execOracle runs a program with libpcap's pcap_offline_filter on data, of
// which caplen bytes were captured; nil without cgo, where tests check
// against their expected values only.
var execOracle func(raw []bpf.RawInstruction, data []byte, caplen, wirelen uint32) uint32

// Instruction builders for hand-written programs.
func stmt(code uint16, k uint32) bpf.RawInstruction { return bpf.RawInstruction{Op: code, K: k} }
func jmp(code uint16, k uint32, jt, jf uint8) bpf.RawInstruction {
	return bpf.RawInstruction{Op: code, Jt: jt, Jf: jf, K: k}
}
func retA() bpf.RawInstruction         { return stmt(bpfRetA, 0) }
func retK(k uint32) bpf.RawInstruction { return stmt(bpfRetK, k) }
func alu(op uint16, k uint32) bpf.RawInstruction {
	return stmt(bpfALU|op, k)
}
func aluX(op uint16) bpf.RawInstruction { return stmt(bpfALU|bpfSrcX|op, 0) }

// prog joins instructions, and slices of them, into one program.
func prog(parts ...any) []bpf.RawInstruction {
	var out []bpf.RawInstruction
	for _, p := range parts {
		switch p := p.(type) {
		case bpf.RawInstruction:
			out = append(out, p)
		case []bpf.RawInstruction:
			out = append(out, p...)
		default:
			panic(fmt.Sprintf("prog: %T", p))
		}
	}
	return out
}

// ldAX returns instructions setting A to a and X to x.
func ldAX(a, x uint32) []bpf.RawInstruction {
	return []bpf.RawInstruction{stmt(bpfLdImm, a), stmt(bpfLdxImm, x)}
}

// seq16 is the packet most cases run on: bytes 1 to 16.
var seq16 = []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}

type execCase struct {
	name string
	prog []bpf.RawInstruction
	pkt  []byte // nil means seq16
	// caplen is len(pkt) minus trunc; wirelen is wire, or len(pkt) if 0.
	trunc int
	wire  uint32
	want  uint32
	// noOracle says why libpcap cannot run the case.
	noOracle string
}

func execCases() []execCase {
	const (
		ldW, ldH, ldB    = bpfLdWAbs, bpfLdHAbs, bpfLdBAbs
		ldWI, ldHI, ldBI = bpfLdWInd, bpfLdHInd, bpfLdBInd
	)
	return []execCase{
		// Absolute loads, and their bounds.
		{name: "ldb first", prog: prog(stmt(ldB, 0), retA()), want: 1},
		{name: "ldb last", prog: prog(stmt(ldB, 15), retA()), want: 16},
		{name: "ldb one past", prog: prog(stmt(ldB, 16), retK(7)), want: 0},
		{name: "ldh", prog: prog(stmt(ldH, 3), retA()), want: 0x0405},
		{name: "ldh at end", prog: prog(stmt(ldH, 14), retA()), want: 0x0f10},
		{name: "ldh one past", prog: prog(stmt(ldH, 15), retK(7)), want: 0},
		{name: "ld", prog: prog(stmt(ldW, 1), retA()), want: 0x02030405},
		{name: "ld at end", prog: prog(stmt(ldW, 12), retA()), want: 0x0d0e0f10},
		{name: "ld one past", prog: prog(stmt(ldW, 13), retK(7)), want: 0},
		{name: "ld k max", prog: prog(stmt(ldW, 0xffffffff), retK(7)), want: 0},
		{name: "ld k wraps", prog: prog(stmt(ldW, 0xfffffffe), retK(7)), want: 0},
		{name: "ldh k max", prog: prog(stmt(ldH, 0xffffffff), retK(7)), want: 0},
		{name: "ldb k max", prog: prog(stmt(ldB, 0xffffffff), retK(7)), want: 0},
		{name: "ldb vlan tag aux", prog: prog(stmt(ldB, skfAdOff+44), retK(7)), want: 0},
		{name: "ldb vlan present aux", prog: prog(stmt(ldB, skfAdOff+48), retK(7)), want: 0},
		{name: "ld truncated ok", prog: prog(stmt(ldW, 8), retA()), trunc: 4, want: 0x090a0b0c},
		{name: "ld truncated past caplen", prog: prog(stmt(ldW, 9), retK(7)), trunc: 4, want: 0},
		{name: "ldb caplen 0", prog: prog(stmt(ldB, 0), retK(7)), trunc: 16, want: 0},
		{name: "ret without load caplen 0", prog: prog(retK(7)), trunc: 16, want: 7},
		{name: "empty packet", prog: prog(stmt(ldB, 0), retK(7)), pkt: []byte{}, want: 0},

		// Indirect loads: X+k, overflow-safe.
		{name: "ldb x+k", prog: prog(ldAX(0, 4), stmt(ldBI, 3), retA()), want: 8},
		{name: "ldh x+k at end", prog: prog(ldAX(0, 10), stmt(ldHI, 4), retA()), want: 0x0f10},
		{name: "ldh x+k one past", prog: prog(ldAX(0, 11), stmt(ldHI, 4), retK(7)), want: 0},
		{name: "ld x+k at end", prog: prog(ldAX(0, 2), stmt(ldWI, 10), retA()), want: 0x0d0e0f10},
		{name: "ld x+k one past", prog: prog(ldAX(0, 2), stmt(ldWI, 11), retK(7)), want: 0},
		{name: "ld x max + 1 wraps to 0", prog: prog(ldAX(0, 0xffffffff), stmt(ldWI, 1), retK(7)), want: 0},
		{name: "ldh x 1 + k max wraps to 0", prog: prog(ldAX(0, 1), stmt(ldHI, 0xffffffff), retK(7)), want: 0},
		{name: "ldb x+k wraps to 3", prog: prog(ldAX(0, 0xfffffff0), stmt(ldBI, 0x13), retK(7)), want: 0},
		{name: "ldb x+k both max", prog: prog(ldAX(0, 0xffffffff), stmt(ldBI, 0xffffffff), retK(7)), want: 0},
		{name: "ldb x+k truncated", prog: prog(ldAX(0, 6), stmt(ldBI, 6), retK(7)), trunc: 4, want: 0},

		// ldxb 4*([k]&0xf).
		{name: "msh", prog: prog(stmt(bpfLdxMSH, 0), stmt(bpfTxa, 0), retA()), want: 4},
		{name: "msh high nibble ignored", prog: prog(stmt(bpfLdxMSH, 0), stmt(bpfTxa, 0), retA()),
			pkt: []byte{0xf5}, want: 20},
		{name: "msh one past", prog: prog(stmt(bpfLdxMSH, 16), retK(7)), want: 0},
		{name: "msh then ind", prog: prog(stmt(bpfLdxMSH, 1), stmt(ldBI, 2), retA()), want: 11},

		// Length, immediates, memory.
		{name: "ld len", prog: prog(stmt(bpfLdLen, 0), retA()), wire: 1514, want: 1514},
		{name: "ld len truncated", prog: prog(stmt(bpfLdLen, 0), retA()), trunc: 10, wire: 100, want: 100},
		{name: "ldx len", prog: prog(stmt(bpfLdxLen, 0), stmt(bpfTxa, 0), retA()), wire: 70000, want: 70000},
		{name: "ld imm", prog: prog(stmt(bpfLdImm, 0xdeadbeef), retA()), want: 0xdeadbeef},
		{name: "ldx imm", prog: prog(stmt(bpfLdxImm, 0xfeedface), stmt(bpfTxa, 0), retA()), want: 0xfeedface},
		{name: "st ld mem", prog: prog(stmt(bpfLdImm, 5), stmt(bpfSt, 3), stmt(bpfLdImm, 0),
			stmt(bpfLdMem, 3), retA()), want: 5},
		{name: "stx ldx mem 15", prog: prog(ldAX(1, 9), stmt(bpfStx, 15), stmt(bpfLdxImm, 0),
			stmt(bpfLdxMem, 15), stmt(bpfTxa, 0), retA()), want: 9},
		{name: "mem words distinct", prog: prog(stmt(bpfLdImm, 1), stmt(bpfSt, 0), stmt(bpfLdImm, 2), stmt(bpfSt, 1),
			stmt(bpfLdMem, 0), stmt(bpfLdxMem, 1), aluX(bpfLsh), retA()), want: 4},
		{name: "zeroed mem", prog: prog(stmt(bpfLdMem, 7), retA()), want: 0,
			noOracle: "libpcap 1.10 leaves scratch memory uninitialised"},

		// ALU with constants.
		{name: "add", prog: prog(ldAX(0xfffffffe, 0), alu(bpfAdd, 3), retA()), want: 1},
		{name: "sub wraps", prog: prog(ldAX(1, 0), alu(bpfSub, 2), retA()), want: 0xffffffff},
		{name: "mul wraps", prog: prog(ldAX(0x10000, 0), alu(bpfMul, 0x10001), retA()), want: 0x10000},
		{name: "div", prog: prog(ldAX(100, 0), alu(bpfDiv, 7), retA()), want: 14},
		{name: "mod", prog: prog(ldAX(100, 0), alu(bpfMod, 7), retA()), want: 2},
		{name: "and", prog: prog(ldAX(0xff00ff00, 0), alu(bpfAnd, 0x0ff00ff0), retA()), want: 0x0f000f00},
		{name: "or", prog: prog(ldAX(0xff00ff00, 0), alu(bpfOr, 0x0ff00ff0), retA()), want: 0xfff0fff0},
		{name: "xor", prog: prog(ldAX(0xff00ff00, 0), alu(bpfXor, 0x0ff00ff0), retA()), want: 0xf0f0f0f0},
		{name: "lsh 31", prog: prog(ldAX(3, 0), alu(bpfLsh, 31), retA()), want: 0x80000000},
		{name: "rsh 31", prog: prog(ldAX(0x80000001, 0), alu(bpfRsh, 31), retA()), want: 1},
		// libpcap 1.10 shifts by k modulo 32 on amd64 and arm64 (C leaves
		// it undefined); so do we.
		{name: "lsh 32", prog: prog(ldAX(0x80000001, 0), alu(bpfLsh, 32), retA()), want: 0x80000001},
		{name: "lsh 33", prog: prog(ldAX(0x80000001, 0), alu(bpfLsh, 33), retA()), want: 2},
		{name: "rsh 36", prog: prog(ldAX(0x80000001, 0), alu(bpfRsh, 36), retA()), want: 0x08000000},
		{name: "neg", prog: prog(ldAX(7, 0), stmt(bpfALU|bpfNeg, 0), retA()), want: 0xfffffff9},
		{name: "neg 0", prog: prog(ldAX(0, 0), stmt(bpfALU|bpfNeg, 0), retA()), want: 0},
		{name: "neg min", prog: prog(ldAX(0x80000000, 0), stmt(bpfALU|bpfNeg, 0), retA()), want: 0x80000000},

		// ALU with X.
		{name: "add x", prog: prog(ldAX(0xfffffffe, 3), aluX(bpfAdd), retA()), want: 1},
		{name: "sub x", prog: prog(ldAX(1, 2), aluX(bpfSub), retA()), want: 0xffffffff},
		{name: "mul x", prog: prog(ldAX(0x10000, 0x10001), aluX(bpfMul), retA()), want: 0x10000},
		{name: "div x", prog: prog(ldAX(100, 7), aluX(bpfDiv), retA()), want: 14},
		{name: "div x by 0", prog: prog(ldAX(100, 0), aluX(bpfDiv), retK(7)), want: 0},
		{name: "mod x", prog: prog(ldAX(100, 7), aluX(bpfMod), retA()), want: 2},
		{name: "mod x by 0", prog: prog(ldAX(100, 0), aluX(bpfMod), retK(7)), want: 0},
		{name: "and x", prog: prog(ldAX(0xff00ff00, 0x0ff00ff0), aluX(bpfAnd), retA()), want: 0x0f000f00},
		{name: "or x", prog: prog(ldAX(0xff00ff00, 0x0ff00ff0), aluX(bpfOr), retA()), want: 0xfff0fff0},
		{name: "xor x", prog: prog(ldAX(0xff00ff00, 0x0ff00ff0), aluX(bpfXor), retA()), want: 0xf0f0f0f0},
		{name: "lsh x 31", prog: prog(ldAX(3, 31), aluX(bpfLsh), retA()), want: 0x80000000},
		{name: "lsh x 32", prog: prog(ldAX(3, 32), aluX(bpfLsh), retA()), want: 0},
		{name: "lsh x 33", prog: prog(ldAX(3, 33), aluX(bpfLsh), retA()), want: 0},
		{name: "lsh x max", prog: prog(ldAX(3, 0xffffffff), aluX(bpfLsh), retA()), want: 0},
		{name: "rsh x 31", prog: prog(ldAX(0x80000001, 31), aluX(bpfRsh), retA()), want: 1},
		{name: "rsh x 32", prog: prog(ldAX(0x80000001, 32), aluX(bpfRsh), retA()), want: 0},
		{name: "rsh x 64", prog: prog(ldAX(0x80000001, 64), aluX(bpfRsh), retA()), want: 0},
		{name: "tax", prog: prog(ldAX(5, 0), stmt(bpfTax, 0), stmt(bpfLdImm, 0), stmt(bpfTxa, 0), retA()), want: 5},

		// Jumps.
		{name: "ja", prog: prog(stmt(bpfJa, 1), retK(1), retK(2)), want: 2},
		{name: "ja 0", prog: prog(stmt(bpfJa, 0), retK(1), retK(2)), want: 1},
		{name: "jeq k true", prog: prog(ldAX(5, 0), jmp(bpfJeqK, 5, 1, 0), retK(1), retK(2)), want: 2},
		{name: "jeq k false", prog: prog(ldAX(5, 0), jmp(bpfJeqK, 6, 1, 0), retK(1), retK(2)), want: 1},
		{name: "jgt k", prog: prog(ldAX(5, 0), jmp(bpfJgtK, 5, 0, 1), retK(1), retK(2)), want: 2},
		{name: "jgt k unsigned", prog: prog(ldAX(0xffffffff, 0), jmp(bpfJgtK, 5, 0, 1), retK(1), retK(2)), want: 1},
		{name: "jge k", prog: prog(ldAX(5, 0), jmp(bpfJgeK, 5, 0, 1), retK(1), retK(2)), want: 1},
		{name: "jset k", prog: prog(ldAX(6, 0), jmp(bpfJsetK, 9, 0, 1), retK(1), retK(2)), want: 2},
		{name: "jeq x", prog: prog(ldAX(5, 5), jmp(bpfJeqX, 0, 0, 1), retK(1), retK(2)), want: 1},
		{name: "jgt x", prog: prog(ldAX(5, 5), jmp(bpfJgtX, 0, 0, 1), retK(1), retK(2)), want: 2},
		{name: "jge x", prog: prog(ldAX(5, 5), jmp(bpfJgeX, 0, 0, 1), retK(1), retK(2)), want: 1},
		{name: "jset x", prog: prog(ldAX(6, 1), jmp(bpfJsetX, 0, 0, 1), retK(1), retK(2)), want: 2},
		{name: "jt jf equal", prog: prog(ldAX(6, 1), jmp(bpfJeqK, 0, 1, 1), retK(1), retK(2)), want: 2},
		{name: "jump far", prog: prog(ldAX(1, 0), jmp(bpfJeqK, 1, 255, 0), retK(3), make([]bpf.RawInstruction, 254),
			retK(4)), want: 4},
		// A countdown loop: A = 3; loop: A -= 1; if A == 0 return 9; goto loop.
		{name: "backward ja", prog: prog(ldAX(3, 0), alu(bpfSub, 1), jmp(bpfJeqK, 0, 1, 0),
			stmt(bpfJa, 0xfffffffd), retK(9)), want: 9},
		// The same loop counting the packet's bytes in X, up to the budget.
		{name: "backward ja reading", prog: prog(ldAX(0, 0), stmt(ldBI, 0), stmt(bpfTxa, 0), alu(bpfAdd, 1),
			stmt(bpfTax, 0), jmp(bpfJgeK, 16, 1, 0), stmt(bpfJa, 0xfffffffa), retA()), want: 16},
		{name: "endless loop", prog: prog(ldAX(0, 0), alu(bpfAdd, 1), stmt(bpfJa, 0xfffffffe), retK(9)), want: 0,
			noOracle: "libpcap 1.10 loops forever"},

		// Loads fused with the jump after them, at every split of the
		// packet, so also through the slow path.
		{name: "ldh jeq", prog: prog(jmp(ldH, 0, 0, 0), jmp(bpfJeqK, 0x0708, 0, 1), retK(1), retK(2)),
			pkt: []byte{0, 0, 0, 0, 0, 0, 7, 8}, want: 2},
		{name: "ldh jeq abs", prog: prog(stmt(ldH, 6), jmp(bpfJeqK, 0x0708, 0, 1), retK(1), retA()), want: 1},
		{name: "ldh jeq false", prog: prog(stmt(ldH, 6), jmp(bpfJeqK, 0x0709, 0, 1), retK(1), retA()), want: 0x0708},
		{name: "ldh jeq past the end", prog: prog(stmt(ldH, 15), jmp(bpfJeqK, 0, 0, 1), retK(1), retK(2)), want: 0},
		{name: "ldb jeq", prog: prog(stmt(ldB, 9), jmp(bpfJeqK, 10, 0, 1), retK(1), retA()), want: 1},
		{name: "ldb jeq false", prog: prog(stmt(ldB, 9), jmp(bpfJeqK, 11, 0, 1), retK(1), retA()), want: 10},
		{name: "ldb jeq past the end", prog: prog(stmt(ldB, 16), jmp(bpfJeqK, 0, 0, 1), retK(1), retK(2)), want: 0},
		{name: "ld jeq", prog: prog(stmt(ldW, 7), jmp(bpfJeqK, 0x08090a0b, 0, 1), retK(1), retA()), want: 1},
		{name: "ld jeq false", prog: prog(stmt(ldW, 7), jmp(bpfJeqK, 0, 0, 1), retK(1), retA()), want: 0x08090a0b},
		{name: "ld jeq truncated", prog: prog(stmt(ldW, 9), jmp(bpfJeqK, 0, 0, 1), retK(1), retK(2)), trunc: 4, want: 0},
		{name: "ldh jset", prog: prog(stmt(ldH, 12), jmp(bpfJsetK, 0x0100, 0, 1), retK(1), retA()), want: 1},
		{name: "ldh jset false", prog: prog(stmt(ldH, 12), jmp(bpfJsetK, 0x0200, 0, 1), retK(1), retA()), want: 0x0d0e},
		{name: "ldh jge", prog: prog(stmt(ldH, 12), jmp(bpfJgeK, 0x0d0e, 0, 1), retK(1), retA()), want: 1},
		{name: "ldh jge false", prog: prog(stmt(ldH, 12), jmp(bpfJgeK, 0x0d0f, 0, 1), retK(1), retA()), want: 0x0d0e},
		{name: "ldh x+k jeq", prog: prog(ldAX(0, 8), stmt(ldHI, 3), jmp(bpfJeqK, 0x0c0d, 0, 1), retK(1), retA()), want: 1},
		{name: "ldh x+k jeq false", prog: prog(ldAX(0, 8), stmt(ldHI, 3), jmp(bpfJeqK, 0, 0, 1), retK(1), retA()), want: 0x0c0d},
		{name: "ldh x+k jeq past the end", prog: prog(ldAX(0, 8), stmt(ldHI, 7), jmp(bpfJeqK, 0, 0, 1), retK(1), retA()), want: 0},
		{name: "ldh x+k jge", prog: prog(ldAX(0, 8), stmt(ldHI, 3), jmp(bpfJgeK, 0x0c0c, 0, 1), retK(1), retA()), want: 1},
		{name: "ldh x+k jge false", prog: prog(ldAX(0, 8), stmt(ldHI, 3), jmp(bpfJgeK, 0x0c0e, 0, 1), retK(1), retA()), want: 0x0c0d},
		{name: "jump into a fused pair", prog: prog(ldAX(5, 0), jmp(bpfJeqK, 5, 1, 0), stmt(ldB, 0), jmp(bpfJeqK, 5, 0, 1),
			retK(1), retA()), want: 1},
		{name: "jump past a fused load", prog: prog(ldAX(4, 0), jmp(bpfJeqK, 5, 1, 0), stmt(ldB, 0), jmp(bpfJeqK, 4, 0, 1),
			retK(1), retA()), want: 1},

		// Returns.
		{name: "ret k max", prog: prog(retK(0xffffffff)), want: 0xffffffff},
		{name: "ret k 0", prog: prog(retK(0)), want: 0},
		{name: "ret a", prog: prog(stmt(ldW, 0), retA()), want: 0x01020304},
	}
}

// hexOf shows a packet in failure messages.
func hexOf(b []byte) string {
	if len(b) > 128 {
		return hex.EncodeToString(b[:128]) + "..."
	}
	return hex.EncodeToString(b)
}

// TestExecOpcodes runs hand-written programs on small packets split at
// every point between hdr and payload, against their expected result and
// libpcap's.
func TestExecOpcodes(t *testing.T) {
	for _, c := range execCases() {
		t.Run(c.name, func(t *testing.T) {
			pkt := c.pkt
			if pkt == nil {
				pkt = seq16
			}
			caplen, wirelen := uint32(len(pkt)-c.trunc), c.wire
			if wirelen == 0 {
				wirelen = uint32(len(pkt))
			}
			p, err := newProgram(c.prog)
			if err != nil {
				t.Fatalf("newProgram: %v\nprogram:\n%s", err, FormatProgram(c.prog))
			}
			if execOracle != nil && c.noOracle == "" {
				if got := execOracle(c.prog, pkt, caplen, wirelen); got != c.want {
					t.Errorf("libpcap returns %#x, the case wants %#x\nprogram:\n%spacket %s caplen %d wirelen %d",
						got, c.want, FormatProgram(c.prog), hexOf(pkt), caplen, wirelen)
				}
			}
			if got, _ := refRun(c.prog, pkt, caplen, wirelen); got != c.want {
				t.Errorf("refRun returns %#x, want %#x\nprogram:\n%spacket %s caplen %d wirelen %d",
					got, c.want, FormatProgram(c.prog), hexOf(pkt), caplen, wirelen)
			}
			for split := 0; split <= len(pkt); split++ {
				f := frame{hdr: pkt[:split], payload: pkt[split:], caplen: caplen, wirelen: wirelen}
				if got := p.run(&f); got != c.want {
					t.Errorf("split at %d: run returns %#x, want %#x\nprogram:\n%spacket %s caplen %d wirelen %d",
						split, got, c.want, FormatProgram(c.prog), hexOf(pkt), caplen, wirelen)
				}
			}
		})
	}
}

// TestExecBudget checks that backward jumps that libpcap would follow
// forever stop, and that the budget lets a long legitimate loop finish.
func TestExecBudget(t *testing.T) {
	// Walks the packet one byte per iteration, accepting once X reaches
	// the length: caplen-1 backward jumps on a packet captured whole.
	walk := prog(stmt(bpfLdxImm, 0), stmt(bpfLdBInd, 0), stmt(bpfTxa, 0), alu(bpfAdd, 1), stmt(bpfTax, 0),
		stmt(bpfLdLen, 0), jmp(bpfJgtX, 0, 0, 1), stmt(bpfJa, 0xfffffff9), retK(1))
	pw, err := newProgram(walk)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 2, 1500, 65535} {
		f := frame{hdr: make([]byte, n), caplen: uint32(n), wirelen: uint32(n)}
		want := uint32(min(n, 1))
		if got := pw.run(&f); got != want {
			t.Errorf("walking a %d-byte packet returns %d, want %d", n, got, want)
		}
	}
	// A loop of 1000 instructions ends too.
	body := make([]bpf.RawInstruction, 1000)
	long := prog(body, stmt(bpfJa, 0xffffffff-1000), retK(9))
	pl, err := newProgram(long)
	if err != nil {
		t.Fatal(err)
	}
	f := frame{hdr: make([]byte, 1500), caplen: 1500, wirelen: 1500}
	if got := pl.run(&f); got != 0 {
		t.Errorf("1001-instruction endless loop returns %d, want 0", got)
	}
	spin := prog(ldAX(0, 0), alu(bpfAdd, 1), stmt(bpfJa, 0xfffffffe), retK(9))
	p, err := newProgram(spin)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []uint32{0, 60, 1 << 20} {
		f := frame{hdr: make([]byte, n), caplen: n, wirelen: n}
		if got := p.run(&f); got != 0 {
			t.Errorf("endless loop on %d bytes returns %d, want 0", n, got)
		}
	}
}

// protochain6 is "ip6 protochain 6" for Ethernet, as libpcap 1.10 compiles
// it: a loop over the IPv6 extension headers, with two backward jumps.
const protochain6 = "36,40 0 0 12,21 0 33 34525,48 0 0 20,1 0 0 40,21 27 0 6,21 26 0 59,21 3 0 0," +
	"21 2 0 60,21 1 0 43,21 0 9 44,80 0 0 14,2 0 0 0,80 0 0 15,4 0 0 1,36 0 0 8,12 0 0 0,7 0 0 0," +
	"96 0 0 0,5 0 0 4294967281,21 0 12 51,135 0 0 0,80 0 0 14,2 0 0 0,135 0 0 0,4 0 0 1,7 0 0 0," +
	"80 0 0 14,4 0 0 2,36 0 0 4,7 0 0 0,96 0 0 0,5 0 0 4294967268,4 0 0 0,21 0 1 6,6 0 0 65535,6 0 0 0"

// ipv6Chain returns an Ethernet frame of IPv6 whose first next-header is
// first, followed by ext.
func ipv6Chain(first byte, ext ...byte) []byte {
	b := make([]byte, 14+40, 14+40+len(ext))
	b[12], b[13] = 0x86, 0xdd
	b[14] = 0x60
	b[14+6] = first
	return append(b, ext...)
}

// TestExecProtochain runs libpcap's protochain loop on chains of IPv6
// extension headers: long ones it must finish, and an AH header pointing
// at itself, on which libpcap 1.10 loops forever and run stops.
func TestExecProtochain(t *testing.T) {
	raw, err := ParseProgram(protochain6)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newProgram(raw)
	if err != nil {
		t.Fatal(err)
	}
	// 8000 destination-options headers of 8 bytes, then TCP.
	var long []byte
	for range 8000 {
		long = append(long, 60, 0, 0, 0, 0, 0, 0, 0)
	}
	long[len(long)-8] = 6
	long = append(long, make([]byte, 20)...)
	// AH headers at growing offsets: X = (len+2)*4 from the IPv6 header.
	var ah []byte
	for at := 40; at < 1000; at += 8 {
		ah = append(ah, 51, byte((at+8)/4-2), 0, 0, 0, 0, 0, 0)
	}
	ah[len(ah)-8] = 6
	ah = append(ah, make([]byte, 20)...)
	for _, c := range []struct {
		name    string
		pkt     []byte
		want    uint32
		endless bool
	}{
		{"tcp", ipv6Chain(6, make([]byte, 20)...), 65535, false},
		{"hop-by-hop then tcp", ipv6Chain(0, append([]byte{6, 0, 0, 0, 0, 0, 0, 0}, make([]byte, 20)...)...), 65535, false},
		{"hop-by-hop then udp", ipv6Chain(0, append([]byte{17, 0, 0, 0, 0, 0, 0, 0}, make([]byte, 20)...)...), 0, false},
		{"8000 headers then tcp", ipv6Chain(60, long...), 65535, false},
		{"120 AH headers then tcp", ipv6Chain(51, ah...), 65535, false},
		{"AH pointing at itself", ipv6Chain(51, append([]byte{51, 8, 0, 0}, make([]byte, 60)...)...), 0, true},
		{"two AH pointing at each other", ipv6Chain(51, append([]byte{51, 10, 0, 0, 0, 0, 0, 0, 51, 8, 0, 0},
			make([]byte, 60)...)...), 0, true},
	} {
		n := uint32(len(c.pkt))
		f := frame{hdr: c.pkt, caplen: n, wirelen: n}
		if got := p.run(&f); got != c.want {
			t.Errorf("%s: run returns %d, want %d\npacket %s", c.name, got, c.want, hexOf(c.pkt))
		}
		if got, stopped := refRun(raw, c.pkt, n, n); got != c.want || stopped != c.endless {
			t.Errorf("%s: refRun returns %d, stopped %v, want %d, %v", c.name, got, stopped, c.want, c.endless)
		}
		if execOracle != nil && !c.endless {
			if got := execOracle(raw, c.pkt, n, n); got != c.want {
				t.Errorf("%s: libpcap returns %d, want %d", c.name, got, c.want)
			}
		}
	}
}

// lazyFrame builds the frame Match would for a TCP or UDP packet over IPv4
// or IPv6, with its checksum still to fill, and the packet's full bytes.
func lazyFrame(t *testing.T, h *header, proto Protocol, v6 bool, payload []byte, snap uint32) (frame, []byte) {
	t.Helper()
	src, dst := "192.0.2.1:1234", "198.51.100.2:21"
	if v6 {
		src, dst = "[2001:db8::1]:1234", "[2001:db8::2]:21"
	}
	p := FakePacket{Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst),
		Protocol: proto, Payload: payload}
	want, err := p.AppendFrame(nil, LinkEthernet)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.build(&p, LinkEthernet); err != nil {
		t.Fatal(err)
	}
	return h.frame(payload, snap), want
}

// TestExecLazy checks that run calls touch exactly for the loads that
// overlap hdr[lazyLo:lazyHi], before reading them, and reads the right
// bytes everywhere.
func TestExecLazy(t *testing.T) {
	for _, tc := range []struct {
		proto   Protocol
		v6      bool
		payload string
	}{
		{TCP, false, "hello, world: a payload long enough not to be padded"},
		{UDP, false, "hello, world: a payload long enough not to be padded"},
		{TCP, true, "hi"},
		{UDP, false, "x"}, // padded: the payload is copied into hdr
	} {
		for _, n := range []uint32{1, 2, 4} {
			code := map[uint32]uint16{1: bpfLdBInd, 2: bpfLdHInd, 4: bpfLdWInd}[n]
			var h header
			f0, full := lazyFrame(t, &h, tc.proto, tc.v6, []byte(tc.payload), DefaultSnapLen)
			for off := uint32(0); off+n <= f0.caplen; off++ {
				want := be(full[off : off+n])
				progs := [][]bpf.RawInstruction{prog(stmt(bpfLdxImm, off), stmt(code, 0), retA())}
				if n == 2 { // fused with the jump
					progs = append(progs, prog(stmt(bpfLdxImm, off), stmt(code, 0), jmp(bpfJeqK, want, 0, 1), retA(), retK(0xbad)))
				}
				// Absolute, fused with the jump.
				abs := map[uint32]uint16{1: bpfLdBAbs, 2: bpfLdHAbs, 4: bpfLdWAbs}[n]
				progs = append(progs, prog(stmt(abs, off), jmp(bpfJeqK, want, 0, 1), retA(), retK(0xbad)))
				for _, raw := range progs {
					var h header
					f, _ := lazyFrame(t, &h, tc.proto, tc.v6, []byte(tc.payload), DefaultSnapLen)
					lo, hi := f.lazyLo, f.lazyHi
					name := fmt.Sprintf("%v v6=%v %d-byte load at %d of %s\nprogram:\n%s", tc.proto, tc.v6, n, off,
						hexOf(full), FormatProgram(raw))
					p, err := newProgram(raw)
					if err != nil {
						t.Fatal(err)
					}
					if got := p.run(&f); got != want {
						t.Errorf("%s: got %#x, want %#x", name, got, want)
					}
					overlaps := off < hi && off+n > lo
					touched := f.lazyLo == 0 && f.lazyHi == 0
					if touched != overlaps {
						t.Errorf("%s: lazy range [%d,%d): touched %v, want %v", name, lo, hi, touched, overlaps)
					}
					if wantVaries := off+n > uint32(len(f.hdr)); f.varies != wantVaries {
						t.Errorf("%s: varies %v, want %v (hdr is %d bytes)", name, f.varies, wantVaries, len(f.hdr))
					}
				}
			}
		}
	}
}

// TestExecVaries checks when run sets varies: for the length, for bytes at
// or past the end of hdr even when not captured, and through touch when
// tracing, and for nothing else.
func TestExecVaries(t *testing.T) {
	var h header
	p := FakePacket{Src: netip.MustParseAddrPort("192.0.2.1:1234"), Dst: netip.MustParseAddrPort("198.51.100.2:21"),
		Protocol: TCP}
	if err := h.build(&p, LinkEthernet); err != nil {
		t.Fatal(err)
	}
	nh := uint32(h.n)
	for _, c := range []struct {
		name  string
		prog  []bpf.RawInstruction
		trace bool
		want  bool
	}{
		{"ethertype", prog(stmt(bpfLdHAbs, 12), retA()), false, false},
		{"last header byte", prog(stmt(bpfLdBAbs, nh-1), retA()), false, false},
		{"first payload byte", prog(stmt(bpfLdBAbs, nh), retA()), false, true},
		{"straddling", prog(stmt(bpfLdWAbs, nh-2), retA()), false, true},
		{"far past the end", prog(stmt(bpfLdWAbs, 1<<20), retA()), false, true},
		{"indirect past the end", prog(stmt(bpfLdxImm, nh), stmt(bpfLdBInd, 0), retA()), false, true},
		{"msh past the end", prog(stmt(bpfLdxMSH, nh), retA()), false, true},
		{"huge x+k", prog(stmt(bpfLdxImm, 0xffffffff), stmt(bpfLdBInd, 0xffffffff), retA()), false, true},
		{"len", prog(stmt(bpfLdLen, 0), retA()), false, true},
		{"ldx len", prog(stmt(bpfLdxLen, 0), retA()), false, true},
		{"checksum", prog(stmt(bpfLdHAbs, uint32(h.csum)), retA()), false, false},
		{"trace checksum", prog(stmt(bpfLdHAbs, uint32(h.csum)), retA()), true, true},
		{"trace IP length", prog(stmt(bpfLdHAbs, uint32(h.ip)+2), retA()), true, true},
		{"trace IP source", prog(stmt(bpfLdWAbs, uint32(h.ip)+12), retA()), true, false},
		{"trace TCP flags", prog(stmt(bpfLdBAbs, uint32(h.l4)+13), retA()), true, false},
		{"trace payload", prog(stmt(bpfLdBAbs, nh), retA()), true, true},
		{"no load", prog(retK(1)), false, false},
	} {
		prog, err := newProgram(c.prog)
		if err != nil {
			t.Fatal(err)
		}
		var f frame
		if c.trace {
			f = h.traceFrame(DefaultSnapLen)
		} else {
			f = h.frame(bytes.Repeat([]byte("p"), 100), DefaultSnapLen)
		}
		prog.run(&f)
		if f.varies != c.want {
			t.Errorf("%s: varies %v, want %v\nprogram:\n%s", c.name, f.varies, c.want, FormatProgram(c.prog))
		}
	}
}

// TestExecMalformedFrame checks that a frame whose caplen overstates its
// bytes makes loads fail instead of panicking.
func TestExecMalformedFrame(t *testing.T) {
	for _, code := range []uint16{bpfLdBAbs, bpfLdHAbs, bpfLdWAbs} {
		p, err := newProgram(prog(stmt(code, 14), retK(1)))
		if err != nil {
			t.Fatal(err)
		}
		f := frame{hdr: seq16[:8], payload: seq16[8:12], caplen: 100, wirelen: 100}
		if got := p.run(&f); got != 0 {
			t.Errorf("code %#x: got %d, want 0", code, got)
		}
	}
}

// benchPrograms are programs as tcpdump -ddd prints them, for benchmarks
// that need no libpcap.
var benchPrograms = []struct{ name, expr, ddd string }{
	{"tcp-dst-port-21", "tcp dst port 21",
		"16,40 0 0 12,21 0 4 34525,48 0 0 20,21 0 11 6,40 0 0 56,21 8 9 21,21 0 8 2048,48 0 0 23,21 0 6 6,40 0 0 20,69 4 0 8191,177 0 0 14,72 0 0 16,21 0 1 21,6 0 0 65535,6 0 0 0"},
	{"udp-port-53-host", "udp port 53 and host 192.0.2.1",
		"18,40 0 0 12,21 15 0 34525,21 0 14 2048,48 0 0 23,21 0 12 17,40 0 0 20,69 10 0 8191,177 0 0 14,72 0 0 14,21 2 0 53,72 0 0 16,21 0 5 53,32 0 0 26,21 2 0 3221225985,32 0 0 30,21 0 1 3221225985,6 0 0 65535,6 0 0 0"},
	{"tcp-flags", "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0",
		"11,40 0 0 12,21 0 8 2048,48 0 0 23,21 0 6 6,40 0 0 20,69 4 0 8191,177 0 0 14,80 0 0 27,69 0 1 3,6 0 0 65535,6 0 0 0"},
	{"tcp-payload-len", "tcp port 80 and (((ip[2:2] - ((ip[0]&0xf)<<2)) - ((tcp[12]&0xf0)>>2)) != 0)",
		"30,40 0 0 12,21 27 0 34525,21 0 26 2048,48 0 0 23,21 0 24 6,40 0 0 20,69 22 0 8191,177 0 0 14,72 0 0 14,21 2 0 80,72 0 0 16,21 0 17 80,40 0 0 16,2 0 0 1,48 0 0 14,84 0 0 15,100 0 0 2,7 0 0 5,96 0 0 1,28 0 0 0,2 0 0 5,177 0 0 14,80 0 0 26,84 0 0 240,116 0 0 2,7 0 0 9,96 0 0 5,29 1 0 0,6 0 0 65535,6 0 0 0"},
}

// BenchmarkExec runs programs on the frame Match builds for a 566-byte TCP
// packet to port 21 (512 bytes of payload), and on a frame of captured
// bytes as MatchFrame builds it.
func BenchmarkExec(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 512)
	pkt := FakePacket{Src: netip.MustParseAddrPort("192.0.2.1:1234"), Dst: netip.MustParseAddrPort("198.51.100.2:21"),
		Protocol: TCP, Payload: payload}
	data, err := pkt.AppendFrame(nil, LinkEthernet)
	if err != nil {
		b.Fatal(err)
	}
	for _, bp := range benchPrograms {
		raw, err := ParseProgram(bp.ddd)
		if err != nil {
			b.Fatal(err)
		}
		p, err := newProgram(raw)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bp.name+"/fake", func(b *testing.B) {
			var h header
			if err := h.build(&pkt, LinkEthernet); err != nil {
				b.Fatal(err)
			}
			f := h.frame(payload, DefaultSnapLen)
			b.ReportAllocs()
			for b.Loop() {
				g := f
				p.run(&g)
			}
		})
		b.Run(bp.name+"/frame", func(b *testing.B) {
			f := frame{hdr: data, caplen: uint32(len(data)), wirelen: uint32(len(data))}
			b.ReportAllocs()
			for b.Loop() {
				p.run(&f)
			}
		})
	}
}

// TestExecAllocs checks that run allocates nothing.
func TestExecAllocs(t *testing.T) {
	raw, err := ParseProgram(benchPrograms[0].ddd)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newProgram(raw)
	if err != nil {
		t.Fatal(err)
	}
	var h header
	pkt := FakePacket{Src: netip.MustParseAddrPort("192.0.2.1:1234"), Dst: netip.MustParseAddrPort("198.51.100.2:21"),
		Protocol: TCP, Payload: []byte(strings.Repeat("x", 512))}
	if err := h.build(&pkt, LinkEthernet); err != nil {
		t.Fatal(err)
	}
	f := h.frame(pkt.Payload, DefaultSnapLen)
	if n := testing.AllocsPerRun(100, func() {
		g := f
		if p.run(&g) == 0 {
			panic("tcp dst port 21 does not match a packet to port 21")
		}
	}); n != 0 {
		t.Errorf("run allocates %v times per call, want 0", n)
	}
}

// refRun is a plain, slow reading of libpcap 1.10's interpreter on
// data[:caplen] for raw, a program newProgram accepts, with this package's
// two differences: scratch memory starts zeroed and backward jumps are
// bounded. stopped reports that the bound stopped the program, where
// libpcap would have gone on.
func refRun(raw []bpf.RawInstruction, data []byte, caplen, wirelen uint32) (ret uint32, stopped bool) {
	ret, stopped, _ = refRunSteps(raw, data, caplen, wirelen)
	return ret, stopped
}

// refRunSteps is refRun, also counting the instructions executed.
func refRunSteps(raw []bpf.RawInstruction, data []byte, caplen, wirelen uint32) (ret uint32, stopped bool, steps uint64) {
	return refExec(raw, &refMachine{pkt: data[:caplen], length: wirelen})
}

// refMachine is what refExec runs a program on: a packet as libpcap's
// interpreter sees it (pkt, its captured bytes; length, its length on the
// wire), or, with socket, as the kernel runs a socket filter (loads at
// skfNetOff+k read the network header nh, others l4, the transport
// header and payload; length is len(l4); offsets are 32 bits; shifts as
// the kernel makes them, by the operand's low 6 bits on a 64-bit value).
type refMachine struct {
	pkt    []byte
	length uint32
	socket bool
	nh, l4 []byte
}

// load reads n bytes at off, or reports that they are not there.
func (m *refMachine) load(off, n uint64) (uint32, bool) {
	b := m.pkt
	if m.socket {
		off, b = uint64(uint32(off)), m.l4
		if off >= skfNetOff {
			off, b = off-skfNetOff, m.nh
		}
	}
	if off+n > uint64(len(b)) {
		return 0, false
	}
	return be(b[off : off+n]), true
}

// refExec is the reference interpreter: refRunSteps on the machine m.
func refExec(raw []bpf.RawInstruction, m *refMachine) (ret uint32, stopped bool, steps uint64) {
	var a, x uint32
	var mem [memWords]uint32
	var back uint64
	cost := func(from, to int) (c uint64) { // of raw[from:to], as loopCosts counts
		for _, r := range raw[from:to] {
			switch r.Op {
			case bpfALU | bpfDiv, bpfALU | bpfMod, bpfALU | bpfSrcX | bpfDiv, bpfALU | bpfSrcX | bpfMod:
				c += divCost
			default:
				c++
			}
		}
		return min(c, loopBudget+1)
	}
	load := m.load
	for pc := 0; ; pc++ {
		steps++
		r := raw[pc]
		k := r.K
		var ok = true
		switch r.Op {
		case bpfRetK:
			return k, false, steps
		case bpfRetA:
			return a, false, steps
		case bpfLdWAbs:
			a, ok = load(uint64(k), 4)
		case bpfLdHAbs:
			a, ok = load(uint64(k), 2)
		case bpfLdBAbs:
			a, ok = load(uint64(k), 1)
		case bpfLdWInd:
			a, ok = load(uint64(x)+uint64(k), 4)
		case bpfLdHInd:
			a, ok = load(uint64(x)+uint64(k), 2)
		case bpfLdBInd:
			a, ok = load(uint64(x)+uint64(k), 1)
		case bpfLdxMSH:
			x, ok = load(uint64(k), 1)
			x = x & 0xf * 4
		case bpfLdLen:
			a = m.length
		case bpfLdxLen:
			x = m.length
		case bpfLdImm:
			a = k
		case bpfLdxImm:
			x = k
		case bpfLdMem:
			a = mem[k]
		case bpfLdxMem:
			x = mem[k]
		case bpfSt:
			mem[k] = a
		case bpfStx:
			mem[k] = x
		case bpfJa:
			if int32(k) < 0 {
				if back += cost(pc+1+int(int32(k)), pc+1); back > loopBudget {
					return 0, true, steps
				}
			}
			pc += int(int32(k))
		case bpfTax:
			x = a
		case bpfTxa:
			a = x
		case bpfALU | bpfNeg:
			a = 0 - a
		default:
			v := k
			if r.Op&bpfSrcX != 0 {
				v = x
			}
			switch r.Op &^ bpfSrcX {
			case bpfJeqK, bpfJgtK, bpfJgeK, bpfJsetK:
				var c bool
				switch r.Op &^ bpfSrcX {
				case bpfJeqK:
					c = a == v
				case bpfJgtK:
					c = a > v
				case bpfJgeK:
					c = a >= v
				case bpfJsetK:
					c = a&v != 0
				}
				if c {
					pc += int(r.Jt)
				} else {
					pc += int(r.Jf)
				}
				continue
			}
			if m.socket && (r.Op&^bpfSrcX == bpfALU|bpfLsh || r.Op&^bpfSrcX == bpfALU|bpfRsh) {
				if r.Op&^bpfSrcX == bpfALU|bpfLsh {
					a = uint32(uint64(a) << (v & 63))
				} else {
					a = uint32(uint64(a) >> (v & 63))
				}
				continue
			}
			if r.Op&bpfSrcX == 0 && (r.Op == bpfALU|bpfLsh || r.Op == bpfALU|bpfRsh) {
				v %= 32 // what libpcap 1.10 does on amd64 and arm64
			}
			switch r.Op &^ bpfSrcX {
			case bpfALU | bpfAdd:
				a += v
			case bpfALU | bpfSub:
				a -= v
			case bpfALU | bpfMul:
				a *= v
			case bpfALU | bpfDiv:
				if v == 0 {
					return 0, false, steps
				}
				a /= v
			case bpfALU | bpfMod:
				if v == 0 {
					return 0, false, steps
				}
				a %= v
			case bpfALU | bpfAnd:
				a &= v
			case bpfALU | bpfOr:
				a |= v
			case bpfALU | bpfXor:
				a ^= v
			case bpfALU | bpfLsh:
				if v >= 32 {
					a = 0
				} else {
					a <<= v
				}
			case bpfALU | bpfRsh:
				if v >= 32 {
					a = 0
				} else {
					a >>= v
				}
			default:
				panic(fmt.Sprintf("refRun: opcode %#x", r.Op))
			}
		}
		if !ok {
			return 0, false, steps
		}
	}
}
