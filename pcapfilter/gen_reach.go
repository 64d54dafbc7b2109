package pcapfilter

import (
	"math/bits"
)

// libpcap's optimiser turns an expression into "expression rejects all
// packets" when it proves that no packet reaches the accepting return:
// "tcp and udp", "ip and ip6", "port 80 and not port 80". Its main tool is
// jump threading: an edge into a block whose comparison was already made
// on every path to that edge (by an edge that dominates it) is sent
// straight to the outcome; an equality found true also decides every
// other equality test of the same value. Values are numbered by how they
// are computed ("ldh [12]" is the same value wherever it is loaded), and
// loads count as never failing.
//
// acceptReachable threads the jumps of the block graph the same way,
// until nothing changes, and reports whether the accepting block is still
// reachable. What a path knows is only what it learnt since it last
// joined another path. It sees comparisons as libpcap's peephole leaves
// them ("and #m; jeq #0" is "jset #m"). It leaves the blocks of relations
// alone (but for the IP-family keywords that guard them), and forgets
// what it knew past one: libpcap computes their values otherwise
// (through scratch memory and X), with joins of its own.
//
// libpcap's optimiser has other transformations, which prove more (then
// pcapfilter compiles a program that matches nothing), and joins that
// lose what a path knew in ways this does not follow: in random mixes of
// contradicting primitives, about one in 10^5 is found to reject all
// packets here and not by libpcap, such as "(tcp src or dst portrange
// 25-25) and (tcp dst portrange 53-25) and not (tcp portrange 25-53)" or
// "(not iso or arp) and esis and ip" on Ethernet: expressions that match
// nothing. Graphs too large to analyse are taken as reachable.

// reachMaxBlocks bounds the graphs acceptReachable analyses, and
// reachMaxWork the steps it takes (words of dominator sets and edges
// looked at): beyond either it answers yes. The analysis costs the
// square of the blocks, and compiling must stay linear in the
// expression's size: 256 blocks cover all but the longest corpus
// expression (the median has 5, the 90th percentile 23).
const (
	reachMaxBlocks = 256
	reachMaxWork   = 50_000_000
)

// reachVal is a value number: equal numbers are the same computation.
type reachVal int

// reachKey is what a value number stands for: an operation and its
// operands (values, or an instruction's constant), in a namespace: 0 for
// the primitives, whose code is libpcap's, 1 for the values of relations,
// numbered apart.
type reachKey struct {
	op   uint16
	k    uint32
	a, b reachVal
	ns   uint8
}

// reacher is acceptReachable's state, and its memory, which the
// generator keeps from one compilation to the next.
type reacher struct {
	nums   map[reachKey]reachVal
	consts map[reachVal]uint32 // the value of each constant's number
	rel    map[int]bool        // the ids of the blocks of relations
	work   int                 // steps taken, against reachMaxWork

	nodes       []reachNode
	start, fill []int
	edges       []predEdge
	sets        []uint64
}

// predEdge is an edge into a node: from node, its edge (2i true, 2i+1
// false, -1 both).
type predEdge struct{ node, edge int }

// reachState is what the registers and scratch memory hold, as value
// numbers.
type reachState struct {
	a, x reachVal
	mem  [memWords]reachVal
}

// reachNode is a block of the graph being threaded: its jumps are the
// ones threading changes, as indexes of nodes.
type reachNode struct {
	b      *block
	jt, jf int
	out    reachState // the values at the jump
	ja     reachVal   // the value the jump compares, as libpcap sees it
	jop    uint16     // the comparison, as libpcap's peephole leaves it
	opnd   reachVal   // the jump's operand
	jinv   bool       // libpcap's comparison is true when this block's is false
	konst  int        // -1, or the outcome of a jump on constants (0, 1)
	din    []uint64   // the edges that dominate every edge into the node
	reach  bool
	dt, df []uint64 // the edges that dominate the true and false edges
}

func (r *reacher) num(k reachKey) reachVal {
	if v, ok := r.nums[k]; ok {
		return v
	}
	v := reachVal(len(r.nums) + 1)
	r.nums[k] = v
	return v
}

func (r *reacher) konst(k uint32) reachVal {
	v := r.num(reachKey{op: opLdImm, k: k})
	r.consts[v] = k
	return v
}

func (r *reacher) constOf(v reachVal) (uint32, bool) {
	k, ok := r.consts[v]
	return k, ok
}

