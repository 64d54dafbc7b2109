package bpfmatch

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
)

// execValidateOracle is libpcap's bpf_validate; nil without cgo.
var execValidateOracle func(raw []bpf.RawInstruction) bool

// executable lists the opcodes libpcap 1.10's interpreter executes.
var executable = func() map[uint16]bool {
	m := map[uint16]bool{bpfLdMem: true, bpfLdxMem: true, bpfSt: true, bpfStx: true, bpfJa: true,
		bpfALU | bpfDiv: true, bpfALU | bpfMod: true, bpfALU | bpfLsh: true, bpfALU | bpfRsh: true}
	for code := range simpleOps {
		m[code] = true
	}
	return m
}()

// stricterRule says why newProgram rejects raw where libpcap 1.10's
// bpf_validate accepts it, or "".
func stricterRule(raw []bpf.RawInstruction) string {
	for _, r := range raw {
		if !executable[r.Op] {
			return "an opcode libpcap's interpreter does not execute"
		}
		if r.Op == bpfJa && r.K == 0xffffffff {
			return "a jump to itself"
		}
	}
	return ""
}

// TestProgramValidate checks that newProgram rejects invalid programs
// with an error naming the instruction and the problem.
func TestProgramValidate(t *testing.T) {
	ok := []bpf.RawInstruction{stmt(bpfLdImm, 1), retA()}
	for _, c := range []struct {
		name string
		prog []bpf.RawInstruction
		err  string // "" for valid
	}{
		{"valid", ok, ""},
		{"ret only", prog(retK(0)), ""},
		{"empty", nil, "empty program"},
		{"no return at the end", prog(stmt(bpfLdImm, 1)), "instruction 0 (code 0x0, jt 0, jf 0, k 1): the last instruction is not a return"},
		{"unknown opcode", prog(stmt(0xff, 0), retA()), "instruction 0 (code 0xff, jt 0, jf 0, k 0): unknown opcode 0xff"},
		{"opcode with high bits", prog(stmt(0x106, 0)), "instruction 0 (code 0x106, jt 0, jf 0, k 0): unknown opcode 0x106"},
		{"ret x", prog(stmt(0x0e, 0)), "unknown opcode 0xe"},
		{"ldh imm", prog(stmt(0x08, 0), retA()), "unknown opcode 0x8"},
		{"ldx abs", prog(stmt(0x21, 0), retA()), "unknown opcode 0x21"},
		{"neg x", prog(stmt(0x8c, 0), retA()), "unknown opcode 0x8c"},
		{"ja x", prog(stmt(0x0d, 0), retA()), "unknown opcode 0xd"},
		{"ld M[16]", prog(stmt(bpfLdMem, 16), retA()), "instruction 0 (code 0x60, jt 0, jf 0, k 16): scratch memory M[16] does not exist"},
		{"ldx M[16]", prog(stmt(bpfLdxMem, 16), retA()), "scratch memory M[16]"},
		{"st M[16]", prog(retK(0), stmt(bpfSt, 16), retA()), "instruction 1 (code 0x2, jt 0, jf 0, k 16): scratch memory M[16]"},
		{"stx M[max]", prog(stmt(bpfStx, 0xffffffff), retA()), "scratch memory M[4294967295]"},
		{"st M[15]", prog(stmt(bpfSt, 15), retA()), ""},
		{"div 0", prog(alu(bpfDiv, 0), retA()), "instruction 0 (code 0x34, jt 0, jf 0, k 0): division by the constant 0"},
		{"mod 0", prog(alu(bpfMod, 0), retA()), "code 0x94, jt 0, jf 0, k 0): division by the constant 0"},
		{"div x", prog(aluX(bpfDiv), retA()), ""},
		{"lsh 32", prog(alu(bpfLsh, 32), retA()), ""},
		{"ja past the end", prog(stmt(bpfJa, 1), retA()), "instruction 0 (code 0x5, jt 0, jf 0, k 1): jump to 2, outside the 2 instructions"},
		{"ja to the last", prog(stmt(bpfJa, 0), retA()), ""},
		{"ja to itself", prog(retK(0), stmt(bpfJa, 0xffffffff), retA()), "instruction 1 (code 0x5, jt 0, jf 0, k 4294967295): jump to itself"},
		{"ja before the start", prog(stmt(bpfJa, 0xfffffffe), retA()), "jump to -1, outside the 2 instructions"},
		{"ja backward", prog(retK(0), stmt(bpfJa, 0xfffffffe), retA()), ""},
		{"ja far backward", prog(retK(0), stmt(bpfJa, 0x80000000), retA()), "jump to -2147483646, outside"},
		{"jeq jt past the end", prog(jmp(bpfJeqK, 0, 1, 0), retA()), "instruction 0 (code 0x15, jt 1, jf 0, k 0): jump to 2, past the end of the 2 instructions"},
		{"jgt jf past the end", prog(jmp(bpfJgtX, 0, 0, 255), retA()), "jump to 256, past the end"},
		{"jset both to the end", prog(jmp(bpfJsetK, 0, 1, 1), retK(1), retA()), ""},
		{"last is a jump", prog(retK(1), stmt(bpfJa, 0xfffffffe)), "instruction 1 (code 0x5, jt 0, jf 0, k 4294967294): the last instruction is not a return"},
	} {
		_, err := newProgram(c.prog)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v\nprogram:\n%s", c.name, err, FormatProgram(c.prog))
		case c.err != "" && err == nil:
			t.Errorf("%s: accepted, want an error containing %q\nprogram:\n%s", c.name, c.err, FormatProgram(c.prog))
		case c.err != "" && !strings.Contains(err.Error(), c.err):
			t.Errorf("%s: error %q, want one containing %q", c.name, err, c.err)
		}
		if execValidateOracle != nil {
			lp := execValidateOracle(c.prog)
			if want := lp && stricterRule(c.prog) == ""; want != (err == nil) {
				t.Errorf("%s: newProgram accepts: %v, libpcap: %v, stricter rule: %q", c.name, err == nil, lp, stricterRule(c.prog))
			}
		}
	}
}

