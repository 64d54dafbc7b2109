package pcapfilter

import "fmt"

// The link layer: where each layer starts for the link type, how to test
// the link layer's protocol field, and what vlan, mpls, pppoes and geneve
// change for the rest of the expression.
//
// libpcap's rules, as its compiler shows them (tcpdump -O -d):
//   - vlan, mpls, pppoes and geneve move the layers for every primitive
//     that comes after them in the expression text, whatever the and/or
//     structure: "vlan or ip" tests ip 4 bytes further in.
//   - vlan: Ethernet only (after geneve too); never after mpls.
//   - mpls: Ethernet or PPP (after pppoes); each label moves the network
//     layer 4 bytes; after a label, ip and ip6 test the bottom-of-stack bit
//     and the version nibble, and every other protocol is an error. The
//     label count survives geneve.
//   - pppoes: on every link type (on raw IP its Ethernet type test is
//     false); after it the link layer is PPP, whose protocol numbers stand
//     for some Ethernet types (pppProto).
//   - geneve: IPv4 or IPv6 UDP to port 6081, on every link type; after it
//     the layers are those of the encapsulated frame, at offsets the
//     program computes into scratch memory.

// linkKind is how the link layer says which protocol it carries.
type linkKind uint8

const (
	linkEther linkKind = iota // a 2-byte Ethernet type, or 802.3 length, at lay.linkType
	linkSLL                   // a Linux cooked capture's protocol field at lay.linkType (v1 or v2: g.link tells)
	linkRawIP                 // no link header: the IP version nibble tells
	linkIPv4                  // no link header, and always IPv4
	linkIPv6                  // no link header, and always IPv6
	linkPPP                   // after pppoes: a 2-byte PPP protocol number at lay.linkType
)

// layers is where the layers of the packet are, for the primitives that
// come next in the expression. Offsets are variable (reg >= 0) after
// geneve. Every field stays right after vlan, mpls, pppoes and geneve.
type layers struct {
	kind linkKind
	// linkHdr is the link-layer header: what ether[] and link[] read, and
	// where Ethernet addresses are. After pppoes it is the PPP protocol
	// field; after geneve, the encapsulated frame.
	linkHdr offset
	// linkType is the link layer's protocol field (linkEther, linkSLL,
	// linkPPP).
	linkType offset
	// net is the network-layer header: what ip[], arp[] and the like read.
	// On Ethernet and Linux cooked v1 it is also where the LLC header is
	// when there is one. The two differ after a geneve whose frame has no
	// Ethernet header (linkType is then Geneve's protocol type field), and
	// libpcap reads the LLC header at net for llc, IPX, SNAP and the
	// two-byte SAP tests (0x0606, 0xf0f0, 0xfefe), but a lone DSAP at
	// linkType+2.
	net offset
	// mpls is the number of MPLS labels the expression has gone past.
	mpls int
	// innerHdr and innerNet are, after geneve, the scratch memory words
	// that hold the start of the encapsulated frame and of its payload:
	// they are equal when the frame has no Ethernet header, which Ethernet
	// addresses then never match. -1 before any geneve.
	innerHdr, innerNet int
	// sawGeneve is set by the first geneve: libpcap does not optimise an
	// expression with one, so never finds that it rejects all packets.
	sawGeneve bool
}

// initLayers sets the layers for the link type, or fails for a link type
// the compiler does not support.
func (g *gen) initLayers() {
	switch g.link {
	case LinkEthernet:
		g.lay = layers{kind: linkEther, linkHdr: abs(0), linkType: abs(12), net: abs(14)}
	case LinkLinuxSLL:
		g.lay = layers{kind: linkSLL, linkHdr: abs(0), linkType: abs(14), net: abs(16)}
	case LinkLinuxSLL2:
		g.lay = layers{kind: linkSLL, linkHdr: abs(0), linkType: abs(0), net: abs(20)}
	case LinkRaw:
		g.lay = layers{kind: linkRawIP, linkHdr: abs(0), net: abs(0)}
	case LinkIPv4:
		g.lay = layers{kind: linkIPv4, linkHdr: abs(0), net: abs(0)}
	case LinkIPv6:
		g.lay = layers{kind: linkIPv6, linkHdr: abs(0), net: abs(0)}
	default:
		g.fail(-1, "", "the Go compiler does not support link type %v (it supports %s); WithLibpcap() compiles for it", g.link, supportedLinks)
	}
	g.lay.innerHdr, g.lay.innerNet = -1, -1
}

