package bpfmatch_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/headlessbpf/bpfmatch"
)

// The seed's scenario: is this payload, arriving on an FTP control
// connection from the 10/8 network, what the filter wants?
func Example() {
	m := bpfmatch.MustCompile("tcp dst port 21 and src net 10.0.0.0/8")
	p := bpfmatch.FakePacket{
		Src:      netip.MustParseAddrPort("10.1.2.3:40000"),
		Dst:      netip.MustParseAddrPort("192.0.2.21:21"),
		Protocol: bpfmatch.TCP,
		Payload:  []byte("USER anonymous\r\n"),
	}
	ok, err := m.Match(p)
	fmt.Println(ok, err)

	p.Src = netip.MustParseAddrPort("172.16.0.9:40000")
	ok, err = m.Match(p)
	fmt.Println(ok, err)
	// Output:
	// true <nil>
	// false <nil>
}

// A datagram as a UDP server receives it: the source is what ReadFrom
// returned, the destination the socket's own address.
func ExampleMatcher_MatchFrom() {
	m := bpfmatch.MustCompile("udp dst port 53 and udp[10] & 0x80 = 0") // DNS queries, not responses
	from := &net.UDPAddr{IP: net.ParseIP("198.51.100.7"), Port: 33333}
	local := &net.UDPAddr{IP: net.ParseIP("192.0.2.53"), Port: 53}
	query := []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}
	response := []byte{0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0}
	for _, payload := range [][]byte{query, response} {
		ok, err := m.MatchFrom(from, local, payload)
		fmt.Println(ok, err)
	}
	// Output:
	// true <nil>
	// false <nil>
}

// IPv6 follows from the addresses; IPv4-mapped addresses count as IPv4.
func ExampleFakePacket_ipv6() {
	m := bpfmatch.MustCompile("ip6 and tcp dst port 443 and src net 2001:db8::/32")
	for _, src := range []string{"[2001:db8::1]:50000", "[::ffff:10.0.0.1]:50000"} {
		dst := "[2001:db8::443]:443"
		if src[1] == ':' {
			dst = "[::ffff:192.0.2.1]:443"
		}
		p, err := bpfmatch.FromAddrPorts(netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst), bpfmatch.TCP, nil)
		if err != nil {
			fmt.Println(err)
			continue
		}
		ok, err := m.Match(p)
		fmt.Println(src, ok, err)
	}
	// Output:
	// [2001:db8::1]:50000 true <nil>
	// [::ffff:10.0.0.1]:50000 false <nil>
}

// Filters can look into the payload: here, the first four bytes after the
// TCP header are "GET ".
func ExampleMatcher_Match_payload() {
	m := bpfmatch.MustCompile("tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420")
	for _, payload := range []string{"GET / HTTP/1.1\r\n", "POST / HTTP/1.1\r\n", ""} {
		p := bpfmatch.FakePacket{
			Src:      netip.MustParseAddrPort("10.0.0.1:40000"),
			Dst:      netip.MustParseAddrPort("10.0.0.2:80"),
			Protocol: bpfmatch.TCP,
			Payload:  []byte(payload),
		}
		ok, _ := m.Match(p)
		fmt.Printf("%q %v\n", payload, ok)
	}
	// Output:
	// "GET / HTTP/1.1\r\n" true
	// "POST / HTTP/1.1\r\n" false
	// "" false
}

// MatchConn matches what arrives on a connection: the packet from its
// remote address to its local one.
func ExampleMatcher_MatchConn() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Write([]byte("HELO example.org\r\n"))
			c.Close()
		}
	}()
	conn, err := ln.Accept()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	buf := make([]byte, 512)
	n, _ := conn.Read(buf)

	m := bpfmatch.MustCompile("tcp and src host 127.0.0.1 and tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x48454c4f") // "HELO"
	ok, err := m.MatchConn(conn, buf[:n])
	fmt.Println(ok, err)
	// Output:
	// true <nil>
}

// An expression libpcap does not take is an error with libpcap's message.
func ExampleCompile_error() {
	_, err := bpfmatch.Compile("tcp dst port 21 and")
	fmt.Println(err)
	var ce *bpfmatch.CompileError
	if errors.As(err, &ce) {
		fmt.Printf("at byte %d: %s\n", ce.Offset, ce.Msg)
	}
	// Output:
	// bpfmatch: compiling "tcp dst port 21 and" for ethernet: at offset 19 (end of expression): unexpected end of expression: expected a primitive or an id
	// at byte 19: unexpected end of expression: expected a primitive or an id
}

// A rule on what clients send first, for IPv4 and IPv6 clients alike: a
// Router on a dual-stack port takes it as it is.
func ExamplePayloadPrefix() {
	m := bpfmatch.MustCompile(bpfmatch.PayloadPrefix([]byte("GET ")))
	for _, src := range []string{"192.0.2.1:40000", "[2001:db8::1]:40000"} {
		dst := "192.0.2.2:80"
		if strings.HasPrefix(src, "[") {
			dst = "[2001:db8::2]:80"
		}
		p := bpfmatch.FakePacket{
			Src:      netip.MustParseAddrPort(src),
			Dst:      netip.MustParseAddrPort(dst),
			Protocol: bpfmatch.TCP,
			Payload:  []byte("GET / HTTP/1.1\r\n"),
		}
		ok, _ := m.Match(p)
		fmt.Println(src, ok)
	}
	// Output:
	// 192.0.2.1:40000 true
	// [2001:db8::1]:40000 true
}
