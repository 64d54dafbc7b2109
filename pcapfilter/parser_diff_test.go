package pcapfilter

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/headlessbpf/bpfmatch/internal/libpcap"
	"golang.org/x/net/bpf"
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

// vocabulary is the tokens the generated expressions are made of.
var vocabulary = strings.Fields(`
	and or not && || ! ( ) ( ) ( ) [ ] : = == != < <= > >= + - * / % & | ^ << >>
	host net port portrange src dst gateway proto protochain mask
	ether link ip ip6 arp rarp tcp udp icmp icmp6 sctp igmp pim vrrp ah esp iso l1 clnp stp ipx radio decnet
	broadcast multicast less greater byte len inbound outbound ifindex vlan mpls pppoed pppoes geneve llc
	type subtype dir addr1 ra on rnr reason action lane vpi oam sio fisu
	rulenum subrulenum srnr ruleset rset ifname address2 addr3 ta direction length es-is is-is
	lsu hsls hopc connectmsg metaconnect oamf4 ilmic vci ppp fddi tr wlan slip icmp6type tcp-ack
	1.2.3.4 10 0x10 010 10.1 10.1.2 ::1 fe80::1 aa:bb:cc:dd:ee:ff aabb.ccdd.eeff $1 localhost
	0 1 2 4 8 13 14 100 1500 65535 tcp-syn icmp-echo tcpflags 4294967295
`)

// templates are expressions libpcap accepts; mutations of them probe the
// edges of the grammar.
var templates = []string{
	"tcp port 21 or 22", "host 1.2.3.4 and not 1.2.3.5", "src or dst host 1.2.3.4", "ip proto 6",
	"tcp[13] & 2 != 0", "ip[0:2] + 1 > len - 4 * 2", "vlan 100 and (ip or ip6)", "net 10.0.0.0/8",
	"net 10 mask 255.0.0.0", "ether src aa:bb:cc:dd:ee:ff", "not (udp or icmp)", "portrange 20",
	"ip6 net fe80::/10", "less 100 or greater 200", "(1 + 2) * 3 = 9", "host (1.2.3.4 or 1.2.3.5)",
	"ip broadcast or ether multicast", "llc", "byte 2 = 3", "ip protochain 6", "len = 0x10 ^ 1 % 3",
	"icmp[icmptype] = icmp-echo", "pppoes 3 and tcp", "mpls (5) and udp", "tcp dst port (80 or 443)",
	"not host 1.2.3.4 and (tcp or not udp port 53)", "host 1.2.3.4 and (tcp) or 1.2.3.5",
	"(tcp port 1) or 2", "ip[2:2] - ((ip[0] & 0xf) << 2) > 0", "ether[0] & 1 = 0 and ip[16] >= 224",
	"- len = 1", "len - - 1 = 0", "ether proto 0x800 or arp", "ip host localhost", "vlan and vlan 10 and not mpls",
	"icmp6 and ip6[40] = icmp6-echo", "src and dst net 10.1.2 and not dst port 22",
	"ip6 proto 58 or ip6 protochain 17", "greater 64 and less 1500", "byte 0 | 1 or byte 1 > 2",
	"geneve 5 or pppoes (7)", "link[0:4] = 0xffffffff", "tcp[tcpflags] & (tcp-syn|tcp-ack) != 0",
	"ip[0] % 3 + 1 = ip[1] ^ 2 * 3", "net 192.168.0.0 mask 255.255.0.0 or 10.1.0.0/16", "not not not tcp",
	"ifindex 2 or inbound or outbound", "vpi 1 or vci (2 or 3)", "sio > 3 or dpc = 4", "fisu or lane or oam",
	"host ::1 or ether host aa-bb-cc-dd-ee-ff", "src host 1.2.3.4 or dst 1.2.3.5", "llc rnr or llc",
	"host (1.2.3.4 or not 1.2.3.5) and port ((80) or 443)", "(ip or ip6) and ((tcp)) and (1) = 1",
	"ip6 net ::1.2.3.4/96 or ip6 host 1:2:3:4:5:6:7::", "ether host 1.2.3.4.5.6 or wlan addr2 0:1:2:3:4:5",
	"ip[0:1] = 2 or ip[0:2] = 3 or ip[0:4] = 4", "sctp or tcp or udp and not ip6 proto 17 or icmp6 or 1 = 2",
}

