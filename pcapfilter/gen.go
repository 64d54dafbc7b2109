package pcapfilter

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// Code generation walks the syntax tree left to right, building blocks
// (ir.go) for each primitive. The walk order matters: vlan, mpls, pppoes
// and geneve move the layers for every primitive after them in the text,
// as libpcap does.
//
// The generator's files: gen.go (this: the walk, loads and tests, errors,
// scratch memory), gen_link.go (link layers, their protocol field, vlan,
// mpls, pppoe, geneve, ether addresses), gen_inet.go (IPv4, IPv6, ARP:
// hosts, nets, protocols, ports, protochain), gen_lan.go (LLC and the
// older LAN protocols), gen_arith.go (relations, byte accessors,
// arithmetic, len).

// gen is the state of one compilation.
type gen struct {
	expr    string
	link    LinkType
	snap    uint32
	netmask uint32
	nblocks int
	mem     genMemory // blocks and statements, reused from one compilation to the next
	regs    uint16    // scratch memory words in use, a bit each

	lay   layers     // where the layers are now: see gen_link.go
	inet  inetState  // gen_inet.go's own state
	arith arithState // gen_arith.go's own state
	opt   optimiser  // opt.go's memory, reused
	reach reacher    // gen_reach.go's memory, reused
	noOpt bool       // tests only: leave the optimiser out
}

// offset is a position in the packet: k bytes past the value of scratch
// memory word reg, or past the start of the packet when reg is -1.
type offset struct {
	reg int
	k   uint32
}

// at returns o moved k bytes further.
func (o offset) at(k uint32) offset { return offset{o.reg, o.k + k} }

func abs(k uint32) offset { return offset{reg: -1, k: k} }

// compileError is what fail panics with; generate recovers it.
type compileError struct{ err *Error }

// fail stops the compilation with an error at byte offset pos of the
// expression (-1 for none), naming the token tok there.
func (g *gen) fail(pos int, tok string, format string, args ...any) {
	for i, a := range args {
		// A name in a message is quoted at most in part: it may be most
		// of a 1 MB expression.
		if s, ok := a.(string); ok && len(s) > 64 {
			args[i] = s[:64] + "..."
		}
	}
	panic(compileError{&Error{Expr: g.expr, Offset: pos, Token: tok, Msg: fmt.Sprintf(format, args...)}})
}

// failAt is fail at a node, naming the text from its position to the end
// of its first word.
func (g *gen) failAt(n interface{ Pos() int }, format string, args ...any) {
	pos := n.Pos()
	g.fail(pos, wordAt(g.expr, pos), format, args...)
}

// wordAt returns the token-ish text at pos: up to the next space or
// bracket.
func wordAt(s string, pos int) string {
	if pos < 0 || pos >= len(s) {
		return ""
	}
	end := pos
	for end < len(s) && s[end] != ' ' && s[end] != '\t' && s[end] != '\n' && s[end] != '(' && s[end] != ')' && s[end] != '[' {
		end++
	}
	if end == pos {
		end = pos + 1
	}
	return s[pos:end]
}

// generate turns the tree of expr into a program, with g's memory, which
// it gives back (reset) for the next compilation.
func (g *gen) generate(expr string, root Node, o *Options) (prog []bpf.RawInstruction, err error) {
	// Every field afresh but the memory kept (mem, opt) and noOpt, field
	// by field: copying whole structs shows in a short expression's
	// compile time. initLayers sets g.lay.
	g.expr, g.link, g.snap, g.netmask, g.nblocks, g.regs = expr, o.LinkType, uint32(o.SnapLen), o.Netmask, 0, 0
	g.inet.protochain, g.inet.inRelation = false, 0
	g.arith.pending, g.arith.unoptimised, g.arith.known = nil, false, false
	defer func() {
		g.reset()
		if r := recover(); r != nil {
			ce, ok := r.(compileError)
			if !ok {
				panic(r)
			}
			prog, err = nil, ce.err
		}
	}()
	g.initLayers()
	if root == nil {
		// An empty expression matches every packet, as in libpcap.
		return []bpf.RawInstruction{{Op: opRetK, K: g.snap}}, nil
	}
	c := g.node(root)
	if (c.isConst() && !c.val) || (!c.isConst() && c.t.empty()) {
		if g.lay.sawGeneve || g.inet.protochain {
			// libpcap does not optimise an expression with geneve or
			// protochain, and only its optimiser finds that one rejects
			// all packets.
			return []bpf.RawInstruction{{Op: opRetK, K: 0}}, nil
		}
		return nil, &Error{Expr: expr, Offset: -1, Msg: "expression rejects all packets"}
	}
	if c.isConst() {
		return []bpf.RawInstruction{{Op: opRetK, K: g.snap}}, nil
	}
	accept := g.newBlock(blockRet, nil)
	accept.k = g.snap
	reject := g.newBlock(blockRet, nil)
	patch(c.t, accept)
	patch(c.f, reject)
	if !g.lay.sawGeneve && !g.inet.protochain && mayContradict(root) && !g.acceptReachable(c.entry, accept, g.inet.relBlocks) {
		// libpcap's optimiser proves the same (gen_reach.go).
		return nil, &Error{Expr: expr, Offset: -1, Msg: "expression rejects all packets"}
	}
	entry := c.entry
	if !g.lay.sawGeneve && !g.inet.protochain && !g.noOpt {
		// libpcap does not optimise these either.
		entry = g.optimise(entry, reject)
	}
	prog, err = g.layout(entry)
	if err != nil {
		return nil, &Error{Expr: expr, Offset: -1, Msg: err.Error()}
	}
	return prog, nil
}

