//go:build cgo && libpcap

package bpfmatch

import (
	"bytes"
	"fmt"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcap"
	"golang.org/x/net/bpf"
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

// BenchmarkVersus sets every way of matching side by side, in one run so
// that ratios can be taken: for a filter on the headers (port) and one
// that reads the payload, on an IPv4 TCP packet with a 512-byte payload.
//
//	seed          fresh gopacket serialisation with checksums + pcap.BPF.Matches
//	pcap-matches  pcap.BPF.Matches alone, on prebuilt bytes
//	xnet-vm       golang.org/x/net/bpf's VM alone, on the same bytes
//	exec          this package's executor alone, on the same bytes
//	match         Matcher.Match(FakePacket), end to end
//	flow          Flow.Match(payload) on an existing flow
//	handwritten   plain Go deciding the same filter on the same bytes, by
//	              hand (handwritten_test.go): the floor of any interpreter
func BenchmarkVersus(b *testing.B) {
	payload := append([]byte("GET / HTTP/1.1\r\nHost: example.org\r\n"), bytes.Repeat([]byte("x"), 512)...)[:512]
	p := tcp4(withPayload(string(payload)))
	frame, err := p.AppendFrame(nil, LinkEthernet)
	if err != nil {
		b.Fatal(err)
	}
	for _, filter := range []struct {
		name, expr  string
		handwritten func([]byte) bool
	}{
		{"port", "tcp dst port 21", handwrittenPort},
		{"payload", getFilter, handwrittenGET},
	} {
		m := MustCompile(filter.expr)
		s := newSeed(b, filter.expr, p)
		fl, err := m.NewFlow(p)
		if err != nil {
			b.Fatal(err)
		}
		insns, ok := bpf.Disassemble(m.Program())
		if !ok {
			b.Fatalf("x/net/bpf cannot disassemble the program of %q", filter.expr)
		}
		vm, err := bpf.NewVM(insns)
		if err != nil {
			b.Fatalf("x/net/bpf refuses the program of %q: %v", filter.expr, err)
		}
		ci := gopacket.CaptureInfo{CaptureLength: len(frame), Length: len(frame)}
		// Every way must give the same verdict before it is timed.
		if !s.match(b, payload) || !s.bpf.Matches(ci, frame) {
			b.Fatal("the seed does not match")
		}
		if n, err := vm.Run(frame); n == 0 || err != nil {
			b.Fatal("x/net/bpf does not match", err)
		}
		captured := frame2(frame)
		if m.prog.run(&captured) == 0 {
			b.Fatal("the executor does not match")
		}
		if ok, err := fl.Match(payload); !ok || err != nil {
			b.Fatal("the flow does not match")
		}
		if filter.handwritten(frame) != (m.prog.run(&captured) != 0) {
			b.Fatal("the hand-written filter and the program disagree")
		}

		// Each loop is written out: a table of closures would add an
		// indirect call per iteration, as much as flow itself costs.
		b.Run(filter.name+"/seed", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.match(b, payload)
			}
		})
		b.Run(filter.name+"/pcap-matches", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.bpf.Matches(ci, frame)
			}
		})
		b.Run(filter.name+"/xnet-vm", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				vm.Run(frame)
			}
		})
		b.Run(filter.name+"/exec", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m.prog.run(&captured)
			}
		})
		b.Run(filter.name+"/match", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m.Match(p)
			}
		})
		b.Run(filter.name+"/flow", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				fl.Match(payload)
			}
		})
		b.Run(filter.name+"/handwritten", func(b *testing.B) {
			b.ReportAllocs()
			// Called directly, not through filter.handwritten: an
			// indirect call would cost as much as the filter.
			if filter.name == "port" {
				for b.Loop() {
					handwrittenPort(frame)
				}
			} else {
				for b.Loop() {
					handwrittenGET(frame)
				}
			}
		})
	}
}

// frame2 is a captured frame as the executor reads it.
func frame2(data []byte) frame {
	return frame{hdr: data, caplen: uint32(len(data)), wirelen: uint32(len(data))}
}
