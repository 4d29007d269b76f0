package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// ext4 on-disk offsets used by NormalizeExt4Times (see the kernel's
// fs/ext4/ext4.h).
const (
	sbOffset          = 1024
	sbInodesCount     = 0x00
	sbFirstDataBlock  = 0x14
	sbLogBlockSize    = 0x18
	sbInodesPerGroup  = 0x28
	sbMagic           = 0x38
	sbRevLevel        = 0x4c
	sbFirstIno        = 0x54
	sbInodeSize       = 0x58
	sbFeatureIncompat = 0x60
	sbFeatureROCompat = 0x64
	sbUUID            = 0x68
	sbDescSize        = 0xfe
	sbChecksumSeed    = 0x270

	incompat64Bit    = 0x80
	incompatCsumSeed = 0x2000
	roCompatMetaCsum = 0x400

	bgInodeBitmapLo = 0x04
	bgInodeTableLo  = 0x08
	bgFlags         = 0x12
	bgInodeBitmapHi = 0x24
	bgInodeTableHi  = 0x28
	bgInodeUninit   = 0x1

	inAtime       = 0x08
	inCtime       = 0x0c
	inMtime       = 0x10
	inGeneration  = 0x64
	inChecksumLo  = 0x7c
	inExtraIsize  = 0x80
	inChecksumHi  = 0x82
	inCtimeExtra  = 0x84
	inMtimeExtra  = 0x88
	inAtimeExtra  = 0x8c
	inCrtime      = 0x90
	inCrtimeExtra = 0x94
	goodOldInode  = 128
	rootIno       = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c is ext4's crc32c_le: the CRC without Go's pre- and
// post-inversion.
func crc32c(crc uint32, p []byte) uint32 {
	return ^crc32.Update(^crc, castagnoli, p)
}

// Ext4TimesResult says what NormalizeExt4Times did.
type Ext4TimesResult struct {
	Inodes  int // in-use inodes looked at
	Changed int // inodes rewritten
}

// NormalizeExt4Times rewrites the times of every in-use inode of the ext4
// filesystem at byte offset off of f so that they depend only on the
// files' contents and epoch: the change, access and creation times become
// epoch and a modification time later than epoch becomes epoch (as tar's
// --clamp-mtime does), all without nanoseconds. mke2fs -d copies change
// and access times from the source tree, where the kernel sets them when
// the files are written and read, so without this two builds of one tree
// differ. Inode checksums (metadata_csum) are recomputed; the existing
// checksum of each inode is verified first, so a filesystem this code
// misreads is refused rather than damaged. The reserved inodes other than
// the root directory are left alone (mke2fs dates them with its own
// clock, E2FSPROGS_FAKE_TIME).
func NormalizeExt4Times(f io.ReaderAt, w io.WriterAt, off int64, epoch int64) (Ext4TimesResult, error) {
	var res Ext4TimesResult
	if epoch < 0 || epoch > 1<<31-1 {
		return res, fmt.Errorf("ext4 times: epoch %d is outside 1970-2038", epoch)
	}
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, off+sbOffset); err != nil {
		return res, fmt.Errorf("ext4 times: reading the superblock: %w", err)
	}
	le := binary.LittleEndian
	if le.Uint16(sb[sbMagic:]) != 0xef53 {
		return res, errors.New("ext4 times: no ext4 superblock")
	}
	blockSize := int64(1024) << le.Uint32(sb[sbLogBlockSize:])
	inodesCount := le.Uint32(sb[sbInodesCount:])
	perGroup := le.Uint32(sb[sbInodesPerGroup:])
	firstIno, inodeSize := uint32(11), uint32(goodOldInode)
	if le.Uint32(sb[sbRevLevel:]) > 0 {
		firstIno, inodeSize = le.Uint32(sb[sbFirstIno:]), uint32(le.Uint16(sb[sbInodeSize:]))
	}
	if perGroup == 0 || inodeSize < goodOldInode || blockSize > 64<<10 {
		return res, errors.New("ext4 times: the superblock's geometry is not valid")
	}
	incompat := le.Uint32(sb[sbFeatureIncompat:])
	descSize := int64(32)
	if incompat&incompat64Bit != 0 {
		descSize = int64(le.Uint16(sb[sbDescSize:]))
	}
	csum := le.Uint32(sb[sbFeatureROCompat:])&roCompatMetaCsum != 0
	var seed uint32
	if incompat&incompatCsumSeed != 0 {
		seed = le.Uint32(sb[sbChecksumSeed:])
	} else {
		seed = crc32c(^uint32(0), sb[sbUUID:sbUUID+16])
	}

	groups := (inodesCount + perGroup - 1) / perGroup
	gdt := make([]byte, int64(groups)*descSize)
	gdtBlock := int64(le.Uint32(sb[sbFirstDataBlock:])) + 1
	if _, err := f.ReadAt(gdt, off+gdtBlock*blockSize); err != nil {
		return res, fmt.Errorf("ext4 times: reading the group descriptors: %w", err)
	}
	bitmap := make([]byte, (perGroup+7)/8)
	table := make([]byte, int64(perGroup)*int64(inodeSize))
	for g := uint32(0); g < groups; g++ {
		d := gdt[int64(g)*descSize:][:descSize]
		if le.Uint16(d[bgFlags:])&bgInodeUninit != 0 {
			continue
		}
		bm, it := int64(le.Uint32(d[bgInodeBitmapLo:])), int64(le.Uint32(d[bgInodeTableLo:]))
		if descSize >= 64 {
			bm |= int64(le.Uint32(d[bgInodeBitmapHi:])) << 32
			it |= int64(le.Uint32(d[bgInodeTableHi:])) << 32
		}
		if _, err := f.ReadAt(bitmap, off+bm*blockSize); err != nil {
			return res, fmt.Errorf("ext4 times: group %d: reading the inode bitmap: %w", g, err)
		}
		if _, err := f.ReadAt(table, off+it*blockSize); err != nil {
			return res, fmt.Errorf("ext4 times: group %d: reading the inode table: %w", g, err)
		}
		dirty := false
		for i := uint32(0); i < perGroup; i++ {
			ino := g*perGroup + i + 1
			if bitmap[i/8]&(1<<(i%8)) == 0 || ino > inodesCount || (ino < firstIno && ino != rootIno) {
				continue
			}
			res.Inodes++
			inode := table[int64(i)*int64(inodeSize):][:inodeSize]
			if csum {
				if got, want := inodeChecksum(seed, ino, inode), storedChecksum(inode); got != want {
					return res, fmt.Errorf("ext4 times: inode %d: checksum %#x, computed %#x: not a filesystem this code understands", ino, want, got)
				}
			}
			if normalizeInodeTimes(inode, uint32(epoch)) {
				if csum {
					setChecksum(inode, inodeChecksum(seed, ino, inode))
				}
				res.Changed++
				dirty = true
			}
		}
		if dirty {
			if _, err := w.WriteAt(table, off+it*blockSize); err != nil {
				return res, fmt.Errorf("ext4 times: group %d: writing the inode table: %w", g, err)
			}
		}
	}
	return res, nil
}

