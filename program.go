package bpfmatch

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"golang.org/x/net/bpf"
)

// Classic BPF opcodes, as libpcap numbers them: the ones its interpreter
// executes.
const (
	bpfLdImm   = 0x00
	bpfLdxImm  = 0x01
	bpfSt      = 0x02
	bpfStx     = 0x03
	bpfALU     = 0x04
	bpfJa      = 0x05
	bpfRetK    = 0x06
	bpfTax     = 0x07
	bpfRetA    = 0x16
	bpfLdWAbs  = 0x20
	bpfLdHAbs  = 0x28
	bpfLdBAbs  = 0x30
	bpfLdWInd  = 0x40
	bpfLdHInd  = 0x48
	bpfLdBInd  = 0x50
	bpfLdMem   = 0x60
	bpfLdxMem  = 0x61
	bpfLdLen   = 0x80
	bpfLdxLen  = 0x81
	bpfTxa     = 0x87
	bpfLdxMSH  = 0xb1
	bpfJeqK    = 0x15
	bpfJeqX    = 0x1d
	bpfJgtK    = 0x25
	bpfJgtX    = 0x2d
	bpfJgeK    = 0x35
	bpfJgeX    = 0x3d
	bpfJsetK   = 0x45
	bpfJsetX   = 0x4d
	bpfSrcX    = 0x08 // ALU and jumps: operand X instead of k
	bpfAdd     = 0x00 // ALU operations, with bpfALU and bpfSrcX
	bpfSub     = 0x10
	bpfMul     = 0x20
	bpfDiv     = 0x30
	bpfOr      = 0x40
	bpfAnd     = 0x50
	bpfLsh     = 0x60
	bpfRsh     = 0x70
	bpfNeg     = 0x80
	bpfMod     = 0x90
	bpfXor     = 0xa0
	bpfClassOf = 0x07 // mask of the instruction class
	bpfRet     = 0x06 // class of the return instructions
	bpfJmp     = 0x05 // class of the jumps
	memWords   = 16   // BPF_MEMWORDS: scratch memory M[0..15]

	// skfAdOff is the Linux kernel's SKF_AD_OFF; libpcap built on Linux
	// answers "ldb [SKF_AD_OFF+44]" and "ldb [SKF_AD_OFF+48]" (the VLAN
	// tag and its presence, which only the kernel knows) with 0.
	skfAdOff = 0xfffff000
)

// opKind is what an instruction does once decoded. The kinds are numbered
// densely from 0 so that the switch in machine.exec compiles to a jump
// table.
type opKind uint8

const (
	opRetK opKind = iota
	opRetA
	opLdW // A = packet[k:k+4]
	opLdH
	opLdB
	opLdWInd // A = packet[X+k:X+k+4]
	opLdHInd
	opLdBInd
	opLdxMSH // X = 4*(packet[k]&0xf)
	opLdLen
	opLdxLen
	opLdImm
	opLdxImm
	opLdMem
	opLdxMem
	opSt
	opStx
	opJa     // forward jump to jt
	opJaBack // backward jump to jt, counted against the loop budget
	opJgtK
	opJgeK
	opJeqK
	opJsetK
	opJgtX
	opJgeX
	opJeqX
	opJsetX
	opAddK
	opSubK
	opMulK
	opDivK
	opModK
	opAndK
	opOrK
	opXorK
	opLshK // k already reduced modulo 32
	opRshK
	opAddX
	opSubX
	opMulX
	opDivX
	opModX
	opAndX
	opOrX
	opXorX
	opLshX
	opRshX
	opNeg
	opTax
	opTxa
	opLdBAux // ldb of a Linux ancillary field: a load that always fails

	// A load fused with the conditional jump after it, comparing with k2:
	// the pairs most frequent in what libpcap compiles. The jump stays in
	// the program for the jumps to it, and for run to go on with after a
	// load it could not serve from hdr.
	opLdHJeq
	opLdBJeq
	opLdWJeq
	opLdHJset
	opLdHJge
	opLdHIndJeq
	opLdHIndJge
	numOps
)

