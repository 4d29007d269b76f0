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
	"syscall"

	"github.com/kiln-project/kiln/internal/manifest"
)

// DebsInstall creates the root tree from the manifest's pinned packages with
// mmdebstrap, offline: the verified .deb files are indexed as a local
// repository that holds exactly the solved closure, and mmdebstrap installs
// all of it (essential packages first, as it always does), so the tree has
// precisely the packages the manifest pins. mmdebstrap runs in its own
// mount, PID and network namespaces; maintainer scripts run inside the tree.
type DebsInstall struct{ Opts manifest.DebsInstall }

var debName = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
var debVersion = regexp.MustCompile(`^[A-Za-z0-9.+~:-]+$`)

// Run implements Stage.
func (s *DebsInstall) Run(ctx context.Context, env *Env) error {
	if len(env.Debs) == 0 {
		return fmt.Errorf("the manifest pins no packages")
	}
	if !debName.MatchString(s.Opts.Arch) {
		return fmt.Errorf("architecture %q is not a Debian architecture", s.Opts.Arch)
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
			if err := os.Symlink(src, dst); err != nil {
				return fmt.Errorf("staging %s: %w", d.Name, err)
			}
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
	argv := []string{"unshare", "--mount", "--pid", "--net", "--uts", "--ipc", "--fork", "--kill-child", "--",
		"mmdebstrap", "--mode=root", "--variant=essential", "--architectures=" + s.Opts.Arch,
		"--include=" + strings.Join(all, ","),
		"--aptopt=APT::Install-Recommends \"false\"",
		"--dpkgopt=force-unsafe-io",
		// Bind-mounts the local repository into the tree while installing.
		"--hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount",
		"", env.Tree, "deb [trusted=yes] file://" + repo + " ./"}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C.UTF-8", "HOME=/root",
		fmt.Sprintf("SOURCE_DATE_EPOCH=%d", env.Epoch.Unix()), "TMPDIR=" + env.Work,
		// The kernel's hooks would build an initramfs now, before fstab,
		// users and the rest exist; the Initramfs stage builds it once, last.
		"INITRD=No",
	}
	cmd.Stdout, cmd.Stderr = env.Log, env.Log
	// If kiln dies, unshare dies with it and takes mmdebstrap along
	// (--kill-child), so nothing keeps writing into a dead build's tree.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	env.Logf("+ mmdebstrap: installing %d pinned packages", len(all))
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("mmdebstrap: %w (see the build log)", err)
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
		if err := env.Chroot(ctx, nil, append([]string{"apt-mark", "auto"}, auto...)...); err != nil {
			return fmt.Errorf("marking dependencies as automatically installed: %w", err)
		}
	}
	return nil
}
