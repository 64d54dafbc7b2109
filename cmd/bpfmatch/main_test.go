package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"github.com/headlessbpf/bpfmatch"
)

// corpusDir is the shared corpus of real captures and filters, relative to
// this package's directory, where go test runs.
var corpusDir = filepath.Join("..", "..", "..", "shared", "corpus")

// result is what one run of the command did.
type result struct {
	args           []string
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("bpfmatch %s\nexit %d\nstdout: %q\nstderr: %q", shellQuote(r.args), r.code, r.stdout, r.stderr)
}

func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$*?[]()&|;<>!#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

func runArgs(args ...string) result {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return result{args: args, code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// checkResult checks the exit code, that stdout is wantOut (if not "") or
// that stderr holds wantErr, and that nothing panicked.
func checkResult(t *testing.T, r result, wantCode int, wantOut, wantErr string) {
	t.Helper()
	if r.code != wantCode {
		t.Errorf("exit %d, want %d\n%v", r.code, wantCode, r)
	}
	if wantOut != "" && r.stdout != wantOut {
		t.Errorf("stdout %q, want %q\n%v", r.stdout, wantOut, r)
	}
	if wantErr != "" && !strings.Contains(r.stderr, wantErr) {
		t.Errorf("stderr lacks %q\n%v", wantErr, r)
	}
	if wantCode != exitError && r.stderr != "" {
		t.Errorf("unexpected stderr\n%v", r)
	}
	if wantCode == exitError && r.stdout != "" && wantOut == "" {
		t.Errorf("error with output on stdout\n%v", r)
	}
	if strings.Contains(r.stderr, "internal error") {
		t.Errorf("panicked\n%v", r)
	}
}

func TestRun(t *testing.T) {
	requireCompile(t)
	const (
		match   = "match\n"
		noMatch = "no match\n"
	)
	// The largest payloads that fit an IPv4 TCP and an IPv6 UDP packet.
	maxV4TCP := strings.Repeat("00", 65535-20-20)
	maxV6UDP := strings.Repeat("00", 65535-8)
	dir := t.TempDir()

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string // exact stdout, if not ""
		wantErr  string // in stderr
	}{
		// Matching with the defaults: TCP [P.] 192.0.2.1:40000 > 192.0.2.2:80 over Ethernet.
		{"default port", []string{"tcp", "port", "80"}, 0, match, ""},
		{"default addresses", []string{"src host 192.0.2.1 and dst host 192.0.2.2 and src port 40000"}, 0, match, ""},
		{"default is tcp", []string{"udp"}, 1, noMatch, ""},
		{"default is ethernet", []string{"ether src 02:00:00:00:00:01 and ether dst 02:00:00:00:00:02"}, 0, match, ""},
		{"default flags P.", []string{"tcp[tcpflags] == tcp-push|tcp-ack"}, 0, match, ""},
		{"no arguments is a usage error", nil, 2, "", "usage: bpfmatch"},
		{"flags but no expression matches all", []string{"-proto", "tcp"}, 0, match, ""},
		{"empty expression matches all", []string{""}, 0, match, ""},
		{"blank expression matches all", []string{"  "}, 0, match, ""},
		{"words joined", []string{"dst", "port", "80", "and", "not", "src", "port", "80"}, 0, match, ""},
		{"double dash", []string{"--", "tcp"}, 0, match, ""},

		// Addresses.
		{"v4", []string{"-src", "10.0.0.1:1234", "-dst", "10.0.0.2:22", "src host 10.0.0.1 and dst port 22 and src port 1234"}, 0, match, ""},
		{"v4 other host", []string{"-src", "10.0.0.1:1234", "host 10.0.0.3"}, 1, noMatch, ""},
		{"bare src keeps port", []string{"-src", "10.0.0.1", "src port 40000 and src host 10.0.0.1"}, 0, match, ""},
		{"bare dst keeps port", []string{"-dst", "10.0.0.2", "dst port 80"}, 0, match, ""},
		{"v6 src, default v6 dst", []string{"-src", "[2001:db8::9]:5", "ip6 and src port 5 and dst host 2001:db8::2 and dst port 80"}, 0, match, ""},
		{"v6 dst, default v6 src", []string{"-dst", "[::1]:443", "ip6 and src host 2001:db8::1 and dst port 443"}, 0, match, ""},
		{"v6 both", []string{"-src", "[fe80::1]:1", "-dst", "[ff02::1]:2", "ip6 multicast"}, 0, match, ""},
		{"v6 bare", []string{"-src", "2001:db8::7", "src host 2001:db8::7 and src port 40000"}, 0, match, ""},
		{"v6 bare brackets", []string{"-src", "[2001:db8::7]", "src host 2001:db8::7"}, 0, match, ""},
		{"v6 is not ip", []string{"-src", "[::1]:1", "ip"}, 1, noMatch, ""},
		{"v4-mapped is v4", []string{"-src", "[::ffff:10.0.0.1]:1", "ip and src host 10.0.0.1"}, 0, match, ""},
		{"port 0", []string{"-src", "10.0.0.1:0", "src port 0"}, 0, match, ""},
		{"port 65535", []string{"-dst", "10.0.0.1:65535", "dst port 65535"}, 0, match, ""},

		// Protocol, link type, VLAN.
		{"udp", []string{"-proto", "udp", "udp dst port 80"}, 0, match, ""},
		{"udp is not tcp", []string{"-proto", "udp", "tcp"}, 1, noMatch, ""},
		{"UDP upper case", []string{"-proto", "UDP", "udp"}, 0, match, ""},
		{"raw", []string{"-link", "raw", "ip and tcp"}, 0, match, ""},
		{"raw length", []string{"-link", "raw", "len == 40"}, 0, match, ""},
		{"ethernet padded length", []string{"len == 60"}, 0, match, ""},
		{"ethernet length with payload", []string{"-payload-hex", strings.Repeat("00", 10), "len == 64"}, 0, match, ""},
		{"raw v6 udp length", []string{"-link", "raw", "-proto", "udp", "-src", "[::1]:1", "ip6 and len == 48"}, 0, match, ""},
		{"vlan", []string{"-vlan", "100", "vlan 100 and tcp port 80"}, 0, match, ""},
		{"vlan other id", []string{"-vlan", "100", "vlan 101"}, 1, noMatch, ""},
		{"vlan 0", []string{"-vlan", "0", "vlan 0"}, 0, match, ""},
		{"vlan 4095", []string{"-vlan", "4095", "vlan 4095"}, 0, match, ""},
		{"no vlan", []string{"vlan"}, 1, noMatch, ""},
		{"vlan v6 udp", []string{"-vlan", "7", "-proto", "udp", "-src", "[::1]:1", "vlan 7 and ip6 and udp"}, 0, match, ""},

		// TCP flags, in tcpdump's letters.
		{"flags S", []string{"-flags", "S", "tcp[13] == 0x02"}, 0, match, ""},
		{"flags S.", []string{"-flags", "S.", "tcp[13] == 0x12"}, 0, match, ""},
		{"flags P.", []string{"-flags", "P.", "tcp[13] == 0x18"}, 0, match, ""},
		{"flags F.", []string{"-flags", "F.", "tcp[13] == 0x11"}, 0, match, ""},
		{"flags R", []string{"-flags", "R", "tcp[13] == 0x04"}, 0, match, ""},
		{"flags R.", []string{"-flags", "R.", "tcp[tcpflags] & tcp-rst != 0"}, 0, match, ""},
		{"flags U", []string{"-flags", "U", "tcp[13] == 0x20"}, 0, match, ""},
		{"flags E", []string{"-flags", "E", "tcp[13] == 0x40"}, 0, match, ""},
		{"flags W", []string{"-flags", "W", "tcp[13] == 0x80"}, 0, match, ""},
		{"flags all", []string{"-flags", "SFPRUEW.", "tcp[13] == 0xff"}, 0, match, ""},
		{"flags order free", []string{"-flags", ".S", "tcp[13] == 0x12"}, 0, match, ""},
		{"flags brackets", []string{"-flags", "[S.]", "tcp[13] == 0x12"}, 0, match, ""},
		{"flags none", []string{"-flags", "none", "tcp[13] == 0"}, 0, match, ""},
		{"flags [none]", []string{"-flags", "[none]", "tcp[13] == 0"}, 0, match, ""},
		{"syn filter on ack", []string{"-flags", ".", "tcp[tcpflags] & tcp-syn != 0"}, 1, noMatch, ""},

		// Payload and snap length.
		{"payload", []string{"-payload", "GET / HTTP/1.1", "tcp[20:4] = 0x47455420"}, 0, match, ""},
		{"payload other", []string{"-payload", "POST /", "tcp[20:4] = 0x47455420"}, 1, noMatch, ""},
		{"payload-hex", []string{"-payload-hex", "de:ad be\tef", "tcp[20:4] = 0xdeadbeef"}, 0, match, ""},
		{"payload-hex 0x", []string{"-payload-hex", "0xDEADBEEF", "tcp[20:4] = 0xdeadbeef"}, 0, match, ""},
		{"payload-hex empty", []string{"-payload-hex", "", "len == 60"}, 0, match, ""},
		{"payload udp", []string{"-proto", "udp", "-payload", "hi", "udp[8:2] = 0x6869 and udp[4:2] = 10"}, 0, match, ""},
		{"payload largest v4 tcp", []string{"-payload-hex", maxV4TCP, "ip[2:2] = 65535"}, 0, match, ""},
		{"payload largest v6 udp", []string{"-proto", "udp", "-src", "[::1]:1", "-payload-hex", maxV6UDP, "ip6[4:2] = 65535"}, 0, match, ""},
		{"snaplen cuts payload", []string{"-snaplen", "54", "-payload", "hello", "tcp[20] == 0x68"}, 1, noMatch, ""},
		{"snaplen keeps header", []string{"-snaplen", "54", "-payload", "hello", "tcp and len == 60"}, 0, match, ""},
		{"snaplen 0 is default", []string{"-snaplen", "0", "-payload", "hello", "tcp[20] == 0x68"}, 0, match, ""},
		{"snaplen 1", []string{"-snaplen", "1", "ether[0] == 2"}, 0, match, ""},

		// Program output.
		{"-d", []string{"-d", "ip"}, 0, "(000) ldh      [12]\n(001) jeq      #0x800           jt 2\tjf 3\n(002) ret      #262144\n(003) ret      #0\n", ""},
		{"-dd", []string{"-dd", "ip"}, 0, "{ 0x28, 0, 0, 0x0000000c },\n{ 0x15, 0, 1, 0x00000800 },\n{ 0x6, 0, 0, 0x00040000 },\n{ 0x6, 0, 0, 0x00000000 },\n", ""},
		{"-ddd", []string{"-ddd", "ip"}, 0, "4\n40 0 0 12\n21 0 1 2048\n6 0 0 262144\n6 0 0 0\n", ""},
		{"-d raw snaplen", []string{"-d", "-link", "raw", "-snaplen", "100", ""}, 0, "(000) ret      #100\n", ""},
		{"-d ignores packet", []string{"-d", "-src", "[::1]:1", "-dst", "[::2]:2", "udp"}, 0, "", ""},
		{"help", []string{"-h"}, 0, usageText, ""},
		{"help long", []string{"-help"}, 0, usageText, ""},
		{"help double dash", []string{"--help"}, 0, usageText, ""},

		// Usage errors.
		{"unknown flag", []string{"-x", "tcp"}, 2, "", "flag provided but not defined: -x"},
		{"flag without value", []string{"-src"}, 2, "", "flag needs an argument: -src"},
		{"bad link", []string{"-link", "wifi", "tcp"}, 2, "", `-link "wifi": fake packets are ethernet (EN10MB) or raw (RAW)`},
		{"bad -y", []string{"-y", "LINUX_SLL", "tcp"}, 2, "", `-y "LINUX_SLL": fake packets are ethernet (EN10MB) or raw (RAW)`},
		{"-y RAW as tcpdump", []string{"-y", "RAW", "ip and len = 40"}, 0, match, ""},
		{"-y EN10MB as tcpdump", []string{"-y", "EN10MB", "ether proto 0x0800"}, 0, match, ""},
		{"-y and -link", []string{"-y", "RAW", "-link", "raw", "ip"}, 2, "", "use only one of -link and -y"},
		{"-s as tcpdump", []string{"-s", "40", "-payload", "hello", "ether[39] = ether[39] and len = 60"}, 0, match, ""},
		{"-s cuts", []string{"-s", "40", "ether[40] = 0"}, 1, noMatch, ""},
		{"-s and -snaplen", []string{"-s", "40", "-snaplen", "40", "ip"}, 2, "", "use only one of -snaplen and -s"},
		{"bad -s", []string{"-s", "x", "ip"}, 2, "", `-s "x": not a number`},
		{"bad proto", []string{"-proto", "icmp", "icmp"}, 2, "", `-proto "icmp": not tcp or udp`},
		{"bad src", []string{"-src", "nonsense", "tcp"}, 2, "", `-src "nonsense": not an IP address and port`},
		{"host name src", []string{"-src", "example.com:80", "tcp"}, 2, "", `-src "example.com:80"`},
		{"bad dst port", []string{"-dst", "10.0.0.1:99999", "tcp"}, 2, "", `-dst "10.0.0.1:99999"`},
		{"bad dst v6 unbracketed", []string{"-dst", "::1:80:x", "tcp"}, 2, "", `-dst "::1:80:x"`},
		{"empty src", []string{"-src", "", "tcp"}, 2, "", "-src needs an address"},
		{"empty dst", []string{"-dst=", "tcp"}, 2, "", "-dst needs an address"},
		{"mixed families", []string{"-src", "10.0.0.1:1", "-dst", "[::1]:2", "tcp"}, 2, "", "one is IPv4, the other IPv6"},
		{"mixed families reversed", []string{"-src", "[2001:db8::1]:1", "-dst", "10.0.0.1:2", "tcp"}, 2, "", "one is IPv4, the other IPv6"},
		{"mixed families with -d", []string{"-d", "-src", "10.0.0.1:1", "-dst", "[::1]:2", "tcp"}, 2, "", "one is IPv4, the other IPv6"},
		{"both payloads", []string{"-payload", "x", "-payload-hex", "78", "tcp"}, 2, "", "only one of -payload and -payload-hex"},
		{"bad hex digit", []string{"-payload-hex", "zz", "tcp"}, 2, "", `-payload-hex: 'z' at offset 0 is not a hex digit`},
		{"odd hex", []string{"-payload-hex", "abc", "tcp"}, 2, "", "odd number of hex digits"},
		{"payload too large v4", []string{"-payload-hex", maxV4TCP + "00", "tcp"}, 2, "", "payload too large"},
		{"payload too large v6", []string{"-proto", "udp", "-src", "[::1]:1", "-payload-hex", maxV6UDP + "00", "udp"}, 2, "", "payload too large"},
		{"vlan too big", []string{"-vlan", "4096", "vlan"}, 2, "", `-vlan "4096": not a VLAN ID from 0 to 4095`},
		{"vlan negative", []string{"-vlan", "-1", "vlan"}, 2, "", `-vlan "-1"`},
		{"vlan word", []string{"-vlan", "ten", "vlan"}, 2, "", `-vlan "ten"`},
		{"vlan raw", []string{"-link", "raw", "-vlan", "5", "ip"}, 2, "", "-vlan needs -link ethernet"},
		{"flags unknown", []string{"-flags", "SX", "tcp"}, 2, "", `-flags "SX": unknown flag 'X'`},
		{"flags lower case", []string{"-flags", "s", "tcp"}, 2, "", `unknown flag 's'`},
		{"flags empty", []string{"-flags", "", "tcp"}, 2, "", "no flags given"},
		{"flags udp", []string{"-proto", "udp", "-flags", "S", "udp"}, 2, "", "TCP flags need -proto tcp"},
		{"snaplen word", []string{"-snaplen", "big", "tcp"}, 2, "", `-snaplen "big": not a number`},
		{"snaplen negative", []string{"-snaplen", "-1", "tcp"}, 2, "", "-snaplen -1: out of range"},
		{"snaplen huge", []string{"-snaplen", "99999999999", "tcp"}, 2, "", "-snaplen 99999999999: out of range"},
		{"two dumps", []string{"-d", "-ddd", "tcp"}, 2, "", "use only one of -d, -dd and -ddd"},
		{"-w with -d", []string{"-d", "-w", filepath.Join(dir, "x.pcap"), "tcp"}, 2, "", "-w cannot be used with -d"},
		{"-w stdout", []string{"-w", "-", "tcp"}, 2, "", "-w -: writing the capture to standard output is not supported"},
		{"-w empty", []string{"-w", "", "tcp"}, 2, "", "-w needs a file name"},
		{"-w bad dir", []string{"-w", filepath.Join(dir, "no", "such", "x.pcap"), "tcp"}, 2, "", "no such file or directory"},
		{"-r with packet flags", []string{"-r", "x.pcap", "-src", "10.0.0.1:1", "-vlan", "3", "tcp"}, 2, "", "-src, -vlan cannot be used with -r"},
		{"-r with -w -", []string{"-r", "x.pcap", "-w", "-", "tcp"}, 2, "", "-w needs a file name"},
		{"-r with -w over it", []string{"-r", "x.pcap", "-w", "x.pcap", "tcp"}, 2, "", "writing over the file being read"},
		{"-r with -w and -d", []string{"-r", "x.pcap", "-w", "y.pcap", "-d", "tcp"}, 2, "", "-w cannot be used with -d"},
		{"-r with -s", []string{"-r", "x.pcap", "-s", "40", "tcp"}, 2, "", "-s cannot be used with -r"},
		{"-r with -snaplen", []string{"-r", "x.pcap", "-snaplen", "10"}, 2, "", "-snaplen cannot be used with -r"},
		{"-r empty", []string{"-r", ""}, 2, "", "-r needs a file name"},
		{"-r empty stdin", []string{"-r", "-", "tcp"}, 2, "", "-r: -: not a pcap or pcapng file: too short"},
		{"-F missing", []string{"-F", filepath.Join(dir, "none"), "tcp"}, 2, "", "-F"},
		{"-F and expression", []string{"-F", "x", "tcp"}, 2, "", `-F x and an expression ("tcp") on the command line`},
		{"-r missing", []string{"-r", filepath.Join(dir, "missing.pcap"), "tcp"}, 2, "", "no such file or directory"},
		{"-r directory", []string{"-r", dir, "tcp"}, 2, "", "is a directory"},

		{"NUL byte", []string{"tcp\x00"}, 2, "", "NUL byte"},
		{"flag after expression", []string{"tcp", "-src", "10.0.0.1:1"}, 2, "", "(flags such as -src must come before the expression)"},
		{"flag= after expression", []string{"tcp", "-proto=udp"}, 2, "", "(flags such as -proto=udp must come before the expression)"},
		{"ip broadcast, netmask 0 as tcpdump -r", []string{"ip broadcast"}, 1, "no match\n", ""},
		{"ip broadcast to all ones", []string{"-proto", "udp", "-dst", "255.255.255.255:67", "ip broadcast"}, 0, "match\n", ""},
		{"compile error with -d", []string{"-d", "tcp port"}, 2, "", `bpfmatch: compiling "tcp port" for ethernet: `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runArgs(tt.args...)
			checkResult(t, r, tt.wantCode, tt.wantOut, tt.wantErr)
			if tt.wantCode == exitError && !strings.Contains(r.stderr, "bpfmatch -h") && !strings.HasPrefix(r.stderr, "bpfmatch: ") && !strings.HasPrefix(r.stderr, "usage: ") {
				t.Errorf("error message does not start with bpfmatch:\n%v", r)
			}
		})
	}

	// Expressions libpcap refuses: the compiler in use refuses them too,
	// and -libpcap with libpcap's message.
	refused := []struct {
		name       string
		flags      []string
		expr       string
		libpcapErr string
		mayPass    bool // the Go compiler may compile it: it rejects every packet
	}{
		{"syntax error", nil, "tcp port", `compiling "tcp port" for ethernet: can't parse filter expression: syntax error`, false},
		{"unknown word", nil, "nosuchproto", "syntax error", false},
		{"unknown host", nil, "host no-such-host.invalid", "unknown host 'no-such-host.invalid'", false},
		{"ether on raw", []string{"-link", "raw"}, "ether host 00:00:5e:00:53:00", "ethernet addresses supported only on", false},
		{"rejects all", nil, "tcp and udp", "expression rejects all packets", true},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{}, tt.flags...), tt.expr)
			r := runArgs(args...)
			if !(tt.mayPass && r.code == exitNoMatch && r.stdout == "no match\n") {
				checkResult(t, r, exitError, "", fmt.Sprintf("bpfmatch: compiling %q for ", tt.expr))
			}
			if bpfmatch.HaveLibpcap {
				checkResult(t, runArgs(append([]string{"-libpcap"}, args...)...), exitError, "", tt.libpcapErr)
			}
		})
	}
}

