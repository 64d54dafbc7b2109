//go:build cgo

package main

/*
#cgo LDFLAGS: -lpcap
#include <pcap/pcap.h>
*/
import "C"

import (
	"sync"

	"golang.org/x/net/bpf"
)

// imageMu serialises bpf_image, which returns a static buffer that the
// next call overwrites.
var imageMu sync.Mutex

// bpfImage returns libpcap's text of each instruction of raw, as tcpdump -d
// prints them: libpcap itself formats, so the text is tcpdump's exactly.
func bpfImage(raw []bpf.RawInstruction) ([]string, error) {
	imageMu.Lock()
	defer imageMu.Unlock()
	lines := make([]string, len(raw))
	var in C.struct_bpf_insn
	for i, r := range raw {
		in.code = C.u_short(r.Op)
		in.jt = C.u_char(r.Jt)
		in.jf = C.u_char(r.Jf)
		in.k = C.bpf_u_int32(r.K)
		// bpf_image needs the index only to print jump targets.
		lines[i] = C.GoString(C.bpf_image(&in, C.int(i)))
	}
	return lines, nil
}
