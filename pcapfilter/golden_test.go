package pcapfilter_test

// Golden files: the programs the Go compiler emits for every corpus
// expression, per link type, stored so that a build without cgo or
// libpcap, or a machine without the corpus, still checks them.

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/headlessbpf/bpfmatch/pcapfilter"
)

// dtGoldenDir holds one file of programs per link type.
var dtGoldenDir = filepath.Join("testdata", "golden")

// The package's other tests may define -update too; whichever is
// defined first serves both.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files of testdata/golden with the programs the Go compiler emits now")
	}
}

func dtUpdating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

func dtGoldenFile(link pcapfilter.LinkType) string {
	return filepath.Join(dtGoldenDir, link.String()+".txt")
}

// dtGoldenEntry returns what a golden file holds for expr: the program the
// Go compiler emits, one instruction a line as tcpdump -d prints it, then
// as tcpdump -ddd does; or, for an expression it refuses, where.
func dtGoldenEntry(expr string, link pcapfilter.LinkType) string {
	var b strings.Builder
	fmt.Fprintf(&b, "expr %s\n", expr)
	prog, err := dtCompileGo(expr, link)
	if err != nil {
		// Only the position: the message may quote the resolver.
		var e *pcapfilter.Error
		switch {
		case errors.As(err, &e):
			fmt.Fprintf(&b, "error at offset %d %q\n", e.Offset, e.Token)
		case dtIsPanic(err):
			fmt.Fprintf(&b, "%v\n", err)
		default:
			fmt.Fprintf(&b, "error of type %T\n", err)
		}
		return b.String()
	}
	for i, in := range prog {
		fmt.Fprintf(&b, "%-44s %d %d %d %d\n", dtImage(in, i), in.Op, in.Jt, in.Jf, in.K)
	}
	return b.String()
}

const dtGoldenHeader = `# The programs the Go compiler emits for link type %v (DLT %d), snap length %d, netmask 0,
# for the expressions of the corpus lists %s, each once.
# Each entry: "expr" and the expression, then the program, one instruction a line as
# tcpdump -d prints it and then as tcpdump -ddd does; or where the expression is refused.
# TestGoldenStoredPrograms checks that Compile still emits them;
# go test ./pcapfilter -run TestGoldenStoredPrograms -update rewrites this file.
`

// TestGoldenStoredPrograms checks that the Go compiler still emits the
// programs of the golden files, for the expressions they list; it needs
// neither libpcap nor the corpus. With -update it rewrites them from the
// corpus lists.
func TestGoldenStoredPrograms(t *testing.T) {
	if dtUpdating() {
		dtWriteGolden(t)
		return
	}
	if _, err := os.Stat(dtGoldenDir); os.IsNotExist(err) {
		t.Skipf("no golden files in %s: run go test ./pcapfilter -run TestGoldenStoredPrograms -update once the Go compiler compiles the corpus", dtGoldenDir)
	}
	var entries, programs, failures int
	for _, link := range dtLinkTypes {
		data, err := os.ReadFile(dtGoldenFile(link))
		if err != nil {
			t.Error(err)
			continue
		}
		for _, want := range dtSplitGolden(data) {
			entries++
			if !strings.Contains(want, "\nerror") {
				programs++
			}
			expr := strings.TrimPrefix(strings.SplitN(want, "\n", 2)[0], "expr ")
			if got := dtGoldenEntry(expr, link); got != want {
				failures++
				if failures <= dtMaxReports {
					t.Errorf("%s: %q for %v: the Go compiler now emits\n%s\nthe golden file has\n%s(if the change is right: go test ./pcapfilter -run TestGoldenStoredPrograms -update)",
						dtGoldenFile(link), expr, link, got, want)
				}
			}
		}
	}
	if failures > dtMaxReports {
		t.Errorf("... and %d more programs differ from the golden files", failures-dtMaxReports)
	}
	if entries == 0 {
		t.Errorf("the golden files in %s hold no entries", dtGoldenDir)
	}
	t.Logf("golden: compared %d expressions with the golden files (%d programs, %d refused), %d differ", entries, programs, entries-programs, failures)
}

// dtSplitGolden returns the entries of a golden file, each ending in a
// newline.
func dtSplitGolden(data []byte) []string {
	var out []string
	var cur strings.Builder
	s := bufio.NewScanner(bytes.NewReader(data))
	s.Buffer(nil, 1<<20)
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	for s.Scan() {
		line := s.Text()
		switch {
		case strings.HasPrefix(line, "#"):
		case line == "":
			flush()
		default:
			cur.WriteString(line + "\n")
		}
	}
	flush()
	return out
}

// dtWriteGolden rewrites the golden files from the corpus lists. It writes
// nothing while the Go compiler compiles no corpus expression.
func dtWriteGolden(t *testing.T) {
	dtCorpusOrSkip(t)
	type file struct {
		path string
		data []byte
	}
	var files []file
	var compiled, total int
	for _, link := range dtLinkTypes {
		var b bytes.Buffer
		fmt.Fprintf(&b, dtGoldenHeader, link, int(link), dtSnapLen, strings.Join(dtListsFor(link), ", "))
		for _, e := range dtCorpusFilters(t, dtListsFor(link)...) {
			if strings.Contains(e.expr, "\n") {
				t.Fatalf("%s: an expression of more than one line", e.where())
			}
			entry := dtGoldenEntry(e.expr, link)
			total++
			if !strings.Contains(entry, "\nerror") {
				compiled++
			}
			if strings.Contains(entry, "\nPANIC") {
				t.Errorf("%q for %v: %s", e.expr, link, entry)
			}
			b.WriteString("\n" + entry)
		}
		files = append(files, file{dtGoldenFile(link), b.Bytes()})
	}
	if compiled == 0 {
		t.Fatalf("the Go compiler compiles none of the %d corpus expressions: not writing golden files", total)
	}
	if err := os.MkdirAll(dtGoldenDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("golden: wrote %d files in %s: %d expressions, %d programs", len(files), dtGoldenDir, total, compiled)
}
