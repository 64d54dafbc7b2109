package pcapfilter

// The optimiser rewrites the block graph before layout, keeping every
// verdict of the program as generated, aborts included: a load past the
// captured bytes returns 0, and a change may drop a load only where it is
// proven not to abort (a load reaching as far or farther ran before it on
// every path), or where every way on returns 0 anyway.
//
// Blocks are visited in id order, which is a topological order (every
// jump goes forward; the graphs with loops, protochain's, are not
// optimised). What is known on entry to a block is the meet of what its
// edges in know: the value numbers held by A, X and scratch memory (a
// value number stands for a computation: "ldh [12]" is the same value
// wherever it runs), how many bytes of the packet are proven captured,
// and the outcomes of the tests taken on the way ("ldh [12] = 0x800" was
// true). With it, a pass
//   - drops a statement that sets a register or word to the value it
//     holds already, or one whose result is dead and that cannot abort;
//   - turns a test whose outcome is known into a jump;
//   - threads every edge over the blocks whose outcome is known on that
//     edge, when skipping them changes no live register and none of their
//     loads may abort, and sends edges into blocks from which every path
//     returns 0 straight to a return of 0;
//   - then merges identical blocks (same statements, test and successors)
//     from the last to the first, so that chains identical once threaded
//     become one, and forwards empty jumps.
// backward numbers once per pass the statements whose value they alone
// decide (loads at constant offsets, by opcode and offset, with no table;
// constants; the length), so that forward and threading apply them
// without looking them up.
// A second pass runs when the first merged blocks, on graphs of up to
// optMaxBlocks2 blocks. The work is linear in
// the blocks (every walk is bounded), with no allocation once the memory
// of earlier compilations is there; graphs larger than optMaxBlocks are
// left alone.

import (
	"math/bits"
	"slices"
)

const (
	optMaxBlocks  = 2048 // larger graphs are not optimised
	optMaxPasses  = 2    // passes over the graph, at most: a third finds little more
	optMaxBlocks2 = 256  // larger graphs get one pass: a second finds little more (0.3% of the instructions)
	optMaxHops    = 32   // blocks an edge is threaded over, at most
	optMaxFacts   = 16   // outcomes of tests looked at, the latest
	optMaxMeet    = 64   // steps to find the outcomes two edges share
	optMemWords   = 4    // scratch memory words whose values are followed
)

// optVal is a value number; 0 is none.
type optVal int32

// optFact is the outcome of a test on the way, "a op k" was sense (op
// with opSrcX: k is the value number X held), in a chain of the
// outcomes learnt before it: the chains of all edges form a tree, and
// what two edges both know is what their chains share.
type optFact struct {
	a      optVal
	k      uint32
	op     uint16
	sense  bool
	depth  uint16
	parent int32  // index in the optimiser's facts, -1 for none
	values uint64 // a bit for each value compared in the chain, to skip walking it
}

func optValBit(v optVal) uint64 { return 1 << (uint32(v) * 0x9e3779b9 >> 26) }

// optState is what is known at a point of the program: small, for it is
// copied at every edge.
type optState struct {
	a, x optVal
	// The values of the first optMemWords words of scratch memory; the
	// others are not followed (a load from one is a value of its own).
	mem    [optMemWords]optVal
	proven uint32 // the packet's first proven bytes are captured
	// indirect loads proven not to abort: with X holding indX[i], up to
	// indEnd[i] bytes past X.
	indX   [2]optVal
	indEnd [2]uint32
	facts  int32 // the latest outcome learnt, an index in the optimiser's facts; -1 for none
}

type optKey struct {
	op   uint16
	k    uint32
	a, b optVal
}

type optEntry struct {
	key   optKey
	val   optVal
	epoch uint32 // the pass that made it: entries of other passes are empty
}

type optValInfo struct {
	k     uint32 // a constant's value; a phi's register
	konst bool
	phi   int32 // for the value of a register where edges into a block disagree: the block's index + 1
}

// optBlock is what the optimiser knows of a block in a pass.
type optBlock struct {
	in   optState // the meet of its edges in so far
	nin  int32    // its edges in so far
	live uint32   // the registers live on entry (bit 0 A, 1 X, 2+i M[i])
	aval optVal   // what A holds at its test, when its statements alone decide it; else 0
	rep  int32    // merging: the block that stands for it
	rej  bool     // every path from it returns 0

	sv   int32  // index in the optimiser's svals of its statements' values
	defs uint32 // the registers its statements write
}

