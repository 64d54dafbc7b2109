package pcapfilter_test

// Tests of the link layer's part of the code generator (gen_link.go):
// protocol fields, vlan, mpls, pppoed/pppoes, geneve, Ethernet addresses,
// broadcast and multicast, inbound/outbound/ifindex, compared with
// libpcap on every supported link type.

import (
	"bufio"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/headlessbpf/bpfmatch/internal/libpcap"
	"github.com/headlessbpf/bpfmatch/pcapfilter"
)

// linkExprs are expressions of the link layer's domain, alone and with
// what comes after them, valid and not, on some link types or all.
var linkExprs = []string{
	// Protocol fields.
	"ether proto 0x800", "ether proto 0x86dd", "ether proto 0x806", "ether proto 0x8035",
	"ether proto 0x1234", "ether proto 1501", "ether proto 1500", "ether proto 0",
	"ether proto 70000", "ether proto 0x8137", "ether proto 0x8847", "ether proto 0x6558",
	"link proto 0x800", "ppp proto 0x86dd", "slip proto 0x806", "fddi proto 0x800",
	"tr proto 0x8864", "wlan proto 0x8863",
	"ether proto \\ip", "ether proto \\ip6", "ether proto \\arp", "ether proto \\rarp",
	"ether proto \\loopback", "link proto \\ip",
	"ip", "ip6", "arp", "rarp", "ip or ip6", "not ip",

	// vlan.
	"vlan", "vlan 0", "vlan 1", "vlan 100", "vlan 4095", "vlan 4096", "vlan 0xffffffff",
	"vlan and ip", "vlan 100 and ip6", "vlan and vlan", "vlan and vlan and ip",
	"vlan 10 and vlan 20 and ip", "vlan or ip", "ip or vlan and ip", "not vlan and ip",
	"vlan and not vlan 5", "(vlan) and (ip or not ip)", "vlan and ether proto 0x1234",
	"vlan and arp", "vlan and ether host 01:02:03:04:05:06", "vlan and ether broadcast",
	"vlan and ether multicast", "vlan and mpls", "vlan and mpls 7 and ip",
	"vlan and pppoes and ip", "vlan and pppoed", "vlan and geneve and ip",
	"vlan and vlan and vlan and vlan and vlan and vlan and ip",

	// mpls.
	"mpls", "mpls 0", "mpls 100", "mpls 1048575", "mpls 1048576", "mpls and ip",
	"mpls and ip6", "mpls and mpls", "mpls and mpls 5 and ip", "mpls 1 and mpls 2 and mpls 3 and ip6",
	"mpls or ip", "ip or mpls and ip", "mpls and arp", "mpls and ether proto 0x800",
	"mpls and ether proto 0x86dd", "mpls and ether proto 5", "mpls and ether proto 0x1234",
	"mpls and vlan", "mpls and pppoes", "mpls and pppoed", "mpls and geneve",
	"mpls and geneve and ip", "mpls and geneve and mpls", "mpls and geneve and vlan",
	"mpls and ether host 01:02:03:04:05:06", "mpls and ether broadcast", "mpls and multicast",
	"not mpls 5 or mpls and ip",

	// pppoe.
	"pppoed", "pppoes", "pppoes 0", "pppoes 0x27", "pppoes 65535", "pppoes 65536",
	"pppoes and ip", "pppoes and ip6", "pppoes 0x27 and ip", "pppoes and pppoes and ip",
	"pppoes and pppoes 3", "pppoes and pppoed", "pppoes or ip", "ip or pppoes and ip6",
	"pppoes and arp", "pppoes and ether proto 0x800", "pppoes and ether proto 0x6003",
	"pppoes and ether proto 0x809b", "pppoes and ether proto 0x600", "pppoes and ether proto 0xfe",
	"pppoes and ether proto 0xe0", "pppoes and ether proto 0x42", "pppoes and ether proto 5",
	"pppoes and ether proto 0x80f3", "pppoes and ether proto 0x8137", "pppoes and ether proto 0x1234",
	"pppoes and mpls", "pppoes and mpls 7 and ip", "pppoes and mpls and mpls and ip6",
	"pppoes and vlan", "pppoes and mpls and vlan", "pppoes and geneve and ip",
	"pppoes and ether host 01:02:03:04:05:06", "pppoes and ether broadcast", "pppoes and multicast",
	"pppoes and inbound", "pppoes and outbound", "pppoes and ifindex 2", "mpls and pppoes 65536",

	// geneve.
	"geneve", "geneve 0", "geneve 5", "geneve 12345", "geneve 16777215", "geneve 16777216",
	"geneve and ip", "geneve 5 and ip6", "geneve and geneve", "geneve and geneve and ip",
	"geneve and ether host 01:02:03:04:05:06", "geneve 5 and ether host 01:02:03:04:05:06",
	"geneve and ether src 01:02:03:04:05:06", "geneve and ether dst and src 01:02:03:04:05:06",
	"geneve and ether broadcast", "geneve and multicast", "geneve and ether proto 0x1234",
	"geneve and vlan and ip", "geneve and vlan 3 and ip", "geneve and mpls 3 and ip",
	"geneve and pppoes 3 and ip", "geneve and arp", "ip or geneve and ip6",
	"not geneve", "geneve and inbound", "geneve and outbound", "geneve and ifindex 2",
	"vlan and geneve and vlan 5", "geneve and geneve and geneve and geneve and geneve",
	"geneve and geneve and geneve and geneve and geneve and geneve",
	"geneve and geneve 7 and vlan and geneve and ip6",

	// Ethernet addresses.
	"ether host 01:02:03:04:05:06", "ether src 01:02:03:04:05:06", "ether dst 01:02:03:04:05:06",
	"ether src or dst 01:02:03:04:05:06", "ether src and dst 01:02:03:04:05:06",
	"ether src host 01:02:03:04:05:06", "ether dst host abcd.ef00.0003", "ether dst abcdef000003",
	"ether src ab.cd.ef.00.00.02", "ether src host ab-cd-ef-00-00-02", "ether src or dst Ab.cD.ef.00.0.01",
	"ether host 0:0:0:0:0:0", "ether host ff:ff:ff:ff:ff:ff", "link host 01:02:03:04:05:06",
	"ppp src 01:02:03:04:05:06", "wlan dst 01:02:03:04:05:06", "fddi host 01:02:03:04:05:06",
	"tr host 01:02:03:04:05:06", "slip host 01:02:03:04:05:06",
	"ether addr1 01:02:03:04:05:06", "ether addr2 01:02:03:04:05:06", "ether addr3 01:02:03:04:05:06",
	"ether addr4 01:02:03:04:05:06", "ether ra 01:02:03:04:05:06", "ether ta 01:02:03:04:05:06",
	"host 01:02:03:04:05:06", "src 01:02:03:04:05:06", "ip host 01:02:03:04:05:06",
	"tcp port 01:02:03:04:05:06", "ether net 01:02:03:04:05:06", "ether port 01:02:03:04:05:06",
	"ether proto 01:02:03:04:05:06", "ether gateway 01:02:03:04:05:06",
	"ether host nosuchhost", "ether src nosuchhost", "ether host 5", "ether host 1.2.3.4",
	"ether host ::1", "ether net 10", "ether net 10.0.0.0/8", "ether net 10.0.0.0 mask 255.0.0.0",
	"ether net ::/64", "ether net loopback", "ether net nosuchnet", "ether port 80",
	"ether port http", "ether portrange 1-2", "ether gateway nosuchhost", "ether protochain 6",
	"ether protochain \\ip", "ether proto nosuchproto", "ether proto \\tcp", "ether proto 10.0.0.1",
	"ether proto ::1",
	"not ether dst 01:80:c2:00:00:0e", "ether host 01:02:03:04:05:06 and ip",
	"ether host $12", "ether src $1", "ether proto $12", "ether net $12",

	// The IP family's primitives after vlan, mpls, pppoes and geneve.
	"vlan 100 and tcp port 80", "tcp or vlan and udp", "vlan and host 10.0.0.1", "vlan and vlan and udp port 53",
	"vlan and net 10.0.0.0/8", "vlan and ip6 and tcp", "vlan and arp host 10.0.0.1", "vlan and icmp",
	"mpls and tcp", "mpls and mpls 5 and udp port 53", "mpls and host 10.0.0.2", "mpls and ip6 and udp",
	"pppoes 0x27 and ip and tcp port 22", "pppoes and udp", "pppoes and host 10.0.0.1", "pppoes and ip6 host ::2",
	"geneve and tcp port 80", "geneve and udp port 53", "geneve and host 10.0.0.1", "geneve and ip6 and tcp",
	"geneve and geneve and udp", "geneve and vlan and tcp", "geneve and mpls and tcp", "geneve and pppoes and tcp",
	"geneve and net 10.0.0.0/8", "geneve and icmp", "geneve and ip broadcast", "geneve and ip multicast",
	"vlan and ip multicast", "pppoes and ip6 multicast", "geneve and tcp[13] & 2 != 0",
	"geneve and ip protochain 6", "geneve or protochain 6",

	// Byte accessors after vlan, mpls, pppoes and geneve.
	"ether[12:2] = 0x800", "link[0] & 1 = 1", "vlan and ether[12:2] = 0x8100", "vlan and ether[16:2] = 0x800",
	"vlan and ip[0] & 0xf0 = 0x40", "vlan and vlan and ip[9] = 6", "mpls and ip[9] = 17",
	"mpls and mpls and ip6[6] = 17", "pppoes and ip[9] = 6", "pppoes and ether[0] = 0x21",
	"pppoes and link[1] = 0x21", "geneve and ip[9] = 17", "geneve and ether[12:2] = 0x800",
	"geneve and link[0] & 1 = 0", "geneve and geneve and ip[0] = 0x45", "geneve and vlan and ip[9] = 6",
	"geneve and pppoes and ip[9] = 6", "geneve 5 and arp[7] = 1", "vlan and len > 100",

	// broadcast and multicast.
	"broadcast", "multicast", "ether broadcast", "ether multicast", "link broadcast",
	"link multicast", "not broadcast and not multicast", "ether broadcast or ether multicast",

	// inbound, outbound, ifindex.
	"inbound", "outbound", "not inbound", "ifindex 1", "ifindex 2", "ifindex 4294967295",
	"inbound or ip", "ip or inbound", "ip and outbound", "not outbound and ip6", "ifindex 2 or ip",
}

