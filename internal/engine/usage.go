package engine

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Entry is one item of the build cache.
type Entry struct {
	// Kind is "deb", "tree", "file" or "metadata".
	Kind     string    `json:"kind"`
	Path     string    `json:"path"`
	Size     int64     `json:"size"`
	LastUsed time.Time `json:"last_used"`
}

// Entries lists the cache's items, least recently used first. Files that
// several entries share by hard links count once, for the most recently
// used of them: the space an entry's size gives is what removing it, and
// every entry used less recently, frees.
func Entries(cacheDir string) ([]Entry, error) {
	var out []Entry
	add := func(kind, pattern string) error {
		matches, err := filepath.Glob(filepath.Join(cacheDir, pattern))
		if err != nil {
			return err
		}
		for _, p := range matches {
			if strings.Contains(filepath.Base(p), ".tmp-") || strings.HasSuffix(p, ".lock") {
				continue
			}
			fi, err := os.Stat(p)
			if err != nil {
				continue
			}
			out = append(out, Entry{Kind: kind, Path: p, LastUsed: fi.ModTime()})
		}
		return nil
	}
	for _, k := range []struct{ kind, pattern string }{
		{"deb", "debs/*/*.deb"}, {"tree", "trees/*"}, {"file", "files/*"}, {"metadata", "metadata/*"},
	} {
		if err := add(k.kind, k.pattern); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return b.LastUsed.Compare(a.LastUsed) })
	seen := map[[2]uint64]bool{}
	for i := range out {
		out[i].Size = diskUsage(out[i].Path, seen)
	}
	slices.Reverse(out)
	return out, nil
}

// diskUsage is the space a file or directory tree takes on disk (sparse
// files count their allocated blocks only), leaving out files with several
// links already in seen.
func diskUsage(p string, seen map[[2]uint64]bool) int64 {
	var total int64
	_ = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			total += fi.Size()
			return nil
		}
		if st.Nlink > 1 && !fi.IsDir() {
			id := [2]uint64{st.Dev, st.Ino}
			if seen[id] {
				return nil
			}
			seen[id] = true
		}
		total += st.Blocks * 512
		return nil
	})
	return total
}

// Prune removes the least recently used packages, trees and files until the
// cache takes at most maxSize bytes (repository metadata counts but is
// kept), and returns what it removed. It takes the cache's
// exclusive lock, so it waits for running builds and they wait for it.
func Prune(cacheDir string, maxSize int64) ([]Entry, error) {
	unlock, err := lockCache(cacheDir, true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	entries, err := Entries(cacheDir)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, e := range entries {
		total += e.Size
	}
	var removed []Entry
	for _, e := range entries {
		if total <= maxSize {
			break
		}
		if e.Kind == "metadata" {
			continue // the package solver keeps it, under its own locks
		}
		if err := os.RemoveAll(e.Path); err != nil {
			return removed, fmt.Errorf("removing %s: %w", e.Path, err)
		}
		total -= e.Size
		removed = append(removed, e)
	}
	return removed, nil
}

// lockCache takes the cache-wide lock: shared for builds, exclusive for
// pruning.
func lockCache(cacheDir string, exclusive bool) (func(), error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(cacheDir, "cache.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking the cache: %w", err)
	}
	return func() { f.Close() }, nil
}
