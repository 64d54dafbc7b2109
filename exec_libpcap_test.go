//go:build cgo && libpcap

package bpfmatch

import (
	"math/rand/v2"
	"net/netip"
	"sort"
	"testing"

	"github.com/headlessbpf/bpfmatch/internal/libpcap"
	"golang.org/x/net/bpf"
)

func init() {
	execOracle = libpcap.Filter
	execValidateOracle = libpcap.Validate
}

// TestExecCorpusDifferential runs every corpus expression on every packet
// of every corpus capture of its link type, whole and cut to 64 and 96
// bytes, and compares run's result with libpcap's.
func TestExecCorpusDifferential(t *testing.T) {
	caps := corpusCaptures(t)
	ether := corpusFilters(t, "libpcap-ethernet.txt", "realworld.txt")
	raw := corpusFilters(t, "libpcap-raw.txt")
	filtersFor := map[LinkType][]string{
		LinkEthernet: ether,
		LinkRaw:      raw,
		228:          raw, // LINKTYPE_IPV4
		229:          raw, // LINKTYPE_IPV6
	}
	stride := 1
	if raceEnabled {
		stride = 3
		t.Logf("race detector on: comparing one packet in %d only", stride)
	}
	type compiled struct {
		expr string
		raw  []bpf.RawInstruction
		prog *program
	}
	var comparisons, budgetStops int
	skipped := map[string]int{}
	programs := map[LinkType][]compiled{}
	for _, c := range caps {
		if _, ok := programs[c.link]; !ok {
			exprs, ok := filtersFor[c.link]
			if !ok {
				exprs = append(append([]string(nil), ether...), raw...)
			}
			list := []compiled{}
			for _, e := range exprs {
				r, err := compileLibpcap(e, c.link, DefaultSnapLen, 0)
				if err != nil {
					skipped[c.link.String()]++
					continue
				}
				p, err := newProgram(r)
				if err != nil {
					t.Errorf("%q for %v: newProgram rejects what libpcap compiled: %v\n%s", e, c.link, err, FormatProgram(r))
					continue
				}
				list = append(list, compiled{e, r, p})
			}
			programs[c.link] = list
		}
		list := programs[c.link]
		if len(list) == 0 {
			t.Logf("%s: no expression compiles for %v: skipped", c.name, c.link)
			continue
		}
		for i := 0; i < len(c.data); i += stride {
			data, wire := c.data[i], c.wires[i]
			for _, caplen := range []uint32{uint32(len(data)), min(uint32(len(data)), 96), min(uint32(len(data)), 64)} {
				for _, cp := range list {
					want, stopped := refRun(cp.raw, data, caplen, wire)
					if stopped {
						// libpcap 1.10 would loop forever; run stopped.
						budgetStops++
						continue
					}
					f := frame{hdr: data, caplen: caplen, wirelen: wire}
					got := cp.prog.run(&f)
					// Split as Match splits a packet, the headers apart.
					split := min(len(data), 54)
					f = frame{hdr: data[:split], payload: data[split:], caplen: caplen, wirelen: wire}
					gotSplit := cp.prog.run(&f)
					if lp := libpcap.Filter(cp.raw, data, caplen, wire); got != lp || gotSplit != lp || want != lp {
						t.Errorf("%q on %s packet %d (caplen %d, wire %d): run %#x, split at %d %#x, refRun %#x, libpcap %#x\npacket %s",
							cp.expr, c.name, i, caplen, wire, got, split, gotSplit, want, lp, hexOf(data[:caplen]))
					}
					comparisons++
				}
			}
		}
	}
	var dlts []LinkType
	for dlt := range programs {
		dlts = append(dlts, dlt)
	}
	sort.Slice(dlts, func(i, j int) bool { return dlts[i] < dlts[j] })
	for _, dlt := range dlts {
		t.Logf("%v: %d expressions compiled, %d skipped (libpcap refuses them for this link type)",
			dlt, len(programs[dlt]), skipped[dlt.String()])
	}
	var packets, truncated int
	for _, c := range caps {
		packets += len(c.data)
		for i, d := range c.data {
			if uint32(len(d)) < c.wires[i] {
				truncated++
			}
		}
	}
	t.Logf("%d captures, %d packets (%d truncated), each whole and cut to 96 and 64 bytes", len(caps), packets, truncated)
	t.Logf("%d comparisons with libpcap, %d skipped where libpcap would loop forever", comparisons, budgetStops)
	if comparisons == 0 {
		t.Error("no comparison made")
	}
}

