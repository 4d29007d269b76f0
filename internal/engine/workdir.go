package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// newWorkDir makes a work directory for one build, held by an exclusive
// lock for as long as the build runs. Work directories (and temporary cache
// entries) whose lock nobody holds belong to builds that were killed: they
// are removed first, so a SIGKILLed build never breaks the next one.
func (e *Engine) newWorkDir() (string, func(), error) {
	root := filepath.Join(e.cfg.CacheDir, "work")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", nil, err
	}
	e.removeStale(root)
	dir := filepath.Join(root, randomID())
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", nil, err
	}
	lock, err := os.OpenFile(filepath.Join(dir, "work.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("locking the work directory: %w", err)
	}
	release := func() {
		os.RemoveAll(dir)
		lock.Close()
	}
	return dir, release, nil
}

// removeStale removes work directories and temporary cache entries left
// by builds that no longer run.
func (e *Engine) removeStale(root string) {
	entries, _ := os.ReadDir(root)
	for _, ent := range entries {
		dir := filepath.Join(root, ent.Name())
		lock, err := os.OpenFile(filepath.Join(dir, "work.lock"), os.O_RDWR, 0)
		if err != nil {
			// Killed before it took its lock (give a starting build a minute).
			if fi, serr := os.Stat(dir); errors.Is(err, os.ErrNotExist) && serr == nil && time.Since(fi.ModTime()) > time.Minute {
				os.RemoveAll(dir)
			}
			continue
		}
		if syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			e.cfg.Log.Info("removing the work directory of a build that was killed", "dir", dir)
			os.RemoveAll(dir)
		}
		lock.Close()
	}
	if e.activeBuilds(root) > 0 {
		return // their temporary cache entries may be in use
	}
	for _, sub := range []string{"trees", "files"} {
		entries, _ := os.ReadDir(filepath.Join(e.cfg.CacheDir, sub))
		for _, ent := range entries {
			if strings.Contains(ent.Name(), ".tmp-") {
				os.RemoveAll(filepath.Join(e.cfg.CacheDir, sub, ent.Name()))
			}
		}
	}
}

func (e *Engine) activeBuilds(root string) int {
	entries, _ := os.ReadDir(root)
	return len(entries)
}
