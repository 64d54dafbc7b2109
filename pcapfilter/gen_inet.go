package pcapfilter

// IPv4, IPv6, ARP and RARP: hosts, nets, protocols, ports, port ranges,
// protochain, and the protocol keywords above the link layer.
//
// What each primitive tests, and in which order, is libpcap 1.10's
// unoptimised program (tcpdump -O -d): a load past the captured bytes
// rejects the packet, so the order of guards and loads decides the verdict
// on a packet cut short. Which combinations of qualifiers and ids compile
// is libpcap's too.

import (
	"fmt"
	"net/netip"
)

// Ethernet types and IP protocol numbers the primitives here test
// (ipprotoTCP, ipprotoUDP and ipprotoSCTP are in names.go).
const (
	etherTypeARP  = 0x0806
	etherTypeRARP = 0x8035

	ipprotoICMP     = 1
	ipprotoIGMP     = 2
	ipprotoIGRP     = 9
	ipprotoESP      = 50
	ipprotoAH       = 51
	ipprotoICMPv6   = 58
	ipprotoPIM      = 103
	ipprotoVRRP     = 112 // and CARP, which shares it
	ipprotoHopOpts  = 0
	ipprotoRouting  = 43
	ipprotoFragment = 44
	ipprotoNoNext   = 59
	ipprotoDstOpts  = 60

	ipv6HdrLen = 40
)

// The headers' fields, from the start of the network layer.
const (
	ipv4ProtoOff = 9  // IPv4 protocol
	ipv4FragOff  = 6  // IPv4 flags and fragment offset
	ipv4SrcOff   = 12 // IPv4 source address
	ipv4DstOff   = 16
	arpSrcOff    = 14 // ARP and RARP sender protocol address
	arpDstOff    = 24 // target protocol address
	ipv6NextOff  = 6  // IPv6 next header
	ipv6SrcOff   = 8
	ipv6DstOff   = 24
	ipv4FragMask = 0x1fff
)

// inetState is what this part of the generator keeps between primitives.
type inetState struct {
	// protochain is set once a protochain primitive is generated: libpcap
	// then turns its optimiser off for the whole expression, so that an
	// expression it would otherwise find rejecting every packet compiles.
	protochain bool
	// relBlocks are the ids of the blocks of relations, whose code is not
	// libpcap's: acceptReachable neither decides them nor learns from
	// them.
	relBlocks map[int]bool
	// inRelation is how many relations are being generated; libpcap's
	// blocks are the blocks of the IP-family keywords that guard them
	// (keep), which are numbered with the others.
	inRelation int
	keep       map[int]bool
}

// markRelation records the blocks first..last as a relation's, but for
// those of its keywords.
func (s *inetState) markRelation(first, last int) {
	if s.relBlocks == nil {
		s.relBlocks = map[int]bool{}
	}
	for id := first; id <= last; id++ {
		if !s.keep[id] {
			s.relBlocks[id] = true
		}
	}
}

// keepBlocks records the blocks first..last as those of an IP-family
// keyword that guards a relation.
func (s *inetState) keepBlocks(first, last int) {
	if s.keep == nil {
		s.keep = map[int]bool{}
	}
	for id := first; id <= last; id++ {
		s.keep[id] = true
	}
}

// inetProtoNames are the keywords of the protocols this file compiles,
// for messages.
var inetProtoNames = map[Proto]string{
	ProtoLink: "link", ProtoIP: "ip", ProtoIP6: "ip6", ProtoARP: "arp", ProtoRARP: "rarp",
	ProtoTCP: "tcp", ProtoUDP: "udp", ProtoSCTP: "sctp", ProtoICMP: "icmp",
	ProtoICMP6: "icmp6", ProtoIGMP: "igmp", ProtoIGRP: "igrp", ProtoPIM: "pim",
	ProtoVRRP: "vrrp", ProtoCARP: "carp", ProtoAH: "ah", ProtoESP: "esp",
}

func protoKeyword(p Proto) string {
	if s, ok := inetProtoNames[p]; ok {
		return s
	}
	return lanProtoName(p)
}

// dirKeywords are the 802.11 direction qualifiers, for messages.
var dirKeywords = map[Dir]string{
	DirAddr1: "addr1", DirAddr2: "addr2", DirAddr3: "addr3", DirAddr4: "addr4",
	DirRA: "ra", DirTA: "ta",
}

