package bpfmatch

import (
	"encoding/binary"

	"golang.org/x/net/bpf"
)

// Direct tests: for many filters the residual program of a shape is one
// test of one field ("ldh [36]; jeq #21" for "tcp dst port 21" on
// Ethernet, IPv4, TCP), and that field is one Match's FakePacket holds as
// it is: a port, an address, the TTL, a TCP field, payload bytes. Match
// then reads it from the FakePacket and decides, without building the
// header and the frame, which cost more than the test. Only loads that
// end within the snap length are direct, and a payload load only where
// the packet's payload holds its bytes: past them, the Ethernet padding
// or the captured length decide, and the residual program runs.

// directSource is where a direct test reads its value.
type directSource uint8

const (
	directNone    directSource = iota // no direct test: run the residual program
	directRet                         // the residual program returns at once: no load
	directPayload                     // payload bytes
	// The others are header fields, read as an 8-byte window (window).
	directPorts  // source and destination ports
	directAddrs4 // IPv4 source and destination addresses
	directSrc6Hi // IPv6 source address, first 8 bytes
	directSrc6Lo
	directDst6Hi
	directDst6Lo
	directTTL      // TTL or hop limit
	directSeqAck   // TCP sequence and acknowledgment numbers
	directTCPFlags // TCP data offset, flags and window
)

// directTest is a residual program that is one test of a value loaded from
// one source: (load & mask) op k, with the verdicts either way.
type directTest struct {
	src directSource
	// Header fields: the value is window(src)<<shl>>shr.
	shl, shr uint8
	// Payload: size bytes at off, where the payload has them.
	size uint8
	off  uint32
	mask uint32
	op   uint16 // bpfJeqK, bpfJgtK, bpfJgeK or bpfJsetK
	k    uint32
	yes  bool // the verdict where the test holds, and always for directRet
	no   bool
}

// decide returns p's verdict and true, or false where the residual
// program must run: no direct test, or payload bytes p lacks, where the
// load reads the Ethernet padding or fails. p must have passed check with
// this test's shape.
func (d *directTest) decide(p *FakePacket) (match, ok bool) {
	var v uint32
	switch d.src {
	case directNone:
		return false, false
	case directRet:
		return d.yes, true
	case directPorts: // the most frequent, spared window's call
		v = uint32(portsWindow(p) << (d.shl & 63) >> (d.shr & 63))
	case directPayload:
		b := p.Payload
		if uint64(d.off)+uint64(d.size) > uint64(len(b)) {
			return false, false
		}
		b = b[d.off:]
		switch d.size {
		case 4:
			v = binary.BigEndian.Uint32(b)
		case 2:
			v = uint32(binary.BigEndian.Uint16(b))
		default:
			v = uint32(b[0])
		}
	default:
		v = uint32(window(p, d.src) << (d.shl & 63) >> (d.shr & 63))
	}
	v &= d.mask
	var holds bool
	switch d.op {
	case bpfJeqK:
		holds = v == d.k
	case bpfJgtK:
		holds = v > d.k
	case bpfJgeK:
		holds = v >= d.k
	default:
		holds = v&d.k != 0
	}
	if holds {
		return d.yes, true
	}
	return d.no, true
}

// window returns the 8 header bytes of source src, big-endian, as the
// header would hold them (buildShape); bytes past a shorter field are 0.
func window(p *FakePacket, src directSource) uint64 {
	switch src {
	case directPorts:
		return portsWindow(p)
	case directAddrs4:
		s, d := p.Src.Addr().Unmap().As4(), p.Dst.Addr().Unmap().As4()
		return uint64(binary.BigEndian.Uint32(s[:]))<<32 | uint64(binary.BigEndian.Uint32(d[:]))
	case directSrc6Hi, directSrc6Lo:
		a := p.Src.Addr().As16()
		return binary.BigEndian.Uint64(a[(src-directSrc6Hi)*8:])
	case directDst6Hi, directDst6Lo:
		a := p.Dst.Addr().As16()
		return binary.BigEndian.Uint64(a[(src-directDst6Hi)*8:])
	case directTTL:
		ttl := p.TTL
		if ttl == 0 {
			ttl = DefaultTTL
		}
		return uint64(ttl) << 56
	case directSeqAck:
		return uint64(p.Seq)<<32 | uint64(p.Ack)
	}
	flags, win := p.tcpFields()
	return uint64(tcpLen/4<<4)<<56 | uint64(uint8(flags))<<48 | uint64(win)<<32
}

func portsWindow(p *FakePacket) uint64 {
	return uint64(p.Src.Port())<<48 | uint64(p.Dst.Port())<<32
}

// directRegion is where a header source lies in the header of a shape.
type directRegion struct {
	src      directSource
	off, len uint32
}

// directRegions returns the header sources of the shape whose header is
// h (shapeHeader's).
func directRegions(h *header) []directRegion {
	ip, l4 := uint32(h.ip), uint32(h.l4)
	rs := []directRegion{{directPorts, l4, 4}}
	if h.v6 {
		rs = append(rs, directRegion{directTTL, ip + 7, 1},
			directRegion{directSrc6Hi, ip + 8, 8}, directRegion{directSrc6Lo, ip + 16, 8},
			directRegion{directDst6Hi, ip + 24, 8}, directRegion{directDst6Lo, ip + 32, 8})
	} else {
		rs = append(rs, directRegion{directTTL, ip + 8, 1}, directRegion{directAddrs4, ip + 12, 8})
	}
	if !h.udp {
		rs = append(rs, directRegion{directSeqAck, l4 + 4, 8}, directRegion{directTCPFlags, l4 + 12, 4})
	}
	return rs
}

// directOf returns the direct test of the residual program raw of the
// shape whose header is h, for frames captured up to snap bytes; its src
// is directNone where raw is not one.
func directOf(raw []bpf.RawInstruction, h *header, snap uint32) directTest {
	ret := func(i int) (bool, bool) {
		if i >= len(raw) || raw[i].Op != bpfRetK {
			return false, false
		}
		return raw[i].K != 0, true
	}
	if yes, ok := ret(0); ok {
		return directTest{src: directRet, yes: yes}
	}
	if len(raw) < 4 {
		return directTest{}
	}
	var size uint32
	switch raw[0].Op {
	case bpfLdWAbs:
		size = 4
	case bpfLdHAbs:
		size = 2
	case bpfLdBAbs:
		size = 1
	default:
		return directTest{}
	}
	mask, j := uint32(0xffffffff), 1
	if raw[1].Op == bpfALU|bpfAnd {
		mask, j = raw[1].K, 2
	}
	jump := raw[j]
	switch jump.Op {
	case bpfJeqK, bpfJgtK, bpfJgeK, bpfJsetK:
	default:
		return directTest{}
	}
	yes, ok1 := ret(j + 1 + int(jump.Jt))
	no, ok2 := ret(j + 1 + int(jump.Jf))
	off := raw[0].K
	end := uint64(off) + uint64(size)
	if !ok1 || !ok2 || end > uint64(snap) {
		// A load past the snap length fails on every packet: the
		// specialiser leaves none, and the residual program says so.
		return directTest{}
	}
	d := directTest{mask: mask, op: jump.Op, k: jump.K, yes: yes, no: no}
	if off >= uint32(h.n) {
		d.src, d.off, d.size = directPayload, off-uint32(h.n), uint8(size)
		return d
	}
	for _, r := range directRegions(h) {
		if off >= r.off && end <= uint64(r.off+r.len) {
			d.src = r.src
			d.shl, d.shr = uint8(8*(off-r.off)), uint8(64-8*size)
			return d
		}
	}
	return directTest{}
}
