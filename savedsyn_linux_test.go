//go:build linux

package bpfmatch

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// clientTTL is the TTL (IPv6 hop limit) the tests' clients set on their
// packets, so that a filter can tell a real SYN from a fake one (64).
const clientTTL = 33

// listenSavingSYN listens on ip with a plain TCP socket: Go's default
// listener is Multipath TCP where the kernel allows it, which does not
// save SYNs.
func listenSavingSYN(t testing.TB, ip string) net.Listener {
	t.Helper()
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		if strings.Contains(ip, ":") {
			t.Skipf("cannot listen on [%s]: %v", ip, err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dialTTL connects to addr with packets of TTL (hop limit) clientTTL and
// writes payload, if any.
func dialTTL(t testing.TB, addr net.Addr, payload string) *net.TCPConn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(network, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if strings.HasSuffix(network, "6") {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, clientTTL)
			} else {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TTL, clientTTL)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr.String())
	if err != nil {
		t.Fatalf("dial %v: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	if payload != "" {
		if _, err := c.Write([]byte(payload)); err != nil {
			t.Fatalf("write to %v: %v", addr, err)
		}
	}
	return c.(*net.TCPConn)
}

// checkSYNReport checks the report of a connection rejected on its real
// SYN, and that libpcap, where the build has it, rejects the SYN too.
func checkSYNReport(t *testing.T, m *Matcher, r Report, c net.Conn) {
	t.Helper()
	switch {
	case netip.AddrPortFrom(r.Remote.Addr().Unmap(), r.Remote.Port()).String() != c.LocalAddr().String():
		t.Errorf("rejected %v, want %v", r.Remote, c.LocalAddr())
	case !errors.Is(r.Reason, ErrRejected) || !r.Tested:
		t.Errorf("report %v, want ErrRejected on a tested packet", r)
	case r.SYN == nil:
		t.Errorf("report %v has no real SYN: the filter ran on the fake one", r)
	case synTTL(r.SYN) != clientTTL || r.Packet.TTL != clientTTL || r.Packet.Flags != SYN:
		t.Errorf("report %v: SYN %x with TTL %d, packet TTL %d flags %v; want TTL %d and SYN", r, r.SYN, synTTL(r.SYN), r.Packet.TTL, r.Packet.Flags, clientTTL)
	case !strings.Contains(r.String(), "real SYN"):
		t.Errorf("report %q does not say the SYN was real", r)
	}
	if oracle == nil || r.SYN == nil {
		return
	}
	off := 0
	if m.link == LinkEthernet {
		off = ethernetHeaderLen
	}
	frame, _, wire := frameSYN(append(make([]byte, off), r.SYN...), m.link)
	if want, either := oracle(m, frame, wire); want && !either {
		t.Errorf("libpcap matches %q on the SYN %x (wire %d) the listener rejected", m, frame, wire)
	}
}

// TestListenerRealSYN checks that a Listener on Linux matches the client's
// real SYN: filters that only it satisfies (options, the MSS option's
// value, the client's TTL, the wire length) accept, their negations
// reject with a report carrying the SYN.
func TestListenerRealSYN(t *testing.T) {
	tests := []struct {
		name   string
		family string
		expr   string
		link   LinkType
		want   bool
	}{
		{"options present", "IPv4", "tcp[12] & 0xf0 > 0x50", LinkEthernet, true},
		{"no options", "IPv4", "tcp[12] & 0xf0 = 0x50", LinkEthernet, false},
		{"MSS option", "IPv4", "tcp[20] = 2 and tcp[22:2] = 65495", LinkEthernet, true},
		{"not MSS option", "IPv4", "not (tcp[20] = 2 and tcp[22:2] = 65495)", LinkEthernet, false},
		{"client TTL", "IPv4", "ip[8] = 33", LinkEthernet, true},
		{"fake TTL", "IPv4", "ip[8] = 64", LinkEthernet, false},
		{"client TTL raw", "IPv4", "ip[8] = 33 and tcp[12] & 0xf0 > 0x50", LinkRaw, true},
		{"fake TTL raw", "IPv4", "ip[8] = 64", LinkRaw, false},
		{"fake window", "IPv4", "tcp[14:2] = 65535", LinkEthernet, false},
		{"SYN alone", "IPv4", "tcp[tcpflags] == tcp-syn", LinkEthernet, true},
		{"wire length", "IPv4", "len = ip[2:2] + 14 and ether src 02:00:00:00:00:01 and ether dst 02:00:00:00:00:02", LinkEthernet, true},
		{"wrong wire length", "IPv4", "len != ip[2:2] + 14", LinkEthernet, false},
		{"wire length raw", "IPv4", "len = ip[2:2]", LinkRaw, true},
		{"options present v6", "IPv6", "ip6[52] & 0xf0 > 0x50", LinkEthernet, true},
		{"no options v6", "IPv6", "ip6[52] & 0xf0 = 0x50", LinkEthernet, false},
		{"MSS option v6", "IPv6", "ip6[60] = 2 and ip6[62:2] = 65476", LinkEthernet, true},
		{"not MSS option v6", "IPv6", "not (ip6[60] = 2 and ip6[62:2] = 65476)", LinkEthernet, false},
		{"client hop limit", "IPv6", "ip6[7] = 33", LinkEthernet, true},
		{"fake hop limit", "IPv6", "ip6[7] = 64", LinkEthernet, false},
		{"client hop limit raw", "IPv6", "ip6[7] = 33 and tcp dst portrange 1024-65535", LinkRaw, true},
		{"fake hop limit raw", "IPv6", "ip6[7] = 64", LinkRaw, false},
		{"wire length v6", "IPv6", "len = ip6[4:2] + 54", LinkEthernet, true},
		{"wrong wire length v6", "IPv6", "len != ip6[4:2] + 54", LinkEthernet, false},
		// An IPv4 client of a listener on [::] sends an IPv4 SYN.
		{"client TTL dual-stack", "dual-stack", "ip[8] = 33 and tcp[20] = 2 and tcp[22:2] = 65495", LinkEthernet, true},
		{"fake TTL dual-stack", "dual-stack", "ip[8] = 64 or ip6", LinkEthernet, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := compileOrSkip(t, tt.expr, WithLinkType(tt.link))
			ip := "127.0.0.1"
			switch tt.family {
			case "IPv6":
				ip = "::1"
			case "dual-stack":
				ip = "::"
			}
			rejects, onReject := recordRejects()
			l, err := NewListener(listenSavingSYN(t, ip), m, onReject)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if err := l.RealSYN(); err != nil {
				t.Fatalf("RealSYN: %v, want nil on a plain TCP listener", err)
			}
			accepted := acceptAll(l)
			var to net.Addr = l.Addr()
			if tt.family == "dual-stack" {
				to = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: l.Addr().(*net.TCPAddr).Port}
			}
			c := dialTTL(t, to, "")
			if tt.want {
				select {
				case sc := <-accepted:
					sc.Close()
				case r := <-rejects:
					t.Fatalf("%q on %s: rejected, want accepted: %v, SYN %x", tt.expr, tt.family, r, r.SYN)
				case <-time.After(5 * time.Second):
					t.Fatal("no connection accepted in 5s")
				}
				return
			}
			r := waitReject(t, rejects, 5*time.Second)
			t.Logf("%q: %v, SYN %x", tt.expr, r, r.SYN)
			checkSYNReport(t, m, r, c)
			expectClosed(t, c)
		})
	}
}

