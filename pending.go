package bpfmatch

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// entry is a connection a dispatcher holds: being inspected, or decided
// and waiting in its queue for Accept. Its fields are under the
// dispatcher's mutex.
type entry struct {
	c          net.Conn
	p          FakePacket // what is known of it, for reports
	syn        []byte     // the real SYN's IP packet, nil if none
	synRead    bool       // the kernel was asked for it (it gives it once)
	prev, next *entry
	list       *entryList // d.idle, d.heldList or a queue
	held       bool       // in d.held and d.heldList
	hidx       int        // its index in d.held
	start      time.Time  // when the inspection started to wait for bytes
	deadline   time.Time  // when the wait for bytes expires
	reading    bool       // a goroutine is reading from it
	partial    []byte     // what it had sent when it was evicted
	release    time.Time  // when a held connection is closed
	evicted    bool       // its inspection was stopped to make room
	bc         *conn      // the decided connection, once queued
}

// entryList is a list of entries, oldest first.
type entryList struct {
	head, tail *entry
	n          int
}

func (l *entryList) push(e *entry) {
	e.list, e.prev, e.next = l, l.tail, nil
	if l.tail != nil {
		l.tail.next = e
	} else {
		l.head = e
	}
	l.tail = e
	l.n++
}

func (l *entryList) pushFront(e *entry) {
	e.list, e.prev, e.next = l, nil, l.head
	if l.head != nil {
		l.head.prev = e
	} else {
		l.tail = e
	}
	l.head = e
	l.n++
}

func (l *entryList) remove(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next, e.list = nil, nil, nil
	l.n--
}

// queue holds the decided connections of one listener until its Accept
// takes them, oldest first, without a goroutine each. Its items are under
// the dispatcher's mutex; at most maxQueued(maxPending) wait, the oldest
// making room for the newest.
type queue struct {
	items  entryList
	ready  chan struct{} // a token when items may be non-empty
	closed chan struct{}
	once   sync.Once
}

func newQueue() *queue {
	return &queue{ready: make(chan struct{}, 1), closed: make(chan struct{})}
}

// close closes q and reports whether this call did.
func (q *queue) close() (did bool) {
	q.once.Do(func() {
		close(q.closed)
		did = true
	})
	return did
}

func (q *queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// dispatcher runs the accept loop of a payload-aware Listener or a Router:
// it accepts connections, inspects each in its own goroutine, and queues
// them for the listener route chooses.
//
// It never stops accepting, so that clients do not wait in the kernel's
// backlog behind connections it holds. At most maxPending inspections run
// at once, a goroutine each. When a new connection finds them all
// running, the one that has waited longest for its first bytes, if it has
// waited at least minIdle, is evicted: its goroutine stops reading, and the
// connection is held open, unread and without a goroutine, so that an
// attacker whose connection is evicted does not learn it and come back at
// once. A held connection is inspected again when a goroutine is free
// before its wait expires (evicted goroutines that find a free slot, and
// inspections that end while no new connection waits, take the one
// evicted last); else it is closed (ErrEvicted) between one and two waits
// after its inspection started. At most maxHeld(maxPending) connections
// are held, the first due closed early to make room, or when the process
// runs out of file descriptors. Inspections that
// have not waited minIdle are not evicted: the accept loop waits for them,
// which paces it to the inspections. Each queue holds at most
// maxQueued(maxPending) decided connections, the oldest closed
// (ErrNotAccepted) to make room.
type dispatcher struct {
	inner  net.Listener
	o      listenerOptions
	counts counts
	// rules returns the rules in order, and the default queue or nil.
	rules func() ([]rule, *queue)
	// synErr says why the kernel does not save SYNs, nil if it does.
	synErr error
	// forward passes temporary errors of the inner Accept to the caller of
	// Accept (a Listener) rather than retrying them (a Router).
	forward bool
	errs    chan error

	slots   chan struct{} // one per inspection not evicted
	exiting chan struct{} // one per evicted inspection whose goroutine runs
	idleCh  chan struct{} // a token when an inspection starts waiting for bytes
	heldCh  chan struct{} // a token when a connection is held
	timer   *time.Timer   // the accept loop's
	done    chan struct{} // closed by close
	stopped chan struct{} // closed when serve ends on an error of inner
	stopErr error         // why; written before stopped is closed

	acquiring atomic.Bool // the accept loop waits for a slot

	mu        sync.Mutex
	closed    bool
	pending   map[net.Conn]*entry // accepted, not handed out: closed by close
	idle      entryList           // inspections waiting for bytes, oldest first
	held      heldHeap            // evicted connections held open, first released first
	heldList  entryList           // the same, in the order of eviction
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
		exiting: make(chan struct{}, o.maxPending),
		idleCh:  make(chan struct{}, 1),
		heldCh:  make(chan struct{}, 1),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
		pending: make(map[net.Conn]*entry),
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
		d.held, d.heldList = nil, entryList{}
		var queued []*entry
		for _, e := range pending {
			if e.bc != nil {
				e.list.remove(e)
				queued = append(queued, e)
			} else if e.held {
				queued = append(queued, e)
			}
		}
		d.mu.Unlock()
		close(d.done)
		d.closeErr = d.inner.Close()
		// Closing unblocks the inspections' reads; they report their
		// connections themselves, seeing done closed. The queued and held
		// ones have no goroutine: they are reported here.
		for c := range pending {
			c.Close()
		}
		for _, e := range queued {
			d.count(errDropped)
			if e.bc != nil {
				report(d.o.onReject, e.c, e.bc.p, e.syn, e.bc.tested, errDropped)
			} else {
				report(d.o.onReject, e.c, e.p, e.syn, false, errDropped)
			}
		}
	})
	if !first {
		return d.closedErr()
	}
	return d.closeErr
}

