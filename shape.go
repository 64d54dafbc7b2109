package bpfmatch

import (
	"net/netip"
	"sync"
)

// A fake packet's shape is what its kind alone fixes in its headers: the
// link type, whether it has a VLAN tag, IPv4 or IPv6, TCP or UDP. The
// shape fixes the EtherType, the IP version and header length, the
// fragment field, the protocol, the TCP data offset: most of what a
// filter tests before it reads an address, a port or the payload. For
// each shape a Matcher keeps its program evaluated over those bytes, the
// residual program, which Match runs instead: it reads only what differs
// between packets of the shape.

// numShapes counts the shapes: bit 0 IPv6, bit 1 UDP, bit 2 VLAN.
const numShapes = 8

// shapeOf returns the shape of the header h built.
func shapeOf(h *header) int {
	s := 0
	if h.v6 {
		s |= 1
	}
	if h.udp {
		s |= 2
	}
	if h.ip > ethernetLen {
		s |= 4
	}
	return s
}

// maxShapeProgram is the longest program specialised: longer ones, which
// real filters are not, run whole.
const maxShapeProgram = 4096

// shapeSet is what a Matcher keeps for Match by shape.
type shapeSet struct {
	// progs are the residual programs; nil where the whole one runs.
	progs [numShapes]*program
	// needs are the groups of header fields the program run may read
	// (header.buildNeed).
	needs [numShapes]uint8
	// lengths is set where the program run may read a length or a
	// checksum: the header is then completed for the payload.
	lengths [numShapes]bool
}

// needLengths marks, in shapeHeader's groups, a length or a checksum.
const needLengths = 0x80

// shapePrograms returns the residual programs of p for each shape of
// frames of link, or nil where p is not specialised.
func shapePrograms(p *program, link LinkType, snap uint32) *shapeSet {
	if link != LinkEthernet && link != LinkRaw || len(p.insns) > maxShapeProgram || p.backWeight != 0 {
		return nil
	}
	out := &shapeSet{}
	li := 0
	if link == LinkRaw {
		li = 1
	}
	var sc residualScratch
	for s := range numShapes {
		out.needs[s], out.lengths[s] = needAll, true
		t := &shapeTemplates()[li][s]
		if !t.ok {
			continue
		}
		// A load within the header and the snap length always succeeds.
		end := min(uint32(t.h.n), snap)
		r := sc.residual(p.insns, func(off, n uint64) (uint32, bool) {
			if off+n > uint64(end) {
				return 0, false
			}
			var v uint32
			for i := off; i < off+n; i++ {
				if !t.known[i] {
					return 0, false
				}
				v = v<<8 | uint32(t.h.b[i])
			}
			return v, true
		})
		if r == nil {
			continue
		}
		out.progs[s] = &program{insns: r, oneTest: isOneTest(r)}
		need := readGroups(r, &t.groups, t.h.n)
		if need&needLengths == 0 {
			out.needs[s], out.lengths[s] = need, false
		}
	}
	return out
}

// shapeTemplate is the header of a shape, what of it the shape fixes and
// the group of each byte (shapeHeader).
type shapeTemplate struct {
	h      header
	known  [len(header{}.b)]bool
	groups [len(header{}.b)]uint8
	ok     bool // the link type has the shape
}

// shapeTemplates are the templates of Ethernet's shapes, then raw IP's.
var shapeTemplates = sync.OnceValue(func() *[2][numShapes]shapeTemplate {
	var ts [2][numShapes]shapeTemplate
	for li, link := range []LinkType{LinkEthernet, LinkRaw} {
		for s := range numShapes {
			t := &ts[li][s]
			t.ok = (s&4 == 0 || link == LinkEthernet) && shapeHeader(&t.h, &t.known, &t.groups, s, link)
		}
	}
	return &ts
})

// readGroups returns the groups of the header fields that insns may read,
// needAll|needLengths where it cannot tell.
func readGroups(insns []insn, groups *[len(header{}.b)]uint8, n uint8) uint8 {
	need := uint8(0)
	for _, in := range insns {
		op := in.op
		if u := unfused[op]; u != 0 {
			op = u
		}
		switch op {
		case opLdW, opLdH, opLdB, opLdxMSH:
			size := uint64(shapeLoadSize(op))
			if op == opLdxMSH {
				size = 1
			}
			for i := uint64(in.k); i < uint64(in.k)+size && i < uint64(n); i++ {
				need |= groups[i]
			}
		case opLdWInd, opLdHInd, opLdBInd:
			return needAll | needLengths
		}
	}
	if need&needLengths != 0 {
		// The checksums are of everything.
		need |= needAll
	}
	return need
}

