package bpfmatch

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/bpf"
)

// oracle, set in builds with libpcap, is libpcap's verdict on a frame
// captured as m would capture it; either is true where libpcap itself
// gives both verdicts (libpcap_test.go says when).
var oracle func(m *Matcher, frame []byte, wireLen int) (want, either bool)

// canCompile tells whether Compile works in this build: with the Go
// compiler always, with libpcap in builds with the tag libpcap.
const canCompile = useGoCompiler || HaveLibpcap

// compileOrSkip compiles expr; in a build without libpcap it loads the
// program stored for it in testdata/programs.txt, so that the same tests
// run there too, and skips the test if there is none.
func compileOrSkip(t testing.TB, expr string, opts ...Option) *Matcher {
	t.Helper()
	o, err := newOptions(opts)
	if err != nil {
		t.Fatal(err)
	}
	key := programKey{o.link, o.snap, expr}
	if o.netmask != 0 && !canCompile {
		t.Skipf("built without libpcap, and testdata/programs.txt holds programs compiled with netmask 0 only")
	}
	if !canCompile {
		prog, ok := storedPrograms(t)[key]
		if !ok {
			t.Skipf("built without libpcap, and testdata/programs.txt has no program for %q (%v, snap %d): "+
				"go test -run TestStoredPrograms -update writes it", expr, o.link, o.snap)
		}
		m, err := Load(prog, opts...)
		if err != nil {
			t.Fatalf("Load(program of %q): %v", expr, err)
		}
		return m
	}
	m, err := Compile(expr, opts...)
	if err != nil {
		t.Fatalf("Compile(%q): %v", expr, err)
	}
	if o.netmask == 0 {
		usedPrograms.Store(key, m.Program())
	}
	return m
}

// programKey names a compiled program in testdata/programs.txt.
type programKey struct {
	link LinkType
	snap int
	expr string
}

// usedPrograms records what compileOrSkip compiled, for -update.
var usedPrograms sync.Map

const programsFile = "testdata/programs.txt"

var (
	storedOnce sync.Once
	stored     map[programKey][]bpf.RawInstruction
	storedErr  error
)

// storedPrograms reads testdata/programs.txt: a line per program, with the
// link type, the snap length, the expression and the program in the
// one-line form of ParseProgram, separated by tabs.
func storedPrograms(t testing.TB) map[programKey][]bpf.RawInstruction {
	storedOnce.Do(func() {
		stored = map[programKey][]bpf.RawInstruction{}
		b, err := os.ReadFile(programsFile)
		if err != nil {
			storedErr = err
			return
		}
		for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.Split(line, "\t")
			if len(f) != 4 {
				storedErr = fmt.Errorf("%s:%d: %d fields, want 4", programsFile, i+1, len(f))
				return
			}
			link, err1 := strconv.Atoi(f[0])
			snap, err2 := strconv.Atoi(f[1])
			prog, err3 := ParseProgram(f[3])
			if err := errors.Join(err1, err2, err3); err != nil {
				storedErr = fmt.Errorf("%s:%d: %v", programsFile, i+1, err)
				return
			}
			stored[programKey{LinkType(link), snap, f[2]}] = prog
		}
	})
	if storedErr != nil {
		t.Fatal(storedErr)
	}
	return stored
}

var (
	client4 = netip.MustParseAddrPort("10.0.0.1:40000")
	server4 = netip.MustParseAddrPort("192.0.2.21:21")
	client6 = netip.MustParseAddrPort("[2001:db8::1]:40000")
	server6 = netip.MustParseAddrPort("[2001:db8::443]:443")
	get     = []byte("GET / HTTP/1.1\r\n") // 16 bytes: the frame is 70 bytes long
)

func tcp4(edit ...func(*FakePacket)) FakePacket {
	p := FakePacket{Src: client4, Dst: server4, Protocol: TCP, Payload: get}
	for _, e := range edit {
		e(&p)
	}
	return p
}

func tcp6(edit ...func(*FakePacket)) FakePacket {
	return tcp4(append([]func(*FakePacket){func(p *FakePacket) { p.Src, p.Dst = client6, server6 }}, edit...)...)
}