// exec runs a block's statements on the state, numbering values in
// namespace ns; constants of namespace 1 are not known as constants. As in
// the optimiser's pass that threads jumps, a load indexed by a constant X
// stays an indexed load.
func (r *reacher) exec(st *reachState, stmts []insn, ns uint8) {
	imm := func(k uint32) reachVal {
		if ns == 0 {
			return r.konst(k)
		}
		return r.num(reachKey{op: opLdImm, k: k, ns: ns})
	}
	for _, s := range stmts {
		switch s.Op {
		case opLdImm:
			st.a = imm(s.K)
		case opLdxImm:
			st.x = imm(s.K)
		case opLdWAbs, opLdHAbs, opLdBAbs, opLdLen:
			st.a = r.num(reachKey{op: s.Op, k: s.K, ns: ns})
		case opLdxLen:
			st.x = r.num(reachKey{op: opLdLen, ns: ns})
		case opLdWInd, opLdHInd, opLdBInd:
			st.a = r.num(reachKey{op: s.Op, k: s.K, a: st.x, ns: ns})
		case opLdxMSH:
			st.x = r.num(reachKey{op: s.Op, k: s.K, ns: ns})
		case opLdMem:
			st.a = st.mem[s.K%memWords]
		case opLdxMem:
			st.x = st.mem[s.K%memWords]
		case opSt:
			st.mem[s.K%memWords] = st.a
		case opStx:
			st.mem[s.K%memWords] = st.x
		case opTax:
			st.x = st.a
		case opTxa:
			st.a = st.x
		default:
			if s.Op&0x07 != opALU {
				st.a = r.num(reachKey{op: 0xfffe, k: uint32(len(r.nums))}) // unknown
				continue
			}
			b := imm(s.K)
			if s.Op&opSrcX != 0 {
				b = st.x
			}
			av, aok := r.constOf(st.a)
			bv, bok := r.constOf(b)
			aluOp := s.Op & 0xf0
			switch {
			case aluOp == aluNeg && aok:
				st.a = r.konst(-av)
			case aok && bok && aluOp != aluNeg && ((aluOp != aluDiv && aluOp != aluMod) || bv != 0):
				st.a = r.konst(reachALU(aluOp, av, bv))
			case aluOp == aluNeg:
				st.a = r.num(reachKey{op: s.Op, a: st.a, ns: ns})
			default:
				st.a = r.num(reachKey{op: s.Op &^ opSrcX, a: st.a, b: b, ns: ns})
			}
		}
	}
}

func reachALU(op uint16, a, b uint32) uint32 {
	switch op {
	case aluAdd:
		return a + b
	case aluSub:
		return a - b
	case aluMul:
		return a * b
	case aluDiv:
		return a / b
	case aluMod:
		return a % b
	case aluAnd:
		return a & b
	case aluOr:
		return a | b
	case aluXor:
		return a ^ b
	case aluLsh:
		if b >= 32 {
			return 0
		}
		return a << b
	case aluRsh:
		if b >= 32 {
			return 0
		}
		return a >> b
	}
	return 0
}

// acceptReachable reports whether the accepting block is reachable from
// entry once jumps are threaded as libpcap's optimiser threads them. rel
// holds the ids of the blocks of relations.
func (g *gen) acceptReachable(entry, accept *block, rel map[int]bool) bool {
	blocks, err := g.reachable(entry)
	if err != nil || len(blocks) > reachMaxBlocks {
		// Loops (protochain's) are for the unoptimised programs only.
		return true
	}
	if accept.mark != g.mem.sweeps {
		return false
	}
	for i, b := range blocks {
		b.tail = int32(i)
	}
	r := &g.reach
	r.nodes = grow(r.nodes, len(blocks))
	nodes := r.nodes
	for i, b := range blocks {
		nodes[i] = reachNode{b: b, jt: -1, jf: -1}
		if b.kind != blockRet {
			nodes[i].jt = int(b.jt.tail)
		}
		if b.kind == blockCond {
			nodes[i].jf = int(b.jf.tail)
		}
		// Loops (protochain's) are for the unoptimised programs only.
		if (nodes[i].jt >= 0 && nodes[i].jt <= i) || (nodes[i].jf >= 0 && nodes[i].jf <= i) {
			return true
		}
	}
	if r.nums == nil || len(r.nums) > 1<<14 {
		r.nums, r.consts = make(map[reachKey]reachVal, 8*len(blocks)), map[reachVal]uint32{}
	} else {
		clear(r.nums)
		clear(r.consts)
	}
	r.rel, r.work = rel, 0
	defer func() {
		// The blocks are the compilation's memory.
		clear(r.nodes)
		r.rel = nil
	}()
	acc := int(accept.tail)
	for range 1000 {
		changed := r.thread(nodes)
		if r.work > reachMaxWork {
			return true
		}
		if !nodes[acc].reach {
			return false
		}
		if !changed {
			return true
		}
	}
	return true
}

