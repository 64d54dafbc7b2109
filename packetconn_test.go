package bpfmatch

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// listenUDP listens on addr, skipping the test if it is IPv6 and cannot.
func listenUDP(t testing.TB, network, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenPacket(network, addr)
	if err != nil {
		if strings.Contains(addr, ":") && strings.Count(addr, ":") > 1 {
			t.Skipf("cannot listen on %s: %v", addr, err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.UDPConn)
}

// dialUDP returns a socket sending from the address from ("" for the
// kernel's choice) to the address to.
func dialUDP(t testing.TB, from string, to netip.AddrPort) *net.UDPConn {
	t.Helper()
	var laddr *net.UDPAddr
	if from != "" {
		laddr = &net.UDPAddr{IP: net.ParseIP(from)}
	}
	c, err := net.DialUDP("udp", laddr, net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatalf("dial %v from %q: %v", to, from, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func localAddrPort(c net.PacketConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// readWait is how long to wait for a datagram already sent on loopback:
// long if it should come, short if it should be dropped.
func readWait(want bool) time.Duration {
	if want {
		return 10 * time.Second
	}
	return 150 * time.Millisecond
}

// TestPacketConnFilter checks which datagrams ReadFrom returns and which it
// drops, by address, port and payload, on IPv4 and IPv6.
func TestPacketConnFilter(t *testing.T) {
	tests := []struct {
		name    string
		family  string
		expr    string
		from    string
		payload string
		want    bool
	}{
		{"src host", "IPv4", "src host 127.0.0.1", "127.0.0.1", "hello", true},
		{"src host other", "IPv4", "src host 127.0.0.1", "127.0.0.2", "hello", false},
		{"dst port range", "IPv4", "udp dst portrange 1024-65535", "", "hello", true},
		{"dst port privileged", "IPv4", "udp dst portrange 1-1023", "", "hello", false},
		{"src net", "IPv4", "src net 127.0.0.0/8", "127.0.0.2", "hello", true},
		{"not src net", "IPv4", "not src net 127.0.0.0/8", "", "hello", false},
		{"payload", "IPv4", "udp[8:4] = 0x50494e47", "", "PING 1", true},
		{"payload other", "IPv4", "udp[8:4] = 0x50494e47", "", "PONG 1", false},
		{"payload short", "IPv4", "udp[8:4] = 0x50494e47", "", "PI", false},
		{"empty datagram", "IPv4", "udp[4:2] = 8", "", "", true},
		{"udp length", "IPv4", "udp[4:2] = 13", "", "hello", true},
		{"tcp", "IPv4", "tcp", "", "hello", false},
		{"src host v6", "IPv6", "src host ::1", "", "hello", true},
		{"src host v6 other", "IPv6", "src host 2001:db8::1", "", "hello", false},
		{"dst port range v6", "IPv6", "ip6 and udp dst portrange 1024-65535", "", "hello", true},
		{"payload v6", "IPv6", "ip6 and udp and ip6[48:4] = 0x50494e47", "", "PING 1", true},
		{"payload other v6", "IPv6", "ip6 and udp and ip6[48:4] = 0x50494e47", "", "PONG 1", false},
		{"ip on IPv6", "IPv6", "ip", "", "hello", false},
	}
	for _, tt := range tests {
		for _, method := range []string{"ReadFrom", "ReadFromUDPAddrPort"} {
			t.Run(tt.name+"/"+method, func(t *testing.T) {
				m := compileOrSkip(t, tt.expr)
				addr := "127.0.0.1:0"
				if tt.family == "IPv6" {
					addr = "[::1]:0"
				}
				pc, err := NewPacketConn(listenUDP(t, "udp", addr), m)
				if err != nil {
					t.Fatal(err)
				}
				client := dialUDP(t, tt.from, localAddrPort(pc))
				if _, err := client.Write([]byte(tt.payload)); err != nil {
					t.Fatal(err)
				}
				// Loopback delivers before Write returns: a dropped
				// datagram is dropped before the deadline.
				pc.SetReadDeadline(time.Now().Add(readWait(tt.want)))
				buf := make([]byte, 1500)
				var n int
				var from string
				if method == "ReadFrom" {
					var a net.Addr
					n, a, err = pc.ReadFrom(buf)
					if a != nil {
						from = a.String()
					}
				} else {
					var ap netip.AddrPort
					n, ap, err = pc.ReadFromUDPAddrPort(buf)
					from = ap.String()
				}
				st := pc.Stats()
				if !tt.want {
					if !errors.Is(err, os.ErrDeadlineExceeded) {
						t.Errorf("%s = %q from %s, %v; want a timeout", method, buf[:n], from, err)
					}
					if st != (PacketStats{Received: 1, Dropped: 1}) {
						t.Errorf("stats %+v, want 1 received and dropped", st)
					}
					return
				}
				if err != nil || string(buf[:n]) != tt.payload || from != client.LocalAddr().String() {
					t.Errorf("%s = %q from %s, %v; want %q from %v", method, buf[:n], from, err, tt.payload, client.LocalAddr())
				}
				if st != (PacketStats{Received: 1, Matched: 1}) {
					t.Errorf("stats %+v, want 1 received and matched", st)
				}
			})
		}
	}
}

// trueDestination tells whether a PacketConn over a wildcard-bound
// socket matches datagrams with their true destination (IP_PKTINFO).
const trueDestination = runtime.GOOS == "linux"

// TestPacketConnLocalAddr checks the destination datagrams are matched
// with on a socket bound to the unspecified address, and WithLocalAddr:
// on Linux the destination the kernel reports, elsewhere the unspecified
// address or WithLocalAddr's.
func TestPacketConnLocalAddr(t *testing.T) {
	tests := []struct {
		name      string
		network   string
		laddr     string
		local     []string // WithLocalAddr
		sendTo    string
		expr      string
		want      bool // without IP_PKTINFO
		wantLinux bool
	}{
		{"IPv4 unspecified", "udp4", "0.0.0.0:0", nil, "127.0.0.1", "dst host 0.0.0.0", true, false},
		{"IPv4 unspecified, true destination", "udp4", "0.0.0.0:0", nil, "127.0.0.1", "dst host 127.0.0.1", false, true},
		{"IPv4 WithLocalAddr", "udp4", "0.0.0.0:0", []string{"127.0.0.1"}, "127.0.0.1", "dst host 127.0.0.1", true, true},
		{"IPv4 WithLocalAddr, other destination", "udp4", "0.0.0.0:0", []string{"127.0.0.1"}, "127.0.0.2", "dst host 127.0.0.1", true, false},
		{"IPv4 port", "udp4", "0.0.0.0:0", nil, "127.0.0.1", "udp dst portrange 1024-65535", true, true},
		{"dual stack, IPv4 sender", "udp", "[::]:0", nil, "127.0.0.1", "ip and dst host 0.0.0.0", true, false},
		{"dual stack, IPv4 sender, true destination", "udp", "[::]:0", nil, "127.0.0.2", "ip and dst host 127.0.0.2", false, true},
		{"dual stack, IPv6 sender", "udp", "[::]:0", nil, "::1", "ip6 and dst host ::", true, false},
		{"dual stack, IPv6 sender, true destination", "udp", "[::]:0", nil, "::1", "ip6 and dst host ::1", false, true},
		{"dual stack WithLocalAddr, IPv4", "udp", "[::]:0", []string{"::1", "::ffff:127.0.0.1"}, "127.0.0.1", "dst host 127.0.0.1", true, true},
		{"dual stack WithLocalAddr, IPv6", "udp", "[::]:0", []string{"::1", "127.0.0.1"}, "::1", "dst host ::1", true, true},
		{"IPv6 only", "udp6", "[::1]:0", nil, "::1", "dst host ::1", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if trueDestination {
				want = tt.wantLinux
			}
			m := compileOrSkip(t, tt.expr)
			var opts []PacketConnOption
			for _, a := range tt.local {
				opts = append(opts, WithLocalAddr(netip.MustParseAddr(a)))
			}
			inner := listenUDP(t, tt.network, tt.laddr)
			pc, err := NewPacketConn(inner, m, opts...)
			if err != nil {
				t.Fatal(err)
			}
			c, err := net.Dial("udp", net.JoinHostPort(tt.sendTo, strconv.Itoa(int(localAddrPort(pc).Port()))))
			if err != nil {
				t.Skipf("cannot send to %s: %v", tt.sendTo, err)
			}
			defer c.Close()
			c.Write([]byte("hello"))
			pc.SetReadDeadline(time.Now().Add(readWait(want)))
			n, _, err := pc.ReadFrom(make([]byte, 100))
			if got := err == nil && n == 5; got != want {
				t.Errorf("%q on %s %s, sent to %s: ReadFrom = %d, %v; want a match: %v (stats %+v)",
					tt.expr, tt.network, tt.laddr, tt.sendTo, n, err, want, pc.Stats())
			}
		})
	}
}

// TestPacketConnDropFunc checks what the drop function is told.
func TestPacketConnDropFunc(t *testing.T) {
	m := compileOrSkip(t, "udp[8:4] = 0x50494e47")
	var got []string
	pc, err := NewPacketConn(listenUDP(t, "udp", "127.0.0.1:0"), m, WithDropFunc(func(r Report) {
		got = append(got, fmt.Sprintf("%v %q %v", r.Remote.Addr(), r.Packet.Payload, errors.Is(r.Reason, ErrRejected) && r.Tested))
	}))
	if err != nil {
		t.Fatal(err)
	}
	client := dialUDP(t, "127.0.0.1", localAddrPort(pc))
	for _, s := range []string{"PONG", "", "PING"} {
		client.Write([]byte(s))
	}
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	n, _, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "PING" {
		t.Fatalf("ReadFrom = %q, %v", buf[:n], err)
	}
	if want := []string{`127.0.0.1 "PONG" true`, `127.0.0.1 "" true`}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("dropped %q, want %q", got, want)
	}
}

// TestPacketConnDeadline checks that a read deadline holds while datagrams
// keep being dropped, and that Close unblocks ReadFrom.
func TestPacketConnDeadline(t *testing.T) {
	m := compileOrSkip(t, "udp[8:4] = 0x50494e47")
	pc, err := NewPacketConn(listenUDP(t, "udp", "127.0.0.1:0"), m)
	if err != nil {
		t.Fatal(err)
	}
	client := dialUDP(t, "", localAddrPort(pc))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				client.Write([]byte("junk"))
			}
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
	}()
	const deadline = 300 * time.Millisecond
	start := time.Now()
	pc.SetReadDeadline(start.Add(deadline))
	_, _, err = pc.ReadFrom(make([]byte, 100))
	el := time.Since(start)
	if !errors.Is(err, os.ErrDeadlineExceeded) || el > deadline+2*time.Second {
		t.Errorf("ReadFrom = %v after %v, want a timeout after %v", err, el, deadline)
	}
	if st := pc.Stats(); st.Dropped == 0 || st.Matched != 0 {
		t.Errorf("stats %+v, want datagrams dropped", st)
	}
	t.Logf("timed out after %v, %d datagrams dropped", el, pc.Stats().Dropped)

	pc.SetReadDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() {
		_, _, err := pc.ReadFrom(make([]byte, 100))
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := pc.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("ReadFrom after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("ReadFrom still blocked 2 s after Close")
	}
}

// TestPacketConnPassThrough checks the methods that go to the inner
// connection.
func TestPacketConnPassThrough(t *testing.T) {
	m := compileOrSkip(t, "udp")
	inner := listenUDP(t, "udp", "127.0.0.1:0")
	pc, err := NewPacketConn(inner, m)
	if err != nil {
		t.Fatal(err)
	}
	if pc.LocalAddr() != inner.LocalAddr() {
		t.Errorf("LocalAddr %v, want %v", pc.LocalAddr(), inner.LocalAddr())
	}
	client := dialUDP(t, "", localAddrPort(pc))
	if err := pc.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Error(err)
	}
	if err := pc.SetWriteDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Error(err)
	}
	if _, err := pc.WriteTo([]byte("reply"), client.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 10)
	if n, err := client.Read(buf); err != nil || string(buf[:n]) != "reply" {
		t.Errorf("client read %q, %v", buf[:n], err)
	}
}

// otherPacketConn is a PacketConn whose addresses are not UDP addresses.
type otherPacketConn struct{ net.PacketConn }

func (otherPacketConn) LocalAddr() net.Addr { return &net.IPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// TestPacketConnArgs checks the errors of NewPacketConn.
func TestPacketConnArgs(t *testing.T) {
	m := compileOrSkip(t, "udp")
	inner := listenUDP(t, "udp", "127.0.0.1:0")
	tests := []struct {
		name  string
		inner net.PacketConn
		m     *Matcher
		opts  []PacketConnOption
		want  string
	}{
		{"nil conn", nil, m, nil, "inner connection is nil"},
		{"nil matcher", inner, nil, nil, "matcher is nil"},
		{"not UDP", otherPacketConn{inner}, m, nil, "not a *net.TCPAddr or *net.UDPAddr"},
		{"zero local address", inner, m, []PacketConnOption{WithLocalAddr(netip.Addr{})}, "WithLocalAddr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewPacketConn(tt.inner, tt.m, tt.opts...); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewPacketConn: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// TestPacketConnAllocs checks that ReadFrom allocates no more than the
// inner ReadFrom, whether it drops datagrams or not, and that
// ReadFromUDPAddrPort allocates no more than the UDPConn's.
func TestPacketConnAllocs(t *testing.T) {
	m := compileOrSkip(t, "udp[8:4] = 0x50494e47 and src net 127.0.0.0/8")
	inner := listenUDP(t, "udp", "127.0.0.1:0")
	pc, err := NewPacketConn(inner, m)
	if err != nil {
		t.Fatal(err)
	}
	client := dialUDP(t, "", localAddrPort(pc))
	ping, junk := []byte("PING 12345"), []byte("JUNK 12345")
	buf := make([]byte, 1500)
	allocs := func(send [][]byte, read func() (int, error)) float64 {
		return testing.AllocsPerRun(500, func() {
			for _, b := range send {
				client.Write(b)
			}
			if n, err := read(); err != nil || n != len(ping) {
				t.Fatalf("read %d, %v", n, err)
			}
		})
	}
	rawReadFrom := func() (int, error) { n, _, err := inner.ReadFrom(buf); return n, err }
	rawAddrPort := func() (int, error) { n, _, err := inner.ReadFromUDPAddrPort(buf); return n, err }
	baseFrom := allocs([][]byte{ping}, rawReadFrom)
	baseAddrPort := allocs([][]byte{ping}, rawAddrPort)
	twoRawReads := allocs([][]byte{junk, ping}, func() (int, error) {
		rawReadFrom()
		return rawReadFrom()
	})
	tests := []struct {
		name string
		send [][]byte
		read func() (int, error)
		max  float64
	}{
		{"ReadFrom", [][]byte{ping}, func() (int, error) { n, _, err := pc.ReadFrom(buf); return n, err }, baseFrom},
		{"ReadFrom dropping one", [][]byte{junk, ping}, func() (int, error) { n, _, err := pc.ReadFrom(buf); return n, err }, twoRawReads},
		{"ReadFromUDPAddrPort", [][]byte{ping}, func() (int, error) { n, _, err := pc.ReadFromUDPAddrPort(buf); return n, err }, baseAddrPort},
		{"ReadFromUDPAddrPort dropping one", [][]byte{junk, ping}, func() (int, error) { n, _, err := pc.ReadFromUDPAddrPort(buf); return n, err }, baseAddrPort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := allocs(tt.send, tt.read)
			if got > tt.max {
				t.Errorf("%v allocations per read, the inner connection's reads make %v", got, tt.max)
			}
			t.Logf("%v allocations per read (inner connection: %v)", got, tt.max)
		})
	}
}

// TestPacketConnNoLeaks checks that closing a PacketConn with a reader
// blocked leaves nothing behind.
func TestPacketConnNoLeaks(t *testing.T) {
	m := compileOrSkip(t, "udp")
	checkNoLeaks(t, func() {
		inner, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		pc, err := NewPacketConn(inner, m)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			pc.ReadFrom(make([]byte, 10))
			close(done)
		}()
		time.Sleep(20 * time.Millisecond)
		pc.Close()
		<-done
	})
}

// TestPacketConnStress sends 100,000 datagrams from two source addresses,
// some matching, and checks that each matching one is returned exactly
// once and every other one dropped exactly once. The sender waits for the
// reader every few hundred datagrams, so that the kernel drops none.
func TestPacketConnStress(t *testing.T) {
	const total, batch = 100000, 256
	m := compileOrSkip(t, "udp[8:4] = 0x41434345 and src host 127.0.0.1") // "ACCE"
	inner := listenUDP(t, "udp", "127.0.0.1:0")
	inner.SetReadBuffer(4 << 20)
	idOf := func(b []byte) int {
		if len(b) != 12 {
			return -1
		}
		n, err := strconv.Atoi(string(b[4:]))
		if err != nil {
			return -1
		}
		return n
	}
	var dropped []int // written by the reader only
	pc, err := NewPacketConn(inner, m, WithDropFunc(func(r Report) {
		dropped = append(dropped, idOf(r.Packet.Payload))
	}))
	if err != nil {
		t.Fatal(err)
	}
	clients := []*net.UDPConn{dialUDP(t, "127.0.0.1", localAddrPort(pc)), dialUDP(t, "127.0.0.2", localAddrPort(pc))}
	want := func(i int) (match bool, msg []byte, client int) {
		prefix := "ACCE"
		if i%3 == 0 {
			prefix = "REJE"
		}
		if i%7 == 0 {
			client = 1
		}
		return prefix == "ACCE" && client == 0, fmt.Appendf(nil, "%s%08d", prefix, i), client
	}

	var matched []int
	readerDone := make(chan error, 1)
	go func() {
		buf := make([]byte, 100)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				readerDone <- err
				return
			}
			matched = append(matched, idOf(buf[:n]))
		}
	}()
	// caughtUp waits until the reader has taken every datagram sent.
	caughtUp := func(sent int) bool {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Microsecond) {
			if pc.Stats().Received >= uint64(sent) {
				return true
			}
		}
		return false
	}
	start := time.Now()
	for i := 0; i < total; i++ {
		_, msg, client := want(i)
		if _, err := clients[client].Write(msg); err != nil {
			t.Fatal(err)
		}
		if (i+1)%batch == 0 && !caughtUp(i+1) {
			t.Fatalf("the reader is stuck at %+v after %d datagrams sent", pc.Stats(), i+1)
		}
	}
	if !caughtUp(total) {
		t.Fatalf("the reader is stuck at %+v after %d datagrams sent", pc.Stats(), total)
	}
	elapsed := time.Since(start)
	// The reader records the last datagram before it reads again, and
	// only then sees the Close.
	pc.Close()
	if err := <-readerDone; !errors.Is(err, net.ErrClosed) {
		t.Errorf("reader stopped with %v", err)
	}

	st := pc.Stats()
	seen := make([]int, total)
	for _, id := range matched {
		if id < 0 || id >= total {
			t.Fatalf("matched an unknown datagram %d", id)
		}
		seen[id]++
	}
	for _, id := range dropped {
		if id < 0 || id >= total {
			t.Fatalf("dropped an unknown datagram %d", id)
		}
		seen[id] += 100
	}
	wantMatched, bad := 0, 0
	for i := 0; i < total; i++ {
		match, _, _ := want(i)
		w := 100
		if match {
			w = 1
			wantMatched++
		}
		if seen[i] != w {
			if bad++; bad <= 20 {
				t.Errorf("datagram %d (match %v): returned %d times, dropped %d times", i, match, seen[i]%100, seen[i]/100)
			}
		}
	}
	if st != (PacketStats{Received: total, Matched: uint64(wantMatched), Dropped: uint64(total - wantMatched)}) || len(matched) != wantMatched {
		t.Errorf("stats %+v, %d returned; want %d received, %d matched", st, len(matched), total, wantMatched)
	}
	t.Logf("%d datagrams in %v (race detector %v): %d returned, %d dropped", total, elapsed.Round(time.Millisecond), raceEnabled, st.Matched, st.Dropped)
}
