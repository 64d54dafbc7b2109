package bpfmatch

import (
	"encoding/binary"
	"math/rand/v2"

	"fmt"
	"golang.org/x/net/bpf"
	"net/netip"
	"strings"
	"testing"
)

// tcpSegment builds the IP header and TCP segment of a segment from src to
// dst, with the given TTL, IPv4 flags byte, TCP flags, window and payload.
func tcpSegment(src, dst netip.AddrPort, ttl, ipFlags, tcpFlags byte, win uint16, payload []byte) (nh, l4 []byte) {
	l4 = make([]byte, 20, 20+len(payload))
	binary.BigEndian.PutUint16(l4[0:], src.Port())
	binary.BigEndian.PutUint16(l4[2:], dst.Port())
	binary.BigEndian.PutUint32(l4[4:], 0x01020304)
	l4[12] = 5 << 4
	l4[13] = tcpFlags
	binary.BigEndian.PutUint16(l4[14:], win)
	l4 = append(l4, payload...)
	if src.Addr().Is4() {
		h := make([]byte, 20)
		h[0] = 0x45
		binary.BigEndian.PutUint16(h[2:], uint16(20+len(l4)))
		binary.BigEndian.PutUint16(h[4:], 0x1234)
		h[6], h[8], h[9] = ipFlags, ttl, 6
		s, d := src.Addr().As4(), dst.Addr().As4()
		copy(h[12:], s[:])
		copy(h[16:], d[:])
		return append(h, l4...), l4
	}
	h := make([]byte, 40)
	h[0] = 0x60 | ipFlags>>4 // traffic class bits beside the version
	binary.BigEndian.PutUint16(h[4:], uint16(len(l4)))
	h[6], h[7] = 6, ttl
	s, d := src.Addr().As16(), dst.Addr().As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return append(h, l4...), l4
}