func udp4(payload []byte) FakePacket {
	return FakePacket{Src: client4, Dst: netip.MustParseAddrPort("192.0.2.53:53"), Protocol: UDP, Payload: payload}
}

func toDst(dst string) FakePacket {
	p := udp4(nil)
	p.Dst = netip.MustParseAddrPort(dst)
	return p
}

func withFlags(f TCPFlags) func(*FakePacket) { return func(p *FakePacket) { p.Flags = f } }
func withPayload(b string) func(*FakePacket) { return func(p *FakePacket) { p.Payload = []byte(b) } }
func withVLAN(id uint16) func(*FakePacket)   { return func(p *FakePacket) { p.VLAN = &VLAN{ID: id} } }

const getFilter = "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420"

var matchTests = []struct {
	name string
	expr string
	p    FakePacket
	opts []Option
	want bool
}{
	{"dst port", "tcp dst port 21", tcp4(), nil, true},
	{"dst port other", "tcp dst port 22", tcp4(), nil, false},
	{"src port", "tcp src port 40000", tcp4(), nil, true},
	{"src port is not dst", "tcp dst port 40000", tcp4(), nil, false},
	{"port either way", "port 21", tcp4(), nil, true},
	{"udp on tcp", "udp", tcp4(), nil, false},
	{"udp", "udp", udp4(nil), nil, true},
	{"udp dst port", "udp dst port 53", udp4([]byte{1}), nil, true},
	{"tcp on udp", "tcp port 53", udp4(nil), nil, false},
	{"host", "host 10.0.0.1", tcp4(), nil, true},
	{"host other", "host 10.0.0.9", tcp4(), nil, false},
	{"src and dst host", "src host 10.0.0.1 and dst host 192.0.2.21", tcp4(), nil, true},
	{"direction", "dst host 10.0.0.1", tcp4(), nil, false},
	{"net", "net 10.0.0.0/8", tcp4(), nil, true},
	{"src net and port", "tcp dst port 21 and src net 10.0.0.0/8", tcp4(), nil, true},
	{"src net other", "src net 172.16.0.0/12", tcp4(), nil, false},
	{"portrange", "portrange 20-25", tcp4(), nil, true},
	{"portrange other", "portrange 22-25", tcp4(), nil, false},
	{"dst portrange", "tcp dst portrange 1-1024", tcp4(), nil, true},
	{"ip", "ip", tcp4(), nil, true},
	{"ip on ip6", "ip", tcp6(), nil, false},
	{"ip6", "ip6", tcp6(), nil, true},
	{"ip6 on ip", "ip6", tcp4(), nil, false},
	{"ip6 port", "ip6 and tcp dst port 443", tcp6(), nil, true},
	{"ip6 host", "ip6 host 2001:db8::1", tcp6(), nil, true},
	{"ip6 net", "ip6 net 2001:db8::/32", tcp6(), nil, true},
	{"ip6 net other", "ip6 net 2001:db9::/32", tcp6(), nil, false},
	{"ip6 hop limit", "ip6[7] = 64", tcp6(), nil, true},
	{"ip6 payload length", "ip6[4:2] = 36", tcp6(), nil, true},
	{"vlan", "vlan", tcp4(withVLAN(100)), nil, true},
	{"vlan untagged", "vlan", tcp4(), nil, false},
	{"vlan id and port", "vlan 100 and tcp dst port 21", tcp4(withVLAN(100)), nil, true},
	{"vlan id other", "vlan 200", tcp4(withVLAN(100)), nil, false},
	{"vlan ip6", "vlan and ip6 and port 443", tcp6(withVLAN(7)), nil, true},
	{"syn", "tcp[tcpflags] & tcp-syn != 0", tcp4(withFlags(SYN)), nil, true},
	{"syn on data", "tcp[tcpflags] & tcp-syn != 0", tcp4(), nil, false},
	{"syn only", "tcp[tcpflags] == tcp-syn", tcp4(withFlags(SYN)), nil, true},
	{"syn only on syn-ack", "tcp[tcpflags] == tcp-syn", tcp4(withFlags(SYN | ACK)), nil, false},
	{"default flags", "tcp[tcpflags] & (tcp-push|tcp-ack) == (tcp-push|tcp-ack)", tcp4(), nil, true},
	{"no flags", "tcp[13] = 0", tcp4(withFlags(NoFlags)), nil, true},
	{"fin", "tcp[tcpflags] & tcp-fin != 0", tcp4(withFlags(FIN | ACK)), nil, true},
	{"len", "len = 70", tcp4(), nil, true},
	{"len other", "len = 71", tcp4(), nil, false},
	{"greater", "greater 30", tcp4(), nil, true},
	{"greater other", "greater 1000", tcp4(), nil, false},
	{"less", "less 100", tcp4(), nil, true},
	{"less other", "less 60", tcp4(), nil, false},
	{"padded to 60", "len = 60", tcp4(withPayload("")), nil, true},
	{"GET", getFilter, tcp4(), nil, true},
	{"GET on POST", getFilter, tcp4(withPayload("POST / HTTP/1.1\r\n")), nil, false},
	{"GET on empty", getFilter, tcp4(withPayload("")), nil, false},
	{"GET on GE", getFilter, tcp4(withPayload("GE")), nil, false},
	{"GET over ip6", "ip6[(40 + ((ip6[52] & 0xf0) >> 2)):4] = 0x47455420", tcp6(), nil, true},
	{"udp payload", "udp[8:2] = 0x1234", udp4([]byte{0x12, 0x34, 0x56}), nil, true},
	{"udp payload other", "udp[8:2] = 0x1234", udp4([]byte{0x12, 0x35}), nil, false},
	{"udp payload into padding", "udp[8:2] = 0x1200", udp4([]byte{0x12}), nil, true},
	{"udp payload past end", "udp[8:2] = 0x1200", udp4([]byte{0x12}), []Option{WithLinkType(LinkRaw)}, false},
	{"udp length", "udp[4:2] = 11", udp4([]byte{1, 2, 3}), nil, true},
	{"ttl", "ip[8] = 64", tcp4(), nil, true},
	{"ttl set", "ip[8] = 57", tcp4(func(p *FakePacket) { p.TTL = 57 }), nil, true},
	{"dont fragment", "ip[6] & 0x40 != 0", tcp4(), nil, true},
	{"ip total length", "ip[2:2] = 56", tcp4(), nil, true},
	{"ip checksum read", "ip[10:2] = 0x2f87", tcp4(), nil, false},
	{"tcp checksum read", "tcp[16:2] != 0", tcp4(), nil, true},
	{"seq", "tcp[4:4] = 1000", tcp4(func(p *FakePacket) { p.Seq = 1000 }), nil, true},
	{"window", "tcp[14:2] = 65535", tcp4(), nil, true},
	{"ether src", "ether src 02:00:00:00:00:01", tcp4(), nil, true},
	{"ether dst", "ether dst 02:00:00:00:00:01", tcp4(), nil, false},
	{"ether host", "ether host aa:bb:cc:dd:ee:ff", tcp4(func(p *FakePacket) {
		p.DstMAC = net.HardwareAddr{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	}), nil, true},
	{"ether broadcast", "ether broadcast", tcp4(func(p *FakePacket) {
		p.DstMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	}), nil, true},
	{"ip multicast", "ip multicast", udp4(nil), nil, false},
	{"ip multicast to 224.0.0.251", "ip multicast", func() FakePacket {
		p := udp4(nil)
		p.Dst = netip.MustParseAddrPort("224.0.0.251:5353")
		return p
	}(), nil, true},
	{"not", "not tcp", tcp4(), nil, false},
	{"or", "tcp or udp", udp4(nil), nil, true},
	{"proto", "ip proto 17", udp4(nil), nil, true},
	{"icmp", "icmp", tcp4(), nil, false},
	{"arp", "arp", tcp4(), nil, false},
	{"raw ip", "ip and tcp dst port 21", tcp4(), []Option{WithLinkType(LinkRaw)}, true},
	{"raw ip6", "ip6 and tcp", tcp6(), []Option{WithLinkType(LinkRaw)}, true},
	{"raw len", "len = 56", tcp4(), []Option{WithLinkType(LinkRaw)}, true},
	{"raw GET", getFilter, tcp4(), []Option{WithLinkType(LinkRaw)}, true},
	{"raw empty payload", "len = 40 and tcp dst port 21", tcp4(withPayload("")), []Option{WithLinkType(LinkRaw)}, true},
	{"raw udp ip6 empty payload", "ip6 and udp and len = 48", func() FakePacket {
		p := udp4(nil)
		p.Src, p.Dst = client6, server6
		return p
	}(), []Option{WithLinkType(LinkRaw)}, true},
	{"snap keeps headers", "tcp dst port 21", tcp4(), []Option{WithSnapLen(54)}, true},
	{"snap cuts payload", getFilter, tcp4(), []Option{WithSnapLen(54)}, false},
	{"snap keeps wire length", "len = 70", tcp4(), []Option{WithSnapLen(54)}, true},
	{"snap cuts headers", "tcp dst port 21", tcp4(), []Option{WithSnapLen(30)}, false},
	{"empty expression", "", tcp4(), nil, true},
	{"broadcast, netmask 0", "ip broadcast", toDst("255.255.255.255:67"), nil, true},
	{"subnet broadcast, netmask 0", "ip broadcast", toDst("192.0.2.255:67"), nil, false},
	{"subnet broadcast, netmask /24", "ip broadcast", toDst("192.0.2.255:67"),
		[]Option{WithNetmask(netip.MustParseAddr("255.255.255.0"))}, true},
	{"unicast, netmask /24", "ip broadcast", toDst("192.0.2.254:67"),
		[]Option{WithNetmask(netip.MustParseAddr("255.255.255.0"))}, false},
}

func TestMatch(t *testing.T) {
	for _, tc := range matchTests {
		m := compileOrSkip(t, tc.expr, tc.opts...)
		got, err := m.Match(tc.p)
		if err != nil {
			t.Errorf("%s: %q on %v: %v", tc.name, tc.expr, tc.p, err)
			continue
		}
		frame, err := tc.p.AppendFrame(nil, m.LinkType())
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("%s: %q on %v = %v, want %v\nframe %x", tc.name, tc.expr, tc.p, got, tc.want, frame)
		}
		if oracle != nil {
			if lp, either := oracle(m, frame, len(frame)); lp != got && !either {
				t.Errorf("%s: %q on %v = %v, libpcap says %v\nframe %x", tc.name, tc.expr, tc.p, got, lp, frame)
			}
		}
		if byFrame, err := m.MatchFrame(frame, len(frame)); err != nil || byFrame != got {
			t.Errorf("%s: %q: MatchFrame on the serialised packet = %v, %v; Match = %v", tc.name, tc.expr, byFrame, err, got)
		}
	}
	t.Logf("%d cases", len(matchTests))
}

