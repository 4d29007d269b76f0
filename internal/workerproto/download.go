package workerproto

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-project/kiln/internal/sparse"
)

// GetFile downloads the compose's file name to path, checking that it
// is size bytes with the SHA-256 sum (hex) the build recorded. A file
// already at path from an earlier, broken try is gone on from where it
// stopped (a Range request), and a transient failure (a dropped
// connection, a 5xx) is retried with backoff until ctx ends. progress,
// if not nil, is told the bytes there are so far.
func (c *Client) GetFile(ctx context.Context, j *Job, name, path string, size int64, sum string, progress func(done int64)) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	wait, maxWait := c.MinBackoff, c.MaxBackoff
	if wait <= 0 {
		wait = 500 * time.Millisecond
	}
	if maxWait <= 0 {
		maxWait = 30 * time.Second
	}
	for {
		have, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			return err
		}
		if have > size {
			if err := f.Truncate(0); err != nil {
				return err
			}
			have = 0
		}
		if have < size {
			err = c.getRange(ctx, j, name, f, have, progress)
		}
		if err == nil {
			return checkFile(f, size, sum)
		}
		var perm *permanentError
		if errors.As(err, &perm) || ctx.Err() != nil {
			return fmt.Errorf("downloading %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("downloading %s: %w", name, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, maxWait)
	}
}

// permanentError is a download failure that trying again does not mend.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }

// getRange appends the file's bytes from offset on to f.
func (c *Client) getRange(ctx context.Context, j *Job, name string, f *os.File, offset int64, progress func(int64)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.server(), "/")+Prefix+Path(RouteFile, j.ID, name), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+j.Token)
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && offset > 0:
	case resp.StatusCode == http.StatusOK:
		// The whole file: start again.
		if err := f.Truncate(0); err != nil {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		offset = 0
	case transient(resp.StatusCode) || resp.StatusCode == http.StatusInternalServerError || resp.StatusCode == http.StatusTooManyRequests:
		return fmt.Errorf("GET %s: %s", name, resp.Status)
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusUnauthorized:
		return &permanentError{ErrLeaseLost}
	default:
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return &permanentError{fmt.Errorf("GET %s: %s: %s", name, resp.Status, strings.TrimSpace(string(msg)))}
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return err
	}
	src := io.Reader(resp.Body)
	if progress != nil {
		src = &countingReader{r: resp.Body, n: offset, report: progress}
	}
	// A disk image is mostly zeros: they stay holes.
	_, err = sparse.Copy(f, src)
	return err
}

// checkFile checks f is size bytes with the SHA-256 sum (hex) sum.
func checkFile(f *os.File, size int64, sum string) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("the downloaded image is %d bytes, the build made %d", n, size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); sum != "" && got != sum {
		_ = f.Truncate(0)
		return fmt.Errorf("the downloaded image's SHA-256 is %s, the build's %s", got, sum)
	}
	return nil
}

// countingReader tells report how many bytes there are, at most twice a
// second.
type countingReader struct {
	r      io.Reader
	n      int64
	last   time.Time
	report func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if now := time.Now(); now.Sub(c.last) >= 500*time.Millisecond {
		c.last = now
		c.report(c.n)
	}
	return n, err
}
