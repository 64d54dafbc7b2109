package bpfmatch

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/headlessbpf/bpfmatch/internal/libpcap"
	"golang.org/x/net/bpf"
)

// directSnaps are the snap lengths the direct tests are compared with:
// ones that cut the headers of some shapes, ones that end within the
// Ethernet padding of short frames, and long ones.
var directSnaps = []int{DefaultSnapLen, 1500, 128, 100, 96, 70, 64, 62, 60, 58, 54, 40, 23, 14, 1}

// directSourceNames name the sources in the tests' counts.
var directSourceNames = [...]string{"none", "return", "payload", "ports", "IPv4 addresses", "IPv6 source high", "IPv6 source low",
	"IPv6 destination high", "IPv6 destination low", "TTL", "TCP sequence and acknowledgment", "TCP flags and window"}

// countsBySource formats the counts of direct decisions by source.
func countsBySource(by *[directTCPFlags + 1]int) string {
	var parts []string
	for src, n := range by[directRet:] {
		parts = append(parts, fmt.Sprintf("%s %d", directSourceNames[int(directRet)+src], n))
	}
	return strings.Join(parts, ", ")
}

// directPattern is what the payloads of directPackets hold: byte i is
// byte(7*i+3), which is not 0 for i below 219, so that a test of a 0 byte
// past the payload holds only where the Ethernet padding is read.
func directPattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(7*i + 3)
	}
	return b
}

// directValue is what a load of size bytes at off in directPattern reads.
func directValue(off, size int) uint32 {
	return be(directPattern(off + size)[off:])
}

