package pcapfilter

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/headlessbpf/bpfmatch/internal/libpcap"
)

// corpusFilters reads the expressions of the shared corpus's filter lists,
// or skips the test when the corpus is absent.
func corpusFilters(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob("../../shared/corpus/filters/*.txt")
	if len(files) == 0 {
		t.Skip("the shared corpus (../../shared/corpus/filters) is absent")
	}
	var exprs []string
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
				continue
			}
			exprs = append(exprs, line)
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return exprs
}

// diffOutcome compares Parse with libpcap on expr: a syntax error in
// libpcap must be a Parse error, and an expression libpcap compiles must
// parse. It returns libpcap's verdict ("ok", "syntax", "other").
func diffOutcome(t *testing.T, expr string) string {
	t.Helper()
	_, perr := Parse(expr)
	_, lerr := libpcap.Compile(expr, int(LinkEthernet), DefaultSnapLen, false, 0)
	switch {
	case lerr == nil:
		if perr != nil {
			t.Errorf("libpcap compiles %q; Parse: %v", expr, perr)
		}
		return "ok"
	case strings.Contains(lerr.Error(), "syntax error"):
		if perr == nil {
			t.Errorf("libpcap: %v, for %q; Parse accepts it", lerr, expr)
		}
		return "syntax"
	}
	return "other"
}

func TestParseVersusLibpcapCorpus(t *testing.T) {
	if !libpcap.Available {
		t.Skip("libpcap is not linked: run with -tags libpcap (and cgo) to compare with it")
	}
	exprs := corpusFilters(t)
	counts := map[string]int{}
	for _, e := range exprs {
		counts[diffOutcome(t, e)]++
	}
	t.Logf("corpus: %d expressions: libpcap compiles %d, syntax errors %d, other errors %d",
		len(exprs), counts["ok"], counts["syntax"], counts["other"])
}
