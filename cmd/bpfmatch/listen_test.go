package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer written and read from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

var listeningRE = regexp.MustCompile(`listening on (tcp|udp) (\S+?);?\s`)

// waitListening waits for the listening line in stderr and returns the
// address.
func waitListening(t *testing.T, stderr interface{ String() string }, exited <-chan int) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := listeningRE.FindStringSubmatch(stderr.String()); m != nil {
			return m[2]
		}
		select {
		case code := <-exited:
			t.Fatalf("exited %d before listening; stderr %q", code, stderr.String())
		default:
		}
	}
	t.Fatalf("not listening after 10 s; stderr %q", stderr.String())
	return ""
}

// startRun runs the tool with args until it listens, and returns where,
// its output (growing while it runs) and its exit code once it exits.
func startRun(t *testing.T, args []string) (addr string, stdout, stderr *lockedBuffer, exited <-chan int) {
	t.Helper()
	stdout, stderr = new(lockedBuffer), new(lockedBuffer)
	code := make(chan int, 1)
	go func() { code <- run(args, stdout, stderr) }()
	return waitListening(t, stderr, code), stdout, stderr, code
}

// waitExit waits up to 10 s for the tool started by startRun to exit
// with code want, what it was waiting for being after.
func waitExit(t *testing.T, exited <-chan int, want int, after string, stdout, stderr *lockedBuffer) {
	t.Helper()
	select {
	case code := <-exited:
		if code != want {
			t.Errorf("exit %d, want %d; stderr %q", code, want, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10 s after %s; stdout %q", after, stdout.String())
	}
}

// TestListenCount runs -listen with -count on TCP and UDP, with clients
// that match and clients that do not.
func TestListenCount(t *testing.T) {
	requireCompile(t)
	tests := []struct {
		name  string
		args  []string
		sends []string // one connection or datagram each; "" is a silent client
		want  []string // the lines printed, sorted
		code  int
	}{
		{
			name:  "tcp",
			args:  []string{"-listen", "127.0.0.1:0", "-count", "3", "-wait", "300ms", "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420"},
			sends: []string{"GET / HTTP/1.0\r\n\r\n", "POST / HTTP/1.0\r\n\r\n", ""},
			want: []string{
				`tcp 127.0.0.1:PORT > 127.0.0.1:PORT [PSH|ACK] 0 bytes "": no match`,
				`tcp 127.0.0.1:PORT > 127.0.0.1:PORT [PSH|ACK] 18 bytes "GET / HTTP/1.0\r\n\r\n": match`,
				`tcp 127.0.0.1:PORT > 127.0.0.1:PORT [PSH|ACK] 19 bytes "POST / HTTP/1.0\r\n\r\n": no match`,
			},
			code: exitMatch,
		},
		{
			name:  "tcp none matching",
			args:  []string{"-listen", "127.0.0.1:0", "-count", "1", "src host 127.0.0.2"},
			sends: []string{"hello"},
			want:  []string{`tcp 127.0.0.1:PORT > 127.0.0.1:PORT [PSH|ACK] 0 bytes "": no match`},
			code:  exitNoMatch,
		},
		{
			name:  "udp",
			args:  []string{"-listen", "127.0.0.1:0", "-udp", "-count", "2", "udp[8:4] = 0x50494e47"},
			sends: []string{"PONG", "PING 1"},
			want: []string{
				`udp 127.0.0.1:PORT > 127.0.0.1:PORT 4 bytes "PONG": no match`,
				`udp 127.0.0.1:PORT > 127.0.0.1:PORT 6 bytes "PING 1": match`,
			},
			code: exitMatch,
		},
	}
	ports := regexp.MustCompile(`:\d+\b`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, stdout, stderr, exited := startRun(t, tt.args)
			network := "tcp"
			if strings.Contains(strings.Join(tt.args, " "), "-udp") {
				network = "udp"
			}
			var conns []net.Conn
			for _, s := range tt.sends {
				c, err := net.Dial(network, addr)
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, c)
				io.WriteString(c, s)
			}
			waitExit(t, exited, tt.code, "the clients", stdout, stderr)
			for _, c := range conns {
				c.Close()
			}
			lines := strings.Split(strings.TrimSpace(ports.ReplaceAllString(stdout.String(), ":PORT")), "\n")
			sort.Strings(lines)
			if strings.Join(lines, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("printed\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestListenCancel checks that -listen stops when its context is done,
// as it does on SIGINT.
func TestListenCancel(t *testing.T) {
	requireCompile(t)
	for _, proto := range []string{"tcp", "udp"} {
		t.Run(proto, func(t *testing.T) {
			args := []string{"-listen", "127.0.0.1:0", "tcp or udp"}
			if proto == "udp" {
				args = append([]string{"-udp"}, args...)
			}
			cfg, err := parseArgs(args)
			if err != nil {
				t.Fatal(err)
			}
			var stdout, stderr lockedBuffer
			ctx, cancel := context.WithCancel(context.Background())
			exited := make(chan int, 1)
			go func() { exited <- listen(ctx, cfg, &stdout, &stderr) }()
			addr := waitListening(t, &stderr, exited)
			c, err := net.Dial(proto, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, "hello")
			for deadline := time.Now().Add(10 * time.Second); !strings.Contains(stdout.String(), ": match") && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			select {
			case code := <-exited:
				if code != exitMatch {
					t.Errorf("exit %d, want %d; stdout %q, stderr %q", code, exitMatch, stdout.String(), stderr.String())
				}
			case <-time.After(5 * time.Second):
				t.Fatal("still running 5 s after the context was cancelled")
			}
		})
	}
}

// TestListenInterrupt runs the command and stops it with SIGINT.
func TestListenInterrupt(t *testing.T) {
	requireCompile(t)
	bin := buildBinary(t)
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "tcp")
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan int, 1)
	go func() {
		cmd.Wait()
		exited <- cmd.ProcessState.ExitCode()
	}()
	waitListening(t, &stderr, exited)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exited:
		// Nothing came, so nothing matched.
		if code != exitNoMatch {
			t.Errorf("exit %d after SIGINT, want %d; stderr %q", code, exitNoMatch, stderr.String())
		}
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		t.Fatal("still running 5 s after SIGINT")
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Errorf("killed by %v rather than exiting", ws.Signal())
	}
}

// TestListenUsageErrors checks the -listen flags' errors.
func TestListenUsageErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"udp alone", []string{"-udp", "udp"}, "-udp needs -listen"},
		{"count alone", []string{"-count", "3", "tcp"}, "-count needs -listen"},
		{"wait alone", []string{"-wait", "1s", "tcp"}, "-wait needs -listen"},
		{"empty address", []string{"-listen", "", "tcp"}, "-listen needs an address"},
		{"with -src", []string{"-listen", "127.0.0.1:0", "-src", "10.0.0.1:1", "-payload", "x", "tcp"}, "-src, -payload cannot be used with -listen"},
		{"with -proto", []string{"-listen", "127.0.0.1:0", "-proto", "udp", "udp"}, "-proto cannot be used with -listen: the connections supply the packets (-udp for UDP)"},
		{"with -r", []string{"-listen", "127.0.0.1:0", "-r", "x.pcap"}, "-r cannot be used with -listen"},
		{"with -d", []string{"-listen", "127.0.0.1:0", "-d", "tcp"}, "-d cannot be used with -listen"},
		{"with -w", []string{"-listen", "127.0.0.1:0", "-w", "x.pcap", "tcp"}, "-w cannot be used with -listen"},
		{"count zero", []string{"-listen", "127.0.0.1:0", "-count", "0", "tcp"}, `-count "0": not a number`},
		{"count word", []string{"-listen", "127.0.0.1:0", "-count", "many", "tcp"}, `-count "many"`},
		{"wait word", []string{"-listen", "127.0.0.1:0", "-wait", "soon", "tcp"}, `-wait "soon": not a positive duration`},
		{"wait negative", []string{"-listen", "127.0.0.1:0", "-wait", "-1s", "tcp"}, `-wait "-1s"`},
		{"wait with udp", []string{"-listen", "127.0.0.1:0", "-udp", "-wait", "1s", "udp"}, "-wait applies to TCP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkResult(t, runArgs(tt.args...), exitError, "", tt.wantErr)
		})
	}
	t.Run("bad address", func(t *testing.T) {
		requireCompile(t)
		checkResult(t, runArgs("-listen", "127.0.0.1:99999", "tcp"), exitError, "", "invalid port")
	})
	t.Run("compile error", func(t *testing.T) {
		requireCompile(t)
		checkResult(t, runArgs("-listen", "127.0.0.1:0", "tcp port"), exitError, "", `bpfmatch: compiling "tcp port" for ethernet: `)
	})
}
