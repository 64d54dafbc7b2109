package pcapfilter

import (
	"fmt"
	"strings"
)

// LLC and the older LAN protocols: iso, esis, isis, clnp, stp, ipx,
// netbeui, decnet, atalk, aarp, lat, sca, mopdl, moprc.
//
// On Ethernet these ride in 802.3 frames (a length, not a type, in the
// type field) with an 802.2 LLC header, in SNAP frames, or in Ethernet II
// frames; a Linux cooked capture says which in its protocol field. The
// tests below keep libpcap 1.10's order of guards and loads, which decides
// the verdict on a packet cut short: a load past the captured bytes
// rejects the packet.

// LLC SAPs, Ethernet types and cooked-capture protocol values these
// primitives test.
const (
	sapISONS   = 0xfe // ISO network layer (CLNP, ES-IS, IS-IS)
	sap8021D   = 0x42 // spanning tree
	sapIPX     = 0xe0
	sapNetBEUI = 0xf0
	sapIP      = 0x06 // IP over LLC

	etherTypeIPX    = 0x8137
	etherTypeAtalk  = 0x809b // AppleTalk: also in LLC/SNAP frames
	etherTypeAARP   = 0x80f3 // AppleTalk ARP: also in LLC/SNAP frames
	etherTypeDECnet = 0x6003
	etherTypeLAT    = 0x6004
	etherTypeSCA    = 0x6007
	etherTypeMOPRC  = 0x6002
	etherTypeMOPDL  = 0x6001

	// The first 4 bytes of a SNAP header (DSAP, SSAP 0xaa, UI control,
	// first OUI byte); the next 4 hold the rest of the OUI and the type.
	snapHdr      = 0xaaaa0300
	snapHdrApple = 0xaaaa0308 // OUI 08:00:07
	snapOUIApple = 0x0007     // the OUI's last two bytes, 00:07

	// A Linux cooked capture's protocol values for frames without an
	// Ethernet type: raw 802.3 (Novell IPX without LLC) and 802.2 LLC.
	sllP8023 = 0x0001
	sllP8022 = 0x0004

	// Network layer protocol identifiers of ISO protocols (iso proto).
	nlpidCLNP = 0x81
	nlpidESIS = 0x82
	nlpidISIS = 0x83
)

// isLANProto reports whether p is one of the protocols of this file, whose
// primitives lanQualified and lanAbbrev generate.
func isLANProto(p Proto) bool { return p >= ProtoAtalk && p <= ProtoRadio }

// llcLinktype returns the test that the link layer carries the LLC SAP
// proto (or a protocol carried in LLC/SNAP frames on Ethernet).
func (g *gen) llcLinktype(proto uint32) cond {
	switch g.lay.kind {
	case linkEther:
		return g.etherLLCLinktype(proto)
	case linkSLL:
		if g.link == LinkLinuxSLL2 {
			// libpcap 1.10 compares the cooked v2 header's protocol
			// field with the value itself, SAP or not.
			return g.eq(g.lay.linkType, 2, proto)
		}
		return g.sllLLCLinktype(proto)
	case linkRawIP, linkIPv4, linkIPv6:
		return konst(false)
	}
	g.fail(-1, "", "internal error: LLC protocol 0x%x on link kind %d", proto, g.lay.kind)
	return cond{}
}

