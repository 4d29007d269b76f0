package stages

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/kiln-project/kiln/internal/engine/sandbox"
	"github.com/kiln-project/kiln/internal/manifest"
)

// DebsInstall creates the root tree from the manifest's pinned packages with
// mmdebstrap, offline: the verified .deb files are indexed as a local
// repository that holds exactly the solved closure, and mmdebstrap installs
// all of it (essential packages first, as it always does), so the tree has
// precisely the packages the manifest pins. mmdebstrap and the maintainer
// scripts it runs are sandboxed (see internal/engine/sandbox).
type DebsInstall struct{ Opts manifest.DebsInstall }

// repoInTree is where the local repository is bound while installing.
const repoInTree = "/.kiln-repo"

var debName = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
var debVersion = regexp.MustCompile(`^[A-Za-z0-9.+~:-]+$`)

// Validate implements Stage.
func (s *DebsInstall) Validate() error {
	if !debName.MatchString(s.Opts.Arch) {
		return fmt.Errorf("architecture %q is not a Debian architecture", s.Opts.Arch)
	}
	return nil
}

// Run implements Stage.
func (s *DebsInstall) Run(ctx context.Context, env *Env) error {
	if len(env.Debs) == 0 {
		return fmt.Errorf("the manifest pins no packages")
	}
	if err := s.Validate(); err != nil {
		return err
	}
	entries, err := os.ReadDir(env.Tree)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("the tree %s is not empty", env.Tree)
	}
	repo := filepath.Join(env.Work, "repo")
	if err := os.MkdirAll(repo, 0o755); err != nil {
		return err
	}
	var all []string
	for _, d := range env.Debs {
		if !debName.MatchString(d.Name) || !debVersion.MatchString(d.Version) || !debName.MatchString(d.Arch) {
			return fmt.Errorf("pinned package %q %q %q has an invalid name, version or architecture", d.Name, d.Version, d.Arch)
		}
		src, ok := env.DebFiles[d.SHA256]
		if !ok {
			return fmt.Errorf("package %s was not fetched", d.Name)
		}
		dst := filepath.Join(repo, fmt.Sprintf("%s_%s_%s.deb", d.Name, strings.ReplaceAll(d.Version, ":", "%3a"), d.Arch))
		if err := os.Link(src, dst); err != nil {
			if err := copyRegular(dst, src); err != nil {
				return fmt.Errorf("staging %s: %w", d.Name, err)
			}
		}
		// The sandbox's root is not the host's: it reads what others may.
		if err := os.Chmod(dst, 0o644); err != nil {
			return fmt.Errorf("staging %s: %w", d.Name, err)
		}
		all = append(all, d.Name)
	}
	for _, p := range s.Opts.Packages {
		if !slices.Contains(all, p) {
			return fmt.Errorf("requested package %s is not among the pinned packages", p)
		}
	}
	index := exec.CommandContext(ctx, "apt-ftparchive", "packages", ".")
	index.Dir = repo
	var packages, stderr bytes.Buffer
	index.Stdout, index.Stderr = &packages, &stderr
	if err := index.Run(); err != nil {
		return fmt.Errorf("indexing the pinned packages: %w: %s", err, stderr.String())
	}
	if err := os.WriteFile(filepath.Join(repo, "Packages"), packages.Bytes(), 0o644); err != nil {
		return err
	}
	// mmdebstrap runs in the sandbox's host-tools mode: the host's /usr
	// read-only, the tree at /target through an idmapped mount, no
	// capability on the host, no network. It chroots into /target for the
	// maintainer scripts, which therefore run as the sandbox's root, not
	// the host's. The local repository is bound read-only into the tree
	// at /.kiln-repo (the same path from both sides of the chroot) and
	// removed again afterwards; /proc, /dev and /sys in the tree are the
	// sandbox's, so mmdebstrap mounts nothing itself.
	argv := []string{"/usr/bin/mmdebstrap", "--mode=root", "--variant=essential", "--architectures=" + s.Opts.Arch,
		"--include=" + strings.Join(all, ","),
		"--aptopt=APT::Install-Recommends \"false\"",
		"--dpkgopt=force-unsafe-io",
		// A foreign architecture's programs run through qemu-user's
		// binfmt_misc handler, registered with the F flag (checked before
		// the build, see internal/emulation): mmdebstrap's own check would
		// look for it in the sandbox's /proc, where binfmt_misc is not
		// mounted, and copy an emulator into the tree.
		"--skip=check/empty,chroot/mount,check/qemu",
		"", "/target", "deb [trusted=yes] file://" + repoInTree + " ./"}
	env.Logf("+ mmdebstrap: installing %d pinned packages", len(all))
	err = env.Sandbox(ctx, sandbox.Options{
		Mode:  sandbox.HostTools,
		Binds: []sandbox.Bind{{Host: repo, Inside: "/target" + repoInTree}},
		Env: []string{
			"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C.UTF-8", "HOME=/root", "TMPDIR=/tmp",
			fmt.Sprintf("SOURCE_DATE_EPOCH=%d", env.Epoch.Unix()),
			// The kernel's hooks would build an initramfs now, before fstab,
			// users and the rest exist; the Initramfs stage builds it once, last.
			"INITRD=No",
		},
	}, argv...)
	// The mount point of the repository is all that is left of it.
	if rerr := os.Remove(filepath.Join(env.Tree, repoInTree)); rerr != nil && !os.IsNotExist(rerr) && err == nil {
		err = rerr
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("mmdebstrap: %w (see the build log)", err)
	}
	// The maintainer scripts ran without a /proc or /sys mounted (the
	// sandbox cannot mount them under mmdebstrap's unpacking); whatever a
	// script wrote there would ship in the image: empty them.
	for _, d := range []string{"proc", "sys"} {
		if err := emptyDir(env.Tree, "/"+d); err != nil {
			return fmt.Errorf("emptying /%s: %w", d, err)
		}
	}
	// Everything was named on mmdebstrap's command line, so everything is
	// marked as installed by hand: give the dependencies back their
	// automatic mark, as a normal installation would have them.
	var auto []string
	for _, n := range all {
		if !slices.Contains(s.Opts.Packages, n) {
			auto = append(auto, n)
		}
	}
	if len(auto) > 0 {
		if err := env.Chroot(ctx, nil, append([]string{"/usr/bin/apt-mark", "auto"}, auto...)...); err != nil {
			return fmt.Errorf("marking dependencies as automatically installed: %w", err)
		}
	}
	return nil
}