// noSyscallListener hides the inner listener's SyscallConn method, as a
// wrapper without one would.
type noSyscallListener struct{ net.Listener }

// TestListenerFakeSYNFallback checks that where the kernel gives no SYN,
// the filter runs on the fake one and the report says so: a listener
// without SyscallConn, a Multipath TCP listener, and a listener on which
// TCP_SAVE_SYN was turned off after NewListener.
func TestListenerFakeSYNFallback(t *testing.T) {
	turnOff := func(t *testing.T, ln net.Listener) {
		rc, err := ln.(*net.TCPListener).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_SAVE_SYN, 0)
		}); err != nil {
			t.Fatal(err)
		}
		if serr != nil {
			t.Fatal(serr)
		}
	}
	listeners := []struct {
		name    string
		listen  func(t *testing.T, ip string) net.Listener
		after   func(t *testing.T, ln net.Listener) // after NewListener
		realErr string                              // in RealSYN's error; "" for nil
	}{
		{"no SyscallConn", func(t *testing.T, ip string) net.Listener {
			return noSyscallListener{listenSavingSYN(t, ip)}
		}, nil, "no SyscallConn"},
		{"Multipath TCP", func(t *testing.T, ip string) net.Listener {
			var lc net.ListenConfig
			lc.SetMultipathTCP(true)
			ln, err := lc.Listen(context.Background(), "tcp", net.JoinHostPort(ip, "0"))
			if err != nil {
				t.Skipf("cannot listen on %s: %v", ip, err)
			}
			t.Cleanup(func() { ln.Close() })
			if err := saveSYN(ln); err == nil {
				t.Skip("the kernel gave a plain TCP socket for Multipath TCP (net.mptcp.enabled = 0?)")
			}
			return ln
		}, nil, "Multipath TCP"},
		{"TCP_SAVE_SYN off", func(t *testing.T, ip string) net.Listener { return listenSavingSYN(t, ip) }, turnOff, ""},
	}
	filters := []struct {
		name string
		expr string
		want bool
	}{
		{"fake SYN", "(ip and tcp[12] & 0xf0 = 0x50 and ip[8] = 64 and tcp[14:2] = 65535) or (ip6 and ip6[52] & 0xf0 = 0x50 and ip6[7] = 64 and ip6[54:2] = 65535)", true},
		{"real SYN", "(ip and (tcp[12] & 0xf0 > 0x50 or ip[8] = 33)) or (ip6 and (ip6[52] & 0xf0 > 0x50 or ip6[7] = 33))", false},
	}
	for _, lt := range listeners {
		for _, fam := range loopbacks {
			for _, ft := range filters {
				t.Run(lt.name+"/"+fam.name+"/"+ft.name, func(t *testing.T) {
					m := compileOrSkip(t, ft.expr)
					ln := lt.listen(t, fam.ip)
					rejects, onReject := recordRejects()
					l, err := NewListener(ln, m, onReject)
					if err != nil {
						t.Fatal(err)
					}
					defer l.Close()
					switch err := l.RealSYN(); {
					case lt.realErr == "" && err != nil:
						t.Fatalf("RealSYN: %v, want nil", err)
					case lt.realErr != "" && (err == nil || !strings.Contains(err.Error(), lt.realErr)):
						t.Fatalf("RealSYN: %v, want an error saying %q", err, lt.realErr)
					}
					if lt.after != nil {
						lt.after(t, ln)
					}
					accepted := acceptAll(l)
					c := dialTTL(t, l.Addr(), "")
					if ft.want {
						select {
						case sc := <-accepted:
							sc.Close()
						case r := <-rejects:
							t.Fatalf("%q: rejected, want accepted: %v", ft.expr, r)
						case <-time.After(5 * time.Second):
							t.Fatal("no connection accepted in 5s")
						}
						return
					}
					r := waitReject(t, rejects, 5*time.Second)
					if r.SYN != nil || !r.Tested || !errors.Is(r.Reason, ErrRejected) || r.Packet.Flags != SYN || r.Packet.TTL != 0 {
						t.Errorf("report %v (SYN %x, tested %v, TTL %d): want the fake SYN rejected", r, r.SYN, r.Tested, r.Packet.TTL)
					}
					expectClosed(t, c)
				})
			}
		}
	}
}