func TestCompileErrors(t *testing.T) {
	type compiler struct {
		name    string
		opts    []Option
		libpcap bool
	}
	var compilers []compiler
	if canCompile {
		compilers = append(compilers, compiler{"Compile", nil, !useGoCompiler})
	}
	if HaveLibpcap {
		compilers = append(compilers, compiler{"Compile WithLibpcap", []Option{WithLibpcap()}, true})
	}
	if len(compilers) == 0 {
		t.Skip("built without libpcap, and the Go compiler is not switched on: Compile cannot compile expressions")
	}
	tests := []struct {
		name, expr string
		opts       []Option
		msg        string // in the error of either compiler
		libpcapMsg string // in libpcap's
		goMayPass  bool   // the Go compiler may give a program instead
	}{
		{"syntax", "tcp dst port 21 and", nil, "", "syntax error", false},
		{"unbalanced", "(tcp", nil, "", "syntax error", false},
		{"bad port", "port 70000", nil, "", "port", false},
		{"bad net", "net 10.0.0.0/33", nil, "", "mask", false},
		{"NUL byte", "tcp\x00 or udp", nil, "NUL", "", false},
		{"deep nesting", strings.Repeat("(", 20000) + "tcp" + strings.Repeat(")", 20000), nil, `(((..." for ethernet:`, "", true},
		{"raw has no ether", "ether host 1:2:3:4:5:6", []Option{WithLinkType(LinkRaw)}, "", "supported only on ethernet", false},
		{"zero snap", "tcp", []Option{WithSnapLen(0)}, "snap length 0", "", false},
		{"negative snap", "tcp", []Option{WithSnapLen(-1)}, "snap length -1", "", false},
		{"IPv6 netmask", "ip broadcast", []Option{WithNetmask(netip.MustParseAddr("ffff::"))}, "not an IPv4 address", "", false},
		{"zero netmask", "ip broadcast", []Option{WithNetmask(netip.Addr{})}, "not an IPv4 address", "", false},
	}
	for _, c := range compilers {
		for _, tc := range tests {
			m, err := Compile(tc.expr, append(tc.opts, c.opts...)...)
			if err == nil && !c.libpcap && tc.goMayPass {
				continue
			}
			want := tc.msg
			if c.libpcap && tc.libpcapMsg != "" {
				want = tc.libpcapMsg
			}
			if err == nil || m != nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %s(%q) = %v, %v; want an error mentioning %q", tc.name, c.name, tc.expr, m, err, want)
				continue
			}
			if strings.Contains(tc.name, "snap") || strings.Contains(tc.name, "netmask") {
				continue // an option's error, before any compiler
			}
			var ce *CompileError
			if !errors.As(err, &ce) || ce.Expr != tc.expr {
				t.Errorf("%s: %s(%q) error %v is not a *CompileError for the expression", tc.name, c.name, tc.expr, err)
				continue
			}
			checkCompileError(t, ce)
			if c.libpcap && tc.libpcapMsg != "" && ce.Offset != -1 {
				t.Errorf("%s: %s(%q): libpcap's error has offset %d, want -1 (unknown)", tc.name, c.name, tc.expr, ce.Offset)
			}
		}
	}
	func() {
		defer func() {
			if r := recover(); r == nil {
				t.Error("MustCompile of a bad expression did not panic")
			}
		}()
		MustCompile("tcp port")
	}()
}

