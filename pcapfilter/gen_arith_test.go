package pcapfilter_test

// Relations, arithmetic, byte accessors, len, less and greater, compared
// with libpcap 1.10 on every supported link type.

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/headlessbpf/bpfmatch"
	"github.com/headlessbpf/bpfmatch/internal/libpcap"
	"github.com/headlessbpf/bpfmatch/pcapfilter"
	"golang.org/x/net/bpf"
)

// arithCases are relations libpcap compiles, at least for some link
// types: each runs on every link type, where acceptance must agree too.
var arithCases = []struct{ name, expr string }{
	// Every relational operator, both ways round.
	{"len eq", "len = 60"},
	{"len eqeq", "len == 60"},
	{"len ne", "len != 60"},
	{"len lt", "len < 60"},
	{"len le", "len <= 60"},
	{"len gt", "len > 60"},
	{"len ge", "len >= 60"},
	{"const lt len", "60 < len"},
	{"const le len", "60 <= len"},
	{"const gt len", "60 > len"},
	{"const ge len", "60 >= len"},
	{"const ne len", "60 != len"},
	{"len eq len", "len = len"},
	{"len gt len", "len > len"},
	{"len lt 0", "len < 0"},
	{"len ge 0", "len >= 0"},
	{"less", "less 100"},
	{"greater", "greater 100"},
	{"less 0", "less 0"},
	{"greater 0", "greater 0"},
	{"not less", "not less 80"},
	{"less or greater", "less 60 or greater 1000"},

	// Every arithmetic operator, constant and variable right operands.
	{"add", "len + 4 > 100"},
	{"sub", "len - 14 > 40"},
	{"mul", "len * 2 > 200"},
	{"div", "len / 2 > 50"},
	{"mod", "len % 4 = 0"},
	{"and", "len & 3 = 0"},
	{"or", "len | 1 = 61"},
	{"xor", "len ^ 0xff = 0xb3"},
	{"lsh", "len << 2 > 400"},
	{"rsh", "len >> 2 > 20"},
	{"lsh 31", "len << 31 = 0"},
	{"rsh 31", "len >> 31 = 0"},
	{"div by load", "len / ether[1] > 1"},
	{"mod by load", "len % ether[1] = 0"},
	{"sub loads", "ether[0] - ether[1] > 10"},
	{"load ops load", "ether[0] * ether[1] + ether[2] / (ether[3] | 1) > 7"},
	{"const minus load", "100 - ether[0] < 50"},
	{"const div load", "1000 / ether[2] > 3"},
	{"len and load", "ether[0] & len = 0"},
	{"load shift by load", "ether[0] << (ether[1] & 7) > 100"},
	{"unary minus", "-len < 0xffffff00"},
	{"unary minus load", "-ether[0] = 0xffffff00"},
	{"minus one", "-1 = 0xffffffff"},
	{"double minus", "- -len = len"},
	{"precedence mul add", "2 + 3 * 4 = 14"},
	{"precedence shift", "len + 1 << 2 = (len + 1) * 4"},
	{"precedence and", "ether[0] & 0xf0 | 1 = 0x01"},
	{"parens", "(len + 1) * 2 = 2 * len + 2"},
	{"const folding true", "1 + 1 = 2"},
	{"const folding with len", "len * 0 = 0"},
	{"wrap", "0xffffffff + len = len - 1"},
	{"big const", "len < 4294967295"},
	{"zero times load", "ether[0] * 0 = 0"},
	{"load times zero guarded", "ip[0] * 0 = 1"},
	{"load minus itself", "ip[0] - ip[0] = 0"},
	{"mod one", "len % 1 = 0"},
	{"folded after a test", "ip and len * 0 = 1"},
	{"folded constants after a test", "ip and 1 >= 2 + 0"},
	{"negative constants after a test", "ip and -1 = -2"},
	{"folded after vlan", "vlan and 1 >= (3 ^ (0x800 + 0x800))"},
	{"folded first, then or", "len * 0 = 1 or ip"},
	{"guarded zero product", "ip and ether[0] * 0 = 1"},
	{"not folded", "not len * 0 = 1"},
	{"folded, or, folded later", "(len * 0 = 1 or ip) and len * 0 = 0"},
	{"folded load product or", "ether[0] * 0 = 1 or ip"},
	{"const lsh minus one", "1 << -1 = 0"},
	{"const lsh folded 32", "1 << (16 + 16) = 0"},
	{"zero lsh folded 32", "0 << (16 + 16) = 0"},
	{"const rsh folded big", "(1 >> (3 ^ (0x800 + 0x800))) >= (0 | (len & tcp[3:2]))"},

	// libpcap does not optimise expressions with geneve or protochain:
	// nothing folds, and only the code generator's checks fail.
	{"unoptimised folded false", "len * 0 = 1 or geneve"},
	{"unoptimised folded false after", "geneve or len * 0 = 1"},
	{"unoptimised folded true", "len * 0 = 0 or ip protochain 6"},
	{"unoptimised folded loads", "ether[100] * 0 = 0 or geneve"},
	{"unoptimised folded divisor", "len / (2 - 2) = 1 or geneve"},
	{"unoptimised folded shift", "len << (16 + 16) = 1 or ip6 protochain 17"},
	{"unoptimised false", "1 = 2 or geneve"},
	{"unoptimised big shift", "ip protochain 6 or len >> -31 = 0"},
	{"unoptimised big shift of load", "geneve or (ether[0] | 1) << (16 + 16) != 0"},
	{"optimiser error in dead code", "len > 0 or tcp[len << (16 + 16)] = 1"},
	{"unoptimised constant division by zero", "1 / (1 - 1) = 0 or geneve"},
	{"unoptimised constant modulus by zero", "ether[0] = 1 or 7 % (3 - 3) = 0 or ip protochain 6"},
	{"unoptimised and false", "len * 0 = 1 and geneve"},

	// Accessors of each protocol, constant and variable indexes.
	{"ether byte", "ether[0] & 1 = 0"},
	{"ether half", "ether[12:2] = 0x800"},
	{"ether word", "ether[6:4] != 0"},
	{"link", "link[0] = 0xff"},
	{"ppp", "ppp[1] != 0"},
	{"fddi slip tr wlan", "fddi[1] = 0 or slip[2] = 0 or tr[3] = 0 or wlan[4] = 0"},
	{"ip version", "ip[0] & 0xf0 = 0x40"},
	{"ip ttl", "ip[8] = 64"},
	{"ip total length", "ip[2:2] > 100"},
	{"ip payload", "ip[2:2] - ((ip[0]&0xf)<<2) > 0"},
	{"ip dst multicast", "ip[16] >= 224"},
	{"ip word", "ip[12:4] = 0x0a000001"},
	{"ip6 next header", "ip6[6] = 6"},
	{"ip6 40", "ip6[40] = 6"},
	{"ip6 payload length", "ip6[4:2] > 20"},
	{"arp", "arp[6:2] = 1"},
	{"rarp", "rarp[7] = 3"},
	{"tcp flags", "tcp[13] & 2 = 2"},
	{"tcp flags names", "tcp[tcpflags] & (tcp-syn|tcp-ack) != 0"},
	{"tcp rst ack", "tcp[tcpflags] & (tcp-rst|tcp-ack) == (tcp-rst|tcp-ack)"},
	{"tcp ports", "tcp[0:2] > 1024 and tcp[2:2] < 1024"},
	{"tcp payload", "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420"},
	{"tcp data offset", "(tcp[12] & 0xf0) >> 2 > 20"},
	{"udp", "udp[8:4] = 0"},
	{"udp length", "udp[4:2] > 8"},
	{"udp port", "udp[2:2] = 53"},
	{"sctp", "sctp[0:2] = 0"},
	{"icmp type", "icmp[icmptype] != icmp-echo"},
	{"icmp echo or reply", "icmp[icmptype] = icmp-echo or icmp[icmptype] = icmp-echoreply"},
	{"icmp code", "icmp[icmpcode] = 0"},
	{"icmp6", "icmp6[icmp6type] = icmp6-echo"},
	{"icmp6 not echo", "icmp6[icmp6type] != icmp6-echo and icmp6[icmp6type] != icmp6-echoreply"},
	{"icmp6 variable", "icmp6[ip6[4]] = 0"},
	{"igmp", "igmp[0] = 0x11"},
	{"igrp", "igrp[0] = 1"},
	{"pim", "pim[0] = 0x20"},
	{"vrrp", "vrrp[0] = 0x21"},
	{"carp", "carp[1] = 1"},
	{"decnet", "decnet[0] = 1"},
	{"lat", "lat[0] = 1"},
	{"sca", "sca[0] = 1"},
	{"moprc", "moprc[0] = 1"},
	{"mopdl", "mopdl[0] = 1"},
	{"atalk", "atalk[0] = 1"},
	{"variable ip index", "ip[ip[0] & 0xf] = 0"},
	{"variable ether index", "ether[ether[0] & 7] = 0"},
	{"variable tcp index", "tcp[tcp[0] & 3] != 7"},
	{"index with guard", "tcp[ip[0] & 3] = 1"},
	{"nested guards", "tcp[ip[1] & 3] = tcp[ip[0] & 1]"},
	{"right guard dropped", "1 + ip[0] = 70"},
	{"right guard dropped 2", "ip[0] + ip6[0] = 0x4a"},
	{"right guard dropped 3", "ip6[0] + arp[0] = ip6[1] - rarp[ether[0]]"},
	{"left guard kept", "ip[0] + 1 = 70"},
	{"neg keeps guard", "-ip[0] = 0xffffffbb"},
	{"len and load", "len - ip[2:2] = 14"},
	{"both sides loads", "ip[12:4] = ip[16:4]"},
	{"tcp vs ip", "tcp[0:2] = ip[20:2]"},

	// Out of bounds: verdicts on short packets.
	{"far ether", "ether[1500] = 0"},
	{"far ip", "ip[60:4] != 1"},
	{"far tcp", "tcp[100:2] = 0"},
	{"huge index", "ether[0xffffffff] = 0"},
	{"huge index word", "ip[0xfffffff0:4] = 0"},
	{"wrapping tcp index", "tcp[0xffffffff] = 0"},
	{"wrapping tcp index 2", "tcp[0xfffffff0] = 0"},
	{"negative index", "tcp[-1] = 0"},
	{"last byte", "ether[len - 1] = 0"},
	{"past the end", "ether[len] = 0"},
	{"load in a false branch", "len < 40 or ip[50] = 0"},

	// Relations among other primitives.
	{"and or", "ether[0] & 1 = 0 and ip[16] >= 224"},
	{"not relation", "not ip[8] > 64"},
	{"or of relations", "(tcp[0:2] > 1500 and tcp[0:2] < 1550) or (tcp[2:2] > 1500 and tcp[2:2] < 1550)"},
	{"many relations", "len > 1 and len > 2 and len > 3 and len > 4 and len > 5 and len > 6 and len > 7 and len > 8 and len > 9 and len > 10 and len > 11 and len > 12 and len > 13 and len > 14 and len > 15 and len > 16 and len > 17"},
}

