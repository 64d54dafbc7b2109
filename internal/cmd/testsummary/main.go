// Command testsummary reads go test -json on standard input and prints
// what make test shows: each package's result line, the whole output of
// every test that failed, and the name and reason of every test that was
// skipped, so that a run that passes while skipping the comparisons with
// libpcap says so. It exits 1 if anything failed or did not build.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// event is one line of go test -json (test2json's TestEvent).
type event struct {
	Action     string
	Package    string
	ImportPath string // build events
	Test       string
	Output     string
}

type key struct{ pkg, test string }

func main() {
	os.Exit(summarise(os.Stdin, os.Stdout))
}

func summarise(in io.Reader, out io.Writer) int {
	output := map[key][]string{}
	var skips []string
	failed := false
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			// Not an event (a build error printed as text): show it.
			fmt.Fprintln(out, string(line))
			continue
		}
		k := key{e.Package, e.Test}
		switch e.Action {
		case "output", "build-output":
			if e.Test == "" && e.Package != "" {
				// Package-level output: the ok/FAIL line and what a test
				// binary prints outside tests.
				if strings.HasPrefix(e.Output, "ok ") || strings.HasPrefix(e.Output, "FAIL") || strings.HasPrefix(e.Output, "---") || strings.HasPrefix(e.Output, "panic") {
					fmt.Fprint(out, e.Output)
				}
				continue
			}
			if e.Action == "build-output" {
				fmt.Fprint(out, e.Output)
				continue
			}
			output[k] = append(output[k], e.Output)
		case "skip":
			if e.Test != "" {
				skips = append(skips, fmt.Sprintf("SKIP %s %s: %s", e.Package, e.Test, reason(output[k])))
			} else {
				fmt.Fprintf(out, "?   \t%s\t[no test files]\n", e.Package)
			}
			delete(output, k)
		case "fail", "build-fail":
			failed = true
			if e.Test != "" {
				fmt.Fprint(out, strings.Join(output[k], ""))
			}
			delete(output, k)
		case "pass":
			delete(output, k)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(out, "testsummary:", err)
		failed = true
	}
	for _, s := range skips {
		fmt.Fprintln(out, s)
	}
	fmt.Fprintf(out, "%d tests skipped\n", len(skips))
	if failed {
		return 1
	}
	return 0
}

// reason returns what a skipped test said, without the --- SKIP line and
// the file:line prefix, on one line.
func reason(lines []string) string {
	var parts []string
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- SKIP") {
			continue
		}
		if i := strings.Index(l, ": "); i > 0 && strings.Contains(l[:i], ".go:") {
			l = l[i+2:]
		}
		parts = append(parts, l)
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " / ")
}