// optimiser holds the memory of the optimiser, reused from one
// compilation to the next.
type optimiser struct {
	blocks []*block   // reachable blocks in id order (gen.reachable's); a block's tail is its index while optimising
	bi     []optBlock // per block
	table  []optEntry // value numbers, open addressing
	nvals  int
	epoch  uint32       // the pass, for table: counting them spares clearing it
	vals   []optValInfo // per value number
	facts  []optFact    // the outcomes learnt in a pass
	svals  []optVal     // per statement: its value where it alone decides it (backward), else 0
	htab   []int32      // merging: block index + 1, open addressing
	keep   []uint8      // per statement of a block: optDrop, optKeep or optKeepIfLive
	reject *block
	rejOK  bool // reject is one of blocks
	g      *gen
	change bool
	work   int // statements run to thread edges in a pass, against budget
	budget int
}

// optimise rewrites the graph from entry, with reject the block returning
// 0, and returns the new entry.
func (g *gen) optimise(entry, reject *block) *block {
	o := &g.opt
	o.g, o.reject = g, reject
	for range optMaxPasses {
		if !o.collect(entry) || !o.backward() {
			break
		}
		o.change = false
		o.forward()
		entry = o.merge(entry)
		if !o.change || len(o.blocks) > optMaxBlocks2 {
			break
		}
	}
	o.g, o.reject = nil, nil
	o.blocks = nil // the compilation's memory
	// What a large graph needed is left to the garbage collector.
	if cap(o.table) > 1<<13 || cap(o.facts) > 1<<13 || cap(o.vals) > 1<<13 {
		*o = optimiser{}
	}
	return entry
}

// collect lists the blocks reachable from entry in id order, and reports
// false when the graph is too large or has a backward jump.
func (o *optimiser) collect(entry *block) bool {
	blocks, err := o.g.reachable(entry)
	if err != nil || len(blocks) > optMaxBlocks {
		return false
	}
	o.blocks = blocks
	n := len(blocks)
	o.bi = grow(o.bi, n) // backward sets every block's
	// The value numbers, afresh each pass: a phi stands for a block's
	// entry in one pass.
	size := 64
	for size < 4*n {
		size *= 2
	}
	if cap(o.table) < size {
		o.table = make([]optEntry, size)
	} else {
		o.table = o.table[:size]
	}
	if o.epoch++; o.epoch == 0 {
		clear(o.table[:cap(o.table)])
		o.epoch = 1
	}
	o.nvals = 0
	o.vals = append(o.vals[:0], optValInfo{})
	o.facts = o.facts[:0]
	return true
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, n+n/2)
	}
	return s[:n]
}

func optKnownOp(op uint16) bool {
	switch op {
	case opLdImm, opLdxImm, opSt, opStx, opTax, opTxa, opLdWAbs, opLdHAbs, opLdBAbs,
		opLdWInd, opLdHInd, opLdBInd, opLdMem, opLdxMem, opLdLen, opLdxLen, opLdxMSH:
		return true
	}
	if op&0x07 == opALU {
		switch op &^ opSrcX & 0xf0 {
		case aluAdd, aluSub, aluMul, aluDiv, aluOr, aluAnd, aluLsh, aluRsh, aluMod, aluXor:
			return true
		case aluNeg:
			return op == opALU|aluNeg
		}
	}
	return false
}

func (b *block) index() int { return int(b.tail) }

// num returns the value number of a computation.
func (o *optimiser) num(k optKey) optVal {
	if o.nvals*2 >= len(o.table) {
		old := o.table
		o.table = make([]optEntry, 2*len(old))
		for _, e := range old {
			if e.epoch == o.epoch {
				o.insert(e)
			}
		}
	}
	mask := uint64(len(o.table) - 1)
	h := optHash(k) & mask
	for {
		e := &o.table[h]
		if e.epoch != o.epoch {
			o.nvals++
			e.key, e.val, e.epoch = k, optVal(len(o.vals)), o.epoch
			info := optValInfo{}
			if k.op == opLdImm {
				info = optValInfo{k: k.k, konst: true}
			}
			o.vals = append(o.vals, info)
			return e.val
		}
		if e.key == k {
			return e.val
		}
		h = (h + 1) & mask
	}
}

func (o *optimiser) insert(e optEntry) {
	mask := uint64(len(o.table) - 1)
	h := optHash(e.key) & mask
	for o.table[h].epoch == o.epoch {
		h = (h + 1) & mask
	}
	o.table[h] = e
}

func optHash(k optKey) uint64 {
	h := uint64(k.op)<<48 ^ uint64(k.k) ^ uint64(uint32(k.a))<<20 ^ uint64(uint32(k.b))<<40
	h *= 0x9e3779b97f4a7c15
	return h ^ h>>29
}

// numLoad is num of a load at constant offset k. Below 2^24, its
// number is made of the opcode and offset, below 0: no table to look up,
// nothing to record (info).
func (o *optimiser) numLoad(op uint16, k uint32) optVal {
	if k < 1<<24 {
		return optLoadVal(op, k)
	}
	return o.num(optKey{op: op, k: k})
}

