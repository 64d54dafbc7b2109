package pcapfilter_test

// A grammar-driven generator of filter expressions, and the differential
// tests that use it: random but valid combinations of the language's
// primitives, qualifiers and arithmetic, compiled by both compilers.

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/headlessbpf/bpfmatch/internal/libpcap"
	"github.com/headlessbpf/bpfmatch/pcapfilter"
)

var (
	dtGenSeed = flag.Uint64("gen.seed", 1, "seed of TestGeneratedDifferential's expression generator")
	dtGenN    = flag.Int("gen.n", 3000, "how many expressions TestGeneratedDifferential generates (fewer with -short or -race)")
)

// dtExprGen generates filter expressions from the grammar of pcap-filter(7),
// deterministically for a seed.
type dtExprGen struct {
	r *rand.Rand
}

func dtNewExprGen(seed uint64) *dtExprGen {
	return &dtExprGen{r: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))}
}

func (g *dtExprGen) pick(s ...string) string { return s[g.r.IntN(len(s))] }

func (g *dtExprGen) chance(n int) bool { return g.r.IntN(n) == 0 }

// expr returns an expression of at most about depth levels of and, or,
// not and parentheses.
func (g *dtExprGen) expr(depth int) string {
	if depth <= 0 {
		return g.primitive()
	}
	switch g.r.IntN(12) {
	case 0, 1, 2, 3:
		return g.primitive()
	case 4, 5:
		return g.expr(depth-1) + " " + g.pick("and", "&&", "and") + " " + g.expr(depth-1)
	case 6, 7:
		return g.expr(depth-1) + " " + g.pick("or", "||", "or") + " " + g.expr(depth-1)
	case 8:
		return g.pick("not ", "! ", "!") + g.operand(depth-1)
	case 9:
		return "(" + g.expr(depth-1) + ")"
	case 10:
		return g.continued()
	default:
		return g.expr(depth-1) + " and not " + g.operand(depth-1)
	}
}

// operand returns an expression that binds as one operand of not.
func (g *dtExprGen) operand(depth int) string {
	if depth > 0 && g.chance(2) {
		return "(" + g.expr(depth) + ")"
	}
	return g.primitive()
}

// continued returns a primitive followed by bare values that inherit its
// qualifiers, such as "tcp port 21 or 22".
func (g *dtExprGen) continued() string {
	var first string
	var next func() string
	switch g.r.IntN(4) {
	case 0:
		first = g.dir() + "host " + g.ipv4()
		next = g.ipv4
	case 1:
		first = g.pick("tcp ", "udp ", "") + g.dir() + "port " + g.port()
		next = g.port
	case 2:
		first = g.pick("", "ip ") + g.dir() + "net " + g.net4()
		next = g.net4
	default:
		first = "ip6 " + g.dir() + "host " + g.ipv6()
		next = g.ipv6
	}
	for n := 1 + g.r.IntN(3); n > 0; n-- {
		first += " " + g.pick("or", "and", "or not", "||") + " " + next()
	}
	return first
}

func (g *dtExprGen) dir() string {
	return g.pick("", "", "", "src ", "dst ", "src or dst ", "src and dst ")
}

func (g *dtExprGen) ipv4() string {
	return g.pick("10.0.0.1", "10.1.2.3", "192.168.1.10", "172.16.5.4", "192.0.2.1", "192.0.2.21",
		"127.0.0.1", "224.0.0.251", "255.255.255.255", "0.0.0.0", "8.8.8.8", "198.51.100.7",
		fmt.Sprintf("%d.%d.%d.%d", g.r.IntN(256), g.r.IntN(256), g.r.IntN(256), g.r.IntN(256)))
}

func (g *dtExprGen) ipv6() string {
	return g.pick("2001:db8::1", "2001:db8::443", "::1", "fe80::1", "ff02::1", "ff02::fb", "::",
		"2001:db8:85a3::8a2e:370:7334", "ff05::1:3", "::ffff:10.0.0.1")
}

