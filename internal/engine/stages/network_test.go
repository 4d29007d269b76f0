package stages

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/manifest"
)

func TestNetwork(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		resolved bool
		old      string // existing /etc/resolv.conf
	}{
		{name: "without resolved", old: "nameserver 192.0.2.1\n"},
		{name: "with resolved", resolved: true, old: "nameserver 192.0.2.1\n"},
		{name: "with resolved, no resolv.conf", resolved: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tree := t.TempDir()
			require.NoError(t, os.Symlink("usr/lib", filepath.Join(tree, "lib")))
			if tc.resolved {
				writeTree(t, tree, "/usr/lib/systemd/system/systemd-resolved.service", "[Unit]\n")
			}
			if tc.old != "" {
				writeTree(t, tree, "/etc/resolv.conf", tc.old)
			}
			env, _ := fileEnv(t, tree)
			require.NoError(t, (&Network{Opts: manifest.Network{Mode: "networkd-dhcp"}}).Run(context.Background(), env))
			conf := readTree(t, tree, "/etc/systemd/network/80-kiln-dhcp.network")
			require.Contains(t, conf, "[Match]\nType=ether\nName=en* eth*\n\n[Network]\nDHCP=yes\n")
			target, err := os.Readlink(filepath.Join(tree, "etc/resolv.conf"))
			if tc.resolved {
				require.NoError(t, err)
				require.Equal(t, "../run/systemd/resolve/stub-resolv.conf", target)
			} else {
				require.Equal(t, tc.old, readTree(t, tree, "/etc/resolv.conf"))
			}
		})
	}
	t.Run("unknown mode", func(t *testing.T) {
		t.Parallel()
		env, _ := fileEnv(t, t.TempDir())
		require.ErrorContains(t, (&Network{Opts: manifest.Network{Mode: "ifupdown"}}).Run(context.Background(), env), "not supported")
	})
}
