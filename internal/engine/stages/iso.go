package stages

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-project/kiln/internal/manifest"
)

// ISO writes a hybrid ISO that boots the input tree live, without loop
// devices or mounts, the way Debian's live images are laid out:
//
//   - /live/filesystem.squashfs is the tree (minus Exclude), which
//     live-boot finds on any block device and mounts under an overlay;
//   - /live/vmlinuz and /live/initrd.img are the tree's newest kernel and
//     its initramfs (which must hold live-boot);
//   - /boot/grub holds grub.cfg and the tree's GRUB modules; GRUB's images
//     are built by grub-mkimage from the tree's module directories, with an
//     early configuration that finds the ISO by a marker file named after
//     the squashfs's digest, /.disk/kiln-<digest>;
//   - for BIOS, an El Torito image (i386-pc-eltorito) and GRUB's
//     boot_hybrid.img in the MBR, so it boots from optical media and from a
//     disk or USB stick; for UEFI, a FAT image holding EFI/BOOT/BOOTX64.EFI
//     (or the platform's removable-media name), appended as a GPT EFI system
//     partition and also named as El Torito's EFI boot image;
//   - the payloads, other pipelines' files, optionally zstd-compressed.
//
// xorriso writes the image; every time in it (squashfs, FAT and ISO) is the
// build's epoch, and the ISO's and GPT's identifiers derive from it, so the
// same inputs give the same bytes.
type ISO struct{ Opts manifest.ISO }

var (
	isoVolumeRE  = regexp.MustCompile(`^[A-Z0-9_]{1,32}$`)
	isoPathRE    = regexp.MustCompile(`^[A-Za-z0-9._+-]+(/[A-Za-z0-9._+-]+)*$`)
	isoReserved  = []string{"live", "boot", "EFI", ".disk", "boot.catalog"}
	isoBIOSPlats = map[string]bool{"i386-pc": true}
)

// Modules built into the ISO's GRUB images: what it takes to find the ISO
// on optical media or on a disk and read its configuration; normal mode
// loads anything else from /boot/grub/<platform> on the ISO.
var (
	isoBIOSModules = []string{
		"biosdisk", "iso9660", "part_msdos", "part_gpt", "search", "search_fs_file",
		"normal", "configfile", "linux", "echo", "test", "serial", "terminal",
		"gzio", "minicmd", "ls", "cat",
	}
	isoEFIModules = []string{
		"iso9660", "part_msdos", "part_gpt", "fat", "search", "search_fs_file",
		"normal", "configfile", "linux", "echo", "test", "serial", "terminal",
		"gzio", "minicmd", "ls", "cat", "all_video", "efi_gop", "reboot", "halt",
	}
)

// GPT partition types xorriso writes: the EFI system partition (appended)
// and Microsoft basic data (the ISO filesystem), in xorriso's byte order.
const (
	gptESPBytes       = "28732ac11ff8d211ba4b00a0c93ec93b"
	gptBasicDataBytes = "a2a0d0ebe5b9334487c068b6b72699c7"
)

// Validate implements Stage. The payloads' inputs are the pipeline's
// extra inputs, which Run checks.
func (s *ISO) Validate() error {
	o := s.Opts
	if err := validateISOOptions(&o); err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	return nil
}

