package sparse

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// allocated is how many bytes of p's blocks the filesystem holds.
func allocated(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	require.NoError(t, err)
	return fi.Sys().(*syscall.Stat_t).Blocks * 512
}

func TestCopyLeavesHolesWhereTheZerosAre(t *testing.T) {
	data := make([]byte, 8<<20)
	copy(data[1<<20:], bytes.Repeat([]byte("kiln"), 1000))
	copy(data[5<<20:], bytes.Repeat([]byte("disk"), 1000))
	p := filepath.Join(t.TempDir(), "disk.raw")
	f, err := os.Create(p)
	require.NoError(t, err)
	n, err := Copy(f, bytes.NewReader(data))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	assert.Equal(t, int64(len(data)), n)
	got, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, data, got, "the bytes are the source's, trailing zeros included")
	assert.Less(t, allocated(t, p), int64(1<<20), "only the blocks with data take space")
}

type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

func TestCopyKeepsWhatArrivedBeforeAnError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "part")
	f, err := os.Create(p)
	require.NoError(t, err)
	defer f.Close()
	broken := errors.New("connection reset")
	n, err := Copy(f, &failingReader{r: bytes.NewReader(make([]byte, 3*blockSize)), err: broken})
	assert.ErrorIs(t, err, broken)
	assert.Equal(t, int64(3*blockSize), n)
	fi, err := f.Stat()
	require.NoError(t, err)
	assert.Equal(t, n, fi.Size(), "the file ends where the copy stopped, so it can go on from there")
}

// A stream cut short (a connection dropped mid-body) is an error, not
// the end of the data.
func TestCopyTakesACutStreamForAnError(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "part"))
	require.NoError(t, err)
	defer f.Close()
	_, err = Copy(f, &failingReader{r: bytes.NewReader([]byte("half")), err: io.ErrUnexpectedEOF})
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
}
