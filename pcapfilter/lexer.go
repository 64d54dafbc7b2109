package pcapfilter

import (
	"net/netip"
	"strings"
)

// The lexer splits an expression into the tokens libpcap's scanner makes
// of it. Like libpcap's (a flex scanner), it takes at each position the
// longest text any token class matches, and on a tie the class listed
// first: keywords, MAC addresses, numbers, dotted numbers, IPv6 addresses,
// then names. That is why "len-1" is one name (and so a syntax error), why
// "20-21" is a name (a port range) and "1-2-3-4-5-6" a MAC address.

// tokKind is the kind of a token.
type tokKind uint8

const (
	tEOF   tokKind = iota
	tError         // a lexical error; the token's msg says what

	// Ids.
	tNum  // a number, or a named constant such as tcp-syn
	tHID  // dotted numbers: 10.1, 10.1.2.3 ("10" alone is a tNum)
	tHID6 // an IPv6 address
	tEID  // a MAC address
	tAID  // an ARCnet address: $ and one or two hex digits
	tID   // a name, or a backslash-escaped word

	// Operators.
	tLParen   // (
	tRParen   // )
	tLBracket // [
	tRBracket // ]
	tColon    // :
	tNot      // ! or not
	tAnd      // && or and
	tOr       // || or or
	tEq       // = or ==
	tNe       // !=
	tLt       // <
	tLe       // <=
	tGt       // >
	tGe       // >=
	tPlus     // +
	tMinus    // -
	tStar     // *
	tSlash    // /
	tPercent  // %
	tAmp      // &
	tPipe     // |
	tCaret    // ^
	tLsh      // <<
	tRsh      // >>

	// Keywords.
	tProto      // a protocol name: tok.proto says which
	tSrc        // src
	tDst        // dst
	tAddr1      // addr1, address1
	tAddr2      // addr2, address2
	tAddr3      // addr3, address3
	tAddr4      // addr4, address4
	tRA         // ra
	tTA         // ta
	tHost       // host
	tNet        // net
	tPort       // port
	tPortRange  // portrange
	tGateway    // gateway
	tProtoKW    // proto
	tProtochain // protochain
	tMask       // mask
	tLess       // less
	tGreater    // greater
	tByte       // byte
	tBroadcast  // broadcast
	tMulticast  // multicast
	tLen        // len, length
	tInbound    // inbound
	tOutbound   // outbound
	tIfindex    // ifindex
	tVLAN       // vlan
	tMPLS       // mpls
	tPPPoED     // pppoed
	tPPPoES     // pppoes
	tGeneve     // geneve
	tLLC        // llc
	// 802.11
	tType    // type
	tSubtype // subtype
	tDir     // dir, direction
	// pflog
	tPFIfname // on, ifname
	tPFRnr    // rnr, rulenum
	tPFSrnr   // srnr, subrulenum
	tPFReason // reason
	tPFRset   // rset, ruleset
	tPFAction // action
	// ATM
	tATMType      // lane metac bcc oam oamf4 sc ilmic
	tATMMultiType // connectmsg metaconnect
	tATMField     // vpi vci
	// MTP2, MTP3
	tMTP2Type  // fisu lssu msu hfisu hlssu hmsu (and lsu)
	tMTP3Field // sio opc dpc sls hsio hopc hdpc hsls
)

var tokNames = [...]string{
	tEOF: "end of expression", tError: "invalid token",
	tNum: "number", tHID: "IPv4 address", tHID6: "IPv6 address", tEID: "MAC address",
	tAID: "ARCnet address", tID: "name",
	tLParen: "'('", tRParen: "')'", tLBracket: "'['", tRBracket: "']'", tColon: "':'",
	tNot: "'not'", tAnd: "'and'", tOr: "'or'", tEq: "'='", tNe: "'!='", tLt: "'<'", tLe: "'<='",
	tGt: "'>'", tGe: "'>='", tPlus: "'+'", tMinus: "'-'", tStar: "'*'", tSlash: "'/'",
	tPercent: "'%'", tAmp: "'&'", tPipe: "'|'", tCaret: "'^'", tLsh: "'<<'", tRsh: "'>>'",
}