var typeKeywords = map[Type]string{
	TypeHost: "host", TypeNet: "net", TypePort: "port", TypePortRange: "portrange",
	TypeGateway: "gateway", TypeProto: "proto", TypeProtochain: "protochain",
}

// protoAbbrev is a protocol keyword alone, such as "tcp" or "ip6".
func (g *gen) protoAbbrev(p Proto, at Node) cond {
	if g.inet.inRelation > 0 && !isLANProto(p) {
		// A guard of a byte accessor, with the code libpcap has for it.
		first := g.nblocks + 1
		defer func() { g.inet.keepBlocks(first, g.nblocks) }()
	}
	switch p {
	case ProtoIP:
		return g.linktype(etherTypeIP)
	case ProtoIP6:
		return g.linktype(etherTypeIPv6)
	case ProtoARP:
		return g.linktype(etherTypeARP)
	case ProtoRARP:
		return g.linktype(etherTypeRARP)
	case ProtoTCP:
		return g.ipProto(ProtoDefault, ipprotoTCP)
	case ProtoUDP:
		return g.ipProto(ProtoDefault, ipprotoUDP)
	case ProtoSCTP:
		return g.ipProto(ProtoDefault, ipprotoSCTP)
	case ProtoICMP:
		return g.ipProto(ProtoIP, ipprotoICMP)
	case ProtoICMP6:
		return g.ipProto(ProtoIP6, ipprotoICMPv6)
	case ProtoIGMP:
		return g.ipProto(ProtoIP, ipprotoIGMP)
	case ProtoIGRP:
		return g.ipProto(ProtoIP, ipprotoIGRP)
	case ProtoPIM:
		return g.ipProto(ProtoDefault, ipprotoPIM)
	case ProtoVRRP, ProtoCARP:
		return g.ipProto(ProtoIP, ipprotoVRRP)
	case ProtoAH:
		return g.ipProto(ProtoDefault, ipprotoAH)
	case ProtoESP:
		return g.ipProto(ProtoDefault, ipprotoESP)
	case ProtoLink:
		g.failAt(at, "a link-layer protocol keyword alone is not a filter: it qualifies host, net, proto, broadcast or multicast")
	}
	if isLANProto(p) {
		return g.lanAbbrev(p, at)
	}
	g.failAt(at, "internal error: protocol %d alone", p)
	return cond{}
}

// ipProto is "ip proto v" (q ProtoIP), "ip6 proto v" (ProtoIP6) or "proto
// v" (ProtoDefault: the first, then the second). The IPv6 test also finds
// v behind a fragment header.
func (g *gen) ipProto(q Proto, v uint32) cond {
	switch q {
	case ProtoDefault:
		c := g.ipProto(ProtoIP, v)
		return or(c, g.ipProto(ProtoIP6, v))
	case ProtoIP:
		lt := g.linktype(etherTypeIP)
		return and(lt, g.eq(g.lay.net.at(ipv4ProtoOff), 1, v))
	}
	lt := g.linktype(etherTypeIPv6)
	c := g.eq(g.lay.net.at(ipv6NextOff), 1, v)
	frag := g.eq(g.lay.net.at(ipv6NextOff), 1, ipprotoFragment)
	frag = and(frag, g.eq(g.lay.net.at(ipv6HdrLen), 1, v))
	return and(lt, or(c, frag))
}

