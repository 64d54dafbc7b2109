package pcapfilter_test

// Tests of the IP-family primitives (gen_inet.go) against libpcap: which
// combinations of qualifiers and ids compile, and the verdicts of those
// that do on every test packet of every supported link type.

import (
	"bufio"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/headlessbpf/bpfmatch/internal/libpcap"
	"github.com/headlessbpf/bpfmatch/pcapfilter"
)

// inetProtos are the protocol qualifiers of the matrix: none, the IP
// family, and one link-layer and one LAN qualifier for the checks that
// hold whatever the protocol.
var inetProtos = []string{"", "ip", "ip6", "arp", "rarp", "tcp", "udp", "sctp", "icmp", "icmp6",
	"igmp", "igrp", "pim", "vrrp", "carp", "ah", "esp", "ether", "decnet"}

var inetDirs = []string{"", "src", "dst", "src or dst", "src and dst", "addr1", "ta"}

var inetTypes = []string{"", "host", "net", "port", "portrange", "gateway", "proto", "protochain"}

// inetIDs are ids of every kind: numbers, full and partial dotted
// addresses, networks with masks (valid and with host bits set), IPv6
// addresses and networks, MAC addresses; inetNames adds the names each
// type looks up. Host names only from /etc/hosts: an unknown one goes to
// DNS, whose answers can take seconds.
var inetIDs = []string{
	"10.0.0.1", "10.1", "10.1.2", "167772161", "10", "0", "6", "80", "65536", "0x50",
	"10.0.0.0/8", "10.1.2.3/8", "10.0.0.0/0", "10.0.0.0 mask 255.0.0.0", "10.0.0.0 mask 255",
	"10.1.2.3 mask 255.255.0.0", "10.0.0.0 mask 255.255",
	"::1", "fe80::/10", "fe80::1/10", "::ffff:10.0.0.1", "2001:db8::1/128", "::/0",
	"01:02:03:04:05:06", "$1",
}

var inetNames = map[string][]string{
	"":           {"localhost"},
	"host":       {"localhost"},
	"gateway":    {"localhost"},
	"net":        {"loopback", "no-such-net"},
	"port":       {"http", "domain", "ntp", "nosuchservice", "80"},
	"portrange":  {"ftp-ssh", "20-21", "21-20", "http-70000", "1-70000", "ftp-domain", "20", "http"},
	"proto":      {"\\tcp", "\\ipv6-icmp", "nosuchproto"},
	"protochain": {"\\udp", "nosuchproto"},
}

// inetAccepts compiles expr with libpcap and with pcapfilter for link,
// reports a difference in acceptance, and returns whether libpcap
// accepts it.
func inetAccepts(t *testing.T, expr string, link pcapfilter.LinkType) bool {
	t.Helper()
	_, werr := libpcap.Compile(expr, int(link), dtSnapLen, true, 0)
	_, gerr := pcapfilter.Compile(expr, pcapfilter.Options{LinkType: link})
	if (werr == nil) != (gerr == nil) {
		t.Errorf("%v: %q: libpcap says %v, pcapfilter says %v", link, expr, errString(werr), errString(gerr))
	}
	return werr == nil
}

// TestInetQualifiedMatrix compiles every combination of protocol,
// direction, type and id on every link type, as libpcap would, and
// compares the verdicts of those that compile.
func TestInetQualifiedMatrix(t *testing.T) {
	dtLibpcapOrSkip(t)
	var accepted []string
	total := 0
	start := time.Now()
	for _, p := range inetProtos {
		for _, d := range inetDirs {
			for _, ty := range inetTypes {
				for _, id := range append(inetNames[ty], inetIDs...) {
					expr := strings.Join(strings.Fields(strings.Join([]string{p, d, ty, id}, " ")), " ")
					ok := false
					for _, link := range dtLinkTypes {
						total++
						if inetAccepts(t, expr, link) {
							ok = true
						}
					}
					if ok {
						accepted = append(accepted, expr)
					}
				}
			}
		}
	}
	t.Logf("acceptance: %d compilations compared in %v", total, time.Since(start))
	n := 0
	for _, expr := range accepted {
		for _, link := range dtLinkTypes {
			n += compareWithLibpcap(t, expr, link)
		}
	}
	t.Logf("%d compilations compared for acceptance (%d expressions accepted); %d verdicts compared", total, len(accepted), n)
}

