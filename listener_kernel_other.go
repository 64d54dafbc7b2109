//go:build !linux

package bpfmatch

import "net"

// attachListenerFilter does nothing outside Linux.
func attachListenerFilter(net.Listener, *Matcher) kernelStatus {
	return kernelStatus{reason: "socket filters are attached on Linux only"}
}

// detachKernelFilter does nothing outside Linux.
func detachKernelFilter(net.Conn) {}
