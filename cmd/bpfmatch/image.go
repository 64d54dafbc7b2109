package main

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// imageLine returns the text tcpdump -d prints for in, the n-th
// instruction of a program (libpcap's bpf_image), so that -d needs no
// libpcap: "(NNN) " and the mnemonic padded to 8 columns, then the operand;
// a conditional jump pads its operand to 16 columns and adds its two
// targets. TestImageEqualsLibpcap compares it with libpcap's on every
// opcode.
func imageLine(in bpf.RawInstruction, n int) string {
	op, arg := imageParts(in, n)
	// The jt/jf suffix follows the class and operation bits alone, also
	// for codes that are not instructions.
	if in.Op&0x07 == 0x05 && in.Op&0xf0 != 0 {
		return fmt.Sprintf("(%03d) %-8s %-16s jt %d\tjf %d", n, op, arg, n+1+int(in.Jt), n+1+int(in.Jf))
	}
	return fmt.Sprintf("(%03d) %-8s %s", n, op, arg)
}

// imageParts returns in's mnemonic and operand as libpcap writes them:
// offsets, scratch words, returns and arithmetic constants as signed
// decimals, comparisons, logic and loaded constants in hex.
func imageParts(in bpf.RawInstruction, n int) (op, arg string) {
	k := in.K
	signed := int32(k)
	switch in.Op {
	case 0x00:
		return "ld", fmt.Sprintf("#0x%x", k)
	case 0x01:
		return "ldx", fmt.Sprintf("#0x%x", k)
	case 0x20:
		return "ld", fmt.Sprintf("[%d]", signed)
	case 0x28:
		return "ldh", fmt.Sprintf("[%d]", signed)
	case 0x30:
		return "ldb", fmt.Sprintf("[%d]", signed)
	case 0x40:
		return "ld", fmt.Sprintf("[x + %d]", signed)
	case 0x48:
		return "ldh", fmt.Sprintf("[x + %d]", signed)
	case 0x50:
		return "ldb", fmt.Sprintf("[x + %d]", signed)
	case 0x60:
		return "ld", fmt.Sprintf("M[%d]", signed)
	case 0x61:
		return "ldx", fmt.Sprintf("M[%d]", signed)
	case 0x80:
		return "ld", "#pktlen"
	case 0xb1:
		return "ldxb", fmt.Sprintf("4*([%d]&0xf)", signed)
	case 0x02:
		return "st", fmt.Sprintf("M[%d]", signed)
	case 0x03:
		return "stx", fmt.Sprintf("M[%d]", signed)
	case 0x05:
		// The target, computed in 32 bits as a jump does.
		return "ja", fmt.Sprintf("%d", int32(uint32(n)+1+k))
	case 0x06:
		return "ret", fmt.Sprintf("#%d", signed)
	case 0x16:
		return "ret", ""
	case 0x07:
		return "tax", ""
	case 0x87:
		return "txa", ""
	case 0x84:
		return "neg", ""
	}
	if name, ok := aluNames[in.Op&^0x08]; ok && in.Op&0x07 == 0x04 {
		switch {
		case in.Op&0x08 != 0:
			return name, "x"
		case in.Op&0xf0 == 0x40 || in.Op&0xf0 == 0x50 || in.Op&0xf0 == 0xa0:
			return name, fmt.Sprintf("#0x%x", k)
		}
		return name, fmt.Sprintf("#%d", signed)
	}
	if name, ok := jumpNames[in.Op&^0x08]; ok {
		if in.Op&0x08 != 0 {
			return name, "x"
		}
		return name, fmt.Sprintf("#0x%x", k)
	}
	return "unimp", fmt.Sprintf("0x%x", in.Op)
}

// aluNames are the arithmetic operations by code with the constant
// operand: or, and and xor take theirs in hex.
var aluNames = map[uint16]string{
	0x04: "add", 0x14: "sub", 0x24: "mul", 0x34: "div", 0x94: "mod",
	0x44: "or", 0x54: "and", 0xa4: "xor", 0x64: "lsh", 0x74: "rsh",
}

// jumpNames are the conditional jumps by code with the constant operand.
var jumpNames = map[uint16]string{0x15: "jeq", 0x25: "jgt", 0x35: "jge", 0x45: "jset"}
