package pcapfilter_test

import (
	"fmt"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/headlessbpf/bpfmatch/internal/libpcap"
	"github.com/headlessbpf/bpfmatch/pcapfilter"
)

// TestOptimiserKeepsVerdicts proves the optimiser exact: on every corpus
// expression of each link type, the optimised program returns what the
// program as generated returns, aborts included, on every corpus packet
// (whole and cut), on fake packets and on every prefix of some of them,
// and never executes more instructions.
func TestOptimiserKeepsVerdicts(t *testing.T) {
	dtCorpusOrSkip(t)
	prefixEvery := 8
	if testing.Short() || dtRaceEnabled {
		prefixEvery = 64
	}
	var progs, runs, shorter, fewer int
	var before, after int
	fails := 0
	for _, link := range dtLinkTypes {
		pkts := dtPacketsFor(t, link, 100).packets
		for _, e := range dtCorpusFilters(t, dtListsFor(link)...) {
			opts := pcapfilter.Options{LinkType: link, SnapLen: dtSnapLen, Netmask: dtNetmask}
			opt, err := pcapfilter.Compile(e.expr, opts)
			unopt, uerr := pcapfilter.CompileUnoptimised(e.expr, opts)
			if (err == nil) != (uerr == nil) {
				t.Errorf("%q for %v (%s): optimised: %v, unoptimised: %v", e.expr, link, e.where(), err, uerr)
				continue
			}
			if err != nil {
				continue
			}
			progs++
			before += len(unopt)
			after += len(opt)
			if len(opt) < len(unopt) {
				shorter++
			}
			if len(opt) > len(unopt) {
				t.Errorf("%q for %v: the optimised program is longer (%d) than the unoptimised one (%d)\n%s", e.expr, link, len(opt), len(unopt), dtListing(opt))
			}
			check := func(pk dtPacket, caplen int) bool {
				runs++
				r1, n1, ok1 := dtCountRun(opt, pk.data, uint32(caplen), pk.wire, dtLoopBudget)
				r0, n0, ok0 := dtCountRun(unopt, pk.data, uint32(caplen), pk.wire, dtLoopBudget)
				if n1 < n0 {
					fewer++
				}
				if r1 == r0 && ok1 == ok0 && n1 <= n0 {
					return true
				}
				fails++
				if fails <= dtMaxReports {
					t.Errorf("%q for %v (%s) on %v with %d bytes captured: optimised returns %d after %d instructions, unoptimised %d after %d\noptimised:\n%s\nunoptimised:\n%s",
						e.expr, link, e.where(), pk, caplen, r1, n1, r0, n0, dtListing(opt), dtListing(unopt))
				}
				return false
			}
			for i, pk := range pkts {
				if !check(pk, len(pk.data)) {
					break
				}
				if i%prefixEvery == 0 {
					for cut := range min(len(pk.data), 160) {
						if !check(pk, cut) {
							break
						}
					}
				}
			}
		}
	}
	if progs == 0 {
		t.Fatal("no corpus expression compiled")
	}
	t.Logf("optimiser: %d programs, %d shorter, %d instructions before, %d after; %d runs, %d execute fewer instructions, %d differ",
		progs, shorter, before, after, runs, fewer, fails)
}

// optLoads counts the instructions of prog with opcode op and constant k.
func optLoads(prog []bpf.RawInstruction, op uint16, k uint32) int {
	n := 0
	for _, in := range prog {
		if in.Op == op && in.K == k {
			n++
		}
	}
	return n
}