// TestPayloadRealSYNHeaders checks the packet a payload-aware Listener and
// a Router match: the fake data segment, with the real SYN's TTL (hop
// limit) and none of its options; with the fake TTL where the kernel gave
// no SYN.
func TestPayloadRealSYNHeaders(t *testing.T) {
	get4, get6 := "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420", "ip6[40 + ((ip6[52] & 0xf0) >> 2):4] = 0x47455420"
	tests := []struct {
		name   string
		family string
		expr   string
		router bool
		plain  bool // over a listener without SyscallConn: no SYN
		want   bool
	}{
		{"client TTL", "IPv4", "ip[8] = 33 and " + get4, false, false, true},
		{"fake TTL", "IPv4", "ip[8] = 64 and " + get4, false, false, false},
		{"no SYN options", "IPv4", "tcp[12] & 0xf0 = 0x50 and tcp[13] = 0x18 and tcp[14:2] = 65535 and " + get4, false, false, true},
		{"SYN options", "IPv4", "tcp[12] & 0xf0 > 0x50 and " + get4, false, false, false},
		{"client hop limit", "IPv6", "ip6[7] = 33 and " + get6, false, false, true},
		{"fake hop limit", "IPv6", "ip6[7] = 64 and " + get6, false, false, false},
		{"no SYN options v6", "IPv6", "ip6[52] & 0xf0 = 0x50 and ip6[0:4] & 0xfffff = 0 and " + get6, false, false, true},
		{"router TTL", "IPv4", "ip[8] = 33", true, false, true},
		{"router TTL payload", "IPv4", "ip[8] = 33 and " + get4, true, false, true},
		{"router fake TTL", "IPv4", "ip[8] = 64", true, false, false},
		{"router hop limit", "IPv6", "ip6[7] = 33 and " + get6, true, false, true},
		{"fallback TTL", "IPv4", "ip[8] = 64 and " + get4, false, true, true},
		{"fallback client TTL", "IPv4", "ip[8] = 33", false, true, false},
		{"router fallback hop limit", "IPv6", "ip6[7] = 64 and " + get6, true, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := compileOrSkip(t, tt.expr)
			ip := "127.0.0.1"
			if tt.family == "IPv6" {
				ip = "::1"
			}
			var inner net.Listener = listenSavingSYN(t, ip)
			if tt.plain {
				inner = noSyscallListener{inner}
			}
			rejects, onReject := recordRejects()
			opts := []ListenerOption{WithPayload(4, 5*time.Second), WithTimeoutPolicy(RejectOnTimeout), onReject}
			var l net.Listener
			var realSYN error
			if tt.router {
				r := NewRouter(inner, opts...)
				rl, err := r.ListenMatcher(m)
				if err != nil {
					t.Fatal(err)
				}
				go r.Serve()
				defer r.Close()
				l, realSYN = rl, r.RealSYN()
			} else {
				fl, err := NewListener(inner, m, opts...)
				if err != nil {
					t.Fatal(err)
				}
				defer fl.Close()
				l, realSYN = fl, fl.RealSYN()
			}
			if (realSYN == nil) == tt.plain {
				t.Fatalf("RealSYN: %v, over a listener without SyscallConn: %v", realSYN, tt.plain)
			}
			accepted := acceptAll(l)
			c := dialTTL(t, l.Addr(), "GET / HTTP/1.0\r\n\r\n")
			if tt.want {
				select {
				case sc := <-accepted:
					sc.Close()
				case r := <-rejects:
					t.Fatalf("%q: rejected, want accepted: %v, SYN %x", tt.expr, r, r.SYN)
				case <-time.After(5 * time.Second):
					t.Fatal("no connection accepted in 5s")
				}
				return
			}
			r := waitReject(t, rejects, 5*time.Second)
			wantTTL := uint8(clientTTL)
			if tt.plain {
				wantTTL = 0
			}
			switch {
			case !errors.Is(r.Reason, ErrRejected) || !r.Tested:
				t.Errorf("report %v, want ErrRejected on a tested packet", r)
			case (r.SYN == nil) != tt.plain:
				t.Errorf("report %v has SYN %x, want one: %v", r, r.SYN, !tt.plain)
			case r.Packet.TTL != wantTTL || r.Packet.Flags != 0:
				t.Errorf("report %v: packet TTL %d flags %v, want TTL %d and the default flags", r, r.Packet.TTL, r.Packet.Flags, wantTTL)
			case r.SYN != nil && synTTL(r.SYN) != clientTTL:
				t.Errorf("report %v: SYN %x with TTL %d, want %d", r, r.SYN, synTTL(r.SYN), clientTTL)
			}
			expectClosed(t, c)
		})
	}
}

