package bpfmatch

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/net/bpf"
)

// PacketStats counts the datagrams a PacketConn has read from its inner
// connection. Each datagram is counted once, in Matched or in Dropped,
// after it has been matched; Received is their sum. Truncated counts those
// of them, matched or dropped, that were longer than the buffer they were
// read into, where the system says so (on Linux, for a *net.UDPConn); it
// stays 0 elsewhere.
type PacketStats struct {
	Received  uint64 // datagrams read from the inner connection
	Matched   uint64 // returned by ReadFrom
	Dropped   uint64 // not matched, or whose packet could not be built
	Truncated uint64 // longer than the read buffer (Linux only)
}

// A PacketConnOption changes how NewPacketConn matches datagrams.
type PacketConnOption func(*packetConnOptions)

type packetConnOptions struct {
	local  []netip.Addr
	onDrop func(Report)
	kernel bool
}

// WithLocalAddr sets the destination address of the packets datagrams are
// matched as, for the datagrams of its family (IPv4, IPv4-mapped addresses
// included, or IPv6), in place of the socket's local address; the port
// stays the socket's. Use it on a socket bound to the unspecified address
// (0.0.0.0 or ::) on systems where a datagram's true destination is
// unknown: give the address clients send to, once for IPv4 and once for
// IPv6 on a dual-stack socket. Where the kernel reports each datagram's
// destination (Linux, a *net.UDPConn), that destination is used and
// WithLocalAddr only applies to datagrams it did not report one for.
func WithLocalAddr(a netip.Addr) PacketConnOption {
	return func(o *packetConnOptions) { o.local = append(o.local, a) }
}

// WithKernelFilter asks NewPacketConn to attach the matcher's program, as
// a socket filter (SO_ATTACH_FILTER), to the socket of a *net.UDPConn on
// Linux, so that datagrams that cannot match are dropped in the kernel
// without reaching user space. ReadFrom still matches what the kernel lets
// through exactly as without it: the kernel filter only saves the trip of
// datagrams that would be dropped.
//
// The program is relocated for the socket: specialised over what its fake
// packets all share (the link header, the IP fields a fake packet fixes,
// the local port, and the local address unless the socket is bound to the
// unspecified address and the kernel reports each datagram's destination,
// which is then read from the datagram's IP header), its other loads moved
// to the same bytes of the real datagram, its lengths computed from the
// datagram's, and its accept value raised so that the kernel truncates
// nothing. A program that reads what the real datagram does not hold as
// the fake packet does is not offloaded: a checksum, a load whose offset
// the headers do not fix, a load mixing fixed and real bytes, a loop
// (protochain), or a program past the kernel's 4096 instructions. Short
// datagrams whose fake Ethernet frame would be padded, when the program
// reads the padding, are let through to user space. On a dual-stack socket
// each family's program is relocated on its own behind a test of the IP
// version; a family whose program is not offloaded is let through whole.
//
// Whether a filter was attached, and why not, is not an error of
// NewPacketConn: PacketConn.KernelFilter reports it. Outside Linux, and
// over an inner connection that is not a *net.UDPConn, the option does
// nothing but say so there. Datagrams the kernel drops are not read, so
// Stats does not count them and the drop function does not see them.
func WithKernelFilter() PacketConnOption {
	return func(o *packetConnOptions) { o.kernel = true }
}

// WithDropFunc sets a function called with a Report of each datagram
// dropped: its sender, the packet tested (the datagram its payload, valid
// only during the call) and the reason, ErrRejected if the filter did not
// match, else why its packet could not be built; the payload of a
// datagram longer than the read buffer is the part read. It is called by
// ReadFrom, before it reads the next datagram, and should return quickly.
func WithDropFunc(f func(Report)) PacketConnOption {
	return func(o *packetConnOptions) { o.onDrop = f }
}