// shapeHeader builds in h the header of a packet of shape s and marks in
// known the bytes that every packet of the shape has.
// groups gets the group of each header byte (header.buildNeed), or
// needLengths.
func shapeHeader(h *header, known *[len(header{}.b)]bool, groups *[len(header{}.b)]uint8, s int, link LinkType) bool {
	p := FakePacket{Src: netip.MustParseAddrPort("10.0.0.1:1"), Dst: netip.MustParseAddrPort("10.0.0.2:2"), Protocol: TCP}
	if s&1 != 0 {
		p.Src, p.Dst = netip.MustParseAddrPort("[2001:db8::1]:1"), netip.MustParseAddrPort("[2001:db8::2]:2")
	}
	if s&2 != 0 {
		p.Protocol = UDP
	}
	if s&4 != 0 {
		p.VLAN = &VLAN{}
	}
	if h.build(&p, link) != nil {
		return false
	}
	mark := func(at uint8, offs ...uint8) {
		for _, o := range offs {
			known[at+o] = true
		}
	}
	if link == LinkEthernet {
		mark(h.ip-2, 0, 1) // the EtherType
		if s&4 != 0 {
			mark(12, 0, 1) // the VLAN tag's TPID; its TCI varies
		}
	}
	if h.v6 {
		mark(h.ip, 0, 1, 2, 3, 6) // version, traffic class, flow label; next header
	} else {
		mark(h.ip, 0, 1, 4, 5, 6, 7, 9) // version and IHL, TOS, ID, fragment field; protocol
	}
	if !h.udp {
		mark(h.l4, 12, 18, 19) // data offset; urgent pointer
	}

	group := func(g uint8, from, to uint8) {
		for i := from; i < to; i++ {
			groups[i] = g
		}
	}
	if link == LinkEthernet {
		group(needMAC, 0, 12)
		group(needFixed, 12, 14)
		if s&4 != 0 {
			group(needVLAN, 14, 16)
			group(needFixed, 16, 18)
		}
	}
	ip, l4 := h.ip, h.l4
	if h.v6 {
		group(needFixed, ip, ip+4)
		group(needLengths, ip+4, ip+6)
		group(needFixed, ip+6, ip+7)
		group(needIP, ip+7, ip+40)
	} else {
		group(needFixed, ip, ip+2)
		group(needLengths, ip+2, ip+4)
		group(needFixed, ip+4, ip+8)
		group(needIP, ip+8, ip+9)
		group(needFixed, ip+9, ip+10)
		group(needLengths, ip+10, ip+12)
		group(needIP, ip+12, ip+20)
	}
	group(needPorts, l4, l4+4)
	if h.udp {
		group(needLengths, l4+4, l4+8)
	} else {
		group(needTCP, l4+4, l4+12)
		group(needFixed, l4+12, l4+13)
		group(needTCP, l4+13, l4+16)
		group(needLengths, l4+16, l4+18)
		group(needFixed, l4+18, l4+20)
	}
	return true
}

// shapeState is what is known of the machine's registers before an
// instruction, on every path to it.
type shapeState struct {
	a, x     uint32
	aKnown   bool
	xKnown   bool
	memKnown uint16 // bit i: mem[i] known
	mem      [memWords]uint32
	reached  bool
}

// Registers of the liveness analysis: A, X, then M[0..15].
const (
	shapeLiveA = 1 << iota
	shapeLiveX
	shapeLiveMem0
)

// residualScratch is residual's working memory, kept from one program to
// the next.
type residualScratch struct {
	code                         []insn
	st                           []shapeState
	jump, live, target, nextKept []uint32
	removed, keep                []bool
}

