package bpfmatch

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

// PacketStats counts the datagrams a PacketConn has read from its inner
// connection. Each datagram is counted once, in Matched or in Dropped,
// after it has been matched; Received is their sum.
type PacketStats struct {
	Received uint64 // datagrams read from the inner connection
	Matched  uint64 // returned by ReadFrom
	Dropped  uint64 // not matched, or whose packet could not be built
}

// A PacketConnOption changes how NewPacketConn matches datagrams.
type PacketConnOption func(*packetConnOptions)

type packetConnOptions struct {
	local  []netip.Addr
	onDrop func(Report)
}

// WithLocalAddr sets the destination address of the packets datagrams are
// matched as, for the datagrams of its family (IPv4, IPv4-mapped addresses
// included, or IPv6), in place of the socket's local address; the port
// stays the socket's. Use it on a socket bound to the unspecified address
// (0.0.0.0 or ::), whose datagrams' true destination is unknown: give the
// address clients send to, once for IPv4 and once for IPv6 on a
// dual-stack socket.
func WithLocalAddr(a netip.Addr) PacketConnOption {
	return func(o *packetConnOptions) { o.local = append(o.local, a) }
}

// WithDropFunc sets a function called with a Report of each datagram
// dropped: its sender, the packet tested (the datagram its payload, valid
// only during the call) and the reason, ErrRejected if the filter did not
// match, else why its packet could not be built. It is called by
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
// as payload; a datagram longer than the buffer given to ReadFrom is
// matched truncated, as the inner connection returns it. If the socket is
// bound to the unspecified address (0.0.0.0 or ::), the destination is that
// unspecified address, 0.0.0.0 for IPv4 senders on a dual-stack socket,
// unless WithLocalAddr names one: the address each datagram was sent to is
// not known without IP_PKTINFO, so filters on the destination host see the
// unspecified address (dst port works).
//
// WriteTo, the deadlines, LocalAddr and Close are those of the inner
// connection; a read deadline applies to ReadFrom as a whole, datagrams
// dropped included. ReadFrom allocates nothing beyond what the inner
// ReadFrom does; ReadFromUDPAddrPort, on a *net.UDPConn, allocates nothing.
type PacketConn struct {
	inner      net.PacketConn
	udp        *net.UDPConn // inner, if it is one
	m          *Matcher
	dst4, dst6 netip.AddrPort // destinations by the sender's family; zero if none
	onDrop     func(Report)

	matched, dropped atomic.Uint64
}

// errNoDst is the reason for a datagram from a family the socket has no
// address of, which it should not receive.
var errNoDst = fmt.Errorf("%w: the socket has no local address of the sender's family", ErrAddressFamily)

// NewPacketConn returns a PacketConn reading the datagrams of inner that m
// matches. inner's local address must be a *net.UDPAddr; the PacketConn
// takes inner's place: closing it closes inner.
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
	return c, nil
}

// ReadFrom reads the next datagram the filter matches into b, dropping the
// others, and returns its length and sender, as the inner ReadFrom does.
// Errors of the inner ReadFrom, timeouts included, are returned as they are.
func (c *PacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, from, err := c.inner.ReadFrom(b)
		if err != nil {
			return n, from, err
		}
		var src netip.AddrPort
		if a, ok := from.(*net.UDPAddr); ok && a != nil {
			src = a.AddrPort()
		}
		if c.keep(src, b[:n]) {
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
	for {
		n, src, err := c.udp.ReadFromUDPAddrPort(b)
		if err != nil {
			return n, src, err
		}
		if c.keep(src, b[:n]) {
			return n, src, nil
		}
	}
}

// keep matches a datagram, counts it, and reports it if dropped.
func (c *PacketConn) keep(src netip.AddrPort, datagram []byte) bool {
	dst := c.dst6
	if src.Addr().Unmap().Is4() {
		dst = c.dst4
	}
	p := FakePacket{Src: src, Dst: dst, Protocol: UDP, Payload: datagram}
	var ok, tested bool
	var err error
	switch {
	case !src.IsValid():
		err = fmt.Errorf("%w: the sender of a datagram is not a UDP address", ErrAddress)
	case !dst.IsValid():
		err = errNoDst
	default:
		ok, err = c.m.Match(p)
		tested = err == nil
	}
	if ok {
		c.matched.Add(1)
		return true
	}
	c.dropped.Add(1)
	if c.onDrop != nil {
		if err == nil {
			err = ErrRejected
		}
		c.onDrop(Report{Remote: src, Packet: p, Tested: tested, Reason: err})
	}
	return false
}

// Stats returns the counts of datagrams read so far.
func (c *PacketConn) Stats() PacketStats {
	m, d := c.matched.Load(), c.dropped.Load()
	return PacketStats{Received: m + d, Matched: m, Dropped: d}
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
