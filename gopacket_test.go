package bpfmatch

import (
	"bytes"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

func TestMatchCaptureLengths(t *testing.T) {
	p := tcp4() // 70 bytes on Ethernet
	frame, err := p.AppendFrame(nil, LinkEthernet)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		expr    string
		ci      gopacket.CaptureInfo
		data    []byte
		want    bool
		wantErr string
	}{
		{"zero info is the whole frame", "len = 70 and tcp[13] = 0x18", gopacket.CaptureInfo{}, frame, true, ""},
		{"zero length is the capture length", "len = 40", gopacket.CaptureInfo{CaptureLength: 40}, frame, true, ""},
		{"captured part only", "ether[39] = ether[39]", gopacket.CaptureInfo{CaptureLength: 40, Length: 70}, frame, true, ""},
		{"load past the captured part", "ether[40] = ether[40]", gopacket.CaptureInfo{CaptureLength: 40, Length: 70}, frame, false, ""},
		{"wire length below capture length, as libpcap", "len = 50 and ether[65] = ether[65]", gopacket.CaptureInfo{CaptureLength: 70, Length: 50}, frame, true, ""},
		{"wire length as given", "len = 1500", gopacket.CaptureInfo{CaptureLength: 70, Length: 1500}, frame, true, ""},
		{"capture length beyond data", "", gopacket.CaptureInfo{CaptureLength: 71}, frame, false, "capture length 71 is outside the 70 bytes"},
		{"negative capture length", "", gopacket.CaptureInfo{CaptureLength: -1}, frame, false, "capture length -1"},
		{"negative wire length", "", gopacket.CaptureInfo{Length: -5}, frame, false, "wire length -5"},
		{"empty data", "len = 0", gopacket.CaptureInfo{}, nil, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := MustCompile(tt.expr)
			got, err := m.MatchCapture(tt.ci, tt.data)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("MatchCapture(%+v) with %q: error %v, want one containing %q", tt.ci, tt.expr, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("MatchCapture(%+v) with %q on % x = %v, %v; want %v", tt.ci, tt.expr, tt.data, got, err, tt.want)
			}
		})
	}
}

func TestMatchCaptureSnapLen(t *testing.T) {
	p := tcp4()
	frame, err := p.AppendFrame(nil, LinkEthernet)
	if err != nil {
		t.Fatal(err)
	}
	m := MustCompile("ether[39] = ether[39] and len = 70", WithSnapLen(40))
	n := MustCompile("ether[40] = ether[40]", WithSnapLen(40))
	if ok, err := m.MatchCapture(gopacket.CaptureInfo{}, frame); !ok || err != nil {
		t.Errorf("%q, snap 40, on the 70-byte frame: %v, %v; want a match on the first 40 bytes", m, ok, err)
	}
	if ok, err := n.MatchCapture(gopacket.CaptureInfo{}, frame); ok || err != nil {
		t.Errorf("%q, snap 40, on the 70-byte frame: %v, %v; want no match: byte 40 is past the snap length", n, ok, err)
	}
}

func TestMatchPacket(t *testing.T) {
	tests := []struct {
		name string
		link LinkType
		dec  gopacket.Decoder
		p    FakePacket
		expr string
		want bool
	}{
		{"ethernet ipv4", LinkEthernet, layers.LayerTypeEthernet, tcp4(), "tcp dst port 21 and src host 10.0.0.1", true},
		{"ethernet ipv6", LinkEthernet, layers.LayerTypeEthernet, tcp6(), "ip6 and tcp dst port 443", true},
		{"ethernet payload", LinkEthernet, layers.LayerTypeEthernet, tcp4(), getFilter, true},
		{"ethernet other port", LinkEthernet, layers.LayerTypeEthernet, tcp4(), "tcp dst port 22", false},
		{"raw ipv4", LinkRaw, layers.LayerTypeIPv4, tcp4(), "ip and tcp dst port 21", true},
		{"raw udp", LinkRaw, layers.LayerTypeIPv4, udp4([]byte("x")), "udp dst port 53 and len = 29", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame, err := tt.p.AppendFrame(nil, tt.link)
			if err != nil {
				t.Fatal(err)
			}
			pkt := gopacket.NewPacket(frame, tt.dec, gopacket.Default)
			m := MustCompile(tt.expr, WithLinkType(tt.link))
			got, err := m.MatchPacket(pkt)
			if err != nil || got != tt.want {
				t.Errorf("MatchPacket(%v) with %q = %v, %v; want %v", tt.p, tt.expr, got, err, tt.want)
			}
			// A packet from a capture carries its lengths.
			pkt = gopacket.NewPacket(frame[:30], tt.dec, gopacket.Default)
			md := pkt.Metadata()
			md.CaptureLength, md.Length = 30, len(frame)
			lm := MustCompile("len = "+strconv.Itoa(len(frame)), WithLinkType(tt.link))
			if ok, err := lm.MatchPacket(pkt); !ok || err != nil {
				t.Errorf("MatchPacket of %v cut to 30 bytes, length %d in its metadata, with %q = %v, %v; want a match", tt.p, len(frame), lm, ok, err)
			}
		})
	}
}

