package pcapfilter

// LLC and the older LAN protocols: iso, esis, isis, clnp, stp, ipx,
// netbeui, decnet, atalk, aarp, lat, sca, mopdl, moprc.

// llcLinktype returns the test that the link layer carries the LLC SAP
// proto (or a protocol carried in LLC/SNAP frames on Ethernet).
func (g *gen) llcLinktype(proto uint32) cond {
	g.fail(-1, "", "LLC protocols are not supported yet")
	return cond{}
}

// llc is "llc [subtype]".
func (g *gen) llc(n *Special) cond { g.failAt(n, "llc is not supported yet"); return cond{} }

// lanState is what this part of the generator keeps between primitives.
type lanState struct{}
