package bpfmatch

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"
)

// Errors a filtering Listener or Router reports for the connections it
// closes instead of handing out; the reasons given to the WithRejectFunc
// callback wrap them, for errors.Is.
var (
	// ErrRejected is the reason reported for a connection or a datagram
	// the filter did not match (or, for a Router, that no rule matched and
	// there is no default listener); the Report has the packet.
	ErrRejected = errors.New("bpfmatch: rejected by the filter")

	// ErrWaitExpired is the reason for a connection whose client had not
	// sent the bytes asked for by WithPayload when the wait expired, under
	// RejectOnTimeout.
	ErrWaitExpired = errors.New("bpfmatch: the client sent too few bytes before the wait expired")

	// ErrEvicted is the reason for a connection closed without being
	// decided because it was evicted: a new connection came when
	// WithMaxPending connections were being inspected and it had waited
	// longest for its bytes; it was then held, unread, until it was
	// closed (see WithMaxPending).
	ErrEvicted = errors.New("bpfmatch: evicted: the listener was inspecting as many connections as it may, and this one had waited longest for its first bytes")

	// ErrNotAccepted is the reason for a connection closed after it was
	// decided, because as many connections as WithMaxPending allows were
	// waiting for the Accept of its listener, and it had waited longest.
	ErrNotAccepted = errors.New("bpfmatch: not accepted: too many connections were waiting for Accept, and this one had waited longest")
)

// errDropped is the reason for connections closed because their listener
// was closed before they were handed out.
var errDropped = fmt.Errorf("bpfmatch: listener closed before the connection was accepted: %w", net.ErrClosed)

// Defaults of the listener options.
const (
	// DefaultPayloadBytes is how many bytes a Router reads before matching,
	// unless WithPayload says otherwise: enough for the magic numbers of
	// the usual protocols (a TLS record header, an HTTP method, an SSH
	// banner's "SSH-2.0-"), which their clients send at once.
	DefaultPayloadBytes = 16
	// DefaultPayloadWait is how long a payload-aware listener waits for the
	// bytes unless WithPayload says otherwise.
	DefaultPayloadWait = time.Second
	// DefaultMaxPending is how many connections a payload-aware listener
	// inspects at once unless WithMaxPending says otherwise.
	DefaultMaxPending = 128
	// MaxPayloadBytes is the most bytes WithPayload reads: the largest TCP
	// payload of one IPv4 packet.
	MaxPayloadBytes = 65495
)

// TimeoutPolicy says what a payload-aware listener does with a connection
// whose client has not sent all the bytes asked for when the wait expires.
type TimeoutPolicy int

const (
	// MatchOnTimeout matches the packet carrying what arrived, possibly
	// nothing. It is the default: it suits protocols whose server speaks
	// first (SMTP, FTP), whose clients send nothing until greeted, and
	// clients whose first message is shorter than the bytes asked for.
	MatchOnTimeout TimeoutPolicy = iota
	// RejectOnTimeout closes the connection and reports ErrWaitExpired.
	RejectOnTimeout
)

// A ListenerOption changes how NewListener or NewRouter treats connections.
type ListenerOption func(*listenerOptions)

type listenerOptions struct {
	payload    bool
	n          int
	wait       time.Duration
	policy     TimeoutPolicy
	maxPending int
	onReject   func(Report)
	kernel     bool
}