// TestUsageListsEveryFlag keeps the help text in step with the flags.
func TestUsageListsEveryFlag(t *testing.T) {
	newFlagSet(new(rawFlags)).VisitAll(func(f *flag.Flag) {
		if !regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(f.Name) + `\b`).MatchString(usageText) {
			t.Errorf("usage text does not describe -%s", f.Name)
		}
	})
	for _, s := range []string{"Exit status", "0 if", "1 if", "2 on any", "192.0.2.1:40000", "192.0.2.2:80", "[2001:db8::1]:40000", "[2001:db8::2]:80"} {
		if !strings.Contains(usageText, s) {
			t.Errorf("usage text lacks %q", s)
		}
	}
}

// TestDefaultsAsDocumented checks the defaults the usage text gives.
func TestDefaultsAsDocumented(t *testing.T) {
	cfg, err := parseArgs(nil)
	if err != nil {
		t.Fatal(err)
	}
	p, frame, err := cfg.packet()
	if err != nil {
		t.Fatal(err)
	}
	want := bpfmatch.FakePacket{
		Src:      defaultSrc4,
		Dst:      defaultDst4,
		Protocol: bpfmatch.TCP,
	}
	if p.Src != want.Src || p.Dst != want.Dst || p.Protocol != want.Protocol || p.Flags != 0 || p.VLAN != nil || len(p.Payload) != 0 {
		t.Errorf("default packet %v, want %v", p, want)
	}
	if cfg.link != bpfmatch.LinkEthernet || cfg.snap != bpfmatch.DefaultSnapLen || len(frame) != 60 {
		t.Errorf("default link %v, snaplen %d, frame of %d bytes; want ethernet, %d, 60", cfg.link, cfg.snap, len(frame), bpfmatch.DefaultSnapLen)
	}
	if got := defaultSrc4.String() + " " + defaultDst4.String() + " " + defaultSrc6.String() + " " + defaultDst6.String(); got != "192.0.2.1:40000 192.0.2.2:80 [2001:db8::1]:40000 [2001:db8::2]:80" {
		t.Errorf("defaults %s differ from the documented ones", got)
	}
}

