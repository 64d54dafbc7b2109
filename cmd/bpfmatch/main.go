// Command bpfmatch tells whether a tcpdump filter expression matches a fake
// packet built from connection metadata, or counts the packets of a capture
// file that match it, without capturing anything.
//
// Like grep, it exits 0 on a match, 1 on no match and 2 on any error. Run
// bpfmatch -h for the flags.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/headlessbpf/bpfmatch"
	"golang.org/x/net/bpf"
)

// Exit codes, as grep's.
const (
	exitMatch   = 0
	exitNoMatch = 1
	exitError   = 2
)

func main() {
	os.Exit(runWith(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is runWith on an empty standard input.
func run(args []string, stdout, stderr io.Writer) int {
	return runWith(args, strings.NewReader(""), stdout, stderr)
}

// runWith does what the command line args ask, reading a capture from
// stdin for -r -, writing results to stdout and errors to stderr, and
// returns the exit code.
func runWith(args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	// A panic would be a bug; still, scripts should get the documented
	// exit code and a one-line message rather than a stack trace.
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "bpfmatch: internal error (please report): %v\n", r)
			code = exitError
		}
	}()

	if len(args) == 0 {
		// As tcpdump's, a bare command is a usage error, not a match of
		// a default packet against the empty expression.
		fmt.Fprint(stderr, usageText)
		return exitError
	}
	cfg, err := parseArgs(args)
	if errors.Is(err, errHelp) {
		fmt.Fprint(stdout, usageText)
		return exitMatch
	}
	if err != nil {
		fmt.Fprintf(stderr, "bpfmatch: %v\nRun 'bpfmatch -h' for usage.\n", err)
		return exitError
	}
	if cfg.read != "" {
		return runRead(cfg, stdin, stdout, stderr)
	}
	if cfg.listen.addr != "" {
		return runListen(cfg, stdout, stderr)
	}
	return runPacket(cfg, stdout, stderr)
}

// runPacket matches the fake packet cfg describes, or prints the program.
func runPacket(cfg *config, stdout, stderr io.Writer) int {
	m, err := bpfmatch.Compile(cfg.expr, cfg.options(cfg.link, cfg.snap)...)
	if err != nil {
		return fail(stderr, compileError(err, cfg.expr))
	}
	if cfg.dump > 0 {
		return printProgram(stdout, stderr, m.Program(), cfg.dump)
	}
	p, frame, err := cfg.packet()
	if err != nil {
		return fail(stderr, err)
	}
	if cfg.write != "" {
		if err := writePcap(cfg.write, frame, cfg.link, cfg.snap); err != nil {
			return fail(stderr, err)
		}
	}
	ok, err := m.Match(p)
	if err != nil {
		return fail(stderr, err)
	}
	if ok {
		fmt.Fprintln(stdout, "match")
		return exitMatch
	}
	fmt.Fprintln(stdout, "no match")
	return exitNoMatch
}

// printProgram prints raw as tcpdump -d, -dd or -ddd (level 1, 2 or 3) do.
func printProgram(stdout, stderr io.Writer, raw []bpf.RawInstruction, level int) int {
	var s string
	switch level {
	case 1:
		s = formatImage(raw)
	case 2:
		s = formatC(raw)
	default:
		s = formatDecimal(raw)
	}
	if _, err := io.WriteString(stdout, s); err != nil {
		return fail(stderr, err)
	}
	return exitMatch
}

// fail prints err and returns exitError. The library's errors already
// start with "bpfmatch: ".
func fail(stderr io.Writer, err error) int {
	msg := err.Error()
	if !strings.HasPrefix(msg, "bpfmatch: ") {
		msg = "bpfmatch: " + msg
	}
	fmt.Fprintln(stderr, msg)
	return exitError
}

// compileError adds a hint to a compile error when the expression holds
// what looks like one of our flags: the flag package stops at the first
// word that is not a flag, so flags after the expression end up in it.
func compileError(err error, expr string) error {
	for _, w := range strings.Fields(expr) {
		name := strings.TrimLeft(w, "-")
		if i := strings.IndexByte(name, '='); i >= 0 {
			name = name[:i]
		}
		if strings.HasPrefix(w, "-") && isFlagName(name) {
			return fmt.Errorf("%w (flags such as %s must come before the expression)", err, w)
		}
	}
	return err
}
