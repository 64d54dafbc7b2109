package pcapfilter

import (
	"fmt"
	"strings"
)

// The grammar, as libpcap 1.10's parser has it (each rule checked against
// libpcap by the differential tests):
//
//	expr    = term { ("and" | "or") (term | id) } ; same precedence, left to right
//	term    = "not" term | "(" expr ")" | head id | proto-name
//	        | arith relop arith | special
//	head    = [proto-name] (dir [type] | type | "proto" | "protochain" | "gateway")
//	dir     = "src" | "dst" | "src or dst" | "dst or src" | "src and dst"
//	        | "dst and src" | "addr1".."addr4" | "ra" | "ta"
//	id      = "not" id | pnum | "(" pid ")" | name | HID ["/" NUM | "mask" HID]
//	        | HID6 ["/" NUM] | MAC | "$" hex
//	pid     = (nid | pnum) { ("and" | "or") id }   ; nid: an id not in parentheses
//	pnum    = NUM | "(" pnum ")"
//	arith   = pnum | proto-name "[" arith [":" NUM] "]" | "len" | "-" arith
//	        | "(" arith ")" | arith op arith
//
// A bare id (the id of "expr and id") takes the qualifiers of what is
// before it: the head of the last primitive, or, for a parenthesized
// expression, what was before the parenthesis; after a protocol alone, a
// relation or a special primitive there are none and the id is an error.
// Among the arithmetic operators, | & << >> + - * / have the usual
// precedences; '^' and '%' have none in libpcap's grammar (see steal).

// Limits on the expressions Parse accepts, so that hostile input costs
// bounded time, memory and stack.
const (
	// MaxExprLen is the longest expression, in bytes, Parse accepts.
	MaxExprLen = 1 << 20
	// MaxDepth is the deepest nesting Parse accepts: of parentheses,
	// "not", brackets, unary minus and the right-nesting operators '^'
	// and '%', together.
	MaxDepth = 1000
)

// Parse parses a filter expression into its syntax tree. An expression
// that is empty or only white space matches every packet, as in libpcap:
// Parse returns a nil Node and a nil error for it.
//
// Parse accepts the language libpcap 1.10 accepts, token for token and
// rule for rule: "and" and "or" have the same precedence and group to the
// left, "not" binds tighter, and a bare id after "and" or "or" takes the
// qualifiers of the primitive before it ("tcp port 21 or 22"). Chains of
// "and"/"or" and of left-associative arithmetic give left-deep trees.
// Some errors libpcap finds only while generating code (an unknown
// qualifier combination such as "tcp host", an unknown host name) are
// left to Compile.
//
// An expression longer than MaxExprLen bytes (an *Error with Offset -1),
// or nested deeper than MaxDepth, is an error. Errors are *Error values
// giving the offset and text of the offending token.
func Parse(expr string) (root Node, err error) {
	var p parser
	return p.parse(expr)
}

// parse is Parse, with p's node memory, which Compile reuses.
func (p *parser) parse(expr string) (root Node, err error) {
	if len(expr) > MaxExprLen {
		return nil, &Error{Expr: expr, Offset: -1, Msg: fmt.Sprintf("expression is %d bytes long; the limit is %d", len(expr), MaxExprLen)}
	}
	// Field by field, keeping the node memory: copying the whole parser
	// shows in a short expression's compile time. advance sets tok.
	p.src, p.depth, p.parens = expr, 0, 0
	p.lx = lexer{src: expr}
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(bailout)
			if !ok {
				panic(r)
			}
			root, err = nil, e.err
		}
	}()
	p.advance()
	if p.tok.kind == tEOF {
		return nil, nil
	}
	var r result
	p.parseUnit(&r, modeTerm, qual{})
	p.element(&r, modeTerm)
	p.chain(&r, false)
	if p.tok.kind != tEOF {
		p.unexpected("'and', 'or' or the end of the expression")
	}
	return r.node, nil
}

// bailout carries a parse error up the stack to Parse.
type bailout struct{ err *Error }

// mode says what a position of the grammar admits.
type mode uint8

const (
	modeTerm  mode = iota // a primitive, not a bare id: at the start, after "not" there
	modeMixed             // a primitive or a bare id: after "and", "or"
	modeID                // only an id: after qualifiers, in a list of ids
)

