package bpfmatch

import (
	"fmt"
	"net/netip"
	"slices"

	"golang.org/x/net/bpf"
)

// Relocation of a Matcher's program into a socket filter.
//
// A socket filter (SO_ATTACH_FILTER) runs on what the socket receives, not
// on a frame: offset 0 is the transport header, the network header is at
// skfNetOff, len counts the transport header and payload, and the link
// header is not there. The program is first specialised (specialise.go)
// over what the fake packets of the socket all share: the link header,
// the IP fields the fake packet fixes (version, TOS, ID, flags, TTL,
// protocol), the local port and, when it is known, the destination
// address. Those become constants, as user space sees them. The loads
// left read what varies: each is moved to where the same value is in the
// real packet (the source address, the ports, the UDP length, the payload)
// or computed from len (the IPv4 total length, the frame's length). A load
// with no faithful counterpart (a checksum, an indexed load, one mixing
// fixed and packet bytes) makes the program stay in user space.
//
// The kernel filter only drops: user space still matches what it lets
// through. So it must never reject what user space accepts, but it may
// accept more; where the kernel cannot tell (a short datagram whose fake
// Ethernet frame is padded, read in the padding), it accepts.

// skfNetOff is SKF_NET_OFF: loads at skfNetOff+k read the network header.
const skfNetOff = 0xfff00000

// kernelAccept is what the relocated program returns to accept: more than
// any datagram's length, so that the kernel never truncates one.
const kernelAccept = 0xffffffff

// maxKernelInsns is BPF_MAXINSNS, the longest socket filter Linux loads.
const maxKernelInsns = 4096

// A kernelRefusal is why a program is not offloaded: a short reason,
// which the tests count, and the detail.
type kernelRefusal struct {
	why    string
	detail string
}

func (r *kernelRefusal) Error() string {
	if r.detail == "" {
		return r.why
	}
	return r.why + ": " + r.detail
}

func refuse(why, format string, args ...any) error {
	return &kernelRefusal{why: why, detail: fmt.Sprintf(format, args...)}
}

// kernelTarget is one address family of a UDP socket, or of a TCP
// listening socket, a program is relocated for.
type kernelTarget struct {
	v6   bool
	tcp  bool       // a TCP listener: only addresses and ports may be read
	port uint16     // the local port
	dst  netip.Addr // the destination user space matches with; invalid if it is each datagram's own
}

// byteKind is where a byte of the fake frame is in the real packet.
type byteKind uint8

const (
	kindFixed    byteKind = iota // the same in every fake packet: a constant
	kindNet                      // in the network header, at skfNetOff+at
	kindL4                       // in the transport header or payload, at at
	kindTotalLen                 // the IPv4 total length: 20 + len
	kindChecksum                 // a checksum: not in the real packet
	kindVarying                  // TCP: a field that may change from segment to segment
)

// kernelLayout is the fake frame of a target: its header, and where each
// header byte is in the real packet.
type kernelLayout struct {
	h     header
	kind  [len(header{}.b)]byteKind
	at    [len(header{}.b)]uint32
	delta uint32 // the frame's length minus the kernel's len (link and IP headers)
	tcp   bool   // the segments of a TCP listener's connections
}

