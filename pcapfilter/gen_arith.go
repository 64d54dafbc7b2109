package pcapfilter

import (
	"math/bits"
	"slices"
)

// Relations, byte accessors, arithmetic, len, less and greater.
//
// A relation runs in two parts, as libpcap's does: first the guards of its
// byte accessors (is this an IPv4 packet, is it TCP, is it not a fragment),
// short-circuit and in libpcap's order; then one straight-line block that
// computes both sides and compares them. Inside the straight line the order
// of the loads cannot change a verdict (any load past the captured length
// rejects the packet, wherever it is), so the code is free to use constant
// operands where libpcap goes through scratch memory.
//
// libpcap's rules that decide verdicts and acceptance, found by comparing
// its programs:
//   - In "X op Y" only X's guards survive: libpcap drops Y's. "1 + ip[0]"
//     reads the byte at the network header of any packet.
//   - A relation ANDs the guards of its left side, then of its right side.
//   - "p[i]" for a network-layer p guards with i's guards, then p's
//     protocol test; for icmp6 with i's guards, then the IPv6 test and a
//     next header of 58 (no fragment header: unlike "icmp6" alone); for a
//     transport-layer p with the IPv4 test, then i's
//     guards, then p's protocol test (as "tcp" alone, IPv6 included), then
//     "not a fragment". tcp[], udp[] and the others read past an IPv4
//     header only: never IPv6.
//   - A divisor whose first instruction would be "ld #0" (its leftmost
//     operand is the number 0, "len / ip[0]" included) is "division by
//     zero", and a shift count whose leftmost operand is a number over 31
//     is "shift by more than 31 bits". libpcap's optimiser adds the same
//     errors for divisors it can fold to 0, and for counts it can fold
//     unless what they shift is made of numbers only.
//   - A relation between two numbers is decided. The optimiser also folds
//     a relation between values it computes, when it is the first test of
//     the program; a relation that is then always false makes the
//     expression reject all packets.
//   - libpcap does not optimise an expression with geneve or protochain
//     anywhere in it: then only the code generator's checks apply.
//   - An accessor's guard that already passed in the same relation (as
//     in "tcp[tcp[12] >> 2]") passes again: it is left out.
//   - Scratch memory: libpcap keeps every intermediate value in one of 16
//     words (see libpcapRegs), and fails with "too many registers" when an
//     expression would need more than are free.

// relation is "arith relop arith".
func (g *gen) relation(n *Relation) cond {
	if need := max(libpcapRegs(n.X, 0), libpcapRegs(n.Y, 1)); need > g.freeRegs() {
		g.failAt(n, "too many registers needed to evaluate expression (libpcap keeps its values in scratch memory: this relation needs %d words, %d of %d are free)", need, g.freeRegs(), memWords)
	}
	first := g.nblocks == 0 // nothing runs before this relation
	g.arith.passed = g.arith.passed[:0]
	x := g.arithVal(n.X)
	r := g.holdReg(x)
	defer g.releaseReg(r)
	y := g.arithVal(n.Y)
	guard := and(x.guard, y.guard)

	// The optimiser's errors, for code it does not remove first: a
	// relation whose guards are false is gone before it looks.
	if e := g.arith.pending; e != nil {
		g.arith.pending = nil
		if !(guard.isConst() && !guard.val) && g.optimised() {
			panic(compileError{e})
		}
	}

	// A comparison of two numbers is decided. libpcap's optimiser decides
	// one of values it computes, but only where it is the first test of
	// the program: "ip and 1 = 2 + 0" compiles, "1 = 2 + 0 and ip" does
	// not.
	if _, ok := n.X.(*Num); ok {
		if _, ok := n.Y.(*Num); ok {
			return konst(compare(n.Op, x.val, y.val))
		}
	}
	if x.opt.known && y.opt.known && first && guard.isConst() && g.optimised() {
		if !guard.val {
			return guard
		}
		return konst(compare(n.Op, x.opt.val, y.opt.val))
	}

	op := n.Op
	var s []insn
	var jump uint16
	var k uint32
	switch {
	case x.isConst && y.isConst:
		s, jump, k = []insn{stmt(opLdImm, x.val)}, relJump(op), y.val
	case y.isConst:
		s, jump, k = x.code, relJump(op), y.val
	case x.isConst:
		// "k op Y" is "Y op' k".
		op = op.swap()
		s, jump, k = y.code, relJump(op), x.val
	default:
		s, jump = pair(x, y, r), relJump(op)|opSrcX
	}
	c := g.test(s, jump, k)
	switch op {
	case RelNe, RelLt, RelLe:
		c = not(c)
	}
	return and(guard, c)
}

