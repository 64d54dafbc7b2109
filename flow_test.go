package bpfmatch

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
)

func TestFlowFixed(t *testing.T) {
	tests := []struct {
		expr  string
		p     FakePacket
		opts  []Option
		fixed bool
		match bool
	}{
		{"tcp dst port 21", tcp4(), nil, true, true},
		{"tcp dst port 22", tcp4(), nil, true, false},
		{"tcp dst port 21 and src net 10.0.0.0/8", tcp4(), nil, true, true},
		{"ip6 and tcp dst port 443", tcp6(), nil, true, true},
		{"vlan 100 and tcp dst port 21", tcp4(withVLAN(100)), nil, true, true},
		{"tcp[tcpflags] & tcp-syn != 0", tcp4(withFlags(SYN)), nil, true, true},
		{"ether src 02:00:00:00:00:01", tcp4(), nil, true, true},
		{"ip[8] = 64", tcp4(), nil, true, true},
		{"udp dst port 53", udp4(nil), nil, true, true},
		{"tcp dst port 21", tcp4(), []Option{WithSnapLen(30)}, true, false},
		{"tcp dst port 21", tcp4(), []Option{WithLinkType(LinkRaw)}, true, true},
		{getFilter, tcp4(), nil, false, false},
		{"len > 100", tcp4(), nil, false, false},
		{"greater 10", tcp4(), nil, false, false},
		{"ip[2:2] > 50", tcp4(), nil, false, false},
		{"ip[10:2] = 0", tcp4(), nil, false, false},
		{"ip6[4:2] = 0", tcp6(), nil, false, false},
		{"tcp[16:2] = 0", tcp4(), nil, false, false},
		{"udp[4:2] = 8", udp4(nil), nil, false, false},
		{"udp[6:2] = 0", udp4(nil), nil, false, false},
		{"udp[8] = 0", udp4(nil), nil, false, false},
		// The program rejects before it reads the payload: fixed.
		{"udp port 53 or (tcp dst port 22 and " + getFilter + ")", tcp4(), nil, true, false},
		{"tcp dst port 22 and " + getFilter, tcp4(), nil, true, false},
	}
	for _, tc := range tests {
		m := compileOrSkip(t, tc.expr, tc.opts...)
		fl, err := m.NewFlow(tc.p)
		if err != nil {
			t.Fatalf("%q: NewFlow(%v): %v", tc.expr, tc.p, err)
		}
		fixed, match := fl.Fixed()
		if fixed != tc.fixed || fixed && match != tc.match {
			t.Errorf("%q on %v: Fixed() = %v, %v; want %v, %v", tc.expr, tc.p, fixed, match, tc.fixed, tc.match)
		}
	}
}

// flowPayloads are payloads of all the sizes that matter: empty, short
// enough to be padded, and longer.
var flowPayloads = [][]byte{nil, {}, []byte("G"), []byte("GET"), []byte("GET "), []byte("GET / HTTP/1.1\r\n"),
	bytes.Repeat([]byte("GET "), 100), bytes.Repeat([]byte{0}, 1460), bytes.Repeat([]byte{0xff}, 9000)}

// TestFlowEqualsMatch checks that a flow gives the verdict Match gives on
// the same packet, for every corpus expression, on generated packets and
// payloads of every size; Match itself is checked against libpcap.
func TestFlowEqualsMatch(t *testing.T) {
	if !canCompile {
		t.Skip("built without libpcap, and the Go compiler is not switched on: Compile cannot compile expressions")
	}
	exprs := append(corpusFilters(t, "libpcap-ethernet.txt", "realworld.txt"), getFilter, "len > 100", "tcp[16:2] > 0x8000")
	packets := generatedPackets(60, LinkEthernet)
	var compared, fixedFlows, flows int
	for _, expr := range exprs {
		m, err := Compile(expr)
		if err != nil {
			continue
		}
		for _, p := range packets {
			fl, err := m.NewFlow(p)
			if err != nil {
				t.Fatal(err)
			}
			flows++
			if fixed, _ := fl.Fixed(); fixed {
				fixedFlows++
			}
			for _, payload := range flowPayloads {
				p.Payload = payload
				want, err := m.Match(p)
				if err != nil {
					t.Fatal(err)
				}
				got, err := fl.Match(payload)
				if err != nil || got != want {
					t.Errorf("%q on %v: Flow.Match = %v, %v; Match = %v (%v)", expr, p, got, err, want, fl)
				}
				compared++
			}
		}
	}
	t.Logf("%d flows (%d with a fixed verdict), %d payloads compared with Match", flows, fixedFlows, compared)
}

