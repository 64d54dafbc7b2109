package pcapfilter_test

// Differential tests of LLC and the older LAN protocols (gen_lan.go):
// libpcap 1.10 and pcapfilter compile the same expressions for every
// supported link type, and both programs judge the oracle's packets and
// LAN frames made here (802.3 with LLC, SNAP, raw 802.3, Ethernet II,
// DECnet routing headers of every form), whole and cut at every length,
// framed for Ethernet and for Linux cooked captures.

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/headlessbpf/bpfmatch/internal/libpcap"
	"github.com/headlessbpf/bpfmatch/pcapfilter"
	"golang.org/x/net/bpf"
)

const sapISONS = 0xfe

// lanPayload is the part of a frame after the Ethernet addresses: the
// type (or 802.3 length) field's value and what follows it.
type lanPayload struct {
	name  string
	etype uint16 // 0: an 802.3 length, len(body)
	body  []byte
}

// lanPayloads returns the LAN frames' contents the tests use.
func lanPayloads() []lanPayload {
	var out []lanPayload
	pad := func(b []byte, n int) []byte {
		for len(b) < n {
			b = append(b, byte(len(b)*7+1))
		}
		return b
	}
	llc := func(name string, b ...byte) {
		out = append(out, lanPayload{name: "802.3 " + name, body: pad(b, 46)})
	}
	// LLC frames of various SAPs and control bytes.
	llc("stp", 0x42, 0x42, 0x03, 0, 0, 0, 0, 0x80, 0, 0, 0x0c)
	llc("netbeui", 0xf0, 0xf0, 0x03, 0x2c, 0x00)
	llc("netbeui dsap only", 0xf0, 0xf1, 0x03)
	llc("ipx 802.2", 0xe0, 0xe0, 0x03, 0xff, 0xff, 0x00, 0x30)
	llc("ipx raw 802.3", 0xff, 0xff, 0x00, 0x30, 0x00, 0x11)
	llc("snap ipx", 0xaa, 0xaa, 0x03, 0, 0, 0, 0x81, 0x37, 0xff, 0xff)
	llc("snap atalk", 0xaa, 0xaa, 0x03, 0x08, 0x00, 0x07, 0x80, 0x9b, 0, 0x20)
	llc("snap aarp", 0xaa, 0xaa, 0x03, 0, 0, 0, 0x80, 0xf3, 0, 1)
	llc("snap atalk with OUI 0", 0xaa, 0xaa, 0x03, 0, 0, 0, 0x80, 0x9b)
	llc("snap aarp with Apple's OUI", 0xaa, 0xaa, 0x03, 0x08, 0x00, 0x07, 0x80, 0xf3)
	llc("snap ip", 0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00, 0x45, 0)
	for _, nlpid := range []byte{0x81, 0x82, 0x83, 0x84} {
		llc(fmt.Sprintf("iso nlpid %#x", nlpid), 0xfe, 0xfe, 0x03, nlpid, 0x1b, 0x01, 0x00, 0x12)
	}
	for pdu := byte(0x0e); pdu <= 0x1c; pdu++ {
		llc(fmt.Sprintf("isis pdu %#x", pdu), 0xfe, 0xfe, 0x03, 0x83, 0x1b, 0x01, 0x00, pdu, 0x01, 0x00)
	}
	llc("iso ssap 0", 0xfe, 0x00, 0x03, 0x83, 0x1b, 0x01, 0x00, 0x12)
	// IS-IS without an LLC header: where libpcap looks for the NLPID on
	// cooked captures.
	for _, pdu := range []byte{0x0f, 0x12, 0x1a} {
		llc(fmt.Sprintf("bare isis pdu %#x", pdu), 0x83, 0x1b, 0x01, 0x00, pdu, 0x01, 0x00)
	}
	for _, ctl := range []byte{0x00, 0x02, 0xfe, 0x01, 0x05, 0x09, 0x0d, 0x11, 0x03, 0x13, 0x63, 0x73, 0x43, 0x0f, 0x1f, 0x6f, 0x7f, 0xe3, 0xf3, 0xaf, 0xbf, 0x87, 0x97, 0x33, 0xff} {
		llc(fmt.Sprintf("llc control %#x", ctl), 0x06, 0x06, ctl, 0x00)
	}
	for _, sap := range []byte{0x00, 0x01, 0x04, 0x06, 0x07, 0x64, 0xaa, 0xfe, 0xe0, 0x42, 0xf0, 0xdc} {
		llc(fmt.Sprintf("dsap %#x", sap), sap, 0x00, 0x03, 0x00)
	}
	// Ethernet II frames of the LAN protocols, and others.
	for _, et := range []uint16{0x8137, 0x809b, 0x80f3, 0x6001, 0x6002, 0x6004, 0x6007, 0x0800, 0x05dc, 0x05dd, 0x0042, 0x00fe, 0x00e0, 0x0004, 0x0001} {
		body := pad([]byte{0xfe, 0xfe, 0x03, 0x83, 0, 0, 0, 0x12}, 46)
		out = append(out, lanPayload{name: fmt.Sprintf("ethertype %#04x", et), etype: et, body: body})
	}
	// DECnet routing headers: short and long, with and without a padding
	// byte, between the areas.nodes 1.1 and 10.23 (and others).
	addrs := []uint16{1<<10 | 1, 10<<10 | 23, 50<<10 | 764, 0}
	for _, f := range []struct {
		name     string
		pad      []byte
		flags    byte
		dst, src int // offsets from the flags byte
	}{
		{"short", nil, 0x02, 1, 3},
		{"short+", nil, 0x0a, 1, 3},
		{"padded short", []byte{0x81}, 0x02, 1, 3},
		{"2-padded short", []byte{0x82, 0}, 0x02, 1, 3},
		{"long", nil, 0x06, 7, 15},
		{"long+", nil, 0x26, 7, 15},
		{"padded long", []byte{0x81}, 0x0e, 7, 15},
		{"odd flags", nil, 0x05, 7, 15},
	} {
		for i, src := range addrs {
			dst := addrs[(i+1)%len(addrs)]
			if i == 3 {
				dst = src
			}
			b := make([]byte, 60)
			b[0] = 58 // the length, little-endian
			hdr := append(append([]byte(nil), f.pad...), f.flags)
			copy(b[2:], hdr)
			at := 2 + len(f.pad)
			binary.LittleEndian.PutUint16(b[at+f.dst:], dst)
			binary.LittleEndian.PutUint16(b[at+f.src:], src)
			out = append(out, lanPayload{name: fmt.Sprintf("decnet %s %#x > %#x", f.name, src, dst), etype: 0x6003, body: b})
		}
	}
	return out
}