// linkName is the name libpcap's messages give the link layer now.
func (g *gen) linkName() string {
	switch g.lay.kind {
	case linkEther:
		return "Ethernet"
	case linkSLL:
		if g.link == LinkLinuxSLL2 {
			return "Linux cooked v2"
		}
		return "Linux cooked v1"
	case linkRawIP:
		return "Raw IP"
	case linkIPv4:
		return "Raw IPv4"
	case linkIPv6:
		return "Raw IPv6"
	case linkPPP:
		return "PPP"
	}
	return g.link.String()
}

// Ethernet types the generator tests.
const (
	etherTypeIP     = 0x0800
	etherTypeIPv6   = 0x86dd
	etherTypeVLAN   = 0x8100
	etherTypeQinQ   = 0x88a8
	etherTypeQinQ2  = 0x9100
	etherTypeMPLS   = 0x8847
	etherTypePPPoED = 0x8863
	etherTypePPPoES = 0x8864
	etherTypeTEB    = 0x6558 // transparent Ethernet bridging: Geneve's Ethernet payload
	etherMTU        = 1500   // a larger value in the type field is an Ethernet type, not a length

	pppMPLS    = 0x0281 // PPP's protocol number of MPLS unicast
	genevePort = 6081
)

// pppProto returns the PPP protocol number that stands for an Ethernet
// type (or LLC SAP) after pppoes; the others stand for themselves.
func pppProto(proto uint32) uint32 {
	switch proto {
	case etherTypeIP:
		return 0x0021
	case etherTypeIPv6:
		return 0x0057
	case 0x6003: // DECnet
		return 0x0027
	case etherTypeAtalk:
		return 0x0029
	case 0x0600: // Xerox NS IDP
		return 0x0025
	case 0xfe: // ISO SAP
		return 0x0023
	case 0xe0: // IPX SAP
		return 0x002b
	case 0x42: // spanning tree SAP
		return 0x0031
	}
	return proto
}

// linktype returns the test that the link layer carries protocol proto:
// an Ethernet type, or for values up to 1500 an LLC SAP.
func (g *gen) linktype(proto uint32) cond {
	switch g.lay.kind {
	case linkEther, linkPPP:
		if g.lay.mpls > 0 {
			return g.mplsLinktype(proto)
		}
		if g.lay.kind == linkPPP {
			return g.eq(g.lay.linkType, 2, pppProto(proto))
		}
		if proto <= etherMTU || proto == etherTypeAtalk || proto == etherTypeAARP {
			return g.llcLinktype(proto)
		}
		return g.eq(g.lay.linkType, 2, proto)
	case linkSLL:
		// Linux cooked v2 compares the field with every value alike.
		if g.link != LinkLinuxSLL2 && (proto <= etherMTU || proto == etherTypeAtalk || proto == etherTypeAARP) {
			return g.llcLinktype(proto)
		}
		return g.eq(g.lay.linkType, 2, proto)
	case linkRawIP:
		switch proto {
		case etherTypeIP:
			return g.cmpMask(g.lay.net, 1, 0xf0, opJeq, 0x40)
		case etherTypeIPv6:
			return g.cmpMask(g.lay.net, 1, 0xf0, opJeq, 0x60)
		}
		return konst(false)
	case linkIPv4:
		return konst(proto == etherTypeIP)
	case linkIPv6:
		return konst(proto == etherTypeIPv6)
	}
	g.fail(-1, "", "internal error: link kind %d", g.lay.kind)
	return cond{}
}

