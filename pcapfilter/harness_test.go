package pcapfilter_test

import (
	"strings"
	"testing"

	"github.com/headlessbpf/bpfmatch"
	"github.com/headlessbpf/bpfmatch/internal/libpcap"
	"github.com/headlessbpf/bpfmatch/pcapfilter"
)

// TestCompareVerdictsFails proves that the comparison the differential
// tests make can fail: programs of other expressions, put in the Go
// compiler's place, must be caught on the corpus and fake packets.
func TestCompareVerdictsFails(t *testing.T) {
	dtLibpcapOrSkip(t)
	pkts := dtPacketsFor(t, pcapfilter.LinkEthernet, 200).packets
	cases := []struct{ name, expr, impostor string }{
		{"other protocol", "tcp", "udp"},
		{"no guard before a load", "ip[40] = 0", "ether[54] = 0"},                                          // aborts differ on short packets
		{"other order of loads", "ether[60] = 1 or ether[0] & 1 = 0", "ether[0] & 1 = 0 or ether[60] = 1"}, // the same on whole packets
		{"IPv4 only", "tcp port 80", "tcp port 80 and ip"},
		{"equivalent program", "tcp port 80", "tcp port 80 or tcp port 80"}, // must pass
		{"rejects-all rule", "arp and ip", "arp"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lib, err := libpcap.Compile(c.expr, 1, dtSnapLen, true, dtNetmask)
			libErr := err
			unopt, err := libpcap.Compile(c.expr, 1, dtSnapLen, false, dtNetmask)
			if err != nil {
				t.Fatal(err)
			}
			imp, err := libpcap.Compile(c.impostor, 1, dtSnapLen, false, dtNetmask)
			if err != nil {
				t.Fatal(err)
			}
			m, err := bpfmatch.Load(imp, bpfmatch.WithSnapLen(dtSnapLen))
			if err != nil {
				t.Fatal(err)
			}
			p := &dtPair{expr: c.expr, where: c.name, link: pcapfilter.LinkEthernet, lib: lib, libUnopt: unopt, libErr: libErr, goProg: imp, goM: m}
			var s dtVerdictStats
			dtCompareVerdicts(p, pkts, 1, &s)
			wantFail := !strings.HasPrefix(c.name, "equivalent")
			if (s.failures > 0) != wantFail {
				t.Errorf("%q standing in for %q: %d failures in %d comparisons, want failures: %v; first: %v",
					c.impostor, c.expr, s.failures, s.comparisons+s.rejectsAllRun, wantFail, s.failReports)
			}
		})
	}
}