// TestRealSYNPayloadReach checks what NewListener refuses without
// WithPayload: over a listener whose SYNs the kernel saves, a filter may
// read the TCP options but not past the header; over one matching the
// fake SYN, which has no options, it may read neither.
func TestRealSYNPayloadReach(t *testing.T) {
	tests := []struct {
		name    string
		expr    string
		link    LinkType
		real    bool
		wantErr string // "" for none
	}{
		{"MSS option, real", "tcp[20] = 2 and tcp[22:2] = 65495", LinkEthernet, true, ""},
		{"last option byte, real", "tcp[59] = 0", LinkEthernet, true, ""},
		{"MSS option v6, real", "ip6[60] = 2 and ip6[62:2] = 65476", LinkRaw, true, ""},
		{"GET, real", getFilter, LinkEthernet, true, "add WithPayload(4, wait)"},
		{"GET raw, real", getFilter, LinkRaw, true, "add WithPayload(4, wait)"},
		{"IPv6 payload, real", "ip6[40 + ((ip6[52] & 0xf0) >> 2):2] = 0x4745", LinkEthernet, true, "add WithPayload(2, wait)"},
		{"PayloadPrefix, real", PayloadPrefix([]byte("SSH-")), LinkEthernet, true, "add WithPayload(4, wait)"},
		{"past the options, real", "tcp[60] = 0", LinkEthernet, true, "add WithPayload(1, wait)"},
		{"MSS option, fake", "tcp[20] = 2 and tcp[22:2] = 65495", LinkEthernet, false, "add WithPayload(4, wait)"},
		{"GET, fake", getFilter, LinkEthernet, false, "add WithPayload(4, wait)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := compileOrSkip(t, tt.expr, WithLinkType(tt.link))
			inner := listenSavingSYN(t, "127.0.0.1")
			if !tt.real {
				inner = noSyscallListener{inner}
			}
			l, err := NewListener(inner, m)
			if l != nil {
				if (l.RealSYN() == nil) != tt.real {
					t.Errorf("RealSYN: %v, want nil: %v", l.RealSYN(), tt.real)
				}
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
}
