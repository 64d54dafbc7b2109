package pcapfilter

// Relations, byte accessors, arithmetic, len, less and greater.

// relation is "arith relop arith".
func (g *gen) relation(n *Relation) cond {
	g.failAt(n, "relations are not supported yet")
	return cond{}
}

// lenCmp is "less N" or "greater N".
func (g *gen) lenCmp(n *Special) cond {
	g.failAt(n, "less and greater are not supported yet")
	return cond{}
}

// arithState is what this part of the generator keeps between primitives.
type arithState struct{}
