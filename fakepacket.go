package bpfmatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"net/netip"
	"syscall"
)

// Protocol is the transport protocol of a FakePacket: TCP or UDP.
type Protocol uint8

// The transport protocols a FakePacket can carry, numbered as in the IP header.
const (
	TCP Protocol = 6
	UDP Protocol = 17
)

// String returns "tcp", "udp" or "protocol N".
func (p Protocol) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return fmt.Sprintf("protocol %d", uint8(p))
}

// TCPFlags are the flags of a TCP segment, one bit each as in byte 13 of the
// TCP header, plus NoFlags.
type TCPFlags uint16

// The TCP flags. SYN alone is the first packet of a connection.
const (
	FIN TCPFlags = 1 << iota
	SYN
	RST
	PSH
	ACK
	URG
	ECE
	CWR

	// NoFlags asks for a segment with no flag set, since a zero Flags field
	// means DefaultTCPFlags.
	NoFlags TCPFlags = 1 << 8
)

// DefaultTCPFlags are the flags of a TCP FakePacket whose Flags field is
// zero: a data segment of an established connection, shown by tcpdump as [P.].
const DefaultTCPFlags = PSH | ACK

var flagNames = [...]string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"}

// String returns the flags joined by "|", such as "SYN|ACK", or "none"
// for NoFlags. Zero, which a FakePacket takes as DefaultTCPFlags, is
// shown as those.
func (f TCPFlags) String() string {
	if f == 0 {
		f = DefaultTCPFlags
	}
	var s string
	for i, name := range flagNames {
		if f&(1<<i) != 0 {
			if s != "" {
				s += "|"
			}
			s += name
		}
	}
	if f&^(NoFlags|0xff) != 0 {
		if s != "" {
			s += "|"
		}
		s += fmt.Sprintf("%#x", uint16(f&^(NoFlags|0xff)))
	}
	if s == "" {
		return "none"
	}
	return s
}

// VLAN is an IEEE 802.1Q tag.
type VLAN struct {
	ID           uint16 // 0 to 4095
	Priority     uint8  // priority code point, 0 to 7
	DropEligible bool
}

// Default values of a FakePacket's optional fields.
var (
	DefaultSrcMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	DefaultDstMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
)

// DefaultTTL is the TTL or hop limit of a FakePacket whose TTL field is zero.
const DefaultTTL = 64

// DefaultWindow is the TCP window of a FakePacket whose Window field is zero.
const DefaultWindow = 65535

// FakePacket describes one packet as a capture would have seen it arrive:
// from Src to Dst, carrying Payload over TCP or UDP, in IPv4 or IPv6 as the
// addresses are (IPv4-mapped IPv6 addresses count as IPv4). The zero values
// of the optional fields stand for their documented defaults.
//
// The packet it stands for has correct lengths and checksums; its IPv4
// header has no options, ID 0 and the don't-fragment bit, its IPv6 header
// traffic class and flow label 0, and its TCP header no options. In an
// Ethernet frame, frames shorter than 60 bytes are padded with zeros to 60,
// as they are on the wire.
type FakePacket struct {
	Src, Dst netip.AddrPort
	Protocol Protocol
	Payload  []byte

	// SrcMAC and DstMAC are the Ethernet addresses; nil means DefaultSrcMAC
	// and DefaultDstMAC.
	SrcMAC, DstMAC net.HardwareAddr
	// VLAN, if not nil, adds an 802.1Q tag to the Ethernet frame.
	VLAN *VLAN
	// TTL is the IPv4 TTL or IPv6 hop limit; 0 means DefaultTTL.
	TTL uint8

	// Flags are the TCP flags; 0 means DefaultTCPFlags.
	Flags TCPFlags
	// Seq and Ack are the TCP sequence and acknowledgment numbers.
	Seq, Ack uint32
	// Window is the TCP window; 0 means DefaultWindow.
	Window uint16
}

// Errors of packets that cannot be built; the errors returned wrap them,
// with the details, for errors.Is.
var (
	ErrAddress         = errors.New("bpfmatch: not a usable IP address and port")
	ErrAddressFamily   = errors.New("bpfmatch: source and destination are of different address families")
	ErrProtocol        = errors.New("bpfmatch: protocol is neither TCP nor UDP")
	ErrPayloadTooLarge = errors.New("bpfmatch: payload too large for one IP packet")
	ErrField           = errors.New("bpfmatch: invalid packet field")
	ErrLinkType        = errors.New("bpfmatch: fake packets are framed for Ethernet or raw IP only")
)

