package disk

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testUUID = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"

// makeTree writes a small tree whose change times are the moment it is
// written; old files have mtimes before the epoch, "new" files (as a build
// writes them) the current time.
func makeTree(t *testing.T, names []string) string {
	t.Helper()
	dir := t.TempDir()
	old := time.Unix(1600000000, 123456789)
	for _, n := range names {
		sub := filepath.Join(dir, "dir"+n)
		require.NoError(t, os.Mkdir(sub, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(sub, "old"+n), []byte("old "+n+"\n"), 0o644))
		require.NoError(t, os.Chtimes(filepath.Join(sub, "old"+n), old, old))
		require.NoError(t, os.WriteFile(filepath.Join(sub, "new"+n), []byte("new "+n+"\n"), 0o600))
		require.NoError(t, os.Symlink("old"+n, filepath.Join(sub, "link"+n)))
	}
	require.NoError(t, os.Link(filepath.Join(dir, "dir1", "old1"), filepath.Join(dir, "hard")))
	return dir
}

// mkfs writes an ext4 filesystem of tree at offset off of a new image, as
// the disk image stage does (a fixed UUID, hash seed and clock).
func mkfs(t *testing.T, tree string, off int64, epoch int64) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "fs.img")
	f, err := os.Create(img)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(off+32<<20))
	require.NoError(t, f.Close())
	cmd := exec.Command("mkfs.ext4", "-q", "-t", "ext4", "-b", "4096", "-I", "256",
		"-O", "metadata_csum,64bit,extra_isize,^metadata_csum_seed,^orphan_file", "-U", testUUID,
		"-E", "root_owner=0:0,nodiscard,offset="+strconv.FormatInt(off, 10)+",hash_seed="+testUUID,
		"-d", tree, img, strconv.Itoa(32<<20/4096))
	cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME="+strconv.FormatInt(epoch, 10), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return img
}

func normalize(t *testing.T, img string, off, epoch int64) Ext4TimesResult {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	res, err := NormalizeExt4Times(f, f, off, epoch)
	require.NoError(t, err)
	return res
}

func fsck(t *testing.T, img string, off int64) {
	t.Helper()
	target := img
	if off != 0 {
		// e2fsck takes no offset: check a copy of the filesystem alone.
		data, err := os.ReadFile(img)
		require.NoError(t, err)
		target = filepath.Join(t.TempDir(), "alone.img")
		require.NoError(t, os.WriteFile(target, data[off:], 0o644))
	}
	out, err := exec.Command("e2fsck", "-fn", target).CombinedOutput()
	require.NoError(t, err, "e2fsck finds the filesystem clean:\n%s", out)
}

func needTools(t *testing.T) {
	for _, tool := range []string{"mkfs.ext4", "e2fsck", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
}

// Two trees with the same names and contents, written at different
// moments and in a different order, give different filesystems from
// mke2fs; after NormalizeExt4Times they are the same bytes, and e2fsck
// finds them clean (the inode checksums were recomputed).
func TestNormalizeExt4TimesMakesTwoBuildsIdentical(t *testing.T) {
	needTools(t)
	const epoch = 1700000000
	const off = 1 << 20
	a := makeTree(t, []string{"1", "2", "3", "4", "5"})
	time.Sleep(1100 * time.Millisecond) // other change times, to the second
	b := makeTree(t, []string{"5", "4", "3", "2", "1"})
	imgA, imgB := mkfs(t, a, off, epoch), mkfs(t, b, off, epoch)
	dataA, _ := os.ReadFile(imgA)
	dataB, _ := os.ReadFile(imgB)
	require.False(t, bytes.Equal(dataA, dataB), "mke2fs alone copies the trees' change times, so the images differ")

	resA, resB := normalize(t, imgA, off, epoch), normalize(t, imgB, off, epoch)
	assert.Equal(t, resA, resB)
	// root, lost+found, 5 directories of 3, and the hard link's file is one inode.
	assert.Equal(t, 2+5*4, resA.Inodes)
	assert.Positive(t, resA.Changed)
	dataA, _ = os.ReadFile(imgA)
	dataB, _ = os.ReadFile(imgB)
	assert.True(t, bytes.Equal(dataA, dataB), "the normalised images are bit-identical")
	fsck(t, imgA, off)

	// A second pass finds nothing to change.
	assert.Zero(t, normalize(t, imgA, off, epoch).Changed)

	// What the inodes say: times from the epoch, old mtimes kept without
	// nanoseconds, new mtimes clamped.
	alone := filepath.Join(t.TempDir(), "alone.img")
	require.NoError(t, os.WriteFile(alone, dataA[off:], 0o644))
	stat := func(p string) string {
		out, err := exec.Command("debugfs", "-R", "stat "+p, alone).CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	old := stat("/dir1/old1")
	assert.Contains(t, old, "mtime: 0x5f5e1000:00000000", "an mtime before the epoch is kept, to the second")
	for _, field := range []string{"ctime", "atime", "crtime"} {
		assert.Contains(t, old, field+": 0x6553f100:00000000")
	}
	assert.Contains(t, stat("/dir2/new2"), "mtime: 0x6553f100:00000000", "an mtime after the epoch is clamped")
	assert.Contains(t, stat("/"), "ctime: 0x6553f100:00000000")
}

// The checksum check refuses a filesystem whose inodes do not carry the
// checksums this code computes, instead of rewriting them.
func TestNormalizeExt4TimesRefusesABadChecksum(t *testing.T) {
	needTools(t)
	tree := makeTree(t, []string{"1"})
	img := mkfs(t, tree, 0, 1700000000)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	// Find the root inode (2) through the first group descriptor and
	// flip a bit of its checksum.
	sb := make([]byte, 1024)
	_, err = f.ReadAt(sb, 1024)
	require.NoError(t, err)
	gd := make([]byte, 64)
	_, err = f.ReadAt(gd, 4096)
	require.NoError(t, err)
	table := int64(binary.LittleEndian.Uint32(gd[bgInodeTableLo:])) * 4096
	inodeSize := int64(binary.LittleEndian.Uint16(sb[sbInodeSize:]))
	b := make([]byte, 1)
	at := table + inodeSize + inChecksumLo
	_, err = f.ReadAt(b, at)
	require.NoError(t, err)
	b[0] ^= 1
	_, err = f.WriteAt(b, at)
	require.NoError(t, err)
	_, err = NormalizeExt4Times(f, f, 0, 1700000000)
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "inode 2: checksum"), err.Error())
}

func TestNormalizeExt4TimesRefusesOtherData(t *testing.T) {
	img := filepath.Join(t.TempDir(), "zero.img")
	require.NoError(t, os.WriteFile(img, make([]byte, 8192), 0o644))
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	_, err = NormalizeExt4Times(f, f, 0, 1700000000)
	assert.ErrorContains(t, err, "no ext4 superblock")
	_, err = NormalizeExt4Times(f, f, 0, -1)
	assert.ErrorContains(t, err, "epoch")
}
