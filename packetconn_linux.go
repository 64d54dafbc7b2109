//go:build linux

package bpfmatch

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sysConn is the Linux receive path of a PacketConn over a *net.UDPConn:
// recvmsg with MSG_TRUNC, which returns a datagram's true length however
// much of it fits the buffer, and, on a socket bound to the unspecified
// address, the destination the kernel reports in an IP_PKTINFO or
// IPV6_PKTINFO control message.
type sysConn struct {
	rc        syscall.RawConn // nil: read through the net.UDPConn
	pktinfo   bool            // the socket reports each datagram's destination
	noRecvmsg atomic.Bool     // recvmsg failed with ENOSYS (linux/386 before 4.3)
	filtered  atomic.Bool     // a kernel filter is attached

	// spare holds the states of reads done, for the next: up to
	// len(spare) concurrent readers read without allocating.
	spare [4]atomic.Pointer[recvState]
}

// getState returns a spare read state, or a new one.
func (s *sysConn) getState() *recvState {
	for i := range s.spare {
		if st := s.spare[i].Swap(nil); st != nil {
			return st
		}
	}
	return newRecvState()
}

// putState keeps st for a later read, if there is room.
func (s *sysConn) putState(st *recvState) {
	for i := range s.spare {
		if s.spare[i].CompareAndSwap(nil, st) {
			return
		}
	}
}

// init prepares the receive path of u; wildcard tells whether u is bound
// to the unspecified address. Whatever fails leaves the path of package
// net in place.
func (s *sysConn) init(u *net.UDPConn, wildcard bool) {
	rc, err := u.SyscallConn()
	if err != nil {
		return
	}
	s.rc = rc
	if wildcard {
		s.pktinfo = enablePktinfo(rc)
	}
}

// direct reports whether datagrams are read with recvmsg.
func (s *sysConn) direct() bool { return s.rc != nil && !s.noRecvmsg.Load() }

// enablePktinfo asks the kernel for each datagram's destination address.
func enablePktinfo(rc syscall.RawConn) bool {
	ok := false
	err := rc.Control(func(fd uintptr) {
		domain, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
		if err != nil {
			return
		}
		switch domain {
		case unix.AF_INET:
			ok = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1) == nil
		case unix.AF_INET6:
			// IPv4 datagrams on a dual-stack socket come with an
			// IPV6_PKTINFO holding an IPv4-mapped address.
			ok = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1) == nil
		}
	})
	return ok && err == nil
}

// recv reads one datagram into b.
func (s *sysConn) recv(u *net.UDPConn, b []byte) (received, error) {
	if !s.direct() {
		n, src, err := u.ReadFromUDPAddrPort(b)
		return received{n: n, size: n, src: src}, err
	}
	st := s.getState()
	defer s.putState(st)
	st.iov.Base = nil
	if len(b) > 0 {
		st.iov.Base = &b[0]
	}
	st.iov.SetLen(len(b))
	err := s.rc.Read(st.fn)
	st.iov.Base = nil // not to keep b alive
	if err != nil {
		// The errors of net.UDPConn's reads: an *net.OpError whose Op is
		// "read", not the raw connection's "raw-read".
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "raw-read" {
			oe.Op = "read"
		}
		return received{}, err
	}
	switch st.errno {
	case 0:
	case unix.ENOSYS:
		if !s.noRecvmsg.Swap(true) && s.filtered.Load() {
			// Without MSG_TRUNC a datagram longer than the buffer is
			// matched with the length read, which the kernel filter
			// does not see: it could drop what user space accepts.
			_ = s.rc.Control(func(fd uintptr) {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DETACH_FILTER, 0)
			})
		}
		return s.recv(u, b)
	default:
		return received{}, &net.OpError{Op: "read", Net: u.LocalAddr().Network(), Source: u.LocalAddr(),
			Err: os.NewSyscallError("recvmsg", st.errno)}
	}
	r := received{n: min(st.n, len(b)), size: st.n, src: st.sender()}
	if s.pktinfo {
		r.dst = st.destination()
	}
	return r, nil
}

// oobLen is the room for control messages: an IPV6_PKTINFO takes 40 bytes
// on 64-bit systems; more leaves room for those others may have turned on.
const oobLen = 256

// recvState is what one recvmsg call reads into. Its fields point at each
// other, so it is made once and reused.
type recvState struct {
	msg  unix.Msghdr
	iov  unix.Iovec
	name unix.RawSockaddrInet6
	oob  [oobLen / 8]uint64 // aligned for the control messages' headers
	fn   func(fd uintptr) bool

	n     int // the datagram's length
	errno syscall.Errno
}