func (g *dtExprGen) net4() string {
	switch g.r.IntN(6) {
	case 0:
		return g.pick("10", "192.168", "172.16", "10.1.2", "128.3", "224")
	case 1:
		return g.pick("10.0.0.0/8", "192.168.0.0/16", "192.0.2.0/24", "224.0.0.0/4", "0.0.0.0/0", "10.1.2.3/32")
	case 2:
		return g.pick("10.0.0.0 mask 255.0.0.0", "192.168.1.0 mask 255.255.255.0", "172.16.0.0 mask 255.240.0.0")
	case 3:
		m := g.r.IntN(33)
		return fmt.Sprintf("%s/%d", g.ipv4(), m) // may have bits outside the mask: an error
	default:
		return g.pick("192.0.2.0/24", "10.0.0.0/8", "127.0.0.0/8")
	}
}

func (g *dtExprGen) net6() string {
	return g.pick("2001:db8::/32", "ff00::/8", "fe80::/10", "::/0", "2001:db8::1/128", "2001:db8::/64")
}

func (g *dtExprGen) port() string {
	if g.chance(6) {
		return g.pick("ftp", "ssh", "http", "domain", "https", "telnet", "smtp", "ntp", "bootps")
	}
	return g.pick("0", "20", "21", "22", "23", "25", "53", "67", "68", "80", "123", "179", "443",
		"514", "1024", "4789", "5060", "6081", "8080", "65535", fmt.Sprint(g.r.IntN(65536)))
}

func (g *dtExprGen) mac() string {
	return g.pick("00:11:22:33:44:55", "ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:fb", "2:0:0:0:0:2",
		"0011.2233.4455", "00-11-22-33-44-55", "001122334455")
}