// keywords maps each keyword of the language to its token kind; protocol
// names map to tProto and are in protoNames.
var keywords = map[string]tokKind{
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

// protoNames maps the protocol keywords to their qualifier.
var protoNames = map[string]Proto{
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

// namedNums are the named constants, which lex as numbers.
var namedNums = map[string]uint32{
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

// token is one token of an expression.
type token struct {
	kind  tokKind
	proto Proto  // tProto: the qualifier
	num   uint32 // tNum: the value
	pos   int    // byte offset of its first byte
	end   int    // byte offset after its last byte
	text  string // the id's text, backslash removed; the keyword as written
	msg   string // tError: what is wrong
}

// set makes t the token kind at s[pos:end] with text s[pos:end], field by
// field: cheaper than assigning a whole token through a pointer.
func (t *token) set(kind tokKind, pos, end int, text string) {
	t.kind, t.proto, t.num, t.pos, t.end, t.text = kind, 0, 0, pos, end, text
	if t.msg != "" {
		t.msg = ""
	}
}

// lexer produces the tokens of an expression one at a time. Its state is
// its position, so the parser may look further ahead by copying it.
type lexer struct {
	src string
	pos int
}

// Character classes, for dispatching on a token's first byte and
// scanning names.
const (
	cSpace   = 1 << iota // white space
	cDigit               // 0-9
	cHex                 // 0-9 a-f A-F
	cAlnum               // 0-9 a-z A-Z
	cName                // what a name may contain: alnum . - _
	cNameEnd             // what a name may end with: alnum .
	cWord                // what reserved words are made of: 0-9 a-z -
)

var charClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case c == ' ', c == '\t', c == '\n', c == '\r':
			t[c] = cSpace
		case '0' <= c && c <= '9':
			t[c] = cDigit | cHex | cAlnum | cName | cNameEnd | cWord
		case 'a' <= c && c <= 'f':
			t[c] = cHex | cAlnum | cName | cNameEnd | cWord
		case 'A' <= c && c <= 'F':
			t[c] = cHex | cAlnum | cName | cNameEnd
		case 'g' <= c && c <= 'z':
			t[c] = cAlnum | cName | cNameEnd | cWord
		case 'G' <= c && c <= 'Z':
			t[c] = cAlnum | cName | cNameEnd
		case c == '.':
			t[c] = cName | cNameEnd
		case c == '-':
			t[c] = cName | cWord
		case c == '_':
			t[c] = cName
		}
	}
	return t
}()

func isSpace(c byte) bool { return charClass[c]&cSpace != 0 }
func isDigit(c byte) bool { return charClass[c]&cDigit != 0 }
func isHex(c byte) bool   { return charClass[c]&cHex != 0 }
func isAlnum(c byte) bool { return charClass[c]&cAlnum != 0 }

// next returns the next token and advances past it.
func (lx *lexer) next() token {
	var t token
	lx.read(&t)
	return t
}

// read reads the next token into t and advances past it.
func (lx *lexer) read(t *token) {
	lexAt(lx.src, lx.pos, t)
	lx.pos = t.end
}

// bracketNext reports whether the next token is '[' (after a protocol
// keyword, a byte accessor): one byte past the white space tells.
func (lx *lexer) bracketNext() bool {
	s, i := lx.src, lx.pos
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i < len(s) && s[i] == '['
}