// directPackets returns packets of every shape of link: payloads of 0 to
// 70 bytes, long ones and ones of the largest size, with the header
// fields the direct tests read at several values; then packets that
// cannot be built, for every error of check.
func directPackets(link LinkType) (valid, invalid []FakePacket) {
	big := directPattern(maxIPLen)
	for s := range numShapes {
		if s&shapeVLAN != 0 && link != LinkEthernet {
			continue
		}
		base := FakePacket{Src: netip.MustParseAddrPort("10.0.0.1:40000"), Dst: netip.MustParseAddrPort("192.0.2.21:21"),
			Protocol: TCP, Seq: 0x01020304, Ack: 0xa0b0c0d0}
		if s&shapeV6 != 0 {
			base.Src, base.Dst = netip.MustParseAddrPort("[2001:db8::1]:40000"), netip.MustParseAddrPort("[2001:db8::443]:21")
		}
		if s&shapeUDP != 0 {
			base.Protocol = UDP
		}
		if s&shapeVLAN != 0 {
			base.VLAN = &VLAN{ID: 5, Priority: 3}
		}
		max := maxPayloadOf(s)
		for _, n := range []int{71, 200, 1460, max - 1, max} {
			p := base
			p.Payload = big[:n]
			valid = append(valid, p)
		}
		for n := range 71 {
			p := base
			p.Payload = big[:n]
			valid = append(valid, p)
		}
		edits := []func(*FakePacket){
			func(p *FakePacket) { p.TTL = 1 },
			func(p *FakePacket) { p.TTL = 255 },
			func(p *FakePacket) { p.Flags = SYN },
			func(p *FakePacket) { p.Flags = NoFlags },
			func(p *FakePacket) { p.Flags = NoFlags | 0xff },
			func(p *FakePacket) { p.Window = 1 },
			func(p *FakePacket) { p.Seq, p.Ack = 0, 0xffffffff },
			func(p *FakePacket) { p.Src, p.Dst = p.Dst, p.Src },
			func(p *FakePacket) {
				p.Src = netip.AddrPortFrom(p.Src.Addr(), 53)
				p.Dst = netip.AddrPortFrom(p.Dst.Addr(), 0)
			},
			func(p *FakePacket) {
				p.SrcMAC, p.DstMAC = net.HardwareAddr{0, 1, 2, 3, 4, 5}, net.HardwareAddr{6, 7, 8, 9, 10, 11}
			},
			func(p *FakePacket) { // IPv4-mapped addresses make IPv4 packets; zones are dropped
				if s&shapeV6 == 0 {
					p.Src = netip.AddrPortFrom(netip.AddrFrom16(p.Src.Addr().As16()), p.Src.Port())
					p.Dst = netip.AddrPortFrom(netip.AddrFrom16(p.Dst.Addr().As16()), p.Dst.Port())
				} else {
					p.Src = netip.AddrPortFrom(p.Src.Addr().WithZone("eth0"), p.Src.Port())
				}
			},
		}
		for _, edit := range edits {
			for _, n := range []int{0, 4, 30} {
				p := base
				p.Payload = big[:n]
				edit(&p)
				valid = append(valid, p)
			}
		}
		tooLarge := base
		tooLarge.Payload = big[:max+1]
		invalid = append(invalid, tooLarge)
	}
	ok := FakePacket{Src: netip.MustParseAddrPort("10.0.0.1:40000"), Dst: netip.MustParseAddrPort("192.0.2.21:21"), Protocol: TCP}
	for _, edit := range []func(*FakePacket){
		func(p *FakePacket) { p.Protocol = 0 },
		func(p *FakePacket) { p.Protocol = 1; p.Src = netip.AddrPort{} }, // the protocol is told first
		func(p *FakePacket) { p.Src = netip.AddrPort{} },
		func(p *FakePacket) { p.Dst = netip.AddrPort{} },
		func(p *FakePacket) { p.Dst = netip.MustParseAddrPort("[2001:db8::1]:21") },
		func(p *FakePacket) { p.Flags = 0x200 },
		func(p *FakePacket) { p.Flags = 0x200; p.Payload = big[:maxPayloadOf(0)+1] }, // the size is told first
	} {
		p := ok
		edit(&p)
		invalid = append(invalid, p)
	}
	// The MAC addresses and the VLAN tag are errors of Ethernet frames;
	// any VLAN tag is one in raw IP.
	edits := []func(*FakePacket){func(p *FakePacket) { p.VLAN = &VLAN{} }}
	if link == LinkEthernet {
		edits = []func(*FakePacket){
			func(p *FakePacket) { p.SrcMAC = net.HardwareAddr{1, 2, 3, 4, 5} },
			func(p *FakePacket) { p.DstMAC = net.HardwareAddr{} },
			func(p *FakePacket) { p.VLAN = &VLAN{ID: 4096} },
			func(p *FakePacket) { p.VLAN = &VLAN{Priority: 8} },
		}
	}
	for _, edit := range edits {
		p := ok
		edit(&p)
		invalid = append(invalid, p)
	}
	return valid, invalid
}

// What a hand-made filter's direct tests must decide: some packets, or
// none but those of shapes whose residual program is a return.
const (
	wantSome = iota
	wantNone
	wantAny
)

type directFilter struct {
	expr string
	want int
}

