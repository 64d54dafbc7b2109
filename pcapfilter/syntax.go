package pcapfilter

// The syntax tree of a filter expression, as the parser builds it. Every
// primitive carries its complete qualifiers: a bare id such as the "22" of
// "tcp port 21 or 22" gets the qualifiers it inherits, so that code
// generation never looks back. Positions are byte offsets into the
// expression.

// A Node is a node of the syntax tree: *Binary, *Not, *Qualified,
// *ProtoAbbrev, *Special, *Unsupported or *Relation.
type Node interface {
	Pos() int
}

// BoolOp is "and" or "or".
type BoolOp uint8

// The boolean operators.
const (
	And BoolOp = iota + 1 // and, &&
	Or                    // or, ||
)

// Binary is "X and Y" or "X or Y".
type Binary struct {
	Op    BoolOp
	OpPos int
	X, Y  Node
}

// Not is "not X" or "! X".
type Not struct {
	NotPos int
	X      Node
}

// Proto is a protocol qualifier: the keyword before a direction or type
// qualifier ("tcp" in "tcp port 21"), alone ("tcp"), or the name of a
// byte accessor ("tcp[13]").
type Proto uint8

// The protocol qualifiers. ProtoDefault is none given. ProtoLink stands
// for each of link, ether, ppp, slip, fddi, tr and wlan, which the
// language treats alike.
const (
	ProtoDefault Proto = iota
	ProtoLink
	ProtoIP
	ProtoIP6
	ProtoARP
	ProtoRARP
	ProtoTCP
	ProtoUDP
	ProtoSCTP
	ProtoICMP
	ProtoICMP6
	ProtoIGMP
	ProtoIGRP
	ProtoPIM
	ProtoVRRP
	ProtoCARP
	ProtoAH
	ProtoESP
	ProtoAtalk
	ProtoAARP
	ProtoDECnet
	ProtoLAT
	ProtoSCA
	ProtoMOPRC
	ProtoMOPDL
	ProtoISO
	ProtoESIS
	ProtoISIS
	ProtoCLNP
	ProtoL1
	ProtoL2
	ProtoIIH
	ProtoLSP
	ProtoSNP
	ProtoCSNP
	ProtoPSNP
	ProtoSTP
	ProtoIPX
	ProtoNetBEUI
	ProtoRadio
	numProtos
)

// Dir is a direction qualifier.
type Dir uint8

// The direction qualifiers. DirDefault is none given, which for most
// types means "src or dst".
const (
	DirDefault   Dir = iota
	DirSrc           // src
	DirDst           // dst
	DirSrcOrDst      // src or dst
	DirSrcAndDst     // src and dst
	DirAddr1         // addr1..addr4, ra, ta: 802.11 only
	DirAddr2
	DirAddr3
	DirAddr4
	DirRA
	DirTA
)

// Type is a type qualifier: what kind of thing the id names.
type Type uint8

// The type qualifiers. TypeDefault is none given: the id is a host, or a
// network when written as one (HID with a mask).
const (
	TypeDefault    Type = iota
	TypeHost            // host
	TypeNet             // net
	TypePort            // port
	TypePortRange       // portrange
	TypeGateway         // gateway
	TypeProto           // proto
	TypeProtochain      // protochain
)

// Qual is the qualifiers of a primitive.
type Qual struct {
	Proto Proto
	Dir   Dir
	Type  Type
}

// IDKind is the lexical kind of an id.
type IDKind uint8

// The kinds of id.
const (
	IDName   IDKind = iota + 1 // a name: host, service, protocol, or "20-21" for portrange
	IDNum                      // a number: decimal, 0x hex or 0 octal; Num holds it
	IDIPv4                     // dotted digits, possibly partial: "10.1", "10.1.2", "10.1.2.3" (HID); a lone "10" is an IDNum
	IDIPv6                     // an IPv6 address (HID6)
	IDMAC                      // a MAC address: "01:23:45:67:89:ab", "0123.4567.89ab", ... (EID)
	IDARCnet                   // an ARCnet address "$" and 1 or 2 hex digits (AID); Text holds the digits
)

// ID is the operand of a qualified primitive.
type ID struct {
	IDPos int
	Kind  IDKind
	Text  string // as written, with backslash escapes removed
	Num   uint32 // the value of an IDNum
}

// Qualified is "[proto] [dir] [type] id", such as "tcp dst port 21",
// "host 10.0.0.1", "net 10.0.0.0/8", "net 10.0.0.0 mask 255.0.0.0",
// "ether proto \ip", "ip6 protochain 6", "portrange 20-21".
type Qualified struct {
	QualPos int // the first qualifier, or the id if it inherited them
	Q       Qual
	ID      ID
	// Net masks: MaskLen is the length after "/" (-1 without one); Mask
	// the id after "mask" (nil without one).
	MaskLen int
	Mask    *ID
}

