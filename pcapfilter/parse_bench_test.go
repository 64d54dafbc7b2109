package pcapfilter

// Benchmarks of the lexer and the parser, and the proof that the fast
// lexer makes the same tokens as the straightforward one it replaced
// (kept below, frozen, as oldLexAt: it tries every token class at every
// token and takes the longest, in libpcap's order). Where the fast lexer
// still calls the measuring functions of the old one (idLen, macLen, ...),
// the old one calls them too rather than keep copies.

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchParseExprs returns the expressions the parse benchmarks use, by
// name: those of BenchmarkCompile (long, the longest realworld
// expression, only when the corpus is there).
func benchParseExprs(tb testing.TB) [][2]string {
	out := [][2]string{
		{"short", "tcp dst port 21"},
		{"payload", "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420"},
	}
	longest := ""
	for _, e := range readFilterLists(tb, "realworld.txt") {
		if len(e) > len(longest) {
			longest = e
		}
	}
	if longest != "" {
		out = append(out, [2]string{"long", longest})
	}
	return append(out, [2]string{"huge-250", orHosts(250)}, [2]string{"huge", orHosts(5000)})
}

// orHosts returns n "host 10.x.y.z" terms joined by or.
func orHosts(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(" or ")
		}
		fmt.Fprintf(&b, "host 10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff)
	}
	return b.String()
}

// readFilterLists returns the expressions of the corpus's filter lists
// matching glob, or none (with a log line) when the corpus is absent.
func readFilterLists(tb testing.TB, glob string) []string {
	files, _ := filepath.Glob(filepath.Join("../../shared/corpus/filters", glob))
	if len(files) == 0 {
		tb.Logf("the shared corpus (../../shared/corpus/filters/%s) is absent", glob)
		return nil
	}
	var exprs []string
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			tb.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if line := sc.Text(); strings.TrimSpace(line) != "" && !strings.HasPrefix(line, "#") {
				exprs = append(exprs, line)
			}
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			tb.Fatal(err)
		}
	}
	return exprs
}

// BenchmarkParseExprs parses the expressions BenchmarkCompile compiles.
func BenchmarkParseExprs(b *testing.B) {
	for _, e := range benchParseExprs(b) {
		b.Run(e[0], func(b *testing.B) {
			if _, err := Parse(e[1]); err != nil {
				b.Fatalf("Parse %.60q: %v", e[1], err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(e[1])))
			for b.Loop() {
				if _, err := Parse(e[1]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLex times the lexer alone: every token of each expression.
func BenchmarkLex(b *testing.B) {
	for _, e := range benchParseExprs(b) {
		b.Run(e[0], func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(e[1])))
			for b.Loop() {
				lx := lexer{src: e[1]}
				for lx.next().kind != tEOF {
				}
			}
		})
	}
}

// BenchmarkLexOld times the old lexer on the same expressions, for
// comparing with BenchmarkLex in one process.
func BenchmarkLexOld(b *testing.B) {
	for _, e := range benchParseExprs(b) {
		b.Run(e[0], func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(e[1])))
			for b.Loop() {
				s := e[1]
				for i := 0; ; {
					for i < len(s) && oldIsSpace(s[i]) {
						i++
					}
					if i >= len(s) {
						break
					}
					i = oldLexAt(s, i).end
				}
			}
		})
	}
}

// lexStream is every token of s, errors included (the lexer goes on after
// one), as the old lexer makes them when old is set.
func lexStream(s string, old bool) []token {
	var out []token
	if old {
		i := 0
		for {
			for i < len(s) && oldIsSpace(s[i]) {
				i++
			}
			if i >= len(s) {
				return append(out, token{kind: tEOF, pos: i, end: i})
			}
			t := oldLexAt(s, i)
			out = append(out, t)
			i = t.end
		}
	}
	lx := lexer{src: s}
	for {
		t := lx.next()
		out = append(out, t)
		if t.kind == tEOF {
			return out
		}
	}
}

// lexProbeChars are the characters random probes are made of, weighted
// toward those of numbers, addresses and names.
const lexProbeChars = "0123456789abcdefABCDEFxX....::::----__$\\ \t()[]!=<>&|^%+*/ghilmnopqrstuvwyz#\x80\xc3\xa9"

