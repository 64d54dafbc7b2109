package bpfmatch

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Filters on the first bytes of a TCP payload, for the payload-aware
// tests. libpcap's tcp[] reads IPv4 packets only; ip6[] does the same for
// IPv6 (without extension headers).
var (
	getPrefix  = payloadFilter(4, "0x47455420") // "GET "
	gePrefix   = payloadFilter(2, "0x4745")     // "GE"
	echoPrefix = payloadFilter(4, "0x4543484f") // "ECHO"
	tlsPrefix  = payloadFilter(1, "0x16")       // a TLS handshake record
	noPayload4 = "ip[2:2] = 40"                 // an IPv4 packet with no TCP payload
)

func payloadFilter(size int, value string) string {
	return fmt.Sprintf("tcp[((tcp[12:1] & 0xf0) >> 2):%d] = %s or (ip6 and tcp and ip6[40 + ((ip6[52] & 0xf0) >> 2):%d] = %s)", size, value, size, value)
}

// A loopback family the socket tests run on; other is a second source
// address, "" if there is none.
type loopback struct {
	name, ip, other string
}

var loopbacks = []loopback{{"IPv4", "127.0.0.1", "127.0.0.2"}, {"IPv6", "::1", ""}}

// listenLoopback listens on ip, skipping the test if it is IPv6 and cannot.
func listenLoopback(t testing.TB, ip string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		if strings.Contains(ip, ":") {
			t.Skipf("cannot listen on [%s]: %v", ip, err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dialLoopback connects to addr from the source address from ("" for the
// kernel's choice).
func dialLoopback(t testing.TB, from string, addr net.Addr) *net.TCPConn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", addr.String())
	if err != nil {
		t.Fatalf("dial %v from %q: %v", addr, from, err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// acceptAll accepts from l until it fails, passing the connections on.
func acceptAll(l net.Listener) <-chan net.Conn {
	ch := make(chan net.Conn, 128)
	go func() {
		defer close(ch)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			ch <- c
		}
	}()
	return ch
}

type rejection = Report

// recordRejects returns the option reporting rejections to the channel.
func recordRejects() (chan rejection, ListenerOption) {
	ch := make(chan rejection, 1024)
	return ch, WithRejectFunc(func(r Report) { ch <- r })
}

func waitConn(t *testing.T, ch <-chan net.Conn, d time.Duration) net.Conn {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("Accept failed")
		}
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(d):
		t.Fatalf("no connection accepted in %v", d)
	}
	return nil
}

func waitReject(t *testing.T, ch <-chan rejection, d time.Duration) rejection {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(d):
		t.Fatalf("no connection rejected in %v", d)
	}
	return rejection{}
}

// expectClosed checks that the server closed c: a read ends without data.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if n != 0 || (err != io.EOF && !errors.Is(err, syscall.ECONNRESET)) {
		t.Errorf("read on a rejected connection: %d bytes, %v; want EOF or a reset", n, err)
	}
}

// TestListenerSYN checks accepting and rejecting on the connection-open
// packet, by address, port, network and flags.
func TestListenerSYN(t *testing.T) {
	tests := []struct {
		name   string
		family string
		expr   string
		from   string // "" for the family's loopback address
		want   bool
	}{
		{"src host", "IPv4", "src host 127.0.0.1", "", true},
		{"src host other", "IPv4", "src host 127.0.0.1", "127.0.0.2", false},
		{"dst port range", "IPv4", "tcp dst portrange 1024-65535", "", true},
		{"dst port privileged", "IPv4", "tcp dst portrange 1-1023", "", false},
		{"src net", "IPv4", "src net 127.0.0.0/8", "127.0.0.2", true},
		{"not src net", "IPv4", "not src net 127.0.0.0/8", "", false},
		{"SYN alone", "IPv4", "tcp[tcpflags] == tcp-syn", "", true},
		{"PSH", "IPv4", "tcp[tcpflags] & tcp-push != 0", "", false},
		{"ip6 on IPv4", "IPv4", "ip6", "", false},
		{"src host v6", "IPv6", "src host ::1", "", true},
		{"src host v6 other", "IPv6", "src host 2001:db8::1", "", false},
		{"dst port range v6", "IPv6", "ip6 and tcp dst portrange 1024-65535", "", true},
		{"src net v6", "IPv6", "src net ::1/128", "", true},
		{"ip on IPv6", "IPv6", "ip", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := compileOrSkip(t, tt.expr)
			ip := "127.0.0.1"
			if tt.family == "IPv6" {
				ip = "::1"
			}
			ln := listenLoopback(t, ip)
			rejects, onReject := recordRejects()
			l, err := NewListener(ln, m, onReject)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			accepted := acceptAll(l)
			c := dialLoopback(t, tt.from, l.Addr())
			if tt.want {
				sc := waitConn(t, accepted, 5*time.Second)
				if sc.RemoteAddr().String() != c.LocalAddr().String() {
					t.Errorf("accepted %v, want %v", sc.RemoteAddr(), c.LocalAddr())
				}
				if _, ok := sc.(*net.TCPConn); !ok {
					t.Errorf("accepted a %T, want the inner *net.TCPConn", sc)
				}
				return
			}
			r := waitReject(t, rejects, 5*time.Second)
			switch {
			case r.Remote.String() != c.LocalAddr().String():
				t.Errorf("rejected %v, want %v", r.Remote, c.LocalAddr())
			case !errors.Is(r.Reason, ErrRejected) || !r.Tested:
				t.Errorf("report %v, want ErrRejected on a tested packet", r)
			case r.Packet.Flags != SYN || len(r.Packet.Payload) != 0 || r.Packet.Src != r.Remote:
				t.Errorf("rejected packet %v, want a SYN without payload from %v", r.Packet, r.Remote)
			}
			expectClosed(t, c)
		})
	}
}

