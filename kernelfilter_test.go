package bpfmatch

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
)

// runSocketFilter runs a relocated program as the kernel runs a socket
// filter (refMachine's socket): loads at skfNetOff+k read the network
// header nh, others the transport header and payload l4, len is len(l4);
// a load past either returns 0.
func runSocketFilter(prog []bpf.RawInstruction, nh, l4 []byte) uint32 {
	ret, _, _ := refExec(prog, &refMachine{socket: true, nh: nh, l4: l4, length: uint32(len(l4))})
	return ret
}

// countsByKey formats counts as " key=n" for each key, in key order.
func countsByKey(counts map[string]int) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(&b, " %s=%d", k, counts[k])
	}
	return b.String()
}

// realDatagram returns the network header and the UDP header and payload
// of a datagram as the kernel holds it, with what the fake packet fixes
// set otherwise (an IPv4 header with options, another TTL, ID, TOS and
// flow label, no UDP checksum), so that a relocated program that read
// them would be caught.
func realDatagram(src, dst netip.AddrPort, payload []byte) (nh, l4 []byte) {
	l4 = make([]byte, udpLen+len(payload))
	binary.BigEndian.PutUint16(l4[0:], src.Port())
	binary.BigEndian.PutUint16(l4[2:], dst.Port())
	binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
	copy(l4[udpLen:], payload)
	if s := src.Addr().Unmap(); s.Is4() {
		nh = make([]byte, 24) // IHL 6: one word of options
		nh[0], nh[1] = 0x46, 0xb8
		binary.BigEndian.PutUint16(nh[2:], uint16(24+len(l4)))
		nh[4], nh[5], nh[8], nh[9], nh[10], nh[11] = 0x12, 0x34, 33, 17, 0xde, 0xad
		a, b := s.As4(), dst.Addr().Unmap().As4()
		copy(nh[12:], a[:])
		copy(nh[16:], b[:])
		nh[20] = 1 // NOP options
		return nh, l4
	}
	nh = make([]byte, 40)
	nh[0], nh[1], nh[3], nh[6], nh[7] = 0x6b, 0x8f, 0x21, 17, 7
	binary.BigEndian.PutUint16(nh[4:], uint16(len(l4)))
	a, b := src.Addr().As16(), dst.Addr().As16()
	copy(nh[8:], a[:])
	copy(nh[24:], b[:])
	return nh, l4
}

// kernelCase is a socket a program is relocated for in the tests: its
// families as kernelFilterProgram sees them.
type kernelCase struct {
	name    string
	targets []kernelTarget
}

// kernelCases are the sockets of the tests: bound to 127.0.0.1, to ::1,
// and a dual-stack socket on [::] whose datagrams' destinations the
// kernel reports.
var kernelCases = []kernelCase{
	{"IPv4 bound", []kernelTarget{{port: 4000, dst: netip.MustParseAddr("127.0.0.1")}}},
	{"IPv6 bound", []kernelTarget{{v6: true, port: 4000, dst: netip.MustParseAddr("::1")}}},
	{"wildcard", []kernelTarget{{port: 4000}, {v6: true, port: 4000}}},
}