// primitive returns one primitive of the language.
func (g *dtExprGen) primitive() string {
	switch g.r.IntN(22) {
	case 0, 1:
		return g.pick("ip", "ip6", "arp", "rarp", "tcp", "udp", "icmp", "icmp6", "igmp", "igrp", "pim",
			"vrrp", "carp", "sctp", "ah", "esp", "atalk", "aarp", "decnet", "lat", "sca", "moprc", "mopdl",
			"iso", "esis", "isis", "clnp", "stp", "ipx", "netbeui", "llc", "l1", "l2", "iih", "lsp", "snp",
			"csnp", "psnp", "isis l1", "llc i", "llc s", "llc u", "llc rr", "llc ui", "ip6 and tcp")
	case 2, 3:
		switch g.r.IntN(4) {
		case 0:
			return g.pick("ip ", "arp ", "rarp ", "") + g.dir() + g.pick("host ", "") + g.ipv4()
		case 1:
			return g.pick("ip6 ", "") + g.dir() + "host " + g.ipv6()
		case 2:
			return "ether " + g.pick("host ", "src ", "dst ", "src host ", "dst host ") + g.mac()
		default:
			return g.pick("", "ip ", "ip6 ", "arp ") + g.dir() + "host " + g.pick(g.ipv4(), g.ipv6())
		}
	case 4:
		if g.chance(3) {
			return g.pick("", "ip6 ") + g.dir() + "net " + g.net6()
		}
		return g.pick("", "ip ", "arp ", "rarp ") + g.dir() + "net " + g.net4()
	case 5, 6:
		kind := g.pick("port ", "port ", "portrange ")
		v := g.port()
		if kind == "portrange " {
			a, b := g.r.IntN(2000), g.r.IntN(70000)
			v = fmt.Sprintf("%d-%d", a, b)
			if g.chance(5) {
				v = g.pick("ftp-ssh", "20-http", "1024-65535", "80-80")
			}
		}
		return g.pick("", "tcp ", "udp ", "sctp ", "ip ", "ip6 ", "ip and tcp ", "ip6 and udp ") + g.dir() + kind + v
	case 7:
		switch g.r.IntN(5) {
		case 0:
			return g.pick("ip ", "ip6 ", "") + "proto " + g.pick("1", "6", "17", "58", "47", "50", "51", "132", "0", "255", "256")
		case 1:
			return g.pick("ip ", "ip6 ", "") + "proto " + g.pick(`\tcp`, `\udp`, `\icmp`, "tcp", "udp", "icmp", `\sctp`, `\ah`, `\esp`)
		case 2:
			return "ether proto " + g.pick(`\ip`, `\ip6`, `\arp`, `\rarp`, `\atalk`, `\aarp`, `\decnet`, `\sca`, `\lat`,
				`\mopdl`, `\moprc`, `\iso`, `\stp`, `\ipx`, `\netbeui`, "0x800", "0x86dd", "2048", "0x8100", "1500", "100")
		case 3:
			return g.pick("", "link ") + "proto " + g.pick("0x800", `\ip`, "0x0806")
		default:
			return g.pick("iso proto ", "isis proto ") + g.pick(`\clnp`, `\esis`, `\isis`, "0x81")
		}
	case 8, 9:
		kw := g.pick("vlan", "mpls", "pppoes", "geneve", "vlan", "mpls")
		if g.chance(2) {
			switch kw {
			case "vlan":
				kw += " " + fmt.Sprint(g.r.IntN(4200))
			case "mpls":
				kw += " " + fmt.Sprint(g.r.IntN(1<<20+100))
			case "pppoes":
				kw += " " + fmt.Sprint(g.r.IntN(70000))
			default:
				kw += " " + fmt.Sprint(g.r.IntN(1<<24+100))
			}
		}
		return kw
	case 10:
		return g.pick("ip ", "ip6 ", "") + "protochain " + g.pick("6", "17", "58", "0", "44", "51", "60", "43", `\tcp`, "udp")
	case 11:
		switch g.r.IntN(3) {
		case 0:
			return "len " + g.relop() + " " + fmt.Sprint(g.r.IntN(200))
		case 1:
			return "greater " + fmt.Sprint(g.r.IntN(200))
		default:
			return "less " + fmt.Sprint(g.r.IntN(200))
		}
	case 12:
		return g.pick("ether broadcast", "ether multicast", "ip multicast", "ip6 multicast", "broadcast",
			"multicast", "ip broadcast", "ether[0] & 1 != 0")
	case 13:
		return g.pick("tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn", "tcp[tcpflags] & tcp-rst != 0",
			"tcp[tcpflags] & (tcp-fin|tcp-push|tcp-urg) = (tcp-fin|tcp-push|tcp-urg)", "tcp[tcpflags] & tcp-ece != 0",
			"tcp[tcpflags] & tcp-cwr = 0", "icmp[icmptype] = icmp-echo", "icmp[icmptype] != icmp-echoreply",
			"icmp[icmpcode] = 0", "icmp6[icmp6type] = icmp6-echo", "icmp6[icmp6type] == icmp6-neighborsolicit",
			"icmp[icmptype] = icmp-unreach", "icmp[0] = icmp-timxceed")
	default:
		return g.relation()
	}
}

func (g *dtExprGen) relop() string { return g.pick(">", "<", ">=", "<=", "=", "==", "!=") }

// relation returns a comparison of two arithmetic expressions.
func (g *dtExprGen) relation() string {
	return g.arith(2) + " " + g.relop() + " " + g.arith(1+g.r.IntN(2))
}

var dtArithOps = []string{"+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>"}

// arith returns an arithmetic expression.
func (g *dtExprGen) arith(depth int) string {
	if depth <= 0 || g.chance(3) {
		return g.atom(depth)
	}
	switch g.r.IntN(6) {
	case 0:
		return "-" + g.atom(depth-1)
	case 1:
		return "(" + g.arith(depth-1) + ")"
	default:
		op := dtArithOps[g.r.IntN(len(dtArithOps))]
		right := g.arith(depth - 1)
		switch op {
		case "/", "%":
			if !g.chance(20) { // a zero constant now and then
				right = fmt.Sprint(1 + g.r.IntN(16))
			}
		case "<<", ">>":
			right = fmt.Sprint(g.r.IntN(34))
		}
		return g.arith(depth-1) + " " + op + " " + right
	}
}

