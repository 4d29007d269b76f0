package distro

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/manifest"
)

// What the target system knows, beyond the blueprint's own syntax: the
// time zones, keyboards, firewall services and groups a blueprint names
// are checked here against the distribution, and resolved to what the
// manifest's stages take.

// legacyTimezonePackage is, for each distribution whose tzdata no longer
// has the backward-compatible zone names (US/Eastern, GB, Asia/Calcutta),
// the package that does. Debian 13 split them into tzdata-legacy.
var legacyTimezonePackage = map[string]string{
	"debian-13": "tzdata-legacy",
}

// timezonePackage returns the package an image of d needs for zone beyond
// tzdata, or "".
func (d *Distro) timezonePackage(zone string) string {
	if pkg := legacyTimezonePackage[d.Name]; pkg != "" && d.sets.legacyTimezones[zone] {
		return pkg
	}
	return ""
}

// missingGroups are group names that RPM distributions have and Debian
// does not, with what to use instead.
var missingGroups = map[string]string{
	"wheel":  `use "sudo" (members may run sudo)`,
	"nobody": `use "nogroup"`,
}

// keyboard resolves a blueprint's keyboard: an XKB layout or
// layout-variant pair ("de", "de-nodeadkeys") as it is, or else a console
// keymap ("de-latin1", "dvorak", "uk") through systemd's kbd-model-map,
// keeping the keymap's name for the console.
func (s *knownSets) keyboard(name string) (manifest.Keyboard, bool) {
	if s.keyboards[name] {
		layout, variant, _ := strings.Cut(name, "-")
		return manifest.Keyboard{Layout: layout, Variant: variant}, true
	}
	if x, ok := s.keymaps[name]; ok {
		return manifest.Keyboard{Layout: x.Layout, Variant: x.Variant, Model: x.Model, Options: x.Options, Keymap: name}, true
	}
	return manifest.Keyboard{}, false
}

// firewallService returns the ports of a service name: firewalld's names
// that kiln knows (manifest.FirewallServices: "dns", "dhcpv6-client",
// "cockpit"), else the names and aliases of the image's /etc/services
// ("ftp", "telnet", "domain").
func (s *knownSets) firewallService(name string) ([]manifest.FirewallPort, bool) {
	if ports, ok := manifest.FirewallServices[name]; ok {
		return ports, true
	}
	ports, ok := s.services[name]
	return ports, ok
}

// unknownServiceHint suggests a near firewall service name, firewalld's
// first (so "htp" is "http", not "ftp").
func (s *knownSets) unknownServiceHint(name string) string {
	if hint := didYouMean(name, keys(manifest.FirewallServices)); hint != "" {
		return hint
	}
	return didYouMean(name, keys(s.services))
}

// firewall resolves a blueprint's firewall to the stage's options: every
// port and every enabled service becomes ports, so the manifest shows what
// is opened. ssh, which the stage opens unless told otherwise, is listed
// too, or named in DisabledServices when the blueprint disables it.
func (s *knownSets) firewall(fw *blueprint.FirewallCustomization) (*manifest.Firewall, error) {
	f := &manifest.Firewall{Ports: []manifest.FirewallPort{}}
	for _, p := range fw.Ports {
		ports, err := s.parsePort(p)
		if err != nil {
			return nil, err
		}
		f.Ports = append(f.Ports, ports...)
	}
	var enabled, disabled []string
	if sv := fw.Services; sv != nil {
		enabled, disabled = sv.Enabled, sv.Disabled
	}
	if !slices.Contains(disabled, "ssh") && !slices.Contains(enabled, "ssh") {
		enabled = append([]string{"ssh"}, enabled...)
	}
	for _, name := range enabled {
		if slices.Contains(disabled, name) {
			continue
		}
		ports, ok := s.firewallService(name)
		if !ok {
			return nil, fmt.Errorf("unknown firewall service %q", name)
		}
		// A service opens its tcp and udp ports, as firewalld's
		// definitions do; its sctp ones only when a port names them
		// ("amqp:sctp").
		for _, p := range ports {
			if p.Protocol == "tcp" || p.Protocol == "udp" {
				f.Ports = append(f.Ports, p)
			}
		}
	}
	f.Ports = uniqPorts(f.Ports)
	if slices.Contains(disabled, "ssh") {
		f.DisabledServices = []string{"ssh"}
	}
	// A disabled service is closed: its ports are dropped explicitly, so
	// the ruleset says so and nothing opens them by accident (the plan
	// refuses a blueprint that opens them itself).
	for _, name := range disabled {
		ports, ok := s.firewallService(name)
		if !ok {
			return nil, fmt.Errorf("unknown firewall service %q", name)
		}
		f.Closed = append(f.Closed, ports...)
	}
	if len(f.Closed) > 0 {
		f.Closed = uniqPorts(f.Closed)
	}
	return f, nil
}

