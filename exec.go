package bpfmatch

// frame is a packet as the executor reads it: the bytes of hdr followed by
// those of payload, of which the first caplen were captured (caplen never
// exceeds len(hdr)+len(payload)); wirelen is the length the packet had on
// the wire, what BPF_LEN loads.
//
// Matching a FakePacket builds hdr on the stack and points payload at the
// caller's slice, so nothing is serialised or copied.
type frame struct {
	hdr     []byte
	payload []byte
	caplen  uint32
	wirelen uint32

	// Loads that overlap hdr[lazyLo:lazyHi] call touch before reading, so
	// that a field costly to compute (the transport checksum) is written
	// only when the program reads it. touch may narrow the range.
	lazyLo, lazyHi uint32

	// varies is set when the program read something that can change with
	// the payload: the length (by the executor), a byte at or past len(hdr)
	// (by the executor, before its bounds check), or a header field that
	// depends on the payload (by touch, when tracing a flow).
	varies bool

	// lazy holds what touch needs; nil when hdr has nothing lazy.
	lazy *header
	// trace makes touch record reads of payload-dependent fields in varies
	// instead of filling them.
	trace bool
}

// run executes p on f as libpcap 1.10's pcap_offline_filter does on the
// first f.caplen bytes of f.hdr+f.payload with wire length f.wirelen, and
// returns what it returns: 0 when the packet is rejected or a load falls
// past the captured bytes.
//
// Unlike libpcap 1.10, scratch memory starts zeroed (libpcap leaves it
// uninitialised; the programs libpcap compiles store before they load),
// and backward jumps are bounded: once they have gone back over more than
// loopBudget instructions in all, the program returns 0. A run therefore
// executes at most len(p.insns)+loopBudget instructions, whatever the
// packet and its length (see loopBudget for why no compiled program
// reaches it).
func (p *program) run(f *frame) uint32 {
	ret, _ := p.runCounted(f)
	return ret
}

// runCounted is run, which inlines it, also returning how much of
// loopBudget the run used, or budgetSpent if it stopped the run.
func (p *program) runCounted(f *frame) (uint32, uint64) {
	if p.oneTest {
		return p.runOneTest(f), 0
	}
	var m machine
	// Loads within hdr, cut to the captured bytes, and outside the lazy
	// range are left to exec; it stops at the others.
	hdr := f.hdr[:min(uint64(len(f.hdr)), uint64(f.caplen))]
	for {
		ret, done := m.exec(p.insns, hdr, uint64(f.lazyLo), uint64(f.lazyHi), f)
		if done {
			return ret, m.back
		}
		// A load off the fast path costs several instructions' time: it
		// is charged to the budget, which only backward jumps check.
		m.back += slowLoadCost
		in := &p.insns[m.pc]
		m.pc++ // past a fused load, to its jump
		op := in.op
		if u := unfused[op]; u != 0 {
			op = u
		}
		var off, n uint64
		switch op {
		case opLdW, opLdH, opLdB, opLdxMSH:
			off = uint64(in.k)
		default:
			off = uint64(m.x) + uint64(in.k)
		}
		switch op {
		case opLdW, opLdWInd:
			n = 4
		case opLdH, opLdHInd:
			n = 2
		default:
			n = 1
		}
		v, ok := f.load(off, n)
		if !ok {
			return 0, m.back
		}
		if op == opLdxMSH {
			m.x = (v & 0xf) << 2
		} else {
			m.a = v
		}
	}
}

