package pcapfilter

// The name tables: what the names in a filter expression stand for
// (services, IP protocols, Ethernet types, OSI protocols, hosts, MAC
// addresses, networks), looked up as libpcap 1.10 looks them up on a glibc
// system, so that a name compiles to the number libpcap's program has.
//
// libpcap asks the C library (getaddrinfo, getprotobyname, getnetbyname,
// ether_hostton), which reads /etc/services, /etc/protocols, /etc/networks,
// /etc/ethers and /etc/hosts. This file reads the same files itself, with
// the parsing rules glibc's "files" backend applies (found by experiment,
// see names_test.go), and keeps a small fallback table for services and
// protocols for machines without those files. Host names go through Go's
// resolver.
//
// Each file is read and parsed at most once per path, on first use, and
// the result is shared: every lookup is safe for concurrent use. The paths
// are package variables so that tests can point them at files of their own.

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"
)

// The files the lookups read. Tests point them elsewhere.
var (
	servicesPath  = "/etc/services"
	protocolsPath = "/etc/protocols"
	networksPath  = "/etc/networks"
	ethersPath    = "/etc/ethers"
)

// hostLookupTimeout bounds a host name lookup.
var hostLookupTimeout = 5 * time.Second

// maxNameFileSize bounds how much of a name file is read, so that a huge or
// endless file (a device, say) cannot exhaust memory.
const maxNameFileSize = 16 << 20

// IP protocol numbers the port lookups speak of.
const (
	ipprotoTCP  = 6
	ipprotoUDP  = 17
	ipprotoSCTP = 132
	// anyTransport stands for libpcap's "no particular protocol": the
	// primitive tests SCTP, TCP and UDP.
	anyTransport = -1
)

// A parsedFile caches the parse of one file per path: the first lookup
// reads and parses it, later ones share the result. A missing or
// unreadable file is remembered as absent.
type parsedFile[T any] struct {
	parse   func([]byte) T
	mu      sync.Mutex
	path    string
	done    bool
	present bool
	val     T
}

// get returns the parse of the file at path, and whether the file could be
// read.
func (c *parsedFile[T]) get(path string) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.done || c.path != path {
		var zero T
		c.path, c.done, c.present, c.val = path, true, false, zero
		if data, err := readNameFile(path); err == nil {
			c.present, c.val = true, c.parse(data)
		}
	}
	return c.val, c.present
}

// readNameFile reads at most maxNameFileSize bytes of the file at path.
func readNameFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxNameFileSize))
}

// nameFileLines calls fn with each line of a name file, cut at its first
// '#' as glibc's files backend cuts comments.
func nameFileLines(data []byte, fn func(line string)) {
	for len(data) > 0 {
		var line []byte
		if i := indexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		if i := indexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fn(string(line))
	}
}

// nameFileFields calls fn with the fields of each line of a name file that
// has any: the line cut at its first '#', split at spaces and tabs.
func nameFileFields(data []byte, fn func(fields []string)) {
	nameFileLines(data, func(line string) {
		if f := strings.FieldsFunc(line, isCSpace); len(f) > 0 {
			fn(f)
		}
	})
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// isCSpace is C's isspace in the C locale.
func isCSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\v' || r == '\f' || r == '\r'
}

