package stages

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/manifest"
)

// requireISOTools skips a test when the host lacks the tools the ISO
// stage runs, or the host GRUB modules the fake tree borrows.
func requireISOTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"mksquashfs", "unsquashfs", "xorriso", "grub-mkimage", "mkfs.vfat", "mcopy", "mdir", "zstd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	for _, d := range []string{"/usr/lib/grub/i386-pc", "/usr/lib/grub/x86_64-efi"} {
		if _, err := os.Stat(filepath.Join(d, "normal.mod")); err != nil {
			t.Skipf("needs the host's GRUB modules in %s", d)
		}
	}
}

// isoTree is a small tree with what the ISO stage reads from a real one:
// a kernel and initramfs (not bootable, only carried), the host's GRUB
// modules standing in for the tree's, and a few files.
func isoTree(t *testing.T) string {
	t.Helper()
	tree := t.TempDir()
	writeTree(t, tree, "/boot/vmlinuz-6.1.0-9-amd64", "old kernel")
	writeTree(t, tree, "/boot/initrd.img-6.1.0-9-amd64", "old initrd")
	writeTree(t, tree, "/boot/vmlinuz-6.1.0-18-amd64", "kernel 18")
	writeTree(t, tree, "/boot/initrd.img-6.1.0-18-amd64", "initrd 18")
	writeTree(t, tree, "/etc/hostname", "live\n")
	writeTree(t, tree, "/etc/fstab", "UUID=1234 / ext4 defaults 0 1\n")
	writeTree(t, tree, "/etc/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n")
	writeTree(t, tree, "/var/lib/keep/me", "kept\n")
	require.NoError(t, os.MkdirAll(filepath.Join(tree, "usr/lib/grub"), 0o755))
	for _, p := range []string{"i386-pc", "x86_64-efi"} {
		out, err := exec.Command("cp", "-a", "/usr/lib/grub/"+p, filepath.Join(tree, "usr/lib/grub")).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	return tree
}

// isoEnv is an environment for one ISO build of tree into out, with extra
// inputs.
func isoEnv(t *testing.T, tree, out string, extra map[string]string) (*Env, *syncBuffer) {
	env, log := fileEnv(t, "")
	env.Input, env.Output, env.Extra = tree, out, extra
	return env, log
}

func installerISO() manifest.ISO {
	return manifest.ISO{
		Volume:        "KILN_TEST",
		KernelCmdline: []string{"console=tty0", "console=ttyS0,115200n8", "kiln.install"},
		BIOS:          "i386-pc",
		UEFI:          "x86_64-efi",
		Payloads:      []manifest.ISOPayload{{Input: "image", Path: "install/disk.img.zst", Compression: "zstd"}},
		Exclude:       []string{"etc/fstab"},
	}
}

// payloadFile is a sparse disk-like file with data at both ends.
func payloadFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.raw")
	f, err := os.Create(p)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("start of the disk"), 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("end of the disk"), 64<<20-15)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return p
}

func xorrisoReport(t *testing.T, iso string, args ...string) string {
	t.Helper()
	out, err := exec.Command("xorriso", append([]string{"-indev", iso}, args...)...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return string(out)
}

// extractFromISO copies the file p out of iso.
func extractFromISO(t *testing.T, iso, p string) []byte {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(p))
	xorrisoReport(t, iso, "-osirrox", "on", "-extract", p, dst)
	b, err := os.ReadFile(dst)
	require.NoError(t, err)
	return b
}

