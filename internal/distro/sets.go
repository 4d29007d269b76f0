package distro

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/kiln-project/kiln/internal/manifest"
)

// knownSets are the values a target system knows: time zones (tzdata),
// locales (glibc's supported list), keyboard layouts (XKB layouts and
// layout-variant pairs), console keymaps and service names. They are
// generated from Debian's packages by scripts/gen-sets.
type knownSets struct {
	timezones map[string]bool
	// legacyTimezones are the names that Debian releases which split
	// tzdata (see legacyTimezonePackage) ship in tzdata-legacy.
	legacyTimezones map[string]bool
	locales         map[string]bool
	keyboards       map[string]bool
	// keymaps maps a console keymap to its XKB configuration.
	keymaps map[string]xkbConfig
	// services maps a name of /etc/services to its ports.
	services map[string][]manifest.FirewallPort
}

func loadSets(fsys fs.FS) (*knownSets, error) {
	read := func(name string) (map[string]bool, error) {
		b, err := fs.ReadFile(fsys, "data/sets/"+name)
		if err != nil {
			return nil, err
		}
		m := map[string]bool{}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if line := sc.Text(); line != "" {
				m[line] = true
			}
		}
		return m, sc.Err()
	}
	var s knownSets
	var err error
	if s.timezones, err = read("timezones.txt"); err != nil {
		return nil, err
	}
	if s.locales, err = read("locales.txt"); err != nil {
		return nil, err
	}
	if s.keyboards, err = read("keyboards.txt"); err != nil {
		return nil, err
	}
	if s.legacyTimezones, err = read("timezones-legacy.txt"); err != nil {
		return nil, err
	}
	if s.keymaps, err = readKeymaps(fsys); err != nil {
		return nil, err
	}
	if s.services, err = readServices(fsys); err != nil {
		return nil, err
	}
	return &s, nil
}

// xkbConfig is how X and console-setup name a keyboard.
type xkbConfig struct {
	Layout, Model, Variant, Options string
}

// readKeymaps reads systemd's kbd-model-map: a console keymap, then its
// XKB layout, model, variant and options ("-" for none). A keymap listed
// twice maps as its first line says, as in systemd-localed.
func readKeymaps(fsys fs.FS) (map[string]xkbConfig, error) {
	b, err := fs.ReadFile(fsys, "data/sets/kbd-model-map.txt")
	if err != nil {
		return nil, err
	}
	none := func(s string) string {
		if s == "-" {
			return ""
		}
		return s
	}
	m := map[string]xkbConfig{}
	for i, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) != 5 {
			return nil, fmt.Errorf("kbd-model-map.txt:%d: %d fields, want 5", i+1, len(f))
		}
		if _, dup := m[f[0]]; !dup {
			m[f[0]] = xkbConfig{Layout: f[1], Model: f[2], Variant: none(f[3]), Options: none(f[4])}
		}
	}
	return m, nil
}

// readServices reads services.txt: a service name of /etc/services (or an
// alias), its port and its protocol, one per line.
func readServices(fsys fs.FS) (map[string][]manifest.FirewallPort, error) {
	b, err := fs.ReadFile(fsys, "data/sets/services.txt")
	if err != nil {
		return nil, err
	}
	m := map[string][]manifest.FirewallPort{}
	for i, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		port, err := strconv.Atoi(f[1])
		if len(f) != 3 || err != nil || port < 1 || port > 65535 || (f[2] != "tcp" && f[2] != "udp" && f[2] != "sctp" && f[2] != "ddp") {
			return nil, fmt.Errorf("services.txt:%d: %q is not NAME PORT PROTOCOL", i+1, line)
		}
		if !manifest.IsFirewallProtocol(f[2]) {
			continue // ddp (AppleTalk) is not IP: no firewall rule opens it
		}
		m[f[0]] = append(m[f[0]], manifest.FirewallPort{From: port, To: port, Protocol: f[2]})
	}
	return m, nil
}
