package stages

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/kiln-project/kiln/internal/manifest"
)

// NTP writes /etc/systemd/timesyncd.conf.d/kiln.conf, which makes
// systemd-timesyncd use the servers (host names or addresses) instead of
// its defaults. Enabling the service is the Systemd stage's job.
type NTP struct{ Opts manifest.NTP }

var ntpServerRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9.:_%-]*$`)

// Validate implements Stage.
func (s *NTP) Validate() error {
	if len(s.Opts.Servers) == 0 {
		return errors.New("ntp: no servers given")
	}
	for i, srv := range s.Opts.Servers {
		if len(srv) > 253 || !ntpServerRE.MatchString(srv) {
			return fmt.Errorf("ntp servers[%d]: %q is not a host name or IP address", i, srv)
		}
	}
	return nil
}

// Run implements Stage.
func (s *NTP) Run(_ context.Context, env *Env) error {
	if err := s.Validate(); err != nil {
		return err
	}
	conf := "# Written by kiln from the image's NTP servers.\n[Time]\nNTP=" + strings.Join(s.Opts.Servers, " ") + "\n"
	if err := WriteFile(env.Tree, "/etc/systemd/timesyncd.conf.d/kiln.conf", []byte(conf), 0o644); err != nil {
		return err
	}
	env.Logf("NTP servers %s", strings.Join(s.Opts.Servers, " "))
	return nil
}