// growScratch returns s with length n, zeroed, reusing its memory.
func growScratch[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// residual evaluates insns (a decoded program without backward jumps)
// where the bytes load can give are known, and returns the program that
// is left: loads of known bytes become constants, tests of known values
// jumps, what only fed them is dropped, and the jumps are threaded. It
// returns what insns return on every frame whose bytes load knows
// are as it says, and fails the same loads. It returns nil when nothing
// is gained.
func (sc *residualScratch) residual(insns []insn, load func(off, n uint64) (uint32, bool)) []insn {
	n := len(insns)
	sc.code = growScratch(sc.code, n)
	code := sc.code
	for i, in := range insns {
		if u := unfused[in.op]; u != 0 {
			// The jump of a fused pair follows it: evaluate them apart.
			in.op, in.k2 = u, 0
			in.jt, in.jf = 0, 0
		}
		code[i] = in
	}
	sc.st = growScratch(sc.st, n)
	st := sc.st
	st[0] = shapeState{aKnown: true, xKnown: true, memKnown: 0xffff, reached: true}
	// A conditional jump whose outcome is known goes to jump[i].
	const next = ^uint32(0)
	sc.jump = growScratch(sc.jump, n)
	jump := sc.jump // for a known jump, where it goes; next for none
	for i := range jump {
		jump[i] = next
	}
	flow := func(to uint32, s *shapeState) {
		d := &st[to]
		if !d.reached {
			*d = *s
			return
		}
		if !d.aKnown || !s.aKnown || d.a != s.a {
			d.aKnown = false
		}
		if !d.xKnown || !s.xKnown || d.x != s.x {
			d.xKnown = false
		}
		for m := range memWords {
			if d.mem[m] != s.mem[m] {
				d.memKnown &^= 1 << m
			}
		}
		d.memKnown &= s.memKnown
	}
	for i := range n {
		if !st[i].reached {
			continue
		}
		s := st[i] // the state after the instruction
		s.reached = true
		in := &code[i]
		k := in.k
		var cond, condKnown bool
		isCond := false
		switch in.op {
		case opRetK:
			continue
		case opRetA:
			if s.aKnown {
				in.op, in.k = opRetK, s.a
			}
			continue
		case opLdW, opLdH, opLdB:
			if v, ok := load(uint64(k), uint64(shapeLoadSize(in.op))); ok {
				in.op, in.k = opLdImm, v
				s.a, s.aKnown = v, true
			} else {
				s.aKnown = false
			}
		case opLdWInd, opLdHInd, opLdBInd:
			off := uint64(s.x) + uint64(k)
			if !s.xKnown {
				s.aKnown = false
				break
			}
			if v, ok := load(off, uint64(shapeLoadSize(in.op))); ok {
				in.op, in.k = opLdImm, v
				s.a, s.aKnown = v, true
				break
			}
			if off <= 0xffffffff {
				// An absolute load of the same bytes, which fails alike.
				in.op, in.k = in.op-opLdWInd+opLdW, uint32(off)
			}
			s.aKnown = false
		case opLdxMSH:
			if v, ok := load(uint64(k), 1); ok {
				in.op, in.k = opLdxImm, (v&0xf)<<2
				s.x, s.xKnown = in.k, true
			} else {
				s.xKnown = false
			}
		case opLdLen:
			s.aKnown = false
		case opLdxLen:
			s.xKnown = false
		case opLdImm:
			s.a, s.aKnown = k, true
		case opLdxImm:
			s.x, s.xKnown = k, true
		case opLdMem:
			m := k & (memWords - 1)
			s.a, s.aKnown = s.mem[m], s.memKnown&(1<<m) != 0
			if s.aKnown {
				in.op, in.k = opLdImm, s.a
			}
		case opLdxMem:
			m := k & (memWords - 1)
			s.x, s.xKnown = s.mem[m], s.memKnown&(1<<m) != 0
			if s.xKnown {
				in.op, in.k = opLdxImm, s.x
			}
		case opSt:
			m := k & (memWords - 1)
			s.mem[m] = s.a
			s.memKnown = s.memKnown&^(1<<m) | b2u16(s.aKnown)<<m
		case opStx:
			m := k & (memWords - 1)
			s.mem[m] = s.x
			s.memKnown = s.memKnown&^(1<<m) | b2u16(s.xKnown)<<m
		case opJa:
			flow(in.jt, &s)
			continue
		case opJgtK, opJgeK, opJeqK, opJsetK:
			isCond, condKnown = true, s.aKnown
			cond = compare(in.op-opJgtK, s.a, k)
		case opJgtX, opJgeX, opJeqX, opJsetX:
			isCond, condKnown = true, s.aKnown && s.xKnown
			cond = compare(in.op-opJgtX, s.a, s.x)
		case opTax:
			s.x, s.xKnown = s.a, s.aKnown
			if s.aKnown {
				in.op, in.k = opLdxImm, s.a
			}
		case opTxa:
			s.a, s.aKnown = s.x, s.xKnown
			if s.xKnown {
				in.op, in.k = opLdImm, s.x
			}
		case opLdBAux:
			continue // fails: the run ends here
		default:
			if in.op < opAddK || in.op > opNeg {
				return nil // an instruction this evaluation does not know
			}
			operand, opKnown := k, true
			if in.op >= opAddX && in.op <= opRshX {
				operand, opKnown = s.x, s.xKnown
			}
			v, ok := shapeALU(in.op, s.a, operand)
			if s.aKnown && opKnown && ok {
				in.op, in.k = opLdImm, v
				s.a = v
			} else {
				s.aKnown = false
			}
		}
		if isCond {
			switch {
			case condKnown && cond:
				jump[i] = in.jt
				flow(in.jt, &s)
			case condKnown:
				jump[i] = in.jf
				flow(in.jf, &s)
			default:
				flow(in.jt, &s)
				flow(in.jf, &s)
			}
			continue
		}
		flow(uint32(i+1), &s)
	}

	// Liveness, backward: what each instruction's successors may read.
	sc.live = growScratch(sc.live, n)
	live := sc.live // live before instruction i
	sc.removed = growScratch(sc.removed, n)
	removed := sc.removed
	succLive := func(i int) uint32 {
		in := &code[i]
		switch {
		case jump[i] != next:
			return live[jump[i]]
		case in.op == opJa:
			return live[in.jt]
		case in.op >= opJgtK && in.op <= opJsetX:
			return live[in.jt] | live[in.jf]
		case in.op == opRetK || in.op == opRetA || in.op == opLdBAux:
			return 0
		}
		return live[i+1]
	}
	for i := n - 1; i >= 0; i-- {
		if !st[i].reached {
			continue
		}
		out := succLive(i)
		in := &code[i]
		if jump[i] != next || in.op == opJa {
			removed[i] = true
			live[i] = out
			continue
		}
		use, def := uint32(0), uint32(0)
		pure := false // no effect but def: removable when def is dead
		switch in.op {
		case opRetA:
			use = shapeLiveA
		case opLdW, opLdH, opLdB, opLdLen:
			def = shapeLiveA
			pure = in.op == opLdLen
		case opLdWInd, opLdHInd, opLdBInd:
			use, def = shapeLiveX, shapeLiveA
		case opLdxMSH, opLdxLen:
			def = shapeLiveX
			pure = in.op == opLdxLen
		case opLdImm:
			def, pure = shapeLiveA, true
		case opLdxImm:
			def, pure = shapeLiveX, true
		case opLdMem:
			use, def, pure = shapeLiveMem0<<(in.k&(memWords-1)), shapeLiveA, true
		case opLdxMem:
			use, def, pure = shapeLiveMem0<<(in.k&(memWords-1)), shapeLiveX, true
		case opSt:
			use, def, pure = shapeLiveA, shapeLiveMem0<<(in.k&(memWords-1)), true
		case opStx:
			use, def, pure = shapeLiveX, shapeLiveMem0<<(in.k&(memWords-1)), true
		case opJgtK, opJgeK, opJeqK, opJsetK:
			use = shapeLiveA
		case opJgtX, opJgeX, opJeqX, opJsetX:
			use = shapeLiveA | shapeLiveX
		case opTax:
			use, def, pure = shapeLiveA, shapeLiveX, true
		case opTxa:
			use, def, pure = shapeLiveX, shapeLiveA, true
		case opRetK, opLdBAux:
		default: // ALU
			use, def, pure = shapeLiveA, shapeLiveA, true
			if in.op >= opAddX && in.op <= opRshX {
				use |= shapeLiveX
				// Division by X fails when X is 0: it stays.
				pure = in.op != opDivX && in.op != opModX
			}
		}
		if pure && out&def == 0 {
			removed[i] = true
			live[i] = out
			continue
		}
		live[i] = out&^def | use
	}
	if !st[0].reached {
		return nil
	}

	// Thread: where control from i really goes, past removed instructions.
	sc.target = growScratch(sc.target, n)
	target := sc.target
	for i := n - 1; i >= 0; i-- {
		target[i] = uint32(i)
		if !removed[i] {
			continue
		}
		t := uint32(i + 1)
		if jump[i] != next {
			t = jump[i]
		} else if code[i].op == opJa {
			t = code[i].jt
		}
		target[i] = target[t]
	}
	// Keep what is reachable from the entry, in order: jumps go forward,
	// so one pass marks it all.
	sc.keep = growScratch(sc.keep, n+1)
	keep := sc.keep
	keep[target[0]] = true
	for i := range n {
		if !keep[i] {
			continue
		}
		switch in := &code[i]; {
		case in.op == opRetK || in.op == opRetA || in.op == opLdBAux:
		case in.op >= opJgtK && in.op <= opJsetX:
			keep[target[in.jt]], keep[target[in.jf]] = true, true
		default:
			keep[target[i+1]] = true
		}
	}
	// nextKept[i] is the first kept instruction after i.
	sc.nextKept = growScratch(sc.nextKept, n+1)
	nextKept := sc.nextKept
	nextKept[n] = uint32(n)
	for i := n - 1; i >= 0; i-- {
		nextKept[i] = nextKept[i+1]
		if keep[i+1] {
			nextKept[i] = uint32(i + 1)
		}
	}
	newIndex := target // each target is read before its index is written
	var out []insn
	for i := range n {
		if !keep[i] {
			continue
		}
		in := code[i]
		switch {
		case in.op == opRetK || in.op == opRetA || in.op == opLdBAux:
		case in.op >= opJgtK && in.op <= opJsetX:
			in.jt, in.jf = target[in.jt], target[in.jf]
		default:
			// Control goes on at t: a jump there follows unless
			// nothing kept lies between.
			if t := target[i+1]; nextKept[i] != t {
				newIndex[i] = uint32(len(out))
				out = append(out, in, insn{op: opJa, jt: t})
				continue
			}
		}
		newIndex[i] = uint32(len(out))
		out = append(out, in)
	}
	for i := range out {
		in := &out[i]
		switch {
		case in.op == opJa:
			in.jt = newIndex[in.jt]
		case in.op >= opJgtK && in.op <= opJsetX:
			in.jt, in.jf = newIndex[in.jt], newIndex[in.jf]
		default:
			continue
		}
		if in.jt <= uint32(i) || in.op != opJa && in.jf <= uint32(i) {
			return nil // cannot be: jumps go forward; run the whole program
		}
	}
	if len(out) >= len(insns) {
		return nil
	}
	fuse(out)
	return out
}

// shapeLoadSize is the size of a load of op.
func shapeLoadSize(op opKind) uint32 {
	switch op {
	case opLdW, opLdWInd:
		return 4
	case opLdH, opLdHInd:
		return 2
	}
	return 1
}

// compare evaluates a conditional jump's test: c is 0 for jgt, 1 jge,
// 2 jeq, 3 jset.
func compare(c opKind, a, b uint32) bool {
	switch c {
	case 0:
		return a > b
	case 1:
		return a >= b
	case 2:
		return a == b
	}
	return a&b != 0
}

// shapeALU evaluates an ALU instruction as exec does, or reports false where
// it fails (division by 0).
func shapeALU(op opKind, a, b uint32) (uint32, bool) {
	switch op {
	case opAddK, opAddX:
		return a + b, true
	case opSubK, opSubX:
		return a - b, true
	case opMulK, opMulX:
		return a * b, true
	case opDivK, opDivX:
		if b == 0 {
			return 0, false
		}
		return a / b, true
	case opModK, opModX:
		if b == 0 {
			return 0, false
		}
		return a % b, true
	case opAndK, opAndX:
		return a & b, true
	case opOrK, opOrX:
		return a | b, true
	case opXorK, opXorX:
		return a ^ b, true
	case opLshK:
		return a << (b & 31), true
	case opRshK:
		return a >> (b & 31), true
	case opLshX:
		return a << b, true
	case opRshX:
		return a >> b, true
	case opNeg:
		return -a, true
	}
	return 0, false
}

func b2u16(b bool) uint16 {
	if b {
		return 1
	}
	return 0
}
