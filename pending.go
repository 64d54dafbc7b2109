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
	inner  net.Listener
	o      listenerOptions
	counts counts
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
		d.counts.accepted.Add(1)
		if !d.track(c) {
			d.counts.rejected.Add(1)
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
	q, p, tested, readErr, err := d.decide(c)
	if err != nil {
		d.reject(c, p, tested, err)
		return
	}
	bc := newConn(c, p, tested, readErr)
	select {
	case q.ch <- bc:
	case <-q.closed:
		d.reject(c, p, tested, errDropped)
	case <-d.done:
		d.reject(c, p, tested, errDropped)
	}
}

// decide returns the queue c goes to, its packet with the bytes read from
// it as payload, and the error that ended the reading; or the reason to
// reject it. tested reports whether a filter ran on p.
func (d *dispatcher) decide(c net.Conn) (q *queue, p FakePacket, tested bool, readErr, err error) {
	p, err = FromAddrs(c.RemoteAddr(), c.LocalAddr(), nil)
	if err != nil {
		return nil, p, false, nil, err
	}
	rules, def := d.rules()
	// Rules whose verdict cannot depend on the payload, as the program's
	// reads show, are decided without reading: address and port filters
	// take no time, even for clients that wait for the server to speak.
	i := 0
	for ; i < len(rules); i++ {
		fl, err := rules[i].m.NewFlow(p)
		if err != nil {
			return nil, p, tested, nil, err
		}
		fixed, match := fl.Fixed()
		if !fixed {
			break
		}
		tested = true
		if match {
			return rules[i].q, p, true, nil, nil
		}
	}
	if i < len(rules) {
		p.Payload, readErr, err = d.read(c)
		if err != nil {
			return nil, p, tested, nil, err
		}
		for ; i < len(rules); i++ {
			ok, err := rules[i].m.Match(p)
			if err != nil {
				return nil, p, tested, nil, err
			}
			tested = true
			if ok {
				return rules[i].q, p, true, readErr, nil
			}
		}
	}
	if def != nil {
		return def, p, tested, readErr, nil
	}
	return nil, p, tested, nil, ErrRejected
}

// reject closes c and reports it; the reason of a connection closed by
// close is errDropped whatever happened to it after.
func (d *dispatcher) reject(c net.Conn, p FakePacket, tested bool, reason error) {
	if !d.untrack(c) {
		reason = errDropped
	}
	c.Close()
	d.counts.rejected.Add(1)
	report(d.o.onReject, c, p, tested, reason)
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
		d.counts.rejected.Add(1)
		report(d.o.onReject, c.Conn, c.p, c.tested, errDropped)
		return nil, d.closedErr()
	}
	d.counts.matched.Add(1)
	c.p = FakePacket{} // the payload is the connection's to read now
	return c.self, nil
}

// conn is a connection whose first bytes were read to decide it: Read
// returns them, then the error that stopped the reading early if any, then
// reads the inner connection.
type conn struct {
	net.Conn
	self   net.Conn   // conn, or closeWriteConn holding it
	p      FakePacket // the packet matched, until handed out
	tested bool       // whether a filter ran on p

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

func newConn(c net.Conn, p FakePacket, tested bool, err error) *conn {
	buf := p.Payload
	bc := &conn{Conn: c, p: p, tested: tested, buf: buf, err: err}
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
