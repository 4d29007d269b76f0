package stages

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/kiln-project/kiln/internal/manifest"
)

// Timezone links /etc/localtime to /usr/share/zoneinfo/<zone>, which must
// exist in the tree (tzdata), and writes the zone to /etc/timezone.
type Timezone struct{ Opts manifest.Timezone }

var zoneRE = regexp.MustCompile(`^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$`)

// Validate implements Stage. Whether the zone exists is the image's
// tzdata's to say, when the stage runs.
func (s *Timezone) Validate() error {
	if zone := s.Opts.Zone; !zoneRE.MatchString(zone) || len(zone) > 128 {
		return fmt.Errorf("timezone %q is not a zone name such as \"Europe/Berlin\" or \"Etc/UTC\"", zone)
	}
	return nil
}

// Run implements Stage.
func (s *Timezone) Run(_ context.Context, env *Env) error {
	if err := s.Validate(); err != nil {
		return err
	}
	zone := s.Opts.Zone
	target := "/usr/share/zoneinfo/" + zone
	host, err := ResolveInTree(env.Tree, target)
	if err != nil {
		return fmt.Errorf("timezone %s: %w", zone, err)
	}
	if fi, err := os.Stat(host); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("timezone %q is not in the image's %s; check the name (see timedatectl list-timezones) and that tzdata is installed", zone, target)
	}
	link, err := resolveEntry(env.Tree, "/etc/localtime")
	if err != nil {
		return fmt.Errorf("/etc/localtime: %w", err)
	}
	if fi, err := os.Lstat(link); err == nil && fi.IsDir() {
		return errors.New("/etc/localtime is a directory in the image")
	} else if err == nil {
		if err := os.Remove(link); err != nil {
			return fmt.Errorf("/etc/localtime: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("/etc/localtime: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return fmt.Errorf("/etc/localtime: %w", err)
	}
	if err := os.Symlink(target, link); err != nil {
		return fmt.Errorf("linking /etc/localtime: %w", err)
	}
	if err := WriteFile(env.Tree, "/etc/timezone", []byte(zone+"\n"), 0o644); err != nil {
		return err
	}
	env.Logf("timezone %s", zone)
	return nil
}