// lexProbeWords are pieces of tokens random probes are glued from.
var lexProbeWords = []string{
	"tcp", "ip", "ip6", "icmp", "icmp6", "es-is", "is-is", "l1", "port", "portrange", "host", "len",
	"length", "tcp-syn", "icmp-echo", "icmp6-echo", "tcpflags", "oamf4", "address1", "addr4",
	"0x", "0X", "0x1f", "08", "010", "4294967295", "4294967296", "1", "12", "123", "1234", "12345",
	"aa", "a", "f", "ff", "fff", "ffff", "fffff", "::", ":", "1.2.3.4", "10.1", "0x1.2", ".", "-", "_",
	"aabbccddeeff", "001122334455", "aabb.ccdd.eeff", "aa:bb:cc:dd:ee:ff", "1-2-3-4-5-6", "fe80::1",
	"::ffff:1.2.3.4", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:1.2.3.4", "\\", "$", "$1", " ", "and", "or", "not",
}

// lexProbes returns n random strings: character soups, glued token
// pieces, and mutations of the corpus expressions, from a fixed seed.
func lexProbes(n int, corpus []string) []string {
	rng := rand.New(rand.NewPCG(17, 19))
	out := make([]string, 0, n)
	for len(out) < n {
		var b []byte
		switch k := rng.IntN(4); {
		case k == 0:
			for m := 1 + rng.IntN(24); m > 0; m-- {
				b = append(b, lexProbeChars[rng.IntN(len(lexProbeChars))])
			}
		case k == 1 || len(corpus) == 0:
			for m := 1 + rng.IntN(6); m > 0; m-- {
				b = append(b, lexProbeWords[rng.IntN(len(lexProbeWords))]...)
				if rng.IntN(3) == 0 {
					b = append(b, lexProbeChars[rng.IntN(len(lexProbeChars))])
				}
			}
		default:
			b = []byte(corpus[rng.IntN(len(corpus))])
			for m := 1 + rng.IntN(4); m > 0 && len(b) > 0; m-- {
				i := rng.IntN(len(b))
				switch rng.IntN(4) {
				case 0:
					b = append(b[:i], b[i+1:]...)
				case 1:
					b = append(b[:i], append([]byte{lexProbeChars[rng.IntN(len(lexProbeChars))]}, b[i:]...)...)
				case 2:
					b[i] = lexProbeChars[rng.IntN(len(lexProbeChars))]
				case 3:
					w := lexProbeWords[rng.IntN(len(lexProbeWords))]
					b = append(b[:i], append([]byte(w), b[i:]...)...)
				}
			}
		}
		out = append(out, string(b))
	}
	return out
}

var lexProbesN = flag.Int("lexprobes", 200000, "how many random strings TestLexerMatchesOld compares")

// TestLexerMatchesOld checks that the lexer makes exactly the tokens the
// old one made (kind, position, text, value, message) on every corpus
// expression, on every expression the parser tests generate, and on
// random and mutated strings.
func TestLexerMatchesOld(t *testing.T) {
	corpus := readFilterLists(t, "*.txt")
	inputs := append([]string{}, corpus...)
	inputs = append(inputs, templates...)
	inputs = append(inputs, vocabulary...)
	inputs = append(inputs, generated(20000)...)
	inputs = append(inputs, lexerProbes(20000)...)
	inputs = append(inputs, lexProbes(*lexProbesN, corpus)...)
	for _, e := range benchParseExprs(t) {
		inputs = append(inputs, e[1])
	}
	bad := 0
	for _, s := range inputs {
		got, want := lexStream(s, false), lexStream(s, true)
		for i := 0; i < max(len(got), len(want)); i++ {
			var g, w token
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if g != w {
				t.Errorf("lex %q: token %d is %+v; the old lexer made %+v", s, i, g, w)
				bad++
				break
			}
		}
		if bad > 20 {
			t.Fatal("too many differences")
		}
	}
	t.Logf("%d strings lex as before (%d from the corpus)", len(inputs), len(corpus))
}

// TestWordTable checks the reserved-word table against the maps it is
// built from: each word finds its own entry (protocols before keywords
// before named constants), and near misses find none.
func TestWordTable(t *testing.T) {
	check := func(w string, kind tokKind, proto Proto, num uint32) {
		t.Helper()
		e := lookupWord(w)
		if e == nil || e.kind != kind || e.proto != proto || e.num != num || wordText[e.off:int(e.off)+int(e.n)] != w {
			t.Errorf("lookupWord(%q) = %+v; want kind %d proto %d num %d", w, e, kind, proto, num)
		}
		for _, miss := range []string{w + "x", w[:len(w)-1], strings.ToUpper(w)} {
			if e := lookupWord(miss); e != nil && !reserved(miss) {
				t.Errorf("lookupWord(%q) = %+v; it is not reserved", miss, e)
			}
		}
	}
	n := 0
	for w, p := range protoNames {
		check(w, tProto, p, 0)
		n++
	}
	for w, k := range keywords {
		if _, ok := protoNames[w]; !ok {
			check(w, k, 0, 0)
			n++
		}
	}
	for w, v := range namedNums {
		_, p := protoNames[w]
		_, k := keywords[w]
		if !p && !k {
			check(w, tNum, 0, v)
			n++
		}
	}
	t.Logf("%d reserved words", n)
}

