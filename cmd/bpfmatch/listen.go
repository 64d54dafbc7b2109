package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/headlessbpf/bpfmatch"
)

// listenBytes is how many bytes -listen reads from a TCP client before
// matching, unless the client stops or -wait passes first: enough for the
// first line of most protocols.
const listenBytes = 256

// defaultListenWait is -wait's default.
const defaultListenWait = 500 * time.Millisecond

// listenFlags are the flags of -listen, before checking.
type listenFlags struct {
	listen, count, wait string
	udp                 bool
}

func (r *listenFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&r.listen, "listen", "", "address to listen on")
	fs.BoolVar(&r.udp, "udp", false, "with -listen: UDP datagrams")
	fs.StringVar(&r.count, "count", "", "with -listen: exit after N connections or datagrams")
	fs.StringVar(&r.wait, "wait", "", "with -listen: how long to wait for a TCP client's first bytes")
}

// listenConfig is what -listen asks for; addr is "" without it.
type listenConfig struct {
	addr  string
	udp   bool
	count int // 0 for no limit
	wait  time.Duration
}

// parseListen checks the -listen flags into cfg.listen.
func parseListen(r *listenFlags, set map[string]bool, cfg *config) error {
	if !set["listen"] {
		for _, name := range []string{"udp", "count", "wait"} {
			if set[name] {
				return fmt.Errorf("-%s needs -listen", name)
			}
		}
		return nil
	}
	if r.listen == "" {
		return errors.New("-listen needs an address, such as 127.0.0.1:8080")
	}
	var conflicts []string
	for _, name := range []string{"r", "w", "d", "dd", "ddd"} {
		if set[name] {
			conflicts = append(conflicts, "-"+name)
		}
	}
	for _, f := range cfg.packetFlags {
		// The link type and snap length still say how to compile.
		if f != "-link" && f != "-snaplen" && f != "-y" && f != "-s" {
			conflicts = append(conflicts, f)
		}
	}
	if len(conflicts) > 0 {
		return fmt.Errorf("%s cannot be used with -listen: the connections supply the packets (-udp for UDP)", strings.Join(conflicts, ", "))
	}
	cfg.listen = listenConfig{addr: r.listen, udp: r.udp, wait: defaultListenWait}
	if set["count"] {
		n, err := strconv.Atoi(strings.TrimSpace(r.count))
		if err != nil || n < 1 {
			return fmt.Errorf("-count %q: not a number of connections from 1 up", r.count)
		}
		cfg.listen.count = n
	}
	if set["wait"] {
		if r.udp {
			return errors.New("-wait applies to TCP connections, not to -udp")
		}
		d, err := time.ParseDuration(strings.TrimSpace(r.wait))
		if err != nil || d <= 0 {
			return fmt.Errorf("-wait %q: not a positive duration such as 500ms or 2s", r.wait)
		}
		cfg.listen.wait = d
	}
	return nil
}

// runListen runs -listen until interrupted by SIGINT or SIGTERM, or until
// -count connections or datagrams have come.
func runListen(cfg *config, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return listen(ctx, cfg, stdout, stderr)
}

