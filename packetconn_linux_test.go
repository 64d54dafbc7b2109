//go:build linux

package bpfmatch

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

// TestPacketConnRecvmsgErrors checks that the errors of reads with
// recvmsg are those net.UDPConn's reads return: a timeout and a closed
// connection, as *net.OpError whose Op is "read".
func TestPacketConnRecvmsgErrors(t *testing.T) {
	m := compileOrSkip(t, "udp")
	inner := listenUDP(t, "udp4", "0.0.0.0:0")
	pc, err := NewPacketConn(inner, m)
	if err != nil {
		t.Fatal(err)
	}
	if !pc.sys.direct() || !pc.sys.pktinfo {
		t.Fatalf("direct %v, pktinfo %v: want recvmsg and IP_PKTINFO on a socket bound to 0.0.0.0", pc.sys.direct(), pc.sys.pktinfo)
	}
	buf := make([]byte, 10)
	reads := []struct {
		name string
		read func() error
	}{
		{"UDPConn.ReadFrom", func() error { _, _, err := inner.ReadFrom(buf); return err }},
		{"ReadFrom", func() error { _, _, err := pc.ReadFrom(buf); return err }},
		{"ReadFromUDPAddrPort", func() error { _, _, err := pc.ReadFromUDPAddrPort(buf); return err }},
	}
	check := func(state string, is error) {
		var want string
		for _, r := range reads {
			err := r.read()
			var oe *net.OpError
			if !errors.As(err, &oe) || oe.Op != "read" || !errors.Is(err, is) {
				t.Errorf("%s: %s: %v (%T), want a *net.OpError reading, wrapping %v", state, r.name, err, err, is)
				continue
			}
			if want == "" {
				want = err.Error()
			} else if err.Error() != want {
				t.Errorf("%s: %s: %q, UDPConn's: %q", state, r.name, err, want)
			}
		}
	}
	pc.SetReadDeadline(time.Now().Add(-time.Second))
	check("deadline passed", os.ErrDeadlineExceeded)
	pc.Close()
	check("closed", net.ErrClosed)
}

// TestPacketConnRecvmsgFallback checks the path taken when the kernel has
// no recvmsg system call (linux/386 before 4.3): package net's reads, with
// neither true lengths nor destinations, as on other systems.
func TestPacketConnRecvmsgFallback(t *testing.T) {
	m := compileOrSkip(t, "dst host 0.0.0.0 and less 100")
	inner := listenUDP(t, "udp4", "0.0.0.0:0")
	pc, err := NewPacketConn(inner, m)
	if err != nil {
		t.Fatal(err)
	}
	pc.sys.noRecvmsg.Store(true)
	client := dialUDP(t, "", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), localAddrPort(pc).Port()))
	client.Write(make([]byte, 1000))
	pc.SetReadDeadline(time.Now().Add(readWait(true)))
	buf := make([]byte, 20)
	n, from, err := pc.ReadFrom(buf)
	if err != nil || n != len(buf) || from.String() != client.LocalAddr().String() {
		t.Errorf("ReadFrom = %d, %v, %v; want %d bytes from %v", n, from, err, len(buf), client.LocalAddr())
	}
	if st := pc.Stats(); st != (PacketStats{Received: 1, Matched: 1}) {
		t.Errorf("stats %+v, want 1 received and matched, none truncated", st)
	}
}

// BenchmarkPacketConnRecvmsg compares a write and a matched read through
// recvmsg (with the destination, on a socket bound to 0.0.0.0; without, on
// one bound to 127.0.0.1) with the same through package net's read
// (neither length nor destination).
func BenchmarkPacketConnRecvmsg(b *testing.B) {
	for _, path := range []string{"net", "recvmsg", "recvmsg-bound"} {
		b.Run(path, func(b *testing.B) {
			m := compileOrSkip(b, "udp and src net 127.0.0.0/8 and udp[8] = 0x50")
			addr := "0.0.0.0:0"
			if path == "recvmsg-bound" {
				addr = "127.0.0.1:0"
			}
			inner := listenUDP(b, "udp4", addr)
			pc, err := NewPacketConn(inner, m)
			if err != nil {
				b.Fatal(err)
			}
			pc.sys.noRecvmsg.Store(path == "net")
			client := dialUDP(b, "", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), localAddrPort(pc).Port()))
			msg, buf := make([]byte, 100), make([]byte, 1500)
			msg[0] = 0x50
			b.ReportAllocs()
			for b.Loop() {
				client.Write(msg)
				if n, _, err := pc.ReadFromUDPAddrPort(buf); err != nil || n != len(msg) {
					b.Fatalf("read %d, %v", n, err)
				}
			}
		})
	}
}

// TestPacketConnReadPacket reads, on a wildcard-bound socket, the packets
// datagrams matched as: each with the destination it was sent to, with
// no allocation.
func TestPacketConnReadPacket(t *testing.T) {
	m := compileOrSkip(t, "udp and dst net 127.0.0.0/8")
	inner := listenUDP(t, "udp4", "0.0.0.0:0")
	pc, err := NewPacketConn(inner, m)
	if err != nil {
		t.Fatal(err)
	}
	port := localAddrPort(inner).Port()
	buf := make([]byte, 64)
	for _, to := range []string{"127.0.0.1", "127.0.0.2", "127.3.4.5"} {
		c := dialUDP(t, "127.0.0.1", netip.AddrPortFrom(netip.MustParseAddr(to), port))
		c.Write([]byte("ping " + to))
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, p, err := pc.ReadPacket(buf)
		if err != nil {
			t.Fatal(err)
		}
		if p.Dst.Addr().Unmap().String() != to || p.Dst.Port() != port || string(p.Payload) != "ping "+to || n != len(p.Payload) || p.Protocol != UDP {
			t.Errorf("datagram to %s: read %d bytes, packet %v %q; want it sent to %s:%d", to, n, p, p.Payload, to, port)
		}
	}
	if raceEnabled {
		return
	}
	c := dialUDP(t, "127.0.0.1", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port))
	allocs := testing.AllocsPerRun(50, func() {
		c.Write([]byte("x"))
		if _, _, err := pc.ReadPacket(buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("ReadPacket allocates %v times per datagram, want 0", allocs)
	}
}