// asciiLower lowers ASCII letters only, as strcasecmp compares them.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// strtoul parses the number at the start of s as C's strtoul does in the
// given base (0, 10 or 16): leading white space, an optional sign, an
// optional 0x for base 16 or 0, digits; base 0 is 16 after 0x, 8 after a
// leading 0, else 10. A value too large is ULONG_MAX; a minus sign negates
// it modulo 2^64. n is the number of bytes consumed, 0 when there are no
// digits.
func strtoul(s string, base uint64) (v uint64, n int) {
	i := 0
	for i < len(s) && isCSpace(rune(s[i])) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	hexPrefix := i+2 < len(s) && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X') && hexVal(s[i+2]) >= 0
	switch {
	case (base == 16 || base == 0) && hexPrefix:
		base = 16
		i += 2
	case base == 0 && i < len(s) && s[i] == '0':
		base = 8
	case base == 0:
		base = 10
	}
	start, over := i, false
	for ; i < len(s); i++ {
		d := hexVal(s[i])
		if d < 0 || uint64(d) >= base {
			break
		}
		if v > (^uint64(0)-uint64(d))/base {
			over = true
		}
		v = v*base + uint64(d)
	}
	if i == start {
		return 0, 0
	}
	if over {
		return ^uint64(0), i
	}
	if neg {
		v = -v
	}
	return v, i
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// ---- Services ----

// servicePorts is a service's port per transport protocol, -1 for none.
type servicePorts struct{ tcp, udp, sctp int }

// parseServices parses /etc/services as glibc does: "name port/protocol
// alias...". The port is a number as strtoul reads it in base 0 ("0x10" is
// 16, "010" is 8), at most 0xffffffff (so "-1" is no port, "-0" is 0), of
// which the low 16 bits count (65556 is 20). The protocol is compared
// exactly ("TCP" is not "tcp"). The first line that gives a name (or
// alias) a port for a protocol wins; names are case-sensitive.
func parseServices(data []byte) map[string]servicePorts {
	m := make(map[string]servicePorts)
	nameFileFields(data, func(f []string) {
		if len(f) < 2 {
			return
		}
		v, n := strtoul(f[1], 0)
		if n == 0 || n >= len(f[1]) || f[1][n] != '/' || v > 0xffffffff {
			return
		}
		port := int(uint16(v))
		proto := f[1][n+1:]
		names := append([]string{f[0]}, f[2:]...)
		for _, name := range names {
			p, ok := m[name]
			if !ok {
				p = servicePorts{-1, -1, -1}
			}
			switch {
			case proto == "tcp" && p.tcp < 0:
				p.tcp = port
			case proto == "udp" && p.udp < 0:
				p.udp = port
			case proto == "sctp" && p.sctp < 0:
				p.sctp = port
			}
			m[name] = p
		}
	})
	return m
}

var servicesFile = parsedFile[map[string]servicePorts]{parse: parseServices}

// fallbackServicesText is the services table used where /etc/services is
// absent; names_services.txt says where its entries come from.
//
//go:embed names_services.txt
var fallbackServicesText []byte

var fallbackServices = sync.OnceValue(func() map[string]servicePorts {
	return parseServices(fallbackServicesText)
})

// lookupService returns the port of a service name per transport protocol,
// -1 where the protocol has none: from servicesPath when that file can be
// read, else from the embedded fallback table. A name that is a decimal
// number is that port for every protocol, as getaddrinfo takes it (see
// numericService).
//
// libpcap 1.10 never asks about SCTP: a name's sctp port is here for
// completeness, and the code generator must not use it (servicePort says
// what it must do).
func lookupService(name string) (tcp, udp, sctp int) {
	if p, ok := numericService(name); ok {
		return p, p, p
	}
	m, ok := servicesFile.get(servicesPath)
	if !ok {
		m = fallbackServices()
	}
	if p, ok := m[name]; ok {
		return p.tcp, p.udp, p.sctp
	}
	return -1, -1, -1
}

// numericService reports whether getaddrinfo takes a service text as a
// number rather than a name, and which port: the whole text must be a
// number as strtoul reads it in base 10, whose value, cut to a C int, is
// not negative; the port is its low 16 bits. So "020" is 20, "65556" is 20
// and "-5" is looked up as a name (and is unknown).
func numericService(s string) (int, bool) {
	v, n := strtoul(s, 10)
	if n == 0 || n != len(s) {
		return 0, false
	}
	if int32(uint32(v)) < 0 {
		return 0, false
	}
	return int(uint16(v)), true
}

// servicePort resolves the NAME of "[proto] [dir] port NAME" as libpcap
// 1.10 does. q is the protocol qualifier: ProtoDefault, ProtoTCP, ProtoUDP
// or ProtoSCTP (the generator rejects the others first, with libpcap's
// "illegal qualifier of 'port'"). It returns the port and the transport
// the primitive tests: ipprotoTCP, ipprotoUDP, ipprotoSCTP, or
// anyTransport for all three, as "port 53" does.
//
// libpcap looks the name up for TCP and for UDP only, never SCTP:
//   - a TCP port and no UDP port, or a UDP port that differs from the TCP
//     one: the TCP port, TCP only. So "port ftp" is "tcp port 21", and a
//     name whose UDP port differs matches its TCP port over TCP only.
//   - a UDP port only: the UDP port, UDP only ("port ntp" is "udp port 123").
//   - the same port for both: that port, any transport ("port domain"
//     tests SCTP, TCP and UDP port 53).
//
// A protocol qualifier must agree: "udp port ftp" is an error ("port 'ftp'
// is tcp"), as are "tcp port ntp" and "sctp port ntp" ("is udp"); "sctp
// port domain" is SCTP port 53. The errors are libpcap's messages.
func servicePort(name string, q Proto) (port, transport int, err error) {
	port, transport, ok := resolveService(name)
	if !ok {
		return 0, 0, fmt.Errorf("unknown port '%s'", name)
	}
	transport, err = qualifyTransport(transport, q, func(is string) error {
		return fmt.Errorf("port '%s' is %s", name, is)
	})
	if err != nil {
		return 0, 0, err
	}
	return port, transport, nil
}

// resolveService is libpcap's reduction of a name's TCP and UDP ports to
// one port and transport (see servicePort).
func resolveService(name string) (port, transport int, ok bool) {
	tcp, udp, _ := lookupService(name)
	switch {
	case tcp >= 0 && udp == tcp:
		return tcp, anyTransport, true
	case tcp >= 0:
		return tcp, ipprotoTCP, true
	case udp >= 0:
		return udp, ipprotoUDP, true
	}
	return 0, 0, false
}

// qualifyTransport checks a name's transport against the protocol
// qualifier and returns the transport the primitive tests.
func qualifyTransport(transport int, q Proto, mismatch func(is string) error) (int, error) {
	want := anyTransport
	switch q {
	case ProtoTCP:
		want = ipprotoTCP
	case ProtoUDP:
		want = ipprotoUDP
	case ProtoSCTP:
		want = ipprotoSCTP
	}
	if want == anyTransport || transport == anyTransport || transport == want {
		if want != anyTransport {
			return want, nil
		}
		return transport, nil
	}
	switch transport {
	case ipprotoTCP:
		return 0, mismatch("tcp")
	case ipprotoUDP:
		return 0, mismatch("udp")
	}
	return 0, mismatch("sctp")
}

// checkPort checks the number of "port N" (an IDNum) as libpcap does, with
// its message.
func checkPort(n uint32) error {
	if n > 65535 {
		return fmt.Errorf("illegal port number %d > 65535", n)
	}
	return nil
}

// portRange resolves the text of "[proto] [dir] portrange TEXT" when TEXT
// is a name (IDName), as libpcap 1.10 does; a number (IDNum, "portrange
// 21") is the range N-N, checked with checkPort. q is as for servicePort
// (libpcap rejects other qualifiers before it looks at TEXT: "illegal
// qualifier of 'portrange'").
// It returns the range with lo <= hi (libpcap swaps "21-20") and the
// transport the primitive tests.
//
// libpcap's rules:
//   - TEXT that starts "D-D" (decimal numbers, as C's sscanf("%d-%d")
//     reads them: the second may have a minus sign, anything after it is
//     ignored, each is cut to a C int) is that range, any transport:
//     "20-21", "21-20", "010-020" (decimal 10-20), "20-21x".
//   - otherwise TEXT is split at its first '-' and each side is a service
//     name or a number as getaddrinfo takes it (numericService):
//     "ftp-ssh", "20-ftp", "ftp-65556" (20-21). A side that is neither
//     makes "unknown port in range 'TEXT'": so "ftp-data-ftp" ("data-ftp"
//     is no service) and "ftp" (no '-') are errors. The transport is the
//     sides' (as resolveService finds it) when they agree, else any: so
//     "ftp-ssh" is TCP only, "ftp-ntp" any transport.
//   - a qualifier that disagrees is "port in range 'TEXT' is tcp".
//   - each port must be in 0..65535, checked first then second:
//     "illegal port number 70000 > 65535", "illegal port number -3 < 0".
func portRange(text string, q Proto) (lo, hi, transport int, err error) {
	p1, p2, numeric := scanPortRange(text)
	if numeric {
		transport = anyTransport
	} else {
		i := strings.IndexByte(text, '-')
		if i < 0 {
			return 0, 0, 0, fmt.Errorf("unknown port in range '%s'", text)
		}
		var t1, t2 int
		var ok1, ok2 bool
		p1, t1, ok1 = resolveService(text[:i])
		if ok1 {
			p2, t2, ok2 = resolveService(text[i+1:])
		}
		if !ok1 || !ok2 {
			return 0, 0, 0, fmt.Errorf("unknown port in range '%s'", text)
		}
		transport = t1
		if t1 != t2 {
			transport = anyTransport
		}
	}
	transport, err = qualifyTransport(transport, q, func(is string) error {
		return fmt.Errorf("port in range '%s' is %s", text, is)
	})
	if err != nil {
		return 0, 0, 0, err
	}
	for _, p := range []int{p1, p2} {
		if p < 0 {
			return 0, 0, 0, fmt.Errorf("illegal port number %d < 0", p)
		}
		if p > 65535 {
			return 0, 0, 0, fmt.Errorf("illegal port number %d > 65535", p)
		}
	}
	if p1 > p2 {
		p1, p2 = p2, p1
	}
	return p1, p2, transport, nil
}

// scanPortRange reads "D-D" at the start of text as C's sscanf(text,
// "%d-%d") does, reporting whether both numbers were read. Each %d is a
// decimal number with an optional sign, read as a 64-bit long (saturating)
// and stored in a 32-bit int.
func scanPortRange(text string) (p1, p2 int, ok bool) {
	v1, n1, ok1 := scanCInt(text)
	if !ok1 || n1 >= len(text) || text[n1] != '-' {
		return 0, 0, false
	}
	v2, _, ok2 := scanCInt(text[n1+1:])
	if !ok2 {
		return 0, 0, false
	}
	return v1, v2, true
}

// scanCInt is one sscanf %d: leading white space, an optional sign,
// decimal digits.
func scanCInt(s string) (v int, n int, ok bool) {
	i := 0
	for i < len(s) && isCSpace(rune(s[i])) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	start := i
	var u uint64 // magnitude, saturated just past the range of a long
	const limit = 1 << 63
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if u <= limit {
			u = u*10 + uint64(s[i]-'0')
			if u > limit {
				u = limit + 1
			}
		}
	}
	if i == start {
		return 0, 0, false
	}
	var l int64
	switch {
	case !neg && u >= limit:
		l = 1<<63 - 1
	case neg && u > limit:
		l = -1 << 63
	case neg:
		l = -int64(u)
	default:
		l = int64(u)
	}
	return int(int32(l)), i, true
}