// TestBinaryExitCodes builds the command and checks its exit codes and
// output streams end to end.
func TestBinaryExitCodes(t *testing.T) {
	requireCompile(t)
	bin := buildBinary(t)
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"match", []string{"tcp", "port", "80"}, 0, "match\n", ""},
		{"no match", []string{"udp"}, 1, "no match\n", ""},
		{"compile error", []string{"tcp", "port"}, 2, "", `bpfmatch: compiling "tcp port" for ethernet: `},
		{"usage error", []string{"-vlan", "x"}, 2, "", `-vlan "x"`},
		{"help", []string{"-h"}, 0, usageText, ""},
		{"program", []string{"-ddd", ""}, 0, "1\n6 0 0 262144\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				code = exitErr.ExitCode()
			} else if err != nil {
				t.Fatalf("running %s: %v", bin, err)
			}
			r := result{args: tt.args, code: code, stdout: stdout.String(), stderr: stderr.String()}
			checkResult(t, r, tt.wantCode, tt.wantStdout, tt.wantStderr)
		})
	}
}

// needTcpdump skips the test unless tcpdump is on PATH.
func needTcpdump(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Skip("tcpdump is not on PATH: cannot compare with it (install tcpdump to run this test)")
	}
	return path
}

// needCorpus returns the path of a file of the shared corpus, or skips.
func needCorpus(t *testing.T, parts ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{corpusDir}, parts...)...)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared corpus not available (%v): this test compares with tcpdump on its captures", err)
	}
	return p
}

