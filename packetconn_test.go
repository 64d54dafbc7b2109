package bpfmatch

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
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
// ReadFromUDPAddrPort allocates no more than the UDPConn's: on a socket
// bound to an address, on one bound to the unspecified address (which
// reads destinations on Linux), and with datagrams longer than the buffer.
func TestPacketConnAllocs(t *testing.T) {
	tests := []struct {
		name, network, addr string
		size                int // the datagrams' length, read into 20 bytes
	}{
		{"bound", "udp", "127.0.0.1:0", 10},
		{"unspecified", "udp4", "0.0.0.0:0", 10},
		{"dual stack", "udp", "[::]:0", 10},
		{"truncated", "udp4", "0.0.0.0:0", 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := compileOrSkip(t, "udp[8:4] = 0x50494e47 and src net 127.0.0.0/8 and dst net 127.0.0.0/8")
			inner := listenUDP(t, tt.network, tt.addr)
			var opts []PacketConnOption
			if !trueDestination {
				opts = append(opts, WithLocalAddr(netip.MustParseAddr("127.0.0.1")))
			}
			pc, err := NewPacketConn(inner, m, opts...)
			if err != nil {
				t.Fatal(err)
			}
			client := dialUDP(t, "", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), localAddrPort(pc).Port()))
			ping, junk := make([]byte, tt.size), make([]byte, tt.size)
			copy(ping, "PING 12345")
			copy(junk, "JUNK 12345")
			buf := make([]byte, 20)
			want := min(tt.size, len(buf))
			allocs := func(send [][]byte, read func() (int, error)) float64 {
				return testing.AllocsPerRun(500, func() {
					for _, b := range send {
						client.Write(b)
					}
					if n, err := read(); err != nil || n != want {
						t.Fatalf("read %d, %v; want %d bytes", n, err, want)
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
			reads := []struct {
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
			for _, r := range reads {
				before := pc.Stats()
				got := allocs(r.send, r.read)
				if got > r.max {
					t.Errorf("%s: %v allocations per read, the inner connection's reads make %v", r.name, got, r.max)
				}
				st := pc.Stats()
				t.Logf("%s: %v allocations per read (inner connection: %v); %d matched, %d truncated", r.name, got, r.max, st.Matched-before.Matched, st.Truncated-before.Truncated)
				if st.Matched-before.Matched != 501 {
					t.Errorf("%s: %d datagrams matched, want 501", r.name, st.Matched-before.Matched)
				}
			}
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

// recvmsgTrunc tells whether a PacketConn over a *net.UDPConn learns the
// true length of datagrams longer than its buffer (MSG_TRUNC).
const recvmsgTrunc = runtime.GOOS == "linux"

// TestPacketConnTruncated checks that a datagram longer than the read
// buffer is matched with its true length on Linux (IP and UDP length
// fields, wire length) and the bytes read as its captured payload, and as
// read elsewhere; and that Stats counts it.
func TestPacketConnTruncated(t *testing.T) {
	// 14 + 20 + 8 bytes of headers over IPv4, 14 + 40 + 8 over IPv6.
	tests := []struct {
		name      string
		family    string
		size, buf int    // the datagram's length, the read buffer's
		expr      string // the datagram starts with "PING"
		want      bool   // matched as read
		wantLinux bool   // matched with its true length
	}{
		{"greater", "IPv4", 2000, 512, "greater 1000", false, true},
		{"less", "IPv4", 2000, 512, "less 600", true, false},
		{"len", "IPv4", 2000, 512, "len = 2042", false, true},
		{"len as read", "IPv4", 2000, 512, "len = 554", true, false},
		{"ip length", "IPv4", 2000, 512, "ip[2:2] = 2028", false, true},
		{"udp length", "IPv4", 2000, 512, "udp[4:2] = 2008", false, true},
		{"payload read", "IPv4", 2000, 512, "udp[8:4] = 0x50494e47 and greater 1000", false, true},
		{"payload read, last byte", "IPv4", 2000, 512, "udp[8 + 511] = 0x2e", true, true},
		{"payload not read", "IPv4", 2000, 512, "udp[8 + 512] = 0x2e or udp[8 + 512] != 0x2e", false, false},
		{"empty buffer", "IPv4", 100, 0, "udp[4:2] = 108", false, true},
		{"empty buffer, short frame", "IPv4", 10, 0, "len = 60", false, true},
		{"fits exactly", "IPv4", 512, 512, "len = 554 and udp[4:2] = 520", true, true},
		{"largest IPv4 datagram", "IPv4", 65507, 1500, "ip[2:2] = 65535 and udp[4:2] = 65515", false, true},
		{"greater v6", "IPv6", 2000, 512, "greater 1000", false, true},
		{"less v6", "IPv6", 2000, 512, "less 600", true, false},
		{"len v6", "IPv6", 2000, 512, "len = 2062", false, true},
		{"ip6 length", "IPv6", 2000, 512, "ip6[4:2] = 2008", false, true},
		{"payload read v6", "IPv6", 2000, 512, "ip6[48:4] = 0x50494e47 and ip6[4:2] > 1000", false, true},
	}
	for _, tt := range tests {
		for _, method := range []string{"ReadFrom", "ReadFromUDPAddrPort"} {
			t.Run(tt.name+"/"+method, func(t *testing.T) {
				want := tt.want
				if recvmsgTrunc {
					want = tt.wantLinux
				}
				m := compileOrSkip(t, tt.expr)
				addr := "127.0.0.1:0"
				if tt.family == "IPv6" {
					addr = "[::1]:0"
				}
				var dropped []Report
				inner := listenUDP(t, "udp", addr)
				inner.SetReadBuffer(1 << 20)
				pc, err := NewPacketConn(inner, m, WithDropFunc(func(r Report) {
					r.Packet.Payload = append([]byte(nil), r.Packet.Payload...)
					dropped = append(dropped, r)
				}))
				if err != nil {
					t.Fatal(err)
				}
				client := dialUDP(t, "", localAddrPort(pc))
				datagram := []byte(strings.Repeat(".", tt.size))
				copy(datagram, "PING")
				if _, err := client.Write(datagram); err != nil {
					t.Skipf("cannot send a datagram of %d bytes: %v", tt.size, err)
				}
				pc.SetReadDeadline(time.Now().Add(readWait(want)))
				buf := make([]byte, tt.buf)
				var n int
				if method == "ReadFrom" {
					n, _, err = pc.ReadFrom(buf)
				} else {
					n, _, err = pc.ReadFromUDPAddrPort(buf)
				}
				truncated := uint64(0)
				if recvmsgTrunc && tt.size > tt.buf {
					truncated = 1
				}
				st := pc.Stats()
				read := min(tt.size, tt.buf)
				if want {
					if err != nil || n != read || string(buf[:n]) != string(datagram[:read]) {
						t.Errorf("%q, %d-byte datagram into %d bytes: %s = %d, %v; want %d bytes read", tt.expr, tt.size, tt.buf, method, n, err, read)
					}
					if st != (PacketStats{Received: 1, Matched: 1, Truncated: truncated}) {
						t.Errorf("%q: stats %+v, want 1 received and matched, %d truncated", tt.expr, st, truncated)
					}
					return
				}
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("%q, %d-byte datagram into %d bytes: %s = %d, %v; want a timeout", tt.expr, tt.size, tt.buf, method, n, err)
				}
				if st != (PacketStats{Received: 1, Dropped: 1, Truncated: truncated}) {
					t.Errorf("%q: stats %+v, want 1 received and dropped, %d truncated", tt.expr, st, truncated)
				}
				if len(dropped) != 1 || !dropped[0].Tested || len(dropped[0].Packet.Payload) != read {
					t.Errorf("%q: dropped %v, want one report of the %d bytes read", tt.expr, dropped, read)
				}
			})
		}
	}
}

// TestTruncatedFrame checks the frame a truncated datagram is matched as
// against the frame of the whole datagram: the same bytes up to what was
// read, but for the UDP checksum, and the same wire length.
func TestTruncatedFrame(t *testing.T) {
	v4 := [2]netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:5353"), netip.MustParseAddrPort("198.51.100.2:53")}
	v6 := [2]netip.AddrPort{netip.MustParseAddrPort("[2001:db8::1]:5353"), netip.MustParseAddrPort("[2001:db8::2]:53")}
	for _, link := range []LinkType{LinkEthernet, LinkRaw} {
		for _, addrs := range [][2]netip.AddrPort{v4, v6} {
			for _, sizes := range [][2]int{{0, 0}, {0, 1}, {3, 10}, {10, 10}, {17, 18}, {18, 1000}, {512, 2000}, {1400, 65507}, {100, 70000}} {
				read, size := sizes[0], sizes[1]
				name := fmt.Sprintf("%v/%v/%d of %d", link, addrs[0].Addr(), read, size)
				t.Run(name, func(t *testing.T) {
					whole := make([]byte, size)
					for i := range whole {
						whole[i] = byte(i*7 + 1)
					}
					p := FakePacket{Src: addrs[0], Dst: addrs[1], Protocol: UDP, Payload: whole[:read]}
					var h header
					if err := h.build(&p, link); err != nil {
						t.Fatal(err)
					}
					size = min(size, h.maxPayload())
					p.Payload = whole[:size]
					full, err := p.AppendFrame(nil, link)
					if err != nil {
						t.Fatal(err)
					}
					f := h.truncatedFrame(whole[:read], size, DefaultSnapLen)
					got := append(append([]byte(nil), f.hdr...), f.payload...)
					if int(f.wirelen) != len(full) || int(f.caplen) != len(got) || len(got) > len(full) {
						t.Fatalf("%s: wire %d, caplen %d, %d bytes; the whole frame has %d", name, f.wirelen, f.caplen, len(got), len(full))
					}
					csum := int(h.csum)
					for i := range got {
						if got[i] != full[i] && i != csum && i != csum+1 {
							t.Errorf("%s: byte %d is %#x, the whole frame's %#x\n got % x\nwant % x", name, i, got[i], full[i], got, full[:len(got)])
							break
						}
					}
				})
			}
		}
	}
}

// TestPacketConnTrueDestination sends datagrams to 127.0.0.1, 127.0.0.2
// and ::1, in turn, to a socket bound to 0.0.0.0 and to a dual-stack one
// bound to ::, read by six goroutines (more than the read states a
// PacketConn keeps), and checks that dst host filters return exactly the
// datagrams sent to their host, and that the drop reports carry the true
// destination.
func TestPacketConnTrueDestination(t *testing.T) {
	if !trueDestination {
		t.Skipf("on %s the destination of a datagram is not known (IP_PKTINFO is Linux's)", runtime.GOOS)
	}
	const each = 200 // datagrams per destination
	tests := []struct {
		name    string
		network string
		laddr   string
		local   string // WithLocalAddr, which the kernel's destination overrides
		expr    string
		want    []string // destinations whose datagrams match
	}{
		{"IPv4 127.0.0.1", "udp4", "0.0.0.0:0", "", "dst host 127.0.0.1", []string{"127.0.0.1"}},
		{"IPv4 127.0.0.2", "udp4", "0.0.0.0:0", "", "dst host 127.0.0.2", []string{"127.0.0.2"}},
		{"IPv4 not 127.0.0.1", "udp4", "0.0.0.0:0", "", "not dst host 127.0.0.1", []string{"127.0.0.2"}},
		{"IPv4 WithLocalAddr", "udp4", "0.0.0.0:0", "127.0.0.1", "dst host 127.0.0.2", []string{"127.0.0.2"}},
		{"IPv4 unspecified", "udp4", "0.0.0.0:0", "", "dst host 0.0.0.0", nil},
		{"dual stack 127.0.0.1", "udp", "[::]:0", "", "dst host 127.0.0.1", []string{"127.0.0.1"}},
		{"dual stack 127.0.0.2", "udp", "[::]:0", "", "dst host 127.0.0.2", []string{"127.0.0.2"}},
		{"dual stack ::1", "udp", "[::]:0", "", "dst host ::1", []string{"::1"}},
		{"dual stack 127/8", "udp", "[::]:0", "", "dst net 127.0.0.0/8", []string{"127.0.0.1", "127.0.0.2"}},
		{"dual stack ip6", "udp", "[::]:0", "", "ip6 and udp", []string{"::1"}},
		{"dual stack unspecified", "udp", "[::]:0", "", "dst host 0.0.0.0 or dst host ::", nil},
		{"IPv6 only ::1", "udp6", "[::]:0", "", "dst host ::1", []string{"::1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := compileOrSkip(t, tt.expr)
			inner := listenUDP(t, tt.network, tt.laddr)
			inner.SetReadBuffer(4 << 20)
			var mu sync.Mutex
			droppedTo := map[string]int{} // by destination, checked against the payload
			var bad []string
			opts := []PacketConnOption{WithDropFunc(func(r Report) {
				mu.Lock()
				defer mu.Unlock()
				to, _, _ := strings.Cut(string(r.Packet.Payload), " ")
				if got := r.Packet.Dst.Addr().String(); got != to || r.Packet.Dst.Port() != localAddrPort(inner).Port() {
					bad = append(bad, fmt.Sprintf("datagram %q dropped as sent to %v", r.Packet.Payload, r.Packet.Dst))
				}
				droppedTo[to]++
			})}
			if tt.local != "" {
				opts = append(opts, WithLocalAddr(netip.MustParseAddr(tt.local)))
			}
			pc, err := NewPacketConn(inner, m, opts...)
			if err != nil {
				t.Fatal(err)
			}
			port := localAddrPort(pc).Port()
			var dsts []string
			var clients []net.Conn
			for _, d := range []string{"127.0.0.1", "127.0.0.2", "::1"} {
				if a := netip.MustParseAddr(d); (tt.network == "udp4" && a.Is6()) || (tt.network == "udp6" && a.Is4()) {
					continue
				}
				c, err := net.Dial("udp", net.JoinHostPort(d, strconv.Itoa(int(port))))
				if err != nil {
					t.Skipf("cannot send to %s: %v", d, err)
				}
				defer c.Close()
				dsts, clients = append(dsts, d), append(clients, c)
			}

			if wantDsts := map[string]int{"udp4": 2, "udp": 3, "udp6": 1}[tt.network]; len(dsts) != wantDsts {
				t.Fatalf("sending to %v, want %d destinations", dsts, wantDsts)
			}
			matchedTo := map[string]int{}
			var wg sync.WaitGroup
			for range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					buf := make([]byte, 100)
					for {
						n, _, err := pc.ReadFromUDPAddrPort(buf)
						if err != nil {
							return
						}
						to, _, _ := strings.Cut(string(buf[:n]), " ")
						mu.Lock()
						matchedTo[to]++
						mu.Unlock()
					}
				}()
			}
			total := 0
			for i := range each {
				for j, c := range clients {
					if _, err := fmt.Fprintf(c, "%s %d", dsts[j], i); err != nil {
						t.Fatal(err)
					}
					total++
				}
				if i%50 == 49 {
					waitReceived(t, pc, total)
				}
			}
			waitReceived(t, pc, total)
			pc.Close()
			wg.Wait()

			wantMatched := 0
			for _, d := range dsts {
				w := 0
				if slices.Contains(tt.want, d) {
					w = each
				}
				wantMatched += w
				if matchedTo[d] != w || droppedTo[d] != each-w {
					t.Errorf("%q: to %s, %d matched and %d dropped; want %d matched of %d", tt.expr, d, matchedTo[d], droppedTo[d], w, each)
				}
			}
			if st := pc.Stats(); st != (PacketStats{Received: uint64(total), Matched: uint64(wantMatched), Dropped: uint64(total - wantMatched)}) {
				t.Errorf("%q: stats %+v; want %d received, %d matched", tt.expr, st, total, wantMatched)
			}
			for _, s := range bad[:min(len(bad), 5)] {
				t.Error(s)
			}
			t.Logf("%q: %d datagrams to %v: matched %v, dropped %v", tt.expr, total, dsts, matchedTo, droppedTo)
		})
	}
}

// waitReceived waits until pc has read n datagrams.
func waitReceived(t *testing.T, pc *PacketConn, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); pc.Stats().Received < uint64(n); time.Sleep(100 * time.Microsecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the readers are stuck at %+v, %d datagrams sent", pc.Stats(), n)
		}
	}
}

// TestTruncatedMatchDifferential checks the verdict on a truncated
// datagram against libpcap's (its compiler and pcap_offline_filter) on
// the whole datagram's frame as a capture cut to the bytes read would hold
// it: its first bytes, and its wire length. The expressions read no UDP
// checksum, which a truncated datagram's frame does not have right.
func TestTruncatedMatchDifferential(t *testing.T) {
	if !HaveLibpcap {
		t.Skip("built without libpcap (go test -tags libpcap, with cgo)")
	}
	exprs := []string{
		"greater 1000", "less 600", "len >= 2000", "len = 2042", "len = 2062", "udp[4:2] > 1500",
		"ip[2:2] = 2028", "ip6[4:2] = 2008", "ip6[4:2] > 100", "udp[8:4] = 0x01080f16",
		"udp[600] = 0x41", "udp and len > 100 and udp[8] = 1", "ip6 and greater 1500",
		"ip6[48:4] = 0x01080f16 and less 70000", "udp[4:2] - 8 > 512", "len - 42 > 100",
	}
	v4 := [2]netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:5353"), netip.MustParseAddrPort("198.51.100.2:53")}
	v6 := [2]netip.AddrPort{netip.MustParseAddrPort("[2001:db8::1]:5353"), netip.MustParseAddrPort("[2001:db8::2]:53")}
	sizes := [][2]int{{0, 0}, {0, 5}, {4, 1000}, {20, 20}, {100, 101}, {512, 2000}, {1400, 65507}, {600, 65527}}
	compared, matched := 0, 0
	for _, link := range []LinkType{LinkEthernet, LinkRaw} {
		for _, expr := range exprs {
			goM := compileOrSkip(t, expr, WithLinkType(link))
			libM, err := Compile(expr, WithLinkType(link), WithLibpcap())
			if err != nil {
				t.Fatalf("libpcap: %v", err)
			}
			for _, addrs := range [][2]netip.AddrPort{v4, v6} {
				for _, rs := range sizes {
					read, size := rs[0], rs[1]
					whole := make([]byte, size)
					for i := range whole {
						whole[i] = byte(i*7 + 1)
					}
					p := FakePacket{Src: addrs[0], Dst: addrs[1], Protocol: UDP, Payload: whole}
					full, err := p.AppendFrame(nil, link)
					if err != nil {
						continue // too large for IPv4
					}
					p.Payload = whole[:read]
					var h header
					if err := h.build(&p, link); err != nil {
						t.Fatal(err)
					}
					caplen := int(h.n) + read // the headers and the bytes read, not padded
					want, err := libM.MatchFrame(full[:caplen], len(full))
					if err != nil {
						t.Fatal(err)
					}
					for _, m := range []*Matcher{goM, libM} {
						got, err := matchTruncated(m, &p, size)
						if err != nil || got != want {
							t.Errorf("%q (%v) on %v, %d bytes of %d read: %v, %v; libpcap on the frame cut to %d of %d bytes: %v",
								expr, link, p, read, size, got, err, caplen, len(full), want)
						}
						compared++
					}
					if want {
						matched++
					}
				}
			}
		}
	}
	t.Logf("%d comparisons with libpcap, %d matches", compared, matched/2)
}
