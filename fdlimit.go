package bpfmatch

import (
	"errors"
	"syscall"
)

// isOutOfFiles reports whether err says the process or the system has no
// file descriptor left.
func isOutOfFiles(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}
