package bpfmatch

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Errors a filtering Listener or Router reports for the connections it
// closes instead of handing out; the reasons given to the WithRejectFunc
// callback wrap them, for errors.Is.
var (
	// ErrRejected is the reason for a connection whose packet the filter
	// did not match (or, for a Router, that no rule matched and there is no
	// default listener). The reason reported is a *RejectError.
	ErrRejected = errors.New("bpfmatch: rejected by the filter")

	// ErrWaitExpired is the reason for a connection whose client had not
	// sent the bytes asked for by WithPayload when the wait expired, under
	// RejectOnTimeout.
	ErrWaitExpired = errors.New("bpfmatch: the client sent too few bytes before the wait expired")
)

// errDropped is the reason for connections closed because their listener
// was closed before they were handed out.
var errDropped = fmt.Errorf("bpfmatch: listener closed before the connection was accepted: %w", net.ErrClosed)

// RejectError is the reason reported for a connection the filter did not
// match: the packet it was tested with, a SYN or the first data from the
// client. errors.Is(err, ErrRejected) is true of it.
type RejectError struct {
	Packet FakePacket
}

// Error describes the packet that did not match.
func (e *RejectError) Error() string {
	return fmt.Sprintf("bpfmatch: %v does not match the filter", e.Packet)
}

// Unwrap returns ErrRejected.
func (e *RejectError) Unwrap() error { return ErrRejected }

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
	// holds at once unless WithMaxPending says otherwise.
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
	onReject   func(remote net.Addr, reason error)
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
// whichever comes first, then matches the data segment carrying them (the
// packet from the remote address to the local one, flags PSH|ACK, those
// bytes as payload). Choose n as the number of bytes the filters look at,
// so that connections are decided as soon as those bytes arrive; a larger
// n makes clients that send less wait for the timeout. A filter whose
// verdict cannot depend on the payload (see Flow.Fixed), such as one on
// addresses and ports only, decides at once without reading.
//
// libpcap's tcp[] reads IPv4 packets only: a filter on the payload of IPv6
// connections uses ip6[], as in "ip6[40 + ((ip6[52] & 0xf0) >> 2):4] =
// 0x47455420" for "GET " (without IPv6 extension headers).
//
// If the client closes or resets the connection first, what arrived is
// matched; the connection handed out reads those bytes, then the end of
// the stream or the error.
//
// n below 1 means DefaultPayloadBytes and above MaxPayloadBytes means
// MaxPayloadBytes; wait of 0 or less means DefaultPayloadWait. What
// happens at the timeout is WithTimeoutPolicy's choice.
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
// Router holds at once: those being inspected and those decided but not
// yet returned by Accept. When the bound is reached, it stops accepting
// from the inner listener until one of them is handed out or closed; new
// clients then wait in the kernel's backlog. n below 1 means
// DefaultMaxPending. Each connection held costs a goroutine and its
// WithPayload buffer.
func WithMaxPending(n int) ListenerOption {
	return func(o *listenerOptions) {
		o.maxPending = n
		if n < 1 {
			o.maxPending = DefaultMaxPending
		}
	}
}

// WithRejectFunc sets a function called with the remote address of each
// connection closed instead of handed out, and the reason: a *RejectError
// (errors.Is ErrRejected) if the filter did not match, an error wrapping
// ErrWaitExpired under RejectOnTimeout, one wrapping net.ErrClosed if its
// listener was closed first, or the error that kept the packet from being
// built or the bytes from being read. The connection is already closed.
//
// f is called from the listener's goroutines, possibly concurrently, and
// holds up the connection's slot (see WithMaxPending) while it runs; it
// should return quickly.
func WithRejectFunc(f func(remote net.Addr, reason error)) ListenerOption {
	return func(o *listenerOptions) { o.onReject = f }
}

// Listener is a net.Listener that hands out only the connections a filter
// matches, closing the others. Make one with NewListener.
//
// By default it matches the connection-open packet: a TCP SYN from the
// remote address to the local one, without payload; Accept decides each
// connection as the inner listener returns it. With WithPayload it matches
// the first bytes the client sends: each connection is inspected in its own
// goroutine, and Accept returns the first connection whose verdict is
// ready, so slow or silent clients do not hold up the others; at most
// WithMaxPending connections are held at once. Connections so handed out
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
// Connections whose addresses are not TCP addresses (a Unix socket
// listener, say) cannot be turned into packets and are rejected.
type Listener struct {
	inner  net.Listener
	m      *Matcher
	o      listenerOptions
	closed atomic.Bool

	// With WithPayload only.
	d *dispatcher
	q *queue
}

