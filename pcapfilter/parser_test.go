package pcapfilter

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/headlessbpf/bpfmatch/internal/libpcap"
	"golang.org/x/net/bpf"
)

var protoText = map[Proto]string{ProtoDefault: "-"}

func init() {
	for name, p := range protoNames {
		if old, ok := protoText[p]; !ok || len(name) < len(old) || p == ProtoLink && name == "link" {
			protoText[p] = name
		}
	}
	protoText[ProtoLink] = "link"
}

var dirText = map[Dir]string{DirDefault: "-", DirSrc: "src", DirDst: "dst", DirSrcOrDst: "src|dst",
	DirSrcAndDst: "src&dst", DirAddr1: "addr1", DirAddr2: "addr2", DirAddr3: "addr3", DirAddr4: "addr4",
	DirRA: "ra", DirTA: "ta"}
var typeText = map[Type]string{TypeDefault: "-", TypeHost: "host", TypeNet: "net", TypePort: "port",
	TypePortRange: "portrange", TypeGateway: "gateway", TypeProto: "proto", TypeProtochain: "protochain"}
var kindText = map[IDKind]string{IDName: "name", IDNum: "num", IDIPv4: "v4", IDIPv6: "v6", IDMAC: "mac", IDARCnet: "arc"}
var specialText = map[SpecialKind]string{SpecialBroadcast: "broadcast", SpecialMulticast: "multicast",
	SpecialLess: "less", SpecialGreater: "greater", SpecialInbound: "inbound", SpecialOutbound: "outbound",
	SpecialIfindex: "ifindex", SpecialVLAN: "vlan", SpecialMPLS: "mpls", SpecialPPPoED: "pppoed",
	SpecialPPPoES: "pppoes", SpecialGeneve: "geneve", SpecialLLC: "llc", SpecialByte: "byte"}
var relText = map[RelOp]string{RelEq: "=", RelNe: "!=", RelLt: "<", RelLe: "<=", RelGt: ">", RelGe: ">="}
var arithText = map[ArithOp]string{ArithAdd: "+", ArithSub: "-", ArithMul: "*", ArithDiv: "/",
	ArithMod: "%", ArithAnd: "&", ArithOr: "|", ArithXor: "^", ArithLsh: "<<", ArithRsh: ">>"}

// dump writes a node as a compact s-expression with positions, for
// comparing trees in tests: (or@5 A B), [tcp/-/port 21:num@12], ...
func dump(n any) string {
	var b strings.Builder
	dumpTo(&b, n)
	return b.String()
}