// ---- IP protocols ----

// parseProtocols parses /etc/protocols as glibc does: "name number
// alias...", the number decimal as strtoul reads it, at most 0xffffffff,
// kept in a C int (4294967294 is -2). The first line for a name wins;
// names are case-sensitive.
func parseProtocols(data []byte) map[string]int {
	m := make(map[string]int)
	nameFileFields(data, func(f []string) {
		if len(f) < 2 {
			return
		}
		v, n := strtoul(f[1], 10)
		if n == 0 || n != len(f[1]) || v > 0xffffffff {
			return
		}
		for _, name := range append([]string{f[0]}, f[2:]...) {
			if _, ok := m[name]; !ok {
				m[name] = int(int32(uint32(v)))
			}
		}
	})
	return m
}

var protocolsFile = parsedFile[map[string]int]{parse: parseProtocols}

// fallbackProtocols is the table used where /etc/protocols is absent:
// names and numbers from IANA's Assigned Internet Protocol Numbers
// registry (keyword in lower case), with the aliases Unix systems give in
// upper case.
var fallbackProtocols = sync.OnceValue(func() map[string]int {
	m := make(map[string]int)
	for _, e := range []struct {
		num   int
		names string
	}{
		{0, "ip IP"}, // the "pseudo protocol" 0, as Unix systems name it
		{0, "hopopt HOPOPT"},
		{1, "icmp ICMP"},
		{2, "igmp IGMP"},
		{3, "ggp GGP"},
		{4, "ipencap IP-ENCAP"},
		{5, "st ST"},
		{6, "tcp TCP"},
		{8, "egp EGP"},
		{9, "igp IGP"},
		{12, "pup PUP"},
		{17, "udp UDP"},
		{20, "hmp HMP"},
		{22, "xns-idp XNS-IDP"},
		{27, "rdp RDP"},
		{29, "iso-tp4 ISO-TP4"},
		{33, "dccp DCCP"},
		{36, "xtp XTP"},
		{37, "ddp DDP"},
		{38, "idpr-cmtp IDPR-CMTP"},
		{41, "ipv6 IPv6"},
		{43, "ipv6-route IPv6-Route"},
		{44, "ipv6-frag IPv6-Frag"},
		{45, "idrp IDRP"},
		{46, "rsvp RSVP"},
		{47, "gre GRE"},
		{50, "esp IPSEC-ESP"},
		{51, "ah IPSEC-AH"},
		{57, "skip SKIP"},
		{58, "ipv6-icmp IPv6-ICMP"},
		{59, "ipv6-nonxt IPv6-NoNxt"},
		{60, "ipv6-opts IPv6-Opts"},
		{73, "rspf RSPF CPHB"},
		{81, "vmtp VMTP"},
		{88, "eigrp EIGRP"},
		{89, "ospf OSPFIGP"},
		{93, "ax.25 AX.25"},
		{94, "ipip IPIP"},
		{97, "etherip ETHERIP"},
		{98, "encap ENCAP"},
		{103, "pim PIM"},
		{108, "ipcomp IPCOMP"},
		{112, "vrrp VRRP"},
		{115, "l2tp L2TP"},
		{124, "isis ISIS"},
		{132, "sctp SCTP"},
		{133, "fc FC"},
		{135, "mobility-header Mobility-Header"},
		{136, "udplite UDPLite"},
		{137, "mpls-in-ip MPLS-in-IP"},
		{138, "manet"},
		{139, "hip HIP"},
		{140, "shim6 Shim6"},
		{141, "wesp WESP"},
		{142, "rohc ROHC"},
		{143, "ethernet Ethernet"},
	} {
		for _, name := range strings.Fields(e.names) {
			if _, ok := m[name]; !ok {
				m[name] = e.num
			}
		}
	}
	return m
})

