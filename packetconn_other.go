//go:build !linux

package bpfmatch

import "net"

// sysConn is the receive path of a PacketConn over a *net.UDPConn: outside
// Linux, package net's, which tells neither a datagram's true length nor
// its destination.
type sysConn struct{}

func (*sysConn) init(*net.UDPConn, bool) {}

// direct reports whether datagrams are read by the system's own path
// rather than the net.UDPConn's: never here.
func (*sysConn) direct() bool { return false }

// recv reads one datagram into b.
func (*sysConn) recv(u *net.UDPConn, b []byte) (received, error) {
	n, src, err := u.ReadFromUDPAddrPort(b)
	return received{n: n, size: n, src: src}, err
}

// attachKernelFilter does nothing outside Linux.
func (c *PacketConn) attachKernelFilter() kernelStatus {
	return kernelStatus{reason: "socket filters are attached on Linux only"}
}

// kernelDetached reports why an attached filter was detached: never here.
func (c *PacketConn) kernelDetached() string { return "" }
