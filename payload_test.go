package bpfmatch

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPayloadPrefix matches the expressions PayloadPrefix builds on IPv4
// and IPv6 segments whose payloads start with the prefix, differ from it
// in one byte, or are shorter, on both link types, against
// bytes.HasPrefix and, with the oracle, libpcap.
func TestPayloadPrefix(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	long := make([]byte, 37)
	for i := range long {
		long[i] = byte(r.IntN(256))
	}
	prefixes := [][]byte{nil, []byte("G"), []byte("GE"), []byte("GET"), []byte("GET "), []byte("SSH-2.0"), {0x16, 0x03, 0x01}, {0, 0, 0, 0, 0}, long}
	var n int
	for _, prefix := range prefixes {
		expr := PayloadPrefix(prefix)
		for _, link := range []LinkType{LinkEthernet, LinkRaw} {
			m, err := Compile(expr, WithLinkType(link))
			if err != nil {
				t.Fatalf("PayloadPrefix(%q) = %q does not compile: %v", prefix, expr, err)
			}
			var payloads [][]byte
			payloads = append(payloads, prefix, append(append([]byte(nil), prefix...), "rest of it"...), nil, []byte("x"))
			if len(prefix) > 0 {
				payloads = append(payloads, prefix[:len(prefix)-1])
				for i := range prefix {
					p := append(append([]byte(nil), prefix...), 'z')
					p[i] ^= 0x20
					payloads = append(payloads, p)
				}
			}
			for _, payload := range payloads {
				for _, p := range []FakePacket{tcp4(), tcp6(), udp4(nil)} {
					p.Payload = payload
					want := p.Protocol == TCP && bytes.HasPrefix(payload, prefix)
					got, err := m.Match(p)
					if err != nil {
						t.Fatal(err)
					}
					n++
					if got != want {
						t.Errorf("%q for %v on %v: %v, want %v", expr, link, p, got, want)
					}
					if oracle != nil {
						frame, _ := p.AppendFrame(nil, link)
						if lp, either := oracle(m, frame, len(frame)); lp != got && !either {
							t.Errorf("%q for %v on %v: %v, libpcap %v", expr, link, p, got, lp)
						}
					}
				}
			}
		}
	}
	t.Logf("%d verdicts of PayloadPrefix expressions checked", n)
}

// TestPayloadPrefixDualStack routes IPv4 and IPv6 clients of one
// dual-stack port by what they send first, with a rule PayloadPrefix
// wrote: both families reach the rule.
func TestPayloadPrefixDualStack(t *testing.T) {
	ln, err := net.Listen("tcp", "[::]:0")
	if err != nil {
		t.Skipf("no dual-stack listener here: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	r := NewRouter(ln, WithPayload(4, 2*time.Second))
	defer r.Close()
	web, err := r.Listen(PayloadPrefix([]byte("GET ")))
	if err != nil {
		t.Fatal(err)
	}
	other := r.Default()
	go r.Serve()
	webConns, otherConns := acceptAll(web), acceptAll(other)

	clients := []struct {
		name, addr, send string
		wantWeb          bool
	}{
		{"IPv4 GET", "127.0.0.1", "GET / HTTP/1.0\r\n\r\n", true},
		{"IPv6 GET", "::1", "GET / HTTP/1.0\r\n\r\n", true},
		{"IPv4 other", "127.0.0.1", "SSH-2.0-x\r\n", false},
		{"IPv6 other", "::1", "SSH-2.0-x\r\n", false},
	}
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", net.JoinHostPort(c.addr, strconv.Itoa(port)), 5*time.Second)
			if err != nil {
				if strings.Contains(c.addr, ":") {
					t.Skipf("cannot reach [%s]: %v", c.addr, err)
				}
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, c.send); err != nil {
				t.Fatal(err)
			}
			want, wrong := webConns, otherConns
			if !c.wantWeb {
				want, wrong = otherConns, webConns
			}
			select {
			case got := <-want:
				buf := make([]byte, len(c.send))
				if _, err := io.ReadFull(got, buf); err != nil || string(buf) != c.send {
					t.Errorf("the connection routed reads %q, %v; want %q", buf, err, c.send)
				}
				got.Close()
			case <-wrong:
				t.Errorf("%s sending %q went to the wrong listener (web rule %q)", c.name, c.send, PayloadPrefix([]byte("GET ")))
			case <-time.After(10 * time.Second):
				t.Errorf("%s sending %q was not routed within 10 s", c.name, c.send)
			}
		})
	}
}