// qualified is "[proto] [dir] [type] id".
func (g *gen) qualified(n *Qualified) cond {
	q := n.Q
	// Checks that hold whatever the protocol: the LAN protocols' part
	// makes the same ones.
	switch q.Type {
	case TypeGateway:
		if n.ID.Kind == IDNum || n.ID.Kind == IDIPv4 {
			g.failAt(n, "'gateway' requires a name")
		}
		// libpcap 1.10 built with IPv6, as it is everywhere, has no
		// gateway primitive.
		g.failAt(n, "'gateway' is not supported (libpcap 1.10 built with IPv6 rejects it)")
	case TypePort, TypePortRange:
		switch q.Proto {
		case ProtoDefault, ProtoTCP, ProtoUDP, ProtoSCTP:
		default:
			if !isLANProto(q.Proto) {
				g.failAt(n, "illegal qualifier of '%s': it applies to tcp, udp and sctp only", typeKeywords[q.Type])
			}
		}
	case TypeProtochain:
		switch q.Proto {
		case ProtoDefault, ProtoIP, ProtoIP6:
		default:
			if !isLANProto(q.Proto) {
				g.failAt(n, "bad protocol applied for 'protochain': it applies to ip and ip6 only")
			}
		}
	}
	switch n.ID.Kind {
	case IDARCnet:
		g.failAt(n, "ARCnet addresses apply only to ARCnet link types")
	case IDMAC:
		if q.Proto != ProtoLink {
			g.failAt(n, "ethernet address used in non-ether expression: a MAC address needs 'ether host' (or link, ...)")
		}
		return g.etherQualified(n)
	case IDIPv6:
		return g.qualifiedIPv6(n)
	}
	if q.Proto == ProtoLink {
		if n.ID.Kind == IDIPv4 {
			g.failAt(n, "illegal link layer address: an IPv4 address with a link-layer qualifier")
		}
		return g.etherQualified(n)
	}
	if isLANProto(q.Proto) {
		return g.lanQualified(n)
	}
	if q.Proto >= numProtos {
		g.failAt(n, "internal error: protocol %d", q.Proto)
	}
	switch n.ID.Kind {
	case IDIPv4:
		return g.qualifiedIPv4(n)
	case IDNum:
		return g.qualifiedNum(n)
	case IDName:
		return g.qualifiedName(n)
	}
	g.failAt(n, "internal error: id kind %d", n.ID.Kind)
	return cond{}
}

// failID is fail at an id, naming it.
func (g *gen) failID(id *ID, format string, args ...any) {
	g.fail(id.IDPos, wordAt(g.expr, id.IDPos), format, args...)
}

// typeName is "host" or "net", for messages.
func typeName(t Type) string {
	if t == TypeNet {
		return "net"
	}
	return "host"
}

// qualifiedIPv6 is a primitive whose id is an IPv6 address, with or
// without a mask length.
func (g *gen) qualifiedIPv6(n *Qualified) cond {
	q := n.Q
	if n.Mask != nil {
		g.failID(n.Mask, "an IPv6 network takes a mask length ('/len'), not 'mask'")
	}
	a, err := netip.ParseAddr(n.ID.Text)
	if err != nil || !a.Is6() || a.Zone() != "" {
		g.failID(&n.ID, "invalid IPv6 address %s", n.ID.Text)
	}
	bits := 128
	if n.MaskLen >= 0 {
		bits = n.MaskLen
	}
	if bits > 128 {
		g.failID(&n.ID, "mask length must be <= 128")
	}
	addr := a.As16()
	var mask [16]byte
	for i := range mask {
		switch {
		case bits >= 8*(i+1):
			mask[i] = 0xff
		case bits > 8*i:
			mask[i] = byte(0xff << (8 - (bits - 8*i)))
		}
		if addr[i]&^mask[i] != 0 {
			g.failID(&n.ID, "non-network bits set in \"%s/%d\"", n.ID.Text, bits)
		}
	}
	switch q.Type {
	case TypeDefault, TypeHost:
		if bits != 128 {
			g.failAt(n, "mask syntax is for networks only: use 'net' with '/%d'", bits)
		}
	case TypeNet:
	default:
		g.failAt(n, "invalid qualifier against IPv6 address: '%s' takes no address", typeKeywords[q.Type])
	}
	return g.host6(n, addr, mask, q.Proto, q.Dir)
}

