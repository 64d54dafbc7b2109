package pcapfilter_test

// The oracle the code generator's tests share: libpcap 1.10 compiles the
// same expression, and both programs run on the same packets (the corpus
// captures, whole and cut short, and generated fake packets, framed for
// every supported link type).

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/headlessbpf/bpfmatch"
	"github.com/headlessbpf/bpfmatch/internal/libpcap"
	"github.com/headlessbpf/bpfmatch/pcapfilter"
	"golang.org/x/net/bpf"
)

// testPacket is a packet to match: its captured bytes and wire length.
type testPacket struct {
	name string
	data []byte
	wire int
}

func (p testPacket) String() string {
	return fmt.Sprintf("%s (%d of %d bytes: %x)", p.name, len(p.data), p.wire, p.data)
}

var (
	packetsOnce sync.Once
	packetsBy   map[pcapfilter.LinkType][]testPacket
)

// packetsFor returns the test packets of a link type: the corpus captures
// of that type (and IP packets of the others, reframed), whole and cut to
// 96 and 64 bytes, and generated fake packets.
func packetsFor(t testing.TB, link pcapfilter.LinkType) []testPacket {
	packetsOnce.Do(func() { packetsBy = loadPackets() })
	return packetsBy[link]
}

func loadPackets() map[pcapfilter.LinkType][]testPacket {
	out := map[pcapfilter.LinkType][]testPacket{}
	var ipPackets []testPacket // network-layer packets of every capture, for reframing
	add := func(link pcapfilter.LinkType, p testPacket) {
		out[link] = append(out[link], p)
		for _, n := range dtCutLengths {
			if len(p.data) > n {
				out[link] = append(out[link], testPacket{fmt.Sprintf("%s cut to %d", p.name, n), p.data[:n], p.wire})
			}
		}
	}
	caps, _ := dtReadCaptures(filepath.Join(dtCorpusDir, "pcaps"))
	for _, c := range caps {
		link := c.link
		pkts := make([]testPacket, len(c.data))
		for i, data := range c.data {
			pkts[i] = testPacket{data: data, wire: int(c.wires[i])}
		}
		for i, p := range pkts {
			p.name = fmt.Sprintf("%s #%d", c.name, i)
			add(link, p)
			switch link {
			case pcapfilter.LinkEthernet:
				if len(p.data) >= 14 {
					et := binary.BigEndian.Uint16(p.data[12:])
					if et == 0x0800 || et == 0x86dd {
						ipPackets = append(ipPackets, testPacket{p.name + " as IP", p.data[14:], p.wire - 14})
					}
				}
			case pcapfilter.LinkRaw, pcapfilter.LinkIPv4, pcapfilter.LinkIPv6:
				ipPackets = append(ipPackets, p)
			}
		}
	}
	for _, p := range fakePackets() {
		add(pcapfilter.LinkEthernet, p)
		ipPackets = append(ipPackets, testPacket{p.name + " as IP", p.data[14:], p.wire - 14})
	}
	for _, p := range ipPackets {
		if len(p.data) == 0 {
			continue
		}
		add(pcapfilter.LinkRaw, p)
		switch p.data[0] >> 4 {
		case 4:
			add(pcapfilter.LinkIPv4, p)
		case 6:
			add(pcapfilter.LinkIPv6, p)
		}
		et := uint16(0x0800)
		if p.data[0]>>4 == 6 {
			et = 0x86dd
		}
		add(pcapfilter.LinkLinuxSLL, reframe(p, sllHeader(et)))
		add(pcapfilter.LinkLinuxSLL2, reframe(p, sll2Header(et)))
	}
	return out
}

func reframe(p testPacket, hdr []byte) testPacket {
	return testPacket{p.name + " reframed", append(hdr, p.data...), p.wire + len(hdr)}
}

// sllHeader is a Linux cooked header of a unicast packet to this host from
// an Ethernet address.
func sllHeader(etherType uint16) []byte {
	h := make([]byte, 16)
	binary.BigEndian.PutUint16(h[0:], 0) // PACKET_HOST
	binary.BigEndian.PutUint16(h[2:], 1) // ARPHRD_ETHER
	binary.BigEndian.PutUint16(h[4:], 6)
	copy(h[6:], []byte{0x02, 0, 0, 0, 0, 1})
	binary.BigEndian.PutUint16(h[14:], etherType)
	return h
}

func sll2Header(etherType uint16) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h[0:], etherType)
	binary.BigEndian.PutUint32(h[4:], 2) // interface index
	binary.BigEndian.PutUint16(h[8:], 1) // ARPHRD_ETHER
	h[10] = 0                            // PACKET_HOST
	h[11] = 6
	copy(h[12:], []byte{0x02, 0, 0, 0, 0, 1})
	return h
}

