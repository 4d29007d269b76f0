package stages

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/disk"
	"github.com/kiln-project/kiln/internal/manifest"
)

func TestPatchBootSectorAndCoreImage(t *testing.T) {
	t.Parallel()
	bootImg := bytes.Repeat([]byte{0xAB}, 512)
	mbr := make([]byte, 512)
	for i := range mbr {
		mbr[i] = byte(i)
	}
	code, err := patchBootSector(bootImg, mbr, 2048)
	require.NoError(t, err)
	require.Len(t, code, 440, "only the boot code: the disk signature and the table stay")
	assert.Equal(t, uint64(2048), binary.LittleEndian.Uint64(code[0x5c:]))
	assert.Equal(t, mbr[0x03:0x5a], code[0x03:0x5a], "the BPB area is kept from the disk")
	assert.Equal(t, []byte{0x90, 0x90}, code[0x66:0x68], "the boot drive check is disabled for hard disks")
	assert.Equal(t, bootImg[:3], code[:3])
	assert.Equal(t, bootImg[0x68:440], code[0x68:440])

	core := bytes.Repeat([]byte{0xCD}, 512*3+100) // 3 sectors and a bit
	binary.LittleEndian.PutUint16(core[0x1fe:], 0x820)
	patched, err := patchCoreImage(core, 2048)
	require.NoError(t, err)
	assert.Len(t, patched, 512*4, "padded to whole sectors")
	assert.Equal(t, uint64(2049), binary.LittleEndian.Uint64(patched[0x1f4:]), "start: the sector after the first")
	assert.Equal(t, uint16(3), binary.LittleEndian.Uint16(patched[0x1fc:]), "length: the sectors after the first")
	assert.Equal(t, uint16(0x820), binary.LittleEndian.Uint16(patched[0x1fe:]), "segment unchanged")
	assert.Equal(t, core[512:], patched[512:len(core)])

	_, err = patchBootSector(bootImg[:100], mbr, 1)
	assert.ErrorContains(t, err, "boot.img is 100 bytes")
	_, err = patchCoreImage(core[:600], 1)
	assert.ErrorContains(t, err, "too small")
}

func TestNestedMounts(t *testing.T) {
	t.Parallel()
	all := []string{"/", "/boot", "/boot/efi", "/var", "/var/lib/db", "/home"}
	assert.Equal(t, []string{"/boot", "/home", "/var"}, nestedMounts("/", all))
	assert.Equal(t, []string{"/boot/efi"}, nestedMounts("/boot", all))
	assert.Equal(t, []string{"/var/lib/db"}, nestedMounts("/var", all))
	assert.Empty(t, nestedMounts("/home", all))
	assert.Empty(t, nestedMounts("/varx", all))
}

func TestValidatePartitionTableRejects(t *testing.T) {
	t.Parallel()
	good := func() disk.PartitionTable { return *testTable(disk.GPT) }
	tests := []struct {
		name   string
		change func(*disk.PartitionTable)
		want   string
	}{
		{"table type", func(pt *disk.PartitionTable) { pt.Type = "apm" }, `partition table type "apm" is not supported`},
		{"disk guid", func(pt *disk.PartitionTable) { pt.UUID = "nope" }, "is not a UUID"},
		{"disk size", func(pt *disk.PartitionTable) { pt.Size = 1000 }, "not a positive multiple of 512"},
		{"overlap", func(pt *disk.PartitionTable) { pt.Partitions[2].Start -= disk.MiB }, "overlaps the previous partition"},
		{"outside", func(pt *disk.PartitionTable) { pt.Partitions[3].Size += 2 * disk.MiB }, "outside the usable area"},
		{"unaligned", func(pt *disk.PartitionTable) { pt.Partitions[1].Start += 100 }, "multiples of 512"},
		{"name", func(pt *disk.PartitionTable) { pt.Partitions[0].Name = `a"b` }, "without quotes"},
		{"fs type", func(pt *disk.PartitionTable) { pt.Partitions[2].Payload.Type = "btrfs" }, `filesystem type "btrfs" is not supported`},
		{"vfat id", func(pt *disk.PartitionTable) { pt.Partitions[1].Payload.UUID = "zz" }, "vfat volume id"},
		{"ext4 label", func(pt *disk.PartitionTable) { pt.Partitions[3].Payload.Label = "a-very-long-label-indeed" }, "longer than 16 bytes"},
		{"mountpoint", func(pt *disk.PartitionTable) { pt.Partitions[2].Payload.Mountpoint = "var" }, "not a clean absolute path"},
		{"twice", func(pt *disk.PartitionTable) { pt.Partitions[2].Payload.Mountpoint = "/" }, "used twice"},
		{"no root", func(pt *disk.PartitionTable) { pt.Partitions[3].Payload.Mountpoint = "/srv" }, "root filesystem"},
		{"dos id", func(pt *disk.PartitionTable) { pt.Type = disk.DOS }, "dos disk identifier"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pt := good()
			pt.Partitions = append([]disk.Partition(nil), pt.Partitions...)
			for i := range pt.Partitions {
				if fs := pt.Partitions[i].Payload; fs != nil {
					c := *fs
					pt.Partitions[i].Payload = &c
				}
			}
			tc.change(&pt)
			assert.ErrorContains(t, validatePartitionTable(&pt), tc.want)
		})
	}
	pt := good()
	assert.NoError(t, validatePartitionTable(&pt))
}

