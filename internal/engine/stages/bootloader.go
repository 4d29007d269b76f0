package stages

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	debversion "github.com/knqyf263/go-deb-version"

	"github.com/kiln-project/kiln/internal/manifest"
)

// Bootloader installs GRUB into the tree without touching a disk: it
// writes /boot/grub/grub.cfg for the newest kernel in /boot, records the
// kernel command line in /etc/default/grub (so update-grub on the running
// system keeps it), copies GRUB's modules for each platform to
// /boot/grub/<platform>, and builds with the tree's own grub-mkimage
//
//   - for UEFI, the removable-media loader /boot/efi/EFI/BOOT/BOOTX64.EFI
//     (and a copy at /boot/efi/EFI/debian/grubx64.efi), the ESP's content
//     living under /boot/efi in the tree;
//   - for BIOS, /boot/grub/i386-pc/core.img, which the disk image stage
//     writes into the BIOS boot partition or the gap after the MBR, with
//     boot.img in the MBR.
//
// Both images carry an early configuration that finds the filesystem
// holding /boot by UUID and loads GRUB's normal mode from it, so nothing
// depends on disk or partition numbering.
type Bootloader struct{ Opts manifest.Bootloader }

// efiPlatform is what one UEFI GRUB platform needs.
type efiPlatform struct {
	removable string // file name on the removable-media path
	loader    string // file name under EFI/debian
}

var efiPlatforms = map[string]efiPlatform{
	"x86_64-efi": {removable: "BOOTX64.EFI", loader: "grubx64.efi"},
	"i386-efi":   {removable: "BOOTIA32.EFI", loader: "grubia32.efi"},
	"arm64-efi":  {removable: "BOOTAA64.EFI", loader: "grubaa64.efi"},
}

// Modules built into the images: what it takes to find and read the
// filesystem holding /boot/grub; everything else is loaded from there.
var (
	efiModules = []string{
		"part_gpt", "part_msdos", "fat", "ext2", "search", "search_fs_uuid", "search_label",
		"normal", "linux", "configfile", "echo", "all_video", "gzio", "test", "boot",
		"serial", "terminal", "ls", "cat", "reboot", "halt", "loadenv", "minicmd",
	}
	biosModules = []string{
		"biosdisk", "part_gpt", "part_msdos", "ext2", "search", "search_fs_uuid",
		"normal", "configfile", "echo", "test",
	}
)

var (
	kernelArgRE = regexp.MustCompile(`^[^\s'"\\\x00-\x1f\x7f]+$`)
	plainArgRE  = regexp.MustCompile(`^[A-Za-z0-9._,:=/+@%-]+$`)
	serialRE    = regexp.MustCompile(`^console=ttyS([0-9]+)(?:,([0-9]+))?`)
)

// Validate implements Stage.
func (s *Bootloader) Validate() error {
	o := s.Opts
	if err := validateBootloader(&o); err != nil {
		return fmt.Errorf("bootloader: %w", err)
	}
	return nil
}

// Run implements Stage.
func (s *Bootloader) Run(ctx context.Context, env *Env) error {
	o := s.Opts
	if err := validateBootloader(&o); err != nil {
		return fmt.Errorf("bootloader: %w", err)
	}
	kver, err := newestKernel(env.Tree)
	if err != nil {
		return fmt.Errorf("bootloader: %w", err)
	}
	env.Logf("GRUB boots kernel %s", kver)
	if err := WriteFile(env.Tree, "/boot/grub/grub.cfg", []byte(grubConfig(&o, kver, osName(env.Tree))), 0o644); err != nil {
		return fmt.Errorf("bootloader: %w", err)
	}
	if err := writeDefaultGrub(env.Tree, &o); err != nil {
		return fmt.Errorf("bootloader: %w", err)
	}
	for _, platform := range []string{o.BIOS, o.UEFI} {
		if platform == "" {
			continue
		}
		if err := copyGrubModules(env.Tree, platform); err != nil {
			return fmt.Errorf("bootloader: %w", err)
		}
	}
	early := earlyConfig(&o)
	if o.UEFI != "" {
		p := efiPlatforms[o.UEFI]
		removable := "/boot/efi/EFI/BOOT/" + p.removable
		if err := grubMkimage(ctx, env, o.UEFI, early, grubPrefix(&o), removable, efiModules); err != nil {
			return fmt.Errorf("bootloader: %w", err)
		}
		data, err := readInTree(env.Tree, removable)
		if err != nil {
			return fmt.Errorf("bootloader: %w", err)
		}
		if err := WriteFile(env.Tree, "/boot/efi/EFI/debian/"+p.loader, data, 0o644); err != nil {
			return fmt.Errorf("bootloader: %w", err)
		}
	}
	if o.BIOS != "" {
		if err := grubMkimage(ctx, env, o.BIOS, early, grubPrefix(&o), "/boot/grub/i386-pc/core.img", biosModules); err != nil {
			return fmt.Errorf("bootloader: %w", err)
		}
		if _, err := readInTree(env.Tree, "/boot/grub/i386-pc/boot.img"); err != nil {
			return fmt.Errorf("bootloader: GRUB's boot.img is missing: install grub-pc-bin in the image: %w", err)
		}
	}
	return nil
}

