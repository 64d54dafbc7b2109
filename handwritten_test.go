package bpfmatch

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net/netip"
	"os"
	"testing"
)

// The filters of BenchmarkVersus decided by plain Go written by hand, on
// the captured bytes of an Ethernet frame: the floor of any interpreter.
// Each read is guarded as BPF guards its loads (one past the captured
// bytes rejects), and they take the branches the filters' semantics
// require, which TestHandwrittenAgrees checks against the Matcher.

// handwrittenPort decides "tcp dst port 21": TCP over IPv6 (next header
// 6) or over IPv4 (protocol 6, first fragment only, header length IHL*4)
// with destination port 21.
func handwrittenPort(pkt []byte) bool {
	if len(pkt) < 14 {
		return false
	}
	switch binary.BigEndian.Uint16(pkt[12:]) {
	case 0x86dd:
		return len(pkt) >= 58 && pkt[20] == 6 && binary.BigEndian.Uint16(pkt[56:]) == 21
	case 0x0800:
		if len(pkt) < 24 || pkt[23] != 6 || binary.BigEndian.Uint16(pkt[20:])&0x1fff != 0 {
			return false
		}
		x := int(pkt[14]&0xf) * 4
		return len(pkt) >= 14+x+4 && binary.BigEndian.Uint16(pkt[14+x+2:]) == 21
	}
	return false
}

// handwrittenGET decides getFilter, "tcp[((tcp[12:1] & 0xf0) >> 2):4] =
// 0x47455420": the four bytes after the TCP header of a first IPv4
// fragment are "GET ". tcp[] is IPv4 only.
func handwrittenGET(pkt []byte) bool {
	if len(pkt) < 24 || binary.BigEndian.Uint16(pkt[12:]) != 0x0800 || pkt[23] != 6 ||
		binary.BigEndian.Uint16(pkt[20:])&0x1fff != 0 {
		return false
	}
	tcp := 14 + int(pkt[14]&0xf)*4
	if len(pkt) < tcp+13 {
		return false
	}
	data := tcp + int(pkt[tcp+12]&0xf0)>>2
	return len(pkt) >= data+4 && binary.BigEndian.Uint32(pkt[data:]) == 0x47455420
}

// handwrittenFilters are the hand-written deciders by expression.
var handwrittenFilters = []struct {
	name   string
	expr   string
	decide func([]byte) bool
}{
	{"port", "tcp dst port 21", handwrittenPort},
	{"payload", getFilter, handwrittenGET},
}

// handwrittenFrames returns Ethernet frames for TestHandwrittenAgrees:
// the corpus's Ethernet captures where present, generated fake packets,
// the same with the fields the filters read mutated, and truncations of
// all of them.
func handwrittenFrames(t *testing.T) (frames [][]byte, fromCorpus int) {
	if _, err := os.Stat(corpusDir); err == nil {
		for _, c := range corpusCaptures(t) {
			if c.link == LinkEthernet {
				frames = append(frames, c.data...)
			}
		}
	} else {
		t.Logf("no corpus captures (%v): generated frames only", err)
	}
	fromCorpus = len(frames)
	r := rand.New(rand.NewPCG(8, 4))
	for _, p := range generatedPackets(3000, LinkEthernet) {
		if r.IntN(2) == 0 {
			p.Dst = netip.AddrPortFrom(p.Dst.Addr(), 21)
		}
		if r.IntN(3) == 0 {
			p.Payload = []byte("GET /index.html HTTP/1.1\r\n")[:r.IntN(27)]
		}
		f, err := p.AppendFrame(nil, LinkEthernet)
		if err != nil {
			t.Fatalf("%v: %v", p, err)
		}
		frames = append(frames, f)
	}
	// Mutations of what the filters read, so that every branch is taken
	// on frames real stacks would not send: other EtherTypes and
	// protocols, IPv4 header lengths and TCP data offsets of every value,
	// fragments.
	n := len(frames)
	for i := range 6000 {
		f := append([]byte(nil), frames[i%n]...)
		if len(f) < 14 {
			continue
		}
		for range 1 + r.IntN(3) {
			switch r.IntN(7) {
			case 0:
				binary.BigEndian.PutUint16(f[12:], []uint16{0x0800, 0x86dd, 0x8100, 0x0806, 0}[r.IntN(5)])
			case 1:
				if len(f) > 23 {
					f[23] = []byte{6, 17, 1, 44}[r.IntN(4)]
				}
			case 2:
				if len(f) > 20 {
					f[20] = []byte{6, 17, 0, 44}[r.IntN(4)]
				}
			case 3:
				if len(f) > 14 {
					f[14] = 0x40 | byte(r.IntN(16))
				}
			case 4:
				if len(f) > 21 {
					binary.BigEndian.PutUint16(f[20:], []uint16{0, 0x4000, 0x2000, 0x0001, 0x1fff, 0x8000}[r.IntN(6)])
				}
			case 5:
				if k := 14 + 20 + 12; len(f) > k {
					f[k] = byte(r.IntN(16)) << 4
				}
			case 6:
				if len(f) > 60 {
					at := 14 + r.IntN(len(f)-18)
					copy(f[at:], "GET ")
				}
			}
		}
		frames = append(frames, f)
	}
	// Truncations: every length of some frames, a random one of others.
	n = len(frames)
	for i := 0; i < n; i++ {
		f := frames[i]
		if i%97 == 0 {
			for l := range min(len(f), 120) {
				frames = append(frames, f[:l])
			}
		} else if i%3 == 0 {
			frames = append(frames, f[:r.IntN(len(f)+1)])
		}
	}
	return frames, fromCorpus
}

// TestHandwrittenAgrees checks that the hand-written deciders of the
// benchmark give the Matcher's verdict on every frame, captured whole or
// truncated: their speed is the floor only if they decide the same thing.
func TestHandwrittenAgrees(t *testing.T) {
	frames, fromCorpus := handwrittenFrames(t)
	for _, hw := range handwrittenFilters {
		t.Run(hw.name, func(t *testing.T) {
			m := MustCompile(hw.expr)
			var matched, disagree int
			for _, f := range frames {
				// A truncated frame keeps a longer wire length, as a
				// capture with a small snap length holds it.
				want, err := m.MatchFrame(f, len(f)+len(f)%7)
				if err != nil {
					t.Fatal(err)
				}
				if got := hw.decide(f); got != want {
					if disagree++; disagree <= 10 {
						t.Errorf("%q on the %d-byte frame %s: hand-written says %v, the Matcher %v",
							hw.expr, len(f), hex.EncodeToString(f), got, want)
					}
				}
				if want {
					matched++
				}
			}
			t.Logf("%q: %d frames (%d from the corpus), %d match, %d disagreements", hw.expr, len(frames), fromCorpus, matched, disagree)
			// Both verdicts must be common, or the comparison proves little.
			if matched < 100 || len(frames)-matched < 100 {
				t.Errorf("%q: %d of %d frames match: too few of one verdict for the comparison to mean much", hw.expr, matched, len(frames))
			}
		})
	}
}
