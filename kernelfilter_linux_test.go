//go:build linux

package bpfmatch

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// socketDrops returns the datagrams the socket of u dropped (sk_drops:
// those its filter rejected, and overflows), from SO_MEMINFO.
func socketDrops(t testing.TB, u *net.UDPConn) uint32 {
	rc, err := u.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info [9]uint32 // SK_MEMINFO_VARS; SK_MEMINFO_DROPS is the last
	var errno unix.Errno
	err = rc.Control(func(fd uintptr) {
		l := uint32(unsafe.Sizeof(info))
		_, _, errno = unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&l)), 0)
	})
	if err != nil || errno != 0 {
		t.Fatalf("SO_MEMINFO: %v %v", err, errno)
	}
	return info[8]
}

// loopSender is a socket datagrams are sent from.
type loopSender struct {
	u    *net.UDPConn
	addr netip.AddrPort
}

// loopSenders binds a grid of senders: addresses of 127.0.0.0/8 and ::1,
// each on ports that filters test; a port taken is left out.
func loopSenders(t *testing.T) (v4, v6 []loopSender) {
	for _, a := range []string{"127.0.0.1", "127.0.0.2", "127.1.2.3", "127.255.0.9", "::1"} {
		for _, port := range []uint16{53, 123, 5353, 40001} {
			ap := netip.AddrPortFrom(netip.MustParseAddr(a), port)
			u, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
			if err != nil {
				t.Logf("sender %v left out: %v", ap, err)
				continue
			}
			t.Cleanup(func() { u.Close() })
			if ap.Addr().Is4() {
				v4 = append(v4, loopSender{u, ap})
			} else {
				v6 = append(v6, loopSender{u, ap})
			}
		}
	}
	if len(v4) == 0 || len(v6) == 0 {
		t.Skip("cannot bind senders on loopback (IPv4 and IPv6)")
	}
	return v4, v6
}