// optLoadVal is numLoad's number of a load at an offset below 2^24.
func optLoadVal(op uint16, k uint32) optVal {
	return optVal(-1 - int32(uint32(optOps[op&0xff].slot)<<24|k))
}

// info returns what is known of the value v.
func (o *optimiser) info(v optVal) optValInfo {
	if v < 0 {
		return optValInfo{} // a load's (numLoad)
	}
	return o.vals[v]
}

func (o *optimiser) konst(k uint32) optVal { return o.num(optKey{op: opLdImm, k: k}) }

func (o *optimiser) constOf(v optVal) (uint32, bool) {
	i := o.info(v)
	return i.k, i.konst
}

// Registers as bits: A, X, then the scratch memory words.
const (
	regA = 1 << 0
	regX = 1 << 1
)

func regM(k uint32) uint32 { return 1 << (2 + k%memWords) }

// optOp is what the optimiser knows of an opcode, looked up in optOps
// rather than found by the switches of useDefOf and optKnownOp at every
// statement.
type optOp struct {
	use, def uint8 // regA, regX, and optRegM for the word M[k]
	known    bool
	static   uint8 // optStatic*: what alone decides the value it sets
	size     uint8 // optStaticLoad: the bytes it reads
	slot     uint8 // optStaticLoad: the opcode's number in numLoad's
}

// What alone decides the value a statement sets, for those whose value
// backward finds ahead: their offset (loads at a constant offset), their
// constant, or nothing (the length).
const (
	optStaticNone = iota
	optStaticLoad
	optStaticConst
	optStaticLen
)

const optRegM = 4

var optOps = func() (t [256]optOp) {
	for op := range t {
		const k = 15 // any word: regM's bit is recognised below
		use, def := useDefOf(insn{Op: uint16(op), K: k})
		mem := func(r uint32) uint8 {
			b := uint8(r & (regA | regX))
			if r&regM(k) != 0 {
				b |= optRegM
			}
			return b
		}
		t[op] = optOp{use: mem(use), def: mem(def), known: optKnownOp(uint16(op))}
		switch uint16(op) {
		case opLdWAbs, opLdHAbs, opLdBAbs, opLdxMSH:
			t[op].static, t[op].size = optStaticLoad, uint8(optLoadSize(uint16(op)))
			t[op].slot = uint8(slices.Index([]uint16{opLdWAbs, opLdHAbs, opLdBAbs, opLdxMSH}, uint16(op)))
		case opLdImm, opLdxImm:
			t[op].static = optStaticConst
		case opLdLen, opLdxLen:
			t[op].static = optStaticLen
		}
	}
	return t
}()

// useDef returns the registers a statement reads and writes.
func useDef(s insn) (use, def uint32) {
	if s.Op > 0xff {
		return useDefOf(s)
	}
	e := &optOps[s.Op]
	use, def = uint32(e.use&(regA|regX)), uint32(e.def&(regA|regX))
	if e.use&optRegM != 0 {
		use |= regM(s.K)
	}
	if e.def&optRegM != 0 {
		def |= regM(s.K)
	}
	return use, def
}

// useDefOf is useDef by the opcode's meaning.
func useDefOf(s insn) (use, def uint32) {
	switch s.Op {
	case opLdImm, opLdWAbs, opLdHAbs, opLdBAbs, opLdLen:
		return 0, regA
	case opLdWInd, opLdHInd, opLdBInd:
		return regX, regA
	case opLdMem:
		return regM(s.K), regA
	case opLdxImm, opLdxLen, opLdxMSH:
		return 0, regX
	case opLdxMem:
		return regM(s.K), regX
	case opSt:
		return regA, regM(s.K)
	case opStx:
		return regX, regM(s.K)
	case opTax:
		return regA, regX
	case opTxa:
		return regX, regA
	}
	// ALU
	if s.Op&opSrcX != 0 {
		return regA | regX, regA
	}
	return regA, regA
}

func testUse(b *block) uint32 {
	if b.kind != blockCond {
		return 0
	}
	if b.op&opSrcX != 0 {
		return regA | regX
	}
	return regA
}