// TestKernelProgramCases checks which programs are offloaded, and why not.
func TestKernelProgramCases(t *testing.T) {
	v4 := kernelTarget{port: 4000, dst: netip.MustParseAddr("127.0.0.1")}
	wild := kernelTarget{port: 4000}
	tests := []struct {
		name, expr string
		link       LinkType
		t          kernelTarget
		why        string // "" if offloaded
	}{
		{"port", "udp port 53", LinkEthernet, v4, ""},
		{"src host", "src host 127.0.0.2", LinkEthernet, v4, ""},
		{"dst host wildcard", "dst host 127.0.0.2", LinkEthernet, wild, ""},
		{"ttl fixed", "ip[8] = 64", LinkEthernet, v4, ""},
		{"total length", "ip[2:2] > 100", LinkEthernet, v4, ""},
		{"len", "len > 100", LinkRaw, v4, ""},
		{"payload", "udp[8:2] = 0x1234", LinkEthernet, v4, ""},
		{"udp checksum", "udp[6:2] = 0", LinkEthernet, v4, "checksum"},
		{"ip checksum", "ip[10:2] = 0", LinkEthernet, v4, "checksum"},
		{"fixed and total length", "ip[0:4] = 0x45000030", LinkEthernet, v4, ""},
		{"raw link word", "link[0:4] & 0xFFFF0000 == 0", LinkRaw, v4, ""},
		{"TOS and length", "ip[1:2] = 0x30", LinkEthernet, v4, ""},
		{"length and ID", "ip[3:2] = 0x3000", LinkEthernet, v4, ""},
		{"length and checksum", "ip[8:4] = 0", LinkEthernet, v4, "checksum"},
		{"src port and dst port", "udp[0:4] = 0x00350fa0", LinkEthernet, v4, ""},
		{"three address bytes", "ip[13:4] = 0", LinkEthernet, v4, "mixed load"},
		{"protochain", "ip protochain 17", LinkEthernet, v4, ""},
		{"indexed", "udp[udp[8] & 3] = 1", LinkEthernet, v4, "indexed load"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Compile(tc.expr, WithLinkType(tc.link))
			if err != nil {
				t.Fatal(err)
			}
			_, err = kernelProgram(m, tc.t)
			why := ""
			if err != nil {
				why = err.(*kernelRefusal).why
			}
			if why != tc.why {
				t.Errorf("%q for %+v: refused for %q (%v), want %q", tc.expr, tc.t, why, err, tc.why)
			}
		})
	}
}

// corpusKernelExprs returns the corpus expressions that compile, with the
// link type they are for.
func corpusKernelExprs(t *testing.T) (exprs []string, links []LinkType) {
	for _, f := range []struct {
		name string
		link LinkType
	}{{"libpcap-ethernet.txt", LinkEthernet}, {"realworld.txt", LinkEthernet}, {"libpcap-raw.txt", LinkRaw}} {
		for _, e := range corpusFilters(t, f.name) {
			exprs = append(exprs, e)
			links = append(links, f.link)
		}
	}
	return exprs, links
}

// kernelPrograms returns the relocated programs of m for each family of
// c, nil where refused, and the reasons.
func kernelPrograms(m *Matcher, c kernelCase) ([][]bpf.RawInstruction, []string) {
	progs := make([][]bpf.RawInstruction, len(c.targets))
	var whys []string
	for i, tg := range c.targets {
		p, err := kernelProgram(m, tg)
		if err != nil {
			whys = append(whys, err.(*kernelRefusal).why)
			continue
		}
		progs[i] = p
	}
	return progs, whys
}