// qualifiedIPv4 is a primitive whose id is dotted IPv4 digits, possibly
// partial ("10.1"), with or without a mask.
func (g *gen) qualifiedIPv4(n *Qualified) cond {
	q := n.Q
	addr, bits, ok := atoin(n.ID.Text)
	if !ok {
		g.failID(&n.ID, "invalid IPv4 address '%s'", n.ID.Text)
	}
	// A partial address is the leading bytes: "10.1" is 10.1.0.0.
	addr <<= 32 - bits
	if n.Mask != nil || n.MaskLen >= 0 {
		var mask uint32
		var written string
		if n.Mask != nil {
			m, mbits, ok := atoin(n.Mask.Text)
			if !ok {
				g.failID(n.Mask, "invalid IPv4 address '%s'", n.Mask.Text)
			}
			mask = m << (32 - mbits)
			written = fmt.Sprintf("%s mask %s", n.ID.Text, n.Mask.Text)
		} else {
			if n.MaskLen > 32 {
				g.failID(&n.ID, "mask length must be <= 32")
			}
			if n.MaskLen > 0 {
				mask = 0xffffffff << (32 - n.MaskLen)
			}
			written = fmt.Sprintf("%s/%d", n.ID.Text, n.MaskLen)
		}
		if addr&^mask != 0 {
			g.failID(&n.ID, "non-network bits set in \"%s\"", written)
		}
		if q.Type != TypeNet {
			g.failAt(n, "mask syntax is for networks only: use 'net %s'", written)
		}
		return g.host4(n, addr, mask, q.Proto, q.Dir, q.Type)
	}
	switch q.Type {
	case TypeDefault, TypeHost, TypeNet:
		// A partial address matches its leading bytes, as host or net.
		var mask uint32 = 0xffffffff << (32 - bits)
		return g.host4(n, addr, mask, q.Proto, q.Dir, q.Type)
	}
	g.failAt(n, "'%s' modifier applied to IP address %s", typeKeywords[q.Type], n.ID.Text)
	return cond{}
}

// atoin parses dotted decimal digits as libpcap does: up to four parts,
// each at most 255. It returns the parts joined (big-endian) and their
// number of bits.
func atoin(s string) (addr uint32, bits int, ok bool) {
	i := 0
	for {
		var part uint32
		for i < len(s) && s[i] != '.' {
			if part > 25 || s[i] < '0' || s[i] > '9' {
				return 0, 0, false
			}
			part = part*10 + uint32(s[i]-'0')
			i++
		}
		if part > 255 || bits == 32 {
			return 0, 0, false
		}
		addr = addr<<8 | part
		bits += 8
		if i == len(s) {
			return addr, bits, true
		}
		i++
	}
}

// qualifiedNum is a primitive whose id is a number.
func (g *gen) qualifiedNum(n *Qualified) cond {
	q := n.Q
	v := n.ID.Num
	if n.Mask != nil || n.MaskLen >= 0 {
		g.failAt(n, "a network with a mask is written in dotted form, such as 10.0.0.0/8")
	}
	switch q.Type {
	case TypeDefault, TypeHost:
		return g.host4(n, v, 0xffffffff, q.Proto, q.Dir, q.Type)
	case TypeNet:
		// A short network number is the leading bytes: "net 10" is
		// 10.0.0.0/8, "net 0x0a01" 10.1.0.0/16.
		mask := uint32(0xffffffff)
		for v != 0 && v&0xff000000 == 0 {
			v <<= 8
			mask <<= 8
		}
		return g.host4(n, v, mask, q.Proto, q.Dir, q.Type)
	case TypePort, TypePortRange:
		if err := checkPort(v); err != nil {
			g.failID(&n.ID, "%v", err)
		}
		return g.port(n, v, v, transportOf(q.Proto), q.Dir, q.Type == TypePortRange)
	case TypeProto:
		return g.proto(n, v)
	case TypeProtochain:
		return g.protochain(n, q.Proto, v)
	}
	g.failAt(n, "internal error: type %d", q.Type)
	return cond{}
}

// transportOf is the transport a port primitive with protocol qualifier
// p tests.
func transportOf(p Proto) int {
	switch p {
	case ProtoTCP:
		return ipprotoTCP
	case ProtoUDP:
		return ipprotoUDP
	case ProtoSCTP:
		return ipprotoSCTP
	}
	return anyTransport
}

