//go:build linux

package main

import (
	"net"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestListenSYN runs -listen -syn with clients whose TTL the filter tests:
// it sees each client's real SYN, and the rejection prints the SYN's
// headers.
func TestListenSYN(t *testing.T) {
	requireCompile(t)
	args := []string{"-listen", "127.0.0.1:0", "-syn", "-count", "2", "tcp[12] & 0xf0 > 0x50 and ip[8] = 33"}
	addr, stdout, stderr, exited := startRun(t, args)
	if !strings.Contains(stderr.String(), "the filter sees the real SYN") {
		t.Fatalf("stderr %q: the kernel does not save SYNs here", stderr.String())
	}
	for _, ttl := range []int{33, 64} {
		d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_TTL, ttl) })
			if err != nil {
				return err
			}
			return serr
		}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	waitExit(t, exited, exitMatch, "the clients", stdout, stderr)
	lines := strings.Split(strings.TrimSpace(regexp.MustCompile(`:\d+\b`).ReplaceAllString(stdout.String(), ":PORT")), "\n")
	sort.Strings(lines)
	want := []*regexp.Regexp{
		regexp.MustCompile(`^tcp 127\.0\.0\.1:PORT > 127\.0\.0\.1:PORT \[SYN\] 0 bytes "" \(real SYN: ttl 64, win \d+, options \[mss \d+,sackOK,TS,wscale \d+\]\): no match$`),
		regexp.MustCompile(`^tcp 127\.0\.0\.1:PORT > 127\.0\.0\.1:PORT \[SYN\] 0 bytes "": match$`),
	}
	if len(lines) != len(want) {
		t.Fatalf("printed\n%s\nwant %d lines", strings.Join(lines, "\n"), len(want))
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("line %q does not match %v", lines[i], re)
		}
	}
}

// TestListenKernel runs -listen -udp -kernel on a socket bound to every
// address: the filter is attached to the socket, what it drops is never
// printed, and matches print the address each datagram was sent to.
func TestListenKernel(t *testing.T) {
	requireCompile(t)
	args := []string{"-listen", "0.0.0.0:0", "-udp", "-kernel", "-count", "1", "udp and dst host 127.0.0.2 and udp[8:4] = 0x50494e47"}
	addr, stdout, stderr, exited := startRun(t, args)
	if !strings.Contains(stderr.String(), "the kernel drops what cannot match") {
		t.Fatalf("stderr %q: no kernel filter", stderr.String())
	}
	_, port, _ := net.SplitHostPort(addr)
	for _, send := range []struct{ to, msg string }{{"127.0.0.1", "PING 1"}, {"127.0.0.2", "PONG"}, {"127.0.0.2", "PING 2"}} {
		c, err := net.Dial("udp", net.JoinHostPort(send.to, port))
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(send.msg))
		c.Close()
	}
	waitExit(t, exited, exitMatch, "the datagrams", stdout, stderr)
	got := regexp.MustCompile(`:\d+\b`).ReplaceAllString(strings.TrimSpace(stdout.String()), ":PORT")
	if want := `udp 127.0.0.1:PORT > 127.0.0.2:PORT 6 bytes "PING 2": match`; got != want {
		t.Errorf("printed %q, want only %q: the kernel drops the others", got, want)
	}
}

// TestListenKernelTCP runs -listen -kernel on TCP with a filter on the
// source address: the kernel answers only the clients it lets through.
func TestListenKernelTCP(t *testing.T) {
	requireCompile(t)
	args := []string{"-listen", "127.0.0.1:0", "-kernel", "-count", "1", "src host 127.0.0.1"}
	addr, stdout, stderr, exited := startRun(t, args)
	if !strings.Contains(stderr.String(), "the kernel drops what cannot match") {
		t.Fatalf("stderr %q: no kernel filter", stderr.String())
	}
	d := net.Dialer{Timeout: 300 * time.Millisecond, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	if c, err := d.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("a client from 127.0.0.2 connected: the kernel filter should drop its SYN")
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("hello"))
	defer c.Close()
	waitExit(t, exited, exitMatch, "the clients", stdout, stderr)
	if got := stdout.String(); !strings.Contains(got, "tcp 127.0.0.1:") || !strings.HasSuffix(strings.TrimSpace(got), ": match") || strings.Count(got, "\n") != 1 {
		t.Errorf("printed %q, want one match from 127.0.0.1", got)
	}
}
