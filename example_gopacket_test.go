package bpfmatch_test

import (
	"bytes"
	"fmt"
	"log"
	"net/netip"
	"strings"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"github.com/headlessbpf/bpfmatch"
)

// Code written against gopacket's pcap.BPF, which needs cgo and libpcap:
//
//	import "github.com/google/gopacket/pcap"
//	bpfi, err := pcap.NewBPF(layers.LinkTypeEthernet, 65535, "tcp dst port 80")
//	...
//	if bpfi.Matches(ci, data) { ... }
//
// moves to bpfmatch by changing the import and the package of NewBPF.
func ExampleNewBPF() {
	bpfi, err := bpfmatch.NewBPF(layers.LinkTypeEthernet, 65535, "tcp dst port 80")
	if err != nil {
		log.Fatal(err)
	}
	p := bpfmatch.FakePacket{
		Src:      netip.MustParseAddrPort("192.0.2.1:40000"),
		Dst:      netip.MustParseAddrPort("192.0.2.2:80"),
		Protocol: bpfmatch.TCP,
	}
	data, err := p.AppendFrame(nil, bpfmatch.LinkEthernet)
	if err != nil {
		log.Fatal(err)
	}
	ci := gopacket.CaptureInfo{CaptureLength: len(data), Length: len(data)}
	fmt.Println(bpfi.Matches(ci, data))
	// A zero CaptureInfo means the whole of data, captured whole.
	fmt.Println(bpfi.Matches(gopacket.CaptureInfo{}, data))
	// Output:
	// true
	// true
}

// Filtering a capture read with gopacket's pcapgo. The capture is written
// here first, so that the example runs anywhere.
func ExampleMatcher_MatchCapture() {
	var file bytes.Buffer
	w := pcapgo.NewWriter(&file)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		log.Fatal(err)
	}
	for _, port := range []uint16{80, 443, 80} {
		p := bpfmatch.FakePacket{
			Src:      netip.MustParseAddrPort("192.0.2.1:40000"),
			Dst:      netip.AddrPortFrom(netip.MustParseAddr("192.0.2.2"), port),
			Protocol: bpfmatch.TCP,
		}
		data, _ := p.AppendFrame(nil, bpfmatch.LinkEthernet)
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1, 0), CaptureLength: len(data), Length: len(data)}
		if err := w.WritePacket(ci, data); err != nil {
			log.Fatal(err)
		}
	}

	r, err := pcapgo.NewReader(&file)
	if err != nil {
		log.Fatal(err)
	}
	m := bpfmatch.MustCompile("tcp dst port 80",
		bpfmatch.WithLinkType(bpfmatch.LinkTypeFromPcap(uint32(r.LinkType()))),
		bpfmatch.WithSnapLen(int(r.Snaplen())))
	n := 0
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break // io.EOF at the end
		}
		if ok, _ := m.MatchCapture(ci, data); ok {
			n++
		}
	}
	fmt.Println(n, "packets to port 80")
	// Output: 2 packets to port 80
}

// A packet gopacket decoded matches with its own bytes and lengths.
func ExampleMatcher_MatchPacket() {
	p := bpfmatch.FakePacket{
		Src:      netip.MustParseAddrPort("[2001:db8::1]:40000"),
		Dst:      netip.MustParseAddrPort("[2001:db8::2]:53"),
		Protocol: bpfmatch.UDP,
		Payload:  []byte("query"),
	}
	data, _ := p.AppendFrame(nil, bpfmatch.LinkEthernet)
	pkt := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
	m := bpfmatch.MustCompile("ip6 and udp dst port 53")
	ok, err := m.MatchPacket(pkt)
	fmt.Println(ok, err)
	// Output: true <nil>
}

// A fake packet as gopacket layers, to change or to serialise: the bytes
// are AppendFrame's.
func ExampleFakePacket_Layers() {
	p := bpfmatch.FakePacket{
		Src:      netip.MustParseAddrPort("192.0.2.1:40000"),
		Dst:      netip.MustParseAddrPort("192.0.2.2:80"),
		Protocol: bpfmatch.TCP,
		Flags:    bpfmatch.SYN,
	}
	ls, err := p.Layers(bpfmatch.LinkEthernet)
	if err != nil {
		log.Fatal(err)
	}
	var names []string
	for _, l := range ls {
		names = append(names, l.LayerType().String())
	}
	fmt.Println(strings.Join(names, " "))
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		log.Fatal(err)
	}
	frame, _ := p.AppendFrame(nil, bpfmatch.LinkEthernet)
	fmt.Println(bytes.Equal(buf.Bytes(), frame))
	// Output:
	// Ethernet IPv4 TCP Payload
	// true
}