// PacketConn is a net.PacketConn whose ReadFrom returns only the datagrams
// a filter matches, silently dropping the others. Make one with
// NewPacketConn.
//
// A datagram is matched as the UDP packet from its sender, the address the
// inner ReadFrom returns, to the socket's local address, with the datagram
// as payload.
//
// The destination: on Linux, over a *net.UDPConn bound to the unspecified
// address (0.0.0.0 or ::), the PacketConn turns on IP_PKTINFO (IPv4
// socket) or IPV6_RECVPKTINFO (IPv6 or dual-stack socket) and matches each
// datagram with the destination address the kernel reports for it, the
// port being the socket's. Elsewhere, and for datagrams the kernel reports
// no destination for, the destination of a wildcard-bound socket is that
// unspecified address, 0.0.0.0 for IPv4 senders on a dual-stack socket,
// unless WithLocalAddr names one: filters on the destination host then see
// the unspecified address (dst port works).
//
// The length: on Linux, over a *net.UDPConn, datagrams are read with
// recvmsg and MSG_TRUNC, which tells a datagram's true length when it is
// longer than the buffer given to ReadFrom. Such a datagram is matched as a
// capture with a short snap length would hold it: the bytes read are the
// captured payload, and the lengths (the IP and UDP length fields and the
// wire length that len, greater and less test) are the true ones; its UDP
// checksum, over bytes never read, is not the one it carried. Stats counts
// it in Truncated. Elsewhere a datagram longer than the buffer is matched
// truncated, as the inner connection returns it, with the length of what
// was read, and Truncated stays 0.
//
// The kernel filter: with WithKernelFilter, on Linux, a relocated copy of
// the filter is attached to the socket, which drops datagrams that cannot
// match before they are read; KernelFilter reports whether it was and why
// not.
//
// WriteTo, the deadlines, LocalAddr and Close are those of the inner
// connection; a read deadline applies to ReadFrom as a whole, datagrams
// dropped included. ReadFrom allocates nothing beyond what the inner
// ReadFrom does; ReadFromUDPAddrPort, on a *net.UDPConn, allocates nothing
// (on Linux, while at most four goroutines read at once: a read that
// starts while four others are in progress may allocate its recvmsg
// state, about 400 bytes). Both may be called from several goroutines at
// once.
type PacketConn struct {
	inner      net.PacketConn
	udp        *net.UDPConn // inner, if it is one
	sys        sysConn      // the system's receive path over udp
	m          *Matcher
	port       uint16         // the local port
	dst4, dst6 netip.AddrPort // destinations by the sender's family; zero if none
	onDrop     func(Report)
	kernel     kernelStatus

	matched, dropped, truncated atomic.Uint64
}

// received is one datagram read: n bytes of it into the buffer, out of
// size, from src, to dst if the system said (else the zero Addr).
type received struct {
	n, size int
	src     netip.AddrPort
	dst     netip.Addr
}

// errNoDst is the reason for a datagram from a family the socket has no
// address of, which it should not receive.
var errNoDst = fmt.Errorf("%w: the socket has no local address of the sender's family", ErrAddressFamily)

// NewPacketConn returns a PacketConn reading the datagrams of inner that m
// matches. inner's local address must be a *net.UDPAddr; the PacketConn
// takes inner's place: closing it closes inner. On Linux, if inner is a
// *net.UDPConn bound to the unspecified address, NewPacketConn sets
// IP_PKTINFO or IPV6_RECVPKTINFO on its socket.
func NewPacketConn(inner net.PacketConn, m *Matcher, opts ...PacketConnOption) (*PacketConn, error) {
	if inner == nil {
		return nil, errors.New("bpfmatch: NewPacketConn: the inner connection is nil")
	}
	if err := checkRuleMatcher(m); err != nil {
		return nil, inContext("NewPacketConn", err)
	}
	var o packetConnOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	local, proto, err := addrPort(inner.LocalAddr(), "local")
	if err == nil && proto != UDP {
		err = fmt.Errorf("%w: local address %v is not a UDP address", ErrProtocol, inner.LocalAddr())
	}
	if err != nil {
		return nil, inContext("NewPacketConn", err)
	}
	c := &PacketConn{inner: inner, m: m, onDrop: o.onDrop}
	c.udp, _ = inner.(*net.UDPConn)

	a, port := local.Addr().WithZone("").Unmap(), local.Port()
	c.port = port
	switch {
	case a.Is4():
		c.dst4 = netip.AddrPortFrom(a, port)
	case a.IsUnspecified():
		// A dual-stack socket: IPv4 senders, IPv4 destination.
		c.dst6 = netip.AddrPortFrom(a, port)
		c.dst4 = netip.AddrPortFrom(netip.IPv4Unspecified(), port)
	default:
		c.dst6 = netip.AddrPortFrom(a, port)
	}
	for _, a := range o.local {
		if !a.IsValid() {
			return nil, inContext("NewPacketConn: WithLocalAddr", fmt.Errorf("%w: the zero netip.Addr", ErrAddress))
		}
		if a = a.Unmap(); a.Is4() {
			c.dst4 = netip.AddrPortFrom(a, port)
		} else {
			c.dst6 = netip.AddrPortFrom(a, port)
		}
	}
	if c.udp != nil {
		c.sys.init(c.udp, a.IsUnspecified())
	}
	if o.kernel {
		c.kernel = c.attachKernelFilter()
	}
	return c, nil
}

