package stages

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/kiln-project/kiln/internal/manifest"
)

// Initramfs builds the initramfs of every kernel installed in the tree with
// update-initramfs (initramfs-tools) inside it: "-u" for a kernel that has
// one already, "-c" for a kernel that has none. A kernel is a
// /boot/vmlinuz-VERSION with its modules in /lib/modules/VERSION; a tree
// without one is an error.
//
// With Opts.Drivers set, the stage first writes
// /etc/initramfs-tools/conf.d/kiln-drivers.conf (MODULES=list) and the
// hook /etc/initramfs-tools/hooks/kiln-drivers, which adds those modules
// with what they depend on. udev loads them at boot as it finds their
// devices, as it does with MODULES=most; a driver the kernel has built in
// or lacks is skipped. Both files stay in the image, so an initramfs the
// machine builds later for a new kernel holds the same drivers.
type Initramfs struct{ Opts manifest.Initramfs }

var (
	kernelVersionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+_~-]*$`)
	// moduleNameRE is a kernel module's name as modprobe takes it.
	moduleNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
)

const (
	initramfsDriversConf = "/etc/initramfs-tools/conf.d/kiln-drivers.conf"
	initramfsDriversHook = "/etc/initramfs-tools/hooks/kiln-drivers"
)

// Validate implements Stage: every driver is a module name.
func (s *Initramfs) Validate() error {
	for i, d := range s.Opts.Drivers {
		if !moduleNameRE.MatchString(d) {
			return fmt.Errorf("initramfs: drivers[%d] %q is not a kernel module name (letters, digits, _ and -)", i, d)
		}
	}
	return nil
}

// driversHook is the initramfs-tools hook that adds drivers. The names
// were checked by Validate, so they are written as they are.
func driversHook(drivers []string) string {
	return `#!/bin/sh
# Written by kiln: the drivers this image's initramfs holds
# (with MODULES=list in ` + initramfsDriversConf + `).
set -e
case "$1" in prereqs) exit 0 ;; esac
. /usr/share/initramfs-tools/hook-functions
manual_add_modules ` + strings.Join(drivers, " ") + "\n"
}

// Run implements Stage.
func (s *Initramfs) Run(ctx context.Context, env *Env) error {
	versions, err := installedKernels(env.Tree)
	if err != nil {
		return err
	}
	if len(versions) == 0 {
		return errors.New("initramfs: no kernel is installed in the image (no /boot/vmlinuz-VERSION with modules in /lib/modules/VERSION); add a kernel package such as linux-image-amd64")
	}
	tool, err := ResolveInTree(env.Tree, "/usr/sbin/update-initramfs")
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	if _, err := os.Stat(tool); err != nil {
		return errors.New("initramfs: update-initramfs is not installed in the image; add the initramfs-tools package")
	}
	boot, err := ResolveInTree(env.Tree, "/boot")
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	if len(s.Opts.Drivers) > 0 {
		if err := WriteFile(env.Tree, initramfsDriversConf, []byte("# Written by kiln: only the drivers "+initramfsDriversHook+" adds.\nMODULES=list\n"), 0o644); err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
		if err := WriteFile(env.Tree, initramfsDriversHook, []byte(driversHook(s.Opts.Drivers)), 0o755); err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
		env.Logf("initramfs drivers: %s", strings.Join(s.Opts.Drivers, " "))
	}
	for _, v := range versions {
		verb := "-c"
		if _, err := os.Lstat(filepath.Join(boot, "initrd.img-"+v)); err == nil {
			verb = "-u"
		}
		env.Logf("update-initramfs %s -k %s", verb, v)
		if err := env.Chroot(ctx, nil, "/usr/sbin/update-initramfs", verb, "-k", v); err != nil {
			return fmt.Errorf("initramfs of kernel %s: %w", v, err)
		}
		if _, err := os.Stat(filepath.Join(boot, "initrd.img-"+v)); err != nil {
			return fmt.Errorf("initramfs of kernel %s: update-initramfs wrote no /boot/initrd.img-%s", v, v)
		}
	}
	return nil
}

// installedKernels lists the versions of the kernels in the tree, sorted.
func installedKernels(tree string) ([]string, error) {
	boot, err := ResolveInTree(tree, "/boot")
	if err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	modules, err := ResolveInTree(tree, "/lib/modules")
	if err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	entries, err := os.ReadDir(boot)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	var out []string
	for _, e := range entries {
		v, ok := strings.CutPrefix(e.Name(), "vmlinuz-")
		if !ok || !kernelVersionRE.MatchString(v) {
			continue
		}
		if fi, err := os.Stat(filepath.Join(modules, v)); err != nil || !fi.IsDir() {
			continue
		}
		out = append(out, v)
	}
	sort.Strings(out)
	return out, nil
}
