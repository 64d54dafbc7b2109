package pcapfilter_test

// The proof that the Go compiler gives libpcap's verdicts, with libpcap
// 1.10 (its optimised program, as bpfmatch compiled with it) as the
// oracle, on the shared corpus (../../shared/corpus) and fake packets:
//
//	TestAcceptanceParityDifferential     both accept, or both reject, each corpus expression, per link type
//	TestVerdictsDifferential             corpus expressions x corpus and fake packets, whole and cut
//	TestGeneratedDifferential            the same for generated expressions (-gen.seed, -gen.n)
//	FuzzCompileDifferential              the same for any input: go test -fuzz FuzzCompileDifferential
//	TestGoldenStoredPrograms             the programs of testdata/golden, without libpcap (-update rewrites)
//	TestInstructionsExecutedDifferential instructions executed, Go against libpcap (reported)
//	BenchmarkCompile                     compile time, Go against libpcap
//
// Run them with cgo and the build tag libpcap:
//
//	go test -tags libpcap -v -run 'Differential|StoredPrograms' ./pcapfilter
//
// Without them, or without the corpus, the tests that need them skip.
// -difftest.stand-in tests the tests, with libpcap's unoptimised programs
// in the Go compiler's place; TestCompareVerdictsFails shows that they
// catch wrong programs.
//
// This file holds what they share: the corpus (expressions and captures),
// fake packets for every link type, and the comparison of the Go
// compiler's programs with libpcap's on packets. Their names start with
// dt, apart from those of the package's other external tests.

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/pcapgo"
	"golang.org/x/net/bpf"

	"github.com/headlessbpf/bpfmatch"
	"github.com/headlessbpf/bpfmatch/internal/libpcap"
	"github.com/headlessbpf/bpfmatch/pcapfilter"
)

// dtCorpusDir is the shared corpus of real filters and captures, beside the
// project (from the package's directory); tests that need it skip where it
// is absent.
var dtCorpusDir = filepath.Join("..", "..", "shared", "corpus")

// dtSnapLen and netmask are what bpfmatch compiles with, as tcpdump -r does.
const (
	dtSnapLen = pcapfilter.DefaultSnapLen
	dtNetmask = 0
)

// dtLinkTypes are the link types the Go compiler generates code for.
var dtLinkTypes = []pcapfilter.LinkType{
	pcapfilter.LinkEthernet, pcapfilter.LinkRaw, pcapfilter.LinkIPv4,
	pcapfilter.LinkIPv6, pcapfilter.LinkLinuxSLL, pcapfilter.LinkLinuxSLL2,
}

// The filter lists of the corpus.
const (
	dtListEthernet = "libpcap-ethernet.txt"
	dtListRaw      = "libpcap-raw.txt"
	dtListReal     = "realworld.txt"
	dtListInvalid  = "libpcap-invalid-ethernet.txt"
)

// dtListsFor returns the corpus lists whose expressions the tests try on a
// link type: the lists libpcap's own tests use for it first, then the
// others, since many of their expressions compile for every link type.
func dtListsFor(link pcapfilter.LinkType) []string {
	switch link {
	case pcapfilter.LinkEthernet, pcapfilter.LinkLinuxSLL, pcapfilter.LinkLinuxSLL2:
		return []string{dtListEthernet, dtListReal, dtListRaw, dtListInvalid}
	}
	return []string{dtListRaw, dtListEthernet, dtListReal, dtListInvalid}
}

func dtCorpusOrSkip(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(dtCorpusDir); err != nil {
		t.Skipf("the shared corpus is not at %s (%v): skipping the test against it", dtCorpusDir, err)
	}
	return dtCorpusDir
}

func dtLibpcapOrSkip(t testing.TB) {
	t.Helper()
	if !libpcap.Available {
		t.Skip("built without libpcap, the oracle (needs cgo and -tags libpcap): skipping the comparison with it")
	}
}

// dtCorpusExpr is one expression of a corpus list.
type dtCorpusExpr struct {
	expr string
	list string
	line int
}

func (e dtCorpusExpr) where() string { return fmt.Sprintf("%s:%d", e.list, e.line) }

