//go:build !(cgo && libpcap)

// Package libpcap is the project's one binding to libpcap. This build has
// none: it needs cgo and the build tag libpcap.
package libpcap

import (
	"errors"

	"golang.org/x/net/bpf"
)

// Available reports whether this build links libpcap.
const Available = false

// ErrUnavailable is the error of every call in a build without libpcap.
var ErrUnavailable = errors.New("this program was built without libpcap: it needs cgo and the build tag libpcap")

// Compile returns ErrUnavailable.
func Compile(string, int, int, bool, uint32) ([]bpf.RawInstruction, error) {
	return nil, ErrUnavailable
}

// Filter returns 0.
func Filter([]bpf.RawInstruction, []byte, uint32, uint32) uint32 { return 0 }

// Validate returns false.
func Validate([]bpf.RawInstruction) bool { return false }

// Image returns nil.
func Image([]bpf.RawInstruction) []string { return nil }

// Program would run a program with gopacket's pcap.BPF; this build has
// none.
type Program struct{}

// NewProgram returns ErrUnavailable.
func NewProgram([]bpf.RawInstruction) (*Program, error) { return nil, ErrUnavailable }

// Match returns false.
func (*Program) Match([]byte, uint32) bool { return false }
