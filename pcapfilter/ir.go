package pcapfilter

import (
	"fmt"
	"slices"

	"golang.org/x/net/bpf"
)

// The code generator builds a graph of blocks, each a run of straight-line
// instructions ending in a conditional jump, an unconditional jump or a
// return. A boolean expression under construction is a cond: its entry
// block and the jump targets still to be filled in when it turns out true
// or false (backpatching). Layout turns the graph into a program.

// Classic BPF opcodes the generator emits.
const (
	opLdImm  = 0x00 // ld #k
	opLdxImm = 0x01 // ldx #k
	opSt     = 0x02 // st M[k]
	opStx    = 0x03 // stx M[k]
	opALU    = 0x04 // class of the ALU instructions
	opJa     = 0x05 // ja k
	opRetK   = 0x06 // ret #k
	opTax    = 0x07
	opLdWAbs = 0x20 // ld [k]
	opLdHAbs = 0x28 // ldh [k]
	opLdBAbs = 0x30 // ldb [k]
	opLdWInd = 0x40 // ld [x + k]
	opLdHInd = 0x48 // ldh [x + k]
	opLdBInd = 0x50 // ldb [x + k]
	opLdMem  = 0x60 // ld M[k]
	opLdxMem = 0x61 // ldx M[k]
	opLdLen  = 0x80 // ld #len
	opLdxLen = 0x81 // ldx #len
	opTxa    = 0x87
	opLdxMSH = 0xb1 // ldxb 4*([k]&0xf)

	opJeq  = 0x15 // jeq #k
	opJgt  = 0x25 // jgt #k
	opJge  = 0x35 // jge #k
	opJset = 0x45 // jset #k
	opSrcX = 0x08 // ALU and jumps: the operand is X, not k

	aluAdd = 0x00
	aluSub = 0x10
	aluMul = 0x20
	aluDiv = 0x30
	aluOr  = 0x40
	aluAnd = 0x50
	aluLsh = 0x60
	aluRsh = 0x70
	aluNeg = 0x80
	aluMod = 0x90
	aluXor = 0xa0

	memWords = 16 // scratch memory M[0..15]
)

// insn is one non-jump instruction.
type insn = bpf.RawInstruction

func stmt(op uint16, k uint32) insn { return insn{Op: op, K: k} }

type blockKind uint8

const (
	blockCond blockKind = iota // stmts, then if A op k (or X) goto jt else jf
	blockJump                  // stmts, then goto jt (may jump backward)
	blockRet                   // stmts, then return k
)

type block struct {
	stmts  []insn
	jt, jf *block
	exit   [2]exit // the block's jt and jf while they wait to be patched
	id     int     // creation order, which is the layout order
	k      uint32  // blockCond: the operand; blockRet: the value returned
	op     uint16  // blockCond: the jump opcode
	kind   blockKind

	mark uint32 // the last sweep that reached the block: see reachable

	// Filled in by layout.
	ntramp uint8     // how many of tramp are in use
	tail   int32     // instructions from the block's first to the program's end (far jumps only)
	at     int32     // index of the block's first instruction in the program
	tramp  [2]*block // far targets, reached through a ja each
}

// exit is a jump still to be patched, the jt (edge 0) or jf (edge 1) of
// its block b. A block's exits are b.exit[0] and b.exit[1] for good:
// genMemory sets their b and edge once, when it makes the block.
type exit struct {
	b    *block
	next *exit // the next exit of the list it is in
	edge uint8
}

// exits is a list of exits, linked in a circle through next and held by
// its last exit (nil: the empty list), so that joining two is two writes,
// and a list one pointer.
type exits struct{ last *exit }

func one(b *block, edge uint8) exits {
	e := &b.exit[edge]
	e.next = e
	return exits{e}
}

func (l exits) empty() bool { return l.last == nil }

// join returns the list of a's exits and then b's; a and b are used up.
func join(a, b exits) exits {
	switch {
	case a.last == nil:
		return b
	case b.last == nil:
		return a
	}
	a.last.next, b.last.next = b.last.next, a.last.next
	return b
}

// patch points every exit of l at to.
func patch(l exits, to *block) {
	if l.last == nil {
		return
	}
	for e := l.last.next; ; e = e.next {
		if e.edge == 0 {
			e.b.jt = to
		} else {
			e.b.jf = to
		}
		if e == l.last {
			return
		}
	}
}