func (l *kernelLayout) init(link LinkType, t kernelTarget) error {
	src, dst := netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), 1), netip.AddrPortFrom(netip.MustParseAddr("10.0.0.2"), t.port)
	if t.v6 {
		src, dst = netip.AddrPortFrom(netip.MustParseAddr("2001:db8::1"), 1), netip.AddrPortFrom(netip.MustParseAddr("2001:db8::2"), t.port)
	}
	if t.dst.IsValid() {
		dst = netip.AddrPortFrom(t.dst, t.port)
	}
	p := FakePacket{Src: src, Dst: dst, Protocol: UDP}
	if t.tcp {
		p.Protocol, p.Flags = TCP, SYN
	}
	if err := l.h.build(&p, link); err != nil {
		return err
	}
	ip, l4 := uint32(l.h.ip), uint32(l.h.l4)
	l.delta = l4
	set := func(from, to uint32, k byteKind, at uint32) {
		for i := from; i < to; i++ {
			l.kind[i], l.at[i] = k, at+i-from
		}
	}
	if t.tcp {
		l.initTCP(t, ip, l4, set)
		return nil
	}
	// The link header and the IP fields are fixed unless said otherwise.
	set(0, uint32(l.h.n), kindFixed, 0)
	if t.v6 {
		set(ip+4, ip+6, kindL4, 4) // the payload length is the UDP length
		set(ip+8, ip+24, kindNet, 8)
		if !t.dst.IsValid() {
			set(ip+24, ip+40, kindNet, 24)
		}
	} else {
		set(ip+2, ip+4, kindTotalLen, 0)
		set(ip+10, ip+12, kindChecksum, 0)
		set(ip+12, ip+16, kindNet, 12)
		if !t.dst.IsValid() {
			set(ip+16, ip+20, kindNet, 16)
		}
	}
	set(l4, l4+2, kindL4, 0) // the source port; the destination port is the socket's
	set(l4+4, l4+6, kindL4, 4)
	set(l4+6, l4+8, kindChecksum, 0)
	return nil
}

// initTCP lays out the fake segment of a TCP listener's connections. A
// listening socket's filter runs on every segment of the handshake, and
// the accepted sockets inherit it, so only what every segment of a
// connection shares is read from the packet (the addresses and the ports)
// and only what every segment of every connection shares is fixed: the
// link header, the IP version and header length and the protocol (the
// program checks them, see tcpPrologue), and the IPv4 fragment field,
// which the kernel clears on reassembly but whose flags (DF and the
// reserved bit) kernelProgram checks the verdict does not depend on, as
// it does for the IPv6 traffic class bits beside the version. The rest
// varies, and a load of it is refused.
func (l *kernelLayout) initTCP(t kernelTarget, ip, l4 uint32, set func(from, to uint32, k byteKind, at uint32)) {
	l.tcp = true
	set(0, uint32(l.h.n), kindVarying, 0)
	set(0, ip, kindFixed, 0) // the link header
	if t.v6 {
		set(ip, ip+1, kindFixed, 0)   // the version, and traffic class bits kernelProgram checks the verdict ignores
		set(ip+6, ip+7, kindFixed, 0) // the next header: TCP, or the prologue lets it through
		set(ip+8, ip+40, kindNet, 8)
	} else {
		set(ip, ip+1, kindFixed, 0)   // version and header length: 0x45, or the prologue lets it through
		set(ip+6, ip+8, kindFixed, 0) // flags and fragment offset
		set(ip+9, ip+10, kindFixed, 0)
		set(ip+12, ip+20, kindNet, 12)
	}
	set(l4, l4+4, kindL4, 0) // the ports
}

// tcpPrologue lets through to user space, ahead of a TCP listener's
// relocated program, the segments whose transport header is not where the
// fake segment has it: IPv4 with options, IPv6 with extension headers.
func tcpPrologue(v6 bool) []bpf.RawInstruction {
	if v6 {
		return []bpf.RawInstruction{
			{Op: bpfLdBAbs, K: skfNetOff + 6},
			{Op: bpfJeqK, K: 6, Jt: 1, Jf: 0},
			{Op: bpfRetK, K: kernelAccept},
		}
	}
	return []bpf.RawInstruction{
		{Op: bpfLdBAbs, K: skfNetOff},
		{Op: bpfJeqK, K: 0x45, Jt: 1, Jf: 0},
		{Op: bpfRetK, K: kernelAccept},
	}
}

// fixed reports whether the bytes [off, end) of the header are constants.
func (l *kernelLayout) fixed(off, end uint32) bool {
	for i := off; i < end; i++ {
		if l.kind[i] != kindFixed {
			return false
		}
	}
	return true
}