// runOneTest is run for a program that is one test of a field: a load
// fused with its test, whose targets return constants (what is left of
// many filters once a packet's shape is known). It spares the
// interpreter's entry, which costs more than the test.
func (p *program) runOneTest(f *frame) uint32 {
	in := &p.insns[0]
	off := uint64(in.k)
	var v uint32
	switch in.op {
	case opLdBJeq:
		if off < uint64(len(f.hdr)) && off < uint64(f.caplen) && (off < uint64(f.lazyLo) || off >= uint64(f.lazyHi)) {
			v = uint32(f.hdr[off])
		} else if b, ok := f.inPayload(off, 1); ok {
			f.varies = true
			v = uint32(b[0])
		} else if v, ok = f.load(off, 1); !ok {
			return 0
		}
	case opLdWJeq:
		end := off + 4
		if end <= uint64(len(f.hdr)) && end <= uint64(f.caplen) && (end <= uint64(f.lazyLo) || off >= uint64(f.lazyHi)) {
			b := f.hdr[off:end]
			v = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		} else if b, ok := f.inPayload(off, 4); ok {
			f.varies = true
			v = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		} else if v, ok = f.load(off, 4); !ok {
			return 0
		}
	default: // the halfword loads
		end := off + 2
		if end <= uint64(len(f.hdr)) && end <= uint64(f.caplen) && (end <= uint64(f.lazyLo) || off >= uint64(f.lazyHi)) {
			b := f.hdr[off:end]
			v = uint32(b[0])<<8 | uint32(b[1])
		} else if b, ok := f.inPayload(off, 2); ok {
			f.varies = true
			v = uint32(b[0])<<8 | uint32(b[1])
		} else if v, ok = f.load(off, 2); !ok {
			return 0
		}
	}
	var taken bool
	switch in.op {
	case opLdHJset:
		taken = v&in.k2 != 0
	case opLdHJge:
		taken = v >= in.k2
	default:
		taken = v == in.k2
	}
	if taken {
		return p.insns[in.jt].k
	}
	return p.insns[in.jf].k
}

// isOneTest reports whether insns are one test for runOneTest.
func isOneTest(insns []insn) bool {
	in := insns[0]
	switch in.op {
	case opLdHJeq, opLdBJeq, opLdWJeq, opLdHJset, opLdHJge:
		return insns[in.jt].op == opRetK && insns[in.jf].op == opRetK
	}
	return false
}

// machine is the state of a run.
type machine struct {
	a, x uint32
	pc   uint32
	back uint64 // how far backward jumps went back in all
	mem  [memWords]uint32
}