// extraSize is the number of bytes of the inode in use beyond the first
// 128.
func extraSize(inode []byte) int {
	if len(inode) <= goodOldInode {
		return 0
	}
	return int(binary.LittleEndian.Uint16(inode[inExtraIsize:]))
}

// hasField says whether the inode's extra space holds the 4-byte field at
// offset at.
func hasField(inode []byte, at int) bool {
	return goodOldInode+extraSize(inode) >= at+4 && len(inode) >= at+4
}

// normalizeInodeTimes sets the inode's times as NormalizeExt4Times says
// and reports whether anything changed.
func normalizeInodeTimes(inode []byte, epoch uint32) bool {
	le := binary.LittleEndian
	before := string(inode)
	set := func(at, extra int, v uint32) {
		le.PutUint32(inode[at:], v)
		if hasField(inode, extra) {
			le.PutUint32(inode[extra:], 0)
		}
	}
	set(inCtime, inCtimeExtra, epoch)
	set(inAtime, inAtimeExtra, epoch)
	mtime := int64(int32(le.Uint32(inode[inMtime:])))
	if hasField(inode, inMtimeExtra) {
		mtime += int64(le.Uint32(inode[inMtimeExtra:])&3) << 32
	}
	if mtime > int64(epoch) {
		set(inMtime, inMtimeExtra, epoch)
	} else if hasField(inode, inMtimeExtra) {
		// Keep the seconds (and their epoch bits), drop the nanoseconds.
		le.PutUint32(inode[inMtimeExtra:], le.Uint32(inode[inMtimeExtra:])&3)
	}
	if hasField(inode, inCrtime) {
		set(inCrtime, inCrtimeExtra, epoch)
	}
	return string(inode) != before
}

// inodeChecksum is the inode's metadata_csum: crc32c over the inode
// number, its generation and the whole inode with the checksum fields
// zeroed, seeded with the filesystem's checksum seed.
func inodeChecksum(seed, ino uint32, inode []byte) uint32 {
	le := binary.LittleEndian
	var n [4]byte
	le.PutUint32(n[:], ino)
	c := crc32c(seed, n[:])
	c = crc32c(c, inode[inGeneration:inGeneration+4])
	c = crc32c(c, inode[:inChecksumLo])
	c = crc32c(c, []byte{0, 0})
	c = crc32c(c, inode[inChecksumLo+2:goodOldInode])
	if len(inode) > goodOldInode {
		hi := hasChecksumHi(inode)
		c = crc32c(c, inode[goodOldInode:inChecksumHi])
		if hi {
			c = crc32c(c, []byte{0, 0})
		} else {
			c = crc32c(c, inode[inChecksumHi:inChecksumHi+2])
		}
		c = crc32c(c, inode[inChecksumHi+2:])
		if !hi {
			c &= 0xffff
		}
	} else {
		c &= 0xffff
	}
	return c
}

func hasChecksumHi(inode []byte) bool {
	return len(inode) > goodOldInode && extraSize(inode) >= inChecksumHi+2-goodOldInode
}

func storedChecksum(inode []byte) uint32 {
	le := binary.LittleEndian
	c := uint32(le.Uint16(inode[inChecksumLo:]))
	if hasChecksumHi(inode) {
		c |= uint32(le.Uint16(inode[inChecksumHi:])) << 16
	}
	return c
}

func setChecksum(inode []byte, c uint32) {
	le := binary.LittleEndian
	le.PutUint16(inode[inChecksumLo:], uint16(c))
	if hasChecksumHi(inode) {
		le.PutUint16(inode[inChecksumHi:], uint16(c>>16))
	}
}