func TestNewBPF(t *testing.T) {
	tests := []struct {
		name    string
		lt      layers.LinkType
		snap    int
		expr    string
		p       FakePacket
		frameAs LinkType
		want    bool
		wantErr string
	}{
		{"ethernet", layers.LinkTypeEthernet, 65535, "tcp dst port 21", tcp4(), LinkEthernet, true, ""},
		{"ethernet no match", layers.LinkTypeEthernet, 65535, "udp", tcp4(), LinkEthernet, false, ""},
		{"LINKTYPE_RAW is raw IP", layers.LinkTypeRaw, 65535, "ip and tcp dst port 21", tcp4(), LinkRaw, true, ""},
		{"LINKTYPE_RAW ipv6", layers.LinkTypeRaw, 65535, "ip6 and tcp", tcp6(), LinkRaw, true, ""},
		{"snap length cuts", layers.LinkTypeEthernet, 40, "ether[40] = ether[40]", tcp4(), LinkEthernet, false, ""},
		{"bad expression", layers.LinkTypeEthernet, 65535, "tcp port", tcp4(), LinkEthernet, false, "compiling \"tcp port\""},
		{"bad snap length", layers.LinkTypeEthernet, 0, "tcp", tcp4(), LinkEthernet, false, "snap length 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewBPF(tt.lt, tt.snap, tt.expr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewBPF(%v, %d, %q): error %v, want one containing %q", tt.lt, tt.snap, tt.expr, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.expr || b.Matcher().LinkType() != tt.frameAs {
				t.Errorf("NewBPF(%v, %d, %q): String %q, link type %v; want %q, %v", tt.lt, tt.snap, tt.expr, b, b.Matcher().LinkType(), tt.expr, tt.frameAs)
			}
			frame, err := tt.p.AppendFrame(nil, tt.frameAs)
			if err != nil {
				t.Fatal(err)
			}
			for _, ci := range []gopacket.CaptureInfo{{}, {CaptureLength: len(frame), Length: len(frame)}} {
				if got := b.Matches(ci, frame); got != tt.want {
					t.Errorf("NewBPF(%v, %d, %q).Matches(%+v, %v) = %v, want %v", tt.lt, tt.snap, tt.expr, ci, tt.p, got, tt.want)
				}
			}
			// Lengths that cannot be never match, and never read past data.
			if b.Matches(gopacket.CaptureInfo{CaptureLength: len(frame) + 1000, Length: len(frame) + 1000}, frame) {
				t.Errorf("%q matched a capture length beyond the data", tt.expr)
			}
		})
	}
}

// TestBPFConcurrent runs one BPF from many goroutines: the race detector
// checks it shares nothing it writes.
func TestBPFConcurrent(t *testing.T) {
	b, err := NewBPF(layers.LinkTypeEthernet, 262144, getFilter)
	if err != nil {
		t.Fatal(err)
	}
	get, post := tcp4(withPayload("GET / HTTP/1.0\r\n\r\n")), tcp4(withPayload("POST / HTTP/1.0\r\n\r\n"))
	yes, _ := get.AppendFrame(nil, LinkEthernet)
	no, _ := post.AppendFrame(nil, LinkEthernet)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				if b.Matches(gopacket.CaptureInfo{}, yes) != true || b.Matches(gopacket.CaptureInfo{}, no) != false {
					errs <- "goroutine " + strconv.Itoa(g) + ", round " + strconv.Itoa(i) + ": wrong verdict"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestLayersSerialiseAsAppendFrame serialises the layers of many fake
// packets with gopacket and compares the bytes with AppendFrame's.
func TestLayersSerialiseAsAppendFrame(t *testing.T) {
	var n int
	payloads := [][]byte{nil, []byte("x"), []byte("GET / HTTP/1.1\r\n"), bytes.Repeat([]byte{0xab}, 1500), {0, 0, 0, 0xff, 0xff}}
	edits := []func(*FakePacket){
		func(*FakePacket) {},
		withFlags(SYN), withFlags(NoFlags), withFlags(FIN | PSH | ACK | URG | ECE | CWR | RST),
		withVLAN(7),
		func(p *FakePacket) { p.VLAN = &VLAN{ID: 4095, Priority: 7, DropEligible: true} },
		func(p *FakePacket) { p.TTL, p.Seq, p.Ack, p.Window = 1, 0xdeadbeef, 7, 1 },
		func(p *FakePacket) {
			p.SrcMAC = net.HardwareAddr{0x00, 0x11, 0x22, 0x33, 0x44, 0x55}
			p.DstMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
		},
		func(p *FakePacket) { p.Src = netip.MustParseAddrPort("[::ffff:10.9.8.7]:1") },
	}
	bases := []FakePacket{tcp4(), tcp6(), udp4(nil), func() FakePacket { p := udp4(nil); p.Src, p.Dst = client6, server6; return p }()}
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	for _, base := range bases {
		for ei, edit := range edits {
			for _, payload := range payloads {
				for _, link := range []LinkType{LinkEthernet, LinkRaw} {
					p := base
					p.Payload = payload
					edit(&p)
					want, err := p.AppendFrame(nil, link)
					if err != nil {
						continue // a VLAN on raw IP, mixed families
					}
					ls, err := p.Layers(link)
					if err != nil {
						t.Fatalf("%v for %v: Layers: %v", p, link, err)
					}
					buf := gopacket.NewSerializeBuffer()
					if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
						t.Fatalf("%v for %v: SerializeLayers: %v", p, link, err)
					}
					n++
					if got := buf.Bytes(); !bytes.Equal(got, want) {
						t.Errorf("%v (edit %d) for %v: gopacket writes\n% x\nAppendFrame\n% x", p, ei, link, got, want)
					}
				}
			}
		}
	}
	t.Logf("%d packets serialised by gopacket as AppendFrame writes them", n)
	if n < 100 {
		t.Fatalf("only %d packets compared", n)
	}
	q := tcp4()
	if _, err := q.Layers(LinkType(113)); err == nil {
		t.Error("Layers for Linux cooked captures: no error")
	}
}
