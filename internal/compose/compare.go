package compose

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
)

// FirstDifference returns the offset of the first byte at which a and b
// differ (the shorter one's size when one is a prefix of the other), or
// -1 when they are the same.
func FirstDifference(a, b string) (int64, error) {
	fa, err := os.Open(a)
	if err != nil {
		return 0, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return 0, err
	}
	defer fb.Close()
	ra, rb := bufio.NewReaderSize(fa, 1<<20), bufio.NewReaderSize(fb, 1<<20)
	bufA, bufB := make([]byte, 1<<16), make([]byte, 1<<16)
	var off int64
	for {
		na, errA := io.ReadFull(ra, bufA)
		nb, errB := io.ReadFull(rb, bufB)
		n := min(na, nb)
		if !bytes.Equal(bufA[:n], bufB[:n]) {
			for i := 0; i < n; i++ {
				if bufA[i] != bufB[i] {
					return off + int64(i), nil
				}
			}
		}
		if na != nb {
			return off + int64(n), nil
		}
		off += int64(n)
		endA := errors.Is(errA, io.EOF) || errors.Is(errA, io.ErrUnexpectedEOF)
		endB := errors.Is(errB, io.EOF) || errors.Is(errB, io.ErrUnexpectedEOF)
		switch {
		case errA != nil && !endA:
			return 0, errA
		case errB != nil && !endB:
			return 0, errB
		case endA || endB:
			return -1, nil
		}
	}
}