// fusions maps a load and the conditional jump after it to their fusion.
var fusions = map[[2]opKind]opKind{
	{opLdH, opJeqK}: opLdHJeq, {opLdB, opJeqK}: opLdBJeq, {opLdW, opJeqK}: opLdWJeq,
	{opLdH, opJsetK}: opLdHJset, {opLdH, opJgeK}: opLdHJge,
	{opLdHInd, opJeqK}: opLdHIndJeq, {opLdHInd, opJgeK}: opLdHIndJge,
}

// unfused maps a fused load to its plain load.
var unfused = [numOps]opKind{opLdHJeq: opLdH, opLdBJeq: opLdB, opLdWJeq: opLdW, opLdHJset: opLdH,
	opLdHJge: opLdH, opLdHIndJeq: opLdHInd, opLdHIndJge: opLdHInd}

// insn is a decoded instruction. Jump targets are absolute indexes.
type insn struct {
	op     opKind
	k      uint32
	jt, jf uint32
	k2     uint32 // the jump's k in a fused load and jump
}

// program is a validated classic BPF program decoded for run.
type program struct {
	insns []insn
	// loops is set when the program has backward jumps, which run bounds
	// with loopBudget.
	loops bool
	// oneTest is set when the program is one test (isOneTest).
	oneTest bool
}

// simpleOps maps the opcodes whose decoding needs no check of k.
var simpleOps = map[uint16]opKind{
	bpfRetK: opRetK, bpfRetA: opRetA,
	bpfLdWAbs: opLdW, bpfLdHAbs: opLdH, bpfLdBAbs: opLdB,
	bpfLdWInd: opLdWInd, bpfLdHInd: opLdHInd, bpfLdBInd: opLdBInd,
	bpfLdxMSH: opLdxMSH, bpfLdLen: opLdLen, bpfLdxLen: opLdxLen,
	bpfLdImm: opLdImm, bpfLdxImm: opLdxImm,
	bpfJgtK: opJgtK, bpfJgeK: opJgeK, bpfJeqK: opJeqK, bpfJsetK: opJsetK,
	bpfJgtX: opJgtX, bpfJgeX: opJgeX, bpfJeqX: opJeqX, bpfJsetX: opJsetX,
	bpfALU | bpfAdd: opAddK, bpfALU | bpfSub: opSubK, bpfALU | bpfMul: opMulK,
	bpfALU | bpfAnd: opAndK, bpfALU | bpfOr: opOrK, bpfALU | bpfXor: opXorK,
	bpfALU | bpfSrcX | bpfAdd: opAddX, bpfALU | bpfSrcX | bpfSub: opSubX,
	bpfALU | bpfSrcX | bpfMul: opMulX, bpfALU | bpfSrcX | bpfDiv: opDivX,
	bpfALU | bpfSrcX | bpfMod: opModX, bpfALU | bpfSrcX | bpfAnd: opAndX,
	bpfALU | bpfSrcX | bpfOr: opOrX, bpfALU | bpfSrcX | bpfXor: opXorX,
	bpfALU | bpfSrcX | bpfLsh: opLshX, bpfALU | bpfSrcX | bpfRsh: opRshX,
	bpfALU | bpfNeg: opNeg, bpfTax: opTax, bpfTxa: opTxa,
}

var memOps = map[uint16]opKind{bpfLdMem: opLdMem, bpfLdxMem: opLdxMem, bpfSt: opSt, bpfStx: opStx}

var errEmptyProgram = errors.New("empty program: a program needs at least one instruction")