// TestKernelFilterCorpus reports, for each corpus expression and socket,
// whether its program is offloaded and why not, and checks each relocated
// program against the Matcher on varied datagrams whose real headers
// differ from the fake ones wherever the fake packet fixes them: what the
// Matcher accepts the kernel program accepts, and it accepts more only
// for short datagrams whose padding it cannot see.
func TestKernelFilterCorpus(t *testing.T) {
	exprs, links := corpusKernelExprs(t)
	payloads := [][]byte{{}, {1}, []byte("\x12\x34\x00\x01short"), make([]byte, 17), make([]byte, 18), make([]byte, 100)}
	for i := range payloads[5] {
		payloads[5][i] = byte(i * 7)
	}
	r := rand.New(rand.NewPCG(9, 9))
	for _, c := range kernelCases {
		counts := map[string]int{}
		compiled, offloaded, partial := 0, 0, 0
		packets, accepted, extra, padExtra := 0, 0, 0, 0
		for i, e := range exprs {
			m, err := Compile(e, WithLinkType(links[i]))
			if err != nil {
				continue
			}
			compiled++
			progs, whys := kernelPrograms(m, c)
			for _, w := range whys {
				counts[w]++
			}
			switch len(whys) {
			case 0:
				offloaded++
			case len(c.targets):
				continue
			default:
				partial++
			}
			for fi, tg := range c.targets {
				prog := progs[fi]
				if prog == nil {
					continue
				}
				for range 40 {
					var src, dst netip.AddrPort
					ports := []uint16{53, 80, 123, 443, 1024, 5353, uint16(r.IntN(65536))}
					sp := ports[r.IntN(len(ports))]
					if tg.v6 {
						srcs := []string{"::1", "2001:db8::1", "fe80::1", "ff02::fb"}
						src = netip.AddrPortFrom(netip.MustParseAddr(srcs[r.IntN(len(srcs))]), sp)
						dst = netip.AddrPortFrom(netip.MustParseAddr(srcs[r.IntN(len(srcs))]), tg.port)
					} else {
						srcs := []string{"127.0.0.1", "127.0.0.2", "10.0.0.1", "192.168.1.10", "224.0.0.251", "255.255.255.255"}
						src = netip.AddrPortFrom(netip.MustParseAddr(srcs[r.IntN(len(srcs))]), sp)
						dst = netip.AddrPortFrom(netip.MustParseAddr(srcs[r.IntN(len(srcs))]), tg.port)
					}
					if tg.dst.IsValid() {
						dst = netip.AddrPortFrom(tg.dst, tg.port)
					}
					payload := payloads[r.IntN(len(payloads))]
					user, err := m.Match(FakePacket{Src: src, Dst: dst, Protocol: UDP, Payload: payload})
					if err != nil {
						t.Fatal(err)
					}
					nh, l4 := realDatagram(src, dst, payload)
					kernel := runSocketFilter(prog, nh, l4) != 0
					packets++
					switch {
					case user && !kernel:
						ins, _ := bpf.Disassemble(prog)
						t.Errorf("%s, %q: the kernel program drops %v -> %v payload %x, which the matcher accepts\n%v", c.name, e, src, dst, payload, ins)
					case user:
						accepted++
					case kernel:
						extra++
						if m.link == LinkEthernet && !tg.v6 && len(payload) < minEthernetFrame-42 {
							padExtra++
						}
					}
				}
			}
		}
		t.Logf("%s: %d expressions compile, %d offloaded whole, %d for one family only; refusals by reason (per family):%s",
			c.name, compiled, offloaded, partial, countsByKey(counts))
		t.Logf("%s: %d datagrams, %d accepted by both, %d let through by the kernel program and dropped by the matcher (%d of them short Ethernet IPv4 ones)",
			c.name, packets, accepted, extra, padExtra)
		if extra != padExtra {
			t.Errorf("%s: %d datagrams let through that are not short: the relocated program is looser than the matcher", c.name, extra-padExtra)
		}
		if offloaded == 0 || accepted == 0 {
			t.Errorf("%s: nothing offloaded or accepted: the test proves nothing", c.name)
		}
	}
}

// TestPacketConnKernelFilterStatus checks what KernelFilter reports: the
// filter attached on Linux over a *net.UDPConn, and else why not.
func TestPacketConnKernelFilterStatus(t *testing.T) {
	linux := runtime.GOOS == "linux"
	tests := []struct {
		name     string
		expr     string
		inner    func(t *testing.T) net.PacketConn
		kernel   bool // WithKernelFilter
		attached bool
		reason   string // a part of the reason; "" for none
	}{
		{"without the option", "udp port 53", func(t *testing.T) net.PacketConn { return listenUDP(t, "udp4", "127.0.0.1:0") }, false, false, ""},
		{"offloaded", "udp port 53", func(t *testing.T) net.PacketConn { return listenUDP(t, "udp4", "127.0.0.1:0") }, true, linux, map[bool]string{true: "", false: "Linux only"}[linux]},
		{"checksum", "udp[6:2] = 0", func(t *testing.T) net.PacketConn { return listenUDP(t, "udp4", "127.0.0.1:0") }, true, false, map[bool]string{true: "checksum", false: "Linux only"}[linux]},
		{"not a UDPConn", "udp port 53", func(t *testing.T) net.PacketConn {
			return struct{ net.PacketConn }{listenUDP(t, "udp4", "127.0.0.1:0")}
		}, true, false, map[bool]string{true: "not a *net.UDPConn", false: "Linux only"}[linux]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var opts []PacketConnOption
			if tc.kernel {
				opts = append(opts, WithKernelFilter())
			}
			pc, err := NewPacketConn(tc.inner(t), MustCompile(tc.expr), opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			attached, reason := pc.KernelFilter()
			if attached != tc.attached || (tc.reason == "") != (reason == "") || !strings.Contains(reason, tc.reason) {
				t.Errorf("%q: KernelFilter() = %v, %q; want %v and a reason with %q", tc.expr, attached, reason, tc.attached, tc.reason)
			}
		})
	}
}
