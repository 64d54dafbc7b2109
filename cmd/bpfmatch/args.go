package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/headlessbpf/bpfmatch"
)

// The fake packet's addresses unless -src and -dst say otherwise: from the
// documentation ranges (RFC 5737, RFC 3849), an ephemeral client port to
// HTTP. The IPv6 pair stands in when the other address given is IPv6.
var (
	defaultSrc4 = netip.MustParseAddrPort("192.0.2.1:40000")
	defaultDst4 = netip.MustParseAddrPort("192.0.2.2:80")
	defaultSrc6 = netip.MustParseAddrPort("[2001:db8::1]:40000")
	defaultDst6 = netip.MustParseAddrPort("[2001:db8::2]:80")
)

const usageText = `usage: bpfmatch [flags] [EXPRESSION...]
       bpfmatch -r FILE [-w OUT] [-libpcap] [-d | -dd | -ddd] [EXPRESSION...]
       bpfmatch -listen ADDR [-udp | -syn] [-kernel] [-count N] [-wait D] [EXPRESSION...]

Tell whether a tcpdump filter expression matches one fake packet built from
the flags, or count the packets of a capture file that match it. The words
of EXPRESSION are joined with spaces, as tcpdump does; no expression
matches every packet. Flags must come before the expression.

Fake packet:
  -link ethernet|raw   framing: Ethernet (default) or raw IP
  -y EN10MB|RAW        the same, as tcpdump spells it
  -proto tcp|udp       transport protocol (default tcp)
  -src ADDR:PORT       source (default 192.0.2.1:40000, or [2001:db8::1]:40000
                       if -dst is IPv6); a bare ADDR keeps the default port
  -dst ADDR:PORT       destination (default 192.0.2.2:80, or [2001:db8::2]:80
                       if -src is IPv6); IPv6 is written [::1]:80
  -payload TEXT        payload, as text (default none)
  -payload-hex HEX     payload, as hex digits; spaces and colons are ignored
  -vlan ID             add an 802.1Q tag with VLAN ID 0-4095 (Ethernet only)
  -flags FLAGS         TCP flags as tcpdump prints them: S F P R U E W and .
                       for ACK, e.g. S, S., P., F., R, or none (default P.)
  -snaplen N           snapshot length (default and 0: 262144)
  -s N                 the same, as tcpdump spells it
  -w FILE              also write the fake packet to FILE as a pcap capture
                       (LINKTYPE 1 for Ethernet, 101 for raw IP), stamped
                       with the time of writing

Capture file:
  -r FILE              count the packets of the pcap or pcapng FILE that
                       match, compiling for its link type and snapshot
                       length; - reads standard input. On a malformed or
                       truncated file, print the count so far, then the error
  -r FILE -w OUT       also write the packets that match to OUT: pcap, or
                       pcapng if FILE is, with FILE's link type, snapshot
                       length and timestamps

Expression:
  -F FILE              read the expression from FILE, where # starts a
                       comment to the end of the line, as tcpdump does

Program:
  -d                   print the compiled program as tcpdump -d does, and exit
  -dd                  print it as a C array fragment, as tcpdump -dd does
  -ddd                 print it as decimal numbers, as tcpdump -ddd does
  -libpcap             compile with libpcap instead of the Go compiler, and
                       match with libpcap too (-d -libpcap prints libpcap's
                       program); needs a bpfmatch built with cgo and
                       -tags libpcap

Listening:
  -listen ADDR         accept TCP connections on ADDR (127.0.0.1:8080, say)
                       and print each one's packet and whether it matches,
                       until interrupted; try it with nc in another terminal.
                       A connection is matched on its first bytes: up to 256,
                       or what came within -wait (send them at once, e.g.
                       printf 'GET / HTTP/1.0\r\n\r\n' | nc 127.0.0.1 8080)
  -udp                 with -listen: receive UDP datagrams instead, each
                       matched as it comes, with the address it was sent to
                       (on Linux, even on a socket bound to all addresses)
  -kernel              with -listen: also attach the filter to the socket
                       (Linux), so that what cannot match never leaves the
                       kernel (for TCP, filters on addresses and ports
                       only); the first line says whether it did
  -syn                 with -listen: match each TCP client's SYN instead of
                       its first bytes: on Linux the real SYN the kernel
                       saved (TTL, window, options, which rejections print),
                       else a fake one; the first line says which
  -count N             with -listen: exit after N connections or datagrams
  -wait D              with -listen: how long to wait for a TCP client's
                       first bytes (default 500ms)

  -h                   show this help

With no arguments at all, print this usage and exit 2.

Output is "match" or "no match", with -r the number of matching packets.
Exit status: 0 if the packet matched (with -r or -listen: at least one
packet matched, with -d, -dd, -ddd: the program was printed), 1 if it did
not, 2 on any error, usage errors included.
`