// testTable is a small disk: BIOS boot, ESP, /var and root.
func testTable(tt disk.TableType) *disk.PartitionTable {
	pt := &disk.PartitionTable{Type: tt, UUID: "19e96a85-785c-4edb-ab54-1e71bf18532a", Size: 140 * disk.MiB}
	if tt == disk.DOS {
		pt.UUID = "7a7dafc5"
	}
	start := disk.MiB
	add := func(role disk.Role, name string, size disk.Size, uuid string, fs *disk.Filesystem) {
		code, err := disk.TypeCode(tt, role)
		if err != nil {
			return // no BIOS boot partition on DOS
		}
		p := disk.Partition{Role: role, Start: start, Size: size, Type: code, Name: name, Payload: fs}
		if tt == disk.GPT {
			p.UUID = uuid
		} else {
			p.Name = ""
		}
		pt.Partitions = append(pt.Partitions, p)
		start += size
	}
	add(disk.RoleBIOSBoot, "bios-boot", disk.MiB, "500a10a1-6c36-40f5-8232-3a8f09ef493e", nil)
	add(disk.RoleESP, "esp", 40*disk.MiB, "cd5ccfe9-024b-4d97-b03b-f8385edb589e",
		&disk.Filesystem{Type: "vfat", UUID: "7A7D-AFC5", Label: "ESP", Mountpoint: "/boot/efi"})
	add(disk.RoleLinux, "var", 32*disk.MiB, "6f503af0-8002-4856-b318-bf9677f0760f",
		&disk.Filesystem{Type: "ext4", UUID: "e0d2eeb7-5ccc-48d1-ae1a-2c767ff13505", Mountpoint: "/var"})
	add(disk.RoleRoot, "root", 64*disk.MiB, "c6188802-ac96-4766-8073-9a5feb4c40e9",
		&disk.Filesystem{Type: "ext4", UUID: "a6189570-69f4-413c-be22-107a1bc8611f", Label: "root", Mountpoint: "/"})
	return pt
}

// syntheticTree is a tree with files in every filesystem of testTable and
// fake GRUB boot images.
func syntheticTree(t *testing.T) string {
	t.Helper()
	tree := filepath.Join(t.TempDir(), "tree")
	writeTree(t, tree, "/etc/os-release", "PRETTY_NAME=\"Test\"\n")
	writeTree(t, tree, "/var/lib/app/state", "var data\n")
	writeTree(t, tree, "/var/log/boot.log", "log\n")
	writeTree(t, tree, "/boot/efi/EFI/BOOT/BOOTX64.EFI", "not really an EFI binary\n")
	writeTree(t, tree, "/boot/efi/EFI/debian/grubx64.efi", "not really grub\n")
	boot := bytes.Repeat([]byte{0xEB}, 512)
	core := bytes.Repeat([]byte{0xC0}, 512*5+17)
	binary.LittleEndian.PutUint16(core[0x1fe:], 0x820)
	writeTree(t, tree, "/boot/grub/i386-pc/boot.img", string(boot))
	writeTree(t, tree, "/boot/grub/i386-pc/core.img", string(core))
	require.NoError(t, os.Chmod(filepath.Join(tree, "var/lib/app/state"), 0o600))
	old := time.Unix(1600000000, 0)
	for _, d := range []string{"var", "boot/efi"} {
		require.NoError(t, os.Chtimes(filepath.Join(tree, d), old, old))
	}
	return tree
}

