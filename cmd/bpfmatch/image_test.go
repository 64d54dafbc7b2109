package main

import (
	"bufio"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/headlessbpf/bpfmatch/internal/libpcap"
	"golang.org/x/net/bpf"
)

func needLibpcap(t *testing.T) {
	t.Helper()
	if !libpcap.Available {
		t.Skip("built without libpcap (go test -tags libpcap, with cgo): nothing to compare with")
	}
}

// compareImage compares formatImage with libpcap's bpf_image on prog.
func compareImage(t *testing.T, what string, prog []bpf.RawInstruction) (n int) {
	t.Helper()
	want := libpcap.Image(prog)
	got := strings.Split(strings.TrimSuffix(formatImage(prog), "\n"), "\n")
	if len(prog) == 0 {
		got = nil
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d lines, libpcap %d", what, len(got), len(want))
	}
	bad := 0
	for i := range want {
		if got[i] != want[i] {
			bad++
			if bad <= 20 {
				t.Errorf("%s: instruction %d %+v: %q, libpcap %q", what, i, prog[i], got[i], want[i])
			}
		}
	}
	if bad > 20 {
		t.Errorf("%s: %d lines differ in all", what, bad)
	}
	return len(want)
}

// TestImageEqualsLibpcap compares -d's text with libpcap's bpf_image for
// every 16-bit opcode with operands and jumps of every sign and width, at
// indices from 0 to 65535, and for every program libpcap compiles from the
// corpus filters.
func TestImageEqualsLibpcap(t *testing.T) {
	needLibpcap(t)
	var lines int
	for _, k := range []uint32{0, 1, 5, 15, 0x7f, 0x80, 0xff, 0x7fffffff, 0x80000000, 0xfffffff1, 0xffffffff, 262144, 65535} {
		for _, down := range []bool{false, true} {
			prog := make([]bpf.RawInstruction, 1<<16)
			for i := range prog {
				op := uint16(i)
				if down {
					op = ^op
				}
				prog[i] = bpf.RawInstruction{Op: op, Jt: uint8(i), Jf: uint8(i * 7), K: k}
			}
			lines += compareImage(t, "every opcode", prog)
		}
	}
	// The jumps' 32-bit targets wrap: ja from the last index of a long
	// program past the end and back.
	long := make([]bpf.RawInstruction, 70000)
	for i := range long {
		long[i] = bpf.RawInstruction{Op: 0x05, K: ^uint32(i * 61417)}
	}
	lines += compareImage(t, "ja", long)

	exprs := corpusFilterLines(t, "libpcap-ethernet.txt", "realworld.txt", "libpcap-raw.txt")
	var programs int
	for _, link := range []int{1, 12, 113, 228, 229, 276} {
		for _, e := range exprs {
			prog, err := libpcap.Compile(e, link, 262144, true, 0)
			if err != nil {
				continue
			}
			programs++
			lines += compareImage(t, e, prog)
			if unopt, err := libpcap.Compile(e, link, 262144, false, 0); err == nil {
				programs++
				lines += compareImage(t, e+" (unoptimised)", unopt)
			}
		}
	}
	if programs == 0 {
		t.Error("libpcap compiled no corpus expression")
	}
	t.Logf("%d lines compared with libpcap's bpf_image, %d of them of %d corpus programs", lines, lines-26*(1<<16)-len(long), programs)
}