func TestMatcherAccessors(t *testing.T) {
	m := compileOrSkip(t, "tcp dst port 21", WithLinkType(LinkRaw), WithSnapLen(100))
	if m.LinkType() != LinkRaw || m.SnapLen() != 100 {
		t.Errorf("accessors: %v %d", m.LinkType(), m.SnapLen())
	}
	prog := m.Program()
	if canCompile && m.String() != "tcp dst port 21" {
		t.Errorf("String() = %q, want the expression", m.String())
	}
	if !canCompile {
		// A loaded Matcher's String is its program.
		if back, err := ParseProgram(m.String()); err != nil || !slices.Equal(back, prog) {
			t.Errorf("String() = %q does not parse back to the program: %v", m.String(), err)
		}
	}
	if len(prog) == 0 || prog[len(prog)-1].Op != 0x06 {
		t.Fatalf("Program() = %v", prog)
	}
	prog[0].K = 12345 // a copy: changing it changes nothing
	if ok, _ := m.Match(tcp4()); !ok {
		t.Error("the matcher changed with its program's copy")
	}
}

func TestMatchErrors(t *testing.T) {
	m := compileOrSkip(t, "tcp or udp")
	if _, err := m.Match(FakePacket{Src: client4, Dst: client6, Protocol: TCP}); !errors.Is(err, ErrAddressFamily) {
		t.Errorf("Match(mixed families) error = %v", err)
	}
	if _, err := m.MatchFrom(&net.UDPAddr{IP: net.IPv4(1, 2, 3, 4), Port: 1}, &net.IPAddr{}, nil); !errors.Is(err, ErrAddress) {
		t.Errorf("MatchFrom(IPAddr) error = %v", err)
	}
	if _, err := m.MatchConn(nil, nil); !errors.Is(err, ErrAddress) {
		t.Errorf("MatchConn(nil) error = %v", err)
	}
	if _, err := m.MatchFrame(make([]byte, 60), -1); err == nil {
		t.Error("MatchFrame with a negative wire length gave no error")
	}
	// A record may claim fewer bytes on the wire than it holds; libpcap
	// then reads the bytes and gives the claimed length to len.
	short := MustCompile("len = 59 and ether[59] = 0")
	if ok, err := short.MatchFrame(make([]byte, 60), 59); !ok || err != nil {
		t.Errorf("%q: MatchFrame of 60 bytes, wire length 59 = %v, %v; want a match", short, ok, err)
	}
	if strconv.IntSize == 64 {
		// Only a 64-bit int holds such a length.
		tooLong := uint64(math.MaxUint32) + 1
		if _, err := m.MatchFrame(nil, int(tooLong)); err == nil {
			t.Error("MatchFrame with a wire length above 2^32-1 gave no error")
		}
	}
	if ok, err := m.MatchFrame(nil, 0); ok || err != nil {
		t.Errorf("MatchFrame(empty) = %v, %v; want no match, no error", ok, err)
	}
	other := compileOrSkip(t, "tcp", WithLinkType(113))
	if _, err := other.Match(tcp4()); !errors.Is(err, ErrLinkType) {
		t.Errorf("Match for Linux cooked captures error = %v, want ErrLinkType", err)
	}
}