// linkExprsUninit are expressions whose libpcap programs read scratch
// memory that nothing stored to on some paths (what follows a geneve that
// was false): libpcap leaves that memory uninitialised, so its verdicts
// are not defined, and only acceptance is compared.
var linkExprsUninit = []string{
	"geneve or ip", "not geneve and ip", "geneve or ether host 01:02:03:04:05:06",
	"geneve 5 or vlan", "(geneve or ip) and mpls",
}

// linkExprsLAN are expressions where the link layer routes to the LLC
// tests of gen_lan.go, after vlan and geneve (whose encapsulated frame
// may have no Ethernet header: then libpcap reads the 2-byte SAP pairs,
// IPX's and SNAP's headers at lay.net, and a 1-byte DSAP at
// lay.linkType+2).
var linkExprsLAN = []string{
	"ether proto 6", "ether proto 0xf0", "ether proto 0xfe", "ether proto 0x42", "ether proto 0xe0",
	"ether proto 0x809b", "ether proto 0x80f3", "vlan and ether proto 6", "vlan and ether proto 0xfe",
	"vlan 5 and iso", "vlan and stp", "vlan and ipx", "vlan and atalk",
	"geneve and ether proto 0xfe", "geneve and ether proto 0x42", "geneve and iso", "geneve and stp",
	"geneve and ether proto 0xf0", "geneve and ether proto 6", "geneve and ether proto 0x809b", "geneve and ipx",
	"mpls and iso", "pppoes and iso", "pppoes and ipx", "pppoes and atalk", "pppoes and stp",
	"geneve and llc", "geneve and llc u", "vlan and llc", "mpls and llc", "pppoes and llc",
}

