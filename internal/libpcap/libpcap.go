//go:build cgo && libpcap

// Package libpcap is the project's one binding to libpcap: its compiler,
// its interpreter, bpf_validate and bpf_image, for the libpcap path of
// bpfmatch (build tag libpcap) and for the tests that compare with libpcap.
//
// Program, bpfmatch's WithLibpcap executor, runs programs through
// gopacket's pcap package (pcap.BPF.Matches), the dependency the design
// names. This file's own cgo covers what gopacket lacks: pcap_compile with
// a netmask and the optimise flag (gopacket's passes "netmask unknown" and
// always optimises), bpf_validate, bpf_image, and Filter, a
// pcap_offline_filter on a Go slice with no program to build first, which
// the differential tests call millions of times.
package libpcap

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

static int bpfmatch_compile(int link, int snap, const char *expr, int optimize,
	bpf_u_int32 netmask, struct bpf_program *prog, char *errbuf)
{
	pcap_t *p = pcap_open_dead(link, snap);
	if (p == NULL) {
		strcpy(errbuf, "pcap_open_dead failed");
		return -1;
	}
	int r = pcap_compile(p, prog, expr, optimize, netmask);
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
	"errors"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/net/bpf"
)

// Available reports whether this build links libpcap.
const Available = true

// compileMu serialises pcap_compile, which libpcap before 1.8 did not make
// safe for concurrent use.
var compileMu sync.Mutex

// Compile compiles expr with pcap_compile on a dead handle of the link type
// (a DLT number) and snap length, optimised or not, with the netmask given.
// The error is libpcap's message. libpcap's memory is freed before it
// returns.
func Compile(expr string, link, snap int, optimize bool, netmask uint32) ([]bpf.RawInstruction, error) {
	if strings.IndexByte(expr, 0) >= 0 {
		return nil, errors.New("expression contains a NUL byte")
	}
	cexpr := C.CString(expr)
	defer C.free(unsafe.Pointer(cexpr))
	var errbuf [C.PCAP_ERRBUF_SIZE]C.char
	var prog C.struct_bpf_program
	opt := C.int(0)
	if optimize {
		opt = 1
	}
	compileMu.Lock()
	r := C.bpfmatch_compile(C.int(link), C.int(snap), cexpr, opt, C.bpf_u_int32(netmask), &prog, &errbuf[0])
	compileMu.Unlock()
	if r < 0 {
		return nil, errors.New(strings.TrimSpace(C.GoString(&errbuf[0])))
	}
	defer C.pcap_freecode(&prog)
	insns := unsafe.Slice((*bpf.RawInstruction)(unsafe.Pointer(prog.bf_insns)), int(prog.bf_len))
	return append([]bpf.RawInstruction(nil), insns...), nil
}

var noBytes byte

// Filter runs prog, which must be valid, on data with pcap_offline_filter
// and returns what it returns. caplen must not exceed len(data).
func Filter(prog []bpf.RawInstruction, data []byte, caplen, wirelen uint32) uint32 {
	if len(prog) == 0 || int(caplen) > len(data) {
		return 0
	}
	pkt := &noBytes // libpcap wants a pointer even for no bytes
	if len(data) > 0 {
		pkt = &data[0]
	}
	return uint32(C.bpfmatch_offline_filter(
		(*C.struct_bpf_insn)(unsafe.Pointer(&prog[0])), C.u_int(len(prog)),
		(*C.u_char)(unsafe.Pointer(pkt)), C.bpf_u_int32(caplen), C.bpf_u_int32(wirelen)))
}

// Validate reports whether libpcap's bpf_validate accepts prog.
func Validate(prog []bpf.RawInstruction) bool {
	if len(prog) == 0 {
		return C.bpf_validate(nil, 0) != 0
	}
	return C.bpf_validate((*C.struct_bpf_insn)(unsafe.Pointer(&prog[0])), C.int(len(prog))) != 0
}

// imageMu serialises bpf_image, which returns a static buffer that the
// next call overwrites.
var imageMu sync.Mutex

// Image returns libpcap's text of each instruction of prog, as tcpdump -d
// prints them.
func Image(prog []bpf.RawInstruction) []string {
	imageMu.Lock()
	defer imageMu.Unlock()
	lines := make([]string, len(prog))
	var in C.struct_bpf_insn
	for i, r := range prog {
		in.code = C.u_short(r.Op)
		in.jt = C.u_char(r.Jt)
		in.jf = C.u_char(r.Jf)
		in.k = C.bpf_u_int32(r.K)
		lines[i] = C.GoString(C.bpf_image(&in, C.int(i)))
	}
	return lines
}
