//go:build cgo && libpcap

package bpfmatch

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/headlessbpf/bpfmatch/internal/libpcap"
	"golang.org/x/net/bpf"
)

func init() {
	oracle = libpcapVerdict
}

// oracleKey names what libpcap compiles for a Matcher the Go compiler made.
type oracleKey struct {
	expr          string
	link          LinkType
	snap, netmask uint32
}

// oraclePrograms are libpcap's optimised and unoptimised programs for an
// expression, or why it refused it.
type oraclePrograms struct {
	opt, unopt []bpf.RawInstruction
	err        error
}

var oracleCache sync.Map // oracleKey -> *oraclePrograms

// libpcapVerdict is libpcap's verdict on frame for m: m's own program run
// by pcap_offline_filter where libpcap compiled it or it was loaded, and
// where the Go compiler compiled it, the program libpcap compiles for the
// same expression and options. Then either is true where libpcap's
// optimised and unoptimised programs disagree on the frame (its optimiser
// changes which loads abort on truncated packets): any verdict is right.
// An expression libpcap refuses has the verdict false, as libpcap's
// "expression rejects all packets".
func libpcapVerdict(m *Matcher, frame []byte, wireLen int) (want, either bool) {
	caplen := min(uint32(len(frame)), m.snap)
	if !m.goCompiled {
		return libpcap.Filter(m.raw, frame, caplen, uint32(wireLen)) != 0, false
	}
	key := oracleKey{m.expr, m.link, m.snap, m.netmask}
	v, ok := oracleCache.Load(key)
	if !ok {
		var p oraclePrograms
		p.opt, p.err = libpcap.Compile(m.expr, int(m.link), int(m.snap), true, m.netmask)
		if p.err == nil {
			p.unopt, p.err = libpcap.Compile(m.expr, int(m.link), int(m.snap), false, m.netmask)
		}
		v, _ = oracleCache.LoadOrStore(key, &p)
	}
	p := v.(*oraclePrograms)
	if p.err != nil {
		return false, false
	}
	opt := libpcap.Filter(p.opt, frame, caplen, uint32(wireLen)) != 0
	unopt := libpcap.Filter(p.unopt, frame, caplen, uint32(wireLen)) != 0
	return opt, opt != unopt
}

// TestDifferentialFakePackets compares Match with libpcap's own offline
// filter on the same bytes, for every corpus expression on generated packets.
func TestDifferentialFakePackets(t *testing.T) {
	sets := []struct {
		link  LinkType
		files []string
	}{
		{LinkEthernet, []string{"libpcap-ethernet.txt", "realworld.txt"}},
		{LinkRaw, []string{"libpcap-raw.txt"}},
	}
	for _, set := range sets {
		exprs := corpusFilters(t, set.files...)
		packets := generatedPackets(300, set.link)
		frames := make([][]byte, len(packets))
		for i, p := range packets {
			var err error
			if frames[i], err = p.AppendFrame(nil, set.link); err != nil {
				t.Fatalf("%v: %v", p, err)
			}
		}
		var compared, skipped, matched, ambiguous int
		for _, expr := range exprs {
			for _, snap := range []int{DefaultSnapLen, 64} {
				m, err := Compile(expr, WithLinkType(set.link), WithSnapLen(snap))
				if err != nil {
					if snap == DefaultSnapLen {
						skipped++
						t.Logf("%v: %q does not compile here: %v", set.link, expr, err)
					}
					continue
				}
				for i, p := range packets {
					got, err := m.Match(p)
					if err != nil {
						t.Fatalf("%q on %v: %v", expr, p, err)
					}
					want, either := oracle(m, frames[i], len(frames[i]))
					if either {
						ambiguous++
					}
					if got != want && !either {
						t.Errorf("%v snap %d: %q on %v = %v, libpcap says %v\nframe %x", set.link, snap, expr, p, got, want, frames[i])
					}
					compared++
					if got {
						matched++
					}
				}
			}
		}
		t.Logf("%v: %d expressions (%d do not compile here) x %d packets x 2 snap lengths: %d comparisons with libpcap, %d matches, 0 disagreements unless reported above",
			set.link, len(exprs), skipped, len(packets), compared, matched)
		if ambiguous > 0 {
			t.Logf("%v: %d comparisons where libpcap's optimised and unoptimised programs disagree, either verdict accepted", set.link, ambiguous)
		}
	}
}