// TestArithRelations compares the relations of arithCases with libpcap on
// every link type.
func TestArithRelations(t *testing.T) {
	dtLibpcapOrSkip(t)
	n := 0
	for _, c := range arithCases {
		t.Run(c.name, func(t *testing.T) {
			m := 0
			for _, link := range dtLinkTypes {
				m += compareWithLibpcap(t, c.expr, link)
			}
			if m == 0 && !t.Failed() {
				t.Errorf("%q compiled for no link type: the case tests nothing", c.expr)
			}
			n += m
		})
	}
	t.Logf("%d comparisons with libpcap", n)
}

// arithErrors are expressions libpcap rejects; want is a part of
// pcapfilter's message.
var arithErrors = []struct{ name, expr, want string }{
	{"div by zero", "len / 0 = 1", "division by zero"},
	{"mod by zero", "len % 0 = 1", "modulus by zero"},
	{"div by neg zero", "len / -0 = 1", "division by zero"},
	{"div by folded zero", "len / (2 - 2) = 1", "division by zero"},
	{"div by zero times len", "len / (0 * len) = 1", "division by zero"},
	{"div by load times zero", "len / (ip[1] * 0) = 1", "division by zero"},
	{"div by zero and len", "len / (len & 0) = 1", "division by zero"},
	{"div by first zero", "len / (0 + 5) = 1", "division by zero"},
	{"div by index zero", "len / ip[0] = 1", "division by zero"},
	{"div by tcp index zero", "len / tcp[0] = 1", "division by zero"},
	{"mod by index zero", "ip[2] % ether[0:2] = 1", "modulus by zero"},
	{"const div by zero", "1 / 0 = 1", "division by zero"},
	{"div by zero with geneve", "len / 0 = 1 or geneve", "division by zero"},
	{"lsh 32 with protochain", "ip protochain 6 and len << 32 = 1", "shift by more than 31 bits"},
	{"div by zero in index", "ip[len / 0] = 1", "division by zero"},
	{"div by zero after or", "len = 1 or len / (2 - 2) = 1", "division by zero"},
	{"lsh 32", "len << 32 = 0", "shift by more than 31 bits"},
	{"rsh 33", "len >> 33 = 0", "shift by more than 31 bits"},
	{"lsh folded 32", "len << (16 + 16) = 1", "shift by more than 31 bits"},
	{"lsh minus one", "len << -1 = 1", "shift by more than 31 bits"},
	{"lsh zero plus 32", "len << (0 + 32) = 1", "shift by more than 31 bits"},
	{"const lsh 32", "1 << 32 = 1", "shift by more than 31 bits"},
	{"folded zero lsh 32", "(len * 0) << (16 + 16) = 0", "shift by more than 31 bits"},
	{"load lsh folded 32", "ip[0] << (16 + 16) = 0", "shift by more than 31 bits"},
	{"rsh all ones", "len >> 4294967295 = 0", "shift by more than 31 bits"},
	{"const div folded zero", "1 / (1 - 1) = 0", "division by zero"},
	{"size 3", "ip[0:3] = 1", "size"},
	{"size 0", "ip[0:0] = 1", "size"},
	{"size 8", "ip[0:8] = 1", "size"},
	{"false", "1 = 2", "rejects all packets"},
	{"false ne", "1 != 1", "rejects all packets"},
	{"len times zero", "len * 0 = 1", "rejects all packets"},
	{"zero times len", "0 * len = 1", "rejects all packets"},
	{"len and zero", "len & 0 = 1", "rejects all packets"},
	{"zero div len", "0 / len = 1", "rejects all packets"},
	{"zero lsh len", "0 << len = 1", "rejects all packets"},
	{"ip and false", "ip and 1 = 2", "rejects all packets"},
	{"ip and false parens", "ip and (1) = (2)", "rejects all packets"},
	{"vlan and false", "vlan and 1 = 2", "rejects all packets"},
	{"folded first and ip", "len * 0 = 1 and ip", "rejects all packets"},
	{"folded constants first and ip", "1 = 2 + 0 and ip", "rejects all packets"},
	{"negative first and ip", "-1 = 0 and ip", "rejects all packets"},
	{"folded constants", "1 >= (3 ^ (0x800 + 0x800))", "rejects all packets"},
	{"true and folded", "1 = 1 and len * 0 = 1", "rejects all packets"},
	{"folded or folded", "len * 0 = 1 or len * 0 = 1", "rejects all packets"},
	{"folded and folded", "len * 0 = 0 and len * 0 = 1", "rejects all packets"},
	{"folded load product", "ether[0] * 0 = 1", "rejects all packets"},
	{"ah", "ah[0] = 0", "unsupported index"},
	{"esp", "esp[0] = 0", "unsupported index"},
	{"aarp", "aarp[0] = 0", "unsupported index"},
	{"iso", "iso[0] = 0", "unsupported index"},
	{"stp", "stp[0] = 0", "unsupported index"},
	{"ipx", "ipx[0] = 0", "unsupported index"},
	{"netbeui", "netbeui[0] = 0", "unsupported index"},
	{"l1", "l1[0] = 0", "unsupported index"},
	{"radio", "radio[0] = 0", "radio"},
	{"registers", "len = " + arithRightNested(15, "1"), "too many registers"},
	{"registers on the left", arithRightNested(16, "1") + " = len", "too many registers"},
	{"registers with a load", "len = " + arithRightNested(14, "ip[0]"), "too many registers"},
	{"number too big", "len = 4294967296", ""},
}