// TestListenerPayload checks payload-aware accepting: what is matched,
// when, and the timeout policies.
func TestListenerPayload(t *testing.T) {
	const short = 200 * time.Millisecond
	tests := []struct {
		name      string
		expr      string
		send      string
		close     bool // the client closes its side after sending
		policy    TimeoutPolicy
		immediate bool   // decided without waiting for the timeout
		want      string // what the server reads, if accepted
		reason    error  // why it is rejected, if not
		payload   string // the payload of the rejected packet
	}{
		{"GET accepted", getPrefix, "GET /index.html", false, MatchOnTimeout, true, "GET /index.html", nil, ""},
		{"POST rejected", getPrefix, "POST /form", false, MatchOnTimeout, true, "", ErrRejected, "POST"},
		{"short then closed, matched", gePrefix, "GE", true, RejectOnTimeout, true, "GE", nil, ""},
		{"short then closed, rejected", getPrefix, "GE", true, MatchOnTimeout, true, "", ErrRejected, "GE"},
		{"closed without sending, matched", noPayload4, "", true, RejectOnTimeout, true, "", nil, ""},
		{"closed without sending, rejected", getPrefix, "", true, MatchOnTimeout, true, "", ErrRejected, ""},
		{"silent, match on timeout", noPayload4, "", false, MatchOnTimeout, false, "", nil, ""},
		{"silent, reject on timeout", noPayload4, "", false, RejectOnTimeout, false, "", ErrWaitExpired, ""},
		{"partial, match on timeout", gePrefix, "GE", false, MatchOnTimeout, false, "GE", nil, ""},
		{"partial, reject on timeout", gePrefix, "GE", false, RejectOnTimeout, false, "", ErrWaitExpired, ""},
		{"address filter reads nothing", "src host 127.0.0.1", "", false, RejectOnTimeout, true, "", nil, ""},
		{"address filter rejects at once", "src host 127.0.0.2", "", false, MatchOnTimeout, true, "", ErrRejected, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := compileOrSkip(t, tt.expr)
			wait := short
			if tt.immediate {
				// Long enough to tell waiting from not.
				wait = 20 * time.Second
			}
			ln := listenLoopback(t, "127.0.0.1")
			rejects, onReject := recordRejects()
			l, err := NewListener(ln, m, WithPayload(4, wait), WithTimeoutPolicy(tt.policy), onReject)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			accepted := acceptAll(l)
			start := time.Now()
			c := dialLoopback(t, "", l.Addr())
			if _, err := c.Write([]byte(tt.send)); err != nil {
				t.Fatal(err)
			}
			if tt.close {
				c.CloseWrite()
			}
			checkTime := func() {
				t.Helper()
				el := time.Since(start)
				if tt.immediate && el > 10*time.Second {
					t.Errorf("decided after %v, want at once", el)
				}
				if !tt.immediate && el < wait {
					t.Errorf("decided after %v, before the wait of %v", el, wait)
				}
			}
			if tt.reason != nil {
				r := waitReject(t, rejects, 15*time.Second)
				checkTime()
				if !errors.Is(r.Reason, tt.reason) {
					t.Fatalf("reason %v, want %v", r.Reason, tt.reason)
				}
				if string(r.Packet.Payload) != tt.payload || r.Tested != errors.Is(r.Reason, ErrRejected) {
					t.Errorf("rejected packet %v (tested %v) with payload %q, want %q", r.Packet, r.Tested, r.Packet.Payload, tt.payload)
				}
				expectClosed(t, c)
				return
			}
			sc := waitConn(t, accepted, 15*time.Second)
			checkTime()
			if tt.close {
				got, err := io.ReadAll(sc)
				if err != nil || string(got) != tt.want {
					t.Errorf("server read %q, %v; want %q then EOF", got, err, tt.want)
				}
				return
			}
			// What was sent, then more, with no deadline left from the
			// inspection.
			time.Sleep(2 * short)
			if _, err := c.Write([]byte("+more")); err != nil {
				t.Fatal(err)
			}
			want := tt.want + "+more"
			got := make([]byte, len(want))
			if _, err := io.ReadFull(sc, got); err != nil || string(got) != want {
				t.Errorf("server read %q, %v; want %q", got, err, want)
			}
		})
	}
}