func dumpTo(b *strings.Builder, n any) {
	switch n := n.(type) {
	case nil:
		b.WriteString("nil")
	case *Binary:
		op := "and"
		if n.Op == Or {
			op = "or"
		}
		fmt.Fprintf(b, "(%s@%d ", op, n.OpPos)
		dumpTo(b, n.X)
		b.WriteString(" ")
		dumpTo(b, n.Y)
		b.WriteString(")")
	case *Not:
		fmt.Fprintf(b, "(not@%d ", n.NotPos)
		dumpTo(b, n.X)
		b.WriteString(")")
	case *Qualified:
		fmt.Fprintf(b, "[%s/%s/%s@%d %s:%s@%d", protoText[n.Q.Proto], dirText[n.Q.Dir], typeText[n.Q.Type],
			n.QualPos, n.ID.Text, kindText[n.ID.Kind], n.ID.IDPos)
		if n.ID.Kind == IDNum {
			fmt.Fprintf(b, "=%d", n.ID.Num)
		}
		if n.MaskLen >= 0 {
			fmt.Fprintf(b, "/%d", n.MaskLen)
		}
		if n.Mask != nil {
			fmt.Fprintf(b, " mask %s@%d", n.Mask.Text, n.Mask.IDPos)
		}
		b.WriteString("]")
	case *ProtoAbbrev:
		fmt.Fprintf(b, "%s@%d", protoText[n.Proto], n.ProtoPos)
	case *Special:
		fmt.Fprintf(b, "{%s@%d", specialText[n.Kind], n.KeyPos)
		if n.Proto != ProtoDefault {
			fmt.Fprintf(b, " %s", protoText[n.Proto])
		}
		if n.HasArg {
			fmt.Fprintf(b, " %d", n.Arg)
		}
		if n.Sub != "" {
			fmt.Fprintf(b, " %s", n.Sub)
		}
		if n.Kind == SpecialByte {
			fmt.Fprintf(b, " %c %d", n.ByteOp, n.ByteVal)
		}
		b.WriteString("}")
	case *Unsupported:
		fmt.Fprintf(b, "{unsupported %s@%d}", n.Keyword, n.KeyPos)
	case *Relation:
		fmt.Fprintf(b, "(%s@%d ", relText[n.Op], n.OpPos)
		dumpTo(b, n.X)
		b.WriteString(" ")
		dumpTo(b, n.Y)
		b.WriteString(")")
	case *Num:
		fmt.Fprintf(b, "%d@%d", n.Val, n.NumPos)
	case *Len:
		fmt.Fprintf(b, "len@%d", n.LenPos)
	case *Load:
		fmt.Fprintf(b, "%s[", protoText[n.Proto])
		dumpTo(b, n.Index)
		fmt.Fprintf(b, ":%d]@%d", n.Size, n.ProtoPos)
	case *ArithBinary:
		fmt.Fprintf(b, "(%s@%d ", arithText[n.Op], n.OpPos)
		dumpTo(b, n.X)
		b.WriteString(" ")
		dumpTo(b, n.Y)
		b.WriteString(")")
	case *Neg:
		fmt.Fprintf(b, "(neg@%d ", n.MinusPos)
		dumpTo(b, n.X)
		b.WriteString(")")
	default:
		fmt.Fprintf(b, "?%T", n)
	}
}

// hostile returns expressions meant to exhaust a careless parser's stack,
// time or memory.
func hostile() map[string]string {
	return map[string]string{
		"1MB name":          "host " + strings.Repeat("a", 1<<20-5),
		"over 1MB":          strings.Repeat(" ", MaxExprLen+1),
		"100000 parens":     strings.Repeat("(", 100000) + "tcp" + strings.Repeat(")", 100000),
		"100000 open":       strings.Repeat("(", 100000),
		"50000 ors":         "host 1.2.3.4" + strings.Repeat(" or 1.2.3.4", 50000),
		"50000 terms":       "tcp" + strings.Repeat(" or udp port 53", 50000),
		"100000 nots":       strings.Repeat("not ", 100000) + "tcp",
		"100000 bangs":      strings.Repeat("!", 100000) + "tcp",
		"arith chain":       "len = 1" + strings.Repeat(" + 1", 100000),
		"xor chain":         "len = 1" + strings.Repeat(" ^ 1", 100000),
		"mod chain":         "len = 1" + strings.Repeat(" % 1", 100000),
		"neg chain":         "len = " + strings.Repeat("-", 100000) + "1",
		"bracket nest":      strings.Repeat("ip[", 100000) + "0" + strings.Repeat("]", 100000) + " = 1",
		"arith parens":      "len = " + strings.Repeat("(", 100000) + "1" + strings.Repeat(")", 100000),
		"id list parens":    "host " + strings.Repeat("(1.2.3.4 or ", 100000) + "1.2.3.4" + strings.Repeat(")", 100000),
		"vlan parens":       "vlan " + strings.Repeat("(", 100000) + "1" + strings.Repeat(")", 100000),
		"long ipv6 colons":  "host " + strings.Repeat("1:", 300000),
		"long dotted":       "host " + strings.Repeat("1.", 300000) + "1",
		"long mac-ish":      "ether host " + strings.Repeat("aa-", 300000) + "aa",
		"many tokens":       strings.Repeat("tcp and ", 100000) + "tcp",
		"backslash":         "host \\" + strings.Repeat("x", 500000),
		"many lone parens":  strings.Repeat("() ", 300000),
		"nested paren nums": strings.Repeat("(", 100000) + "1" + strings.Repeat(")", 100000) + " = 1",
	}
}

