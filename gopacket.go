package bpfmatch

import (
	"fmt"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// MatchCapture reports whether a captured frame of m's link type matches,
// its lengths taken from ci as a capture file or gopacket's capture
// sources give them: data holds ci.CaptureLength captured bytes of a packet
// ci.Length bytes long on the wire. A zero CaptureLength means all of data
// was captured, a zero Length that the packet was captured whole. As in
// libpcap, a record may claim fewer bytes on the wire than were captured:
// loads read the captured bytes, len is ci.Length. Bytes past the snap
// length are ignored. The error says which length is impossible.
func (m *Matcher) MatchCapture(ci gopacket.CaptureInfo, data []byte) (bool, error) {
	caplen, wire := ci.CaptureLength, ci.Length
	if caplen == 0 {
		caplen = len(data)
	}
	if wire == 0 {
		wire = caplen
	}
	switch {
	case caplen < 0 || caplen > len(data):
		return false, fmt.Errorf("bpfmatch: capture length %d is outside the %d bytes given", ci.CaptureLength, len(data))
	case wire < 0 || uint64(wire) > maxWireLen:
		return false, fmt.Errorf("bpfmatch: wire length %d is not between 0 and 2^32-1", ci.Length)
	}
	f := frame{hdr: data[:caplen], caplen: min(uint32(caplen), m.snap), wirelen: uint32(wire)}
	return m.run(&f) != 0, nil
}

// maxWireLen is the largest wire length a BPF program can be told.
const maxWireLen = 1<<32 - 1

// MatchPacket reports whether a gopacket packet matches: its bytes
// (p.Data()), framed for m's link type, with the lengths of its capture
// info as MatchCapture takes them. A packet decoded from bytes, whose
// metadata is zero, counts as captured whole.
func (m *Matcher) MatchPacket(p gopacket.Packet) (bool, error) {
	return m.MatchCapture(p.Metadata().CaptureInfo, p.Data())
}

// BPF is a filter with the method of gopacket's pcap.BPF, for code written
// against it: replacing pcap.NewBPF by NewBPF is the whole migration, and
// the program no longer needs cgo or libpcap. Unlike pcap.BPF, it is safe
// for concurrent use, takes a zero CaptureInfo as "all of data, captured
// whole", and never reads past data whatever the lengths claim.
type BPF struct {
	m *Matcher
}

// NewBPF compiles expr for frames of a capture's link type, numbered as
// capture files and gopacket's layers number them (LINKTYPE_*, mapped as
// LinkTypeFromPcap maps them: layers.LinkTypeRaw is LinkRaw), with snap
// length captureLength, as pcap.NewBPF does.
func NewBPF(linkType layers.LinkType, captureLength int, expr string) (*BPF, error) {
	m, err := Compile(expr, WithLinkType(LinkTypeFromPcap(uint32(linkType))), WithSnapLen(captureLength))
	if err != nil {
		return nil, err
	}
	return &BPF{m}, nil
}

// Matches reports whether the captured frame data, with the lengths of ci
// (see Matcher.MatchCapture), matches. Lengths that cannot be, a capture
// length beyond data for one, do not match.
func (b *BPF) Matches(ci gopacket.CaptureInfo, data []byte) bool {
	ok, _ := b.m.MatchCapture(ci, data)
	return ok
}

// String returns the expression b was compiled from.
func (b *BPF) String() string { return b.m.String() }

// Matcher returns the Matcher b runs, for the rest of this package's API.
func (b *BPF) Matcher() *Matcher { return b.m }

// Layers returns p framed for link (LinkEthernet or LinkRaw) as gopacket
// layers, outermost first: Ethernet and, with a VLAN, Dot1Q; IPv4 or IPv6;
// TCP or UDP; the payload. gopacket.SerializeLayers with FixLengths and
// ComputeChecksums writes them as the bytes AppendFrame writes. The error
// is AppendFrame's.
func (p *FakePacket) Layers(link LinkType) ([]gopacket.SerializableLayer, error) {
	var h header
	if err := h.build(p, link); err != nil {
		return nil, err
	}
	src, dst := p.Src.Addr().Unmap(), p.Dst.Addr().Unmap()
	ttl := p.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	var out []gopacket.SerializableLayer
	var ipType layers.EthernetType
	var network gopacket.NetworkLayer
	if h.v6 {
		ipType = layers.EthernetTypeIPv6
		network = &layers.IPv6{Version: 6, NextHeader: layers.IPProtocol(p.Protocol), HopLimit: ttl,
			SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	} else {
		ipType = layers.EthernetTypeIPv4
		network = &layers.IPv4{Version: 4, IHL: 5, Flags: layers.IPv4DontFragment, TTL: ttl,
			Protocol: layers.IPProtocol(p.Protocol), SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	}
	if link == LinkEthernet {
		eth := &layers.Ethernet{SrcMAC: h.b[6:12:12], DstMAC: h.b[0:6:6], EthernetType: ipType}
		out = append(out, eth)
		if v := p.VLAN; v != nil {
			eth.EthernetType = layers.EthernetTypeDot1Q
			out = append(out, &layers.Dot1Q{Priority: v.Priority, DropEligible: v.DropEligible, VLANIdentifier: v.ID, Type: ipType})
		}
	}
	out = append(out, network.(gopacket.SerializableLayer))
	if p.Protocol == UDP {
		u := &layers.UDP{SrcPort: layers.UDPPort(p.Src.Port()), DstPort: layers.UDPPort(p.Dst.Port())}
		u.SetNetworkLayerForChecksum(network)
		out = append(out, u)
	} else {
		flags, window := p.tcpFields()
		t := &layers.TCP{SrcPort: layers.TCPPort(p.Src.Port()), DstPort: layers.TCPPort(p.Dst.Port()),
			Seq: p.Seq, Ack: p.Ack, DataOffset: 5, Window: window,
			FIN: flags&FIN != 0, SYN: flags&SYN != 0, RST: flags&RST != 0, PSH: flags&PSH != 0,
			ACK: flags&ACK != 0, URG: flags&URG != 0, ECE: flags&ECE != 0, CWR: flags&CWR != 0}
		t.SetNetworkLayerForChecksum(network)
		out = append(out, t)
	}
	return append(out, gopacket.Payload(p.Payload)), nil
}
