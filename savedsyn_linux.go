//go:build linux

package bpfmatch

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// saveSYN asks the kernel to keep the SYN of each connection inner
// accepts (TCP_SAVE_SYN), and returns nil if it will, else why not.
func saveSYN(inner net.Listener) error {
	sc, ok := inner.(syscall.Conn)
	if !ok {
		return fmt.Errorf("the listener, a %T, has no SyscallConn method giving its socket", inner)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("getting the listener's socket: %w", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		if proto, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PROTOCOL); err == nil && proto == unix.IPPROTO_MPTCP {
			serr = errors.New("the listener is Multipath TCP (Go's default on Linux), on which the kernel does not save SYNs: listen with a net.ListenConfig after SetMultipathTCP(false)")
			return
		}
		// 1: the network and TCP headers.
		if err := unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_SAVE_SYN, 1); err != nil {
			serr = fmt.Errorf("setting TCP_SAVE_SYN on the listener: %w", err)
		}
	}); err != nil {
		return fmt.Errorf("reaching the listener's socket: %w", err)
	}
	return serr
}

// maxSavedSYN bounds the SYN read: IPv4 and TCP headers take at most 120
// bytes, IPv6 extension headers more.
const maxSavedSYN = 64 << 10

// savedSYN reads the SYN the kernel saved for c (TCP_SAVED_SYN, which the
// kernel frees once read) into a new buffer at offset off, leaving room
// for a link header, and returns the buffer; nil if there is none.
func savedSYN(c net.Conn, off int) []byte {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	var buf []byte
	size := 256
	_ = rc.Control(func(fd uintptr) {
		for {
			b := make([]byte, off+size)
			n := uint32(size)
			_, _, e := syscall.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.IPPROTO_TCP, unix.TCP_SAVED_SYN,
				uintptr(unsafe.Pointer(&b[off])), uintptr(unsafe.Pointer(&n)), 0)
			switch {
			case e == syscall.EINVAL && int(n) > size && n <= maxSavedSYN:
				size = int(n) // the buffer was too small; n is the SYN's length
				continue
			case e != 0 || n == 0 || int(n) > size:
				return
			}
			buf = b[:off+int(n)]
			return
		}
	})
	return buf
}