// Run implements Stage.
func (s *ISO) Run(ctx context.Context, env *Env) (err error) {
	o := s.Opts
	payloads, err := validateISO(&o, env.Extra)
	if err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	tree := env.Input
	if fi, err := os.Stat(tree); err != nil || !fi.IsDir() {
		return fmt.Errorf("iso: the input %q is not a directory tree", tree)
	}
	for _, tool := range []struct{ name, pkg string }{
		{"mksquashfs", "squashfs-tools"}, {"xorriso", "xorriso"}, {"grub-mkimage", "grub-common"},
		{"mkfs.vfat", "dosfstools"}, {"mcopy", "mtools"}, {"zstd", "zstd"},
	} {
		if tool.name == "mkfs.vfat" && o.UEFI == "" || tool.name == "mcopy" && o.UEFI == "" {
			continue
		}
		if tool.name == "zstd" && !hasZstdPayload(o.Payloads) {
			continue
		}
		if _, err := exec.LookPath(tool.name); err != nil {
			return fmt.Errorf("iso: %s is not installed on the build host (Debian package %s)", tool.name, tool.pkg)
		}
	}
	kver, err := newestKernel(tree)
	if err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	defer func() {
		if err != nil {
			os.Remove(env.Output)
		}
	}()

	stage := filepath.Join(env.Work, "iso")
	for _, d := range []string{"live", "boot/grub", ".disk"} {
		if err := os.MkdirAll(filepath.Join(stage, d), 0o755); err != nil {
			return fmt.Errorf("iso: %w", err)
		}
	}
	epochEnv := []string{}
	if !env.Epoch.IsZero() {
		epochEnv = append(epochEnv, "SOURCE_DATE_EPOCH="+strconv.FormatInt(env.Epoch.Unix(), 10))
	}

	// The live root.
	squashfs := filepath.Join(stage, "live", "filesystem.squashfs")
	env.Logf("packing the tree into a squashfs (zstd)%s", excludedNote(o.Exclude))
	argv := []string{"mksquashfs", tree, squashfs, "-noappend", "-comp", "zstd", "-no-progress"}
	if len(o.Exclude) > 0 {
		argv = append(argv, "-e") // must come last: everything after it is excluded
		argv = append(argv, o.Exclude...)
	}
	if err := runTool(ctx, env, nil, epochEnv, argv...); err != nil {
		return fmt.Errorf("iso: packing the live root: %w", err)
	}
	digest, err := fileDigest(squashfs)
	if err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	id := digest[:16]

	// Kernel and initramfs.
	env.Logf("the ISO boots kernel %s", kver)
	for _, f := range [][2]string{
		{"/boot/vmlinuz-" + kver, "live/vmlinuz"},
		{"/boot/initrd.img-" + kver, "live/initrd.img"},
	} {
		src, err := ResolveInTree(tree, f[0])
		if err != nil {
			return fmt.Errorf("iso: %w", err)
		}
		if err := copyRegular(filepath.Join(stage, f[1]), src); err != nil {
			return fmt.Errorf("iso: %s: %w (the tree needs its initramfs, built with live-boot installed)", f[0], err)
		}
	}

	// The marker the GRUB images look for, and GRUB's configuration.
	marker := "/.disk/kiln-" + id
	if err := os.WriteFile(filepath.Join(stage, marker), []byte(id+"\n"), 0o644); err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	info := osName(tree) + " live " + o.Volume + "\n"
	if err := os.WriteFile(filepath.Join(stage, ".disk", "info"), []byte(info), 0o644); err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	if err := os.WriteFile(filepath.Join(stage, "boot/grub/grub.cfg"), []byte(isoGrubConfig(&o, osName(tree))), 0o644); err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	early := filepath.Join(env.Work, "early.cfg")
	earlyCfg := fmt.Sprintf("search --no-floppy --file --set=root %s\nset prefix=($root)/boot/grub\ninsmod normal\nnormal\n", marker)
	if err := os.WriteFile(early, []byte(earlyCfg), 0o644); err != nil {
		return fmt.Errorf("iso: %w", err)
	}

	xargv := []string{"xorriso", "-as", "mkisofs", "-o", env.Output,
		"-iso-level", "3", "-r", "-J", "-joliet-long", "-V", o.Volume,
		"-partition_cyl_align", "off", "-partition_offset", "16",
		"-iso_mbr_part_type", gptBasicDataBytes,
		"-c", "/boot.catalog",
	}
	if !env.Epoch.IsZero() {
		xargv = append(xargv, "--modification-date="+env.Epoch.UTC().Format("2006010215040500"))
	}

	if o.BIOS != "" {
		modDir, err := grubModuleDir(tree, o.BIOS)
		if err != nil {
			return fmt.Errorf("iso: %w", err)
		}
		if err := copyModules(filepath.Join(stage, "boot/grub", o.BIOS), modDir); err != nil {
			return fmt.Errorf("iso: %w", err)
		}
		env.Logf("building GRUB's BIOS El Torito image")
		img := filepath.Join(stage, "boot/grub/bios.img")
		argv := append([]string{"grub-mkimage", "-O", o.BIOS + "-eltorito", "-d", modDir,
			"-c", early, "-p", "/boot/grub", "-o", img}, isoBIOSModules...)
		if err := runTool(ctx, env, nil, nil, argv...); err != nil {
			return fmt.Errorf("iso: building GRUB's %s image: %w", o.BIOS, err)
		}
		hybrid := filepath.Join(modDir, "boot_hybrid.img")
		if _, err := os.Stat(hybrid); err != nil {
			return fmt.Errorf("iso: GRUB's boot_hybrid.img is missing from the tree (install grub-pc-bin in it): %w", err)
		}
		xargv = append(xargv, "--grub2-mbr", hybrid, "--mbr-force-bootable",
			"-b", "/boot/grub/bios.img", "-no-emul-boot", "-boot-load-size", "4",
			"-boot-info-table", "--grub2-boot-info")
	}
	if o.UEFI != "" {
		modDir, err := grubModuleDir(tree, o.UEFI)
		if err != nil {
			return fmt.Errorf("iso: %w", err)
		}
		if err := copyModules(filepath.Join(stage, "boot/grub", o.UEFI), modDir); err != nil {
			return fmt.Errorf("iso: %w", err)
		}
		env.Logf("building GRUB's UEFI image and its FAT boot image")
		loader := filepath.Join(env.Work, efiPlatforms[o.UEFI].removable)
		argv := append([]string{"grub-mkimage", "-O", o.UEFI, "-d", modDir,
			"-c", early, "-p", "/boot/grub", "-o", loader}, isoEFIModules...)
		if err := runTool(ctx, env, nil, nil, argv...); err != nil {
			return fmt.Errorf("iso: building GRUB's %s image: %w", o.UEFI, err)
		}
		efiImg := filepath.Join(env.Work, "efi.img")
		if err := makeEFIBootImage(ctx, env, efiImg, loader, id, epochEnv); err != nil {
			return fmt.Errorf("iso: %w", err)
		}
		if o.BIOS != "" {
			xargv = append(xargv, "-eltorito-alt-boot")
		}
		xargv = append(xargv, "-append_partition", "2", gptESPBytes, efiImg, "-appended_part_as_gpt",
			"-e", "--interval:appended_partition_2:all::", "-no-emul-boot")
	}
	xargv = append(xargv, "--protective-msdos-label")

	for _, p := range payloads {
		dst := filepath.Join(stage, filepath.FromSlash(p.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("iso: %w", err)
		}
		env.Logf("adding %s's file as %s (compression: %s)", p.Input, p.Path, orNone(p.Compression))
		if err := writePayload(ctx, env, dst, p.src, p.Compression); err != nil {
			return fmt.Errorf("iso: payload %s: %w", p.Path, err)
		}
	}

	if !env.Epoch.IsZero() {
		if err := setTimes(stage, env.Epoch); err != nil {
			return fmt.Errorf("iso: %w", err)
		}
	}
	if err := os.Remove(env.Output); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("iso: %w", err)
	}
	env.Logf("writing the hybrid ISO %s (volume %s)", filepath.Base(env.Output), o.Volume)
	xargv = append(xargv, stage)
	if err := runTool(ctx, env, nil, epochEnv, xargv...); err != nil {
		return fmt.Errorf("iso: writing the ISO: %w", err)
	}
	return nil
}

