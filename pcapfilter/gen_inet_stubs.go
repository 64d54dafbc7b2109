package pcapfilter

// Temporary stand-ins for functions other parts of the generator are
// writing (gen_link.go); this file goes when they land.

func (g *gen) etherQualified(n *Qualified) cond {
	g.failAt(n, "link-layer primitives are not supported yet")
	return cond{}
}

func (g *gen) etherBroadcast(at Node) cond {
	g.failAt(at, "link-layer broadcast is not supported yet")
	return cond{}
}

func (g *gen) etherMulticast(at Node) cond {
	g.failAt(at, "link-layer multicast is not supported yet")
	return cond{}
}

// inMPLS reports whether the primitives now parsed are inside MPLS.
func (g *gen) inMPLS() bool { return false }
