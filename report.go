package bpfmatch

import (
	"fmt"
	"net"
	"net/netip"
)

// A Report tells of a connection a Listener or a Router closed instead of
// handing out, or of a datagram a PacketConn dropped: WithRejectFunc and
// WithDropFunc get one for each.
type Report struct {
	// Remote is the client's or the sender's address; the zero AddrPort
	// if it has no IP address.
	Remote netip.AddrPort
	// Packet is the packet the filter was run on, when Tested and SYN is
	// nil: a fake SYN, or for a payload-aware listener or a Router the
	// data segment carrying the client's first bytes, or the datagram.
	// When the filter did not run (the bytes did not come, the listener
	// was closed first, the packet could not be built), it holds what was
	// known of it. Its TTL is the real SYN's when SYN is not nil. Its
	// Payload is valid only during the call.
	Packet FakePacket
	// SYN is the client's real SYN as the kernel saved it on Linux (see
	// Listener): its IP packet, IP and TCP headers, without link header;
	// nil when the kernel gave none and fake headers were used. For a
	// Listener without WithPayload, the filter ran on SYN (framed for its
	// link type) rather than on Packet when it is not nil; for a
	// payload-aware one or a Router, Packet, the data segment, took its
	// TTL from SYN. Valid only during the call.
	SYN []byte
	// Tested reports whether the filter ran: on SYN if a Listener without
	// WithPayload has one, else on Packet.
	Tested bool
	// Reason says why: ErrRejected if the filter did not match (or, for a
	// Router, no rule did and there is no default listener); an error
	// wrapping ErrWaitExpired under RejectOnTimeout; one wrapping
	// ErrEvicted or ErrNotAccepted for a connection closed to bound those
	// held (see WithMaxPending); one wrapping net.ErrClosed if the
	// listener was closed first; else the error that kept the packet from
	// being built or the bytes from being read.
	Reason error
}

// String describes the report in one line.
func (r Report) String() string {
	switch {
	case r.Tested && r.SYN != nil && r.Packet.Flags == SYN:
		return fmt.Sprintf("real SYN from %v (TTL %d, %d bytes): %v", r.Remote, r.Packet.TTL, len(r.SYN), r.Reason)
	case r.Tested:
		return fmt.Sprintf("%v: %v", r.Packet, r.Reason)
	}
	return fmt.Sprintf("connection from %v: %v", r.Remote, r.Reason)
}

// remoteAddrPort returns c's remote address, or the zero AddrPort.
func remoteAddrPort(c net.Conn) netip.AddrPort {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort()
	}
	return netip.AddrPort{}
}