// TestListenerPayloadInOrder sends megabytes after the matched prefix and
// checks that the server reads every byte once, in order.
func TestListenerPayloadInOrder(t *testing.T) {
	data := make([]byte, 4<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	copy(data, "GET ")
	want := sha256.Sum256(data)
	for _, fam := range loopbacks {
		for _, n := range []int{4, 1000, 65536} {
			t.Run(fmt.Sprintf("%s/%d bytes", fam.name, n), func(t *testing.T) {
				m := compileOrSkip(t, getPrefix)
				ln := listenLoopback(t, fam.ip)
				l, err := NewListener(ln, m, WithPayload(n, 5*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				accepted := acceptAll(l)
				c := dialLoopback(t, "", l.Addr())
				go func() {
					c.Write(data)
					c.CloseWrite()
				}()
				sc := waitConn(t, accepted, 10*time.Second)
				if _, ok := sc.(interface{ CloseWrite() error }); !ok {
					t.Errorf("%T has no CloseWrite", sc)
				}
				if nc, ok := sc.(interface{ NetConn() net.Conn }); !ok {
					t.Errorf("%T has no NetConn", sc)
				} else if _, ok := nc.NetConn().(*net.TCPConn); !ok {
					t.Errorf("NetConn returns a %T", nc.NetConn())
				}
				h := sha256.New()
				buf := make([]byte, 1<<16)
				total := 0
				for {
					// Reads of all sizes, some smaller than the inspected bytes.
					k, err := sc.Read(buf[:1+rng.IntN(len(buf))])
					h.Write(buf[:k])
					total += k
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				if got := h.Sum(nil); total != len(data) || !bytes.Equal(got, want[:]) {
					t.Errorf("server read %d bytes, SHA-256 %x; sent %d, %x", total, got, len(data), want)
				}
			})
		}
	}
}

// plainListener hands out connections without their CloseWrite method.
type plainListener struct{ net.Listener }

func (l plainListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return struct{ net.Conn }{c}, nil
}

// TestListenerCloseWrite checks that connections handed out have
// CloseWrite if and only if the inner ones do.
func TestListenerCloseWrite(t *testing.T) {
	m := compileOrSkip(t, getPrefix)
	for _, plain := range []bool{false, true} {
		t.Run(fmt.Sprintf("plain %v", plain), func(t *testing.T) {
			var inner net.Listener = listenLoopback(t, "127.0.0.1")
			if plain {
				inner = plainListener{inner}
			}
			l, err := NewListener(inner, m, WithPayload(4, 5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			c := dialLoopback(t, "", l.Addr())
			io.WriteString(c, "GET /")
			sc, err := l.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			cw, ok := sc.(interface{ CloseWrite() error })
			if ok == plain {
				t.Fatalf("%T: has CloseWrite %v, want %v", sc, ok, !plain)
			}
			if plain {
				return
			}
			if err := cw.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Errorf("client read %d, %v after CloseWrite; want EOF", n, err)
			}
		})
	}
}

// TestListenerSilentClient checks that a client that sends nothing holds
// up nobody, and that Close closes it.
func TestListenerSilentClient(t *testing.T) {
	m := compileOrSkip(t, getPrefix)
	ln := listenLoopback(t, "127.0.0.1")
	rejects, onReject := recordRejects()
	l, err := NewListener(ln, m, WithPayload(4, time.Minute), onReject)
	if err != nil {
		t.Fatal(err)
	}
	accepted := acceptAll(l)
	silent := dialLoopback(t, "", l.Addr())
	start := time.Now()
	const n = 20
	for i := 0; i < n; i++ {
		c := dialLoopback(t, "", l.Addr())
		fmt.Fprintf(c, "GET /%d", i)
		sc := waitConn(t, accepted, 5*time.Second)
		if sc.RemoteAddr().String() != c.LocalAddr().String() {
			t.Fatalf("accepted %v, want %v", sc.RemoteAddr(), c.LocalAddr())
		}
	}
	t.Logf("%d clients accepted in %v while a silent one waits", n, time.Since(start))
	l.Close()
	expectClosed(t, silent)
	r := waitReject(t, rejects, 5*time.Second)
	if r.Remote.String() != silent.LocalAddr().String() || !errors.Is(r.Reason, net.ErrClosed) {
		t.Errorf("rejected %v for %v, want %v for net.ErrClosed", r.Remote, r.Reason, silent.LocalAddr())
	}
}

// TestListenerMaxPending checks that the listener keeps accepting while it
// inspects the most connections it may: the silent connection that has
// waited longest is evicted, held unread, and inspected again when there
// is room (then matched on nothing when its wait expires) or closed when
// its wait has expired (reported with ErrEvicted); the new one is served
// at once.
func TestListenerMaxPending(t *testing.T) {
	m := compileOrSkip(t, getPrefix)
	ln := listenLoopback(t, "127.0.0.1")
	rejects, onReject := recordRejects()
	const wait = 300 * time.Millisecond
	l, err := NewListener(ln, m, WithPayload(4, wait), WithMaxPending(2), onReject)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := acceptAll(l)
	// silent3 evicts silent1, c evicts silent2; once c is decided, the
	// last evicted, silent2, is inspected again.
	var silent [3]net.Conn
	for i := range silent {
		silent[i] = dialLoopback(t, "", l.Addr())
		time.Sleep(30 * time.Millisecond) // for the listener to take it
	}
	start := time.Now()
	c := dialLoopback(t, "", l.Addr())
	c.Write([]byte("GET /"))
	sc := waitConn(t, accepted, 5*time.Second)
	if sc.RemoteAddr().String() != c.LocalAddr().String() {
		t.Errorf("accepted %v, want %v", sc.RemoteAddr(), c.LocalAddr())
	}
	if d := time.Since(start); d >= wait {
		t.Errorf("accepted after %v, when the silent connections' wait (%v) expired", d, wait)
	}
	want := map[string]error{
		silent[0].LocalAddr().String(): ErrEvicted,
		silent[1].LocalAddr().String(): ErrRejected,
		silent[2].LocalAddr().String(): ErrRejected,
	}
	for range silent {
		r := waitReject(t, rejects, 5*time.Second)
		if w, ok := want[r.Remote.String()]; !ok || !errors.Is(r.Reason, w) {
			t.Errorf("rejected %v: %v; want one of %v", r.Remote, r.Reason, want)
		}
		delete(want, r.Remote.String())
	}
	for _, s := range silent {
		expectClosed(t, s)
	}
	if s := l.Stats(); s.Evicted != 1 || s.Rejected != 3 || s.Matched != 1 || s.Pending != 0 {
		t.Errorf("stats %+v, want 1 evicted of 3 rejected, 1 matched", s)
	}
}

// scriptedListener returns the errors it is given, and for a nil one the
// next connection of its inner listener.
type scriptedListener struct {
	net.Listener
	script chan error
	done   chan struct{}
	once   sync.Once
}

func newScriptedListener(inner net.Listener) *scriptedListener {
	return &scriptedListener{Listener: inner, script: make(chan error), done: make(chan struct{})}
}

func (l *scriptedListener) Accept() (net.Conn, error) {
	select {
	case err := <-l.script:
		if err != nil {
			return nil, err
		}
		return l.Listener.Accept()
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Err: net.ErrClosed}
	}
}

func (l *scriptedListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type temporaryError struct{}

func (temporaryError) Error() string   { return "temporary trouble" }
func (temporaryError) Temporary() bool { return true }
func (temporaryError) Timeout() bool   { return false }

// TestListenerInnerErrors checks that errors of the inner Accept are
// returned as they are, temporary ones without ending the listener.
func TestListenerInnerErrors(t *testing.T) {
	for _, mode := range []string{"SYN", "payload"} {
		t.Run(mode, func(t *testing.T) {
			m := compileOrSkip(t, "tcp")
			sl := newScriptedListener(listenLoopback(t, "127.0.0.1"))
			var opts []ListenerOption
			if mode == "payload" {
				opts = append(opts, WithPayload(4, 5*time.Second))
			}
			l, err := NewListener(sl, m, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			type result struct {
				c   net.Conn
				err error
			}
			accept := func(step error) result {
				ch := make(chan result, 1)
				go func() {
					c, err := l.Accept()
					ch <- result{c, err}
				}()
				sl.script <- step
				select {
				case r := <-ch:
					return r
				case <-time.After(5 * time.Second):
					t.Fatal("Accept did not return")
				}
				return result{}
			}
			temp := temporaryError{}
			if r := accept(temp); r.err != temp {
				t.Errorf("Accept = %v, %v; want the temporary error as it is", r.c, r.err)
			}
			c := dialLoopback(t, "", sl.Addr())
			c.Write([]byte("GET "))
			if r := accept(nil); r.err != nil || r.c.RemoteAddr().String() != c.LocalAddr().String() {
				t.Errorf("Accept = %v, %v; want the connection from %v", r.c, r.err, c.LocalAddr())
			}
			perm := errors.New("permanent trouble")
			if r := accept(perm); r.err != perm {
				t.Errorf("Accept = %v, %v; want the permanent error as it is", r.c, r.err)
			}
			if mode == "payload" {
				// The accept loop has ended; the error stays.
				if _, err := l.Accept(); err != perm {
					t.Errorf("Accept again = %v, want %v", err, perm)
				}
			}
		})
	}
}

// TestListenerClose checks that Close unblocks Accept promptly with
// net.ErrClosed, in both modes.
func TestListenerClose(t *testing.T) {
	for _, mode := range []string{"SYN", "payload"} {
		t.Run(mode, func(t *testing.T) {
			m := compileOrSkip(t, "tcp")
			var opts []ListenerOption
			if mode == "payload" {
				opts = append(opts, WithPayload(4, 5*time.Second))
			}
			l, err := NewListener(listenLoopback(t, "127.0.0.1"), m, opts...)
			if err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() {
				_, err := l.Accept()
				errc <- err
			}()
			time.Sleep(50 * time.Millisecond) // for Accept to block
			start := time.Now()
			if err := l.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			select {
			case err := <-errc:
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
				}
				t.Logf("blocked Accept returned %v after Close", time.Since(start))
			case <-time.After(2 * time.Second):
				t.Fatal("Accept still blocked 2 s after Close")
			}
			if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Accept on a closed listener: %v, want net.ErrClosed", err)
			}
			if err := l.Close(); !errors.Is(err, net.ErrClosed) {
				t.Errorf("second Close: %v, want net.ErrClosed", err)
			}
		})
	}
}

// TestListenerArgs checks the errors of NewListener.
func TestListenerArgs(t *testing.T) {
	m := compileOrSkip(t, "tcp")
	ln := listenLoopback(t, "127.0.0.1")
	tests := []struct {
		name  string
		inner net.Listener
		m     *Matcher
		want  string
	}{
		{"nil listener", nil, m, "inner listener is nil"},
		{"nil matcher", ln, nil, "matcher is nil"},
		{"link type", ln, &Matcher{expr: "x", link: 105}, "fake packets are framed for Ethernet or raw IP only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewListener(tt.inner, tt.m); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewListener: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// TestListenerUnixSocket checks that a listener whose connections cannot
// be made into packets is refused when the Listener or a Router rule is
// made, not by rejecting every client.
func TestListenerUnixSocket(t *testing.T) {
	m := compileOrSkip(t, "tcp")
	ln, err := net.Listen("unix", t.TempDir()+"/sock")
	if err != nil {
		t.Skipf("no Unix sockets: %v", err)
	}
	defer ln.Close()
	if _, err := NewListener(ln, m); !errors.Is(err, ErrAddress) || !strings.Contains(err.Error(), "not a TCP address") {
		t.Errorf("NewListener over a Unix socket listener: %v, want ErrAddress saying it is not a TCP address", err)
	}
	r := NewRouter(ln)
	if _, err := r.ListenMatcher(m); !errors.Is(err, ErrAddress) || !strings.Contains(err.Error(), "not a TCP address") {
		t.Errorf("Router.ListenMatcher over a Unix socket listener: %v, want ErrAddress saying it is not a TCP address", err)
	}
}

// TestConstructorErrorsSayBpfmatchOnce checks that the errors of the
// constructors name the package once, whatever they wrap.
func TestConstructorErrorsSayBpfmatchOnce(t *testing.T) {
	m := compileOrSkip(t, "tcp")
	ln := listenLoopback(t, "127.0.0.1")
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	other := &Matcher{expr: "x", link: 105}
	_, e1 := NewListener(ln, other)
	_, e2 := NewPacketConn(pc, other)
	_, e3 := NewPacketConn(pc, m, WithLocalAddr(netip.Addr{}))
	_, e4 := NewRouter(ln).ListenMatcher(other)
	for i, err := range []error{e1, e2, e3, e4} {
		if err == nil {
			t.Errorf("case %d: no error", i+1)
			continue
		}
		if n := strings.Count(err.Error(), "bpfmatch:"); n != 1 {
			t.Errorf("case %d: %q says bpfmatch: %d times", i+1, err, n)
		}
	}
	if !errors.Is(e1, ErrLinkType) || !errors.Is(e3, ErrAddress) {
		t.Errorf("wrapped errors lost: %v, %v", e1, e3)
	}
}

// TestRouter serves HTTP, HTTPS, a line-based echo protocol and a default
// greeter on one port, and checks that each server gets only its own
// connections.
func TestRouter(t *testing.T) {
	for _, fam := range loopbacks {
		t.Run(fam.name, func(t *testing.T) { testRouter(t, fam) })
	}
}

func testRouter(t *testing.T, fam loopback) {
	getM, tlsM, echoM := compileOrSkip(t, getPrefix), compileOrSkip(t, tlsPrefix), compileOrSkip(t, echoPrefix)
	ln := listenLoopback(t, fam.ip)
	rejects, onReject := recordRejects()
	r := NewRouter(ln, WithPayload(4, 10*time.Second), onReject)
	defer r.Close()
	listen := func(m *Matcher) net.Listener {
		l, err := r.ListenMatcher(m)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	httpLn, tlsLn, echoLn, defLn := listen(getM), listen(tlsM), listen(echoM), r.Default()
	if r.Default() != defLn {
		t.Error("Default returns a new listener each time")
	}
	served := make(chan error, 1)
	go func() { served <- r.Serve() }()

	// HTTP, with http.Server.Serve on the sub-listener.
	var httpConns atomic.Int32
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			fmt.Fprintf(w, "http %s %s", req.Method, req.URL.Path)
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				httpConns.Add(1)
			}
		},
	}
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Serve(httpLn) }()
	defer srv.Close()

	// HTTPS, with httptest's server and certificate.
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		fmt.Fprintf(w, "https %s", req.URL.Path)
	}))
	tlsSrv.Listener = tlsLn
	tlsSrv.StartTLS()
	defer tlsSrv.Close()

	// The echo protocol: the first line starts with "ECHO"; each line is
	// sent back.
	var echoConns, badEcho, badDefault atomic.Int32
	go func() {
		for {
			c, err := echoLn.Accept()
			if err != nil {
				return
			}
			echoConns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for i := 0; ; i++ {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if i == 0 && !strings.HasPrefix(line, "ECHO") {
						badEcho.Add(1)
					}
					io.WriteString(c, line)
				}
			}()
		}
	}()
	var defConns atomic.Int32
	go func() {
		for {
			c, err := defLn.Accept()
			if err != nil {
				return
			}
			defConns.Add(1)
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				if strings.HasPrefix(line, "GET ") || strings.HasPrefix(line, "ECHO") || strings.HasPrefix(line, "\x16") {
					badDefault.Add(1)
				}
				io.WriteString(c, "default\n")
			}()
		}
	}()
	addr := ln.Addr().String()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	tlsClient := tlsSrv.Client()
	tlsClient.Transport.(*http.Transport).DisableKeepAlives = true
	defer tlsClient.CloseIdleConnections()

	const nHTTP, nTLS, nEcho, nDefault = 6, 4, 5, 3
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < nHTTP; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(fmt.Sprintf("http://%s/%d", addr, i))
			if err != nil {
				errs <- err
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := fmt.Sprintf("http GET /%d", i); string(body) != want {
				errs <- fmt.Errorf("HTTP body %q, want %q", body, want)
			}
		}()
	}
	for i := 0; i < nTLS; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := tlsClient.Get(fmt.Sprintf("https://%s/%d", addr, i))
			if err != nil {
				errs <- err
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := fmt.Sprintf("https /%d", i); string(body) != want {
				errs <- fmt.Errorf("HTTPS body %q, want %q", body, want)
			}
		}()
	}
	lineClient := func(lines []string, want []string) error {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		for i, line := range lines {
			if _, err := io.WriteString(c, line); err != nil {
				return err
			}
			got, err := br.ReadString('\n')
			if err != nil || got != want[i] {
				return fmt.Errorf("sent %q, got %q, %v; want %q", line, got, err, want[i])
			}
		}
		return nil
	}
	for i := 0; i < nEcho; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lines := []string{fmt.Sprintf("ECHO %d\n", i), "and again\n"}
			if err := lineClient(lines, lines); err != nil {
				errs <- fmt.Errorf("echo: %w", err)
			}
		}()
	}
	for i, first := range []string{"HELO example.org\n", "POST / HTTP/1.0\r\n", "xyzzy\n"}[:nDefault] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := lineClient([]string{first}, []string{"default\n"}); err != nil {
				errs <- fmt.Errorf("default %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := httpConns.Load(); got != nHTTP {
		t.Errorf("HTTP server got %d connections, want %d", got, nHTTP)
	}
	if got := echoConns.Load(); got != nEcho {
		t.Errorf("echo listener got %d connections, want %d", got, nEcho)
	}
	if got := defConns.Load(); got != nDefault {
		t.Errorf("default listener got %d connections, want %d", got, nDefault)
	}
	if badEcho.Load() != 0 || badDefault.Load() != 0 {
		t.Errorf("%d foreign connections on the echo listener, %d on the default one", badEcho.Load(), badDefault.Load())
	}

	// Closing the echo listener closes its connections, and only those.
	echoLn.Close()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "ECHO closed\n")
	expectClosed(t, c)
	if rj := waitReject(t, rejects, 5*time.Second); rj.Remote.String() != c.LocalAddr().String() || !errors.Is(rj.Reason, net.ErrClosed) {
		t.Errorf("rejected %v for %v; want %v for net.ErrClosed", rj.Remote, rj.Reason, c.LocalAddr())
	}
	if err := lineClient([]string{"still there?\n"}, []string{"default\n"}); err != nil {
		t.Errorf("default after closing echo: %v", err)
	}
	resp, err := client.Get("http://" + addr + "/after")
	if err != nil {
		t.Fatalf("HTTP after closing echo: %v", err)
	}
	resp.Body.Close()

	// Closing the router ends Serve and the servers.
	if err := r.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	for name, ch := range map[string]chan error{"Serve": served, "http.Server.Serve": httpDone} {
		select {
		case err := <-ch:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("%s returned %v, want net.ErrClosed", name, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s still running after Close", name)
		}
	}
}