func reserved(w string) bool {
	_, p := protoNames[w]
	_, k := keywords[w]
	_, n := namedNums[w]
	return p || k || n
}

// FuzzLexerMatchesOld compares the lexer with the old one on fuzzed
// strings (go test -fuzz FuzzLexerMatchesOld ./pcapfilter).
func FuzzLexerMatchesOld(f *testing.F) {
	for _, s := range append(append([]string{}, templates...), lexProbeWords...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, want := lexStream(s, false), lexStream(s, true)
		if len(got) != len(want) {
			t.Fatalf("lex %q: %d tokens; the old lexer made %d:\n%+v\n%+v", s, len(got), len(want), got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("lex %q: token %d is %+v; the old lexer made %+v", s, i, got[i], want[i])
			}
		}
	})
}

var parseDump = flag.String("parse.dump", "", "TestParseDump: write every probe's tree or error to this file")

// TestParseDump writes the trees (or errors) Parse makes of the corpus
// and of many generated and random expressions to the file -parse.dump
// names, so that two versions of the parser can be compared with diff
// (run it at each commit). Without the flag it checks only that Parse
// returns a tree or an *Error for each.
func TestParseDump(t *testing.T) {
	corpus := readFilterLists(t, "*.txt")
	inputs := append([]string{}, corpus...)
	inputs = append(inputs, templates...)
	inputs = append(inputs, generated(50000)...)
	inputs = append(inputs, lexerProbes(50000)...)
	inputs = append(inputs, lexProbes(50000, corpus)...)
	var w *bufio.Writer
	if *parseDump != "" {
		f, err := os.Create(*parseDump)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		w = bufio.NewWriter(f)
		defer w.Flush()
	}
	for _, s := range inputs {
		n, err := Parse(s)
		var line string
		if err != nil {
			e, ok := err.(*Error)
			if !ok || n != nil {
				t.Fatalf("Parse %q: %v (%T) and %v", s, err, err, n)
			}
			line = fmt.Sprintf("%q\terror %d %q %q\n", s, e.Offset, e.Token, e.Msg)
		} else {
			line = fmt.Sprintf("%q\t%s\n", s, dump(n))
		}
		if w != nil {
			w.WriteString(line)
		}
	}
	t.Logf("%d expressions parsed", len(inputs))
}

// The old lexer, frozen: the reference TestLexerMatchesOld compares with.

func oldIsSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
func oldIsDigit(c byte) bool { return '0' <= c && c <= '9' }
func oldIsHex(c byte) bool {
	return oldIsDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
func oldIsAlnum(c byte) bool {
	return oldIsDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// oldKeywords maps each keyword of the language to its token kind; protocol
// names map to tProto and are in oldProtoNames.
var oldKeywords = map[string]tokKind{
	"src": tSrc, "dst": tDst,
	"addr1": tAddr1, "address1": tAddr1, "addr2": tAddr2, "address2": tAddr2,
	"addr3": tAddr3, "address3": tAddr3, "addr4": tAddr4, "address4": tAddr4,
	"ra": tRA, "ta": tTA,
	"host": tHost, "net": tNet, "port": tPort, "portrange": tPortRange,
	"gateway": tGateway, "proto": tProtoKW, "protochain": tProtochain, "mask": tMask,
	"less": tLess, "greater": tGreater, "byte": tByte,
	"broadcast": tBroadcast, "multicast": tMulticast,
	"and": tAnd, "or": tOr, "not": tNot,
	"len": tLen, "length": tLen,
	"inbound": tInbound, "outbound": tOutbound, "ifindex": tIfindex,
	"vlan": tVLAN, "mpls": tMPLS, "pppoed": tPPPoED, "pppoes": tPPPoES, "geneve": tGeneve,
	"llc":  tLLC,
	"type": tType, "subtype": tSubtype, "dir": tDir, "direction": tDir,
	"on": tPFIfname, "ifname": tPFIfname, "rnr": tPFRnr, "rulenum": tPFRnr,
	"srnr": tPFSrnr, "subrulenum": tPFSrnr, "reason": tPFReason,
	"rset": tPFRset, "ruleset": tPFRset, "action": tPFAction,
	"lane": tATMType, "metac": tATMType, "bcc": tATMType, "oam": tATMType, "oamf4": tATMType,
	"sc": tATMType, "ilmic": tATMType,
	"connectmsg": tATMMultiType, "metaconnect": tATMMultiType,
	"vpi": tATMField, "vci": tATMField,
	"fisu": tMTP2Type, "lssu": tMTP2Type, "lsu": tMTP2Type, "msu": tMTP2Type,
	"hfisu": tMTP2Type, "hlssu": tMTP2Type, "hmsu": tMTP2Type,
	"sio": tMTP3Field, "opc": tMTP3Field, "dpc": tMTP3Field, "sls": tMTP3Field,
	"hsio": tMTP3Field, "hopc": tMTP3Field, "hdpc": tMTP3Field, "hsls": tMTP3Field,
}

// oldProtoNames maps the protocol oldKeywords to their qualifier.
var oldProtoNames = map[string]Proto{
	"link": ProtoLink, "ether": ProtoLink, "ppp": ProtoLink, "slip": ProtoLink,
	"fddi": ProtoLink, "tr": ProtoLink, "wlan": ProtoLink,
	"ip": ProtoIP, "ip6": ProtoIP6, "arp": ProtoARP, "rarp": ProtoRARP,
	"tcp": ProtoTCP, "udp": ProtoUDP, "sctp": ProtoSCTP,
	"icmp": ProtoICMP, "icmp6": ProtoICMP6, "igmp": ProtoIGMP, "igrp": ProtoIGRP,
	"pim": ProtoPIM, "vrrp": ProtoVRRP, "carp": ProtoCARP, "ah": ProtoAH, "esp": ProtoESP,
	"atalk": ProtoAtalk, "aarp": ProtoAARP, "decnet": ProtoDECnet, "lat": ProtoLAT,
	"sca": ProtoSCA, "moprc": ProtoMOPRC, "mopdl": ProtoMOPDL,
	"iso": ProtoISO, "esis": ProtoESIS, "es-is": ProtoESIS, "isis": ProtoISIS, "is-is": ProtoISIS,
	"clnp": ProtoCLNP, "l1": ProtoL1, "l2": ProtoL2, "iih": ProtoIIH, "lsp": ProtoLSP,
	"snp": ProtoSNP, "csnp": ProtoCSNP, "psnp": ProtoPSNP,
	"stp": ProtoSTP, "ipx": ProtoIPX, "netbeui": ProtoNetBEUI, "radio": ProtoRadio,
}

// oldNamedNums are the named constants, which lex as numbers.
var oldNamedNums = map[string]uint32{
	"icmptype": 0, "icmpcode": 1,
	"icmp-echoreply": 0, "icmp-unreach": 3, "icmp-sourcequench": 4, "icmp-redirect": 5,
	"icmp-echo": 8, "icmp-routeradvert": 9, "icmp-routersolicit": 10, "icmp-timxceed": 11,
	"icmp-paramprob": 12, "icmp-tstamp": 13, "icmp-tstampreply": 14, "icmp-ireq": 15,
	"icmp-ireqreply": 16, "icmp-maskreq": 17, "icmp-maskreply": 18,
	"icmp6type": 0, "icmp6code": 1,
	"icmp6-destinationunreach": 1, "icmp6-packettoobig": 2, "icmp6-timeexceeded": 3,
	"icmp6-parameterproblem": 4, "icmp6-echo": 128, "icmp6-echoreply": 129,
	"icmp6-multicastlistenerquery": 130, "icmp6-multicastlistenerreportv1": 131,
	"icmp6-multicastlistenerdone": 132, "icmp6-routersolicit": 133, "icmp6-routeradvert": 134,
	"icmp6-neighborsolicit": 135, "icmp6-neighboradvert": 136, "icmp6-redirect": 137,
	"icmp6-routerrenum": 138, "icmp6-nodeinformationquery": 139,
	"icmp6-nodeinformationresponse": 140, "icmp6-ineighbordiscoverysolicit": 141,
	"icmp6-ineighbordiscoveryadvert": 142, "icmp6-multicastlistenerreportv2": 143,
	"icmp6-homeagentdiscoveryrequest": 144, "icmp6-homeagentdiscoveryreply": 145,
	"icmp6-mobileprefixsolicit": 146, "icmp6-mobileprefixadvert": 147,
	"icmp6-certpathsolicit": 148, "icmp6-certpathadvert": 149,
	"icmp6-multicastrouteradvert": 151, "icmp6-multicastroutersolicit": 152,
	"icmp6-multicastrouterterm": 153,
	"tcpflags":                  13, "tcp-fin": 0x01, "tcp-syn": 0x02, "tcp-rst": 0x04, "tcp-push": 0x08,
	"tcp-ack": 0x10, "tcp-urg": 0x20, "tcp-ece": 0x40, "tcp-cwr": 0x80,
}

// oldLexAt lexes the token starting at s[i], which is not white space.
func oldLexAt(s string, i int) token {
	c := s[i]
	two := ""
	if i+1 < len(s) {
		two = s[i : i+2]
	}
	op := func(k tokKind, n int) token { return token{kind: k, pos: i, end: i + n, text: s[i : i+n]} }
	switch two {
	case ">=":
		return op(tGe, 2)
	case "<=":
		return op(tLe, 2)
	case "!=":
		return op(tNe, 2)
	case "==":
		return op(tEq, 2)
	case "<<":
		return op(tLsh, 2)
	case ">>":
		return op(tRsh, 2)
	case "&&":
		return op(tAnd, 2)
	case "||":
		return op(tOr, 2)
	}
	switch c {
	case '(':
		return op(tLParen, 1)
	case ')':
		return op(tRParen, 1)
	case '[':
		return op(tLBracket, 1)
	case ']':
		return op(tRBracket, 1)
	case ':':
		// A ':' may begin an IPv6 address ("::1").
		if n := oldV6Len(s, i); n > 0 {
			return lexV6(s, i, n)
		}
		return op(tColon, 1)
	case '!':
		return op(tNot, 1)
	case '=':
		return op(tEq, 1)
	case '<':
		return op(tLt, 1)
	case '>':
		return op(tGt, 1)
	case '+':
		return op(tPlus, 1)
	case '-':
		return op(tMinus, 1)
	case '*':
		return op(tStar, 1)
	case '/':
		return op(tSlash, 1)
	case '%':
		return op(tPercent, 1)
	case '&':
		return op(tAmp, 1)
	case '|':
		return op(tPipe, 1)
	case '^':
		return op(tCaret, 1)
	case '\\':
		// A backslash and the characters up to white space, '!', '(' or
		// ')' are a name: "\ip" is the name "ip".
		j := i + 1
		for j < len(s) && !oldIsSpace(s[j]) && s[j] != '!' && s[j] != '(' && s[j] != ')' {
			j++
		}
		if j == i+1 {
			return token{kind: tError, pos: i, end: j, text: s[i:j], msg: "a backslash must be followed by a name"}
		}
		return token{kind: tID, pos: i, end: j, text: s[i+1 : j]}
	case '$':
		// An ARCnet address: '$' and one or two hex digits.
		j := i + 1
		for j < len(s) && j < i+3 && oldIsHex(s[j]) {
			j++
		}
		if j > i+1 {
			return token{kind: tAID, pos: i, end: j, text: s[i+1 : j]}
		}
	}
	if !oldIsAlnum(c) {
		j := i + 1
		for j < len(s) && s[j] >= 0x80 {
			j++ // keep a UTF-8 sequence whole
		}
		return token{kind: tError, pos: i, end: j, text: s[i:j], msg: "invalid character " + quoteTok(s[i:j])}
	}

	// The candidates, longest wins; on a tie the earlier of keyword, MAC,
	// number, dotted number, IPv6, bogus MAC, name.
	idn := idLen(s, i)
	macn := macLen(s, i)
	numn := numLen(s, i)
	hidn := hidLen(s, i)
	// IPv6 and bogus MAC addresses begin with hex digits and a ':'.
	j := i
	for j < len(s) && oldIsHex(s[j]) {
		j++
	}
	v6n, bogusn := 0, 0
	if j < len(s) && s[j] == ':' {
		v6n = oldV6Len(s, i)
		bogusn = bogusMACLen(s, i)
	}
	best := max(idn, macn, numn, hidn, v6n, bogusn)
	word := s[i : i+best]
	switch {
	case idn == best:
		if p, ok := oldProtoNames[word]; ok {
			return token{kind: tProto, pos: i, end: i + best, text: word, proto: p}
		}
		if k, ok := oldKeywords[word]; ok {
			return token{kind: k, pos: i, end: i + best, text: word}
		}
	}
	switch best {
	case macn:
		return token{kind: tEID, pos: i, end: i + best, text: word}
	case numn:
		return oldLexNum(s, i, best)
	case hidn:
		return token{kind: tHID, pos: i, end: i + best, text: word}
	case v6n:
		return lexV6(s, i, best)
	case bogusn:
		return token{kind: tError, pos: i, end: i + best, text: word, msg: "bogus ethernet address " + oldClip(word)}
	}
	if v, ok := oldNamedNums[word]; ok {
		return token{kind: tNum, pos: i, end: i + best, text: word, num: v}
	}
	return token{kind: tID, pos: i, end: i + best, text: word}
}

// oldClip shortens the text of a token for a message.
func oldClip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// oldLexNum makes the number s[i:i+n]: decimal, 0x hex, or octal with a
// leading 0, of at most 32 bits.
func oldLexNum(s string, i, n int) token {
	word := s[i : i+n]
	t := token{kind: tNum, pos: i, end: i + n, text: word}
	base, digits := uint64(10), word
	switch {
	case len(word) > 2 && (word[1] == 'x' || word[1] == 'X'):
		base, digits = 16, word[2:]
	case len(word) > 1 && word[0] == '0':
		base, digits = 8, word[1:]
	}
	var v uint64
	for j := 0; j < len(digits); j++ {
		d := digits[j]
		var dv uint64
		switch {
		case oldIsDigit(d):
			dv = uint64(d - '0')
		case 'a' <= d && d <= 'f':
			dv = uint64(d-'a') + 10
		default:
			dv = uint64(d-'A') + 10
		}
		if dv >= base {
			return token{kind: tError, pos: i, end: i + n, text: word, msg: "number " + oldClip(word) + " contains non-octal digit"}
		}
		v = v*base + dv
		if v > 0xffffffff {
			return token{kind: tError, pos: i, end: i + n, text: word, msg: "number " + oldClip(word) + " overflows 32 bits"}
		}
	}
	t.num = uint32(v)
	return t
}

// oldV6Len is the length of the longest IPv6 address at s[i] by libpcap's
// lexical rules: eight groups of one to four hex digits, or fewer with
// one "::", the last two groups possibly written as dotted IPv4 (four
// numbers). The text is not validated here.
func oldV6Len(s string, i int) int {
	best := 0
	// Try each way of reading groups; the text is short, so simply scan:
	// collect groups left to right, noting where "::" is.
	type state struct {
		j      int  // position
		groups int  // groups so far (an IPv4 tail counts two)
		dbl    bool // "::" seen
	}
	// Forms: [groups] "::" [groups] or 8 groups, optional IPv4 tail.
	// Enumerate by a small search.
	var search func(st state, needSep bool)
	search = func(st state, needSep bool) {
		j := st.j
		if needSep {
			// Ends here?
			if (st.dbl && st.groups <= 7) || (!st.dbl && st.groups == 8) {
				best = max(best, j-i)
			}
			if j < len(s) && s[j] == ':' {
				if j+1 < len(s) && s[j+1] == ':' && !st.dbl {
					st2 := state{j + 2, st.groups, true}
					if st.groups <= 7 {
						best = max(best, st2.j-i)
						search(st2, false)
					}
				}
				search(state{j + 1, st.groups, st.dbl}, false)
			}
			return
		}
		// A group, or an IPv4 tail.
		if st.groups <= 6 {
			if n := oldIPv4TailLen(s, j); n > 0 {
				g := st.groups + 2
				if (st.dbl && g <= 7) || (!st.dbl && g == 8) {
					best = max(best, j+n-i)
				}
			}
		}
		if n := hexRun(s, j, 4); n > 0 && st.groups < 8 {
			search(state{j + n, st.groups + 1, st.dbl}, true)
		}
	}
	if strings.HasPrefix(s[i:], "::") {
		best = max(best, 2)
		search(state{i + 2, 0, true}, false)
	} else {
		search(state{i, 0, false}, false)
	}
	return best
}

// oldIPv4TailLen is the length of four dot-separated numbers at s[i], as
// libpcap's IPv6 rule allows them at the end of an address.
func oldIPv4TailLen(s string, i int) int {
	j := i
	for p := 0; p < 4; p++ {
		if p > 0 {
			if j >= len(s) || s[j] != '.' {
				return 0
			}
			j++
		}
		n := numLen(s, j)
		if n == 0 {
			return 0
		}
		j += n
	}
	return j - i
}