// atom returns a number, a named constant, len or a byte accessor.
func (g *dtExprGen) atom(depth int) string {
	switch g.r.IntN(9) {
	case 0, 1:
		return fmt.Sprint(g.r.IntN(256))
	case 2:
		return g.pick(fmt.Sprintf("0x%x", g.r.Uint32()>>uint(g.r.IntN(32))), "0x800", "0xff", "0xf0", "0x1fff",
			"017", "0", "4294967295", "0xffffffff", "0x47455420")
	case 3:
		return g.pick("len", "tcpflags", "icmptype", "icmpcode", "icmp6type", "icmp6code", "tcp-syn", "tcp-ack",
			"tcp-fin", "tcp-rst", "tcp-push", "tcp-urg", "icmp-echo", "icmp-echoreply", "icmp-unreach", "icmp6-echo")
	default:
		return g.accessor(depth)
	}
}

// accessor returns proto[index] or proto[index:size].
func (g *dtExprGen) accessor(depth int) string {
	proto := g.pick("ether", "link", "ip", "ip", "ip6", "tcp", "tcp", "udp", "icmp", "icmp6", "arp", "rarp",
		"igmp", "sctp", "pim", "vrrp", "carp", "igrp", "decnet", "ppp", "atalk", "ether", "ip", "tcp", "udp")
	if g.chance(100) {
		proto = g.pick("esp", "ah", "radio", "lat") // refused by libpcap
	}
	var index string
	if depth > 0 && g.chance(4) {
		index = g.arith(depth - 1)
	} else {
		index = fmt.Sprint(g.r.IntN(64))
	}
	switch g.r.IntN(4) {
	case 0:
		return fmt.Sprintf("%s[%s:%s]", proto, index, g.pick("1", "2", "4", "1", "2", "4", "3"))
	case 1:
		return fmt.Sprintf("%s[%s:%s]", proto, index, g.pick("1", "2", "4"))
	}
	return fmt.Sprintf("%s[%s]", proto, index)
}

// dtGeneratedLink returns the link type for the i-th generated expression:
// Ethernet for half of them, the others in turn.
func dtGeneratedLink(i int) pcapfilter.LinkType {
	if i%2 == 0 {
		return pcapfilter.LinkEthernet
	}
	return dtLinkTypes[1+(i/2)%(len(dtLinkTypes)-1)]
}

// TestGeneratorDeterministic checks that a seed gives the same
// expressions every time.
func TestGeneratorDeterministic(t *testing.T) {
	a, b := dtNewExprGen(42), dtNewExprGen(42)
	for i := 0; i < 200; i++ {
		if x, y := a.expr(3), b.expr(3); x != y {
			t.Fatalf("expression %d of seed 42: %q, then %q", i, x, y)
		}
	}
}