// TestRouterRules checks rule order, rules decided without reading, and
// connections no rule takes.
func TestRouterRules(t *testing.T) {
	tests := []struct {
		name    string
		exprs   []string
		deflt   bool
		from    string
		send    string
		want    int // the rule that gets the connection; len(exprs) for the default, -1 for none
		payload string
	}{
		{"first of two matching", []string{getPrefix, "tcp"}, false, "", "GET /", 0, ""},
		{"second", []string{echoPrefix, "tcp"}, false, "", "GET /", 1, ""},
		{"default", []string{echoPrefix}, true, "", "GET /", 1, ""},
		{"no default", []string{echoPrefix, tlsPrefix}, false, "", "GET /", -1, "GET "},
		{"address rule, silent client", []string{"src host 127.0.0.2", getPrefix}, false, "127.0.0.2", "", 0, ""},
		{"address rule not taken", []string{"src host 127.0.0.2", getPrefix}, false, "127.0.0.1", "GET /", 1, ""},
		{"address rules only, none taken", []string{"src host 127.0.0.2", "src host 127.0.0.3"}, false, "127.0.0.1", "", -1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := listenLoopback(t, "127.0.0.1")
			rejects, onReject := recordRejects()
			// Long enough that a silent client decided in time was
			// decided without waiting.
			r := NewRouter(ln, WithPayload(4, 30*time.Second), onReject)
			defer r.Close()
			var chans []<-chan net.Conn
			for _, expr := range tt.exprs {
				l, err := r.ListenMatcher(compileOrSkip(t, expr))
				if err != nil {
					t.Fatal(err)
				}
				chans = append(chans, acceptAll(l))
			}
			if tt.deflt {
				chans = append(chans, acceptAll(r.Default()))
			}
			go r.Serve()
			c := dialLoopback(t, tt.from, ln.Addr())
			io.WriteString(c, tt.send)
			if tt.want < 0 {
				rj := waitReject(t, rejects, 10*time.Second)
				if !errors.Is(rj.Reason, ErrRejected) || !rj.Tested || string(rj.Packet.Payload) != tt.payload {
					t.Errorf("report %v, want ErrRejected on a packet with payload %q", rj, tt.payload)
				}
				expectClosed(t, c)
				return
			}
			sc := waitConn(t, chans[tt.want], 10*time.Second)
			if sc.RemoteAddr().String() != c.LocalAddr().String() {
				t.Errorf("got %v, want %v", sc.RemoteAddr(), c.LocalAddr())
			}
			for i, ch := range chans {
				select {
				case sc := <-ch:
					t.Errorf("listener %d also got %v", i, sc.RemoteAddr())
				default:
				}
			}
		})
	}
}