// FromAddrPorts returns the packet carrying payload from src to dst over
// proto, with the other fields at their defaults, or an error if no IP
// packet could be so.
func FromAddrPorts(src, dst netip.AddrPort, proto Protocol, payload []byte) (FakePacket, error) {
	p := FakePacket{Src: src, Dst: dst, Protocol: proto, Payload: payload}
	return p, p.Validate()
}

// FromAddrs returns the packet carrying payload from src to dst, which must
// be both *net.TCPAddr or both *net.UDPAddr; for a datagram socket, src is
// the address ReadFrom returned and dst the socket's LocalAddr.
func FromAddrs(src, dst net.Addr, payload []byte) (FakePacket, error) {
	s, sp, err := addrPort(src, "source")
	if err != nil {
		return FakePacket{}, err
	}
	d, dp, err := addrPort(dst, "destination")
	if err != nil {
		return FakePacket{}, err
	}
	if sp != dp {
		return FakePacket{}, fmt.Errorf("%w: source is %s, destination is %s", ErrProtocol, sp, dp)
	}
	return FromAddrPorts(s, d, sp, payload)
}

// FromConn returns the packet carrying payload into c as it arrives: from
// c.RemoteAddr() to c.LocalAddr(). c must be an open TCP or UDP connection.
func FromConn(c net.Conn, payload []byte) (FakePacket, error) {
	if isNilConn(c) {
		return FakePacket{}, fmt.Errorf("%w: nil net.Conn", ErrAddress)
	}
	if err := checkOpen(c); err != nil {
		return FakePacket{}, err
	}
	return FromAddrs(c.RemoteAddr(), c.LocalAddr(), payload)
}

func isNilConn(c net.Conn) (isNil bool) {
	if c == nil {
		return true
	}
	// A typed nil, such as a (*net.TCPConn)(nil), may panic in its methods.
	defer func() {
		if recover() != nil {
			isNil = true
		}
	}()
	return c.LocalAddr() == nil
}

// checkOpen reports net.ErrClosed for a closed connection whose file
// descriptor can be asked; other connections are taken as they are.
func checkOpen(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err == nil {
		err = rc.Control(func(uintptr) {})
	}
	if err != nil {
		return fmt.Errorf("bpfmatch: connection %v: %w", c.LocalAddr(), err)
	}
	return nil
}

func addrPort(a net.Addr, role string) (netip.AddrPort, Protocol, error) {
	var ip net.IP
	var port int
	var proto Protocol
	switch a := a.(type) {
	case *net.TCPAddr:
		if a == nil {
			break
		}
		ip, port, proto = a.IP, a.Port, TCP
	case *net.UDPAddr:
		if a == nil {
			break
		}
		ip, port, proto = a.IP, a.Port, UDP
	default:
		if a == nil {
			return netip.AddrPort{}, 0, fmt.Errorf("%w: %s address is nil", ErrAddress, role)
		}
		return netip.AddrPort{}, 0, fmt.Errorf("%w: %s address %q is a %T, not a *net.TCPAddr or *net.UDPAddr",
			ErrAddress, role, a.String(), a)
	}
	if proto == 0 {
		return netip.AddrPort{}, 0, fmt.Errorf("%w: %s address is nil", ErrAddress, role)
	}
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.AddrPort{}, 0, fmt.Errorf("%w: %s address %v has no IP address", ErrAddress, role, ip)
	}
	if port < 0 || port > 65535 {
		return netip.AddrPort{}, 0, fmt.Errorf("%w: %s port %d out of range", ErrAddress, role, port)
	}
	return netip.AddrPortFrom(addr, uint16(port)), proto, nil
}

// Validate reports why p cannot be built, or nil.
func (p *FakePacket) Validate() error {
	var h header
	return h.build(p, LinkEthernet)
}

// AppendFrame appends p, framed for link (LinkEthernet or LinkRaw), to dst
// and returns the extended slice: the bytes a capture would hold.
func (p *FakePacket) AppendFrame(dst []byte, link LinkType) ([]byte, error) {
	var h header
	if err := h.build(p, link); err != nil {
		return dst, err
	}
	h.setPayload(p.Payload)
	h.fillChecksum()
	dst = append(dst, h.b[:h.n]...)
	dst = append(dst, p.Payload...)
	if h.pad {
		for n := int(h.n) + len(p.Payload); n < minEthernetFrame; n++ {
			dst = append(dst, 0)
		}
	}
	return dst, nil
}

