// Package sparse copies streams into files without writing their runs
// of zeros: a disk image is mostly empty, and leaving holes where it is
// keeps a 4 GiB image that holds 1 GiB of data at 1 GiB on disk, and
// spares the writes.
package sparse

import (
	"bytes"
	"io"
	"os"
)

// blockSize is the unit holes are made in: a zero block is skipped, any
// other written whole.
const blockSize = 64 << 10

var zeros [blockSize]byte

// Copy copies src into f from f's current offset, seeking over blocks of
// zeros instead of writing them, and sets f's size to where the copy
// ends (so a run of zeros at the end is there too). It returns the bytes
// copied.
func Copy(f *os.File, src io.Reader) (int64, error) {
	start, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	buf := make([]byte, blockSize)
	var n int64
	for {
		m, rerr := fill(src, buf)
		if m > 0 {
			if bytes.Equal(buf[:m], zeros[:m]) {
				if _, err := f.Seek(int64(m), io.SeekCurrent); err != nil {
					return n, err
				}
			} else if _, err := f.Write(buf[:m]); err != nil {
				return n, err
			}
			n += int64(m)
		}
		if rerr == io.EOF {
			return n, f.Truncate(start + n)
		}
		if rerr != nil {
			// What was copied stays, holes included, so a caller can go
			// on from start+n.
			if terr := f.Truncate(start + n); terr != nil {
				return n, terr
			}
			return n, rerr
		}
	}
}

// fill reads into buf until it is full or src ends: io.EOF only when src
// ended, any other error as src gave it (a connection cut short is
// io.ErrUnexpectedEOF, which is not an end).
func fill(src io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := src.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