func TestFlowErrors(t *testing.T) {
	m := compileOrSkip(t, "tcp")
	if _, err := m.NewFlow(FakePacket{Src: client4, Dst: server6, Protocol: TCP}); !errors.Is(err, ErrAddressFamily) {
		t.Errorf("NewFlow(mixed families) error = %v", err)
	}
	if _, err := m.NewFlowConn(nil); !errors.Is(err, ErrAddress) {
		t.Errorf("NewFlowConn(nil) error = %v", err)
	}
	if _, err := m.NewFlowFrom(&net.TCPAddr{IP: net.IPv4(1, 2, 3, 4)}, &net.UDPAddr{IP: net.IPv4(1, 2, 3, 4)}); !errors.Is(err, ErrProtocol) {
		t.Errorf("NewFlowFrom(tcp, udp) error = %v", err)
	}
	fl, err := m.NewFlow(tcp4())
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := fl.Match(make([]byte, 65496)); ok || !errors.Is(err, ErrPayloadTooLarge) {
		t.Errorf("Flow.Match(65496 bytes) = %v, %v; want ErrPayloadTooLarge", ok, err)
	}
	if ok, err := fl.Match(make([]byte, 65495)); !ok || err != nil {
		t.Errorf("Flow.Match(65495 bytes) = %v, %v", ok, err)
	}
}

func TestFlowConcurrent(t *testing.T) {
	m := compileOrSkip(t, "greater 100 and "+getFilter)
	fl, err := m.NewFlow(tcp4())
	if err != nil {
		t.Fatal(err)
	}
	var payloads [][]byte
	var want []bool
	for n := 0; n < 50; n++ {
		b := bytes.Repeat([]byte("GET "), n)
		if n%4 == 1 {
			b[0] = 'P'
		}
		ok, _ := m.Match(tcp4(withPayload(string(b))))
		payloads, want = append(payloads, b), append(want, ok)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				k := (i*3 + g) % len(payloads)
				if ok, err := fl.Match(payloads[k]); ok != want[k] || err != nil {
					errs <- string(payloads[k])
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("wrong verdict on %q shared among goroutines", e)
	}
}

func TestZeroAllocations(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector or coverage")
	}
	payload := bytes.Repeat([]byte("GET "), 128)
	for _, expr := range []string{"tcp dst port 21", getFilter, "tcp[16:2] != 0 and len > 100"} {
		m := compileOrSkip(t, expr)
		p := tcp4(withPayload(string(payload)))
		fl, err := m.NewFlow(p)
		if err != nil {
			t.Fatal(err)
		}
		frame, _ := p.AppendFrame(nil, LinkEthernet)
		src := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 40000}
		dst := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 21), Port: 21}
		for name, f := range map[string]func(){
			"MatchFrom":  func() { m.MatchFrom(src, dst, payload) },
			"Match":      func() { m.Match(p) },
			"Flow.Match": func() { fl.Match(payload) },
			"MatchFrame": func() { m.MatchFrame(frame, len(frame)) },
		} {
			if n := testing.AllocsPerRun(200, f); n != 0 {
				t.Errorf("%q: %s allocates %v times per call", expr, name, n)
			}
		}
	}
}

// BenchmarkNewFlow measures what making a flow costs, now that it
// specialises the program over the flow's headers: for the header filter
// (whose residual program is a return), the payload filter, and a longer
// expression mixing both.
func BenchmarkNewFlow(b *testing.B) {
	for _, filter := range []struct{ name, expr string }{
		{"port", "tcp dst port 21"},
		{"payload", getFilter},
		{"mixed", "(tcp port 80 or tcp port 443 or udp port 53) and not src net 10.0.0.0/8 and " +
			"(tcp[tcpflags] & (tcp-syn|tcp-fin) != 0 or " + getFilter + ")"},
	} {
		m, err := Compile(filter.expr)
		if err != nil {
			b.Fatal(err)
		}
		p := tcp4()
		b.Run(fmt.Sprintf("%s/%d-insns", filter.name, len(m.raw)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.NewFlow(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