// targetProblems checks what a blueprint names against what the target
// system knows: its time zone, keyboard, firewall ports and services, and
// the groups its users join.
func (it *ImageType) targetProblems(c *blueprint.Customizations) blueprint.Errors {
	d := it.arch.distro
	var errs blueprint.Errors
	add := func(path, format string, args ...any) {
		errs = append(errs, blueprint.Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if tz := c.Timezone; tz != nil && tz.Timezone != nil && !d.sets.timezones[*tz.Timezone] {
		add("customizations.timezone.timezone", "unknown time zone %q%s (use an IANA name such as \"Europe/Berlin\" or \"UTC\")", *tz.Timezone, didYouMean(*tz.Timezone, keys(d.sets.timezones)))
	}
	if l := c.Locale; l != nil && l.Keyboard != nil {
		if _, ok := d.sets.keyboard(*l.Keyboard); !ok {
			add("customizations.locale.keyboard", "unknown keyboard layout %q%s (use a console keymap such as \"de-latin1\" or \"dvorak\", an XKB layout such as \"us\" or a layout-variant pair such as \"de-nodeadkeys\")",
				*l.Keyboard, didYouMean(*l.Keyboard, append(keys(d.sets.keyboards), keys(d.sets.keymaps)...)))
		}
	}
	if fw := c.Firewall; fw != nil {
		for i, p := range fw.Ports {
			if _, err := d.sets.parsePort(p); err != nil {
				add(fmt.Sprintf("customizations.firewall.ports[%d]", i), "%v", err)
			}
		}
		if s := fw.Services; s != nil {
			for _, list := range []struct {
				field string
				names []string
			}{{"enabled", s.Enabled}, {"disabled", s.Disabled}} {
				for i, n := range list.names {
					if _, ok := d.sets.firewallService(n); !ok {
						add(fmt.Sprintf("customizations.firewall.services.%s[%d]", list.field, i), "unknown firewall service %q%s (use a name of %s's /etc/services such as \"ftp\", or one of: %s)",
							n, d.sets.unknownServiceHint(n), d.Name, strings.Join(sortedKeys(manifest.FirewallServices), ", "))
					}
				}
			}
		}
	}
	if fw := c.Firewall; fw != nil && fw.Services != nil {
		errs = append(errs, d.sets.disabledButOpened(fw)...)
	}
	created := map[string]bool{}
	for _, g := range c.Group {
		created[g.Name] = true
	}
	for i, u := range c.User {
		for j, g := range u.Groups {
			if hint, ok := missingGroups[g]; ok && !created[g] {
				add(fmt.Sprintf("customizations.user[%d].groups[%d]", i, j), "%q does not exist on Debian; %s, or create it in customizations.group", g, hint)
			}
		}
	}
	return errs
}

// uniqPorts returns ports with each listed once, in order of first mention.
func uniqPorts(ports []manifest.FirewallPort) []manifest.FirewallPort {
	out := []manifest.FirewallPort{}
	for _, p := range ports {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// disabledButOpened refuses a disabled firewall service whose ports the
// same blueprint opens, through ports or another enabled service: the
// firewall cannot both close and open them.
func (s *knownSets) disabledButOpened(fw *blueprint.FirewallCustomization) blueprint.Errors {
	var errs blueprint.Errors
	type opener struct {
		field string
		ports []manifest.FirewallPort
	}
	var openers []opener
	for i, p := range fw.Ports {
		if ports, err := s.parsePort(p); err == nil {
			openers = append(openers, opener{fmt.Sprintf("customizations.firewall.ports[%d]", i), ports})
		}
	}
	for i, n := range fw.Services.Enabled {
		if ports, ok := s.firewallService(n); ok && !slices.Contains(fw.Services.Disabled, n) {
			openers = append(openers, opener{fmt.Sprintf("customizations.firewall.services.enabled[%d]", i), ports})
		}
	}
	for i, n := range fw.Services.Disabled {
		closed, ok := s.firewallService(n)
		if !ok {
			continue // reported as unknown
		}
		for _, o := range openers {
			if p, q, hit := overlap(closed, o.ports); hit {
				errs = append(errs, blueprint.Problem{
					Path:    fmt.Sprintf("customizations.firewall.services.disabled[%d]", i),
					Message: fmt.Sprintf("disables %q (%s), which %s opens (%s); remove one of them", n, portString(p), o.field, portString(q)),
				})
				break
			}
		}
	}
	return errs
}

// overlap finds a port range of a that shares a port and protocol with one of b.
func overlap(a, b []manifest.FirewallPort) (manifest.FirewallPort, manifest.FirewallPort, bool) {
	for _, p := range a {
		for _, q := range b {
			if p.Protocol == q.Protocol && p.From <= q.To && q.From <= p.To {
				return p, q, true
			}
		}
	}
	return manifest.FirewallPort{}, manifest.FirewallPort{}, false
}

func portString(p manifest.FirewallPort) string {
	if p.From == p.To {
		return fmt.Sprintf("%d/%s", p.From, p.Protocol)
	}
	return fmt.Sprintf("%d-%d/%s", p.From, p.To, p.Protocol)
}
