package bpfmatch

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// roundTripPackets are the packets every framing test goes through:
// IPv4 and IPv6, TCP and UDP, with and without a VLAN tag, empty, padded,
// ordinary and largest payloads.
func roundTripPackets() []FakePacket {
	addrs := [][2]netip.AddrPort{
		{netip.MustParseAddrPort("10.1.2.3:40000"), netip.MustParseAddrPort("192.0.2.80:21")},
		{netip.MustParseAddrPort("[2001:db8::1]:40000"), netip.MustParseAddrPort("[2001:db8::80]:443")},
	}
	var out []FakePacket
	for _, a := range addrs {
		for _, proto := range []Protocol{TCP, UDP} {
			for _, vlan := range []*VLAN{nil, {ID: 100, Priority: 5, DropEligible: true}} {
				for _, size := range []int{0, 1, 5, 6, 17, 18, 64, 512, 1460, 9000, maxPayload(a[0].Addr().Is4(), proto)} {
					out = append(out, FakePacket{
						Src: a[0], Dst: a[1], Protocol: proto, Payload: payloadOf(size),
						VLAN: vlan, TTL: 57, Seq: 0x01020304, Ack: 0xa0b0c0d0, Window: 1234,
					})
				}
			}
		}
	}
	return out
}

func maxPayload(v4 bool, proto Protocol) int {
	n := 65535 - 20
	if proto == UDP {
		n = 65535 - 8
	}
	if v4 {
		n -= 20
	}
	return n
}

