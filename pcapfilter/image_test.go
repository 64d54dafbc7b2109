package pcapfilter_test

// A text form of BPF instructions, the one tcpdump -d prints (libpcap's
// bpf_image), written here so that the golden files read the same with or
// without libpcap; TestImageEqualsLibpcapDifferential proves it equal.

import (
	"fmt"
	"strings"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/headlessbpf/bpfmatch/internal/libpcap"
)

// dtImageForms gives, for each opcode libpcap names, its mnemonic and how
// its operand is written: %d or %#x of k ("0x0" for 0), or a fixed text.
// Every other opcode is "unimp".
var dtImageForms = map[uint16][2]string{
	0x00: {"ld", "#0x%x"}, 0x01: {"ldx", "#0x%x"}, 0x02: {"st", "M[%d]"}, 0x03: {"stx", "M[%d]"},
	0x20: {"ld", "[%d]"}, 0x28: {"ldh", "[%d]"}, 0x30: {"ldb", "[%d]"},
	0x40: {"ld", "[x + %d]"}, 0x48: {"ldh", "[x + %d]"}, 0x50: {"ldb", "[x + %d]"},
	0x60: {"ld", "M[%d]"}, 0x61: {"ldx", "M[%d]"}, 0x80: {"ld", "#pktlen"}, 0xb1: {"ldxb", "4*([%d]&0xf)"},
	0x04: {"add", "#%d"}, 0x14: {"sub", "#%d"}, 0x24: {"mul", "#%d"}, 0x34: {"div", "#%d"}, 0x94: {"mod", "#%d"},
	0x44: {"or", "#0x%x"}, 0x54: {"and", "#0x%x"}, 0xa4: {"xor", "#0x%x"}, 0x64: {"lsh", "#%d"}, 0x74: {"rsh", "#%d"},
	0x0c: {"add", "x"}, 0x1c: {"sub", "x"}, 0x2c: {"mul", "x"}, 0x3c: {"div", "x"}, 0x9c: {"mod", "x"},
	0x4c: {"or", "x"}, 0x5c: {"and", "x"}, 0xac: {"xor", "x"}, 0x6c: {"lsh", "x"}, 0x7c: {"rsh", "x"},
	0x84: {"neg", ""}, 0x07: {"tax", ""}, 0x87: {"txa", ""}, 0x06: {"ret", "#%d"}, 0x16: {"ret", ""},
	0x15: {"jeq", "#0x%x"}, 0x25: {"jgt", "#0x%x"}, 0x35: {"jge", "#0x%x"}, 0x45: {"jset", "#0x%x"},
	0x1d: {"jeq", "x"}, 0x2d: {"jgt", "x"}, 0x3d: {"jge", "x"}, 0x4d: {"jset", "x"},
}

// dtImage returns instruction in, at index pc, as tcpdump -d prints it.
func dtImage(in bpf.RawInstruction, pc int) string {
	if in.Op == 0x05 { // ja: the operand is the target
		return fmt.Sprintf("(%03d) %-8s %d", pc, "ja", int32(uint32(pc)+1+in.K))
	}
	form, ok := dtImageForms[in.Op]
	if !ok {
		form = [2]string{"unimp", fmt.Sprintf("0x%x", in.Op)}
	}
	operand := form[1]
	switch {
	case strings.Contains(operand, "%d"): // signed, as libpcap prints it
		operand = fmt.Sprintf(operand, int32(in.K))
	case strings.Contains(operand, "%"):
		operand = fmt.Sprintf(operand, in.K)
	}
	if in.Op&0x07 == 0x05 && in.Op&0xf0 != 0 { // conditional jumps, even unknown ones
		return fmt.Sprintf("(%03d) %-8s %-16s jt %d\tjf %d", pc, form[0], operand, pc+1+int(in.Jt), pc+1+int(in.Jf))
	}
	return fmt.Sprintf("(%03d) %-8s %s", pc, form[0], operand)
}

// TestImageEqualsLibpcapDifferential proves image equal to libpcap's
// bpf_image on every opcode, with operands of every kind.
func TestImageEqualsLibpcapDifferential(t *testing.T) {
	dtLibpcapOrSkip(t)
	operands := []bpf.RawInstruction{{K: 0}, {K: 12, Jt: 1, Jf: 2}, {K: 0x86dd, Jt: 255, Jf: 0}, {K: 0xffffffff, Jt: 7, Jf: 9}, {K: 0x80000000}}
	var compared, failed int
	for _, o := range operands {
		// One program of every opcode, each at its own index.
		prog := make([]bpf.RawInstruction, 0x10000)
		for op := range prog {
			prog[op] = bpf.RawInstruction{Op: uint16(op), Jt: o.Jt, Jf: o.Jf, K: o.K}
		}
		want := libpcap.Image(prog)
		for pc, in := range prog {
			got := dtImage(in, pc)
			compared++
			if got != want[pc] {
				failed++
				if failed <= 20 {
					t.Errorf("op 0x%04x jt %d jf %d k 0x%x at %d: image gives %q, libpcap %q", in.Op, in.Jt, in.Jf, in.K, pc, got, want[pc])
				}
			}
		}
	}
	t.Logf("image: compared %d instruction texts with libpcap's bpf_image, %d differ", compared, failed)
}