// newProgram validates raw and decodes it for run.
//
// It accepts what libpcap 1.10's bpf_validate accepts, except, as newer
// libpcap does, an opcode that libpcap's interpreter does not execute
// (bpf_validate checks only the class and mode bits, and the interpreter
// calls abort() on such an instruction) and a "ja" to itself, an endless
// loop. Backward jumps, which libpcap emits for protochain, are accepted;
// run bounds them. A shift by a constant of 32 or more is accepted and
// shifts by the constant modulo 32, as libpcap 1.10 does on amd64 and arm64.
// Programs longer than bpf_validate's int can count are rejected.
func newProgram(raw []bpf.RawInstruction) (*program, error) {
	if len(raw) == 0 {
		return nil, errEmptyProgram
	}
	if uint64(len(raw)) > math.MaxInt32 {
		return nil, fmt.Errorf("program of %d instructions, more than the %d libpcap can validate", len(raw), math.MaxInt32)
	}
	p := &program{insns: make([]insn, len(raw))}
	for i, r := range raw {
		in, msg := decode(r, uint64(i), uint64(len(raw)))
		if msg == "" && i == len(raw)-1 && r.Op&bpfClassOf != bpfRet {
			msg = "the last instruction is not a return"
		}
		if msg != "" {
			return nil, fmt.Errorf("instruction %d (code %#x, jt %d, jf %d, k %d): %s", i, r.Op, r.Jt, r.Jf, r.K, msg)
		}
		p.loops = p.loops || in.op == opJaBack
		p.insns[i] = in
	}
	if p.loops {
		loopCosts(p.insns)
	}
	fuse(p.insns)
	p.oneTest = isOneTest(p.insns)
	return p, nil
}

// loopCosts sets the k of each backward jump to what going back costs
// the budget (loopBudget): the instructions gone back over, a division or
// a remainder counting as divCost of them, for it can take as long; at
// most loopBudget+1, which is already too much.
func loopCosts(insns []insn) {
	sum := make([]uint64, len(insns)+1) // sum[i]: the cost of insns[:i]
	for i, in := range insns {
		c := uint64(1)
		switch in.op {
		case opDivK, opModK, opDivX, opModX:
			c = divCost
		}
		sum[i+1] = sum[i] + c
	}
	for i := range insns {
		if in := &insns[i]; in.op == opJaBack {
			in.k = uint32(min(sum[i+1]-sum[in.jt], loopBudget+1))
		}
	}
}

// fuse fuses each load with the conditional jump after it, where they
// have a fusion.
func fuse(insns []insn) {
	for i := range len(insns) - 1 {
		in, next := &insns[i], insns[i+1]
		if op, ok := fusions[[2]opKind{in.op, next.op}]; ok {
			in.op, in.k2, in.jt, in.jf = op, next.k, next.jt, next.jf
		}
	}
}

// decode decodes r, instruction i of n, or says why it is invalid.
func decode(r bpf.RawInstruction, i, n uint64) (insn, string) {
	in := insn{k: r.K}
	if op, ok := simpleOps[r.Op]; ok {
		in.op = op
	} else {
		switch r.Op {
		case bpfLdMem, bpfLdxMem, bpfSt, bpfStx:
			if r.K >= memWords {
				return in, fmt.Sprintf("scratch memory M[%d] does not exist, only M[0] to M[%d]", r.K, memWords-1)
			}
			in.op = memOps[r.Op]
		case bpfALU | bpfDiv:
			in.op = opDivK
		case bpfALU | bpfMod:
			in.op = opModK
		case bpfALU | bpfLsh:
			in.op, in.k = opLshK, r.K&31
		case bpfALU | bpfRsh:
			in.op, in.k = opRshK, r.K&31
		case bpfJa:
			// As in libpcap, k is added modulo 2^32, so that a k read as
			// negative jumps backward.
			t := uint32(i) + 1 + r.K
			switch {
			case uint64(t) >= n:
				return in, fmt.Sprintf("jump to %d, outside the %d instructions", int64(i)+1+int64(int32(r.K)), n)
			case uint64(t) == i:
				return in, "jump to itself, an endless loop"
			case uint64(t) < i:
				// k becomes the distance; newProgram makes it the cost.
				in.op, in.jt, in.k = opJaBack, t, uint32(i+1)-t
			default:
				in.op, in.jt = opJa, t
			}
		default:
			return in, fmt.Sprintf("unknown opcode %#x", r.Op)
		}
	}
	switch {
	case (in.op == opDivK || in.op == opModK) && r.K == 0:
		return in, "division by the constant 0"
	case r.Op == bpfLdBAbs && (r.K == skfAdOff+44 || r.K == skfAdOff+48):
		in.op = opLdBAux
	case r.Op&bpfClassOf == bpfJmp && r.Op != bpfJa:
		// Conditional jumps are relative to the next instruction.
		in.jt, in.jf = uint32(i)+1+uint32(r.Jt), uint32(i)+1+uint32(r.Jf)
		if uint64(max(in.jt, in.jf)) >= n {
			return in, fmt.Sprintf("jump to %d, past the end of the %d instructions", max(in.jt, in.jf), n)
		}
	}
	return in, ""
}