// TestKernelFilterLoopback proves the relocated programs in the kernel:
// for every corpus expression whose program is offloaded, a PacketConn
// with WithKernelFilter on a socket bound to 127.0.0.1, to ::1, to
// 0.0.0.0 and on [::] receives datagrams from a grid of senders, destinations and
// payloads; what the kernel lets through (read from the inner socket,
// the rest counted in the socket's drops) must be exactly what the
// matcher accepts, but for short Ethernet IPv4 datagrams (whose padding
// the kernel cannot see) and families the filter does not cover, which
// it lets through.
func TestKernelFilterLoopback(t *testing.T) {
	exprs, links := corpusKernelExprs(t)
	// Hand-picked ones besides: the padding of short frames, lengths,
	// the destination, fields the fake packet fixes, mixed loads.
	for _, e := range []string{"udp[8] = 0", "udp[8:2] = 0x1234", "udp[16] = 0", "len = 60", "len > 60", "less 61",
		"ip[2:2] = 28", "ip[2:2] > 40", "ip[0:4] & 0xffff = 29", "dst host 127.0.0.2", "dst host 127.0.0.1 or ip6",
		"ip[8] = 64 and src host 127.1.2.3", "ip6[7] = 64 and ip6[4:2] = 8", "udp[0:4] & 0xffff0000 = 0x00350000",
		"ip[1] = 0 and udp[4:2] = 9", "udp[10:4] = 0x686f7274"} {
		for _, l := range []LinkType{LinkEthernet, LinkRaw} {
			exprs, links = append(exprs, e), append(links, l)
		}
	}
	v4s, v6s := loopSenders(t)
	payloads := [][]byte{{}, {1}, []byte("\x12\x34\x00\x01short"), make([]byte, 17), make([]byte, 18), make([]byte, 100)}
	for i := range payloads[5] {
		payloads[5][i] = byte(i * 7)
	}
	if raceEnabled || testing.Short() {
		// A sample of the grid: the race detector makes each read slow.
		payloads = [][]byte{{}, []byte("\x12\x34\x00\x01short"), payloads[5]}
		var some []loopSender
		for i, s := range v4s {
			if i%2 == 0 || s.addr.Port() == 53 {
				some = append(some, s)
			}
		}
		v4s = some
	}
	cases := []struct {
		name  string
		bind  string
		dsts4 []string
		dsts6 []string
	}{
		{"IPv4 bound", "127.0.0.1:0", []string{"127.0.0.1"}, nil},
		{"IPv6 bound", "[::1]:0", nil, []string{"::1"}},
		{"IPv4 wildcard", "0.0.0.0:0", []string{"127.0.0.1", "127.0.0.2"}, nil},
		{"wildcard", "[::]:0", []string{"127.0.0.1", "127.0.0.2"}, []string{"::1"}},
	}
	buf := make([]byte, 2048)
	for _, c := range cases {
		var sockets, notAttached, sent, delivered, dropped, wrong, shortExtra, uncovered int
		for i, e := range exprs {
			m, err := Compile(e, WithLinkType(links[i]))
			if err != nil {
				continue
			}
			network := "udp"
			if !strings.HasPrefix(c.bind, "[") {
				network = "udp4" // "udp" on 0.0.0.0 would be dual-stack
			}
			u, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(c.bind)))
			if err != nil {
				t.Fatal(err)
			}
			pc, err := NewPacketConn(u, m, WithKernelFilter())
			if err != nil {
				u.Close()
				t.Fatal(err)
			}
			attached, why := pc.KernelFilter()
			if !attached {
				notAttached++
				if why == "" {
					t.Errorf("%s, %q: no filter attached and no reason", c.name, e)
				}
				pc.Close()
				continue
			}
			sockets++
			port := netip.MustParseAddrPort(u.LocalAddr().String()).Port()
			// The families the filter covers.
			t4, t6 := pc.kernelTargets(pc.sys.pktinfo)
			covered := func(v6 bool) bool {
				tg := t4
				if v6 {
					tg = t6
				}
				if tg == nil {
					return false
				}
				_, err := kernelProgram(m, *tg)
				return err == nil
			}
			for _, fam := range []struct {
				senders []loopSender
				dsts    []string
				v6      bool
			}{{v4s, c.dsts4, false}, {v6s, c.dsts6, true}} {
				cov := covered(fam.v6)
				for _, d := range fam.dsts {
					dst := netip.AddrPortFrom(netip.MustParseAddr(d), port)
					type key struct {
						src netip.AddrPort
						n   int
					}
					want := map[key]bool{}
					before := socketDrops(t, u)
					n := 0
					for _, s := range fam.senders {
						for _, p := range payloads {
							ok, err := m.Match(FakePacket{Src: s.addr, Dst: dst, Protocol: UDP, Payload: p})
							if err != nil {
								t.Fatal(err)
							}
							want[key{s.addr, len(p)}] = ok
							if _, err := s.u.WriteToUDPAddrPort(p, dst); err != nil {
								t.Fatal(err)
							}
							n++
						}
					}
					sent += n
					// Read what the kernel let through until every datagram
					// is read or dropped.
					got := 0
					deadline := time.Now().Add(5 * time.Second)
					for got+int(socketDrops(t, u)-before) < n {
						u.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
						k, src, err := u.ReadFromUDPAddrPort(buf)
						if errors.Is(err, os.ErrDeadlineExceeded) {
							if time.Now().After(deadline) {
								t.Fatalf("%s, %q: %d of %d datagrams read or dropped", c.name, e, got+int(socketDrops(t, u)-before), n)
							}
							continue
						}
						if err != nil {
							t.Fatal(err)
						}
						got++
						src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
						kk := key{src, k}
						ok, seen := want[kk]
						if !seen {
							t.Fatalf("%s, %q: unexpected datagram from %v, %d bytes", c.name, e, src, k)
						}
						delete(want, kk)
						short := links[i] == LinkEthernet && !fam.v6 && k < minEthernetFrame-42
						switch {
						case ok:
						case !cov:
							uncovered++
						case short:
							shortExtra++
						default:
							wrong++
							t.Errorf("%s, %q: the kernel let through %v -> %v, %d bytes, which the matcher rejects", c.name, e, src, dst, k)
						}
					}
					delivered += got
					for kk, ok := range want {
						dropped++
						if ok {
							wrong++
							t.Errorf("%s, %q: the kernel dropped %v -> %v, %d bytes, which the matcher accepts", c.name, e, kk.src, dst, kk.n)
						}
					}
				}
			}
			pc.Close()
		}
		t.Logf("%s: %d sockets filtered (%d not), %d datagrams sent, %d let through, %d dropped in the kernel; let through and rejected by the matcher: %d short Ethernet IPv4, %d of a family the filter does not cover; %d wrong",
			c.name, sockets, notAttached, sent, delivered, dropped, shortExtra, uncovered, wrong)
		if sockets == 0 || dropped == 0 || delivered == 0 {
			t.Errorf("%s: nothing filtered, dropped or let through: the test proves nothing", c.name)
		}
	}
}