// requireTools skips when the host lacks one of the tools a test runs.
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s on the host: %v", tool, err)
		}
	}
}

func requireDiskTools(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the filesystems are built with root-owned files")
	}
	requireTools(t, "sfdisk", "mkfs.ext4", "debugfs", "dumpe2fs", "mkfs.vfat", "mcopy", "minfo", "fsck.vfat")
}

// diskEnv is an Env for a file stage reading tree and writing output.
func diskEnv(t *testing.T, tree, output string) (*Env, *syncBuffer) {
	t.Helper()
	env, log := fileEnv(t, "")
	env.Input, env.Output = tree, output
	return env, log
}

// partitionFile copies partition p of the image into a file of its own.
func partitionFile(t *testing.T, image string, p disk.Partition) string {
	t.Helper()
	src, err := os.Open(image)
	require.NoError(t, err)
	defer src.Close()
	dst := filepath.Join(t.TempDir(), "part.img")
	f, err := os.Create(dst)
	require.NoError(t, err)
	_, err = io.Copy(f, io.NewSectionReader(src, int64(p.Start), int64(p.Size)))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return dst
}

func command(t *testing.T, argv ...string) string {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "%q: %s%s", argv, stdout.String(), stderr.String())
	return stdout.String()
}

type sfdiskDump struct {
	PartitionTable struct {
		Label      string `json:"label"`
		ID         string `json:"id"`
		Partitions []struct {
			Start    uint64 `json:"start"`
			Size     uint64 `json:"size"`
			Type     string `json:"type"`
			UUID     string `json:"uuid"`
			Name     string `json:"name"`
			Bootable bool   `json:"bootable"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

func TestDiskImageGPT(t *testing.T) {
	t.Parallel()
	requireDiskTools(t)
	tree := syntheticTree(t)
	varBefore, err := os.Stat(filepath.Join(tree, "var"))
	require.NoError(t, err)
	pt := testTable(disk.GPT)
	image := filepath.Join(t.TempDir(), "disk.raw")
	env, log := diskEnv(t, tree, image)
	require.NoError(t, (&DiskImage{Opts: manifest.DiskImage{PartitionTable: *pt, BIOSBootloader: "i386-pc"}}).Run(context.Background(), env), log.String())

	// The tree is as it was.
	assert.Equal(t, "var data\n", readTree(t, tree, "/var/lib/app/state"))
	assert.FileExists(t, filepath.Join(tree, "boot/efi/EFI/BOOT/BOOTX64.EFI"))
	varAfter, err := os.Stat(filepath.Join(tree, "var"))
	require.NoError(t, err)
	assert.Equal(t, varBefore.ModTime(), varAfter.ModTime(), "the tree is only read")

	t.Run("partition table", func(t *testing.T) {
		var dump sfdiskDump
		require.NoError(t, json.Unmarshal([]byte(command(t, "sfdisk", "--json", image)), &dump))
		assert.Equal(t, "gpt", dump.PartitionTable.Label)
		assert.Equal(t, strings.ToUpper(pt.UUID), strings.ToUpper(dump.PartitionTable.ID))
		require.Len(t, dump.PartitionTable.Partitions, len(pt.Partitions))
		for i, p := range pt.Partitions {
			got := dump.PartitionTable.Partitions[i]
			assert.Equal(t, uint64(p.Start/512), got.Start, "partition %d start", i+1)
			assert.Equal(t, uint64(p.Size/512), got.Size, "partition %d size", i+1)
			assert.Equal(t, strings.ToUpper(p.Type), strings.ToUpper(got.Type), "partition %d type", i+1)
			assert.Equal(t, strings.ToUpper(p.UUID), strings.ToUpper(got.UUID), "partition %d uuid", i+1)
			assert.Equal(t, p.Name, got.Name, "partition %d name", i+1)
		}
		fi, err := os.Stat(image)
		require.NoError(t, err)
		assert.Equal(t, int64(pt.Size), fi.Size())
	})

	t.Run("boot code", func(t *testing.T) {
		data, err := os.ReadFile(image)
		require.NoError(t, err)
		lba := uint64(pt.Partitions[0].Start / 512)
		assert.Equal(t, lba, binary.LittleEndian.Uint64(data[0x5c:]), "boot.img points at core.img")
		assert.Equal(t, byte(0xEB), data[0], "boot.img is in the MBR")
		assert.Equal(t, []byte{0x55, 0xAA}, data[510:512], "the MBR signature stays")
		assert.Equal(t, byte(0xEE), data[0x1be+4], "the protective MBR entry stays")
		core := data[lba*512:]
		assert.Equal(t, lba+1, binary.LittleEndian.Uint64(core[0x1f4:]))
		assert.Equal(t, uint16(5), binary.LittleEndian.Uint16(core[0x1fc:]), "4 sectors and 17 bytes after the first")
		assert.Equal(t, uint16(0x820), binary.LittleEndian.Uint16(core[0x1fe:]))
		assert.Equal(t, byte(0xC0), core[512*5+16])
		assert.Equal(t, byte(0), core[512*5+17])
	})

	t.Run("esp", func(t *testing.T) {
		part := partitionFile(t, image, pt.Partitions[1])
		command(t, "fsck.vfat", "-n", part)
		info := command(t, "minfo", "-i", part, "::")
		assert.Contains(t, info, "serial number: 7A7DAFC5")
		assert.Contains(t, info, `disk label="ESP        "`)
		assert.Contains(t, info, `disk type="FAT16   "`, "FAT32 only from 64 MiB")
		assert.Contains(t, info, "hidden sectors: 4096", "the partition's offset")
		out := command(t, "mtype", "-i", part, "::/EFI/BOOT/BOOTX64.EFI")
		assert.Equal(t, "not really an EFI binary\n", out)
	})

	t.Run("root", func(t *testing.T) {
		part := partitionFile(t, image, pt.Partitions[3])
		head := command(t, "dumpe2fs", "-h", part)
		assert.Regexp(t, `Filesystem UUID:\s+a6189570-69f4-413c-be22-107a1bc8611f`, head)
		assert.Regexp(t, `Filesystem volume name:\s+root\n`, head)
		assert.Regexp(t, `Block count:\s+16384\n`, head, "the filesystem fills its partition")
		assert.NotContains(t, head, "metadata_csum_seed", "GRUB 2.06 cannot read it")
		assert.NotContains(t, head, "orphan_file")
		ls := command(t, "debugfs", "-R", "ls -l /var", part)
		assert.NotContains(t, ls, "lib", "/var's files are on their own filesystem")
		assert.Contains(t, ls, " .\n")
		ls = command(t, "debugfs", "-R", "ls -l /boot/efi", part)
		assert.NotContains(t, ls, "EFI")
		assert.Contains(t, command(t, "debugfs", "-R", "cat /etc/os-release", part), "PRETTY_NAME")
		assert.Contains(t, command(t, "debugfs", "-R", "ls /boot/grub/i386-pc", part), "core.img")
		command(t, "e2fsck", "-fn", part)
	})

	t.Run("var", func(t *testing.T) {
		part := partitionFile(t, image, pt.Partitions[2])
		assert.Regexp(t, `Filesystem UUID:\s+e0d2eeb7-5ccc-48d1-ae1a-2c767ff13505`, command(t, "dumpe2fs", "-h", part))
		assert.Equal(t, "var data\n", command(t, "debugfs", "-R", "cat /lib/app/state", part))
		stat := command(t, "debugfs", "-R", "stat /lib/app/state", part)
		assert.Regexp(t, `Mode:\s+0600`, stat)
		assert.Regexp(t, `User:\s+0\s+Group:\s+0`, stat)
		command(t, "e2fsck", "-fn", part)
	})
}

func TestDiskImageDOS(t *testing.T) {
	t.Parallel()
	requireDiskTools(t)
	tree := syntheticTree(t)
	pt := testTable(disk.DOS)
	pt.Partitions[len(pt.Partitions)-1].Bootable = true
	image := filepath.Join(t.TempDir(), "disk.raw")
	env, log := diskEnv(t, tree, image)
	require.NoError(t, (&DiskImage{Opts: manifest.DiskImage{PartitionTable: *pt, BIOSBootloader: "i386-pc"}}).Run(context.Background(), env), log.String())

	var dump sfdiskDump
	require.NoError(t, json.Unmarshal([]byte(command(t, "sfdisk", "--json", image)), &dump))
	assert.Equal(t, "dos", dump.PartitionTable.Label)
	assert.Equal(t, "0x7a7dafc5", dump.PartitionTable.ID)
	require.Len(t, dump.PartitionTable.Partitions, 3)
	assert.Equal(t, "ef", dump.PartitionTable.Partitions[0].Type)
	assert.True(t, dump.PartitionTable.Partitions[2].Bootable)
	assert.Equal(t, uint64(pt.Partitions[2].Start/512), dump.PartitionTable.Partitions[2].Start)

	data, err := os.ReadFile(image)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), binary.LittleEndian.Uint64(data[0x5c:]), "core.img right after the MBR")
	assert.Equal(t, uint64(2), binary.LittleEndian.Uint64(data[512+0x1f4:]))
	assert.Equal(t, []byte{0xc5, 0xaf, 0x7d, 0x7a}, data[440:444], "the disk identifier stays")
	assert.Equal(t, []byte{0x55, 0xAA}, data[510:512])
}

func TestDiskImageCoreImageTooLarge(t *testing.T) {
	t.Parallel()
	requireDiskTools(t)
	tree := syntheticTree(t)
	writeTree(t, tree, "/boot/grub/i386-pc/core.img", strings.Repeat("x", int(disk.MiB)+1))
	image := filepath.Join(t.TempDir(), "disk.raw")
	env, _ := diskEnv(t, tree, image)
	err := (&DiskImage{Opts: manifest.DiskImage{PartitionTable: *testTable(disk.GPT), BIOSBootloader: "i386-pc"}}).Run(context.Background(), env)
	assert.ErrorContains(t, err, "does not fit")
	assert.NoFileExists(t, image, "a failed build leaves no image")
}

// A tree too large for its root filesystem fails with a clear error and
// leaves no image.
func TestDiskImageFailureRestoresTree(t *testing.T) {
	t.Parallel()
	requireDiskTools(t)
	tree := syntheticTree(t)
	big := make([]byte, 80*disk.MiB)
	for i := range big {
		big[i] = byte(i*7 + i>>9) // not sparse, not all zeros
	}
	require.NoError(t, os.WriteFile(filepath.Join(tree, "big"), big, 0o644))
	image := filepath.Join(t.TempDir(), "disk.raw")
	env, _ := diskEnv(t, tree, image)
	err := (&DiskImage{Opts: manifest.DiskImage{PartitionTable: *testTable(disk.GPT)}}).Run(context.Background(), env)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "partition 4 (ext4 /)")
	assert.Equal(t, "var data\n", readTree(t, tree, "/var/lib/app/state"))
	assert.FileExists(t, filepath.Join(tree, "boot/efi/EFI/BOOT/BOOTX64.EFI"))
	assert.NoFileExists(t, image)
}

// A filesystem with others mounted below it is built from a view of hard
// links with their mount points emptied (or made); the tree is not touched.
func TestFilesystemView(t *testing.T) {
	t.Parallel()
	tree := filepath.Join(t.TempDir(), "tree")
	writeTree(t, tree, "/var/lib/x", "x\n")
	writeTree(t, tree, "/home/u/.profile", "p\n")
	writeTree(t, tree, "/etc/hostname", "h\n")
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, d := range []string{"var", ""} {
		require.NoError(t, os.Chtimes(filepath.Join(tree, d), old, old))
	}
	view := filepath.Join(t.TempDir(), "view")
	got, err := filesystemView(context.Background(), tree, view, "/", []string{"/home", "/srv", "/var"})
	require.NoError(t, err)
	assert.Equal(t, view, got)

	assert.Equal(t, "h\n", readTree(t, view, "/etc/hostname"))
	for _, mp := range []string{"home", "srv", "var"} {
		entries, err := os.ReadDir(filepath.Join(view, mp))
		require.NoError(t, err, mp)
		assert.Empty(t, entries, "mount point %s is empty", mp)
	}
	fi, err := os.Stat(filepath.Join(view, "var"))
	require.NoError(t, err)
	assert.Equal(t, old, fi.ModTime().UTC(), "the emptied mount point keeps its time")
	fi, err = os.Stat(view)
	require.NoError(t, err)
	assert.Equal(t, old, fi.ModTime().UTC(), "making /srv leaves its parent's time")

	// The tree itself is unchanged, and the view shares its files.
	assert.Equal(t, "x\n", readTree(t, tree, "/var/lib/x"))
	assert.Equal(t, "p\n", readTree(t, tree, "/home/u/.profile"))
	assert.NoDirExists(t, filepath.Join(tree, "srv"))
	a, err := os.Stat(filepath.Join(tree, "etc/hostname"))
	require.NoError(t, err)
	b, err := os.Stat(filepath.Join(view, "etc/hostname"))
	require.NoError(t, err)
	assert.True(t, os.SameFile(a, b), "the view is hard links, not copies")

	// With nothing mounted below, the tree itself is the view.
	got, err = filesystemView(context.Background(), tree, filepath.Join(t.TempDir(), "v2"), "/", nil)
	require.NoError(t, err)
	assert.Equal(t, tree, got)

	// A mount point that is a file in the tree is an error.
	_, err = filesystemView(context.Background(), tree, filepath.Join(t.TempDir(), "v3"), "/", []string{"/etc/hostname"})
	assert.ErrorContains(t, err, "mount point /etc/hostname is not a directory")
}

// Two trees with the same contents, written seconds apart and in another
// order (other change and access times, other readdir order), give
// bit-identical disk images: the GPT, the ESP, two ext4 filesystems
// (one with a filesystem mounted below it) and GRUB's boot code. It also
// holds for the directory the tree came from being another.
func TestDiskImageIsReproducible(t *testing.T) {
	t.Parallel()
	requireDiskTools(t)
	build := func(tree string) []byte {
		image := filepath.Join(t.TempDir(), "disk.raw")
		env, log := diskEnv(t, tree, image)
		require.NoError(t, (&DiskImage{Opts: manifest.DiskImage{PartitionTable: *testTable(disk.GPT), BIOSBootloader: "i386-pc"}}).Run(context.Background(), env), log.String())
		data, err := os.ReadFile(image)
		require.NoError(t, err)
		return data
	}
	a := syntheticTree(t)
	time.Sleep(1100 * time.Millisecond)
	b := syntheticTree(t)
	// Files in b written in another order, a second later, and read.
	for _, p := range []string{"/etc/zz", "/etc/aa", "/boot/efi/EFI/zz.cfg", "/boot/efi/EFI/aa.cfg", "/var/lib/app/zz", "/var/lib/app/aa"} {
		writeTree(t, a, p, p+"\n")
	}
	time.Sleep(1100 * time.Millisecond)
	for _, p := range []string{"/var/lib/app/aa", "/var/lib/app/zz", "/boot/efi/EFI/aa.cfg", "/boot/efi/EFI/zz.cfg", "/etc/aa", "/etc/zz"} {
		writeTree(t, b, p, p+"\n")
	}
	_ = readTree(t, b, "/etc/os-release")
	imgA, imgB := build(a), build(b)
	if !bytes.Equal(imgA, imgB) {
		for i := range imgA {
			if imgA[i] != imgB[i] {
				t.Fatalf("the images differ first at byte %d", i)
			}
		}
	}
}