// NewListener returns a Listener handing out the connections of inner
// that m matches. It takes inner's place: closing it closes inner. With
// WithPayload, it starts accepting from inner at once, in a goroutine that
// Close stops.
func NewListener(inner net.Listener, m *Matcher, opts ...ListenerOption) (*Listener, error) {
	if inner == nil {
		return nil, errors.New("bpfmatch: NewListener: the inner listener is nil")
	}
	if err := checkRuleMatcher(m); err != nil {
		return nil, fmt.Errorf("bpfmatch: NewListener: %w", err)
	}
	l := &Listener{inner: inner, m: m, o: newListenerOptions(opts)}
	if l.o.payload {
		l.q = newQueue()
		rules := []rule{{m: m, q: l.q}}
		l.d = newDispatcher(inner, l.o, true, func() ([]rule, *queue) { return rules, nil })
		go l.d.serve()
	}
	return l, nil
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

// Accept waits for and returns the next connection the filter matches.
// Errors of the inner listener's Accept are returned as they are,
// temporary ones included, so that servers can retry; after Close, the
// error satisfies errors.Is(err, net.ErrClosed).
func (l *Listener) Accept() (net.Conn, error) {
	if l.d != nil {
		return l.d.accept(l.q)
	}
	for {
		c, err := l.inner.Accept()
		if err != nil {
			if l.closed.Load() {
				return nil, closedErr(l.inner)
			}
			return nil, err
		}
		p, err := FromAddrs(c.RemoteAddr(), c.LocalAddr(), nil)
		ok := false
		if err == nil {
			p.Flags = SYN
			ok, err = l.m.Match(p)
		}
		if ok {
			return c, nil
		}
		if err == nil {
			err = &RejectError{Packet: p}
		}
		c.Close()
		report(l.o.onReject, c, err)
	}
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

func report(f func(net.Addr, error), c net.Conn, reason error) {
	if f != nil {
		f(c.RemoteAddr(), reason)
	}
}

// A Router hands the connections of one listener to sub-listeners by
// filter: the first rule whose filter matches the first bytes the client
// sends gets the connection, else the default listener, else the
// connection is closed and reported. Rules read the first bytes as
// WithPayload describes (DefaultPayloadBytes within DefaultPayloadWait
// unless told otherwise), each connection in its own goroutine; rules
// whose verdict cannot depend on the payload are decided without reading,
// and if the first rules are such, the connection may be routed before
// anything is read. Make one with NewRouter, add rules with Listen, then
// run Serve.
//
// Connections wait for their sub-listener's Accept holding a slot (see
// WithMaxPending): a sub-listener that nobody accepts from eventually
// stops the router; close it instead, and its connections are closed and
// reported as they come.
type Router struct {
	d     *dispatcher
	mu    sync.Mutex             // serialises changes to rules
	rules atomic.Pointer[[]rule] // copied on write
	def   atomic.Pointer[queue]
	defL  *routeListener
	serve atomic.Bool
}

type rule struct {
	m *Matcher
	q *queue
}

// NewRouter returns a Router for the connections of inner, which it takes
// over: closing the router closes inner. Options WithPayload,
// WithTimeoutPolicy, WithMaxPending and WithRejectFunc apply to all rules.
func NewRouter(inner net.Listener, opts ...ListenerOption) *Router {
	if inner == nil {
		// Serve then fails, and the sub-listeners with it.
		inner = nilListener{}
	}
	r := &Router{}
	r.rules.Store(new([]rule))
	o := newListenerOptions(opts)
	o.payload = true
	r.d = newDispatcher(inner, o, false, func() ([]rule, *queue) { return *r.rules.Load(), r.def.Load() })
	return r
}

// Listen compiles expr with opts and adds a rule after the existing ones:
// connections it matches, and no earlier rule does, go to the listener
// returned. Closing that listener does not close the router; the
// connections of the rule are closed from then on.
func (r *Router) Listen(expr string, opts ...Option) (net.Listener, error) {
	m, err := Compile(expr, opts...)
	if err != nil {
		return nil, err
	}
	return r.ListenMatcher(m)
}

// ListenMatcher is Listen for an expression already compiled.
func (r *Router) ListenMatcher(m *Matcher) (net.Listener, error) {
	if err := checkRuleMatcher(m); err != nil {
		return nil, fmt.Errorf("bpfmatch: Router.ListenMatcher: %w", err)
	}
	if r.d.isClosed() {
		return nil, fmt.Errorf("bpfmatch: Router.ListenMatcher: %w", r.d.closedErr())
	}
	l := &routeListener{d: r.d, q: newQueue()}
	r.mu.Lock()
	rules := append(append([]rule(nil), *r.rules.Load()...), rule{m: m, q: l.q})
	r.rules.Store(&rules)
	r.mu.Unlock()
	return l, nil
}

// Default returns the listener of the connections no rule matches; each
// call returns the same one. Until it is first called, such connections
// are closed and reported with a *RejectError.
func (r *Router) Default() net.Listener {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.defL == nil {
		r.defL = &routeListener{d: r.d, q: newQueue()}
		r.def.Store(r.defL.q)
	}
	return r.defL
}

// Serve accepts connections from the inner listener and routes them until
// the inner listener fails or the router is closed, and returns why: the
// inner listener's error, or after Close an error satisfying
// errors.Is(err, net.ErrClosed). The sub-listeners' Accept returns the
// same error from then on. Temporary errors are retried after a pause
// growing from 5 ms to 1 s, as net/http's server does. Serve may be called
// once.
func (r *Router) Serve() error {
	if r.serve.Swap(true) {
		return errors.New("bpfmatch: Router.Serve called twice")
	}
	return r.d.serve()
}

// Close closes the inner listener, which ends Serve, and the sub-listeners,
// and closes the connections not yet handed out.
func (r *Router) Close() error {
	return r.d.close()
}

// Addr returns the inner listener's address.
func (r *Router) Addr() net.Addr { return r.d.inner.Addr() }

// nilListener stands for the nil inner listener of a Router.
type nilListener struct{}

func (nilListener) Accept() (net.Conn, error) {
	return nil, errors.New("bpfmatch: the Router's inner listener is nil")
}
func (nilListener) Close() error   { return nil }
func (nilListener) Addr() net.Addr { return nil }

// routeListener is a Router's sub-listener.
type routeListener struct {
	d *dispatcher
	q *queue
}

func (l *routeListener) Accept() (net.Conn, error) { return l.d.accept(l.q) }

func (l *routeListener) Close() error {
	if !l.q.close() {
		return closedErr(l.d.inner)
	}
	return nil
}

func (l *routeListener) Addr() net.Addr { return l.d.inner.Addr() }

// queue hands decided connections to the Accept of one listener. It is
// unbuffered: each connection waits in its own goroutine, and the channel
// serves the waiting senders in order.
type queue struct {
	ch     chan *conn
	closed chan struct{}
	once   sync.Once
}

func newQueue() *queue {
	return &queue{ch: make(chan *conn), closed: make(chan struct{})}
}

// close closes q and reports whether this call did.
func (q *queue) close() (did bool) {
	q.once.Do(func() {
		close(q.closed)
		did = true
	})
	return did
}

// dispatcher runs the accept loop of a payload-aware Listener or a Router:
// it accepts connections, inspects each in its own goroutine, and hands
// them to the queue route chooses.
type dispatcher struct {
	inner net.Listener
	o     listenerOptions
	// rules returns the rules in order, and the default queue or nil.
	rules func() ([]rule, *queue)
	// forward passes temporary errors of the inner Accept to the caller of
	// Accept (a Listener) rather than retrying them (a Router).
	forward bool
	errs    chan error

	slots   chan struct{} // one per connection held
	done    chan struct{} // closed by close
	stopped chan struct{} // closed when serve ends on an error of inner
	stopErr error         // why; written before stopped is closed

	mu        sync.Mutex
	closed    bool
	pending   map[net.Conn]struct{} // accepted, not handed out: closed by close
	closeOnce sync.Once
	closeErr  error
}

func newDispatcher(inner net.Listener, o listenerOptions, forward bool, rules func() ([]rule, *queue)) *dispatcher {
	return &dispatcher{
		inner:   inner,
		o:       o,
		rules:   rules,
		forward: forward,
		errs:    make(chan error),
		slots:   make(chan struct{}, o.maxPending),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
		pending: make(map[net.Conn]struct{}),
	}
}

func (d *dispatcher) isClosed() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

func (d *dispatcher) closedErr() error { return closedErr(d.inner) }

// close closes the inner listener and the connections not handed out; a
// second call returns the error of Accept on a closed listener, as the net
// package's listeners do.
func (d *dispatcher) close() error {
	first := false
	d.closeOnce.Do(func() {
		first = true
		d.mu.Lock()
		d.closed = true
		pending := d.pending
		d.pending = nil
		d.mu.Unlock()
		close(d.done)
		d.closeErr = d.inner.Close()
		// Closing unblocks the inspections' reads; they report their
		// connections themselves, seeing done closed.
		for c := range pending {
			c.Close()
		}
	})
	if !first {
		return d.closedErr()
	}
	return d.closeErr
}

// track records c as held, unless the dispatcher is closed.
func (d *dispatcher) track(c net.Conn) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	d.pending[c] = struct{}{}
	return true
}

// untrack forgets c, unless the dispatcher is closed, in which case close
// has closed or will close it.
func (d *dispatcher) untrack(c net.Conn) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	delete(d.pending, c)
	return true
}

