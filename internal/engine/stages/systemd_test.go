package stages

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/manifest"
)

func TestSystemd(t *testing.T) {
	t.Parallel()
	tree := debianTree(t)
	env, _ := testEnv(t, tree)
	ctx := context.Background()
	s := &Systemd{Opts: manifest.Systemd{
		Enabled:       []string{"systemd-networkd", "systemd-resolved.service", "nftables.service"},
		Disabled:      []string{"ssh.service"},
		Masked:        []string{"systemd-timesyncd.service"},
		DefaultTarget: "multi-user.target",
	}}
	if !existsInTree(t, tree, "/lib/systemd/system/systemd-resolved.service") {
		s.Opts.Enabled = []string{"systemd-networkd", "nftables.service"}
	}
	require.NoError(t, s.Run(ctx, env))
	require.Equal(t, "enabled", isEnabled(t, tree, "systemd-networkd.service"))
	require.Equal(t, "enabled", isEnabled(t, tree, "nftables.service"))
	require.Equal(t, "disabled", isEnabled(t, tree, "ssh.service"))
	require.Equal(t, "masked", isEnabled(t, tree, "systemd-timesyncd.service"))
	target, err := os.Readlink(filepath.Join(tree, "etc/systemd/system/default.target"))
	require.NoError(t, err)
	require.Equal(t, "multi-user.target", filepath.Base(target))

	t.Run("unknown unit", func(t *testing.T) {
		err := (&Systemd{Opts: manifest.Systemd{Enabled: []string{"no-such-thing.service"}}}).Run(ctx, env)
		require.ErrorContains(t, err, "no-such-thing.service")
	})
}

func TestSystemdRejectsBadNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts manifest.Systemd
	}{
		{"semicolon", manifest.Systemd{Enabled: []string{"ssh;reboot"}}},
		{"option", manifest.Systemd{Disabled: []string{"--root=/"}}},
		{"space", manifest.Systemd{Masked: []string{"a b"}}},
		{"slash", manifest.Systemd{Enabled: []string{"../../etc/passwd"}}},
		{"empty", manifest.Systemd{Enabled: []string{""}}},
		{"newline", manifest.Systemd{Enabled: []string{"a\nb"}}},
		{"default target", manifest.Systemd{DefaultTarget: "$(reboot)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env, _ := fileEnv(t, t.TempDir())
			err := (&Systemd{Opts: tc.opts}).Run(context.Background(), env)
			require.ErrorContains(t, err, "is not a systemd unit name")
		})
	}
}

// isEnabled returns what "systemctl is-enabled unit" says in tree (it exits
// non-zero for anything but enabled, so only the output counts).
func isEnabled(t *testing.T, tree, unit string) string {
	t.Helper()
	env, log := testEnv(t, tree)
	_ = env.Chroot(context.Background(), nil, "/usr/bin/systemctl", "is-enabled", unit)
	return strings.TrimSpace(log.String())
}