// threadCPU returns the CPU time the calling thread has used.
func threadCPU(tb testing.TB) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processCPU returns the CPU time the process has used.
func processCPU(tb testing.TB) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkKernelFilter floods a PacketConn on loopback with datagrams
// from ten source ports, of which the filter (a source port) keeps one in
// ten, with the filter in user space and in the kernel. Datagrams are
// sent in batches of 500, each read once it is queued, as a receiver that
// cannot keep up reads. An op is one datagram sent. rx-cpu-ns/dgram is the CPU the receiving thread spent,
// locked to its goroutine, per datagram sent; cpu-ns/dgram the whole
// process's, the sender's and the kernel's filtering (done as the sender
// sends, on loopback) included.
func BenchmarkKernelFilter(b *testing.B) {
	for _, kernel := range []bool{false, true} {
		name := "user"
		if kernel {
			name = "kernel"
		}
		b.Run(name, func(b *testing.B) { benchKernelFilter(b, kernel) })
	}
}

func benchKernelFilter(b *testing.B, kernel bool) {
	const senders, batch = 10, 500
	var out []*net.UDPConn
	for range senders {
		u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		defer u.Close()
		out = append(out, u)
	}
	keep := out[0].LocalAddr().(*net.UDPAddr).Port
	m := MustCompile(fmt.Sprintf("udp and src port %d", keep))
	u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	u.SetReadBuffer(4 << 20)
	var opts []PacketConnOption
	if kernel {
		opts = append(opts, WithKernelFilter())
	}
	pc, err := NewPacketConn(u, m, opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	if ok, why := pc.KernelFilter(); ok != kernel {
		b.Fatalf("kernel filter attached %v (%s), want %v", ok, why, kernel)
	}
	dst := u.LocalAddr().(*net.UDPAddr).AddrPort()
	n := (b.N + batch - 1) / batch * batch
	payload := make([]byte, 64)

	type result struct {
		cpu time.Duration
		err error
	}
	done := make(chan result, 1)
	// The receiver drains each batch once it is queued, as a receiver
	// that a flood keeps busy reads: without waiting between datagrams.
	progress, ready := make(chan struct{}, 1), make(chan struct{}, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		buf := make([]byte, 2048)
		start := threadCPU(b)
		for got := 0; got < n/senders; got++ {
			if got%(batch/senders) == 0 {
				<-ready
			}
			pc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, _, err := pc.ReadFromUDPAddrPort(buf); err != nil {
				done <- result{err: err}
				return
			}
			if (got+1)%(batch/senders) == 0 {
				progress <- struct{}{}
			}
		}
		done <- result{cpu: threadCPU(b) - start}
	}()
	cpu0 := processCPU(b)
	b.ResetTimer()
	for sent := 0; sent < n; sent += batch {
		for i := range batch {
			if _, err := out[i%senders].WriteToUDPAddrPort(payload, dst); err != nil {
				b.Fatal(err)
			}
		}
		ready <- struct{}{}
		select {
		case <-progress:
		case r := <-done:
			b.Fatalf("the receiver stopped: %v", r.err)
		}
	}
	r := <-done
	b.StopTimer()
	if r.err != nil {
		b.Fatal(r.err)
	}
	cpu := processCPU(b) - cpu0
	b.ReportMetric(float64(r.cpu.Nanoseconds())/float64(n), "rx-cpu-ns/dgram")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/dgram")
	st := pc.Stats()
	b.ReportMetric(float64(st.Received)/float64(n), "read/dgram")
}