func TestProgramParseFormat(t *testing.T) {
	want := []bpf.RawInstruction{{Op: 40, K: 12}, {Op: 21, Jf: 8, K: 34525}, {Op: 48, K: 20}, {Op: 21, Jt: 2, K: 6}}
	for _, c := range []struct{ name, text string }{
		{"tcpdump", "4\n40 0 0 12\n21 0 8 34525\n48 0 0 20\n21 2 0 6\n"},
		{"no final newline", "4\n40 0 0 12\n21 0 8 34525\n48 0 0 20\n21 2 0 6"},
		{"crlf and blank lines", "\r\n4\r\n40 0 0 12\r\n\r\n21 0 8 34525\r\n48 0 0 20\r\n21 2 0 6\r\n\r\n\r\n"},
		{"spaces and tabs", "  4  \n\t40\t0 0   12 \n21 0 8 34525\n48 0 0 20\n21 2 0 6   \n   \n"},
		{"xt_bpf commas", "4,40 0 0 12,21 0 8 34525,48 0 0 20,21 2 0 6"},
		{"xt_bpf trailing comma", "4,40 0 0 12,21 0 8 34525,48 0 0 20,21 2 0 6,\n"},
	} {
		got, err := ParseProgram(c.text)
		if err != nil {
			t.Errorf("%s: %v\ntext: %q", c.name, err, c.text)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %v, want %v", c.name, got, want)
		}
	}
	text := FormatProgram(want)
	if wantText := "4\n40 0 0 12\n21 0 8 34525\n48 0 0 20\n21 2 0 6\n"; text != wantText {
		t.Errorf("FormatProgram: got %q, want %q", text, wantText)
	}
	if got := FormatProgram(nil); got != "0\n" {
		t.Errorf("FormatProgram(nil) = %q, want %q", got, "0\n")
	}
	extremes := []bpf.RawInstruction{{Op: 0xffff, Jt: 255, Jf: 255, K: 0xffffffff}, {}}
	back, err := ParseProgram(FormatProgram(extremes))
	if err != nil || !reflect.DeepEqual(back, extremes) {
		t.Errorf("round trip of %v: %v, %v", extremes, back, err)
	}
	for _, bp := range benchPrograms {
		raw, err := ParseProgram(bp.ddd)
		if err != nil {
			t.Fatalf("%s: %v", bp.name, err)
		}
		back, err := ParseProgram(FormatProgram(raw))
		if err != nil || !reflect.DeepEqual(back, raw) {
			t.Errorf("%s: round trip: %v, %v", bp.name, back, err)
		}
	}
}