// generated returns n expressions: token soups and mutated templates,
// from a fixed seed. Their only name is "localhost": libpcap looks names
// up as hosts, and a name the resolver does not know can take seconds.
func generated(n int) []string {
	rng := rand.New(rand.NewPCG(7, 11))
	out := make([]string, 0, n)
	for len(out) < n {
		switch rng.IntN(3) {
		case 0:
			k := 1 + rng.IntN(7)
			w := make([]string, k)
			for i := range w {
				w[i] = vocabulary[rng.IntN(len(vocabulary))]
			}
			out = append(out, strings.Join(w, " "))
		default:
			w := strings.Fields(spaceOut(templates[rng.IntN(len(templates))]))
			for m := 1 + rng.IntN(2); m > 0; m-- {
				i := rng.IntN(len(w))
				switch rng.IntN(4) {
				case 0: // delete
					w = append(w[:i:i], w[i+1:]...)
				case 1: // insert
					w = append(w[:i:i], append([]string{vocabulary[rng.IntN(len(vocabulary))]}, w[i:]...)...)
				case 2: // replace
					w[i] = vocabulary[rng.IntN(len(vocabulary))]
				case 3: // repeat a slice
					j := i + rng.IntN(len(w)-i)
					w = append(w[:j+1:j+1], append(append([]string{}, w[i:j+1]...), w[j+1:]...)...)
				}
				if len(w) == 0 {
					w = []string{"tcp"}
				}
			}
			out = append(out, strings.Join(w, " "))
		}
	}
	return out
}

// spaceOut puts spaces around the parentheses and brackets of a template,
// so that mutations can move them.
func spaceOut(s string) string {
	r := strings.NewReplacer("(", " ( ", ")", " ) ", "[", " [ ", "]", " ] ", ":", " : ")
	out := r.Replace(s)
	// Put back the colons of addresses.
	for _, a := range []string{"aa:bb:cc:dd:ee:ff", "fe80::"} {
		out = strings.ReplaceAll(out, strings.ReplaceAll(a, ":", " : "), a)
	}
	return out
}

var generatedN = flag.Int("generated", 20000, "how many generated expressions TestParseVersusLibpcapGenerated compares")

func TestParseVersusLibpcapGenerated(t *testing.T) {
	if !libpcap.Available {
		t.Skip("libpcap is not linked: run with -tags libpcap (and cgo) to compare with it")
	}
	counts := map[string]int{}
	for _, e := range generated(*generatedN) {
		counts[diffOutcome(t, e)]++
	}
	t.Logf("generated: %d expressions: libpcap compiles %d, syntax errors %d, other errors %d",
		*generatedN, counts["ok"], counts["syntax"], counts["other"])
}

// lexerProbes returns n expressions that put random short strings of the
// characters tokens are made of after a prefix that takes an id or a
// number, to compare the lexers. No prefix makes libpcap look a name up in
// DNS: "ether host" reads /etc/ethers, "port" /etc/services, "len =" no
// file at all.
func lexerProbes(n int) []string {
	const chars = "0123456789abcdefxABCDEFX..::--_$\\  ()[]!=<>&|^%+*/gilnoprstu"
	prefixes := []string{"len = ", "ether host ", "port ", "ip[0] = ", "ether[", "ip proto ", "len = 1", "ether host 1"}
	rng := rand.New(rand.NewPCG(3, 5))
	out := make([]string, 0, n)
	for len(out) < n {
		b := []byte(prefixes[rng.IntN(len(prefixes))])
		for k := 1 + rng.IntN(12); k > 0; k-- {
			b = append(b, chars[rng.IntN(len(chars))])
		}
		out = append(out, string(b))
	}
	return out
}

func TestParseVersusLibpcapLexer(t *testing.T) {
	if !libpcap.Available {
		t.Skip("libpcap is not linked: run with -tags libpcap (and cgo) to compare with it")
	}
	counts := map[string]int{}
	for _, e := range lexerProbes(*generatedN) {
		counts[diffOutcome(t, e)]++
	}
	t.Logf("lexer probes: %d expressions: libpcap compiles %d, syntax errors %d, other errors %d",
		*generatedN, counts["ok"], counts["syntax"], counts["other"])
}