// directFilters are hand-made filters whose residual programs are one
// test of one field of some shape, for every source, and some that are
// not, or where the field is one no direct test reads.
func directFilters(link LinkType) []directFilter {
	type f = directFilter
	fs := []f{
		{"tcp dst port 21", wantSome}, {"tcp src port 40000", wantSome}, {"udp dst port 21", wantSome}, {"udp src port 53", wantSome},
		{"tcp dst port 22", wantSome}, {"tcp[0:4] = 0x9c400015", wantSome}, {"tcp[1:2] = 0x4000", wantSome}, {"udp[3] = 21", wantSome},
		{"tcp dst portrange 20-21", wantNone}, {"tcp port 21", wantNone},
		{"src host 10.0.0.1", wantSome}, {"dst host 192.0.2.21", wantSome}, {"ip[14:4] = 0x0001c000", wantSome}, {"ip[19] = 21", wantSome},
		{"ip[8] = 64", wantSome}, {"ip[8] > 63", wantSome}, {"ip6[7] = 64", wantSome}, {"ip6[7] >= 255", wantSome},
		{"ip6 src host 2001:db8::1", wantNone}, {"ip6[8:4] = 0x20010db8", wantSome}, {"ip6[20:4] = 1", wantSome},
		{"ip6[24:4] = 0x20010db8", wantSome}, {"ip6[36:4] = 0x443", wantSome}, {"ip6[39] = 0x43", wantSome}, {"ip6[12:2] = 0", wantSome},
		{"ip6[14:4] = 0", wantNone}, {"ip6[22:4] = 0x00012001", wantNone},
		{"tcp[13] & 2 != 0", wantSome}, {"tcp[tcpflags] = tcp-syn", wantSome}, {"tcp[13] = 0", wantSome}, {"tcp[4:4] = 0x01020304", wantSome},
		{"tcp[8:4] > 0xa0000000", wantSome}, {"tcp[6:4] = 0x0304a0b0", wantSome}, {"tcp[14:2] = 65535", wantSome}, {"tcp[14:2] < 2", wantSome},
		{"tcp[12:2] & 0x1ff = 0x18", wantSome}, {"tcp[12] = 0x50", wantNone},
		{"ip[2:2] > 100", wantNone}, {"ip[10:2] > 0x8000", wantNone}, {"tcp[16:2] > 0x8000", wantNone}, {"udp[4:2] > 20", wantNone},
		{"ether[0] = 2", wantNone}, {"len > 100", wantNone}, {"greater 100", wantNone}, {"tcp dst port 21 and len > 100", wantNone},
		{getFilter, wantSome}, {"tcp[20:4] = 0x47455420", wantSome},
	}
	if link == LinkEthernet {
		fs = append(fs, f{"vlan and tcp dst port 21", wantSome}, f{"vlan 5", wantNone}, f{"vlan and tcp[20:2] = 0x030a", wantSome},
			f{"vlan and src host 10.0.0.1", wantSome}, f{"vlan and ip6[7] = 64", wantSome}, f{"vlan and tcp[13] & 2 != 0", wantSome})
	}
	// Payload bytes: tests that hold and tests that do not, of 1, 2 and 4
	// bytes at offsets within, across and past the end of short payloads,
	// and of 0 bytes, which hold only in the Ethernet padding.
	for _, off := range []int{0, 1, 2, 3, 5, 10, 20, 25, 26, 27, 30, 40, 45, 46, 47, 60, 66, 69, 200, 1000, 65000} {
		want := wantSome
		if off > 1000 {
			want = wantAny // of the largest payloads only
		}
		for _, size := range []int{1, 2, 4} {
			v := directValue(off, size)
			for _, l := range []struct {
				at, base string
			}{{"tcp", "20"}, {"udp", "8"}, {"ip6", "60"}, {"ip6", "48"}} {
				fs = append(fs, f{fmt.Sprintf("%s[%s+%d:%d] = %#x", l.at, l.base, off, size, v), want},
					f{fmt.Sprintf("%s[%s+%d:%d] = 0", l.at, l.base, off, size), want})
			}
			fs = append(fs, f{fmt.Sprintf("tcp[20+%d:%d] > %#x", off, size, v/2), want},
				f{fmt.Sprintf("udp[8+%d:%d] >= %#x", off, size, v), want},
				f{fmt.Sprintf("udp[8+%d:%d] & 0x81 != 0", off, size), want})
			if link == LinkEthernet {
				fs = append(fs, f{fmt.Sprintf("vlan and tcp[20+%d:%d] = %#x", off, size, v), want},
					f{fmt.Sprintf("vlan and udp[8+%d:%d] = 0", off, size), want},
					f{fmt.Sprintf("vlan and ip6[60+%d:%d] = %#x", off, size, v), want})
			}
		}
	}
	return fs
}