// kernelProgram returns m's program relocated into a socket filter for the
// UDP datagrams of t's family, or a *kernelRefusal saying why it cannot be.
func kernelProgram(m *Matcher, t kernelTarget) ([]bpf.RawInstruction, error) {
	if m.link != LinkEthernet && m.link != LinkRaw {
		return nil, refuse("link type", "%v", m.link)
	}
	var l kernelLayout
	if err := l.init(m.link, t); err != nil {
		return nil, refuse("fake packet", "%v", err)
	}
	p := m.prog
	if p == nil {
		var err error
		if p, err = newProgram(m.raw); err != nil {
			return nil, refuse("program", "%v", err)
		}
	}
	r, ok := specialise(p, m.raw, l.h.b[:l.h.n], l.fixed, m.snap)
	if !ok {
		return nil, refuse("not specialised", "the program loops or is too large to evaluate over the fixed headers")
	}
	if !t.tcp {
		return l.relocate(r.raw)
	}
	// Bytes fixed for the specialiser but not the same in every segment:
	// the IPv4 flags (DF, the reserved bit), and the IPv6 traffic class's
	// high nibble, beside the version. The verdict must not depend on them.
	at, values, what := l.h.ip+6, []byte{0x00, 0x40, 0x80, 0xc0}, "the IPv4 flags"
	if t.v6 {
		at, values, what = l.h.ip, []byte{0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f}, "the IPv6 traffic class"
	}
	for _, v := range values {
		h := l.h.b
		h[at] = v
		if !t.v6 {
			h[at+1] = 0 // the fragment offset: 0 once reassembled
		}
		w, ok := specialise(p, m.raw, h[:l.h.n], l.fixed, m.snap)
		if !ok || !slices.Equal(w.raw, r.raw) {
			return nil, refuse("segment field", "the verdict depends on %s, which may change from segment to segment", what)
		}
	}
	body, err := l.relocate(r.raw)
	if err != nil {
		return nil, err
	}
	out := append(tcpPrologue(t.v6), body...)
	if len(out) > maxKernelInsns {
		return nil, refuse("too long", "%d instructions relocated, more than the kernel's %d", len(out), maxKernelInsns)
	}
	return out, nil
}