// backward computes which registers are live on entry to each block,
// which blocks return 0 on every path, and what A holds at each test
// when the block alone decides it; it reports false when a block has an
// instruction the optimiser does not know.
func (o *optimiser) backward() bool {
	blocks, bi := o.blocks, o.bi[:len(o.blocks)]
	n := 0
	for _, b := range blocks {
		n += len(b.stmts)
	}
	// Threading runs the statements of the blocks it looks past: a
	// block of many statements with many edges in would make that
	// quadratic. Past the budget, edges stay as they are.
	o.work, o.budget = 0, 64*len(blocks)+8*n
	// The values of the statements, those of the last block first. The
	// loop calls nothing: values that need the table are numbered
	// after it (numTabled).
	o.svals = grow(o.svals, n)
	svals, at, tabled := o.svals[:n], 0, false
	for i := len(blocks) - 1; i >= 0; i-- {
		b, x := blocks[i], &bi[i]
		b.tail = int32(i) // its index, which its successors' have before it
		if b.kind == blockJump && b.jt.id <= b.id {
			return false // a loop
		}
		var live uint32
		rej := false
		switch b.kind {
		case blockRet:
			rej = b.k == 0
		case blockJump:
			t := &bi[b.jt.tail]
			rej, live = t.rej, t.live
		case blockCond:
			if op := b.op &^ opSrcX; op != opJeq && op != opJgt && op != opJge && op != opJset {
				return false
			}
			t, f := &bi[b.jt.tail], &bi[b.jf.tail]
			rej, live = t.rej && f.rej, t.live|f.live|regA
			if b.op&opSrcX != 0 {
				live |= regX
			}
		}
		// Statements from the last: the first to set A or X seen is
		// the one that decides it.
		stmts := b.stmts
		sv := svals[at : at+len(stmts)]
		var defs uint32
		var sa optVal
		for j := len(stmts) - 1; j >= 0; j-- {
			s := stmts[j]
			if s.Op > 0xff {
				return false
			}
			e := &optOps[s.Op]
			if !e.known {
				return false
			}
			use, def := uint32(e.use&(regA|regX)), uint32(e.def&(regA|regX))
			if e.use&optRegM != 0 {
				use |= regM(s.K)
			}
			if e.def&optRegM != 0 {
				def |= regM(s.K)
			}
			var v optVal
			switch e.static {
			case optStaticLoad:
				if s.K < 1<<24 {
					v = optLoadVal(s.Op, s.K)
				} else {
					tabled = true
				}
			case optStaticConst, optStaticLen:
				tabled = true
			}
			sv[j] = v
			if def&regA != 0 && defs&regA == 0 {
				sa = v
			}
			defs |= def
			live = live&^def | use
		}
		x.nin, x.live, x.rej, x.defs, x.sv = 0, live, rej, defs, int32(at)
		at += len(stmts)
		// What A holds at the test, when the block alone decides it.
		x.aval = 0
		if b.kind == blockCond {
			x.aval = sa
		}
	}
	if tabled {
		o.numTabled()
	}
	o.rejOK = o.reject.tail >= 0 && int(o.reject.tail) < len(blocks) && blocks[o.reject.tail] == o.reject
	return true
}

// numTabled numbers the statements whose values the table holds
// (constants, the length, loads at offsets from 2^24), which backward
// left 0, and sets their blocks' aval with them.
func (o *optimiser) numTabled() {
	for i, b := range o.blocks {
		x := &o.bi[i]
		sv := o.svals[x.sv : int(x.sv)+len(b.stmts)]
		found := false
		for j, s := range b.stmts {
			switch optOps[s.Op&0xff].static {
			case optStaticLoad:
				if s.K >= 1<<24 {
					sv[j], found = o.num(optKey{op: s.Op, k: s.K}), true
				}
			case optStaticConst:
				sv[j], found = o.konst(s.K), true
			case optStaticLen:
				sv[j], found = o.num(optKey{op: opLdLen}), true
			}
		}
		if !found || b.kind != blockCond {
			continue
		}
		for j := len(b.stmts) - 1; j >= 0; j-- {
			if _, def := useDef(b.stmts[j]); def&regA != 0 {
				x.aval = sv[j]
				break
			}
		}
	}
}

// reg returns a pointer to the value of register bit r in st.
func (st *optState) reg(r uint32) *optVal {
	switch r {
	case regA:
		return &st.a
	case regX:
		return &st.x
	}
	if m := bits.TrailingZeros32(r) - 2; m < optMemWords {
		return &st.mem[m]
	}
	return nil
}

// fresh returns a value number equal to no other.
func (o *optimiser) fresh() optVal {
	o.vals = append(o.vals, optValInfo{})
	return optVal(len(o.vals) - 1)
}

// memLoad returns the value of scratch memory word k.
func (o *optimiser) memLoad(st *optState, k uint32) optVal {
	if k%memWords < optMemWords {
		return st.mem[k%memWords]
	}
	return o.fresh()
}

