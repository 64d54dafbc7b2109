package bpfmatch

import (
	"slices"
	"sync"

	"golang.org/x/net/bpf"
)

// Partial evaluation of a program over what is known of its frames.
//
// A flow knows every byte of its frame's headers except those that depend
// on the payload (lengths and checksums, header.varies); a Matcher, for
// each shape of fake packet (shape.go), knows the header bytes the shape
// fixes. Neither knows the payload, the wire length and so the captured
// length. The specialiser runs the program abstractly over that
// knowledge: A, X and
// M[0..15] are each a known constant or unknown, loads of fixed header
// bytes become constants, branches on constants are taken, and every
// instruction whose result is unknown is emitted into a residual program,
// which runs instead of the whole program. The residual program reads
// only what is not known.
//
// Specialisation is by (pc, abstract state), memoised, the state reduced
// to what is live at pc, so that paths meeting in the program meet in the
// residual program too. The residual program is bounded in size and in
// the work spent making it; past the bounds, and where a path reaches a
// backward jump (a protochain loop going round, whose budget follows the
// captured length), the flow runs the whole program.

// absVal is an abstract value: a constant, or unknown until the packet is.
// A constant v is 1<<32|v, so that states hash as plain memory.
type absVal uint64

// unknown is the value of what the packet decides.
const unknown absVal = 0

// constant returns the abstract value of the constant v.
func constant(v uint32) absVal { return absVal(1<<32 | uint64(v)) }

func (a absVal) known() bool { return a>>32 != 0 }

// v returns the value of a constant.
func (a absVal) v() uint32 { return uint32(a) }

// absState is the abstract state of the machine. Where a location is
// unknown, the residual program's machine holds in it the value the whole
// program's would; where it is a constant, the residual machine may hold
// anything, and the residual program reads the constant instead ("ld #k"
// where it needs it in A).
type absState struct {
	a, x absVal
	mem  [memWords]absVal
}

// specKey names a residual block: where in the program, in which state.
type specKey struct {
	pc uint32
	s  absState
}

// Live sets of the machine's locations, one bit each.
const (
	liveA = 1 << iota
	liveX
	liveMem0 // M[i] is liveMem0 << i
)

// Terminators of residual blocks.
const (
	termRet  = iota // the block's code ends with a return
	termGoto        // the block goes on to succ[0]
	termCond        // the block's last instruction is a jump to succ[0] or succ[1]
)

// specBlock is a residual block: straight-line code and how it ends.
type specBlock struct {
	pc   uint32 // the program's pc the block starts at; orders the layout
	code []bpf.RawInstruction
	term int
	succ [2]int
}

// specialiser holds one specialisation in progress.
type specialiser struct {
	raw   []bpf.RawInstruction
	insns []insn // decoded; op reads them unfused
	live  []uint32
	hdr   []byte                     // the header's bytes
	fixed func(off, end uint32) bool // whether hdr[off:end] is known
	snap  uint64

	blocks  []specBlock
	memo    map[specKey]int
	work    []int
	states  []absState // the state each block starts in
	size    int        // instructions emitted
	steps   int        // instructions evaluated
	maxSize int
	maxWork int
	failed  bool

	// layout's
	order, next, pos []int
	far              [][2]bool

	// readsHdr is set when the residual program may read a byte of the
	// header: the flow must then run it on the whole frame.
	readsHdr bool
}

// residual is the outcome of a specialisation.
type residual struct {
	raw []bpf.RawInstruction // on the whole frame
	// rebased is raw with its loads moved back by the header's length,
	// to run on the payload alone; nil when raw reads header bytes.
	rebased []bpf.RawInstruction
}

