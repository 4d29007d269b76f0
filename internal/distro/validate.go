package distro

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/manifest"
)

// Every blueprint option an image type may declare in supported_options.
var allOptions = []string{
	"packages", "modules", "groups",
	"customizations.hostname", "customizations.kernel", "customizations.user", "customizations.group",
	"customizations.sshkey", "customizations.timezone", "customizations.locale", "customizations.firewall",
	"customizations.services", "customizations.filesystem", "customizations.disk", "customizations.directories",
	"customizations.files", "customizations.repositories", "customizations.cacerts",
}

// customizations returns the blueprint's customizations, never nil.
func customizations(bp *blueprint.Blueprint) *blueprint.Customizations {
	if bp == nil || bp.Customizations == nil {
		return &blueprint.Customizations{}
	}
	return bp.Customizations
}

// usedOptions lists the blueprint options a blueprint sets.
func usedOptions(bp *blueprint.Blueprint) []string {
	c := customizations(bp)
	set := map[string]bool{
		"packages": len(bp.Packages) > 0, "modules": len(bp.Modules) > 0, "groups": len(bp.Groups) > 0,
		"customizations.hostname": c.Hostname != nil, "customizations.kernel": c.Kernel != nil,
		"customizations.user": len(c.User) > 0, "customizations.group": len(c.Group) > 0,
		"customizations.sshkey": len(c.SSHKey) > 0, "customizations.timezone": c.Timezone != nil,
		"customizations.locale": c.Locale != nil, "customizations.firewall": c.Firewall != nil,
		"customizations.services": c.Services != nil, "customizations.filesystem": len(c.Filesystem) > 0,
		"customizations.disk": c.Disk != nil, "customizations.directories": len(c.Directories) > 0,
		"customizations.files": len(c.Files) > 0, "customizations.repositories": len(c.Repositories) > 0,
		"customizations.cacerts": c.CACerts != nil,
	}
	var out []string
	for _, o := range allOptions {
		if set[o] {
			out = append(out, o)
		}
	}
	return out
}

// CheckBlueprint checks a (syntactically valid) blueprint against this
// image type: the options it uses must be supported, and time zones,
// locales, keyboards and firewall services must be known to the target.
// It returns every problem at once as blueprint.Errors.
func (it *ImageType) CheckBlueprint(bp *blueprint.Blueprint) error {
	var errs blueprint.Errors
	add := func(path, format string, args ...any) {
		errs = append(errs, blueprint.Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	d := it.arch.distro
	if bp.Distro != "" && bp.Distro != d.Name {
		add("distro", "the blueprint is for %q but the build is for %q: remove the field or build for %s", bp.Distro, d.Name, bp.Distro)
	}
	if bp.Architecture != "" && bp.Architecture != it.arch.Name && bp.Architecture != it.arch.DebianArch {
		add("architecture", "the blueprint is for %q but the build is for %q: remove the field or build for %s", bp.Architecture, it.arch.Name, bp.Architecture)
	}
	for _, o := range usedOptions(bp) {
		if !slices.Contains(it.SupportedOptions, o) {
			add(o, "not supported by image type %s (it supports: %s)", it.Name, strings.Join(it.SupportedOptions, ", "))
		}
	}
	c := customizations(bp)
	if tz := c.Timezone; tz != nil && tz.Timezone != nil && !d.sets.timezones[*tz.Timezone] {
		add("customizations.timezone.timezone", "unknown time zone %q%s (use an IANA name such as \"Europe/Berlin\" or \"UTC\")", *tz.Timezone, didYouMean(*tz.Timezone, keys(d.sets.timezones)))
	}
	if l := c.Locale; l != nil {
		for i, lang := range l.Languages {
			if !d.sets.locales[lang] {
				add(fmt.Sprintf("customizations.locale.languages[%d]", i), "unknown locale %q for %s%s (use a name such as \"en_US.UTF-8\")", lang, d.Name, didYouMean(lang, keys(d.sets.locales)))
			}
		}
		if l.Keyboard != nil && !d.sets.keyboards[*l.Keyboard] {
			add("customizations.locale.keyboard", "unknown keyboard layout %q%s (use an XKB layout such as \"us\" or a layout-variant pair such as \"de-nodeadkeys\")", *l.Keyboard, didYouMean(*l.Keyboard, keys(d.sets.keyboards)))
		}
	}
	if fw := c.Firewall; fw != nil {
		for i, p := range fw.Ports {
			if _, err := parsePort(p); err != nil {
				add(fmt.Sprintf("customizations.firewall.ports[%d]", i), "%v", err)
			}
		}
		if s := fw.Services; s != nil {
			for field, names := range map[string][]string{"enabled": s.Enabled, "disabled": s.Disabled} {
				for i, n := range names {
					if _, ok := manifest.FirewallServices[n]; !ok {
						add(fmt.Sprintf("customizations.firewall.services.%s[%d]", field, i), "unknown firewall service %q%s (known: %s)", n, didYouMean(n, keys(manifest.FirewallServices)), strings.Join(sortedKeys(manifest.FirewallServices), ", "))
					}
				}
			}
		}
	}
	if dk := c.Disk; dk != nil {
		for i, p := range dk.Partitions {
			path := fmt.Sprintf("customizations.disk.partitions[%d]", i)
			if p.Type == "lvm" {
				add(path+".type", "LVM partitions cannot be built yet (kiln assembles disks without device-mapper): use plain partitions")
			}
			if p.FSType == "xfs" {
				add(path+".fs_type", "xfs filesystems cannot be built yet: use ext4")
			}
		}
	}
	for i, r := range c.Repositories {
		for j, k := range r.GPGKeys {
			if strings.HasPrefix(k, "http://") || strings.HasPrefix(k, "https://") {
				add(fmt.Sprintf("customizations.repositories[%d].gpgkeys[%d]", i, j), "key URLs cannot be used in apt sources: paste the ASCII-armored key block instead")
			}
		}
	}
	slices.SortStableFunc(errs, func(a, b blueprint.Problem) int { return strings.Compare(a.Path, b.Path) })
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := keys(m)
	slices.Sort(out)
	return out
}