func TestProgramParseErrors(t *testing.T) {
	for _, c := range []struct{ name, text, err string }{
		{"empty", "", "no instruction count: the text is empty"},
		{"blank", " \n\n \t\n", "no instruction count"},
		{"count not a number", "x\n6 0 0 0\n", `line 1: instruction count "x" is not a decimal number`},
		{"negative count", "-1\n", `line 1: instruction count "-1" is not a decimal number`},
		{"count with more", "1 2\n6 0 0 0\n", `line 1: want the instruction count, found "1 2"`},
		{"fewer than the count", "3\n6 0 0 0\n6 0 0 1\n", "line 1 gives a count of 3 instructions, but 2 follow"},
		{"more than the count", "1\n6 0 0 0\n6 0 0 1\n", "line 3: more instructions than the count of 1 on line 1"},
		{"three numbers", "1\n6 0 0\n", `line 2: want 4 numbers "code jt jf k", found 3 in "6 0 0"`},
		{"five numbers", "1\n6 0 0 0 0\n", "line 2: want 4 numbers"},
		{"code too large", "1\n65536 0 0 0\n", `line 2: code "65536" is not a decimal number from 0 to 65535`},
		{"jt too large", "1\n6 256 0 0\n", `line 2: jt "256" is not a decimal number from 0 to 255`},
		{"jf negative", "1\n6 0 -1 0\n", `line 2: jf "-1" is not a decimal number from 0 to 255`},
		{"k too large", "1\n6 0 0 4294967296\n", `line 2: k "4294967296" is not a decimal number from 0 to 4294967295`},
		{"k hex", "1\n6 0 0 0x10\n", `line 2: k "0x10" is not a decimal`},
		{"tcpdump -d text", "(000) ldh [12]\n", `line 1: want the instruction count, found "(000) ldh [12]"`},
		{"commas, bad item", "2,6 0 0 0,6 x 0 0", `line 1, item 3: jt "x" is not a decimal number`},
		{"commas, missing item", "3,6 0 0 0,6 0 0 0", "line 1, item 1 gives a count of 3 instructions, but 2 follow"},
	} {
		raw, err := ParseProgram(c.text)
		if err == nil {
			t.Errorf("%s: parsed %q into %v, want an error", c.name, c.text, raw)
			continue
		}
		if !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: error %q, want one containing %q", c.name, err, c.err)
		}
	}
}

