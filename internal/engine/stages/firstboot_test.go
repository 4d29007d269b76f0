package stages

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/manifest"
)

func TestFirstboot(t *testing.T) {
	t.Parallel()
	tree := t.TempDir()
	env, _ := fileEnv(t, tree)
	opts := manifest.Firstboot{Scripts: []manifest.FirstbootScript{
		{Name: "marker", Contents: "#!/bin/bash\ntouch /var/lib/marker\n", After: []string{"postgresql.service"}},
		{Name: "plain", Contents: "echo hello", IgnoreFailure: true, Before: []string{"getty.target"}},
	}}
	require.NoError(t, (&Firstboot{Opts: opts}).Run(context.Background(), env))

	assert.Equal(t, "#!/bin/bash\ntouch /var/lib/marker\n", readTree(t, tree, "/usr/local/libexec/kiln-firstboot/01-marker"))
	assert.Equal(t, "#!/bin/sh\necho hello\n", readTree(t, tree, "/usr/local/libexec/kiln-firstboot/02-plain"), "a script without #! runs with /bin/sh")
	for _, p := range []string{"/usr/local/libexec/kiln-firstboot/01-marker", "/usr/local/libexec/kiln-firstboot/02-plain"} {
		fi, err := os.Stat(filepath.Join(tree, p))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm(), "%s is executable", p)
	}

	first := readTree(t, tree, "/etc/systemd/system/kiln-firstboot-marker.service")
	assert.Contains(t, first, "After=network-online.target\n")
	assert.Contains(t, first, "Wants=network-online.target\n")
	assert.Contains(t, first, "After=postgresql.service\n")
	assert.Contains(t, first, "ConditionPathExists=!/var/lib/kiln-firstboot/marker.done\n")
	assert.Contains(t, first, "ExecStart=/usr/local/libexec/kiln-firstboot/01-marker\n", "a failure fails the unit")
	assert.Contains(t, first, "ExecStartPost=/bin/touch /var/lib/kiln-firstboot/marker.done\n")
	assert.Contains(t, first, "Type=oneshot\n")
	assert.NotContains(t, first, "Requires=", "the first script waits for no other")

	second := readTree(t, tree, "/etc/systemd/system/kiln-firstboot-plain.service")
	assert.Contains(t, second, "Requires=kiln-firstboot-marker.service\nAfter=kiln-firstboot-marker.service\n", "scripts run in order and stop at a failure")
	assert.Contains(t, second, "Before=getty.target\n")
	assert.Contains(t, second, "ExecStart=-/usr/local/libexec/kiln-firstboot/02-plain\n", "ignore_failure ignores the exit status")

	for _, unit := range []string{"kiln-firstboot-marker.service", "kiln-firstboot-plain.service"} {
		target, err := os.Readlink(filepath.Join(tree, "/etc/systemd/system/multi-user.target.wants", unit))
		require.NoError(t, err, "%s is enabled", unit)
		assert.Equal(t, "/etc/systemd/system/"+unit, target)
	}
}

func TestFirstbootValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opts manifest.Firstboot
		want string
	}{
		{manifest.Firstboot{}, "none given"},
		{manifest.Firstboot{Scripts: []manifest.FirstbootScript{{Name: "../x", Contents: "true"}}}, `scripts[0]: name "../x"`},
		{manifest.Firstboot{Scripts: []manifest.FirstbootScript{{Name: "a", Contents: "true"}, {Name: "a", Contents: "true"}}}, `scripts[1]: name "a" is used twice`},
		{manifest.Firstboot{Scripts: []manifest.FirstbootScript{{Name: "a", Contents: " \n"}}}, "contents are empty"},
		{manifest.Firstboot{Scripts: []manifest.FirstbootScript{{Name: "a", Contents: "true", After: []string{"x.service\nExecStart=/bin/evil"}}}}, "is not a unit name"},
	} {
		err := (&Firstboot{Opts: tc.opts}).Validate()
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
		tree := t.TempDir()
		env, _ := fileEnv(t, tree)
		require.Error(t, (&Firstboot{Opts: tc.opts}).Run(context.Background(), env))
		assert.False(t, existsInTree(t, tree, "/usr/local/libexec/kiln-firstboot"), "a refused stage writes nothing")
	}
}
