package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// The build cache under CacheDir:
//
//	debs/<aa>/<sha256>.deb     downloaded packages, content-addressed
//	trees/<key>/               a pipeline's tree after a checkpoint stage
//	files/<key>/<name>         a file pipeline's output
//	work/<id>/                 builds in progress (each holds work.lock)
//
// A tree or file entry's key is the hash of everything that produced it
// and the kiln binary that made it (see stageKey), so an entry is never
// stale, only unused. Entries are
// written under a temporary name and renamed into place, so a killed build
// leaves a temporary directory (removed by the next build) and never a
// half-written entry.

func (e *Engine) treePath(key string) string { return filepath.Join(e.cfg.CacheDir, "trees", key) }

func (e *Engine) filePath(key, name string) string {
	return filepath.Join(e.cfg.CacheDir, "files", key, name)
}

// copyTree copies a tree with every owner, mode, link, device node, ACL and
// extended attribute (file capabilities among them), sharing blocks where
// the filesystem can.
func copyTree(ctx context.Context, src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "cp", "-a", "--reflink=auto", src+"/.", dst+"/")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("copying %s: %w: %s", src, err, out)
	}
	return nil
}

// CopyFile copies a (possibly sparse) file.
func CopyFile(ctx context.Context, src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "cp", "--sparse=always", "--reflink=auto", src, dst)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("copying %s: %w: %s", src, err, out)
	}
	return nil
}

// restoreTree fills dst from the cached tree, reporting whether there was one.
func (e *Engine) restoreTree(ctx context.Context, key, dst string) (bool, error) {
	p := e.treePath(key)
	if _, err := os.Stat(filepath.Join(p, ".kiln-complete")); err != nil {
		return false, nil
	}
	touch(p)
	if err := copyTree(ctx, p, dst); err != nil {
		return false, err
	}
	return true, os.Remove(filepath.Join(dst, ".kiln-complete"))
}

// storeTree saves a tree under key.
func (e *Engine) storeTree(ctx context.Context, key, src string) error {
	final := e.treePath(key)
	if _, err := os.Stat(final); err == nil {
		return nil
	}
	tmp := final + ".tmp-" + randomID()
	if err := copyTree(ctx, src, tmp); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, ".kiln-complete"), nil, 0o644); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		if errors.Is(err, fs.ErrExist) || isNotEmpty(err) {
			return nil // another build stored it first
		}
		return err
	}
	return nil
}

// restoreFile copies the cached output of a file pipeline to dst.
func (e *Engine) restoreFile(ctx context.Context, key, name, dst string) (bool, error) {
	p := e.filePath(key, name)
	if _, err := os.Stat(p); err != nil {
		return false, nil
	}
	touch(filepath.Dir(p))
	return true, CopyFile(ctx, p, dst)
}

// storeFile saves a file pipeline's output under key.
func (e *Engine) storeFile(ctx context.Context, key, name, src string) error {
	final := e.filePath(key, name)
	if _, err := os.Stat(final); err == nil {
		return nil
	}
	tmpDir := filepath.Join(e.cfg.CacheDir, "files", key+".tmp-"+randomID())
	if err := CopyFile(ctx, src, filepath.Join(tmpDir, name)); err != nil {
		os.RemoveAll(tmpDir)
		return err
	}
	if err := os.Rename(tmpDir, filepath.Dir(final)); err != nil {
		os.RemoveAll(tmpDir)
		if errors.Is(err, fs.ErrExist) || isNotEmpty(err) {
			return nil
		}
		return err
	}
	return nil
}

func isNotEmpty(err error) bool {
	var le *os.LinkError
	return errors.As(err, &le) && errors.Is(le.Err, syscall.ENOTEMPTY)
}

// touch records a use, for least-recently-used eviction.
func touch(p string) {
	now := time.Now()
	_ = os.Chtimes(p, now, now)
}