// programExprs exercise every kind of instruction libpcap emits: loads of
// each size and mode, scratch memory, ALU operations, backward jumps
// (protochain) and the length.
var programExprs = []string{
	"",
	"tcp port 80",
	"host 192.0.2.1 and not port 22",
	"net 192.168.0.0/16",
	"ip6 and tcp",
	"host 2001:db8::1",
	"vlan 100 and udp",
	"tcp[tcpflags] & (tcp-syn|tcp-fin) != 0",
	"ether[0] & 1 = 0 and ip[16] >= 224",
	"portrange 1000-2000",
	"icmp[icmptype] != icmp-echo and icmp[icmptype] != icmp-echoreply",
	"ip6 protochain 6",
	"tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420",
	"tcp port 80 and (((ip[2:2] - ((ip[0]&0xf)<<2)) - ((tcp[12]&0xf0)>>2)) != 0)",
	"udp[8:2] % 3 == 1",
	"ip[0] ^ 0x45 == 0 and ip[1] | 2 == 2",
	"tcp[13] * 2 / 4 = 1",
	"len - 1 > 100 or less 64",
	"ether host 00:00:5e:00:53:00 or arp",
	"not broadcast and not multicast",
	"mpls 100 or pppoes",
	"geneve or udp port 4789",
}

