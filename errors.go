package bpfmatch

import "strings"

// inContext returns err with "bpfmatch: what: " before its message, for
// errors from a constructor: the package's own errors already start with
// "bpfmatch: ", which is then not repeated. errors.Is and errors.As see
// err.
func inContext(what string, err error) error {
	return &contextError{what, err}
}

type contextError struct {
	what string
	err  error
}

func (e *contextError) Error() string {
	return "bpfmatch: " + e.what + ": " + strings.TrimPrefix(e.err.Error(), "bpfmatch: ")
}

func (e *contextError) Unwrap() error { return e.err }