var errHelp = errors.New("help requested")

// config is what the command line asks for.
type config struct {
	expr string
	link bpfmatch.LinkType
	snap int
	dump int // 1, 2, 3 for -d, -dd, -ddd; 0 to match
	// libpcap compiles and matches with libpcap (-libpcap).
	libpcap bool
	read    string
	write   string

	proto       bpfmatch.Protocol
	src, dst    string // as given; "" for the default
	payload     []byte
	vlan        *bpfmatch.VLAN
	flags       bpfmatch.TCPFlags
	packetFlags []string // the fake-packet flags given, for -r's check

	listen listenConfig // -listen and its flags
}

// flagNames are the flags the command defines, for compileError's hint.
var flagNames = map[string]bool{}

func init() {
	newFlagSet(new(rawFlags)).VisitAll(func(f *flag.Flag) { flagNames[f.Name] = true })
	flagNames["h"], flagNames["help"] = true, true
}

func isFlagName(name string) bool { return flagNames[name] }

// rawFlags are the flag values before checking.
type rawFlags struct {
	link, proto, src, dst, payload, payloadHex, vlan, flags, snaplen string
	read, write, exprFile                                            string
	d, dd, ddd, libpcap                                              bool
	listenFlags
}

func newFlagSet(r *rawFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("bpfmatch", flag.ContinueOnError)
	// Errors and usage are printed by run, in one place.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	// Strings throughout, so that every value is checked here with a
	// message naming the flag and the problem.
	fs.StringVar(&r.link, "link", "ethernet", "framing: ethernet or raw")
	fs.StringVar(&r.link, "y", "ethernet", "framing, as tcpdump's -y: EN10MB or RAW")
	fs.StringVar(&r.proto, "proto", "tcp", "transport protocol: tcp or udp")
	fs.StringVar(&r.src, "src", "", "source ADDR:PORT")
	fs.StringVar(&r.dst, "dst", "", "destination ADDR:PORT")
	fs.StringVar(&r.payload, "payload", "", "payload as text")
	fs.StringVar(&r.payloadHex, "payload-hex", "", "payload as hex")
	fs.StringVar(&r.vlan, "vlan", "", "802.1Q VLAN ID")
	fs.StringVar(&r.flags, "flags", "", "TCP flags in tcpdump's letters")
	fs.StringVar(&r.snaplen, "snaplen", "", "snapshot length")
	fs.StringVar(&r.snaplen, "s", "", "snapshot length, as tcpdump's -s")
	fs.StringVar(&r.exprFile, "F", "", "file to read the expression from")
	fs.StringVar(&r.read, "r", "", "capture file to read")
	fs.StringVar(&r.write, "w", "", "pcap file to write")
	fs.BoolVar(&r.d, "d", false, "print the program as tcpdump -d")
	fs.BoolVar(&r.dd, "dd", false, "print the program as tcpdump -dd")
	fs.BoolVar(&r.ddd, "ddd", false, "print the program as tcpdump -ddd")
	fs.BoolVar(&r.libpcap, "libpcap", false, "compile and match with libpcap")
	r.listenFlags.define(fs)
	return fs
}