// TestISOInstaller builds a BIOS and UEFI installer ISO from a small tree
// and checks its boot records, partition tables, files, GRUB configuration,
// live root and payload.
func TestISOInstaller(t *testing.T) {
	t.Parallel()
	requireISOTools(t)
	tree := isoTree(t)
	disk := payloadFile(t)
	out := filepath.Join(t.TempDir(), "installer.iso")
	env, log := isoEnv(t, tree, out, map[string]string{"image": disk})
	s := &ISO{Opts: installerISO()}
	require.NoError(t, s.Run(context.Background(), env), log.String())
	assert.Contains(t, log.String(), "the ISO boots kernel 6.1.0-18-amd64")

	// El Torito: a BIOS entry and an EFI entry.
	el := xorrisoReport(t, out, "-report_el_torito", "plain")
	assert.Regexp(t, `El Torito boot img :\s+1\s+BIOS\s+y\s+none`, el)
	assert.Regexp(t, `El Torito boot img :\s+2\s+UEFI\s+y\s+none`, el)
	assert.Contains(t, el, "/boot/grub/bios.img")
	assert.Contains(t, el, "Volume id    : 'KILN_TEST'")

	// Hybrid: GRUB's boot code in the MBR, a GPT with the EFI system
	// partition appended after the ISO.
	img, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x55, 0xaa}, img[510:512], "MBR boot signature")
	hybrid, err := os.ReadFile("/usr/lib/grub/i386-pc/boot_hybrid.img")
	require.NoError(t, err)
	assert.Equal(t, hybrid[0x60:0x1b0], img[0x60:0x1b0], "GRUB's boot_hybrid.img code is in the MBR")
	assert.Equal(t, "EFI PART", string(img[512:520]), "GPT header at LBA 1")
	sys := xorrisoReport(t, out, "-report_system_area", "plain")
	assert.Regexp(t, `GPT type GUID\s+:\s+2\s+28732ac11ff8d211ba4b00a0c93ec93b`, sys, "the ESP is GPT partition 2")
	assert.Regexp(t, `GPT type GUID\s+:\s+1\s+a2a0d0ebe5b9334487c068b6b72699c7`, sys, "the ISO filesystem is GPT partition 1")
	assert.Regexp(t, `MBR partition\s+:\s+1\s+0x00\s+0xee`, sys, "a protective MBR")
	assert.Regexp(t, `MBR partition\s+:\s+\d\s+0x80`, sys, "an MBR entry is marked active, as some BIOSes require")

	// Files.
	files := xorrisoReport(t, out, "-find", "/", "-type", "f")
	for _, f := range []string{"/live/filesystem.squashfs", "/live/vmlinuz", "/live/initrd.img",
		"/boot/grub/grub.cfg", "/boot/grub/bios.img", "/boot/grub/i386-pc/linux.mod",
		"/boot/grub/x86_64-efi/linux.mod", "/install/disk.img.zst", "/.disk/info"} {
		assert.Contains(t, files, "'"+f+"'")
	}
	assert.Equal(t, "kernel 18", string(extractFromISO(t, out, "/live/vmlinuz")))
	assert.Equal(t, "initrd 18", string(extractFromISO(t, out, "/live/initrd.img")))
	cfg := string(extractFromISO(t, out, "/boot/grub/grub.cfg"))
	assert.Contains(t, cfg, "linux /live/vmlinuz boot=live components console=tty0 console=ttyS0,115200n8 kiln.install\n")
	assert.Contains(t, cfg, "initrd /live/initrd.img\n")
	assert.Contains(t, cfg, "serial --unit=0 --speed=115200")
	assert.Contains(t, cfg, "set timeout=1")

	// The marker the GRUB images search for is on the ISO and in the UEFI
	// image's embedded configuration (the BIOS image's is compressed).
	markers := xorrisoReport(t, out, "-find", "/.disk", "-name", "kiln-*")
	i := strings.Index(markers, "'/.disk/kiln-")
	require.GreaterOrEqual(t, i, 0, markers)
	marker := markers[i+1 : i+1+len("/.disk/kiln-")+16]
	efi := filepath.Join(t.TempDir(), "efi.img")
	xorrisoReport(t, out, "-osirrox", "on", "-extract_boot_images", filepath.Dir(efi)+"/")
	entries, _ := os.ReadDir(filepath.Dir(efi))
	var efiImg string
	for _, e := range entries {
		if strings.Contains(e.Name(), "uefi") || strings.Contains(e.Name(), "appended_partition_2") {
			efiImg = filepath.Join(filepath.Dir(efi), e.Name())
		}
	}
	require.NotEmpty(t, efiImg, "the EFI boot image is extracted: %v", entries)
	loader := filepath.Join(t.TempDir(), "BOOTX64.EFI")
	cmd := exec.Command("mcopy", "-i", efiImg, "::/EFI/BOOT/BOOTX64.EFI", loader)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	grubEFI, err := os.ReadFile(loader)
	require.NoError(t, err)
	assert.Equal(t, "MZ", string(grubEFI[:2]), "a PE image")
	assert.True(t, bytes.Contains(grubEFI, []byte("search --no-floppy --file --set=root "+marker+"\n")), "GRUB looks for %s", marker)

	// The live root: the tree minus the excluded fstab.
	sq := filepath.Join(t.TempDir(), "root.squashfs")
	require.NoError(t, os.WriteFile(sq, extractFromISO(t, out, "/live/filesystem.squashfs"), 0o644))
	list, err := exec.Command("unsquashfs", "-l", "-d", "", sq).CombinedOutput()
	require.NoError(t, err, "%s", list)
	assert.Contains(t, string(list), "/etc/hostname\n")
	assert.Contains(t, string(list), "/var/lib/keep/me\n")
	assert.Contains(t, string(list), "/usr/lib/grub/i386-pc/normal.mod\n")
	assert.NotContains(t, string(list), "/etc/fstab")

	// The payload decompresses to the input file.
	zst := filepath.Join(t.TempDir(), "disk.img.zst")
	require.NoError(t, os.WriteFile(zst, extractFromISO(t, out, "/install/disk.img.zst"), 0o644))
	got, err := exec.Command("zstd", "-dc", zst).Output()
	require.NoError(t, err)
	want, err := os.ReadFile(disk)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, got), "the payload is the input file (%d bytes, got %d)", len(want), len(got))
	zinfo, err := exec.Command("zstd", "-lv", zst).CombinedOutput()
	require.NoError(t, err, "%s", zinfo)
	assert.Contains(t, string(zinfo), "(67108864 B)", "the frame records the uncompressed size")
}

