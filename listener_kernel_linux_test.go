//go:build linux

package bpfmatch

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listenPlainTCP listens on 127.0.0.1 with a plain TCP socket, not
// Multipath TCP, which takes no socket filter.
func listenPlainTCP(t *testing.T) net.Listener {
	t.Helper()
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// freePort returns a TCP port of 127.0.0.1 nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// hasFilter reports whether c's socket has a socket filter attached.
func hasFilter(t *testing.T, c net.Conn) bool {
	t.Helper()
	// SO_GET_FILTER: 0 for no filter, else EINVAL (no room for it).
	switch n, err := sockoptInt(t, c.(syscall.Conn), unix.SO_GET_FILTER); err {
	case nil:
		return n != 0
	case unix.EINVAL: // a filter longer than the room given
		return true
	default:
		t.Fatalf("SO_GET_FILTER: %v", err)
		return false
	}
}

// sockoptInt returns the SOL_SOCKET option opt of c's socket.
func sockoptInt(t *testing.T, c syscall.Conn, opt int) (int, error) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	var gerr error
	if err := rc.Control(func(fd uintptr) { n, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, opt) }); err != nil {
		t.Fatal(err)
	}
	return n, gerr
}

// TestListenerKernelFilterLoopback proves, on loopback, that a Listener
// with WithListenerKernelFilter never sees the clients its filter drops
// (their dials time out, and Stats counts none of them) while the others
// connect and exchange data normally.
func TestListenerKernelFilterLoopback(t *testing.T) {
	badPort := freePort(t)
	cases := []struct {
		name      string
		expr      string
		payload   bool
		good, bad []string // client addresses "ip" or "ip:port"
	}{
		{"src host", "src host 127.0.0.1", false,
			[]string{"127.0.0.1", "127.0.0.1"}, []string{"127.0.0.2", "127.0.0.3"}},
		{"src host, payload", "src host 127.0.0.1", true,
			[]string{"127.0.0.1", "127.0.0.1"}, []string{"127.0.0.2"}},
		{"src port", fmt.Sprintf("tcp and not src port %d", badPort), false,
			[]string{"127.0.0.1", "127.0.0.2"}, []string{fmt.Sprintf("127.0.0.1:%d", badPort)}},
		{"src port, payload", fmt.Sprintf("tcp and not src port %d", badPort), true,
			[]string{"127.0.0.2"}, []string{fmt.Sprintf("127.0.0.2:%d", badPort)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Compile(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			opts := []ListenerOption{WithListenerKernelFilter()}
			if tc.payload {
				opts = append(opts, WithPayload(4, time.Second))
			}
			l, err := NewListener(listenPlainTCP(t), m, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if ok, why := l.KernelFilter(); !ok || why != "" {
				t.Fatalf("%q: KernelFilter() = %v, %q; want attached for all", tc.expr, ok, why)
			}
			conns := acceptAll(l)
			for _, from := range tc.bad {
				d := net.Dialer{Timeout: 300 * time.Millisecond, LocalAddr: tcpAddr(t, from)}
				c, err := d.Dial("tcp", l.Addr().String())
				if err == nil {
					c.Close()
					t.Errorf("%q: a client from %s connected", tc.expr, from)
				}
			}
			// Data the filter would not match, were it to read the payload,
			// and more than a segment of it.
			data := bytes.Repeat([]byte("\x00not GET, 127.0.0.2 "), 20000)
			for i, from := range tc.good {
				d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: tcpAddr(t, from)}
				c, err := d.Dial("tcp", l.Addr().String())
				if err != nil {
					t.Fatalf("%q: client %d from %s: %v", tc.expr, i, from, err)
				}
				defer c.Close()
				go func() {
					c.Write(data)
					c.(*net.TCPConn).CloseWrite()
				}()
				sc := waitConn(t, conns, 5*time.Second)
				defer sc.Close()
				inner := sc
				if nc, ok := sc.(interface{ NetConn() net.Conn }); ok {
					inner = nc.NetConn()
				}
				if hasFilter(t, inner) {
					t.Errorf("%q: the accepted connection from %s kept the listener's filter", tc.expr, from)
				}
				go func() {
					io.Copy(sc, sc) // echo
					sc.(interface{ CloseWrite() error }).CloseWrite()
				}()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				got, err := io.ReadAll(c)
				if err != nil || !bytes.Equal(got, data) {
					t.Errorf("%q: client from %s: echo of %d bytes: got %d, %v", tc.expr, from, len(data), len(got), err)
				}
			}
			st := l.Stats()
			if st.Accepted != uint64(len(tc.good)) || st.Matched != uint64(len(tc.good)) || st.Rejected != 0 {
				t.Errorf("%q: Stats() = %+v; want %d accepted and matched, none rejected (the kernel dropped the others)", tc.expr, st, len(tc.good))
			}
		})
	}
}

// tcpAddr parses "ip" or "ip:port".
func tcpAddr(t *testing.T, s string) *net.TCPAddr {
	t.Helper()
	if !strings.Contains(s, ":") {
		s += ":0"
	}
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestListenerKernelFilterDualStack checks a dual-stack listener, whose
// filter tests each segment's IP version: IPv4 and IPv6 clients are let
// in or dropped by their own family's program.
func TestListenerKernelFilterDualStack(t *testing.T) {
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp", "[::]:0")
	if err != nil {
		t.Skipf("no dual-stack listener: %v", err)
	}
	defer ln.Close()
	m, err := Compile("src host 127.0.0.1 or src host ::1")
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewListener(ln, m, WithListenerKernelFilter())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if ok, why := l.KernelFilter(); !ok || why != "" {
		t.Fatalf("KernelFilter() = %v, %q; want attached for both families", ok, why)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	conns := acceptAll(l)
	for _, tc := range []struct {
		from, to string
		ok       bool
	}{
		{"127.0.0.1", "127.0.0.1", true},
		{"127.0.0.2", "127.0.0.1", false},
		{"::1", "::1", true},
	} {
		d := net.Dialer{Timeout: 300 * time.Millisecond, LocalAddr: &net.TCPAddr{IP: net.ParseIP(tc.from)}}
		c, err := d.Dial("tcp", net.JoinHostPort(tc.to, fmt.Sprint(port)))
		if tc.ok != (err == nil) {
			t.Errorf("dial from %s to %s: %v; want success %v", tc.from, tc.to, err, tc.ok)
		}
		if err != nil {
			continue
		}
		defer c.Close()
		sc := waitConn(t, conns, 5*time.Second)
		defer sc.Close()
		if hasFilter(t, sc) {
			t.Errorf("the accepted connection from %s kept the listener's filter", tc.from)
		}
	}
	if st := l.Stats(); st.Accepted != 2 || st.Rejected != 0 {
		t.Errorf("Stats() = %+v; want 2 accepted, none rejected", st)
	}
}

// TestListenerKernelFilterRefused checks that a filter the kernel cannot
// be given, or a listener that takes none, leaves the filtering to user
// space, says why, and the listener works.
func TestListenerKernelFilterRefused(t *testing.T) {
	cases := []struct {
		name, expr string
		payload    bool
		mptcp      bool
		why        string
	}{
		{"payload", "tcp[20:4] = 0x74657374", true, false, "payload"},
		{"payload by offset", "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x74657374", true, false, "segment field"},
		{"flags", "tcp[13] & 2 != 0", false, false, "segment field"},
		{"ttl", "ip[8] < 200", false, false, "segment field"},
		{"mptcp", "src host 127.0.0.1", false, true, "Multipath TCP"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var inner net.Listener
			if tc.mptcp {
				var lc net.ListenConfig
				lc.SetMultipathTCP(true)
				ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				if !isMPTCP(t, ln) {
					t.Skip("the kernel gives no Multipath TCP listener (net.mptcp.enabled=0?)")
				}
				inner = ln
			} else {
				inner = listenPlainTCP(t)
			}
			m, err := Compile(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			opts := []ListenerOption{WithListenerKernelFilter()}
			if tc.payload {
				opts = append(opts, WithPayload(4, time.Second))
			}
			l, err := NewListener(inner, m, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			ok, why := l.KernelFilter()
			if ok || !strings.Contains(why, tc.why) {
				t.Errorf("%q: KernelFilter() = %v, %q; want not attached, for %q", tc.expr, ok, why, tc.why)
			}
			conns := acceptAll(l)
			c := dialLoopback(t, "127.0.0.1", l.Addr())
			if _, err := c.Write([]byte("test data")); err != nil {
				t.Fatal(err)
			}
			sc := waitConn(t, conns, 5*time.Second)
			defer sc.Close()
			buf := make([]byte, 9)
			sc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "test data" {
				t.Errorf("%q: read %q, %v", tc.expr, buf, err)
			}
		})
	}
}

// isMPTCP reports whether ln's socket is Multipath TCP.
func isMPTCP(t *testing.T, ln net.Listener) bool {
	t.Helper()
	proto, _ := sockoptInt(t, ln.(syscall.Conn), unix.SO_PROTOCOL)
	return proto == unix.IPPROTO_MPTCP
}