// lexAt lexes the token at or after s[i] into t, skipping white space.
func lexAt(s string, i int, t *token) {
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	if i >= len(s) {
		t.set(tEOF, i, i, "")
		return
	}
	c := s[i]
	if isAlnum(c) {
		lexWord(s, i, t)
		return
	}
	op := func(k tokKind, n int) { t.set(k, i, i+n, s[i:i+n]) }
	var c2 byte // the byte after c, 0 at the end
	if i+1 < len(s) {
		c2 = s[i+1]
	}
	switch c {
	case '(':
		op(tLParen, 1)
		return
	case ')':
		op(tRParen, 1)
		return
	case '[':
		op(tLBracket, 1)
		return
	case ']':
		op(tRBracket, 1)
		return
	case ':':
		// A ':' may begin an IPv6 address ("::1").
		if c2 == ':' {
			*t = lexV6(s, i, v6Len(s, i))
			return
		}
		op(tColon, 1)
		return
	case '!':
		if c2 == '=' {
			op(tNe, 2)
			return
		}
		op(tNot, 1)
		return
	case '=':
		if c2 == '=' {
			op(tEq, 2)
			return
		}
		op(tEq, 1)
		return
	case '<':
		switch c2 {
		case '=':
			op(tLe, 2)
			return
		case '<':
			op(tLsh, 2)
			return
		}
		op(tLt, 1)
		return
	case '>':
		switch c2 {
		case '=':
			op(tGe, 2)
			return
		case '>':
			op(tRsh, 2)
			return
		}
		op(tGt, 1)
		return
	case '&':
		if c2 == '&' {
			op(tAnd, 2)
			return
		}
		op(tAmp, 1)
		return
	case '|':
		if c2 == '|' {
			op(tOr, 2)
			return
		}
		op(tPipe, 1)
		return
	case '+':
		op(tPlus, 1)
		return
	case '-':
		op(tMinus, 1)
		return
	case '*':
		op(tStar, 1)
		return
	case '/':
		op(tSlash, 1)
		return
	case '%':
		op(tPercent, 1)
		return
	case '^':
		op(tCaret, 1)
		return
	case '\\':
		// A backslash and the characters up to white space, '!', '(' or
		// ')' are a name: "\ip" is the name "ip".
		j := i + 1
		for j < len(s) && !isSpace(s[j]) && s[j] != '!' && s[j] != '(' && s[j] != ')' {
			j++
		}
		if j == i+1 {
			*t = token{kind: tError, pos: i, end: j, text: s[i:j], msg: "a backslash must be followed by a name"}
			return
		}
		*t = token{kind: tID, pos: i, end: j, text: s[i+1 : j]}
		return
	case '$':
		// An ARCnet address: '$' and one or two hex digits.
		j := i + 1
		for j < len(s) && j < i+3 && isHex(s[j]) {
			j++
		}
		if j > i+1 {
			*t = token{kind: tAID, pos: i, end: j, text: s[i+1 : j]}
			return
		}
	}
	j := i + 1
	for j < len(s) && s[j] >= 0x80 {
		j++ // keep a UTF-8 sequence whole
	}
	*t = token{kind: tError, pos: i, end: j, text: s[i:j], msg: "invalid character " + quoteTok(s[i:j])}
}