// TestDirectDifferential compares what Match decides with its direct
// tests with the verdict of the residual program Match runs otherwise,
// with the whole program on the frame's bytes, and the errors, for
// hand-made filters of one test and every corpus expression, at snap
// lengths that cut the headers and the Ethernet padding, on packets of
// every shape and on packets that cannot be built. It counts the direct
// decisions, by source, and fails where there are none that there must be.
func TestDirectDifferential(t *testing.T) {
	stride := 1
	if raceEnabled || testing.Short() {
		stride = 3
		t.Logf("race detector on or -short: comparing one valid packet in %d only", stride)
	}
	for _, set := range []struct {
		name  string
		link  LinkType
		files []string
	}{
		{"ethernet", LinkEthernet, []string{"libpcap-ethernet.txt", "realworld.txt"}},
		{"raw", LinkRaw, []string{"libpcap-raw.txt"}},
	} {
		valid, invalid := directPackets(set.link)
		frames := make([][]byte, len(valid))
		for i, p := range valid {
			var err error
			if frames[i], err = p.AppendFrame(nil, set.link); err != nil {
				t.Fatalf("%v: %v", p, err)
			}
		}
		for _, err := range invalid {
			if _, e := err.AppendFrame(nil, set.link); e == nil {
				t.Fatalf("%v (VLAN %v): builds, it is meant not to", err, err.VLAN)
			}
		}
		compared := 0
		against := "the residual and the whole program"
		if libpcap.Available {
			against += " and libpcap's pcap_offline_filter"
		}
		compare := func(t *testing.T, expr string, snaps []int, bySrc *[directTCPFlags + 1]int) (direct int) {
			t.Helper()
			for _, snap := range snaps {
				m, err := Compile(expr, WithLinkType(set.link), WithSnapLen(snap))
				if err != nil {
					return direct
				}
				prog := m.Program()
				for i := 0; i < len(valid); i += stride {
					p := &valid[i]
					compared++
					got, err := m.Match(*p)
					general, gerr := m.runPacket(p, nil)
					whole, werr := m.MatchFrame(frames[i], len(frames[i]))
					// libpcap's interpreter on the same bytes, where built with it.
					lib := whole
					if libpcap.Available {
						f := frames[i]
						lib = libpcap.Filter(prog, f, uint32(min(len(f), snap)), uint32(len(f))) != 0
					}
					if err != nil || gerr != nil || werr != nil || got != (general != 0) || got != whole || got != lib {
						t.Errorf("%v snap %d: %q on %v: Match = %v, %v; the residual program %v, %v; the whole program %v, %v; libpcap %v\nframe (first 100 bytes) %x",
							set.link, snap, expr, p, got, err, general != 0, gerr, whole, werr, lib, frames[i][:min(len(frames[i]), 100)])
					}
					if m.shapes == nil {
						continue
					}
					s, _ := p.check(set.link)
					if _, ok := m.shapes.direct[s].decide(p); ok {
						direct++
						bySrc[m.shapes.direct[s].src]++
					}
				}
				for i := range invalid {
					p := &invalid[i]
					compared++
					got, err := m.Match(*p)
					_, gerr := m.runPacket(p, nil)
					_, ferr := p.AppendFrame(nil, set.link)
					if got || err == nil || gerr == nil || err.Error() != gerr.Error() || err.Error() != ferr.Error() {
						t.Errorf("%v snap %d: %q on %v: Match = %v, %v; the residual program's error %v; building the frame: %v",
							set.link, snap, expr, p, got, err, gerr, ferr)
					}
				}
			}
			return direct
		}

		t.Run("handmade/"+set.name, func(t *testing.T) {
			compared = 0
			var bySrc [directTCPFlags + 1]int
			total := 0
			for _, f := range directFilters(set.link) {
				if _, err := Compile(f.expr, WithLinkType(set.link)); err != nil {
					t.Fatalf("%q: %v", f.expr, err)
				}
				// At the default snap length first: a short one may cut
				// a filter down to one test.
				var def, by [directTCPFlags + 1]int
				n := compare(t, f.expr, directSnaps[:1], &def)
				n += compare(t, f.expr, directSnaps[1:], &by)
				total += n
				for i := range by {
					by[i] += def[i]
					bySrc[i] += by[i]
				}
				if loads := n - by[directRet]; f.want == wantSome && loads == 0 {
					t.Errorf("%v: %q: no packet decided by a direct test of a field", set.link, f.expr)
				}
				var defLoads int
				for src, c := range def {
					if directSource(src) != directRet {
						defLoads += c
					}
				}
				if f.want == wantNone && defLoads != 0 {
					t.Errorf("%v: %q: %d packets decided by a direct test of a field at the default snap length, where the residual program must run (%s)",
						set.link, f.expr, defLoads, countsBySource(&def))
				}
			}
			t.Logf("%v: %d hand-made filters x %d snap lengths x %d packets (+%d that cannot be built): %d comparisons with %s, %d decided directly; by source: %s",
				set.link, len(directFilters(set.link)), len(directSnaps), len(valid)/stride, len(invalid), compared, against, total, countsBySource(&bySrc))
			for src := directRet; src <= directTCPFlags; src++ {
				if bySrc[src] == 0 {
					t.Errorf("%v: no packet decided by a direct test of the %s", set.link, directSourceNames[src])
				}
			}
		})
		t.Run("corpus/"+set.name, func(t *testing.T) {
			exprs := corpusFilters(t, set.files...)
			compared = 0
			var bySrc [directTCPFlags + 1]int
			total := 0
			for _, expr := range exprs {
				total += compare(t, expr, directSnaps[:1], &bySrc)
				total += compare(t, expr, []int{96, 60, 40}, &bySrc)
			}
			t.Logf("%v: %d corpus expressions x 4 snap lengths x %d packets (+%d that cannot be built): %d comparisons with %s, %d decided directly; by source: %s",
				set.link, len(exprs), len(valid)/stride, len(invalid), compared, against, total, countsBySource(&bySrc))
			if total == 0 {
				t.Errorf("%v: no corpus expression decided by a direct test", set.link)
			}
		})
	}
}

