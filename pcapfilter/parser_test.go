package pcapfilter

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"
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

func TestParseDump(t *testing.T) {
	for _, e := range strings.Split(*dumpExprs, ";;") {
		if e == "" {
			continue
		}
		n, err := Parse(e)
		var pe *Error
		if err != nil && !errors.As(err, &pe) {
			t.Errorf("%q: error of type %T", e, err)
		}
		t.Logf("%q => %s %v", e, dump(n), err)
	}
}

var dumpExprs = flag.String("dump", "", "expressions separated by ';;' for TestParseDump to print")

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
