package stages

import (
	"context"
	"fmt"

	"github.com/kiln-project/kiln/internal/manifest"
)

// Directories creates each directory with its mode and owner; an existing
// directory gets the mode and owner, an existing file or other non-directory
// is an error. Without EnsureParents the parent must exist; with it,
// missing parents are created 0755 and owned by root. No symbolic link is
// followed (see nofollow.go): a link anywhere in the path, the directory
// itself included, is an error naming its target.
type Directories struct{ Opts manifest.Directories }

// Validate implements Stage. Owners are resolved in the tree, when the
// stage runs.
func (s *Directories) Validate() error {
	for i, d := range s.Opts.Directories {
		if err := checkTreePath(d.Path); err != nil {
			return fmt.Errorf("directories[%d]: %w", i, err)
		}
		if _, err := parseMode(d.Mode, 0o755); err != nil {
			return fmt.Errorf("directories[%d]: %s: %w", i, d.Path, err)
		}
	}
	return nil
}

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
	if err := makeDirNoFollow(env.Tree, d.Path, d.EnsureParents, uid, gid, mode); err != nil {
		return err
	}
	env.Logf("directory %s (mode %04o, owner %d:%d)", d.Path, mode, uid, gid)
	return nil
}