// specialise returns the residual program of p, decoded from raw, for
// frames captured up to snap bytes that start with a header of
// len(hdr) bytes, of which those fixed reports (hdr[off:end]) are as in
// hdr. It reports false when the whole program must run.
func specialise(p *program, raw []bpf.RawInstruction, hdr []byte, fixed func(off, end uint32) bool, snap uint32) (residual, bool) {
	n := len(raw)
	if len(p.insns) != n {
		return residual{}, false
	}
	sp := specialisers.Get().(*specialiser)
	defer sp.release()
	sp.raw, sp.insns, sp.hdr, sp.fixed, sp.snap = raw, p.insns, hdr, fixed, uint64(snap)
	sp.maxSize, sp.maxWork = min(2*n+64, maxResidual), min(8*n+1024, maxSteps)
	sp.liveness()
	var start absState
	for i := range start.mem {
		start.mem[i] = constant(0)
	}
	start.a, start.x = constant(0), constant(0)
	sp.block(0, start)
	for len(sp.work) > 0 && !sp.failed {
		b := sp.work[len(sp.work)-1]
		sp.work = sp.work[:len(sp.work)-1]
		sp.run(b)
	}
	if sp.failed {
		return residual{}, false
	}
	code, ok := sp.layout()
	if !ok {
		return residual{}, false
	}
	out := residual{raw: code}
	if !sp.readsHdr {
		out.rebased = rebase(out.raw, uint32(len(hdr)))
	}
	return out, true
}

// The bounds of a specialisation: past them, the flow runs the whole
// program. A residual program may have twice the instructions of the
// whole program, and 64 more, up to maxResidual; the specialiser may
// evaluate eight times as many, and 1024 more, up to maxSteps. The caps
// bound the memory and time a flow of a huge program costs.
const (
	maxResidual = 1 << 14
	maxSteps    = 1 << 18
)

// specialisers keeps specialisers' memory for the next flow.
var specialisers = sync.Pool{New: func() any { return &specialiser{memo: make(map[specKey]int)} }}

// release readies sp for the next flow and gives it back, unless it grew
// large on a large program.
func (sp *specialiser) release() {
	if len(sp.blocks) > 1024 {
		return
	}
	clear(sp.memo)
	*sp = specialiser{memo: sp.memo, live: sp.live[:0], blocks: sp.blocks[:0], states: sp.states[:0], work: sp.work[:0],
		order: sp.order[:0], next: sp.next[:0], far: sp.far[:0], pos: sp.pos[:0]}
	specialisers.Put(sp)
}

// grow returns s resized to n elements, reusing its memory, zeroed.
func grow[T any](s []T, n int) []T {
	s = slices.Grow(s[:0], n)[:n]
	clear(s)
	return s
}

// liveness computes, for each pc, the locations whose values the program
// may read from there on before writing them. Jumps go forward only.
func (sp *specialiser) liveness() {
	sp.live = grow(sp.live, len(sp.insns))
	for pc := len(sp.insns) - 1; pc >= 0; pc-- {
		in := &sp.insns[pc]
		op := sp.op(uint32(pc))
		var out uint32
		switch {
		case op == opRetK || op == opRetA || op == opLdBAux:
		case op == opJa:
			out = sp.live[in.jt]
		case op == opJaBack:
			out = ^uint32(0) // not yet known; and specialisation stops there
		case op >= opJgtK && op <= opJsetX:
			out = sp.live[in.jt] | sp.live[in.jf]
		default:
			out = sp.live[pc+1]
		}
		use, def := usesDefs(op, in.k)
		sp.live[pc] = use | out&^def
	}
}

// op returns the operation of the instruction at pc, a fused load as the
// load alone: the jump fused with it follows it.
func (sp *specialiser) op(pc uint32) opKind {
	op := sp.insns[pc].op
	if u := unfused[op]; u != 0 {
		return u
	}
	return op
}

// usesDefs returns the locations op, of constant k, reads and those it
// writes.
func usesDefs(op opKind, k uint32) (use, def uint32) {
	mem := uint32(liveMem0) << (k & (memWords - 1))
	switch op {
	case opRetA:
		return liveA, 0
	case opLdW, opLdH, opLdB, opLdLen, opLdImm:
		return 0, liveA
	case opLdWInd, opLdHInd, opLdBInd:
		return liveX, liveA
	case opLdxMSH, opLdxLen, opLdxImm:
		return 0, liveX
	case opLdMem:
		return mem, liveA
	case opLdxMem:
		return mem, liveX
	case opSt:
		return liveA, mem
	case opStx:
		return liveX, mem
	case opJgtK, opJgeK, opJeqK, opJsetK:
		return liveA, 0
	case opJgtX, opJgeX, opJeqX, opJsetX:
		return liveA | liveX, 0
	case opAddK, opSubK, opMulK, opDivK, opModK, opAndK, opOrK, opXorK, opLshK, opRshK, opNeg:
		return liveA, liveA
	case opAddX, opSubX, opMulX, opDivX, opModX, opAndX, opOrX, opXorX, opLshX, opRshX:
		return liveA | liveX, liveA
	case opTax:
		return liveA, liveX
	case opTxa:
		return liveX, liveA
	}
	return 0, 0
}