// execFuzzExprs are the expressions FuzzExecEquivalence draws programs from.
var execFuzzExprs = []string{
	"tcp dst port 21",
	"ip6 protochain 6",
	"ip protochain 17",
	"tcp[tcpflags] & (tcp-syn|tcp-fin) != 0",
	"udp port 53 and host 192.0.2.1",
	"vlan and ip",
	"len >= 100 and ether[0] & 1 = 0",
	"tcp port 80 and (((ip[2:2] - ((ip[0]&0xf)<<2)) - ((tcp[12]&0xf0)>>2)) != 0)",
	"icmp6 and ip6[40] == 128",
	"pppoes and ip and udp",
	"mpls 100 and ip",
	"ip[2:2] / (ip[1] & 7) > 2 or ip[3] % (ip[1] & 7) = 1",
	"len - 60 > 0 and (ip[2:2] * 3) / (ip[8]) != 0",
	"ip[0] << (ip[1] & 63) = 0 or ip[0] >> (ip[1]) = 1",
}

// execGenProgram turns seed bytes into a random program that libpcap
// runs to the end: forward jumps only, and scratch memory stored before
// it is read.
func execGenProgram(seed []byte, pktLen int) []bpf.RawInstruction {
	var s [32]byte
	copy(s[:], seed)
	r := rand.New(rand.NewChaCha8(s))
	n := 1 + r.IntN(40)
	out := make([]bpf.RawInstruction, 0, n+memWords+1)
	// Give every word a value, so that libpcap reads no garbage.
	for i := range memWords {
		out = append(out, stmt(bpfLdImm, r.Uint32()), stmt(bpfSt, uint32(i)))
	}
	codes := []uint16{bpfLdWAbs, bpfLdHAbs, bpfLdBAbs, bpfLdWInd, bpfLdHInd, bpfLdBInd, bpfLdxMSH,
		bpfLdLen, bpfLdxLen, bpfLdImm, bpfLdxImm, bpfLdMem, bpfLdxMem, bpfSt, bpfStx, bpfJa,
		bpfJeqK, bpfJeqX, bpfJgtK, bpfJgtX, bpfJgeK, bpfJgeX, bpfJsetK, bpfJsetX,
		bpfALU | bpfNeg, bpfTax, bpfTxa, bpfRetK, bpfRetA}
	for _, op := range []uint16{bpfAdd, bpfSub, bpfMul, bpfDiv, bpfOr, bpfAnd, bpfLsh, bpfRsh, bpfMod, bpfXor} {
		codes = append(codes, bpfALU|op, bpfALU|bpfSrcX|op)
	}
	offset := func() uint32 {
		switch r.IntN(8) {
		case 0:
			return r.Uint32()
		case 1:
			return 0xffffffff - r.Uint32N(8)
		default:
			return r.Uint32N(uint32(pktLen) + 8)
		}
	}
	value := func() uint32 {
		switch r.IntN(4) {
		case 0:
			return r.Uint32()
		case 1:
			return r.Uint32N(70)
		default:
			return r.Uint32N(256)
		}
	}
	for i := range n {
		code := codes[r.IntN(len(codes))]
		in := bpf.RawInstruction{Op: code}
		left := n - i - 1 // instructions after this one, the last being a return
		switch code {
		case bpfLdWAbs, bpfLdHAbs, bpfLdBAbs, bpfLdWInd, bpfLdHInd, bpfLdBInd, bpfLdxMSH:
			in.K = offset()
		case bpfLdMem, bpfLdxMem, bpfSt, bpfStx:
			in.K = r.Uint32N(memWords)
		case bpfJa:
			if left == 0 {
				in = retA()
				break
			}
			in.K = r.Uint32N(uint32(left))
		case bpfJeqK, bpfJeqX, bpfJgtK, bpfJgtX, bpfJgeK, bpfJgeX, bpfJsetK, bpfJsetX:
			if left == 0 {
				in = retK(value())
				break
			}
			in.K = value()
			in.Jt, in.Jf = uint8(r.IntN(min(left, 256))), uint8(r.IntN(min(left, 256)))
		case bpfALU | bpfDiv, bpfALU | bpfMod:
			in.K = max(value(), 1)
		case bpfALU | bpfLsh, bpfALU | bpfRsh:
			in.K = r.Uint32N(40)
		default:
			in.K = value()
		}
		out = append(out, in)
	}
	if last := out[len(out)-1]; last.Op != bpfRetK && last.Op != bpfRetA {
		out = append(out, retA())
	}
	return out
}

