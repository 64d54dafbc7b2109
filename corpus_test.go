package bpfmatch

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/pcapgo"
)

// corpusDir is the shared corpus of real filters and captures, beside the
// project; tests that need it skip where it is absent.
var corpusDir = filepath.Join("..", "shared", "corpus")

func corpusOrSkip(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(corpusDir); err != nil {
		t.Skipf("the shared corpus is not at %s (%v): skipping the differential test against it", corpusDir, err)
	}
	return corpusDir
}

// corpusFilters returns the expressions of the named files of the corpus.
func corpusFilters(t testing.TB, names ...string) []string {
	dir := corpusOrSkip(t)
	var out []string
	for _, name := range names {
		f, err := os.Open(filepath.Join(dir, "filters", name))
		if err != nil {
			t.Fatal(err)
		}
		s := bufio.NewScanner(f)
		for s.Scan() {
			line := strings.TrimSpace(s.Text())
			if line != "" && !strings.HasPrefix(line, "#") {
				out = append(out, line)
			}
		}
		f.Close()
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// generatedPackets returns n varied fake packets, the same every run.
func generatedPackets(n int, link LinkType) []FakePacket {
	r := rand.New(rand.NewPCG(1, uint64(link)))
	v4 := []string{"10.0.0.1", "10.1.2.3", "192.168.1.10", "172.16.5.4", "192.0.2.21", "127.0.0.1",
		"224.0.0.251", "255.255.255.255", "0.0.0.0", "8.8.8.8", "198.51.100.7", "10.255.255.255"}
	v6 := []string{"2001:db8::1", "2001:db8::443", "::1", "fe80::1", "ff02::1", "ff02::fb", "::",
		"2001:db8:85a3::8a2e:370:7334", "::ffff:10.0.0.1"}
	ports := []uint16{0, 20, 21, 22, 23, 25, 53, 67, 68, 80, 110, 123, 137, 143, 161, 443, 445, 514,
		993, 1024, 1080, 1900, 3128, 3306, 3389, 5060, 5353, 6000, 6667, 8080, 40000, 65535}
	payloads := [][]byte{nil, {0}, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), []byte("POST /a HTTP/1.0\r\n"),
		{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}, []byte("SSH-2.0-OpenSSH_9.2\r\n"), []byte("USER anonymous\r\n"),
		[]byte("220 ftp ready\r\n"), {0x12, 0x34, 0x01, 0x00, 0x00, 0x01}, bytes.Repeat([]byte{0xff}, 40),
		bytes.Repeat([]byte("abcd"), 128), bytes.Repeat([]byte{0x45}, 1460)}
	flags := []TCPFlags{0, SYN, SYN | ACK, ACK, FIN | ACK, RST, RST | ACK, PSH | ACK, NoFlags, 0xff, URG | ACK | PSH, ECE | CWR | SYN}
	pick := func(s []string) netip.Addr { return netip.MustParseAddr(s[r.IntN(len(s))]) }
	var out []FakePacket
	for len(out) < n {
		var src, dst netip.Addr
		if r.IntN(3) == 0 {
			src, dst = pick(v6), pick(v6)
			if src.Unmap().Is4() != dst.Unmap().Is4() {
				continue
			}
		} else {
			src, dst = pick(v4), pick(v4)
		}
		p := FakePacket{
			Src:      netip.AddrPortFrom(src, ports[r.IntN(len(ports))]),
			Dst:      netip.AddrPortFrom(dst, ports[r.IntN(len(ports))]),
			Protocol: []Protocol{TCP, UDP}[r.IntN(2)],
			Payload:  payloads[r.IntN(len(payloads))],
			Flags:    flags[r.IntN(len(flags))],
			TTL:      uint8(r.IntN(4) * 64),
			Seq:      r.Uint32(),
			Ack:      r.Uint32(),
			Window:   uint16(r.IntN(3) * 1000),
		}
		if r.IntN(2) == 0 {
			p.Payload = p.Payload[:r.IntN(len(p.Payload)+1)]
		}
		if link == LinkEthernet {
			if r.IntN(4) == 0 {
				p.VLAN = &VLAN{ID: uint16(r.IntN(4096)), Priority: uint8(r.IntN(8)), DropEligible: r.IntN(2) == 0}
			}
			switch r.IntN(5) {
			case 0:
				p.DstMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
			case 1:
				p.DstMAC = net.HardwareAddr{0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb}
			case 2:
				p.SrcMAC = net.HardwareAddr{0x00, 0x11, 0x22, 0x33, 0x44, 0x55}
			}
		}
		out = append(out, p)
	}
	return out
}

type capture struct {
	name  string
	link  LinkType
	snap  int
	data  [][]byte
	wires []uint32
}

// corpusCaptures reads every capture of the corpus.
func corpusCaptures(t testing.TB) []capture {
	dir := filepath.Join(corpusOrSkip(t), "pcaps")
	names, _ := filepath.Glob(filepath.Join(dir, "*.pcap*"))
	var out []capture
	for _, path := range names {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		c := capture{name: filepath.Base(path)}
		var read func() ([]byte, gopacket.CaptureInfo, error)
		if strings.HasSuffix(path, ".pcapng") {
			r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			c.link = LinkTypeFromPcap(uint32(r.LinkType()))
			read = r.ReadPacketData
		} else {
			r, err := pcapgo.NewReader(f)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			c.link, c.snap = LinkTypeFromPcap(uint32(r.LinkType())), int(r.Snaplen())
			read = r.ReadPacketData
		}
		for {
			data, ci, err := read()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			c.data = append(c.data, data)
			c.wires = append(c.wires, uint32(max(ci.Length, len(data))))
		}
		f.Close()
		out = append(out, c)
	}
	return out
}

// TestCorpusCaptureLinkTypes reads every corpus capture and checks that
// its link type is one the Go compiler knows, so that Compile serves every
// capture of the corpus without libpcap.
func TestCorpusCaptureLinkTypes(t *testing.T) {
	caps := corpusCaptures(t)
	byLink := map[LinkType]int{}
	for _, c := range caps {
		if !slices.Contains(goLinkTypes, c.link) {
			t.Errorf("%s: link type %v, which the Go compiler does not know", c.name, c.link)
		}
		if len(c.data) == 0 {
			t.Errorf("%s: no packets read", c.name)
		}
		byLink[c.link] += len(c.data)
	}
	t.Logf("%d captures; packets by link type: %v", len(caps), byLink)
}