// exec runs insns from m.pc until a return, whose value it returns with
// done true, or until a load it cannot serve from hdr alone, at which it
// stops with m.pc at the load. It calls nothing, so that the registers
// holding A, X and the pc need not be saved in the loop.
func (m *machine) exec(insns []insn, hdr []byte, lazyLo, lazyHi uint64, f *frame) (ret uint32, done bool) {
	a, x, pc := m.a, m.x, m.pc
	fast := uint64(len(hdr))
	for {
		in := &insns[pc]
		switch in.op {
		case opRetK:
			return in.k, true
		case opRetA:
			return a, true
		case opLdW:
			off := uint64(in.k)
			if end := off + 4; end <= fast && (end <= lazyLo || off >= lazyHi) {
				b := hdr[off:end]
				a = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
				break
			}
			if b, ok := f.inPayload(off, 4); ok {
				f.varies = true
				a = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
				break
			}
			m.a, m.x, m.pc = a, x, pc
			return 0, false
		case opLdH:
			off := uint64(in.k)
			if end := off + 2; end <= fast && (end <= lazyLo || off >= lazyHi) {
				b := hdr[off:end]
				a = uint32(b[0])<<8 | uint32(b[1])
				break
			}
			if b, ok := f.inPayload(off, 2); ok {
				f.varies = true
				a = uint32(b[0])<<8 | uint32(b[1])
				break
			}
			m.a, m.x, m.pc = a, x, pc
			return 0, false
		case opLdB:
			off := uint64(in.k)
			if off < fast && (off < lazyLo || off >= lazyHi) {
				a = uint32(hdr[off])
				break
			}
			if b, ok := f.inPayload(off, 1); ok {
				f.varies = true
				a = uint32(b[0])
				break
			}
			m.a, m.x, m.pc = a, x, pc
			return 0, false
		case opLdWInd:
			off := uint64(x) + uint64(in.k)
			if end := off + 4; end <= fast && (end <= lazyLo || off >= lazyHi) {
				b := hdr[off:end]
				a = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
				break
			}
			// Indirect loads wholly within the captured payload, how
			// filters read payloads, are served here too.
			if b, ok := f.inPayload(off, 4); ok {
				f.varies = true
				a = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
				break
			}
			m.a, m.x, m.pc = a, x, pc
			return 0, false
		case opLdHInd:
			off := uint64(x) + uint64(in.k)
			if end := off + 2; end <= fast && (end <= lazyLo || off >= lazyHi) {
				b := hdr[off:end]
				a = uint32(b[0])<<8 | uint32(b[1])
				break
			}
			// Indirect loads wholly within the captured payload, how
			// filters read payloads, are served here too.
			if b, ok := f.inPayload(off, 2); ok {
				f.varies = true
				a = uint32(b[0])<<8 | uint32(b[1])
				break
			}
			m.a, m.x, m.pc = a, x, pc
			return 0, false
		case opLdBInd:
			off := uint64(x) + uint64(in.k)
			if off < fast && (off < lazyLo || off >= lazyHi) {
				a = uint32(hdr[off])
				break
			}
			if b, ok := f.inPayload(off, 1); ok {
				f.varies = true
				a = uint32(b[0])
				break
			}
			m.a, m.x, m.pc = a, x, pc
			return 0, false
		case opLdxMSH:
			off := uint64(in.k)
			if off < fast && (off < lazyLo || off >= lazyHi) {
				x = uint32(hdr[off]&0xf) << 2
				break
			}
			m.a, m.x, m.pc = a, x, pc
			return 0, false
		case opLdHJeq:
			off := uint64(in.k)
			if end := off + 2; end <= fast && (end <= lazyLo || off >= lazyHi) {
				b := hdr[off:end]
				a = uint32(b[0])<<8 | uint32(b[1])
				pc = in.jf
				if a == in.k2 {
					pc = in.jt
				}
				continue
			}
			m.a, m.x, m.pc = a, x, pc
			return 0, false
		case opLdBJeq:
			off := uint64(in.k)
			if off < fast && (off < lazyLo || off >= lazyHi) {
				a = uint32(hdr[off])
				pc = in.jf
				if a == in.k2 {
					pc = in.jt
				}
				continue
			}
			m.a, m.x, m.pc = a, x, pc
			return 0, false
		case opLdWJeq:
			off := uint64(in.k)
			if end := off + 4; end <= fast && (end <= lazyLo || off >= lazyHi) {
				b := hdr[off:end]
				a = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
				pc = in.jf
				if a == in.k2 {
					pc = in.jt
				}
				continue
			}
			// A residual program reads the payload at absolute offsets.
			if b, ok := f.inPayload(off, 4); ok {
				f.varies = true
				a = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
				pc = in.jf
				if a == in.k2 {
					pc = in.jt
				}
				continue
			}
			m.a, m.x, m.pc = a, x, pc
			return 0, false
		case opLdHJset:
			off := uint64(in.k)
			if end := off + 2; end <= fast && (end <= lazyLo || off >= lazyHi) {
				b := hdr[off:end]
				a = uint32(b[0])<<8 | uint32(b[1])
				pc = in.jf
				if a&in.k2 != 0 {
					pc = in.jt
				}
				continue
			}
			m.a, m.x, m.pc = a, x, pc
			return 0, false
		case opLdHJge:
			off := uint64(in.k)
			if end := off + 2; end <= fast && (end <= lazyLo || off >= lazyHi) {
				b := hdr[off:end]
				a = uint32(b[0])<<8 | uint32(b[1])
				pc = in.jf
				if a >= in.k2 {
					pc = in.jt
				}
				continue
			}
			m.a, m.x, m.pc = a, x, pc
			return 0, false
		case opLdHIndJeq:
			off := uint64(x) + uint64(in.k)
			if end := off + 2; end <= fast && (end <= lazyLo || off >= lazyHi) {
				b := hdr[off:end]
				a = uint32(b[0])<<8 | uint32(b[1])
				pc = in.jf
				if a == in.k2 {
					pc = in.jt
				}
				continue
			}
			m.a, m.x, m.pc = a, x, pc
			return 0, false
		case opLdHIndJge:
			off := uint64(x) + uint64(in.k)
			if end := off + 2; end <= fast && (end <= lazyLo || off >= lazyHi) {
				b := hdr[off:end]
				a = uint32(b[0])<<8 | uint32(b[1])
				pc = in.jf
				if a >= in.k2 {
					pc = in.jt
				}
				continue
			}
			m.a, m.x, m.pc = a, x, pc
			return 0, false
		case opLdBAux:
			// libpcap has no ancillary data to give; the load fails as one
			// past the end of the packet does.
			if uint64(in.k)+1 > uint64(len(f.hdr)) {
				f.varies = true
			}
			return 0, true
		case opLdLen:
			f.varies = true
			a = f.wirelen
		case opLdxLen:
			f.varies = true
			x = f.wirelen
		case opLdImm:
			a = in.k
		case opLdxImm:
			x = in.k
		case opLdMem:
			a = m.mem[in.k&(memWords-1)]
		case opLdxMem:
			x = m.mem[in.k&(memWords-1)]
		case opSt:
			m.mem[in.k&(memWords-1)] = a
		case opStx:
			m.mem[in.k&(memWords-1)] = x
		case opJa:
			pc = in.jt
			continue
		case opJaBack:
			m.back += uint64(in.k)
			if m.back > loopBudget {
				// Loads off the fast path count, and whether a load is
				// off it can change with the payload.
				f.varies = true
				m.back = budgetSpent
				return 0, true
			}
			pc = in.jt
			continue
		case opJgtK:
			pc = in.jf
			if a > in.k {
				pc = in.jt
			}
			continue
		case opJgeK:
			pc = in.jf
			if a >= in.k {
				pc = in.jt
			}
			continue
		case opJeqK:
			pc = in.jf
			if a == in.k {
				pc = in.jt
			}
			continue
		case opJsetK:
			pc = in.jf
			if a&in.k != 0 {
				pc = in.jt
			}
			continue
		case opJgtX:
			pc = in.jf
			if a > x {
				pc = in.jt
			}
			continue
		case opJgeX:
			pc = in.jf
			if a >= x {
				pc = in.jt
			}
			continue
		case opJeqX:
			pc = in.jf
			if a == x {
				pc = in.jt
			}
			continue
		case opJsetX:
			pc = in.jf
			if a&x != 0 {
				pc = in.jt
			}
			continue
		case opAddK:
			a += in.k
		case opSubK:
			a -= in.k
		case opMulK:
			a *= in.k
		case opDivK:
			if in.k == 0 { // newProgram rejects it; this spares a panic
				return 0, true
			}
			a /= in.k
		case opModK:
			if in.k == 0 {
				return 0, true
			}
			a %= in.k
		case opAndK:
			a &= in.k
		case opOrK:
			a |= in.k
		case opXorK:
			a ^= in.k
		case opLshK:
			a <<= in.k & 31 // already below 32; the mask spares a check
		case opRshK:
			a >>= in.k & 31
		case opAddX:
			a += x
		case opSubX:
			a -= x
		case opMulX:
			a *= x
		case opDivX:
			if x == 0 {
				return 0, true
			}
			a /= x
		case opModX:
			if x == 0 {
				return 0, true
			}
			a %= x
		case opAndX:
			a &= x
		case opOrX:
			a |= x
		case opXorX:
			a ^= x
		case opLshX:
			a <<= x // Go, like libpcap, gives 0 for shifts of 32 or more
		case opRshX:
			a >>= x
		case opNeg:
			a = -a
		case opTax:
			x = a
		case opTxa:
			a = x
		default:
			return 0, true
		}
		pc++
	}
}

