//go:build cgo && libpcap

package bpfmatch

import (
	"math/rand/v2"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcap"
)

// TestMatchCaptureDifferential matches corpus captures through
// MatchCapture with capture infos of every shape (zero lengths, cut
// captures, wire lengths below and above the captured length) and
// compares each verdict with libpcap's on the same bytes and lengths.
func TestMatchCaptureDifferential(t *testing.T) {
	caps := corpusCaptures(t)
	filters := map[LinkType][]string{
		LinkEthernet: corpusFilters(t, "libpcap-ethernet.txt", "realworld.txt"),
		LinkRaw:      corpusFilters(t, "libpcap-raw.txt"),
	}
	r := rand.New(rand.NewPCG(8, 8))
	var n, fails int
	for _, c := range caps {
		exprs := filters[c.link]
		if len(exprs) == 0 {
			continue
		}
		for i := 0; i < len(exprs); i += 7 {
			m, err := Compile(exprs[i], WithLinkType(c.link), WithSnapLen(96+r.IntN(2)*65000))
			if err != nil {
				continue
			}
			for j, data := range c.data {
				if j%5 != i%5 {
					continue
				}
				var ci gopacket.CaptureInfo
				caplen, wire := len(data), int(c.wires[j])
				switch r.IntN(4) {
				case 1:
					caplen = r.IntN(len(data) + 1)
					ci.CaptureLength, ci.Length = caplen, wire
				case 2:
					wire = r.IntN(len(data) + 1)
					ci.CaptureLength, ci.Length = caplen, wire
				case 3:
					wire = len(data) + r.IntN(3000)
					ci.Length = wire
				}
				if caplen == 0 {
					caplen = len(data) // as MatchCapture reads a zero
				}
				if wire == 0 {
					wire = caplen
				}
				got, err := m.MatchCapture(ci, data)
				if err != nil {
					t.Fatalf("%s packet %d, %+v: %v", c.name, j, ci, err)
				}
				want, either := libpcapVerdict(m, data[:caplen], wire)
				n++
				if got != want && !either {
					fails++
					if fails <= 10 {
						t.Errorf("%q on %s packet %d with %+v (caplen %d, wire %d, snap %d): MatchCapture %v, libpcap %v",
							m, c.name, j, ci, caplen, wire, m.SnapLen(), got, want)
					}
				}
			}
		}
	}
	t.Logf("MatchCapture: %d verdicts compared with libpcap's, %d disagreements", n, fails)
	if n == 0 {
		t.Fatal("no verdict compared")
	}
}

// TestBPFAsPcapBPF compares the drop-in BPF with gopacket's pcap.BPF on
// corpus captures, with the capture infos pcap.BPF reads right.
func TestBPFAsPcapBPF(t *testing.T) {
	caps := corpusCaptures(t)
	exprs := []string{"tcp dst port 80", "udp", "ip6", "tcp[tcpflags] & tcp-syn != 0", "len > 100", getFilter, "net 10.0.0.0/8 or icmp"}
	var n int
	for _, c := range caps {
		if c.link != LinkEthernet {
			continue
		}
		for _, expr := range exprs {
			ours, err := NewBPF(layers.LinkTypeEthernet, 65535, expr)
			if err != nil {
				t.Fatal(err)
			}
			theirs, err := pcap.NewBPF(layers.LinkTypeEthernet, 65535, expr)
			if err != nil {
				t.Fatal(err)
			}
			for j, data := range c.data {
				ci := gopacket.CaptureInfo{CaptureLength: len(data), Length: int(c.wires[j])}
				n++
				if got, want := ours.Matches(ci, data), theirs.Matches(ci, data); got != want {
					t.Errorf("%q on %s packet %d (%+v): bpfmatch.BPF %v, pcap.BPF %v", expr, c.name, j, ci, got, want)
				}
			}
		}
	}
	t.Logf("BPF.Matches: %d verdicts compared with pcap.BPF's", n)
	if n == 0 {
		t.Fatal("no Ethernet capture in the corpus: nothing compared")
	}
}