// lookupProtocol returns the IP protocol number of a name, for "ip proto
// NAME", "ip6 proto NAME", "proto NAME" and "[ip|ip6] protochain NAME":
// from protocolsPath when that file can be read, else from the embedded
// IANA table. Names are case-sensitive ("TCP" is found as an alias, "Tcp"
// is not).
//
// libpcap has no names of its own here: only the file's. The protocol
// keywords (tcp, udp, icmp, igmp, esp, ah, vrrp, sctp, pim, ip, ...) must be
// escaped to be names ("ip proto \tcp"); the parser unescapes them. A name
// not found is libpcap's "unknown ip proto 'NAME'". libpcap does not check
// the number's range: a file's "mptcp 262" makes "ip proto mptcp" compare
// the protocol byte with 262 (never true).
func lookupProtocol(name string) (int, bool) {
	m, ok := protocolsFile.get(protocolsPath)
	if !ok {
		m = fallbackProtocols()
	}
	n, ok := m[name]
	if n == -1 {
		// libpcap's "no such protocol" value: a file's 4294967295 is unknown.
		return 0, false
	}
	return n, ok
}

// protoByName resolves the NAME of "[proto] proto NAME" and "[proto]
// protochain NAME" as libpcap 1.10 does, for the protocol qualifier q:
//   - none, ip, ip6: lookupProtocol, else "unknown ip proto 'NAME'";
//   - the link qualifiers (ether, link, ppp, ...): lookupEtherProto, else
//     "unknown ether proto 'NAME'";
//   - iso: lookupOSIProto, else "unknown osi proto 'NAME'";
//   - any other: "unknown protocol: NAME".
//
// A number below 0 (from an /etc/protocols line such as "x 4294967294")
// is "unknown protocol: NAME" too. The generator then applies the checks
// of "[proto] proto N" / "[proto] protochain N" with the number (such as
// "bad protocol applied for 'protochain'" for "ether protochain \ip").
func protoByName(name string, q Proto) (int, error) {
	var v int
	switch q {
	case ProtoDefault, ProtoIP, ProtoIP6:
		n, ok := lookupProtocol(name)
		if !ok {
			return 0, fmt.Errorf("unknown ip proto '%s'", name)
		}
		v = n
	case ProtoLink:
		n, ok := lookupEtherProto(name)
		if !ok {
			return 0, fmt.Errorf("unknown ether proto '%s'", name)
		}
		v = int(n)
	case ProtoISO:
		n, ok := lookupOSIProto(name)
		if !ok {
			return 0, fmt.Errorf("unknown osi proto '%s'", name)
		}
		v = int(n)
	default:
		v = -1
	}
	if v < 0 {
		return 0, fmt.Errorf("unknown protocol: %s", name)
	}
	return v, nil
}