// inetVerdictExprs are expressions of the IP family whose verdicts are
// compared on every link type: every keyword alone, and the primitives
// with each direction and id kind, in combinations.
var inetVerdictExprs = []string{
	// Keywords alone.
	"ip", "ip6", "arp", "rarp", "tcp", "udp", "sctp", "icmp", "icmp6", "igmp", "igrp",
	"pim", "vrrp", "carp", "ah", "esp", "tcp or udp", "not tcp", "icmp or icmp6",
	// Hosts.
	"host 10.0.0.1", "src host 10.0.0.1", "dst host 10.0.0.1", "src or dst host 10.0.0.1",
	"src and dst host 10.0.0.1", "ip host 10.0.0.1", "ip src 10.0.0.1", "ip dst 8.8.8.8",
	"arp host 10.0.0.1", "rarp host 10.0.0.1", "arp src host 10.0.0.1", "rarp dst 10.0.0.1",
	"host 167772161", "host 10.1", "ip host 127.0.0.1", "host localhost", "ip host localhost",
	"src localhost", "arp host localhost", "10.0.0.1", "host 10.0.0.1 or 8.8.8.8",
	"ip host 10.0.0.1 and not ip host 8.8.8.8", "host 255.255.255.255", "host 0",
	// IPv6 hosts.
	"host ::1", "ip6 host ::1", "src host 2001:db8::1", "dst host ff02::1", "ip6 src or dst ::1",
	"ip6 src and dst host ::1", "host ::ffff:10.0.0.1", "ip6 host ::ffff:10.0.0.1",
	"host 2001:db8::1/128", "host fe80::1 or ::1",
	// Networks.
	"net 10", "net 10.0.0.0/8", "net 10.1", "net 10.1.2", "net 10.0.0.0 mask 255.0.0.0",
	"src net 192.168.0.0/16", "dst net 224.0.0.0/4", "ip net 127", "arp net 10.0.0.0/24",
	"rarp src net 10", "net 0.0.0.0/0", "net 167772161", "net 0", "net 0x0a01",
	"ip6 net fe80::/10", "net 2001:db8::/32", "src net ff00::/8", "ip6 net ::/0",
	"src and dst net 10.0.0.0/8", "net loopback", "ip net 10.0.0.0 mask 255.255.0.0",
	// Ports.
	"port 80", "tcp port 80", "udp port 53", "sctp port 80", "src port 22", "dst port 443",
	"tcp src port 22", "udp dst port 53", "src or dst port 123", "src and dst port 53",
	"tcp src and dst port 80", "port http", "tcp port http", "port domain", "udp port domain",
	"sctp port domain", "port ntp", "port 0", "port 65535", "port 0x50", "tcp port 21 or 22",
	"port 80 or 443 or 8080", "not port 22", "tcp port 80 and ip", "tcp port 80 and ip6",
	// Port ranges.
	"portrange 20-21", "tcp portrange 80-90", "udp src portrange 90-80", "portrange 20-20",
	"portrange 80", "tcp dst portrange 1-1023", "src and dst portrange 1024-65535",
	"portrange ftp-ssh", "tcp portrange ftp-ssh", "portrange ftp-domain", "portrange http-70000",
	"tcp portrange 20-21.5", "portrange 2-1-3", "sctp portrange 0-65535",
	// Protocols.
	"proto 6", "ip proto 6", "ip6 proto 6", "proto \\tcp", "ip proto \\udp", "ip6 proto \\ipv6-icmp",
	"ip proto 300", "ip6 proto 44", "proto 17 or proto 6", "ip proto 1", "ip6 proto 58",
	// Protochain.
	"protochain 6", "ip protochain 6", "ip6 protochain 6", "ip6 protochain 17", "protochain \\udp",
	"ip6 protochain 44", "ip6 protochain 0", "protochain 51", "protochain 59", "ip protochain 51",
	"ip6 protochain 6 or ip6 protochain 17", "protochain 6 and port 80",
	// Broadcast and multicast.
	"ip broadcast", "ip multicast", "ip6 multicast", "ip multicast or ip6 multicast",
	"ip broadcast and udp",
	// Mixtures.
	"tcp and (host 10.0.0.1 or host ::1) and port 80", "(tcp or udp) and (port 53 or port 80)",
	"ip and not (net 10 or net 192.168.0.0/16)", "icmp or (tcp and dst port 22)",
	"host 10.0.0.1 and (src port 80 or dst port 80)",
	// After the link-layer primitives that move the network layer.
	"vlan and host 10.0.0.1", "vlan and tcp port 80", "vlan and ip6 protochain 6",
	"vlan 100 and portrange 1-1024", "mpls and host 10.0.0.1", "mpls and net 10",
	"mpls and tcp port 80", "mpls and ip6 host ::1", "mpls and proto 17",
	"pppoes and host 10.0.0.1", "pppoes and port 53", "pppoes and ip6 net fe80::/10",
	"geneve and host 10.0.0.1", "geneve and port 80", "geneve and ip6 src host ::1",
	"geneve and tcp", "geneve and ip broadcast", "geneve and ip multicast",
	"vlan and protochain 6", "pppoes and protochain 17",
	// Contradictions libpcap's optimiser finds (it rejects the expression),
	// and near ones it does not.
	"tcp and udp", "ip and ip6", "ip and not ip", "tcp and not tcp", "port 80 and not port 80",
	"tcp port 80 and udp port 80", "(ip or ip6) and arp", "ip and (arp or ip6)",
	"host 10.0.0.1 and ip6", "ip and ip6 host ::1", "not ip and not ip6 and tcp",
	"(tcp or udp) and icmp", "tcp and host 10.0.0.1 and port 80", "ip broadcast and ip6",
	"mpls and ip and mpls", "ipx and not ipx", "vlan and ip and vlan",
	"icmp and port 80 or host 10.0.0.1 or ether[12:2] = 0x800 and port 80",
	"ip multicast and not ip multicast", "ether broadcast and not ether broadcast",
	// Unoptimised in libpcap: protochain turns its optimiser off.
	"ip6 protochain 6 and ip6", "ip protochain 6 and arp", "protochain 6 and host ::1",
}

