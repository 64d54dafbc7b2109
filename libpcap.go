//go:build cgo

package bpfmatch

/*
#cgo LDFLAGS: -lpcap
#include <stdlib.h>
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

// bpfmatch_compile compiles expr for a dead handle of the link type and
// snap length, optimised, with the netmask given; on failure it copies
// libpcap's message into errbuf.
static int bpfmatch_compile(int link, int snap, const char *expr, bpf_u_int32 netmask,
	struct bpf_program *prog, char *errbuf)
{
	pcap_t *p = pcap_open_dead(link, snap);
	if (p == NULL) {
		strcpy(errbuf, "pcap_open_dead failed");
		return -1;
	}
	int r = pcap_compile(p, prog, expr, 1, netmask);
	if (r < 0) {
		strncpy(errbuf, pcap_geterr(p), PCAP_ERRBUF_SIZE - 1);
		errbuf[PCAP_ERRBUF_SIZE - 1] = 0;
	}
	pcap_close(p);
	return r;
}
*/
import "C"

import (
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/net/bpf"
)

// HaveLibpcap reports whether this build links libpcap, so that Compile and
// WithLibpcap work: it needs cgo.
const HaveLibpcap = true

// compileMu serialises pcap_compile, which libpcap before 1.8 did not make
// safe for concurrent use.
var compileMu sync.Mutex

// compileLibpcap compiles expr with libpcap's pcap_compile, optimised, with
// the netmask given, as tcpdump does; its memory is freed before it
// returns. gopacket's pcap.CompileBPFFilter would do, but it cannot pass
// a netmask, and tcpdump -r compiles with netmask 0, not "unknown".
func compileLibpcap(expr string, link LinkType, snap int, netmask uint32) ([]bpf.RawInstruction, error) {
	cexpr := C.CString(expr)
	defer C.free(unsafe.Pointer(cexpr))
	var errbuf [C.PCAP_ERRBUF_SIZE]C.char
	var prog C.struct_bpf_program
	compileMu.Lock()
	r := C.bpfmatch_compile(C.int(link), C.int(snap), cexpr, C.bpf_u_int32(netmask), &prog, &errbuf[0])
	compileMu.Unlock()
	if r < 0 {
		msg := strings.TrimSpace(C.GoString(&errbuf[0]))
		return nil, &CompileError{Expr: expr, LinkType: link, Msg: msg}
	}
	defer C.pcap_freecode(&prog)
	insns := unsafe.Slice((*bpf.RawInstruction)(unsafe.Pointer(prog.bf_insns)), int(prog.bf_len))
	return append([]bpf.RawInstruction(nil), insns...), nil
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
