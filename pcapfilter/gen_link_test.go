package pcapfilter_test

// Tests of the link layer's part of the code generator (gen_link.go):
// protocol fields, vlan, mpls, pppoed/pppoes, geneve, Ethernet addresses,
// broadcast and multicast, inbound/outbound/ifindex, compared with
// libpcap on every supported link type.

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
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

// TestLinkLayer compares pcapfilter with libpcap on the link layer's
// expressions, for every supported link type.
func TestLinkLayer(t *testing.T) {
	libpcapOrSkip(t)
	n, accepted := 0, 0
	for _, link := range allLinks {
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
	for _, link := range allLinks {
		for _, expr := range linkExprsUninit {
			_, werr := libpcap.Compile(expr, int(link), snapLen, true, 0)
			_, gerr := pcapfilter.Compile(expr, pcapfilter.Options{LinkType: link})
			if (werr == nil) != (gerr == nil) {
				t.Errorf("%v: %q: libpcap says %v, pcapfilter says %v", link, expr, errString(werr), errString(gerr))
			}
		}
	}
	t.Logf("%d expressions x %d link types (%d compiled), %d verdicts compared with libpcap", len(linkExprs), len(allLinks), accepted, n)
}

// linkWords are the words that make an expression of the corpus one of
// the link layer's.
var linkWords = regexp.MustCompile(`\b(vlan|mpls|pppoed|pppoes|geneve|ether|link|broadcast|multicast|inbound|outbound|ifindex)\b`)

// corpusFilters returns the expressions of a filter list of the corpus
// that use the link layer's words, or skips.
func corpusFilters(t *testing.T, name string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(corpusDir, "filters", name))
	if err != nil {
		t.Skipf("the shared corpus is not at %s: skipping (%v)", corpusDir, err)
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
	libpcapOrSkip(t)
	n, exprs := 0, 0
	for _, file := range []string{"libpcap-ethernet.txt", "libpcap-raw.txt", "realworld.txt", "libpcap-invalid-ethernet.txt"} {
		list := corpusFilters(t, file)
		if len(list) == 0 {
			t.Errorf("%s: no expression of the link layer's", file)
		}
		exprs += len(list)
		for _, link := range allLinks {
			for _, expr := range list {
				n += compareWithLibpcap(t, expr, link)
			}
		}
	}
	t.Logf("%d corpus expressions x %d link types, %d verdicts compared with libpcap", exprs, len(allLinks), n)
}

// TestLinkProgramSize checks that what the link layer's primitives
// compile to stays within a small margin of libpcap's unoptimised
// program, and that long chains of them compile, or fail, in bounded
// size.
func TestLinkProgramSize(t *testing.T) {
	libpcapOrSkip(t)
	for _, link := range allLinks {
		for _, expr := range linkExprs {
			got, err := pcapfilter.Compile(expr, pcapfilter.Options{LinkType: link})
			if err != nil {
				continue
			}
			want, err := libpcap.Compile(expr, int(link), snapLen, false, 0)
			if err != nil {
				continue // compareWithLibpcap reports it
			}
			if limit := len(want) + len(want)/8 + 2; len(got) > limit {
				t.Errorf("%v: %q: %d instructions, libpcap's unoptimised program %d\n%s", link, expr, len(got), len(want), image(got))
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
