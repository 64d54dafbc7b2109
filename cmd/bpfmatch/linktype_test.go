package main

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/headlessbpf/bpfmatch"
)

// linkFrame frames an IP packet for a capture's link type.
func linkFrame(t *testing.T, linktype uint32, ip []byte, v6 bool) []byte {
	t.Helper()
	etype := []byte{0x08, 0x00}
	if v6 {
		etype = []byte{0x86, 0xdd}
	}
	switch linktype {
	case 101, 228, 229:
		return ip
	case 1:
		hdr := append([]byte{0, 0, 0x5e, 0, 0x53, 1, 0, 0, 0x5e, 0, 0x53, 2}, etype...)
		return append(hdr, ip...)
	case 113: // packet type, ARPHRD_ETHER, address length, address, protocol
		hdr := append([]byte{0, 0, 0, 1, 0, 6, 0, 0, 0x5e, 0, 0x53, 1, 0, 0}, etype...)
		return append(hdr, ip...)
	case 276: // protocol, reserved, interface index, ARPHRD_ETHER, packet type, address length, address
		hdr := append(append([]byte{}, etype...), 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 0, 0, 0x5e, 0, 0x53, 1, 0, 0)
		return append(hdr, ip...)
	}
	t.Fatalf("no framing for link type %d", linktype)
	return nil
}

// writeCapture writes frames as a pcap or pcapng file of a link type,
// by hand: pcapgo writes only 8-bit link types.
func writeCapture(t *testing.T, path string, ng bool, linktype uint32, frames [][]byte) {
	t.Helper()
	le := binary.LittleEndian
	var b []byte
	if !ng {
		b = make([]byte, 24)
		le.PutUint32(b[0:], 0xa1b2c3d4)
		le.PutUint16(b[4:], 2)
		le.PutUint16(b[6:], 4)
		le.PutUint32(b[16:], 65535)
		le.PutUint32(b[20:], linktype)
		for _, f := range frames {
			rec := make([]byte, 16)
			le.PutUint32(rec[8:], uint32(len(f)))
			le.PutUint32(rec[12:], uint32(len(f)))
			b = append(append(b, rec...), f...)
		}
	} else {
		block := func(typ uint32, body []byte) {
			for len(body)%4 != 0 {
				body = append(body, 0)
			}
			n := uint32(12 + len(body))
			b = le.AppendUint32(b, typ)
			b = le.AppendUint32(b, n)
			b = append(b, body...)
			b = le.AppendUint32(b, n)
		}
		shb := le.AppendUint32(nil, 0x1a2b3c4d)
		shb = le.AppendUint16(shb, 1)
		shb = le.AppendUint16(shb, 0)
		shb = le.AppendUint64(shb, ^uint64(0))
		block(0x0a0d0d0a, shb)
		idb := le.AppendUint16(nil, uint16(linktype))
		idb = le.AppendUint16(idb, 0)
		idb = le.AppendUint32(idb, 65535)
		block(1, idb)
		for _, f := range frames {
			epb := le.AppendUint32(nil, 0) // interface 0
			epb = le.AppendUint64(epb, 0)  // timestamp
			epb = le.AppendUint32(epb, uint32(len(f)))
			epb = le.AppendUint32(epb, uint32(len(f)))
			block(6, append(epb, f...))
		}
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReadLinkTypes reads pcap and pcapng files of every link type the Go
// compiler knows, LINKTYPE_LINUX_SLL2 (276, above pcapgo's 8 bits) among
// them, and counts matches as tcpdump does.
func TestReadLinkTypes(t *testing.T) {
	requireCompile(t)
	tcpdump, _ := exec.LookPath("tcpdump")
	v4 := []bpfmatch.FakePacket{
		{Src: netip.MustParseAddrPort("192.0.2.1:40000"), Dst: netip.MustParseAddrPort("192.0.2.2:80"), Protocol: bpfmatch.TCP, Payload: []byte("GET /")},
		{Src: netip.MustParseAddrPort("192.0.2.1:5353"), Dst: netip.MustParseAddrPort("192.0.2.9:53"), Protocol: bpfmatch.UDP},
	}
	v6 := []bpfmatch.FakePacket{
		{Src: netip.MustParseAddrPort("[2001:db8::1]:40000"), Dst: netip.MustParseAddrPort("[2001:db8::2]:80"), Protocol: bpfmatch.TCP},
		{Src: netip.MustParseAddrPort("[2001:db8::1]:5353"), Dst: netip.MustParseAddrPort("[2001:db8::9]:53"), Protocol: bpfmatch.UDP},
	}
	exprs := []struct {
		expr   string
		v4, v6 int
	}{
		{"", 2, 2},
		{"tcp dst port 80", 1, 1},
		{"udp", 1, 1},
		{"ip", 2, 0},
		{"ip6", 0, 2},
		{"host 192.0.2.9 or host 2001:db8::9", 1, 1},
	}
	dir := t.TempDir()
	var compared int
	for _, linktype := range []uint32{1, 101, 113, 228, 229, 276} {
		for _, fam := range []string{"v4", "v6"} {
			if (linktype == 228 && fam == "v6") || (linktype == 229 && fam == "v4") {
				continue
			}
			packets := v4
			if fam == "v6" {
				packets = v6
			}
			var frames [][]byte
			for _, p := range packets {
				ip, err := p.AppendFrame(nil, bpfmatch.LinkRaw)
				if err != nil {
					t.Fatal(err)
				}
				frames = append(frames, linkFrame(t, linktype, ip, fam == "v6"))
			}
			for _, ng := range []bool{false, true} {
				name := fmt.Sprintf("%d-%s.pcap", linktype, fam)
				if ng {
					name += "ng"
				}
				file := filepath.Join(dir, name)
				writeCapture(t, file, ng, linktype, frames)
				for _, e := range exprs {
					if (linktype == 228 && e.expr == "ip6") || (linktype == 229 && e.expr == "ip") {
						continue // libpcap: "expression rejects all packets"
					}
					want := e.v4
					if fam == "v6" {
						want = e.v6
					}
					r := runArgs("-r", file, "--", e.expr)
					if r.code == exitError || strings.TrimSpace(r.stdout) != fmt.Sprint(want) {
						t.Errorf("%s, %q: want %d matches\n%v", name, e.expr, want, r)
					}
					if tcpdump != "" {
						if n, ok, msg := runTcpdumpCount(tcpdump, file, e.expr); !ok || n != want {
							t.Errorf("%s, %q: tcpdump counts %d (%v %s), want %d", name, e.expr, n, ok, msg, want)
						}
					}
					compared++
				}
			}
		}
	}
	t.Logf("%d counts of generated captures checked", compared)
}