// TestRouterLifecycle checks Serve, Close and the sub-listeners' errors.
func TestRouterLifecycle(t *testing.T) {
	t.Run("close", func(t *testing.T) {
		m := compileOrSkip(t, getPrefix)
		r := NewRouter(listenLoopback(t, "127.0.0.1"))
		l, err := r.ListenMatcher(m)
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- r.Serve() }()
		accepted := make(chan error, 1)
		go func() {
			_, err := l.Accept()
			accepted <- err
		}()
		time.Sleep(50 * time.Millisecond)
		if err := r.Serve(); err == nil || !strings.Contains(err.Error(), "twice") {
			t.Errorf("second Serve: %v", err)
		}
		r.Close()
		for name, ch := range map[string]chan error{"Serve": served, "sub-listener Accept": accepted} {
			select {
			case err := <-ch:
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("%s: %v, want net.ErrClosed", name, err)
				}
			case <-time.After(2 * time.Second):
				t.Errorf("%s still blocked 2 s after Close", name)
			}
		}
		if _, err := r.ListenMatcher(m); !errors.Is(err, net.ErrClosed) {
			t.Errorf("ListenMatcher after Close: %v, want net.ErrClosed", err)
		}
		if err := r.Close(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("second Close: %v", err)
		}
	})
	t.Run("inner fails", func(t *testing.T) {
		m := compileOrSkip(t, getPrefix)
		sl := newScriptedListener(listenLoopback(t, "127.0.0.1"))
		r := NewRouter(sl)
		defer r.Close()
		l, _ := r.ListenMatcher(m)
		served := make(chan error, 1)
		go func() { served <- r.Serve() }()
		sl.script <- temporaryError{} // retried
		perm := errors.New("permanent trouble")
		sl.script <- perm
		select {
		case err := <-served:
			if err != perm {
				t.Errorf("Serve: %v, want %v", err, perm)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Serve did not return")
		}
		if _, err := l.Accept(); err != perm {
			t.Errorf("sub-listener Accept: %v, want %v", err, perm)
		}
	})
	t.Run("nil inner", func(t *testing.T) {
		r := NewRouter(nil)
		if err := r.Serve(); err == nil {
			t.Error("Serve on a nil listener succeeded")
		}
		if _, err := r.Default().Accept(); err == nil {
			t.Error("Accept on a nil listener succeeded")
		}
		r.Close()
	})
}