// swap returns the operator with its operands exchanged: "a < b" is
// "b > a".
func (op RelOp) swap() RelOp {
	switch op {
	case RelLt:
		return RelGt
	case RelLe:
		return RelGe
	case RelGt:
		return RelLt
	case RelGe:
		return RelLe
	}
	return op
}

// relJump is the jump that decides op, or its negation for !=, < and <=.
func relJump(op RelOp) uint16 {
	switch op {
	case RelLt, RelGe:
		return opJge
	case RelLe, RelGt:
		return opJgt
	}
	return opJeq
}

func compare(op RelOp, a, b uint32) bool {
	switch op {
	case RelEq:
		return a == b
	case RelNe:
		return a != b
	case RelLt:
		return a < b
	case RelLe:
		return a <= b
	case RelGt:
		return a > b
	}
	return a >= b
}

// lenCmp is "less N" (len <= N) or "greater N" (len >= N).
func (g *gen) lenCmp(n *Special) cond {
	if n.Kind == SpecialLess {
		return not(g.test([]insn{stmt(opLdLen, 0)}, opJgt, n.Arg))
	}
	return g.test([]insn{stmt(opLdLen, 0)}, opJge, n.Arg)
}

// arithState is what this part of the generator keeps between primitives.
type arithState struct {
	// passed are the accessor guards ANDed so far in the relation being
	// compiled: a later accessor needs not test them again.
	passed []guardKey
	// pending is the first error libpcap's optimiser would find in the
	// relation being compiled, if its code is not dead.
	pending *Error

	// unoptimised is whether libpcap would leave the expression
	// unoptimised (it has geneve or protochain somewhere), once known.
	unoptimised, known bool
}

// optimised returns whether libpcap runs its optimiser on the expression,
// whose folding decides some errors and constants: not when geneve or
// protochain appear anywhere in it, before or after this point.
func (g *gen) optimised() bool {
	if !g.arith.known {
		g.arith.known = true
		root, err := Parse(g.expr)
		g.arith.unoptimised = err == nil && hasUnoptimised(root)
	}
	return !g.arith.unoptimised
}

// hasUnoptimised returns whether the tree has a geneve or a protochain.
func hasUnoptimised(root Node) bool {
	stack := []Node{root}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		switch n := n.(type) {
		case *Binary:
			stack = append(stack, n.X, n.Y)
		case *Not:
			stack = append(stack, n.X)
		case *Special:
			if n.Kind == SpecialGeneve {
				return true
			}
		case *Qualified:
			if n.Q.Type == TypeProtochain {
				return true
			}
		}
	}
	return false
}

// value is an arithmetic expression compiled: the code that leaves it in A
// (it may change X, and uses scratch memory only while it runs), or a
// constant; the guards to run before it; and what libpcap's optimiser
// knows of it.
type value struct {
	code    []insn
	isConst bool // no code: the value is val
	val     uint32
	guard   cond
	opt     folded
}

// folded is a value as libpcap's optimiser sees it: known or not.
type folded struct {
	val   uint32
	known bool
}

