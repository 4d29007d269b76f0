package stages

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/manifest"
)

// Hostname writes /etc/hostname and points 127.0.1.1 at the name in
// /etc/hosts, replacing whatever the build host left there.
type Hostname struct{ Opts manifest.Hostname }

// Validate implements Stage: the name is an RFC 1123 host name, by the
// same rule the blueprint is checked with.
func (s *Hostname) Validate() error {
	if err := blueprint.CheckHostname(s.Opts.Hostname); err != nil {
		return fmt.Errorf("hostname: %w", err)
	}
	return nil
}

// Run implements Stage.
func (s *Hostname) Run(_ context.Context, env *Env) error {
	if err := s.Validate(); err != nil {
		return err
	}
	name := s.Opts.Hostname
	if err := WriteFile(env.Tree, "/etc/hostname", []byte(name+"\n"), 0o644); err != nil {
		return err
	}
	short, _, _ := strings.Cut(name, ".")
	entry := "127.0.1.1\t" + name
	if short != name {
		entry += " " + short
	}
	hosts := "127.0.0.1\tlocalhost\n" + entry + "\n\n" +
		"# The following lines are desirable for IPv6 capable hosts\n" +
		"::1     localhost ip6-localhost ip6-loopback\nff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n"
	if old, err := os.ReadFile(filepath.Join(env.Tree, "etc/hosts")); err == nil {
		// Keep lines the packages added, drop any 127.0.1.1 line.
		var keep []string
		for _, line := range strings.Split(string(old), "\n") {
			f := strings.Fields(line)
			if len(f) > 0 && (f[0] == "127.0.1.1" || f[0] == "127.0.0.1" || f[0] == "::1" || f[0] == "ff02::1" || f[0] == "ff02::2" || strings.HasPrefix(line, "# The following lines")) {
				continue
			}
			if strings.TrimSpace(line) != "" {
				keep = append(keep, line)
			}
		}
		if len(keep) > 0 {
			hosts += strings.Join(keep, "\n") + "\n"
		}
	}
	return WriteFile(env.Tree, "/etc/hosts", []byte(hosts), 0o644)
}
