package compose

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFirstDifference(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, 0o644))
		return p
	}
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i % 253)
	}
	other := append([]byte(nil), big...)
	other[2<<20+7] ^= 1
	a, b := write("a", big), write("b", other)
	off, err := FirstDifference(a, b)
	require.NoError(t, err)
	assert.Equal(t, int64(2<<20+7), off)
	off, err = FirstDifference(a, a)
	require.NoError(t, err)
	assert.Equal(t, int64(-1), off)
	short := write("short", big[:1<<20+3])
	off, err = FirstDifference(a, short)
	require.NoError(t, err)
	assert.Equal(t, int64(1<<20+3), off, "a prefix differs where it ends")
}