// TestInetVerdicts compares the verdicts of inetVerdictExprs with
// libpcap's on every link type.
func TestInetVerdicts(t *testing.T) {
	dtLibpcapOrSkip(t)
	n := 0
	for _, expr := range inetVerdictExprs {
		for _, link := range dtLinkTypes {
			t.Run(link.String()+"/"+expr, func(t *testing.T) {
				n += compareWithLibpcap(t, expr, link)
			})
		}
	}
	t.Logf("%d verdicts compared", n)
}

// TestInetErrors checks that pcapfilter rejects what libpcap rejects in
// this domain, on every link type, and that the message says what is
// wrong.
func TestInetErrors(t *testing.T) {
	dtLibpcapOrSkip(t)
	for _, tc := range []struct{ expr, want string }{
		{"ip port 80", "illegal qualifier of 'port'"},
		{"icmp portrange 1-2", "illegal qualifier of 'portrange'"},
		{"tcp host 10.0.0.1", "'tcp' modifier applied to host"},
		{"udp net 10", "'udp' modifier applied to net"},
		{"ip6 host 10.0.0.1", "'ip6' modifier applied to ip host"},
		{"ip host ::1", "'ip' modifier applied to ip6 host"},
		{"arp net fe80::/10", "'arp' modifier applied to ip6 net"},
		{"net 10.1.2.3/8", "non-network bits set in \"10.1.2.3/8\""},
		{"net 10.1.2.3 mask 255.0.0.0", "non-network bits set in \"10.1.2.3 mask 255.0.0.0\""},
		{"net fe80::1/10", "non-network bits set in \"fe80::1/10\""},
		{"host 10.0.0.0/8", "networks only"},
		{"host fe80::/10", "networks only"},
		{"port ::1", "invalid qualifier against IPv6 address"},
		{"port 10.0.0.1", "'port' modifier applied to IP address"},
		{"proto 10.1", "'proto' modifier applied to IP address"},
		{"port 65536", "illegal port number 65536 > 65535"},
		{"portrange 1-70000", "illegal port number 70000 > 65535"},
		{"tcp portrange 20--21", "illegal port number -21 < 0"},
		{"udp port http", "port 'http' is tcp"},
		{"udp portrange ftp-ssh", "port in range 'ftp-ssh' is tcp"},
		{"port nosuchservice", "unknown port 'nosuchservice'"},
		{"host no..such-host", "unknown host 'no..such-host'"}, // no DNS query for an invalid name
		{"ip6 host localhost", "unknown host 'localhost' for specified address family"},
		{"net no-such-net", "unknown network 'no-such-net'"},
		{"proto \\nosuchproto", "unknown ip proto 'nosuchproto'"},
		{"tcp proto 6", "'tcp proto' is bogus"},
		{"arp proto 6", "arp does not encapsulate another protocol"},
		{"tcp protochain 6", "bad protocol applied for 'protochain'"},
		{"gateway localhost", "'gateway' is not supported"},
		{"gateway 10.0.0.1", "'gateway' requires a name"},
		{"ether", "link-layer protocol keyword alone"},
		{"host 01:02:03:04:05:06", "ethernet address used in non-ether expression"},
		{"ether host 10.0.0.1", "illegal link layer address"},
		{"tcp broadcast", "only link-layer/IP broadcast filters supported"},
		{"ip6 broadcast", "only link-layer/IP broadcast filters supported"},
		{"tcp multicast", "multicast filters apply to the link layer, ip and ip6"},
		{"addr1 host 10.0.0.1", "'addr1' is not a valid qualifier for addresses"},
		{"ta port 80", "'ta' is not a valid qualifier for ports"},
	} {
		for _, link := range dtLinkTypes {
			_, werr := libpcap.Compile(tc.expr, int(link), dtSnapLen, true, 0)
			if werr == nil {
				t.Errorf("%v: %q: libpcap compiles it; the test expects an error", link, tc.expr)
				continue
			}
			_, err := pcapfilter.Compile(tc.expr, pcapfilter.Options{LinkType: link})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v: %q: got %v, want an error with %q (libpcap: %v)", link, tc.expr, err, tc.want, werr)
			}
		}
	}
}