// isoPayload is a validated payload with its source file.
type isoPayload struct {
	manifest.ISOPayload
	src string
}

func hasZstdPayload(ps []manifest.ISOPayload) bool {
	for _, p := range ps {
		if p.Compression == "zstd" {
			return true
		}
	}
	return false
}

// validateISO checks the options against the pipeline's extra inputs and
// returns the payloads with their files.
func validateISO(o *manifest.ISO, extra map[string]string) ([]isoPayload, error) {
	if err := validateISOOptions(o); err != nil {
		return nil, err
	}
	return isoPayloads(o, extra)
}

// validateISOOptions checks what the options say alone; the payloads are
// checked against the pipeline's extra inputs when the stage runs.
func validateISOOptions(o *manifest.ISO) error {
	if !isoVolumeRE.MatchString(o.Volume) {
		return fmt.Errorf("volume %q must be 1 to 32 of A-Z, 0-9 and _", o.Volume)
	}
	if o.BIOS != "" && !isoBIOSPlats[o.BIOS] {
		return fmt.Errorf("bios platform %q is not supported: use \"i386-pc\"", o.BIOS)
	}
	if _, ok := efiPlatforms[o.UEFI]; o.UEFI != "" && !ok {
		return fmt.Errorf("uefi platform %q is not supported: use x86_64-efi, i386-efi or arm64-efi", o.UEFI)
	}
	if o.BIOS == "" && o.UEFI == "" {
		return errors.New("neither a bios nor a uefi platform is set: the ISO could not boot")
	}
	for i, a := range o.KernelCmdline {
		if !kernelArgRE.MatchString(a) {
			return fmt.Errorf("kernel_cmdline[%d] %q: a kernel argument may not hold spaces, quotes, backslashes or control characters", i, a)
		}
	}
	for i, e := range o.Exclude {
		if err := checkRelPath(e); err != nil {
			return fmt.Errorf("exclude[%d] %q: %w", i, e, err)
		}
	}
	return nil
}