// arithVal compiles an arithmetic expression. Guards are built in the order
// they run, which the block layout needs.
func (g *gen) arithVal(a Arith) value {
	switch a := a.(type) {
	case *Num:
		return value{isConst: true, val: a.Val, guard: konst(true), opt: folded{a.Val, true}}
	case *Len:
		return value{code: []insn{stmt(opLdLen, 0)}, guard: konst(true)}
	case *Neg:
		x := g.arithVal(a.X)
		x.opt.val = -x.opt.val
		if x.isConst {
			x.val = -x.val
			return x
		}
		x.code = append(x.code, stmt(opALU|aluNeg, 0))
		return x
	case *ArithBinary:
		return g.binary(a)
	case *Load:
		return g.load(a)
	}
	g.fail(-1, "", "internal error: unknown arithmetic node %T", a)
	return value{}
}

var aluOps = [...]uint16{ArithAdd: aluAdd, ArithSub: aluSub, ArithMul: aluMul, ArithDiv: aluDiv,
	ArithMod: aluMod, ArithAnd: aluAnd, ArithOr: aluOr, ArithXor: aluXor, ArithLsh: aluLsh, ArithRsh: aluRsh}

func (g *gen) binary(a *ArithBinary) value {
	tok := wordAt(g.expr, a.OpPos)
	// libpcap's code generator looks at the first instruction of the right
	// operand: a load of the number 0 (division), or of a number over 31
	// (shifts).
	if k, ok := leftmostNum(a.Y); ok {
		g.checkOperand(a.Op, k, a.OpPos, tok)
	}
	x := g.arithVal(a.X)
	r := g.holdReg(x)
	defer g.releaseReg(r)
	passed := len(g.arith.passed)
	y := g.arithVal(a.Y)
	g.arith.passed = g.arith.passed[:passed] // y's guards are dropped
	// Its optimiser checks the divisors it can fold, and the shift counts
	// it can fold unless what they shift is made of numbers only (it folds
	// such a shift by 32 or more to 0).
	if y.opt.known && (!x.isConst || (a.Op != ArithLsh && a.Op != ArithRsh)) && g.arith.pending == nil {
		if msg := operandError(a.Op, y.opt.val); msg != "" {
			g.arith.pending = &Error{Expr: g.expr, Offset: a.OpPos, Token: tok, Msg: msg}
		}
	}
	v := value{guard: x.guard, opt: foldALU(a.Op, x.opt, y.opt)} // libpcap keeps the left operand's guards only
	op := opALU | aluOps[a.Op]
	divByZero := y.isConst && y.val == 0 && (a.Op == ArithDiv || a.Op == ArithMod)
	switch {
	case divByZero:
		// Unoptimised, libpcap divides by a 0 in X, which rejects the
		// packet; a constant 0 divisor would make the program invalid.
		if x.isConst {
			x.code = []insn{stmt(opLdImm, x.val)}
		}
		v.code = append(x.code, stmt(opLdxImm, 0), stmt(op|opSrcX, 0))
	case x.isConst && y.isConst:
		v.isConst, v.val = true, alu(a.Op, x.val, y.val)
	case y.isConst && y.val > 31 && (a.Op == ArithLsh || a.Op == ArithRsh):
		// Unoptimised, libpcap shifts by X, which gives 0 from 32 on; its
		// interpreter is not to be trusted with a constant count that
		// large.
		v.code = append(x.code, stmt(opLdxImm, y.val), stmt(op|opSrcX, 0))
	case y.isConst:
		v.code = append(x.code, stmt(op, y.val))
	default:
		v.code = append(pair(x, y, r), stmt(op|opSrcX, 0))
	}
	return v
}

// checkOperand fails as libpcap does for a division by 0 or a shift by
// more than 31 bits.
func (g *gen) checkOperand(op ArithOp, k uint32, pos int, tok string) {
	if msg := operandError(op, k); msg != "" {
		g.fail(pos, tok, "%s", msg)
	}
}

// operandError is libpcap's error for "x op k", or "".
func operandError(op ArithOp, k uint32) string {
	switch {
	case op == ArithDiv && k == 0:
		return "division by zero"
	case op == ArithMod && k == 0:
		return "modulus by zero"
	case (op == ArithLsh || op == ArithRsh) && k > 31:
		return "shift by more than 31 bits"
	}
	return ""
}