// FuzzExecEquivalence compares run with libpcap on random packets, for
// corpus-like programs and random programs libpcap runs to the end.
func FuzzExecEquivalence(f *testing.F) {
	var progs [][]bpf.RawInstruction
	for _, e := range execFuzzExprs {
		raw, err := compileLibpcap(e, LinkEthernet, DefaultSnapLen, 0)
		if err != nil {
			f.Fatalf("%q: %v", e, err)
		}
		progs = append(progs, raw)
	}
	tcp := FakePacket{Src: netip.MustParseAddrPort("192.0.2.1:1234"), Dst: netip.MustParseAddrPort("198.51.100.2:21"),
		Protocol: TCP, Payload: []byte("USER x\r\n")}
	pkt, err := tcp.AppendFrame(nil, LinkEthernet)
	if err != nil {
		f.Fatal(err)
	}
	for i := range progs {
		f.Add(pkt, uint16(0), uint16(0), uint8(i), []byte(nil))
	}
	f.Add(pkt, uint16(10), uint16(3), uint8(200), []byte("seed"))
	f.Add([]byte{}, uint16(0), uint16(0), uint8(255), []byte{1, 2, 3})
	f.Add(make([]byte, 80), uint16(20), uint16(1000), uint8(250), []byte{9})
	f.Fuzz(func(t *testing.T, data []byte, trunc, extra uint16, sel uint8, seed []byte) {
		var raw []bpf.RawInstruction
		if int(sel) < len(progs) {
			raw = progs[sel]
		} else {
			raw = execGenProgram(seed, len(data))
			if !libpcap.Validate(raw) {
				t.Fatalf("generated a program libpcap does not validate:\n%s", FormatProgram(raw))
			}
		}
		p, err := newProgram(raw)
		if err != nil {
			t.Fatalf("newProgram: %v\n%s", err, FormatProgram(raw))
		}
		caplen := uint32(len(data) - min(int(trunc), len(data)))
		wire := uint32(len(data)) + uint32(extra)
		if _, stopped := refRun(raw, data, caplen, wire); stopped {
			return // libpcap 1.10 would loop forever
		}
		lp := libpcap.Filter(raw, data, caplen, wire)
		for _, split := range []int{len(data), 0, len(data) / 2, min(len(data), 54)} {
			f := frame{hdr: data[:split], payload: data[split:], caplen: caplen, wirelen: wire}
			if got := p.run(&f); got != lp {
				t.Fatalf("split %d, caplen %d, wire %d: run %#x, libpcap %#x\nprogram:\n%spacket %s",
					split, caplen, wire, got, lp, FormatProgram(raw), hexOf(data))
			}
		}
	})
}