// TestGeneratedDifferential compiles generated expressions with both
// compilers, on the link types in turn: both must accept or both reject
// (but for expressions libpcap refuses as rejecting all packets, whose Go
// program must then reject every packet), and the verdicts must agree on
// corpus and fake packets as in TestVerdictsDifferential.
func TestGeneratedDifferential(t *testing.T) {
	dtLibpcapOrSkip(t)
	exceptions := dtKnownExceptions(t)
	n, stride := *dtGenN, 1
	if dtRaceEnabled || testing.Short() {
		n, stride = min(n, 300), 8
		t.Logf("short or race mode: %d expressions, one packet in %d", n, stride)
	}
	g := dtNewExprGen(*dtGenSeed)
	sets := map[pcapfilter.LinkType][]dtPacket{}
	var s dtVerdictStats
	var libOK, goOK, bothOK, mismatches, ruled, folded, stronger int
	for i := 0; i < n; i++ {
		link := dtGeneratedLink(i)
		expr := g.expr(1 + i%4)
		where := fmt.Sprintf("generated #%d of seed %d", i, *dtGenSeed)
		p, err := dtCompilePair(expr, where, link)
		if err != nil {
			t.Error(err)
			continue
		}
		if p.libErr == nil {
			libOK++
		}
		if p.goErr == nil {
			goOK++
		}
		if sets[link] == nil {
			sets[link] = dtPacketsFor(t, link, 300).packets
		}
		switch {
		case dtIsPanic(p.goErr):
			mismatches++
			t.Errorf("%s: %q for %v: %v", where, expr, link, p.goErr)
		case p.libErr == nil && p.goErr == nil:
			bothOK++
			dtCompareVerdicts(p, sets[link], stride, &s)
		case p.libErr != nil && p.goErr != nil:
		case p.goM != nil && dtRuleFor(exceptions, p.libErr.Error()) != nil:
			ruled++
			dtCompareVerdicts(p, sets[link], stride, &s)
		case p.libErr == nil && p.goErr != nil && strings.Contains(p.goErr.Error(), "rejects all packets"):
			// The Go compiler proved a contradiction libpcap's optimiser
			// missed: libpcap's unoptimised program must then match no
			// packet either.
			stronger++
			for _, pk := range sets[link] {
				caplen := min(uint32(len(pk.data)), dtSnapLen)
				if p.libUninit || p.libLoop {
					break
				}
				if libpcap.Filter(p.libUnopt, pk.data, caplen, pk.wire) != 0 {
					mismatches++
					t.Errorf("%s: %q for %v: the Go compiler says it rejects all packets, but libpcap's program matches %v", where, expr, link, pk)
					break
				}
			}
		case p.libErr == nil && dtFoldedConstantError(p.goErr):
			folded++
			if folded <= 3 {
				t.Logf("%s: %q for %v: libpcap compiles it, the Go compiler refuses it as its optimiser would in code it keeps: %v", where, expr, link, p.goErr)
			}
		default:
			mismatches++
			if mismatches <= dtMaxReports {
				t.Errorf("%s: %q for %v: libpcap: %v; the Go compiler: %v", where, expr, link, dtErrOrOK(p.libErr), dtErrOrOK(p.goErr))
			}
		}
	}
	if mismatches > dtMaxReports {
		t.Errorf("... and %d more expressions one compiler accepts and the other rejects", mismatches-dtMaxReports)
	}
	s.report(t)
	t.Logf("generated: %d expressions of seed %d: libpcap compiles %d, the Go compiler %d, both %d; %d acceptance disagreements; "+
		"%d refused by libpcap as rejecting all packets ran %d times",
		n, *dtGenSeed, libOK, goOK, bothOK, mismatches, ruled, s.rejectsAllRun)
	t.Logf("generated: %d refused by the Go compiler as rejecting all packets where libpcap's optimiser does not find it; libpcap's unoptimised program matched none of the packets", stronger)
	t.Logf("generated: %d refused by the Go compiler for a shift or divisor that folds to a bad constant, which libpcap's optimiser reported only where it kept the code", folded)
	t.Logf("generated: %d comparisons of verdicts, %d disagreements, %d where libpcap's optimiser changed the verdict and the Go program gave the unoptimised one",
		s.comparisons, s.failures, s.sidedUnopt)
	// A generator whose expressions libpcap mostly refuses would prove
	// little.
	if libOK < n/2 {
		t.Errorf("libpcap compiles only %d of %d generated expressions: the generator makes too many invalid ones", libOK, n)
	}
	if bothOK == 0 {
		t.Errorf("no generated expression compiled with both compilers: no verdicts compared")
	}
}

// dtFoldedConstantError reports whether err is the Go compiler's refusal
// of a shift by more than 31 bits or a division by zero whose operand is
// a constant only once folded. libpcap's optimiser makes the same checks,
// but only in the code it keeps, which depends on its dataflow analysis:
// an allowed difference, listed in testdata/known-exceptions.tsv.
func dtFoldedConstantError(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "shift by more than 31 bits") || strings.Contains(msg, "division by zero") ||
		strings.Contains(msg, "modulus by zero")
}

func dtErrOrOK(err error) string {
	if err == nil {
		return "compiles"
	}
	return err.Error()
}

var (
	dtFuzzOnce    sync.Once
	dtFuzzPackets map[pcapfilter.LinkType][]dtPacket
)

