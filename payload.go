package bpfmatch

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// PayloadPrefix returns a filter expression that matches TCP segments,
// over IPv4 or IPv6, whose payload starts with prefix: for a Router or a
// Listener with WithPayload, connections whose client first sends it, for
// "GET " an HTTP request, for "SSH-" an SSH client. Compile takes it as any
// expression.
//
// libpcap's tcp[] reads IPv4 packets only, so a rule written with tcp[]
// alone turns away every IPv6 client of a dual-stack port; the expression
// returned tests IPv6 packets with ip6[] (a TCP header right after the
// IPv6 header: the packets of a connection, which carry no extension
// headers). It tests the payload's length as the IP header gives it, so
// that the zeros padding a short Ethernet frame never pass for payload.
// An empty prefix gives "tcp".
func PayloadPrefix(prefix []byte) string {
	if len(prefix) == 0 {
		return "tcp"
	}
	v4 := compareAt(prefix, func(off int, size int) string {
		return fmt.Sprintf("tcp[((tcp[12:1] & 0xf0) >> 2)%s:%d]", plus(off), size)
	})
	v6 := compareAt(prefix, func(off int, size int) string {
		return fmt.Sprintf("ip6[40 + ((ip6[52] & 0xf0) >> 2)%s:%d]", plus(off), size)
	})
	// The payload's length, from the IP header, keeps the zeros that pad a
	// short Ethernet frame from passing for payload.
	n := len(prefix)
	return fmt.Sprintf("(ip and ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2) >= %d and %s) or "+
		"(ip6 and ip6[6] = 6 and ip6[4:2] - ((ip6[52] & 0xf0) >> 2) >= %d and %s)", n, v4, n, v6)
}

// compareAt returns the tests that prefix is at the bytes at(off, size)
// reads, four bytes at a time, then two, then one.
func compareAt(prefix []byte, at func(off, size int) string) string {
	var tests []string
	for off := 0; off < len(prefix); {
		var size int
		var v uint32
		switch rest := prefix[off:]; {
		case len(rest) >= 4:
			size, v = 4, binary.BigEndian.Uint32(rest)
		case len(rest) >= 2:
			size, v = 2, uint32(binary.BigEndian.Uint16(rest))
		default:
			size, v = 1, uint32(rest[0])
		}
		tests = append(tests, fmt.Sprintf("%s = %#x", at(off, size), v))
		off += size
	}
	return strings.Join(tests, " and ")
}

// plus returns " + off", or nothing for 0.
func plus(off int) string {
	if off == 0 {
		return ""
	}
	return fmt.Sprintf(" + %d", off)
}
