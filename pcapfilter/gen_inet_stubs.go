package pcapfilter

// Temporary stand-ins for functions other parts of the generator are
// writing (gen_link.go); this file goes when they land.

// inMPLS reports whether the primitives now parsed are inside MPLS.
func (g *gen) inMPLS() bool { return g.lay.mpls > 0 }