// ---- Ethernet types and LLC SAPs ----

// etherProtoNames are the names "ether proto NAME" (and link, ppp, slip,
// fddi, tr, wlan proto NAME) accepts in libpcap 1.10: a builtin table, no
// file, case-sensitive. The values are what the generator's link-type test
// gets, exactly as if the number had been written: Ethernet types
// (IEEE's EtherType registry) for most, LLC SAPs (values <= 1500, from
// IEEE 802.2's assignments) for iso, stp, ipx and netbeui, which the
// link-type test then matches in 802.2 LLC frames (and for ipx also in
// Ethernet II type 0x8137, SNAP and raw 802.3 frames). Checked against
// libpcap's programs in names_test.go, which also checks that names older
// libpcaps had (pup, xns, atalkarp, sprite, vexp, ...) are unknown.
var etherProtoNames = map[string]uint16{
	"ip":       0x0800, // IPv4
	"ip6":      0x86dd, // IPv6
	"arp":      0x0806, // ARP
	"rarp":     0x8035, // reverse ARP
	"atalk":    0x809b, // AppleTalk (EtherTalk)
	"aarp":     0x80f3, // AppleTalk ARP
	"decnet":   0x6003, // DECnet Phase IV routing
	"sca":      0x6007, // DEC LAVC, SCA
	"lat":      0x6004, // DEC LAT
	"mopdl":    0x6001, // DEC MOP dump/load
	"moprc":    0x6002, // DEC MOP remote console
	"loopback": 0x9000, // Ethernet configuration testing protocol
	"iso":      0xfe,   // LLC SAP: ISO network layer (CLNP, ES-IS, IS-IS)
	"stp":      0x42,   // LLC SAP: IEEE 802.1D spanning tree
	"ipx":      0xe0,   // LLC SAP: Novell IPX
	"netbeui":  0xf0,   // LLC SAP: NetBIOS
}