// lexWord lexes the token at s[i], a letter or digit: a keyword, number,
// address or name.
//
// Every candidate token class but those with a ':' (MAC addresses with
// colons, IPv6 addresses, bogus MAC addresses) matches only characters a
// name may contain, and ends in a letter, digit or '.', so it is no longer
// than the name at s[i]: the name is the longest match, and the class is
// the first in libpcap's order whose pattern matches all of it. The
// classes with a ':' need one right after the leading hex digits; when it
// is there, lexColonWord tries every class.
func lexWord(s string, i int, t *token) {
	// Fast paths for the common words: all digits, or a lowercase letter
	// and letters, digits and '-' (all keywords are), ending in a
	// character no token class continues with. Other words take the
	// general path below.
	if c := s[i]; isDigit(c) {
		j, v := i+1, uint32(c-'0')
		for j < len(s) && isDigit(s[j]) {
			v = v*10 + uint32(s[j]-'0') // lexNum checks the long ones
			j++
		}
		if j == len(s) || charClass[s[j]]&cName == 0 && s[j] != ':' {
			switch {
			case j-i == 12:
				*t = token{kind: tEID, pos: i, end: j, text: s[i:j]}
			case j-i <= 9 && (c != '0' || j-i == 1):
				// Decimal, and too short to overflow.
				t.set(tNum, i, j, s[i:j])
				t.num = v
			default:
				lexNum(s, i, j-i, t)
			}
			return
		}
		if s[j] == '.' {
			// Dotted decimal numbers, as in an IPv4 address: two to
			// four parts make a tHID, but three of four digits a MAC
			// address, which the general path sorts out.
			parts, k, short := 1, j, j-i != 4
			for parts < 5 && k+1 < len(s) && s[k] == '.' && isDigit(s[k+1]) {
				n := k + 2
				for n < len(s) && isDigit(s[n]) {
					n++
				}
				short = short || n-k-1 != 4
				parts++
				k = n
			}
			if parts <= 4 && (parts != 3 || short) &&
				(k == len(s) || charClass[s[k]]&cName == 0 && s[k] != ':') {
				t.set(tHID, i, k, s[i:k])
				return
			}
		}
	} else if 'a' <= c && c <= 'z' {
		j, h := i+1, uint32(c)
		for j < len(s) {
			c := s[j]
			if charClass[c]&cWord == 0 {
				break
			}
			h = h*31 + uint32(c)
			j++
		}
		if (j == len(s) || charClass[s[j]]&cName == 0 && s[j] != ':') && s[j-1] != '-' {
			word := s[i:j]
			e := lookupHashed(word, h)
			switch {
			case e != nil && e.kind != tNum:
				t.set(e.kind, i, j, word)
				t.proto = e.proto
			case isMAC(word):
				*t = token{kind: tEID, pos: i, end: j, text: word}
			case e != nil:
				*t = token{kind: tNum, pos: i, end: j, text: word, num: e.num}
			default:
				*t = token{kind: tID, pos: i, end: j, text: word}
			}
			return
		}
	}

	// The name: [A-Za-z0-9]([-_.A-Za-z0-9]*[.A-Za-z0-9])?
	j, last := i+1, i+1
	for j < len(s) {
		cc := charClass[s[j]]
		if cc&cName == 0 {
			break
		}
		j++
		if cc&cNameEnd != 0 {
			last = j
		}
	}
	if j < len(s) && s[j] == ':' && hexRun(s, i, j-i) == j-i {
		lexColonWord(s, i, t)
		return
	}
	// The classes all the name's characters have (wall), and its hash
	// for lookupHashed (wh).
	word := s[i:last]
	wall, wh := uint8(0xff), uint32(0)
	for k := 0; k < len(word); k++ {
		c := word[k]
		wall &= charClass[c]
		wh = wh*31 + uint32(c)
	}
	if wall&cDigit != 0 {
		// Digits only: a number, or twelve of them a MAC address.
		if len(word) == 12 {
			*t = token{kind: tEID, pos: i, end: last, text: word}
		} else {
			lexNum(s, i, len(word), t)
		}
		return
	}
	// Reserved words begin with a letter and have no capitals, '.' or '_'.
	var e *wordEntry
	if wall&cWord != 0 && !isDigit(word[0]) {
		e = lookupHashed(word, wh)
		if e != nil && e.kind != tNum {
			*t = token{kind: e.kind, pos: i, end: last, text: word, proto: e.proto}
			return
		}
	}
	switch {
	case isMAC(word):
		*t = token{kind: tEID, pos: i, end: last, text: word}
	case isNum(word):
		lexNum(s, i, len(word), t)
	case isHID(word):
		*t = token{kind: tHID, pos: i, end: last, text: word}
	case e != nil:
		*t = token{kind: tNum, pos: i, end: last, text: word, num: e.num}
	default:
		*t = token{kind: tID, pos: i, end: last, text: word}
	}
}

