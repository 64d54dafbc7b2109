package bpfmatch

import "golang.org/x/net/bpf"

// listenerKernelProgram returns the socket filter of m for a TCP listening
// socket receiving the families v4 and v6, and why a family is not
// filtered (empty when the filter covers both, or the one there is).
func listenerKernelProgram(m *Matcher, v4, v6 bool) ([]bpf.RawInstruction, string) {
	var p4, p6 []bpf.RawInstruction
	var why4, why6 error
	if v4 {
		p4, why4 = kernelProgram(m, kernelTarget{tcp: true})
	}
	if v6 {
		p6, why6 = kernelProgram(m, kernelTarget{tcp: true, v6: true})
	}
	switch {
	case v4 && v6:
		switch {
		case why4 != nil && why6 != nil:
			if why4.Error() == why6.Error() {
				return nil, why4.Error()
			}
			return nil, "IPv4: " + why4.Error() + "; IPv6: " + why6.Error()
		case why4 != nil:
			return dualStack(nil, p6), "IPv4 connections are not filtered: " + why4.Error()
		case why6 != nil:
			return dualStack(p4, nil), "IPv6 connections are not filtered: " + why6.Error()
		}
		return dualStack(p4, p6), ""
	case v4:
		if why4 != nil {
			return nil, why4.Error()
		}
		return p4, ""
	case v6:
		if why6 != nil {
			return nil, why6.Error()
		}
		return p6, ""
	}
	return nil, "the listener's socket is neither IPv4 nor IPv6"
}