func newRecvState() *recvState {
	st := new(recvState)
	st.fn = st.recvmsg
	st.msg.Name = (*byte)(unsafe.Pointer(&st.name))
	st.msg.Iov = &st.iov
	st.msg.SetIovlen(1)
	st.msg.Control = (*byte)(unsafe.Pointer(&st.oob[0]))
	return st
}

// recvmsg reads a datagram from fd, returning false to wait for one.
func (st *recvState) recvmsg(fd uintptr) bool {
	for {
		st.msg.Namelen = unix.SizeofSockaddrInet6
		st.msg.SetControllen(oobLen)
		st.msg.Flags = 0
		n, _, errno := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&st.msg)), unix.MSG_TRUNC)
		switch errno {
		case 0:
			st.n, st.errno = int(n), 0
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		st.n, st.errno = 0, errno
		return true
	}
}

// sender returns the address the datagram came from, as net.UDPConn's
// ReadFromUDPAddrPort returns it.
func (st *recvState) sender() netip.AddrPort {
	switch st.name.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&st.name))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), netPort(&sa.Port))
	case unix.AF_INET6:
		a := netip.AddrFrom16(st.name.Addr)
		if st.name.Scope_id != 0 {
			a = a.WithZone(zoneName(st.name.Scope_id))
		}
		return netip.AddrPortFrom(a, netPort(&st.name.Port))
	}
	return netip.AddrPort{}
}

// netPort reads a port stored in network byte order.
func netPort(p *uint16) uint16 {
	return binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(p))[:])
}

// destination returns the destination address of the datagram's
// IP_PKTINFO or IPV6_PKTINFO control message, or the zero Addr.
func (st *recvState) destination() netip.Addr {
	oob := unsafe.Slice((*byte)(unsafe.Pointer(&st.oob[0])), oobLen)
	oob = oob[:min(int(st.msg.Controllen), oobLen)]
	hdrLen := unix.CmsgLen(0)
	for len(oob) >= hdrLen {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdrLen || l > len(oob) {
			break
		}
		data := oob[hdrLen:l]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			// struct in_pktinfo: ifindex, spec_dst, addr (the header's).
			return netip.AddrFrom4([4]byte(data[8:12]))
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			// struct in6_pktinfo: addr, ifindex.
			return netip.AddrFrom16([16]byte(data[:16]))
		}
		next := unix.CmsgSpace(l - hdrLen)
		if next >= len(oob) {
			break
		}
		oob = oob[next:]
	}
	return netip.Addr{}
}

// zones caches the names of interfaces by index, for the zones of IPv6
// link-local senders, as package net names them.
var zones struct {
	sync.Mutex
	names map[uint32]string
}

func zoneName(index uint32) string {
	zones.Lock()
	defer zones.Unlock()
	if name, ok := zones.names[index]; ok {
		return name
	}
	name := strconv.FormatUint(uint64(index), 10)
	if ifi, err := net.InterfaceByIndex(int(index)); err == nil {
		name = ifi.Name
	}
	if zones.names == nil {
		zones.names = make(map[uint32]string)
	}
	zones.names[index] = name
	return name
}

// attachKernelFilter attaches the relocated program to c's socket.
func (c *PacketConn) attachKernelFilter() kernelStatus {
	if c.udp == nil || c.sys.rc == nil {
		return kernelStatus{reason: "the inner connection is not a *net.UDPConn"}
	}
	if !c.sys.direct() {
		return kernelStatus{reason: "datagrams are not read with recvmsg, so their true length is unknown"}
	}
	prog, why := c.kernelFilterProgram(c.sys.pktinfo)
	if prog == nil {
		return kernelStatus{reason: why}
	}
	var serr error
	if err := c.sys.rc.Control(func(fd uintptr) { serr = attachFilter(int(fd), prog) }); err != nil {
		serr = err
	}
	if serr != nil {
		return kernelStatus{reason: "SO_ATTACH_FILTER: " + serr.Error()}
	}
	c.sys.filtered.Store(true)
	return kernelStatus{attached: true, reason: why}
}

// kernelDetached reports why an attached filter was detached since.
func (c *PacketConn) kernelDetached() string {
	if c.sys.filtered.Load() && c.sys.noRecvmsg.Load() {
		return "detached: recvmsg is not available, so datagrams' true lengths are unknown"
	}
	return ""
}