// ProtoAbbrev is a protocol keyword alone: "tcp", "ip6", "iso", "l1".
type ProtoAbbrev struct {
	ProtoPos int
	Proto    Proto
}

// SpecialKind names a primitive that is a keyword of its own.
type SpecialKind uint8

// The special primitives.
const (
	SpecialBroadcast SpecialKind = iota + 1 // [proto] broadcast
	SpecialMulticast                        // [proto] multicast
	SpecialLess                             // less N
	SpecialGreater                          // greater N
	SpecialInbound                          // inbound
	SpecialOutbound                         // outbound
	SpecialIfindex                          // ifindex N
	SpecialVLAN                             // vlan [N]
	SpecialMPLS                             // mpls [N]
	SpecialPPPoED                           // pppoed
	SpecialPPPoES                           // pppoes [N]
	SpecialGeneve                           // geneve [N]
	SpecialLLC                              // llc [i|s|u|rr|rnr|rej|ui|ua|disc|dm|sabme|test|xid|frmr]
	SpecialByte                             // byte N op M: Arg is N, ByteOp op, ByteVal M
)

// Special is a primitive that is a keyword of its own, with its optional
// number or subtype.
type Special struct {
	KeyPos int
	Kind   SpecialKind
	Proto  Proto  // broadcast, multicast: the protocol qualifier before it
	HasArg bool   // a number was given (vlan 100, less 64, ...)
	Arg    uint32 // the number
	Sub    string // llc: the subtype keyword, "" for none
	// byte N op M: the operator ('&', '|', '<', '>' or '=') and M.
	ByteOp  byte
	ByteVal uint32
}

// Unsupported is a construct of the language that applies only to link
// types this package does not compile for (802.11 "type mgt", pflog "on
// eth0", ATM "vpi 1", MTP "sio 3", ...). Code generation rejects it,
// naming the keyword.
type Unsupported struct {
	KeyPos  int
	Keyword string
}

// RelOp is a comparison operator of a relation.
type RelOp uint8

// The comparison operators.
const (
	RelEq RelOp = iota + 1 // = or ==
	RelNe                  // !=
	RelLt                  // <
	RelLe                  // <=
	RelGt                  // >
	RelGe                  // >=
)

// Relation is "arith relop arith", such as "tcp[13] & 2 != 0" or
// "len >= 100".
type Relation struct {
	Op    RelOp
	OpPos int
	X, Y  Arith
}

// An Arith is an arithmetic expression: *Num, *Len, *Load, *ArithBinary
// or *Neg.
type Arith interface {
	Pos() int
}

// Num is a number, written as one or as a named constant (tcp-syn,
// icmp-echo, tcpflags, ...).
type Num struct {
	NumPos int
	Val    uint32
}

// Len is "len", the packet's length on the wire.
type Len struct{ LenPos int }

// Load is "proto[index]" or "proto[index:size]".
type Load struct {
	ProtoPos int
	Proto    Proto
	Index    Arith
	Size     int // 1, 2 or 4
}

// ArithOp is a binary arithmetic operator.
type ArithOp uint8

// The arithmetic operators.
const (
	ArithAdd ArithOp = iota + 1 // +
	ArithSub                    // -
	ArithMul                    // *
	ArithDiv                    // /
	ArithMod                    // %
	ArithAnd                    // &
	ArithOr                     // |
	ArithXor                    // ^
	ArithLsh                    // <<
	ArithRsh                    // >>
)

// ArithBinary is "X op Y".
type ArithBinary struct {
	Op    ArithOp
	OpPos int
	X, Y  Arith
}

// Neg is "-X".
type Neg struct {
	MinusPos int
	X        Arith
}

func (n *Binary) Pos() int      { return n.X.Pos() }
func (n *Not) Pos() int         { return n.NotPos }
func (n *Qualified) Pos() int   { return n.QualPos }
func (n *ProtoAbbrev) Pos() int { return n.ProtoPos }
func (n *Special) Pos() int     { return n.KeyPos }
func (n *Unsupported) Pos() int { return n.KeyPos }
func (n *Relation) Pos() int    { return n.X.Pos() }
func (n *Num) Pos() int         { return n.NumPos }
func (n *Len) Pos() int         { return n.LenPos }
func (n *Load) Pos() int        { return n.ProtoPos }
func (n *ArithBinary) Pos() int { return n.X.Pos() }
func (n *Neg) Pos() int         { return n.MinusPos }
