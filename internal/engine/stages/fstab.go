package stages

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/kiln-project/kiln/internal/manifest"
)

// FSTab writes /etc/fstab with every filesystem named by UUID, parents
// before the filesystems mounted inside them and swap last, and creates
// each mount point in the tree.
type FSTab struct{ Opts manifest.FSTab }

var (
	fsUUIDRE    = regexp.MustCompile(`^[0-9A-Fa-f]+(-[0-9A-Fa-f]+)*$`)
	fsTypeRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9._]*$`)
	fsOptionsRE = regexp.MustCompile(`^[A-Za-z0-9_=,.:/@+-]+$`)
)

// Validate implements Stage.
func (s *FSTab) Validate() error {
	_, err := s.entries()
	return err
}

// entries checks the entries and returns them as checkFSTabEntry leaves
// them, in a new slice.
func (s *FSTab) entries() ([]manifest.FSTabEntry, error) {
	entries := slices.Clone(s.Opts.Entries)
	if len(entries) == 0 {
		return nil, fmt.Errorf("fstab: no filesystems; an image needs at least its root filesystem")
	}
	seen := map[string]bool{}
	for i := range entries {
		e := &entries[i]
		if err := checkFSTabEntry(e); err != nil {
			return nil, fmt.Errorf("fstab entries[%d]: %w", i, err)
		}
		if e.FSType != "swap" {
			if seen[e.Mountpoint] {
				return nil, fmt.Errorf("fstab entries[%d]: mount point %s is listed twice", i, e.Mountpoint)
			}
			seen[e.Mountpoint] = true
		}
	}
	return entries, nil
}

// Run implements Stage.
func (s *FSTab) Run(_ context.Context, env *Env) error {
	entries, err := s.entries()
	if err != nil {
		return err
	}
	// Mount order: a filesystem after the one it is mounted in.
	slices.SortStableFunc(entries, func(a, b manifest.FSTabEntry) int {
		return fstabRank(a) - fstabRank(b)
	})
	var b strings.Builder
	b.WriteString("# /etc/fstab: static file system information, written by kiln.\n")
	b.WriteString("# Filesystems are named by UUID; see fstab(5).\n#\n")
	b.WriteString("# <file system>\t<mount point>\t<type>\t<options>\t<dump>\t<pass>\n")
	for _, e := range entries {
		if e.FSType == "swap" {
			fmt.Fprintf(&b, "UUID=%s\tnone\tswap\tsw\t0\t0\n", e.UUID)
			continue
		}
		fmt.Fprintf(&b, "UUID=%s\t%s\t%s\t%s\t0\t%d\n", e.UUID, e.Mountpoint, e.FSType, e.Options, e.PassNo)
		if err := makeMountpoint(env.Tree, e.Mountpoint); err != nil {
			return err
		}
	}
	if err := WriteFile(env.Tree, "/etc/fstab", []byte(b.String()), 0o644); err != nil {
		return err
	}
	env.Logf("wrote /etc/fstab with %d entries", len(entries))
	return nil
}

// checkFSTabEntry validates e and fills in default options.
func checkFSTabEntry(e *manifest.FSTabEntry) error {
	if !fsUUIDRE.MatchString(e.UUID) || len(e.UUID) > 64 {
		return fmt.Errorf("%q is not a filesystem UUID", e.UUID)
	}
	if !fsTypeRE.MatchString(e.FSType) || len(e.FSType) > 32 {
		return fmt.Errorf("%q is not a filesystem type", e.FSType)
	}
	if e.FSType == "swap" {
		if e.Mountpoint != "none" && e.Mountpoint != "" && e.Mountpoint != "swap" {
			return fmt.Errorf("swap on %s: swap has no mount point (give \"none\")", e.UUID)
		}
		return nil
	}
	if e.Mountpoint != "/" {
		if err := checkTreePath(e.Mountpoint); err != nil {
			return fmt.Errorf("mount point: %w", err)
		}
	}
	if strings.ContainsAny(e.Mountpoint, " \t\\#") {
		return fmt.Errorf("mount point %q may not contain blanks, '\\' or '#'", e.Mountpoint)
	}
	if e.Options == "" {
		e.Options = "defaults"
	}
	if !fsOptionsRE.MatchString(e.Options) || len(e.Options) > 1024 {
		return fmt.Errorf("mount options %q: expected comma-separated options such as \"defaults,noatime\"", e.Options)
	}
	if e.PassNo < 0 || e.PassNo > 2 {
		return fmt.Errorf("%s: fsck pass %d is not 0, 1 or 2", e.Mountpoint, e.PassNo)
	}
	return nil
}

// fstabRank orders entries by mount point depth, swap last.
func fstabRank(e manifest.FSTabEntry) int {
	switch {
	case e.FSType == "swap":
		return 1 << 20
	case e.Mountpoint == "/":
		return 0
	}
	return strings.Count(e.Mountpoint, "/")
}

// makeMountpoint creates the mount point directory in the tree.
func makeMountpoint(tree, mp string) error {
	host, err := ResolveInTree(tree, mp)
	if err != nil {
		return fmt.Errorf("mount point %s: %w", mp, err)
	}
	if err := os.MkdirAll(host, 0o755); err != nil {
		return fmt.Errorf("creating mount point %s: %w", mp, err)
	}
	return nil
}