// isoPayloads checks the payloads against the extra inputs and returns
// them with their files.
func isoPayloads(o *manifest.ISO, extra map[string]string) ([]isoPayload, error) {
	var out []isoPayload
	seen := map[string]bool{}
	for i, p := range o.Payloads {
		where := fmt.Sprintf("payloads[%d]", i)
		src, ok := extra[p.Input]
		if p.Input == "" || !ok {
			return nil, fmt.Errorf("%s: input %q is not one of the pipeline's extra inputs", where, p.Input)
		}
		if fi, err := os.Stat(src); err != nil || !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%s: input %q is not a file (%s)", where, p.Input, src)
		}
		if err := checkRelPath(p.Path); err != nil {
			return nil, fmt.Errorf("%s: path %q: %w", where, p.Path, err)
		}
		if !isoPathRE.MatchString(p.Path) {
			return nil, fmt.Errorf("%s: path %q may hold only A-Z, a-z, 0-9, '.', '_', '+', '-' and '/'", where, p.Path)
		}
		top, _, _ := strings.Cut(p.Path, "/")
		for _, r := range isoReserved {
			if strings.EqualFold(top, r) {
				return nil, fmt.Errorf("%s: path %q lies in /%s, which the ISO's own files use", where, p.Path, r)
			}
		}
		if seen[p.Path] {
			return nil, fmt.Errorf("%s: path %q is used twice", where, p.Path)
		}
		seen[p.Path] = true
		switch p.Compression {
		case "":
		case "zstd":
			if !strings.HasSuffix(p.Path, ".zst") {
				return nil, fmt.Errorf("%s: path %q of a zstd-compressed payload must end in .zst", where, p.Path)
			}
		default:
			return nil, fmt.Errorf("%s: compression %q is not supported: use zstd or none", where, p.Compression)
		}
		out = append(out, isoPayload{ISOPayload: p, src: src})
	}
	return out, nil
}

// checkRelPath accepts a clean relative path that stays where it is put.
func checkRelPath(p string) error {
	switch {
	case p == "":
		return errors.New("is empty")
	case strings.HasPrefix(p, "/"):
		return errors.New("must be relative (no leading /)")
	case path.Clean(p) != p || p == ".":
		return errors.New("is not a clean path")
	case p == ".." || strings.HasPrefix(p, "../"):
		return errors.New("leaves its directory (..)")
	case strings.IndexFunc(p, isControl) >= 0:
		return errors.New("holds control characters")
	}
	return nil
}

func excludedNote(ex []string) string {
	if len(ex) == 0 {
		return ""
	}
	return ", leaving out " + strings.Join(ex, ", ")
}

