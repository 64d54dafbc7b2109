package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"time"
)

// captureWriter writes the packets -r ... -w keeps: a pcap file, or
// pcapng when the input was, with the input's link type (all 32 bits of
// it, which pcapgo's writers cannot take), snapshot length and timestamps.
type captureWriter struct {
	path  string
	f     *os.File
	bw    *bufio.Writer
	ng    bool
	nanos bool // pcap: nanosecond timestamps
	err   error
}

// createCapture creates path and writes the file's header.
func createCapture(path string, ng, nanos bool, linktype, snap uint32) (*captureWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("-w: %v", err)
	}
	w := &captureWriter{path: path, f: f, bw: bufio.NewWriterSize(f, 1<<16), ng: ng, nanos: nanos}
	le := binary.LittleEndian
	if ng {
		// A section header of unknown section length, then one interface
		// with nanosecond timestamps (if_tsresol 9).
		shb := le.AppendUint32(nil, ngSectionHeader)
		shb = le.AppendUint32(shb, 28)
		shb = le.AppendUint32(shb, ngByteOrderMagic)
		shb = le.AppendUint16(shb, 1)
		shb = le.AppendUint16(shb, 0)
		shb = le.AppendUint64(shb, ^uint64(0))
		shb = le.AppendUint32(shb, 28)
		idb := le.AppendUint32(nil, ngInterfaceDescriptor)
		idb = le.AppendUint32(idb, 32)
		idb = le.AppendUint16(idb, uint16(linktype))
		idb = le.AppendUint16(idb, 0)
		idb = le.AppendUint32(idb, snap)
		idb = append(idb, 9, 0, 1, 0, 9, 0, 0, 0) // if_tsresol: 10^-9
		idb = append(idb, 0, 0, 0, 0)             // opt_endofopt
		idb = le.AppendUint32(idb, 32)
		w.put(shb)
		w.put(idb)
	} else {
		magic := uint32(magicMicros)
		if nanos {
			magic = magicNanos
		}
		h := le.AppendUint32(nil, magic)
		h = le.AppendUint16(h, 2)
		h = le.AppendUint16(h, 4)
		h = le.AppendUint64(h, 0) // time zone and accuracy
		h = le.AppendUint32(h, snap)
		h = le.AppendUint32(h, linktype)
		w.put(h)
	}
	return w, w.err
}

func (w *captureWriter) put(b []byte) {
	if w.err == nil {
		_, w.err = w.bw.Write(b)
	}
}

// write writes one packet.
func (w *captureWriter) write(data []byte, ts time.Time, wire uint32) error {
	le := binary.LittleEndian
	var h [28]byte
	if w.ng {
		pad := (4 - len(data)%4) % 4
		n := uint32(32 + len(data) + pad)
		ns := uint64(ts.UnixNano())
		le.PutUint32(h[0:], ngEnhancedPacket)
		le.PutUint32(h[4:], n)
		le.PutUint32(h[8:], 0) // interface 0
		le.PutUint32(h[12:], uint32(ns>>32))
		le.PutUint32(h[16:], uint32(ns))
		le.PutUint32(h[20:], uint32(len(data)))
		le.PutUint32(h[24:], wire)
		w.put(h[:28])
		w.put(data)
		w.put(make([]byte, pad))
		w.put(le.AppendUint32(h[:0], n))
		return w.err
	}
	frac := uint32(ts.Nanosecond() / 1000)
	if w.nanos {
		frac = uint32(ts.Nanosecond())
	}
	le.PutUint32(h[0:], uint32(ts.Unix()))
	le.PutUint32(h[4:], frac)
	le.PutUint32(h[8:], uint32(len(data)))
	le.PutUint32(h[12:], wire)
	w.put(h[:16])
	w.put(data)
	return w.err
}

// close flushes and closes the file, returning the first error.
func (w *captureWriter) close() error {
	if w.err == nil {
		w.err = w.bw.Flush()
	}
	if err := w.f.Close(); w.err == nil {
		w.err = err
	}
	if w.err != nil {
		return fmt.Errorf("-w %s: %v", w.path, w.err)
	}
	return nil
}