// qual is the qualifiers a bare id takes: those of the primitive before
// it. ok is false where there are none (at the start of the expression,
// after "tcp" alone, after a relation, ...): libpcap rejects a bare id
// there.
type qual struct {
	q   Qual
	ok  bool
	pos int // the qualifiers' position; -1 when inherited through and/or
}

// rkind is the kind of a parsed piece.
type rkind uint8

const (
	rBool  rkind = iota + 1 // a primitive or a combination of them
	rID                     // an id, or ids joined by and/or (qualified by what came before)
	rNum                    // a number, possibly in parentheses: an id or an arithmetic operand
	rArith                  // arithmetic that still needs a comparison
)

// result is a parsed piece of an expression.
type result struct {
	kind rkind
	// parenIDs marks an rID in parentheses: libpcap's grammar lets a
	// parenthesized list of ids begin with an id, a number or "not", but
	// not with another parenthesized list ("host ((a or b))" is an error).
	parenIDs bool
	numEnd   int32 // rNum: the end of the number's text, 0 when unknown
	node     Node  // rBool, rID
	arith    Arith // rArith
	num      Num   // rNum, not allocated until it is arithmetic
	q        qual  // the qualifiers a following bare id takes
}

type parser struct {
	src    string
	lx     lexer
	tok    token
	depth  int // nesting of parentheses, brackets, "not", unary minus, '^', '%'
	parens int // open parentheses
	nodes  nodePool
}

// nodePool allocates the common nodes of a tree in chunks, so that a long
// expression costs a few allocations rather than one per node.
type nodePool struct {
	binary  chunk[Binary]
	qual    chunk[Qualified]
	not     chunk[Not]
	num     chunk[Num]
	rel     chunk[Relation]
	arith   chunk[ArithBinary]
	load    chunk[Load]
	special chunk[Special]
	proto   chunk[ProtoAbbrev]
}

// chunk hands out values of T from slices of growing size: 1, 2, 4, ...
// up to maxChunk, so a short expression allocates no more than it uses.
type chunk[T any] struct{ buf []T }

// reset makes the last slice handed out from ready for reuse: the nodes
// of the tree from it must no longer be in use.
func (c *chunk[T]) reset() {
	clear(c.buf)
	c.buf = c.buf[:0]
}

// reset readies p for another expression, keeping its node memory (for
// Compile, which discards each tree once it has generated the code); the
// tree it parsed must no longer be in use.
func (p *parser) reset() {
	n := &p.nodes
	n.binary.reset()
	n.qual.reset()
	n.not.reset()
	n.num.reset()
	n.rel.reset()
	n.arith.reset()
	n.load.reset()
	n.special.reset()
	n.proto.reset()
	// parse sets the rest; drop the expression, which may be large, and
	// the tokens' texts, which are parts of it.
	p.src, p.lx.src, p.tok.text = "", "", ""
}

const maxChunk = 128

// new returns a pointer to a copy of v.
func (c *chunk[T]) new(v T) *T {
	n := c.alloc()
	*n = v
	return n
}

// alloc returns a pointer to a zero T (reset cleared the values handed
// out before).
func (c *chunk[T]) alloc() *T {
	if len(c.buf) == cap(c.buf) {
		c.buf = make([]T, 0, min(max(2*cap(c.buf), 1), maxChunk))
	}
	c.buf = c.buf[:len(c.buf)+1]
	return &c.buf[len(c.buf)-1]
}

// advance reads the next token into p.tok (lexer.read, by hand: this is
// the parser's hottest path).
func (p *parser) advance() {
	s, i := p.lx.src, p.lx.pos
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	if i < len(s) && isAlnum(s[i]) {
		lexWord(s, i, &p.tok)
	} else {
		lexAt(s, i, &p.tok)
	}
	p.lx.pos = p.tok.end
	if p.tok.kind == tError {
		p.fail(p.tok, p.tok.msg)
	}
}

func (p *parser) fail(t token, msg string) {
	text := ""
	if t.kind != tEOF {
		text = p.src[t.pos:t.end]
	}
	panic(bailout{&Error{Expr: p.src, Offset: t.pos, Token: text, Msg: msg}})
}

func (p *parser) failf(t token, format string, args ...any) {
	p.fail(t, fmt.Sprintf(format, args...))
}