// arithRightNested returns "1+(1+(...(inner)))" with depth additions.
func arithRightNested(depth int, inner string) string {
	s := inner
	for range depth {
		s = "1+(" + s + ")"
	}
	return s
}

// TestArithErrors checks that pcapfilter rejects what libpcap rejects,
// saying why.
func TestArithErrors(t *testing.T) {
	dtLibpcapOrSkip(t)
	for _, c := range arithErrors {
		t.Run(c.name, func(t *testing.T) {
			if _, err := libpcap.Compile(c.expr, int(pcapfilter.LinkEthernet), dtSnapLen, true, 0); err == nil {
				t.Fatalf("libpcap compiles %q: the case is wrong", c.expr)
			}
			_, err := pcapfilter.Compile(c.expr, pcapfilter.Options{LinkType: pcapfilter.LinkEthernet})
			if err == nil {
				t.Fatalf("%q: pcapfilter compiles it, libpcap does not", c.expr)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("%q: the error %q does not say %q", c.expr, err, c.want)
			}
			for _, link := range dtLinkTypes {
				compareWithLibpcap(t, c.expr, link)
			}
		})
	}
}

// TestArithRegisterLimit finds the deepest expressions of several shapes
// that libpcap compiles, and checks that pcapfilter compiles exactly the
// same ones.
func TestArithRegisterLimit(t *testing.T) {
	dtLibpcapOrSkip(t)
	shapes := []struct {
		name string
		expr func(depth int) string
	}{
		{"right nested", func(d int) string { return "len = " + arithRightNested(d, "1") }},
		{"right nested lhs", func(d int) string { return arithRightNested(d, "1") + " = len" }},
		{"right nested load", func(d int) string { return "len = " + arithRightNested(d, "ip[0]") }},
		{"right nested tcp", func(d int) string { return "len = " + arithRightNested(d, "tcp[1]") }},
		{"right nested neg", func(d int) string { return "len = " + arithRightNested(d, "-len") }},
		{"nested loads", func(d int) string { return arithRightNested(d, "ip[ip[ip[ip[1]]]]") + " > 1" }},
		{"index", func(d int) string { return "ip[" + arithRightNested(d, "1") + "] = 1" }},
		{"and", func(d int) string { return "len = 1 and " + arithRightNested(d, "len") + " = 1" }},
	}
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			seenOK, seenErr := false, false
			for d := 8; d <= 18; d++ {
				expr := s.expr(d)
				_, werr := libpcap.Compile(expr, int(pcapfilter.LinkEthernet), dtSnapLen, true, 0)
				_, gerr := pcapfilter.Compile(expr, pcapfilter.Options{})
				seenOK = seenOK || werr == nil
				seenErr = seenErr || werr != nil
				if (werr == nil) != (gerr == nil) {
					t.Errorf("depth %d: %q: libpcap says %v, pcapfilter says %v", d, expr, errString(werr), errString(gerr))
				}
			}
			if !seenOK || !seenErr {
				t.Errorf("the depths tried do not cross libpcap's limit (compiled: %v, failed: %v)", seenOK, seenErr)
			}
		})
	}
}