// TestProgramOutputMatchesTcpdump compares -d -libpcap, -dd -libpcap and
// -ddd -libpcap with tcpdump's, both for a fake packet's link type and snap
// length and with -r: the same program, formatted the same.
func TestProgramOutputMatchesTcpdump(t *testing.T) {
	needLibpcap(t)
	tcpdump := needTcpdump(t)
	captures := []struct {
		file string
		fake []string // flags compiling for a fake packet as tcpdump -r does for file; nil: none do
	}{
		{"dns_tcp.pcap", []string{}},                           // Ethernet, snap length 262144
		{"ssh.pcap", []string{"-snaplen", "65535"}},            // Ethernet, 65535
		{"gquic.pcap", []string{"-link", "raw"}},               // raw IP, 262144
		{"nhrp.pcapng", []string{}},                            // pcapng, Ethernet, 262144
		{"tcp-handshake-nano.pcap", nil},                       // Linux cooked
		{"LINKTYPE_IPV6.pcap", nil},                            // LINKTYPE_IPV6
		{"babel_update_oobr.pcap", []string{"-snaplen", "69"}}, // snap length 69
	}
	n := 0
	for _, c := range captures {
		file := needCorpus(t, "pcaps", c.file)
		for _, expr := range programExprs {
			for _, d := range []string{"-d", "-dd", "-ddd"} {
				want, werr := exec.Command(tcpdump, d, "-r", file, expr).Output()
				runs := [][]string{{d, "-libpcap", "-r", file, "--", expr}}
				if c.fake != nil {
					runs = append(runs, append(append([]string{d, "-libpcap"}, c.fake...), "--", expr))
				}
				for _, args := range runs {
					r := runArgs(args...)
					n++
					if werr != nil {
						// tcpdump refused the expression for this link type.
						if r.code != exitError {
							t.Errorf("tcpdump %s -r %s %q failed (%v), bpfmatch did not\n%v", d, c.file, expr, werr, r)
						}
						continue
					}
					if r.code != 0 || r.stdout != string(want) {
						t.Errorf("%s of %q for %s differs from tcpdump's\n%v\ntcpdump:\n%s", d, expr, c.file, r, want)
					}
				}
			}
		}
	}
	t.Logf("%d program outputs compared with tcpdump's", n)
}

