package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/pcapgo"
)

// corpusCaptureFiles returns the corpus captures whose names are given,
// skipping the test without the corpus.
func corpusCaptureFiles(t *testing.T, names ...string) []string {
	t.Helper()
	dir := needCorpus(t, "pcaps")
	var files []string
	for _, n := range names {
		p := filepath.Join(dir, n)
		if _, err := os.Stat(p); err == nil {
			files = append(files, p)
		}
	}
	if len(files) == 0 {
		t.Skipf("none of the captures %v is in the corpus", names)
	}
	return files
}

var someCaptures = []string{
	"dns_tcp.pcap", "vrrp.pcap", "afs.pcap", "arp-oobr.pcap", "802.1ad_QinQ.pcap",
	"LINKTYPE_RAW_ipv6.pcap", "tcp-handshake-nano.pcap", "of13_ericsson.pcapng", "nhrp.pcapng",
	"pppoes.pcap", "LINKTYPE_IPV4.pcap", "LINKTYPE_IPV6.pcap", "isup.pcap",
}

// TestReadStdin reads captures from standard input (-r -) and counts as
// from the file.
func TestReadStdin(t *testing.T) {
	requireCompile(t)
	for _, file := range corpusCaptureFiles(t, someCaptures...) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, expr := range []string{"", "tcp", "udp or ip6"} {
			want := runArgs("-r", file, "--", expr)
			var stdout, stderr bytes.Buffer
			code := runWith([]string{"-r", "-", "--", expr}, bytes.NewReader(data), &stdout, &stderr)
			if code != want.code || stdout.String() != want.stdout || stderr.Len() > 0 {
				t.Errorf("bpfmatch -r - %q < %s: exit %d, stdout %q, stderr %q; from the file: %v",
					expr, filepath.Base(file), code, stdout.String(), stderr.String(), want)
			}
		}
	}
}

// TestExprFile reads the expression with -F, comments and lines as
// tcpdump reads them.
func TestExprFile(t *testing.T) {
	requireCompile(t)
	dir := t.TempDir()
	tests := []struct {
		name, text string
		wantCode   int
		wantOut    string
		wantErr    string
	}{
		{"one line", "tcp port 80\n", 0, "match\n", ""},
		{"lines joined", "tcp\nand\nport 80", 0, "match\n", ""},
		{"comments", "# web traffic\ntcp # only TCP\n  and port 80 # http\n", 0, "match\n", ""},
		{"no match", "udp\n", 1, "no match\n", ""},
		{"only comments match all", "# nothing\n", 0, "match\n", ""},
		{"empty matches all", "", 0, "match\n", ""},
		{"syntax error", "tcp and\n", 2, "", `compiling "tcp and "`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, fmt.Sprintf("%d.txt", i))
			if err := os.WriteFile(file, []byte(tt.text), 0o644); err != nil {
				t.Fatal(err)
			}
			checkResult(t, runArgs("-F", file), tt.wantCode, tt.wantOut, tt.wantErr)
		})
	}
	t.Run("too long", func(t *testing.T) {
		file := filepath.Join(dir, "long.txt")
		if err := os.WriteFile(file, bytes.Repeat([]byte("tcp or "), maxExprFile/7+1), 0o644); err != nil {
			t.Fatal(err)
		}
		checkResult(t, runArgs("-F", file), exitError, "", "no expression is that long")
	})
}

var tcpdumpAnyCount = regexp.MustCompile(`(?m)^(\d+) packets?$`)

// TestReadDamagedCapturesAsTcpdump cuts corpus captures at many places
// and checks that -r prints the count tcpdump prints, and fails where
// tcpdump does: the count of the packets before the damage, then the
// error.
func TestReadDamagedCapturesAsTcpdump(t *testing.T) {
	requireCompile(t)
	tcpdump := needTcpdump(t)
	dir := t.TempDir()
	var compared, failed int
	for _, file := range corpusCaptureFiles(t, someCaptures...) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, cut := range []int{len(data) - 1, len(data) - 5, len(data) * 3 / 4, len(data) / 2, len(data)/2 + 3, 100, 40, 30} {
			if cut <= 24 || cut >= len(data) {
				continue
			}
			damaged := filepath.Join(dir, fmt.Sprintf("%s-%d", filepath.Base(file), cut))
			if err := os.WriteFile(damaged, data[:cut], 0o644); err != nil {
				t.Fatal(err)
			}
			for _, expr := range []string{"", "ip"} {
				cmd := exec.Command(tcpdump, "--count", "-nn", "-r", damaged, "--", expr)
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				tdErr := cmd.Run()
				m := tcpdumpAnyCount.FindStringSubmatch(stdout.String())
				r := runArgs("-r", damaged, "--", expr)
				compared++
				if m == nil {
					// tcpdump could not open the file: no count.
					if r.code != exitError || r.stdout != "" {
						t.Errorf("%s cut to %d bytes, %q: tcpdump cannot open it (%s), bpfmatch:\n%v", filepath.Base(file), cut, expr, strings.TrimSpace(stderr.String()), r)
					}
					continue
				}
				want, _ := strconv.Atoi(m[1])
				if tdErr != nil {
					failed++
				}
				if got := strings.TrimSpace(r.stdout); got != strconv.Itoa(want) || (tdErr != nil) != (r.code == exitError) {
					t.Errorf("%s cut to %d bytes, %q: tcpdump counts %d (error: %v, %s), bpfmatch:\n%v", filepath.Base(file), cut, expr, want, tdErr, strings.TrimSpace(stderr.String()), r)
				}
			}
		}
	}
	t.Logf("%d counts of damaged captures compared with tcpdump's, %d of them on files tcpdump reports damaged", compared, failed)
	if compared == 0 {
		t.Fatal("nothing compared")
	}
}