// geneveIPv4 returns an IPv4 UDP packet to Geneve's port carrying inner
// with the Geneve protocol proto and options bytes of options.
func geneveIPv4(proto uint16, options int, inner []byte) []byte {
	n := 20 + 8 + 8 + options + len(inner)
	b := make([]byte, 20+8+8+options, n)
	b[0], b[8], b[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(b[2:], uint16(n))
	copy(b[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	binary.BigEndian.PutUint16(b[20:], 999)
	binary.BigEndian.PutUint16(b[22:], 6081)
	binary.BigEndian.PutUint16(b[24:], uint16(n-20))
	b[28] = byte(options / 4)
	binary.BigEndian.PutUint16(b[30:], proto)
	b[34] = 5 // VNI
	for i := range options {
		b[36+i] = byte(i + 1)
	}
	return append(b, inner...)
}

// geneveIPv6 is geneveIPv4 over IPv6.
func geneveIPv6(proto uint16, options int, inner []byte) []byte {
	v4 := geneveIPv4(proto, options, inner)
	b := make([]byte, 40, 40+len(v4)-20)
	b[0], b[6], b[7] = 0x60, 17, 64
	binary.BigEndian.PutUint16(b[4:], uint16(len(v4)-20))
	b[23], b[39] = 1, 2 // ::1 > ::2
	return append(b, v4[20:]...)
}

// pppProtoOf returns the PPP protocol number of a LAN frame's body: ISO
// (0x23) for IS-IS without LLC, DECnet (0x27) for DECnet, and IPX,
// spanning tree or AppleTalk for the others in turn.
func pppProtoOf(pl lanPayload) uint16 {
	switch {
	case pl.etype == 0x6003:
		return 0x27
	case pl.body[0] == 0x83:
		return 0x23
	}
	return []uint16{0x2b, 0x31, 0x29, 0x23}[len(pl.name)%4]
}

var (
	lanPacketsOnce sync.Once
	lanPacketsBy   map[pcapfilter.LinkType][]testPacket
)

// lanPackets returns the LAN frames for a link type, whole and cut at
// every length past the link header (Ethernet, Linux cooked v1 and v2),
// plain, in a VLAN tag, in PPPoE and in Geneve (on every link type).
func lanPackets(link pcapfilter.LinkType) []testPacket {
	lanPacketsOnce.Do(func() {
		lanPacketsBy = map[pcapfilter.LinkType][]testPacket{}
		add := func(link pcapfilter.LinkType, p testPacket, from int) {
			for n := from; n < len(p.data); n++ {
				lanPacketsBy[link] = append(lanPacketsBy[link], testPacket{fmt.Sprintf("%s cut to %d", p.name, n), p.data[:n], p.wire})
			}
			lanPacketsBy[link] = append(lanPacketsBy[link], p)
		}
		for _, pl := range lanPayloads() {
			typ := pl.etype
			if typ == 0 {
				typ = uint16(len(pl.body))
			}
			eth := make([]byte, 14, 14+len(pl.body))
			copy(eth, []byte{0x01, 0x80, 0xc2, 0, 0, 0, 0x02, 0, 0, 0, 0, 1})
			binary.BigEndian.PutUint16(eth[12:], typ)
			eth = append(eth, pl.body...)
			add(pcapfilter.LinkEthernet, testPacket{name: "ethernet " + pl.name, data: eth, wire: len(eth)}, 10)
			// The cooked captures' protocol field: the Ethernet type, or
			// for 802.3 frames 802.2 (4) or raw 802.3 (1); also the
			// frame's DSAP and the other kind, to see what is tested.
			protos := []uint16{typ}
			if pl.etype == 0 {
				protos = []uint16{4, 1, uint16(pl.body[0]), sapISONS}
			}
			for _, proto := range protos {
				p := testPacket{name: fmt.Sprintf("%s (protocol %#x)", pl.name, proto), data: pl.body, wire: len(pl.body)}
				add(pcapfilter.LinkLinuxSLL, reframe(p, sllHeader(proto)), 12)
				add(pcapfilter.LinkLinuxSLL2, reframe(p, sll2Header(proto)), 0)
			}
			// The same frame in an 802.1Q tag (VLAN 10), on Ethernet.
			tagged := append(append(append([]byte(nil), eth[:12]...), 0x81, 0x00, 0x00, 0x0a), eth[12:]...)
			add(pcapfilter.LinkEthernet, testPacket{name: "ethernet vlan " + pl.name, data: tagged, wire: len(tagged)}, 14)
			// The body in a PPPoE session, with the PPP protocol that
			// stands for the LAN protocol it looks like.
			ppp := pppProtoOf(pl)
			sess := []byte{0x11, 0x00, 0x00, 0x01, 0, 0, byte(ppp >> 8), byte(ppp)}
			binary.BigEndian.PutUint16(sess[4:], uint16(len(pl.body)+2))
			sess = append(sess, pl.body...)
			p := testPacket{name: fmt.Sprintf("pppoe %s (ppp protocol %#x)", pl.name, ppp), data: sess, wire: len(sess)}
			pppoeEth := append(append([]byte(nil), eth[:12]...), 0x88, 0x64)
			add(pcapfilter.LinkEthernet, reframe(p, pppoeEth), 14)
			add(pcapfilter.LinkLinuxSLL, reframe(p, sllHeader(0x8864)), 16)
			add(pcapfilter.LinkLinuxSLL2, reframe(p, sll2Header(0x8864)), 20)
			// In Geneve: the whole frame (Ethernet payload, protocol
			// 0x6558), or the body alone with the frame's type field as
			// Geneve's protocol, after 0 or 4 bytes of options.
			for i, g := range []struct {
				proto   uint16
				options int
				inner   []byte
			}{{0x6558, 0, eth}, {typ, 0, pl.body}, {typ, 4, pl.body}} {
				ip := geneveIPv4(g.proto, g.options, g.inner)
				p := testPacket{name: fmt.Sprintf("geneve#%d %s", i, pl.name), data: ip, wire: len(ip)}
				from := 28 + 8 + g.options // the inner frame
				add(pcapfilter.LinkRaw, p, from)
				add(pcapfilter.LinkIPv4, p, from)
				add(pcapfilter.LinkEthernet, reframe(p, []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00}), 14+from)
				add(pcapfilter.LinkLinuxSLL, reframe(p, sllHeader(0x0800)), 16+from)
				add(pcapfilter.LinkLinuxSLL2, reframe(p, sll2Header(0x0800)), 20+from)
				ip6 := geneveIPv6(g.proto, g.options, g.inner)
				p6 := testPacket{name: fmt.Sprintf("geneve6#%d %s", i, pl.name), data: ip6, wire: len(ip6)}
				add(pcapfilter.LinkIPv6, p6, 40+16+g.options)
				add(pcapfilter.LinkRaw, p6, 40+16+g.options)
			}
		}
		// Random frames of bytes these protocols care about, the same
		// every run.
		r := rand.New(rand.NewPCG(3, 17))
		palette := []byte{0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x14,
			0x18, 0x19, 0x1a, 0x1b, 0x37, 0x42, 0x43, 0x60, 0x63, 0x6f, 0x80, 0x81, 0x82, 0x83, 0x86, 0x87,
			0x88, 0x9b, 0xaa, 0xaf, 0xe0, 0xe3, 0xef, 0xf0, 0xf3, 0xfe, 0xff}
		types := []uint16{0, 0x6003, 0x8137, 0x809b, 0x80f3, 0x8100, 0x8864, 0x05dc, 0x0004, 0x0001, 0x00fe, 0x0042, 0x6004}
		for i := range 3000 {
			body := make([]byte, 4+r.IntN(56))
			for j := range body {
				body[j] = palette[r.IntN(len(palette))]
			}
			typ := types[r.IntN(len(types))]
			if typ == 0 {
				typ = uint16(len(body))
			}
			p := testPacket{name: fmt.Sprintf("random frame %d (type %#x)", i, typ), data: body, wire: len(body) + r.IntN(2)*8}
			eth := []byte{0x01, 0x80, 0xc2, 0, 0, 0, 0x02, 0, 0, 0, 0, 1, byte(typ >> 8), byte(typ)}
			switch i % 3 {
			case 0:
				lanPacketsBy[pcapfilter.LinkEthernet] = append(lanPacketsBy[pcapfilter.LinkEthernet], reframe(p, eth))
			case 1:
				lanPacketsBy[pcapfilter.LinkLinuxSLL] = append(lanPacketsBy[pcapfilter.LinkLinuxSLL], reframe(p, sllHeader(typ)))
			case 2:
				lanPacketsBy[pcapfilter.LinkLinuxSLL2] = append(lanPacketsBy[pcapfilter.LinkLinuxSLL2], reframe(p, sll2Header(typ)))
			}
		}
	})
	return lanPacketsBy[link]
}

// compareLAN compares expr on the oracle's packets and the LAN frames.
func compareLAN(t *testing.T, expr string, link pcapfilter.LinkType) int {
	t.Helper()
	n := compareWithLibpcap(t, expr, link)
	if !t.Failed() {
		n += compareOn(t, expr, link, lanPackets(link), false)
	}
	return n
}

func corpusOrSkip(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(dtCorpusDir); err != nil {
		t.Skipf("the shared corpus is not at %s: skipping", dtCorpusDir)
	}
}

// lanExprs are the expressions of gen_lan.go's domain, by group.
var lanExprs = []struct {
	name  string
	exprs []string
}{
	{"keywords", []string{
		"atalk", "aarp", "decnet", "lat", "sca", "moprc", "mopdl", "iso", "esis", "es-is",
		"isis", "is-is", "clnp", "l1", "l2", "iih", "lsp", "snp", "csnp", "psnp", "stp",
		"ipx", "netbeui", "radio", "not radio",
		"not stp", "not ipx", "not atalk", "not l1", "stp or ipx", "iso and not isis",
		"ipx or atalk or aarp", "netbeui or stp", "not (esis or clnp)",
	}},
	{"llc", []string{
		"llc", "llc i", "llc s", "llc u", "llc rr", "llc rnr", "llc rej", "llc ui", "llc ua",
		"llc disc", "llc dm", "llc sabme", "llc test", "llc xid", "llc frmr", "llc I", "llc UI",
		"llc foo", "not llc", "not llc i", "llc u or stp", "llc and not llc s",
	}},
	{"saps", []string{
		"ether proto 0x42", "ether proto 0xfe", "ether proto 0xf0", "ether proto 0xe0",
		"ether proto 0x8137", "ether proto 0x809b", "ether proto 0x80f3", "ether proto 100",
		"ether proto 0", "ether proto 1", "ether proto 4", "ether proto 0xaa", "ether proto 6",
		"ether proto 7", "link proto 6",
		"ether proto 1500", "ether proto 1501", "link proto 0x42", "not ether proto 0xe0",
	}},
	{"osi protocols", []string{
		"iso proto 0x81", "iso proto 0x82", "iso proto 0x83", "iso proto 3", "iso proto 255",
		"iso proto 256", `iso proto \esis`, `iso proto \isis`, `iso proto \clnp`,
		`iso proto \ip`, `iso proto \ESIS`, "isis proto 0x1a", "isis proto 0x0f", "isis proto 256",
		`isis proto \esis`, "esis proto 3", "clnp proto 3", "l1 proto 3", "stp proto 3",
		"ipx proto 3", "atalk proto 1", "decnet proto 1", "lat proto 1", "netbeui proto 1",
		"isis proto 0x1a or 0x18", "not iso proto 0x83",
	}},
	{"decnet hosts", []string{
		"decnet host 1.1", "decnet host 10.23", "decnet src 10.23", "decnet dst 1.1",
		"decnet src host 1.1", "decnet dst host 10.23", "decnet src and dst 1.1",
		"decnet src or dst 1.1", "decnet host 50.764", "decnet host 0.0", "decnet host 10",
		"decnet host 1025", "decnet host 65536", "decnet host 4294967295", "decnet net 1.1",
		"decnet net 10", "decnet host 63.1023", "decnet host 64.1", "decnet host 1.1024",
		"decnet host 1.2047", "decnet host 010.1", "decnet host 1.010",
		"decnet host 99999999999999999999.1", "decnet host 1.99999999999999999999",
		"decnet host 4294967296.1", "decnet host 1.2.3", "decnet host 1.2.3.4",
		"decnet net 1.1/16", "decnet net 1.2.3.4/32", "decnet net 10.0.0.0/8",
		"decnet net 1.1 mask 255.255.255.255", "decnet dst net 1.1 mask 255.255.0.0",
		"decnet net link-local", "not decnet host 1.1", "decnet host 1.1 or decnet host 10.23",
		"decnet src 1.1 and decnet dst 10.23", "decnet host 1.1 or 2.2",
		"decnet src 1.1 or dst 10.23", "decnet dst net 1.1/16", "iso proto 0x81 or 0x83",
	}},
	{"after vlan, mpls, pppoes, geneve", []string{
		"vlan and stp", "vlan and ipx", "vlan and atalk", "vlan and aarp", "vlan 10 and netbeui",
		"vlan and llc", "vlan and llc u", "vlan and llc i", "vlan and decnet host 1.1",
		"vlan and decnet src 10.23", "vlan and isis", "vlan and l1", "vlan and iso proto 0x81",
		"stp or vlan and stp", "vlan and vlan and ipx",
		"mpls and llc", "mpls and llc u", "mpls and stp", "mpls and isis", "mpls and decnet host 1.1",
		"pppoes and isis", "pppoes and l2", "pppoes and llc", "pppoes and ipx", "pppoes and stp",
		"pppoes and atalk", "pppoes and aarp", "pppoes and netbeui", "pppoes and decnet host 1.1",
		"pppoes and iso proto 0x83", "pppoes and llc s", "pppoes and mpls and llc",
		"geneve and isis", "geneve and stp", "geneve and llc u", "geneve and ipx", "geneve and atalk",
		"geneve and decnet src 1.1", "geneve and iso proto 0x82",
	}},
	{"accessors", []string{
		"decnet[0] = 58", "decnet[2] & 7 = 2", "atalk[0:2] = 0", "lat[1] != 0", "sca[0] = 0",
		"moprc[0] = 0", "mopdl[0] = 0", "iso[0] = 1", "stp[0] = 1", "isis[0] = 1", "ipx[0] = 1",
		"radio[0] = 1", "vlan and decnet[2] & 7 = 2", "pppoes and decnet[2] = 2",
	}},
	{"errors", []string{
		"decnet host 0x10.1", "decnet host foo", "decnet src foo", "decnet net foo",
		"decnet host 1.1/16", "decnet src 1.1/16", "decnet net 1.1/8", "decnet net 1.1/0",
		"decnet net 1.1/33", "decnet net 300.1/16", "decnet net 1.1 mask 1.2",
		"decnet net 1.1 mask 300.0", "decnet host 1.1 mask 255.255.0.0", "decnet ra 1.1",
		"decnet ta 1.1", "decnet addr1 1.1", "decnet port 1", "decnet portrange 1-2",
		"decnet gateway 1.1", "decnet gateway foo", "decnet protochain 3", "decnet host 1:2::3",
		"decnet host 00:11:22:33:44:55", "decnet host 1.", "decnet 1.1",
		"atalk host 1.1", "aarp host 1", "lat net 1.1", "sca src 1.1", "moprc host 1.1",
		"mopdl dst 1.1", "iso host 1.1", "ipx host 1.1", "ipx net 1.1/16", "stp host 1",
		"netbeui net 1.1", "esis host 1.1", "isis src 1.1", "clnp host 1.1", "l1 host 1.1",
		"radio host 1.1", "atalk host foo", "iso port 1", "stp portrange 1-2",
		"isis protochain 1", "atalk host 1:2::3", "ipx host 00:11:22:33:44:55",
		"iso gateway foo", "stp net foo", "iso proto 1.1", "isis proto 1.2.3.4", "iso proto 1:2::3",
		"decnet host $1", "decnet host 0x1.1", "decnet host 1.1.1.1.1", "decnet net 10/8",
		"iso src proto 1", "isis dst proto 1", "llc 3", `llc \u`, "iso proto -1",
		"decnet net 1.1 mask 0xffff", "decnet host 0x401", "stp 1", "llc u i",
	}},
}

// TestLANPrimitives compares libpcap and pcapfilter on the expressions of
// gen_lan.go's domain, for every supported link type.
func TestLANPrimitives(t *testing.T) {
	dtLibpcapOrSkip(t)
	corpusOrSkip(t)
	total := 0
	for _, group := range lanExprs {
		t.Run(group.name, func(t *testing.T) {
			for _, link := range dtLinkTypes {
				for _, expr := range group.exprs {
					total += compareLAN(t, expr, link)
				}
			}
		})
	}
	t.Logf("%d comparisons with libpcap", total)
}

// lanWords are the keywords of gen_lan.go's domain, to pick the corpus
// expressions that use them.
var lanWords = regexp.MustCompile(`(^|[^\w-])(llc|iso|esis|es-is|isis|is-is|clnp|l1|l2|iih|lsp|snp|csnp|psnp|stp|ipx|netbeui|decnet|atalk|aarp|lat|sca|moprc|mopdl|radio)($|[^\w-])`)

// TestLANCorpus compares libpcap and pcapfilter on the corpus expressions
// that use a keyword of gen_lan.go's domain, for every supported link
// type (the invalid ones for Ethernet, where libpcap refuses them).
func TestLANCorpus(t *testing.T) {
	dtLibpcapOrSkip(t)
	corpusOrSkip(t)
	total, exprs := 0, 0
	for _, file := range []string{"libpcap-ethernet.txt", "libpcap-raw.txt", "realworld.txt", "libpcap-invalid-ethernet.txt"} {
		lines := readFilterFile(t, filepath.Join(dtCorpusDir, "filters", file))
		links := dtLinkTypes
		if strings.Contains(file, "invalid") {
			links = []pcapfilter.LinkType{pcapfilter.LinkEthernet}
		}
		for _, expr := range lines {
			if !lanWords.MatchString(expr) {
				continue
			}
			exprs++
			for _, link := range links {
				total += compareLAN(t, expr, link)
			}
		}
	}
	if exprs == 0 {
		t.Fatal("no corpus expression of this domain: the corpus changed?")
	}
	t.Logf("%d expressions, %d comparisons with libpcap", exprs, total)
}

// readFilterFile returns the expressions of a filter list: one a line,
// without blank lines and # comments.
func readFilterFile(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("the corpus has no %s: %v", path, err)
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	if err := s.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out
}

// TestLANPacketsMatter checks that the LAN frames made here are what the
// tests need: libpcap accepts some and rejects others for each keyword, so
// a comparison on them can tell a wrong program.
func TestLANPacketsMatter(t *testing.T) {
	dtLibpcapOrSkip(t)
	for _, c := range []struct {
		link  pcapfilter.LinkType
		exprs []string
	}{
		{pcapfilter.LinkEthernet, []string{"stp", "ipx", "atalk", "aarp", "netbeui", "esis", "isis", "clnp", "l1", "l2", "iih", "lsp", "snp", "csnp", "psnp", "llc i", "llc s", "llc u", "llc rr", "llc rnr", "llc rej", "llc ui", "llc ua", "llc disc", "llc dm", "llc sabme", "llc test", "llc xid", "llc frmr", "decnet src 1.1", "decnet dst 10.23", "decnet host 50.764", "lat", "sca", "moprc", "mopdl", "vlan and stp", "vlan and llc u", "vlan and decnet host 1.1", "pppoes and isis", "pppoes and decnet host 1.1", "pppoes and ipx"}},
		// (On Linux cooked v1 captures libpcap looks for the NLPID where the
		// LLC header's DSAP is, after testing that it is 0xfe: isis and
		// the IS-IS keywords never match.)
		{pcapfilter.LinkLinuxSLL, []string{"stp", "ipx", "atalk", "aarp", "netbeui", "iso proto 0xfe", "decnet host 1.1", "pppoes and isis", "pppoes and decnet src 1.1"}},
		{pcapfilter.LinkRaw, []string{"geneve and stp", "geneve and iso", "geneve and decnet host 1.1", "geneve and llc u"}},
		{pcapfilter.LinkIPv4, []string{"geneve and stp", "geneve and ipx", "geneve and decnet host 1.1"}},
		{pcapfilter.LinkIPv6, []string{"geneve and stp", "geneve and atalk", "geneve and decnet host 1.1", "geneve and llc s"}},
		{pcapfilter.LinkLinuxSLL2, []string{"stp", "ipx", "iso", "atalk", "isis", "decnet host 1.1"}},
	} {
		for _, expr := range c.exprs {
			prog, err := libpcap.Compile(expr, int(c.link), dtSnapLen, false, 0)
			if err != nil {
				t.Fatalf("%v: %q: %v", c.link, expr, err)
			}
			yes, no := 0, 0
			for _, p := range lanPackets(c.link) {
				if libpcap.Filter(prog, p.data, uint32(len(p.data)), uint32(p.wire)) != 0 {
					yes++
				} else {
					no++
				}
			}
			if yes == 0 || no == 0 {
				t.Errorf("%v: %q: libpcap accepts %d and rejects %d of the LAN frames: they cannot tell a wrong program", c.link, expr, yes, no)
			}
		}
	}
}

// neverMatches checks that prog, pcapfilter's program for expr, matches
// none of the test packets of the link type; it returns how many it ran.
func neverMatches(t *testing.T, expr string, link pcapfilter.LinkType, prog []bpf.RawInstruction) int {
	t.Helper()
	m := loadProgram(t, prog, link)
	n := 0
	for _, pkts := range [][]testPacket{packetsFor(t, link), lanPackets(link)} {
		for _, p := range pkts {
			ok, err := m.MatchFrame(p.data, p.wire)
			if err != nil {
				t.Fatalf("%v: %v", p, err)
			}
			n++
			if ok {
				t.Errorf("%v: %q on %v: pcapfilter's program matches, libpcap finds the expression never does\n%s", link, expr, p, dtListing(prog))
				return n
			}
		}
	}
	return n
}

// TestLANMixed compares libpcap and pcapfilter on random and/or/not
// combinations of the LAN primitives with others that move the layers
// (vlan, mpls, pppoes) or test the same fields (ip, ether proto), the
// same every run. (Not geneve: inside an or, libpcap 1.10 sends some of
// geneve's false exits past the primitive that follows, which is the link
// layer's part to mimic; "geneve and X" is in lanExprs.)
func TestLANMixed(t *testing.T) {
	dtLibpcapOrSkip(t)
	corpusOrSkip(t)
	pool := []string{"stp", "ipx", "llc", "llc u", "llc i", "decnet src 1.1", "decnet host 10.23", "isis",
		"l1", "atalk", "aarp", "netbeui", "iso proto 0x81", "ether proto 6", "ether proto 100", "esis",
		"vlan", "vlan 10", "pppoes", "mpls", "ip", "tcp", "ether proto 0x8137", "lat",
		"decnet[2] & 7 = 2", "ether[14] = 0x42"}
	r := rand.New(rand.NewPCG(11, 5))
	var gen func(depth int) string
	gen = func(depth int) string {
		if depth == 0 || r.IntN(3) == 0 {
			e := pool[r.IntN(len(pool))]
			if r.IntN(5) == 0 {
				e = "not " + e
			}
			return e
		}
		op := []string{" and ", " or "}[r.IntN(2)]
		e := gen(depth-1) + op + gen(depth-1)
		if r.IntN(3) == 0 {
			e = "(" + e + ")"
		}
		return e
	}
	total, compiled, optRejects := 0, 0, 0
	for range 300 {
		expr := gen(3)
		for _, link := range dtLinkTypes {
			got, gerr := pcapfilter.Compile(expr, pcapfilter.Options{LinkType: link})
			if gerr == nil {
				compiled++
			}
			_, werr := libpcap.Compile(expr, int(link), dtSnapLen, true, 0)
			if gerr == nil && werr != nil && strings.Contains(werr.Error(), "rejects all packets") {
				// libpcap's optimiser proved the program never matches
				// (contradictory tests of the same bytes, as in "isis and
				// ether proto 100" on a cooked capture); pcapfilter does
				// not optimise, so its program must merely never match.
				optRejects++
				total += neverMatches(t, expr, link, got)
				continue
			}
			total += compareLAN(t, expr, link)
		}
	}
	if compiled == 0 {
		t.Fatal("no expression compiled")
	}
	t.Logf("%d compiled (%d that libpcap's optimiser finds never match), %d comparisons with libpcap", compiled, optRejects, total)
}