// TestLinkLANInterplay compares pcapfilter with libpcap where the link
// layer's part hands over to the LAN protocols' part.
func TestLinkLANInterplay(t *testing.T) {
	dtLibpcapOrSkip(t)
	n := 0
	for _, link := range dtLinkTypes {
		pkts := linkPackets(link)
		for _, expr := range linkExprsLAN {
			n += compareWithLibpcap(t, expr, link)
			n += compareOnPackets(t, expr, link, pkts)
		}
	}
	t.Logf("%d verdicts compared with libpcap", n)
}

// TestLinkLayer compares pcapfilter with libpcap on the link layer's
// expressions, for every supported link type.
func TestLinkLayer(t *testing.T) {
	dtLibpcapOrSkip(t)
	n, accepted := 0, 0
	for _, link := range dtLinkTypes {
		t.Run(link.String(), func(t *testing.T) {
			for _, expr := range linkExprs {
				n += compareWithLibpcap(t, expr, link)
				if _, err := pcapfilter.Compile(expr, pcapfilter.Options{LinkType: link}); err == nil {
					accepted++
				}
			}
		})
	}
	if accepted == 0 {
		t.Fatal("no expression compiled")
	}
	for _, link := range dtLinkTypes {
		for _, expr := range linkExprsUninit {
			_, werr := libpcap.Compile(expr, int(link), dtSnapLen, true, 0)
			_, gerr := pcapfilter.Compile(expr, pcapfilter.Options{LinkType: link})
			if (werr == nil) != (gerr == nil) {
				t.Errorf("%v: %q: libpcap says %v, pcapfilter says %v", link, expr, errString(werr), errString(gerr))
			}
		}
	}
	t.Logf("%d expressions x %d link types (%d compiled), %d verdicts compared with libpcap", len(linkExprs), len(dtLinkTypes), accepted, n)
}