// TestKernelProgramTCP checks which filters a TCP listener offloads, and
// that an offloaded one gives every segment of a connection the verdict
// user space gives its SYN, whatever the fields that vary from segment to
// segment hold.
func TestKernelProgramTCP(t *testing.T) {
	cases := []struct {
		name, expr        string
		refused, refused6 string // the refusal's reason for IPv4 and IPv6, "" if offloaded
	}{
		{"src host", "src host 127.0.0.1", "", ""},
		{"not src net", "not src net 127.0.0.2/31", "", ""},
		{"ports", "tcp src port 40001 or dst port 80", "", ""},
		{"hosts and ports v6", "ip6 and src host ::1 and tcp dst portrange 1-1000", "", ""},
		{"proto", "tcp", "", ""},
		// tcp[] and ip[] read IPv4 only: over IPv6 these reject all.
		{"tcp flags", "tcp[13] & 2 != 0", "segment field", ""},
		{"window", "tcp[14:2] > 1000", "segment field", ""},
		{"ttl", "ip[8] = 64", "segment field", ""},
		{"ip id", "ip[4:2] = 0x1234", "segment field", ""},
		{"df", "ip[6] & 0x40 != 0", "segment field", ""},
		{"ip length", "ip[2:2] > 40", "segment field", ""},
		{"payload", "tcp[20:4] = 0x47455420", "payload", ""},
		{"payload by offset", "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420", "segment field", ""},
		{"hop limit", "ip6[7] = 64", "", "segment field"},
		{"flow label", "ip6[0:4] & 0xfffff != 0", "", "segment field"},
		{"ip6 payload", "ip6[60:4] = 0x47455420", "", "payload"},
		{"length", "len > 40", "length", "length"},
		{"ip6 traffic class", "ip6[0] & 0x0f = 0", "", "segment field"},
	}
	srcs := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "10.1.2.3", "::1", "::2", "2001:db8::7"}
	ports := []uint16{1, 80, 40001, 50000}
	for _, tc := range cases {
		for _, link := range []LinkType{LinkEthernet, LinkRaw} {
			t.Run(fmt.Sprintf("%s/%v", tc.name, link), func(t *testing.T) {
				m, err := Compile(tc.expr, WithLinkType(link))
				if err != nil {
					t.Fatalf("%q: %v", tc.expr, err)
				}
				for _, v6 := range []bool{false, true} {
					prog, err := kernelProgram(m, kernelTarget{tcp: true, v6: v6})
					refused := tc.refused
					if v6 {
						refused = tc.refused6
					}
					if refused != "" {
						if err == nil || !strings.HasPrefix(err.Error(), refused) {
							t.Errorf("%q (IPv6 %v): offloaded, or refused for %v; want refused for %q", tc.expr, v6, err, refused)
						}
						continue
					}
					if err != nil {
						t.Fatalf("%q (IPv6 %v): refused: %v", tc.expr, v6, err)
					}
					checked := 0
					for _, s := range srcs {
						sa := netip.MustParseAddr(s)
						if sa.Is6() != v6 {
							continue
						}
						da := netip.MustParseAddr("127.0.0.1")
						if v6 {
							da = netip.MustParseAddr("::1")
						}
						for _, sp := range ports {
							for _, dp := range ports {
								src, dst := netip.AddrPortFrom(sa, sp), netip.AddrPortFrom(da, dp)
								want, err := m.Match(FakePacket{Src: src, Dst: dst, Protocol: TCP, Flags: SYN})
								if err != nil {
									t.Fatal(err)
								}
								// Segments of the connection: the SYN, the
								// final ACK, data, each with other fields.
								for i, seg := range []struct {
									ttl, ipf, fl byte
									win          uint16
									payload      string
								}{
									{64, 0x40, 0x02, 65495, ""},
									{1, 0x00, 0x10, 512, ""},
									{255, 0x80, 0x18, 0, "GET / HTTP/1.1\r\n"},
								} {
									nh, l4 := tcpSegment(src, dst, seg.ttl, seg.ipf, seg.fl, seg.win, []byte(seg.payload))
									got := runSocketFilter(prog, nh, l4) != 0
									checked++
									if got != want {
										t.Errorf("%q: segment %d %v -> %v: kernel %v, user space %v", tc.expr, i, src, dst, got, want)
									}
								}
							}
						}
					}
					if checked == 0 {
						t.Fatalf("no segment checked")
					}
				}
			})
		}
	}
}

// TestKernelProgramTCPPrologue checks that segments whose TCP header is
// not right after a bare IP header go to user space.
func TestKernelProgramTCPPrologue(t *testing.T) {
	m, err := Compile("src host 10.9.9.9")
	if err != nil {
		t.Fatal(err)
	}
	for _, v6 := range []bool{false, true} {
		prog, err := kernelProgram(m, kernelTarget{tcp: true, v6: v6})
		if err != nil {
			t.Fatal(err)
		}
		src, dst := netip.MustParseAddrPort("127.0.0.1:1000"), netip.MustParseAddrPort("127.0.0.1:80")
		if v6 {
			src, dst = netip.MustParseAddrPort("[::1]:1000"), netip.MustParseAddrPort("[::1]:80")
		}
		nh, l4 := tcpSegment(src, dst, 64, 0x40, 0x02, 100, nil)
		if runSocketFilter(prog, nh, l4) != 0 {
			t.Errorf("IPv6 %v: a segment from %v accepted", v6, src)
		}
		if v6 {
			nh[6] = 0 // a hop-by-hop options header
		} else {
			nh[0] = 0x46 // IPv4 options
		}
		if runSocketFilter(prog, nh, l4) == 0 {
			t.Errorf("IPv6 %v: %s: a segment after IP options or extension headers dropped", v6, fmt.Sprintf("%x", nh[:8]))
		}
	}
}