// kernelStatus is what became of WithKernelFilter.
type kernelStatus struct {
	attached bool
	reason   string
}

// KernelFilter reports whether WithKernelFilter attached a filter to the
// socket and, when it did not or when it filters only one family of a
// dual-stack socket, why (empty when a filter covers all the socket
// receives). Without WithKernelFilter it reports false and an empty
// reason. A filter attached is detached, and the reason says so, where
// recvmsg turns out not to be available (linux/386 before Linux 4.3):
// without the true length of datagrams longer than the buffer, user space
// could accept what the kernel filter drops.
func (c *PacketConn) KernelFilter() (attached bool, reason string) {
	if why := c.kernelDetached(); why != "" {
		return false, why
	}
	return c.kernel.attached, c.kernel.reason
}

// kernelTargets returns the families of datagrams the socket receives, as
// user space matches them: the destination each is matched with, invalid
// where it is each datagram's own (the kernel reports it).
func (c *PacketConn) kernelTargets(reportsDst bool) (v4, v6 *kernelTarget) {
	dst := func(d netip.AddrPort) netip.Addr {
		if reportsDst {
			return netip.Addr{}
		}
		return d.Addr()
	}
	if c.dst4.IsValid() {
		v4 = &kernelTarget{port: c.port, dst: dst(c.dst4)}
	}
	if c.dst6.IsValid() {
		v6 = &kernelTarget{v6: true, port: c.port, dst: dst(c.dst6)}
	}
	return v4, v6
}

// kernelFilterProgram returns the socket filter of c's matcher for the
// families the socket receives, and why a family is not filtered.
func (c *PacketConn) kernelFilterProgram(reportsDst bool) ([]bpf.RawInstruction, string) {
	t4, t6 := c.kernelTargets(reportsDst)
	return familyProgram(c.m, t4, t6, "datagrams", "the socket has no local address")
}

// ReadFrom reads the next datagram the filter matches into b, dropping the
// others, and returns its length and sender, as the inner ReadFrom does.
// Errors of the inner connection, timeouts included, are returned as the
// inner ReadFrom returns them.
func (c *PacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	if c.udp != nil && c.sys.direct() {
		n, p, err := c.readUDP(b)
		if err != nil {
			return n, nil, err
		}
		return n, udpAddrOf(p.Src), nil
	}
	for {
		n, from, err := c.inner.ReadFrom(b)
		if err != nil {
			return n, from, err
		}
		var src netip.AddrPort
		if a, ok := from.(*net.UDPAddr); ok && a != nil {
			src = a.AddrPort()
		}
		if _, ok := c.keep(received{n: n, size: n, src: src}, b[:n]); ok {
			return n, from, nil
		}
	}
}

// ReadFromUDPAddrPort is ReadFrom returning the sender as a netip.AddrPort,
// which allocates nothing when the inner connection is a *net.UDPConn. The
// address of an IPv4 sender on a dual-stack socket is IPv4-mapped, as
// net.UDPConn's method returns it.
func (c *PacketConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	if c.udp == nil {
		n, from, err := c.ReadFrom(b)
		var src netip.AddrPort
		if a, ok := from.(*net.UDPAddr); ok && a != nil {
			src = a.AddrPort()
		}
		return n, src, err
	}
	n, p, err := c.readUDP(b)
	return n, p.Src, err
}

// ReadPacket is ReadFromUDPAddrPort returning, instead of the sender, the
// packet the datagram matched as: its sender, the destination it was
// matched with (on Linux, where the kernel reports it, the address the
// datagram was sent to) and b[:n] as payload. It allocates nothing when
// the inner connection is a *net.UDPConn.
func (c *PacketConn) ReadPacket(b []byte) (int, FakePacket, error) {
	if c.udp == nil {
		for {
			n, from, err := c.inner.ReadFrom(b)
			if err != nil {
				return n, FakePacket{}, err
			}
			var src netip.AddrPort
			if a, ok := from.(*net.UDPAddr); ok && a != nil {
				src = a.AddrPort()
			}
			if p, ok := c.keep(received{n: n, size: n, src: src}, b[:n]); ok {
				return n, p, nil
			}
		}
	}
	return c.readUDP(b)
}