// String describes p as tcpdump would, roughly: "tcp 10.0.0.1:1234 > 10.0.0.2:21 [P.] 5 bytes".
func (p FakePacket) String() string {
	// The addresses as the packet has them: an IPv4-mapped address makes
	// an IPv4 packet, and zones are left out.
	shown := func(a netip.AddrPort) netip.AddrPort {
		return netip.AddrPortFrom(a.Addr().Unmap().WithZone(""), a.Port())
	}
	s := fmt.Sprintf("%s %v > %v", p.Protocol, shown(p.Src), shown(p.Dst))
	if p.Protocol == TCP {
		s += " [" + p.Flags.String() + "]"
	}
	if p.VLAN != nil {
		s += fmt.Sprintf(" vlan %d", p.VLAN.ID)
	}
	return s + fmt.Sprintf(" %d bytes", len(p.Payload))
}

const (
	ethernetLen      = 14
	vlanLen          = 4
	ipv4Len          = 20
	ipv6Len          = 40
	tcpLen           = 20
	udpLen           = 8
	maxHeaderLen     = ethernetLen + vlanLen + ipv6Len + tcpLen
	minEthernetFrame = 60
	maxIPLen         = 65535
)

// header is a FakePacket's headers, written once, with what is needed to
// complete them for any payload.
type header struct {
	b       [max(maxHeaderLen, minEthernetFrame)]byte
	payload []byte
	n       uint8 // header length
	ip      uint8 // offset of the IP header
	l4      uint8 // offset of the transport header
	csum    uint8 // offset of the transport checksum
	v6      bool
	udp     bool
	pad     bool   // Ethernet: pad frames to minEthernetFrame
	ipSum   uint64 // IPv4 header without length and checksum
}

// build writes the headers of p for link, with zero lengths and checksums.
func (h *header) build(p *FakePacket, link LinkType) error {
	return h.buildNeed(p, link, nil)
}

// The groups of header fields buildNeed writes or leaves zero.
const (
	needMAC   = 1 << iota // the Ethernet addresses
	needVLAN              // the VLAN tag's TCI
	needFixed             // what the shape fixes (shapeHeader): EtherType, TPID, IP version, ...
	needIP                // TTL or hop limit, addresses, and ipSum
	needPorts             // the transport ports
	needTCP               // sequence and acknowledgment numbers, flags, window
	needAll   = 1<<iota - 1
)

// check reports why p cannot be framed for link, or returns its shape
// (shapeOf), which it reads off p without building anything. It is the
// one validation of fake packets: build and Match's direct tests
// (direct.go) give its errors, in its order.
func (p *FakePacket) check(link LinkType) (int, error) {
	// IPv4-mapped addresses make IPv4 packets; Is4 is tried first, for
	// Unmap costs as much as the rest.
	src, dst := p.Src.Addr(), p.Dst.Addr()
	dst4 := dst.Is4() || dst.Is4In6()
	switch {
	case p.Protocol != TCP && p.Protocol != UDP:
		return 0, fmt.Errorf("%w: %d", ErrProtocol, uint8(p.Protocol))
	case !src.IsValid():
		return 0, fmt.Errorf("%w: source address is the zero netip.AddrPort", ErrAddress)
	case !dst.IsValid():
		return 0, fmt.Errorf("%w: destination address is the zero netip.AddrPort", ErrAddress)
	case (src.Is4() || src.Is4In6()) != dst4:
		return 0, fmt.Errorf("%w: %v and %v", ErrAddressFamily, src.Unmap(), dst.Unmap())
	}
	s := 0
	if !dst4 {
		s |= shapeV6
	}
	if p.Protocol == UDP {
		s |= shapeUDP
	}
	if len(p.Payload) > maxPayloadOf(s) {
		return 0, payloadTooLarge(len(p.Payload), s)
	}
	if p.Flags&^(NoFlags|0xff) != 0 {
		return 0, fmt.Errorf("%w: TCP flags %#x", ErrField, uint16(p.Flags))
	}
	switch link {
	case LinkEthernet:
		if p.SrcMAC != nil && len(p.SrcMAC) != 6 || p.DstMAC != nil && len(p.DstMAC) != 6 {
			srcMAC, dstMAC := p.macs()
			return 0, fmt.Errorf("%w: MAC addresses %v and %v are not both 6 bytes", ErrField, srcMAC, dstMAC)
		}
		if v := p.VLAN; v != nil {
			if v.ID > 4095 || v.Priority > 7 {
				return 0, fmt.Errorf("%w: VLAN ID %d (at most 4095), priority %d (at most 7)", ErrField, v.ID, v.Priority)
			}
			s |= shapeVLAN
		}
	case LinkRaw:
		if p.VLAN != nil {
			return 0, fmt.Errorf("%w: a VLAN tag needs an Ethernet frame", ErrField)
		}
	default:
		return 0, fmt.Errorf("%w, not %v", ErrLinkType, link)
	}
	return s, nil
}

