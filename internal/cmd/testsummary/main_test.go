package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestSummarise(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"start","Package":"p"}`,
		`{"Action":"run","Package":"p","Test":"TestA"}`,
		`{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}`,
		`{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:10: libpcap is not linked: build with -tags libpcap\n"}`,
		`{"Action":"output","Package":"p","Test":"TestA","Output":"--- SKIP: TestA (0.00s)\n"}`,
		`{"Action":"skip","Package":"p","Test":"TestA"}`,
		`{"Action":"run","Package":"p","Test":"TestB"}`,
		`{"Action":"output","Package":"p","Test":"TestB","Output":"    b_test.go:3: got 1, want 2\n"}`,
		`{"Action":"fail","Package":"p","Test":"TestB"}`,
		`{"Action":"run","Package":"p","Test":"TestC"}`,
		`{"Action":"output","Package":"p","Test":"TestC","Output":"    c_test.go:3: fine\n"}`,
		`{"Action":"pass","Package":"p","Test":"TestC"}`,
		`{"Action":"output","Package":"p","Output":"FAIL\tp\t0.1s\n"}`,
		`{"Action":"fail","Package":"p"}`,
	}, "\n")
	var out bytes.Buffer
	code := summarise(strings.NewReader(in), &out)
	got := out.String()
	for _, want := range []string{
		"SKIP p TestA: libpcap is not linked: build with -tags libpcap\n",
		"b_test.go:3: got 1, want 2",
		"FAIL\tp\t0.1s",
		"1 tests skipped",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "fine") {
		t.Errorf("summary shows a passing test's output:\n%s", got)
	}
	if code != 1 {
		t.Errorf("exit %d with a failed test, want 1", code)
	}
	out.Reset()
	if code := summarise(strings.NewReader(`{"Action":"pass","Package":"p"}`), &out); code != 0 {
		t.Errorf("exit %d with nothing failed, want 0:\n%s", code, out.String())
	}
}