// lookupEtherProto returns the value of an Ethernet protocol name (see
// etherProtoNames). A name not found is libpcap's "unknown ether proto
// 'NAME'".
func lookupEtherProto(name string) (uint16, bool) {
	v, ok := etherProtoNames[name]
	return v, ok
}

// osiProtoNames are the names "iso proto NAME" accepts in libpcap 1.10:
// network layer protocol identifiers of ISO/IEC TR 9577. A name not found
// is "unknown osi proto 'NAME'". The other protocol qualifiers that take
// "proto" (isis, clnp, esis, arp, rarp, atalk, decnet, tcp, udp, icmp, ...)
// accept no names: "isis proto \foo" is "unknown protocol: foo". There is
// no "llc proto" in libpcap 1.10 ("llc" takes only its subtype keywords).
var osiProtoNames = map[string]uint8{
	"clnp": 0x81, // ISO 8473
	"esis": 0x82, // ISO 9542
	"isis": 0x83, // ISO 10589
}

// lookupOSIProto returns the value of an OSI protocol name for "iso proto
// NAME".
func lookupOSIProto(name string) (uint8, bool) {
	v, ok := osiProtoNames[name]
	return v, ok
}

// ---- Ethernet addresses ----

// parseEthers parses /etc/ethers as glibc does: "MAC name", where the MAC
// is six numbers in hex separated by ':' (each at most 0xff, written with
// any number of digits: "0:1:2:3:4:5" and "001:..." are valid), followed
// by white space or the end of the line, then a name; later fields are
// ignored. Names are compared without regard to ASCII case; the first
// line for a name wins.
func parseEthers(data []byte) map[string][6]byte {
	m := make(map[string][6]byte)
	nameFileLines(data, func(line string) {
		mac, rest, ok := parseEthersMAC(line)
		if !ok {
			return
		}
		f := strings.FieldsFunc(rest, isCSpace)
		if len(f) == 0 {
			return
		}
		if k := asciiLower(f[0]); k != "" {
			if _, dup := m[k]; !dup {
				m[k] = mac
			}
		}
	})
	return m
}

// parseEthersMAC parses the MAC address at the start of an /etc/ethers
// line, returning the rest of the line. Each of the six numbers is read as
// strtoul reads hex (white space before it is skipped) and ends at a ':',
// the last at white space or the end of the line.
func parseEthersMAC(s string) (mac [6]byte, rest string, ok bool) {
	for i := 0; i < 6; i++ {
		v, n := strtoul(s, 16)
		if n == 0 || v > 0xff {
			return mac, "", false
		}
		mac[i] = byte(v)
		s = s[n:]
		switch {
		case i < 5 && s != "":
			if s[0] != ':' {
				return mac, "", false
			}
			s = s[1:]
		case i == 5 && s != "" && !isCSpace(rune(s[0])):
			return mac, "", false
		}
	}
	return mac, s, true
}

var ethersFile = parsedFile[map[string][6]byte]{parse: parseEthers}

// lookupEthers returns the MAC address /etc/ethers (ethersPath) gives a
// name, for "ether host NAME" (and "ether src/dst NAME"). A name not found
// is libpcap's "unknown ether host 'NAME'". ("gateway NAME", which would
// need one too, is always an error in libpcap 1.10 built with IPv6:
// "'gateway' not supported in this configuration".) On link types other
// than Ethernet (raw IP, Linux cooked) libpcap fails before any lookup,
// name known or not: "only ethernet/FDDI/token ring/802.11/ATM LANE/Fibre
// Channel supports link-level host name".
func lookupEthers(name string) ([6]byte, bool) {
	m, _ := ethersFile.get(ethersPath)
	mac, ok := m[asciiLower(name)]
	return mac, ok
}

// ---- Networks ----

// parseNetworks parses /etc/networks as glibc does: "name network
// alias...", the network written as inet_network reads it but with ".0"
// parts added up to four ("10" is 10.0.0.0, "172.16" is 172.16.0.0). A
// network inet_network rejects is 0xffffffff, as glibc stores it. Names
// are compared without regard to ASCII case; the first line for a name
// wins.
func parseNetworks(data []byte) map[string]uint32 {
	m := make(map[string]uint32)
	nameFileFields(data, func(f []string) {
		if len(f) < 2 {
			return
		}
		addr := f[1]
		if dots := strings.Count(addr, "."); dots < 3 {
			addr += strings.Repeat(".0", 3-dots)
		}
		v := inetNetwork(addr)
		for _, name := range append([]string{f[0]}, f[2:]...) {
			k := asciiLower(name)
			if _, ok := m[k]; !ok {
				m[k] = v
			}
		}
	})
	return m
}