// exec runs a statement on st and reports whether it may abort there,
// and whether it leaves the register it writes as it was.
func (o *optimiser) exec(st *optState, s insn) (mayAbort, same bool) {
	var v optVal
	var dst *optVal
	switch s.Op {
	case opLdImm:
		v, dst = o.konst(s.K), &st.a
	case opLdxImm:
		v, dst = o.konst(s.K), &st.x
	case opLdWAbs, opLdHAbs, opLdBAbs, opLdxMSH:
		end := uint64(s.K) + uint64(optLoadSize(s.Op))
		mayAbort = end > uint64(st.proven)
		if end <= 0xffffffff && uint32(end) > st.proven {
			st.proven = uint32(end)
		}
		v, dst = o.numLoad(s.Op, s.K), &st.a
		if s.Op == opLdxMSH {
			dst = &st.x
		}
	case opLdWInd, opLdHInd, opLdBInd:
		end := uint64(s.K) + uint64(optLoadSize(s.Op))
		mayAbort = true
		slot := -1
		for i := range st.indX {
			if st.indX[i] == st.x {
				slot = i
				if uint64(st.indEnd[i]) >= end {
					mayAbort = false
				}
			}
		}
		if mayAbort && end <= 0xffffffff {
			if slot < 0 {
				slot = 0
				if st.indX[0] != 0 {
					slot = 1
					if st.indX[1] != 0 {
						st.indX[0], st.indEnd[0] = st.indX[1], st.indEnd[1]
					}
				}
			}
			st.indX[slot], st.indEnd[slot] = st.x, uint32(end)
		}
		v, dst = o.num(optKey{op: s.Op, k: s.K, a: st.x}), &st.a
	case opLdLen:
		v, dst = o.num(optKey{op: opLdLen}), &st.a
	case opLdxLen:
		v, dst = o.num(optKey{op: opLdLen}), &st.x
	case opLdMem:
		v, dst = o.memLoad(st, s.K), &st.a
	case opLdxMem:
		v, dst = o.memLoad(st, s.K), &st.x
	case opSt, opStx:
		v = st.a
		if s.Op == opStx {
			v = st.x
		}
		if s.K%memWords >= optMemWords {
			return false, false
		}
		dst = &st.mem[s.K%memWords]
	case opTax:
		v, dst = st.a, &st.x
	case opTxa:
		v, dst = st.x, &st.a
	default: // ALU
		dst = &st.a
		op := s.Op & 0xf0
		if op == aluNeg {
			if av, ok := o.constOf(st.a); ok {
				v = o.konst(-av)
			} else {
				v = o.num(optKey{op: opALU | aluNeg, a: st.a})
			}
			break
		}
		b := o.konst(s.K)
		if s.Op&opSrcX != 0 {
			b = st.x
		}
		bv, bok := o.constOf(b)
		if op == aluDiv || op == aluMod {
			mayAbort = !bok || bv == 0
		}
		av, aok := o.constOf(st.a)
		if aok && bok && !mayAbort {
			v = o.konst(reachALU(op, av, bv))
		} else {
			v = o.num(optKey{op: opALU | op, a: st.a, b: b})
		}
	}
	same = *dst == v
	*dst = v
	return mayAbort, same
}

func optLoadSize(op uint16) uint32 {
	switch op & 0x18 {
	case 0x00:
		return 4
	case 0x08:
		return 2
	}
	return 1
}

// mayKnowA reports whether outcome may find the test of b known in st,
// with A holding a, not 0: a test of A against a constant is unknown
// when A is no constant and no outcome on the way compared it (but for
// "jge #0" and "jgt #0xffffffff", true or false of any A, which threading
// leaves to forward).
func (o *optimiser) mayKnowA(b *block, a optVal, st *optState) bool {
	if b.op&opSrcX != 0 || b.op == opJset && b.k == 0 || o.info(a).konst {
		return true
	}
	return st.facts >= 0 && o.facts[st.facts].values&optValBit(a) != 0
}

// outcome reports whether the test of b is known in st, and its outcome.
func (o *optimiser) outcome(b *block, st *optState) (known, v bool) {
	op := b.op &^ opSrcX
	k, kok := b.k, true
	if b.op&opSrcX != 0 {
		if xi := o.info(st.x); xi.konst {
			k = xi.k
		} else {
			k, kok = uint32(st.x), false
		}
	}
	if ai := o.info(st.a); ai.konst && kok {
		return true, optEval(op, ai.k, k)
	}
	if op == opJset && kok && k == 0 {
		return true, false
	}
	xop := op
	if !kok {
		xop |= opSrcX
	}
	lo, hi := uint32(0), uint32(0xffffffff)
	i := st.facts
	bit := optValBit(st.a)
	facts := o.facts
	for range optMaxFacts {
		if i < 0 || facts[i].values&bit == 0 {
			break // no outcome on A's value further up
		}
		f := &facts[i]
		i = f.parent
		if f.a != st.a {
			continue
		}
		if f.k == k && f.op == xop {
			return true, f.sense
		}
		if f.op&opSrcX != 0 || !kok {
			continue
		}
		switch {
		case f.op == opJeq && f.sense:
			return true, optEval(op, f.k, k)
		case f.op == opJgt && f.sense:
			if f.k == 0xffffffff {
				return false, false
			}
			lo = max(lo, f.k+1)
		case f.op == opJgt:
			hi = min(hi, f.k)
		case f.op == opJge && f.sense:
			lo = max(lo, f.k)
		case f.op == opJge:
			if f.k == 0 {
				return false, false
			}
			hi = min(hi, f.k-1)
		case f.op == opJset && f.sense:
			if op == opJset && k&f.k == f.k {
				return true, true
			}
			lo = max(lo, 1)
		case f.op == opJset:
			if op == opJset && k&^f.k == 0 {
				return true, false
			}
			if op == opJeq && k&f.k != 0 {
				return true, false
			}
		}
	}
	if lo > hi || !kok {
		return false, false
	}
	switch op {
	case opJeq:
		if k < lo || k > hi {
			return true, false
		}
		if lo == hi {
			return true, k == lo
		}
	case opJgt:
		if lo > k {
			return true, true
		}
		if hi <= k {
			return true, false
		}
	case opJge:
		if lo >= k {
			return true, true
		}
		if hi < k {
			return true, false
		}
	case opJset:
		if lo == hi {
			return true, lo&k != 0
		}
		if hi < 1<<bits.TrailingZeros32(k) && k != 0 {
			return true, false
		}
	}
	return false, false
}

