package bpfmatch

import (
	"encoding/binary"
	"net"
)

// realSYN returns the SYN the kernel saved for c, framed for link
// (LinkEthernet: after an Ethernet header from DefaultSrcMAC to
// DefaultDstMAC, padded to 60 bytes as on the wire; LinkRaw: as it is),
// its IP packet alone (a slice of frame), and its length on the wire; nil
// if the kernel saved none or it is not an IP packet.
func realSYN(c net.Conn, link LinkType) (frame, ip []byte, wire int) {
	off := 0
	if link == LinkEthernet {
		off = ethernetHeaderLen
	}
	return frameSYN(savedSYN(c, off), link)
}

// frameSYN frames the IP packet b holds after room for link's header, as
// realSYN returns it.
func frameSYN(b []byte, link LinkType) (frame, ip []byte, wire int) {
	off := 0
	if link == LinkEthernet {
		off = ethernetHeaderLen
	}
	if len(b) < off {
		return nil, nil, 0
	}
	ip = b[off:]
	var etherType uint16
	switch {
	case len(ip) >= 20 && ip[0]>>4 == 4:
		etherType, wire = 0x0800, int(binary.BigEndian.Uint16(ip[2:]))
	case len(ip) >= 40 && ip[0]>>4 == 6:
		etherType, wire = 0x86dd, 40+int(binary.BigEndian.Uint16(ip[4:]))
	default:
		return nil, nil, 0
	}
	// The SYN's payload, if it had one (TCP Fast Open), is not saved.
	wire = max(wire, len(ip))
	if link == LinkEthernet {
		copy(b[0:6], DefaultDstMAC)
		copy(b[6:12], DefaultSrcMAC)
		binary.BigEndian.PutUint16(b[12:], etherType)
		for len(b) < minEthernetFrame {
			b = append(b, 0)
		}
		wire = max(wire+off, minEthernetFrame)
	}
	return b, ip, wire
}

// ethernetHeaderLen is the length of an Ethernet header without VLAN tag.
const ethernetHeaderLen = 14

// synTTL returns the IPv4 TTL or IPv6 hop limit of an IP packet realSYN
// returned.
func synTTL(ip []byte) uint8 {
	if ip[0]>>4 == 4 {
		return ip[8]
	}
	return ip[7]
}
