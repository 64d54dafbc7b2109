package pcapfilter_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/headlessbpf/bpfmatch/pcapfilter"
)

func BenchmarkScratchHuge(b *testing.B) {
	for _, n := range []int{5000, 20000, 50000} {
		var terms []string
		for i := 0; i < n; i++ {
			terms = append(terms, fmt.Sprintf("host 10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
		}
		e := strings.Join(terms, " or ")
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				pcapfilter.Compile(e, pcapfilter.Options{})
			}
		})
	}
}
