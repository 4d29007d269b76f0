package stages

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/manifest"
)

// debianSSHDConfig is the start of Debian's sshd_config: the drop-ins are
// read first.
const debianSSHDConfig = "Include /etc/ssh/sshd_config.d/*.conf\n\nKbdInteractiveAuthentication no\nUsePAM yes\n"

func TestSSHD(t *testing.T) {
	t.Parallel()
	tree := t.TempDir()
	writeTree(t, tree, "/etc/ssh/sshd_config", debianSSHDConfig)
	env, _ := fileEnv(t, tree)
	no, yes, interval := false, true, 30
	opts := manifest.SSHD{PasswordAuthentication: &no, ChallengeResponseAuthentication: &yes, ClientAliveInterval: &interval, PermitRootLogin: "prohibit-password"}
	require.NoError(t, (&SSHD{Opts: opts}).Run(context.Background(), env))
	assert.Equal(t, "# Written by kiln from the blueprint's customizations.sshd.\n"+
		"PasswordAuthentication no\n"+
		"KbdInteractiveAuthentication yes\n"+
		"ClientAliveInterval 30\n"+
		"PermitRootLogin prohibit-password\n",
		readTree(t, tree, "/etc/ssh/sshd_config.d/10-kiln.conf"))
	assert.Equal(t, debianSSHDConfig, readTree(t, tree, "/etc/ssh/sshd_config"), "the main file is left as the package wrote it")
}

func TestSSHDOnlyWhatIsSet(t *testing.T) {
	t.Parallel()
	tree := t.TempDir()
	writeTree(t, tree, "/etc/ssh/sshd_config", debianSSHDConfig)
	env, _ := fileEnv(t, tree)
	require.NoError(t, (&SSHD{Opts: manifest.SSHD{PermitRootLogin: "no"}}).Run(context.Background(), env))
	assert.Equal(t, "# Written by kiln from the blueprint's customizations.sshd.\nPermitRootLogin no\n", readTree(t, tree, "/etc/ssh/sshd_config.d/10-kiln.conf"))
}

func TestSSHDNeedsTheServer(t *testing.T) {
	t.Parallel()
	root := "no"
	for name, tc := range map[string]struct {
		mainConfig string
		want       string
	}{
		"no sshd_config":     {"", "install openssh-server"},
		"no drop-in Include": {"PermitRootLogin yes\n", "does not include /etc/ssh/sshd_config.d/"},
	} {
		tree := t.TempDir()
		if tc.mainConfig != "" {
			writeTree(t, tree, "/etc/ssh/sshd_config", tc.mainConfig)
		}
		env, _ := fileEnv(t, tree)
		err := (&SSHD{Opts: manifest.SSHD{PermitRootLogin: root}}).Run(context.Background(), env)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), tc.want, name)
		assert.False(t, existsInTree(t, tree, "/etc/ssh/sshd_config.d/10-kiln.conf"), name)
	}
}

func TestSSHDValidate(t *testing.T) {
	t.Parallel()
	neg := -1
	for _, tc := range []struct {
		opts manifest.SSHD
		want string
	}{
		{manifest.SSHD{}, "no option is set"},
		{manifest.SSHD{PermitRootLogin: "maybe"}, `permit_root_login: "maybe"`},
		{manifest.SSHD{PermitRootLogin: "yes\nPasswordAuthentication yes"}, "permit_root_login"},
		{manifest.SSHD{ClientAliveInterval: &neg}, "client_alive_interval: -1 is negative"},
	} {
		err := (&SSHD{Opts: tc.opts}).Validate()
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
	}
}