// TestArithShortPackets runs accessor relations on every prefix of a few
// packets, where loads past the captured length reject the packet.
func TestArithShortPackets(t *testing.T) {
	dtLibpcapOrSkip(t)
	exprs := []string{
		"ether[13] = 0",
		"ip[9] = 6",
		"ip[2:2] - ((ip[0]&0xf)<<2) > 0",
		"tcp[13] & 2 = 2",
		"tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420",
		"udp[8:4] = 0",
		"icmp[icmptype] != icmp-echo",
		"icmp6[0] = 128",
		"ip6[40] = 6",
		"tcp[ip[0] & 3] = tcp[ip[1] & 3]",
		"1 + ip[0] = 70",
		"len - ip[2:2] = 14",
		"ether[len - 1] = 0",
		"not tcp[14:2] > 1",
		"tcp[0xfffffff0] = 0",
		"ip[0] * 0 = 1",
	}
	n := 0
	for _, link := range dtLinkTypes {
		var whole []testPacket
		for _, p := range packetsFor(t, link) {
			if len(p.data) == p.wire && len(p.data) >= 60 && len(whole) < 6 {
				whole = append(whole, p)
			}
		}
		if len(whole) == 0 {
			t.Errorf("%v: no whole packets to cut", link)
			continue
		}
		for _, expr := range exprs {
			n += compareOn(t, expr, link, whole, true)
		}
	}
	if n == 0 {
		t.Error("no comparisons made")
	}
	t.Logf("%d comparisons with libpcap", n)
}