// describe names a token for an error message.
func describe(t token) string {
	switch {
	case t.kind == tEOF:
		return "the end of the expression"
	case t.kind == tProto || t.kind >= tSrc:
		return "keyword '" + t.text + "'"
	case t.kind == tNot && t.text == "not", t.kind == tAnd && t.text == "and", t.kind == tOr && t.text == "or":
		return "keyword '" + t.text + "'"
	case int(t.kind) < len(tokNames) && tokNames[t.kind] != "":
		if t.kind >= tLParen {
			return tokNames[t.kind]
		}
		return tokNames[t.kind] + " '" + clip(t.text) + "'"
	}
	return "'" + clip(t.text) + "'"
}

// unexpected fails at the current token, saying what was expected.
func (p *parser) unexpected(expected string) {
	if p.tok.kind == tRParen && p.parens == 0 {
		p.failf(p.tok, "unbalanced parenthesis: no '(' opens this ')'")
	}
	if p.tok.kind == tEOF {
		p.failf(p.tok, "unexpected end of expression: expected %s", expected)
	}
	p.failf(p.tok, "unexpected %s: expected %s", describe(p.tok), expected)
}

func (p *parser) enter() {
	p.depth++
	if p.depth > MaxDepth {
		p.failf(p.tok, "expression nested too deeply (the limit is %d)", MaxDepth)
	}
}

func (p *parser) leave() { p.depth-- }

// open and close track a parenthesis as nesting.
func (p *parser) open() {
	p.parens++
	p.enter()
}

func (p *parser) close() {
	p.parens--
	p.leave()
}

// expect consumes a token of kind k or fails.
func (p *parser) expect(k tokKind, what string) token {
	t := p.tok
	if t.kind != k {
		p.unexpected(what)
	}
	p.advance()
	return t
}

// chain parses "{ (and|or) element }" after left, making left the whole.
// In a list of ids (pid) each element must be an id; otherwise an element
// is a primitive or a bare id, which takes the qualifiers of the element
// before it. (Results are large: chain and element update them in place.)
func (p *parser) chain(left *result, pid bool) {
	for p.tok.kind == tAnd || p.tok.kind == tOr {
		op := And
		if p.tok.kind == tOr {
			op = Or
		}
		opPos := p.tok.pos
		p.advance()
		q := left.q
		q.pos = -1
		m := modeMixed
		if pid {
			m = modeID
		}
		var r result
		p.parseUnit(&r, m, q)
		p.element(&r, m)
		kind := rBool
		if pid {
			kind = rID
		}
		*left = result{kind: kind, node: p.nodes.binary.new(Binary{Op: op, OpPos: opPos, X: left.node, Y: r.node}), q: r.q}
	}
}

// element makes r, parsed in mode m, a node that and/or can join: a
// number becomes an id where ids are allowed; arithmetic without a
// comparison is an error.
func (p *parser) element(r *result, m mode) {
	switch r.kind {
	case rNum:
		if m == modeTerm {
			p.unexpected("a comparison operator after the number")
		}
		n := r.num
		var text string
		if r.numEnd > 0 {
			text = p.src[n.NumPos:r.numEnd]
		} else {
			text = p.numText(n.NumPos)
		}
		p.bareID(r, ID{IDPos: n.NumPos, Kind: IDNum, Text: text, Num: n.Val}, r.q, n.NumPos)
	case rArith:
		p.unexpected("a comparison operator")
	}
}

// numText is the text of the number at pos, as written.
func (p *parser) numText(pos int) string {
	lx := lexer{src: p.src, pos: pos}
	return lx.next().text
}

// bareID makes r the primitive of id with the qualifiers q (in place, and
// the node built in place: results and nodes are large).
func (p *parser) bareID(r *result, id ID, q qual, tokPos int) *Qualified {
	if !q.ok {
		lx := lexer{src: p.src, pos: tokPos}
		p.fail(lx.next(), "an id here needs qualifiers such as 'host' or 'port' before it; there are none to inherit")
	}
	n := p.nodes.qual.alloc()
	n.QualPos, n.Q, n.ID, n.MaskLen = q.pos, q.q, id, -1
	if q.pos < 0 {
		n.QualPos = id.IDPos
	}
	*r = result{kind: rID, node: n, q: q}
	return n
}

