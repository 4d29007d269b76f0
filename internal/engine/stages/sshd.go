package stages

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"

	"github.com/kiln-project/kiln/internal/manifest"
)

// sshdIncludeRe finds the Include of the drop-in directory in
// sshd_config.
var sshdIncludeRe = regexp.MustCompile(`(?mi)^\s*Include\s+/etc/ssh/sshd_config\.d/`)

// SSHD writes the sshd drop-in; see manifest.SSHD.
type SSHD struct{ Opts manifest.SSHD }

// Validate implements Stage.
func (s *SSHD) Validate() error {
	_, err := sshdDropIn(s.Opts)
	return err
}

// Run implements Stage.
func (s *SSHD) Run(_ context.Context, env *Env) error {
	conf, err := sshdDropIn(s.Opts)
	if err != nil {
		return err
	}
	main, err := readInTree(env.Tree, "/etc/ssh/sshd_config")
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errors.New("sshd: /etc/ssh/sshd_config is not in the image; install openssh-server")
	case err != nil:
		return fmt.Errorf("sshd: %w", err)
	case !sshdIncludeRe.Match(main):
		return errors.New("sshd: /etc/ssh/sshd_config does not include /etc/ssh/sshd_config.d/, so a drop-in there would be ignored")
	}
	if err := WriteFile(env.Tree, manifest.SSHDDropIn, []byte(conf), 0o644); err != nil {
		return err
	}
	env.Logf("wrote %s", manifest.SSHDDropIn)
	return nil
}

// sshdDropIn validates o and returns the drop-in's text.
func sshdDropIn(o manifest.SSHD) (string, error) {
	var b strings.Builder
	b.WriteString("# Written by kiln from the blueprint's customizations.sshd.\n")
	yesNo := func(v bool) string {
		if v {
			return "yes"
		}
		return "no"
	}
	n := 0
	if v := o.PasswordAuthentication; v != nil {
		fmt.Fprintf(&b, "PasswordAuthentication %s\n", yesNo(*v))
		n++
	}
	if v := o.ChallengeResponseAuthentication; v != nil {
		fmt.Fprintf(&b, "KbdInteractiveAuthentication %s\n", yesNo(*v))
		n++
	}
	if v := o.ClientAliveInterval; v != nil {
		if *v < 0 {
			return "", fmt.Errorf("sshd client_alive_interval: %d is negative", *v)
		}
		fmt.Fprintf(&b, "ClientAliveInterval %d\n", *v)
		n++
	}
	if v := o.PermitRootLogin; v != "" {
		if !slices.Contains([]string{"yes", "no", "prohibit-password", "forced-commands-only"}, v) {
			return "", fmt.Errorf("sshd permit_root_login: %q is not yes, no, prohibit-password or forced-commands-only", v)
		}
		fmt.Fprintf(&b, "PermitRootLogin %s\n", v)
		n++
	}
	if n == 0 {
		return "", errors.New("sshd: no option is set")
	}
	return b.String(), nil
}
