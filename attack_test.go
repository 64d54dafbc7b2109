package bpfmatch

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// latencyTarget is the p99 latency legitimate clients must see: the
// issue's 100 ms in the full-size run, which is run by hand on a quiet
// machine. The suite runs on shared machines (and for 386, and next to
// other packages' tests), where a scheduler hiccup costs more than that:
// there the bound is 2 s, still far below the seconds to minutes that
// slow clients cost a listener without the defence.
func latencyTarget() time.Duration {
	if *attackFull {
		return 100 * time.Millisecond
	}
	return 2 * time.Second
}

// attackFull runs the attack tests at full size: 5,000 attackers.
var attackFull = flag.Bool("attack.full", os.Getenv("BPFMATCH_ATTACK_FULL") != "", "run the attack tests with 5,000 attackers")

// attackPayload is the n of WithPayload in TestAttackSlowClients: how much
// of an inspection buffer idle connections could cost.
var attackPayload = flag.Int("attack.payload", 16, "the bytes TestAttackSlowClients reads from each client")

// The environment of the attacking process.
const (
	attackEnvAddr   = "BPFMATCH_ATTACKER_ADDR"   // the address to attack
	attackEnvCount  = "BPFMATCH_ATTACKER_COUNT"  // how many connections to hold
	attackEnvSpread = "BPFMATCH_ATTACKER_SPREAD" // "1": sources over 127.0.0.0/8
	attackEnvSend   = "BPFMATCH_ATTACKER_SEND"   // what each sends on connecting, if anything
)

// attackers returns the number of idle connections an attack test holds.
func attackers() int {
	switch {
	case *attackFull:
		return 5000
	case testing.Short():
		return 500
	}
	return 2000
}

// attackSource returns the source address of attacker i: one for all
// (chosen at random by the attacking process, so that successive runs do
// not meet the ports the previous one left), or spread over 127.0.0.0/8
// (never 127.0.0.1, the legitimate clients').
func attackSource(i int, spread bool) string {
	if !spread {
		return oneSource
	}
	i++
	return fmt.Sprintf("127.%d.%d.%d", 1+i%250, (i/250)%256, 1+(i/64000)%250)
}

var oneSource = fmt.Sprintf("127.255.%d.%d", rand.IntN(256), 1+rand.IntN(254))

// The test binary run with attackEnvAddr set is the attacking process of
// the attack tests, and runs no test.
func init() {
	if addr := os.Getenv(attackEnvAddr); addr != "" {
		runAttacker(addr)
		os.Exit(0)
	}
}

// runAttacker holds connections to addr open, sending nothing (or what it
// is told), and opens a new one whenever one is closed, until its standard
// input closes. It prints "ready" once all are open.
func runAttacker(addr string) {
	n, _ := strconv.Atoi(os.Getenv(attackEnvCount))
	spread := os.Getenv(attackEnvSpread) == "1"
	send := os.Getenv(attackEnvSend)
	var opened sync.WaitGroup
	opened.Add(n)
	var stop atomic.Bool
	var reconnects atomic.Int64
	for i := range n {
		go func() {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(attackSource(i, spread))}}
			first := true
			buf := make([]byte, 64)
			for !stop.Load() {
				c, err := d.Dial("tcp", addr)
				if err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				// Closed with a reset: no TIME_WAIT left on the ports.
				c.(*net.TCPConn).SetLinger(0)
				if first {
					opened.Done()
					first = false
				} else {
					reconnects.Add(1)
				}
				if send != "" {
					io.WriteString(c, send)
				}
				for {
					if _, err := c.Read(buf); err != nil {
						break
					}
				}
				c.Close()
			}
		}()
	}
	opened.Wait()
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	stop.Store(true)
	fmt.Printf("reconnects %d\n", reconnects.Load())
}

// attack is an attacking process.
type attack struct {
	cmd   *exec.Cmd
	stdin io.Closer
	out   *bufio.Reader
}

