package distro

import (
	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/manifest"
)

// sshdOptions are the options of the SSHD stage for customizations.sshd,
// or nil when the blueprint has none.
func sshdOptions(s *blueprint.SSHDCustomization) *manifest.SSHD {
	if s == nil {
		return nil
	}
	return &manifest.SSHD{
		PasswordAuthentication:          s.PasswordAuthentication,
		ChallengeResponseAuthentication: s.ChallengeResponseAuthentication,
		ClientAliveInterval:             s.ClientAliveInterval,
		PermitRootLogin:                 string(s.PermitRootLogin),
	}
}

// firstbootOptions are the options of the Firstboot stage for
// customizations.firstboot, or nil when the blueprint has none. A script
// without a name goes by "script-N".
func firstbootOptions(fb *blueprint.FirstbootCustomization) *manifest.Firstboot {
	if fb == nil || len(fb.Scripts) == 0 {
		return nil
	}
	o := &manifest.Firstboot{}
	for i, s := range fb.Scripts {
		o.Scripts = append(o.Scripts, manifest.FirstbootScript{
			Name:          blueprint.FirstbootScriptName(s, i),
			Contents:      s.Contents,
			IgnoreFailure: s.IgnoreFailure,
			After:         canonicalUnits(s.After),
			Before:        canonicalUnits(s.Before),
		})
	}
	return o
}

// canonicalUnits gives each unit name its type, as systemctl does for a
// bare name (".service").
func canonicalUnits(names []string) []string {
	var out []string
	for _, n := range names {
		out = append(out, blueprint.CanonicalUnit(n))
	}
	return out
}