// relocate translates the residual program raw, which runs on the fake
// frame, into one that runs on the socket's datagrams.
func (l *kernelLayout) relocate(raw []bpf.RawInstruction) ([]bpf.RawInstruction, error) {
	n := uint32(l.h.n)
	// pad is set when short datagrams' fake frames are padded: what their
	// frame holds past the datagram, up to minEthernetFrame, is zeros.
	pad := l.h.pad && n < minEthernetFrame
	exp := make([][]bpf.RawInstruction, len(raw))
	for i, r := range raw {
		var out []bpf.RawInstruction
		switch r.Op {
		case bpfRetK:
			if r.K != 0 {
				r.K = kernelAccept
			}
			out = []bpf.RawInstruction{r}
		case bpfRetA:
			out = []bpf.RawInstruction{
				{Op: bpfJeqK, Jt: 0, Jf: 1, K: 0},
				{Op: bpfRetK, K: 0},
				{Op: bpfRetK, K: kernelAccept},
			}
		case bpfLdLen:
			if l.tcp {
				return nil, refuse("length", "the program reads the packet's length, which changes from segment to segment")
			}
			out = []bpf.RawInstruction{{Op: bpfLdLen}, {Op: bpfALU | bpfAdd, K: l.delta}}
			if pad {
				out = append(out, bpf.RawInstruction{Op: bpfJgeK, Jt: 1, K: minEthernetFrame},
					bpf.RawInstruction{Op: bpfLdImm, K: minEthernetFrame})
			}
		case bpfLdxLen:
			return nil, refuse("ldx len", "the frame's length in X cannot be computed without A")
		case bpfLdWInd, bpfLdHInd, bpfLdBInd:
			return nil, refuse("indexed load", "a load at x+%d, of an offset the headers do not fix", r.K)
		case bpfLdWAbs, bpfLdHAbs, bpfLdBAbs, bpfLdxMSH:
			size := uint32(4)
			switch r.Op {
			case bpfLdHAbs:
				size = 2
			case bpfLdBAbs, bpfLdxMSH:
				size = 1
			}
			off := r.K
			if off >= n && l.tcp {
				return nil, refuse("payload", "a load at %d reads past the TCP header, which differs from segment to segment", off)
			}
			if off >= n { // the payload
				k := off - n + udpLen
				r.K = k
				if pad && uint64(off)+uint64(size) <= minEthernetFrame {
					if r.Op == bpfLdxMSH {
						return nil, refuse("padding", "ldxb at %d may read the padding of a short datagram", off)
					}
					// Short datagrams, of which the load reads the
					// padding, go to user space.
					out = []bpf.RawInstruction{{Op: bpfLdLen}, {Op: bpfJgeK, Jt: 1, K: k + size},
						{Op: bpfRetK, K: kernelAccept}, r}
				} else {
					out = []bpf.RawInstruction{r}
				}
				break
			}
			if uint64(off)+uint64(size) > uint64(n) {
				return nil, refuse("mixed load", "a load of %d bytes at %d spans the header and the payload", size, off)
			}
			var err error
			if out, err = l.headerLoad(r, off, size); err != nil {
				return nil, err
			}
		default:
			out = []bpf.RawInstruction{r}
		}
		exp[i] = out
	}
	// Lay the expansions out and retarget the jumps.
	pos := make([]uint32, len(raw)+1)
	for i := range raw {
		pos[i+1] = pos[i] + uint32(len(exp[i]))
	}
	if pos[len(raw)] > maxKernelInsns {
		return nil, refuse("too long", "%d instructions relocated, more than the kernel's %d", pos[len(raw)], maxKernelInsns)
	}
	out := make([]bpf.RawInstruction, 0, pos[len(raw)])
	for i, r := range raw {
		if r.Op&bpfClassOf == bpfJmp {
			from := pos[i] + 1 // jumps are not expanded
			if r.Op == bpfJa {
				exp[i][0].K = pos[i+1+int(r.K)] - from
			} else {
				jt, jf := pos[i+1+int(r.Jt)]-from, pos[i+1+int(r.Jf)]-from
				if jt > 255 || jf > 255 {
					return nil, refuse("too long", "a conditional jump of %d instructions once relocated", max(jt, jf))
				}
				exp[i][0].Jt, exp[i][0].Jf = uint8(jt), uint8(jf)
			}
		}
		out = append(out, exp[i]...)
	}
	return out, nil
}