// fdCount counts the open file descriptors of the process.
func fdCount(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	return len(ents)
}

// waitGone waits up to 5 s for the goroutines and file descriptors to be
// back to g0 and fd0, or fewer, and returns their counts then.
func waitGone(t *testing.T, g0, fd0 int) (g, fd int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		g, fd = runtime.NumGoroutine(), fdCount(t)
		if (g <= g0 && fd <= fd0) || time.Now().After(deadline) {
			return g, fd
		}
	}
}

// checkNoLeaks runs f and checks that the goroutines and file descriptors
// it started have gone a little after.
func checkNoLeaks(t *testing.T, f func()) {
	t.Helper()
	runtime.GC()
	g0, fd0 := runtime.NumGoroutine(), fdCount(t)
	f()
	g, fd := waitGone(t, g0, fd0)
	if g > g0 || fd > fd0 {
		ents, _ := os.ReadDir("/proc/self/fd")
		for _, e := range ents {
			l, _ := os.Readlink("/proc/self/fd/" + e.Name())
			t.Logf("fd %s: %s", e.Name(), l)
		}
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("%d goroutines and %d file descriptors before, %d and %d after\n%s", g0, fd0, g, fd, buf)
	}
	t.Logf("%d goroutines and %d file descriptors before, %d and %d after", g0, fd0, g, fd)
}