// serve is the accept loop. It takes a slot before each Accept of the
// inner listener, so that at most maxPending connections are held.
func (d *dispatcher) serve() error {
	var pause time.Duration
	for {
		select {
		case d.slots <- struct{}{}:
		case <-d.done:
			return d.closedErr()
		}
		c, err := d.inner.Accept()
		if err != nil {
			<-d.slots
			if d.isClosed() {
				return d.closedErr()
			}
			if !isTemporary(err) {
				d.stopErr = err
				close(d.stopped)
				return err
			}
			if d.forward {
				// The caller of Accept sees the error and paces the retries.
				select {
				case d.errs <- err:
				case <-d.done:
					return d.closedErr()
				}
				continue
			}
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			t := time.NewTimer(pause)
			select {
			case <-t.C:
			case <-d.done:
				t.Stop()
				return d.closedErr()
			}
			continue
		}
		pause = 0
		if !d.track(c) {
			c.Close()
			<-d.slots
			return d.closedErr()
		}
		go d.inspect(c)
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// inspect decides c, reading its first bytes if the verdict depends on
// them, and hands it to the queue of the first rule that matches (or the
// default queue) or closes it. It holds c's slot until then.
func (d *dispatcher) inspect(c net.Conn) {
	defer func() { <-d.slots }()
	q, payload, readErr, err := d.decide(c)
	if err != nil {
		d.reject(c, err)
		return
	}
	bc := newConn(c, payload, readErr)
	select {
	case q.ch <- bc:
	case <-q.closed:
		d.reject(c, errDropped)
	case <-d.done:
		d.reject(c, errDropped)
	}
}

// decide returns the queue c goes to, the bytes read from it and the error
// that ended the reading, or the reason to reject it.
func (d *dispatcher) decide(c net.Conn) (q *queue, payload []byte, readErr, err error) {
	p, err := FromAddrs(c.RemoteAddr(), c.LocalAddr(), nil)
	if err != nil {
		return nil, nil, nil, err
	}
	rules, def := d.rules()
	// Rules whose verdict cannot depend on the payload, as the program's
	// reads show, are decided without reading: address and port filters
	// take no time, even for clients that wait for the server to speak.
	i := 0
	for ; i < len(rules); i++ {
		fl, err := rules[i].m.NewFlow(p)
		if err != nil {
			return nil, nil, nil, err
		}
		fixed, match := fl.Fixed()
		if !fixed {
			break
		}
		if match {
			return rules[i].q, nil, nil, nil
		}
	}
	if i < len(rules) {
		if payload, readErr, err = d.read(c); err != nil {
			return nil, nil, nil, err
		}
		p.Payload = payload
		for ; i < len(rules); i++ {
			ok, err := rules[i].m.Match(p)
			if err != nil {
				return nil, nil, nil, err
			}
			if ok {
				return rules[i].q, payload, readErr, nil
			}
		}
	}
	if def != nil {
		return def, payload, readErr, nil
	}
	return nil, nil, nil, &RejectError{Packet: p}
}

// reject closes c and reports it; the reason of a connection closed by
// close is errDropped whatever happened to it after.
func (d *dispatcher) reject(c net.Conn, reason error) {
	if !d.untrack(c) {
		reason = errDropped
	}
	c.Close()
	report(d.o.onReject, c, reason)
}

// read reads what the client sends first, as WithPayload says. readErr is
// the error that ended the reading early, other than the deadline's, which
// the connection returns after the bytes read; err is the reason to
// reject the connection.
func (d *dispatcher) read(c net.Conn) (payload []byte, readErr, err error) {
	if err := c.SetReadDeadline(time.Now().Add(d.o.wait)); err != nil {
		if d.isClosed() {
			return nil, nil, errDropped
		}
		return nil, nil, fmt.Errorf("bpfmatch: setting a read deadline to inspect the connection: %w", err)
	}
	buf := make([]byte, d.o.n)
	n := 0
	for n < len(buf) && readErr == nil {
		var k int
		k, readErr = c.Read(buf[n:])
		n += k
	}
	// Hand the connection over as it was accepted: without a deadline.
	restoreErr := c.SetReadDeadline(time.Time{})
	switch {
	case d.isClosed():
		return nil, nil, errDropped
	case errors.Is(readErr, os.ErrDeadlineExceeded):
		if d.o.policy == RejectOnTimeout {
			return nil, nil, fmt.Errorf("%w: %d of %d bytes in %v", ErrWaitExpired, n, len(buf), d.o.wait)
		}
		readErr = nil
	case restoreErr != nil:
		return nil, nil, fmt.Errorf("bpfmatch: clearing the read deadline set to inspect the connection: %w", restoreErr)
	}
	// EOF or another error: the client closed or reset the connection;
	// match what arrived, and let the server see the error after it.
	return buf[:n:n], readErr, nil
}

// accept returns the next connection of q, or the reason there is none.
func (d *dispatcher) accept(q *queue) (net.Conn, error) {
	select {
	case c := <-q.ch:
		return d.handOut(c)
	case err := <-d.errs:
		return nil, err
	case <-q.closed:
	case <-d.done:
	case <-d.stopped:
		// Connections decided before inner failed are still served.
		select {
		case c := <-q.ch:
			return d.handOut(c)
		default:
		}
		if !d.isClosed() {
			return nil, d.stopErr
		}
	}
	return nil, d.closedErr()
}

func (d *dispatcher) handOut(c *conn) (net.Conn, error) {
	if !d.untrack(c.Conn) {
		c.Conn.Close()
		report(d.o.onReject, c.Conn, errDropped)
		return nil, d.closedErr()
	}
	return c.self, nil
}

// conn is a connection whose first bytes were read to decide it: Read
// returns them, then the error that stopped the reading early if any, then
// reads the inner connection.
type conn struct {
	net.Conn
	self net.Conn // conn, or closeWriteConn holding it

	mu      sync.Mutex
	buf     []byte
	err     error
	drained atomic.Bool // buf and err are spent: Read goes straight through
}

// closeWriteConn is a conn whose inner connection has CloseWrite.
type closeWriteConn struct {
	*conn
}

// CloseWrite shuts down the writing side of the inner connection.
func (c closeWriteConn) CloseWrite() error {
	return c.Conn.(interface{ CloseWrite() error }).CloseWrite()
}

func newConn(c net.Conn, buf []byte, err error) *conn {
	bc := &conn{Conn: c, buf: buf, err: err}
	bc.self = bc
	if _, ok := c.(interface{ CloseWrite() error }); ok {
		bc.self = closeWriteConn{bc}
	}
	if len(buf) == 0 && err == nil {
		bc.drained.Store(true)
	}
	return bc
}

// Read returns the bytes read to decide the connection first.
func (c *conn) Read(b []byte) (int, error) {
	if c.drained.Load() {
		return c.Conn.Read(b)
	}
	c.mu.Lock()
	if len(c.buf) > 0 {
		n := copy(b, c.buf)
		c.buf = c.buf[n:]
		if len(c.buf) == 0 {
			c.buf = nil // the buffer can go
			if c.err == nil {
				c.drained.Store(true)
			}
		}
		c.mu.Unlock()
		return n, nil
	}
	if err := c.err; err != nil {
		c.err = nil
		c.drained.Store(true)
		c.mu.Unlock()
		return 0, err
	}
	c.mu.Unlock()
	return c.Conn.Read(b)
}

// NetConn returns the inner connection. Reading from it skips the bytes
// read to decide the connection that Read has not returned yet.
func (c *conn) NetConn() net.Conn { return c.Conn }