// foldALU is what libpcap's optimiser knows of "x op y": constants fold
// through every operator, "x * 0" and "x & 0" are 0, and so is 0 on the
// left of *, /, %, &, << and >>.
func foldALU(op ArithOp, x, y folded) folded {
	switch {
	case x.known && y.known:
		return folded{alu(op, x.val, y.val), true}
	case y.known && y.val == 0 && (op == ArithMul || op == ArithAnd):
		return folded{0, true}
	case x.known && x.val == 0:
		switch op {
		case ArithMul, ArithDiv, ArithMod, ArithAnd, ArithLsh, ArithRsh:
			return folded{0, true}
		}
	}
	return folded{}
}

// holdReg returns a word of scratch memory to keep x in while the code
// of the other operand runs, or -1 for a constant x. The word is taken
// before that code is generated, so that the other operand's own words
// are different ones.
func (g *gen) holdReg(x value) int {
	if x.isConst {
		return -1
	}
	return g.allocReg()
}

func (g *gen) releaseReg(r int) {
	if r >= 0 {
		g.freeReg(r)
	}
}

// pair returns the code that leaves x in A and y in X, with r the word
// held for x.
func pair(x, y value, r int) []insn {
	switch {
	case x.isConst:
		return append(append(y.code, stmt(opTax, 0)), stmt(opLdImm, x.val))
	case y.isConst:
		return append(x.code, stmt(opLdxImm, y.val))
	case len(y.code) == 1 && y.code[0].Op == opLdLen:
		return append(x.code, stmt(opLdxLen, 0))
	}
	s := append(x.code, stmt(opSt, uint32(r)))
	s = append(s, y.code...)
	return append(s, stmt(opTax, 0), stmt(opLdMem, uint32(r)))
}

// alu is what the ALU computes; the callers rule out division by 0.
func alu(op ArithOp, a, b uint32) uint32 {
	switch op {
	case ArithAdd:
		return a + b
	case ArithSub:
		return a - b
	case ArithMul:
		return a * b
	case ArithDiv:
		if b == 0 {
			return 0
		}
		return a / b
	case ArithMod:
		if b == 0 {
			return 0
		}
		return a % b
	case ArithAnd:
		return a & b
	case ArithOr:
		return a | b
	case ArithXor:
		return a ^ b
	case ArithLsh:
		if b > 31 {
			return 0
		}
		return a << b
	case ArithRsh:
		if b > 31 {
			return 0
		}
		return a >> b
	}
	return 0
}

// leftmostNum returns the number a's code would load first, if that is a
// number.
func leftmostNum(a Arith) (uint32, bool) {
	for {
		switch n := a.(type) {
		case *Num:
			return n.Val, true
		case *Neg:
			a = n.X
		case *ArithBinary:
			a = n.X
		case *Load:
			a = n.Index
		default:
			return 0, false
		}
	}
}

// libpcapRegs returns how many scratch memory words libpcap's code for a
// holds at its peak, with held words already held: every value it
// computes lives in a word of its own; "X op Y" holds X's while it
// computes Y; an accessor holds its index's word while it takes one for
// the byte it reads.
func libpcapRegs(a Arith, held int) int {
	switch n := a.(type) {
	case *Neg:
		return libpcapRegs(n.X, held)
	case *ArithBinary:
		return max(libpcapRegs(n.X, held), libpcapRegs(n.Y, held+1))
	case *Load:
		return max(libpcapRegs(n.Index, held), held+2)
	}
	return held + 1
}

// freeRegs returns the number of scratch memory words not in use.
func (g *gen) freeRegs() int { return memWords - bits.OnesCount16(g.regs) }

// Byte accessors.

// accessorKind is where a protocol's accessor counts from.
type accessorKind uint8

const (
	accNone      accessorKind = iota // not an accessor
	accLink                          // the link-layer header
	accNet                           // the network-layer header
	accTransport                     // past the IPv4 header, whatever its length
	accICMP6                         // 40 bytes past the network-layer header
)