// startAttack starts a process holding n connections to addr, and waits
// until they are open.
func startAttack(t *testing.T, addr net.Addr, n int, spread bool, send string) *attack {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(),
		attackEnvAddr+"="+addr.String(),
		attackEnvCount+"="+strconv.Itoa(n),
		attackEnvSpread+"="+map[bool]string{true: "1", false: "0"}[spread],
		attackEnvSend+"="+send,
	)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &attack{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	ready := make(chan string, 1)
	go func() {
		line, _ := a.out.ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		if strings.TrimSpace(line) != "ready" {
			a.stop()
			t.Fatalf("attacking process: %q", line)
		}
	case <-time.After(60 * time.Second):
		a.stop()
		t.Fatalf("%d attackers not connected in 60 s", n)
	}
	return a
}

// stop ends the attack and returns what the process said last.
func (a *attack) stop() string {
	a.stdin.Close()
	done := make(chan string, 1)
	go func() {
		rest, _ := io.ReadAll(a.out)
		done <- strings.TrimSpace(string(rest))
	}()
	var said string
	select {
	case said = <-done:
	case <-time.After(10 * time.Second):
		a.cmd.Process.Kill()
		said = <-done
	}
	a.cmd.Wait()
	return said
}

// vmRSS returns the resident set size of the process in bytes.
func vmRSS(t testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("cannot read the resident set size: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Skip("no VmRSS in /proc/self/status")
	return 0
}

// percentile returns the p-th percentile of sorted durations.
func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, (len(d)*p+99)/100-1)]
}

// peaks samples the goroutines, file descriptors and resident set size of
// the process until stopped.
type peaks struct {
	goroutines, fds int
	rss             int64
	stop, done      chan struct{}
}

func samplePeaks(t testing.TB) *peaks {
	p := &peaks{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			p.goroutines = max(p.goroutines, runtime.NumGoroutine())
			p.fds = max(p.fds, fdCount(t))
			p.rss = max(p.rss, vmRSS(t))
			select {
			case <-tick.C:
			case <-p.stop:
				return
			}
		}
	}()
	return p
}

func (p *peaks) end() { close(p.stop); <-p.done }

