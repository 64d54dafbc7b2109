package pcapfilter_test

import (
	"testing"
)

// dtFakePerLink is how many fake packets the verdict tests add to the
// corpus packets of each link type.
const dtFakePerLink = 600

// TestVerdictsDifferential runs every corpus expression that both
// compilers compile for a link type on every corpus packet of that link
// type, whole and cut to 96 and 64 bytes, and on fake packets, and
// compares the Go compiler's verdict with libpcap's optimised program's.
// Where libpcap's optimised and unoptimised programs disagree (its
// optimiser changes what loads past the captured bytes do), either
// verdict is accepted; those cases are counted and listed.
func TestVerdictsDifferential(t *testing.T) {
	dtLibpcapOrSkip(t)
	exceptions := dtKnownExceptions(t)
	stride := 1
	if dtRaceEnabled || testing.Short() {
		stride = 5
		t.Logf("short or race mode: comparing on one packet in %d", stride)
	}
	var total dtVerdictStats
	var exprs, goRejected int
	for _, link := range dtLinkTypes {
		set := dtPacketsFor(t, link, dtFakePerLink)
		var s dtVerdictStats
		var compared, libRejected, linkGoRejected, ruled int
		for _, e := range dtCorpusFilters(t, dtListsFor(link)...) {
			p, err := dtCompilePair(e.expr, e.where(), link)
			if err != nil {
				t.Error(err)
				continue
			}
			switch {
			case p.libErr != nil:
				libRejected++
				if p.goM != nil && dtRuleFor(exceptions, p.libErr.Error()) != nil {
					ruled++
					dtCompareVerdicts(p, set.packets, stride, &s)
				}
				continue
			case p.goErr != nil:
				linkGoRejected++ // TestAcceptanceParityDifferential judges it
				continue
			}
			compared++
			dtCompareVerdicts(p, set.packets, stride, &s)
		}
		s.report(t)
		t.Logf("verdicts %v: %d expressions x %d packets (%d read from captures, cut to %v too; %d fake; repeats removed): %d comparisons, %d matched, %d also run in libpcap's interpreter; "+
			"libpcap's optimiser changed %d verdicts, the Go program gave the unoptimised one in %d; %d expressions libpcap refuses, of which %d as rejecting all packets ran %d times and rejected; %d compiled by libpcap only",
			link, compared, len(set.packets), set.captured, dtCutLengths, set.fake, s.comparisons, s.matched, s.crossChecks,
			s.optDisagree, s.sidedUnopt, libRejected, ruled, s.rejectsAllRun, linkGoRejected)
		exprs += compared
		goRejected += linkGoRejected
		total.add(&s)
	}
	t.Logf("verdicts: %d comparisons of the Go compiler's programs with libpcap's (%d expression and link type pairs), %d disagreements, %d where libpcap's optimiser changed the verdict and the Go program gave the unoptimised one",
		total.comparisons, exprs, total.failures, total.sidedUnopt)
	if exprs == 0 {
		t.Errorf("no corpus expression compiled with both compilers: no verdicts compared (the Go compiler rejected %d that libpcap compiles)", goRejected)
	}
}

// add adds o's counts to s.
func (s *dtVerdictStats) add(o *dtVerdictStats) {
	s.comparisons += o.comparisons
	s.matched += o.matched
	s.crossChecks += o.crossChecks
	s.optDisagree += o.optDisagree
	s.sidedUnopt += o.sidedUnopt
	s.rejectsAllRun += o.rejectsAllRun
	s.libLoops += o.libLoops
	s.uninit += o.uninit
	s.failures += o.failures
}