// mplsLinktype is linktype after an MPLS label: the label is the bottom
// of the stack, and the IP version nibble after it says 4 or 6.
func (g *gen) mplsLinktype(proto uint32) cond {
	var version uint32
	switch proto {
	case etherTypeIP:
		version = 0x40
	case etherTypeIPv6:
		version = 0x60
	default:
		g.fail(-1, "", "unsupported protocol over mpls")
	}
	return and(g.mplsBottom(1), g.cmpMask(g.lay.net, 1, 0xf0, opJeq, version))
}

// mplsBottom tests the bottom-of-stack bit of the last MPLS label, the
// low bit of its third byte: 1 for the last label, 0 when another follows.
func (g *gen) mplsBottom(v uint32) cond {
	return g.cmpMask(g.lay.net.at(^uint32(1)), 1, 0x01, opJeq, v) // net - 2
}

// vlan is "vlan [id]": an 802.1Q or 802.1ad tag, and the layers 4 bytes
// further for what comes after.
func (g *gen) vlan(n *Special) cond {
	switch {
	case g.lay.mpls > 0:
		g.failAt(n, "no VLAN match after MPLS")
	case g.lay.kind != linkEther:
		g.failAt(n, "no VLAN support for %s", g.linkName())
	case n.HasArg && n.Arg > 4095:
		g.failAt(n, "VLAN tag %d greater than maximum 4095", n.Arg)
	}
	c := or(or(g.eq(g.lay.linkType, 2, etherTypeVLAN), g.eq(g.lay.linkType, 2, etherTypeQinQ)),
		g.eq(g.lay.linkType, 2, etherTypeQinQ2))
	if n.HasArg {
		c = and(c, g.cmpMask(g.lay.net, 2, 0x0fff, opJeq, n.Arg))
	}
	g.lay.linkType = g.lay.linkType.at(4)
	g.lay.net = g.lay.net.at(4)
	return c
}

// mpls is "mpls [label]": an MPLS label (the first, or one more on the
// stack), and the network layer 4 bytes further.
func (g *gen) mpls(n *Special) cond {
	switch {
	case g.lay.kind != linkEther && g.lay.kind != linkPPP:
		g.failAt(n, "no MPLS support for %s", g.linkName())
	case n.HasArg && n.Arg > 0xfffff:
		g.failAt(n, "MPLS label %d greater than maximum 1048575", n.Arg)
	}
	var c cond
	switch {
	case g.lay.mpls > 0:
		c = g.mplsBottom(0)
	case g.lay.kind == linkPPP:
		c = g.eq(g.lay.linkType, 2, pppMPLS)
	default:
		c = g.eq(g.lay.linkType, 2, etherTypeMPLS)
	}
	if n.HasArg {
		c = and(c, g.cmpMask(g.lay.net, 4, 0xfffff000, opJeq, n.Arg<<12))
	}
	g.lay.net = g.lay.net.at(4)
	g.lay.mpls++
	return c
}

// pppoed is "pppoed": a PPPoE discovery frame.
func (g *gen) pppoed(n *Special) cond {
	if n.HasArg {
		g.failAt(n, "pppoed takes no session number")
	}
	return g.linktype(etherTypePPPoED)
}

// pppoes is "pppoes [session]": a PPPoE session frame, after which the
// link layer is PPP.
func (g *gen) pppoes(n *Special) cond {
	c := g.linktype(etherTypePPPoES)
	if n.HasArg {
		if n.Arg > 0xffff {
			g.failAt(n, "PPPoE session number %d greater than maximum 65535", n.Arg)
		}
		// The version, type and code bytes come first.
		c = and(c, g.cmpMask(g.lay.net, 4, 0xffff, opJeq, n.Arg))
	}
	// The PPPoE header is 6 bytes, then the PPP protocol field.
	g.lay.kind = linkPPP
	g.lay.linkHdr = g.lay.net.at(6)
	g.lay.linkType = g.lay.net.at(6)
	g.lay.net = g.lay.net.at(8)
	return c
}