func TestMatchFromAndConn(t *testing.T) {
	m := compileOrSkip(t, "udp dst port 53 and src host 10.0.0.1 and udp[8] = 0x42")
	src := &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 5000}
	dst := &net.UDPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 53}
	for _, tc := range []struct {
		src, dst net.Addr
		payload  string
		want     bool
	}{
		{src, dst, "B", true},
		{src, dst, "C", false},
		{dst, src, "B", false},
	} {
		got, err := m.MatchFrom(tc.src, tc.dst, []byte(tc.payload))
		if err != nil || got != tc.want {
			t.Errorf("MatchFrom(%v, %v, %q) = %v, %v; want %v", tc.src, tc.dst, tc.payload, got, err, tc.want)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no loopback TCP: %v", err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		expr string
		conn net.Conn
		want bool
	}{
		{fmt.Sprintf("tcp dst port %d and src host 127.0.0.1", port), s, true},
		{fmt.Sprintf("tcp src port %d", port), s, false},
		{fmt.Sprintf("tcp src port %d", port), c, true},
	} {
		got, err := compileOrSkip(t, tc.expr).MatchConn(tc.conn, []byte("hi"))
		if err != nil || got != tc.want {
			t.Errorf("MatchConn(%q, %v->%v) = %v, %v; want %v", tc.expr, tc.conn.RemoteAddr(), tc.conn.LocalAddr(), got, err, tc.want)
		}
	}
}