// etherLLCLinktype is llcLinktype on Ethernet framing: the type field at
// g.lay.linkType, the 802.2 header at llcHeader.
func (g *gen) etherLLCLinktype(proto uint32) cond {
	typ := g.lay.linkType
	llc := g.llcHeader()
	// is8023 is a new test that the type field is an 802.3 length.
	is8023 := func() cond { return not(g.cmp(typ, 2, opJgt, etherMTU)) }
	switch proto {
	case etherTypeIPX:
		// An Ethernet type: only Ethernet II frames.
		return g.eq(typ, 2, proto)
	case etherTypeAtalk, etherTypeAARP:
		// Ethernet II, or SNAP with Apple's OUI (AppleTalk) or OUI 0 (AARP).
		return or(g.eq(typ, 2, proto), and(is8023(), g.snapIs(llc, proto)))
	case sapIPX:
		// Ethernet II, or 802.3 with SNAP, with LLC SAP 0xe0, or raw
		// (Novell's 802.3 without LLC: 0xffff where the SAPs would be).
		return or(g.eq(typ, 2, etherTypeIPX),
			and(is8023(),
				or(g.snapIs(llc, etherTypeIPX),
					or(g.eq(llc, 1, sapIPX), g.eq(llc, 2, 0xffff)))))
	case sapISONS, sapNetBEUI, sapIP:
		// Both SAPs, DSAP and SSAP.
		return and(is8023(), g.eq(llc, 2, proto<<8|proto))
	}
	// Any other SAP: the DSAP, which libpcap finds 2 bytes after the type
	// field, not at the payload: they differ after geneve with options.
	return and(is8023(), g.eq(typ.at(2), 1, proto))
}

// llcHeader is where the 802.2 LLC header is when the link layer's type
// field says there is one: the link layer's payload. That is the network
// layer's start, except after mpls, which moves only the network layer
// ("mpls and llc" tests the frame's own LLC header, right after its type
// field). After geneve it is the encapsulated payload, which need not
// follow the type field: Geneve options come between.
func (g *gen) llcHeader() offset {
	if g.lay.mpls > 0 {
		return g.lay.linkType.at(2)
	}
	return g.lay.net
}

// sllLLCLinktype is llcLinktype on a Linux cooked (v1) capture: the
// protocol field at g.lay.linkType says 802.2 (an LLC header follows it)
// or raw 802.3, else it is an Ethernet type.
func (g *gen) sllLLCLinktype(proto uint32) cond {
	typ := g.lay.linkType
	llc := g.llcHeader()
	switch proto {
	case etherTypeIPX:
		return g.eq(typ, 2, proto)
	case etherTypeAtalk, etherTypeAARP:
		return or(g.eq(typ, 2, proto), and(g.eq(typ, 2, sllP8022), g.snapIs(llc, proto)))
	case sapIPX:
		return or(g.eq(typ, 2, etherTypeIPX),
			or(g.eq(typ, 2, sllP8023),
				and(g.eq(typ, 2, sllP8022),
					or(g.eq(llc, 1, sapIPX), g.snapIs(llc, etherTypeIPX)))))
	case sapISONS, sapNetBEUI, sapIP:
		return and(g.eq(typ, 2, sllP8022), g.eq(llc, 2, proto<<8|proto))
	}
	return and(g.eq(typ, 2, sllP8022), g.eq(typ.at(2), 1, proto))
}

// snapIs is the test that the LLC header at llc is SNAP with the Ethernet
// type etherType and the OUI that goes with it: Apple's for AppleTalk,
// 0 for the others. It tests the OUI's end and type before the header's
// start, as libpcap does.
func (g *gen) snapIs(llc offset, etherType uint32) cond {
	hdr, oui := uint32(snapHdr), uint32(0)
	if etherType == etherTypeAtalk {
		hdr, oui = snapHdrApple, snapOUIApple
	}
	return and(g.eq(llc.at(4), 4, oui<<16|etherType), g.eq(llc, 4, hdr))
}

// llcKinds are the LLC frame kinds of "llc KIND": the mask of the
// control byte's bits that tell the kind, and their value. "i" is handled
// apart: it is the low bit clear.
var llcKinds = map[string]struct{ mask, val uint32 }{
	"s": {0x03, 0x01}, "u": {0x03, 0x03},
	// Supervisory frames.
	"rr": {0x0f, 0x01}, "rnr": {0x0f, 0x05}, "rej": {0x0f, 0x09},
	// Unnumbered frames; the poll/final bit (0x10) does not count.
	"ui": {0xef, 0x03}, "ua": {0xef, 0x63}, "disc": {0xef, 0x43}, "dm": {0xef, 0x0f},
	"sabme": {0xef, 0x6f}, "test": {0xef, 0xe3}, "xid": {0xef, 0xaf}, "frmr": {0xef, 0x87},
}