// listen accepts connections or datagrams on cfg.listen.addr and prints
// for each its packet and whether it matched, until ctx is done or
// cfg.listen.count have come. It exits 0 if at least one matched, as -r
// does.
func listen(ctx context.Context, cfg *config, stdout, stderr io.Writer) int {
	m, err := bpfmatch.Compile(cfg.expr, cfg.options(cfg.link, cfg.snap)...)
	if err != nil {
		return fail(stderr, compileError(err, cfg.expr))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := &printer{w: stdout, limit: cfg.listen.count, done: cancel}
	if cfg.listen.udp {
		err = listenUDP(ctx, cfg, m, p, stderr)
	} else {
		err = listenTCP(ctx, cfg, m, p, stderr)
	}
	if err != nil {
		return fail(stderr, err)
	}
	if p.matched > 0 {
		return exitMatch
	}
	return exitNoMatch
}

// printer prints verdicts, from any goroutine, and counts them.
type printer struct {
	w     io.Writer
	limit int
	done  func() // called when limit is reached

	mu            sync.Mutex
	seen, matched int
}

// print prints one verdict, unless the limit was reached before.
func (p *printer) print(pkt bpfmatch.FakePacket, verdict string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.limit > 0 && p.seen >= p.limit {
		return
	}
	p.seen++
	if verdict == "match" {
		p.matched++
	}
	fmt.Fprintf(p.w, "%v %s: %s\n", pkt, quotePayload(pkt.Payload), verdict)
	if p.limit > 0 && p.seen >= p.limit {
		p.done()
	}
}

// quotePayload quotes the start of a payload.
func quotePayload(b []byte) string {
	const max = 40
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}

func listenTCP(ctx context.Context, cfg *config, m *bpfmatch.Matcher, p *printer, stderr io.Writer) error {
	ln, err := net.Listen("tcp", cfg.listen.addr)
	if err != nil {
		return err
	}
	l, err := bpfmatch.NewListener(ln, m,
		bpfmatch.WithPayload(listenBytes, cfg.listen.wait),
		bpfmatch.WithRejectFunc(func(r bpfmatch.Report) {
			switch {
			case errors.Is(r.Reason, bpfmatch.ErrRejected):
				p.print(r.Packet, "no match")
			case ctx.Err() == nil:
				fmt.Fprintf(stderr, "bpfmatch: connection from %v: %v\n", r.Remote, r.Reason)
			}
		}))
	if err != nil {
		ln.Close()
		return err
	}
	fmt.Fprintf(stderr, "bpfmatch: listening on tcp %v; deciding on up to %d bytes or what came in %v\n", l.Addr(), listenBytes, cfg.listen.wait)
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				// Out of file descriptors, say: wait for some to close.
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		// The bytes read to decide come first, without waiting for more.
		c.SetReadDeadline(time.Now())
		buf := make([]byte, listenBytes)
		n, _ := c.Read(buf)
		c.Close()
		pkt, err := bpfmatch.FromAddrs(c.RemoteAddr(), c.LocalAddr(), buf[:n])
		if err != nil {
			fmt.Fprintf(stderr, "bpfmatch: %v\n", err)
			continue
		}
		p.print(pkt, "match")
	}
}

func listenUDP(ctx context.Context, cfg *config, m *bpfmatch.Matcher, p *printer, stderr io.Writer) error {
	inner, err := net.ListenPacket("udp", cfg.listen.addr)
	if err != nil {
		return err
	}
	local := inner.LocalAddr().(*net.UDPAddr).AddrPort()
	packet := func(src netip.AddrPort, datagram []byte) bpfmatch.FakePacket {
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		dst := local
		if src.Addr().Unmap().Is4() != local.Addr().Unmap().Is4() && local.Addr().IsUnspecified() {
			// A dual-stack socket: the IPv4 unspecified address, as
			// PacketConn matches it.
			dst = netip.AddrPortFrom(netip.IPv4Unspecified(), local.Port())
		}
		return bpfmatch.FakePacket{Src: src, Dst: dst, Protocol: bpfmatch.UDP, Payload: datagram}
	}
	pc, err := bpfmatch.NewPacketConn(inner, m, bpfmatch.WithDropFunc(func(r bpfmatch.Report) {
		if errors.Is(r.Reason, bpfmatch.ErrRejected) {
			p.print(r.Packet, "no match")
		} else {
			fmt.Fprintf(stderr, "bpfmatch: datagram from %v: %v\n", r.Remote, r.Reason)
		}
	}))
	if err != nil {
		inner.Close()
		return err
	}
	fmt.Fprintf(stderr, "bpfmatch: listening on udp %v\n", pc.LocalAddr())
	go func() {
		<-ctx.Done()
		pc.Close()
	}()
	buf := make([]byte, 65536)
	for {
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		p.print(packet(from, buf[:n]), "match")
	}
}