// TestInetNetmask checks "ip broadcast" with the netmasks of
// Options.Netmask: 0 is libpcap's netmask 0 (0.0.0.0 or 255.255.255.255),
// 0xffffffff its "unknown" one, which it rejects.
func TestInetNetmask(t *testing.T) {
	dtLibpcapOrSkip(t)
	n := 0
	for _, mask := range []uint32{0, 0xffffff00, 0xffff0000, 0xfffffffe, 0x80000000, 0xffffffff} {
		for _, link := range dtLinkTypes {
			for _, expr := range []string{"ip broadcast", "ip broadcast or ip multicast", "not ip broadcast"} {
				want, werr := libpcap.Compile(expr, int(link), dtSnapLen, true, mask)
				got, gerr := pcapfilter.Compile(expr, pcapfilter.Options{LinkType: link, Netmask: mask})
				if (werr == nil) != (gerr == nil) {
					t.Errorf("%v: %q netmask %#x: libpcap says %v, pcapfilter says %v", link, expr, mask, errString(werr), errString(gerr))
					continue
				}
				if gerr != nil {
					continue
				}
				m := loadProgram(t, got, link)
				for _, p := range packetsFor(t, link) {
					w := libpcap.Filter(want, p.data, uint32(len(p.data)), uint32(p.wire)) != 0
					g, err := m.MatchFrame(p.data, p.wire)
					if err != nil {
						t.Fatalf("%v: %v", p, err)
					}
					n++
					if g != w {
						t.Errorf("%v: %q netmask %#x on %v: pcapfilter says %v, libpcap %v\n%s", link, expr, mask, p, g, w, dtListing(got))
						break
					}
				}
			}
		}
	}
	t.Logf("%d verdicts compared", n)
}