// readUDP reads datagrams from c.udp until one matches, and returns it and
// the packet it matched as.
func (c *PacketConn) readUDP(b []byte) (int, FakePacket, error) {
	for {
		r, err := c.sys.recv(c.udp, b)
		if err != nil {
			return r.n, FakePacket{Src: r.src}, err
		}
		if p, ok := c.keep(r, b[:r.n]); ok {
			return r.n, p, nil
		}
	}
}

// udpAddrBox holds a *net.UDPAddr and its IP in one allocation.
type udpAddrBox struct {
	a  net.UDPAddr
	ip [16]byte
}

// udpAddrOf returns a as a *net.UDPAddr, as net.UDPConn's ReadFrom does:
// a 4-byte IP for an IPv4 address, else 16 bytes and the zone.
func udpAddrOf(a netip.AddrPort) *net.UDPAddr {
	x := new(udpAddrBox)
	ip := a.Addr()
	if ip.Is4() {
		b := ip.As4()
		copy(x.ip[:], b[:])
		x.a.IP = x.ip[:4:4]
	} else {
		x.ip = ip.As16()
		x.a.IP = x.ip[:]
		x.a.Zone = ip.Zone()
	}
	x.a.Port = int(a.Port())
	return &x.a
}

// keep matches a datagram, counts it, and reports it if dropped; it
// returns the packet matched.
func (c *PacketConn) keep(r received, datagram []byte) (FakePacket, bool) {
	src := r.src
	dst := c.dst6
	if src.Addr().Unmap().Is4() {
		dst = c.dst4
	}
	if r.dst.IsValid() {
		dst = netip.AddrPortFrom(r.dst.Unmap(), c.port)
	}
	if r.size > len(datagram) {
		c.truncated.Add(1)
	}
	p := FakePacket{Src: src, Dst: dst, Protocol: UDP, Payload: datagram}
	var ok, tested bool
	var err error
	switch {
	case !src.IsValid():
		err = fmt.Errorf("%w: the sender of a datagram is not a UDP address", ErrAddress)
	case !dst.IsValid():
		err = errNoDst
	case r.size > len(datagram):
		ok, err = matchTruncated(c.m, &p, r.size)
		tested = err == nil
	default:
		ok, err = c.m.Match(p)
		tested = err == nil
	}
	if ok {
		c.matched.Add(1)
		return p, true
	}
	c.dropped.Add(1)
	if c.onDrop != nil {
		if err == nil {
			err = ErrRejected
		}
		c.onDrop(Report{Remote: src, Packet: p, Tested: tested, Reason: err})
	}
	return p, false
}

// matchTruncated matches p, whose Payload holds the first bytes of a
// datagram of size bytes, as a capture would hold it cut short.
func matchTruncated(m *Matcher, p *FakePacket, size int) (bool, error) {
	var h header
	if err := h.build(p, m.link); err != nil {
		return false, err
	}
	f := h.truncatedFrame(p.Payload, size, m.snap)
	return m.run(&f) != 0, nil
}

// Stats returns the counts of datagrams read so far.
func (c *PacketConn) Stats() PacketStats {
	m, d := c.matched.Load(), c.dropped.Load()
	return PacketStats{Received: m + d, Matched: m, Dropped: d, Truncated: c.truncated.Load()}
}

// WriteTo writes a datagram to addr through the inner connection,
// unfiltered.
func (c *PacketConn) WriteTo(b []byte, addr net.Addr) (int, error) { return c.inner.WriteTo(b, addr) }

// Close closes the inner connection, which unblocks ReadFrom.
func (c *PacketConn) Close() error { return c.inner.Close() }

// LocalAddr returns the inner connection's local address.
func (c *PacketConn) LocalAddr() net.Addr { return c.inner.LocalAddr() }

// SetDeadline sets the inner connection's read and write deadlines.
func (c *PacketConn) SetDeadline(t time.Time) error { return c.inner.SetDeadline(t) }

// SetReadDeadline sets the inner connection's read deadline, which bounds
// ReadFrom as a whole, however many datagrams it drops.
func (c *PacketConn) SetReadDeadline(t time.Time) error { return c.inner.SetReadDeadline(t) }

// SetWriteDeadline sets the inner connection's write deadline.
func (c *PacketConn) SetWriteDeadline(t time.Time) error { return c.inner.SetWriteDeadline(t) }