// TestConcurrentMatch shares one Matcher among goroutines matching packets
// of different lengths; run with -race, it also proves there is no shared
// mutable state.
func TestConcurrentMatch(t *testing.T) {
	m := compileOrSkip(t, "greater 100 and "+getFilter)
	var packets []FakePacket
	var want []bool
	for n := 0; n < 64; n++ {
		payload := []byte(strings.Repeat("GET ", n*5)[:n*5])
		if n%3 == 0 && len(payload) > 0 {
			payload[0] = 'P'
		}
		p := tcp4(withPayload(string(payload)))
		ok, err := m.Match(p)
		if err != nil {
			t.Fatal(err)
		}
		packets, want = append(packets, p), append(want, ok)
	}
	var wrong, total int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			var w, n int64
			for i := 0; i < 2000; i++ {
				k := (i*7 + g) % len(packets)
				ok, err := m.Match(packets[k])
				if err != nil || ok != want[k] {
					w++
				}
				n++
			}
			mu.Lock()
			wrong += w
			total += n
			mu.Unlock()
		}(g)
	}
	wg.Wait()
	if wrong != 0 {
		t.Errorf("%d wrong verdicts in %d concurrent matches", wrong, total)
	}
	t.Logf("%d concurrent matches, %d wrong", total, wrong)
}

func FuzzCompile(f *testing.F) {
	if !canCompile {
		f.Skip("built without libpcap, and the Go compiler is not switched on: Compile cannot compile expressions")
	}
	for _, s := range []string{"tcp", "tcp dst port 21", "(", "ip[", "ether[0:4] = 0", getFilter, "vlan and vlan and vlan",
		"ip6 protochain 6", "tcp[tcpflags] & tcp-syn != 0", "not not not ip", "len > 0x7fffffff", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		m, err := Compile(expr)
		if err != nil {
			if m != nil || err.Error() == "" {
				t.Fatalf("Compile(%q) = %v, %v", expr, m, err)
			}
			return
		}
		for _, p := range []FakePacket{tcp4(), tcp6(withVLAN(3)), udp4(nil)} {
			got, err := m.Match(p)
			if err != nil {
				t.Fatalf("Match: %v", err)
			}
			if oracle != nil {
				frame, _ := p.AppendFrame(nil, LinkEthernet)
				if want, either := oracle(m, frame, len(frame)); got != want && !either {
					t.Fatalf("%q on %v = %v, libpcap says %v", expr, p, got, want)
				}
			}
		}
	})
}