// inetCorpusExprs returns the expressions of a corpus filter list, or
// skips the test when the corpus is absent.
func inetCorpusExprs(t *testing.T, name string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(dtCorpusDir, "filters", name))
	if err != nil {
		t.Skipf("the shared corpus's filter list %s is absent (%v): skipping", name, err)
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	return out
}

// inetDomain reports whether every primitive of n is one gen_inet.go
// generates on its own: IP-family keywords and qualified primitives, and
// ip and ip6 broadcast and multicast.
func inetDomain(n pcapfilter.Node) bool {
	switch n := n.(type) {
	case *pcapfilter.Binary:
		return inetDomain(n.X) && inetDomain(n.Y)
	case *pcapfilter.Not:
		return inetDomain(n.X)
	case *pcapfilter.ProtoAbbrev:
		return n.Proto >= pcapfilter.ProtoIP && n.Proto <= pcapfilter.ProtoESP
	case *pcapfilter.Qualified:
		p := n.Q.Proto
		return (p == pcapfilter.ProtoDefault || p >= pcapfilter.ProtoIP && p <= pcapfilter.ProtoESP) &&
			n.ID.Kind != pcapfilter.IDMAC
	case *pcapfilter.Special:
		return (n.Kind == pcapfilter.SpecialBroadcast || n.Kind == pcapfilter.SpecialMulticast) &&
			(n.Proto == pcapfilter.ProtoIP || n.Proto == pcapfilter.ProtoIP6)
	}
	return false
}

// TestInetCorpus compares the corpus's expressions of this domain with
// libpcap: each list on the link types it was written for (the realworld
// list on every one).
func TestInetCorpus(t *testing.T) {
	dtLibpcapOrSkip(t)
	ether := []pcapfilter.LinkType{pcapfilter.LinkEthernet}
	for _, tc := range []struct {
		file  string
		links []pcapfilter.LinkType
	}{
		{"libpcap-ethernet.txt", ether},
		{"libpcap-invalid-ethernet.txt", ether},
		{"libpcap-raw.txt", []pcapfilter.LinkType{pcapfilter.LinkRaw, pcapfilter.LinkIPv4, pcapfilter.LinkIPv6}},
		{"realworld.txt", dtLinkTypes},
	} {
		t.Run(tc.file, func(t *testing.T) {
			exprs := inetCorpusExprs(t, tc.file)
			mine, n := 0, 0
			for _, expr := range exprs {
				root, err := pcapfilter.Parse(expr)
				if err != nil || !inetDomain(root) {
					continue
				}
				mine++
				for _, link := range tc.links {
					n += compareWithLibpcap(t, expr, link)
				}
			}
			if mine == 0 {
				t.Errorf("%s: no expression of this domain", tc.file)
			}
			t.Logf("%s: %d of %d expressions are of this domain; %d verdicts compared", tc.file, mine, len(exprs), n)
		})
	}
}