// TestAdaptersNoLeaks closes a listener and a router holding connections
// in every state and checks that nothing is left.
func TestAdaptersNoLeaks(t *testing.T) {
	m := compileOrSkip(t, getPrefix)
	checkNoLeaks(t, func() {
		var clients []net.Conn
		defer func() {
			for _, c := range clients {
				c.Close()
			}
		}()
		dial := func(addr net.Addr, send string) {
			c, err := net.Dial("tcp", addr.String())
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, send)
			clients = append(clients, c)
		}

		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err := NewListener(ln, m, WithPayload(4, time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		dial(l.Addr(), "GET /1")
		c, err := l.Accept() // handed out
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		dial(l.Addr(), "")       // being inspected
		dial(l.Addr(), "GET /2") // decided, not accepted
		dial(l.Addr(), "POST /") // rejected

		ln2, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		r := NewRouter(ln2, WithPayload(4, time.Minute))
		sub, _ := r.ListenMatcher(m)
		r.Default()
		served := make(chan error, 1)
		go func() { served <- r.Serve() }()
		dial(r.Addr(), "")
		dial(r.Addr(), "GET /3")
		dial(r.Addr(), "HELO")
		blocked := make(chan error, 1)
		go func() {
			c, err := sub.Accept()
			if err == nil {
				c.Close()
				_, err = sub.Accept()
			}
			blocked <- err
		}()
		time.Sleep(200 * time.Millisecond)

		l.Close()
		r.Close()
		<-served
		<-blocked
	})
}

// TestAdaptersStressTCP passes 10,000 connections through a payload-aware
// listener, and 10,000 through a router, from concurrent clients, and
// checks that each matching one is accepted exactly once, by the right
// listener, and every other one rejected exactly once.
func TestAdaptersStressTCP(t *testing.T) {
	// Client i sends one of the prefixes, or "REJE", then its number, from
	// 127.0.0.1 or 127.0.0.2; the filters take 127.0.0.1 only.
	tests := []struct {
		name     string
		prefixes []string // a sub-listener each; one means a Listener
	}{
		{"Listener", []string{"ACCE"}},
		{"Router", []string{"ACCE", "BETA"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { stressTCP(t, tt.prefixes) })
	}
}

func stressTCP(t *testing.T, prefixes []string) {
	const total, workers = 10000, 32
	var matchers []*Matcher
	for _, p := range prefixes {
		// The payload first, so that rejected clients are known by it.
		matchers = append(matchers, compileOrSkip(t, fmt.Sprintf("tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x%x and src host 127.0.0.1", p)))
	}
	ln := listenLoopback(t, "127.0.0.1")

	var mu sync.Mutex
	acceptedBy := map[int][]int{} // client number: the listeners that accepted it
	rejected := map[int]int{}
	// Clients from 127.0.0.2 may be rejected on their address alone,
	// without reading, if the program looks at it first: those are counted.
	var addrRejects, otherRejects atomic.Int32
	idOf := func(b []byte) int {
		if len(b) < 12 {
			return -1
		}
		n, err := strconv.Atoi(string(b[4:12]))
		if err != nil {
			return -1
		}
		return n
	}
	// Fewer slots than clients: the bound is reached and released often.
	opts := []ListenerOption{WithPayload(13, 30*time.Second), WithMaxPending(16), WithRejectFunc(func(r Report) {
		switch {
		case !errors.Is(r.Reason, ErrRejected):
			otherRejects.Add(1)
			return
		case len(r.Packet.Payload) == 0 && r.Packet.Src.Addr().String() == "127.0.0.2":
			addrRejects.Add(1)
			return
		}
		mu.Lock()
		rejected[idOf(r.Packet.Payload)]++
		mu.Unlock()
	})}
	var listeners []net.Listener
	if len(matchers) == 1 {
		l, err := NewListener(ln, matchers[0], opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		listeners = append(listeners, l)
	} else {
		r := NewRouter(ln, opts...)
		defer r.Close()
		for _, m := range matchers {
			l, err := r.ListenMatcher(m)
			if err != nil {
				t.Fatal(err)
			}
			listeners = append(listeners, l)
		}
		go r.Serve()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	for k, l := range listeners {
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					buf := make([]byte, 13)
					if _, err := io.ReadFull(c, buf); err != nil {
						return
					}
					mu.Lock()
					acceptedBy[idOf(buf)] = append(acceptedBy[idOf(buf)], k)
					mu.Unlock()
					c.Write([]byte("OK\n"))
				}()
			}
		}()
	}

	// want returns the listener client i should reach, -1 for none.
	want := func(i int) (listener int, msg, from string) {
		listener, from = -1, "127.0.0.1"
		prefix := "REJE"
		if k := i%3 - 1; k >= 0 {
			prefix = []string{"ACCE", "BETA"}[k]
			if k < len(prefixes) {
				listener = k
			}
		}
		if i%7 == 0 {
			from, listener = "127.0.0.2", -1
		}
		return listener, fmt.Sprintf("%s%08d\n", prefix, i), from
	}
	start := time.Now()
	var next atomic.Int64
	var errCount atomic.Int32
	var clientWG sync.WaitGroup
	for w := 0; w < workers; w++ {
		clientWG.Add(1)
		go func() {
			defer clientWG.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				k, msg, from := want(i)
				if err := stressClient(ctx, ln.Addr(), from, msg, k >= 0); err != nil {
					if errCount.Add(1) <= 10 {
						t.Errorf("client %d: %v", i, err)
					}
				}
			}
		}()
	}
	clientWG.Wait()
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("stopped after %v: %d of %d clients done", elapsed, next.Load(), total)
	}
	// Clients see OK after the server counted; rejections are reported
	// after the connection is closed: wait for the last.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(acceptedBy) + len(rejected) + int(addrRejects.Load())
		mu.Unlock()
		if n >= total {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	counts := make([]int, len(listeners))
	wantRejected, fromOther := 0, 0
	for i := 0; i < total; i++ {
		k, _, from := want(i)
		got, r := acceptedBy[i], rejected[i]
		if from == "127.0.0.2" {
			fromOther++
			if addrRejects.Load() > 0 {
				r = 1 // counted, not named
			}
		}
		ok := len(got) == 1 && got[0] == k && r == 0
		if k < 0 {
			wantRejected++
			ok = len(got) == 0 && r == 1
		} else if ok {
			counts[k]++
		}
		if !ok && errCount.Add(1) <= 20 {
			t.Errorf("client %d (for listener %d): accepted by %v, rejected %d times", i, k, got, r)
		}
	}
	nRejected := len(rejected) + int(addrRejects.Load())
	if n := addrRejects.Load(); n != 0 && int(n) != fromOther {
		t.Errorf("%d clients rejected on their address alone, want 0 or %d", n, fromOther)
	}
	if nRejected != wantRejected || otherRejects.Load() != 0 {
		t.Errorf("%d rejected, %d rejected otherwise; want %d, 0", nRejected, otherRejects.Load(), wantRejected)
	}
	t.Logf("%d connections in %v (race detector %v): accepted %v by the listeners, %d rejected (%d on the address alone)",
		total, elapsed.Round(time.Millisecond), raceEnabled, counts, nRejected, addrRejects.Load())
}

// stressClient connects from from, sends msg, and expects "OK\n" back if
// accept, else the connection closed.
func stressClient(ctx context.Context, addr net.Addr, from, msg string, accept bool) error {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	got, err := io.ReadAll(c)
	if accept {
		if string(got) != "OK\n" {
			return fmt.Errorf("got %q, %v; want OK", got, err)
		}
		return nil
	}
	if len(got) != 0 || (err != nil && !errors.Is(err, syscall.ECONNRESET)) {
		return fmt.Errorf("got %q, %v; want the connection closed", got, err)
	}
	return nil
}

