//go:build !cgo

package main

import (
	"errors"

	"golang.org/x/net/bpf"
)

// bpfImage needs libpcap's bpf_image, so cgo.
func bpfImage([]bpf.RawInstruction) ([]string, error) {
	return nil, errors.New("-d needs libpcap, and this program was built without cgo; use -dd or -ddd")
}
