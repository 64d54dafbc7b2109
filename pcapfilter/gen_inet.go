package pcapfilter

// IPv4, IPv6, ARP and RARP: hosts, nets, protocols, ports, port ranges,
// protochain, and the protocol keywords above the link layer.

// qualified is "[proto] [dir] [type] id".
func (g *gen) qualified(n *Qualified) cond { g.failAt(n, "not supported yet"); return cond{} }

// protoAbbrev is a protocol keyword alone, such as "tcp" or "ip6".
func (g *gen) protoAbbrev(p Proto, at Node) cond {
	g.failAt(at, "not supported yet")
	return cond{}
}

// broadcast is "[proto] broadcast".
func (g *gen) broadcast(n *Special) cond { g.failAt(n, "not supported yet"); return cond{} }

// multicast is "[proto] multicast".
func (g *gen) multicast(n *Special) cond { g.failAt(n, "not supported yet"); return cond{} }

// inetState is what this part of the generator keeps between primitives.
type inetState struct{}
