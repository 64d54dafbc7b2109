package bpfmatch

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
)

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
// Each sub-listener (and the default listener) has a queue of its own for
// the connections waiting for its Accept, without a goroutine each: at
// most 4 × WithMaxPending wait, and when one more comes the one that has
// waited longest is closed and reported with ErrNotAccepted, so that a
// listener nobody accepts from, or accepts slowly from, holds up no other.
// Closing a sub-listener closes its waiting connections, and those routed
// to it afterwards, and reports them. The inspections are bounded, and
// idle connections evicted, as for a Listener: WithMaxPending states the
// bounds on goroutines and connections.
//
// Rules match the packet WithPayload describes: a fake data segment,
// whose TTL or hop limit is that of the client's real SYN on Linux where
// the kernel saved it (see RealSYN and Listener).
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
// On Linux, it turns on TCP_SAVE_SYN on inner's socket, for the rules to
// see the client's TTL (see RealSYN).
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
	r.d.synErr = saveSYN(inner)
	return r
}

// RealSYN reports whether the kernel was told to save the SYNs of the
// inner listener's connections, whose TTL or hop limit the rules then see
// (see WithPayload): nil if it was, else why not, as Listener.RealSYN.
func (r *Router) RealSYN() error { return r.d.synErr }

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
		return nil, inContext("Router.ListenMatcher", err)
	}
	if err := checkPayloadReach(m, true, r.d.o.n, false); err != nil {
		return nil, inContext("Router.ListenMatcher", err)
	}
	if _, isNil := r.d.inner.(nilListener); !isNil {
		if err := checkTCPListener(r.d.inner); err != nil {
			return nil, inContext("Router.ListenMatcher", err)
		}
	}
	if r.d.isClosed() {
		return nil, inContext("Router.ListenMatcher", r.d.closedErr())
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
// are closed and reported with ErrRejected.
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

// Stats returns the counts of connections so far, for all rules and the
// default listener together.
func (r *Router) Stats() ListenerStats { return r.d.counts.stats() }

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
	l.d.drain(l.q)
	return nil
}

func (l *routeListener) Addr() net.Addr { return l.d.inner.Addr() }
