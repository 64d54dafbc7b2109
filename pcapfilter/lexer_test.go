package pcapfilter

import (
	"fmt"
	"strings"
	"testing"
)

// lexAll returns the tokens of s up to the end or the first error, as
// "kind:text@pos" (with "=value" for numbers).
func lexAll(s string) string {
	lx := lexer{src: s}
	var out []string
	for {
		t := lx.next()
		if t.kind == tEOF {
			break
		}
		var d string
		switch t.kind {
		case tError:
			d = fmt.Sprintf("error(%s)@%d", t.msg, t.pos)
		case tNum:
			d = fmt.Sprintf("num:%s=%d@%d", t.text, t.num, t.pos)
		case tHID:
			d = fmt.Sprintf("hid:%s@%d", t.text, t.pos)
		case tHID6:
			d = fmt.Sprintf("hid6:%s@%d", t.text, t.pos)
		case tEID:
			d = fmt.Sprintf("eid:%s@%d", t.text, t.pos)
		case tAID:
			d = fmt.Sprintf("aid:%s@%d", t.text, t.pos)
		case tID:
			d = fmt.Sprintf("id:%s@%d", t.text, t.pos)
		case tProto:
			d = fmt.Sprintf("proto:%s@%d", protoText[t.proto], t.pos)
		default:
			d = fmt.Sprintf("%s@%d", t.text, t.pos)
			if t.kind >= tSrc {
				d = "kw:" + d
			}
		}
		out = append(out, d)
		if t.kind == tError {
			break
		}
	}
	return strings.Join(out, " ")
}