// cond is a boolean expression being built. A constant has no entry; a
// cond whose t list is empty never matches but may still run (and abort
// on) its loads.
type cond struct {
	entry *block
	t, f  exits // exits still to patch: when true, when false
	val   bool  // the value of a constant
}

func (c cond) isConst() bool { return c.entry == nil }

// newBlock returns a block of the graph, created after every block before
// it: blocks are laid out in creation order.
func (g *gen) newBlock(kind blockKind, stmts []insn) *block {
	m := &g.mem
	if m.nb == len(m.cur) {
		g.nextChunk()
	}
	b := &m.cur[m.nb]
	m.nb++
	g.nblocks++
	// Blocks are reused from one compilation to the next: reset what is
	// read before it is written (exit's next, tail, at and tramp are
	// written first; exit's b and edge never change).
	b.stmts, b.jt, b.jf, b.id, b.k, b.op, b.kind, b.mark = stmts, nil, nil, g.nblocks, 0, 0, kind, 0
	return b
}

// genMemory hands out blocks and statements from chunks, which a
// compilation gives back (reset) for the next one to reuse.
type genMemory struct {
	blocks [][]block // chunks, kept from earlier compilations or new
	used   int       // chunks in use, the last one being filled
	cur    []block   // the last chunk in use
	nb     int       // blocks handed out of cur
	chunk  []insn    // statements, handed out from chunk[next:]
	next   int       // (nb and next are indexes, not slices: moving them writes no pointer)
	ninsns int       // statements handed out in this compilation
	stack  []*block  // reachable's work list, where a jump goes backward
	order  []*block  // reachable's blocks
	sweeps uint32    // reachable's sweeps so far in this compilation
}

// nextChunk makes the next chunk of blocks the one newBlock hands out
// from, or fails when the graph would exceed maxBlocks: the chunk ends
// there. It is newBlock's slow path, out of line so as not to slow the
// fast one.
//
//go:noinline
func (g *gen) nextChunk() {
	if g.nblocks >= maxBlocks {
		g.fail(-1, "", "the expression is too large: it needs more than %d blocks of code", maxBlocks)
	}
	m := &g.mem
	if m.used == len(m.blocks) {
		c := make([]block, 32<<min(m.used, 5))
		for i := range c {
			b := &c[i]
			b.exit = [2]exit{{b: b, edge: 0}, {b: b, edge: 1}}
		}
		m.blocks = append(m.blocks, c)
	}
	c := m.blocks[m.used]
	m.cur, m.nb = c[:min(len(c), maxBlocks-g.nblocks)], 0
	m.used++
}

// inUse returns chunk i of the blocks handed out, cut to those handed out.
func (m *genMemory) inUse(i int) []block {
	c := m.blocks[i]
	if i == m.used-1 {
		c = c[:m.nb]
	}
	return c
}

// stmts returns room for n statements, with room to append extra more
// without copying.
func (m *genMemory) stmts(n, extra int) []insn {
	if len(m.chunk)-m.next < n+extra {
		m.chunk, m.next = make([]insn, max(256, n+extra)), 0
	}
	s := m.chunk[m.next : m.next+n : m.next+n+extra]
	m.next += n + extra
	m.ninsns += n + extra
	return s
}

// Memory kept for the next compilation, at most: what a longer
// expression needed is left to the garbage collector. 6 chunks of blocks
// are 2,016 blocks (some 270 kB), the longest real-world expression's
// graph and more; the statements, 128 kB.
const (
	maxKeptChunks = 6
	maxKeptInsns  = 1 << 14
)