// llc is "llc [subtype]": an 802.2 LLC frame on Ethernet (an 802.3 length
// in the type field, and not Novell's raw 802.3 with 0xffff for SAPs), of
// the kind given.
func (g *gen) llc(n *Special) cond {
	sub := strings.ToLower(n.Sub)
	if sub != "" && sub != "i" {
		if _, ok := llcKinds[sub]; !ok {
			g.failAt(n, "unknown LLC type name %q", n.Sub)
		}
	}
	if g.lay.kind != linkEther {
		// Ethernet framing only: not cooked captures, raw IP, or PPP
		// after pppoes.
		g.failAt(n, "'llc' not supported for %s", g.linkName())
	}
	typ := g.lay.linkType
	llc := g.llcHeader()
	ctl := llc.at(2)
	c := and(not(g.cmp(typ, 2, opJgt, etherMTU)), not(g.eq(llc, 2, 0xffff)))
	switch sub {
	case "":
		return c
	case "i":
		return and(c, not(g.cmp(ctl, 1, opJset, 0x01)))
	}
	st := llcKinds[sub]
	return and(c, g.cmpMask(ctl, 1, st.mask, opJeq, st.val))
}

// isoNLPID is where the ISO network layer protocol identifier is: right
// after the LLC header (3 bytes) on Ethernet, and, as libpcap 1.10 has
// it, at the network layer's start everywhere else (cooked captures,
// PPP after pppoes, and even an Ethernet frame inside geneve on a cooked
// capture).
func (g *gen) isoNLPID() offset {
	if g.link == LinkEthernet && g.lay.kind == linkEther {
		return g.lay.net.at(3)
	}
	return g.lay.net
}

// isoProto is "iso proto v": an ISO frame whose NLPID is v.
func (g *gen) isoProto(v uint32) cond {
	return and(g.linktype(sapISONS), g.eq(g.isoNLPID(), 1, v))
}

// isisProto is "isis proto v": an IS-IS frame whose PDU type is v.
func (g *gen) isisProto(v uint32) cond {
	return and(g.isoProto(nlpidISIS), g.eq(g.isoNLPID().at(4), 1, v))
}

// isisPDUs are the IS-IS PDU types of the keywords that stand for some,
// in the order libpcap tests them.
var isisPDUs = map[Proto][]uint32{
	ProtoL1:   {0x1a, 0x18, 0x12, 0x0f, 0x11}, // L1 PSNP, CSNP, LSP, LAN IIH; P2P IIH
	ProtoL2:   {0x1b, 0x19, 0x14, 0x10, 0x11}, // L2 PSNP, CSNP, LSP, LAN IIH; P2P IIH
	ProtoIIH:  {0x11, 0x0f, 0x10},
	ProtoLSP:  {0x12, 0x14},
	ProtoSNP:  {0x1b, 0x1a, 0x18, 0x19},
	ProtoCSNP: {0x18, 0x19},
	ProtoPSNP: {0x1a, 0x1b},
}

// lanEtherTypes are the Ethernet types (or LLC SAPs) of the keywords that
// are a link-layer test alone.
var lanEtherTypes = map[Proto]uint32{
	ProtoAtalk: etherTypeAtalk, ProtoAARP: etherTypeAARP,
	ProtoDECnet: etherTypeDECnet, ProtoLAT: etherTypeLAT, ProtoSCA: etherTypeSCA,
	ProtoMOPRC: etherTypeMOPRC, ProtoMOPDL: etherTypeMOPDL,
	ProtoISO: sapISONS, ProtoSTP: sap8021D, ProtoIPX: sapIPX, ProtoNetBEUI: sapNetBEUI,
}