// isArithOp reports whether k continues an arithmetic expression or
// begins a comparison.
func isArithOp(k tokKind) bool {
	switch k {
	case tPlus, tMinus, tStar, tSlash, tPercent, tAmp, tPipe, tCaret, tLsh, tRsh,
		tEq, tNe, tLt, tLe, tGt, tGe:
		return true
	}
	return false
}

// parseUnit parses one element: a primitive, "not" and an element, a
// parenthesized expression or id list, a bare id (where m allows), or
// arithmetic. q is the qualifiers a bare id here takes. A number or
// arithmetic not followed by a comparison comes back as rNum or rArith
// for the caller to judge. The element is parsed into r (results are
// large: returning them up the calls shows in a short expression's
// compile time).
func (p *parser) parseUnit(r *result, m mode, q qual) {
	// The token's fields as needed, not a copy of it: this is hot.
	kind, pos := p.tok.kind, p.tok.pos
	switch kind {
	case tNot:
		p.enter()
		p.advance()
		p.parseUnit(r, m, q)
		p.element(r, m)
		p.leave()
		*r = result{kind: r.kind, node: p.nodes.not.new(Not{NotPos: pos, X: r.node}), q: r.q}
		return

	case tLParen:
		*r = p.parseParen(m, q)
		if m != modeID && isArithOp(p.tok.kind) {
			switch r.kind {
			case rNum:
				*r = p.relationFrom(p.nodes.num.new(r.num))
			case rArith:
				*r = p.relationFrom(r.arith)
			}
		}
		return

	case tNum:
		n, end := Num{NumPos: pos, Val: p.tok.num}, p.tok.end
		p.advance()
		if m != modeID && isArithOp(p.tok.kind) {
			*r = p.relationFrom(p.nodes.num.new(n))
			return
		}
		*r = result{kind: rNum, num: n, numEnd: int32(end), q: q}
		return

	case tID, tHID, tHID6, tEID, tAID:
		if m == modeTerm {
			p.unexpected("a primitive such as 'host " + clip(p.tok.text) + "'")
		}
		*r = p.parseNID(q)
		return
	}
	if m == modeID {
		p.unexpected("an id (a host, network, port or protocol)")
	}
	switch kind {
	case tMinus, tLen:
		*r = p.relationFrom(p.parseOperand())
	case tProto:
		if p.lx.bracketNext() {
			*r = p.relationFrom(p.parseOperand())
			return
		}
		proto := p.tok.proto
		p.advance()
		p.afterProto(r, proto, pos)
	case tSrc, tDst, tAddr1, tAddr2, tAddr3, tAddr4, tRA, tTA,
		tHost, tNet, tPort, tPortRange, tGateway, tProtoKW, tProtochain:
		p.parseHead(r, ProtoDefault, pos)
	case tBroadcast, tMulticast:
		p.afterProto(r, ProtoDefault, -1)
	case tType, tSubtype, tDir:
		*r = p.parse80211(p.tok)
	default:
		*r = p.parseOther(m)
	}
}

// afterProto parses what follows the protocol keyword proto at pos (or
// none, when pos is -1): qualifiers and an id, broadcast or multicast, an 802.11
// construct, or nothing (the protocol alone), into r.
func (p *parser) afterProto(r *result, proto Proto, pos int) {
	keyword := pos >= 0
	if !keyword {
		pos = p.tok.pos
	}
	switch p.tok.kind {
	case tSrc, tDst, tAddr1, tAddr2, tAddr3, tAddr4, tRA, tTA,
		tHost, tNet, tPort, tPortRange, tGateway, tProtoKW, tProtochain:
		p.parseHead(r, proto, pos)
	case tBroadcast, tMulticast:
		kind := SpecialBroadcast
		if p.tok.kind == tMulticast {
			kind = SpecialMulticast
		}
		n := p.nodes.special.new(Special{KeyPos: p.tok.pos, Kind: kind, Proto: proto})
		p.advance()
		*r = result{kind: rBool, node: n}
	case tType, tSubtype, tDir:
		*r = p.parse80211(p.tok)
		if keyword {
			r.node.(*Unsupported).KeyPos = pos
		}
	default:
		*r = result{kind: rBool, node: p.nodes.proto.new(ProtoAbbrev{ProtoPos: pos, Proto: proto})}
	}
}