func payloadOf(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

// gopacketFrame serialises p with gopacket, the reference for the bytes.
func gopacketFrame(t *testing.T, p FakePacket, link LinkType) []byte {
	t.Helper()
	src, dst := p.Src.Addr().Unmap(), p.Dst.Addr().Unmap()
	var ls []gopacket.SerializableLayer
	var netLayer gopacket.NetworkLayer
	etherType := layers.EthernetTypeIPv4
	if src.Is4() {
		ip := &layers.IPv4{Version: 4, TTL: p.TTL, Flags: layers.IPv4DontFragment,
			Protocol: layers.IPProtocol(p.Protocol), SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		netLayer = ip
		ls = append(ls, ip)
	} else {
		etherType = layers.EthernetTypeIPv6
		ip := &layers.IPv6{Version: 6, HopLimit: p.TTL, NextHeader: layers.IPProtocol(p.Protocol),
			SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		netLayer = ip
		ls = append(ls, ip)
	}
	if link == LinkEthernet {
		eth := &layers.Ethernet{SrcMAC: DefaultSrcMAC, DstMAC: DefaultDstMAC, EthernetType: etherType}
		if p.VLAN != nil {
			eth.EthernetType = layers.EthernetTypeDot1Q
			q := &layers.Dot1Q{VLANIdentifier: p.VLAN.ID, Priority: p.VLAN.Priority,
				DropEligible: p.VLAN.DropEligible, Type: etherType}
			ls = append([]gopacket.SerializableLayer{eth, q}, ls...)
		} else {
			ls = append([]gopacket.SerializableLayer{eth}, ls...)
		}
	}
	if p.Protocol == TCP {
		flags := p.Flags
		if flags == 0 {
			flags = DefaultTCPFlags
		}
		tcp := &layers.TCP{SrcPort: layers.TCPPort(p.Src.Port()), DstPort: layers.TCPPort(p.Dst.Port()),
			Seq: p.Seq, Ack: p.Ack, Window: p.Window,
			FIN: flags&FIN != 0, SYN: flags&SYN != 0, RST: flags&RST != 0, PSH: flags&PSH != 0,
			ACK: flags&ACK != 0, URG: flags&URG != 0, ECE: flags&ECE != 0, CWR: flags&CWR != 0}
		if err := tcp.SetNetworkLayerForChecksum(netLayer); err != nil {
			t.Fatal(err)
		}
		ls = append(ls, tcp)
	} else {
		udp := &layers.UDP{SrcPort: layers.UDPPort(p.Src.Port()), DstPort: layers.UDPPort(p.Dst.Port())}
		if err := udp.SetNetworkLayerForChecksum(netLayer); err != nil {
			t.Fatal(err)
		}
		ls = append(ls, udp)
	}
	ls = append(ls, gopacket.Payload(p.Payload))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatalf("gopacket cannot serialise %v: %v", p, err)
	}
	return buf.Bytes()
}

// refChecksum is the Internet checksum computed the slow, obvious way.
func refChecksum(parts ...[]byte) uint16 {
	var all []byte
	for _, p := range parts {
		all = append(all, p...)
	}
	if len(all)%2 == 1 {
		all = append(all, 0)
	}
	var s uint32
	for i := 0; i < len(all); i += 2 {
		s += uint32(all[i])<<8 | uint32(all[i+1])
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

func TestFakePacketRoundTrip(t *testing.T) {
	n := 0
	for _, p := range roundTripPackets() {
		for _, link := range []LinkType{LinkEthernet, LinkRaw} {
			if link == LinkRaw && p.VLAN != nil {
				continue
			}
			name := fmt.Sprintf("%v/%v", link, p)
			frame, err := p.AppendFrame(nil, link)
			if err != nil {
				t.Fatalf("%s: AppendFrame: %v", name, err)
			}
			if p.TTL != 0 && p.Window != 0 {
				if want := gopacketFrame(t, p, link); !bytes.Equal(frame, want) {
					t.Errorf("%s: frame differs from gopacket's\n got %x\nwant %x", name, head(frame), head(want))
				}
			}
			checkDecoded(t, name, p, link, frame)
			n++
		}
	}
	t.Logf("%d packets built, decoded and checked", n)
}

func head(b []byte) []byte { return b[:min(len(b), 120)] }

// checkDecoded decodes frame with gopacket and checks every field of p,
// the lengths and the checksums.
func checkDecoded(t *testing.T, name string, p FakePacket, link LinkType, frame []byte) {
	t.Helper()
	first := layers.LayerTypeEthernet
	if link == LinkRaw {
		first = layers.LayerTypeIPv4
		if p.Src.Addr().Unmap().Is6() {
			first = layers.LayerTypeIPv6
		}
	}
	pkt := gopacket.NewPacket(frame, first, gopacket.Default)
	// gopacket also decodes what it guesses from the ports (DHCP on 67,
	// say); only the headers bpfmatch writes must decode.
	if el := pkt.ErrorLayer(); el != nil && pkt.TransportLayer() == nil {
		t.Fatalf("%s: gopacket cannot decode: %v", name, el.Error())
	}
	ttl := p.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	src, dst := p.Src.Addr().Unmap(), p.Dst.Addr().Unmap()
	wantLen := len(frame)
	if link == LinkEthernet {
		eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		if eth == nil || !bytes.Equal(eth.SrcMAC, DefaultSrcMAC) && p.SrcMAC == nil || !bytes.Equal(eth.DstMAC, DefaultDstMAC) && p.DstMAC == nil {
			t.Errorf("%s: Ethernet header %+v", name, eth)
		}
		q, _ := pkt.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q)
		switch {
		case p.VLAN == nil && q != nil:
			t.Errorf("%s: unexpected VLAN tag", name)
		case p.VLAN != nil && (q == nil || q.VLANIdentifier != p.VLAN.ID || q.Priority != p.VLAN.Priority || q.DropEligible != p.VLAN.DropEligible):
			t.Errorf("%s: VLAN tag %+v, want %+v", name, q, *p.VLAN)
		}
		if wantLen < minEthernetFrame {
			t.Errorf("%s: Ethernet frame of %d bytes, not padded to 60", name, wantLen)
		}
	}
	var l4 []byte
	var pseudo []byte
	l4len := 20
	if p.Protocol == UDP {
		l4len = 8
	}
	l4len += len(p.Payload)
	if src.Is4() {
		ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if ip == nil {
			t.Fatalf("%s: no IPv4 layer", name)
		}
		if ip.SrcIP.String() != src.String() || ip.DstIP.String() != dst.String() || ip.TTL != ttl ||
			ip.Protocol != layers.IPProtocol(p.Protocol) || ip.IHL != 5 || ip.Flags != layers.IPv4DontFragment {
			t.Errorf("%s: IPv4 header %+v", name, ip)
		}
		if int(ip.Length) != 20+l4len {
			t.Errorf("%s: IPv4 total length %d, want %d", name, ip.Length, 20+l4len)
		}
		if c := refChecksum(ip.Contents); c != 0 {
			t.Errorf("%s: IPv4 header checksum %#04x is wrong", name, ip.Checksum)
		}
		l4 = ip.Payload
		pseudo = append(append(append([]byte(nil), ip.SrcIP.To4()...), ip.DstIP.To4()...), 0, byte(p.Protocol), byte(l4len>>8), byte(l4len))
	} else {
		ip, _ := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		if ip == nil {
			t.Fatalf("%s: no IPv6 layer", name)
		}
		if ip.SrcIP.String() != src.String() || ip.DstIP.String() != dst.String() || ip.HopLimit != ttl ||
			ip.NextHeader != layers.IPProtocol(p.Protocol) || ip.TrafficClass != 0 || ip.FlowLabel != 0 {
			t.Errorf("%s: IPv6 header %+v", name, ip)
		}
		if int(ip.Length) != l4len {
			t.Errorf("%s: IPv6 payload length %d, want %d", name, ip.Length, l4len)
		}
		l4 = ip.Payload
		pseudo = append(append(append([]byte(nil), ip.SrcIP...), ip.DstIP...), 0, 0, byte(l4len>>8), byte(l4len), 0, 0, 0, byte(p.Protocol))
	}
	if len(l4) != l4len {
		t.Fatalf("%s: transport segment of %d bytes, want %d", name, len(l4), l4len)
	}
	if c := refChecksum(pseudo, l4); c != 0 {
		t.Errorf("%s: transport checksum is wrong (residue %#04x)", name, c)
	}
	if p.Protocol == TCP {
		tcp, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if tcp == nil {
			t.Fatalf("%s: no TCP layer", name)
		}
		flags := p.Flags
		if flags == 0 {
			flags = DefaultTCPFlags
		}
		window := p.Window
		if window == 0 {
			window = DefaultWindow
		}
		if tcp.SrcPort != layers.TCPPort(p.Src.Port()) || tcp.DstPort != layers.TCPPort(p.Dst.Port()) ||
			tcp.Seq != p.Seq || tcp.Ack != p.Ack || tcp.Window != window || tcp.DataOffset != 5 ||
			tcp.SYN != (flags&SYN != 0) || tcp.ACK != (flags&ACK != 0) || tcp.PSH != (flags&PSH != 0) ||
			tcp.FIN != (flags&FIN != 0) || tcp.RST != (flags&RST != 0) || tcp.URG != (flags&URG != 0) ||
			tcp.ECE != (flags&ECE != 0) || tcp.CWR != (flags&CWR != 0) {
			t.Errorf("%s: TCP header %+v", name, tcp)
		}
		if !bytes.Equal(tcp.Payload, p.Payload) {
			t.Errorf("%s: TCP payload differs", name)
		}
	} else {
		udp, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if udp == nil {
			t.Fatalf("%s: no UDP layer", name)
		}
		if udp.SrcPort != layers.UDPPort(p.Src.Port()) || udp.DstPort != layers.UDPPort(p.Dst.Port()) ||
			int(udp.Length) != l4len || udp.Checksum == 0 {
			t.Errorf("%s: UDP header %+v", name, udp)
		}
		if !bytes.Equal(udp.Payload, p.Payload) {
			t.Errorf("%s: UDP payload differs", name)
		}
	}
}

func TestFakePacketOptionalFields(t *testing.T) {
	base := FakePacket{Src: netip.MustParseAddrPort("10.0.0.1:1"), Dst: netip.MustParseAddrPort("10.0.0.2:2"), Protocol: TCP}
	tests := []struct {
		name  string
		edit  func(*FakePacket)
		check func([]byte) string
	}{
		{"default TTL", func(p *FakePacket) {}, func(b []byte) string { return want(b[22], DefaultTTL) }},
		{"default flags", func(p *FakePacket) {}, func(b []byte) string { return want(b[47], byte(PSH|ACK)) }},
		{"SYN", func(p *FakePacket) { p.Flags = SYN }, func(b []byte) string { return want(b[47], 0x02) }},
		{"no flags", func(p *FakePacket) { p.Flags = NoFlags }, func(b []byte) string { return want(b[47], 0) }},
		{"all flags", func(p *FakePacket) { p.Flags = 0xff }, func(b []byte) string { return want(b[47], 0xff) }},
		{"default window", func(p *FakePacket) {}, func(b []byte) string { return want(binary.BigEndian.Uint16(b[48:]), DefaultWindow) }},
		{"MACs", func(p *FakePacket) {
			p.SrcMAC = net.HardwareAddr{1, 2, 3, 4, 5, 6}
			p.DstMAC = net.HardwareAddr{7, 8, 9, 10, 11, 12}
		}, func(b []byte) string { return want(hex.EncodeToString(b[:12]), "0708090a0b0c010203040506") }},
		{"mapped addresses are IPv4", func(p *FakePacket) {
			p.Src = netip.MustParseAddrPort("[::ffff:10.0.0.1]:1")
		}, func(b []byte) string { return want(binary.BigEndian.Uint16(b[12:]), 0x0800) }},
		{"zone dropped", func(p *FakePacket) {
			p.Src = netip.MustParseAddrPort("[fe80::1%eth0]:1")
			p.Dst = netip.MustParseAddrPort("[fe80::2%eth0]:2")
		}, func(b []byte) string { return want(hex.EncodeToString(b[22:38]), "fe800000000000000000000000000001") }},
		{"VLAN 0 priority tag", func(p *FakePacket) { p.VLAN = &VLAN{Priority: 7} },
			func(b []byte) string { return want(hex.EncodeToString(b[12:16]), "8100e000") }},
		{"VLAN 4095", func(p *FakePacket) { p.VLAN = &VLAN{ID: 4095} },
			func(b []byte) string { return want(hex.EncodeToString(b[12:18]), "81000fff0800") }},
	}
	for _, tc := range tests {
		p := base
		tc.edit(&p)
		b, err := p.AppendFrame(nil, LinkEthernet)
		if err != nil {
			t.Errorf("%s: %v: %v", tc.name, p, err)
			continue
		}
		if msg := tc.check(b); msg != "" {
			t.Errorf("%s: %v: %s\n%x", tc.name, p, msg, b)
		}
	}
}

func want[T comparable](got, want T) string {
	if got != want {
		return fmt.Sprintf("got %v, want %v", got, want)
	}
	return ""
}

func TestFakePacketErrors(t *testing.T) {
	v4 := netip.MustParseAddrPort("10.0.0.1:1")
	v6 := netip.MustParseAddrPort("[2001:db8::1]:1")
	tests := []struct {
		name string
		p    FakePacket
		link LinkType
		err  error
		msg  string
	}{
		{"zero source", FakePacket{Dst: v4, Protocol: TCP}, LinkEthernet, ErrAddress, "source"},
		{"zero destination", FakePacket{Src: v4, Protocol: TCP}, LinkEthernet, ErrAddress, "destination"},
		{"mixed families", FakePacket{Src: v4, Dst: v6, Protocol: TCP}, LinkEthernet, ErrAddressFamily, "10.0.0.1 and 2001:db8::1"},
		{"no protocol", FakePacket{Src: v4, Dst: v4}, LinkEthernet, ErrProtocol, "0"},
		{"ICMP", FakePacket{Src: v4, Dst: v4, Protocol: 1}, LinkEthernet, ErrProtocol, "1"},
		{"v4 TCP payload one too many", FakePacket{Src: v4, Dst: v4, Protocol: TCP, Payload: make([]byte, 65496)}, LinkEthernet, ErrPayloadTooLarge, "at most 65495"},
		{"v4 UDP payload one too many", FakePacket{Src: v4, Dst: v4, Protocol: UDP, Payload: make([]byte, 65508)}, LinkRaw, ErrPayloadTooLarge, "at most 65507"},
		{"v6 TCP payload one too many", FakePacket{Src: v6, Dst: v6, Protocol: TCP, Payload: make([]byte, 65516)}, LinkEthernet, ErrPayloadTooLarge, "at most 65515"},
		{"v6 UDP payload one too many", FakePacket{Src: v6, Dst: v6, Protocol: UDP, Payload: make([]byte, 65528)}, LinkEthernet, ErrPayloadTooLarge, "at most 65527"},
		{"short MAC", FakePacket{Src: v4, Dst: v4, Protocol: TCP, SrcMAC: net.HardwareAddr{1, 2}}, LinkEthernet, ErrField, "MAC"},
		{"EUI-64 MAC", FakePacket{Src: v4, Dst: v4, Protocol: TCP, DstMAC: make(net.HardwareAddr, 8)}, LinkEthernet, ErrField, "MAC"},
		{"VLAN ID too large", FakePacket{Src: v4, Dst: v4, Protocol: TCP, VLAN: &VLAN{ID: 4096}}, LinkEthernet, ErrField, "4096"},
		{"VLAN priority too large", FakePacket{Src: v4, Dst: v4, Protocol: TCP, VLAN: &VLAN{Priority: 8}}, LinkEthernet, ErrField, "priority 8"},
		{"VLAN on raw IP", FakePacket{Src: v4, Dst: v4, Protocol: TCP, VLAN: &VLAN{ID: 1}}, LinkRaw, ErrField, "Ethernet"},
		{"unknown flag bits", FakePacket{Src: v4, Dst: v4, Protocol: TCP, Flags: 0x400}, LinkEthernet, ErrField, "0x400"},
		{"other link type", FakePacket{Src: v4, Dst: v4, Protocol: TCP}, LinkType(113), ErrLinkType, "LINUX_SLL"},
	}
	for _, tc := range tests {
		_, err := tc.p.AppendFrame(nil, tc.link)
		if !errors.Is(err, tc.err) || !strings.Contains(fmt.Sprint(err), tc.msg) {
			t.Errorf("%s: %v: got error %v, want %v mentioning %q", tc.name, tc.p, err, tc.err, tc.msg)
		}
	}
	// The largest payloads still fit.
	for _, p := range []FakePacket{
		{Src: v4, Dst: v4, Protocol: TCP, Payload: make([]byte, 65495)},
		{Src: v6, Dst: v6, Protocol: UDP, Payload: make([]byte, 65527)},
	} {
		if err := p.Validate(); err != nil {
			t.Errorf("%v: %v", p, err)
		}
	}
}

func TestFromAddrs(t *testing.T) {
	tcp4 := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 1000}
	tcp6 := &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 80}
	udp4 := &net.UDPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 53}
	tests := []struct {
		name     string
		src, dst net.Addr
		err      error
		msg      string
		proto    Protocol
	}{
		{"tcp", tcp4, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 9), Port: 21}, nil, "", TCP},
		{"udp", udp4, &net.UDPAddr{IP: net.IPv4(10, 0, 0, 9), Port: 53}, nil, "", UDP},
		{"mixed protocols", tcp4, udp4, ErrProtocol, "tcp, destination is udp", 0},
		{"mixed families", tcp4, tcp6, ErrAddressFamily, "", 0},
		{"nil source", nil, tcp4, ErrAddress, "source address is nil", 0},
		{"typed nil", (*net.TCPAddr)(nil), tcp4, ErrAddress, "source address is nil", 0},
		{"IPAddr", &net.IPAddr{IP: net.IPv4(1, 2, 3, 4)}, tcp4, ErrAddress, "*net.IPAddr", 0},
		{"UnixAddr", tcp4, &net.UnixAddr{Name: "/tmp/s", Net: "unix"}, ErrAddress, "*net.UnixAddr", 0},
		{"no IP", &net.TCPAddr{Port: 1}, tcp4, ErrAddress, "no IP", 0},
		{"bad port", &net.TCPAddr{IP: net.IPv4(1, 2, 3, 4), Port: 70000}, tcp4, ErrAddress, "70000", 0},
	}
	for _, tc := range tests {
		p, err := FromAddrs(tc.src, tc.dst, []byte("x"))
		if tc.err == nil {
			if err != nil || p.Protocol != tc.proto || string(p.Payload) != "x" {
				t.Errorf("%s: FromAddrs(%v, %v) = %v, %v", tc.name, tc.src, tc.dst, p, err)
			}
			continue
		}
		if !errors.Is(err, tc.err) || !strings.Contains(fmt.Sprint(err), tc.msg) {
			t.Errorf("%s: FromAddrs(%v, %v): got error %v, want %v mentioning %q", tc.name, tc.src, tc.dst, err, tc.err, tc.msg)
		}
	}
}

func TestFromConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no loopback TCP: %v", err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	p, err := FromConn(server, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Src.String() != client.LocalAddr().String() || p.Dst.String() != ln.Addr().String() || p.Protocol != TCP {
		t.Errorf("FromConn(server side) = %v, want from %v to %v", p, client.LocalAddr(), ln.Addr())
	}
	server.Close()
	if _, err := FromConn(server, nil); !errors.Is(err, net.ErrClosed) {
		t.Errorf("FromConn(closed) error = %v, want net.ErrClosed", err)
	}
	if _, err := FromConn(nil, nil); !errors.Is(err, ErrAddress) {
		t.Errorf("FromConn(nil) error = %v, want ErrAddress", err)
	}
	if _, err := FromConn((*net.TCPConn)(nil), nil); !errors.Is(err, ErrAddress) {
		t.Errorf("FromConn(typed nil) error = %v, want ErrAddress", err)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := FromConn(a, nil); !errors.Is(err, ErrAddress) || !strings.Contains(err.Error(), "pipe") {
		t.Errorf("FromConn(net.Pipe) error = %v, want ErrAddress naming the pipe address", err)
	}
}

// TestFakePacketTcpdump has tcpdump decode the framing test's packets, when
// it is installed, and fails on any complaint about lengths or checksums.
func TestFakePacketTcpdump(t *testing.T) {
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Skip("tcpdump is not installed: skipping its second opinion on the packets")
	}
	for _, link := range []LinkType{LinkEthernet, LinkRaw} {
		path := filepath.Join(t.TempDir(), "fake.pcap")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		w := pcapgo.NewWriter(f)
		lt := layers.LinkTypeEthernet
		if link == LinkRaw {
			lt = layers.LinkTypeRaw
		}
		if err := w.WriteFileHeader(262144, lt); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, p := range roundTripPackets() {
			if link == LinkRaw && p.VLAN != nil {
				continue
			}
			b, err := p.AppendFrame(nil, link)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1, 0), CaptureLength: len(b), Length: len(b)}, b); err != nil {
				t.Fatal(err)
			}
			n++
		}
		f.Close()
		out, err := exec.Command(tcpdump, "-r", path, "-nn", "-vv").CombinedOutput()
		if err != nil {
			t.Fatalf("tcpdump -r: %v\n%s", err, out)
		}
		text := string(out)
		for _, bad := range []string{"bad", "incorrect", "truncated", "[|", "invalid", "wrong"} {
			if strings.Contains(text, bad) {
				t.Errorf("%v: tcpdump complains (%q):\n%s", link, bad, text)
				break
			}
		}
		if got := strings.Count(text, "(correct)") + strings.Count(text, "[udp sum ok]"); got != n {
			t.Errorf("%v: tcpdump found %d correct transport checksums in %d packets:\n%s", link, got, n, text)
		}
		t.Logf("%v: tcpdump decoded %d packets without complaint", link, n)
	}
}

