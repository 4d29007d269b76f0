package stages

import (
	"fmt"

	"github.com/kiln-project/kiln/internal/manifest"
)

// New returns the Stage that runs a manifest stage. Every stage type of the
// manifest has exactly one implementation, one file each.
func New(s manifest.Stage) (Stage, error) {
	switch o := s.Options.(type) {
	default:
		return nil, fmt.Errorf("stage type %s has no implementation", s.Type)
	case nil:
		return nil, fmt.Errorf("stage %s has no options", s.Type)
	case *manifest.DebsInstall:
		return &DebsInstall{Opts: *o}, nil
	case *manifest.Hostname:
		return &Hostname{Opts: *o}, nil
	}
}
