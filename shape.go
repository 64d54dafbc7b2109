package bpfmatch

import (
	"net/netip"
	"sync"

	"golang.org/x/net/bpf"
)

// A fake packet's shape is what its kind alone fixes in its headers: the
// link type, whether it has a VLAN tag, IPv4 or IPv6, TCP or UDP. The
// shape fixes the EtherType, the IP version and header length, the
// fragment field, the protocol, the TCP data offset: most of what a
// filter tests before it reads an address, a port or the payload. For
// each shape a Matcher keeps its program evaluated over those bytes, the
// residual program, which Match runs instead: it reads only what differs
// between packets of the shape. Where that is one test of a field the
// FakePacket holds, Match reads the field and decides (direct.go).

// numShapes counts the shapes, numbered by their bits.
const (
	shapeV6   = 1 << iota // IPv6, else IPv4
	shapeUDP              // UDP, else TCP
	shapeVLAN             // an 802.1Q tag
	numShapes = 1 << iota
)

// shapeOf returns the shape of the header h built.
func shapeOf(h *header) int {
	s := 0
	if h.v6 {
		s |= shapeV6
	}
	if h.udp {
		s |= shapeUDP
	}
	if h.ip > ethernetLen {
		s |= shapeVLAN
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
	// direct are the residual programs Match decides without them.
	direct [numShapes]directTest
}

// needLengths marks, in shapeHeader's groups, a length or a checksum.
const needLengths = 0x80

// shapePrograms returns the residual programs of p, decoded from raw, for
// each shape of frames of link (specialise), or nil where p is not
// specialised.
func shapePrograms(p *program, raw []bpf.RawInstruction, link LinkType, snap uint32) *shapeSet {
	if link != LinkEthernet && link != LinkRaw || len(p.insns) > maxShapeProgram {
		return nil
	}
	out := &shapeSet{}
	li := 0
	if link == LinkRaw {
		li = 1
	}
	for s := range numShapes {
		out.needs[s], out.lengths[s] = needAll, true
		t := &shapeTemplates()[li][s]
		if !t.ok {
			continue
		}
		r, ok := specialise(p, raw, t.h.b[:t.h.n], t.fixed, snap)
		if !ok {
			continue
		}
		rp, err := newProgram(r.raw)
		if err != nil {
			continue // not expected; the whole program is right anyway
		}
		out.progs[s] = rp
		out.direct[s] = directOf(r.raw, &t.h, snap)
		need := readGroups(rp.insns, &t.groups, t.h.n)
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

// fixed reports whether the shape fixes the bytes [off, end) of its header.
func (t *shapeTemplate) fixed(off, end uint32) bool {
	for i := off; i < end; i++ {
		if !t.known[i] {
			return false
		}
	}
	return true
}

// shapeTemplates are the templates of Ethernet's shapes, then raw IP's.
var shapeTemplates = sync.OnceValue(func() *[2][numShapes]shapeTemplate {
	var ts [2][numShapes]shapeTemplate
	for li, link := range []LinkType{LinkEthernet, LinkRaw} {
		for s := range numShapes {
			t := &ts[li][s]
			t.ok = (s&shapeVLAN == 0 || link == LinkEthernet) && shapeHeader(&t.h, &t.known, &t.groups, s, link)
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
			size, _ := loadSize(op) // 1 for ldxb 4*([k]&0xf)
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
	if s&shapeV6 != 0 {
		p.Src, p.Dst = netip.MustParseAddrPort("[2001:db8::1]:1"), netip.MustParseAddrPort("[2001:db8::2]:2")
	}
	if s&shapeUDP != 0 {
		p.Protocol = UDP
	}
	if s&shapeVLAN != 0 {
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
		if s&shapeVLAN != 0 {
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
		if s&shapeVLAN != 0 {
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
