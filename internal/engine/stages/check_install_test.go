package stages

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/manifest"
)

// installedTree is a small tree as the packages would leave it: merged
// /usr (/bin and /lib are links), a few units, groups and shells.
func installedTree(t *testing.T) string {
	t.Helper()
	tree := t.TempDir()
	writeTree(t, tree, "/usr/lib/systemd/system/ssh.service", "[Unit]\n")
	writeTree(t, tree, "/usr/lib/systemd/system/getty@.service", "[Unit]\n")
	writeTree(t, tree, "/etc/systemd/system/local.timer", "[Timer]\n")
	writeTree(t, tree, "/etc/group", "root:x:0:\nsudo:x:27:\nusers:x:100:\n")
	writeTree(t, tree, "/etc/shells", "# /etc/shells: valid login shells\n/bin/sh\n/usr/bin/sh\n/bin/bash\n/usr/bin/bash\n")
	writeTree(t, tree, "/usr/bin/bash", "#!")
	writeTree(t, tree, "/usr/bin/sh", "#!")
	writeTree(t, tree, "/usr/bin/unlisted", "#!")
	require.NoError(t, os.Chmod(filepath.Join(tree, "usr/bin/bash"), 0o755))
	require.NoError(t, os.Chmod(filepath.Join(tree, "usr/bin/sh"), 0o755))
	require.NoError(t, os.Chmod(filepath.Join(tree, "usr/bin/unlisted"), 0o755))
	require.NoError(t, os.Symlink("usr/bin", filepath.Join(tree, "bin")))
	require.NoError(t, os.Symlink("usr/lib", filepath.Join(tree, "lib")))
	return tree
}

func TestCheckInstallPassesACleanTree(t *testing.T) {
	t.Parallel()
	tree := installedTree(t)
	env, log := fileEnv(t, tree)
	s := &CheckInstall{Opts: manifest.CheckInstall{
		Units: []manifest.CheckUnit{
			{Unit: "ssh", Field: "customizations.services.enabled[0]"},
			{Unit: "getty@tty1.service", Field: "customizations.services.enabled[1]"},
			{Unit: "local.timer", Field: "customizations.services.enabled[2]"},
		},
		Groups: []manifest.CheckGroup{{Group: "sudo", Field: "customizations.user[0].groups[0]"}},
		Shells: []manifest.CheckShell{
			{Shell: "/bin/bash", Field: "customizations.user[0].shell"},
			{Shell: "/usr/bin/sh", Field: "customizations.user[1].shell"},
		},
	}}
	require.NoError(t, s.Validate())
	require.NoError(t, s.Run(context.Background(), env))
	assert.Contains(t, log.String(), "checked 3 units, 1 groups and 2 shells")
}

// Every problem comes back at once, as blueprint.Errors, each at its
// field; wrapped as the engine wraps a stage's error, it is still found.
func TestCheckInstallReportsEveryProblem(t *testing.T) {
	t.Parallel()
	tree := installedTree(t)
	// A link out of the tree is not followed: the unit is missing.
	require.NoError(t, os.Symlink("/usr/lib/systemd/system/cron.service", filepath.Join(tree, "etc/systemd/system/escape.service")))
	env, _ := fileEnv(t, tree)
	s := &CheckInstall{Opts: manifest.CheckInstall{
		Units: []manifest.CheckUnit{
			{Unit: "ssh.service", Field: "customizations.services.enabled[0]"},
			{Unit: "cockpit.socket", Field: "customizations.services.enabled[1]"},
			{Unit: "telnet", Field: "customizations.services.disabled[0]"},
			{Unit: "nftables", Field: "customizations.firewall"},
		},
		Groups: []manifest.CheckGroup{
			{Group: "wheel", Field: "customizations.user[0].groups[0]"},
			{Group: "users", Field: "customizations.user[0].groups[1]"},
			{Group: "docker", Field: "customizations.user[1].groups[0]"},
		},
		Shells: []manifest.CheckShell{
			{Shell: "/bin/zsh", Field: "customizations.user[0].shell"},
			{Shell: "/usr/bin/unlisted", Field: "customizations.user[1].shell"},
		},
	}}
	require.NoError(t, s.Validate())
	err := s.Run(context.Background(), env)
	var problems blueprint.Errors
	require.True(t, errors.As(fmt.Errorf("os: stage %s: %w", s.Opts.StageType(), err), &problems), "found through the engine's wrapping: %v", err)
	var fields []string
	for _, p := range problems {
		fields = append(fields, p.Path)
	}
	assert.Equal(t, []string{
		"customizations.firewall",
		"customizations.services.disabled[0]",
		"customizations.services.enabled[1]",
		"customizations.user[0].groups[0]",
		"customizations.user[0].shell",
		"customizations.user[1].groups[0]",
		"customizations.user[1].shell",
	}, fields)
	msg := problems.Error()
	for _, want := range []string{
		"customizations.firewall: unit nftables.service is not in the image",
		"customizations.services.disabled[0]: unit telnet.service is not in the image",
		"customizations.services.enabled[1]: unit cockpit.socket is not in the image",
		`customizations.user[0].groups[0]: group "wheel" does not exist on Debian: its administrators' group is "sudo"`,
		"customizations.user[0].shell: shell /bin/zsh is not in the image",
		`customizations.user[1].groups[0]: group "docker" does not exist in the image`,
		"customizations.user[1].shell: shell /usr/bin/unlisted is not listed in /etc/shells",
	} {
		assert.Contains(t, msg, want)
	}

	escape := &CheckInstall{Opts: manifest.CheckInstall{Units: []manifest.CheckUnit{{Unit: "escape", Field: "customizations.services.enabled[0]"}}}}
	err = escape.Run(context.Background(), env)
	require.ErrorAs(t, err, &problems)
	assert.Contains(t, problems.Error(), "unit escape.service is not in the image", "the absolute link resolves inside the tree, where there is no cron.service")
}

func TestCheckInstallValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opts manifest.CheckInstall
		want string
	}{
		{manifest.CheckInstall{Units: []manifest.CheckUnit{{Unit: "../x", Field: "f"}}}, "units[0]: "},
		{manifest.CheckInstall{Units: []manifest.CheckUnit{{Unit: "ssh"}}}, "units[0]: no field"},
		{manifest.CheckInstall{Groups: []manifest.CheckGroup{{Group: "a:b", Field: "f"}}}, "groups[0]: "},
		{manifest.CheckInstall{Shells: []manifest.CheckShell{{Shell: "bin/sh", Field: "f"}}}, `shells[0]: "bin/sh" is not a clean absolute path`},
		{manifest.CheckInstall{Shells: []manifest.CheckShell{{Shell: "/bin/../sh", Field: "f"}}}, "not a clean absolute path"},
	} {
		err := (&CheckInstall{Opts: tc.opts}).Validate()
		require.Error(t, err, "%+v", tc.opts)
		assert.Contains(t, err.Error(), tc.want)
	}
}