// TestListenerStats counts connections matched and rejected by a Listener
// with and without WithPayload, and by a Router.
func TestListenerStats(t *testing.T) {
	m := compileOrSkip(t, "src host 127.0.0.1")
	get := compileOrSkip(t, PayloadPrefix([]byte("GET ")))
	type statser interface{ Stats() ListenerStats }
	tests := []struct {
		name string
		make func(ln net.Listener) (net.Listener, statser)
		// what the clients from 127.0.0.1 and 127.0.0.2 send
		send [2]string
	}{
		{"SYN", func(ln net.Listener) (net.Listener, statser) {
			l, err := NewListener(ln, m)
			if err != nil {
				t.Fatal(err)
			}
			return l, l
		}, [2]string{"", ""}},
		{"payload", func(ln net.Listener) (net.Listener, statser) {
			l, err := NewListener(ln, get, WithPayload(4, 5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			return l, l
		}, [2]string{"GET /", "PUT /"}},
		{"router", func(ln net.Listener) (net.Listener, statser) {
			r := NewRouter(ln, WithPayload(4, 5*time.Second))
			l, err := r.ListenMatcher(get)
			if err != nil {
				t.Fatal(err)
			}
			go r.Serve()
			t.Cleanup(func() { r.Close() })
			return l, r
		}, [2]string{"GET /", "PUT /"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := listenLoopback(t, "127.0.0.1")
			l, s := tt.make(ln)
			defer l.Close()
			accepted := acceptAll(l)
			for round := 1; round <= 3; round++ {
				good := dialLoopback(t, "127.0.0.1", ln.Addr())
				io.WriteString(good, tt.send[0])
				bad := dialLoopback(t, "127.0.0.2", ln.Addr())
				io.WriteString(bad, tt.send[1])
				waitConn(t, accepted, 5*time.Second).Close()
				expectClosed(t, bad)
				want := ListenerStats{Accepted: uint64(2 * round), Matched: uint64(round), Rejected: uint64(round)}
				// The rejection is counted as the connection is closed;
				// give the counters a moment.
				deadline := time.Now().Add(5 * time.Second)
				for s.Stats() != want && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
				if got := s.Stats(); got != want {
					t.Fatalf("round %d: stats %+v, want %+v", round, got, want)
				}
			}
		})
	}
}

// TestWithPayloadStreamInPieces writes the first bytes in pieces, with
// pauses between them so that each is a segment of its own: WithPayload
// matches the stream's first bytes, not one segment, on IPv4 and IPv6.
func TestWithPayloadStreamInPieces(t *testing.T) {
	m := compileOrSkip(t, PayloadPrefix([]byte("GET / HTTP")))
	for _, lb := range loopbacks {
		t.Run(lb.name, func(t *testing.T) {
			ln := listenLoopback(t, lb.ip)
			l, err := NewListener(ln, m, WithPayload(10, 5*time.Second), WithTimeoutPolicy(RejectOnTimeout))
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			accepted := acceptAll(l)
			c := dialLoopback(t, "", ln.Addr())
			c.SetNoDelay(true)
			for _, piece := range []string{"GE", "T", " / ", "HTTP/1.1\r\n"} {
				if _, err := io.WriteString(c, piece); err != nil {
					t.Fatal(err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			sc := waitConn(t, accepted, 10*time.Second)
			defer sc.Close()
			buf := make([]byte, 10)
			if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "GET / HTTP" {
				t.Errorf("the connection handed out reads %q, %v; want the stream's first bytes", buf, err)
			}
		})
	}
}

// TestPayloadReachCaught checks that a filter reading more of the payload
// than the listener reads is refused when the Listener or the rule is
// made, saying what to add, and that filters within it are taken.
func TestPayloadReachCaught(t *testing.T) {
	long := PayloadPrefix([]byte("0123456789abcdefghij")) // 20 bytes
	tests := []struct {
		name    string
		expr    string
		link    LinkType
		opts    []ListenerOption
		wantErr string
	}{
		{"header filter, SYN", "tcp dst port 80 and src net 10.0.0.0/8", LinkEthernet, nil, ""},
		{"flags and length, SYN", "tcp[tcpflags] & tcp-syn != 0 and len < 100", LinkEthernet, nil, ""},
		{"GET without WithPayload", getFilter, LinkEthernet, nil, "add WithPayload(4, wait)"},
		{"GET without WithPayload, raw", getFilter, LinkRaw, nil, "add WithPayload(4, wait)"},
		{"IPv6 payload without WithPayload", "ip6[40 + ((ip6[52] & 0xf0) >> 2):2] = 0x4745", LinkEthernet, nil, "add WithPayload(2, wait)"},
		{"GET with WithPayload(4)", getFilter, LinkEthernet, []ListenerOption{WithPayload(4, time.Second)}, ""},
		{"GET with WithPayload(2)", getFilter, LinkEthernet, []ListenerOption{WithPayload(2, time.Second)}, "reads 4 payload bytes, but only 2 are read"},
		{"PayloadPrefix, SYN", PayloadPrefix([]byte("SSH-")), LinkEthernet, nil, "add WithPayload(4, wait)"},
		{"20-byte prefix, 16 read", long, LinkEthernet, []ListenerOption{WithPayload(16, time.Second)}, "use WithPayload(20, wait)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := compileOrSkip(t, tt.expr, WithLinkType(tt.link))
			l, err := NewListener(listenLoopback(t, "127.0.0.1"), m, tt.opts...)
			if l != nil {
				l.Close()
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("NewListener(%q): %v", tt.expr, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NewListener(%q): %v, want an error with %q", tt.expr, err, tt.wantErr)
			}
		})
	}
	// A Router reads DefaultPayloadBytes unless told otherwise.
	r := NewRouter(listenLoopback(t, "127.0.0.1"))
	defer r.Close()
	if _, err := r.Listen(long); err == nil || !strings.Contains(err.Error(), "use WithPayload(20, wait)") {
		t.Errorf("Router.Listen(%q) reading %d bytes: %v, want an error saying WithPayload(20, wait)", long, DefaultPayloadBytes, err)
	}
	if _, err := r.Listen(PayloadPrefix([]byte("GET "))); err != nil {
		t.Errorf("Router.Listen(PayloadPrefix(GET )): %v", err)
	}
}
