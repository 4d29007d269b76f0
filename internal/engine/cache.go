package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// The build cache under CacheDir:
//
//	debs/<aa>/<sha256>.deb     downloaded packages, content-addressed
//	trees/<key>/tree/          a pipeline's tree after a checkpoint stage
//	trees/<key>/linked         digest of the tree's hard-linked files
//	trees/<key>/facts          what Config.TreeFacts read from a finished tree
//	files/<key>/<name>         a file pipeline's output
//	work/<id>/                 builds in progress (each holds work.lock)
//
// A tree or file entry's key is the hash of everything that produced it
// and the kiln binary that made it (see stageKey), so an entry is never
// stale, only unused. Entries are written under a temporary name and
// renamed into place, so a killed build leaves a temporary directory
// (removed by a later build) and never a half-written entry. Entries are
// read in place and never changed: a build copies a tree before changing
// it, and a file pipeline's output is read where it lies.
//
// Copying a tree would copy its /usr, nine tenths of a Debian system that
// the stages after a checkpoint read but do not change. So a tree is
// snapshot, not copied: the directories in linkedDirs are hard-linked,
// everything else is copied. Stages replace the files they change in those
// directories (WriteFile renames a new file over the old one) instead of
// writing into them; in case one ever does, each entry records a digest of
// its linked files' sizes, modes, owners and times, checked on every use
// and after every build that linked it: an entry whose linked files
// changed is discarded, never reused.

// linkedDirs are the top-level directories of a tree shared by hard links
// between the cache and the builds that use it.
var linkedDirs = []string{"usr"}

func (e *Engine) entryPath(key string) string { return filepath.Join(e.cfg.CacheDir, "trees", key) }
func (e *Engine) treePath(key string) string  { return filepath.Join(e.entryPath(key), "tree") }
func (e *Engine) factsPath(key string) string { return filepath.Join(e.entryPath(key), "facts") }

func (e *Engine) filePath(key, name string) string {
	return filepath.Join(e.cfg.CacheDir, "files", key, name)
}

// snapshot makes dst (absent or empty) a copy of the tree src whose
// linkedDirs share src's files by hard links. Owners, modes, links, device
// nodes, ACLs and extended attributes (file capabilities among them) are
// kept.
func snapshot(ctx context.Context, src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	var copies, links []string
	for _, ent := range entries {
		p := filepath.Join(src, ent.Name())
		if ent.IsDir() && slices.Contains(linkedDirs, ent.Name()) {
			links = append(links, p)
		} else {
			copies = append(copies, p)
		}
	}
	for _, job := range []struct {
		flags []string
		paths []string
	}{{[]string{"-a", "--reflink=auto"}, copies}, {[]string{"-a", "-l"}, links}} {
		if len(job.paths) == 0 {
			continue
		}
		argv := append(append(append([]string{}, job.flags...), "--"), job.paths...)
		argv = append(argv, dst+"/")
		if out, err := exec.CommandContext(ctx, "cp", argv...).CombinedOutput(); err != nil {
			return fmt.Errorf("copying %s: %w: %s", src, err, out)
		}
	}
	// The root directory's own owner, mode and times.
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	st := fi.Sys().(*syscall.Stat_t)
	if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := os.Chmod(dst, fi.Mode()&(fs.ModePerm|fs.ModeSticky|fs.ModeSetuid|fs.ModeSetgid)); err != nil {
		return err
	}
	return os.Chtimes(dst, time.Unix(st.Atim.Sec, st.Atim.Nsec), fi.ModTime())
}

