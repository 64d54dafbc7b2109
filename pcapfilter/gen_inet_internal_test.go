package pcapfilter

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// TestHostNameBothFamilies checks "host NAME" for a name with IPv4 and
// IPv6 addresses, which libpcap cannot be asked about here (no such name
// resolves on the test machine): each address is tested as "host ADDR"
// with the same qualifiers would be, the IPv4 ones first; ip skips the
// IPv6 addresses and ip6 the IPv4 ones; arp and rarp, which have no IPv6
// form, fail on an IPv6 address; without a link-layer type field (raw IP)
// an IPv4 address is tested in IPv4 alone.
func TestHostNameBothFamilies(t *testing.T) {
	saved := lookupHostFunc
	defer func() { lookupHostFunc = saved }()
	lookupHostFunc = func(_ context.Context, name string) ([]netip.Addr, error) {
		if name != "dual.test" {
			return nil, errUnknownHost
		}
		return []netip.Addr{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")}, nil
	}
	for _, tc := range []struct {
		link      LinkType
		expr, eq  string // eq compiles to the same program as expr
		wantError string
	}{
		{LinkEthernet, "host dual.test", "host 10.0.0.1 or host 10.0.0.2 or host 2001:db8::1", ""},
		{LinkEthernet, "src host dual.test", "src host 10.0.0.1 or src host 10.0.0.2 or src host 2001:db8::1", ""},
		{LinkEthernet, "ip dst host dual.test", "ip dst host 10.0.0.1 or ip dst host 10.0.0.2", ""},
		{LinkEthernet, "ip6 host dual.test", "ip6 host 2001:db8::1", ""},
		{LinkLinuxSLL, "host dual.test", "host 10.0.0.1 or host 10.0.0.2 or host 2001:db8::1", ""},
		{LinkRaw, "host dual.test", "ip host 10.0.0.1 or ip host 10.0.0.2 or ip6 host 2001:db8::1", ""},
		{LinkIPv6, "src or dst dual.test", "ip src or dst 10.0.0.1 or ip src or dst 10.0.0.2 or ip6 src or dst 2001:db8::1", ""},
		{LinkEthernet, "arp host dual.test", "", "'arp' modifier applied to ip6 host"},
		{LinkEthernet, "rarp src dual.test", "", "'rarp' modifier applied to ip6 host"},
		{LinkEthernet, "tcp host dual.test", "", "'tcp' modifier applied to host"},
		{LinkEthernet, "host nosuch.test", "", "unknown host 'nosuch.test'"},
	} {
		got, err := Compile(tc.expr, Options{LinkType: tc.link})
		if tc.wantError != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantError) {
				t.Errorf("%v: %q: got %v, want an error with %q", tc.link, tc.expr, err, tc.wantError)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %q: %v", tc.link, tc.expr, err)
			continue
		}
		want, err := Compile(tc.eq, Options{LinkType: tc.link})
		if err != nil {
			t.Fatalf("%v: %q: %v", tc.link, tc.eq, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%v: %q compiles to\n%v\nnot as %q does:\n%v", tc.link, tc.expr, got, tc.eq, want)
		}
	}
}