// linkWords are the words that make an expression of the corpus one of
// the link layer's.
var linkWords = regexp.MustCompile(`\b(vlan|mpls|pppoed|pppoes|geneve|ether|link|broadcast|multicast|inbound|outbound|ifindex)\b`)

// corpusFilters returns the expressions of a filter list of the corpus
// that use the link layer's words, or skips.
func corpusFilters(t *testing.T, name string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(dtCorpusDir, "filters", name))
	if err != nil {
		t.Skipf("the shared corpus is not at %s: skipping (%v)", dtCorpusDir, err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// Byte accessors (ether[0]) are the arithmetic part's.
		if linkWords.MatchString(line) && !strings.Contains(line, "[") {
			out = append(out, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLinkCorpus compares pcapfilter with libpcap on the corpus
// expressions of the link layer's domain, for every supported link type.
func TestLinkCorpus(t *testing.T) {
	dtLibpcapOrSkip(t)
	n, exprs := 0, 0
	for _, file := range []string{"libpcap-ethernet.txt", "libpcap-raw.txt", "realworld.txt", "libpcap-invalid-ethernet.txt"} {
		list := corpusFilters(t, file)
		if len(list) == 0 {
			t.Errorf("%s: no expression of the link layer's", file)
		}
		exprs += len(list)
		for _, link := range dtLinkTypes {
			for _, expr := range list {
				n += compareWithLibpcap(t, expr, link)
			}
		}
	}
	t.Logf("%d corpus expressions x %d link types, %d verdicts compared with libpcap", exprs, len(dtLinkTypes), n)
}

// TestLinkProgramSize checks that what the link layer's primitives
// compile to stays within a small margin of libpcap's unoptimised
// program, and that long chains of them compile, or fail, in bounded
// size.
func TestLinkProgramSize(t *testing.T) {
	dtLibpcapOrSkip(t)
	for _, link := range dtLinkTypes {
		for _, expr := range linkExprs {
			got, err := pcapfilter.Compile(expr, pcapfilter.Options{LinkType: link})
			if err != nil {
				continue
			}
			want, err := libpcap.Compile(expr, int(link), dtSnapLen, false, 0)
			if err != nil {
				continue // compareWithLibpcap reports it
			}
			if limit := len(want) + len(want)/8 + 2; len(got) > limit {
				t.Errorf("%v: %q: %d instructions, libpcap's unoptimised program %d\n%s", link, expr, len(got), len(want), dtListing(got))
			}
		}
	}
	long := []struct {
		name, unit, tail string
		count            int
		ok               bool
	}{
		{"vlans", "vlan and ", "ip", 2000, true},
		{"mpls labels", "mpls and ", "ip", 2000, true},
		{"pppoes", "pppoes and ", "ip", 2000, true},
		{"vlan ors", "vlan or ", "ip", 2000, true},
		{"geneve registers", "geneve and ", "ip", 6, false},
		{"geneves", "geneve and ", "ip", 5, true},
	}
	for _, c := range long {
		expr := strings.Repeat(c.unit, c.count) + c.tail
		prog, err := pcapfilter.Compile(expr, pcapfilter.Options{})
		if (err == nil) != c.ok {
			t.Errorf("%s: %d of %q: error %v, want ok=%v", c.name, c.count, c.unit, err, c.ok)
			continue
		}
		if err == nil && len(prog) > 100*c.count+100 {
			t.Errorf("%s: %d of %q: %d instructions", c.name, c.count, c.unit, len(prog))
		}
	}
}

// Packets built for the link layer's primitives: Ethernet frames with
// VLAN tags, MPLS label stacks, PPPoE sessions and Geneve tunnels, in
// each supported framing, whole and cut at every length, since the order
// of guards and loads decides the verdict on a packet cut short.

var (
	macA = []byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06}
	macB = []byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	macF = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
)

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func be16(v uint16) []byte { return []byte{byte(v >> 8), byte(v)} }

func be32(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }

// ipv4 is an IPv4 header of ihl words (5 or more) with the fragment
// field frag, and its payload.
func ipv4(proto byte, frag uint16, ihl int, payload []byte) []byte {
	h := make([]byte, 4*ihl)
	h[0] = 0x40 | byte(ihl)
	copy(h[2:], be16(uint16(len(h)+len(payload))))
	copy(h[6:], be16(frag))
	h[8], h[9] = 64, proto
	copy(h[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	return cat(h, payload)
}

func ipv6(next byte, payload []byte) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	copy(h[4:], be16(uint16(len(payload))))
	h[6], h[7] = next, 64
	h[23], h[39] = 1, 2
	return cat(h, payload)
}

func udp(sport, dport uint16, payload []byte) []byte {
	return cat(be16(sport), be16(dport), be16(uint16(8+len(payload))), []byte{0, 0}, payload)
}

func tcp(sport, dport uint16) []byte {
	h := make([]byte, 20)
	copy(h, be16(sport))
	copy(h[2:], be16(dport))
	h[12], h[13] = 0x50, 0x18
	return cat(h, []byte("data"))
}

// eth is an Ethernet header and its payload; tags are VLAN tags, each a
// TPID and a TCI, before the type.
func eth(dst []byte, etherType uint16, payload []byte, tags ...uint16) []byte {
	out := cat(dst, macB)
	for i := 0; i+1 < len(tags); i += 2 {
		out = cat(out, be16(tags[i]), be16(tags[i+1]))
	}
	return cat(out, be16(etherType), payload)
}

// mplsStack is MPLS labels, the last at the bottom of the stack, and the
// payload.
func mplsStack(payload []byte, labels ...uint32) []byte {
	var out []byte
	for i, l := range labels {
		v := l<<12 | 64
		if i == len(labels)-1 {
			v |= 0x100
		}
		out = cat(out, be32(v))
	}
	return cat(out, payload)
}

func pppoeSession(session, pppProto uint16, payload []byte) []byte {
	return cat([]byte{0x11, 0x00}, be16(session), be16(uint16(2+len(payload))), be16(pppProto), payload)
}

// geneveHdr is a Geneve header of version ver with optWords words of
// options, its protocol type and VNI, and the payload.
func geneveHdr(ver byte, optWords int, proto uint16, vni uint32, payload []byte) []byte {
	h := cat([]byte{ver<<6 | byte(optWords), 0}, be16(proto), be32(vni<<8))
	for i := 0; i < optWords; i++ {
		h = cat(h, []byte{0x01, 0x02, 0x80, 0x01}) // option headers and data alike
	}
	return cat(h, payload)
}

// linkFrames are Ethernet frames for the link layer's primitives.
func linkFrames() map[string][]byte {
	v4tcp := ipv4(6, 0x4000, 5, tcp(1234, 22))
	v4udp := ipv4(17, 0, 5, udp(1234, 53, []byte("q")))
	v6tcp := ipv6(6, tcp(1234, 80))
	v6udp := ipv6(17, udp(1234, 53, []byte("q")))
	arp := cat(be16(1), be16(0x800), []byte{6, 4}, be16(1), macB, []byte{10, 0, 0, 1}, make([]byte, 6), []byte{10, 0, 0, 2})
	inner := eth(macA, 0x0800, ipv4(6, 0, 5, tcp(1, 80)))
	gv := func(ver byte, opt int, proto uint16, vni uint32, payload []byte) []byte {
		return udp(999, 6081, geneveHdr(ver, opt, proto, vni, payload))
	}
	return map[string][]byte{
		"ipv4 tcp":               eth(macB, 0x0800, v4tcp),
		"ipv6 udp":               eth(macA, 0x86dd, v6udp),
		"arp broadcast":          eth(macF, 0x0806, arp),
		"802.3 llc":              eth(macA, 38, cat([]byte{0x42, 0x42, 0x03}, make([]byte, 35))),
		"802.3 llc dsap 6":       eth(macA, 38, cat([]byte{0x06, 0x00, 0x03}, make([]byte, 35))),
		"802.3 llc iso":          eth(macA, 38, cat([]byte{0xfe, 0xfe, 0x03, 0x81}, make([]byte, 34))),
		"vlan 802.3 llc 6 6":     eth(macA, 38, cat([]byte{0x06, 0x06, 0x03}, make([]byte, 35)), 0x8100, 3),
		"vlan 100 ipv4":          eth(macA, 0x0800, v4tcp, 0x8100, 100),
		"qinq 10 20 ipv4":        eth(macB, 0x0800, v4udp, 0x88a8, 10, 0x8100, 20),
		"vlan 9100 5 ipv6":       eth(macA, 0x86dd, v6tcp, 0x9100, 0x2005),
		"vlan 5 arp":             eth(macF, 0x0806, arp, 0x8100, 5),
		"vlan 4095 vlan 1 mpls":  eth(macB, 0x8847, mplsStack(v4tcp, 7), 0x8100, 4095, 0x8100, 1),
		"mpls 5 7 ipv4":          eth(macA, 0x8847, mplsStack(v4tcp, 5, 7)),
		"mpls 100 ipv6":          eth(macB, 0x8847, mplsStack(v6udp, 100)),
		"mpls 1 2 3 ipv6":        eth(macA, 0x8847, mplsStack(v6tcp, 1, 2, 3)),
		"mpls 1048575 ipv4":      eth(macA, 0x8847, mplsStack(v4udp, 1048575)),
		"pppoes 0x27 ipv4":       eth(macB, 0x8864, pppoeSession(0x27, 0x21, v4tcp)),
		"pppoes 3 ipv6":          eth(macA, 0x8864, pppoeSession(3, 0x57, v6udp)),
		"pppoes 3 mpls 7 ipv4":   eth(macA, 0x8864, pppoeSession(3, 0x281, mplsStack(v4tcp, 7))),
		"pppoes pppoes ipv4":     eth(macA, 0x8864, pppoeSession(1, 0x8864, pppoeSession(2, 0x21, v4udp))),
		"pppoed":                 eth(macF, 0x8863, []byte{0x11, 0x09, 0, 0, 0, 4, 1, 1, 0, 0}),
		"geneve 5 ether ipv4":    eth(macB, 0x0800, ipv4(17, 0, 5, gv(0, 0, 0x6558, 5, inner))),
		"geneve opts ether vlan": eth(macB, 0x0800, ipv4(17, 0, 6, gv(0, 2, 0x6558, 12345, eth(macF, 0x0800, v4udp, 0x8100, 3)))),
		"geneve v6 ether ipv6":   eth(macA, 0x86dd, ipv6(17, gv(0, 1, 0x6558, 7, eth(macA, 0x86dd, v6tcp)))),
		"geneve 5 ipv4":          eth(macB, 0x0800, ipv4(17, 0, 5, gv(0, 0, 0x0800, 5, v4tcp))),
		"geneve version 1":       eth(macB, 0x0800, ipv4(17, 0, 5, gv(1, 0, 0x6558, 5, inner))),
		"geneve fragment":        eth(macB, 0x0800, ipv4(17, 0x0010, 5, gv(0, 0, 0x6558, 5, inner))),
		"geneve geneve ipv6": eth(macB, 0x0800, ipv4(17, 0, 5, gv(0, 0, 0x6558, 1,
			eth(macA, 0x0800, ipv4(17, 0, 5, gv(0, 1, 0x6558, 2, eth(macF, 0x86dd, v6udp))))))),
		"vlan 7 geneve mpls":  eth(macB, 0x0800, ipv4(17, 0, 5, gv(0, 0, 0x6558, 9, eth(macA, 0x8847, mplsStack(v4tcp, 3)))), 0x8100, 7),
		"pppoes geneve arp":   eth(macB, 0x8864, pppoeSession(3, 0x21, ipv4(17, 0, 5, gv(0, 0, 0x6558, 3, eth(macF, 0x0806, arp))))),
		"mpls geneve ipv4":    eth(macB, 0x8847, mplsStack(ipv4(17, 0, 5, gv(0, 0, 0x6558, 3, inner)), 4)),
		"geneve pppoes ipv4":  eth(macB, 0x0800, ipv4(17, 0, 5, gv(0, 0, 0x6558, 3, eth(macA, 0x8864, pppoeSession(3, 0x21, v4tcp))))),
		"multicast ipv4":      eth([]byte{0x01, 0x00, 0x5e, 0, 0, 1}, 0x0800, v4udp),
		"geneve llc 0xfefe":   eth(macB, 0x0800, ipv4(17, 0, 5, gv(0, 1, 0x0026, 5, cat([]byte{0xfe, 0xfe, 0x03, 0x81}, v4tcp)))),
		"geneve llc 0x4242":   eth(macB, 0x0800, ipv4(17, 0, 5, gv(0, 0, 0x0026, 5, cat([]byte{0x42, 0x42, 0x03}, v4tcp)))),
		"geneve to port 6082": eth(macB, 0x0800, ipv4(17, 0, 5, udp(999, 6082, geneveHdr(0, 0, 0x6558, 5, inner)))),
		"geneve over tcp":     eth(macB, 0x0800, ipv4(6, 0, 5, udp(999, 6081, geneveHdr(0, 0, 0x6558, 5, inner)))),
	}
}

// linkPackets returns the packets of linkFrames framed for link, whole
// and cut at every length.
func linkPackets(link pcapfilter.LinkType) []testPacket {
	var out []testPacket
	frames := linkFrames()
	names := slices.Sorted(maps.Keys(frames))
	for i, name := range names {
		f := frames[name]
		et := uint16(f[12])<<8 | uint16(f[13])
		var data []byte
		switch link {
		case pcapfilter.LinkEthernet:
			data = f
		case pcapfilter.LinkLinuxSLL:
			h := sllHeader(et)
			if i%2 == 0 {
				h[1] = 4 // PACKET_OUTGOING
			}
			data = cat(h, f[14:])
		case pcapfilter.LinkLinuxSLL2:
			h := sll2Header(et)
			if i%2 == 0 {
				h[10] = 4
			}
			h[7] = byte(2 + i%2) // interface index 2 or 3
			data = cat(h, f[14:])
		case pcapfilter.LinkRaw, pcapfilter.LinkIPv4, pcapfilter.LinkIPv6:
			v := byte(4)
			if et == 0x86dd {
				v = 6
			}
			if (et != 0x0800 && et != 0x86dd) || (link == pcapfilter.LinkIPv4 && v != 4) || (link == pcapfilter.LinkIPv6 && v != 6) {
				continue
			}
			data = f[14:]
		}
		for n := 0; n <= len(data); n++ {
			out = append(out, testPacket{name: fmt.Sprintf("%s cut to %d", name, n), data: data[:n], wire: len(data)})
		}
	}
	return out
}

// compareOnPackets is compareWithLibpcap on the packets given, for an
// expression both compile.
func compareOnPackets(t *testing.T, expr string, link pcapfilter.LinkType, pkts []testPacket) int {
	t.Helper()
	want, werr := libpcap.Compile(expr, int(link), dtSnapLen, true, 0)
	got, gerr := pcapfilter.Compile(expr, pcapfilter.Options{LinkType: link})
	if werr != nil || gerr != nil {
		return 0
	}
	unopt, _ := libpcap.Compile(expr, int(link), dtSnapLen, false, 0)
	m := loadProgram(t, got, link)
	n := 0
	for _, p := range pkts {
		caplen := uint32(len(p.data))
		w := libpcap.Filter(want, p.data, caplen, uint32(p.wire)) != 0
		g, err := m.MatchFrame(p.data, p.wire)
		if err != nil {
			t.Fatalf("%v: %v", p, err)
		}
		n++
		if g == w || g == (libpcap.Filter(unopt, p.data, caplen, uint32(p.wire)) != 0) {
			continue
		}
		t.Errorf("%v: %q on %v: pcapfilter says %v, libpcap %v\npcapfilter's program:\n%slibpcap's:\n%s", link, expr, p, g, w, dtListing(got), dtListing(want))
		return n
	}
	return n
}

// TestLinkPackets compares pcapfilter with libpcap on the link layer's
// expressions and packets built for them: tags, label stacks, sessions
// and tunnels, cut at every length.
func TestLinkPackets(t *testing.T) {
	dtLibpcapOrSkip(t)
	n := 0
	for _, link := range dtLinkTypes {
		pkts := linkPackets(link)
		if len(pkts) == 0 {
			t.Fatalf("%v: no packets", link)
		}
		for _, expr := range linkExprs {
			n += compareOnPackets(t, expr, link, pkts)
		}
	}
	t.Logf("%d verdicts compared with libpcap", n)
}

// linkAtoms are the primitives TestLinkRandom combines: the link layer's,
// and others whose offsets they move.
var linkAtoms = []string{
	"vlan", "vlan 5", "vlan 100", "vlan 4095", "mpls", "mpls 7", "mpls 3", "pppoes", "pppoes 3", "pppoes 0x27", "pppoed",
	"geneve", "geneve 5", "ip", "ip6", "arp", "rarp", "not ip", "tcp port 80", "udp", "tcp", "icmp", "host 10.0.0.1",
	"ip6 host ::2", "arp host 10.0.0.1", "ip multicast", "ip6 multicast", "udp port 6081",
	"ether host 01:02:03:04:05:06", "ether src 02:00:00:00:00:01", "ether dst ff:ff:ff:ff:ff:ff",
	"ether src and dst 01:02:03:04:05:06", "ether broadcast", "multicast",
	"ether proto 0x800", "ether proto 0x8847", "ether proto 0x8864", "ether proto 0x8100", "ether proto 0x1234",
	"ether proto 0x6003", "ether proto 0x809b", "ether proto 0xe0", "link proto 5", "ppp proto 0x21", "ether proto \\ipx",
	"inbound", "outbound", "ifindex 2", "iso", "stp", "ipx", "atalk", "aarp", "decnet", "netbeui",
	"ip[9] = 6", "ether[0] & 1 = 1", "len > 60",
}

func randomLinkExpr(r *rand.Rand, depth int) string {
	if depth == 0 || r.IntN(3) == 0 {
		return linkAtoms[r.IntN(len(linkAtoms))]
	}
	switch r.IntN(5) {
	case 0:
		return "not " + randomLinkExpr(r, depth-1)
	case 1:
		return "(" + randomLinkExpr(r, depth-1) + " or " + randomLinkExpr(r, depth-1) + ")"
	}
	return randomLinkExpr(r, depth-1) + " and " + randomLinkExpr(r, depth-1)
}

// TestLinkRandom compares pcapfilter with libpcap on random combinations
// of the link layer's primitives and others, on every link type. Where
// libpcap's optimiser finds an expression rejects all packets, the Go
// program must reject every test packet. Where a geneve may be false
// before what follows it (under or, not), libpcap reads scratch memory it
// never stored to: only acceptance is compared.
func TestLinkRandom(t *testing.T) {
	dtLibpcapOrSkip(t)
	r := rand.New(rand.NewPCG(7, 8))
	n, exprs := 0, 0
	for range 300 {
		expr := randomLinkExpr(r, 4)
		exprs++
		uninit := strings.Contains(expr, "geneve") && (strings.Contains(expr, " or ") || strings.Contains(expr, "not "))
		for _, link := range dtLinkTypes {
			_, werr := libpcap.Compile(expr, int(link), dtSnapLen, true, 0)
			got, gerr := pcapfilter.Compile(expr, pcapfilter.Options{LinkType: link})
			if werr != nil && gerr == nil && strings.Contains(werr.Error(), "rejects all packets") {
				m := loadProgram(t, got, link)
				for _, p := range append(packetsFor(t, link), linkPackets(link)...) {
					if ok, _ := m.MatchFrame(p.data, p.wire); ok {
						t.Errorf("%v: %q, which libpcap says rejects all packets, matches %v\n%s", link, expr, p, dtListing(got))
						break
					}
				}
				continue
			}
			if uninit {
				if (werr == nil) != (gerr == nil) {
					t.Errorf("%v: %q: libpcap says %v, pcapfilter says %v", link, expr, errString(werr), errString(gerr))
				}
				continue
			}
			n += compareWithLibpcap(t, expr, link)
			n += compareOnPackets(t, expr, link, linkPackets(link))
		}
	}
	t.Logf("%d random expressions x %d link types, %d verdicts compared with libpcap", exprs, len(dtLinkTypes), n)
}

// TestLinkDirectionRefused checks inbound, outbound and ifindex on every
// link type against libpcap compiling as tcpdump -r does: refused, with
// libpcap's message, where a saved packet cannot tell them (all but Linux
// cooked captures, and ifindex but on LINUX_SLL2), compiled elsewhere.
func TestLinkDirectionRefused(t *testing.T) {
	dtLibpcapOrSkip(t)
	var refused, compiled int
	for _, expr := range []string{"inbound", "outbound", "not inbound", "ifindex 2", "ip or outbound", "pppoes and inbound", "vlan and ifindex 1", "mpls and inbound", "vlan and outbound", "geneve and inbound", "pppoed and inbound", "inbound and pppoes", "pppoes and ifindex 2", "mpls and ifindex 2", "geneve and ifindex 2", "pppoes or outbound", "not pppoes and inbound"} {
		for _, link := range dtLinkTypes {
			_, werr := libpcap.Compile(expr, int(link), dtSnapLen, true, 0)
			_, err := pcapfilter.Compile(expr, pcapfilter.Options{LinkType: link})
			switch {
			case (err == nil) != (werr == nil):
				t.Errorf("%v: %q: the Go compiler says %v, libpcap %v", link, expr, err, werr)
			case err != nil:
				refused++
				var pe *pcapfilter.Error
				if !errors.As(err, &pe) || pe.Msg != werr.Error() {
					t.Errorf("%v: %q: the Go compiler's message %q, libpcap's %q", link, expr, err, werr)
				}
			default:
				compiled++
			}
		}
	}
	t.Logf("direction keywords: %d refused by both compilers with libpcap's message, %d compiled by both", refused, compiled)
	if refused == 0 || compiled == 0 {
		t.Errorf("expected both refusals (Ethernet, raw IP) and programs (Linux cooked): %d and %d", refused, compiled)
	}
}