func TestParseHostile(t *testing.T) {
	for name, expr := range hostile() {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			n, err := Parse(expr)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Parse took %v", d)
			}
			if err != nil {
				checkError(t, expr, err)
				t.Logf("error: %.120s", err)
			} else if n == nil {
				t.Errorf("no tree and no error")
			}
		})
	}
}

// checkError checks that err is an *Error about expr with an offset within
// it.
func checkError(t *testing.T, expr string, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%.80q: error %v is a %T, not an *Error", expr, err, err)
	}
	if e.Offset == -1 && len(expr) > MaxExprLen {
		return
	}
	if e.Offset < 0 || e.Offset > len(expr) {
		t.Fatalf("%.80q: error %v: offset %d outside [0, %d]", expr, err, e.Offset, len(expr))
	}
	if e.Token != "" && !strings.HasPrefix(expr[e.Offset:], e.Token) {
		t.Fatalf("%.80q: error %v: token %.40q is not the text at offset %d", expr, err, e.Token, e.Offset)
	}
	if e.Expr != expr {
		t.Fatalf("%.80q: error %v: Expr is not the expression", expr, err)
	}
}

func TestParse(t *testing.T) {
	tests := []struct{ name, expr, want string }{
		{"empty", "", "nil"},
		{"white space", " \t\n", "nil"},
		{"protocol alone", "tcp", "tcp@0"},
		{"link aliases", "link or ppp or wlan", "(or@12 (or@5 link@0 link@8) link@15)"},
		{"dashed protocol", "es-is", "esis@0"},

		// Qualifiers and inheritance.
		{"inherit port", "tcp port 21 or 22", "(or@12 [tcp/-/port@0 21:num@9=21] [tcp/-/port@15 22:num@15=22])"},
		{"inherit through not", "host 1.2.3.4 and not 1.2.3.5", "(and@13 [-/-/host@0 1.2.3.4:v4@5] (not@17 [-/-/host@21 1.2.3.5:v4@21]))"},
		{"id list", "host (1.2.3.4 or 1.2.3.5)", "(or@14 [-/-/host@0 1.2.3.4:v4@6] [-/-/host@17 1.2.3.5:v4@17])"},
		{"id list after and", "host 1.2.3.4 or (1.2.3.5 and not 1.2.3.6)", "(or@13 [-/-/host@0 1.2.3.4:v4@5] (and@25 [-/-/host@17 1.2.3.5:v4@17] (not@29 [-/-/host@33 1.2.3.6:v4@33])))"},
		{"id list then inherit", "host 1.2.3.4 and (1.2.3.5 or 1.2.3.6) or 1.2.3.7", "(or@38 (and@13 [-/-/host@0 1.2.3.4:v4@5] (or@26 [-/-/host@18 1.2.3.5:v4@18] [-/-/host@29 1.2.3.6:v4@29])) [-/-/host@41 1.2.3.7:v4@41])"},
		{"not id list", "tcp port 1 and not (2 or 3)", "(and@11 [tcp/-/port@0 1:num@9=1] (not@15 (or@22 [tcp/-/port@20 2:num@20=2] [tcp/-/port@25 3:num@25=3])))"},
		{"inside parentheses", "ip and (tcp port 1 or 2)", "(and@3 ip@0 (or@19 [tcp/-/port@8 1:num@17=1] [tcp/-/port@22 2:num@22=2]))"},
		// A parenthesized expression passes on the qualifiers before it.
		{"inherit across parentheses", "tcp port 1 and (udp port 2) or 3", "(or@28 (and@11 [tcp/-/port@0 1:num@9=1] [udp/-/port@16 2:num@25=2]) [tcp/-/port@31 3:num@31=3])"},
		{"inherit across protocol in parentheses", "host 1.2.3.4 and (tcp) or 1.2.3.5", "(or@23 (and@13 [-/-/host@0 1.2.3.4:v4@5] tcp@18) [-/-/host@26 1.2.3.5:v4@26])"},
		{"number list with parentheses", "port ((80) or 443)", "(or@11 [-/-/port@0 80:num@7=80] [-/-/port@14 443:num@14=443])"},
		{"not after type", "host not 1.2.3.4", "(not@5 [-/-/host@0 1.2.3.4:v4@9])"},
		{"src or dst", "src or dst host 1.2.3.4", "[-/src|dst/host@0 1.2.3.4:v4@16]"},
		{"dst and src", "dst and src net 10.0.0.0/8", "[-/src&dst/net@0 10.0.0.0:v4@16/8]"},
		{"dir without type", "ether src aa:bb:cc:dd:ee:ff", "[link/src/-@0 aa:bb:cc:dd:ee:ff:mac@10]"},
		{"802.11 addresses", "wlan addr1 aa:bb:cc:dd:ee:ff or ra 1:2:3:4:5:6", "(or@29 [link/addr1/-@0 aa:bb:cc:dd:ee:ff:mac@11] [-/ra/-@32 1:2:3:4:5:6:mac@35])"},

		// Ids.
		{"ipv6 net", "ip6 net 2001:db8::/32", "[ip6/-/net@0 2001:db8:::v6@8/32]"},
		{"mask", "net 10.1 mask 255.255.0.0", "[-/-/net@0 10.1:v4@4 mask 255.255.0.0@14]"},
		{"inherited mask", "ip host 1.2.3.4 or 1.2.3.5 mask 255.255.255.255", "(or@16 [ip/-/host@0 1.2.3.4:v4@8] [ip/-/host@19 1.2.3.5:v4@19 mask 255.255.255.255@32])"},
		{"number net", "net 10", "[-/-/net@0 10:num@4=10]"},
		{"number host", "host 0x0a000001", "[-/-/host@0 0x0a000001:num@5=167772161]"},
		{"escaped protocol", "ip proto \\tcp", "[ip/-/proto@0 tcp:name@9]"},
		{"protochain", "ip6 protochain 6", "[ip6/-/protochain@0 6:num@15=6]"},
		{"proto alone", "proto 17", "[-/-/proto@0 17:num@6=17]"},
		{"gateway", "ip gateway localhost", "[ip/-/gateway@0 localhost:name@11]"},
		{"port range", "tcp src portrange 1-1023 or 8080-8081", "(or@25 [tcp/src/portrange@0 1-1023:name@18] [tcp/src/portrange@28 8080-8081:name@28])"},
		{"ipv6 list", "host ::1 or ::2", "(or@9 [-/-/host@0 ::1:v6@5] [-/-/host@12 ::2:v6@12])"},
		{"arcnet", "ether host $1f", "[link/-/host@0 1f:arc@11]"},

		// and, or, not.
		{"same precedence, left to right", "tcp or udp and icmp", "(and@11 (or@4 tcp@0 udp@7) icmp@15)"},
		{"symbols", "!tcp && !udp || icmp", "(or@13 (and@5 (not@0 tcp@1) (not@8 udp@9)) icmp@16)"},
		{"double not", "not not tcp", "(not@0 (not@4 tcp@8))"},
		{"not relation", "not 1 = 1", "(not@0 (=@6 1@4 1@8))"},

		// Relations.
		{"tcp flags", "tcp[13] & 2 != 0", "(!=@12 (&@8 tcp[13@4:1]@0 2@10) 0@15)"},
		{"named constants", "tcp[tcpflags] & (tcp-syn|tcp-ack) = tcp-syn", "(=@34 (&@14 tcp[13@4:1]@0 (|@24 2@17 16@25)) 2@36)"},
		{"ip payload", "ip[2:2] - ((ip[0] & 0xf) << 2) > 0", "(>@31 (-@8 ip[2@3:2]@0 (<<@25 (&@18 ip[0@15:1]@12 15@20) 2@28)) 0@33)"},
		{"len", "len >= 100", "(>=@4 len@0 100@7)"},
		{"length", "length < 0x40", "(<@7 len@0 64@9)"},
		{"unary minus", "- len = 1", "(=@6 (neg@0 len@2) 1@8)"},
		{"xor takes the rest", "1 ^ 2 + 3 = 0", "(=@10 (^@2 1@0 (+@6 2@4 3@8)) 0@12)"},
		{"mod takes the rest", "7 % 4 * 2 = 7", "(=@10 (%@2 7@0 (*@6 4@4 2@8)) 7@12)"},
		{"usual precedence", "1 + 2 * 3 - 4 / 2 = 5", "(=@18 (-@10 (+@2 1@0 (*@6 2@4 3@8)) (/@14 4@12 2@16)) 5@20)"},
		{"precedence ladder", "1 | 2 & 3 << 4 + 5 * 6 = 0", "(=@23 (|@2 1@0 (&@6 2@4 (<<@10 3@8 (+@15 4@13 (*@19 5@17 6@21))))) 0@25)"},
		{"left deep", "len = 1 - 2 - 3", "(=@4 len@0 (-@12 (-@8 1@6 2@10) 3@14))"},
		{"minus binds tightest", "len = -1 * 2", "(=@4 len@0 (*@9 (neg@6 1@7) 2@11))"},
		{"minus before xor", "len = -1 ^ 2", "(=@4 len@0 (neg@6 (^@9 1@7 2@11)))"},
		{"parenthesized number", "(1) = 1", "(=@4 1@1 1@6)"},
		{"parenthesized arithmetic", "((1 + 1)) = 2", "(=@10 (+@4 1@2 1@6) 2@12)"},
		{"parenthesized relation", "(1 = 1)", "(=@3 1@1 1@5)"},
		{"word size", "ip[0:4] = 1", "(=@8 ip[0@3:4]@0 1@10)"},
		{"icmp6 type", "icmp6[icmp6type] = icmp6-echo", "(=@17 icmp6[0@6:1]@0 128@19)"},
		{"relation then inherit-free and", "len = 1 and tcp", "(and@8 (=@4 len@0 1@6) tcp@12)"},

		// Special primitives.
		{"ip broadcast", "ip broadcast", "{broadcast@3 ip}"},
		{"multicast", "multicast", "{multicast@0}"},
		{"link broadcast or ip multicast", "ether broadcast or ip multicast", "(or@16 {broadcast@6 link} {multicast@22 ip})"},
		{"less", "less 100", "{less@0 100}"},
		{"greater", "greater 200", "{greater@0 200}"},
		{"inbound outbound", "inbound or outbound", "(or@8 {inbound@0} {outbound@11})"},
		{"ifindex", "ifindex 3", "{ifindex@0 3}"},
		{"vlan", "vlan", "{vlan@0}"},
		{"vlan id", "vlan 100", "{vlan@0 100}"},
		{"encapsulations", "vlan (100) and mpls 5 and pppoes and pppoed and geneve 7", "(and@44 (and@33 (and@22 (and@11 {vlan@0 100} {mpls@15 5}) {pppoes@26}) {pppoed@37}) {geneve@48 7})"},
		{"llc", "llc", "{llc@0}"},
		{"llc rnr", "llc rnr", "{llc@0 rnr}"},
		{"llc any case", "llc UI", "{llc@0 ui}"},
		{"llc rulenum", "llc rulenum", "{llc@0 rnr}"},
		{"llc escaped", "llc \\rnr", "{llc@0 rnr}"},
		{"byte", "byte 2 = 6", "{byte@0 2 = 6}"},
		{"byte or", "byte 0 | 1", "{byte@0 0 | 1}"},

		// Other link types.
		{"802.11 type", "type mgt subtype beacon", "{unsupported type@0}"},
		{"802.11 subtype", "wlan subtype beacon", "{unsupported subtype@0}"},
		{"802.11 dir", "dir tods", "{unsupported dir@0}"},
		{"pflog", "on eth0", "{unsupported on@0}"},
		{"pflog fields", "rnr 3 and reason match and action pass", "(and@23 (and@6 {unsupported rnr@0} {unsupported reason@10}) {unsupported action@27})"},
		{"atm", "vpi 1 or vci (2 or 3) or vpi > 4 or lane", "(or@33 (or@22 (or@6 {unsupported vpi@0} {unsupported vci@9}) {unsupported vpi@25}) {unsupported lane@36})"},
		{"mtp", "sio 3 or opc != 2 or fisu or hsls (1 or 2)", "(or@26 (or@18 (or@6 {unsupported sio@0} {unsupported opc@9}) {unsupported fisu@21}) {unsupported hsls@29})"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Parse(tt.expr)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.expr, err)
			}
			if got := dump(n); got != tt.want {
				t.Errorf("Parse(%q):\n got %s\nwant %s", tt.expr, got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, expr string
		offset     int
		token, msg string // msg: a part of the message
	}{
		{"name from longest match", "len-1", 0, "len-1", "unexpected name 'len-1'"},
		{"hex minus", "ether[0]=0x1-1", 9, "0x1-1", "unexpected name"},
		{"keyword case", "TCP", 0, "TCP", "unexpected name 'TCP'"},
		{"bare id at start", "1.2.3.4", 0, "1.2.3.4", "expected a primitive"},
		{"bare number at start", "22", 2, "", "expected a comparison operator"},
		{"nothing to inherit after a protocol", "tcp or 22", 7, "22", "none to inherit"},
		{"nothing to inherit after parentheses", "(tcp port 1) or 2", 16, "2", "none to inherit"},
		{"nothing to inherit after vlan", "vlan 100 or 200", 12, "200", "none to inherit"},
		{"term in an id list", "host 1.2.3.4 and (1.2.3.5 or tcp)", 29, "tcp", "expected an id"},
		{"id list in id list", "host ((1.2.3.4 or 1.2.3.5))", 5, "(", "cannot begin with another parenthesized list"},
		{"protocol after dir", "src proto 6", 4, "proto", "after a direction"},
		{"src or what", "src or 1.2.3.4", 7, "1.2.3.4", "expected 'dst' after 'src or'"},
		{"keyword as id", "ip proto tcp", 9, "tcp", "expected an id"},
		{"number with slash", "net 10/8", 6, "/", "expected 'and', 'or'"},
		{"mask needs dotted", "net 10.0.0.0 mask 0xff000000", 18, "0xff000000", "a dotted netmask"},
		{"v6 mask keyword", "ip6 net ::1 mask ::1", 12, "mask", "expected 'and', 'or'"},
		{"mask length v4", "net 10.0.0.0/33", 13, "33", "mask length must be <= 32"},
		{"mask length v6", "net ::/129", 7, "129", "mask length must be <= 128"},
		{"size 3", "ip[0:3] = 1", 5, "3", "data size must be 1, 2, or 4"},
		{"size in parentheses", "ip[0:(2)] = 1", 5, "(", "a size (1, 2 or 4)"},
		{"unclosed bracket", "ip[0", 2, "[", "unbalanced bracket"},
		{"chained comparison", "1 = 1 = 1", 6, "=", "expected 'and', 'or'"},
		{"len alone", "len", 3, "", "expected a comparison operator"},
		{"less in parentheses", "less (10)", 5, "(", "a number after 'less'"},
		{"byte xor", "byte 1 ^ 2", 7, "^", "one of & | < > ="},
		{"llc number", "llc 1", 4, "1", "expected 'and', 'or'"},
		{"llc unknown", "llc foo", 4, "foo", "unknown LLC type name"},
		{"unclosed parenthesis", "(tcp or udp", 0, "(", "unbalanced parenthesis: no ')' closes this '('"},
		{"extra parenthesis", "tcp)", 3, ")", "unbalanced parenthesis: no '(' opens this ')'"},
		{"empty parentheses", "()", 1, ")", "unexpected ')': expected a primitive"},
		{"dangling and", "tcp and", 7, "", "unexpected end of expression"},
		{"dangling not", "not", 3, "", "unexpected end of expression"},
		{"juxtaposed", "tcp udp", 4, "udp", "expected 'and', 'or'"},
		{"vlan needs a number", "vlan (tcp)", 5, "(", "expected 'and', 'or'"},
		{"overflow", "len = 4294967296", 6, "4294967296", "overflows 32 bits"},
		{"octal", "len = 08", 6, "08", "non-octal digit"},
		{"bogus ethernet", "host 1:2:3", 5, "1:2:", "bogus ethernet address"},
		{"bogus ipv6", "host ::1.2.3.400", 5, "::1.2.3.400", "bogus IPv6 address"},
		{"invalid character", "tcp @", 4, "@", "invalid character"},
		{"backslash alone", "host \\", 5, "\\", "backslash"},
		{"unsupported syntax", "vpi", 3, "", "after 'vpi'"},
		{"pflog needs a name", "on 3", 3, "3", "a name after 'on'"},
		{"802.11 subtype", "subtype 3", 8, "3", "a frame subtype name"},
		{"too long", strings.Repeat(" ", MaxExprLen+1), -1, "", "the limit is"},
		{"too deep", strings.Repeat("(", MaxDepth+1) + "tcp" + strings.Repeat(")", MaxDepth+1), MaxDepth, "(", "nested too deeply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Parse(tt.expr)
			if err == nil {
				t.Fatalf("Parse(%.60q) = %s, want an error", tt.expr, dump(n))
			}
			checkError(t, tt.expr, err)
			e := err.(*Error)
			if e.Offset != tt.offset || e.Token != tt.token || !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("Parse(%.60q): %v\nwant offset %d, token %q, message containing %q", tt.expr, err, tt.offset, tt.token, tt.msg)
			}
		})
	}
}

