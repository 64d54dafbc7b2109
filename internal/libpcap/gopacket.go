//go:build cgo && libpcap

package libpcap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/google/gopacket"
	"github.com/google/gopacket/pcap"
	"golang.org/x/net/bpf"
)

// Program runs one program with gopacket's pcap.BPF (pcap_offline_filter
// through gopacket): the executor of bpfmatch's WithLibpcap. It is safe for
// concurrent use: pcap.BPF.Matches writes the packet header into the BPF
// value itself, so each goroutine borrows a BPF value of its own from a
// pool.
type Program struct {
	raw  []bpf.RawInstruction
	pool sync.Pool // of *pcap.BPF holding raw
}

// NewProgram returns a Program running prog, which must be valid (bpfmatch
// validates it first: pcap_offline_filter does not).
func NewProgram(prog []bpf.RawInstruction) (*Program, error) {
	p := &Program{raw: append([]bpf.RawInstruction(nil), prog...)}
	first, err := p.newBPF()
	if err != nil {
		return nil, err
	}
	p.pool.New = func() any {
		b, err := p.newBPF()
		if err != nil {
			// newBPF gave a BPF for the same instructions once.
			panic(fmt.Sprintf("libpcap: gopacket refused a program it accepted before: %v", err))
		}
		return b
	}
	p.pool.Put(first)
	return p, nil
}

func (p *Program) newBPF() (*pcap.BPF, error) {
	h, err := instructionHandle()
	if err != nil {
		return nil, err
	}
	insns := make([]pcap.BPFInstruction, len(p.raw))
	for i, r := range p.raw {
		insns[i] = pcap.BPFInstruction{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return h.NewBPFInstructionFilter(insns)
}

// Match runs the program on a packet whose captured bytes are data and
// whose length on the wire is wirelen, and reports whether it returned
// non-zero.
func (p *Program) Match(data []byte, wirelen uint32) bool {
	if len(data) == 0 {
		// pcap.BPF.Matches takes the address of data[0]; a packet with
		// nothing captured still has a verdict (len, a return).
		return Filter(p.raw, nil, 0, wirelen) != 0
	}
	b := p.pool.Get().(*pcap.BPF)
	// Matches takes the captured length from len(data).
	ok := b.Matches(gopacket.CaptureInfo{CaptureLength: len(data), Length: int(wirelen)}, data)
	p.pool.Put(b)
	return ok
}

var (
	handleOnce sync.Once
	handle     *pcap.Handle
	handleErr  error
)

// instructionHandle returns the handle whose NewBPFInstructionFilter makes
// BPF values from instructions. gopacket 1.1.19 offers that only as a
// method of an open handle and has no pcap_open_dead for it, so this is an
// offline handle on an empty capture file, opened once and kept (the file
// is removed at once); its link type does not matter, since the
// instructions are given.
func instructionHandle() (*pcap.Handle, error) {
	handleOnce.Do(func() {
		f, err := os.CreateTemp("", "bpfmatch-empty-*.pcap")
		if err != nil {
			handleErr = fmt.Errorf("libpcap: creating an empty capture file: %w", err)
			return
		}
		defer os.Remove(f.Name())
		var hdr [24]byte
		binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4) // pcap, microseconds
		binary.LittleEndian.PutUint16(hdr[4:], 2)
		binary.LittleEndian.PutUint16(hdr[6:], 4)
		binary.LittleEndian.PutUint32(hdr[16:], 262144) // snap length
		binary.LittleEndian.PutUint32(hdr[20:], 1)      // LINKTYPE_ETHERNET
		_, err = f.Write(hdr[:])
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			handleErr = fmt.Errorf("libpcap: writing an empty capture file: %w", err)
			return
		}
		if handle, err = pcap.OpenOffline(f.Name()); err != nil {
			handleErr = errors.Join(errors.New("libpcap: opening an empty capture file"), err)
		}
	})
	return handle, handleErr
}