// isoGrubConfig is the ISO's /boot/grub/grub.cfg: one entry that boots
// the live system.
func isoGrubConfig(o *manifest.ISO, name string) string {
	var b strings.Builder
	b.WriteString("set default=0\nset timeout=1\n")
	if serial := serialConsole(o.KernelCmdline); serial != "" {
		fmt.Fprintf(&b, "%s\nterminal_input console serial\nterminal_output console serial\n", serial)
	}
	b.WriteString("if [ \"${grub_platform}\" = \"efi\" ]; then\n\tinsmod all_video\nfi\n\n")
	args := []string{"boot=live", "components"}
	for _, a := range o.KernelCmdline {
		args = append(args, grubQuote(a))
	}
	fmt.Fprintf(&b, "menuentry %s --id kiln-live {\n", grubQuote(name+" (live)"))
	b.WriteString("\techo 'Loading Linux ...'\n")
	fmt.Fprintf(&b, "\tlinux /live/vmlinuz %s\n", strings.Join(args, " "))
	b.WriteString("\techo 'Loading initial ramdisk ...'\n")
	b.WriteString("\tinitrd /live/initrd.img\n}\n")
	return b.String()
}

// grubModuleDir is the host path of the tree's GRUB modules for platform.
func grubModuleDir(tree, platform string) (string, error) {
	dir, err := ResolveInTree(tree, "/usr/lib/grub/"+platform)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(dir, "normal.mod")); err != nil {
		pkg := "grub-pc-bin"
		if platform != "i386-pc" {
			pkg = "grub-efi-amd64-bin (or the platform's grub-efi-*-bin)"
		}
		return "", fmt.Errorf("GRUB's %s modules are missing from the tree: install %s in it", platform, pkg)
	}
	return dir, nil
}

// copyModules copies the regular files of GRUB's module directory src to
// dst, where normal mode loads modules from.
func copyModules(dst, src string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if err := copyRegular(filepath.Join(dst, e.Name()), filepath.Join(src, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// copyRegular copies the regular file src to dst (mode 0644).
func copyRegular(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", src)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// makeEFIBootImage writes a FAT image holding loader as the removable-media
// loader, EFI/BOOT/<name>. Its size is the loader's plus room for the
// filesystem; its volume ID derives from id.
func makeEFIBootImage(ctx context.Context, env *Env, img, loader, id string, epochEnv []string) error {
	fi, err := os.Stat(loader)
	if err != nil {
		return err
	}
	kib := (fi.Size()/1024 + 1024 + 1023) / 1024 * 1024 // plus 1 MiB, in whole MiB
	extEnv := append([]string{"MTOOLS_SKIP_CHECK=1"}, epochEnv...)
	if !env.Epoch.IsZero() {
		if err := os.Chtimes(loader, env.Epoch, env.Epoch); err != nil {
			return err
		}
	}
	// No volume label: mkfs.vfat stamps the label's directory entry with
	// the current time, whatever SOURCE_DATE_EPOCH says.
	steps := [][]string{
		{"mkfs.vfat", "-C", "-i", id[:8], img, strconv.FormatInt(kib, 10)},
		{"mmd", "-i", img, "::/EFI", "::/EFI/BOOT"},
		{"mcopy", "-p", "-m", "-Q", "-i", img, loader, "::/EFI/BOOT/" + filepath.Base(loader)},
	}
	for _, argv := range steps {
		if err := runTool(ctx, env, nil, extEnv, argv...); err != nil {
			return fmt.Errorf("building the EFI boot image: %w", err)
		}
	}
	return nil
}

// writePayload writes src to dst, zstd-compressed when asked. zstd reads
// src by name, so the frame records the uncompressed size (zstd -l shows
// it; an installer checks the target disk against it).
func writePayload(ctx context.Context, env *Env, dst, src, compression string) error {
	if compression == "" {
		return copyRegular(dst, src)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	err = runToolTo(ctx, env, nil, out, "zstd", "-q", "-T0", "-c", "--", src)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// fileDigest is the hex SHA-256 of a file.
func fileDigest(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// setTimes sets the modification time of everything under dir to t.
func setTimes(dir string, t time.Time) error {
	return filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, t, t)
	})
}