// geneve is "geneve [vni]": a Geneve packet (UDP to port 6081 over IPv4
// or IPv6, version 0), after which the layers are those of the frame it
// carries. Where that frame starts depends on the IP header's and the
// Geneve options' lengths: the program stores the offsets in three words
// of scratch memory, and the frame is Ethernet when Geneve's protocol
// type says so (transparent Ethernet bridging), else its payload starts
// at once and the protocol type field stands for the link layer's.
func (g *gen) geneve(n *Special) cond {
	if n.HasArg && n.Arg > 0xffffff {
		g.failAt(n, "Geneve VNI %d greater than maximum 16777215", n.Arg)
	}
	g.lay.sawGeneve = true
	net := g.lay.net

	// IPv4: UDP, not a later fragment, to port 6081, Geneve version 0,
	// the VNI; then A = X = the UDP header's offset (less net.k).
	v4 := and(g.linktype(etherTypeIP), g.eq(net.at(9), 1, 17))
	v4 = and(v4, not(g.cmp(net.at(6), 2, opJset, 0x1fff)))
	// After the IPv4 header: X is set by ipv4Transport.
	after := func(k uint32, size int, mask uint32, v uint32) cond {
		s := append(g.ipv4Transport(net), stmt(loadOps[size][1], net.k+k))
		if mask != 0 {
			s = append(s, stmt(opALU|aluAnd, mask))
		}
		return g.test(s, opJeq, v)
	}
	v4 = and(v4, after(2, 2, 0, genevePort))
	v4 = and(v4, after(8, 1, 0xc0, 0))
	if n.HasArg {
		v4 = and(v4, after(12, 4, 0xffffff00, n.Arg<<8))
	}
	v4 = and(v4, g.test(append(g.ipv4Transport(net), stmt(opTxa, 0)), opJeq|opSrcX, 0))

	// IPv6: the next header is UDP (no extension headers), and the same.
	v6 := and(g.linktype(etherTypeIPv6), g.eq(net.at(6), 1, 17))
	v6 = and(v6, g.eq(net.at(40+2), 2, genevePort))
	v6 = and(v6, g.cmpMask(net.at(40+8), 1, 0xc0, opJeq, 0))
	if n.HasArg {
		v6 = and(v6, g.cmpMask(net.at(40+12), 4, 0xffffff00, opJeq, n.Arg<<8))
	}
	var s []insn
	if net.reg >= 0 {
		s = []insn{stmt(opLdxMem, uint32(net.reg)), stmt(opLdImm, 40), stmt(opALU|aluAdd|opSrcX, 0), stmt(opTax, 0)}
	} else {
		s = []insn{stmt(opLdImm, 40), stmt(opTax, 0)}
	}
	v6 = and(v6, g.test(s, opJeq|opSrcX, 0))

	c := or(v4, v6)
	if c.isConst() {
		// Neither IP version can be there (no link type makes both
		// constant, but stay safe): nothing after is reached.
		return c
	}

	// A is the UDP header's offset less net.k. The Geneve header follows
	// it; its protocol type is 2 bytes in, its options' length (in words)
	// in the low 6 bits of its first byte, and it is 8 bytes long without
	// them.
	typeReg, hdrReg, netReg := g.allocReg(), g.allocReg(), g.allocReg()
	j1 := g.newBlock(blockCond, []insn{
		stmt(opALU|aluAdd, net.k+8), stmt(opTax, 0), // X = the Geneve header
		stmt(opALU|aluAdd, 2), stmt(opSt, uint32(typeReg)), // its protocol type
		stmt(opLdBInd, 0), stmt(opALU|aluAnd, 0x3f), stmt(opALU|aluMul, 4),
		stmt(opALU|aluAdd, 8), stmt(opALU|aluAdd|opSrcX, 0), stmt(opSt, uint32(hdrReg)), // the frame it carries
		stmt(opLdHInd, 2), stmt(opLdxMem, uint32(hdrReg)),
	})
	j1.op, j1.k = opJeq, etherTypeTEB
	// An Ethernet frame: its type field is 12 bytes in, its payload 14.
	j2 := g.newBlock(blockJump, []insn{
		stmt(opTxa, 0), stmt(opALU|aluAdd, 12), stmt(opSt, uint32(typeReg)),
		stmt(opALU|aluAdd, 2), stmt(opTax, 0),
	})
	j3 := g.test([]insn{stmt(opStx, uint32(netReg)), stmt(opLdImm, 0)}, opJeq, 0)
	j1.jt, j1.jf, j2.jt = j2, j3.entry, j3.entry
	c = and(c, cond{entry: j1, t: join(j3.t, j3.f)})

	g.lay.kind = linkEther
	g.lay.linkType = offset{reg: typeReg}
	g.lay.linkHdr = offset{reg: hdrReg}
	g.lay.net = offset{reg: netReg}
	g.lay.innerHdr, g.lay.innerNet = hdrReg, netReg
	return c
}

