package stages

import (
	"context"
	"fmt"
	"regexp"

	"github.com/kiln-project/kiln/internal/manifest"
)

// Systemd enables, then disables, then masks units with systemctl inside
// the tree (systemctl works on an offline tree: it only makes links), and
// sets the default target. A unit name without a suffix is a service, as
// systemctl reads it.
type Systemd struct{ Opts manifest.Systemd }

// unitNameRE is the character set of systemd unit names; a leading '-'
// would be read as an option.
var unitNameRE = regexp.MustCompile(`^[A-Za-z0-9:_.\\@][A-Za-z0-9:_.\\@-]*$`)

// checkUnitName returns an error for a name that is not a systemd unit
// name.
func checkUnitName(name string) error {
	if len(name) > 255 || !unitNameRE.MatchString(name) {
		return fmt.Errorf("%q is not a systemd unit name (letters, digits and : _ . \\ @ -, not starting with '-', at most 255 characters)", name)
	}
	return nil
}

// systemdStep is one systemctl verb and the units it applies to.
type systemdStep struct {
	verb  string
	units []string
}

func (s *Systemd) steps() []systemdStep {
	o := s.Opts
	return []systemdStep{{"enable", o.Enabled}, {"disable", o.Disabled}, {"mask", o.Masked}}
}

// Validate implements Stage.
func (s *Systemd) Validate() error {
	o := s.Opts
	for _, st := range s.steps() {
		for _, u := range st.units {
			if err := checkUnitName(u); err != nil {
				return fmt.Errorf("units to %s: %w", st.verb, err)
			}
		}
	}
	if o.DefaultTarget != "" {
		if err := checkUnitName(o.DefaultTarget); err != nil {
			return fmt.Errorf("default target: %w", err)
		}
	}
	return nil
}

// Run implements Stage.
func (s *Systemd) Run(ctx context.Context, env *Env) error {
	if err := s.Validate(); err != nil {
		return err
	}
	o := s.Opts
	for _, st := range s.steps() {
		if len(st.units) == 0 {
			continue
		}
		env.Logf("systemctl %s %v", st.verb, st.units)
		argv := append([]string{"/usr/bin/systemctl", st.verb, "--"}, st.units...)
		if err := env.Chroot(ctx, nil, argv...); err != nil {
			return fmt.Errorf("systemctl %s %v (is each unit installed in the image?): %w", st.verb, st.units, err)
		}
	}
	if o.DefaultTarget != "" {
		env.Logf("default target %s", o.DefaultTarget)
		if err := env.Chroot(ctx, nil, "/usr/bin/systemctl", "set-default", "--", o.DefaultTarget); err != nil {
			return fmt.Errorf("setting the default target %s: %w", o.DefaultTarget, err)
		}
	}
	return nil
}