// parseArgs checks the command line; errors are usage errors.
func parseArgs(args []string) (*config, error) {
	var r rawFlags
	fs := newFlagSet(&r)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, errHelp
		}
		return nil, err
	}
	set := map[string]bool{}
	given := map[string]string{} // the spelling given, by canonical name
	fs.Visit(func(f *flag.Flag) {
		name := f.Name
		switch name {
		case "y":
			name = "link"
		case "s":
			name = "snaplen"
		}
		if set[name] {
			return
		}
		set[name], given[name] = true, "-"+f.Name
	})
	if set["link"] && countSet(fs, "link", "y") > 1 {
		return nil, errors.New("use only one of -link and -y")
	}
	if set["snaplen"] && countSet(fs, "snaplen", "s") > 1 {
		return nil, errors.New("use only one of -snaplen and -s")
	}

	expr := strings.Join(fs.Args(), " ")
	if set["F"] {
		if fs.NArg() > 0 {
			return nil, fmt.Errorf("-F %s and an expression (%q) on the command line: give the expression one way", r.exprFile, expr)
		}
		text, err := readExprFile(r.exprFile)
		if err != nil {
			return nil, err
		}
		expr = text
	}
	cfg := &config{
		expr:    expr,
		snap:    bpfmatch.DefaultSnapLen,
		read:    r.read,
		write:   r.write,
		libpcap: r.libpcap,
	}
	if r.libpcap && !bpfmatch.HaveLibpcap {
		return nil, errors.New("-libpcap: this bpfmatch was built without libpcap; build it with cgo and libpcap's headers: go build -tags libpcap ./cmd/bpfmatch")
	}
	for _, name := range []string{"link", "proto", "src", "dst", "payload", "payload-hex", "vlan", "flags", "snaplen"} {
		if set[name] {
			cfg.packetFlags = append(cfg.packetFlags, given[name])
		}
	}
	if err := parseListen(&r.listenFlags, set, cfg); err != nil {
		return nil, err
	}

	n := 0
	for i, on := range []bool{r.d, r.dd, r.ddd} {
		if on {
			n++
			cfg.dump = i + 1
		}
	}
	if n > 1 {
		return nil, errors.New("use only one of -d, -dd and -ddd")
	}
	if set["r"] {
		switch r.read {
		case "":
			return nil, errors.New("-r needs a file name, or - for standard input")
		}
		if len(cfg.packetFlags) > 0 {
			return nil, fmt.Errorf("%s cannot be used with -r: the capture file supplies the packets, its link type and snapshot length", strings.Join(cfg.packetFlags, ", "))
		}
		if set["w"] {
			switch {
			case r.write == "" || r.write == "-":
				return nil, errors.New("-w needs a file name (writing to standard output is not supported, as the count is printed there)")
			case cfg.dump > 0:
				return nil, errors.New("-w cannot be used with -d, -dd or -ddd, which print the program and exit")
			case r.write == r.read:
				return nil, fmt.Errorf("-r %s -w %s: writing over the file being read", r.read, r.write)
			}
		}
		return cfg, nil
	}
	if set["w"] {
		switch {
		case r.write == "":
			return nil, errors.New("-w needs a file name")
		case r.write == "-":
			return nil, errors.New("-w -: writing the capture to standard output is not supported, as the result is printed there")
		case cfg.dump > 0:
			return nil, errors.New("-w cannot be used with -d, -dd or -ddd, which print the program and exit")
		}
	}

	switch strings.ToLower(r.link) {
	case "ethernet", "ether", "en10mb":
		cfg.link = bpfmatch.LinkEthernet
	case "raw":
		cfg.link = bpfmatch.LinkRaw
	default:
		return nil, fmt.Errorf("%s %q: fake packets are ethernet (EN10MB) or raw (RAW)", given["link"], r.link)
	}

	switch strings.ToLower(r.proto) {
	case "tcp":
		cfg.proto = bpfmatch.TCP
	case "udp":
		cfg.proto = bpfmatch.UDP
	default:
		return nil, fmt.Errorf("-proto %q: not tcp or udp", r.proto)
	}

	if set["snaplen"] {
		n, err := strconv.ParseInt(strings.TrimSpace(r.snaplen), 10, 64)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%s %q: not a number", given["snaplen"], r.snaplen)
		case n < 0 || n > math.MaxInt32:
			return nil, fmt.Errorf("%s %d: out of range 0 to %d", given["snaplen"], n, math.MaxInt32)
		case n > 0:
			// 0 means the default, as tcpdump's -s 0 does.
			cfg.snap = int(n)
		}
	}

	if set["src"] {
		if r.src == "" {
			return nil, errors.New("-src needs an address")
		}
		cfg.src = r.src
	}
	if set["dst"] {
		if r.dst == "" {
			return nil, errors.New("-dst needs an address")
		}
		cfg.dst = r.dst
	}
	// Parse the addresses now, so that a bad one is a usage error even
	// with -d; packet() parses them again, with their defaults.
	if _, _, err := cfg.addrs(); err != nil {
		return nil, err
	}

	if set["payload"] && set["payload-hex"] {
		return nil, errors.New("use only one of -payload and -payload-hex")
	}
	if set["payload"] {
		cfg.payload = []byte(r.payload)
	}
	if set["payload-hex"] {
		b, err := parseHex(r.payloadHex)
		if err != nil {
			return nil, fmt.Errorf("-payload-hex: %v", err)
		}
		cfg.payload = b
	}

	if set["vlan"] {
		id, err := strconv.ParseUint(strings.TrimSpace(r.vlan), 10, 16)
		if err != nil || id > 4095 {
			return nil, fmt.Errorf("-vlan %q: not a VLAN ID from 0 to 4095", r.vlan)
		}
		if cfg.link != bpfmatch.LinkEthernet {
			return nil, errors.New("-vlan needs -link ethernet: raw IP frames have no 802.1Q tag")
		}
		cfg.vlan = &bpfmatch.VLAN{ID: uint16(id)}
	}

	if set["flags"] {
		if cfg.proto != bpfmatch.TCP {
			return nil, fmt.Errorf("-flags %q: TCP flags need -proto tcp", r.flags)
		}
		f, err := parseTCPFlags(r.flags)
		if err != nil {
			return nil, err
		}
		cfg.flags = f
	}
	return cfg, nil
}