var accessors = [numProtos]accessorKind{
	ProtoLink: accLink,
	ProtoIP:   accNet, ProtoIP6: accNet, ProtoARP: accNet, ProtoRARP: accNet, ProtoAtalk: accNet,
	ProtoDECnet: accNet, ProtoLAT: accNet, ProtoSCA: accNet, ProtoMOPRC: accNet, ProtoMOPDL: accNet,
	ProtoTCP: accTransport, ProtoUDP: accTransport, ProtoSCTP: accTransport, ProtoICMP: accTransport,
	ProtoIGMP: accTransport, ProtoIGRP: accTransport, ProtoPIM: accTransport, ProtoVRRP: accTransport,
	ProtoCARP:  accTransport,
	ProtoICMP6: accICMP6,
}

// guardKey names an accessor's guard: its protocol, with the layers it
// reads.
type guardKey struct {
	proto Proto
	lay   layers
}

// establish returns the guard of proto at the current layers, built by
// build, or true when the same guard has already passed on the way here:
// it would pass again, with the same loads.
func (g *gen) establish(proto Proto, build func() cond) cond {
	k := guardKey{proto, g.lay}
	if slices.Contains(g.arith.passed, k) {
		return konst(true)
	}
	c := build()
	g.arith.passed = append(g.arith.passed, k)
	return c
}

// ipProtos are the IP protocol numbers of the transport-layer accessors.
var ipProtos = [numProtos]uint32{ProtoTCP: 6, ProtoUDP: 17, ProtoSCTP: 132, ProtoICMP: 1, ProtoIGMP: 2,
	ProtoIGRP: 9, ProtoPIM: 103, ProtoVRRP: 112, ProtoCARP: 112}

// load compiles "proto[index:size]".
func (g *gen) load(n *Load) value {
	size := n.Size
	if size == 0 {
		size = 1
	}
	if size != 1 && size != 2 && size != 4 {
		g.failAt(n, "data size must be 1, 2, or 4")
	}
	kind := accNone
	if int(n.Proto) < len(accessors) {
		kind = accessors[n.Proto]
	}
	if kind == accNone {
		if n.Proto == ProtoRadio {
			g.failAt(n, "radio information not present in capture")
		}
		g.failAt(n, "unsupported index operation: this protocol has no byte accessor")
	}

	// The guards, in the order libpcap runs them.
	var v value
	var idx value
	switch kind {
	case accLink:
		idx = g.arithVal(n.Index)
		v.guard = idx.guard
	case accNet:
		idx = g.arithVal(n.Index)
		v.guard = and(idx.guard, g.establish(n.Proto, func() cond { return g.protoAbbrev(n.Proto, n) }))
	case accICMP6:
		// Not as "icmp6" alone: the next header must be ICMPv6 itself,
		// not after a fragment header.
		idx = g.arithVal(n.Index)
		v.guard = and(idx.guard, g.establish(n.Proto, func() cond {
			return and(g.protoAbbrev(ProtoIP6, n), g.eq(g.lay.net.at(6), 1, 58))
		}))
	case accTransport:
		ip := g.establish(ProtoIP, func() cond { return g.protoAbbrev(ProtoIP, n) })
		idx = g.arithVal(n.Index)
		// libpcap tests the protocol as "tcp" alone does, IPv6 included;
		// after its IPv4 test only the IPv4 protocol field decides that,
		// with the same loads.
		p := g.establish(n.Proto, func() cond {
			return and(g.eq(g.lay.net.at(9), 1, ipProtos[n.Proto]), not(g.cmp(g.lay.net.at(6), 2, opJset, 0x1fff)))
		})
		v.guard = and(and(ip, idx.guard), p)
	}

	var base offset
	switch kind {
	case accLink:
		base = g.lay.linkHdr
	case accNet:
		base = g.lay.net
	case accICMP6:
		base = g.lay.net.at(40)
	case accTransport:
		v.code = g.transportLoad(idx, size)
		return v
	}
	v.code = indexedLoad(base, idx, size)
	return v
}