func validateBootloader(o *manifest.Bootloader) error {
	switch o.BIOS {
	case "", "i386-pc":
	default:
		return fmt.Errorf("bios platform %q is not supported: use \"i386-pc\"", o.BIOS)
	}
	if _, ok := efiPlatforms[o.UEFI]; o.UEFI != "" && !ok {
		return fmt.Errorf("uefi platform %q is not supported: use x86_64-efi, i386-efi or arm64-efi", o.UEFI)
	}
	if o.BIOS == "" && o.UEFI == "" {
		return errors.New("neither a bios nor a uefi platform is set: the image could not boot")
	}
	if !uuidRE.MatchString(o.RootFSUUID) {
		return fmt.Errorf("root_fs_uuid %q is not a filesystem UUID", o.RootFSUUID)
	}
	if o.BootFSUUID != "" && !uuidRE.MatchString(o.BootFSUUID) && !volumeIDRE.MatchString(o.BootFSUUID) {
		return fmt.Errorf("boot_fs_uuid %q is not a filesystem UUID", o.BootFSUUID)
	}
	for i, a := range o.KernelCmdline {
		if !kernelArgRE.MatchString(a) {
			return fmt.Errorf("kernel_cmdline[%d] %q: a kernel argument may not hold spaces, quotes, backslashes or control characters", i, a)
		}
	}
	if o.Timeout < 0 || o.Timeout > 3600 {
		return fmt.Errorf("timeout %d is out of range (0 to 3600 seconds)", o.Timeout)
	}
	return nil
}

// newestKernel returns the version of the newest vmlinuz-<version> in the
// tree's /boot.
func newestKernel(tree string) (string, error) {
	dir, err := ResolveInTree(tree, "/boot")
	if err != nil {
		return "", err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("looking for a kernel in /boot: %w", err)
	}
	var best string
	for _, e := range entries {
		v, ok := strings.CutPrefix(e.Name(), "vmlinuz-")
		if !ok || !e.Type().IsRegular() || strings.HasSuffix(v, ".dpkg-tmp") || strings.HasSuffix(v, ".old") {
			continue
		}
		if best == "" || kernelNewer(v, best) {
			best = v
		}
	}
	if best == "" {
		return "", errors.New("no kernel (/boot/vmlinuz-*) in the tree: install a kernel package such as linux-image-amd64")
	}
	return best, nil
}

func kernelNewer(a, b string) bool {
	va, erra := debversion.NewVersion(a)
	vb, errb := debversion.NewVersion(b)
	if erra != nil || errb != nil {
		return a > b
	}
	return va.GreaterThan(vb)
}

// osName is the tree's PRETTY_NAME, for the menu entry.
func osName(tree string) string {
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		data, err := readInTree(tree, p)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				if u, err := strconv.Unquote(v); err == nil {
					v = u
				}
				v = strings.Trim(v, `"'`)
				if v != "" && strings.IndexFunc(v, isControl) < 0 {
					return v
				}
			}
		}
	}
	return "GNU/Linux"
}