// isNum reports whether w is a number: [0-9]+ or 0[xX][0-9a-fA-F]+.
func isNum(w string) bool {
	if len(w) > 2 && w[0] == '0' && (w[1] == 'x' || w[1] == 'X') {
		w = w[2:]
		for k := 0; k < len(w); k++ {
			if !isHex(w[k]) {
				return false
			}
		}
		return true
	}
	for k := 0; k < len(w); k++ {
		if !isDigit(w[k]) {
			return false
		}
	}
	return len(w) > 0
}

// isHID reports whether w is two, three or four numbers joined by dots.
func isHID(w string) bool {
	parts := 1
	k := 0
	for n := 0; n < len(w); n++ {
		if w[n] == '.' {
			if parts == 4 || !isNum(w[k:n]) {
				return false
			}
			parts++
			k = n + 1
		}
	}
	return parts > 1 && isNum(w[k:])
}

// isMAC reports whether w is a MAC address written without colons: six
// groups of one or two hex digits separated by '-' or '.', three groups of
// four hex digits separated by '.', or twelve hex digits.
func isMAC(w string) bool {
	switch {
	case len(w) < 11 || len(w) > 17:
		return false
	case len(w) == 12 && hexRun(w, 0, 12) == 12:
		return true
	case len(w) == 14 && w[4] == '.' && w[9] == '.' &&
		hexRun(w, 0, 4) == 4 && hexRun(w, 5, 4) == 4 && hexRun(w, 10, 4) == 4:
		return true
	}
	sep := byte(0)
	k := 0
	for g := 0; g < 6; g++ {
		if g > 0 {
			if k >= len(w) || (w[k] != '-' && w[k] != '.') || (sep != 0 && w[k] != sep) {
				return false
			}
			sep = w[k]
			k++
		}
		n := hexRun(w, k, 2)
		if n == 0 {
			return false
		}
		k += n
	}
	return k == len(w)
}

// lexColonWord lexes the token at s[i], hex digits and a ':', by trying
// every token class: the longest match wins, and on a tie the earlier of
// keyword, MAC, number, dotted number, IPv6, bogus MAC, name.
func lexColonWord(s string, i int, t *token) {
	idn := idLen(s, i)
	macn := macLen(s, i)
	numn := numLen(s, i)
	hidn := hidLen(s, i)
	v6n := v6Len(s, i)
	bogusn := bogusMACLen(s, i)
	best := max(idn, macn, numn, hidn, v6n, bogusn)
	word := s[i : i+best]
	if idn == best {
		if e := lookupWord(word); e != nil && e.kind != tNum {
			*t = token{kind: e.kind, pos: i, end: i + best, text: word, proto: e.proto}
			return
		}
	}
	switch best {
	case macn:
		*t = token{kind: tEID, pos: i, end: i + best, text: word}
		return
	case numn:
		lexNum(s, i, best, t)
		return
	case hidn:
		*t = token{kind: tHID, pos: i, end: i + best, text: word}
		return
	case v6n:
		*t = lexV6(s, i, best)
		return
	case bogusn:
		*t = token{kind: tError, pos: i, end: i + best, text: word, msg: "bogus ethernet address " + clip(word)}
		return
	}
	if e := lookupWord(word); e != nil && e.kind == tNum {
		*t = token{kind: tNum, pos: i, end: i + best, text: word, num: e.num}
		return
	}
	*t = token{kind: tID, pos: i, end: i + best, text: word}
}

// wordEntry is a reserved word: a keyword (kind, and proto for a
// protocol) or a named constant (kind tNum and its value). The word is
// wordText[off:off+n]; the table holds no pointers, so the garbage
// collector need not scan it.
type wordEntry struct {
	off   uint16
	n     uint8
	kind  tokKind
	proto Proto
	num   uint32
}

