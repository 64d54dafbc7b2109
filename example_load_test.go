package bpfmatch_test

import (
	"fmt"
	"net/netip"

	"github.com/headlessbpf/bpfmatch"
)

// A program compiled ahead of time, here by `bpfmatch -ddd 'tcp dst port
// 21'`, runs in a program built without cgo or libpcap.
func ExampleLoad() {
	const tcpDstPort21 = `16
40 0 0 12
21 0 4 34525
48 0 0 20
21 0 11 6
40 0 0 56
21 8 9 21
21 0 8 2048
48 0 0 23
21 0 6 6
40 0 0 20
69 4 0 8191
177 0 0 14
72 0 0 16
21 0 1 21
6 0 0 262144
6 0 0 0
`
	prog, err := bpfmatch.ParseProgram(tcpDstPort21)
	if err != nil {
		fmt.Println(err)
		return
	}
	m, err := bpfmatch.Load(prog)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, dst := range []string{"192.0.2.21:21", "192.0.2.21:22", "[2001:db8::21]:21"} {
		src := "10.0.0.1:40000"
		if dst[0] == '[' {
			src = "[2001:db8::1]:40000"
		}
		p, _ := bpfmatch.FromAddrPorts(netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst), bpfmatch.TCP, nil)
		ok, err := m.Match(p)
		fmt.Println(dst, ok, err)
	}
	// Output:
	// 192.0.2.21:21 true <nil>
	// 192.0.2.21:22 false <nil>
	// [2001:db8::21]:21 true <nil>
}

// A Flow writes a connection's headers once; when the program cannot
// depend on the payload, the flow knows its verdict in advance.
func ExampleFlow() {
	prog, _ := bpfmatch.ParseProgram("6,40 0 0 12,21 0 3 2048,48 0 0 23,21 0 1 17,6 0 0 262144,6 0 0 0") // "ip and udp"
	m, _ := bpfmatch.Load(prog)
	src, dst := netip.MustParseAddrPort("10.0.0.1:5000"), netip.MustParseAddrPort("10.0.0.2:53")
	fl, err := m.NewFlow(bpfmatch.FakePacket{Src: src, Dst: dst, Protocol: bpfmatch.UDP})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(fl.Fixed())
	ok, err := fl.Match([]byte("any payload"))
	fmt.Println(ok, err)
	// Output:
	// true true
	// true <nil>
}