// reset readies g for another compilation, keeping the memory of one
// that was not too large, so that compiling the same expressions again
// allocates nothing but the program. It writes only what changes: it
// runs after every compilation.
func (g *gen) reset() {
	m := &g.mem
	if m.ninsns > len(m.chunk) && m.ninsns <= maxKeptInsns {
		// The statements took more than one chunk: one of their size
		// next time.
		m.chunk = make([]insn, m.ninsns)
	}
	// The blocks kept point into the memory kept with them, or at
	// statements of their own, and newBlock overwrites each block it
	// hands out: no need to clear them. Their marks are of earlier
	// sweeps; newBlock clears them.
	m.next, m.ninsns, m.used, m.cur, m.nb, m.sweeps = 0, 0, 0, nil, 0, 0
	if len(m.blocks) > maxKeptChunks {
		m.blocks, m.stack, m.order = nil, nil, nil
	} else if len(m.blocks) > 0 {
		// The first chunk, as nextChunk would hand it out.
		m.cur, m.used = m.blocks[0], 1
	}
	// The sets of relations' blocks, kept cleared if small.
	if s := &g.inet; len(s.relBlocks) > 0 || len(s.keep) > 0 {
		if len(s.relBlocks) > 1024 || len(s.keep) > 1024 {
			s.relBlocks, s.keep = nil, nil
		}
		clear(s.relBlocks)
		clear(s.keep)
	}
	if cap(g.arith.passed) > 64 {
		g.arith.passed = nil
	}
	// generate sets the rest; drop what may be large.
	g.expr, g.arith.passed, g.arith.pending = "", g.arith.passed[:0], nil
}

// test returns the cond that runs stmts, then jumps on "A op k": op is one
// of opJeq, opJgt, opJge, opJset, with opSrcX or'ed in to compare with X.
func (g *gen) test(stmts []insn, op uint16, k uint32) cond {
	b := g.newBlock(blockCond, stmts)
	b.op, b.k = op, k
	return cond{entry: b, t: one(b, 0), f: one(b, 1)}
}

// konst returns the constant cond v.
func konst(v bool) cond { return cond{val: v} }

// and returns "a and b": b runs only when a is true.
func and(a, b cond) cond {
	switch {
	case a.isConst():
		if a.val {
			return b
		}
		return a
	case b.isConst():
		if b.val {
			return a
		}
		// a still runs, for its loads may abort; it is never true.
		return cond{entry: a.entry, f: join(a.t, a.f)}
	}
	patch(a.t, b.entry)
	return cond{entry: a.entry, t: b.t, f: join(a.f, b.f)}
}

// or returns "a or b": b runs only when a is false.
func or(a, b cond) cond {
	switch {
	case a.isConst():
		if a.val {
			return a
		}
		return b
	case b.isConst():
		if !b.val {
			return a
		}
		return cond{entry: a.entry, t: join(a.t, a.f)}
	}
	patch(a.f, b.entry)
	return cond{entry: a.entry, t: join(a.t, b.t), f: b.f}
}

// not returns "not a": true and false swapped, aborts kept.
func not(a cond) cond {
	if a.isConst() {
		return konst(!a.val)
	}
	return cond{entry: a.entry, t: a.f, f: a.t}
}

const (
	maxBlocks = 1 << 20
	maxInsns  = 1 << 22
)

// reachable returns the blocks reachable from entry in creation order,
// entry first, in the compilation's memory (valid until the next call),
// and an error for an exit left unpatched or a conditional jump that goes
// backward. Jumps go forward but for protochain's loop: one sweep over
// the blocks in creation order finds the others, and a walk of the graph
// the rest.
func (g *gen) reachable(entry *block) ([]*block, error) {
	m := &g.mem
	m.sweeps++
	mark := m.sweeps
	entry.mark = mark
	order := m.order[:0]
	back := false
	for i := range m.used {
		c := m.inUse(i)
		for j := range c {
			b := &c[j]
			if b.mark != mark {
				continue
			}
			switch b.kind {
			case blockCond:
				if b.jt == nil || b.jf == nil {
					return nil, fmt.Errorf("internal error: block %d has an unpatched exit", b.id)
				}
				if b.jt.id <= b.id || b.jf.id <= b.id {
					return nil, fmt.Errorf("internal error: block %d jumps backward conditionally", b.id)
				}
				b.jt.mark, b.jf.mark = mark, mark
			case blockJump:
				if b.jt == nil {
					return nil, fmt.Errorf("internal error: block %d has an unpatched exit", b.id)
				}
				if b.jt.id <= b.id && b.jt.mark != mark {
					back = true
				}
				b.jt.mark = mark
			}
			order = append(order, b)
		}
	}
	m.order = order
	if back {
		// A backward jump to a block the sweep had passed: walk the
		// graph, then sweep again for the order.
		stack := append(m.stack[:0], order...)
		for len(stack) > 0 {
			b := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, to := range [2]*block{b.jt, b.jf} {
				if to != nil && b.kind != blockRet && to.mark != mark {
					to.mark = mark
					stack = append(stack, to)
				}
			}
		}
		m.stack = stack
		order = order[:0]
		for i := range m.used {
			c := m.inUse(i)
			for j := range c {
				if b := &c[j]; b.mark == mark {
					if (b.kind != blockRet && b.jt == nil) || (b.kind == blockCond && (b.jf == nil || b.jt.id <= b.id || b.jf.id <= b.id)) {
						return nil, fmt.Errorf("internal error: block %d has an unpatched exit or jumps backward conditionally", b.id)
					}
					order = append(order, b)
				}
			}
		}
		m.order = order
	}
	if len(order) == 0 || order[0] != entry {
		return nil, fmt.Errorf("internal error: the entry block is not the first")
	}
	return order, nil
}

