//go:build linux

package bpfmatch_test

import (
	"fmt"
	"log"

	"github.com/google/gopacket/pcapgo"
	"github.com/headlessbpf/bpfmatch"
)

// A program the Go compiler made is a capture filter as well: here it is
// installed in the kernel under a pure-Go capture with gopacket's pcapgo,
// with no libpcap. It needs the privilege to capture (CAP_NET_RAW), so the
// example is compiled but not run.
func ExampleMatcher_Program_capture() {
	m := bpfmatch.MustCompile("tcp dst port 443 and not net 10.0.0.0/8")
	h, err := pcapgo.NewEthernetHandle("eth0")
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	if err := h.SetBPF(m.Program()); err != nil {
		log.Fatal(err)
	}
	for {
		data, ci, err := h.ReadPacketData()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ci.Timestamp, len(data))
	}
}