// ParseProgram parses a classic BPF program written as tcpdump -ddd prints
// it: the number of instructions on the first line, then one instruction a
// line as the four decimal numbers "code jt jf k". Commas may separate the
// instructions instead of line breaks, as in iptables' xt_bpf bytecode
// ("4,48 0 0 9,..."). Blank lines and spaces around numbers are ignored.
// The error of malformed text names the line and what is wrong with it.
// ParseProgram checks only the syntax; programs are validated when used.
func ParseProgram(text string) ([]bpf.RawInstruction, error) {
	var (
		raw      []bpf.RawInstruction
		count    int
		countPos string
		haveCnt  bool
	)
	for ln, line := range strings.Split(text, "\n") {
		items := strings.Split(line, ",")
		for it, item := range items {
			fields := strings.Fields(item)
			if len(fields) == 0 {
				continue
			}
			pos := fmt.Sprintf("line %d", ln+1)
			if len(items) > 1 {
				pos = fmt.Sprintf("line %d, item %d", ln+1, it+1)
			}
			if !haveCnt {
				if len(fields) != 1 {
					return nil, fmt.Errorf("bpfmatch: parsing program: %s: want the instruction count, found %q", pos, strings.TrimSpace(item))
				}
				c, err := strconv.ParseUint(fields[0], 10, 31)
				if err != nil {
					return nil, fmt.Errorf("bpfmatch: parsing program: %s: instruction count %q is not a decimal number", pos, fields[0])
				}
				count, countPos, haveCnt = int(c), pos, true
				raw = make([]bpf.RawInstruction, 0, min(count, 1<<16))
				continue
			}
			if len(fields) != 4 {
				return nil, fmt.Errorf("bpfmatch: parsing program: %s: want 4 numbers \"code jt jf k\", found %d in %q", pos, len(fields), strings.TrimSpace(item))
			}
			if len(raw) == count {
				return nil, fmt.Errorf("bpfmatch: parsing program: %s: more instructions than the count of %d on %s", pos, count, countPos)
			}
			var v [4]uint64
			for i, spec := range [4]struct {
				name string
				bits int
			}{{"code", 16}, {"jt", 8}, {"jf", 8}, {"k", 32}} {
				var err error
				if v[i], err = strconv.ParseUint(fields[i], 10, spec.bits); err != nil {
					return nil, fmt.Errorf("bpfmatch: parsing program: %s: %s %q is not a decimal number from 0 to %d",
						pos, spec.name, fields[i], uint64(1)<<spec.bits-1)
				}
			}
			raw = append(raw, bpf.RawInstruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])})
		}
	}
	if !haveCnt {
		return nil, errors.New("bpfmatch: parsing program: no instruction count: the text is empty")
	}
	if len(raw) != count {
		return nil, fmt.Errorf("bpfmatch: parsing program: %s gives a count of %d instructions, but %d follow", countPos, count, len(raw))
	}
	return raw, nil
}

// FormatProgram returns raw as tcpdump -ddd prints it: the number of
// instructions, then one instruction a line as "code jt jf k" in decimal,
// each line ending with a newline. ParseProgram reads it back.
func FormatProgram(raw []bpf.RawInstruction) string {
	b := make([]byte, 0, 8+len(raw)*16)
	b = strconv.AppendInt(b, int64(len(raw)), 10)
	b = append(b, '\n')
	for _, r := range raw {
		b = strconv.AppendUint(b, uint64(r.Op), 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(r.Jt), 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(r.Jf), 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(r.K), 10)
		b = append(b, '\n')
	}
	return string(b)
}