// qualifiedName is a primitive whose id is a name: a host, network,
// service, port range or protocol.
func (g *gen) qualifiedName(n *Qualified) cond {
	q := n.Q
	name := n.ID.Text
	if n.Mask != nil || n.MaskLen >= 0 {
		g.failAt(n, "a network with a mask is written in dotted form, such as 10.0.0.0/8")
	}
	switch q.Type {
	case TypeNet:
		addr, mask, err := netAddrMask(name)
		if err != nil {
			g.failID(&n.ID, "%v", err)
		}
		return g.host4(n, addr, mask, q.Proto, q.Dir, q.Type)
	case TypeDefault, TypeHost:
		return g.hostName(n)
	case TypePort:
		port, transport, err := servicePort(name, q.Proto)
		if err != nil {
			g.failID(&n.ID, "%v", err)
		}
		return g.port(n, uint32(port), uint32(port), transport, q.Dir, false)
	case TypePortRange:
		lo, hi, transport, err := portRange(name, q.Proto)
		if err != nil {
			g.failID(&n.ID, "%v", err)
		}
		return g.port(n, uint32(lo), uint32(hi), transport, q.Dir, true)
	case TypeProto, TypeProtochain:
		switch q.Proto {
		case ProtoDefault, ProtoIP, ProtoIP6:
		default:
			g.failID(&n.ID, "unknown protocol: %s ('%s proto' takes no names)", name, protoKeyword(q.Proto))
		}
		v, ok := lookupProtocol(name)
		if !ok {
			g.failID(&n.ID, "unknown ip proto '%s'", name)
		}
		if q.Type == TypeProto {
			return g.proto(n, uint32(v))
		}
		return g.protochain(n, q.Proto, uint32(v))
	}
	g.failAt(n, "internal error: type %d", q.Type)
	return cond{}
}

// hostName is "[proto] [dir] [host] NAME": every address the name has,
// each tested as "host ADDR" with the same qualifiers, or'ed, the IPv4
// addresses first. An ip qualifier skips the IPv6 addresses, ip6 the
// IPv4 ones.
func (g *gen) hostName(n *Qualified) cond {
	q := n.Q
	v4, v6, err := lookupHost(n.ID.Text)
	if err != nil {
		g.failID(&n.ID, "unknown host '%s'", n.ID.Text)
	}
	p4, p6 := q.Proto, q.Proto
	if p4 == ProtoDefault && !g.hasLinkTypeField() {
		// Without a link-layer type field, libpcap tests an IPv4
		// address in IPv4 alone, not in ARP and RARP.
		p4, p6 = ProtoIP, ProtoIP6
	}
	c := konst(false)
	any := false
	if q.Proto != ProtoIP6 {
		for _, a := range v4 {
			b := a.As4()
			addr := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			c = g.orAlt(c, any, g.host4(n, addr, 0xffffffff, p4, q.Dir, TypeHost))
			any = true
		}
	}
	if q.Proto != ProtoIP {
		full := [16]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
		for _, a := range v6 {
			c = g.orAlt(c, any, g.host6(n, a.As16(), full, p6, q.Dir))
			any = true
		}
	}
	if !any {
		if q.Proto == ProtoDefault {
			g.failID(&n.ID, "unknown host '%s'", n.ID.Text)
		}
		g.failID(&n.ID, "unknown host '%s' for specified address family", n.ID.Text)
	}
	return c
}

// orAlt is "c or alt", alt alone for the first alternative.
func (g *gen) orAlt(c cond, any bool, alt cond) cond {
	if !any {
		return alt
	}
	return or(c, alt)
}

// hasLinkTypeField reports whether the link type has a field that says
// which network protocol a packet carries (libpcap's choice of what
// "host NAME" tests hangs on it).
func (g *gen) hasLinkTypeField() bool {
	switch g.link {
	case LinkRaw, LinkIPv4, LinkIPv6:
		return false
	}
	return true
}

// host4 is "[proto] [dir] host|net" of an IPv4 address: the address
// masked with mask is addr. Without a protocol it is tested in IPv4, ARP
// and RARP, in that order (IPv4 alone inside MPLS).
func (g *gen) host4(n *Qualified, addr, mask uint32, p Proto, d Dir, t Type) cond {
	switch p {
	case ProtoDefault:
		c := g.hostOp4(n, addr, mask, d, etherTypeIP, ipv4SrcOff, ipv4DstOff)
		if g.inMPLS() {
			return c
		}
		c = or(c, g.hostOp4(n, addr, mask, d, etherTypeARP, arpSrcOff, arpDstOff))
		return or(c, g.hostOp4(n, addr, mask, d, etherTypeRARP, arpSrcOff, arpDstOff))
	case ProtoIP:
		return g.hostOp4(n, addr, mask, d, etherTypeIP, ipv4SrcOff, ipv4DstOff)
	case ProtoARP:
		return g.hostOp4(n, addr, mask, d, etherTypeARP, arpSrcOff, arpDstOff)
	case ProtoRARP:
		return g.hostOp4(n, addr, mask, d, etherTypeRARP, arpSrcOff, arpDstOff)
	case ProtoIP6:
		g.failAt(n, "'ip6' modifier applied to ip %s: an IPv6 %s needs an IPv6 address", typeName(t), typeName(t))
	}
	g.failAt(n, "'%s' modifier applied to %s: %ss are ip, arp or rarp", protoKeyword(p), typeName(t), typeName(t))
	return cond{}
}

