package stages

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kiln-project/kiln/internal/disk"
	"github.com/kiln-project/kiln/internal/manifest"
)

// DiskImage writes a raw disk image from a tree without loop devices or
// mounts: sfdisk writes the partition table into the image file, ext4
// filesystems are written by mkfs.ext4 -d straight at their partition's
// offset, the others (mkfs.vfat + mcopy, mkswap) are built in a file of
// their own and copied, holes kept, to their offset; then GRUB's boot code
// is written the way grub-bios-setup writes it.
//
// A filesystem holds its mount point's subtree minus the contents of the
// filesystems mounted below it, whose mount points stay as empty
// directories. The tree is only read (it is usually the cache's own copy):
// when other filesystems are mounted below one, it is built from a view of
// its subtree made of hard links, with those mount points emptied.
type DiskImage struct{ Opts manifest.DiskImage }

// Validate implements Stage.
func (s *DiskImage) Validate() error {
	_, err := s.partitionTable()
	return err
}

// partitionTable checks the options and returns the partition table with
// what validatePartitionTable fills in.
func (s *DiskImage) partitionTable() (disk.PartitionTable, error) {
	pt := s.Opts.PartitionTable
	if err := validatePartitionTable(&pt); err != nil {
		return pt, fmt.Errorf("disk image: %w", err)
	}
	switch s.Opts.BIOSBootloader {
	case "", "i386-pc":
	default:
		return pt, fmt.Errorf("disk image: bios_bootloader %q is not supported: use \"i386-pc\" or leave it empty", s.Opts.BIOSBootloader)
	}
	return pt, nil
}

// Run implements Stage.
func (s *DiskImage) Run(ctx context.Context, env *Env) (err error) {
	pt, err := s.partitionTable()
	if err != nil {
		return err
	}
	tree := env.Input
	if fi, err := os.Stat(tree); err != nil || !fi.IsDir() {
		return fmt.Errorf("disk image: the input %q is not a directory tree", tree)
	}
	img, err := os.OpenFile(env.Output, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("disk image: %w", err)
	}
	defer func() {
		if cerr := img.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("disk image: %w", cerr)
		}
		if err != nil {
			os.Remove(env.Output)
		}
	}()
	if err := img.Truncate(int64(pt.Size)); err != nil {
		return fmt.Errorf("disk image: sizing %s: %w", env.Output, err)
	}
	script := sfdiskScript(&pt)
	env.Logf("writing a %s partition table of %s", pt.Type, pt.Size)
	if err := runTool(ctx, env, strings.NewReader(script), nil,
		"sfdisk", "--no-reread", "--no-tell-kernel", "--wipe", "always", env.Output); err != nil {
		return fmt.Errorf("disk image: writing the partition table: %w", err)
	}

	mounts := mountpoints(&pt)
	for i := range pt.Partitions {
		p := &pt.Partitions[i]
		if p.Payload == nil {
			continue
		}
		if err := buildFilesystem(ctx, env, img, p, mounts); err != nil {
			return fmt.Errorf("disk image: partition %d (%s): %w", i+1, describePartition(p), err)
		}
	}
	if s.Opts.BIOSBootloader == "i386-pc" {
		env.Logf("installing GRUB's BIOS boot code")
		if err := installBIOSBoot(img, tree, &pt); err != nil {
			return fmt.Errorf("disk image: %w", err)
		}
	}
	if err := img.Sync(); err != nil {
		return fmt.Errorf("disk image: %w", err)
	}
	return nil
}

func describePartition(p *disk.Partition) string {
	if p.Payload != nil && p.Payload.Mountpoint != "" {
		return p.Payload.Type + " " + p.Payload.Mountpoint
	}
	if p.Payload != nil {
		return p.Payload.Type
	}
	return string(p.Role)
}