func optEval(op uint16, a, k uint32) bool {
	switch op {
	case opJeq:
		return a == k
	case opJgt:
		return a > k
	case opJge:
		return a >= k
	}
	return a&k != 0
}

// learn adds to st that the test of b, run in state at, came out v.
func (o *optimiser) learn(st *optState, b *block, at *optState, v bool) {
	op, k := b.op&^opSrcX, b.k
	if b.op&opSrcX != 0 {
		if xi := o.info(at.x); xi.konst {
			k = xi.k
		} else {
			k, op = uint32(at.x), op|opSrcX
		}
	}
	depth := uint16(0)
	values := optValBit(at.a)
	if st.facts >= 0 {
		p := &o.facts[st.facts]
		if p.a == at.a && p.k == k && p.op == op && p.sense == v {
			return
		}
		depth = min(p.depth+1, 0xffff)
		values |= p.values
	}
	// Field by field into its place: a fact built whole and copied costs
	// a stall of the copy's wide loads on the narrow stores.
	n := len(o.facts)
	if n == cap(o.facts) {
		o.facts = append(o.facts, optFact{})
	} else {
		o.facts = o.facts[:n+1]
	}
	f := &o.facts[n]
	f.a, f.k, f.op, f.sense, f.depth, f.parent, f.values = at.a, k, op, v, depth, st.facts, values
	st.facts = int32(n)
}

// meet adds an edge in with state st to block i.
func (o *optimiser) meet(i int, st *optState) {
	in := &o.bi[i].in
	o.bi[i].nin++
	if o.blocks[i].kind == blockRet {
		return
	}
	if o.bi[i].nin == 1 {
		*in = *st
		return
	}
	// A value where the edges disagree is a value of its own, one for
	// each register of each block.
	phi := func(cur optVal, slot int) optVal {
		if v := o.info(cur); v.phi == int32(i)+1 && v.k == uint32(slot) {
			return cur
		}
		o.vals = append(o.vals, optValInfo{k: uint32(slot), phi: int32(i) + 1})
		return optVal(len(o.vals) - 1)
	}
	if in.a != st.a {
		in.a = phi(in.a, 0)
	}
	if in.x != st.x {
		in.x = phi(in.x, 1)
	}
	for m := range in.mem {
		if in.mem[m] != st.mem[m] {
			in.mem[m] = phi(in.mem[m], 2+m)
		}
	}
	in.proven = min(in.proven, st.proven)
	for j := range in.indX {
		found := false
		for l := range st.indX {
			if in.indX[j] != 0 && st.indX[l] == in.indX[j] {
				in.indEnd[j] = min(in.indEnd[j], st.indEnd[l])
				found = true
			}
		}
		if !found {
			in.indX[j], in.indEnd[j] = 0, 0
		}
	}
	// The outcomes both know: where their chains join.
	a, b := in.facts, st.facts
	for steps := 0; a != b; steps++ {
		if a < 0 || b < 0 || steps == optMaxMeet {
			a = -1
			break
		}
		da, db := o.facts[a].depth, o.facts[b].depth
		if da >= db {
			a = o.facts[a].parent
		}
		if db >= da {
			b = o.facts[b].parent
		}
	}
	in.facts = a
}