// rejectsAllPool are primitives of every part of the language, for
// TestInetRejectsAll's random expressions: several test the same fields,
// so that combinations contradict each other.
var rejectsAllPool = []string{
	"ip", "ip6", "arp", "rarp", "tcp", "udp", "icmp", "icmp6", "sctp", "igmp",
	"host 10.0.0.1", "src host 10.0.0.1", "dst host 8.8.8.8", "net 10.0.0.0/8", "arp host 10.0.0.1",
	"host ::1", "ip6 net fe80::/10", "port 80", "tcp port 80", "udp port 53", "src port 80",
	"portrange 1-100", "tcp dst portrange 80-90", "ip proto 6", "ip6 proto 17", "proto 1",
	"ip broadcast", "ip multicast", "ip6 multicast", "protochain 6",
	"vlan", "vlan 100", "mpls", "pppoes", "ether host 1:2:3:4:5:6", "ether src 1:2:3:4:5:6",
	"ether broadcast", "ether multicast", "ether proto 0x800", "ether proto 0x86dd", "llc", "ipx", "stp", "iso",
	"len > 100", "greater 64", "ip[0] & 0xf0 = 0x40", "ip[9] = 6", "tcp[13] & 2 != 0",
	"ether[12:2] = 0x800", "udp[0:2] = 53", "ip[0] = 1", "ip[0] = 2",
	"decnet host 1.2", "atalk", "aarp", "netbeui", "l1", "isis", "clnp", "esis", "llc i", "llc u",
	"pppoed", "mpls 100", "vlan and vlan", "inbound", "ether dst 1:2:3:4:5:6", "ip6 protochain 17",
	"geneve", "less 100", "ip6 broadcast", "src net 192.168.0.0/16", "ip host 127.0.0.1",
}

// TestInetRejectsAll compiles random and/or/not mixes of primitives that
// often contradict each other on every link type. pcapfilter must never
// find that an expression rejects all packets when libpcap compiles it;
// where libpcap finds so and pcapfilter compiles it (libpcap's optimiser
// proves more than acceptReachable), pcapfilter's program must match no
// test packet.
func TestInetRejectsAll(t *testing.T) {
	dtLibpcapOrSkip(t)
	r := rand.New(rand.NewPCG(11, 17))
	term := func() string {
		s := rejectsAllPool[r.IntN(len(rejectsAllPool))]
		if r.IntN(4) == 0 {
			s = "not " + s
		}
		return s
	}
	var both, missed int
	for i := 0; i < 3000; i++ {
		expr := term()
		for j := r.IntN(4); j >= 0; j-- {
			op := " and "
			if r.IntN(3) == 0 {
				op = " or "
			}
			if r.IntN(3) == 0 {
				expr = "(" + expr + ")"
			}
			expr += op + term()
		}
		for _, link := range dtLinkTypes {
			_, werr := libpcap.Compile(expr, int(link), dtSnapLen, true, 0)
			got, gerr := pcapfilter.Compile(expr, pcapfilter.Options{LinkType: link})
			wAll := werr != nil && strings.Contains(werr.Error(), "rejects all packets")
			gAll := gerr != nil && strings.Contains(gerr.Error(), "rejects all packets")
			switch {
			case wAll && gAll:
				both++
			case gAll && werr == nil:
				t.Errorf("%v: %q: pcapfilter says %v, libpcap compiles it", link, expr, gerr)
			case wAll && gerr == nil:
				missed++
				m := loadProgram(t, got, link)
				for _, p := range packetsFor(t, link) {
					if ok, _ := m.MatchFrame(p.data, p.wire); ok {
						t.Errorf("%v: %q: libpcap finds it rejects all packets, pcapfilter's program matches %v\n%s", link, expr, p, dtListing(got))
						break
					}
				}
			case (werr == nil) != (gerr == nil):
				t.Errorf("%v: %q: libpcap says %v, pcapfilter says %v", link, expr, errString(werr), errString(gerr))
			}
		}
	}
	t.Logf("rejects all packets: both say so %d times; libpcap alone %d times (pcapfilter's program then matched no test packet)", both, missed)
}