// block returns the residual block of pc in state s, queueing it for
// specialisation if it is new. Locations dead at pc are forgotten, so
// that states differing only there share a block.
func (sp *specialiser) block(pc uint32, s absState) int {
	live := sp.live[pc]
	if live&liveA == 0 {
		s.a = constant(0)
	}
	if live&liveX == 0 {
		s.x = constant(0)
	}
	for i := range s.mem {
		if live&(liveMem0<<i) == 0 {
			s.mem[i] = constant(0)
		}
	}
	key := specKey{pc, s}
	if b, ok := sp.memo[key]; ok {
		return b
	}
	b := len(sp.blocks)
	if b < cap(sp.blocks) { // reuse the memory of a block of an earlier flow
		sp.blocks = sp.blocks[:b+1]
		sp.blocks[b] = specBlock{pc: pc, code: sp.blocks[b].code[:0]}
	} else {
		sp.blocks = append(sp.blocks, specBlock{pc: pc})
	}
	sp.states = append(sp.states, s)
	sp.memo[key] = b
	sp.work = append(sp.work, b)
	if len(sp.blocks) > sp.maxSize {
		sp.failed = true
	}
	return b
}

func (sp *specialiser) emit(b int, r bpf.RawInstruction) {
	sp.blocks[b].code = append(sp.blocks[b].code, r)
	sp.size++
	if sp.size > sp.maxSize {
		sp.failed = true
	}
}

// loadOutcome is what the specialiser knows of a load.
type loadOutcome int

const (
	loadKnown    loadOutcome = iota // of fixed header bytes: a constant
	loadAborts                      // past the snap length: the program returns 0
	loadResidual                    // of bytes the payload decides
)

// load says what the load of the size bytes at off gives, and its value
// when known. The captured length is min(wire, snap) and the wire length
// at least the header's, so a load ending within both never aborts, and
// one ending past the snap length always does.
func (sp *specialiser) load(off, size uint64) (uint32, loadOutcome) {
	end := off + size
	switch {
	case end > sp.snap:
		return 0, loadAborts
	case end <= uint64(len(sp.hdr)) && sp.fixed(uint32(off), uint32(end)):
		return be(sp.hdr[off:end]), loadKnown
	}
	if off < uint64(len(sp.hdr)) {
		sp.readsHdr = true
	}
	return 0, loadResidual
}

// retK ends block b with "ret #k".
func (sp *specialiser) retK(b int, k uint32) {
	sp.emit(b, bpf.RawInstruction{Op: bpfRetK, K: k})
	sp.blocks[b].term = termRet
}

// materialiseA emits "ld #a" when A is a constant, so that the residual
// machine holds it in A.
func (sp *specialiser) materialiseA(b int, s *absState) {
	if s.a.known() {
		sp.emit(b, bpf.RawInstruction{Op: bpfLdImm, K: s.a.v()})
	}
}

