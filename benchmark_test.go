//go:build cgo

package bpfmatch

import (
	"bytes"
	"fmt"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcap"
)

// seed is what users wrote before this package: serialise a throw-away
// packet with gopacket, then ask libpcap through a shared *pcap.BPF (here
// given the lengths it needs to be right).
type seed struct {
	bpf *pcap.BPF
	eth layers.Ethernet
	ip  layers.IPv4
	tcp layers.TCP
}

func newSeed(b *testing.B, expr string, p FakePacket) *seed {
	bpf, err := pcap.NewBPF(layers.LinkTypeEthernet, DefaultSnapLen, expr)
	if err != nil {
		b.Fatal(err)
	}
	s := &seed{bpf: bpf}
	s.eth = layers.Ethernet{SrcMAC: DefaultSrcMAC, DstMAC: DefaultDstMAC, EthernetType: layers.EthernetTypeIPv4}
	s.ip = layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP,
		SrcIP: net.IP(p.Src.Addr().AsSlice()), DstIP: net.IP(p.Dst.Addr().AsSlice())}
	s.tcp = layers.TCP{SrcPort: layers.TCPPort(p.Src.Port()), DstPort: layers.TCPPort(p.Dst.Port()), PSH: true, ACK: true, Window: 65535}
	s.tcp.SetNetworkLayerForChecksum(&s.ip)
	return s
}

func (s *seed) match(b *testing.B, payload []byte) bool {
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&s.eth, &s.ip, &s.tcp, gopacket.Payload(payload))
	if err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	return s.bpf.Matches(gopacket.CaptureInfo{CaptureLength: len(data), Length: len(data)}, data)
}

// BenchmarkMatch compares Match with the seed's way, for the seed's filter
// and payloads of several sizes, in one run so that ratios can be taken.
func BenchmarkMatch(b *testing.B) {
	const expr = "tcp dst port 21"
	m := MustCompile(expr)
	for _, size := range []int{0, 64, 512, 1460} {
		p := tcp4(withPayload(string(bytes.Repeat([]byte("x"), size))))
		s := newSeed(b, expr, p)
		if !s.match(b, p.Payload) {
			b.Fatal("the seed's way does not match")
		}
		b.Run(fmt.Sprintf("payload=%d/seed", size), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.match(b, p.Payload)
			}
		})
		b.Run(fmt.Sprintf("payload=%d/match", size), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if ok, err := m.Match(p); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}