// inetNetwork is inet_network(3): one to four parts separated by dots, each
// decimal, octal (leading 0) or hex (leading 0x) and at most 255, joined
// big-endian ("10.1" is 0x0a01). It returns 0xffffffff for text it
// rejects.
func inetNetwork(s string) uint32 {
	const none = 0xffffffff
	var parts []uint32
	for {
		base, digits, val := uint32(10), false, uint32(0)
		if s != "" && s[0] == '0' {
			base, digits, s = 8, true, s[1:]
		}
		if s != "" && (s[0] == 'x' || s[0] == 'X') {
			base, digits, s = 16, false, s[1:]
		}
		for s != "" {
			d := hexVal(s[0])
			if d < 0 || (base != 16 && d > 9) {
				break
			}
			if base == 8 && d > 7 {
				return none
			}
			if val > 0xff {
				return none
			}
			val = val*base + uint32(d)
			digits = true
			s = s[1:]
		}
		if !digits || len(parts) == 4 || val > 0xff {
			return none
		}
		parts = append(parts, val)
		if s != "" && s[0] == '.' {
			s = s[1:]
			continue
		}
		if s != "" && !isCSpace(rune(s[0])) {
			return none
		}
		break
	}
	var v uint32
	for _, p := range parts {
		v = v<<8 | p
	}
	return v
}

var networksFile = parsedFile[map[string]uint32]{parse: parseNetworks}

// lookupNet returns the network number /etc/networks (networksPath) gives a
// name, as getnetbyname gives it (host byte order, "10" is 0x0a000000).
// The code generator wants netAddrMask, which applies libpcap's rules.
func lookupNet(name string) (uint32, bool) {
	m, _ := networksFile.get(networksPath)
	v, ok := m[asciiLower(name)]
	return v, ok
}

// netAddrMask resolves the NAME of "[proto] [dir] net NAME" as
// libpcap 1.10 does: the network of lookupNet, an error "unknown network
// 'NAME'" when there is none or it is 0 (so "net default", 0.0.0.0, is
// unknown), then shifted left by whole bytes while its top byte is 0, the
// mask (0xffffffff at first) shifted with it. Because glibc pads networks
// to four parts, the mask is nearly always 0xffffffff: "net loopback"
// (127.0.0.0) is "host 127.0.0.0", not 127/8. Only a network that starts
// with 0 gets a shorter mask ("0.10" is 10.0.0.0 mask 0xffffff00). The
// lookup comes first, whatever the qualifier ("tcp net nosuch" is "unknown
// network 'nosuch'"); the generator then compiles "[proto] [dir] net ADDR
// mask MASK" with those numbers, that form's qualifier errors included
// ("'ip6' modifier applied to ip host", "'tcp' modifier applied to net").
func netAddrMask(name string) (addr, mask uint32, err error) {
	v, ok := lookupNet(name)
	if !ok || v == 0 {
		return 0, 0, fmt.Errorf("unknown network '%s'", name)
	}
	mask = 0xffffffff
	for v&0xff000000 == 0 {
		v <<= 8
		mask <<= 8
	}
	return v, mask, nil
}

// ---- Hosts ----

// lookupHostFunc resolves a host name; tests replace it.
var lookupHostFunc = func(ctx context.Context, name string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", name)
}

// errUnknownHost is lookupHost's error for a name without addresses.
var errUnknownHost = errors.New("no addresses")