// parseHead parses "[dir] [type] id" after an optional protocol, into r.
func (p *parser) parseHead(r *result, proto Proto, pos int) {
	q := Qual{Proto: proto}
	// The tokens' fields as needed, not copies of them: this is hot.
	switch kind := p.tok.kind; kind {
	case tSrc, tDst:
		dir := p.tok.text
		p.advance()
		q.Dir = DirSrc
		other := tDst
		if kind == tDst {
			q.Dir, other = DirDst, tSrc
		}
		if conj := p.tok.kind; conj == tOr || conj == tAnd {
			conjText := p.tok.text
			p.advance()
			if p.tok.kind != other {
				p.unexpected(fmt.Sprintf("'%s' after '%s %s'", map[tokKind]string{tSrc: "src", tDst: "dst"}[other], dir, conjText))
			}
			p.advance()
			q.Dir = DirSrcOrDst
			if conj == tAnd {
				q.Dir = DirSrcAndDst
			}
		}
	case tAddr1, tAddr2, tAddr3, tAddr4, tRA, tTA:
		p.advance()
		q.Dir = [...]Dir{tAddr1: DirAddr1, tAddr2: DirAddr2, tAddr3: DirAddr3, tAddr4: DirAddr4, tRA: DirRA, tTA: DirTA}[kind]
	}
	switch kind := p.tok.kind; kind {
	case tHost:
		q.Type = TypeHost
	case tNet:
		q.Type = TypeNet
	case tPort:
		q.Type = TypePort
	case tPortRange:
		q.Type = TypePortRange
	case tGateway, tProtoKW, tProtochain:
		if q.Dir != DirDefault {
			p.unexpected("'host', 'net', 'port', 'portrange' or an id after a direction")
		}
		q.Type = [...]Type{tGateway: TypeGateway, tProtoKW: TypeProto, tProtochain: TypeProtochain}[kind]
	}
	if q.Type != TypeDefault {
		p.advance()
	}
	p.parseUnit(r, modeID, qual{q: q, ok: true, pos: pos})
	p.element(r, modeID)
	*r = result{kind: rBool, node: r.node, q: qual{q: q, ok: true, pos: pos}}
}

// parseNID parses an id at the current token: a name, a number, a MAC
// address, or an address or network (with "/len" or "mask addr").
func (p *parser) parseNID(q qual) result {
	t := p.tok
	p.advance()
	id := ID{IDPos: t.pos, Text: t.text}
	maskLen := -1
	var mask *ID
	switch t.kind {
	case tID:
		id.Kind = IDName
	case tAID:
		id.Kind = IDARCnet
	case tEID:
		id.Kind = IDMAC
	case tHID, tHID6:
		id.Kind = IDIPv4
		limit := uint32(32)
		if t.kind == tHID6 {
			id.Kind, limit = IDIPv6, 128
		}
		switch {
		case p.tok.kind == tSlash:
			p.advance()
			nt := p.expect(tNum, "a mask length after '/'")
			if nt.num > limit {
				p.failf(nt, "mask length must be <= %d", limit)
			}
			maskLen = int(nt.num)
		case p.tok.kind == tMask && t.kind == tHID:
			p.advance()
			mt := p.expect(tHID, "a dotted netmask after 'mask'")
			mask = &ID{IDPos: mt.pos, Kind: IDIPv4, Text: mt.text}
		}
	}
	var r result
	qn := p.bareID(&r, id, q, t.pos)
	qn.MaskLen, qn.Mask = maskLen, mask
	return r
}

// parseParen parses "( ... )" in mode m: an expression, a list of ids,
// or arithmetic. A parenthesized expression passes on the qualifiers of
// what came before the parenthesis, as in libpcap.
func (p *parser) parseParen(m mode, q qual) result {
	open := p.tok
	p.open()
	p.advance()
	var first result
	p.parseUnit(&first, m, q)
	if first.parenIDs {
		p.fail(open, "a parenthesized list of ids cannot begin with another parenthesized list")
	}
	if p.tok.kind == tRParen {
		p.advance()
		p.close()
		first.q = q
		first.parenIDs = first.kind == rID
		return first
	}
	if p.tok.kind != tAnd && p.tok.kind != tOr {
		if p.tok.kind == tEOF {
			p.fail(open, "unbalanced parenthesis: no ')' closes this '('")
		}
		p.unexpected("')'")
	}
	p.element(&first, m)
	r := first
	p.chain(&r, first.kind == rID)
	if p.tok.kind != tRParen {
		if p.tok.kind == tEOF {
			p.fail(open, "unbalanced parenthesis: no ')' closes this '('")
		}
		p.unexpected("'and', 'or' or ')'")
	}
	p.advance()
	p.close()
	r.q = q
	r.parenIDs = r.kind == rID
	return r
}