// buildNeed is build, writing of the headers only the groups of fields
// needs gives for the packet's shape (shapeOf), all where needs is nil;
// the others stay as they were, zero in a new header. It checks p
// wholly either way.
func (h *header) buildNeed(p *FakePacket, link LinkType, needs *[numShapes]uint8) error {
	s, err := p.check(link)
	if err != nil {
		return err
	}
	need := uint8(needAll)
	if needs != nil {
		need = needs[s]
	}
	h.buildShape(p, link, s, need)
	return nil
}

// buildShape writes the groups need of the headers of p, which check
// found of shape s for link.
func (h *header) buildShape(p *FakePacket, link LinkType, s int, need uint8) {
	h.v6, h.udp = s&shapeV6 != 0, s&shapeUDP != 0
	off := 0
	if link == LinkEthernet {
		off = ethernetLen
		if s&shapeVLAN != 0 {
			off += vlanLen
		}
	}
	h.pad = link == LinkEthernet

	// The layout, then the fields needed.
	h.ip = uint8(off)
	if h.v6 {
		off += ipv6Len
	} else {
		off += ipv4Len
	}
	h.l4 = uint8(off)
	if h.udp {
		h.csum = uint8(off + 6)
		off += udpLen
	} else {
		h.csum = uint8(off + 16)
		off += tcpLen
	}
	h.n = uint8(off)
	b := &h.b

	if link == LinkEthernet {
		if need&needMAC != 0 {
			srcMAC, dstMAC := p.macs()
			*(*[6]byte)(b[0:6]) = [6]byte(dstMAC)
			*(*[6]byte)(b[6:12]) = [6]byte(srcMAC)
		}
		if v := p.VLAN; v != nil {
			if need&needFixed != 0 {
				b[12], b[13] = 0x81, 0x00
			}
			if need&needVLAN != 0 {
				tci := uint16(v.Priority)<<13 | v.ID
				if v.DropEligible {
					tci |= 1 << 12
				}
				binary.BigEndian.PutUint16(b[14:16], tci)
			}
		}
		if need&needFixed != 0 {
			etherType := uint16(0x0800)
			if h.v6 {
				etherType = 0x86dd
			}
			binary.BigEndian.PutUint16(b[h.ip-2:], etherType)
		}
	}

	ip := b[h.ip&31:] // the mask proves ip+40 in range
	if need&needFixed != 0 {
		if h.v6 {
			ip[0] = 0x60
			ip[6] = uint8(p.Protocol)
		} else {
			ip[0] = 0x45
			ip[6] = 0x40 // don't fragment
			ip[9] = uint8(p.Protocol)
		}
	}
	if need&needIP != 0 {
		// Zones are dropped: As4 and As16 leave them out.
		src, dst := p.Src.Addr().Unmap(), p.Dst.Addr().Unmap()
		ttl := p.TTL
		if ttl == 0 {
			ttl = DefaultTTL
		}
		if h.v6 {
			ip[7] = ttl
			*(*[16]byte)(ip[8:24]) = src.As16()
			*(*[16]byte)(ip[24:40]) = dst.As16()
		} else {
			ip[8] = ttl
			a, b := src.As4(), dst.As4()
			*(*[4]byte)(ip[12:16]) = a
			*(*[4]byte)(ip[16:20]) = b
			// One's-complement sums may add 32-bit words: fold takes care.
			h.ipSum = 0x4500 + 0x4000 + uint64(ttl)<<8 + uint64(p.Protocol) +
				uint64(binary.BigEndian.Uint32(a[:])) + uint64(binary.BigEndian.Uint32(b[:]))
		}
	}

	l4 := b[h.l4&63:] // the mask proves l4+20 in range
	if need&needPorts != 0 {
		binary.BigEndian.PutUint16(l4[0:], p.Src.Port())
		binary.BigEndian.PutUint16(l4[2:], p.Dst.Port())
	}
	if !h.udp {
		if need&needFixed != 0 {
			l4[12] = tcpLen / 4 << 4
		}
		if need&needTCP != 0 {
			flags, window := p.tcpFields()
			binary.BigEndian.PutUint32(l4[4:], p.Seq)
			binary.BigEndian.PutUint32(l4[8:], p.Ack)
			l4[13] = uint8(flags)
			binary.BigEndian.PutUint16(l4[14:], window)
		}
	}
}