// TestKernelFilterCorpusTCP reports, for each corpus expression and each
// family of a TCP listener, whether its program is offloaded and why not,
// and checks each relocated program on segments of varied addresses,
// ports and per-segment fields: its verdict equals user space's on the
// fake SYN, on the real SYN (framed as realSYN frames it) and on a fake
// data segment of the same connection.
func TestKernelFilterCorpusTCP(t *testing.T) {
	exprs, links := corpusKernelExprs(t)
	r := rand.New(rand.NewPCG(9, 10))
	for _, v6 := range []bool{false, true} {
		counts := map[string]int{}
		compiled, offloaded, segments, accepted := 0, 0, 0, 0
		for i, e := range exprs {
			m, err := Compile(e, WithLinkType(links[i]))
			if err != nil {
				continue
			}
			compiled++
			prog, err := kernelProgram(m, kernelTarget{tcp: true, v6: v6})
			if err != nil {
				counts[err.(*kernelRefusal).why]++
				continue
			}
			offloaded++
			for range 40 {
				ports := []uint16{21, 22, 80, 443, 1024, 8080, uint16(r.IntN(65536))}
				srcs := []string{"127.0.0.1", "127.0.0.2", "10.0.0.1", "192.168.1.10", "172.16.0.1"}
				if v6 {
					srcs = []string{"::1", "2001:db8::1", "fe80::1", "2001:db8::2"}
				}
				src := netip.AddrPortFrom(netip.MustParseAddr(srcs[r.IntN(len(srcs))]), ports[r.IntN(len(ports))])
				dst := netip.AddrPortFrom(netip.MustParseAddr(srcs[r.IntN(len(srcs))]), ports[r.IntN(len(ports))])
				ttl, ipf := byte(r.IntN(256)), []byte{0, 0x40, 0x80}[r.IntN(3)]
				payload := []byte("GET / HTTP/1.1\r\n")[:r.IntN(17)]
				fakeSYN, err := m.Match(FakePacket{Src: src, Dst: dst, Protocol: TCP, Flags: SYN})
				if err != nil {
					t.Fatal(err)
				}
				data, err := m.Match(FakePacket{Src: src, Dst: dst, Protocol: TCP, Flags: PSH | ACK, TTL: ttl, Payload: payload})
				if err != nil {
					t.Fatal(err)
				}
				nh, _ := tcpSegment(src, dst, ttl, ipf, 0x02, uint16(r.IntN(65536)), nil)
				off := 0
				if m.link == LinkEthernet {
					off = ethernetHeaderLen
				}
				frame, _, wire := frameSYN(append(make([]byte, off), nh...), m.link)
				realSYN, err := m.MatchFrame(frame, wire)
				if err != nil {
					t.Fatal(err)
				}
				for _, seg := range []struct {
					fl      byte
					payload []byte
				}{{0x02, nil}, {0x10, nil}, {0x18, payload}} {
					nh, l4 := tcpSegment(src, dst, ttl, ipf, seg.fl, uint16(r.IntN(65536)), seg.payload)
					kernel := runSocketFilter(prog, nh, l4) != 0
					segments++
					if kernel {
						accepted++
					}
					if kernel != fakeSYN || kernel != realSYN || kernel != data {
						ins, _ := bpf.Disassemble(prog)
						t.Errorf("IPv6 %v, %q: %v -> %v flags %#x: kernel %v, user space on the fake SYN %v, the real SYN %v, a data segment %v\n%v",
							v6, e, src, dst, seg.fl, kernel, fakeSYN, realSYN, data, ins)
					}
				}
			}
		}
		t.Logf("TCP listener, IPv6 %v: %d expressions compile, %d offloaded; refusals by reason:%s", v6, compiled, offloaded, countsByKey(counts))
		t.Logf("TCP listener, IPv6 %v: %d segments, %d accepted by the kernel program, all with user space's verdict", v6, segments, accepted)
		if offloaded == 0 || accepted == 0 {
			t.Errorf("IPv6 %v: nothing offloaded or accepted: the test proves nothing", v6)
		}
	}
}