var (
	uuidRE     = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	gptTypeRE  = uuidRE
	dosTypeRE  = regexp.MustCompile(`^(0x)?[0-9a-fA-F]{1,2}$`)
	dosIDRE    = regexp.MustCompile(`^(0x)?[0-9a-fA-F]{8}$`)
	volumeIDRE = regexp.MustCompile(`^[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}$`)
)

// validatePartitionTable checks everything the tools would otherwise
// reject half-way through a build, or silently get wrong.
func validatePartitionTable(pt *disk.PartitionTable) error {
	sector := disk.SectorSize
	switch pt.Type {
	case disk.GPT:
		if !uuidRE.MatchString(pt.UUID) {
			return fmt.Errorf("the gpt disk GUID %q is not a UUID", pt.UUID)
		}
	case disk.DOS:
		if !dosIDRE.MatchString(pt.UUID) {
			return fmt.Errorf("the dos disk identifier %q is not 8 hex digits", pt.UUID)
		}
	default:
		return fmt.Errorf("partition table type %q is not supported: use gpt or dos", pt.Type)
	}
	if pt.Size == 0 || pt.Size%sector != 0 {
		return fmt.Errorf("the disk size %d is not a positive multiple of %d bytes", uint64(pt.Size), uint64(sector))
	}
	if len(pt.Partitions) == 0 {
		return errors.New("the partition table has no partitions")
	}
	if pt.Type == disk.DOS && len(pt.Partitions) > 4 {
		return fmt.Errorf("a dos partition table holds at most 4 primary partitions, not %d", len(pt.Partitions))
	}
	// First and last usable bytes: GPT keeps 34 sectors at the start and
	// 33 at the end for its headers and entries.
	first, end := sector, pt.Size
	if pt.Type == disk.GPT {
		first, end = 34*sector, pt.Size-33*sector
	}
	seen := map[string]bool{}
	hasRoot := false
	var prevEnd disk.Size
	for i := range pt.Partitions {
		p := &pt.Partitions[i]
		where := fmt.Sprintf("partition %d", i+1)
		if p.Size == 0 || p.Start%sector != 0 || p.Size%sector != 0 {
			return fmt.Errorf("%s: start %d and size %d must be multiples of %d bytes and the size positive", where, uint64(p.Start), uint64(p.Size), uint64(sector))
		}
		if p.Start < first || p.Start+p.Size > end || p.Start+p.Size < p.Start {
			return fmt.Errorf("%s: bytes %d to %d lie outside the usable area %d to %d of the disk", where, uint64(p.Start), uint64(p.Start+p.Size), uint64(first), uint64(end))
		}
		if p.Start < prevEnd {
			return fmt.Errorf("%s overlaps the previous partition or is out of order (starts at %d, the previous one ends at %d)", where, uint64(p.Start), uint64(prevEnd))
		}
		prevEnd = p.Start + p.Size
		switch pt.Type {
		case disk.GPT:
			if !gptTypeRE.MatchString(p.Type) {
				return fmt.Errorf("%s: type %q is not a GPT type GUID", where, p.Type)
			}
			if p.UUID != "" && !uuidRE.MatchString(p.UUID) {
				return fmt.Errorf("%s: uuid %q is not a UUID", where, p.UUID)
			}
			if len([]rune(p.Name)) > 36 || strings.ContainsAny(p.Name, "\"\\") || strings.IndexFunc(p.Name, isControl) >= 0 {
				return fmt.Errorf("%s: name %q must be at most 36 characters without quotes, backslashes or control characters", where, p.Name)
			}
		case disk.DOS:
			if !dosTypeRE.MatchString(p.Type) {
				return fmt.Errorf("%s: type %q is not an MBR type byte", where, p.Type)
			}
		}
		fs := p.Payload
		if fs == nil {
			continue
		}
		switch fs.Type {
		case "ext4":
			if !uuidRE.MatchString(fs.UUID) {
				return fmt.Errorf("%s: ext4 uuid %q is not a UUID", where, fs.UUID)
			}
			if len(fs.Label) > 16 {
				return fmt.Errorf("%s: ext4 label %q is longer than 16 bytes", where, fs.Label)
			}
			if p.Size < 8*disk.MiB {
				return fmt.Errorf("%s: %s is too small for an ext4 filesystem (at least 8 MiB)", where, p.Size)
			}
		case "vfat":
			if !volumeIDRE.MatchString(fs.UUID) {
				return fmt.Errorf("%s: vfat volume id %q is not of the form ABCD-1234", where, fs.UUID)
			}
			if len(fs.Label) > 11 {
				return fmt.Errorf("%s: vfat label %q is longer than 11 characters", where, fs.Label)
			}
		case "swap":
			if !uuidRE.MatchString(fs.UUID) {
				return fmt.Errorf("%s: swap uuid %q is not a UUID", where, fs.UUID)
			}
			if len(fs.Label) > 16 {
				return fmt.Errorf("%s: swap label %q is longer than 16 bytes", where, fs.Label)
			}
			continue
		default:
			return fmt.Errorf("%s: filesystem type %q is not supported: use ext4, vfat or swap", where, fs.Type)
		}
		if strings.IndexFunc(fs.Label, isControl) >= 0 {
			return fmt.Errorf("%s: label %q holds control characters", where, fs.Label)
		}
		mp := fs.Mountpoint
		if mp == "" {
			continue // a filesystem that starts empty
		}
		if !path.IsAbs(mp) || path.Clean(mp) != mp {
			return fmt.Errorf("%s: mount point %q is not a clean absolute path", where, mp)
		}
		if seen[mp] {
			return fmt.Errorf("%s: mount point %s is used twice", where, mp)
		}
		seen[mp] = true
		hasRoot = hasRoot || mp == "/"
	}
	if !hasRoot {
		return errors.New("no partition holds the root filesystem (mount point \"/\")")
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// sfdiskScript is the sfdisk input that writes pt.
func sfdiskScript(pt *disk.PartitionTable) string {
	var b strings.Builder
	sectors := func(s disk.Size) uint64 { return uint64(s / disk.SectorSize) }
	fmt.Fprintf(&b, "label: %s\n", pt.Type)
	switch pt.Type {
	case disk.GPT:
		fmt.Fprintf(&b, "label-id: %s\n", strings.ToUpper(pt.UUID))
		b.WriteString("first-lba: 34\n")
	case disk.DOS:
		fmt.Fprintf(&b, "label-id: 0x%s\n", strings.TrimPrefix(strings.ToLower(pt.UUID), "0x"))
	}
	b.WriteString("unit: sectors\nsector-size: 512\n\n")
	for _, p := range pt.Partitions {
		fields := []string{
			fmt.Sprintf("start=%d", sectors(p.Start)),
			fmt.Sprintf("size=%d", sectors(p.Size)),
		}
		switch pt.Type {
		case disk.GPT:
			fields = append(fields, "type="+strings.ToUpper(p.Type))
			if p.UUID != "" {
				fields = append(fields, "uuid="+strings.ToUpper(p.UUID))
			}
			if p.Name != "" {
				fields = append(fields, `name="`+p.Name+`"`)
			}
			if p.Bootable {
				fields = append(fields, `attrs="LegacyBIOSBootable"`)
			}
		case disk.DOS:
			fields = append(fields, "type="+strings.TrimPrefix(strings.ToLower(p.Type), "0x"))
			if p.Bootable {
				fields = append(fields, "bootable")
			}
		}
		b.WriteString(strings.Join(fields, ", ") + "\n")
	}
	return b.String()
}

// mountpoints lists the mount points of pt's filesystems.
func mountpoints(pt *disk.PartitionTable) []string {
	var out []string
	for _, fs := range pt.Filesystems() {
		if fs.Mountpoint != "" && fs.Type != "swap" {
			out = append(out, fs.Mountpoint)
		}
	}
	return out
}

// under reports whether p lies strictly below dir.
func under(p, dir string) bool {
	if dir == "/" {
		return p != "/"
	}
	return strings.HasPrefix(p, dir+"/")
}

// nestedMounts returns the mount points below mp whose contents belong to
// another filesystem: those strictly below mp and not below another one
// of them.
func nestedMounts(mp string, all []string) []string {
	var below []string
	for _, q := range all {
		if under(q, mp) {
			below = append(below, q)
		}
	}
	var out []string
	for _, q := range below {
		if !slices.ContainsFunc(below, func(o string) bool { return under(q, o) }) {
			out = append(out, q)
		}
	}
	slices.Sort(out)
	return out
}

// buildFilesystem makes p's filesystem in a file of its own and copies it
// to p's offset in img.
func buildFilesystem(ctx context.Context, env *Env, img *os.File, p *disk.Partition, mounts []string) error {
	fs := p.Payload
	work, err := os.MkdirTemp(env.Work, "fs-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	var src string
	if fs.Mountpoint != "" && fs.Type != "swap" {
		src, err = ResolveInTree(env.Input, fs.Mountpoint)
		if err != nil {
			return fmt.Errorf("finding %s in the tree: %w", fs.Mountpoint, err)
		}
		if fi, err := os.Lstat(src); err != nil || !fi.IsDir() {
			src = "" // nothing in the tree for it: an empty filesystem
		}
	}
	if src != "" {
		if src, err = filesystemView(ctx, src, filepath.Join(work, "view"), fs.Mountpoint, nestedMounts(fs.Mountpoint, mounts)); err != nil {
			return err
		}
	}

	env.Logf("building %s", describePartition(p))
	if fs.Type == "ext4" {
		return makeExt4(ctx, env, work, img, int64(p.Start), src, fs, p.Size)
	}
	file := filepath.Join(work, "fs.img")
	switch fs.Type {
	case "vfat":
		err = makeVFAT(ctx, env, file, src, fs, p)
	case "swap":
		err = makeSwap(ctx, env, file, fs, p.Size)
	default:
		err = fmt.Errorf("filesystem type %q is not supported", fs.Type)
	}
	if err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() > int64(p.Size) {
		return fmt.Errorf("the filesystem (%d bytes) is larger than its partition (%d bytes)", fi.Size(), uint64(p.Size))
	}
	if err := copySparse(img, int64(p.Start), f); err != nil {
		return fmt.Errorf("placing the filesystem in the image: %w", err)
	}
	return nil
}

// filesystemView returns the directory to build the filesystem mounted at
// mp from, src being mp's subtree: src itself when no other filesystem is
// mounted below mp, else view, a copy of src whose files are hard links to
// src's, with the mount points in nested emptied (or made, when missing)
// and their times kept.
func filesystemView(ctx context.Context, src, view, mp string, nested []string) (string, error) {
	if len(nested) == 0 {
		return src, nil
	}
	if err := os.Mkdir(view, 0o755); err != nil {
		return "", err
	}
	out, err := exec.CommandContext(ctx, "cp", "-a", "-l", "--", src+"/.", view+"/").CombinedOutput()
	if err != nil {
		// Hard links cannot cross filesystems: copy instead.
		os.RemoveAll(view)
		if err := os.Mkdir(view, 0o755); err != nil {
			return "", err
		}
		if out, err = exec.CommandContext(ctx, "cp", "-a", "--", src+"/.", view+"/").CombinedOutput(); err != nil {
			return "", fmt.Errorf("copying %s: %w: %s", mp, err, out)
		}
	}
	for _, q := range nested {
		rel := strings.TrimPrefix(q, mp)
		host, err := ResolveInTree(view, "/"+strings.TrimPrefix(rel, "/"))
		if err != nil {
			return "", fmt.Errorf("finding mount point %s in the tree: %w", q, err)
		}
		fi, err := os.Lstat(host)
		switch {
		case errors.Is(err, os.ErrNotExist):
			parent, err := os.Stat(filepath.Dir(host))
			if err != nil {
				return "", fmt.Errorf("the parent of mount point %s is missing from the tree: %w", q, err)
			}
			if err := os.Mkdir(host, 0o755); err != nil {
				return "", err
			}
			if err := os.Chtimes(filepath.Dir(host), atime(parent), parent.ModTime()); err != nil {
				return "", err
			}
		case err != nil:
			return "", err
		case !fi.IsDir():
			return "", fmt.Errorf("mount point %s is not a directory in the tree", q)
		default:
			entries, err := os.ReadDir(host)
			if err != nil {
				return "", err
			}
			for _, e := range entries {
				if err := os.RemoveAll(filepath.Join(host, e.Name())); err != nil {
					return "", err
				}
			}
			if err := os.Chtimes(host, atime(fi), fi.ModTime()); err != nil {
				return "", err
			}
		}
	}
	return view, nil
}

// mke2fsConf pins ext4's features so the filesystem does not depend on the
// build host's /etc/mke2fs.conf, and leaves out those GRUB 2.06 (Debian 12)
// cannot read (metadata_csum_seed, orphan_file).
const mke2fsConf = `[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	default_mntopts = acl,user_xattr
	enable_periodic_fsck = 0
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384

[fs_types]
	ext4 = {
		features = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
	default = {
		inode_ratio = 16384
	}
`

// makeExt4 writes an ext4 filesystem of size bytes holding src (when not
// empty) into the file image at byte offset off.
//
// With an epoch the filesystem depends only on the tree's names, contents,
// modes, owners and modification times: mke2fs's own clock is the epoch
// (E2FSPROGS_FAKE_TIME: superblock times, lost+found, creation times), it
// reads each directory sorted by name (scandir with alphasort, in the C
// locale), the UUID and directory hash seed are given, and afterwards
// disk.NormalizeExt4Times sets the change and access times mke2fs copied
// from the tree to the epoch and clamps later modification times to it.
func makeExt4(ctx context.Context, env *Env, work string, img *os.File, off int64, src string, fs *disk.Filesystem, size disk.Size) error {
	image := img.Name()
	conf := filepath.Join(work, "mke2fs.conf")
	if err := os.WriteFile(conf, []byte(mke2fsConf), 0o644); err != nil {
		return err
	}
	extEnv := []string{"MKE2FS_CONFIG=" + conf, "LC_ALL=C"}
	if !env.Epoch.IsZero() {
		extEnv = append(extEnv, "E2FSPROGS_FAKE_TIME="+strconv.FormatInt(env.Epoch.Unix(), 10))
	}
	argv := []string{"mkfs.ext4", "-q", "-t", "ext4", "-T", "default", "-b", "4096",
		"-U", fs.UUID,
		// The directory hash seed is random unless given: derive it from
		// the UUID so the same tree gives the same filesystem.
		// The image is new and sparse, so it reads as zeros already.
		"-E", "root_owner=0:0,nodiscard,offset=" + strconv.FormatInt(off, 10) + ",hash_seed=" + fs.UUID,
	}
	if fs.Label != "" {
		argv = append(argv, "-L", fs.Label)
	}
	if src != "" {
		argv = append(argv, "-d", src)
	}
	argv = append(argv, image, strconv.FormatUint(uint64(size/(4*disk.KiB)), 10))
	if err := runTool(ctx, env, nil, extEnv, argv...); err != nil {
		if src != "" && isNoSpace(err) {
			return fmt.Errorf("the contents of %s do not fit in %s: make the filesystem larger: %w", fs.Mountpoint, size, err)
		}
		return err
	}
	if env.Epoch.IsZero() {
		return nil
	}
	t0 := time.Now()
	res, err := disk.NormalizeExt4Times(img, img, off, env.Epoch.Unix())
	if err != nil {
		return err
	}
	env.Logf("set the times of %d of %d inodes from the epoch in %s", res.Changed, res.Inodes, time.Since(t0).Round(time.Millisecond))
	return nil
}

func isNoSpace(err error) bool {
	s := err.Error()
	return strings.Contains(s, "Could not allocate block") || strings.Contains(s, "No space left") || strings.Contains(s, "Could not allocate inode")
}

func makeVFAT(ctx context.Context, env *Env, file, src string, fs *disk.Filesystem, p *disk.Partition) error {
	extEnv := []string{"MTOOLS_SKIP_CHECK=1"}
	if !env.Epoch.IsZero() {
		extEnv = append(extEnv, "SOURCE_DATE_EPOCH="+strconv.FormatInt(env.Epoch.Unix(), 10))
	}
	argv := []string{"mkfs.vfat", "-C"}
	if !env.Epoch.IsZero() {
		// mkfs.fat 4.2 dates the volume label's directory entry with the
		// clock and does not read SOURCE_DATE_EPOCH: --invariant fixes it
		// (and the geometry it would query); -i after it sets the volume ID.
		argv = append(argv, "--invariant")
	}
	argv = append(argv, "-i", strings.ReplaceAll(fs.UUID, "-", ""),
		"-h", strconv.FormatUint(uint64(p.Start/disk.SectorSize), 10))
	if p.Size >= 64*disk.MiB {
		argv = append(argv, "-F", "32") // what UEFI firmware expects of an ESP
	}
	if fs.Label != "" {
		argv = append(argv, "-n", fs.Label)
	}
	argv = append(argv, file, strconv.FormatUint(uint64(p.Size/disk.KiB), 10))
	if err := runTool(ctx, env, nil, extEnv, argv...); err != nil {
		return err
	}
	if src == "" {
		return nil
	}
	dirs, files, err := vfatContents(src)
	if err != nil {
		return err
	}
	// mcopy -s would write each directory in the host's readdir order,
	// which differs between filesystems and machines: make the
	// directories, then copy each one's files, in name order. With an
	// epoch, mtools dates every entry with SOURCE_DATE_EPOCH; without one,
	// the files keep their modification times (-m).
	if len(dirs) > 0 {
		argv := append([]string{"mmd", "-i", file}, dirs...)
		if err := runTool(ctx, env, nil, extEnv, argv...); err != nil {
			return fmt.Errorf("making the directories of %s on the vfat filesystem: %w", fs.Mountpoint, err)
		}
	}
	for _, group := range files {
		argv := []string{"mcopy", "-p", "-Q", "-i", file}
		if env.Epoch.IsZero() {
			argv = append(argv, "-m")
		}
		argv = append(argv, group.sources...)
		argv = append(argv, group.dest)
		if err := runTool(ctx, env, nil, extEnv, argv...); err != nil {
			return fmt.Errorf("copying %s onto the vfat filesystem: %w", fs.Mountpoint, err)
		}
	}
	return nil
}

// vfatFiles are files copied into one directory of a vfat filesystem.
type vfatFiles struct {
	dest    string   // "::/EFI/BOOT/"
	sources []string // host paths, in name order
}

// vfatContents lists the tree src for a vfat filesystem in name order:
// its directories as mtools paths (parents first) and its other entries
// grouped by directory.
func vfatContents(src string) (dirs []string, files []vfatFiles, err error) {
	err = filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		if d.IsDir() {
			dirs = append(dirs, "::/"+filepath.ToSlash(rel))
			return nil
		}
		dest := "::/"
		if dir := filepath.Dir(rel); dir != "." {
			dest += filepath.ToSlash(dir) + "/"
		}
		if n := len(files); n == 0 || files[n-1].dest != dest {
			files = append(files, vfatFiles{dest: dest})
		}
		files[len(files)-1].sources = append(files[len(files)-1].sources, p)
		return nil
	})
	return dirs, files, err
}

func makeSwap(ctx context.Context, env *Env, file string, fs *disk.Filesystem, size disk.Size) error {
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := f.Truncate(int64(size)); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	argv := []string{"mkswap", "-U", fs.UUID}
	if fs.Label != "" {
		argv = append(argv, "-L", fs.Label)
	}
	return runTool(ctx, env, nil, nil, append(argv, file)...)
}

// Whence values of lseek(2) that find data and holes in sparse files.
const (
	seekData = 3
	seekHole = 4
)

// copySparse copies src into dst at offset off, writing only src's data
// extents so its holes stay holes in dst.
func copySparse(dst *os.File, off int64, src *os.File) error {
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	for pos := int64(0); pos < size; {
		data, err := src.Seek(pos, seekData)
		if errors.Is(err, syscall.ENXIO) {
			break // only a hole is left
		}
		if err != nil {
			return err
		}
		hole, err := src.Seek(data, seekHole)
		if err != nil {
			return err
		}
		if _, err := src.Seek(data, io.SeekStart); err != nil {
			return err
		}
		if _, err := dst.Seek(off+data, io.SeekStart); err != nil {
			return err
		}
		if _, err := io.CopyN(dst, src, hole-data); err != nil {
			return err
		}
		pos = hole
	}
	return nil
}

// GRUB's i386-pc boot sector (boot.img) and the first sector of its core
// image (diskboot.img), as grub-bios-setup patches them.
const (
	bootBPBStart     = 0x03  // a possible DOS BPB, kept from the disk
	bootBPBEnd       = 0x5a  //
	bootKernelSector = 0x5c  // LBA of core.img's first sector (8 bytes LE)
	bootDriveCheck   = 0x66  // a jmp replaced by two nops on hard disks
	bootCodeSize     = 440   // what fits before the disk signature and table
	coreBlocklist    = 0x1f4 // 0x200 - 12: start (8), length (2), segment (2)
)

// patchBootSector returns the MBR boot code: boot.img pointing at core.img
// at coreLBA, keeping mbr's BPB area.
func patchBootSector(bootImg, mbr []byte, coreLBA uint64) ([]byte, error) {
	if len(bootImg) != 512 {
		return nil, fmt.Errorf("boot.img is %d bytes, expected 512", len(bootImg))
	}
	if len(mbr) < 512 {
		return nil, fmt.Errorf("the first sector is %d bytes, expected 512", len(mbr))
	}
	code := slices.Clone(bootImg[:bootCodeSize])
	copy(code[bootBPBStart:bootBPBEnd], mbr[bootBPBStart:bootBPBEnd])
	binary.LittleEndian.PutUint64(code[bootKernelSector:], coreLBA)
	code[bootDriveCheck], code[bootDriveCheck+1] = 0x90, 0x90
	return code, nil
}

// patchCoreImage points core.img's first blocklist at the sectors that
// follow its first one, once it sits at coreLBA.
func patchCoreImage(core []byte, coreLBA uint64) ([]byte, error) {
	if len(core) < 1024 {
		return nil, fmt.Errorf("core.img is %d bytes, too small to be GRUB's core image", len(core))
	}
	rest := (len(core) - 512 + 511) / 512
	if rest > 0xffff {
		return nil, fmt.Errorf("core.img is %d bytes, too large for its blocklist", len(core))
	}
	out := make([]byte, 512+rest*512)
	copy(out, core)
	binary.LittleEndian.PutUint64(out[coreBlocklist:], coreLBA+1)
	binary.LittleEndian.PutUint16(out[coreBlocklist+8:], uint16(rest))
	return out, nil
}

// installBIOSBoot writes GRUB's boot.img to the MBR and core.img to the
// BIOS boot partition (GPT) or to the gap before the first partition (DOS),
// both taken from the tree's /boot/grub/i386-pc.
func installBIOSBoot(img *os.File, tree string, pt *disk.PartitionTable) error {
	dir, err := ResolveInTree(tree, "/boot/grub/i386-pc")
	if err != nil {
		return err
	}
	bootImg, err := os.ReadFile(filepath.Join(dir, "boot.img"))
	if err != nil {
		return fmt.Errorf("reading GRUB's boot.img (the bootloader stage puts it in /boot/grub/i386-pc): %w", err)
	}
	core, err := os.ReadFile(filepath.Join(dir, "core.img"))
	if err != nil {
		return fmt.Errorf("reading GRUB's core.img (the bootloader stage makes it in /boot/grub/i386-pc): %w", err)
	}
	var coreLBA uint64
	var room disk.Size
	switch pt.Type {
	case disk.GPT:
		i := slices.IndexFunc(pt.Partitions, func(p disk.Partition) bool {
			return p.Role == disk.RoleBIOSBoot || strings.EqualFold(p.Type, biosBootGUID)
		})
		if i < 0 {
			return errors.New("booting a gpt disk with BIOS needs a BIOS boot partition (type " + biosBootGUID + ") for GRUB's core image")
		}
		coreLBA = uint64(pt.Partitions[i].Start / disk.SectorSize)
		room = pt.Partitions[i].Size
	case disk.DOS:
		coreLBA = 1
		room = pt.Size
		for _, p := range pt.Partitions {
			room = min(room, p.Start)
		}
		room -= disk.SectorSize
	}
	patched, err := patchCoreImage(core, coreLBA)
	if err != nil {
		return err
	}
	if disk.Size(len(patched)) > room {
		return fmt.Errorf("GRUB's core image (%d bytes) does not fit the %d bytes set aside for it: make the BIOS boot partition or the gap before the first partition larger", len(patched), uint64(room))
	}
	mbr := make([]byte, 512)
	if _, err := img.ReadAt(mbr, 0); err != nil {
		return fmt.Errorf("reading the MBR: %w", err)
	}
	code, err := patchBootSector(bootImg, mbr, coreLBA)
	if err != nil {
		return err
	}
	if _, err := img.WriteAt(patched, int64(coreLBA)*int64(disk.SectorSize)); err != nil {
		return fmt.Errorf("writing GRUB's core image: %w", err)
	}
	if _, err := img.WriteAt(code, 0); err != nil {
		return fmt.Errorf("writing GRUB's boot sector: %w", err)
	}
	return nil
}

// biosBootGUID is the GPT type of the partition holding GRUB's core image.
const biosBootGUID = "21686148-6449-6E6F-744E-656564454649"

// runTool runs a host tool with an argument vector, stdin (may be nil) and
// extra environment entries; its output goes to the build log, and its
// last lines come back in the error when it fails.
func runTool(ctx context.Context, env *Env, stdin io.Reader, extraEnv []string, argv ...string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = stdin
	if len(extraEnv) > 0 {
		cmd.Env = append(os.Environ(), extraEnv...)
	}
	return runLogged(ctx, env, cmd, nil)
}

// runToolTo runs a host tool whose standard output goes to out (its
// messages to the build log).
func runToolTo(ctx context.Context, env *Env, stdin io.Reader, out io.Writer, argv ...string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = stdin
	return runLogged(ctx, env, cmd, out)
}

// runLogged runs cmd with its messages in the build log, and its standard
// output too unless stdout takes it; a failure carries the messages' end.
func runLogged(ctx context.Context, env *Env, cmd *exec.Cmd, stdout io.Writer) error {
	tail := &tailBuffer{max: 4096}
	logged := logAndTail(env, tail)
	cmd.Stdout, cmd.Stderr = logged, logged
	if stdout != nil {
		cmd.Stdout = stdout
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", cmd.Args[0], ctx.Err())
		}
		if msg := tail.String(); msg != "" {
			return fmt.Errorf("%s: %w: %s", cmd.Args[0], err, msg)
		}
		return fmt.Errorf("%s: %w", cmd.Args[0], err)
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = slices.Clone(t.buf[len(t.buf)-t.max:])
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	return string(bytes.TrimSpace(bytes.ToValidUTF8(t.buf, nil)))
}

func atime(fi os.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Atim.Sec, st.Atim.Nsec)
	}
	return fi.ModTime()
}