// fakePackets returns varied Ethernet frames, the same every run.
func fakePackets() []testPacket {
	r := rand.New(rand.NewPCG(7, 7))
	v4 := []string{"10.0.0.1", "10.1.2.3", "192.168.1.10", "127.0.0.1", "224.0.0.251", "255.255.255.255", "0.0.0.0", "8.8.8.8"}
	v6 := []string{"2001:db8::1", "::1", "fe80::1", "ff02::1", "::", "::ffff:10.0.0.1"}
	ports := []uint16{0, 20, 21, 22, 53, 67, 80, 123, 443, 1024, 5353, 6081, 8080, 65535}
	payloads := [][]byte{nil, {0}, []byte("GET / HTTP/1.1\r\n\r\n"), {0x16, 3, 1, 2, 0}, bytes.Repeat([]byte{0xff}, 40), bytes.Repeat([]byte("abcd"), 300)}
	var out []testPacket
	for len(out) < 400 {
		var src, dst netip.Addr
		if r.IntN(3) == 0 {
			src, dst = netip.MustParseAddr(v6[r.IntN(len(v6))]), netip.MustParseAddr(v6[r.IntN(len(v6))])
			if src.Unmap().Is4() != dst.Unmap().Is4() {
				continue
			}
		} else {
			src, dst = netip.MustParseAddr(v4[r.IntN(len(v4))]), netip.MustParseAddr(v4[r.IntN(len(v4))])
		}
		p := bpfmatch.FakePacket{
			Src:      netip.AddrPortFrom(src, ports[r.IntN(len(ports))]),
			Dst:      netip.AddrPortFrom(dst, ports[r.IntN(len(ports))]),
			Protocol: []bpfmatch.Protocol{bpfmatch.TCP, bpfmatch.UDP}[r.IntN(2)],
			Payload:  payloads[r.IntN(len(payloads))],
			Flags:    bpfmatch.TCPFlags(r.IntN(256)),
			TTL:      uint8(r.IntN(4) * 64),
		}
		if r.IntN(4) == 0 {
			p.VLAN = &bpfmatch.VLAN{ID: uint16(r.IntN(4096))}
		}
		switch r.IntN(4) {
		case 0:
			p.DstMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
		case 1:
			p.DstMAC = net.HardwareAddr{0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb}
		}
		frame, err := p.AppendFrame(nil, bpfmatch.LinkEthernet)
		if err != nil {
			continue
		}
		out = append(out, testPacket{name: "fake " + p.String(), data: frame, wire: len(frame)})
	}
	return out
}

// loadProgram returns a Matcher that runs prog in bpfmatch's executor.
func loadProgram(t testing.TB, prog []bpf.RawInstruction, link pcapfilter.LinkType) *bpfmatch.Matcher {
	t.Helper()
	m, err := dtGoMatcher(t, prog, link)
	if err != nil {
		t.Fatalf("the program does not load: %v\n%s", err, dtListing(prog))
	}
	return m
}

// compareWithLibpcap checks that pcapfilter compiles expr for link if and
// only if libpcap does, and that both programs give the same verdict on
// every test packet of the link type. A packet on which libpcap's
// optimised and unoptimised programs disagree may get either verdict.
// It returns the number of packets compared.
func compareWithLibpcap(t testing.TB, expr string, link pcapfilter.LinkType) int {
	t.Helper()
	return compareOn(t, expr, link, packetsFor(t, link), false)
}

// compareOn is compareWithLibpcap on the packets given, and with prefixes
// on every prefix of each of them too (the wire length kept).
func compareOn(t testing.TB, expr string, link pcapfilter.LinkType, pkts []testPacket, prefixes bool) int {
	t.Helper()
	want, werr := libpcap.Compile(expr, int(link), dtSnapLen, true, 0)
	got, gerr := pcapfilter.Compile(expr, pcapfilter.Options{LinkType: link})
	if (werr == nil) != (gerr == nil) {
		t.Errorf("%v: %q: libpcap says %v, pcapfilter says %v", link, expr, errString(werr), errString(gerr))
		return 0
	}
	if gerr != nil {
		return 0
	}
	var unopt []bpf.RawInstruction
	m := loadProgram(t, got, link)
	n := 0
	for _, p := range pkts {
		cut := len(p.data)
		if prefixes {
			cut = 0
		}
		for ; cut <= len(p.data); cut++ {
			data := p.data[:cut]
			caplen := uint32(min(cut, dtSnapLen))
			g, err := m.MatchFrame(data, p.wire)
			if err != nil {
				t.Fatalf("%v cut to %d: %v", p, cut, err)
			}
			n++
			if w := libpcap.Filter(want, data, caplen, uint32(p.wire)) != 0; g != w {
				if unopt == nil {
					var err error
					if unopt, err = libpcap.Compile(expr, int(link), dtSnapLen, false, 0); err != nil {
						t.Fatalf("%v: %q: libpcap compiles it optimised but not unoptimised: %v", link, expr, err)
					}
				}
				if u := libpcap.Filter(unopt, data, caplen, uint32(p.wire)) != 0; u != g {
					t.Errorf("%v: %q on %v cut to %d: pcapfilter says %v, libpcap %v\npcapfilter's program:\n%slibpcap's:\n%s",
						link, expr, p, cut, g, w, dtListing(got), dtListing(want))
					return n
				}
			}
		}
	}
	return n
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return "error: " + err.Error()
}

// TestOracleSelf checks the oracle on expressions the generator already
// compiles, for every link type.
func TestOracleSelf(t *testing.T) {
	dtLibpcapOrSkip(t)
	if _, err := os.Stat(dtCorpusDir); err != nil {
		t.Skipf("the shared corpus is not at %s: skipping", dtCorpusDir)
	}
	n := 0
	for _, link := range dtLinkTypes {
		if len(packetsFor(t, link)) == 0 {
			t.Errorf("%v: no test packets", link)
		}
		for _, expr := range []string{"ip", "ip6", "ip or ip6", "not ip", "ip and not ip6"} {
			n += compareWithLibpcap(t, expr, link)
		}
	}
	t.Logf("%d comparisons with libpcap", n)
}
