package pcapfilter

// The link layer: where each layer starts for the link type, how to test
// the link layer's protocol field, and what vlan, mpls, pppoe and geneve
// change for the rest of the expression.

// linkKind is how the link layer says which protocol it carries.
type linkKind uint8

const (
	linkEther linkKind = iota // a 2-byte Ethernet type, or 802.3 length, at lay.linkType
	linkSLL                   // a Linux cooked capture's protocol field at lay.linkType
	linkRawIP                 // no link header: the IP version nibble tells
	linkIPv4                  // no link header, and always IPv4
	linkIPv6                  // no link header, and always IPv6
)

// layers is where the layers of the packet are, for the primitives that
// come next in the expression.
type layers struct {
	kind     linkKind
	linkHdr  offset // the link-layer header: what ether[] reads
	linkType offset // the link layer's protocol field (linkEther, linkSLL)
	net      offset // the network-layer header: what ip[] and arp[] read
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
}

// Ethernet types the generator tests.
const (
	etherTypeIP   = 0x0800
	etherTypeIPv6 = 0x86dd
	etherMTU      = 1500 // a larger value in the type field is an Ethernet type, not a length
)

// linktype returns the test that the link layer carries protocol proto:
// an Ethernet type, or for values up to 1500 an LLC SAP.
func (g *gen) linktype(proto uint32) cond {
	switch g.lay.kind {
	case linkEther, linkSLL:
		if proto <= etherMTU {
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

// vlan, mpls, pppoed, pppoes, geneve and direction are written in the
// link layer's part of the work.

func (g *gen) vlan(n *Special) cond   { g.failAt(n, "vlan is not supported yet"); return cond{} }
func (g *gen) mpls(n *Special) cond   { g.failAt(n, "mpls is not supported yet"); return cond{} }
func (g *gen) pppoed(n *Special) cond { g.failAt(n, "pppoed is not supported yet"); return cond{} }
func (g *gen) pppoes(n *Special) cond { g.failAt(n, "pppoes is not supported yet"); return cond{} }
func (g *gen) geneve(n *Special) cond { g.failAt(n, "geneve is not supported yet"); return cond{} }

// direction is inbound, outbound and ifindex.
func (g *gen) direction(n *Special) cond { g.failAt(n, "not supported yet"); return cond{} }
