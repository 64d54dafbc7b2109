package pcapfilter_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/headlessbpf/bpfmatch/pcapfilter"
)

// TestCompileConcurrent compiles expressions from many goroutines at once:
// compilations reuse memory (a pool), and each must get the program a
// compilation alone gets.
func TestCompileConcurrent(t *testing.T) {
	exprs := []string{
		"tcp dst port 21", "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420", "vlan 100 and ip and udp port 53",
		"host 10.0.0.1 or host 10.0.0.2 or net 192.168.0.0/16", "ip6 protochain 6", "geneve and ip", "iso", "not arp",
		"tcp and udp", "len > 100 and ether[0] & 1 = 0", "tcp port 21 and", "portrange 20-21",
	}
	type result struct {
		prog []string
		err  string
	}
	compile := func(e string) result {
		prog, err := pcapfilter.Compile(e, pcapfilter.Options{})
		r := result{}
		for _, in := range prog {
			r.prog = append(r.prog, fmt.Sprint(in))
		}
		if err != nil {
			r.err = err.Error()
		}
		return r
	}
	want := map[string]result{}
	for _, e := range exprs {
		want[e] = compile(e)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				e := exprs[(w+i)%len(exprs)]
				got := compile(e)
				if !slices.Equal(got.prog, want[e].prog) || got.err != want[e].err {
					select {
					case errs <- fmt.Sprintf("%q: got %v %q, alone %v %q", e, got.prog, got.err, want[e].prog, want[e].err):
					default:
					}
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