// macs returns p's Ethernet addresses, the defaults where nil.
func (p *FakePacket) macs() (src, dst net.HardwareAddr) {
	src, dst = p.SrcMAC, p.DstMAC
	if src == nil {
		src = DefaultSrcMAC
	}
	if dst == nil {
		dst = DefaultDstMAC
	}
	return src, dst
}

// tcpFields returns p's TCP flags and window, the defaults for zero.
func (p *FakePacket) tcpFields() (TCPFlags, uint16) {
	flags, window := p.Flags, p.Window
	if flags == 0 {
		flags = DefaultTCPFlags
	}
	if window == 0 {
		window = DefaultWindow
	}
	return flags, window
}

// maxPayload is the largest payload the IP packet can carry.
func (h *header) maxPayload() int { return maxPayloadOf(shapeOf(h)) }

func (h *header) payloadTooLarge(n int) error { return payloadTooLarge(n, shapeOf(h)) }

// maxPayloadOf is the largest payload an IP packet of shape s can carry.
func maxPayloadOf(s int) int { return maxPayloads[s&(shapeV6|shapeUDP)] }

// maxPayloads are maxPayloadOf's answers, looked up: Match asks each time.
var maxPayloads = [4]int{
	0:                  maxIPLen - ipv4Len - tcpLen,
	shapeV6:            maxIPLen - tcpLen,
	shapeUDP:           maxIPLen - ipv4Len - udpLen,
	shapeV6 | shapeUDP: maxIPLen - udpLen,
}

// payloadTooLarge is the error of a payload of n bytes, too large for shape s.
func payloadTooLarge(n, s int) error {
	proto, v := TCP, 4
	if s&shapeUDP != 0 {
		proto = UDP
	}
	if s&shapeV6 != 0 {
		v = 6
	}
	return fmt.Errorf("%w: %d bytes, at most %d in %s over IPv%d", ErrPayloadTooLarge, n, maxPayloadOf(s), proto, v)
}

// setPayload writes the lengths and the IPv4 checksum for payload; the
// transport checksum is left to fillChecksum.
func (h *header) setPayload(payload []byte) {
	h.payload = payload
	h.setLengths(len(payload))
}

// setLengths writes the lengths and the IPv4 checksum of a payload of
// size bytes, at most maxPayload.
func (h *header) setLengths(size int) {
	l4len := uint16(int(h.n-h.l4) + size)
	ip := h.b[h.ip&63:] // the mask proves ip+12 in range
	if h.v6 {
		binary.BigEndian.PutUint16(ip[4:], l4len)
	} else {
		total := l4len + ipv4Len
		binary.BigEndian.PutUint16(ip[2:], total)
		// ipSum+total is below 2^35: three folds suffice.
		s := h.ipSum + uint64(total)
		s = s>>16 + s&0xffff
		s = s>>16 + s&0xffff
		binary.BigEndian.PutUint16(ip[10:], ^uint16(s>>16+s&0xffff))
	}
	if h.udp {
		binary.BigEndian.PutUint16(h.b[h.l4&63+4:], l4len)
	}
}

// truncatedFrame returns the frame of the header, built, and a datagram
// of size bytes of which read holds the first: its lengths those of size
// bytes, its captured bytes the header and read (up to snap). The frame
// points into h.
func (h *header) truncatedFrame(read []byte, size int, snap uint32) frame {
	size = min(max(size, len(read)), h.maxPayload())
	h.payload = read
	h.setLengths(size) // of the datagram, not of what was read
	n := int(h.n)
	wire := n + size
	if h.pad {
		wire = max(wire, minEthernetFrame)
	}
	return frame{hdr: h.b[:n], payload: read, wirelen: uint32(wire),
		caplen: min(uint32(n+len(read)), snap),
		lazy:   h, lazyLo: uint32(h.csum), lazyHi: uint32(h.csum) + 2}
}