// hostOp4 tests the address in a header of Ethernet type et, the source
// at srcOff and the destination at dstOff.
func (g *gen) hostOp4(n *Qualified, addr, mask uint32, d Dir, et uint32, srcOff, dstOff uint32) cond {
	one := func(off uint32) cond {
		lt := g.linktype(et)
		return and(lt, g.cmpMask(g.lay.net.at(off), 4, mask, opJeq, addr))
	}
	return g.byDir(n, d, "addresses other than 802.11 MAC addresses", func() cond { return one(srcOff) }, func() cond { return one(dstOff) })
}

// byDir combines the source and destination tests as the direction
// qualifier says, the source first.
func (g *gen) byDir(n *Qualified, d Dir, what string, src, dst func() cond) cond {
	switch d {
	case DirSrc:
		return src()
	case DirDst:
		return dst()
	case DirSrcAndDst:
		s := src()
		return and(s, dst())
	case DirDefault, DirSrcOrDst:
		s := src()
		return or(s, dst())
	}
	g.failAt(n, "'%s' is not a valid qualifier for %s", dirKeywords[d], what)
	return cond{}
}

// host6 is "[ip6] [dir] host|net" of an IPv6 address.
func (g *gen) host6(n *Qualified, addr, mask [16]byte, p Proto, d Dir) cond {
	if p != ProtoDefault && p != ProtoIP6 {
		t := typeName(n.Q.Type)
		g.failAt(n, "'%s' modifier applied to ip6 %s: an IPv6 address is tested in ip6 only", protoKeyword(p), t)
	}
	one := func(off uint32) cond {
		c := g.linktype(etherTypeIPv6)
		for i := uint32(0); i < 4; i++ {
			a := uint32(addr[4*i])<<24 | uint32(addr[4*i+1])<<16 | uint32(addr[4*i+2])<<8 | uint32(addr[4*i+3])
			m := uint32(mask[4*i])<<24 | uint32(mask[4*i+1])<<16 | uint32(mask[4*i+2])<<8 | uint32(mask[4*i+3])
			c = and(c, g.cmpMask(g.lay.net.at(off+4*i), 4, m, opJeq, a))
		}
		return c
	}
	return g.byDir(n, d, "addresses other than 802.11 MAC addresses", func() cond { return one(ipv6SrcOff) }, func() cond { return one(ipv6DstOff) })
}

// proto is "[ip|ip6] proto v".
func (g *gen) proto(n *Qualified, v uint32) cond {
	if n.Q.Dir != DirDefault {
		g.failAt(n, "direction applied to 'proto'")
	}
	switch n.Q.Proto {
	case ProtoDefault, ProtoIP, ProtoIP6:
		return g.ipProto(n.Q.Proto, v)
	case ProtoARP, ProtoRARP:
		g.failAt(n, "%s does not encapsulate another protocol", protoKeyword(n.Q.Proto))
	}
	g.failAt(n, "'%s proto' is bogus: only ip, ip6 (and link, iso, isis) take 'proto'", protoKeyword(n.Q.Proto))
	return cond{}
}