// TestWrite writes fake packets with -w and reads them back with pcapgo,
// with -r, and with tcpdump -vv, which checks lengths and checksums.
func TestWrite(t *testing.T) {
	requireCompile(t)
	tcpdump, _ := exec.LookPath("tcpdump")
	if tcpdump == "" {
		t.Log("tcpdump is not on PATH: checking the files with pcapgo only")
	}
	big := strings.Repeat("ab", 3000)
	tests := []struct {
		name      string
		args      []string
		expr      string // matches the packet
		linktype  layers.LinkType
		snaplen   uint32
		wireLen   int
		tcpdumpRe string // in tcpdump -nn -vv -e's output
	}{
		{"ethernet v4 tcp", []string{"-payload", "hello"}, "tcp port 80", 1, 262144, 60,
			`192\.0\.2\.1\.40000 > 192\.0\.2\.2\.80: Flags \[P\.\], cksum 0x[0-9a-f]+ \(correct\), seq 0:5,`},
		{"ethernet v4 tcp syn empty", []string{"-flags", "S"}, "tcp[tcpflags] == tcp-syn", 1, 262144, 60,
			`Flags \[S\], cksum 0x[0-9a-f]+ \(correct\), seq 0, win 65535, length 0`},
		{"ethernet v4 udp", []string{"-proto", "udp", "-src", "10.1.2.3:5000", "-dst", "10.3.2.1:6000", "-payload", "x"}, "udp and host 10.3.2.1", 1, 262144, 60,
			`10\.1\.2\.3\.5000 > 10\.3\.2\.1\.6000: \[udp sum ok\] UDP, length 1`},
		{"ethernet v6 tcp", []string{"-src", "[2001:db8::10]:1234", "-payload", "abc"}, "ip6 and tcp", 1, 262144, 77,
			`2001:db8::10\.1234 > 2001:db8::2\.80: Flags \[P\.\], cksum 0x[0-9a-f]+ \(correct\), seq 0:3,`},
		{"ethernet v6 udp", []string{"-proto", "udp", "-dst", "[ff02::1]:6000", "-payload", ""}, "ip6 multicast and udp", 1, 262144, 62,
			`2001:db8::1\.40000 > ff02::1\.6000: \[udp sum ok\] UDP, length 0`},
		{"raw v4 tcp", []string{"-link", "raw", "-flags", "F.", "-payload-hex", "0102"}, "tcp[tcpflags] & tcp-fin != 0", 101, 262144, 42,
			`Flags \[F\.\], cksum 0x[0-9a-f]+ \(correct\), seq 0:2,`},
		{"raw v4 udp", []string{"-link", "raw", "-proto", "udp"}, "udp", 101, 262144, 28,
			`192\.0\.2\.1\.40000 > 192\.0\.2\.2\.80: \[udp sum ok\] UDP, length 0`},
		{"raw v6 tcp", []string{"-link", "raw", "-src", "[::1]:22", "-flags", "R"}, "ip6 and tcp src port 22", 101, 262144, 60,
			`::1\.22 > 2001:db8::2\.80: Flags \[R\], cksum 0x[0-9a-f]+ \(correct\)`},
		{"raw v6 udp", []string{"-link", "raw", "-proto", "udp", "-src", "[::1]:9", "-payload", "hi"}, "ip6 and udp", 101, 262144, 50,
			`::1\.9 > 2001:db8::2\.80: \[udp sum ok\] UDP, length 2`},
		{"vlan v4 tcp", []string{"-vlan", "7", "-payload", "hello"}, "vlan 7 and tcp", 1, 262144, 63,
			`vlan 7, p 0, ethertype IPv4 \(0x0800\).*\n.*Flags \[P\.\], cksum 0x[0-9a-f]+ \(correct\)`},
		{"vlan v6 udp", []string{"-vlan", "4000", "-proto", "udp", "-src", "[2001:db8::3]:7"}, "vlan 4000 and ip6", 1, 262144, 66,
			`vlan 4000, p 0, ethertype IPv6 \(0x86dd\).*\[udp sum ok\]`},
		{"large payload", []string{"-payload", big}, "greater 6000", 1, 262144, 6054,
			`cksum 0x[0-9a-f]+ \(correct\), seq 0:6000,`},
		{"snaplen", []string{"-snaplen", "1500"}, "tcp", 1, 1500, 60, `\(correct\)`},
		{"truncated by snaplen", []string{"-snaplen", "40", "-payload", "hello"}, "ip", 1, 40, 60, ""},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, fmt.Sprintf("%d.pcap", i))
			args := append(append(append([]string(nil), tt.args...), "-w", file, "--"), tt.expr)
			before := time.Now().Truncate(time.Microsecond)
			checkResult(t, runArgs(args...), 0, "match\n", "")
			after := time.Now()

			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			pr, err := pcapgo.NewReader(f)
			if err != nil {
				t.Fatalf("pcapgo cannot read %s: %v", shellQuote(args), err)
			}
			if pr.LinkType() != tt.linktype || pr.Snaplen() != tt.snaplen {
				t.Errorf("%s: link type %d, snap length %d; want %d, %d", shellQuote(args), pr.LinkType(), pr.Snaplen(), tt.linktype, tt.snaplen)
			}
			data, ci, err := pr.ReadPacketData()
			if err != nil {
				t.Fatalf("%s: reading the packet: %v", shellQuote(args), err)
			}
			if ci.Length != tt.wireLen || ci.CaptureLength != min(tt.wireLen, int(tt.snaplen)) || len(data) != ci.CaptureLength {
				t.Errorf("%s: wire length %d, captured %d; want %d, %d", shellQuote(args), ci.Length, ci.CaptureLength, tt.wireLen, min(tt.wireLen, int(tt.snaplen)))
			}
			// Stamped when written, as a capture would be.
			if ci.Timestamp.Before(before) || ci.Timestamp.After(after) {
				t.Errorf("%s: timestamp %v, want the time of writing, between %v and %v", shellQuote(args), ci.Timestamp, before, after)
			}
			if _, _, err := pr.ReadPacketData(); err == nil {
				t.Errorf("%s: more than one packet", shellQuote(args))
			}
			// The written packet matches as the fake one did.
			checkResult(t, runArgs("-r", file, "--", tt.expr), 0, "1\n", "")

			if tcpdump == "" || tt.tcpdumpRe == "" {
				return
			}
			cmd := exec.Command(tcpdump, "-r", file, "-nn", "-vv", "-e")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("tcpdump -r %s: %v\n%s", file, err, stderr.String())
			}
			out := stdout.String()
			linkName := map[layers.LinkType]string{1: "EN10MB", 101: "RAW"}[tt.linktype]
			if !strings.Contains(stderr.String(), "link-type "+linkName+" ") {
				t.Errorf("%s: tcpdump reads link type %q, want %s", shellQuote(args), stderr.String(), linkName)
			}
			for _, bad := range []string{"bad cksum", "incorrect", "truncated", "[|", "bad len", "invalid", "malformed"} {
				if strings.Contains(out, bad) {
					t.Errorf("%s: tcpdump complains (%q):\n%s", shellQuote(args), bad, out)
				}
			}
			if !regexp.MustCompile(tt.tcpdumpRe).MatchString(out) {
				t.Errorf("%s: tcpdump output does not match %q:\n%s", shellQuote(args), tt.tcpdumpRe, out)
			}
		})
	}
}