// The reserved words in an open-addressing hash table, built from
// keywords, protoNames and namedNums: looking a word up hashes its few
// bytes once and compares one or two strings.
const wordTableBits = 10

var (
	wordTable  [1 << wordTableBits]wordEntry
	wordText   string
	maxWordLen int
)

func init() {
	var text strings.Builder
	add := func(w string, e wordEntry) {
		e.off, e.n = uint16(text.Len()), uint8(len(w))
		text.WriteString(w)
		h := hashWord(w)
		for wordTable[h].n != 0 {
			h = (h + 1) & (len(wordTable) - 1)
		}
		wordTable[h] = e
		maxWordLen = max(maxWordLen, len(w))
	}
	for w, p := range protoNames {
		add(w, wordEntry{kind: tProto, proto: p})
	}
	for w, k := range keywords {
		add(w, wordEntry{kind: k})
	}
	for w, v := range namedNums {
		add(w, wordEntry{kind: tNum, num: v})
	}
	wordText = text.String()
}

// hashWord is the slot of w in wordTable: a polynomial hash of its bytes
// (which lexWord computes as it scans), mixed with its length.
func hashWord(w string) int {
	h := uint32(0)
	for k := 0; k < len(w); k++ {
		h = h*31 + uint32(w[k])
	}
	return mixHash(h, len(w))
}

func mixHash(h uint32, n int) int {
	return int(((h ^ uint32(n)) * 0x9E3779B1) >> (32 - wordTableBits))
}

// lookupWord returns the reserved word w, or nil.
func lookupWord(w string) *wordEntry {
	h := uint32(0)
	for k := 0; k < len(w); k++ {
		h = h*31 + uint32(w[k])
	}
	return lookupHashed(w, h)
}

// lookupHashed returns the reserved word w, whose polynomial hash is h,
// or nil.
func lookupHashed(w string, h uint32) *wordEntry {
	if len(w) < 2 || len(w) > maxWordLen {
		return nil
	}
	for h := mixHash(h, len(w)); ; h = (h + 1) & (len(wordTable) - 1) {
		e := &wordTable[h]
		if e.n == 0 {
			return nil
		}
		if int(e.n) == len(w) && wordText[e.off:int(e.off)+len(w)] == w {
			return e
		}
	}
}

func quoteTok(s string) string { return "'" + s + "'" }

// clip shortens the text of a token for a message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// lexNum makes the number s[i:i+n] into t: decimal, 0x hex, or octal with
// a leading 0, of at most 32 bits.
func lexNum(s string, i, n int, t *token) {
	word := s[i : i+n]
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
		case isDigit(d):
			dv = uint64(d - '0')
		case 'a' <= d && d <= 'f':
			dv = uint64(d-'a') + 10
		default:
			dv = uint64(d-'A') + 10
		}
		if dv >= base {
			*t = token{kind: tError, pos: i, end: i + n, text: word, msg: "number " + clip(word) + " contains non-octal digit"}
			return
		}
		v = v*base + dv
		if v > 0xffffffff {
			*t = token{kind: tError, pos: i, end: i + n, text: word, msg: "number " + clip(word) + " overflows 32 bits"}
			return
		}
	}
	*t = token{kind: tNum, num: uint32(v), pos: i, end: i + n, text: word}
}

// lexV6 makes the IPv6 address s[i:i+n], which must be valid.
func lexV6(s string, i, n int) token {
	word := s[i : i+n]
	if _, err := netip.ParseAddr(word); err != nil {
		return token{kind: tError, pos: i, end: i + n, text: word, msg: "bogus IPv6 address " + word}
	}
	return token{kind: tHID6, pos: i, end: i + n, text: word}
}