// relationFrom parses the rest of a relation whose first operand begins
// with x, a complete operand. Without a comparison operator it returns
// the arithmetic as rArith (or rNum) when allowed.
func (p *parser) relationFrom(x Arith) result {
	x = p.climb(p.steal(x), 1)
	var op RelOp
	switch p.tok.kind {
	case tEq:
		op = RelEq
	case tNe:
		op = RelNe
	case tLt:
		op = RelLt
	case tLe:
		op = RelLe
	case tGt:
		op = RelGt
	case tGe:
		op = RelGe
	default:
		if n, ok := x.(*Num); ok {
			return result{kind: rNum, num: *n}
		}
		return result{kind: rArith, arith: x}
	}
	opPos := p.tok.pos
	p.advance()
	y := p.parseArith()
	return result{kind: rBool, node: p.nodes.rel.new(Relation{Op: op, OpPos: opPos, X: x, Y: y})}
}

// Arithmetic. libpcap's grammar gives | & << >> + - * / the usual
// precedences (lowest to highest: |, &, shifts, + -, * /), all left
// associative, and unary minus the highest. It gives '^' and '%' none: the
// parser always shifts them, so "a op b ^ c op d" is "a op (b ^ (c op d))".
// steal models that: the operand before '^' or '%' is the one just parsed,
// and the rest of the arithmetic is its right operand.

// arithPrec is the precedence of a left-associative binary operator, 0
// for other tokens.
func arithPrec(k tokKind) (ArithOp, int) {
	switch k {
	case tPipe:
		return ArithOr, 1
	case tAmp:
		return ArithAnd, 2
	case tLsh:
		return ArithLsh, 3
	case tRsh:
		return ArithRsh, 3
	case tPlus:
		return ArithAdd, 4
	case tMinus:
		return ArithSub, 4
	case tStar:
		return ArithMul, 5
	case tSlash:
		return ArithDiv, 5
	}
	return 0, 0
}

// parseArith parses a complete arithmetic expression.
func (p *parser) parseArith() Arith {
	return p.climb(p.parseOperand(), 1)
}

// climb parses binary operators of precedence minPrec or more after x,
// iteratively for operators of equal precedence (left-deep trees).
func (p *parser) climb(x Arith, minPrec int) Arith {
	for {
		op, prec := arithPrec(p.tok.kind)
		if prec == 0 || prec < minPrec {
			return x
		}
		opPos := p.tok.pos
		p.advance()
		y := p.parseOperand()
		for {
			_, next := arithPrec(p.tok.kind)
			if next <= prec {
				break
			}
			y = p.climb(y, prec+1)
		}
		x = p.nodes.arith.new(ArithBinary{Op: op, OpPos: opPos, X: x, Y: y})
	}
}

// parseOperand parses unary minus and a primary, with what '^' or '%'
// after it takes.
func (p *parser) parseOperand() Arith {
	if p.tok.kind == tMinus {
		t := p.tok
		p.enter()
		p.advance()
		x := p.parseOperand()
		p.leave()
		return &Neg{MinusPos: t.pos, X: x}
	}
	return p.steal(p.parsePrimary())
}

// steal applies a '^' or '%' after the operand x.
func (p *parser) steal(x Arith) Arith {
	if p.tok.kind != tCaret && p.tok.kind != tPercent {
		return x
	}
	op := ArithXor
	if p.tok.kind == tPercent {
		op = ArithMod
	}
	opPos := p.tok.pos
	p.enter()
	p.advance()
	y := p.parseArith()
	p.leave()
	return p.nodes.arith.new(ArithBinary{Op: op, OpPos: opPos, X: x, Y: y})
}