// lanAbbrev is a LAN protocol keyword alone, such as "stp" or "l1".
func (g *gen) lanAbbrev(p Proto, at Node) cond {
	if t, ok := lanEtherTypes[p]; ok {
		return g.linktype(t)
	}
	switch p {
	case ProtoESIS:
		return g.isoProto(nlpidESIS)
	case ProtoISIS:
		return g.isoProto(nlpidISIS)
	case ProtoCLNP:
		return g.isoProto(nlpidCLNP)
	case ProtoRadio:
		g.failAt(at, "'radio' is not a valid protocol type")
	}
	if pdus, ok := isisPDUs[p]; ok {
		c := g.isisProto(pdus[0])
		for _, v := range pdus[1:] {
			c = or(c, g.isisProto(v))
		}
		return c
	}
	g.failAt(at, "internal error: %s is not a LAN protocol", lanProtoName(p))
	return cond{}
}

// lanProtoNames are the keywords of the LAN protocols, for messages.
var lanProtoNames = map[Proto]string{
	ProtoAtalk: "atalk", ProtoAARP: "aarp", ProtoDECnet: "decnet", ProtoLAT: "lat",
	ProtoSCA: "sca", ProtoMOPRC: "moprc", ProtoMOPDL: "mopdl", ProtoISO: "iso",
	ProtoESIS: "esis", ProtoISIS: "isis", ProtoCLNP: "clnp", ProtoL1: "l1", ProtoL2: "l2",
	ProtoIIH: "iih", ProtoLSP: "lsp", ProtoSNP: "snp", ProtoCSNP: "csnp", ProtoPSNP: "psnp",
	ProtoSTP: "stp", ProtoIPX: "ipx", ProtoNetBEUI: "netbeui", ProtoRadio: "radio",
}

// lanProtoName is the keyword of a LAN protocol.
func lanProtoName(p Proto) string {
	if s, ok := lanProtoNames[p]; ok {
		return s
	}
	return fmt.Sprintf("protocol %d", p)
}

// lanHostNames are the names libpcap gives the protocols whose host
// filtering it says is not implemented.
var lanHostNames = map[Proto]string{
	ProtoAtalk: "AppleTalk", ProtoAARP: "AARP", ProtoLAT: "LAT", ProtoSCA: "SCA",
	ProtoMOPRC: "MOPRC", ProtoMOPDL: "MOPDL", ProtoISO: "ISO", ProtoIPX: "IPX",
}

// lanQualified is "[proto] [dir] [type] id" with a LAN protocol: "decnet
// [dir] host|net ADDR" and "iso|isis proto N" compile; everything else is
// an error, as in libpcap.
func (g *gen) lanQualified(n *Qualified) cond {
	p := n.Q.Proto
	name := lanProtoName(p)
	switch n.Q.Type {
	case TypeProto:
		return g.lanProto(n)
	case TypePort:
		g.failAt(n, "illegal qualifier of 'port'")
	case TypePortRange:
		g.failAt(n, "illegal qualifier of 'portrange'")
	case TypeProtochain:
		g.failAt(n, "bad protocol applied for 'protochain'")
	case TypeGateway:
		if p == ProtoDECnet && n.ID.Kind != IDName {
			g.failAt(n, "'gateway' requires a name")
		}
		g.failAt(n, "'gateway' not supported in this configuration")
	}
	// host, net, or no type: an address.
	switch n.ID.Kind {
	case IDIPv6:
		g.failAt(n, "'%s' modifier applied to ip6 host", name)
	case IDMAC:
		g.failAt(n, "ethernet address used in non-ether expression")
	}
	if p != ProtoDECnet {
		if n.ID.Kind == IDName && n.MaskLen < 0 && n.Mask == nil {
			// libpcap resolves the name first; whatever it finds, the
			// protocol has no hosts.
			if n.Q.Type == TypeNet {
				if _, _, err := netAddrMask(n.ID.Text); err != nil {
					g.failAt(n, "%v", err)
				}
			}
		}
		if s, ok := lanHostNames[p]; ok {
			g.failAt(n, "%s host filtering not implemented", s)
		}
		kind := "host"
		if n.Q.Type == TypeNet {
			kind = "net"
		}
		g.failAt(n, "'%s' modifier applied to %s", name, kind)
	}
	addr := g.dnAddr(n)
	return g.dnHost(n, addr)
}