// idLen is the length of the longest name at s[i]:
// [A-Za-z0-9]([-_.A-Za-z0-9]*[.A-Za-z0-9])?
func idLen(s string, i int) int {
	if i >= len(s) || !isAlnum(s[i]) {
		return 0
	}
	j := i + 1
	last := j // after the last [.A-Za-z0-9]
	for j < len(s) {
		c := s[j]
		if isAlnum(c) || c == '.' {
			j++
			last = j
		} else if c == '-' || c == '_' {
			j++
		} else {
			break
		}
	}
	return last - i
}

// numLen is the length of the longest number at s[i]: [0-9]+ or 0[xX][0-9a-fA-F]+.
func numLen(s string, i int) int {
	if i >= len(s) || !isDigit(s[i]) {
		return 0
	}
	if s[i] == '0' && i+2 < len(s) && (s[i+1] == 'x' || s[i+1] == 'X') && isHex(s[i+2]) {
		j := i + 2
		for j < len(s) && isHex(s[j]) {
			j++
		}
		return j - i
	}
	j := i
	for j < len(s) && isDigit(s[j]) {
		j++
	}
	return j - i
}

// hidLen is the length of the longest dotted number at s[i]: two, three
// or four numbers joined by dots.
func hidLen(s string, i int) int {
	n := numLen(s, i)
	if n == 0 {
		return 0
	}
	j, best := i+n, 0
	for parts := 1; parts < 4; parts++ {
		if j >= len(s) || s[j] != '.' {
			break
		}
		m := numLen(s, j+1)
		if m == 0 {
			break
		}
		j += 1 + m
		best = j - i
	}
	return best
}

// hexRun is the number of hex digits at s[i], at most max.
func hexRun(s string, i, max int) int {
	n := 0
	for i+n < len(s) && n < max && isHex(s[i+n]) {
		n++
	}
	return n
}

// macLen is the length of the longest MAC address at s[i]: six groups of
// one or two hex digits separated by ':', '-' or '.', or three groups of
// four hex digits separated by '.', or twelve hex digits.
func macLen(s string, i int) int {
	best := 0
	for _, sep := range []byte{':', '-', '.'} {
		j := i
		ok := true
		for g := 0; g < 6; g++ {
			if g > 0 {
				if j >= len(s) || s[j] != sep {
					ok = false
					break
				}
				j++
			}
			n := hexRun(s, j, 2)
			if n == 0 {
				ok = false
				break
			}
			j += n
		}
		if ok {
			best = max(best, j-i)
		}
	}
	// xxxx.xxxx.xxxx
	j := i
	ok := true
	for g := 0; g < 3; g++ {
		if g > 0 {
			if j >= len(s) || s[j] != '.' {
				ok = false
				break
			}
			j++
		}
		if hexRun(s, j, 4) != 4 {
			ok = false
			break
		}
		j += 4
	}
	if ok {
		best = max(best, j-i)
	}
	if hexRun(s, i, 12) == 12 {
		best = max(best, 12)
	}
	return best
}

// bogusMACLen is the length of the longest text at s[i] that libpcap
// reports as a bogus ethernet address: groups of one or two hex digits
// each followed by one or more ':', at least two groups.
func bogusMACLen(s string, i int) int {
	j, groups, best := i, 0, 0
	for {
		n := hexRun(s, j, 2)
		if n == 0 || j+n >= len(s) || s[j+n] != ':' {
			return best
		}
		j += n
		for j < len(s) && s[j] == ':' {
			j++
		}
		groups++
		if groups >= 2 {
			best = j - i
		}
	}
}

// v6Len is the length of the longest IPv6 address at s[i] by libpcap's
// lexical rules: eight groups of one to four hex digits, or fewer with
// one "::", the last two groups possibly written as dotted IPv4 (four
// numbers). The text is not validated here.
func v6Len(s string, i int) int {
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
			if n := ipv4TailLen(s, j); n > 0 {
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

// ipv4TailLen is the length of four dot-separated numbers at s[i], as
// libpcap's IPv6 rule allows them at the end of an address.
func ipv4TailLen(s string, i int) int {
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