// linkedDigest hashes the path, type, mode, owner, size and modification
// time of every file in tree's linkedDirs: any change made through one of
// its hard links shows.
func linkedDigest(tree string) (string, error) {
	h := sha256.New()
	for _, d := range linkedDirs {
		root := filepath.Join(tree, d)
		err := filepath.WalkDir(root, func(p string, ent fs.DirEntry, err error) error {
			if err != nil {
				if p == root && errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if ent.IsDir() {
				return nil
			}
			fi, err := ent.Info()
			if err != nil {
				return err
			}
			st := fi.Sys().(*syscall.Stat_t)
			rel, _ := filepath.Rel(tree, p)
			fmt.Fprintf(h, "%q %o %d:%d %d %d.%09d\n", rel, st.Mode, st.Uid, st.Gid, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// cachedTree returns the cached tree under key when there is one and its
// linked files are as they were stored; an entry whose files changed is
// discarded.
func (e *Engine) cachedTree(key string) (string, bool) {
	want, err := os.ReadFile(filepath.Join(e.entryPath(key), "linked"))
	if err != nil {
		return "", false
	}
	p := e.treePath(key)
	if !e.verifyTree(key, string(want)) {
		return "", false
	}
	touch(e.entryPath(key))
	return p, true
}

// verifyTree checks the linked files of entry key against want and
// discards the entry when they differ.
func (e *Engine) verifyTree(key, want string) bool {
	got, err := linkedDigest(e.treePath(key))
	if err == nil && got == want {
		return true
	}
	e.cfg.Log.Warn("discarding a cached tree whose shared files changed", "entry", e.entryPath(key), "err", err)
	e.discard(e.entryPath(key))
	return false
}

// verifyLinked re-checks entries a build shared files with, once it is done
// with them. finished is the linked digest of the build's finished tree,
// when known: an entry whose recorded digest is the same needs no walk of
// its own, since every linked file of the finished tree has the path and
// the size, mode, owner and time the entry recorded, and a change made
// through a hard link shows in both trees alike.
func (e *Engine) verifyLinked(keys []string, finished string) {
	for _, k := range keys {
		if want, err := os.ReadFile(filepath.Join(e.entryPath(k), "linked")); err == nil {
			if finished != "" && string(want) == finished {
				continue
			}
			e.verifyTree(k, string(want))
		}
	}
}

// discard takes an entry out of the cache at once; its files go when no
// build runs (another one may be reading them now).
func (e *Engine) discard(p string) {
	_ = os.Rename(p, p+".tmp-discarded-"+randomID())
}

// restoreTree snapshots the cached tree under key into dst, reporting
// whether there was one.
func (e *Engine) restoreTree(ctx context.Context, key, dst string) (bool, error) {
	p, ok := e.cachedTree(key)
	if !ok {
		return false, nil
	}
	if err := snapshot(ctx, p, dst); err != nil {
		return false, err
	}
	return true, nil
}

// storeTree saves a snapshot of the tree src, which the build goes on
// changing, under key.
func (e *Engine) storeTree(ctx context.Context, key, src string) error {
	_, err := e.storeEntry(e.entryPath(key), func(tmp string) error {
		return snapshot(ctx, src, filepath.Join(tmp, "tree"))
	}, nil)
	return err
}

// moveTree moves the finished tree dir into the cache under key and
// returns where the tree is now: in the cache, or still at dir when it was
// not stored (another build stored it first, or storing failed), and the
// tree's linked digest when it was stored.
func (e *Engine) moveTree(key, dir string) (string, string, error) {
	stored := false
	digest, err := e.storeEntry(e.entryPath(key), func(tmp string) error {
		if err := os.Rename(dir, filepath.Join(tmp, "tree")); err != nil {
			return err
		}
		stored = true
		return nil
	}, func(tmp string) {
		if stored {
			if rerr := os.Rename(filepath.Join(tmp, "tree"), dir); rerr == nil {
				stored = false
			}
		}
	})
	if stored {
		return e.treePath(key), digest, err
	}
	return dir, "", err
}

// storeEntry fills a tree entry under a temporary name, records its linked
// digest and renames it into place, returning the digest. When that fails,
// or another build stored the entry first, undo (if any) takes back what
// fill put there and the rest is removed.
func (e *Engine) storeEntry(final string, fill func(tmp string) error, undo func(tmp string)) (string, error) {
	if _, err := os.Stat(final); err == nil {
		return "", nil
	}
	tmp := final + ".tmp-" + randomID()
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", err
	}
	var digest string
	err := fill(tmp)
	if err == nil {
		if digest, err = linkedDigest(filepath.Join(tmp, "tree")); err == nil {
			err = os.WriteFile(filepath.Join(tmp, "linked"), []byte(digest), 0o644)
		}
	}
	if err == nil {
		if err = os.Rename(tmp, final); err == nil {
			return digest, nil
		}
		if errors.Is(err, fs.ErrExist) || isNotEmpty(err) {
			err = nil // another build stored it first
		}
	}
	if undo != nil {
		undo(tmp)
	}
	os.RemoveAll(tmp)
	return "", err
}

// storeFile moves a file pipeline's finished output into the cache under
// key and returns where it is now.
func (e *Engine) storeFile(key, name, src string) (string, error) {
	final := e.filePath(key, name)
	if _, err := os.Stat(final); err == nil {
		return final, nil
	}
	tmpDir := filepath.Join(e.cfg.CacheDir, "files", key+".tmp-"+randomID())
	if err := os.MkdirAll(tmpDir, 0o755); err != nil {
		return src, err
	}
	if err := os.Rename(src, filepath.Join(tmpDir, name)); err != nil {
		os.RemoveAll(tmpDir)
		return src, err
	}
	if err := os.Rename(tmpDir, filepath.Dir(final)); err != nil {
		_ = os.Rename(filepath.Join(tmpDir, name), src)
		os.RemoveAll(tmpDir)
		if errors.Is(err, fs.ErrExist) || isNotEmpty(err) {
			return src, nil
		}
		return src, err
	}
	return final, nil
}

// cachedFile returns the cached output of a file pipeline, if any.
func (e *Engine) cachedFile(key, name string) (string, bool) {
	p := e.filePath(key, name)
	if _, err := os.Stat(p); err != nil {
		return "", false
	}
	touch(filepath.Dir(p))
	return p, true
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

func isNotEmpty(err error) bool {
	var le *os.LinkError
	return errors.As(err, &le) && errors.Is(le.Err, syscall.ENOTEMPTY)
}

// touch records a use, for least-recently-used eviction.
func touch(p string) {
	now := time.Now()
	_ = os.Chtimes(p, now, now)
}
