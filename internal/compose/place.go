package compose

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kiln-project/kiln/internal/engine"
)

// A rebuild that changes nothing finds its artifact in the cache, and
// copying it out (hundreds of megabytes for a disk image, since the cache's
// filesystem rarely clones files) would be most of its time. So every copy
// kiln makes is recorded in the cache (outputs/<hash of the destination's
// path>): the cached file it came from and the copy's identity as the
// kernel keeps it — device, inode, size, modification and change times.
// When the next build of the same path would copy the same cached file
// again and the destination still has that identity, the copy is kept.
//
// The change time (ctime) is what makes this safe: every write, truncate,
// chmod, chown or rename of the file sets it to the current time, and no
// system call sets it to anything else, so a copy that anything (a booted
// qemu, an editor, another build) touched since it was recorded never
// matches. A write in the same clock tick as the recording could keep the
// ctime it had; so the identity is read only once the file's ctime is more
// than stampSettle in the past (waiting for that if needed), and anything
// written after that read gets a later ctime.

// stampSettle is longer than the kernel's coarse clock tick (at most 10 ms
// at HZ=100), which file times are taken from.
const stampSettle = 20 * time.Millisecond

// fileID is a file's identity as recorded in a copy stamp.
type fileID struct {
	Dev   uint64 `json:"dev"`
	Ino   uint64 `json:"ino"`
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime_ns"`
	Ctime int64  `json:"ctime_ns"`
}

// copyStamp records one copy of a cached artifact.
type copyStamp struct {
	Source   string `json:"source"`
	SourceID fileID `json:"source_id"`
	Dest     string `json:"dest"`
	DestID   fileID `json:"dest_id"`
}

func idOf(fi os.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || !fi.Mode().IsRegular() {
		return fileID{}, false
	}
	return fileID{
		Dev: uint64(st.Dev), Ino: st.Ino, Size: st.Size,
		Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(),
	}, true
}

func statID(p string) (fileID, bool) {
	fi, err := os.Lstat(p)
	if err != nil {
		return fileID{}, false
	}
	return idOf(fi)
}

// settledID reads p's identity once its ctime is stampSettle old.
func settledID(p string) (fileID, bool) {
	id, ok := statID(p)
	if !ok {
		return id, false
	}
	if wait := time.Until(time.Unix(0, id.Ctime).Add(stampSettle)); wait > 0 {
		time.Sleep(min(wait, stampSettle))
		return statID(p)
	}
	return id, true
}

func stampPath(cacheDir, dst string) string {
	sum := sha256.Sum256([]byte(dst))
	return filepath.Join(cacheDir, "outputs", hex.EncodeToString(sum[:]))
}

// placeArtifact puts the cached artifact src at dst: it keeps dst when it is
// the unchanged copy of src an earlier build made (see above), and copies
// otherwise. It reports whether it copied.
func placeArtifact(ctx context.Context, cacheDir, src, dst string) (copied bool, err error) {
	if abs, err := filepath.Abs(dst); err == nil {
		dst = abs
	}
	stamp := stampPath(cacheDir, dst)
	srcID, srcOK := statID(src)
	if b, err := os.ReadFile(stamp); err == nil && srcOK {
		var old copyStamp
		if json.Unmarshal(b, &old) == nil && old.Source == src && old.SourceID == srcID && old.Dest == dst {
			if id, ok := statID(dst); ok && id == old.DestID {
				return false, nil
			}
		}
	}
	os.Remove(stamp)
	if err := copyOut(ctx, src, dst); err != nil {
		return true, err
	}
	if !srcOK {
		return true, nil
	}
	id, ok := settledID(dst)
	if !ok {
		return true, nil
	}
	b, err := json.Marshal(copyStamp{Source: src, SourceID: srcID, Dest: dst, DestID: id})
	if err == nil {
		err = writeAtomic(stamp, b)
		if os.IsNotExist(err) {
			if err = os.MkdirAll(filepath.Dir(stamp), 0o700); err == nil {
				err = writeAtomic(stamp, b)
			}
		}
	}
	// A stamp that cannot be written only costs the next build a copy.
	_ = err
	return true, nil
}

// copyOut copies the artifact src (sparsely) to dst, which appears only
// complete.
func copyOut(ctx context.Context, src, dst string) error {
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".partial")
	defer os.Remove(tmp)
	if err := engine.CopyFile(ctx, src, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