// node generates the code of a node of the syntax tree.
func (g *gen) node(n Node) cond {
	switch n := n.(type) {
	case *Binary:
		// Long and/or chains are left-deep: walk their spine without
		// recursing, left to right.
		var spine []*Binary
		var x Node = n
		for {
			b, ok := x.(*Binary)
			if !ok {
				break
			}
			spine = append(spine, b)
			x = b.X
		}
		c := g.node(x)
		for i := len(spine) - 1; i >= 0; i-- {
			y := g.node(spine[i].Y)
			if spine[i].Op == And {
				c = and(c, y)
			} else {
				c = or(c, y)
			}
		}
		return c
	case *Not:
		return not(g.node(n.X))
	case *Qualified:
		return g.qualified(n)
	case *ProtoAbbrev:
		return g.protoAbbrev(n.Proto, n)
	case *Special:
		return g.special(n)
	case *Unsupported:
		g.failAt(n, "'%s' applies only to link types the Go compiler does not support (it supports %s); WithLibpcap() compiles for them", n.Keyword, supportedLinks)
	case *Relation:
		before := g.nblocks
		g.inet.inRelation++
		c := g.relation(n)
		g.inet.inRelation--
		g.inet.markRelation(before+1, g.nblocks)
		return c
	}
	g.fail(-1, "", "internal error: unknown syntax node %T", n)
	return cond{}
}

const supportedLinks = "EN10MB, RAW, IPV4, IPV6, LINUX_SLL and LINUX_SLL2"

func (g *gen) special(n *Special) cond {
	switch n.Kind {
	case SpecialBroadcast:
		return g.broadcast(n)
	case SpecialMulticast:
		return g.multicast(n)
	case SpecialLess, SpecialGreater:
		return g.lenCmp(n)
	case SpecialInbound, SpecialOutbound, SpecialIfindex:
		return g.direction(n)
	case SpecialVLAN:
		return g.vlan(n)
	case SpecialMPLS:
		return g.mpls(n)
	case SpecialPPPoED:
		return g.pppoed(n)
	case SpecialPPPoES:
		return g.pppoes(n)
	case SpecialGeneve:
		return g.geneve(n)
	case SpecialLLC:
		return g.llc(n)
	case SpecialByte:
		return g.byteOp(n)
	}
	g.fail(-1, "", "internal error: unknown special primitive %d", n.Kind)
	return cond{}
}

// Loads and tests.

var loadOps = [5][2]uint16{1: {opLdBAbs, opLdBInd}, 2: {opLdHAbs, opLdHInd}, 4: {opLdWAbs, opLdWInd}}

// cmp returns the test "the size bytes at o, op v", op being opJeq, opJgt,
// opJge or opJset.
func (g *gen) cmp(o offset, size int, op uint16, v uint32) cond {
	return g.test(g.loadStmts(o, size, 0), op, v)
}

// loadStmts returns the instructions that load size (1, 2 or 4) bytes at
// o into A, in the compilation's memory, with room for extra more
// statements. A variable offset goes through X, which they change.
func (g *gen) loadStmts(o offset, size, extra int) []insn {
	if o.reg < 0 {
		s := g.mem.stmts(1, extra)
		s[0] = stmt(loadOps[size][0], o.k)
		return s
	}
	s := g.mem.stmts(2, extra)
	s[0], s[1] = stmt(opLdxMem, uint32(o.reg)), stmt(loadOps[size][1], o.k)
	return s
}

// cmpMask returns the test "(the size bytes at o) & mask, op v"; a mask
// of all ones for the size is left out.
func (g *gen) cmpMask(o offset, size int, mask uint32, op uint16, v uint32) cond {
	s := g.loadStmts(o, size, 1)
	full := uint32(1)<<(8*uint(size)) - 1
	if size == 4 {
		full = 0xffffffff
	}
	if mask != full {
		s = append(s, stmt(opALU|aluAnd, mask))
	}
	return g.test(s, op, v)
}

// eq returns the test "the size bytes at o == v".
func (g *gen) eq(o offset, size int, v uint32) cond { return g.cmp(o, size, opJeq, v) }

// Scratch memory.

// allocReg returns a free word of scratch memory, or fails as libpcap does
// when all 16 are in use.
func (g *gen) allocReg() int {
	for r := 0; r < memWords; r++ {
		if g.regs&(1<<r) == 0 {
			g.regs |= 1 << r
			return r
		}
	}
	g.fail(-1, "", "too many registers needed to evaluate expression")
	return 0
}

// freeReg gives a word of scratch memory back.
func (g *gen) freeReg(r int) { g.regs &^= 1 << r }

// mayContradict reports whether an expression can be false for every
// packet other than by a primitive being so for the link type, which
// folding finds: only through "and", "not" (which turns "or" into "and")
// or a relation (whose guards may contradict each other). An "or" of
// primitives matches nothing only if each of them does.
func mayContradict(root Node) bool {
	stack := []Node{root}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		switch n := n.(type) {
		case *Binary:
			if n.Op == And {
				return true
			}
			stack = append(stack, n.X, n.Y)
		case *Not, *Relation:
			return true
		}
	}
	return false
}