// drain closes and reports the connections waiting in q, closed.
func (d *dispatcher) drain(q *queue) {
	d.mu.Lock()
	var queued []*entry
	for e := q.items.head; e != nil; e = q.items.head {
		q.items.remove(e)
		delete(d.pending, e.c)
		queued = append(queued, e)
	}
	d.mu.Unlock()
	for _, e := range queued {
		e.c.Close()
		d.count(errDropped)
		report(d.o.onReject, e.c, e.bc.p, e.syn, e.bc.tested, errDropped)
	}
}

// track records e as held, unless the dispatcher is closed.
func (d *dispatcher) track(e *entry) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	d.pending[e.c] = e
	return true
}

// untrack forgets e, unless the dispatcher is closed, in which case close
// has closed or will close it.
func (d *dispatcher) untrack(e *entry) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	delete(d.pending, e.c)
	return true
}

// serve is the accept loop. It never waits for a connection to leave
// before accepting the next; it waits only for an inspecting goroutine to
// end, evicting one if need be (see dispatcher).
func (d *dispatcher) serve() error {
	d.timer = time.NewTimer(time.Hour)
	d.timer.Stop()
	go d.sweep()
	var pause time.Duration
	for {
		c, err := d.inner.Accept()
		if err != nil {
			if d.isClosed() {
				return d.closedErr()
			}
			if isOutOfFiles(err) && d.releaseHeld() {
				continue // a held connection made room
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
		e := &entry{c: c}
		if !d.track(e) || !d.acquire() {
			c.Close()
			d.count(errDropped)
			report(d.o.onReject, c, FakePacket{}, nil, false, errDropped)
			return d.closedErr()
		}
		go d.inspect(e)
	}
}

// acquire takes a slot for an inspecting goroutine. If none is free, it
// evicts the inspection that has waited longest for its bytes and takes
// its slot, or waits for one to end or to become old enough to evict. It
// returns false if the dispatcher is closed first.
func (d *dispatcher) acquire() bool {
	d.acquiring.Store(true)
	defer d.acquiring.Store(false)
	for {
		select {
		case d.slots <- struct{}{}:
			return true
		default:
		}
		wait, ok := d.evictOldest()
		if !ok {
			return false
		}
		if wait == 0 {
			return true
		}
		var timeout <-chan time.Time
		if wait > 0 {
			d.timer.Reset(wait)
			timeout = d.timer.C
		}
		select {
		case d.slots <- struct{}{}:
			d.timer.Stop()
			return true
		case <-d.idleCh:
		case <-timeout:
		case <-d.done:
			d.timer.Stop()
			return false
		}
		d.timer.Stop()
	}
}

// minIdle is how long an inspection waits for bytes before it may be
// evicted: clients that send at once, whose bytes are in flight when the
// inspection starts, are not evicted for a newer connection.
const minIdle = 5 * time.Millisecond

// maxQueued is how many decided connections wait for the Accept of one
// listener: more than are inspected at once, so that a burst of them is
// not dropped before a server that accepts in a loop takes them.
func maxQueued(maxPending int) int { return 4 * maxPending }

// maxHeld is how many evicted connections a dispatcher holds open.
func maxHeld(maxPending int) int { return 64 * maxPending }

// evictOldest stops the inspection that has waited longest for its bytes
// and holds its connection, and hands its slot to the caller: its
// goroutine ends without waiting for it, holding a place in exiting
// meanwhile, so that at most maxPending evicted goroutines run. It
// returns 0 if it did, else how long until the oldest inspection may be
// evicted, or -1 if none waits for bytes; ok is false if the dispatcher
// was closed.
func (d *dispatcher) evictOldest() (wait time.Duration, ok bool) {
	select {
	case d.exiting <- struct{}{}:
	case <-d.done:
		return 0, false
	}
	d.mu.Lock()
	e := d.idle.head
	switch {
	case d.closed:
		d.mu.Unlock()
		<-d.exiting
		return 0, false
	case e == nil:
		d.mu.Unlock()
		<-d.exiting
		return -1, true
	}
	if age := time.Since(e.start); age < minIdle {
		d.mu.Unlock()
		<-d.exiting
		return minIdle - age, true
	}
	d.idle.remove(e)
	e.evicted = true
	// Held past its wait, by up to as long again at random, so that the
	// clients of a flood do not all come back at once.
	e.release = e.start.Add(d.o.wait + rand.N(d.o.wait))
	// Under the lock, so that the goroutine sees e evicted once its read
	// returns; it leaves the connection alone from then on.
	e.c.SetReadDeadline(aLongTimeAgo)
	var dropped *entry
	if len(d.held) >= maxHeld(d.o.maxPending) {
		dropped = d.held[0]
		d.unhold(dropped)
		delete(d.pending, dropped.c)
	}
	heap.Push(&d.held, e)
	d.heldList.push(e)
	d.mu.Unlock()
	select {
	case d.heldCh <- struct{}{}:
	default:
	}
	if dropped != nil {
		d.closeHeld(dropped, "to hold a newer one")
	}
	return 0, true
}

// heldHeap orders held connections by the time they are released.
type heldHeap []*entry

func (h heldHeap) Len() int           { return len(h) }
func (h heldHeap) Less(i, j int) bool { return h[i].release.Before(h[j].release) }
func (h heldHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx, h[j].hidx = i, j
}
func (h *heldHeap) Push(x any) {
	e := x.(*entry)
	e.held, e.hidx = true, len(*h)
	*h = append(*h, e)
}
func (h *heldHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.held = false
	return e
}

// unhold takes e out of the held connections.
func (d *dispatcher) unhold(e *entry) {
	heap.Remove(&d.held, e.hidx)
	d.heldList.remove(e)
}

// aLongTimeAgo is a deadline that has passed.
var aLongTimeAgo = time.Unix(1, 0)

// releaseHeld closes the connection held longest, if any.
func (d *dispatcher) releaseHeld() bool {
	d.mu.Lock()
	if len(d.held) == 0 || d.closed {
		d.mu.Unlock()
		return false
	}
	e := d.held[0]
	d.unhold(e)
	delete(d.pending, e.c)
	d.mu.Unlock()
	d.closeHeld(e, "for lack of file descriptors")
	return true
}

// closeHeld closes and reports e, held and taken out of the lists.
func (d *dispatcher) closeHeld(e *entry, why string) {
	e.c.Close()
	reason := fmt.Errorf("%w: sent nothing for %v while %d connections were being inspected; held open %v, then closed %s",
		ErrEvicted, minIdle, d.o.maxPending, time.Since(e.start).Round(time.Millisecond), why)
	d.count(reason)
	report(d.o.onReject, e.c, e.p, e.syn, false, reason)
}

// sweep closes the held connections whose wait has expired, until the
// dispatcher is closed.
func (d *dispatcher) sweep() {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		d.mu.Lock()
		var expired []*entry
		now := time.Now()
		for len(d.held) > 0 && !d.held[0].release.After(now) {
			e := d.held[0]
			d.unhold(e)
			delete(d.pending, e.c)
			expired = append(expired, e)
		}
		next := time.Hour
		if len(d.held) > 0 {
			next = d.held[0].release.Sub(now)
		}
		d.mu.Unlock()
		for _, e := range expired {
			d.closeHeld(e, "when its wait expired")
		}
		t.Reset(next)
		select {
		case <-t.C:
		case <-d.heldCh:
			t.Stop()
		case <-d.done:
			return
		}
	}
}

// startIdle puts e in the list of inspections waiting for bytes.
func (d *dispatcher) startIdle(e *entry) {
	d.mu.Lock()
	e.reading = true
	if e.start.IsZero() {
		e.start = time.Now()
		d.idle.push(e)
	} else {
		d.idle.pushFront(e) // inspected again, and oldest
	}
	d.mu.Unlock()
	select {
	case d.idleCh <- struct{}{}:
	default:
	}
}

// endIdle takes e out of the list and reports whether it was evicted, in
// which case it keeps what was read for the next inspection.
func (d *dispatcher) endIdle(e *entry, read []byte) (evicted bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e.list == &d.idle {
		d.idle.remove(e)
	}
	e.reading = false
	if e.evicted {
		e.partial = read
	}
	return e.evicted
}

// takeHeld returns a held connection to inspect again, unless a new
// connection waits for a slot: a client evicted while its bytes were
// late is served if the listener has room before its release.
func (d *dispatcher) takeHeld() *entry {
	if d.acquiring.Load() {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	// The last evicted, whose wait is the furthest from expiring.
	if e := d.heldList.tail; e != nil && d.retake(e) {
		return e
	}
	return nil
}

// retake takes e out of the held connections to inspect it again, unless
// it is no longer held, or is still being read, or its wait has expired.
func (d *dispatcher) retake(e *entry) bool {
	if d.closed || !e.held || e.reading || !e.deadline.After(time.Now()) {
		return false
	}
	d.unhold(e)
	e.evicted = false
	return true
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// inspect decides e's connection, reading its first bytes if the verdict
// depends on them, and queues it for the listener of the first rule that
// matches (or the default listener) or closes it.
//
// Then, while no new connection waits for a slot, it inspects held
// connections again, the first to be released first.
func (d *dispatcher) inspect(e *entry) {
	for e != nil {
		if d.inspectOne(e) {
			e = d.takeHeld()
			continue
		}
		// Evicted: the slot went to the connection that evicted e. If one
		// is free again, e is inspected again at once.
		<-d.exiting
		if d.acquiring.Load() {
			return
		}
		select {
		case d.slots <- struct{}{}:
		default:
			return
		}
		d.mu.Lock()
		retaken := d.retake(e)
		d.mu.Unlock()
		if !retaken {
			e = d.takeHeld()
		}
	}
	<-d.slots
}

// inspectOne decides e, and reports false if it was evicted instead.
func (d *dispatcher) inspectOne(e *entry) bool {
	q, p, tested, readErr, err := d.decide(e)
	if err == errHeld {
		return false // the connection is the dispatcher's now
	}
	if err != nil {
		d.reject(e, p, tested, err)
		return true
	}
	d.enqueue(q, e, newConn(e.c, p, tested, readErr))
	return true
}

// enqueue puts e in q, closing the connection that has waited longest in
// q if q is full.
func (d *dispatcher) enqueue(q *queue, e *entry, bc *conn) {
	d.mu.Lock()
	closed := d.closed
	select {
	case <-q.closed:
		closed = true
	default:
	}
	if closed {
		d.mu.Unlock()
		d.reject(e, bc.p, bc.tested, errDropped)
		return
	}
	var victim *entry
	if q.items.n >= maxQueued(d.o.maxPending) {
		victim = q.items.head
		q.items.remove(victim)
		delete(d.pending, victim.c)
	}
	e.bc = bc
	q.items.push(e)
	d.mu.Unlock()
	q.signal()
	if victim != nil {
		victim.c.Close()
		reason := fmt.Errorf("%w: %d connections were waiting for its listener", ErrNotAccepted, maxQueued(d.o.maxPending))
		d.count(reason)
		report(d.o.onReject, victim.c, victim.bc.p, victim.syn, victim.bc.tested, reason)
	}
}

// decide returns the queue e goes to, its packet with the bytes read from
// it as payload, and the error that ended the reading; or the reason to
// reject it. tested reports whether a filter ran on p.
//
// p is a fake data segment (see WithPayload) with the TTL or hop limit of
// the real SYN if the kernel saved it: that of the client's packets. The
// SYN's other fields are left out: its flags, window and options are not
// a data segment's, and a FakePacket has no TOS or flow label to take.
func (d *dispatcher) decide(e *entry) (q *queue, p FakePacket, tested bool, readErr, err error) {
	c := e.c
	if !e.synRead {
		// Read once, before e is shared: the kernel frees it then.
		e.synRead = true
		if d.synErr == nil {
			_, e.syn, _ = realSYN(c, LinkRaw)
		}
	}
	p, err = FromAddrs(c.RemoteAddr(), c.LocalAddr(), nil)
	if err != nil {
		return nil, p, false, nil, err
	}
	if e.syn != nil {
		p.TTL = synTTL(e.syn)
	}
	e.p = p
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
		p.Payload, readErr, err = d.read(e)
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

// reject closes e's connection and reports it; the reason of a connection
// closed by close is errDropped whatever happened to it after.
func (d *dispatcher) reject(e *entry, p FakePacket, tested bool, reason error) {
	if !d.untrack(e) {
		reason = errDropped
	}
	e.c.Close()
	d.count(reason)
	report(d.o.onReject, e.c, p, e.syn, tested, reason)
}

// count counts a connection closed instead of handed out.
func (d *dispatcher) count(reason error) {
	switch {
	case errors.Is(reason, ErrEvicted):
		d.counts.evicted.Add(1)
	case errors.Is(reason, ErrNotAccepted):
		d.counts.notAccepted.Add(1)
	}
	d.counts.rejected.Add(1)
}

// errHeld tells an inspection that its connection was evicted and is
// held by the dispatcher.
var errHeld = errors.New("bpfmatch: evicted")

// initialPeek is the size of the buffer an inspection starts reading into;
// it doubles as bytes arrive, up to WithPayload's n, so that connections
// that send nothing cost little.
const initialPeek = 512

// read reads what the client sends first, as WithPayload says. readErr is
// the error that ended the reading early, other than the deadline's, which
// the connection returns after the bytes read; err is the reason to
// reject the connection.
func (d *dispatcher) read(e *entry) (payload []byte, readErr, err error) {
	c := e.c
	if e.deadline.IsZero() {
		e.deadline = time.Now().Add(d.o.wait)
	}
	if err := c.SetReadDeadline(e.deadline); err != nil {
		if d.isClosed() {
			return nil, nil, errDropped
		}
		return nil, nil, fmt.Errorf("bpfmatch: setting a read deadline to inspect the connection: %w", err)
	}
	d.startIdle(e)
	buf := make([]byte, max(min(d.o.n, initialPeek), len(e.partial)))
	n := copy(buf, e.partial)
	e.partial = nil
	for n < d.o.n && readErr == nil {
		if n == len(buf) {
			grown := make([]byte, min(2*len(buf), d.o.n))
			copy(grown, buf)
			buf = grown
		}
		var k int
		k, readErr = c.Read(buf[n:])
		n += k
	}
	if d.endIdle(e, buf[:n]) {
		return nil, nil, errHeld
	}
	// Hand the connection over as it was accepted: without a deadline.
	restoreErr := c.SetReadDeadline(time.Time{})
	switch {
	case d.isClosed():
		return nil, nil, errDropped
	case errors.Is(readErr, os.ErrDeadlineExceeded):
		if d.o.policy == RejectOnTimeout {
			return nil, nil, fmt.Errorf("%w: %d of %d bytes in %v", ErrWaitExpired, n, d.o.n, d.o.wait)
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
	for {
		if c := d.pop(q); c != nil {
			d.counts.matched.Add(1)
			c.p = FakePacket{} // the payload is the connection's to read now
			return c.self, nil
		}
		select {
		case <-q.ready:
		case err := <-d.errs:
			return nil, err
		case <-q.closed:
			return nil, d.closedErr()
		case <-d.done:
			return nil, d.closedErr()
		case <-d.stopped:
			// Connections decided before inner failed are still served.
			if c := d.pop(q); c != nil {
				d.counts.matched.Add(1)
				c.p = FakePacket{}
				return c.self, nil
			}
			if d.isClosed() {
				return nil, d.closedErr()
			}
			return nil, d.stopErr
		}
	}
}

// pop takes the oldest connection waiting in q, if any.
func (d *dispatcher) pop(q *queue) *conn {
	d.mu.Lock()
	e := q.items.head
	if e == nil || d.closed {
		d.mu.Unlock()
		return nil
	}
	q.items.remove(e)
	delete(d.pending, e.c)
	more := q.items.n > 0
	d.mu.Unlock()
	if more {
		q.signal() // for another caller of Accept
	}
	return e.bc
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