func newListenerOptions(opts []ListenerOption) listenerOptions {
	o := listenerOptions{n: DefaultPayloadBytes, wait: DefaultPayloadWait, maxPending: DefaultMaxPending}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// WithPayload makes a Listener decide on the first bytes the client sends
// rather than on the connection-open packet, and sets how many bytes a
// Listener or Router reads: it reads until it has n bytes, the client
// closes its side, or wait has passed since the connection was accepted,
// whichever comes first, then matches the data segment carrying them: a
// FakePacket from the remote address to the local one, flags PSH|ACK,
// those bytes as payload, window 65535, no TCP options, and the TTL (IPv6
// hop limit) of the client's real SYN on Linux where the kernel saved it
// (see Listener), else 64. Only the TTL is taken from the SYN, the field a
// data segment of the same connection shares with it: the SYN's flags,
// window and options are not a data segment's, and its TOS and IPv6 flow
// label, which a FakePacket does not carry, are 0. Choose n as the
// number of bytes the filters look at, so that connections are decided
// as soon as those bytes arrive; a larger n makes clients that send less
// wait for the timeout. A filter whose
// verdict cannot depend on the payload (see Flow.Fixed), such as one on
// addresses and ports only, decides at once without reading.
//
// The bytes are the stream's first, however the client wrote them and
// however the network cut them into segments: reads are repeated until n
// bytes have come, so a client that writes "GE", then "T / HTTP/1.1",
// matches a filter on "GET " as one that writes it at once. (MatchConn and
// Flow.Match, by contrast, match the bytes of one read as they are given.)
//
// libpcap's tcp[] reads IPv4 packets only: for a filter on the payload of
// both IPv4 and IPv6 connections, as on a dual-stack port, write it with
// PayloadPrefix, or with ip6[] for IPv6, as in "ip6[40 + ((ip6[52] &
// 0xf0) >> 2):4] = 0x47455420" for "GET ".
//
// If the client closes or resets the connection first, what arrived is
// matched; the connection handed out reads those bytes, then the end of
// the stream or the error.
//
// n below 1 means DefaultPayloadBytes and above MaxPayloadBytes means
// MaxPayloadBytes; wait of 0 or less means DefaultPayloadWait. What
// happens at the timeout is WithTimeoutPolicy's choice. The bytes are
// read into a buffer that starts small and grows as they arrive, so that
// a large n costs clients that send little nothing more; WithMaxPending
// says how many connections are inspected at once and what happens to
// those that wait too long under a flood.
func WithPayload(n int, wait time.Duration) ListenerOption {
	return func(o *listenerOptions) {
		o.payload = true
		o.n = min(n, MaxPayloadBytes)
		if n < 1 {
			o.n = DefaultPayloadBytes
		}
		o.wait = wait
		if wait <= 0 {
			o.wait = DefaultPayloadWait
		}
	}
}

// WithTimeoutPolicy sets what a payload-aware listener or a Router does
// when the wait expires before the bytes asked for have arrived; the
// default is MatchOnTimeout. Values other than the two constants mean
// MatchOnTimeout.
func WithTimeoutPolicy(p TimeoutPolicy) ListenerOption {
	return func(o *listenerOptions) { o.policy = p }
}

// WithMaxPending bounds the connections a payload-aware listener or a
// Router inspects at once, so that clients who connect and send nothing
// cannot exhaust goroutines, memory or file descriptors, nor keep others
// out. n below 1 means DefaultMaxPending.
//
// At most n connections are inspected at once, each in a goroutine of its
// own reading into a buffer that starts at 512 bytes (or WithPayload's n
// if smaller) and doubles as bytes arrive. The listener never stops
// accepting from the inner listener, so that clients do not queue in the
// kernel's backlog behind idle ones: when a connection arrives while n are
// being inspected, the one that has waited longest for its first bytes
// (at least 5 ms) is evicted, and the new one takes its goroutine. An
// evicted connection is held open, unread and without a goroutine, so that
// its client, if an attacker, does not learn of it and come back at once:
// it is inspected again when a goroutine is free before its wait expires
// (then decided as any other), or else closed between one and two waits
// after it was accepted, at random, and reported with ErrEvicted. At most
// 64n connections are held; beyond, or when the process has no file
// descriptor left, the one due to be released first is closed early.
//
// Once decided, a connection waits for the Accept of its listener (for a
// Router, of its rule's or the default listener) in a queue of that
// listener's, without a goroutine. Each queue holds at most 4n
// connections; when a decided connection finds its queue full, the one
// that has waited longest there is closed and reported with
// ErrNotAccepted. A listener nobody accepts from thus holds up no other.
//
// So a listener or a Router runs at most 2n goroutines (n inspecting, and
// up to n ending after their eviction) besides its accept loop and a timer
// goroutine, and holds at most n + 64n connections being inspected or
// held, plus 4n for each listener's queue. With the default n, 128, an
// idle connection costs its file descriptor and a few KiB once held, and
// clients that send their first bytes at once are served in the time of
// the inspections ahead of them, not of the idle connections: on loopback,
// 5,000 idle connections renewed as they are closed delayed 100 clients by
// under 100 ms at the 99th percentile. Clients that connect faster than
// the listener inspects, or more than 64n idle connections, still fill the
// kernel's backlog; so do bursts of connections from a few thousand
// clients at once. Clients of protocols where the server speaks first,
// decided when their wait expires under MatchOnTimeout, may be evicted
// under such a flood.
func WithMaxPending(n int) ListenerOption {
	return func(o *listenerOptions) {
		o.maxPending = n
		if n < 1 {
			o.maxPending = DefaultMaxPending
		}
	}
}

// WithRejectFunc sets a function called with a Report of each connection
// closed instead of handed out: its client, the packet tested, and why
// (Report.Reason). The connection is already closed.
//
// f is called from the listener's goroutines, possibly concurrently, and
// holds up the inspection's goroutine (see WithMaxPending) or the accept
// loop while it runs; it should return quickly.
func WithRejectFunc(f func(Report)) ListenerOption {
	return func(o *listenerOptions) { o.onReject = f }
}

// WithListenerKernelFilter asks NewListener to attach the matcher's
// program, as a socket filter (SO_ATTACH_FILTER), to the inner listener's
// socket on Linux, so that connections that cannot match are dropped in
// the kernel, SYN and all, before they are accepted. Accept still matches
// what the kernel lets through exactly as without it.
//
// A listening socket's filter runs on every segment it receives, the
// final ACK of the handshake included, and the sockets it accepts inherit
// it; so a filter is offloaded only if its verdict is the same for every
// segment of a connection, whether the packet user space matches is the
// real SYN, a fake one or, with WithPayload, a data segment: the
// relocated program reads the IP addresses and the TCP ports and nothing
// else. A filter whose verdict depends on anything else (the payload, the
// length, the TCP flags, sequence numbers, window or options, the TTL,
// TOS, IP ID or flags, the IPv6 flow label) is not offloaded. Segments
// whose TCP header is not right after a bare IP header (IPv4 options, IPv6
// extension headers) are let through to user space. Accept detaches the
// filter from the connections it hands out (SO_DETACH_FILTER); what they
// inherited would be harmless anyway, as it accepts every segment of a
// connection it let in.
//
// Clients the kernel filter drops see no answer to their SYN: they resend
// it until their connect times out (about two minutes by default on
// Linux), where the Listener without it accepts their connection and
// closes it at once. They are not counted in Stats, and the reject
// function does not see them.
//
// Whether a filter was attached, and why not, is not an error of
// NewListener: Listener.KernelFilter reports it. The kernel takes no
// socket filter on a Multipath TCP listener, which Go's net.Listen makes
// by default on Linux: listen with a net.ListenConfig after
// SetMultipathTCP(false). Outside Linux, and on a listener without a
// SyscallConn method, the option does nothing but say so.
func WithListenerKernelFilter() ListenerOption {
	return func(o *listenerOptions) { o.kernel = true }
}

// ListenerStats counts the connections a Listener or a Router has
// accepted from its inner listener: each is counted in Accepted when it
// arrives, then once in Matched when Accept hands it out or in Rejected
// when it is closed and reported instead (WithRejectFunc says why).
// Pending is those in between: being inspected, held after an eviction,
// or waiting for Accept.
// Evicted and NotAccepted count those of Rejected closed to bound the
// connections held (see WithMaxPending), with ErrEvicted and
// ErrNotAccepted.
type ListenerStats struct {
	Accepted    uint64
	Matched     uint64
	Rejected    uint64
	Pending     uint64
	Evicted     uint64
	NotAccepted uint64
}

// counts are the counters of ListenerStats.
type counts struct {
	accepted, matched, rejected atomic.Uint64
	evicted, notAccepted        atomic.Uint64
}

func (c *counts) stats() ListenerStats {
	// Loaded in this order, an outcome is never counted before its
	// arrival, and Pending never underflows.
	e, na := c.evicted.Load(), c.notAccepted.Load()
	r, m := c.rejected.Load(), c.matched.Load()
	a := c.accepted.Load()
	return ListenerStats{Accepted: a, Matched: m, Rejected: r, Pending: a - m - r, Evicted: e, NotAccepted: na}
}

// Listener is a net.Listener that hands out only the connections a filter
// matches, closing the others. Make one with NewListener.
//
// By default it matches the connection-open packet, the client's SYN;
// Accept decides each connection as the inner listener returns it. On
// Linux, NewListener asks the kernel to save the SYN of each connection
// (the socket option TCP_SAVE_SYN on the inner listener, which must have a
// SyscallConn method as *net.TCPListener has, and so must the connections
// it returns), and the filter runs on the real SYN: its IP header (TTL,
// TOS, ID, flags) and TCP header (window, options) as the client sent
// them, framed for the filter's link type (for LinkEthernet, after an
// Ethernet header from DefaultSrcMAC to DefaultDstMAC, padded to 60
// bytes), its length on the wire that of the IP packet and link header.
// Where the kernel gives none (other systems; a listener without a socket
// or on which the option is refused, as Go's default Multipath TCP
// listener, see RealSYN; SYNs the kernel answered with a SYN cookie), the
// filter runs on a fake SYN instead: from the remote address to the local
// one, flags SYN, no options, window 65535, TTL 64. The Report of a
// rejected connection says which (Report.SYN).
//
// With WithPayload it matches the first bytes the client sends, in a fake
// data segment (see WithPayload) whose TTL is the real SYN's where the
// kernel saved it: each connection is inspected in its own
// goroutine, and Accept returns the first connection whose verdict is
// ready, so slow or silent clients do not hold up the others. It never
// stops accepting: when WithMaxPending connections are being inspected,
// the one that has waited longest for its bytes is evicted to make room
// (held unread, then closed and reported with ErrEvicted unless there is
// room again before its wait expires), and when too many wait for Accept,
// the oldest of them is closed (ErrNotAccepted). WithMaxPending states the
// bounds on goroutines and connections that follow. Connections so handed out
// read the inspected bytes first, then the rest of the stream, with no
// read deadline (the one set for the inspection is cleared); they have the
// inner connection's CloseWrite method if it has one, and a NetConn method
// returning the inner connection (reading from that would skip the
// inspected bytes not read yet).
//
// The reject function of WithRejectFunc learns of the connections closed.
// Without WithPayload it is called by Accept, which goes on to the next
// connection, and WithTimeoutPolicy and WithMaxPending do not apply.
//
// With WithListenerKernelFilter, on Linux, a filter that reads only
// addresses and ports is also attached to the inner listener's socket,
// which drops the SYNs of connections that cannot match before they are
// accepted; KernelFilter reports whether it was and why not.
//
// The inner listener must listen on a TCP address: NewListener refuses
// another (a Unix socket listener, say), whose connections cannot be made
// into packets.
type Listener struct {
	inner  net.Listener
	m      *Matcher
	o      listenerOptions
	closed atomic.Bool
	counts counts // without WithPayload
	synErr error  // why the kernel does not save SYNs, nil if it does
	kernel kernelStatus

	// With WithPayload only.
	d *dispatcher
	q *queue
}

// NewListener returns a Listener handing out the connections of inner
// that m matches. It takes inner's place: closing it closes inner. With
// WithPayload, it starts accepting from inner at once, in a goroutine that
// Close stops. On Linux, it turns on TCP_SAVE_SYN on inner's socket (see
// Listener and RealSYN).
//
// It refuses a filter that would reject every connection for reading
// bytes the packet matched does not have: without WithPayload, any TCP
// payload (a SYN has none), or where the kernel gives the real SYN, bytes
// past its TCP header, options included; with WithPayload(n, wait), more
// than n payload bytes.
func NewListener(inner net.Listener, m *Matcher, opts ...ListenerOption) (*Listener, error) {
	if inner == nil {
		return nil, errors.New("bpfmatch: NewListener: the inner listener is nil")
	}
	if err := checkRuleMatcher(m); err != nil {
		return nil, inContext("NewListener", err)
	}
	if err := checkTCPListener(inner); err != nil {
		return nil, inContext("NewListener", err)
	}
	l := &Listener{inner: inner, m: m, o: newListenerOptions(opts)}
	l.synErr = saveSYN(inner)
	if err := checkPayloadReach(m, l.o.payload, l.o.n, l.synErr == nil); err != nil {
		return nil, inContext("NewListener", err)
	}
	if l.o.kernel {
		l.kernel = attachListenerFilter(inner, m)
	}
	if l.o.payload {
		l.q = newQueue()
		rules := []rule{{m: m, q: l.q}}
		l.d = newDispatcher(inner, l.o, true, func() ([]rule, *queue) { return rules, nil })
		l.d.synErr = l.synErr
		go l.d.serve()
	}
	return l, nil
}

// checkPayloadReach checks that m's reads of a TCP segment's payload stay
// within the n bytes a payload-aware listener reads, or, without
// WithPayload, that it reads none: a SYN carries no payload, and a load
// past the bytes there are rejects the packet, so such a filter would
// turn away every connection its reads reach. With realSYN, the filter
// may read the real SYN's TCP options, after its header's first 20 bytes,
// but not past the header its data offset gives.
func checkPayloadReach(m *Matcher, payload bool, n int, realSYN bool) error {
	var reach int
	if !payload && realSYN {
		reach = payloadReach(m, true)
	} else {
		reach = payloadReach(m, false)
	}
	switch {
	case reach == 0:
		return nil
	case !payload:
		return fmt.Errorf("the filter %q reads payload bytes (%d), which the SYN a Listener matches without WithPayload does not carry: it would reject every connection those reads reach; add WithPayload(%d, wait) to match the client's first bytes", m.expr, reach, reach)
	case reach > n:
		return fmt.Errorf("the filter %q reads %d payload bytes, but only %d are read before matching: it would reject every connection those reads reach; use WithPayload(%d, wait)", m.expr, reach, n, reach)
	}
	return nil
}

// maxTCPOptions is the most bytes of options a TCP header holds.
const maxTCPOptions = 40

// payloadReach returns how many payload bytes m's program may read of an
// IPv4 or IPv6 TCP segment, as its residual programs for those shapes
// (specialise) load them: 0 when none. A load the shape leaves indexed by
// an unknown register may read anything; it is not counted.
//
// With options, the segment's TCP header may carry up to maxTCPOptions
// bytes of options: the shapes' headers, which have none, are given the
// largest data offset, so that the loads the program places by it land
// past the options, and the bytes counted are those past the options.
func payloadReach(m *Matcher, options bool) int {
	if m.prog == nil || m.link != LinkEthernet && m.link != LinkRaw {
		return 0
	}
	li := 0
	if m.link == LinkRaw {
		li = 1
	}
	reach := 0
	for _, s := range []int{0, 1} { // IPv4 and IPv6 TCP, no VLAN
		t := &shapeTemplates()[li][s]
		if !t.ok {
			continue
		}
		b := t.h.b
		hdr := uint64(t.h.n)
		if options {
			b[t.h.l4+12] = 0xf0 | b[t.h.l4+12]&0x0f
			hdr += maxTCPOptions
		}
		r, ok := specialise(m.prog, m.raw, b[:t.h.n], t.fixed, m.snap)
		if !ok {
			continue
		}
		for _, in := range r.raw {
			var end uint64
			switch in.Op {
			case bpfLdWAbs:
				end = uint64(in.K) + 4
			case bpfLdHAbs:
				end = uint64(in.K) + 2
			case bpfLdBAbs, bpfLdxMSH:
				end = uint64(in.K) + 1
			}
			if end > hdr {
				reach = max(reach, int(min(end-hdr, MaxPayloadBytes+1)))
			}
		}
	}
	return reach
}

// checkRuleMatcher checks that m can match the fake packets of connections.
func checkRuleMatcher(m *Matcher) error {
	if m == nil {
		return errors.New("the matcher is nil")
	}
	if m.link != LinkEthernet && m.link != LinkRaw {
		return fmt.Errorf("%w: %q is compiled for %v", ErrLinkType, m.expr, m.link)
	}
	return nil
}

// checkTCPListener checks that inner listens on a TCP address: fake packets
// are made of its connections' TCP addresses.
func checkTCPListener(inner net.Listener) error {
	a := inner.Addr()
	if _, ok := a.(*net.TCPAddr); ok {
		return nil
	}
	network := "no network"
	if a != nil {
		network = a.Network()
	}
	return fmt.Errorf("%w: the listener's address %v (%s) is not a TCP address: its connections cannot be made into packets; filter a TCP listener", ErrAddress, a, network)
}

// Accept waits for and returns the next connection the filter matches.
// Errors of the inner listener's Accept are returned as they are,
// temporary ones included, so that servers can retry; after Close, the
// error satisfies errors.Is(err, net.ErrClosed).
func (l *Listener) Accept() (net.Conn, error) {
	if l.d != nil {
		c, err := l.d.accept(l.q)
		if err == nil && l.kernel.attached {
			detachKernelFilter(c)
		}
		return c, err
	}
	for {
		c, err := l.inner.Accept()
		if err != nil {
			if l.closed.Load() {
				return nil, closedErr(l.inner)
			}
			return nil, err
		}
		l.counts.accepted.Add(1)
		var frame, syn []byte
		var wire int
		if l.synErr == nil {
			frame, syn, wire = realSYN(c, l.m.link)
		}
		p, err := FromAddrs(c.RemoteAddr(), c.LocalAddr(), nil)
		p.Flags = SYN
		if syn != nil {
			p.TTL = synTTL(syn)
		}
		ok, tested := false, false
		switch {
		case syn != nil:
			ok, err = l.m.MatchFrame(frame, wire)
			tested = err == nil
		case err == nil:
			ok, err = l.m.Match(p)
			tested = err == nil
		}
		if ok {
			l.counts.matched.Add(1)
			if l.kernel.attached {
				detachKernelFilter(c)
			}
			return c, nil
		}
		if err == nil {
			err = ErrRejected
		}
		c.Close()
		l.counts.rejected.Add(1)
		report(l.o.onReject, c, p, syn, tested, err)
	}
}

// RealSYN reports whether the kernel was told to save the SYNs of the
// inner listener's connections, which the filter then sees (see
// Listener): nil if it was, else why not. Even then, a connection whose
// SYN the kernel did not save (one answered with a SYN cookie under a
// flood) is matched with a fake SYN; Report.SYN tells, connection by
// connection. Outside Linux it always returns an error.
func (l *Listener) RealSYN() error { return l.synErr }

// KernelFilter reports whether WithListenerKernelFilter attached a filter
// to the inner listener's socket and, when it did not or when it filters
// only one family of a dual-stack socket, why (empty when a filter covers
// all the socket receives). Without the option it reports false and an
// empty reason.
func (l *Listener) KernelFilter() (attached bool, reason string) {
	return l.kernel.attached, l.kernel.reason
}

// Stats returns the counts of connections so far.
func (l *Listener) Stats() ListenerStats {
	if l.d != nil {
		return l.d.counts.stats()
	}
	return l.counts.stats()
}

// Close closes the inner listener, which unblocks Accept, and closes the
// connections being inspected or waiting to be accepted.
func (l *Listener) Close() error {
	if l.d != nil {
		return l.d.close()
	}
	if l.closed.Swap(true) {
		return closedErr(l.inner)
	}
	return l.inner.Close()
}

// Addr returns the inner listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// closedErr is the error of Accept on a closed listener, as the net
// package makes it.
func closedErr(inner net.Listener) error {
	a := inner.Addr()
	e := &net.OpError{Op: "accept", Err: net.ErrClosed, Addr: a}
	if a != nil {
		e.Net = a.Network()
	}
	return e
}

// report calls f, if set, with the report of c.
func report(f func(Report), c net.Conn, p FakePacket, syn []byte, tested bool, reason error) {
	if f != nil {
		f(Report{Remote: remoteAddrPort(c), Packet: p, SYN: syn, Tested: tested, Reason: reason})
	}
}