// TestAttackSlowClients holds thousands of idle connections open against a
// payload-aware listener with the default bound of connections, renewing
// those closed, from addresses spread over 127.0.0.0/8 or from one, while
// legitimate clients connect and send their bytes at once: each of them
// must be accepted within latencyTarget (p99), the listener's goroutines and file
// descriptors must stay within the bounds WithMaxPending documents, its
// memory within 64 MiB, and Close must leave nothing behind.
func TestAttackSlowClients(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts file descriptors and memory in /proc")
	}
	for _, tt := range []struct {
		name   string
		spread bool
	}{
		{"spread over 127.0.0.0/8", true},
		{"from one address", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := attackers()
			m := compileOrSkip(t, PayloadPrefix([]byte("GET ")))
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			runtime.GC()
			g0, fd0, rss0 := runtime.NumGoroutine(), fdCount(t), vmRSS(t)
			var evicted, otherRejects atomic.Int64 // reports
			l, err := NewListener(ln, m, WithPayload(*attackPayload, 2*time.Second), WithRejectFunc(func(r Report) {
				if errors.Is(r.Reason, ErrEvicted) {
					evicted.Add(1)
				} else {
					otherRejects.Add(1)
				}
			}))
			if err != nil {
				t.Fatal(err)
			}
			// The attack starts once the listener accepts, as it would on
			// a running server.
			a := startAttack(t, ln.Addr(), n, tt.spread, "")
			attacking := true
			defer func() {
				if attacking {
					a.stop()
				}
			}()
			// The attack is established once the listener has taken every
			// attacker's first connection from the kernel's backlog: the
			// burst of their first connections fills the backlog, which no
			// defence in the listener can help (see the report's figures).
			established := time.Now()
			for deadline := time.Now().Add(30 * time.Second); l.Stats().Accepted < uint64(n) && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			t.Logf("%d attackers' first connections accepted %v after they were all open", n, time.Since(established).Round(time.Millisecond))
			pk := samplePeaks(t)
			const legit, workers = 100, 4
			var mu sync.Mutex
			dialed := map[string]time.Time{} // message: dial start
			latencies := make([]time.Duration, 0, legit)
			served := make(chan struct{})
			go func() {
				defer close(served)
				buf := make([]byte, 16)
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					at := time.Now()
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					_, err = io.ReadFull(c, buf)
					if err == nil {
						mu.Lock()
						if start, ok := dialed[string(buf)]; ok {
							latencies = append(latencies, at.Sub(start))
						}
						mu.Unlock()
						c.Write([]byte("OK"))
					}
					c.Close()
				}
			}()
			var clientErrs atomic.Int64
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
					for i := w; i < legit; i += workers {
						// Over 5 s: the attackers' connections are renewed.
						time.Sleep(200 * time.Millisecond)
						msg := fmt.Sprintf("GET /legit/%05d", i)
						mu.Lock()
						dialed[msg] = time.Now()
						mu.Unlock()
						c, err := d.Dial("tcp", ln.Addr().String())
						if err != nil {
							clientErrs.Add(1)
							t.Errorf("legitimate client %d: %v", i, err)
							continue
						}
						// What the listener reads: the message, padded.
						c.Write(append([]byte(msg), make([]byte, max(0, *attackPayload-len(msg)))...))
						c.SetReadDeadline(time.Now().Add(10 * time.Second))
						reply := make([]byte, 2)
						if _, err := io.ReadFull(c, reply); err != nil || string(reply) != "OK" {
							clientErrs.Add(1)
							t.Errorf("legitimate client %d: reply %q, %v", i, reply, err)
						}
						c.Close()
					}
				}()
			}
			wg.Wait()
			pk.end()
			stats := l.Stats()
			said := a.stop()
			attacking = false
			l.Close()
			<-served

			slices.Sort(latencies)
			p50, p99 := percentile(latencies, 50), percentile(latencies, 99)
			maxPending := DefaultMaxPending
			// The listener's bound, and the test's own: the accept loop
			// above, the client workers, the sampler, and the runtime's
			// and exec's spares.
			gBound := g0 + 2*maxPending + 2 + 1 + workers + 1 + 4
			// The listener's bound: the inner listener, the connections
			// inspected and queued; the test's own: a client and a server
			// end per worker, the pipes to the attacking process, and
			// spares.
			fdBound := fd0 + 1 + maxPending + maxHeld(maxPending) + maxPending + 2*workers + 2 + 4
			t.Logf("%d attackers (%s), %d legitimate clients: accepted %d, latency p50 %v p99 %v max %v; stats %+v; %d evicted, %d other rejects reported; attackers: %s",
				n, tt.name, legit, len(latencies), p50.Round(time.Microsecond), p99.Round(time.Microsecond), percentile(latencies, 100).Round(time.Microsecond), stats, evicted.Load(), otherRejects.Load(), said)
			t.Logf("peak goroutines %d (start %d, bound %d), fds %d (start %d, bound %d), RSS growth %.1f MiB",
				pk.goroutines, g0, gBound, pk.fds, fd0, fdBound, float64(pk.rss-rss0)/(1<<20))
			if len(latencies) != legit || clientErrs.Load() != 0 {
				t.Errorf("%d of %d legitimate clients accepted, %d failed", len(latencies), legit, clientErrs.Load())
			}
			// The race detector slows the listener down several times and
			// multiplies its memory: the figures say nothing then.
			if p99 > latencyTarget() && !raceEnabled {
				t.Errorf("p99 latency %v, want <= %v", p99, latencyTarget())
			}
			if pk.goroutines > gBound {
				t.Errorf("peak goroutines %d, bound %d", pk.goroutines, gBound)
			}
			if pk.fds > fdBound {
				t.Errorf("peak file descriptors %d, bound %d", pk.fds, fdBound)
			}
			if growth := pk.rss - rss0; growth > 64<<20 && !raceEnabled {
				t.Errorf("RSS grew by %d MiB, want <= 64", growth>>20)
			}
			if stats.Evicted == 0 {
				t.Error("no connection evicted: the attack did not fill the listener")
			}
			if g, fd := waitGone(t, g0, fd0); g > g0 || fd > fd0 {
				t.Errorf("after Close: %d goroutines and %d file descriptors, %d and %d before", g, fd, g0, fd0)
			}
		})
	}
}