// parsePrimary parses a number, len, proto[index[:size]] or a
// parenthesized arithmetic expression.
func (p *parser) parsePrimary() Arith {
	t := p.tok
	switch t.kind {
	case tNum:
		p.advance()
		return p.nodes.num.new(Num{NumPos: t.pos, Val: t.num})
	case tLen:
		p.advance()
		return &Len{LenPos: t.pos}
	case tLParen:
		p.open()
		p.advance()
		x := p.parseArith()
		if p.tok.kind != tRParen {
			if p.tok.kind == tEOF {
				p.fail(t, "unbalanced parenthesis: no ')' closes this '('")
			}
			p.unexpected("an arithmetic operator or ')'")
		}
		p.advance()
		p.close()
		return x
	case tProto:
		p.advance()
		open := p.tok
		if p.tok.kind != tLBracket {
			p.unexpected("'[' after '" + t.text + "' in arithmetic")
		}
		p.enter()
		p.advance()
		idx := p.parseArith()
		size := 1
		if p.tok.kind == tColon {
			p.advance()
			st := p.expect(tNum, "a size (1, 2 or 4) after ':'")
			if st.num != 1 && st.num != 2 && st.num != 4 {
				p.fail(st, "data size must be 1, 2, or 4")
			}
			size = int(st.num)
		}
		if p.tok.kind != tRBracket {
			if p.tok.kind == tEOF {
				p.fail(open, "unbalanced bracket: no ']' closes this '['")
			}
			p.unexpected("':' or ']'")
		}
		p.advance()
		p.leave()
		return p.nodes.load.new(Load{ProtoPos: t.pos, Proto: t.proto, Index: idx, Size: size})
	}
	p.unexpected("a number, 'len', 'proto[index]' or '('")
	return nil
}

// parsePnum parses a number, possibly in parentheses.
func (p *parser) parsePnum(what string) token {
	if p.tok.kind == tLParen {
		open := p.tok
		p.open()
		p.advance()
		t := p.parsePnum(what)
		if p.tok.kind != tRParen {
			if p.tok.kind == tEOF {
				p.fail(open, "unbalanced parenthesis: no ')' closes this '('")
			}
			p.unexpected("')'")
		}
		p.advance()
		p.close()
		return t
	}
	return p.expect(tNum, what)
}

// llcSubtypes are the names "llc" takes, matched without regard to case.
var llcSubtypes = []string{"i", "s", "u", "rr", "rnr", "rej", "ui", "ua", "disc", "dm", "sabme", "test", "xid", "frmr"}

// parseOther parses the special primitives and the constructs of other
// link types.
func (p *parser) parseOther(m mode) result {
	t := p.tok
	special := func(kind SpecialKind) *Special { return p.nodes.special.new(Special{KeyPos: t.pos, Kind: kind}) }
	// withNum parses "kw N", "kw (N)" with optional parentheses when paren.
	optNum := func(s *Special) {
		if p.tok.kind == tNum || p.tok.kind == tLParen && p.parenNumAhead() {
			n := p.parsePnum("a number after '" + t.text + "'")
			s.HasArg, s.Arg = true, n.num
		}
	}
	switch t.kind {
	case tLess, tGreater, tIfindex:
		p.advance()
		n := p.expect(tNum, "a number after '"+t.text+"'")
		kind := [...]SpecialKind{tLess: SpecialLess, tGreater: SpecialGreater, tIfindex: SpecialIfindex}[t.kind]
		s := special(kind)
		s.HasArg, s.Arg = true, n.num
		return result{kind: rBool, node: s}
	case tByte:
		p.advance()
		idx := p.expect(tNum, "a byte offset after 'byte'")
		var op byte
		switch p.tok.kind {
		case tAmp:
			op = '&'
		case tPipe:
			op = '|'
		case tLt:
			op = '<'
		case tGt:
			op = '>'
		case tEq:
			op = '='
		default:
			p.unexpected("one of & | < > = after 'byte " + idx.text + "'")
		}
		p.advance()
		v := p.expect(tNum, "a number to compare the byte with")
		s := special(SpecialByte)
		s.HasArg, s.Arg, s.ByteOp, s.ByteVal = true, idx.num, op, v.num
		return result{kind: rBool, node: s}
	case tInbound, tOutbound, tPPPoED:
		p.advance()
		kind := [...]SpecialKind{tInbound: SpecialInbound, tOutbound: SpecialOutbound, tPPPoED: SpecialPPPoED}[t.kind]
		return result{kind: rBool, node: special(kind)}
	case tVLAN, tMPLS, tPPPoES, tGeneve:
		p.advance()
		kind := [...]SpecialKind{tVLAN: SpecialVLAN, tMPLS: SpecialMPLS, tPPPoES: SpecialPPPoES, tGeneve: SpecialGeneve}[t.kind]
		s := special(kind)
		optNum(s)
		return result{kind: rBool, node: s}
	case tLLC:
		p.advance()
		s := special(SpecialLLC)
		switch p.tok.kind {
		case tID:
			sub := strings.ToLower(p.tok.text)
			found := false
			for _, n := range llcSubtypes {
				found = found || n == sub
			}
			if !found {
				p.failf(p.tok, "unknown LLC type name %q", clip(p.tok.text))
			}
			s.Sub = sub
			p.advance()
		case tPFRnr:
			// "rnr" lexes as the pflog keyword, as does its alias
			// "rulenum", which libpcap takes here as "rnr" too.
			s.Sub = "rnr"
			p.advance()
		}
		return result{kind: rBool, node: s}
	case tPFIfname, tPFRset, tPFAction:
		p.advance()
		p.expect(tID, "a name after '"+t.text+"'")
		return p.unsupported(t)
	case tPFRnr, tPFSrnr:
		p.advance()
		p.expect(tNum, "a number after '"+t.text+"'")
		return p.unsupported(t)
	case tPFReason:
		p.advance()
		if p.tok.kind != tNum && p.tok.kind != tID {
			p.unexpected("a reason (a number or a name) after 'reason'")
		}
		p.advance()
		return p.unsupported(t)
	case tATMType, tATMMultiType, tMTP2Type:
		p.advance()
		return p.unsupported(t)
	case tATMField, tMTP3Field:
		p.advance()
		p.parseFieldValue(t)
		return p.unsupported(t)
	}
	if m == modeTerm {
		p.unexpected("a primitive")
	}
	p.unexpected("a primitive or an id")
	return result{}
}