// indexedLoad returns the code that loads size bytes at base + index, the
// index and a variable base added in the ALU (wrapping) and the constant
// part in the load (which rejects the packet past 2^32), as libpcap does.
func indexedLoad(base offset, idx value, size int) []insn {
	switch {
	case base.reg < 0 && idx.isConst:
		return []insn{stmt(loadOps[size][0], sumOrFar(idx.val, base.k))}
	case base.reg < 0:
		return append(idx.code, stmt(opTax, 0), stmt(loadOps[size][1], base.k))
	case idx.isConst && idx.val == 0:
		return []insn{stmt(opLdxMem, uint32(base.reg)), stmt(loadOps[size][1], base.k)}
	case idx.isConst:
		return []insn{stmt(opLdMem, uint32(base.reg)), stmt(opALU|aluAdd, idx.val), stmt(opTax, 0),
			stmt(loadOps[size][1], base.k)}
	}
	s := append(idx.code, stmt(opLdxMem, uint32(base.reg)), stmt(opALU|aluAdd|opSrcX, 0), stmt(opTax, 0))
	return append(s, stmt(loadOps[size][1], base.k))
}

// sumOrFar returns a + b, or an offset no packet reaches when the sum
// passes 2^32 (where libpcap's indexed load rejects the packet).
func sumOrFar(a, b uint32) uint32 {
	s, carry := bits.Add32(a, b, 0)
	if carry != 0 {
		return 0xffffffff
	}
	return s
}

// transportLoad returns the code that loads size bytes at index past the
// IPv4 header, whose length is 4 times the low nibble of its first byte.
func (g *gen) transportLoad(idx value, size int) []insn {
	net := g.lay.net
	ind := loadOps[size][1]
	hdr := g.ipv4Transport(net) // X: the transport header's offset, less net.k
	switch {
	case idx.isConst && net.reg < 0 && idx.val < 0xffffff00 && net.k <= 0xffff:
		// X is at most 60: the index joins the constant part, where no sum
		// can wrap.
		return append(hdr, stmt(ind, net.k+idx.val))
	case idx.isConst:
		return append(hdr, stmt(opLdImm, idx.val), stmt(opALU|aluAdd|opSrcX, 0), stmt(opTax, 0), stmt(ind, net.k))
	case net.reg < 0:
		// ldxb leaves A, the index, alone.
		s := append(idx.code, hdr...)
		return append(s, stmt(opALU|aluAdd|opSrcX, 0), stmt(opTax, 0), stmt(ind, net.k))
	}
	r := g.allocReg()
	defer g.freeReg(r)
	s := append(idx.code, stmt(opSt, uint32(r)))
	s = append(s, hdr...)
	return append(s, stmt(opLdMem, uint32(r)), stmt(opALU|aluAdd|opSrcX, 0), stmt(opTax, 0), stmt(ind, net.k))
}

// byteOp is "byte N op M": a test of the byte at offset N of the packet,
// whatever the link layer. For & and |, libpcap applies the operation
// to whatever A holds, without loading the byte; so does this, for the
// same verdicts.
func (g *gen) byteOp(n *Special) cond {
	switch n.ByteOp {
	case '=':
		return g.eq(abs(n.Arg), 1, n.ByteVal)
	case '>':
		return g.cmp(abs(n.Arg), 1, opJgt, n.ByteVal)
	case '<':
		return not(g.cmp(abs(n.Arg), 1, opJge, n.ByteVal))
	case '&':
		if n.ByteVal == 0 {
			return konst(false) // A & 0 is 0, as libpcap's optimiser finds
		}
		return not(g.test([]insn{stmt(opALU|aluAnd, n.ByteVal)}, opJeq, 0))
	case '|':
		return not(g.test([]insn{stmt(opALU|aluOr, n.ByteVal)}, opJeq, 0))
	}
	g.failAt(n, "unknown operator %q in 'byte'", n.ByteOp)
	return cond{}
}