// TestAttackRouteNobodyServes sends 1,000 "GET " clients to a Router's
// route nobody accepts from, while TLS and default-route clients come and
// must be accepted within latencyTarget (p99); each GET connection must be
// reported once: with ErrNotAccepted when its route's queue is full, and
// on Close for those left in it.
func TestAttackRouteNobodyServes(t *testing.T) {
	const gets, legit, getWorkers = 1000, 100, 8
	get := compileOrSkip(t, PayloadPrefix([]byte("GET ")))
	tls := compileOrSkip(t, PayloadPrefix([]byte{0x16}))
	checkNoLeaks(t, func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		reports := map[string][]error{} // GET client's address: reasons
		var others atomic.Int64
		r := NewRouter(ln, WithPayload(4, time.Second), WithRejectFunc(func(rep Report) {
			if rep.Remote.Addr().String() != "127.0.0.2" {
				others.Add(1)
				return
			}
			mu.Lock()
			reports[rep.Remote.String()] = append(reports[rep.Remote.String()], rep.Reason)
			mu.Unlock()
		}))
		if _, err := r.ListenMatcher(get); err != nil { // nobody accepts from it
			t.Fatal(err)
		}
		tlsL, err := r.ListenMatcher(tls)
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- r.Serve() }()

		// The servers of TLS and of the default route: the latency is from
		// the client's dial to Accept.
		dialed := map[string]time.Time{}
		var latencies []time.Duration
		var servers sync.WaitGroup
		for _, l := range []net.Listener{tlsL, r.Default()} {
			servers.Add(1)
			go func() {
				defer servers.Done()
				buf := make([]byte, 8)
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					at := time.Now()
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					if _, err := io.ReadFull(c, buf); err == nil {
						mu.Lock()
						if start, ok := dialed[string(buf)]; ok {
							latencies = append(latencies, at.Sub(start))
						}
						mu.Unlock()
					}
					c.Write([]byte("OK"))
					c.Close()
				}
			}()
		}

		var getConns []net.Conn
		var clients sync.WaitGroup
		var getMu sync.Mutex
		var next atomic.Int64
		for range getWorkers {
			clients.Add(1)
			go func() {
				defer clients.Done()
				d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
				for next.Add(1) <= gets {
					c, err := d.Dial("tcp", ln.Addr().String())
					if err != nil {
						t.Errorf("GET client: %v", err)
						continue
					}
					c.Write([]byte("GET / HTTP/1.1\r\n"))
					getMu.Lock()
					getConns = append(getConns, c)
					getMu.Unlock()
				}
			}()
		}
		var failed atomic.Int64
		for kind, first := range []byte{0x16, 'H'} { // TLS, then default
			clients.Add(1)
			go func() {
				defer clients.Done()
				d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
				for i := range legit / 2 {
					time.Sleep(10 * time.Millisecond)
					msg := fmt.Sprintf("%c%d%06d", first, kind, i)
					mu.Lock()
					dialed[msg] = time.Now()
					mu.Unlock()
					c, err := d.Dial("tcp", ln.Addr().String())
					if err != nil {
						failed.Add(1)
						t.Errorf("client %q: %v", msg, err)
						continue
					}
					c.Write([]byte(msg))
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					reply := make([]byte, 2)
					if _, err := io.ReadFull(c, reply); err != nil {
						failed.Add(1)
						t.Errorf("client %q: %v", msg, err)
					}
					c.Close()
				}
			}()
		}
		clients.Wait()
		// Every GET connection decided: in the queue, or dropped from it.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if s := r.Stats(); s.Accepted >= gets+legit && s.Pending <= uint64(maxQueued(DefaultMaxPending)) {
				break
			}
		}
		stats := r.Stats()
		r.Close()
		<-served
		servers.Wait()
		for _, c := range getConns {
			c.Close()
		}

		mu.Lock()
		defer mu.Unlock()
		slices.Sort(latencies)
		t.Logf("%d GET clients to a route nobody serves, %d others: accepted %d, latency p50 %v p99 %v max %v; stats %+v",
			gets, legit, len(latencies), percentile(latencies, 50).Round(time.Microsecond), percentile(latencies, 99).Round(time.Microsecond), percentile(latencies, 100).Round(time.Microsecond), stats)
		if len(latencies) != legit || failed.Load() != 0 {
			t.Errorf("%d of %d TLS and default clients accepted, %d failed", len(latencies), legit, failed.Load())
		}
		if p99 := percentile(latencies, 99); p99 > latencyTarget() && !raceEnabled {
			t.Errorf("p99 latency %v, want <= %v", p99, latencyTarget())
		}
		if want := uint64(gets - maxQueued(DefaultMaxPending)); stats.NotAccepted != want {
			t.Errorf("%d connections not accepted, want %d (the GET clients beyond the route's queue)", stats.NotAccepted, want)
		}
		// Counted by reason: a client's port may be used again once the
		// server has closed its connection.
		var notAccepted, dropped int
		for addr, reasons := range reports {
			for _, reason := range reasons {
				switch {
				case errors.Is(reason, ErrNotAccepted):
					notAccepted++
				case errors.Is(reason, net.ErrClosed):
					dropped++
				default:
					t.Errorf("GET client %s: %v", addr, reason)
				}
			}
		}
		if want := gets - maxQueued(DefaultMaxPending); notAccepted != want || dropped != gets-want {
			t.Errorf("GET clients reported: %d not accepted, %d dropped on Close; want %d and %d", notAccepted, dropped, want, gets-want)
		}
		if others.Load() != 0 {
			t.Errorf("%d other clients rejected", others.Load())
		}
	})
}