// fillChecksum writes the transport checksum of the header and payload,
// whose lengths setPayload wrote.
func (h *header) fillChecksum() {
	l4len := uint64(int(h.n-h.l4) + len(h.payload))
	// The pseudo-header: addresses, protocol and length.
	s := uint64(6) + l4len
	if h.udp {
		s = 17 + l4len
	}
	if h.v6 {
		s = sum(s, h.b[h.ip+8:h.ip+40])
	} else {
		s = sum(s, h.b[h.ip+12:h.ip+20])
	}
	h.b[h.csum], h.b[h.csum+1] = 0, 0
	s = sum(s, h.b[h.l4:h.n])
	c := ^fold(sum(s, h.payload))
	if c == 0 && h.udp {
		c = 0xffff // 0 means no checksum in UDP
	}
	binary.BigEndian.PutUint16(h.b[h.csum:], c)
}

// frame returns the frame of the header and payload, captured up to snap
// bytes, with the transport checksum left to be filled when read. The
// frame points into h, so h must outlive it. frame is small enough to be
// inlined, so that the frame is built in place.
func (h *header) frame(payload []byte, snap uint32) frame {
	hdr, rest := h.prepare(payload)
	wire := uint32(len(hdr) + len(rest))
	return frame{hdr: hdr, payload: rest, wirelen: wire, caplen: min(wire, snap),
		lazy: h, lazyLo: uint32(h.csum), lazyHi: uint32(h.csum) + 2}
}

// prepare completes the header for payload and returns the frame's two
// parts: a frame shorter than the Ethernet minimum is padded in h.b, its
// payload copied there.
func (h *header) prepare(payload []byte) (hdr, rest []byte) {
	h.setPayload(payload)
	return h.split(payload)
}

// split returns the frame's two parts, as prepare does, without writing
// the lengths and checksums.
func (h *header) split(payload []byte) (hdr, rest []byte) {
	n := int(h.n)
	if total := n + len(payload); h.pad && total < minEthernetFrame {
		copy(h.b[n:], payload)
		clear(h.b[total:minEthernetFrame])
		return h.b[:minEthernetFrame], nil
	}
	return h.b[:n], payload
}

// traceFrame returns a frame of the header alone, whose reads of anything
// that depends on the payload set varies.
func (h *header) traceFrame(snap uint32) frame {
	h.setPayload(nil)
	return frame{
		hdr:     h.b[:h.n],
		wirelen: uint32(h.n),
		caplen:  min(uint32(h.n), snap),
		lazy:    h,
		lazyLo:  uint32(h.ip),
		lazyHi:  uint32(h.n),
		trace:   true,
	}
}

// varies reports whether hdr[off:end] overlaps a field that depends on the payload.
func (h *header) varies(off, end uint32) bool {
	overlaps := func(at uint8, n uint32) bool { return off < uint32(at)+n && end > uint32(at) }
	if overlaps(h.csum, 2) {
		return true
	}
	if h.v6 {
		return overlaps(h.ip+4, 2) || (h.udp && overlaps(h.l4+4, 2))
	}
	return overlaps(h.ip+2, 2) || overlaps(h.ip+10, 2) || (h.udp && overlaps(h.l4+4, 2))
}

// touch is called by the executor before it reads hdr[off:end] when that
// overlaps hdr[lazyLo:lazyHi].
func (f *frame) touch(off, end uint32) {
	if f.trace {
		if f.lazy.varies(off, end) {
			f.varies = true
		}
		return
	}
	f.lazy.fillChecksum() // hdr is f.lazy.b, so this writes it
	f.lazyLo, f.lazyHi = 0, 0
}

// sum adds b to the one's-complement sum s, 16 bits at a time, b starting
// at an even offset.
func sum(s uint64, b []byte) uint64 {
	var c, carry uint64
	for len(b) >= 32 {
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b), 0)
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b[8:]), c)
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b[16:]), c)
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b[24:]), c)
		carry += c
		b = b[32:]
	}
	for len(b) >= 8 {
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b), 0)
		carry += c
		b = b[8:]
	}
	var tail uint64
	if len(b) >= 4 {
		tail += uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		tail += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		tail += uint64(b[0]) << 8
	}
	s, c = bits.Add64(s, tail, 0)
	carry += c
	s, c = bits.Add64(s, carry, 0)
	return s + c
}

// fold reduces a one's-complement sum to 16 bits.
func fold(s uint64) uint16 {
	s = s>>32 + s&0xffffffff
	s = s>>32 + s&0xffffffff
	s = s>>16 + s&0xffff
	s = s>>16 + s&0xffff
	return uint16(s>>16 + s&0xffff)
}