// TestDifferentialCaptures compares MatchFrame with libpcap on every packet
// of every corpus capture, truncated ones with their wire length.
func TestDifferentialCaptures(t *testing.T) {
	caps := corpusCaptures(t)
	byLink := map[LinkType][]string{
		LinkEthernet: corpusFilters(t, "libpcap-ethernet.txt", "realworld.txt"),
		LinkRaw:      corpusFilters(t, "libpcap-raw.txt"),
	}
	var compared, packets, truncated, ambiguous int
	for _, c := range caps {
		exprs := byLink[c.link]
		if exprs == nil {
			// LINKTYPE_IPV4, _IPV6 and Linux cooked captures get the raw IP filters.
			exprs = byLink[LinkRaw]
		}
		matchers := map[string]*Matcher{}
		for _, expr := range exprs {
			if m, err := Compile(expr, WithLinkType(c.link)); err == nil {
				matchers[expr] = m
			}
		}
		for i, data := range c.data {
			packets++
			if uint32(len(data)) < c.wires[i] {
				truncated++
			}
			for expr, m := range matchers {
				got, err := m.MatchFrame(data, int(c.wires[i]))
				if err != nil {
					t.Fatalf("%s #%d: %v", c.name, i, err)
				}
				want, either := oracle(m, data, int(c.wires[i]))
				if either {
					ambiguous++
					if ambiguous <= 20 {
						t.Logf("%s #%d (%d of %d bytes): %q: libpcap's optimised program says %v, its unoptimised one %v; bpfmatch %v",
							c.name, i, len(data), c.wires[i], expr, want, !want, got)
					}
				}
				if got != want && !either {
					t.Errorf("%s #%d (%d of %d bytes): %q = %v, libpcap says %v", c.name, i, len(data), c.wires[i], expr, got, want)
				}
				compared++
			}
		}
		if len(matchers) == 0 {
			t.Logf("%s: no corpus expression compiles for %v", c.name, c.link)
		}
	}
	t.Logf("%d captures, %d packets (%d truncated): %d comparisons of MatchFrame with libpcap", len(caps), packets, truncated, compared)
	if ambiguous > 0 {
		t.Logf("%d comparisons where libpcap's optimised and unoptimised programs disagree, either verdict accepted", ambiguous)
	}
}

// TestCompileNoLeak compiles many expressions, good and bad, with libpcap
// and checks that the process does not grow with them: libpcap's memory
// is freed at once.
func TestCompileNoLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	if raceEnabled {
		// The race detector's own memory grows by megabytes over such a
		// run; make test runs this test again without it (equivalence).
		t.Skip("resident memory is not meaningful under the race detector")
	}
	exprs := []string{"tcp dst port 21 and src net 10.0.0.0/8", getFilter, "tcp dst port 21 and", "vlan and ip6 and udp port 53"}
	compile := func(n int) int64 {
		for i := 0; i < n; i++ {
			compileLibpcap(exprs[i%len(exprs)], LinkEthernet, DefaultSnapLen, 0)
		}
		runtime.GC()
		debug.FreeOSMemory()
		return rss(t)
	}
	before := compile(20000)
	const n = 200000
	after := compile(n)
	// A leak of one instruction per compilation, 8 bytes and malloc's
	// overhead, would add more than 3 MiB.
	if grew := after - before; grew > 2<<20 {
		t.Errorf("resident memory grew by %d KiB over %d compilations", grew>>10, n)
	}
	t.Logf("resident memory %d KiB before, %d KiB after %d more compilations", before>>10, after>>10, n)
}