// thread numbers the values and dominating edges of the reachable nodes,
// then threads every edge it can. It reports whether it changed a jump.
// Node i's true edge is edge 2i, its false edge 2i+1.
func (r *reacher) thread(nodes []reachNode) bool {
	n := len(nodes)
	words := (2*n + 63) / 64
	r.work += 3 * n * words
	// The edges into each node, in one array (start[i] to start[i+1]),
	// and the dominator sets of every node, in another, both kept.
	r.start = grow(r.start, n+1)
	start := r.start
	clear(start)
	for i := range nodes {
		nodes[i].reach = i == 0
	}
	for i := range nodes {
		nd := &nodes[i]
		if !nd.reach {
			continue
		}
		if nd.jt >= 0 {
			nodes[nd.jt].reach = true
			start[nd.jt+1]++
		}
		if nd.jf >= 0 && nd.jf != nd.jt {
			nodes[nd.jf].reach = true
			start[nd.jf+1]++
		}
	}
	for i := 1; i <= n; i++ {
		start[i] += start[i-1]
	}
	r.edges = grow(r.edges, start[n])
	edges := r.edges
	r.fill = append(r.fill[:0], start[:n]...)
	fill := r.fill
	for i := range nodes {
		nd := &nodes[i]
		if !nd.reach {
			continue
		}
		if nd.jt >= 0 {
			e := predEdge{i, 2 * i}
			if nd.jf == nd.jt {
				e.edge = -1 // both ways lead there: neither edge's comparison holds
			}
			edges[fill[nd.jt]] = e
			fill[nd.jt]++
		}
		if nd.jf >= 0 && nd.jf != nd.jt {
			edges[fill[nd.jf]] = predEdge{i, 2*i + 1}
			fill[nd.jf]++
		}
	}
	r.sets = grow(r.sets, 3*n*words)
	sets := r.sets
	clear(sets)
	unknown := r.num(reachKey{op: 0xffff})
	for i := range nodes {
		nd := &nodes[i]
		if !nd.reach {
			continue
		}
		// The values and dominators every edge in agrees on.
		var st reachState
		din := sets[3*i*words : (3*i+1)*words : (3*i+1)*words]
		if i == 0 {
			st.a, st.x = unknown, unknown
			for j := range st.mem {
				st.mem[j] = unknown
			}
		} else {
			for j, p := range edges[start[i]:start[i+1]] {
				pn := &nodes[p.node]
				dom := pn.dt
				switch {
				case p.edge < 0:
					dom = pn.din
				case p.edge%2 == 1:
					dom = pn.df
				}
				if j == 0 {
					st = pn.out
					copy(din, dom)
					continue
				}
				// Where paths join, forget what they knew: libpcap's
				// optimiser, which rearranges such joins, does not always
				// keep it, and this must prove no more than it does.
				clear(din)
				fresh := func(slot int) reachVal {
					return r.num(reachKey{op: 0xfffd, k: uint32(i), b: reachVal(slot)})
				}
				if st.a != pn.out.a {
					st.a = fresh(0)
				}
				if st.x != pn.out.x {
					st.x = fresh(1)
				}
				for m := range st.mem {
					if st.mem[m] != pn.out.mem[m] {
						st.mem[m] = fresh(2 + m)
					}
				}
			}
		}
		var ns uint8
		opaque := r.rel[nd.b.id]
		if opaque {
			ns = 1
		}
		stmts := nd.b.stmts
		nd.jop, nd.jinv = nd.b.op, false
		k := nd.b.k
		if !opaque && nd.b.kind == blockCond && nd.b.op == opJeq && len(stmts) > 0 {
			// libpcap's peephole: "and #m; jeq #0" is "jset #m" with its
			// outcomes swapped, "sub #m; jeq #k" is "jeq #k+m".
			switch last := stmts[len(stmts)-1]; {
			case last.Op == opALU|aluAnd && k == 0:
				stmts = stmts[:len(stmts)-1]
				nd.jop, nd.jinv, k = opJset, true, last.K
			case last.Op == opALU|aluSub:
				stmts = stmts[:len(stmts)-1]
				k += last.K
			}
		}
		r.exec(&st, stmts, ns)
		nd.ja = st.a
		if len(stmts) < len(nd.b.stmts) {
			r.exec(&st, nd.b.stmts[len(stmts):], ns)
		}
		nd.out = st
		nd.din = din
		nd.konst = -1
		nd.dt = sets[(3*i+1)*words : (3*i+2)*words : (3*i+2)*words]
		nd.df = sets[(3*i+2)*words : (3*i+3)*words : (3*i+3)*words]
		copy(nd.dt, din)
		copy(nd.df, din)
		if opaque {
			// libpcap's code for a relation has joins of its own: past
			// one, nothing known before it holds.
			clear(nd.dt)
			clear(nd.df)
			clear(nd.din)
		} else {
			nd.dt[(2*i)/64] |= 1 << ((2 * i) % 64)
			nd.df[(2*i+1)/64] |= 1 << ((2*i + 1) % 64)
		}
		if nd.b.kind != blockCond || opaque {
			continue
		}
		nd.opnd = r.konst(k)
		if nd.jop&opSrcX != 0 {
			nd.opnd = st.x
			if x, ok := r.constOf(st.x); ok {
				// A comparison with a known X is one with a constant.
				nd.jop &^= opSrcX
				nd.opnd = r.konst(x)
			}
		}
		av, aok := r.constOf(nd.ja)
		bv, bok := r.constOf(nd.opnd)
		known, v := false, false
		switch {
		case aok && bok:
			known = true
			switch nd.jop &^ opSrcX {
			case opJeq:
				v = av == bv
			case opJgt:
				v = av > bv
			case opJge:
				v = av >= bv
			case opJset:
				v = av&bv != 0
			}
		case nd.jop == opJset && bok && bv == 0:
			known = true // never set
		}
		if known {
			nd.konst = 0
			if v != nd.jinv {
				nd.konst = 1
			}
		}
	}

	changed := false
	for i := range nodes {
		nd := &nodes[i]
		if !nd.reach || nd.b.kind != blockCond {
			continue
		}
		// A jump on constants goes one way.
		if nd.konst >= 0 && nd.jt != nd.jf {
			if nd.konst == 1 {
				nd.jf = nd.jt
			} else {
				nd.jt = nd.jf
			}
			changed = true
		}
		for e, to := range []*int{&nd.jt, &nd.jf} {
			dom := nd.dt
			if e == 1 {
				dom = nd.df
			}
			for {
				next := r.fold(nodes, *to, dom)
				if next < 0 {
					break
				}
				*to = next
				changed = true
			}
		}
	}
	return changed
}