// forward visits the blocks in order: it simplifies each with what is
// known on entry, then threads its edges out.
func (o *optimiser) forward() {
	var st optState
	for i, b := range o.blocks {
		if i == 0 {
			st = optState{facts: -1}
			st.a, st.x = o.fresh(), o.fresh()
			for m := range st.mem {
				st.mem[m] = o.fresh()
			}
		} else {
			if o.bi[i].nin == 0 {
				continue // no longer reached
			}
			st = o.bi[i].in
		}
		if b.kind == blockRet {
			continue
		}
		if x := &o.bi[i]; len(b.stmts) == 1 && o.svals[x.sv] != 0 {
			// simplify of one statement numbered ahead, without its call
			s := b.stmts[0]
			mayAbort, same := execStatic(&st, s, o.svals[x.sv])
			if !same && !mayAbort {
				_, def := useDef(s)
				same = def&o.liveOut(b) == 0
			}
			if same {
				b.stmts = b.stmts[:0]
			}
		} else {
			o.simplify(b, &st)
		}
		if b.kind == blockCond && (b.op == opJge && b.k == 0 || b.op == opJgt && b.k == 0xffffffff || o.mayKnowA(b, st.a, &st)) {
			if known, v := o.outcome(b, &st); known {
				if !v {
					b.jt = b.jf
				}
				b.kind, b.jf = blockJump, nil
			}
		}
		if b.kind == blockJump {
			setJump(&b.jt, o.thread(b.jt, &st))
			o.meet(b.jt.index(), &st)
			continue
		}
		// Both edges are ways in, even when they now lead to one block;
		// one to a return has nothing to learn.
		if b.jt.kind == blockRet {
			o.bi[b.jt.tail].nin++
		} else {
			setJump(&b.jt, o.edge(b, b.jt, &st, true))
		}
		if b.jf.kind == blockRet {
			o.bi[b.jf.tail].nin++
		} else {
			setJump(&b.jf, o.edge(b, b.jf, &st, false))
		}
		if b.jf == b.jt {
			b.kind, b.jf = blockJump, nil
		}
	}
}

// edge threads the edge of b's test to when it is v, st being the state
// at the test, and returns where it goes.
func (o *optimiser) edge(b, to *block, st *optState, v bool) *block {
	// Learning and threading change only st's facts: no copy of st.
	facts := st.facts
	o.learn(st, b, st, v)
	to = o.thread(to, st)
	o.meet(to.index(), st)
	st.facts = facts
	return to
}

// execStatic is exec of a statement backward numbered v: its work,
// known ahead.
func execStatic(st *optState, s insn, v optVal) (mayAbort, same bool) {
	e := &optOps[s.Op&0xff]
	if e.static == optStaticLoad {
		if end := uint64(s.K) + uint64(e.size); end > uint64(st.proven) {
			mayAbort = true
			if end <= 0xffffffff {
				st.proven = uint32(end)
			}
		}
	}
	if e.def&regX != 0 {
		same, st.x = st.x == v, v
	} else {
		same, st.a = st.a == v, v
	}
	return mayAbort, same
}

// simplify drops the statements of b that set a register to the value it
// holds, or whose result is dead and that cannot abort, running the rest
// on st.
func (o *optimiser) simplify(b *block, st *optState) {
	stmts := b.stmts
	n := len(stmts)
	if n == 0 {
		return
	}
	x := &o.bi[b.tail]
	sv := o.svals[x.sv : int(x.sv)+n]
	o.keep = grow(o.keep, n)
	keep := o.keep[:n]
	drop, maybe := 0, false
	for j, s := range stmts {
		var mayAbort, same bool
		if v := sv[j]; v != 0 {
			mayAbort, same = execStatic(st, s, v)
		} else {
			mayAbort, same = o.exec(st, s)
		}
		// A register that holds the value already got it from the same
		// computation, which did not abort; a statement that cannot
		// abort goes if what it sets is dead.
		switch {
		case same:
			keep[j] = optDrop
			drop++
		case mayAbort:
			keep[j] = optKeep
		default:
			keep[j] = optKeepIfLive
			maybe = true
		}
	}
	if maybe {
		live := o.liveOut(b)
		for j := n - 1; j >= 0; j-- {
			use, def := useDef(stmts[j])
			if keep[j] == optKeepIfLive && live&def == 0 {
				keep[j] = optDrop
				drop++
			}
			live = live&^def | use
		}
	}
	if drop == 0 {
		return
	}
	out := o.g.mem.stmts(n-drop, 0)
	kept := 0
	for j, s := range stmts {
		if keep[j] != optDrop {
			out[kept] = s
			kept++
		}
	}
	b.stmts = out
}

// liveOut returns the registers live at the end of b's statements.
func (o *optimiser) liveOut(b *block) uint32 {
	live := testUse(b)
	switch b.kind {
	case blockJump:
		live |= o.bi[b.jt.tail].live
	case blockCond:
		live |= o.bi[b.jt.tail].live | o.bi[b.jf.tail].live
	}
	return live
}

const (
	optDrop uint8 = iota
	optKeep
	optKeepIfLive
)