// options are the Compile options for a link type and snap length, with
// WithLibpcap for -libpcap.
func (cfg *config) options(link bpfmatch.LinkType, snap int) []bpfmatch.Option {
	opts := []bpfmatch.Option{bpfmatch.WithLinkType(link), bpfmatch.WithSnapLen(snap)}
	if cfg.libpcap {
		opts = append(opts, bpfmatch.WithLibpcap())
	}
	return opts
}

// parseHex decodes hex digits, ignoring white space, colons and a leading
// 0x, so that both "de ad be ef" and "de:ad:be:ef" work.
func parseHex(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		s = s[2:]
	}
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\n', '\r', ':':
			return -1
		}
		return r
	}, s)
	for i, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return nil, fmt.Errorf("%q at offset %d is not a hex digit", c, i)
		}
	}
	if len(s)%2 != 0 {
		return nil, fmt.Errorf("odd number of hex digits (%d): each byte needs two", len(s))
	}
	return hex.DecodeString(s)
}

// parseTCPFlags parses flags as tcpdump prints them between brackets.
func parseTCPFlags(s string) (bpfmatch.TCPFlags, error) {
	t := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if strings.EqualFold(t, "none") {
		return bpfmatch.NoFlags, nil
	}
	if t == "" {
		return 0, fmt.Errorf("-flags %q: no flags given; use none for a segment without flags", s)
	}
	var f bpfmatch.TCPFlags
	for _, c := range t {
		switch c {
		case 'S':
			f |= bpfmatch.SYN
		case 'F':
			f |= bpfmatch.FIN
		case 'P':
			f |= bpfmatch.PSH
		case 'R':
			f |= bpfmatch.RST
		case 'U':
			f |= bpfmatch.URG
		case 'E':
			f |= bpfmatch.ECE
		case 'W':
			f |= bpfmatch.CWR
		case '.':
			f |= bpfmatch.ACK
		default:
			return 0, fmt.Errorf("-flags %q: unknown flag %q; use S F P R U E W and . for ACK, or none", s, c)
		}
	}
	return f, nil
}