func FuzzFakePacket(f *testing.F) {
	f.Add([]byte{10, 0, 0, 1}, []byte{10, 0, 0, 2}, uint16(1), uint16(2), uint8(6), uint16(0x18), uint16(0), []byte("x"), 1, uint8(0))
	f.Add(make([]byte, 16), make([]byte, 16), uint16(0), uint16(0), uint8(17), uint16(0), uint16(4095), []byte{}, 12, uint8(64))
	f.Fuzz(func(t *testing.T, src, dst []byte, sport, dport uint16, proto uint8, flags, vlan uint16, payload []byte, link int, ttl uint8) {
		s, _ := netip.AddrFromSlice(src)
		d, _ := netip.AddrFromSlice(dst)
		p := FakePacket{Src: netip.AddrPortFrom(s, sport), Dst: netip.AddrPortFrom(d, dport), Protocol: Protocol(proto),
			Flags: TCPFlags(flags), Payload: payload, TTL: ttl}
		if vlan&0x8000 != 0 {
			p.VLAN = &VLAN{ID: vlan & 0x1fff, Priority: uint8(flags >> 13)}
		}
		frame, err := p.AppendFrame(nil, LinkType(link))
		if err != nil {
			return
		}
		if p.TTL == 0 {
			p.TTL = DefaultTTL
		}
		checkDecoded(t, p.String(), p, LinkType(link), frame)
		if canCompile {
			m, err := Compile("tcp or udp or ip6", WithLinkType(LinkType(link)))
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := m.Match(p); err != nil || !ok {
				t.Fatalf("%v: Match = %v, %v", p, ok, err)
			}
		}
	})
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		prog []bpf.RawInstruction
		opts []Option
		msg  string
	}{
		{"empty", nil, nil, "empty program"},
		{"no return", []bpf.RawInstruction{{Op: 0x28, K: 12}}, nil, "not a return"},
		{"jump out", []bpf.RawInstruction{{Op: 0x05, K: 5}, {Op: 0x06}}, nil, "jump"},
		{"bad snap", []bpf.RawInstruction{{Op: 0x06, K: 1}}, []Option{WithSnapLen(0)}, "snap length 0"},
	}
	if !HaveLibpcap {
		tests = append(tests, struct {
			name string
			prog []bpf.RawInstruction
			opts []Option
			msg  string
		}{"libpcap without the tag", []bpf.RawInstruction{{Op: 0x06, K: 1}}, []Option{WithLibpcap()}, "-tags libpcap"})
	}
	for _, tc := range tests {
		m, err := Load(tc.prog, tc.opts...)
		if err == nil || m != nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: Load(%v) = %v, %v; want an error mentioning %q", tc.name, tc.prog, m, err, tc.msg)
		}
	}
	if !canCompile {
		if _, err := Compile("tcp"); err == nil || !strings.Contains(err.Error(), "-tags libpcap") {
			t.Errorf("Compile without libpcap: error %v does not say how to build with it", err)
		}
	}
	if !HaveLibpcap {
		if _, err := Compile("tcp", WithLibpcap()); err == nil || !strings.Contains(err.Error(), "-tags libpcap") {
			t.Errorf("Compile WithLibpcap without libpcap: error %v does not say how to build with it", err)
		}
	}
}

// checkCompileError checks that e's offset and token point into its
// expression.
func checkCompileError(t *testing.T, e *CompileError) {
	t.Helper()
	switch {
	case e.Offset < -1 || e.Offset > len(e.Expr):
		t.Errorf("%q: error %v has offset %d, outside the expression", e.Expr, e, e.Offset)
	case e.Offset == -1 && e.Token != "":
		t.Errorf("%q: error %v has token %q but no offset", e.Expr, e, e.Token)
	case e.Offset >= 0 && !strings.HasPrefix(e.Expr[e.Offset:], e.Token):
		t.Errorf("%q: error %v: token %q is not at offset %d", e.Expr, e, e.Token, e.Offset)
	case e.Msg == "":
		t.Errorf("%q: error %v has no message", e.Expr, e)
	}
}