var (
	dtFiltersMu    sync.Mutex
	dtFiltersCache = map[string][]dtCorpusExpr{}
)

// dtCorpusFilters returns the expressions of the named lists, each once
// (the first time it appears), in order.
func dtCorpusFilters(t testing.TB, names ...string) []dtCorpusExpr {
	dir := dtCorpusOrSkip(t)
	var out []dtCorpusExpr
	seen := map[string]bool{}
	for _, name := range names {
		list, err := dtReadFilterList(filepath.Join(dir, "filters", name))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range list {
			if !seen[e.expr] {
				seen[e.expr] = true
				out = append(out, e)
			}
		}
	}
	return out
}

func dtReadFilterList(path string) ([]dtCorpusExpr, error) {
	dtFiltersMu.Lock()
	defer dtFiltersMu.Unlock()
	if l, ok := dtFiltersCache[path]; ok {
		return l, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []dtCorpusExpr
	s := bufio.NewScanner(f)
	n := 0
	for s.Scan() {
		n++
		line := strings.TrimSpace(s.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, dtCorpusExpr{expr: line, list: filepath.Base(path), line: n})
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	dtFiltersCache[path] = out
	return out, nil
}

// dtPacket is one packet a program is run on.
type dtPacket struct {
	name string // capture and index, or how it was made
	data []byte // the captured bytes
	wire uint32 // the length on the wire
}

func (p dtPacket) String() string {
	return fmt.Sprintf("%s (%d bytes captured of %d): %s", p.name, len(p.data), p.wire, hex.EncodeToString(p.data))
}

// dtCapture is one capture file of the corpus.
type dtCapture struct {
	name  string
	link  pcapfilter.LinkType // as a DLT
	data  [][]byte
	wires []uint32
}

var (
	dtCapturesOnce sync.Once
	dtCapturesList []dtCapture
	dtCapturesErr  error
)

// dtCorpusCaptures reads every capture of the corpus, once.
func dtCorpusCaptures(t testing.TB) []dtCapture {
	dir := filepath.Join(dtCorpusOrSkip(t), "pcaps")
	dtCapturesOnce.Do(func() { dtCapturesList, dtCapturesErr = dtReadCaptures(dir) })
	if dtCapturesErr != nil {
		t.Fatal(dtCapturesErr)
	}
	if len(dtCapturesList) == 0 {
		t.Fatalf("no captures in %s", dir)
	}
	return dtCapturesList
}

func dtReadCaptures(dir string) ([]dtCapture, error) {
	names, _ := filepath.Glob(filepath.Join(dir, "*.pcap*"))
	var out []dtCapture
	for _, path := range names {
		c, err := dtReadCapture(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func dtReadCapture(path string) (dtCapture, error) {
	f, err := os.Open(path)
	if err != nil {
		return dtCapture{}, err
	}
	defer f.Close()
	c := dtCapture{name: filepath.Base(path)}
	var read func() ([]byte, gopacket.CaptureInfo, error)
	if strings.HasSuffix(path, ".pcapng") {
		r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return c, err
		}
		c.link = pcapfilter.LinkType(bpfmatch.LinkTypeFromPcap(uint32(r.LinkType())))
		read = r.ReadPacketData
	} else {
		r, err := pcapgo.NewReader(f)
		if err != nil {
			return c, err
		}
		c.link = pcapfilter.LinkType(bpfmatch.LinkTypeFromPcap(uint32(r.LinkType())))
		read = r.ReadPacketData
	}
	for {
		data, ci, err := read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return c, err
		}
		c.data = append(c.data, data)
		c.wires = append(c.wires, uint32(max(ci.Length, len(data))))
	}
	return c, nil
}

// dtPacketSet is the packets of one link type, each distinct (bytes and
// wire length) once.
type dtPacketSet struct {
	link     pcapfilter.LinkType
	packets  []dtPacket
	captured int // corpus packets read, before cutting and removing repeats
	fake     int // fake packets among packets
	seen     map[string]bool
}

func (s *dtPacketSet) add(p dtPacket) {
	key := fmt.Sprintf("%d/%s", p.wire, p.data)
	if s.seen[key] {
		return
	}
	s.seen[key] = true
	s.packets = append(s.packets, p)
}

// dtCutLengths are the lengths corpus packets are also cut to, keeping
// their wire length, as a capture with a small snap length would have
// them: loads past the captured bytes must abort the same way.
var dtCutLengths = []int{96, 64}

// dtPacketsFor returns the corpus packets of link, whole and cut, and
// nFake fake packets framed for it.
func dtPacketsFor(t testing.TB, link pcapfilter.LinkType, nFake int) *dtPacketSet {
	s := &dtPacketSet{link: link, seen: map[string]bool{}}
	for _, c := range dtCorpusCaptures(t) {
		if c.link != link {
			continue
		}
		for i, data := range c.data {
			s.captured++
			name := fmt.Sprintf("%s#%d", c.name, i)
			s.add(dtPacket{name: name, data: data, wire: c.wires[i]})
			for _, n := range dtCutLengths {
				if n < len(data) {
					s.add(dtPacket{name: fmt.Sprintf("%s cut to %d", name, n), data: data[:n], wire: c.wires[i]})
				}
			}
		}
	}
	before := len(s.packets)
	for _, p := range dtFakePackets(link, nFake) {
		s.add(p)
	}
	s.fake = len(s.packets) - before
	return s
}

// dtFakePackets returns n varied fake packets framed for link, the same
// every run: bpfmatch's FakePackets (IPv4 and IPv6, TCP and UDP, VLAN
// tags, broadcast and multicast addresses, payloads), some of them cut
// short, in Ethernet or raw IP frames, or behind a Linux cooked header.
func dtFakePackets(link pcapfilter.LinkType, n int) []dtPacket {
	r := rand.New(rand.NewPCG(7, uint64(link)))
	v4 := []string{"10.0.0.1", "10.1.2.3", "192.168.1.10", "172.16.5.4", "192.0.2.1", "192.0.2.21",
		"127.0.0.1", "224.0.0.251", "255.255.255.255", "0.0.0.0", "8.8.8.8", "198.51.100.7",
		"10.255.255.255", "128.3.0.1", "239.255.255.250"}
	v6 := []string{"2001:db8::1", "2001:db8::443", "::1", "fe80::1", "ff02::1", "ff02::fb", "::",
		"2001:db8:85a3::8a2e:370:7334", "ff05::1:3", "2001:db8:0:1::2"}
	ports := []uint16{0, 20, 21, 22, 23, 25, 53, 67, 68, 80, 110, 123, 137, 143, 161, 179, 443, 445,
		514, 993, 1024, 1080, 1900, 3128, 3306, 3389, 4789, 5060, 5353, 6000, 6081, 6667, 8080, 40000, 65535}
	payloads := [][]byte{nil, {0}, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), []byte("POST /a HTTP/1.0\r\n"),
		{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}, []byte("SSH-2.0-OpenSSH_9.2\r\n"), []byte("USER anonymous\r\n"),
		[]byte("220 ftp ready\r\n"), {0x12, 0x34, 0x01, 0x00, 0x00, 0x01}, bytes.Repeat([]byte{0xff}, 40),
		bytes.Repeat([]byte("abcd"), 128), bytes.Repeat([]byte{0x45}, 600),
		{0x08, 0, 0, 0, 0, 0, 0x2a, 0}, {0, 0x40, 0x65, 0x58, 0, 0, 0x2a, 0}}
	flags := []bpfmatch.TCPFlags{0, bpfmatch.SYN, bpfmatch.SYN | bpfmatch.ACK, bpfmatch.ACK,
		bpfmatch.FIN | bpfmatch.ACK, bpfmatch.RST, bpfmatch.RST | bpfmatch.ACK, bpfmatch.PSH | bpfmatch.ACK,
		bpfmatch.NoFlags, 0xff, bpfmatch.URG | bpfmatch.ACK | bpfmatch.PSH, bpfmatch.ECE | bpfmatch.CWR | bpfmatch.SYN}
	pick := func(s []string) netip.Addr { return netip.MustParseAddr(s[r.IntN(len(s))]) }
	var out []dtPacket
	for len(out) < n {
		var src, dst netip.Addr
		if link == pcapfilter.LinkIPv6 || (link != pcapfilter.LinkIPv4 && r.IntN(3) == 0) {
			src, dst = pick(v6), pick(v6)
		} else {
			src, dst = pick(v4), pick(v4)
		}
		p := bpfmatch.FakePacket{
			Src:      netip.AddrPortFrom(src, ports[r.IntN(len(ports))]),
			Dst:      netip.AddrPortFrom(dst, ports[r.IntN(len(ports))]),
			Protocol: []bpfmatch.Protocol{bpfmatch.TCP, bpfmatch.UDP}[r.IntN(2)],
			Payload:  payloads[r.IntN(len(payloads))],
			Flags:    flags[r.IntN(len(flags))],
			TTL:      uint8(r.IntN(4) * 64),
			Seq:      r.Uint32(),
			Ack:      r.Uint32(),
			Window:   uint16(r.IntN(3) * 1000),
		}
		if r.IntN(2) == 0 {
			p.Payload = p.Payload[:r.IntN(len(p.Payload)+1)]
		}
		frameLink := bpfmatch.LinkRaw
		if link == pcapfilter.LinkEthernet {
			frameLink = bpfmatch.LinkEthernet
			if r.IntN(4) == 0 {
				p.VLAN = &bpfmatch.VLAN{ID: uint16(r.IntN(4096)), Priority: uint8(r.IntN(8)), DropEligible: r.IntN(2) == 0}
			}
			switch r.IntN(5) {
			case 0:
				p.DstMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
			case 1:
				p.DstMAC = net.HardwareAddr{0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb}
			case 2:
				p.SrcMAC = net.HardwareAddr{0x00, 0x11, 0x22, 0x33, 0x44, 0x55}
			}
		}
		data, err := p.AppendFrame(nil, frameLink)
		if err != nil {
			panic(fmt.Sprintf("fake packet %v: %v", p, err))
		}
		switch link {
		case pcapfilter.LinkLinuxSLL:
			data = append(dtSllHeader(r, src.Is4() || src.Is4In6()), data...)
		case pcapfilter.LinkLinuxSLL2:
			data = append(dtSll2Header(r, src.Is4() || src.Is4In6()), data...)
		}
		name := fmt.Sprintf("fake#%d %v", len(out), p)
		out = append(out, dtPacket{name: name, data: data, wire: uint32(len(data))})
		if r.IntN(3) == 0 && len(out) < n {
			cut := r.IntN(len(data))
			out = append(out, dtPacket{name: fmt.Sprintf("%s cut to %d", name, cut), data: data[:cut], wire: uint32(len(data))})
		}
	}
	return out
}

// dtSllHeader returns a Linux cooked capture header (DLT_LINUX_SLL) for an
// IPv4 or IPv6 packet, with a random packet type.
func dtSllHeader(r *rand.Rand, v4 bool) []byte {
	h := make([]byte, 16)
	h[1] = byte(r.IntN(5)) // packet type: to us, broadcast, multicast, to another host, outgoing
	h[3] = 1               // ARPHRD_ETHER
	h[5] = 6               // address length
	dtFill(r, h[6:12])
	h[14], h[15] = 0x86, 0xdd // protocol
	if v4 {
		h[14], h[15] = 0x08, 0x00
	}
	return h
}

// dtSll2Header returns a Linux cooked capture v2 header (DLT_LINUX_SLL2).
func dtSll2Header(r *rand.Rand, v4 bool) []byte {
	h := make([]byte, 20)
	h[0], h[1] = 0x86, 0xdd // protocol
	if v4 {
		h[0], h[1] = 0x08, 0x00
	}
	h[7] = byte(1 + r.IntN(4)) // interface index
	h[9] = 1                   // ARPHRD_ETHER
	h[10] = byte(r.IntN(5))    // packet type
	h[11] = 6                  // address length
	dtFill(r, h[12:18])
	return h
}

func dtFill(r *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}

// dtGoMatcher loads a program of the Go compiler in bpfmatch's executor.
func dtGoMatcher(t testing.TB, prog []bpf.RawInstruction, link pcapfilter.LinkType) (*bpfmatch.Matcher, error) {
	return bpfmatch.Load(prog, bpfmatch.WithLinkType(bpfmatch.LinkType(link)), bpfmatch.WithSnapLen(dtSnapLen))
}

// dtStandIn tests the tests: it puts libpcap's unoptimised programs in the
// Go compiler's place, which must then pass every comparison.
var dtStandIn = flag.Bool("difftest.stand-in", false,
	"test the differential tests: compare libpcap's unoptimised programs, standing in for the Go compiler's, with its optimised ones")

// dtPair is one expression compiled by both compilers for one link type.
type dtPair struct {
	expr  string
	where string // the list and line, or how it was made
	link  pcapfilter.LinkType

	lib, libUnopt []bpf.RawInstruction // libpcap's optimised and unoptimised programs
	libErr        error
	goProg        []bpf.RawInstruction
	goErr         error
	goM           *bpfmatch.Matcher
	hasLoop       bool // the Go program jumps backwards (protochain)
	libLoop       bool // libpcap's programs jump backwards
	libUninit     bool // libpcap's programs may load scratch memory they did not store
	goUninit      bool // so may the Go program, as libpcap's unoptimised one does
}

// dtCompilePair compiles e with both compilers. It returns an error when
// the Go compiler's program is not one bpfmatch can run (invalid).
func dtCompilePair(expr, where string, link pcapfilter.LinkType) (*dtPair, error) {
	p := &dtPair{expr: expr, where: where, link: link}
	p.lib, p.libErr = libpcap.Compile(expr, int(link), dtSnapLen, true, dtNetmask)
	var unoptErr error
	p.libUnopt, unoptErr = libpcap.Compile(expr, int(link), dtSnapLen, false, dtNetmask)
	if p.libErr == nil && unoptErr != nil {
		return p, fmt.Errorf("libpcap compiles %q for %v optimised but not unoptimised: %v", expr, link, unoptErr)
	}
	p.libLoop = dtJumpsBack(p.lib) || dtJumpsBack(p.libUnopt)
	p.libUninit = p.libErr == nil && (dtMayReadUninit(p.lib) || dtMayReadUninit(p.libUnopt))
	p.goProg, p.goErr = dtCompileGo(expr, link)
	if p.goErr != nil {
		return p, nil
	}
	m, err := bpfmatch.Load(p.goProg, bpfmatch.WithLinkType(bpfmatch.LinkType(link)), bpfmatch.WithSnapLen(dtSnapLen))
	if err != nil {
		return p, fmt.Errorf("the Go compiler's program for %q (%v) does not validate: %v\n%s", expr, link, err, dtListing(p.goProg))
	}
	if libpcap.Available && !libpcap.Validate(p.goProg) {
		return p, fmt.Errorf("libpcap's bpf_validate refuses the Go compiler's program for %q (%v)\n%s", expr, link, dtListing(p.goProg))
	}
	p.goM = m
	p.hasLoop = dtJumpsBack(p.goProg)
	if !p.hasLoop && dtMayReadUninit(p.goProg) {
		// Linux refuses such a socket filter, and libpcap's interpreter
		// gives an undefined verdict; but libpcap's own programs do so
		// for some expressions (geneve): the Go compiler may where
		// libpcap's unoptimised program does.
		p.goUninit = true
		if unoptErr != nil || !dtMayReadUninit(p.libUnopt) {
			return p, fmt.Errorf("the Go compiler's program for %q (%v) may load scratch memory before storing it, which libpcap's unoptimised program does not\n%s",
				expr, link, dtListing(p.goProg))
		}
	}
	return p, nil
}

// dtCompileGo compiles with the Go compiler, turning a panic into a test
// failure's error rather than a crash.
func dtCompileGo(expr string, link pcapfilter.LinkType) (prog []bpf.RawInstruction, err error) {
	defer func() {
		if r := recover(); r != nil {
			prog, err = nil, fmt.Errorf("PANIC in pcapfilter.Compile: %v", r)
		}
	}()
	if *dtStandIn {
		return libpcap.Compile(expr, int(link), dtSnapLen, false, dtNetmask)
	}
	prog, err = pcapfilter.Compile(expr, pcapfilter.Options{LinkType: link, SnapLen: dtSnapLen, Netmask: dtNetmask})
	if err == nil && len(prog) == 0 {
		err = fmt.Errorf("pcapfilter.Compile returned an empty program and no error")
	}
	return prog, err
}

func dtIsPanic(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "PANIC") }

// dtJumpsBack reports whether prog has a jump that goes backwards (a BPF_JA
// whose offset wraps), which libpcap emits for protochain's loop.
func dtJumpsBack(prog []bpf.RawInstruction) bool {
	for i, in := range prog {
		if in.Op == 0x05 && uint64(i)+1+uint64(in.K) > uint64(len(prog)) {
			return true
		}
	}
	return false
}

// dtListing returns a program as tcpdump -d prints it (bpf_image), with the
// raw instruction after each line.
func dtListing(prog []bpf.RawInstruction) string {
	var b strings.Builder
	for i, in := range prog {
		fmt.Fprintf(&b, "%-44s { 0x%02x, %d, %d, 0x%08x }\n", dtImage(in, i), in.Op, in.Jt, in.Jf, in.K)
	}
	return b.String()
}

// dtFinishes reports whether prog returns within loopBudget instructions on
// pk.
func dtFinishes(prog []bpf.RawInstruction, pk dtPacket) bool {
	_, _, ok := dtCountRun(prog, pk.data, uint32(len(pk.data)), pk.wire, dtLoopBudget)
	return ok
}

// dtReadsUninit reports whether prog loads scratch memory it did not store
// when run on pk.
func dtReadsUninit(prog []bpf.RawInstruction, pk dtPacket) bool {
	_, _, _, uninit := dtTraceRun(prog, pk.data, uint32(len(pk.data)), pk.wire, dtLoopBudget)
	return uninit
}

// dtVerdictStats counts what a comparison of verdicts saw.
type dtVerdictStats struct {
	comparisons   int // packets run through both compilers' programs
	matched       int // of which libpcap's program accepted
	crossChecks   int // Go programs also run in libpcap's interpreter
	optDisagree   int // libpcap's optimised and unoptimised programs disagree
	sidedUnopt    int // ... and the Go program gives the unoptimised verdict
	optCases      []string
	rejectsAllRun int // runs of Go programs for expressions libpcap refuses as rejecting all packets
	libLoops      int // packets skipped because libpcap's program would not stop on them
	uninit        int // packets skipped because libpcap's program reads uninitialised memory on them
	uninitCases   []string
	failures      int
	failReports   []string
}

const dtMaxReports = 8

func (s *dtVerdictStats) fail(msg string) {
	s.failures++
	if len(s.failReports) < dtMaxReports {
		s.failReports = append(s.failReports, msg)
	}
}

func (s *dtVerdictStats) report(t testing.TB) {
	t.Helper()
	for _, m := range s.failReports {
		t.Error(m)
	}
	if s.failures > len(s.failReports) {
		t.Errorf("... and %d more disagreements", s.failures-len(s.failReports))
	}
	if s.libLoops > 0 {
		t.Logf("%d runs skipped: libpcap's program loops for more than %d instructions on the packet (its interpreter would hang)", s.libLoops, dtLoopBudget)
	}
	if s.uninit > 0 {
		t.Logf("%d runs skipped: libpcap's program loads scratch memory it did not store (its verdict is undefined), such as %s",
			s.uninit, strings.Join(s.uninitCases, "; "))
	}
	for i, c := range s.optCases {
		if i == 5 {
			t.Logf("... and %d more such cases", len(s.optCases)-i)
			break
		}
		t.Logf("libpcap's optimiser changes the verdict, the Go compiler gives the unoptimised one: %s", c)
	}
}

// dtCrossCheckEvery makes one run in that many of a Go program go through
// libpcap's interpreter as well as bpfmatch's executor (which is proven
// equal to it elsewhere, so this is a cheap second opinion).
const dtCrossCheckEvery = 3

// dtLoopBudget bounds the instructions the counting interpreter runs a
// looping Go program for before libpcap's interpreter, which has no
// bound, may run it.
const dtLoopBudget = 1 << 20

// dtCompareVerdicts runs p's programs on pkts and records the comparisons
// in s. stride > 1 runs every stride-th packet only.
func dtCompareVerdicts(p *dtPair, pkts []dtPacket, stride int, s *dtVerdictStats) {
	if p.goM == nil {
		return
	}
	if p.libErr != nil {
		// libpcap refused the expression; the tests call this only when
		// it said that it rejects every packet: so must the Go program.
		for i := 0; i < len(pkts); i += stride {
			pk := pkts[i]
			s.rejectsAllRun++
			ok, err := p.goM.MatchFrame(pk.data, int(pk.wire))
			if err != nil || ok {
				s.fail(fmt.Sprintf("%q for %v (%s): libpcap says %q, but the Go program accepts packet %v (err %v)\nGo program:\n%s",
					p.expr, p.link, p.where, p.libErr, pk, err, dtListing(p.goProg)))
			}
		}
		return
	}
	for i := 0; i < len(pkts); i += stride {
		pk := pkts[i]
		caplen := uint32(len(pk.data))
		if p.libLoop && (!dtFinishes(p.lib, pk) || !dtFinishes(p.libUnopt, pk)) {
			s.libLoops++ // libpcap's interpreter, which has no bound, would hang
			continue
		}
		if (p.libUninit || p.goUninit) && (dtReadsUninit(p.lib, pk) || dtReadsUninit(p.libUnopt, pk) || p.goUninit && dtReadsUninit(p.goProg, pk)) {
			s.uninit++ // libpcap's verdict is undefined
			if len(s.uninitCases) < 5 {
				s.uninitCases = append(s.uninitCases, fmt.Sprintf("%q for %v on %s", p.expr, p.link, pk.name))
			}
			continue
		}
		s.comparisons++
		libRet := libpcap.Filter(p.lib, pk.data, caplen, pk.wire)
		lib := libRet != 0
		if lib {
			s.matched++
		}
		goOK, err := p.goM.MatchFrame(pk.data, int(pk.wire))
		if err != nil {
			s.fail(fmt.Sprintf("%q for %v: MatchFrame on %v: %v", p.expr, p.link, pk, err))
			continue
		}
		if s.comparisons%dtCrossCheckEvery == 0 || goOK != lib {
			s.crossChecks++
			if p.hasLoop {
				if _, _, ok := dtCountRun(p.goProg, pk.data, caplen, pk.wire, dtLoopBudget); !ok {
					s.fail(fmt.Sprintf("%q for %v (%s): the Go program loops for more than %d instructions on %v\nGo program:\n%s",
						p.expr, p.link, p.where, dtLoopBudget, pk, dtListing(p.goProg)))
					continue
				}
			}
			goRet := libpcap.Filter(p.goProg, pk.data, caplen, pk.wire)
			if (goRet != 0) != goOK {
				s.fail(fmt.Sprintf("%q for %v: bpfmatch's executor says %v and libpcap's interpreter %v for the Go program on %v\n%s",
					p.expr, p.link, goOK, goRet, pk, dtListing(p.goProg)))
				continue
			}
			if goOK == lib && goRet != libRet {
				s.fail(fmt.Sprintf("%q for %v (%s): the Go program returns %d, libpcap's %d, on %v\nGo program:\n%s\nlibpcap's:\n%s",
					p.expr, p.link, p.where, goRet, libRet, pk, dtListing(p.goProg), dtListing(p.lib)))
				continue
			}
		}
		unopt := libpcap.Filter(p.libUnopt, pk.data, caplen, pk.wire) != 0
		if unopt != lib {
			s.optDisagree++
			if goOK == unopt {
				s.sidedUnopt++
				s.optCases = append(s.optCases, fmt.Sprintf("%q for %v on %s", p.expr, p.link, pk.name))
			}
		}
		if goOK != lib && goOK != unopt {
			s.fail(fmt.Sprintf("%q for %v (%s): the Go program says %v, libpcap's %v, on %v\nGo program:\n%s\nlibpcap's optimised program:\n%s\nlibpcap's unoptimised program:\n%s",
				p.expr, p.link, p.where, goOK, lib, pk, dtListing(p.goProg), dtListing(p.lib), dtListing(p.libUnopt)))
		}
	}
}
