package main

import (
	"fmt"

	"github.com/headlessbpf/bpfmatch"
)

// linkDescriptions are tcpdump's descriptions of the link types it names,
// as "reading from file F, link-type EN10MB (Ethernet)" prints them.
var linkDescriptions = map[bpfmatch.LinkType]string{
	bpfmatch.LinkEthernet: "Ethernet",
	bpfmatch.LinkRaw:      "Raw IP",
	113:                   "Linux cooked v1",
	228:                   "Raw IPv4",
	229:                   "Raw IPv6",
	276:                   "Linux cooked v2",
}

// linkName returns a link type as tcpdump prints it: EN10MB (Ethernet),
// LINUX_SLL (Linux cooked v1), or DLT N where it has no name here.
func linkName(l bpfmatch.LinkType) string {
	name := l.String()
	switch l {
	case bpfmatch.LinkEthernet:
		name = "EN10MB"
	case bpfmatch.LinkRaw:
		name = "RAW"
	}
	if d, ok := linkDescriptions[l]; ok {
		return fmt.Sprintf("%s (%s)", name, d)
	}
	return name
}