// ipv4Transport returns the statements that set X to the offset of the
// header after the IPv4 header at net, less net.k: an indexed load of
// k = net.k + n after them reads n bytes into that header.
func (g *gen) ipv4Transport(net offset) []insn {
	// In the compilation's memory, with room for the loads callers
	// append (up to 4).
	if net.reg < 0 {
		s := g.mem.stmts(1, 4)
		s[0] = stmt(opLdxMSH, net.k)
		return s
	}
	s := g.mem.stmts(6, 4)
	s[0], s[1], s[2] = stmt(opLdxMem, uint32(net.reg)), stmt(opLdBInd, net.k), stmt(opALU|aluAnd, 0x0f)
	s[3], s[4], s[5] = stmt(opALU|aluLsh, 2), stmt(opALU|aluAdd|opSrcX, 0), stmt(opTax, 0)
	return s
}

// direction is inbound, outbound and ifindex. Linux cooked captures have
// the packet type (and v2 the interface index) in their header. Other
// link layers tell them only to a live capture on Linux, through the
// kernel's ancillary data, which no saved or fake packet has: there, as
// tcpdump -r does, they are refused.
func (g *gen) direction(n *Special) cond {
	const packetOutgoing = 4 // PACKET_OUTGOING
	// The link layer is the capture's, or PPP after pppoes, or Ethernet
	// after geneve, whichever came last.
	cooked := g.lay.kind == linkSLL
	where := linkDescription(g.link)
	switch {
	case g.lay.kind == linkPPP:
		where = "PPP"
	case g.lay.innerHdr >= 0:
		where = "Ethernet"
	}
	if n.Kind == SpecialIfindex {
		if cooked && g.link == LinkLinuxSLL2 {
			return g.eq(g.lay.linkHdr.at(4), 4, n.Arg)
		}
		g.failAt(n, "ifindex not supported on %s when reading savefiles", where)
	}
	var out cond
	switch {
	case cooked && g.link == LinkLinuxSLL2:
		out = g.eq(g.lay.linkHdr.at(10), 1, packetOutgoing)
	case cooked:
		out = g.eq(g.lay.linkHdr, 2, packetOutgoing)
	default:
		g.failAt(n, "inbound/outbound not supported on %s when reading savefiles", where)
	}
	if n.Kind == SpecialInbound {
		return not(out)
	}
	return out
}

// innerEther returns, after geneve, the test that the encapsulated frame
// has an Ethernet header (constant true before any geneve).
func (g *gen) innerEther() cond {
	if g.lay.innerHdr < 0 {
		return konst(true)
	}
	return not(g.test([]insn{stmt(opLdMem, uint32(g.lay.innerHdr)), stmt(opLdxMem, uint32(g.lay.innerNet))}, opJeq|opSrcX, 0))
}

