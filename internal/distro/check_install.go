package distro

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/manifest"
)

// installChecks lists what only the installed packages can tell about the
// blueprint, for the stage that runs right after them: the units it
// enables, disables or masks (and those its firewall and NTP servers
// enable), the supplementary groups of its users that it does not create
// itself, and its users' login shells. Each carries the field that names
// it. Nil when there is nothing to check.
func (p *Plan) installChecks(c *blueprint.Customizations) *manifest.CheckInstall {
	ci := &manifest.CheckInstall{}
	shipped := func(unit string) bool {
		return slices.ContainsFunc(c.Files, func(f blueprint.FileCustomization) bool {
			return isUnitPath(f.Path) && path.Base(f.Path) == unitFile(unit)
		})
	}
	addUnit := func(unit, field string) {
		if !shipped(unit) {
			ci.Units = append(ci.Units, manifest.CheckUnit{Unit: unit, Field: field})
		}
	}
	if s := c.Services; s != nil {
		for field, units := range map[string][]string{"enabled": s.Enabled, "disabled": s.Disabled, "masked": s.Masked} {
			for i, u := range units {
				addUnit(u, fmt.Sprintf("customizations.services.%s[%d]", field, i))
			}
		}
	}
	if c.Firewall != nil {
		addUnit("nftables", "customizations.firewall")
	}
	if tz := c.Timezone; tz != nil && len(tz.NTPServers) > 0 {
		addUnit("systemd-timesyncd", "customizations.timezone.ntpservers")
	}
	slices.SortFunc(ci.Units, func(a, b manifest.CheckUnit) int { return strings.Compare(a.Field, b.Field) })

	created := func(group string) bool {
		return slices.ContainsFunc(c.Group, func(g blueprint.GroupCustomization) bool { return g.Name == group }) ||
			slices.ContainsFunc(c.User, func(u blueprint.UserCustomization) bool { return u.Name == group })
	}
	for i, u := range c.User {
		for j, g := range u.Groups {
			if !created(g) {
				ci.Groups = append(ci.Groups, manifest.CheckGroup{Group: g, Field: fmt.Sprintf("customizations.user[%d].groups[%d]", i, j)})
			}
		}
		if u.Shell != nil && *u.Shell != "" {
			ci.Shells = append(ci.Shells, manifest.CheckShell{Shell: *u.Shell, Field: fmt.Sprintf("customizations.user[%d].shell", i)})
		}
	}
	if len(ci.Units)+len(ci.Groups)+len(ci.Shells) == 0 {
		return nil
	}
	return ci
}

// unitFile is the file name of a unit: a name without a type suffix is a
// service, as systemctl reads it.
func unitFile(unit string) string {
	if i := strings.LastIndex(unit, "."); i > 0 && !strings.Contains(unit[i:], "@") {
		switch unit[i+1:] {
		case "service", "socket", "target", "timer", "mount", "automount", "swap", "path", "slice", "scope", "device":
			return unit
		}
	}
	return unit + ".service"
}
