package stages

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kiln-project/kiln/internal/manifest"
)

// Files writes each file's data with its mode and owner. Missing parent
// directories are created 0755 and owned by root. No symbolic link is
// followed (see nofollow.go): a directory on the way that is a link is an
// error naming its target, a link at the file's own path is replaced.
// Writing over a directory is an error.
type Files struct{ Opts manifest.Files }

// Validate implements Stage. Owners are resolved in the tree, when the
// stage runs.
func (s *Files) Validate() error {
	for i, f := range s.Opts.Files {
		if err := checkTreePath(f.Path); err != nil {
			return fmt.Errorf("files[%d]: %w", i, err)
		}
		if _, err := parseMode(f.Mode, 0o644); err != nil {
			return fmt.Errorf("files[%d]: %s: %w", i, f.Path, err)
		}
	}
	return nil
}

// Run implements Stage.
func (s *Files) Run(_ context.Context, env *Env) error {
	for i, f := range s.Opts.Files {
		if err := writeOneFile(env, f); err != nil {
			return fmt.Errorf("files[%d]: %w", i, err)
		}
	}
	return nil
}

func writeOneFile(env *Env, f manifest.File) error {
	if err := checkTreePath(f.Path); err != nil {
		return err
	}
	mode, err := parseMode(f.Mode, 0o644)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	uid, gid, err := resolveOwner(env.Tree, f.User, f.Group)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	link, err := writeFileNoFollow(env.Tree, f.Path, []byte(f.Data), uid, gid, mode)
	if err != nil {
		return err
	}
	if link != "" {
		env.Logf("replaced the link %s -> %s", f.Path, link)
	}
	env.Logf("wrote %s (%d bytes, mode %04o, owner %d:%d)", f.Path, len(f.Data), mode, uid, gid)
	return nil
}

// checkTreePath returns an error for a path that is not absolute and
// canonical, or that is the root itself.
func checkTreePath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path; give an absolute path")
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("path %q is not absolute; start it with /", p)
	case len(p) > 4096:
		return fmt.Errorf("path is %d bytes long; the limit is 4096", len(p))
	case strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("path %q contains control characters", p)
	case path.Clean(p) != p:
		return fmt.Errorf("path %q is not canonical (no '..', '.', '//' or trailing '/'); write %q", p, path.Clean(p))
	case p == "/":
		return errors.New(`path "/" is the root of the image; give a path below it`)
	}
	return nil
}

// parseMode reads an octal permission mode ("0644", "755", "0o2775"); an
// empty mode is def.
func parseMode(s string, def uint32) (uint32, error) {
	if s == "" {
		return def, nil
	}
	const fix = `give the permissions as an octal string such as "0644" or "0755"`
	digits := strings.TrimPrefix(s, "0o")
	if digits == "" || len(digits) > 5 {
		return 0, fmt.Errorf("mode %q is not a mode; %s", s, fix)
	}
	n, err := strconv.ParseUint(digits, 8, 32)
	if err != nil {
		return 0, fmt.Errorf("mode %q is not an octal mode; %s", s, fix)
	}
	if n > 0o7777 {
		return 0, fmt.Errorf("mode %q has bits above 07777 (file type bits are not allowed); %s", s, fix)
	}
	return uint32(n), nil
}

// fileMode converts Unix permission bits (with setuid, setgid and sticky)
// to an fs.FileMode.
func fileMode(perm uint32) fs.FileMode {
	m := fs.FileMode(perm & 0o777)
	if perm&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if perm&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if perm&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// setOwnerMode sets the owner and then the mode of host (chown clears the
// setuid and setgid bits, so the mode comes second). host itself must not
// be a symbolic link.
func setOwnerMode(host string, uid, gid int, perm uint32) error {
	if err := os.Lchown(host, uid, gid); err != nil {
		return err
	}
	return os.Chmod(host, fileMode(perm))
}

// resolveEntry returns the host path of the absolute path p in the tree
// with every directory resolved as ResolveInTree does but the last element
// left as it is, so a symbolic link there can be replaced or removed rather
// than followed.
func resolveEntry(tree, p string) (string, error) {
	dir, err := ResolveInTree(tree, path.Dir(p))
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, path.Base(p)), nil
}
