package main

import (
	"fmt"
	"strings"

	"github.com/headlessbpf/bpfmatch"
	"golang.org/x/net/bpf"
)

// formatC returns raw as tcpdump -dd prints it: one C initialiser of a
// struct bpf_insn a line, code and k in hex, k zero-padded to 8 digits.
func formatC(raw []bpf.RawInstruction) string {
	var b strings.Builder
	for _, r := range raw {
		fmt.Fprintf(&b, "{ %#x, %d, %d, 0x%08x },\n", r.Op, r.Jt, r.Jf, r.K)
	}
	return b.String()
}

// formatDecimal returns raw as tcpdump -ddd prints it.
func formatDecimal(raw []bpf.RawInstruction) string {
	return bpfmatch.FormatProgram(raw)
}

// formatImage returns raw as tcpdump -d prints it: libpcap's text of each
// instruction (imageLine), a line each.
func formatImage(raw []bpf.RawInstruction) string {
	var b strings.Builder
	for i, r := range raw {
		b.WriteString(imageLine(r, i))
		b.WriteByte('\n')
	}
	return b.String()
}