// corpusFilterLines returns the expressions of the corpus's filter files.
func corpusFilterLines(t *testing.T, names ...string) []string {
	t.Helper()
	var out []string
	for _, name := range names {
		f, err := os.Open(filepath.Join(needCorpus(t, "filters"), name))
		if err != nil {
			t.Fatal(err)
		}
		s := bufio.NewScanner(f)
		for s.Scan() {
			if line := strings.TrimSpace(s.Text()); line != "" && !strings.HasPrefix(line, "#") {
				out = append(out, line)
			}
		}
		f.Close()
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestImageKnown pins a few lines, so that builds without libpcap check the
// formatter too.
func TestImageKnown(t *testing.T) {
	tests := []struct {
		in   bpf.RawInstruction
		n    int
		want string
	}{
		{bpf.RawInstruction{Op: 0x28, K: 12}, 0, "(000) ldh      [12]"},
		{bpf.RawInstruction{Op: 0x15, Jt: 0, Jf: 8, K: 0x86dd}, 1, "(001) jeq      #0x86dd          jt 2\tjf 10"},
		{bpf.RawInstruction{Op: 0x30, K: 20}, 2, "(002) ldb      [20]"},
		{bpf.RawInstruction{Op: 0xb1, K: 14}, 3, "(003) ldxb     4*([14]&0xf)"},
		{bpf.RawInstruction{Op: 0x48, K: 16}, 4, "(004) ldh      [x + 16]"},
		{bpf.RawInstruction{Op: 0x45, Jt: 4, K: 0x1fff}, 5, "(005) jset     #0x1fff          jt 10\tjf 6"},
		{bpf.RawInstruction{Op: 0x54, K: 0xf0}, 6, "(006) and      #0xf0"},
		{bpf.RawInstruction{Op: 0x74, K: 2}, 7, "(007) rsh      #2"},
		{bpf.RawInstruction{Op: 0x0c}, 8, "(008) add      x"},
		{bpf.RawInstruction{Op: 0x1d, Jt: 1}, 9, "(009) jeq      x                jt 11\tjf 10"},
		{bpf.RawInstruction{Op: 0x06, K: 262144}, 10, "(010) ret      #262144"},
		{bpf.RawInstruction{Op: 0x16}, 11, "(011) ret      "},
		{bpf.RawInstruction{Op: 0x80}, 12, "(012) ld       #pktlen"},
		{bpf.RawInstruction{Op: 0x87}, 13, "(013) txa      "},
		{bpf.RawInstruction{Op: 0x02, K: 1}, 14, "(014) st       M[1]"},
		{bpf.RawInstruction{Op: 0x05, K: 3}, 1000, "(1000) ja       1004"},
		{bpf.RawInstruction{Op: 0x04, K: 0xfffffff1}, 15, "(015) add      #-15"},
		{bpf.RawInstruction{Op: 0x81}, 16, "(016) unimp    0x81"},
		{bpf.RawInstruction{Op: 0x55, Jt: 1, Jf: 2}, 17, "(017) unimp    0x55             jt 19\tjf 20"},
	}
	for _, tc := range tests {
		if got := imageLine(tc.in, tc.n); got != tc.want {
			t.Errorf("imageLine(%+v, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// TestLibpcapFlag checks -libpcap: libpcap's program and verdicts in a
// build with libpcap, a clear error in one without.
func TestLibpcapFlag(t *testing.T) {
	if !libpcap.Available {
		r := runArgs("-libpcap", "-d", "tcp")
		checkResult(t, r, exitError, "", "-tags libpcap")
		return
	}
	const expr = "tcp dst port 80 and src net 192.0.2.0/24"
	want, err := libpcap.Compile(expr, 1, 262144, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, runArgs("-libpcap", "-d", expr), exitMatch, formatImage(want), "")
	checkResult(t, runArgs("-libpcap", "-ddd", expr), exitMatch, formatDecimal(want), "")
	checkResult(t, runArgs("-libpcap", expr), exitMatch, "match\n", "")
	checkResult(t, runArgs("-libpcap", "-dst", "192.0.2.2:81", expr), exitNoMatch, "no match\n", "")
	checkResult(t, runArgs("-libpcap", "tcp and"), exitError, "", "syntax error")
	// libpcap compiles for link types the Go compiler does not know.
	dir := t.TempDir()
	file := filepath.Join(dir, "ppp.pcap")
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 65535)
	binary.LittleEndian.PutUint32(hdr[20:], 9) // LINKTYPE_PPP
	if err := os.WriteFile(file, hdr, 0o644); err != nil {
		t.Fatal(err)
	}
	checkResult(t, runArgs("-libpcap", "-r", file, "ip"), exitNoMatch, "0\n", "")
}