// parenNumAhead reports whether the tokens ahead are "(" ... "(" NUM ")",
// a parenthesized number, as after "vlan".
func (p *parser) parenNumAhead() bool {
	lx := p.lx
	n := 1 // p.tok is '('
	for {
		t := lx.next()
		switch t.kind {
		case tLParen:
			n++
			if n > MaxDepth {
				return true // let parsePnum report the depth
			}
			continue
		case tNum:
			return true
		}
		return false
	}
}

// parseFieldValue parses what follows an ATM or MTP3 field keyword kw:
// N, relop N, or (N or N ...).
func (p *parser) parseFieldValue(kw token) {
	switch p.tok.kind {
	case tNum:
		p.advance()
	case tEq, tNe, tLt, tLe, tGt, tGe:
		p.advance()
		p.expect(tNum, "a number after the comparison")
	case tLParen:
		open := p.tok
		p.advance()
		p.parens++
		p.expect(tNum, "a number")
		for p.tok.kind == tOr {
			p.advance()
			p.expect(tNum, "a number after 'or'")
		}
		if p.tok.kind != tRParen {
			if p.tok.kind == tEOF {
				p.fail(open, "unbalanced parenthesis: no ')' closes this '('")
			}
			p.unexpected("'or' or ')'")
		}
		p.advance()
		p.parens--
	default:
		p.unexpected("a number, a comparison or a parenthesized list after '" + kw.text + "'")
	}
}

// parse80211 parses "type T [subtype S]", "subtype S" or "dir D".
func (p *parser) parse80211(kw token) result {
	p.advance()
	switch kw.kind {
	case tType:
		if p.tok.kind != tNum && p.tok.kind != tID {
			p.unexpected("a frame type after 'type'")
		}
		p.advance()
		if p.tok.kind == tSubtype {
			p.advance()
			if p.tok.kind != tNum && p.tok.kind != tID {
				p.unexpected("a frame subtype after 'subtype'")
			}
			p.advance()
		}
	case tSubtype:
		p.expect(tID, "a frame subtype name after 'subtype'")
	case tDir:
		if p.tok.kind != tNum && p.tok.kind != tID {
			p.unexpected("a direction after '" + kw.text + "'")
		}
		p.advance()
	}
	return p.unsupported(kw)
}

func (p *parser) unsupported(kw token) result {
	return result{kind: rBool, node: &Unsupported{KeyPos: kw.pos, Keyword: kw.text}}
}