// port is "[tcp|udp|sctp] [dir] port|portrange": the IPv6 test first,
// then IPv4's; transport is ipprotoTCP, ipprotoUDP, ipprotoSCTP or
// anyTransport for all three (SCTP, TCP, UDP in that order).
func (g *gen) port(n *Qualified, lo, hi uint32, transport int, d Dir, isRange bool) cond {
	if lo > hi {
		lo, hi = hi, lo
	}
	switch d {
	case DirDefault, DirSrc, DirDst, DirSrcOrDst, DirSrcAndDst:
	default:
		g.failAt(n, "'%s' is not a valid qualifier for ports", dirKeywords[d])
	}
	all := [...]uint32{ipprotoSCTP, ipprotoTCP, ipprotoUDP}
	transports := all[:]
	if transport != anyTransport {
		all[0] = uint32(transport)
		transports = all[:1]
	}
	net := g.lay.net
	c6 := g.linktype(etherTypeIPv6)
	alts := konst(false)
	for i, tr := range transports {
		pr := g.eq(net.at(ipv6NextOff), 1, tr)
		alts = g.orAlt(alts, i > 0, and(pr, g.ports(net, true, d, lo, hi, isRange)))
	}
	c6 = and(c6, alts)

	c4 := g.linktype(etherTypeIP)
	alts = konst(false)
	for i, tr := range transports {
		pr := g.eq(net.at(ipv4ProtoOff), 1, tr)
		pr = and(pr, not(g.cmp(net.at(ipv4FragOff), 2, opJset, ipv4FragMask)))
		alts = g.orAlt(alts, i > 0, and(pr, g.ports(net, false, d, lo, hi, isRange)))
	}
	c4 = and(c4, alts)
	return or(c6, c4)
}

// ports tests the source and destination ports of the header after the
// IPv6 (v6) or IPv4 header at net as direction d says (port has checked it),
// the source first: byDir without closures, for the commonest primitive.
func (g *gen) ports(net offset, v6 bool, d Dir, lo, hi uint32, isRange bool) cond {
	switch d {
	case DirSrc:
		return g.portAtom(net, v6, 0, lo, hi, isRange)
	case DirDst:
		return g.portAtom(net, v6, 2, lo, hi, isRange)
	}
	src := g.portAtom(net, v6, 0, lo, hi, isRange)
	dst := g.portAtom(net, v6, 2, lo, hi, isRange)
	if d == DirSrcAndDst {
		return and(src, dst)
	}
	return or(src, dst)
}

// portAtom tests the port field at off bytes into the transport header.
func (g *gen) portAtom(net offset, v6 bool, off, lo, hi uint32, isRange bool) cond {
	if !isRange {
		return g.test(g.portLoad(net, v6, off), opJeq, lo)
	}
	ge := g.test(g.portLoad(net, v6, off), opJge, lo)
	return and(ge, not(g.test(g.portLoad(net, v6, off), opJgt, hi)))
}

// portLoad returns the statements that load the port field at off bytes
// into the transport header.
func (g *gen) portLoad(net offset, v6 bool, off uint32) []insn {
	if v6 {
		return g.loadStmts(net.at(ipv6HdrLen+off), 2, 0)
	}
	return g.ipv4TransportLoad(off, 2)
}

// ipv4TransportLoad returns the instructions that load size bytes at off
// bytes into the header after an IPv4 header, whose length they read
// from the header (they change X).
func (g *gen) ipv4TransportLoad(off uint32, size int) []insn {
	net := g.lay.net
	if net.reg < 0 {
		s := g.mem.stmts(2, 0)
		s[0], s[1] = stmt(opLdxMSH, net.k), stmt(loadOps[size][1], net.k+off)
		return s
	}
	return append(g.ipv4Transport(net), stmt(loadOps[size][1], net.k+off))
}

// inMPLS reports whether the primitives now generated are inside MPLS.
func (g *gen) inMPLS() bool { return g.lay.mpls > 0 }