// TestOptimiserCases checks what the optimiser removes from programs
// where the generator repeats itself, that the programs are no longer
// than libpcap's optimised ones, and that they give libpcap's verdicts on
// fake packets and all their prefixes.
func TestOptimiserCases(t *testing.T) {
	type count struct {
		op  uint16
		k   uint32
		max int
	}
	const (
		ldh  = 0x28
		ld   = 0x20
		ldb  = 0x30
		ldxb = 0xb1
		jeq  = 0x15
	)
	cases := []struct {
		name, expr string
		link       pcapfilter.LinkType
		counts     []count // at most max instructions op k
		longer     bool    // longer than libpcap's program, which reorders the tests
	}{
		{"ethertype loaded once", "tcp dst port 21", pcapfilter.LinkEthernet, []count{{ldh, 12, 1}, {jeq, 0x800, 1}}, false},
		{"threaded past IPv6 and ARP", "host 10.0.0.1 and port 80", pcapfilter.LinkEthernet,
			[]count{{ldh, 12, 1}, {ld, 28, 0}, {ld, 38, 0}, {ldb, 20, 0}, {ldxb, 14, 1}, {ldh, 20, 1}}, false},
		{"header length kept in X", "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420", pcapfilter.LinkEthernet, []count{{ldh, 12, 1}}, false},
		{"protocol chains merged", "udp and port 53", pcapfilter.LinkEthernet, []count{{ldh, 12, 1}}, false},
		{"same test twice", "ip and ip", pcapfilter.LinkEthernet, []count{{ldh, 12, 1}, {jeq, 0x800, 1}}, false},
		{"negations", "not tcp and not udp", pcapfilter.LinkEthernet, []count{{ldh, 12, 2}}, false},
		{"SLL protocol", "tcp port 22 or udp port 53", pcapfilter.LinkLinuxSLL, []count{{ldh, 14, 1}}, false},
		{"raw IP", "ip6 and tcp port 443", pcapfilter.LinkRaw, []count{{ldb, 0, 1}}, false},
		{"vlan", "vlan and host 10.0.0.1", pcapfilter.LinkEthernet, nil, false},
		{"relations", "ip[2:2] > 100 and ip[2:2] > 50", pcapfilter.LinkEthernet, []count{{ldh, 16, 1}}, false},
		{"or of hosts", "host 10.0.0.1 or host 10.0.0.2 or host 10.0.0.3", pcapfilter.LinkEthernet, []count{{ldh, 12, 2}}, true},
		{"icmp types", "icmp[icmptype] = icmp-echo or icmp[icmptype] = icmp-echoreply", pcapfilter.LinkEthernet, []count{{ldh, 12, 1}}, false},
	}
	dtLibpcapOrSkip(t)
	pkts := fakePackets()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := pcapfilter.Options{LinkType: c.link}
			got, err := pcapfilter.Compile(c.expr, opts)
			if err != nil {
				t.Fatalf("%q: %v", c.expr, err)
			}
			unopt, err := pcapfilter.CompileUnoptimised(c.expr, opts)
			if err != nil {
				t.Fatalf("%q unoptimised: %v", c.expr, err)
			}
			lib, err := libpcap.Compile(c.expr, int(c.link), pcapfilter.DefaultSnapLen, true, 0)
			if err != nil {
				t.Fatalf("%q: libpcap: %v", c.expr, err)
			}
			show := fmt.Sprintf("%q for %v: optimised:\n%sunoptimised:\n%slibpcap's:\n%s", c.expr, c.link, dtListing(got), dtListing(unopt), dtListing(lib))
			if len(got) >= len(unopt) {
				t.Errorf("not shorter than the unoptimised program: %s", show)
			}
			if len(got) > len(lib) && !c.longer {
				t.Errorf("longer than libpcap's: %s", show)
			}
			for _, n := range c.counts {
				if m := optLoads(got, n.op, n.k); m > n.max {
					t.Errorf("%d instructions 0x%02x #0x%x, want at most %d: %s", m, n.op, n.k, n.max, show)
				}
			}
			if c.link == pcapfilter.LinkEthernet {
				if n := compareOn(t, c.expr, c.link, pkts, true); n == 0 {
					t.Errorf("%q: no packet compared", c.expr)
				}
			}
		})
	}
}