// run specialises block b: from its pc and state, evaluates what is known
// and emits the rest, until a return or a jump.
func (sp *specialiser) run(b int) {
	pc, s := sp.blocks[b].pc, sp.states[b]
	for !sp.failed {
		sp.steps++
		if sp.steps > sp.maxWork {
			sp.failed = true
			return
		}
		in := &sp.insns[pc]
		r := sp.raw[pc]
		op := sp.op(pc)
		if _, def := usesDefs(op, in.k); def != 0 && sp.live[pc+1]&def == 0 && cannotAbort(op) {
			// What it writes is dead: whatever it is, nothing reads it.
			s.set(def, constant(0))
			pc++
			continue
		}
		switch op {
		case opRetK:
			sp.retK(b, in.k)
			return
		case opRetA:
			if s.a.known() {
				sp.retK(b, s.a.v())
				return
			}
			sp.emit(b, r)
			sp.blocks[b].term = termRet
			return
		case opLdBAux:
			sp.retK(b, 0)
			return
		case opLdW, opLdH, opLdB, opLdxMSH, opLdWInd, opLdHInd, opLdBInd:
			size, ind := loadSize(op)
			if ind && !s.x.known() {
				if uint64(in.k)+size > sp.snap { // past the snap length whatever X is
					sp.retK(b, 0)
					return
				}
				if uint64(in.k) < uint64(len(sp.hdr)) {
					sp.readsHdr = true
				}
				sp.emit(b, r)
				s.a = unknown
				break
			}
			off := uint64(in.k)
			if ind {
				off += uint64(s.x.v())
			}
			v, how := sp.load(off, size)
			switch how {
			case loadAborts:
				sp.retK(b, 0)
				return
			case loadKnown:
				if op == opLdxMSH {
					s.x = constant((v & 0xf) << 2)
				} else {
					s.a = constant(v)
				}
			case loadResidual:
				// off+size is within the snap length, below 2^32.
				if op == opLdxMSH {
					sp.emit(b, r)
					s.x = unknown
				} else {
					sp.emit(b, bpf.RawInstruction{Op: absLoad(size), K: uint32(off)})
					s.a = unknown
				}
			}
		case opLdLen:
			sp.emit(b, r)
			s.a = unknown
		case opLdxLen:
			sp.emit(b, r)
			s.x = unknown
		case opLdImm:
			s.a = constant(in.k)
		case opLdxImm:
			s.x = constant(in.k)
		case opLdMem:
			s.a = s.mem[in.k]
			if !s.a.known() {
				sp.emit(b, r)
			}
		case opLdxMem:
			s.x = s.mem[in.k]
			if !s.x.known() {
				sp.emit(b, r)
			}
		case opSt:
			s.mem[in.k] = s.a
			if !s.a.known() {
				sp.emit(b, r)
			}
		case opStx:
			s.mem[in.k] = s.x
			if !s.x.known() {
				sp.emit(b, r)
			}
		case opTax:
			s.x = s.a
			if !s.a.known() {
				sp.emit(b, r)
			}
		case opTxa:
			s.a = s.x
			if !s.x.known() {
				sp.emit(b, r)
			}
		case opJa:
			sp.goTo(b, in.jt, s)
			return
		case opJaBack:
			// A loop (protochain's) whose path the headers do not cut
			// short: its budget follows the captured length. The residual
			// program is made only of paths that never jump back, which
			// the whole program takes on the same packets.
			sp.failed = true
			return
		case opJgtK, opJgeK, opJeqK, opJsetK, opJgtX, opJgeX, opJeqX, opJsetX:
			sp.cond(b, in, r, s)
			return
		case opNeg:
			if s.a.known() {
				s.a = constant(-s.a.v())
			} else {
				sp.emit(b, r)
			}
		default: // the arithmetic
			if !sp.alu(b, pc, r, &s) {
				return
			}
		}
		pc++
	}
}

// cannotAbort reports whether op, writing a location, never ends the run:
// all but loads from the packet and divisions by X.
func cannotAbort(op opKind) bool {
	switch op {
	case opLdW, opLdH, opLdB, opLdWInd, opLdHInd, opLdBInd, opLdxMSH, opDivX, opModX:
		return false
	}
	return true
}

// set sets the location def, one bit of a live set, to v.
func (s *absState) set(def uint32, v absVal) {
	switch def {
	case liveA:
		s.a = v
	case liveX:
		s.x = v
	default:
		for i := range s.mem {
			if def == liveMem0<<i {
				s.mem[i] = v
			}
		}
	}
}