// evalConst evaluates constant arithmetic as BPF does, in uint32; ok is
// false for a division or modulus by zero or a shift past 31 bits, which
// libpcap rejects.
func evalConst(a Arith) (v uint32, ok bool) {
	switch a := a.(type) {
	case *Num:
		return a.Val, true
	case *Neg:
		x, ok := evalConst(a.X)
		return -x, ok
	case *ArithBinary:
		x, ok1 := evalConst(a.X)
		y, ok2 := evalConst(a.Y)
		if !ok1 || !ok2 {
			return 0, false
		}
		switch a.Op {
		case ArithAdd:
			return x + y, true
		case ArithSub:
			return x - y, true
		case ArithMul:
			return x * y, true
		case ArithDiv:
			return x / max(y, 1), y != 0
		case ArithMod:
			return x % max(y, 1), y != 0
		case ArithAnd:
			return x & y, true
		case ArithOr:
			return x | y, true
		case ArithXor:
			return x ^ y, true
		case ArithLsh:
			return x << y, y < 32
		case ArithRsh:
			return x >> y, y < 32
		}
	}
	return 0, false
}

// randArith writes a random constant arithmetic expression.
func randArith(rng *rand.Rand, depth int) string {
	if depth <= 0 || rng.IntN(4) == 0 {
		return fmt.Sprint(rng.IntN(9) + 1)
	}
	switch rng.IntN(8) {
	case 0:
		return "-" + randArith(rng, depth-1)
	case 1:
		return "(" + randArith(rng, depth-1) + ")"
	}
	ops := []string{"+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>"}
	return randArith(rng, depth-1) + " " + ops[rng.IntN(len(ops))] + " " + randArith(rng, depth-1)
}

// TestArithVersusLibpcap checks the shape of arithmetic trees: the value
// of a constant expression, computed from the tree Parse builds, must be
// what libpcap's optimiser folds the expression to.
func TestArithVersusLibpcap(t *testing.T) {
	if !libpcap.Available {
		t.Skip("libpcap is not linked: run with -tags libpcap (and cgo) to compare with it")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	accept, err := bpf.RetConstant{Val: DefaultSnapLen}.Assemble()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for i := 0; i < *generatedN/10; i++ {
		expr := randArith(rng, 4)
		n, err := Parse("len = 0 + " + expr)
		if err != nil {
			t.Errorf("Parse %q: %v", expr, err)
			continue
		}
		// The tree of 0 + E is (+ 0 E) unless E begins with a '^' or '%'
		// chain, which takes the whole rest; evaluate the right side of
		// "len =" as a whole.
		v, ok := evalConst(n.(*Relation).Y)
		if !ok {
			continue
		}
		full := fmt.Sprintf("0 + %s = %d", expr, v)
		prog, err := libpcap.Compile(full, int(LinkEthernet), DefaultSnapLen, true, 0)
		if err != nil {
			t.Errorf("libpcap: %q: %v", full, err)
			continue
		}
		if len(prog) != 1 || prog[0] != accept {
			t.Errorf("%q: Parse's tree %s evaluates to %d, libpcap disagrees: %v", expr, dump(n.(*Relation).Y), v, libpcap.Image(prog))
		}
		checked++
	}
	t.Logf("arithmetic: %d constant expressions evaluate as libpcap folds them", checked)
}

// FuzzParseVersusLibpcap compares Parse with libpcap on fuzzed
// expressions, and the trees of those libpcap compiles (go test -tags libpcap -fuzz FuzzParseVersusLibpcap). It
// skips expressions with names other than "localhost", which libpcap
// would look up in DNS.
func FuzzParseVersusLibpcap(f *testing.F) {
	if !libpcap.Available {
		f.Skip("libpcap is not linked: run with -tags libpcap (and cgo) to compare with it")
	}
	for _, s := range append(templates, vocabulary...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		if strings.IndexByte(expr, 0) >= 0 || len(expr) > 200 {
			return
		}
		lx := lexer{src: expr}
		for {
			tk := lx.next()
			if tk.kind == tEOF || tk.kind == tError {
				break
			}
			if tk.kind == tID && tk.text != "localhost" {
				return
			}
		}
		if diffOutcome(t, expr) == "ok" {
			want, _ := libpcap.Compile(expr, int(LinkEthernet), DefaultSnapLen, false, 0)
			checkTree(t, expr, want)
		}
	})
}