func rss(t testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skipf("cannot read resident memory: %v", err)
	}
	fields := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(fields[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

var update = flag.Bool("update", false, "rewrite testdata/programs.txt with the programs the tests compiled")

func TestMain(m *testing.M) {
	code := m.Run()
	if *update && code == 0 {
		var lines []string
		usedPrograms.Range(func(k, _ any) bool {
			key := k.(programKey)
			if strings.ContainsAny(key.expr, "\t\n") {
				return true
			}
			// libpcap's program, whichever compiler the tests used: the
			// stored programs are libpcap's for TestStoredPrograms.
			prog, err := compileLibpcap(key.expr, key.link, key.snap, 0)
			if err != nil {
				fmt.Fprintf(os.Stderr, "-update: not storing %q: %v\n", key.expr, err)
				return true
			}
			text := strings.TrimSuffix(strings.ReplaceAll(FormatProgram(prog), "\n", ","), ",")
			lines = append(lines, fmt.Sprintf("%d\t%d\t%s\t%s", key.link, key.snap, key.expr, text))
			return true
		})
		sort.Strings(lines)
		if err := os.WriteFile(programsFile, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// TestStoredPrograms checks that the programs stored for builds without
// cgo give libpcap's verdicts, whatever the version of libpcap that
// compiled them.
func TestStoredPrograms(t *testing.T) {
	if *update {
		t.Skip("-update rewrites the stored programs")
	}
	var compared int
	packets := generatedPackets(100, LinkEthernet)
	for key, prog := range storedPrograms(t) {
		m, err := Load(prog, WithLinkType(key.link), WithSnapLen(key.snap))
		if err != nil {
			t.Fatalf("%q: %v", key.expr, err)
		}
		for _, p := range append(packets, matchTestPackets()...) {
			frame, err := p.AppendFrame(nil, key.link)
			if err != nil {
				continue
			}
			got, err := m.Match(p)
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := oracle(m, frame, len(frame)); got != want {
				t.Errorf("stored program of %q: %v on %v, libpcap says %v", key.expr, got, p, want)
			}
			compared++
		}
	}
	t.Logf("%d stored programs, %d comparisons with libpcap", len(storedPrograms(t)), compared)
}

// TestWithLibpcap checks that the libpcap executor gives the Go executor's
// verdicts through every way of matching.
func TestWithLibpcap(t *testing.T) {
	var n int
	for _, tc := range matchTests {
		opts := append([]Option{WithLibpcap()}, tc.opts...)
		lm, err := Compile(tc.expr, opts...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got, err := lm.Match(tc.p)
		if err != nil || got != tc.want {
			t.Errorf("%s: %q with libpcap on %v = %v, %v; want %v", tc.name, tc.expr, tc.p, got, err, tc.want)
		}
		fl, err := lm.NewFlow(tc.p)
		if err != nil {
			t.Fatal(err)
		}
		if fixed, _ := fl.Fixed(); fixed {
			t.Errorf("%s: a flow run by libpcap claims a fixed verdict", tc.name)
		}
		if got, err := fl.Match(tc.p.Payload); err != nil || got != tc.want {
			t.Errorf("%s: %q with libpcap, as a flow, on %v = %v, %v; want %v", tc.name, tc.expr, tc.p, got, err, tc.want)
		}
		n++
	}
	t.Logf("%d cases through libpcap", n)
}

// TestWithLibpcapConcurrent shares a Matcher run by libpcap among
// goroutines; pcap.BPF.Matches writes into the BPF value, so under -race
// this proves that each call has its own. Frames of every length from 0
// take both of libpcap.Program's ways (nothing captured, and some).
func TestWithLibpcapConcurrent(t *testing.T) {
	const expr = "len >= 0 and (ether[0] & 1 = 0 or len < 20)"
	lm := MustCompile(expr, WithLibpcap())
	gm := compileOrSkip(t, expr)
	p := tcp4()
	frame, err := p.AppendFrame(nil, LinkEthernet)
	if err != nil {
		t.Fatal(err)
	}
	frame[0] = 1 // a multicast destination: only frames shorter than 20 match
	want := make([]bool, len(frame)+1)
	for n := range want {
		if want[n], err = gm.MatchFrame(frame[:n], n); err != nil {
			t.Fatal(err)
		}
		if lp := libpcap.Filter(gm.Program(), frame[:n], uint32(n), uint32(n)) != 0; lp != want[n] {
			t.Fatalf("%q on %d bytes: Go %v, libpcap %v", expr, n, want[n], lp)
		}
	}
	var wg sync.WaitGroup
	var wrong atomic.Int64
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				n := (i*7 + g) % len(want)
				if got, err := lm.MatchFrame(frame[:n], n); err != nil || got != want[n] {
					wrong.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if wrong.Load() != 0 {
		t.Errorf("%d wrong verdicts in %d concurrent matches run by libpcap", wrong.Load(), 8*500)
	}
}

// matchTestPackets are the packets of matchTests.
func matchTestPackets() []FakePacket {
	var out []FakePacket
	for _, tc := range matchTests {
		out = append(out, tc.p)
	}
	return out
}

// TestWithLibpcapNeverHangs runs WithLibpcap on programs libpcap 1.10
// never leaves: the Go executor's budget stops them first and gives its
// verdict, 0, and libpcap is not called. Programs with backward jumps
// that end still get libpcap's verdict. A hang fails the test rather than
// the run.
func TestWithLibpcapNeverHangs(t *testing.T) {
	if !HaveLibpcap {
		t.Skip("needs libpcap: go test -tags libpcap")
	}
	spin := prog(stmt(bpfLdImm, 0), stmt(bpfJa, 0xfffffffe), retK(1))
	pc6, err := ParseProgram(protochain6)
	if err != nil {
		t.Fatal(err)
	}
	tcp := ipv6Chain(0, append([]byte{6, 0, 0, 0, 0, 0, 0, 0}, make([]byte, 20)...)...)
	// M[0] is read before any store: libpcap's garbage would loop.
	uninit := prog(stmt(bpfLdMem, 0), jmp(bpfJeqK, 0, 1, 0), stmt(bpfJa, 0xfffffffd), retK(7))
	for _, c := range []struct {
		name string
		raw  []bpf.RawInstruction
		data []byte
		want bool
	}{
		{"ld #0; ja -2", spin, make([]byte, 60), false},
		{"ip6 protochain 6 over an AH header pointing at itself", pc6,
			ipv6Chain(51, append([]byte{51, 8, 0, 0}, make([]byte, 60)...)...), false},
		{"ip6 protochain 6 over hop-by-hop then TCP", pc6, tcp, true},
		{"a loop on scratch memory zeroed", uninit, make([]byte, 60), true},
	} {
		m, err := Load(c.raw, WithLibpcap())
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		done := make(chan bool, 1)
		go func() {
			ok, _ := m.MatchFrame(c.data, len(c.data))
			done <- ok
		}()
		select {
		case got := <-done:
			if got != c.want {
				t.Errorf("%s: MatchFrame with libpcap = %v, want %v\nprogram:\n%spacket %s",
					c.name, got, c.want, FormatProgram(c.raw), hexOf(c.data))
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: MatchFrame with libpcap has not returned after 30 s: libpcap is looping\nprogram:\n%s",
				c.name, FormatProgram(c.raw))
		}
	}
}