// lanFailID fails at the id of n.
func (g *gen) lanFailID(n *Qualified, format string, args ...any) {
	g.fail(n.ID.IDPos, wordAt(g.expr, n.ID.IDPos), format, args...)
}

// lanProto is "PROTO proto ID" with a LAN protocol.
func (g *gen) lanProto(n *Qualified) cond {
	p := n.Q.Proto
	var v uint32
	switch n.ID.Kind {
	case IDNum:
		v = n.ID.Num
	case IDName:
		if p != ProtoISO {
			g.lanFailID(n, "unknown protocol: %s", n.ID.Text)
		}
		nl, ok := lookupOSIProto(n.ID.Text)
		if !ok {
			g.lanFailID(n, "unknown osi proto '%s'", n.ID.Text)
		}
		v = uint32(nl)
	default:
		g.lanFailID(n, "'proto' modifier applied to ip host")
	}
	switch p {
	case ProtoISO:
		return g.isoProto(v)
	case ProtoISIS:
		return g.isisProto(v)
	case ProtoCLNP:
		g.failAt(n, "'clnp proto' is not supported")
	case ProtoAtalk:
		g.failAt(n, "AppleTalk encapsulation is not specifiable")
	case ProtoDECnet:
		g.failAt(n, "DECNET encapsulation is not specifiable")
	case ProtoLAT, ProtoSCA, ProtoMOPRC, ProtoMOPDL:
		g.failAt(n, "%s does not encapsulate another protocol", strings.ToUpper(lanProtoName(p)))
	}
	g.failAt(n, "'%s proto' is bogus", lanProtoName(p))
	return cond{}
}

// dnAddr returns the DECnet address of "decnet [dir] host|net ID": a
// number as it is, AREA.NODE as (AREA << 10 | NODE) with AREA cut to 6
// bits and NODE to 10, and the forms with a mask (which libpcap parses as
// an IPv4 network and then tests its low 16 bits) with libpcap's checks.
// Only the low 16 bits count.
func (g *gen) dnAddr(n *Qualified) uint32 {
	id := &n.ID
	if n.MaskLen >= 0 || n.Mask != nil {
		net, ok := dnAtoin(id.Text)
		if !ok {
			g.lanFailID(n, "invalid IPv4 address '%s'", id.Text)
		}
		var mask uint32
		if n.Mask != nil {
			m, ok := dnAtoin(n.Mask.Text)
			if !ok {
				g.fail(n.Mask.IDPos, n.Mask.Text, "invalid IPv4 address '%s'", n.Mask.Text)
			}
			mask = m
			if net&^mask != 0 {
				g.failAt(n, "non-network bits set in \"%s mask %s\"", id.Text, n.Mask.Text)
			}
		} else {
			if n.MaskLen > 32 {
				g.failAt(n, "mask length must be <= 32")
			}
			if n.MaskLen > 0 {
				mask = 0xffffffff << (32 - uint(n.MaskLen))
			}
			if net&^mask != 0 {
				g.failAt(n, "non-network bits set in \"%s/%d\"", id.Text, n.MaskLen)
			}
		}
		if n.Q.Type != TypeNet {
			g.failAt(n, "Mask syntax for networks only")
		}
		return net
	}
	switch id.Kind {
	case IDNum:
		return id.Num
	case IDIPv4:
		a, ok := dnAtodn(id.Text)
		if !ok {
			g.lanFailID(n, "malformed decnet address '%s'", id.Text)
		}
		return a
	case IDName:
		if n.Q.Type == TypeNet {
			a, _, err := netAddrMask(id.Text)
			if err != nil {
				g.failAt(n, "%v", err)
			}
			return a
		}
		g.lanFailID(n, "decnet name support not included, '%s' cannot be translated", id.Text)
	}
	g.lanFailID(n, "bad DECnet address %q", id.Text)
	return 0
}

