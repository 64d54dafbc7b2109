//go:build !linux

package bpfmatch

import (
	"errors"
	"net"
)

// saveSYN reports that only Linux saves the SYNs of a listener's
// connections.
func saveSYN(net.Listener) error {
	return errors.New("only Linux gives a listener the SYNs of its connections")
}

// savedSYN returns nil: there is no saved SYN.
func savedSYN(net.Conn, int) []byte { return nil }
