package stages

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"

	"github.com/kiln-project/kiln/internal/manifest"
)

// Directories creates each directory with its mode and owner; an existing
// directory gets the mode and owner, an existing file or other non-directory
// is an error. Without EnsureParents the parent must exist; with it,
// missing parents are created 0755 and owned by root. Symbolic links in the
// path are resolved as the image would resolve them, and one that leads out
// of the tree is an error.
type Directories struct{ Opts manifest.Directories }

// Run implements Stage.
func (s *Directories) Run(_ context.Context, env *Env) error {
	for i, d := range s.Opts.Directories {
		if err := makeDirectory(env, d); err != nil {
			return fmt.Errorf("directories[%d]: %w", i, err)
		}
	}
	return nil
}

func makeDirectory(env *Env, d manifest.Directory) error {
	if err := checkTreePath(d.Path); err != nil {
		return err
	}
	mode, err := parseMode(d.Mode, 0o755)
	if err != nil {
		return fmt.Errorf("%s: %w", d.Path, err)
	}
	uid, gid, err := resolveOwner(env.Tree, d.User, d.Group)
	if err != nil {
		return fmt.Errorf("%s: %w", d.Path, err)
	}
	host, err := ResolveInTree(env.Tree, d.Path)
	if err != nil {
		return fmt.Errorf("%s: %w", d.Path, err)
	}
	switch fi, err := os.Lstat(host); {
	case err == nil && !fi.IsDir():
		return fmt.Errorf("%s exists in the image and is not a directory", d.Path)
	case err == nil:
		// Exists: only the mode and owner change.
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: %w", d.Path, err)
	default:
		parent, err := ResolveInTree(env.Tree, path.Dir(d.Path))
		if err != nil {
			return fmt.Errorf("%s: %w", d.Path, err)
		}
		if d.EnsureParents {
			if err := os.MkdirAll(parent, 0o755); err != nil {
				return fmt.Errorf("creating the parents of %s: %w", d.Path, err)
			}
		} else if fi, err := os.Stat(parent); err != nil || !fi.IsDir() {
			return fmt.Errorf("the parent of %s is not a directory in the image; create it first or set ensure_parents", d.Path)
		}
		if err := os.Mkdir(host, 0o700); err != nil {
			return fmt.Errorf("creating %s: %w", d.Path, err)
		}
	}
	if err := setOwnerMode(host, uid, gid, mode); err != nil {
		return fmt.Errorf("%s: %w", d.Path, err)
	}
	env.Logf("directory %s (mode %04o, owner %d:%d)", d.Path, mode, uid, gid)
	return nil
}