// dtFuzzPacketsFor returns a few hundred packets of link for the fuzz target:
// fake ones, and corpus ones where the corpus is present.
func dtFuzzPacketsFor(link pcapfilter.LinkType) []dtPacket {
	dtFuzzOnce.Do(func() {
		dtFuzzPackets = map[pcapfilter.LinkType][]dtPacket{}
		caps, _ := dtReadCaptures(filepath.Join(dtCorpusDir, "pcaps"))
		for _, l := range dtLinkTypes {
			var pk []dtPacket
			for _, c := range caps {
				if c.link != l {
					continue
				}
				for i := 0; i < len(c.data); i += 1 + len(c.data)/8 {
					pk = append(pk, dtPacket{name: fmt.Sprintf("%s#%d", c.name, i), data: c.data[i], wire: c.wires[i]})
					if len(c.data[i]) > 64 {
						pk = append(pk, dtPacket{name: fmt.Sprintf("%s#%d cut to 64", c.name, i), data: c.data[i][:64], wire: c.wires[i]})
					}
				}
			}
			dtFuzzPackets[l] = append(pk, dtFakePackets(l, 150)...)
		}
	})
	return dtFuzzPackets[link]
}

// FuzzCompileDifferential compiles arbitrary text for a link type with
// the Go compiler, which must not panic and must give a valid program or
// an *Error; with libpcap, both must accept or both reject (but for
// expressions libpcap refuses as rejecting all packets), and their verdicts
// must agree as in TestVerdictsDifferential.
func FuzzCompileDifferential(f *testing.F) {
	for _, s := range []string{"tcp dst port 21", "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420",
		"vlan and ip", "not (ip or ip6)", "ether[0:4] & 0xffffff00 = 0x01005e00", "ip6 protochain 17",
		"host 10.0.0.1 or 10.0.0.2 and not port 22", "len-1", "ether[0]=0x1-1", `ip proto \tcp`, "(((((ip)))))",
		"mpls 100 and mpls and ip", "geneve and ip", "pppoes 3 and ip6", "ip[0] / 0 = 1", "-ip[0] = -69",
		"", " \t", "ip[0] >> 5 + 193 = 0", "ip[0] << 3 * 58 = 0"} {
		f.Add(s, uint8(0))
	}
	for _, name := range []string{dtListEthernet, dtListRaw, dtListReal, dtListInvalid} {
		list, err := dtReadFilterList(filepath.Join(dtCorpusDir, "filters", name))
		if err != nil {
			continue // the corpus is absent: the seeds above do
		}
		for i, e := range list {
			if name != dtListInvalid || i%10 == 0 {
				f.Add(e.expr, uint8(i))
			}
		}
	}
	g := dtNewExprGen(7)
	for i := 0; i < 200; i++ {
		f.Add(g.expr(1+i%4), uint8(i))
	}
	var exceptions map[string]*dtException
	if _, err := os.Stat(dtKnownExceptionsFile); err == nil {
		exceptions = dtKnownExceptions(f)
	}
	f.Fuzz(func(t *testing.T, expr string, linkIndex uint8) {
		link := dtLinkTypes[int(linkIndex)%len(dtLinkTypes)]
		prog, err := dtCompileGo(expr, link)
		if dtIsPanic(err) {
			t.Fatalf("%q for %v: %v", expr, link, err)
		}
		if err == nil {
			if _, err := dtGoMatcher(t, prog, link); err != nil {
				t.Fatalf("%q for %v: the program does not validate: %v\n%s", expr, link, err, dtListing(prog))
			}
		} else if _, ok := err.(*pcapfilter.Error); !ok && !*dtStandIn {
			t.Fatalf("%q for %v: the error is a %T, not a *pcapfilter.Error: %v", expr, link, err, err)
		}
		if !libpcap.Available || strings.IndexByte(expr, 0) >= 0 || len(expr) > 4096 {
			return // libpcap reads a C string; long ones take its optimiser long
		}
		p, err := dtCompilePair(expr, "fuzz input", link)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case p.libErr == nil && p.goErr == nil:
		case p.libErr != nil && p.goErr != nil:
			return
		case p.goM != nil && exceptions != nil && dtRuleFor(exceptions, p.libErr.Error()) != nil:
		default:
			t.Fatalf("%q for %v: libpcap: %v; the Go compiler: %v", expr, link, dtErrOrOK(p.libErr), dtErrOrOK(p.goErr))
		}
		var s dtVerdictStats
		dtCompareVerdicts(p, dtFuzzPacketsFor(link), 1, &s)
		for _, m := range s.failReports {
			t.Error(m) // the optimiser's cases, which report lists, are allowed
		}
	})
}