// arithRelationLine picks the corpus expressions with relations, accessors,
// len, less or greater.
var arithRelationLine = regexp.MustCompile(`\[|[<>=]|\blen\b|\blength\b|\bless\b|\bgreater\b`)

// TestArithCorpus compares the corpus expressions of this domain with
// libpcap: the Ethernet and real-world lists on Ethernet and Linux cooked
// captures, the raw list on the raw IP link types.
func TestArithCorpus(t *testing.T) {
	dtLibpcapOrSkip(t)
	if _, err := os.Stat(dtCorpusDir); err != nil {
		t.Skipf("the shared corpus is not at %s: skipping", dtCorpusDir)
	}
	lists := []struct {
		file  string
		links []pcapfilter.LinkType
	}{
		{"libpcap-ethernet.txt", []pcapfilter.LinkType{pcapfilter.LinkEthernet, pcapfilter.LinkLinuxSLL, pcapfilter.LinkLinuxSLL2}},
		{"realworld.txt", []pcapfilter.LinkType{pcapfilter.LinkEthernet, pcapfilter.LinkLinuxSLL2}},
		{"libpcap-invalid-ethernet.txt", []pcapfilter.LinkType{pcapfilter.LinkEthernet}},
		{"libpcap-raw.txt", []pcapfilter.LinkType{pcapfilter.LinkRaw, pcapfilter.LinkIPv4, pcapfilter.LinkIPv6}},
	}
	exprs, n := 0, 0
	for _, l := range lists {
		lines, err := arithFilterLines(filepath.Join(dtCorpusDir, "filters", l.file))
		if err != nil {
			t.Errorf("%s: %v", l.file, err)
			continue
		}
		for i, expr := range lines {
			if !arithRelationLine.MatchString(expr) {
				continue
			}
			exprs++
			t.Run(fmt.Sprintf("%s:%d", l.file, i+1), func(t *testing.T) {
				for _, link := range l.links {
					n += compareWithLibpcap(t, expr, link)
				}
			})
		}
	}
	if exprs == 0 {
		t.Error("no corpus expression has a relation: the corpus is not what this test expects")
	}
	t.Logf("%d expressions, %d comparisons with libpcap", exprs, n)
}

// arithFilterLines returns the expressions of a filter list: its lines, without
// comments and blank lines (numbered by their index in the result).
func arithFilterLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	return out, sc.Err()
}

// TestArithProgramsValid checks that the programs are valid classic BPF
// for libpcap and the executor, including the largest expressions.
func TestArithProgramsValid(t *testing.T) {
	dtLibpcapOrSkip(t)
	var b strings.Builder
	b.WriteString("len > 0")
	for i := range 300 {
		fmt.Fprintf(&b, " and tcp[%d:2] + ip[%d] * len != %d", i, i%20, i)
	}
	exprs := []string{b.String(), "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420"}
	for _, link := range dtLinkTypes {
		for _, expr := range exprs {
			prog, err := pcapfilter.Compile(expr, pcapfilter.Options{LinkType: link})
			if err != nil {
				if _, werr := libpcap.Compile(expr, int(link), dtSnapLen, true, 0); werr == nil {
					t.Errorf("%v: %.60q...: %v", link, expr, err)
				}
				continue
			}
			if !libpcap.Validate(prog) {
				t.Errorf("%v: %.60q...: libpcap says the program is not valid:\n%s", link, expr, dtListing(prog))
			}
			if _, err := bpfmatch.Load(prog, bpfmatch.WithLinkType(bpfmatch.LinkType(link))); err != nil {
				t.Errorf("%v: %.60q...: %v", link, expr, err)
			}
			if _, ok := bpf.Disassemble(prog); !ok {
				t.Errorf("%v: %.60q...: x/net/bpf cannot decode every instruction", link, expr)
			}
		}
	}
}