// addrs returns the source and destination, with the defaults of their
// family for those not given.
func (cfg *config) addrs() (src, dst netip.AddrPort, err error) {
	var srcOK, dstOK bool
	if cfg.src != "" {
		if src, err = parseAddrPort("-src", cfg.src, defaultSrc4.Port()); err != nil {
			return
		}
		srcOK = true
	}
	if cfg.dst != "" {
		if dst, err = parseAddrPort("-dst", cfg.dst, defaultDst4.Port()); err != nil {
			return
		}
		dstOK = true
	}
	// IPv4-mapped IPv6 addresses make IPv4 packets, as in the library.
	v6 := (srcOK && !src.Addr().Unmap().Is4()) || (dstOK && !dst.Addr().Unmap().Is4())
	if !srcOK {
		src = defaultSrc4
		if v6 {
			src = defaultSrc6
		}
	}
	if !dstOK {
		dst = defaultDst4
		if v6 {
			dst = defaultDst6
		}
	}
	if srcOK && dstOK && src.Addr().Unmap().Is4() != dst.Addr().Unmap().Is4() {
		err = fmt.Errorf("-src %s and -dst %s: one is IPv4, the other IPv6", src, dst)
	}
	return
}

// parseAddrPort parses ADDR:PORT, [IPv6]:PORT, or a bare address, which
// gets port.
func parseAddrPort(name, s string, port uint16) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	bare := s
	if strings.HasPrefix(bare, "[") && strings.HasSuffix(bare, "]") {
		bare = bare[1 : len(bare)-1]
	}
	if a, err := netip.ParseAddr(bare); err == nil {
		return netip.AddrPortFrom(a, port), nil
	}
	_, err := netip.ParseAddrPort(s)
	return netip.AddrPort{}, fmt.Errorf("%s %q: not an IP address and port such as 192.0.2.1:40000 or [2001:db8::1]:40000 (%v)", name, s, err)
}

// packet returns the fake packet cfg describes and its frame, which also
// checks that it can be built (payload size above all) before anything is
// written.
func (cfg *config) packet() (bpfmatch.FakePacket, []byte, error) {
	src, dst, err := cfg.addrs()
	if err != nil {
		return bpfmatch.FakePacket{}, nil, err
	}
	p := bpfmatch.FakePacket{
		Src:      src,
		Dst:      dst,
		Protocol: cfg.proto,
		Payload:  cfg.payload,
		VLAN:     cfg.vlan,
		Flags:    cfg.flags,
	}
	frame, err := p.AppendFrame(nil, cfg.link)
	if err != nil {
		return bpfmatch.FakePacket{}, nil, err
	}
	return p, frame, nil
}

// countSet returns how many of the flags named were given.
func countSet(fs *flag.FlagSet, names ...string) int {
	n := 0
	fs.Visit(func(f *flag.Flag) {
		for _, name := range names {
			if f.Name == name {
				n++
			}
		}
	})
	return n
}

// maxExprFile bounds what -F reads: pcapfilter refuses longer expressions.
const maxExprFile = 1 << 20

// readExprFile reads the expression of -F: as tcpdump, what follows a #
// on a line is a comment, and lines are joined.
func readExprFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("-F: %v", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxExprFile+1))
	if err != nil {
		return "", fmt.Errorf("-F %s: %v", path, err)
	}
	if len(b) > maxExprFile {
		return "", fmt.Errorf("-F %s: more than %d bytes; no expression is that long", path, maxExprFile)
	}
	lines := strings.Split(string(b), "\n")
	for i, line := range lines {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			lines[i] = line[:j]
		}
	}
	return strings.Join(lines, " "), nil
}
