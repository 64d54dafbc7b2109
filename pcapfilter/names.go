package pcapfilter

// Name tables: a placeholder with the signatures the code generator
// calls; the tables themselves are being written on their own.

import (
	"errors"
	"net/netip"
)

// lookupService returns the port of a service name for tcp, udp and sctp,
// -1 where that protocol has none.
func lookupService(name string) (tcp, udp, sctp int) { return -1, -1, -1 }

// lookupProtocol returns the IP protocol number of a name.
func lookupProtocol(name string) (int, bool) { return 0, false }

// lookupEtherProto returns the Ethernet type (or LLC SAP) of a name.
func lookupEtherProto(name string) (uint16, bool) { return 0, false }

// lookupEthers returns the MAC address of a name in /etc/ethers.
func lookupEthers(name string) ([6]byte, bool) { return [6]byte{}, false }

// lookupHost resolves a host name.
func lookupHost(name string) (v4, v6 []netip.Addr, err error) {
	return nil, nil, errors.New("host names are not supported yet")
}

// lookupNet returns the network number of a name in /etc/networks.
func lookupNet(name string) (uint32, bool) { return 0, false }