// TestCompileGo checks what compileGo adds to the Go compiler, whatever
// the switch: the link types it refuses and its errors' form.
func TestCompileGo(t *testing.T) {
	for _, link := range []LinkType{0, 9, 105, 127, 228 + 1000} {
		_, err := compileGo("tcp", link, DefaultSnapLen, 0)
		var ce *CompileError
		if !errors.As(err, &ce) || ce.LinkType != link || ce.Offset != -1 ||
			!strings.Contains(err.Error(), link.String()) || !strings.Contains(err.Error(), "WithLibpcap()") {
			t.Errorf("compileGo for %v: error %v; want a *CompileError naming the link type and WithLibpcap()", link, err)
		}
		if !HaveLibpcap && (err == nil || !strings.Contains(err.Error(), "-tags libpcap")) {
			t.Errorf("compileGo for %v: error %v does not say how to build with libpcap", link, err)
		}
	}
	for _, expr := range []string{"tcp dst port 21 and", "(tcp", "port 70000", "tcp and )", ""} {
		for _, link := range goLinkTypes {
			raw, err := compileGo(expr, link, 100, 0)
			if err == nil {
				if expr != "" {
					t.Errorf("compileGo(%q, %v) = %v, want an error", expr, link, raw)
				}
				continue
			}
			var ce *CompileError
			if !errors.As(err, &ce) || ce.Expr != expr || ce.LinkType != link {
				t.Errorf("compileGo(%q, %v): error %v is not a *CompileError for the expression and link type", expr, link, err)
				continue
			}
			checkCompileError(t, ce)
		}
	}
}

func TestCompileErrorString(t *testing.T) {
	long := strings.Repeat("tcp or ", 100) + "tcp or"
	tests := []struct {
		name string
		e    CompileError
		want string
	}{
		{"libpcap", CompileError{Expr: "tcp and", LinkType: LinkEthernet, Offset: -1, Msg: "syntax error"},
			`bpfmatch: compiling "tcp and" for ethernet: syntax error`},
		{"token", CompileError{Expr: "port 70000", LinkType: LinkRaw, Offset: 5, Token: "70000", Msg: "port out of range"},
			`bpfmatch: compiling "port 70000" for raw: at offset 5 ("70000"): port out of range`},
		{"end", CompileError{Expr: "tcp and", LinkType: 113, Offset: 7, Msg: "an expression must follow"},
			`bpfmatch: compiling "tcp and" for LINUX_SLL: at offset 7 (end of expression): an expression must follow`},
		{"long", CompileError{Expr: long, LinkType: LinkEthernet, Offset: len(long), Msg: "m"},
			fmt.Sprintf("bpfmatch: compiling %q for ethernet: at offset %d (end of expression): m", long[:200]+"...", len(long))},
		{"long token", CompileError{Expr: "x" + strings.Repeat("y", 50), Offset: 0, Token: "x" + strings.Repeat("y", 50), Msg: "m"},
			fmt.Sprintf("bpfmatch: compiling %q for NULL: at offset 0 (%q): m", "x"+strings.Repeat("y", 50), "x"+strings.Repeat("y", 39)+"...")},
	}
	for _, tc := range tests {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%s: Error() = %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

// TestLinkTypeHint checks that a LINKTYPE number given where a DLT number
// is taken gets the advice to convert it.
func TestLinkTypeHint(t *testing.T) {
	_, err := Compile("ip", WithLinkType(LinkType(101))) // layers.LinkTypeRaw
	if err == nil || !strings.Contains(err.Error(), "use LinkTypeFromPcap(101), which is 12 (raw)") {
		t.Errorf("Compile for link type 101: %v, want the advice to use LinkTypeFromPcap", err)
	}
	if _, err := Compile("ip", WithLinkType(LinkTypeFromPcap(101))); err != nil {
		t.Errorf("Compile for LinkTypeFromPcap(101): %v", err)
	}
	if h := linkTypeHint(LinkEthernet); h != "" {
		t.Errorf("hint for Ethernet: %q, want none", h)
	}
}