// TestISOReproducible builds the same installer ISO twice and requires the
// same bytes, the second time from a copy of the tree and the payload (other
// inodes, change times and directory order, as in another cache) and a
// second later (anything stamped with the wall clock would differ); another
// epoch gives other bytes.
func TestISOReproducible(t *testing.T) {
	t.Parallel()
	requireISOTools(t)
	tree, payload := isoTree(t), payloadFile(t)
	opts := installerISO()
	buildOnce := func(tree, payload string, laterDays int) []byte {
		out := filepath.Join(t.TempDir(), "installer.iso")
		env, log := isoEnv(t, tree, out, map[string]string{"image": payload})
		env.Epoch = env.Epoch.AddDate(0, 0, laterDays)
		require.NoError(t, (&ISO{Opts: opts}).Run(context.Background(), env), log.String())
		b, err := os.ReadFile(out)
		require.NoError(t, err)
		return b
	}
	a := buildOnce(tree, payload, 0)
	time.Sleep(1100 * time.Millisecond)
	treeCopy := filepath.Join(t.TempDir(), "tree")
	payloadCopy := filepath.Join(t.TempDir(), "disk.raw")
	for _, cp := range [][2]string{{tree, treeCopy}, {payload, payloadCopy}} {
		out, err := exec.Command("cp", "-r", "--sparse=always", cp[0], cp[1]).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	b := buildOnce(treeCopy, payloadCopy, 0)
	assert.True(t, bytes.Equal(a, b), "two builds from two copies of the inputs give the same bytes")
	c := buildOnce(tree, payload, 1)
	assert.False(t, bytes.Equal(a, c), "another epoch gives other bytes")
}

// A UEFI-only or BIOS-only ISO has only its own boot entry.
func TestISOSinglePlatform(t *testing.T) {
	t.Parallel()
	requireISOTools(t)
	tree := isoTree(t)
	for _, tc := range []struct {
		opts       manifest.ISO
		has, hasnt string
	}{
		{manifest.ISO{Volume: "UEFI_ONLY", UEFI: "x86_64-efi"}, "UEFI", "BIOS"},
		{manifest.ISO{Volume: "BIOS_ONLY", BIOS: "i386-pc"}, "BIOS", "UEFI"},
	} {
		out := filepath.Join(t.TempDir(), "x.iso")
		env, log := isoEnv(t, tree, out, nil)
		require.NoError(t, (&ISO{Opts: tc.opts}).Run(context.Background(), env), log.String())
		el := xorrisoReport(t, out, "-report_el_torito", "plain")
		assert.Regexp(t, `El Torito boot img :\s+1\s+`+tc.has, el, tc.opts.Volume)
		assert.NotRegexp(t, `El Torito boot img :\s+\d\s+`+tc.hasnt, el, tc.opts.Volume)
		img, err := os.ReadFile(out)
		require.NoError(t, err)
		assert.Equal(t, []byte{0x55, 0xaa}, img[510:512], tc.opts.Volume)
		hybrid, err := os.ReadFile("/usr/lib/grub/i386-pc/boot_hybrid.img")
		require.NoError(t, err)
		assert.Equal(t, tc.opts.BIOS != "", bytes.Equal(hybrid[0x60:0x1b0], img[0x60:0x1b0]), "GRUB's MBR code only with BIOS (%s)", tc.opts.Volume)
	}
}

func TestISORejects(t *testing.T) {
	t.Parallel()
	disk := payloadFile(t)
	extra := map[string]string{"image": disk}
	good := installerISO
	tests := []struct {
		name   string
		change func(o *manifest.ISO)
		want   string
	}{
		{"empty volume", func(o *manifest.ISO) { o.Volume = "" }, `volume ""`},
		{"lower-case volume", func(o *manifest.ISO) { o.Volume = "kiln" }, `volume "kiln"`},
		{"long volume", func(o *manifest.ISO) { o.Volume = strings.Repeat("A", 33) }, "1 to 32"},
		{"bios platform", func(o *manifest.ISO) { o.BIOS = "i386-coreboot" }, `bios platform "i386-coreboot"`},
		{"uefi platform", func(o *manifest.ISO) { o.UEFI = "riscv64-efi" }, `uefi platform "riscv64-efi"`},
		{"no platform", func(o *manifest.ISO) { o.BIOS, o.UEFI = "", "" }, "neither a bios nor a uefi"},
		{"kernel argument", func(o *manifest.ISO) { o.KernelCmdline = []string{"a b"} }, "kernel_cmdline[0]"},
		{"absolute exclude", func(o *manifest.ISO) { o.Exclude = []string{"/etc/fstab"} }, `exclude[0] "/etc/fstab": must be relative`},
		{"escaping exclude", func(o *manifest.ISO) { o.Exclude = []string{"../x"} }, `exclude[0] "../x"`},
		{"unclean exclude", func(o *manifest.ISO) { o.Exclude = []string{"etc//fstab"} }, "not a clean path"},
		{"unknown input", func(o *manifest.ISO) { o.Payloads[0].Input = "other" }, `payloads[0]: input "other" is not one of the pipeline's extra inputs`},
		{"absolute path", func(o *manifest.ISO) { o.Payloads[0].Path = "/disk.img.zst" }, `payloads[0]: path "/disk.img.zst": must be relative`},
		{"escaping path", func(o *manifest.ISO) { o.Payloads[0].Path = "../disk.img.zst" }, `payloads[0]: path "../disk.img.zst"`},
		{"dotdot inside", func(o *manifest.ISO) { o.Payloads[0].Path = "a/../../b.zst" }, "not a clean path"},
		{"odd characters", func(o *manifest.ISO) { o.Payloads[0].Path = "install/disk img.zst" }, "may hold only"},
		{"reserved", func(o *manifest.ISO) { o.Payloads[0].Path = "live/filesystem.squashfs.zst" }, "which the ISO's own files use"},
		{"compression", func(o *manifest.ISO) { o.Payloads[0].Compression = "lz4" }, `compression "lz4"`},
		{"zst suffix", func(o *manifest.ISO) { o.Payloads[0].Path = "install/disk.img" }, "must end in .zst"},
		{"twice", func(o *manifest.ISO) { o.Payloads = append(o.Payloads, o.Payloads[0]) }, "is used twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := good()
			tc.change(&o)
			out := filepath.Join(t.TempDir(), "x.iso")
			env, _ := isoEnv(t, t.TempDir(), out, extra)
			err := (&ISO{Opts: o}).Run(context.Background(), env)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.True(t, strings.HasPrefix(err.Error(), "iso: "), err.Error())
			_, statErr := os.Stat(out)
			assert.True(t, os.IsNotExist(statErr), "no output is left")
		})
	}
}