// dnAtodn parses AREA.NODE as libpcap does with sscanf("%d.%d"): each
// part decimal digits (what follows the node is ignored), a number too
// large for a C long taken as LONG_MAX, and the value cut to a C int.
func dnAtodn(s string) (uint32, bool) {
	area, rest, ok := dnDecimal(s)
	if !ok || len(rest) == 0 || rest[0] != '.' {
		return 0, false
	}
	node, _, ok := dnDecimal(rest[1:])
	if !ok {
		return 0, false
	}
	return (area<<10)&0xfc00 | node&0x3ff, true
}

// dnDecimal reads the decimal digits at the start of s, as strtol does,
// and returns the value's low 32 bits and the rest of s.
func dnDecimal(s string) (uint32, string, bool) {
	const longMax = 1<<63 - 1
	var v uint64
	i := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		d := uint64(s[i] - '0')
		if v > (longMax-d)/10 {
			v = longMax
		} else {
			v = v*10 + d
		}
	}
	if i == 0 {
		return 0, s, false
	}
	return uint32(v), s[i:], true
}

// dnAtoin parses a dotted network number as libpcap does for "net
// ADDR/LEN" and "net ADDR mask MASK": each part at most 255, the value
// left-justified in 32 bits ("1.1" is 0x01010000).
func dnAtoin(s string) (uint32, bool) {
	var addr uint32
	bits := 0
	for {
		var v uint32
		for len(s) > 0 && s[0] != '.' {
			if v > 25 {
				return 0, false
			}
			v = v*10 + uint32(s[0]) - '0'
			s = s[1:]
		}
		if v > 255 {
			return 0, false
		}
		addr = addr<<8 | v
		bits += 8
		if len(s) == 0 {
			break
		}
		s = s[1:]
	}
	if bits < 32 {
		addr <<= 32 - uint(bits)
	}
	return addr, true
}

// dnHost is "decnet [dir] host ADDR": a DECnet frame whose source or
// destination (per the direction) is addr's low 16 bits.
func (g *gen) dnHost(n *Qualified, addr uint32) cond {
	// The address is little-endian in the packet; loads are big-endian.
	a := (addr>>8)&0xff | (addr&0xff)<<8
	one := func(src bool) cond {
		return and(g.linktype(etherTypeDECnet), g.dnHostOp(a, src))
	}
	switch n.Q.Dir {
	case DirSrc:
		return one(true)
	case DirDst:
		return one(false)
	case DirDefault, DirSrcOrDst:
		return or(one(true), one(false))
	case DirSrcAndDst:
		return and(one(true), one(false))
	case DirAddr1, DirAddr2, DirAddr3, DirAddr4:
		k := int(n.Q.Dir-DirAddr1) + 1
		g.failAt(n, "'addr%d' and 'address%d' are not valid qualifiers for addresses other than 802.11 MAC addresses", k, k)
	case DirRA:
		g.failAt(n, "'ra' is not a valid qualifier for addresses other than 802.11 MAC addresses")
	case DirTA:
		g.failAt(n, "'ta' is not a valid qualifier for addresses other than 802.11 MAC addresses")
	}
	g.failAt(n, "internal error: direction %d", n.Q.Dir)
	return cond{}
}

// dnHostOp tests the DECnet routing header's source (src) or destination
// address for a (byte-swapped). The header starts 2 bytes into the
// network layer (after a length); its first byte is the flags, maybe
// after a padding byte (0x81 for one byte of padding), whose low 3 bits
// tell the short (2) or long (6) form. The four forms are tested in
// libpcap's order.
func (g *gen) dnHostOp(a uint32, src bool) cond {
	short, long := uint32(3), uint32(9) // destination
	if src {
		short, long = 5, 17
	}
	nl := g.lay.net
	flags := nl.at(2)
	form := func(padded bool, kind, at uint32) cond {
		var t cond
		if padded {
			t = g.cmpMask(flags, 2, 0xff07, opJeq, 0x8100|kind)
			at++
		} else {
			t = g.cmpMask(flags, 1, 0x07, opJeq, kind)
		}
		return and(t, g.eq(nl.at(at), 2, a))
	}
	return or(or(or(form(false, 2, short), form(true, 2, short)), form(false, 6, long)), form(true, 6, long))
}
