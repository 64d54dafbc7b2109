//go:build cgo

package bpfmatch

/*
#cgo LDFLAGS: -lpcap
#include <string.h>
#include <pcap/pcap.h>

static int bpfmatch_offline_filter(const struct bpf_insn *insns, u_int n,
	const u_char *pkt, bpf_u_int32 caplen, bpf_u_int32 wirelen)
{
	struct bpf_program prog;
	struct pcap_pkthdr h;

	prog.bf_len = n;
	prog.bf_insns = (struct bpf_insn *)insns;
	memset(&h, 0, sizeof h);
	h.caplen = caplen;
	h.len = wirelen;
	return pcap_offline_filter(&prog, &h, pkt);
}
*/
import "C"

import (
	"strings"
	"unsafe"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcap"
	"golang.org/x/net/bpf"
)

// HaveLibpcap reports whether this build links libpcap, so that Compile and
// WithLibpcap work: it needs cgo.
const HaveLibpcap = true

// compileLibpcap compiles expr with libpcap's pcap_compile, optimised and
// with an unknown netmask, as tcpdump -r does.
func compileLibpcap(expr string, link LinkType, snap int) ([]bpf.RawInstruction, error) {
	insns, err := pcap.CompileBPFFilter(layers.LinkType(link), snap, expr)
	if err != nil {
		return nil, &CompileError{Expr: expr, LinkType: link, Msg: strings.TrimSpace(err.Error())}
	}
	raw := make([]bpf.RawInstruction, len(insns))
	for i, in := range insns {
		raw[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return raw, nil
}

var noBytes byte

// libpcapFilter runs raw, which must be valid, on data with libpcap's
// pcap_offline_filter, and returns what it returns; the caller keeps
// caplen <= len(data).
func libpcapFilter(raw []bpf.RawInstruction, data []byte, caplen, wirelen uint32) uint32 {
	if len(raw) == 0 || int(caplen) > len(data) {
		return 0
	}
	pkt := &noBytes // libpcap wants a pointer even for no bytes
	if len(data) > 0 {
		pkt = &data[0]
	}
	return uint32(C.bpfmatch_offline_filter(
		(*C.struct_bpf_insn)(unsafe.Pointer(&raw[0])), C.u_int(len(raw)),
		(*C.u_char)(unsafe.Pointer(pkt)), C.bpf_u_int32(caplen), C.bpf_u_int32(wirelen)))
}

// libpcapValidate reports whether libpcap's bpf_validate accepts raw.
func libpcapValidate(raw []bpf.RawInstruction) bool {
	if len(raw) == 0 {
		return C.bpf_validate(nil, 0) != 0
	}
	return C.bpf_validate((*C.struct_bpf_insn)(unsafe.Pointer(&raw[0])), C.int(len(raw))) != 0
}

// libpcapRun runs raw on f with libpcap, which needs the captured bytes in
// one piece. They are copied: the frame's own memory is on the caller's
// stack and must not be seen by C.
func libpcapRun(raw []bpf.RawInstruction, f *frame) uint32 {
	if f.lazyHi > f.lazyLo {
		f.touch(f.lazyLo, f.lazyHi)
	}
	data := make([]byte, f.caplen)
	n := copy(data, f.hdr)
	copy(data[n:], f.payload)
	return libpcapFilter(raw, data, f.caplen, f.wirelen)
}