// thread returns where an edge into t, with state st along it, may go
// instead, and adds to st what the blocks it skips decide.
func (o *optimiser) thread(t *block, st *optState) *block {
	bi := o.bi
	for range optMaxHops {
		ti := &bi[t.tail]
		if ti.rej && o.rejOK {
			return o.reject
		}
		if t.kind == blockRet {
			return t
		}
		if t.kind == blockCond && ti.aval != 0 && !o.mayKnowA(t, ti.aval, st) {
			// Nothing known of the value the test compares: no need to
			// run the block to find its outcome unknown.
			return t
		}
		if t.kind == blockCond && len(t.stmts) == 0 && !o.mayKnowA(t, st.a, st) {
			return t
		}
		if o.work += len(t.stmts); o.work > o.budget {
			return t
		}
		s := *st
		sv := o.svals[ti.sv:]
		for j, x := range t.stmts {
			var mayAbort bool
			if v := sv[j]; v != 0 {
				mayAbort, _ = execStatic(&s, x, v)
			} else {
				mayAbort, _ = o.exec(&s, x)
			}
			if mayAbort {
				return t
			}
		}
		u := t.jt
		known, v := false, false
		if t.kind == blockCond {
			if known, v = o.outcome(t, &s); !known {
				return t
			}
			if !v {
				u = t.jf
			}
		}
		// Skipping t must leave every register live at u as t would.
		for r := ti.defs & bi[u.tail].live; r != 0; r &= r - 1 {
			bit := r & -r
			if r1, r0 := s.reg(bit), st.reg(bit); r1 == nil || *r1 != *r0 {
				return t
			}
		}
		if known {
			// What the skipped test decided holds on, of the values it
			// compared.
			o.learn(st, t, &s, v)
		}
		t = u
	}
	return t
}

// setJump points a jump at to, writing only a change: most jumps stay,
// and a pointer written while the garbage collector marks costs more.
func setJump(j **block, to *block) {
	if *j != to {
		*j = to
	}
}

// merge makes one of identical blocks stand for all, from the last to the
// first, forwards empty jumps, and returns the new entry.
func (o *optimiser) merge(entry *block) *block {
	blocks := o.blocks
	bi := o.bi[:len(blocks)]
	size := 16
	for size < 2*len(blocks) {
		size *= 2
	}
	o.htab = grow(o.htab, size)
	htab := o.htab
	clear(htab)
	mask := uint64(size - 1)
	rejTail := int32(-1)
	if o.rejOK {
		rejTail = o.reject.tail
	}
	for i := len(blocks) - 1; i >= 0; i-- {
		b, x := blocks[i], &bi[i]
		x.rep = int32(i)
		if i > 0 && x.nin == 0 {
			continue
		}
		var rej bool
		t, f := int32(-1), int32(-1) // the successors, as merged
		switch b.kind {
		case blockRet:
			rej = b.k == 0
		case blockJump:
			t = bi[b.jt.tail].rep
			setJump(&b.jt, blocks[t])
			rej = bi[t].rej
		case blockCond:
			t, f = bi[b.jt.tail].rep, bi[b.jf.tail].rep
			setJump(&b.jt, blocks[t])
			setJump(&b.jf, blocks[f])
			rej = bi[t].rej && bi[f].rej
			if t == f {
				b.kind, b.jf, f = blockJump, nil, -1
			}
		}
		x.rej = rej
		// Every way on from a block that threading left returning 0
		// returns 0: its edges in may go to the return itself.
		if rej && rejTail >= 0 && int32(i) != rejTail {
			x.rep = rejTail
			continue
		}
		if b.kind == blockJump && len(b.stmts) == 0 {
			x.rep = bi[b.jt.tail].rep
			continue
		}
		// Identical blocks have the same successors: the hash need not
		// read every statement.
		h := uint64(b.k) | uint64(b.op)<<32 | uint64(b.kind)<<48 ^ uint64(uint32(t))<<20 ^ uint64(uint32(f))<<40
		if n := len(b.stmts); n > 0 {
			s := b.stmts[n-1]
			h ^= uint64(s.K)<<8 ^ uint64(s.Op)<<52 ^ uint64(n)<<56
		}
		h *= 0x9e3779b97f4a7c15
		h = (h ^ h>>31) & mask
		for {
			j := htab[h]
			if j == 0 {
				htab[h] = int32(i + 1)
				break
			}
			if optSameBlock(b, blocks[j-1]) {
				// Blocks that now share their way on may be threaded
				// further: another pass.
				x.rep = j - 1
				o.change = true
				break
			}
			h = (h + 1) & mask
		}
	}
	return blocks[bi[0].rep]
}

func optSameBlock(a, b *block) bool {
	if a.kind != b.kind || a.jt != b.jt || a.jf != b.jf || len(a.stmts) != len(b.stmts) {
		return false
	}
	if a.kind == blockCond && (a.op != b.op || a.k != b.k) {
		return false
	}
	if a.kind == blockRet && a.k != b.k {
		return false
	}
	for i := range a.stmts {
		if a.stmts[i] != b.stmts[i] {
			return false
		}
	}
	return true
}