// printExpr writes a tree back as an expression libpcap reads the same
// way, with every qualifier written out and every operation in
// parentheses. ok is false for trees it cannot write (Unsupported).
func printExpr(n any) (s string, ok bool) {
	var b strings.Builder
	ok = true
	var pr func(n any)
	pr = func(n any) {
		switch n := n.(type) {
		case *Binary:
			op := " and "
			if n.Op == Or {
				op = " or "
			}
			b.WriteString("(")
			pr(n.X)
			b.WriteString(")" + op + "(")
			pr(n.Y)
			b.WriteString(")")
		case *Not:
			b.WriteString("not (")
			pr(n.X)
			b.WriteString(")")
		case *Qualified:
			if n.Q.Proto != ProtoDefault {
				b.WriteString(protoText[n.Q.Proto] + " ")
			}
			switch n.Q.Dir {
			case DirDefault:
			case DirSrcOrDst:
				b.WriteString("src or dst ")
			case DirSrcAndDst:
				b.WriteString("src and dst ")
			default:
				b.WriteString(dirText[n.Q.Dir] + " ")
			}
			if n.Q.Type != TypeDefault {
				b.WriteString(typeText[n.Q.Type] + " ")
			}
			switch n.ID.Kind {
			case IDName:
				b.WriteString("\\" + n.ID.Text)
			case IDARCnet:
				b.WriteString("$" + n.ID.Text)
			default:
				b.WriteString(n.ID.Text)
			}
			if n.MaskLen >= 0 {
				fmt.Fprintf(&b, "/%d", n.MaskLen)
			}
			if n.Mask != nil {
				b.WriteString(" mask " + n.Mask.Text)
			}
		case *ProtoAbbrev:
			b.WriteString(protoText[n.Proto])
		case *Special:
			if n.Proto != ProtoDefault {
				b.WriteString(protoText[n.Proto] + " ")
			}
			b.WriteString(specialText[n.Kind])
			switch {
			case n.Kind == SpecialByte:
				fmt.Fprintf(&b, " %d %c %d", n.Arg, n.ByteOp, n.ByteVal)
			case n.HasArg:
				fmt.Fprintf(&b, " %d", n.Arg)
			case n.Sub != "":
				b.WriteString(" " + n.Sub)
			}
		case *Relation:
			b.WriteString("(")
			pr(n.X)
			b.WriteString(") " + relText[n.Op] + " (")
			pr(n.Y)
			b.WriteString(")")
		case *Num:
			fmt.Fprint(&b, n.Val)
		case *Len:
			b.WriteString("len")
		case *Load:
			b.WriteString(protoText[n.Proto] + "[")
			pr(n.Index)
			fmt.Fprintf(&b, " : %d]", n.Size)
		case *ArithBinary:
			b.WriteString("(")
			pr(n.X)
			b.WriteString(") " + arithText[n.Op] + " (")
			pr(n.Y)
			b.WriteString(")")
		case *Neg:
			b.WriteString("-(")
			pr(n.X)
			b.WriteString(")")
		default:
			ok = false
		}
	}
	pr(n)
	return b.String(), ok
}

// checkTree checks that expr, which libpcap compiles to want, parses,
// and that its tree written back compiles to want too. It reports
// whether it could compare.
func checkTree(t *testing.T, expr string, want []bpf.RawInstruction) bool {
	t.Helper()
	n, err := Parse(expr)
	if err != nil {
		t.Errorf("libpcap compiles %q; Parse: %v", expr, err)
		return false
	}
	printed, ok := printExpr(n)
	if !ok || n == nil {
		return false
	}
	got, err := libpcap.Compile(printed, int(LinkEthernet), DefaultSnapLen, false, 0)
	if err != nil {
		t.Errorf("%q is written back as %q, which libpcap rejects: %v", expr, printed, err)
		return false
	}
	if !slices.Equal(got, want) {
		t.Errorf("%q is written back as %q, which libpcap compiles differently", expr, printed)
	}
	return true
}

// TestTreeVersusLibpcap checks the trees Parse builds, qualifiers,
// inheritance and grouping included: written back with every qualifier
// explicit and every operation parenthesized, an expression must compile
// in libpcap to the program the original compiles to.
func TestTreeVersusLibpcap(t *testing.T) {
	if !libpcap.Available {
		t.Skip("libpcap is not linked: run with -tags libpcap (and cgo) to compare with it")
	}
	exprs := generated(*generatedN)
	if files, _ := filepath.Glob("../../shared/corpus/filters/*.txt"); len(files) > 0 {
		exprs = append(corpusFilters(t), exprs...)
	} else {
		t.Log("the shared corpus is absent: comparing generated expressions only")
	}
	compared := 0
	for _, e := range exprs {
		want, err := libpcap.Compile(e, int(LinkEthernet), DefaultSnapLen, false, 0)
		if err != nil {
			continue
		}
		if checkTree(t, e, want) {
			compared++
		}
	}
	t.Logf("trees: %d expressions written back compile as the originals", compared)
}