// TestDirectOf checks which residual programs become direct tests, and
// what they read, on the header of Ethernet, IPv4, TCP (ports at 34, the
// payload at 54) and of Ethernet, IPv6, TCP (addresses at 22 and 38).
func TestDirectOf(t *testing.T) {
	v4, v6 := &shapeTemplates()[0][0].h, &shapeTemplates()[0][shapeV6].h
	test := func(ld uint16, k uint32, jmpOp uint16, jk uint32) []bpf.RawInstruction {
		return prog(stmt(ld, k), jmp(jmpOp, jk, 0, 1), retK(DefaultSnapLen), retK(0))
	}
	all := uint32(0xffffffff)
	for _, tc := range []struct {
		name string
		h    *header
		raw  []bpf.RawInstruction
		snap uint32
		want directTest
	}{
		{"return", v4, prog(retK(7)), DefaultSnapLen, directTest{src: directRet, yes: true}},
		{"return 0", v4, prog(retK(0)), DefaultSnapLen, directTest{src: directRet}},
		{"dst port", v4, test(bpfLdHAbs, 36, bpfJeqK, 21), DefaultSnapLen,
			directTest{src: directPorts, shl: 16, shr: 48, mask: all, op: bpfJeqK, k: 21, yes: true}},
		{"dst port, snap ending on it", v4, test(bpfLdHAbs, 36, bpfJeqK, 21), 38,
			directTest{src: directPorts, shl: 16, shr: 48, mask: all, op: bpfJeqK, k: 21, yes: true}},
		{"dst port past the snap length", v4, test(bpfLdHAbs, 36, bpfJeqK, 21), 37, directTest{}},
		{"ports", v4, test(bpfLdWAbs, 34, bpfJgtK, 5), DefaultSnapLen,
			directTest{src: directPorts, shl: 0, shr: 32, mask: all, op: bpfJgtK, k: 5, yes: true}},
		{"flags", v4, prog(stmt(bpfLdBAbs, 47), alu(bpfAnd, 2), jmp(bpfJeqK, 0, 1, 0), retK(DefaultSnapLen), retK(0)), DefaultSnapLen,
			directTest{src: directTCPFlags, shl: 8, shr: 56, mask: 2, op: bpfJeqK, k: 0, yes: false, no: true}},
		{"payload word", v4, test(bpfLdWAbs, 54, bpfJeqK, 0x47455420), DefaultSnapLen,
			directTest{src: directPayload, off: 0, size: 4, mask: all, op: bpfJeqK, k: 0x47455420, yes: true}},
		{"payload byte", v4, test(bpfLdBAbs, 100, bpfJsetK, 1), DefaultSnapLen,
			directTest{src: directPayload, off: 46, size: 1, mask: all, op: bpfJsetK, k: 1, yes: true}},
		{"payload within the snap length", v4, test(bpfLdWAbs, 56, bpfJeqK, 1), 60,
			directTest{src: directPayload, off: 2, size: 4, mask: all, op: bpfJeqK, k: 1, yes: true}},
		{"payload past the snap length", v4, test(bpfLdWAbs, 57, bpfJeqK, 1), 60, directTest{}},
		{"header and payload", v4, test(bpfLdWAbs, 52, bpfJeqK, 1), DefaultSnapLen, directTest{}},
		{"ports and sequence number", v4, test(bpfLdWAbs, 36, bpfJeqK, 1), DefaultSnapLen, directTest{}},
		{"checksum", v4, test(bpfLdHAbs, 50, bpfJeqK, 1), DefaultSnapLen, directTest{}},
		{"IP length", v4, test(bpfLdHAbs, 16, bpfJeqK, 1), DefaultSnapLen, directTest{}},
		{"MAC address", v4, test(bpfLdWAbs, 0, bpfJeqK, 1), DefaultSnapLen, directTest{}},
		{"IPv4 addresses", v4, test(bpfLdWAbs, 28, bpfJeqK, 1), DefaultSnapLen,
			directTest{src: directAddrs4, shl: 16, shr: 32, mask: all, op: bpfJeqK, k: 1, yes: true}},
		{"IPv6 destination, low half", v6, test(bpfLdWAbs, 50, bpfJeqK, 1), DefaultSnapLen,
			directTest{src: directDst6Lo, shl: 32, shr: 32, mask: all, op: bpfJeqK, k: 1, yes: true}},
		{"IPv6 source, across halves", v6, test(bpfLdWAbs, 28, bpfJeqK, 1), DefaultSnapLen, directTest{}},
		{"IPv6 hop limit", v6, test(bpfLdBAbs, 21, bpfJgeK, 2), DefaultSnapLen,
			directTest{src: directTTL, shl: 0, shr: 56, mask: all, op: bpfJgeK, k: 2, yes: true}},
		{"a test of X", v4, prog(stmt(bpfLdHAbs, 36), jmp(bpfJeqX, 0, 0, 1), retK(1), retK(0)), DefaultSnapLen, directTest{}},
		{"an indirect load", v4, test(bpfLdHInd, 36, bpfJeqK, 21), DefaultSnapLen, directTest{}},
		{"returns A", v4, prog(stmt(bpfLdHAbs, 36), retA()), DefaultSnapLen, directTest{}},
		{"two tests", v4, prog(stmt(bpfLdHAbs, 36), jmp(bpfJeqK, 21, 0, 2), stmt(bpfLdHAbs, 34), jmp(bpfJeqK, 21, 0, 1), retK(1), retK(0)),
			DefaultSnapLen, directTest{}},
		{"an addition", v4, prog(stmt(bpfLdHAbs, 36), alu(bpfAdd, 1), jmp(bpfJeqK, 22, 0, 1), retK(1), retK(0)), DefaultSnapLen, directTest{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := directOf(tc.raw, tc.h, tc.snap); got != tc.want {
				t.Errorf("snap %d: %+v, want %+v\n%s", tc.snap, got, tc.want, FormatProgram(tc.raw))
			}
		})
	}
}

