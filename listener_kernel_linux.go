//go:build linux

package bpfmatch

import (
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// attachListenerFilter attaches m's program, relocated for the segments
// of TCP connections, to inner's socket.
func attachListenerFilter(inner net.Listener, m *Matcher) kernelStatus {
	sc, ok := inner.(syscall.Conn)
	if !ok {
		return kernelStatus{reason: fmt.Sprintf("the listener, a %T, has no SyscallConn method giving its socket", inner)}
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return kernelStatus{reason: "getting the listener's socket: " + err.Error()}
	}
	var st kernelStatus
	if err := rc.Control(func(fd uintptr) { st = attachListenerFD(int(fd), m) }); err != nil {
		return kernelStatus{reason: "reaching the listener's socket: " + err.Error()}
	}
	return st
}

func attachListenerFD(fd int, m *Matcher) kernelStatus {
	if proto, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL); err == nil && proto == unix.IPPROTO_MPTCP {
		return kernelStatus{reason: "the listener is Multipath TCP (Go's default on Linux), which takes no socket filter: listen with a net.ListenConfig after SetMultipathTCP(false)"}
	}
	domain, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return kernelStatus{reason: "SO_DOMAIN: " + err.Error()}
	}
	v4, v6 := domain == unix.AF_INET, domain == unix.AF_INET6
	if v6 {
		only, err := unix.GetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
		v4 = err != nil || only == 0 // unknown: the IPv4 part is let through
	}
	prog, why := listenerKernelProgram(m, v4, v6)
	if prog == nil {
		return kernelStatus{reason: why}
	}
	if err := attachFilter(fd, prog); err != nil {
		return kernelStatus{reason: "SO_ATTACH_FILTER: " + err.Error()}
	}
	return kernelStatus{attached: true, reason: why}
}

// detachKernelFilter detaches from c's socket the filter it inherited
// from its listener. It only saves running the filter on the segments of
// a connection it let in: its verdict is the same on every segment.
func detachKernelFilter(c net.Conn) {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = nc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DETACH_FILTER, 0)
	})
}