// A tree without GRUB's modules or without a kernel fails with a clear
// error and leaves no output behind.
func TestISOMissingTreeParts(t *testing.T) {
	t.Parallel()
	requireISOTools(t)
	opts := manifest.ISO{Volume: "X", BIOS: "i386-pc", UEFI: "x86_64-efi"}

	noGrub := isoTree(t)
	require.NoError(t, os.RemoveAll(filepath.Join(noGrub, "usr/lib/grub/x86_64-efi")))
	out := filepath.Join(t.TempDir(), "x.iso")
	env, _ := isoEnv(t, noGrub, out, nil)
	err := (&ISO{Opts: opts}).Run(context.Background(), env)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "x86_64-efi modules are missing from the tree")
	_, statErr := os.Stat(out)
	assert.True(t, os.IsNotExist(statErr), "no output is left")

	noKernel := isoTree(t)
	for _, k := range []string{"vmlinuz-6.1.0-9-amd64", "vmlinuz-6.1.0-18-amd64"} {
		require.NoError(t, os.Remove(filepath.Join(noKernel, "boot", k)))
	}
	env, _ = isoEnv(t, noKernel, out, nil)
	err = (&ISO{Opts: opts}).Run(context.Background(), env)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no kernel")

	noInitrd := isoTree(t)
	require.NoError(t, os.Remove(filepath.Join(noInitrd, "boot/initrd.img-6.1.0-18-amd64")))
	env, _ = isoEnv(t, noInitrd, out, nil)
	err = (&ISO{Opts: opts}).Run(context.Background(), env)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "initrd.img-6.1.0-18-amd64")
	_, statErr = os.Stat(out)
	assert.True(t, os.IsNotExist(statErr), "no output is left")
}
