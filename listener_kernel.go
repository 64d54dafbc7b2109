package bpfmatch

import "golang.org/x/net/bpf"

// listenerKernelProgram returns the socket filter of m for a TCP listening
// socket receiving the families v4 and v6, and why a family is not
// filtered (empty when the filter covers both, or the one there is).
func listenerKernelProgram(m *Matcher, v4, v6 bool) ([]bpf.RawInstruction, string) {
	var t4, t6 *kernelTarget
	if v4 {
		t4 = &kernelTarget{tcp: true}
	}
	if v6 {
		t6 = &kernelTarget{tcp: true, v6: true}
	}
	return familyProgram(m, t4, t6, "connections", "the listener's socket is neither IPv4 nor IPv6")
}