// layout turns the graph from entry into a program, with the accept block
// returning snap and the reject block returning 0. Blocks are placed in
// creation order; conditional jumps must go forward, and those farther
// than 255 instructions go through an unconditional jump placed just after
// their block.
func (g *gen) layout(entry *block) ([]bpf.RawInstruction, error) {
	order, err := g.reachable(entry)
	if err != nil {
		return nil, err
	}
	// Positions from the start, without trampolines: in a program of up
	// to maxNear instructions no jump is farther than 255.
	n := 0
	for _, b := range order {
		b.at, b.ntramp = int32(n), 0
		n += len(b.stmts) + 1
		if n > maxInsns {
			return nil, errTooLong
		}
	}
	if n > maxNear {
		if n, err = farJumps(order); err != nil {
			return nil, err
		}
	}
	prog := make([]bpf.RawInstruction, n)
	for _, b := range order {
		here := int(b.at) // then the index of the jump
		for _, s := range b.stmts {
			// Not copy: most blocks have one or two statements.
			prog[here] = s
			here++
		}
		switch b.kind {
		case blockRet:
			prog[here] = insn{Op: opRetK, K: b.k}
		case blockJump:
			prog[here] = insn{Op: opJa, K: uint32(int(b.jt.at) - (here + 1))}
		case blockCond:
			in := insn{Op: b.op, K: b.k, Jt: uint8(int(b.jt.at) - (here + 1)), Jf: uint8(int(b.jf.at) - (here + 1))}
			if b.ntramp > 0 {
				target := func(to *block) uint8 {
					if i := slices.Index(b.tramp[:b.ntramp], to); i >= 0 {
						return uint8(i)
					}
					return uint8(int(to.at) - (here + 1))
				}
				in.Jt, in.Jf = target(b.jt), target(b.jf)
				for i, to := range b.tramp[:b.ntramp] {
					at := here + 1 + i
					prog[at] = insn{Op: opJa, K: uint32(int(to.at) - (at + 1))}
				}
			}
			prog[here] = in
		}
	}
	return prog, nil
}

// maxNear is the longest program whose jumps are all within 255
// instructions: the farthest goes from the first to the last.
const maxNear = 257

var errTooLong = fmt.Errorf("the program would have more than %d instructions", maxInsns)

// farJumps places the trampolines of the blocks in order, for a program
// that may need them, and returns its length. Sizes go from the end, so
// that every forward target's position is known when a block is placed;
// tail is the number of instructions from a block's first to the end of
// the program.
func farJumps(order []*block) (int, error) {
	n := 0
	for i := len(order) - 1; i >= 0; i-- {
		b := order[i]
		size := len(b.stmts) + 1
		if b.kind == blockCond {
			// The jump is followed by its trampolines, then by the n
			// instructions of the rest; a trampoline for one target moves
			// the other one farther, hence the second round. No jump over
			// fewer than 254 instructions needs one.
			for range 2 * min(1, n/254) {
				for _, to := range []*block{b.jt, b.jf} {
					if !slices.Contains(b.tramp[:b.ntramp], to) && int(b.ntramp)+n-int(to.tail) > 255 {
						b.tramp[b.ntramp] = to
						b.ntramp++
					}
				}
			}
			size += int(b.ntramp)
		}
		n += size
		if n > maxInsns {
			return 0, errTooLong
		}
		b.tail = int32(n)
	}
	for _, b := range order {
		b.at = int32(n) - b.tail
	}
	return n, nil
}