// TestReadErrors covers files -r must refuse or read with care.
func TestReadErrors(t *testing.T) {
	requireCompile(t)
	dir := t.TempDir()
	le := binary.LittleEndian
	pcapHeader := func(snap, linktype uint32) []byte {
		b := make([]byte, 24)
		le.PutUint32(b[0:], 0xa1b2c3d4)
		le.PutUint16(b[4:], 2)
		le.PutUint16(b[6:], 4)
		le.PutUint32(b[16:], snap)
		le.PutUint32(b[20:], linktype)
		return b
	}
	record := func(caplen, wirelen uint32, data []byte) []byte {
		b := make([]byte, 16, 16+len(data))
		le.PutUint32(b[8:], caplen)
		le.PutUint32(b[12:], wirelen)
		return append(b, data...)
	}
	frame := func(args ...string) []byte {
		cfg, err := parseArgs(args)
		if err != nil {
			t.Fatal(err)
		}
		_, f, err := cfg.packet()
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	eth := frame()
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	// pcapng blocks, little-endian.
	var epbOn func(iface, caplen, wirelen uint32, data []byte) []byte
	block := func(typ uint32, body []byte) []byte {
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
		b := make([]byte, 8, 12+len(body))
		le.PutUint32(b[0:], typ)
		le.PutUint32(b[4:], uint32(12+len(body)))
		b = append(b, body...)
		return le.AppendUint32(b, uint32(12+len(body)))
	}
	shb := block(ngSectionHeader, []byte{0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	idb := func(linktype uint16, opts ...byte) []byte {
		b := le.AppendUint16(nil, linktype)
		b = append(b, 0, 0)
		b = le.AppendUint32(b, 0)
		return block(ngInterfaceDescriptor, append(b, opts...))
	}
	epb := func(caplen, wirelen uint32, data []byte) []byte {
		return epbOn(0, caplen, wirelen, data)
	}
	epbOn = func(iface, caplen, wirelen uint32, data []byte) []byte {
		b := make([]byte, 20)
		le.PutUint32(b[0:], iface)
		le.PutUint32(b[12:], caplen)
		le.PutUint32(b[16:], wirelen)
		return block(ngEnhancedPacket, append(b, data...))
	}
	truncatedIP := make([]byte, len(eth))
	copy(truncatedIP, eth)
	truncatedIP = truncatedIP[:20]

	tests := []struct {
		name     string
		data     []byte
		expr     string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"empty file", nil, "", 2, "", "not a pcap or pcapng file: too short"},
		{"text file", []byte("hello, world, this is not a capture\n"), "", 2, "", "not a pcap or pcapng file (magic number"},
		{"header truncated", pcapHeader(65535, 1)[:20], "", 2, "", "pcap file header truncated"},
		{"no packets", pcapHeader(65535, 1), "tcp", 1, "0\n", ""},
		{"no packets, bad expression", pcapHeader(65535, 1), "tcp port", 2, "", `bpfmatch: compiling "tcp port" for ethernet: `},
		{"one packet", cat(pcapHeader(65535, 1), record(uint32(len(eth)), uint32(len(eth)), eth)), "tcp port 80", 0, "1\n", ""},
		{"one packet, no match", cat(pcapHeader(65535, 1), record(uint32(len(eth)), uint32(len(eth)), eth)), "udp", 1, "0\n", ""},
		{"raw link type", cat(pcapHeader(65535, 101), record(uint32(len(eth)), uint32(len(eth)), eth)), "ether host 02:00:00:00:00:01", 2, "", "ethernet addresses supported only on"},
		{"link type with FCS bits", cat(pcapHeader(65535, 1|0x14000000), record(uint32(len(eth)), uint32(len(eth)), eth)), "tcp", 0, "1\n", ""},
		{"unknown link type", pcapHeader(65535, 60000), "tcp", 2, "", "compiling"},
		{"truncated record header", cat(pcapHeader(65535, 1), record(60, 60, nil)[:10]), "", 2, "0\n", "packet 1: file truncated"},
		{"record without data", cat(pcapHeader(65535, 1), record(60, 60, nil)), "", 2, "0\n", "packet 1: file truncated"},
		{"truncated record data", cat(pcapHeader(65535, 1), record(60, 60, eth[:30])), "", 2, "0\n", "packet 1: file truncated"},
		{"caplen over wire length, counted as tcpdump does", cat(pcapHeader(65535, 1), record(60, 50, eth)), "len = 50 and ether[59] = 0", 0, "1\n", ""},
		{"wire length 0", cat(pcapHeader(65535, 1), record(60, 0, eth)), "len = 0", 0, "1\n", ""},
		{"count before the error", cat(pcapHeader(65535, 1), record(60, 60, eth), record(60, 60, eth), record(60, 60, eth[:30])), "tcp", 2, "2\n", "packet 3: file truncated"},
		{"huge caplen", cat(pcapHeader(65535, 1), record(0xfffffff0, 0xfffffff0, eth)), "", 2, "0\n", "capture length exceeds snap length"},
		{"caplen over file snaplen", cat(pcapHeader(40, 1), record(uint32(len(eth)), uint32(len(eth)), eth)), "ether[39] = 0 and len = 60", 0, "1\n", ""},
		{"caplen over snaplen, cut", cat(pcapHeader(40, 1), record(uint32(len(eth)), uint32(len(eth)), eth)), "ether[40] = 0", 1, "0\n", ""},
		{"short capture keeps wire length", cat(pcapHeader(65535, 1), record(20, 1000, truncatedIP)), "len = 1000", 0, "1\n", ""},
		{"pcapng", cat(shb, idb(1), epb(uint32(len(eth)), uint32(len(eth)), eth)), "tcp port 80", 0, "1\n", ""},
		{"pcapng no interface", cat(shb), "", 2, "", "reading pcapng"},
		{"pcapng packet before interface", cat(shb, epb(60, 60, eth)), "", 2, "", "reading pcapng"},
		{"pcapng huge caplen", cat(shb, idb(1), epb(0xfffffff0, 0xfffffff0, eth)), "", 2, "0\n", "captured length 4294967280 exceeds the block's"},
		{"pcapng truncated block", cat(shb, idb(1), epb(60, 60, eth))[:100], "", 2, "0\n", "file truncated"},
		{"pcapng bad block length", cat(shb, idb(1), []byte{6, 0, 0, 0, 13, 0, 0, 0}), "", 2, "0\n", "bad length 13"},
		{"pcapng mixed link types", cat(shb, idb(1), idb(101), epb(60, 60, eth), epbOn(1, 20, 20, eth[14:34])), "ip", 2, "1\n", "link type other than the first interface's"},
		// tsresol 2^-64: pcapgo divides by zero.
		{"pcapng bad timestamp resolution", cat(shb, idb(1, 9, 0, 1, 0, 0x80|64, 0, 0, 0, 0, 0, 0, 0), epb(60, 60, eth)), "", 2, "", "malformed capture file"},
		{"pcapng bad byte order", cat([]byte{0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 1, 2, 3, 4}, make([]byte, 16)), "", 2, "", "bad byte-order magic"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, fmt.Sprintf("%d.cap", i))
			if err := os.WriteFile(file, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			checkResult(t, runArgs("-r", file, "--", tt.expr), tt.wantCode, tt.wantOut, tt.wantErr)
		})
	}
}

// readExprs returns the expressions of a corpus filter file.
func readExprs(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var exprs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		exprs = append(exprs, line)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return exprs
}

var tcpdumpCount = regexp.MustCompile(`(?m)^(\d+) packets?$`)

// runTcpdumpCount runs tcpdump --count, which counts the packets that pass
// the filter without printing them: what tcpdump -r | wc -l counts, even
// where a packet prints on several lines. If tcpdump fails, ok is false and
// msg is its error message, without "tcpdump: ".
func runTcpdumpCount(tcpdump, file, expr string) (n int, ok bool, msg string) {
	cmd := exec.Command(tcpdump, "--count", "-nn", "-r", file, "--", expr)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	m := tcpdumpCount.FindStringSubmatch(stdout.String())
	if err == nil && m != nil {
		n, _ = strconv.Atoi(m[1])
		return n, true, ""
	}
	msg = fmt.Sprintf("%v, no message", err)
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.HasPrefix(line, "tcpdump: ") {
			msg = strings.TrimPrefix(line, "tcpdump: ")
		}
	}
	return 0, false, msg
}

