package pcapfilter_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/headlessbpf/bpfmatch/internal/libpcap"
	"github.com/headlessbpf/bpfmatch/pcapfilter"
)

// dtBenchExprs returns the expressions BenchmarkCompile compiles, by name.
// The longest realworld expression needs the corpus; without it, that
// sub-benchmark is left out.
func dtBenchExprs() [][2]string {
	out := [][2]string{
		{"short", "tcp dst port 21"},
		{"payload", "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420"},
	}
	if list, err := dtReadFilterList(filepath.Join(dtCorpusDir, "filters", dtListReal)); err == nil {
		longest := ""
		for _, e := range list {
			if len(e.expr) > len(longest) {
				longest = e.expr
			}
		}
		out = append(out, [2]string{"long", longest})
	} else {
		fmt.Fprintf(os.Stderr, "BenchmarkCompile: no corpus, no long expression: %v\n", err)
	}
	return append(out, [2]string{"huge-250", dtOrHosts(250)}, [2]string{"huge", dtOrHosts(5000)})
}

// dtOrHosts returns n "host 10.x.y.z" terms joined by or.
func dtOrHosts(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(" or ")
		}
		fmt.Fprintf(&b, "host 10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff)
	}
	return b.String()
}

var dtBenchLibpcapHuge = flag.Bool("bench.libpcap-huge", false,
	"BenchmarkCompile: also time libpcap on the 5,000-term expression, which takes it hours")

// BenchmarkCompile compiles the same expressions for Ethernet with the
// Go compiler (go/...) and with libpcap's optimising compiler
// (libpcap/..., as bpfmatch uses it), each with its snap length and
// dtNetmask 0. huge is 5,000 or-ed host terms; libpcap's optimiser grows
// with about the cube of their number (on the project's shared machine,
// 0.6 to 1.6 s for 250 terms, 11 s for 500, 95 s for 1,000: hours for
// 5,000), so libpcap/huge runs only
// with -bench.libpcap-huge, and huge-250 (250 terms) compares the two.
func BenchmarkCompile(b *testing.B) {
	exprs := dtBenchExprs()
	for _, e := range exprs {
		b.Run("go/"+e[0], func(b *testing.B) {
			if _, err := pcapfilter.Compile(e[1], pcapfilter.Options{}); err != nil {
				b.Skipf("the Go compiler refuses %.60q: %v", e[1], err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(e[1])))
			b.ResetTimer()
			for b.Loop() {
				if _, err := pcapfilter.Compile(e[1], pcapfilter.Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, e := range exprs {
		b.Run("libpcap/"+e[0], func(b *testing.B) {
			if !libpcap.Available {
				b.Skip("built without libpcap (needs cgo and -tags libpcap)")
			}
			if e[0] == "huge" && !*dtBenchLibpcapHuge {
				b.Skip("libpcap takes hours on 5,000 terms: run with -bench.libpcap-huge to time it")
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(e[1])))
			for b.Loop() {
				if _, err := libpcap.Compile(e[1], int(pcapfilter.LinkEthernet), dtSnapLen, true, dtNetmask); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