// TestArithAfterEncapsulation compares accessors after vlan, mpls, pppoes
// and geneve, which move the layers they read (to offsets in scratch
// memory after geneve), with libpcap on every link type.
func TestArithAfterEncapsulation(t *testing.T) {
	dtLibpcapOrSkip(t)
	prefixes := []string{"vlan", "vlan 100", "vlan and vlan", "mpls", "mpls 5 and mpls", "pppoes", "pppoes 3",
		"geneve", "geneve 7", "geneve and vlan", "vlan and geneve", "geneve and geneve", "geneve and mpls"}
	relations := []string{
		"ether[12:2] = 0x800",
		"ether[ether[0] & 7] = 0",
		"ip[9] = 17",
		"ip[ip[0] & 0xf] = 0",
		"ip6[6] = 17",
		"tcp[13] & 2 = 2",
		"udp[2:2] = 53",
		"tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420",
		"icmp[icmptype] = icmp-echo",
		"icmp6[0] = 128",
		"icmp6[ip6[4]] = 0",
		"arp[7] = 1",
		"len - ip[2:2] = 14",
		"1 + ip[0] = 70",
		"len + " + arithRightNested(9, "len") + " > 1",
	}
	n := 0
	for _, p := range prefixes {
		for _, r := range relations {
			exprs := []string{p + " and " + r, r + " or " + p, "not (" + p + " and " + r + ")"}
			if !strings.Contains(p, "geneve") {
				// After a geneve that did not match, the offsets in scratch
				// memory were never stored: libpcap reads whatever is there.
				exprs = append(exprs, "not "+p+" or "+r)
			}
			for _, expr := range exprs {
				for _, link := range dtLinkTypes {
					n += compareWithLibpcap(t, expr, link)
				}
			}
		}
	}
	if n == 0 {
		t.Error("no comparisons made")
	}
	t.Logf("%d comparisons with libpcap", n)
}

// randomArith returns a random arithmetic expression of at most depth
// levels, from r's next values, with accessors of protos.
func randomArith(r *rand.Rand, depth int, protos []string) string {
	nums := []string{"0", "1", "2", "3", "7", "14", "31", "32", "255", "0x800", "0xffffffff"}
	if depth <= 0 || r.IntN(3) == 0 {
		switch r.IntN(4) {
		case 0:
			return "len"
		case 1:
			idx := nums[r.IntN(6)]
			if depth > 0 && r.IntN(3) == 0 {
				idx = randomArith(r, depth-1, protos)
			}
			size := []string{"", ":1", ":2", ":4"}[r.IntN(4)]
			return protos[r.IntN(len(protos))] + "[" + idx + size + "]"
		}
		return nums[r.IntN(len(nums))]
	}
	if r.IntN(8) == 0 {
		return "-" + randomArith(r, depth-1, protos)
	}
	ops := []string{"+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>"}
	return "(" + randomArith(r, depth-1, protos) + " " + ops[r.IntN(len(ops))] + " " + randomArith(r, depth-1, protos) + ")"
}

// TestArithRandom compares random relations with libpcap: acceptance
// (division by zero, shifts, constant folding) and verdicts. Most draw
// their accessors from protocols a packet can have together; where
// libpcap's optimiser finds that a relation such as "tcp[0] = udp[0]"
// rejects all packets, pcapfilter's program must match none.
func TestArithRandom(t *testing.T) {
	dtLibpcapOrSkip(t)
	r := rand.New(rand.NewPCG(3, 5))
	rels := []string{"=", "!=", "<", "<=", ">", ">="}
	families := [][]string{{"ether", "ip", "tcp"}, {"ether", "ip", "udp"}, {"ether", "ip", "icmp"},
		{"ether", "ip6", "icmp6"}, {"ether", "arp"}, {"ether"},
		{"ether", "ip", "ip6", "tcp", "udp", "icmp", "icmp6", "arp"}}
	n, compiled := 0, 0
	for range 400 {
		protos := families[r.IntN(len(families))]
		// Some after other primitives: geneve and protochain turn libpcap's
		// optimiser off; the relation is not the program's first test.
		prefix := []string{"", "", "", "geneve and ", "ip protochain 6 or ", "vlan and ", "len > 0 or "}[r.IntN(7)]
		expr := prefix + randomArith(r, 3, protos) + " " + rels[r.IntN(len(rels))] + " " + randomArith(r, 2, protos)
		for _, link := range dtLinkTypes {
			m := compareArith(t, expr, link)
			n += m
			if m > 0 {
				compiled++
			}
		}
	}
	if compiled == 0 {
		t.Error("no random relation compiled")
	}
	t.Logf("%d programs, %d comparisons with libpcap", compiled, n)
}

// compareArith is compareWithLibpcap, except that where libpcap's optimiser
// proves that an expression rejects all packets (which pcapfilter does not
// try), pcapfilter's program must reject every test packet.
func compareArith(t *testing.T, expr string, link pcapfilter.LinkType) int {
	t.Helper()
	_, werr := libpcap.Compile(expr, int(link), dtSnapLen, true, 0)
	prog, gerr := pcapfilter.Compile(expr, pcapfilter.Options{LinkType: link})
	if werr == nil || gerr != nil || !strings.Contains(werr.Error(), "rejects all packets") {
		return compareWithLibpcap(t, expr, link)
	}
	m := loadProgram(t, prog, link)
	n := 0
	for _, p := range packetsFor(t, link) {
		ok, err := m.MatchFrame(p.data, p.wire)
		if err != nil {
			t.Fatalf("%v: %v", p, err)
		}
		n++
		if ok {
			t.Errorf("%v: %q on %v: libpcap finds that the expression rejects all packets, pcapfilter's program accepts this one:\n%s",
				link, expr, p, dtListing(prog))
			return n
		}
	}
	return n
}