// checkPositions checks that every position in the tree is a byte offset
// within expr.
func checkPositions(t *testing.T, expr string, n any) {
	t.Helper()
	var walk func(n any)
	bad := func(what string, pos int) {
		if pos < 0 || pos >= len(expr) {
			t.Fatalf("%q: %s position %d outside the expression: %s", expr, what, pos, dump(n))
		}
	}
	walk = func(n any) {
		switch n := n.(type) {
		case *Binary:
			bad("and/or", n.OpPos)
			walk(n.X)
			walk(n.Y)
		case *Not:
			bad("not", n.NotPos)
			walk(n.X)
		case *Qualified:
			bad("qualifier", n.QualPos)
			bad("id", n.ID.IDPos)
			if n.Mask != nil {
				bad("mask", n.Mask.IDPos)
			}
		case *ProtoAbbrev:
			bad("protocol", n.ProtoPos)
		case *Special:
			bad("special", n.KeyPos)
		case *Unsupported:
			bad("unsupported", n.KeyPos)
		case *Relation:
			bad("relation", n.OpPos)
			walk(n.X)
			walk(n.Y)
		case *Num:
			bad("number", n.NumPos)
		case *Len:
			bad("len", n.LenPos)
		case *Load:
			bad("load", n.ProtoPos)
			walk(n.Index)
		case *ArithBinary:
			bad("arithmetic", n.OpPos)
			walk(n.X)
			walk(n.Y)
		case *Neg:
			bad("minus", n.MinusPos)
			walk(n.X)
		default:
			t.Fatalf("%q: unexpected node %T", expr, n)
		}
	}
	walk(n)
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"tcp port 21 or 22", "host (1.2.3.4 or ::1) and not ether src aa:bb:cc:dd:ee:ff",
		"tcp[13] & 2 != 0 or ip[0:4] ^ 1 % 3 = -len", "vlan 100 and (mpls or pppoes (3))",
		"net 10.1 mask 255.255.0.0 or 10.0.0.0/8", "((((1)))) = 1", "llc i or byte 1 = 2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		n, err := Parse(expr)
		if err != nil {
			checkError(t, expr, err)
			return
		}
		if n == nil {
			if strings.Trim(expr, " \t\r\n") != "" {
				t.Fatalf("%q: no tree and no error", expr)
			}
			return
		}
		checkPositions(t, expr, n)
	})
}

func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct{ name, expr string }{
		{"short", "tcp port 21 or 22"},
		{"typical", "ip and tcp[13] & (tcp-syn|tcp-ack) = tcp-syn and not src net 10.0.0.0/8 and dst port (80 or 443)"},
		{"1MB", "host 1.2.3.4" + strings.Repeat(" or 10.20.30.40", (MaxExprLen-12)/15)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.expr)))
			for b.Loop() {
				if _, err := Parse(bc.expr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The differential tests: Parse against libpcap (build tag libpcap).

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