// readRecords reads every packet of a pcap or pcapng file, with the link
// type as the file gives it.
func readRecords(t *testing.T, path string) (linktype uint32, snap uint32, recs []gopacket.CaptureInfo, datas [][]byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var src gopacket.PacketDataSource
	if len(b) >= 4 && binary.LittleEndian.Uint32(b) == magicPcapNG {
		r, err := pcapgo.NewNgReader(bytes.NewReader(b), pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		iface, _ := r.Interface(0)
		linktype, snap, src = uint32(binary.LittleEndian.Uint16(b[28+8:])), uint32(iface.SnapLength), r
	} else {
		r, err := pcapgo.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		linktype, snap, src = binary.LittleEndian.Uint32(b[20:]), r.Snaplen(), r
	}
	for {
		data, ci, err := src.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		recs, datas = append(recs, ci), append(datas, data)
	}
	return
}

// TestReadWriteAsTcpdump checks -r IN -w OUT EXPRESSION against tcpdump's:
// the same packets, bytes, lengths and timestamps (tcpdump writes
// microseconds), the same link type and snapshot length; pcapng in,
// pcapng out.
func TestReadWriteAsTcpdump(t *testing.T) {
	requireCompile(t)
	tcpdump := needTcpdump(t)
	dir := t.TempDir()
	var files, packets int
	for _, file := range corpusCaptureFiles(t, someCaptures...) {
		for i, expr := range []string{"", "tcp", "udp or ip6", "ip and len > 100"} {
			name := filepath.Base(file)
			want := filepath.Join(dir, fmt.Sprintf("%s-%d-tcpdump", name, i))
			got := filepath.Join(dir, fmt.Sprintf("%s-%d-bpfmatch", name, i))
			out, err := exec.Command(tcpdump, "-r", file, "-w", want, "--", expr).CombinedOutput()
			if err != nil {
				if strings.Contains(string(out), "expression rejects all packets") || strings.Contains(string(out), "not supported") {
					continue
				}
				t.Fatalf("tcpdump -r %s -w: %v\n%s", name, err, out)
			}
			r := runArgs("-r", file, "-w", got, "--", expr)
			if r.code == exitError {
				t.Errorf("%s, %q:\n%v", name, expr, r)
				continue
			}
			wl, ws, wrecs, wdata := readRecords(t, want)
			gl, gs, grecs, gdata := readRecords(t, got)
			files++
			if wl != gl || ws != gs {
				t.Errorf("%s, %q: link type %d, snap length %d; tcpdump writes %d, %d", name, expr, gl, gs, wl, ws)
			}
			if strings.TrimSpace(r.stdout) != strconv.Itoa(len(wrecs)) {
				t.Errorf("%s, %q: count %q, tcpdump wrote %d packets", name, expr, r.stdout, len(wrecs))
			}
			if len(grecs) != len(wrecs) {
				t.Errorf("%s, %q: %d packets written, tcpdump wrote %d", name, expr, len(grecs), len(wrecs))
				continue
			}
			for j := range grecs {
				packets++
				g, w := grecs[j], wrecs[j]
				if !bytes.Equal(gdata[j], wdata[j]) || g.Length != w.Length || g.CaptureLength != w.CaptureLength ||
					g.Timestamp.Truncate(time.Microsecond) != w.Timestamp.Truncate(time.Microsecond) {
					t.Errorf("%s, %q, packet %d: written %v (%d bytes), tcpdump wrote %v (%d bytes)", name, expr, j+1, g, len(gdata[j]), w, len(wdata[j]))
					break
				}
			}
		}
	}
	t.Logf("-r -w: %d files with %d packets compared with tcpdump's", files, packets)
	if files == 0 {
		t.Fatal("nothing compared")
	}
}