// FuzzMatchDirect compares Match, direct tests included, with the
// residual program and with the whole program on the frame's bytes, and
// their errors, on fuzzed packets, for filters whose residual programs are
// direct tests of every source, at every snap length of directSnaps.
func FuzzMatchDirect(f *testing.F) {
	exprs := []string{"tcp dst port 21", getFilter, "udp[8+3:2] = 0x1234", "ip6[7] > 3", "src host 10.0.0.1", "tcp[13] & 2 != 0",
		"ip[14:4] = 0x0001c000", "ip6[36:4] = 0x443", "tcp[4:4] > 0x80000000", "tcp[14:2] < 100", "ip6[60+7] = 0", "vlan and udp[8:4] = 0"}
	links := []LinkType{LinkEthernet, LinkRaw}
	matchers := make([][]*Matcher, len(links))
	for li, link := range links {
		for _, snap := range directSnaps {
			for _, expr := range exprs {
				if link == LinkRaw && strings.HasPrefix(expr, "vlan") {
					continue
				}
				m, err := Compile(expr, WithLinkType(link), WithSnapLen(snap))
				if err != nil {
					f.Fatalf("%q for %v: %v", expr, link, err)
				}
				matchers[li] = append(matchers[li], m)
			}
		}
	}
	f.Add([]byte{10, 0, 0, 1}, []byte{192, 0, 2, 21}, uint16(40000), uint16(21), uint8(6), uint16(0), uint16(0), []byte("GET /"), uint8(0), uint8(0), uint32(0), uint16(0))
	f.Add(make([]byte, 16), make([]byte, 16), uint16(53), uint16(0), uint8(17), uint16(0x8002), uint16(0x8005), []byte{}, uint8(1), uint8(0), uint32(7), uint16(1))
	f.Fuzz(func(t *testing.T, src, dst []byte, sport, dport uint16, proto uint8, flags, vlan uint16, payload []byte, link, ttl uint8, seq uint32, window uint16) {
		s, _ := netip.AddrFromSlice(src)
		d, _ := netip.AddrFromSlice(dst)
		p := FakePacket{Src: netip.AddrPortFrom(s, sport), Dst: netip.AddrPortFrom(d, dport), Protocol: Protocol(proto),
			Flags: TCPFlags(flags &^ 0x8000), Payload: payload, TTL: ttl, Seq: seq, Ack: ^seq, Window: window}
		if vlan&0x8000 != 0 {
			p.VLAN = &VLAN{ID: vlan & 0x1fff, Priority: uint8(vlan >> 13 & 3)}
		}
		li := int(link) % len(links)
		frame, ferr := p.AppendFrame(nil, links[li])
		for _, m := range matchers[li] {
			got, err := m.Match(p)
			ret, gerr := m.runPacket(&p, nil)
			if ferr != nil {
				if got || err == nil || gerr == nil || err.Error() != ferr.Error() || gerr.Error() != ferr.Error() {
					t.Fatalf("%v snap %d: %q on %v: Match = %v, %v; the residual program's error %v; building the frame: %v",
						m.LinkType(), m.SnapLen(), m, p, got, err, gerr, ferr)
				}
				continue
			}
			whole, werr := m.MatchFrame(frame, len(frame))
			if err != nil || gerr != nil || werr != nil || got != (ret != 0) || got != whole {
				t.Fatalf("%v snap %d: %q on %v: Match = %v, %v; the residual program %v, %v; the whole program %v, %v\nframe %x",
					m.LinkType(), m.SnapLen(), m, p, got, err, ret != 0, gerr, whole, werr, frame)
			}
		}
	})
}