// lookupHost resolves a host name with Go's resolver (/etc/hosts, then
// DNS), within hostLookupTimeout, after trying it as a numeric address as
// getaddrinfo does (inet_aton's IPv4 forms, IPv6 with an optional zone).
// It returns the IPv4 and the IPv6 addresses, each in the order the
// resolver gives them, without duplicates; an error when the name does not
// resolve or has no address. The code generator wants hostAddrs, which
// applies libpcap's rules.
//
// Where Go's resolver and glibc's getaddrinfo differ, so does this: Go
// finds "localhost." in /etc/hosts where glibc does not, takes an
// /etc/hosts entry "::ffff:1.2.3.4" as IPv4 where glibc keeps it IPv6,
// and does not consult NSS modules other than files and dns.
func lookupHost(name string) (v4, v6 []netip.Addr, err error) {
	if name == "" || strings.IndexByte(name, 0) >= 0 {
		return nil, nil, errUnknownHost
	}
	// getaddrinfo takes numeric addresses as they are: IPv4 in any form
	// inet_aton accepts ("127.1", "0x7f000001"), IPv6 (with a zone, which
	// libpcap ignores; "::ffff:1.2.3.4" stays IPv6).
	if v, ok := inetAton(name); ok {
		return []netip.Addr{netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})}, nil, nil
	}
	if a, err := netip.ParseAddr(name); err == nil && a.Is6() {
		return nil, []netip.Addr{a.WithZone("")}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), hostLookupTimeout)
	defer cancel()
	addrs, err := lookupHostFunc(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	seen := make(map[netip.Addr]bool)
	for _, a := range addrs {
		// The resolver gives IPv4 addresses in either form.
		a = a.Unmap().WithZone("")
		if !a.IsValid() || seen[a] {
			continue
		}
		seen[a] = true
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	if len(v4) == 0 && len(v6) == 0 {
		return nil, nil, errUnknownHost
	}
	return v4, v6, nil
}

// inetAton parses an IPv4 address as inet_aton(3) does: one to four
// parts separated by dots, each decimal, octal (leading 0) or hex (leading
// 0x), the last filling the bytes the others leave ("127.1" is 127.0.0.1,
// "2130706433" too). Text after the address must start with white space.
func inetAton(s string) (uint32, bool) {
	var parts []uint64
	for {
		if s == "" || s[0] < '0' || s[0] > '9' {
			return 0, false
		}
		base, digits := uint64(10), false
		if s[0] == '0' {
			s = s[1:]
			if s != "" && (s[0] == 'x' || s[0] == 'X') {
				base, s = 16, s[1:]
			} else {
				base, digits = 8, true
			}
		}
		var v uint64
		for s != "" {
			d := hexVal(s[0])
			if d < 0 || (base != 16 && d > 9) {
				break
			}
			if base == 8 && d > 7 {
				return 0, false
			}
			v = v*base + uint64(d)
			if v > 0xffffffff {
				return 0, false
			}
			digits = true
			s = s[1:]
		}
		if !digits {
			return 0, false
		}
		parts = append(parts, v)
		if s != "" && s[0] == '.' {
			if len(parts) == 4 || v > 0xff {
				return 0, false
			}
			s = s[1:]
			continue
		}
		break
	}
	if s != "" && !isCSpace(rune(s[0])) {
		return 0, false
	}
	last := parts[len(parts)-1]
	if last > 0xffffffff>>(8*(len(parts)-1)) {
		return 0, false
	}
	var v uint64
	for _, p := range parts[:len(parts)-1] {
		v = v<<8 | p
	}
	return uint32(v<<(8*(5-len(parts))) | last), true
}

// hostAddrs resolves the NAME of "[proto] [dir] host NAME" (and of "[proto]
// [dir] NAME" with no type) as libpcap 1.10 does, for the protocol
// qualifiers that take an IP host (all but the link ones, for which NAME is
// an /etc/ethers name, and decnet, which takes no names: "decnet name
// support not included, 'NAME' cannot be translated", before any lookup).
// It returns the addresses in the order the generator must test them.
//
// What libpcap does (seen in its programs and errors, names_test.go): it
// takes the addresses getaddrinfo gives, in that order, and compiles each
// exactly as "[proto] [dir] host ADDR" with the address written out would
// compile (with that primitive's errors: "'tcp' modifier applied to host",
// "'arp' modifier applied to ip6 host", "ISO host filtering not
// implemented", ...), joining them with "or", first address first, except
// that an ip qualifier skips the IPv6 addresses and ip6 the IPv4 ones
// instead of failing. So the generator must compile each address of the
// result as that literal primitive, stopping at the first error, and "or"
// them in order.
//
// getaddrinfo sorts by RFC 6724, which on a machine without IPv6
// connectivity (this one) puts the IPv4 addresses first; hostAddrs gives
// the IPv4 addresses first, each family in the resolver's order. That is
// libpcap's program for names with addresses of one family, and gives the
// same verdicts in any case (each alternative checks the link-layer type
// first, so their order only changes which error a name with both families
// reports under a qualifier that rejects both).
//
// Errors, with libpcap's messages: a name that does not resolve is
// "unknown host 'NAME'"; one whose addresses are all skipped is "unknown
// host 'NAME' for specified address family" ("ip6 host localhost" here).
// Host names are case-insensitive in /etc/hosts ("host LOCALHOST" works).
// "gateway NAME" is always an error in libpcap 1.10 built with IPv6
// support: "'gateway' not supported in this configuration".
func hostAddrs(name string, q Proto) ([]netip.Addr, error) {
	v4, v6, err := lookupHost(name)
	if err != nil {
		return nil, fmt.Errorf("unknown host '%s'", name)
	}
	var addrs []netip.Addr
	if q != ProtoIP6 {
		addrs = append(addrs, v4...)
	}
	if q != ProtoIP {
		addrs = append(addrs, v6...)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("unknown host '%s' for specified address family", name)
	}
	return addrs, nil
}