// alu evaluates or emits an arithmetic instruction; it reports false when
// it ended the block (a division by a zero X).
func (sp *specialiser) alu(b int, pc uint32, r bpf.RawInstruction, s *absState) bool {
	in := &sp.insns[pc]
	kop, isX := kForm(sp.op(pc))
	operand := constant(in.k)
	if isX {
		operand = s.x
	}
	switch {
	case operand.known() && s.a.known():
		v, ok := aluK(kop, s.a.v(), operand.v())
		if !ok {
			sp.retK(b, 0)
			return false
		}
		s.a = constant(v)
	case operand.known():
		k := operand.v()
		switch {
		case (kop == opDivK || kop == opModK) && k == 0:
			sp.retK(b, 0)
			return false
		case (kop == opLshK || kop == opRshK) && k >= 32:
			s.a = constant(0) // as the executor shifts by X
			return true
		case (kop == opAndK || kop == opMulK) && k == 0:
			s.a = constant(0)
			return true
		}
		sp.emit(b, bpf.RawInstruction{Op: r.Op &^ bpfSrcX, K: k})
		s.a = unknown
	default: // X unknown
		sp.materialiseA(b, s)
		sp.emit(b, r)
		s.a = unknown
	}
	return true
}

// cond evaluates a conditional jump, or emits it when A or X is unknown.
func (sp *specialiser) cond(b int, in *insn, r bpf.RawInstruction, s absState) {
	kop, isX := kForm(in.op)
	operand := constant(in.k)
	if isX {
		operand = s.x
	}
	if s.a.known() && operand.known() {
		to := in.jf
		if condK(kop, s.a.v(), operand.v()) {
			to = in.jt
		}
		sp.goTo(b, to, s)
		return
	}
	var jump bpf.RawInstruction
	st, sf := s, s
	switch {
	case operand.known(): // A unknown
		jump = bpf.RawInstruction{Op: r.Op &^ bpfSrcX, K: operand.v()}
		if kop == opJeqK {
			st.a = operand
		}
	default: // X unknown
		sp.materialiseA(b, &s)
		jump = bpf.RawInstruction{Op: r.Op}
		if kop == opJeqK && s.a.known() {
			st.x = s.a
		}
	}
	sp.emit(b, jump)
	sp.blocks[b].term = termCond
	t := sp.block(in.jt, st)
	f := sp.block(in.jf, sf)
	sp.blocks[b].succ = [2]int{t, f}
}

// goTo ends block b with a jump to pc, in state s.
func (sp *specialiser) goTo(b int, pc uint32, s absState) {
	t := sp.block(pc, s)
	sp.blocks[b].term, sp.blocks[b].succ[0] = termGoto, t
}

// layout lays the blocks out in the order of their pcs, so that every jump
// goes forward, and resolves the jumps: a goto to the next block falls
// through, and a conditional jump too far for its 8-bit offsets goes
// through "ja" trampolines after it.
func (sp *specialiser) layout() ([]bpf.RawInstruction, bool) {
	nb := len(sp.blocks)
	sp.order, sp.next, sp.pos, sp.far = grow(sp.order, nb), grow(sp.next, nb), grow(sp.pos, nb), grow(sp.far, nb)
	order, next, pos, far := sp.order, sp.next, sp.pos, sp.far
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int { return int(sp.blocks[i].pc) - int(sp.blocks[j].pc) })
	// next is the block laid out after each, or -1.
	for i, b := range order {
		next[b] = -1
		if i+1 < len(order) {
			next[b] = order[i+1]
		}
	}
	// tail returns the instructions after a block's code.
	tail := func(b int) int {
		blk := &sp.blocks[b]
		switch blk.term {
		case termGoto:
			if next[b] == blk.succ[0] {
				return 0
			}
			return 1
		case termCond:
			n := 0
			for _, f := range far[b] {
				if f {
					n++
				}
			}
			return n
		}
		return 0
	}
	for pass := 0; ; pass++ {
		if pass == maxLayoutPasses {
			return nil, false
		}
		at := 0
		for _, b := range order {
			pos[b] = at
			at += len(sp.blocks[b].code) + tail(b)
		}
		grown := false
		for _, b := range order {
			blk := &sp.blocks[b]
			if blk.term != termCond {
				continue
			}
			from := pos[b] + len(blk.code) // after the jump
			for i, s := range blk.succ {
				if !far[b][i] && pos[s]-from > 255 {
					far[b][i], grown = true, true
				}
			}
		}
		if !grown {
			break
		}
	}
	var out []bpf.RawInstruction
	for _, b := range order {
		blk := &sp.blocks[b]
		out = append(out, blk.code...)
		switch blk.term {
		case termGoto:
			if next[b] != blk.succ[0] {
				out = append(out, bpf.RawInstruction{Op: bpfJa, K: uint32(pos[blk.succ[0]] - len(out) - 1)})
			}
		case termCond:
			j := &out[len(out)-1]
			from := len(out)
			var tramp []int
			for i, s := range blk.succ {
				off := pos[s] - from
				if far[b][i] {
					off = len(tramp)
					tramp = append(tramp, s)
				}
				if i == 0 {
					j.Jt = uint8(off)
				} else {
					j.Jf = uint8(off)
				}
			}
			for _, s := range tramp {
				out = append(out, bpf.RawInstruction{Op: bpfJa, K: uint32(pos[s] - len(out) - 1)})
			}
		}
	}
	return out, true
}