// TestPayloadBufferGrows sends more than MaxPayloadBytes in pieces to a
// listener reading MaxPayloadBytes: the buffer, grown as bytes arrive, must
// hand them all back in order, then the rest of the stream.
func TestPayloadBufferGrows(t *testing.T) {
	m := compileOrSkip(t, PayloadPrefix([]byte("GET ")))
	for _, size := range []int{100, initialPeek, initialPeek + 1, 5000, MaxPayloadBytes, MaxPayloadBytes + 1000} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			ln := listenLoopback(t, "127.0.0.1")
			l, err := NewListener(ln, m, WithPayload(MaxPayloadBytes, 5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			sent := make([]byte, size)
			copy(sent, "GET ")
			for i := 4; i < size; i++ {
				sent[i] = byte(i * 7)
			}
			c := dialLoopback(t, "", l.Addr())
			go func() {
				for rest := sent; len(rest) > 0; {
					k := min(len(rest), 3000)
					c.Write(rest[:k])
					rest = rest[k:]
				}
				c.CloseWrite()
			}()
			sc, err := l.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			sc.SetReadDeadline(time.Now().Add(10 * time.Second))
			got, err := io.ReadAll(sc)
			if err != nil || !bytes.Equal(got, sent) {
				t.Errorf("read %d bytes, %v; want the %d sent, in order", len(got), err, len(sent))
			}
		})
	}
}

// TestEvictedReleasedForFiles checks that when the inner Accept fails for
// lack of file descriptors, the listener closes a held connection and
// accepts again, rather than passing the error on.
func TestEvictedReleasedForFiles(t *testing.T) {
	m := compileOrSkip(t, getPrefix)
	sl := newScriptedListener(listenLoopback(t, "127.0.0.1"))
	rejects, onReject := recordRejects()
	l, err := NewListener(sl, m, WithPayload(4, time.Minute), WithMaxPending(1), onReject)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := acceptAll(l)
	silent1 := dialLoopback(t, "", l.Addr())
	sl.script <- nil
	time.Sleep(30 * time.Millisecond) // for its inspection to wait
	silent2 := dialLoopback(t, "", l.Addr())
	sl.script <- nil // evicts and holds silent1
	time.Sleep(30 * time.Millisecond)
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	sl.script <- emfile
	r := waitReject(t, rejects, 5*time.Second)
	if r.Remote.String() != silent1.LocalAddr().String() || !errors.Is(r.Reason, ErrEvicted) {
		t.Errorf("rejected %v: %v; want %v evicted", r.Remote, r.Reason, silent1.LocalAddr())
	}
	expectClosed(t, silent1)
	// The listener accepts again: a client that sends is served.
	c := dialLoopback(t, "", l.Addr())
	c.Write([]byte("GET /"))
	sl.script <- nil
	select {
	case sc, ok := <-accepted:
		if !ok {
			t.Fatal("Accept failed: the error of the inner listener was passed on")
		}
		defer sc.Close()
		if sc.RemoteAddr().String() != c.LocalAddr().String() {
			t.Errorf("accepted %v, want %v", sc.RemoteAddr(), c.LocalAddr())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted after the error")
	}
	_ = silent2
}