func TestLexer(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		// Longest match makes names of what looks like arithmetic.
		{"len-1 is a name", "len-1", "id:len-1@0"},
		{"port range", "20-21", "id:20-21@0"},
		{"hostname with dash", "host-1.example", "id:host-1.example@0"},
		{"hex minus is a name", "ether[0]=0x1-1", "proto:link@0 [@5 num:0=0@6 ]@7 =@8 id:0x1-1@9"},
		{"no spaces needed", "tcp[13]&2!=0", "proto:tcp@0 [@3 num:13=13@4 ]@6 &@7 num:2=2@8 !=@9 num:0=0@11"},
		{"keyword glued to number", "port80", "id:port80@0"},
		{"spaced minus", "len - 1", "kw:len@0 -@4 num:1=1@6"},
		{"minus then number", "len -1", "kw:len@0 -@4 num:1=1@5"},
		{"trailing dash is not part of a name", "a- b", "id:a@0 -@1 id:b@3"},
		{"trailing underscore", "ab_", "id:ab@0 error(invalid character '_')@2"},
		{"dotted name", "www.example.com.", "id:www.example.com.@0"},

		// Numbers.
		{"decimal", "1500", "num:1500=1500@0"},
		{"hex", "0x1F", "num:0x1F=31@0"},
		{"hex upper X", "0XfF", "num:0XfF=255@0"},
		{"octal", "010", "num:010=8@0"},
		{"zero", "0", "num:0=0@0"},
		{"max", "4294967295", "num:4294967295=4294967295@0"},
		{"max hex", "0xffffffff", "num:0xffffffff=4294967295@0"},
		{"overflow", "4294967296", "error(number 4294967296 overflows 32 bits)@0"},
		{"hex overflow", "0x100000000", "error(number 0x100000000 overflows 32 bits)@0"},
		{"leading zeros hex", "0x0000000001", "num:0x0000000001=1@0"},
		{"octal digit 8", "08", "error(number 08 contains non-octal digit)@0"},
		{"0x alone is a name", "0x", "id:0x@0"},
		{"named tcp-syn", "tcp-syn", "num:tcp-syn=2@0"},
		{"named tcpflags", "tcpflags", "num:tcpflags=13@0"},
		{"named icmp-echo", "icmp-echo", "num:icmp-echo=8@0"},
		{"named icmp-echoreply", "icmp-echoreply", "num:icmp-echoreply=0@0"},
		{"named icmp6-echo", "icmp6-echo", "num:icmp6-echo=128@0"},
		{"named icmp6-multicastrouterterm", "icmp6-multicastrouterterm", "num:icmp6-multicastrouterterm=153@0"},
		{"longer than a constant", "icmp-echox", "id:icmp-echox@0"},
		{"constants are case sensitive", "TCP-SYN", "id:TCP-SYN@0"},

		// Dotted numbers, MAC addresses.
		{"two parts", "10.1", "hid:10.1@0"},
		{"three parts", "10.1.2", "hid:10.1.2@0"},
		{"four parts", "10.1.2.3", "hid:10.1.2.3@0"},
		{"five parts is a name", "1.2.3.4.5", "id:1.2.3.4.5@0"},
		{"hex parts", "0x1.2", "hid:0x1.2@0"},
		{"six parts is a MAC", "1.2.3.4.5.6", "eid:1.2.3.4.5.6@0"},
		{"colon MAC", "aa:bb:cc:dd:ee:ff", "eid:aa:bb:cc:dd:ee:ff@0"},
		{"short colon MAC", "a:b:c:d:e:f", "eid:a:b:c:d:e:f@0"},
		{"dash MAC", "aa-bb-cc-dd-ee-ff", "eid:aa-bb-cc-dd-ee-ff@0"},
		{"digits dash MAC", "1-2-3-4-5-6", "eid:1-2-3-4-5-6@0"},
		{"dot MAC", "aa.bb.cc.dd.ee.ff", "eid:aa.bb.cc.dd.ee.ff@0"},
		{"Cisco MAC", "aabb.ccdd.eeff", "eid:aabb.ccdd.eeff@0"},
		{"Cisco MAC of digits beats a dotted number", "1234.5678.9012", "eid:1234.5678.9012@0"},
		{"12 hex digits", "aabbccddeeff", "eid:aabbccddeeff@0"},
		{"12 digits beat a number", "001122334455", "eid:001122334455@0"},
		{"13 digits are a number", "0011223344556", "num:0011223344556=1246611822@0"},
		{"13 digits with a 9", "0011223344559", "error(number 0011223344559 contains non-octal digit)@0"},
		{"many leading zeros", "00000000000000000000000000001", "num:00000000000000000000000000001=1@0"},
		{"bogus MAC", "1:2:3", "error(bogus ethernet address 1:2:)@0"},
		{"bogus MAC, 7 groups", "1:2:3:4:5:6:7:8:9", "error(bogus ethernet address 1:2:3:4:5:6:7:8:)@0"},

		// IPv6.
		{"unspecified", "::", "hid6:::@0"},
		{"loopback", "::1", "hid6:::1@0"},
		{"link local", "fe80::1", "hid6:fe80::1@0"},
		{"full", "1:2:3:4:5:6:7:8", "hid6:1:2:3:4:5:6:7:8@0"},
		{"seven and ::", "1:2:3:4:5:6:7::", "hid6:1:2:3:4:5:6:7::@0"},
		{"two and ::", "1:2::", "hid6:1:2::@0"},
		{"v4 mapped", "::ffff:1.2.3.4", "hid6:::ffff:1.2.3.4@0"},
		{"v4 tail full", "1:2:3:4:5:6:1.2.3.4", "hid6:1:2:3:4:5:6:1.2.3.4@0"},
		{"v6 with mask", "2001:db8::/32", "hid6:2001:db8::@0 /@10 num:32=32@11"},
		{"v4 tail too big", "::1.2.3.400", "error(bogus IPv6 address ::1.2.3.400)@0"},
		{"v4 tail leading zero", "::01.2.3.4", "error(bogus IPv6 address ::01.2.3.4)@0"},
		{"v4 tail hex", "::1.2.3.0x4", "error(bogus IPv6 address ::1.2.3.0x4)@0"},
		{"group of five digits", "12345::", "num:12345=12345@0 hid6:::@5"},
		{"two ::", "1::2::3", "error(bogus ethernet address 1::2::)@0"},

		// Backslash, ARCnet.
		{"escaped keyword", "\\ip", "id:ip@0"},
		{"escape ends at paren", "\\ip(", "id:ip@0 (@3"},
		{"escape ends at bang", "\\a!b", "id:a@0 !@2 id:b@3"},
		{"escaped backslash", "\\\\", "id:\\@0"},
		{"escape keeps other characters", "\\a[b]=c", "id:a[b]=c@0"},
		{"backslash alone", "\\ ", "error(a backslash must be followed by a name)@0"},
		{"backslash inside a name", "a\\b", "id:a@0 id:b@1"},
		{"ARCnet", "$1f", "aid:1f@0"},
		{"ARCnet two digits at most", "$1ff", "aid:1f@0 id:f@3"},
		{"ARCnet needs hex", "$g", "error(invalid character '$')@0"},

		// Keywords.
		{"keywords are case sensitive", "TCP Host", "id:TCP@0 id:Host@4"},
		{"link aliases", "ether ppp slip fddi tr wlan", "proto:link@0 proto:link@6 proto:link@10 proto:link@15 proto:link@20 proto:link@23"},
		{"dashed protocols", "es-is is-is esis isis", "proto:esis@0 proto:isis@6 proto:esis@12 proto:isis@17"},
		{"length", "length", "kw:length@0"},
		{"word operators", "and or not", "and@0 or@4 not@7"},
		{"oamf5 is a name", "oamf5 oamf4", "id:oamf5@0 kw:oamf4@6"},
		{"802.11 aliases", "address1 addr4 direction", "kw:address1@0 kw:addr4@9 kw:direction@15"},
		{"pflog aliases", "on ifname rulenum subrulenum ruleset", "kw:on@0 kw:ifname@3 kw:rulenum@10 kw:subrulenum@18 kw:ruleset@29"},

		// Operators, white space.
		{"symbol operators", "&&||!", "&&@0 ||@2 !@4"},
		{"comparisons", ">= <= != == = < >", ">=@0 <=@3 !=@6 ==@9 =@12 <@14 >@16"},
		{"arithmetic", "+-*/%&|^<<>>", "+@0 -@1 *@2 /@3 %@4 &@5 |@6 ^@7 <<@8 >>@10"},
		{"brackets", "[]:()", "[@0 ]@1 :@2 (@3 )@4"},
		{"white space", " \t\r\ntcp\n", "proto:tcp@4"},
		{"vertical tab", "\vtcp", "error(invalid character '\v')@0"},
		{"utf-8", "é", "error(invalid character 'é')@0"},
		{"hash", "tcp#", "proto:tcp@0 error(invalid character '#')@3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lexAll(tt.in); got != tt.want {
				t.Errorf("lex %q:\n got %s\nwant %s", tt.in, got, tt.want)
			}
		})
	}
}