// inPayload returns the n bytes at off if they lie wholly in the captured
// payload.
func (f *frame) inPayload(off, n uint64) ([]byte, bool) {
	nh, end := uint64(len(f.hdr)), off+n
	if off < nh || end > uint64(f.caplen) || end-nh > uint64(len(f.payload)) {
		return nil, false
	}
	return f.payload[off-nh : end-nh], true
}

// load reads the n (1, 2 or 4) bytes at off, big-endian, for a load that
// run could not serve from hdr alone, and reports false when the program
// must return 0 because they were not captured.
func (f *frame) load(off, n uint64) (uint32, bool) {
	end := off + n // off is at most 2^33, so this cannot overflow
	nh := uint64(len(f.hdr))
	if end > nh {
		f.varies = true
	}
	if end > uint64(f.caplen) {
		return 0, false
	}
	if off < uint64(f.lazyHi) && end > uint64(f.lazyLo) {
		f.touch(uint32(off), uint32(end))
	}
	if end <= nh {
		return be(f.hdr[off:end]), true
	}
	if end-nh > uint64(len(f.payload)) {
		return 0, false // a frame whose caplen overstates its bytes
	}
	if off >= nh {
		return be(f.payload[off-nh : end-nh]), true
	}
	var v uint32
	for i := off; i < end; i++ {
		var b byte
		if i < nh {
			b = f.hdr[i]
		} else {
			b = f.payload[i-nh]
		}
		v = v<<8 | uint32(b)
	}
	return v, true
}

// be returns b, 1 to 4 bytes, as a big-endian number.
func be(b []byte) uint32 {
	var v uint32
	for _, c := range b {
		v = v<<8 | uint32(c)
	}
	return v
}