// TestProgramTcpdump checks FormatProgram against tcpdump -ddd itself.
func TestProgramTcpdump(t *testing.T) {
	path, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Skip("tcpdump is not on PATH: skipping the comparison with tcpdump -ddd")
	}
	pcap := filepath.Join("..", "shared", "corpus", "pcaps", "ssh.pcap")
	if _, err := os.Stat(pcap); err != nil {
		t.Skipf("no capture for tcpdump -r (%v): skipping the comparison with tcpdump -ddd", err)
	}
	for _, expr := range []string{"tcp port 22", "ip6 protochain 6", "udp and ip[6:2] & 0x1fff = 0", "len > 1000000"} {
		out, err := exec.Command(path, "-ddd", "-r", pcap, expr).Output()
		if err != nil {
			t.Fatalf("tcpdump -ddd %q: %v", expr, err)
		}
		raw, err := ParseProgram(string(out))
		if err != nil {
			t.Fatalf("%q: parsing tcpdump's output: %v\n%s", expr, err, out)
		}
		if got := FormatProgram(raw); got != string(out) {
			t.Errorf("%q: FormatProgram gives\n%s\ntcpdump -ddd gives\n%s", expr, got, out)
		}
		if _, err := newProgram(raw); err != nil {
			t.Errorf("%q: newProgram: %v", expr, err)
		}
		if execCompile != nil {
			lib, err := execCompile(expr, LinkEthernet, 65535)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(lib, raw) {
				t.Errorf("%q: libpcap compiles\n%s\ntcpdump -ddd prints\n%s", expr, FormatProgram(lib), out)
			}
		}
	}
}

// execCompile is compileLibpcap; nil without cgo.
var execCompile func(expr string, link LinkType, snap int) ([]bpf.RawInstruction, error)

// rawFromBytes reads instructions as 8 little-endian bytes each: code,
// jt, jf, k.
func rawFromBytes(b []byte) []bpf.RawInstruction {
	var raw []bpf.RawInstruction
	for ; len(b) >= 8; b = b[8:] {
		raw = append(raw, bpf.RawInstruction{Op: binary.LittleEndian.Uint16(b), Jt: b[2], Jf: b[3],
			K: binary.LittleEndian.Uint32(b[4:])})
	}
	return raw
}

func rawToBytes(raw []bpf.RawInstruction) []byte {
	var b []byte
	for _, r := range raw {
		b = binary.LittleEndian.AppendUint16(b, r.Op)
		b = append(b, r.Jt, r.Jf)
		b = binary.LittleEndian.AppendUint32(b, r.K)
	}
	return b
}

// FuzzValidate feeds newProgram arbitrary instructions: it must not panic,
// must accept what libpcap accepts bar the stricter rules, and the
// programs it accepts must run to the end on any packet, as refRun does.
func FuzzValidate(f *testing.F) {
	for _, bp := range benchPrograms {
		raw, err := ParseProgram(bp.ddd)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(rawToBytes(raw), seq16, uint16(0))
	}
	for _, c := range execCases() {
		f.Add(rawToBytes(c.prog), seq16, uint16(c.trunc))
	}
	raw, err := ParseProgram(protochain6)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rawToBytes(raw), ipv6Chain(51, 51, 8, 0, 0, 0, 0, 0, 0), uint16(0))
	f.Add([]byte{}, []byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, code []byte, pkt []byte, trunc uint16) {
		raw := rawFromBytes(code)
		p, err := newProgram(raw)
		if execValidateOracle != nil {
			lp := execValidateOracle(raw)
			if want := lp && stricterRule(raw) == ""; want != (err == nil) {
				t.Fatalf("newProgram accepts: %v (%v), libpcap: %v, stricter rule: %q\nprogram:\n%s",
					err == nil, err, lp, stricterRule(raw), FormatProgram(raw))
			}
		}
		if err != nil {
			return
		}
		caplen := uint32(len(pkt) - min(int(trunc), len(pkt)))
		want, _ := refRun(raw, pkt, caplen, uint32(len(pkt)))
		for _, split := range []int{0, len(pkt) / 2, len(pkt)} {
			f := frame{hdr: pkt[:split], payload: pkt[split:], caplen: caplen, wirelen: uint32(len(pkt))}
			if got := p.run(&f); got != want {
				t.Fatalf("split %d: run %#x, refRun %#x\nprogram:\n%spacket %s caplen %d",
					split, got, want, FormatProgram(raw), hexOf(pkt), caplen)
			}
		}
	})
}