// protochain is "[ip|ip6] protochain v": v is the protocol of the IPv4
// or IPv6 header, or of a header behind a chain of IPv6 extension headers
// and AH headers. The program loops over the chain, with A the protocol
// at hand and X where its header starts.
func (g *gen) protochain(n *Qualified, p Proto, v uint32) cond {
	g.inet.protochain = true
	switch p {
	case ProtoDefault:
		c := g.protochain(n, ProtoIP, v)
		return or(c, g.protochain(n, ProtoIP6, v))
	case ProtoIP, ProtoIP6:
	default:
		g.failAt(n, "bad protocol applied for 'protochain': it applies to ip and ip6 only")
	}
	if g.lay.net.reg >= 0 {
		g.failAt(n, "'protochain' is not supported after headers of variable length (such as geneve's)")
	}
	base := g.lay.net.k
	et := uint32(etherTypeIP)
	if p == ProtoIP6 {
		et = etherTypeIPv6
	}
	lt := g.linktype(et)
	if lt.isConst() && !lt.val {
		// libpcap keeps the dead test and turns its optimiser off, so the
		// expression compiles even where it can never match.
		lt = g.test([]insn{stmt(opLdImm, 1)}, opJeq, 0)
	}
	reg := g.allocReg()
	defer g.freeReg(reg)

	var start []insn
	if p == ProtoIP {
		start = []insn{stmt(opLdBAbs, base+ipv4ProtoOff), stmt(opLdxMSH, base)}
	} else {
		start = []insn{stmt(opLdBAbs, base+ipv6NextOff), stmt(opLdxImm, ipv6HdrLen)}
	}
	enter := g.newBlock(blockJump, start)
	loop := g.test(nil, opJeq, v)
	enter.jt = loop.entry
	noNext := g.test(nil, opJeq, ipprotoNoNext)
	patch(loop.f, noNext.entry)
	done := join(loop.t, noNext.t) // exits to the final test
	notExt := noNext.f
	if p == ProtoIP6 {
		// An IPv6 extension header: its next header at 0, its length in
		// 8-byte units, less 1, at 1.
		var ext exits
		for _, h := range []uint32{ipprotoHopOpts, ipprotoDstOpts, ipprotoRouting, ipprotoFragment} {
			t := g.test(nil, opJeq, h)
			patch(notExt, t.entry)
			ext = join(ext, t.t)
			notExt = t.f
		}
		step := g.newBlock(blockJump, []insn{
			stmt(opLdBInd, base),
			stmt(opSt, uint32(reg)),
			stmt(opLdBInd, base+1),
			stmt(opALU|aluAdd, 1),
			stmt(opALU|aluMul, 8),
			stmt(opALU|aluAdd|opSrcX, 0),
			stmt(opTax, 0),
			stmt(opLdMem, uint32(reg)),
		})
		step.jt = loop.entry
		patch(ext, step)
	}
	// AH: its next header at 0, its length in 4-byte units, less 2, at 1.
	// As in libpcap, X becomes that length (from the network header's
	// start), not the offset past the AH header.
	ah := g.test(nil, opJeq, ipprotoAH)
	patch(notExt, ah.entry)
	done = join(done, ah.f)
	ahStep := g.newBlock(blockJump, []insn{
		stmt(opTxa, 0),
		stmt(opLdBInd, base),
		stmt(opSt, uint32(reg)),
		stmt(opTxa, 0),
		stmt(opALU|aluAdd, 1),
		stmt(opTax, 0),
		stmt(opLdBInd, base),
		stmt(opALU|aluAdd, 2),
		stmt(opALU|aluMul, 4),
		stmt(opTax, 0),
		stmt(opLdMem, uint32(reg)),
	})
	ahStep.jt = loop.entry
	patch(ah.t, ahStep)
	final := g.test(nil, opJeq, v)
	patch(done, final.entry)
	return and(lt, cond{entry: enter, t: final.t, f: final.f})
}

// broadcast is "[proto] broadcast".
func (g *gen) broadcast(n *Special) cond {
	switch n.Proto {
	case ProtoDefault, ProtoLink:
		return g.etherBroadcast(n)
	case ProtoIP:
		if g.netmask == 0xffffffff {
			g.failAt(n, "netmask not known, so 'ip broadcast' not supported")
		}
		// The host part of the destination is all zeros or all ones.
		host := ^g.netmask
		lt := g.linktype(etherTypeIP)
		zeros := g.cmpMask(g.lay.net.at(ipv4DstOff), 4, host, opJeq, 0)
		ones := g.cmpMask(g.lay.net.at(ipv4DstOff), 4, host, opJeq, host)
		return and(lt, or(zeros, ones))
	}
	g.failAt(n, "only link-layer/IP broadcast filters supported, not '%s broadcast'", protoKeyword(n.Proto))
	return cond{}
}

// multicast is "[proto] multicast".
func (g *gen) multicast(n *Special) cond {
	switch n.Proto {
	case ProtoDefault, ProtoLink:
		return g.etherMulticast(n)
	case ProtoIP:
		lt := g.linktype(etherTypeIP)
		return and(lt, g.cmp(g.lay.net.at(ipv4DstOff), 1, opJge, 224))
	case ProtoIP6:
		lt := g.linktype(etherTypeIPv6)
		return and(lt, g.eq(g.lay.net.at(ipv6DstOff), 1, 255))
	}
	g.failAt(n, "multicast filters apply to the link layer, ip and ip6, not '%s'", protoKeyword(n.Proto))
	return cond{}
}