// headerLoad translates r, a load of size bytes at off in the header: the
// bytes the fake packet fixes are constants, the others must be one run of
// one field that the real packet holds (or the IPv4 total length).
func (l *kernelLayout) headerLoad(r bpf.RawInstruction, off, size uint32) ([]bpf.RawInstruction, error) {
	end := off + size
	// The run of bytes that are not constants, [a, b).
	a, b := end, off
	var konst uint32
	for j := off; j < end; j++ {
		konst <<= 8
		switch l.kind[j] {
		case kindFixed:
			konst |= uint32(l.h.b[j])
		case kindChecksum:
			return nil, refuse("checksum", "a load at %d reads a checksum, which the fake packet computes", off)
		case kindVarying:
			return nil, refuse("segment field", "a load at %d reads a field other than the addresses and ports, which may change from segment to segment", j)
		default:
			a, b = min(a, j), j+1
		}
	}
	if a >= b {
		return nil, refuse("mixed load", "a load of fixed bytes at %d", off) // the specialiser folds these
	}
	kind := l.kind[a]
	for j := a; j < b; j++ {
		if l.kind[j] != kind || l.at[j] != l.at[a]+j-a {
			return nil, refuse("mixed load", "a load of %d bytes at %d mixes fields", size, off)
		}
	}
	whole := a == off && b == end
	if r.Op == bpfLdxMSH {
		if kind == kindTotalLen {
			return nil, refuse("mixed load", "ldxb of the IPv4 total length")
		}
		r.K = l.at[a]
		if kind == kindNet {
			r.K += skfNetOff
		}
		return []bpf.RawInstruction{r}, nil
	}
	var out []bpf.RawInstruction
	switch kind {
	case kindNet, kindL4:
		op := map[uint32]uint16{1: bpfLdBAbs, 2: bpfLdHAbs, 4: bpfLdWAbs}[b-a]
		if op == 0 {
			return nil, refuse("mixed load", "a load of %d bytes at %d reads %d bytes of the packet", size, off, b-a)
		}
		k := l.at[a]
		if kind == kindNet {
			k += skfNetOff
		}
		out = []bpf.RawInstruction{{Op: op, K: k}}
	case kindTotalLen:
		out = []bpf.RawInstruction{{Op: bpfLdLen}, {Op: bpfALU | bpfAdd, K: ipv4Len}}
		ip := uint32(l.h.ip)
		switch {
		case a == ip+2 && b == ip+3:
			out = append(out, bpf.RawInstruction{Op: bpfALU | bpfRsh, K: 8})
		case a == ip+3:
			out = append(out, bpf.RawInstruction{Op: bpfALU | bpfAnd, K: 0xff})
		}
	default:
		return nil, refuse("mixed load", "a load at %d", off)
	}
	if whole {
		return out, nil
	}
	if sh := 8 * (end - b); sh != 0 {
		out = append(out, bpf.RawInstruction{Op: bpfALU | bpfLsh, K: sh})
	}
	if konst != 0 {
		out = append(out, bpf.RawInstruction{Op: bpfALU | bpfOr, K: konst})
	}
	return out, nil
}

// dualStack joins the programs of the two families of a dual-stack socket
// behind a test of the network header's version; a nil program accepts
// all of its family.
func dualStack(v4, v6 []bpf.RawInstruction) []bpf.RawInstruction {
	accept := []bpf.RawInstruction{{Op: bpfRetK, K: kernelAccept}}
	if v4 == nil {
		v4 = accept
	}
	if v6 == nil {
		v6 = accept
	}
	out := []bpf.RawInstruction{
		{Op: bpfLdBAbs, K: skfNetOff},
		{Op: bpfALU | bpfAnd, K: 0xf0},
		{Op: bpfJeqK, K: 0x60, Jt: 0, Jf: 1},
		{Op: bpfJa, K: uint32(len(v4))},
	}
	out = append(out, v4...)
	return append(out, v6...)
}

// familyProgram returns the socket filter of m for a socket receiving the
// families t4 and t6 (nil for one it does not receive), and why a family
// is not filtered (empty when the filter covers all there are); what
// names what the socket receives ("datagrams", "connections"), none is
// the reason when it receives neither family.
func familyProgram(m *Matcher, t4, t6 *kernelTarget, what, none string) ([]bpf.RawInstruction, string) {
	var p4, p6 []bpf.RawInstruction
	var why4, why6 error
	if t4 != nil {
		p4, why4 = kernelProgram(m, *t4)
	}
	if t6 != nil {
		p6, why6 = kernelProgram(m, *t6)
	}
	switch {
	case t4 != nil && t6 != nil:
		switch {
		case why4 != nil && why6 != nil:
			if why4.Error() == why6.Error() {
				return nil, why4.Error()
			}
			return nil, "IPv4: " + why4.Error() + "; IPv6: " + why6.Error()
		case why4 != nil:
			return dualStack(nil, p6), "IPv4 " + what + " are not filtered: " + why4.Error()
		case why6 != nil:
			return dualStack(p4, nil), "IPv6 " + what + " are not filtered: " + why6.Error()
		}
		return dualStack(p4, p6), ""
	case t4 != nil:
		if why4 != nil {
			return nil, why4.Error()
		}
		return p4, ""
	case t6 != nil:
		if why6 != nil {
			return nil, why6.Error()
		}
		return p6, ""
	}
	return nil, none
}
