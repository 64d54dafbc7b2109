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

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
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
	udp, syn, kernel    bool
}

func (r *listenFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&r.listen, "listen", "", "address to listen on")
	fs.BoolVar(&r.udp, "udp", false, "with -listen: UDP datagrams")
	fs.StringVar(&r.count, "count", "", "with -listen: exit after N connections or datagrams")
	fs.StringVar(&r.wait, "wait", "", "with -listen: how long to wait for a TCP client's first bytes")
	fs.BoolVar(&r.syn, "syn", false, "with -listen: match each client's SYN, not its first bytes")
	fs.BoolVar(&r.kernel, "kernel", false, "with -listen: filter in the kernel too")
}

// listenConfig is what -listen asks for; addr is "" without it.
type listenConfig struct {
	addr   string
	udp    bool
	syn    bool // match the SYN
	kernel bool // -udp: attach the filter to the socket
	count  int  // 0 for no limit
	wait   time.Duration
}

// parseListen checks the -listen flags into cfg.listen.
func parseListen(r *listenFlags, set map[string]bool, cfg *config) error {
	if !set["listen"] {
		for _, name := range []string{"udp", "count", "wait", "syn", "kernel"} {
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
	cfg.listen = listenConfig{addr: r.listen, udp: r.udp, syn: r.syn, kernel: r.kernel, wait: defaultListenWait}
	if r.syn && (r.udp || set["wait"]) {
		return errors.New("-syn matches a TCP client's SYN: it takes neither -udp nor -wait")
	}
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
	p.printLine(fmt.Sprintf("%v %s: %s", pkt, quotePayload(pkt.Payload), verdict), verdict)
}

// printLine prints a verdict's line, unless the limit was reached before.
func (p *printer) printLine(line, verdict string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.limit > 0 && p.seen >= p.limit {
		return
	}
	p.seen++
	if verdict == "match" {
		p.matched++
	}
	fmt.Fprintln(p.w, line)
	if p.limit > 0 && p.seen >= p.limit {
		p.done()
	}
}

// kernelStatus says, for -kernel, whether the filter was attached to the
// socket and what that means.
func kernelStatus(asked bool, status func() (bool, string)) string {
	if !asked {
		return ""
	}
	switch attached, why := status(); {
	case attached && why == "":
		return "; the kernel drops what cannot match, which is then not printed"
	case attached:
		return "; the kernel drops some of what cannot match (" + why + "), which is then not printed"
	default:
		return "; no kernel filter: " + why
	}
}

// printSYN prints a verdict on pkt, with the headers of the real SYN the
// verdict was on, when there was one.
func (p *printer) printSYN(pkt bpfmatch.FakePacket, syn []byte, verdict string) {
	if syn == nil {
		p.print(pkt, verdict)
		return
	}
	p.printLine(fmt.Sprintf("%v %s (%s): %s", pkt, quotePayload(pkt.Payload), describeSYN(syn), verdict), verdict)
}

// describeSYN describes the IP and TCP headers of a real SYN as tcpdump
// -v would, in part: TTL, window, options.
func describeSYN(syn []byte) string {
	first := layers.LayerTypeIPv4
	if len(syn) > 0 && syn[0]>>4 == 6 {
		first = layers.LayerTypeIPv6
	}
	pkt := gopacket.NewPacket(syn, first, gopacket.Default)
	var parts []string
	switch ip := pkt.NetworkLayer().(type) {
	case *layers.IPv4:
		parts = append(parts, fmt.Sprintf("ttl %d", ip.TTL))
	case *layers.IPv6:
		parts = append(parts, fmt.Sprintf("hlim %d", ip.HopLimit))
	}
	if tcp, ok := pkt.TransportLayer().(*layers.TCP); ok {
		parts = append(parts, fmt.Sprintf("win %d", tcp.Window))
		var opts []string
		for _, o := range tcp.Options {
			switch o.OptionType {
			case layers.TCPOptionKindMSS:
				if len(o.OptionData) == 2 {
					opts = append(opts, fmt.Sprintf("mss %d", uint16(o.OptionData[0])<<8|uint16(o.OptionData[1])))
				}
			case layers.TCPOptionKindWindowScale:
				if len(o.OptionData) == 1 {
					opts = append(opts, fmt.Sprintf("wscale %d", o.OptionData[0]))
				}
			case layers.TCPOptionKindSACKPermitted:
				opts = append(opts, "sackOK")
			case layers.TCPOptionKindTimestamps:
				opts = append(opts, "TS")
			case layers.TCPOptionKindNop, layers.TCPOptionKindEndList:
			default:
				opts = append(opts, o.OptionType.String())
			}
		}
		parts = append(parts, "options ["+strings.Join(opts, ",")+"]")
	}
	return "real SYN: " + strings.Join(parts, ", ")
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
	// Without Multipath TCP, which Go picks where the kernel allows it,
	// and on which Linux does not save SYNs.
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(ctx, "tcp", cfg.listen.addr)
	if err != nil {
		return err
	}
	opts := []bpfmatch.ListenerOption{bpfmatch.WithRejectFunc(func(r bpfmatch.Report) {
		switch {
		case errors.Is(r.Reason, bpfmatch.ErrRejected):
			if cfg.listen.syn {
				p.printSYN(r.Packet, r.SYN, "no match")
			} else {
				p.print(r.Packet, "no match")
			}
		case ctx.Err() == nil:
			fmt.Fprintf(stderr, "bpfmatch: connection from %v: %v\n", r.Remote, r.Reason)
		}
	})}
	if !cfg.listen.syn {
		opts = append(opts, bpfmatch.WithPayload(listenBytes, cfg.listen.wait))
	}
	if cfg.listen.kernel {
		opts = append(opts, bpfmatch.WithListenerKernelFilter())
	}
	l, err := bpfmatch.NewListener(ln, m, opts...)
	if err != nil {
		ln.Close()
		return err
	}
	what := fmt.Sprintf("deciding on up to %d bytes or what came in %v", listenBytes, cfg.listen.wait)
	if cfg.listen.syn {
		what = "deciding on each client's SYN"
	}
	syn := "the real SYN's headers (its TTL, with the first bytes)"
	if err := l.RealSYN(); err != nil {
		syn = fmt.Sprintf("fake headers (%v)", err)
	} else if cfg.listen.syn {
		syn = "the real SYN, options and all"
	}
	fmt.Fprintf(stderr, "bpfmatch: listening on tcp %v; %s; the filter sees %s%s\n", l.Addr(), what, syn, kernelStatus(cfg.listen.kernel, l.KernelFilter))
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
		var n int
		buf := make([]byte, listenBytes)
		if !cfg.listen.syn {
			c.SetReadDeadline(time.Now())
			n, _ = c.Read(buf)
		}
		c.Close()
		pkt, err := bpfmatch.FromAddrs(c.RemoteAddr(), c.LocalAddr(), buf[:n])
		if err != nil {
			fmt.Fprintf(stderr, "bpfmatch: %v\n", err)
			continue
		}
		if cfg.listen.syn {
			pkt.Flags = bpfmatch.SYN
		}
		p.print(pkt, "match")
	}
}

func listenUDP(ctx context.Context, cfg *config, m *bpfmatch.Matcher, p *printer, stderr io.Writer) error {
	inner, err := net.ListenPacket("udp", cfg.listen.addr)
	if err != nil {
		return err
	}
	opts := []bpfmatch.PacketConnOption{bpfmatch.WithDropFunc(func(r bpfmatch.Report) {
		if errors.Is(r.Reason, bpfmatch.ErrRejected) {
			p.print(r.Packet, "no match")
		} else {
			fmt.Fprintf(stderr, "bpfmatch: datagram from %v: %v\n", r.Remote, r.Reason)
		}
	})}
	if cfg.listen.kernel {
		opts = append(opts, bpfmatch.WithKernelFilter())
	}
	pc, err := bpfmatch.NewPacketConn(inner, m, opts...)
	if err != nil {
		inner.Close()
		return err
	}
	fmt.Fprintf(stderr, "bpfmatch: listening on udp %v%s\n", pc.LocalAddr(), kernelStatus(cfg.listen.kernel, pc.KernelFilter))
	go func() {
		<-ctx.Done()
		pc.Close()
	}()
	buf := make([]byte, 65536)
	for {
		// The packet as it matched: on Linux, with the address each
		// datagram was sent to, even on a socket bound to all of them.
		_, pkt, err := pc.ReadPacket(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		pkt.Src = netip.AddrPortFrom(pkt.Src.Addr().Unmap(), pkt.Src.Port())
		p.print(pkt, "match")
	}
}