// inetCraftedIP are network-layer packets the corpus lacks: IPv4 options
// and fragments, AH headers, chains of IPv6 extension headers, IPv4-mapped
// IPv6 addresses, ARP and RARP.
func inetCraftedIP() []testPacket {
	v4 := func(ihl int, frag uint16, proto byte, payload []byte) []byte {
		h := make([]byte, ihl*4)
		h[0] = 0x40 | byte(ihl)
		total := len(h) + len(payload)
		h[2], h[3] = byte(total>>8), byte(total)
		h[6], h[7] = byte(frag>>8), byte(frag)
		h[8], h[9] = 64, proto
		copy(h[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
		for i := 20; i < len(h); i++ {
			h[i] = 1 // NOP options
		}
		return append(h, payload...)
	}
	v6 := func(src byte, next byte, payload []byte) []byte {
		h := make([]byte, 40)
		h[0] = 0x60
		h[4], h[5] = byte(len(payload)>>8), byte(len(payload))
		h[6], h[7] = next, 64
		copy(h[8:], []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, src}) // ::ffff:10.0.0.src
		h[39] = 1                                                                    // ::1
		return append(h, payload...)
	}
	tcp := []byte{0x04, 0x00, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x12, 0xff, 0xff, 0, 0, 0, 0}
	udp := []byte{0x14, 0xe9, 0x00, 0x35, 0, 12, 0, 0, 0, 0, 0, 0}
	// ext is an IPv6 extension header of 8 bytes; ah an AH header of 12.
	ext := func(next byte, payload []byte) []byte { return append([]byte{next, 0, 1, 4, 0, 0, 0, 0}, payload...) }
	ah := func(next byte, payload []byte) []byte {
		return append([]byte{next, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}, payload...)
	}
	arp := func(op byte) []byte {
		return []byte{0, 1, 8, 0, 6, 4, 0, op, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2}
	}
	ip := func(name string, data []byte) testPacket { return testPacket{name: name, data: data, wire: len(data)} }
	return []testPacket{
		ip("ipv4 tcp", v4(5, 0, 6, tcp)),
		ip("ipv4 tcp with options", v4(7, 0, 6, tcp)),
		ip("ipv4 tcp first fragment", v4(5, 0x2000, 6, tcp)),
		ip("ipv4 tcp later fragment", v4(5, 0x2010, 6, tcp)),
		ip("ipv4 udp", v4(5, 0, 17, udp)),
		ip("ipv4 ah tcp", v4(5, 0, 51, ah(6, tcp))),
		ip("ipv4 ah udp", v4(6, 0, 51, ah(17, udp))),
		ip("ipv6 tcp", v6(1, 6, tcp)),
		ip("ipv6 udp", v6(2, 17, udp)),
		ip("ipv6 hop dst routing fragment tcp", v6(1, 0, ext(60, ext(43, ext(44, ext(6, tcp)))))),
		ip("ipv6 fragment udp", v6(2, 44, ext(17, udp))),
		ip("ipv6 ah tcp", v6(1, 51, ah(6, tcp))),
		ip("ipv6 hop ah udp", v6(2, 0, ext(51, ah(17, udp)))),
		ip("ipv6 no next header", v6(1, 59, nil)),
		ip("ipv6 dst options no next", v6(1, 60, ext(59, nil))),
		ip("arp request", arp(1)),
		ip("rarp reply", arp(4)),
	}
}

// inetCraftedPackets frames inetCraftedIP's packets for link.
func inetCraftedPackets(link pcapfilter.LinkType) []testPacket {
	var out []testPacket
	for _, p := range inetCraftedIP() {
		et := uint16(0x800)
		switch {
		case strings.HasPrefix(p.name, "ipv6"):
			et = 0x86dd
		case strings.HasPrefix(p.name, "arp"):
			et = 0x806
		case strings.HasPrefix(p.name, "rarp"):
			et = 0x8035
		}
		switch link {
		case pcapfilter.LinkEthernet:
			out = append(out, reframe(p, []byte{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, byte(et >> 8), byte(et)}))
		case pcapfilter.LinkLinuxSLL:
			out = append(out, reframe(p, sllHeader(et)))
		case pcapfilter.LinkLinuxSLL2:
			out = append(out, reframe(p, sll2Header(et)))
		case pcapfilter.LinkRaw:
			if et == 0x800 || et == 0x86dd {
				out = append(out, p)
			}
		case pcapfilter.LinkIPv4:
			if et == 0x800 {
				out = append(out, p)
			}
		case pcapfilter.LinkIPv6:
			if et == 0x86dd {
				out = append(out, p)
			}
		}
	}
	return out
}

// TestInetCraftedPackets compares the primitives with libpcap on every
// prefix of packets with IPv4 options, fragments, AH, chains of IPv6
// extension headers, ARP and RARP: the order of guards and loads decides
// the verdicts on the prefixes.
func TestInetCraftedPackets(t *testing.T) {
	dtLibpcapOrSkip(t)
	exprs := []string{
		"protochain 6", "ip protochain 6", "ip6 protochain 6", "ip6 protochain 17", "protochain 51",
		"ip6 protochain 44", "ip6 protochain 0", "ip6 protochain 60", "protochain 59", "ip protochain 17",
		"tcp port 80", "port 80", "udp port 53", "src port 1024", "portrange 50-90", "tcp dst portrange 80-80",
		"tcp", "udp", "ah", "ip6 proto 6", "proto 17", "ip proto 51",
		"host 10.0.0.1", "dst host 10.0.0.2", "src and dst net 10.0.0.0/8", "arp host 10.0.0.1",
		"rarp dst host 10.0.0.2", "arp src 10.0.0.1", "ip6 host ::ffff:10.0.0.1", "ip6 src net ::ffff:0:0/96",
		"ip6 dst host ::1", "host ::1 or host 10.0.0.2", "ip multicast or ip6 multicast or ip broadcast",
		"ip6 protochain 6 and tcp port 80", "not protochain 17 and port 53",
	}
	n := 0
	for _, link := range dtLinkTypes {
		pkts := inetCraftedPackets(link)
		if len(pkts) == 0 {
			t.Fatalf("%v: no crafted packets", link)
		}
		for _, expr := range exprs {
			n += compareOn(t, expr, link, pkts, true)
		}
	}
	t.Logf("%d verdicts compared", n)
}

// TestInetRejectsAllCorpusMix joins random expressions of the corpus
// that compile with and, "and not" and or, on random link types, and
// compares acceptance with libpcap: pcapfilter must not find that a mix
// rejects all packets when libpcap compiles it, nor differ otherwise
// (where libpcap alone finds it, pcapfilter's program rejecting every
// packet is checked by the other tests).
func TestInetRejectsAllCorpusMix(t *testing.T) {
	dtLibpcapOrSkip(t)
	var pool []string
	for _, f := range []string{"libpcap-ethernet.txt", "libpcap-raw.txt", "realworld.txt"} {
		for _, e := range inetCorpusExprs(t, f) {
			if _, err := pcapfilter.Compile(e, pcapfilter.Options{}); err == nil {
				pool = append(pool, e)
			}
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	const mixes = 5000
	var both, libpcapOnly int
	for i := 0; i < mixes; i++ {
		expr := "(" + pool[r.IntN(len(pool))] + ")"
		for j := r.IntN(3); j >= 0; j-- {
			expr += []string{" and ", " and not ", " or "}[r.IntN(3)] + "(" + pool[r.IntN(len(pool))] + ")"
		}
		link := dtLinkTypes[r.IntN(len(dtLinkTypes))]
		_, werr := libpcap.Compile(expr, int(link), dtSnapLen, true, 0)
		_, gerr := pcapfilter.Compile(expr, pcapfilter.Options{LinkType: link})
		wAll := werr != nil && strings.Contains(werr.Error(), "rejects all packets")
		gAll := gerr != nil && strings.Contains(gerr.Error(), "rejects all packets")
		switch {
		case wAll && gAll:
			both++
		case wAll && gerr == nil:
			libpcapOnly++
		case (werr == nil) != (gerr == nil):
			t.Errorf("%v: %q: libpcap says %v, pcapfilter says %v", link, expr, errString(werr), errString(gerr))
		}
	}
	t.Logf("%d expressions from %d of the corpus: both find %d reject all packets, libpcap alone %d", mixes, len(pool), both, libpcapOnly)
}