// fold returns where a jump into node s goes when the edges dom dominate
// it, or -1 if they do not decide s's comparison.
func (r *reacher) fold(nodes []reachNode, s int, dom []uint64) int {
	sn := &nodes[s]
	if sn.b.kind != blockCond || !sn.reach || r.rel[sn.b.id] {
		return -1
	}
	if sn.konst >= 0 {
		if sn.konst == 1 {
			return sn.jt
		}
		return sn.jf
	}
	// to returns s's successor when libpcap's comparison is v.
	to := func(v bool) int {
		if v != sn.jinv {
			return sn.jt
		}
		return sn.jf
	}
	for w, bits := range dom {
		for bits != 0 {
			r.work++
			j := w*64 + trailingZeros(bits)
			bits &= bits - 1
			p := &nodes[j/2]
			if p.b.kind != blockCond || r.rel[p.b.id] || p.jop != sn.jop || p.ja != sn.ja {
				continue
			}
			sense := (j%2 == 0) != p.jinv // libpcap's outcome on this edge
			if p.opnd == sn.opnd {
				return to(sense)
			}
			// An equality found true: A holds that constant, and no other.
			if sense && sn.jop == opJeq {
				return to(false)
			}
		}
	}
	return -1
}

func trailingZeros(x uint64) int { return bits.TrailingZeros64(x) }