// linkDescription returns the description libpcap gives a link type in
// its messages.
func linkDescription(l LinkType) string {
	switch l {
	case LinkEthernet:
		return "Ethernet"
	case LinkRaw:
		return "Raw IP"
	case LinkIPv4:
		return "Raw IPv4"
	case LinkIPv6:
		return "Raw IPv6"
	case LinkLinuxSLL:
		return "Linux cooked v1"
	case LinkLinuxSLL2:
		return "Linux cooked v2"
	}
	return fmt.Sprintf("DLT %d", int(l))
}

const etherOnlyMsg = "ethernet addresses supported only on ethernet/FDDI/token ring/802.11/ATM LANE/Fibre Channel"

// etherAddr returns the test that the Ethernet address at o is mac: its
// last 4 bytes, then its first 2.
func (g *gen) etherAddr(o offset, mac [6]byte) cond {
	lo := uint32(mac[2])<<24 | uint32(mac[3])<<16 | uint32(mac[4])<<8 | uint32(mac[5])
	hi := uint32(mac[0])<<8 | uint32(mac[1])
	return and(g.eq(o.at(2), 4, lo), g.eq(o, 2, hi))
}

// etherHost returns the test of Ethernet address mac in direction dir.
func (g *gen) etherHost(n *Qualified, mac [6]byte) cond {
	src := func() cond { return g.etherAddr(g.lay.linkHdr.at(6), mac) }
	dst := func() cond { return g.etherAddr(g.lay.linkHdr, mac) }
	var c cond
	switch n.Q.Dir {
	case DirSrc:
		c = src()
	case DirDst:
		c = dst()
	case DirSrcAndDst:
		c = and(src(), dst())
	case DirDefault, DirSrcOrDst:
		c = or(src(), dst())
	default:
		g.failAt(n, "%s", dirOnly80211(n.Q.Dir))
	}
	return c
}

// dirOnly80211 is libpcap's message for an 802.11 direction qualifier on
// another link layer.
func dirOnly80211(d Dir) string {
	switch d {
	case DirAddr1, DirAddr2, DirAddr3, DirAddr4:
		k := int(d-DirAddr1) + 1
		return fmt.Sprintf("'addr%d' and 'address%d' are only supported on 802.11 with 802.11 headers", k, k)
	case DirRA:
		return "'ra' is only supported on 802.11 with 802.11 headers"
	case DirTA:
		return "'ta' is only supported on 802.11 with 802.11 headers"
	}
	return "internal error: unknown direction"
}

