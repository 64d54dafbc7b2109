package bpfmatch

import (
	"fmt"
	"net"
)

// A Flow matches the payloads of one connection, or of one peer of a
// datagram socket, against a Matcher: the headers are written once, when
// the flow is made, and each payload costs only the program's run. When
// the program's verdict cannot depend on the payload, the flow knows it
// from the program's own reads and gives that verdict without running it.
//
// A Flow is safe for concurrent use by multiple goroutines.
type Flow struct {
	m     *Matcher
	p     FakePacket // without payload
	h     header
	fixed bool // the verdict does not depend on the payload
	match bool // the verdict, when fixed
}

// NewFlow returns the flow of packets like p, whose Payload is ignored:
// each call of Match gives one.
func (m *Matcher) NewFlow(p FakePacket) (*Flow, error) {
	p.Payload = nil
	fl := &Flow{m: m, p: p}
	if err := fl.h.build(&p, m.link); err != nil {
		return nil, err
	}
	if m.prog != nil {
		// Run the program on the headers alone, noting whether it read
		// anything a payload could change: the length, a byte past the
		// headers, or a length or checksum field.
		h := fl.h
		f := h.traceFrame(m.snap)
		ret := m.prog.run(&f)
		fl.fixed, fl.match = !f.varies, ret != 0
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
// only error is ErrPayloadTooLarge.
func (fl *Flow) Match(payload []byte) (bool, error) {
	if max := fl.h.maxPayload(); len(payload) > max {
		return false, fl.h.payloadTooLarge(len(payload))
	}
	if fl.fixed {
		return fl.match, nil
	}
	h := fl.h
	f := h.frame(payload, fl.m.snap)
	return fl.m.run(&f) != 0, nil
}

// Fixed reports whether the flow's verdict is the same for every payload,
// and if so, what it is. A listener can then decide on a connection
// before reading from it.
func (fl *Flow) Fixed() (fixed, match bool) {
	return fl.fixed, fl.match
}

// String describes the flow's packets and the matcher's expression.
func (fl *Flow) String() string {
	return fmt.Sprintf("%q on the flow of %v", fl.m.String(), fl.p)
}