// grubQuote quotes s as one word for GRUB's script parser.
func grubQuote(s string) string {
	if plainArgRE.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// bootFS is the UUID of the filesystem holding /boot and the path of /boot
// on it.
func bootFS(o *manifest.Bootloader) (uuid, dir string) {
	if o.BootFSUUID != "" {
		return o.BootFSUUID, ""
	}
	return o.RootFSUUID, "/boot"
}

func grubPrefix(o *manifest.Bootloader) string {
	_, dir := bootFS(o)
	return dir + "/grub"
}

// serialConsole returns GRUB's serial command for the last console=ttyS
// kernel argument, or "".
func serialConsole(args []string) string {
	cmd := ""
	for _, a := range args {
		if m := serialRE.FindStringSubmatch(a); m != nil {
			speed := m[2]
			if speed == "" {
				speed = "9600"
			}
			cmd = "serial --unit=" + m[1] + " --speed=" + speed
		}
	}
	return cmd
}

func grubConfig(o *manifest.Bootloader, kver, name string) string {
	uuid, dir := bootFS(o)
	var b strings.Builder
	b.WriteString("# Written when the image was built. update-grub, when installed and run,\n")
	b.WriteString("# replaces this file and keeps the kernel command line of /etc/default/grub.\n")
	fmt.Fprintf(&b, "set default=0\nset timeout=%d\n", o.Timeout)
	if serial := serialConsole(o.KernelCmdline); serial != "" {
		fmt.Fprintf(&b, "%s\nterminal_input console serial\nterminal_output console serial\n", serial)
	}
	b.WriteString("if [ \"${grub_platform}\" = \"efi\" ]; then\n\tinsmod all_video\nfi\n")
	b.WriteString("insmod part_gpt\ninsmod part_msdos\ninsmod ext2\ninsmod gzio\n\n")
	args := []string{"root=UUID=" + o.RootFSUUID, "ro"}
	for _, a := range o.KernelCmdline {
		args = append(args, grubQuote(a))
	}
	fmt.Fprintf(&b, "menuentry %s --id kiln-default {\n", grubQuote(name))
	fmt.Fprintf(&b, "\tsearch --no-floppy --fs-uuid --set=root %s\n", uuid)
	fmt.Fprintf(&b, "\techo %s\n", grubQuote("Loading Linux "+kver+" ..."))
	fmt.Fprintf(&b, "\tlinux %s/vmlinuz-%s %s\n", dir, kver, strings.Join(args, " "))
	fmt.Fprintf(&b, "\techo %s\n", grubQuote("Loading initial ramdisk ..."))
	fmt.Fprintf(&b, "\tinitrd %s/initrd.img-%s\n}\n", dir, kver)
	return b.String()
}

// earlyConfig is the configuration built into GRUB's images: find /boot's
// filesystem, point the prefix at its grub directory and start normal
// mode, which reads grub.cfg there.
func earlyConfig(o *manifest.Bootloader) string {
	uuid, dir := bootFS(o)
	return fmt.Sprintf("search --no-floppy --fs-uuid --set=root %s\nset prefix=($root)%s/grub\ninsmod normal\nnormal\n", uuid, dir)
}

// shellQuote quotes s inside double quotes for a shell-sourced file.
func shellQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`")
	return `"` + r.Replace(s) + `"`
}

// writeDefaultGrub sets GRUB_CMDLINE_LINUX and GRUB_TIMEOUT in
// /etc/default/grub, creating the file when no package did.
func writeDefaultGrub(tree string, o *manifest.Bootloader) error {
	set := [][2]string{
		{"GRUB_TIMEOUT", strconv.Itoa(o.Timeout)},
		{"GRUB_CMDLINE_LINUX", shellQuote(strings.Join(o.KernelCmdline, " "))},
	}
	var lines []string
	if data, err := readInTree(tree, "/etc/default/grub"); err == nil {
		lines = strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	} else if errors.Is(err, fs.ErrNotExist) {
		lines = []string{"# GRUB's settings, read by update-grub.", "GRUB_DEFAULT=0", `GRUB_CMDLINE_LINUX_DEFAULT=""`}
		if serial := serialConsole(o.KernelCmdline); serial != "" {
			lines = append(lines, `GRUB_TERMINAL="console serial"`, "GRUB_SERIAL_COMMAND="+shellQuote(serial))
		}
	} else {
		return err
	}
	for _, kv := range set {
		line := kv[0] + "=" + kv[1]
		out := make([]string, 0, len(lines)+1)
		done := false
		for _, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), kv[0]+"=") {
				if !done { // the first assignment is replaced, later ones dropped
					out = append(out, line)
					done = true
				}
				continue
			}
			out = append(out, l)
		}
		if !done {
			out = append(out, line)
		}
		lines = out
	}
	return WriteFile(tree, "/etc/default/grub", []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// copyGrubModules copies /usr/lib/grub/<platform> to /boot/grub/<platform>
// inside the tree.
func copyGrubModules(tree, platform string) error {
	src, err := ResolveInTree(tree, "/usr/lib/grub/"+platform)
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("GRUB's %s modules are missing from the tree (install grub-pc-bin or grub-efi-*-bin): %w", platform, err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		if err := WriteFile(tree, path.Join("/boot/grub", platform, e.Name()), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// grubMkimage runs the tree's grub-mkimage inside the tree, so the image
// matches the target's GRUB modules.
func grubMkimage(ctx context.Context, env *Env, platform, early, prefix, output string, modules []string) error {
	tmp, err := ResolveInTree(env.Tree, "/tmp")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o1777); err != nil {
		return err
	}
	f, err := os.CreateTemp(tmp, "kiln-grub-early-*.cfg")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(early); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	out, err := ResolveInTree(env.Tree, output)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	argv := append([]string{"/usr/bin/grub-mkimage", "-O", platform, "-d", "/usr/lib/grub/" + platform,
		"-c", "/tmp/" + filepath.Base(f.Name()), "-p", prefix, "-o", output}, modules...)
	if err := env.Chroot(ctx, nil, argv...); err != nil {
		return fmt.Errorf("building GRUB's %s image: %w", platform, err)
	}
	return nil
}

// readInTree reads the file at absolute path p inside the tree.
func readInTree(tree, p string) ([]byte, error) {
	host, err := ResolveInTree(tree, p)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(host)
}