// etherQualified is a qualified primitive of a link-layer protocol (ether,
// link, ppp, slip, fddi, tr, wlan: "ether host 01:02:03:04:05:06", "ether
// proto \ip"), or with a MAC address or an ARCnet address ($12) as its id
// whatever its protocol: those fail unless ether host.
func (g *gen) etherQualified(n *Qualified) cond {
	id := &n.ID
	if id.Kind == IDARCnet {
		// None of the supported link types is ARCnet, whatever the
		// qualifiers.
		g.failAt(n, "aid supported only on ARCnet")
	}
	if id.Kind == IDMAC && (n.Q.Proto != ProtoLink || (n.Q.Type != TypeDefault && n.Q.Type != TypeHost)) {
		g.failAt(n, "ethernet address used in non-ether expression")
	}
	if n.Q.Proto != ProtoLink {
		g.failAt(n, "internal error: etherQualified called for a protocol other than a link layer's")
	}
	switch n.Q.Type {
	case TypeDefault, TypeHost:
		switch id.Kind {
		case IDMAC:
			if g.lay.kind != linkEther {
				g.failAt(n, etherOnlyMsg)
			}
			mac, ok := parseMAC(id.Text)
			if !ok {
				g.fail(id.IDPos, id.Text, "bad ethernet address %q", id.Text)
			}
			return and(g.innerEther(), g.etherHost(n, mac))
		case IDName:
			if g.lay.kind != linkEther {
				g.failAt(n, "only ethernet/FDDI/token ring/802.11/ATM LANE/Fibre Channel supports link-level host name")
			}
			mac, ok := lookupEthers(id.Text)
			if !ok {
				g.fail(id.IDPos, id.Text, "unknown ether host '%s'", id.Text)
			}
			return and(g.innerEther(), g.etherHost(n, mac))
		case IDIPv6:
			g.fail(id.IDPos, id.Text, "link-layer modifier applied to ip6 host")
		}
		g.fail(id.IDPos, id.Text, "illegal link layer address")
	case TypeNet:
		switch id.Kind {
		case IDName:
			if _, ok := lookupNet(id.Text); !ok {
				g.fail(id.IDPos, id.Text, "unknown network '%s'", id.Text)
			}
			g.failAt(n, "link-layer modifier applied to net")
		case IDIPv6:
			g.fail(id.IDPos, id.Text, "link-layer modifier applied to ip6 net")
		case IDIPv4:
			if n.MaskLen >= 0 || n.Mask != nil {
				g.failAt(n, "link-layer modifier applied to net")
			}
		}
		g.fail(id.IDPos, id.Text, "illegal link layer address")
	case TypePort:
		g.failAt(n, "illegal qualifier of 'port'")
	case TypePortRange:
		g.failAt(n, "illegal qualifier of 'portrange'")
	case TypeGateway:
		if id.Kind == IDName {
			g.failAt(n, "'gateway' not supported in this configuration")
		}
		g.failAt(n, "'gateway' requires a name")
	case TypeProtochain:
		if id.Kind == IDName {
			if _, ok := lookupEtherProto(id.Text); !ok {
				g.fail(id.IDPos, id.Text, "unknown ether proto '%s'", id.Text)
			}
		}
		g.failAt(n, "bad protocol applied for 'protochain'")
	case TypeProto:
		switch id.Kind {
		case IDNum:
			return g.linktype(id.Num)
		case IDName:
			p, ok := lookupEtherProto(id.Text)
			if !ok {
				g.fail(id.IDPos, id.Text, "unknown ether proto '%s'", id.Text)
			}
			return g.linktype(uint32(p))
		case IDIPv6:
			g.fail(id.IDPos, id.Text, "invalid qualifier against IPv6 address")
		}
		g.fail(id.IDPos, id.Text, "'proto' modifier applied to ip host")
	}
	g.failAt(n, "internal error: unknown qualifier type %d", n.Q.Type)
	return cond{}
}

// parseMAC parses an Ethernet address as libpcap reads one: bytes of one
// or two hex digits, taken two at a time, with ':', '.' or '-' between
// them anywhere ("01:02:03:04:05:06", "0102.0304.0506", "1-2-3-4-5-6",
// "010203040506").
func parseMAC(s string) (mac [6]byte, ok bool) {
	n := 0
	for i := 0; i < len(s); {
		switch s[i] {
		case ':', '.', '-':
			i++
			continue
		}
		d, ok := hexDigit(s[i])
		if !ok || n == 6 {
			return mac, false
		}
		i++
		if i < len(s) {
			if e, ok := hexDigit(s[i]); ok {
				d = d<<4 | e
				i++
			}
		}
		mac[n] = d
		n++
	}
	return mac, n == 6
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// etherBroadcast is "[ether] broadcast": the destination address is all
// ones.
func (g *gen) etherBroadcast(at Node) cond {
	if g.lay.kind != linkEther {
		g.failAt(at, "not a broadcast link")
	}
	return and(g.innerEther(), g.etherAddr(g.lay.linkHdr, [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}))
}

// etherMulticast is "[ether] multicast": the group bit of the destination
// address.
func (g *gen) etherMulticast(at Node) cond {
	if g.lay.kind != linkEther {
		g.failAt(at, "link-layer multicast filters supported only on ethernet/FDDI/token ring/ARCNET/802.11/ATM LANE/Fibre Channel")
	}
	return and(g.innerEther(), g.cmp(g.lay.linkHdr, 1, opJset, 1))
}