// TestArithMixed compares random and/or/not mixes of relations and other
// primitives with libpcap on every link type. geneve is left out: after a
// geneve that did not match, libpcap reads offsets from scratch memory
// that nothing stored (TestArithAfterEncapsulation has it where it
// matched).
func TestArithMixed(t *testing.T) {
	dtLibpcapOrSkip(t)
	r := rand.New(rand.NewPCG(9, 9))
	all := []string{"ether", "ip", "ip6", "tcp", "udp", "icmp", "icmp6", "arp"}
	prims := []string{"tcp", "udp", "ip", "ip6", "arp", "vlan", "mpls", "pppoes", "tcp port 80",
		"udp port 53", "host 10.0.0.1", "ip proto 17", "ip6 protochain 6", "less 100", "greater 1000", "ether broadcast"}
	rels := []string{"=", "!=", "<", "<=", ">", ">="}
	var term func(depth int) string
	term = func(depth int) string {
		switch {
		case depth > 0 && r.IntN(3) == 0:
			op := []string{" and ", " or "}[r.IntN(2)]
			return "(" + term(depth-1) + op + term(depth-1) + ")"
		case depth > 0 && r.IntN(5) == 0:
			return "not " + term(depth-1)
		case r.IntN(2) == 0:
			return prims[r.IntN(len(prims))]
		}
		return randomArith(r, 2, all) + " " + rels[r.IntN(len(rels))] + " " + randomArith(r, 1, all)
	}
	n, compiled := 0, 0
	for range 300 {
		expr := term(3)
		for _, link := range dtLinkTypes {
			m := compareArith(t, expr, link)
			n += m
			if m > 0 {
				compiled++
			}
		}
	}
	if compiled == 0 {
		t.Error("no random expression compiled")
	}
	t.Logf("%d programs, %d comparisons with libpcap", compiled, n)
}

// TestArithProgramSize checks that single relations compile to programs
// about as short as libpcap's optimised ones: the guards an index shares
// with its accessor are not repeated.
func TestArithProgramSize(t *testing.T) {
	dtLibpcapOrSkip(t)
	for _, expr := range []string{
		"len >= 100",
		"less 64",
		"ether[0] & 1 = 0",
		"ip[2:2] - ((ip[0]&0xf)<<2) > 0",
		"tcp[13] & 2 = 2",
		"tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420",
		"tcp[0:2] = tcp[2:2]",
		"udp[8:4] = 0",
		"icmp[icmptype] != icmp-echo",
		"icmp6[icmp6type] = icmp6-echo",
		"ip[ip[0] & 0xf] = 0",
	} {
		for _, link := range dtLinkTypes {
			want, werr := libpcap.Compile(expr, int(link), dtSnapLen, true, 0)
			got, gerr := pcapfilter.Compile(expr, pcapfilter.Options{LinkType: link})
			if werr != nil || gerr != nil {
				if (werr == nil) != (gerr == nil) {
					t.Errorf("%v: %q: libpcap says %v, pcapfilter says %v", link, expr, errString(werr), errString(gerr))
				}
				continue
			}
			if len(got) > len(want)+2 {
				t.Errorf("%v: %q: %d instructions, libpcap's %d\npcapfilter's program:\n%slibpcap's:\n%s",
					link, expr, len(got), len(want), dtListing(got), dtListing(want))
			}
		}
	}
}