// maxLayoutPasses bounds the passes of layout, each of which adds at least
// one trampoline, so that a hostile program cannot make it quadratic.
const maxLayoutPasses = 8

// rebase returns raw with the offsets of its loads moved back by n, to run
// on the bytes after the first n of the frame. Its loads all read at n or
// past it.
func rebase(raw []bpf.RawInstruction, n uint32) []bpf.RawInstruction {
	out := slices.Clone(raw)
	for i := range out {
		switch out[i].Op {
		case bpfLdWAbs, bpfLdHAbs, bpfLdBAbs, bpfLdWInd, bpfLdHInd, bpfLdBInd, bpfLdxMSH:
			out[i].K -= n
		}
	}
	return out
}

// loadSize returns the bytes a load reads and whether it is indexed by X.
func loadSize(op opKind) (uint64, bool) {
	switch op {
	case opLdW:
		return 4, false
	case opLdH:
		return 2, false
	case opLdWInd:
		return 4, true
	case opLdHInd:
		return 2, true
	case opLdBInd:
		return 1, true
	}
	return 1, false
}

// absLoad returns the opcode of the absolute load of size bytes.
func absLoad(size uint64) uint16 {
	switch size {
	case 4:
		return bpfLdWAbs
	case 2:
		return bpfLdHAbs
	}
	return bpfLdBAbs
}

// kForm returns the form with operand k of an arithmetic operation or a
// conditional jump, and whether op's operand is X.
func kForm(op opKind) (opKind, bool) {
	switch op {
	case opAddX, opSubX, opMulX, opDivX, opModX, opAndX, opOrX, opXorX, opLshX, opRshX:
		return op - opAddX + opAddK, true
	case opJgtX, opJgeX, opJeqX, opJsetX:
		return op - opJgtX + opJgtK, true
	}
	return op, false
}

// aluK computes A op k as the executor does, with shifts by 32 or more
// giving 0; it reports false for a division by zero, which returns 0.
func aluK(op opKind, a, k uint32) (uint32, bool) {
	switch op {
	case opAddK:
		return a + k, true
	case opSubK:
		return a - k, true
	case opMulK:
		return a * k, true
	case opDivK:
		if k == 0 {
			return 0, false
		}
		return a / k, true
	case opModK:
		if k == 0 {
			return 0, false
		}
		return a % k, true
	case opAndK:
		return a & k, true
	case opOrK:
		return a | k, true
	case opXorK:
		return a ^ k, true
	case opLshK:
		return a << k, true
	case opRshK:
		return a >> k, true
	}
	return 0, false
}

// condK reports whether a conditional jump comparing a with k is taken.
func condK(op opKind, a, k uint32) bool {
	switch op {
	case opJgtK:
		return a > k
	case opJgeK:
		return a >= k
	case opJeqK:
		return a == k
	}
	return a&k != 0 // opJsetK
}
