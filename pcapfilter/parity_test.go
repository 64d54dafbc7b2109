package pcapfilter_test

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/headlessbpf/bpfmatch/pcapfilter"
)

var dtListParity = flag.Bool("parity.list", false,
	"TestAcceptanceParityDifferential prints every expression the compilers disagree on in the form of testdata/known-exceptions.tsv")

// dtKnownExceptionsFile lists the expressions that one compiler accepts and
// the other rejects, each with the reason that is allowed.
var dtKnownExceptionsFile = filepath.Join("testdata", "known-exceptions.tsv")

// dtException is one line of knownExceptionsFile.
type dtException struct {
	link   string // a link type's name, or "*" for every link type
	expr   string
	reason string
	line   int
}

// dtKnownExceptions reads knownExceptionsFile: lines of link type name (or
// *), expression and reason, separated by tabs; # starts a comment line.
func dtKnownExceptions(t testing.TB) map[string]*dtException {
	t.Helper()
	f, err := os.Open(dtKnownExceptionsFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]*dtException{}
	s := bufio.NewScanner(f)
	n := 0
	for s.Scan() {
		n++
		line := s.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, "\t")
		if len(fields) != 3 || fields[0] == "" || fields[1] == "" || strings.TrimSpace(fields[2]) == "" {
			t.Fatalf("%s:%d: want link type, expression and reason separated by tabs, got %q", dtKnownExceptionsFile, n, line)
		}
		e := &dtException{link: fields[0], expr: fields[1], reason: fields[2], line: n}
		key := e.link + "\t" + e.expr
		if out[key] != nil {
			t.Fatalf("%s:%d: %q for %s is listed already on line %d", dtKnownExceptionsFile, n, e.expr, e.link, out[key].line)
		}
		out[key] = e
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// dtLookupException returns the exception of expr for link, or nil.
func dtLookupException(list map[string]*dtException, link pcapfilter.LinkType, expr string) *dtException {
	if e := list[link.String()+"\t"+expr]; e != nil {
		return e
	}
	return list["*\t"+expr]
}

// dtRuleFor returns the rule (the line whose link type and expression are
// both *) that allows the Go compiler to compile what libpcap refused
// with message msg, or nil.
func dtRuleFor(list map[string]*dtException, msg string) *dtException {
	if e := list["*\t*"]; e != nil && e.reason == msg {
		return e
	}
	return nil
}

// TestAcceptanceParityDifferential compiles every expression of the
// corpus lists for every link type with libpcap and with the Go compiler:
// each must accept exactly what the other accepts, but for the known
// exceptions. A known exception of an expression libpcap refuses as
// rejecting all packets must give a program that rejects every corpus and
// fake packet (TestVerdictsDifferential runs it).
func TestAcceptanceParityDifferential(t *testing.T) {
	dtLibpcapOrSkip(t)
	exceptions := dtKnownExceptions(t)
	used := map[*dtException]bool{}
	var total, mismatches, excused, ruled, ruledRuns int
	var panics []string
	for _, link := range dtLinkTypes {
		var both, neither, onlyLib, onlyGo int
		var pkts []dtPacket
		for _, e := range dtCorpusFilters(t, dtListsFor(link)...) {
			total++
			p, err := dtCompilePair(e.expr, e.where(), link)
			if err != nil {
				t.Error(err)
				continue
			}
			if dtIsPanic(p.goErr) {
				panics = append(panics, fmt.Sprintf("%q (%v, %s): %v", e.expr, link, e.where(), p.goErr))
			}
			libOK, goOK := p.libErr == nil, p.goErr == nil
			switch {
			case libOK && goOK:
				both++
				continue
			case !libOK && !goOK:
				neither++
				continue
			case libOK:
				onlyLib++
			default:
				onlyGo++
			}
			if *dtListParity {
				msg := "the Go compiler rejects it: " + fmt.Sprint(p.goErr)
				if !libOK {
					msg = "libpcap: " + p.libErr.Error()
				}
				fmt.Printf("%s\t%s\t%s\n", link, e.expr, msg)
			}
			if x := dtRuleFor(exceptions, fmt.Sprint(p.libErr)); x != nil && !libOK && p.goM != nil {
				// Allowed if the Go program indeed rejects every packet.
				used[x] = true
				ruled++
				if pkts == nil {
					pkts = dtPacketsFor(t, link, 500).packets
				}
				var s dtVerdictStats
				dtCompareVerdicts(p, pkts, 1, &s)
				ruledRuns += s.rejectsAllRun
				s.report(t)
				continue
			}
			if x := dtLookupException(exceptions, link, e.expr); x != nil {
				used[x] = true
				excused++
				continue
			}
			mismatches++
			if mismatches > 30 {
				continue // counted; the first ones say enough
			}
			if libOK {
				t.Errorf("%s: %q for %v: libpcap compiles it, the Go compiler says: %v\nlibpcap's program:\n%s",
					e.where(), e.expr, link, p.goErr, dtListing(p.lib))
			} else {
				t.Errorf("%s: %q for %v: libpcap says %q, the Go compiler compiles it:\n%s",
					e.where(), e.expr, link, p.libErr, dtListing(p.goProg))
			}
		}
		t.Logf("acceptance parity %v: compared %d expressions: both compile %d, both reject %d, only libpcap compiles %d, only the Go compiler %d",
			link, both+neither+onlyLib+onlyGo, both, neither, onlyLib, onlyGo)
	}
	if mismatches > 30 {
		t.Errorf("... and %d more expressions one compiler accepts and the other rejects", mismatches-30)
	}
	for _, p := range panics {
		t.Errorf("the Go compiler panicked: %s", p)
	}
	for _, x := range exceptions {
		if !used[x] && x.expr == "*" {
			t.Logf("%s:%d: the rule for %q allowed no expression", dtKnownExceptionsFile, x.line, x.reason)
		} else if !used[x] {
			t.Logf("%s:%d: stale known exception, both compilers now agree on %q for %s", dtKnownExceptionsFile, x.line, x.expr, x.link)
		}
	}
	t.Logf("acceptance parity: compared %d expression and link type pairs, %d disagreements; %d more are known exceptions, "+
		"%d are refused by libpcap as rejecting all packets and compiled by the Go compiler into programs that rejected each of %d runs on packets",
		total, mismatches, excused, ruled, ruledRuns)
}
