package stages

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/kiln-project/kiln/internal/manifest"
)

// Network configures the network for Mode "networkd-dhcp":
// /etc/systemd/network/80-kiln-dhcp.network brings every Ethernet
// interface (en*, eth*) up with DHCP, and when systemd-resolved is
// installed /etc/resolv.conf becomes a link to its stub resolver's file.
// Enabling systemd-networkd is the Systemd stage's job.
type Network struct{ Opts manifest.Network }

const networkdDHCP = `# Written by kiln: DHCP on every Ethernet interface.
[Match]
Type=ether
Name=en* eth*

[Network]
DHCP=yes
`

// Validate implements Stage.
func (s *Network) Validate() error {
	if s.Opts.Mode != "networkd-dhcp" {
		return fmt.Errorf("network mode %q is not supported (supported: networkd-dhcp)", s.Opts.Mode)
	}
	return nil
}

// Run implements Stage.
func (s *Network) Run(_ context.Context, env *Env) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if err := WriteFile(env.Tree, "/etc/systemd/network/80-kiln-dhcp.network", []byte(networkdDHCP), 0o644); err != nil {
		return err
	}
	env.Logf("DHCP on every Ethernet interface with systemd-networkd")
	if !installed(env.Tree, "/lib/systemd/system/systemd-resolved.service") && !installed(env.Tree, "/usr/lib/systemd/system/systemd-resolved.service") {
		return nil
	}
	link, err := resolveEntry(env.Tree, "/etc/resolv.conf")
	if err != nil {
		return fmt.Errorf("/etc/resolv.conf: %w", err)
	}
	switch fi, err := os.Lstat(link); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("/etc/resolv.conf: %w", err)
	case fi.IsDir():
		return errors.New("/etc/resolv.conf is a directory in the image")
	default:
		if err := os.Remove(link); err != nil {
			return fmt.Errorf("/etc/resolv.conf: %w", err)
		}
	}
	if err := os.Symlink("../run/systemd/resolve/stub-resolv.conf", link); err != nil {
		return fmt.Errorf("linking /etc/resolv.conf: %w", err)
	}
	env.Logf("/etc/resolv.conf points at systemd-resolved's stub resolver")
	return nil
}
