package bpfmatch

import (
	"fmt"
	"net"

	"golang.org/x/net/bpf"
)

// A Flow matches the payloads of one connection, or of one peer of a
// datagram socket, against a Matcher: the headers are written once, when
// the flow is made, and so is everything the program computes from them.
//
// NewFlow evaluates the program over the flow's headers, which are known
// but for their length and checksum fields: every instruction whose inputs
// the headers fix is run once, every branch they decide is taken, and what
// is left, a residual program, reads only what the payload decides (its
// bytes, the packet's length, the length and checksum fields). Each Match
// runs the residual program, on the payload alone when it reads no header
// byte. A residual program that is a single return is a verdict fixed for
// every payload (Fixed), which Match gives without running anything.
// Programs with backward jumps, and those whose residual program would be
// too large, run whole; so do all programs with WithLibpcap, on libpcap.
//
// A Flow is safe for concurrent use by multiple goroutines.
type Flow struct {
	// What Match reads first, together.
	max      int  // the largest payload
	fixed    bool // the verdict does not depend on the payload
	match    bool // the verdict, when fixed
	rebased  *program
	hdrLen   uint32
	paddedTo uint32 // the minimum frame length, padded to; 0 for none
	snap     uint32

	// resRaw is the residual program, nil when the flow runs the
	// matcher's. Unless the verdict is fixed, the flow runs it decoded:
	// rebased, with its loads moved back by the header's length, on the
	// payload alone when it reads no header byte, else res on the whole
	// frame.
	resRaw []bpf.RawInstruction
	res    *program

	m *Matcher
	p FakePacket // without payload
	h header
}

// NewFlow returns the flow of packets like p, whose Payload is ignored:
// each call of Match gives one.
func (m *Matcher) NewFlow(p FakePacket) (*Flow, error) {
	p.Payload = nil
	fl := &Flow{m: m, p: p}
	if err := fl.h.build(&p, m.link); err != nil {
		return nil, err
	}
	if fl.h.pad {
		fl.paddedTo = minEthernetFrame
	}
	fl.max, fl.hdrLen, fl.snap = fl.h.maxPayload(), uint32(fl.h.n), m.snap
	if m.prog == nil {
		return fl, nil
	}
	h := &fl.h
	r, ok := specialise(m.prog, m.raw, h.b[:h.n], func(off, end uint32) bool { return !h.varies(off, end) }, m.snap)
	if !ok {
		return fl, nil
	}
	fl.resRaw = r.raw
	if len(r.raw) == 1 && r.raw[0].Op == bpfRetK {
		fl.fixed, fl.match = true, r.raw[0].K != 0
		return fl, nil
	}
	// Errors are not expected; the whole program is right anyway.
	var err error
	if r.rebased != nil {
		fl.rebased, err = newProgram(r.rebased)
	} else {
		fl.res, err = newProgram(r.raw)
	}
	if err != nil {
		fl.res, fl.rebased, fl.resRaw = nil, nil, nil
	}
	return fl, nil
}

// NewFlowConn returns the flow of the payloads arriving on c, as MatchConn
// would match them: from c.RemoteAddr() to c.LocalAddr().
func (m *Matcher) NewFlowConn(c net.Conn) (*Flow, error) {
	p, err := FromConn(c, nil)
	if err != nil {
		return nil, err
	}
	return m.NewFlow(p)
}

// NewFlowFrom returns the flow of the datagrams or segments sent from src
// to dst, as MatchFrom would match them.
func (m *Matcher) NewFlowFrom(src, dst net.Addr) (*Flow, error) {
	p, err := FromAddrs(src, dst, nil)
	if err != nil {
		return nil, err
	}
	return m.NewFlow(p)
}

// Match reports whether the flow's packet carrying payload matches. The
// only error is ErrPayloadTooLarge. As for MatchConn, payload is one
// packet's: on a TCP stream, the bytes of a read, not the stream's first
// bytes unless the caller read that many (see MatchConn).
func (fl *Flow) Match(payload []byte) (bool, error) {
	if len(payload) > fl.max {
		return false, fl.h.payloadTooLarge(len(payload))
	}
	if fl.fixed {
		return fl.match, nil
	}
	p := fl.rebased
	if p == nil {
		return fl.matchFrame(payload), nil
	}
	// The residual program runs on the frame's bytes past the header.
	n := fl.hdrLen
	wire := n + uint32(len(payload))
	if wire < fl.paddedTo {
		return fl.matchPadded(payload), nil
	}
	// The captured bytes past the header; loads of the header's bytes
	// past the snap length were resolved to aborts.
	capt := min(wire, fl.snap)
	capt -= min(capt, n)
	// Field by field: a composite literal is built aside and copied.
	var f frame
	f.hdr, f.caplen, f.wirelen = payload, capt, wire
	// The machine runs the program on the captured bytes directly; it
	// stops short only at a load it cannot serve from them, which run
	// then takes from the start: the program has no side effect.
	var m machine
	if ret, done := m.exec(p.insns, payload[:capt], 0, 0, &f); done {
		return ret != 0, nil
	}
	return p.run(&f) != 0, nil
}

// matchFrame runs the residual program, or the whole program, on the
// whole frame.
func (fl *Flow) matchFrame(payload []byte) bool {
	h := fl.h
	f := h.frame(payload, fl.snap)
	if fl.res != nil {
		return fl.res.run(&f) != 0
	}
	return fl.m.run(&f) != 0
}

// matchPadded runs the rebased residual program on the payload padded
// to the Ethernet minimum. It is kept out of Match, whose frame stays
// small without its buffer.
//
//go:noinline
func (fl *Flow) matchPadded(payload []byte) bool {
	var buf [minEthernetFrame]byte
	n := fl.hdrLen
	copy(buf[:], payload)
	capt := min(fl.paddedTo, fl.snap)
	capt -= min(capt, n)
	var f frame
	f.hdr, f.caplen, f.wirelen = buf[:fl.paddedTo-n], capt, fl.paddedTo
	return fl.rebased.run(&f) != 0
}

// Fixed reports whether the flow's verdict is the same for every payload,
// and if so, what it is: whether its residual program is a single return.
// A listener can then decide on a connection before reading from it.
func (fl *Flow) Fixed() (fixed, match bool) {
	return fl.fixed, fl.match
}

// String describes the flow's packets and the matcher's expression.
func (fl *Flow) String() string {
	return fmt.Sprintf("%q on the flow of %v", fl.m.String(), fl.p)
}
