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
type Initramfs struct{ Opts manifest.Initramfs }

var kernelVersionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+_~-]*$`)

// Validate implements Stage: the stage has no options.
func (s *Initramfs) Validate() error { return nil }

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