// TestReadCountsMatchTcpdump checks that -r counts as many matching
// packets as tcpdump -r does, for every capture of the corpus and every
// real-world expression (with -short: a subset), and that both refuse the
// same expressions.
func TestReadCountsMatchTcpdump(t *testing.T) {
	requireCompile(t)
	tcpdump := needTcpdump(t)
	pcapDir := needCorpus(t, "pcaps")
	exprs := readExprs(t, needCorpus(t, "filters", "realworld.txt"))
	var files []string
	for _, pattern := range []string{"*.pcap", "*.pcapng"} {
		m, err := filepath.Glob(filepath.Join(pcapDir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 || len(exprs) == 0 {
		t.Skipf("corpus has %d captures and %d expressions", len(files), len(exprs))
	}

	type job struct{ file, expr string }
	var jobs []job
	if testing.Short() {
		// All expressions on a diverse set of captures, and all captures on
		// a set of expressions.
		some := map[string]bool{
			"dns_tcp.pcap": true, "vrrp.pcap": true, "afs.pcap": true, "arp-oobr.pcap": true,
			"802.1ad_QinQ.pcap": true, "babel_update_oobr.pcap": true, "LINKTYPE_RAW_ipv6.pcap": true,
			"tcp-handshake-nano.pcap": true, "of13_ericsson.pcapng": true, "pppoes.pcap": true,
			"various_gre.pcap": true, "ipv6_jumbogram_1.pcap": true, "LINKTYPE_IPV4.pcap": true,
			"isup.pcap": true, "rpvstp-trunk-native-vid5.pcap": true,
		}
		var someNames []string
		for _, f := range files {
			if some[filepath.Base(f)] {
				someNames = append(someNames, filepath.Base(f))
				for _, e := range exprs {
					jobs = append(jobs, job{f, e})
				}
			}
		}
		step := max(1, len(exprs)/20)
		var someExprs []string
		for i := 0; i < len(exprs); i += step {
			someExprs = append(someExprs, exprs[i])
			for _, f := range files {
				if !some[filepath.Base(f)] {
					jobs = append(jobs, job{f, exprs[i]})
				}
			}
		}
		t.Logf("-short: all %d expressions on %v; all captures on %q", len(exprs), someNames, someExprs)
	} else {
		for _, f := range files {
			for _, e := range exprs {
				jobs = append(jobs, job{f, e})
			}
		}
	}

	var (
		mu                            sync.Mutex
		compared, bothRefused, agreed int
		matched                       int
		refusals                      = map[string]int{} // by message
	)
	start := time.Now()
	ch := make(chan job)
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ { // the machine has 2 cores, shared
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				want, ok, msg := runTcpdumpCount(tcpdump, j.file, j.expr)
				r := runArgs("-r", j.file, "--", j.expr)
				name := filepath.Base(j.file)
				mu.Lock()
				compared++
				switch {
				case !ok && r.code == exitError:
					// With -libpcap, bpfmatch reports libpcap's message.
					if bpfmatch.HaveLibpcap {
						lr := runArgs("-libpcap", "-r", j.file, "--", j.expr)
						if lr.code != exitError || !strings.Contains(lr.stderr, msg) {
							t.Errorf("%s, %q: tcpdump and bpfmatch -libpcap fail differently: tcpdump: %s\n%v", name, j.expr, msg, lr)
						}
					}
					bothRefused++
					refusals[msg]++
				case !ok && msg == "expression rejects all packets" && r.code == exitNoMatch && r.stdout == "0\n":
					// libpcap's optimiser proved it; the Go compiler's
					// program rejects them too.
					agreed++
				case !ok:
					t.Errorf("%s, %q: tcpdump failed (%s), bpfmatch did not\n%v", name, j.expr, msg, r)
				case r.code == exitError:
					t.Errorf("%s, %q: tcpdump counts %d, bpfmatch failed\n%v", name, j.expr, want, r)
				case r.stdout != fmt.Sprintln(want):
					t.Errorf("%s, %q: tcpdump counts %d, bpfmatch %s\n%v", name, j.expr, want, strings.TrimSpace(r.stdout), r)
				case (want > 0) != (r.code == exitMatch):
					t.Errorf("%s, %q: %d matches, but exit %d\n%v", name, j.expr, want, r.code, r)
				default:
					agreed++
					matched += want
				}
				mu.Unlock()
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	t.Logf("%d -r comparisons with tcpdump in %v: %d counts agree (%d matching packets in all), %d refused by both",
		compared, time.Since(start).Round(time.Millisecond), agreed, matched, bothRefused)
	msgs := make([]string, 0, len(refusals))
	for msg := range refusals {
		msgs = append(msgs, msg)
	}
	sort.Strings(msgs)
	for _, msg := range msgs {
		t.Logf("refused by both %d times: %s", refusals[msg], msg)
	}
}

// requireCompile skips tests that compile expressions in a build that
// cannot: one without libpcap while Compile still uses libpcap. Any other
// failure to compile "tcp" fails the test.
func requireCompile(t *testing.T) {
	t.Helper()
	_, err := bpfmatch.Compile("tcp")
	switch {
	case err == nil:
	case !bpfmatch.HaveLibpcap && strings.Contains(err.Error(), "-tags libpcap"):
		t.Skipf("this build cannot compile expressions: %v", err)
	default:
		t.Fatalf("Compile(\"tcp\"): %v", err)
	}
}

// buildBinary builds the command into a temporary folder and returns its path.
func buildBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not on PATH; cannot build the binary")
	}
	bin := filepath.Join(t.TempDir(), "bpfmatch")
	args := []string{"build", "-o", bin}
	if bpfmatch.HaveLibpcap {
		// The binary compiles as the test does.
		args = append(args, "-tags", "libpcap")
	}
	if out, err := exec.Command(goTool, append(args, ".")...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