func TestStrings(t *testing.T) {
	tests := []struct{ got, want string }{
		{TCP.String(), "tcp"},
		{UDP.String(), "udp"},
		{Protocol(1).String(), "protocol 1"},
		{(SYN | ACK).String(), "SYN|ACK"},
		{NoFlags.String(), "none"},
		{TCPFlags(0).String(), "PSH|ACK"}, // zero means DefaultTCPFlags
		{tcp4(withFlags(NoFlags)).String(), "tcp 10.0.0.1:40000 > 192.0.2.21:21 [none] 16 bytes"},
		{tcp4(func(p *FakePacket) {
			p.Src = netip.MustParseAddrPort("[::ffff:10.0.0.1]:1")
			p.Dst = netip.MustParseAddrPort("[::ffff:192.0.2.1]:2")
		}).String(), "tcp 10.0.0.1:1 > 192.0.2.1:2 [PSH|ACK] 16 bytes"},
		{tcp6(func(p *FakePacket) { p.Src = netip.MustParseAddrPort("[fe80::1%eth0]:1") }).String(), "tcp [fe80::1]:1 > [2001:db8::443]:443 [PSH|ACK] 16 bytes"},
		{TCPFlags(0x4ff).String(), "FIN|SYN|RST|PSH|ACK|URG|ECE|CWR|0x400"},
		{LinkEthernet.String(), "ethernet"},
		{LinkRaw.String(), "raw"},
		{LinkType(113).String(), "LINUX_SLL"},
		{LinkType(276).String(), "LINUX_SLL2"},
		{LinkType(60000).String(), "DLT 60000"},
		{tcp4(withFlags(SYN), withVLAN(7)).String(), "tcp 10.0.0.1:40000 > 192.0.2.21:21 [SYN] vlan 7 16 bytes"},
		{udp4(nil).String(), "udp 10.0.0.1:40000 > 192.0.2.53:53 0 bytes"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	for lt, want := range map[uint32]LinkType{1: LinkEthernet, 101: LinkRaw, 113: 113, 228: 228, 229: 229, 276: 276, 100: 11} {
		if got := LinkTypeFromPcap(lt); got != want {
			t.Errorf("LinkTypeFromPcap(%d) = %v, want %v", lt, got, want)
		}
	}
}
