package stages

import (
	"context"
	"fmt"
	"strconv"

	"github.com/kiln-project/kiln/internal/manifest"
)

// Groups creates each group with groupadd inside the tree. A group that
// already exists is left alone when it has the requested gid (or none was
// requested); one with another gid is an error, as is a gid another group
// holds.
type Groups struct{ Opts manifest.Groups }

// Validate implements Stage.
func (s *Groups) Validate() error {
	seen := map[string]bool{}
	for i, g := range s.Opts.Groups {
		if err := checkAccountName(g.Name, "group"); err != nil {
			return fmt.Errorf("groups[%d]: %w", i, err)
		}
		if seen[g.Name] {
			return fmt.Errorf("groups[%d]: group %q is listed twice", i, g.Name)
		}
		seen[g.Name] = true
		if g.GID != nil {
			if err := checkID(*g.GID, "group"); err != nil {
				return fmt.Errorf("groups[%d] (%s): %w", i, g.Name, err)
			}
		}
	}
	return nil
}

// Run implements Stage.
func (s *Groups) Run(ctx context.Context, env *Env) error {
	if err := s.Validate(); err != nil {
		return err
	}
	for _, g := range s.Opts.Groups {
		if err := createGroup(ctx, env, g.Name, g.GID); err != nil {
			return err
		}
	}
	return nil
}

// createGroup makes sure group name exists in the tree, with gid when it is
// not nil.
func createGroup(ctx context.Context, env *Env, name string, gid *int) error {
	have, exists, err := lookupGroup(env.Tree, name)
	if err != nil {
		return err
	}
	if exists {
		if gid != nil && *gid != have {
			return fmt.Errorf("group %q already exists in the image with gid %d, not %d; choose another name or gid", name, have, *gid)
		}
		env.Logf("group %s exists (gid %d)", name, have)
		return nil
	}
	argv := []string{"/usr/sbin/groupadd"}
	if gid != nil {
		if other, taken, err := groupByGID(env.Tree, *gid); err != nil {
			return err
		} else if taken {
			return fmt.Errorf("cannot create group %q with gid %d: group %q in the image already has that gid", name, *gid, other)
		}
		argv = append(argv, "-g", strconv.Itoa(*gid))
	}
	argv = append(argv, "--", name)
	env.Logf("creating group %s", name)
	if err := env.Chroot(ctx, nil, withEpoch(env, argv)...); err != nil {
		return fmt.Errorf("creating group %q: %w", name, err)
	}
	return nil
}
