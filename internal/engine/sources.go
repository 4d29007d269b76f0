package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kiln-project/kiln/internal/manifest"
)

// debPath is where a package with this SHA-256 lives in the download cache:
// content-addressed, so the same package is fetched once for every build.
func (e *Engine) debPath(sha string) string {
	return filepath.Join(e.cfg.CacheDir, "debs", sha[:2], sha+".deb")
}

// fetchDebs makes every package of the manifest available in the cache,
// verified against its SHA-256, and returns sha256 → path. A cached file is
// hashed again on every use; one that does not match is discarded and
// fetched again.
func (e *Engine) fetchDebs(ctx context.Context, debs []manifest.Deb) (map[string]string, error) {
	var total int64
	for _, d := range debs {
		total += d.Size
	}
	var done atomic.Int64
	e.report(Event{Kind: Download, Done: 0, Size: total})
	out := make(map[string]string, len(debs))
	var mu sync.Mutex
	jobs := make(chan manifest.Deb)
	errs := make(chan error, len(debs))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range e.cfg.Downloads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range jobs {
				p, err := e.fetchDeb(ctx, d)
				if err != nil {
					errs <- err
					cancel()
					continue
				}
				mu.Lock()
				out[d.SHA256] = p
				mu.Unlock()
				e.report(Event{Kind: Download, Done: done.Add(d.Size), Size: total})
			}
		}()
	}
feed:
	for _, d := range debs {
		select {
		case jobs <- d:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func (e *Engine) fetchDeb(ctx context.Context, d manifest.Deb) (string, error) {
	if len(d.SHA256) != 64 {
		return "", fmt.Errorf("package %s: %q is not a SHA-256", d.Name, d.SHA256)
	}
	if _, err := hex.DecodeString(d.SHA256); err != nil {
		return "", fmt.Errorf("package %s: %q is not a SHA-256", d.Name, d.SHA256)
	}
	p := e.debPath(d.SHA256)
	if ok, err := fileHasSHA256(p, d.SHA256); err == nil && ok {
		now := time.Now()
		_ = os.Chtimes(p, now, now) // last use, for eviction
		return p, nil
	} else if err == nil {
		e.cfg.Log.Warn("cached package is corrupt; fetching it again", "package", d.Name, "path", p)
		_ = os.Remove(p)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * time.Second):
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		lastErr = e.download(ctx, d, p)
		if lastErr == nil {
			return p, nil
		}
		if errors.Is(lastErr, errChecksum) || ctx.Err() != nil {
			break
		}
	}
	return "", fmt.Errorf("fetching package %s %s: %w", d.Name, d.Version, lastErr)
}

var errChecksum = errors.New("checksum mismatch")

func (e *Engine) download(ctx context.Context, d manifest.Deb, dst string) error {
	u, err := url.Parse(d.URL)
	if err != nil {
		return err
	}
	var body io.ReadCloser
	switch u.Scheme {
	case "http", "https":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.URL, nil)
		if err != nil {
			return err
		}
		resp, err := e.http.Do(req)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return fmt.Errorf("%s: %s", d.URL, resp.Status)
		}
		body = resp.Body
	case "file":
		f, err := os.Open(u.Path)
		if err != nil {
			return err
		}
		body = f
	default:
		return fmt.Errorf("%s: unsupported URL scheme", d.URL)
	}
	defer body.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".fetch-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != d.SHA256 {
		return fmt.Errorf("%s: %w: got %s (%d bytes), the manifest pins %s", d.URL, errChecksum, got, n, d.SHA256)
	}
	return os.Rename(tmp.Name(), dst)
}

// fileHasSHA256 reports whether the file exists with this content hash.
func fileHasSHA256(p, want string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, err
	}
	return hex.EncodeToString(h.Sum(nil)) == want, nil
}