// arithCraftedIP returns network-layer packets the corpus may lack, for
// the accessors' guards: IPv4 fragments and options, IPv6 extension
// headers, each with its Ethernet type.
func arithCraftedIP() []struct {
	name      string
	etherType uint16
	data      []byte
} {
	v4 := func(ihl int, frag uint16, proto byte, payload []byte) []byte {
		h := make([]byte, ihl*4)
		h[0] = 0x40 | byte(ihl)
		total := len(h) + len(payload)
		h[2], h[3] = byte(total>>8), byte(total)
		h[6], h[7] = byte(frag>>8), byte(frag)
		h[8], h[9] = 64, proto
		copy(h[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
		for i := 20; i < len(h); i++ {
			h[i] = 1 // NOP options
		}
		return append(h, payload...)
	}
	v6 := func(next byte, payload []byte) []byte {
		h := make([]byte, 40)
		h[0] = 0x60
		h[4], h[5] = byte(len(payload)>>8), byte(len(payload))
		h[6], h[7] = next, 64
		h[23], h[39] = 1, 2
		return append(h, payload...)
	}
	tcp := append([]byte{0x04, 0x00, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x12, 0xff, 0xff, 0, 0, 0, 0}, "GET / HTTP/1.0\r\n"...)
	udp := []byte{0x14, 0xe9, 0x00, 0x35, 0, 12, 0, 0, 0, 0, 0, 0}
	icmp := []byte{8, 0, 0xf7, 0xff, 0, 1, 0, 1, 0xaa, 0xaa, 0xaa, 0xaa}
	icmp6 := []byte{128, 0, 0, 0, 0, 1, 0, 1}
	fragHdr := func(next byte, payload []byte) []byte { return append([]byte{next, 0, 0, 0, 0, 0, 0, 1}, payload...) }
	hopByHop := func(next byte, payload []byte) []byte { return append([]byte{next, 0, 1, 4, 0, 0, 0, 0}, payload...) }
	arp := []byte{0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2}
	return []struct {
		name      string
		etherType uint16
		data      []byte
	}{
		{"ipv4 tcp", 0x800, v4(5, 0, 6, tcp)},
		{"ipv4 tcp with options", 0x800, v4(6, 0, 6, tcp)},
		{"ipv4 tcp with 40 bytes of options", 0x800, v4(15, 0, 6, tcp)},
		{"ipv4 tcp first fragment", 0x800, v4(5, 0x2000, 6, tcp)},
		{"ipv4 tcp later fragment", 0x800, v4(5, 0x2010, 6, tcp)},
		{"ipv4 tcp last fragment", 0x800, v4(5, 0x0100, 6, tcp)},
		{"ipv4 udp", 0x800, v4(5, 0, 17, udp)},
		{"ipv4 udp fragment", 0x800, v4(5, 0x1fff, 17, udp)},
		{"ipv4 icmp", 0x800, v4(5, 0, 1, icmp)},
		{"ipv4 icmp with options", 0x800, v4(7, 0, 1, icmp)},
		{"ipv6 tcp", 0x86dd, v6(6, tcp)},
		{"ipv6 fragment tcp", 0x86dd, v6(44, fragHdr(6, tcp))},
		{"ipv6 hop-by-hop tcp", 0x86dd, v6(0, hopByHop(6, tcp))},
		{"ipv6 icmp6", 0x86dd, v6(58, icmp6)},
		{"ipv6 fragment icmp6", 0x86dd, v6(44, fragHdr(58, icmp6))},
		{"ipv6 udp", 0x86dd, v6(17, udp)},
		{"arp", 0x806, arp},
	}
}

// arithCraftedPackets frames arithCraftedIP's packets for link.
func arithCraftedPackets(link pcapfilter.LinkType) []testPacket {
	var out []testPacket
	for _, p := range arithCraftedIP() {
		ip := testPacket{name: p.name, data: p.data, wire: len(p.data)}
		switch link {
		case pcapfilter.LinkEthernet:
			eth := []byte{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, byte(p.etherType >> 8), byte(p.etherType)}
			out = append(out, reframe(ip, eth))
			vlan := []byte{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x81, 0, 0, 100, byte(p.etherType >> 8), byte(p.etherType)}
			out = append(out, reframe(testPacket{name: p.name + " vlan", data: p.data, wire: len(p.data)}, vlan))
		case pcapfilter.LinkLinuxSLL:
			out = append(out, reframe(ip, sllHeader(p.etherType)))
		case pcapfilter.LinkLinuxSLL2:
			out = append(out, reframe(ip, sll2Header(p.etherType)))
		case pcapfilter.LinkRaw:
			if p.etherType != 0x806 {
				out = append(out, ip)
			}
		case pcapfilter.LinkIPv4:
			if p.etherType == 0x800 {
				out = append(out, ip)
			}
		case pcapfilter.LinkIPv6:
			if p.etherType == 0x86dd {
				out = append(out, ip)
			}
		}
	}
	return out
}

// TestArithCraftedPackets compares accessor relations with libpcap on
// every prefix of packets with IPv4 options and fragments and IPv6
// extension headers.
func TestArithCraftedPackets(t *testing.T) {
	dtLibpcapOrSkip(t)
	exprs := []string{
		"tcp[13] & 2 = 2",
		"tcp[13] = 0x12",
		"tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420",
		"tcp[0:2] = 1024",
		"udp[2:2] = 53",
		"udp[8:4] = 0",
		"icmp[icmptype] = icmp-echo",
		"icmp[8:4] = 0xaaaaaaaa",
		"icmp6[icmp6type] = icmp6-echo",
		"icmp6[0] != 0",
		"ip6[6] = 44",
		"ip6[40] = 6",
		"ip[6:2] & 0x3fff != 0",
		"ip[0] & 0xf > 5",
		"ip[2:2] - ((ip[0]&0xf)<<2) > 20",
		"arp[7] = 1",
		"vlan and tcp[13] & 2 = 2",
		"vlan and icmp6[0] = 128",
		"1 + tcp[0] = 5",
		"tcp[0] + udp[0] = 0x28",
	}
	n := 0
	for _, link := range dtLinkTypes {
		pkts := arithCraftedPackets(link)
		if len(pkts) == 0 {
			t.Errorf("%v: no crafted packets", link)
			continue
		}
		for _, expr := range exprs {
			n += compareOn(t, expr, link, pkts, true)
		}
	}
	if n == 0 {
		t.Error("no comparisons made")
	}
	t.Logf("%d comparisons with libpcap", n)
}
