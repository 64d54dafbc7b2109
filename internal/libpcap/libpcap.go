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
#include <stdio.h>
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

// bpfmatch_compile compiles as tcpdump -r does: on the handle of a capture
// file (an empty one in memory) of the LINKTYPE linktype and snapshot
// length snap, for libpcap refuses there what only a live capture can
// test (inbound, outbound, ifindex on most link types). linktype -1 means
// a dead handle of the DLT link, for what a file cannot hold.
static int bpfmatch_compile(int link, int linktype, int snap, const char *expr,
	int optimize, bpf_u_int32 netmask, struct bpf_program *prog, char *errbuf)
{
	unsigned char hdr[24];
	pcap_t *p = NULL;
	if (linktype >= 0) {
		u_int v[6] = {0xa1b2c3d4, 0x00040002, 0, 0, (u_int)snap, (u_int)linktype};
		memcpy(hdr, v, sizeof hdr); // host byte order, which the magic tells
		FILE *f = fmemopen(hdr, sizeof hdr, "rb");
		if (f == NULL) {
			strcpy(errbuf, "fmemopen failed");
			return -1;
		}
		p = pcap_fopen_offline(f, errbuf); // closes f when closed
		if (p == NULL) {
			fclose(f);
			return -1;
		}
	} else {
		p = pcap_open_dead(link, snap);
		if (p == NULL) {
			strcpy(errbuf, "pcap_open_dead failed");
			return -1;
		}
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

// Compile compiles expr with pcap_compile for the link type (a DLT number)
// and snap length, optimised or not, with the netmask given, as tcpdump
// -r compiles for a capture file of that link type and snapshot length:
// on the handle of an empty file, so that libpcap refuses, as tcpdump -r
// does, what no saved packet can tell (inbound and outbound but on Linux
// cooked captures, ifindex but on LINUX_SLL2). A snap length a capture
// file cannot give exactly (0, or above 262144, which libpcap lowers)
// compiles on a dead handle. The error is libpcap's message. libpcap's
// memory is freed before it returns.
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
	linktype := -1
	if snap > 0 && snap <= maxFileSnap {
		linktype = fileLinkType(link)
	}
	r := C.bpfmatch_compile(C.int(link), C.int(linktype), C.int(snap), cexpr, opt, C.bpf_u_int32(netmask), &prog, &errbuf[0])
	compileMu.Unlock()
	if r < 0 {
		return nil, errors.New(strings.TrimSpace(C.GoString(&errbuf[0])))
	}
	defer C.pcap_freecode(&prog)
	insns := unsafe.Slice((*bpf.RawInstruction)(unsafe.Pointer(prog.bf_insns)), int(prog.bf_len))
	return append([]bpf.RawInstruction(nil), insns...), nil
}

// maxFileSnap is the largest snapshot length libpcap keeps as a capture
// file gives it, for the link types the project compiles for.
const maxFileSnap = 262144

// fileLinkType returns the LINKTYPE number a capture file gives the DLT
// link: the same but for a few old types, raw IP among them.
func fileLinkType(link int) int {
	switch link {
	case 11:
		return 100 // ATM_RFC1483
	case 12:
		return 101 // RAW
	case 15:
		return 102 // SLIP_BSDOS
	case 16:
		return 103 // PPP_BSDOS
	case 19:
		return 106 // ATM_CLIP
	}
	return link
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
