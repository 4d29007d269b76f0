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

func TestCleanupDebianTree(t *testing.T) {
	t.Parallel()
	tree := debianTree(t)
	env, _ := testEnv(t, tree)
	writeTree(t, tree, "/etc/machine-id", "0123456789abcdef0123456789abcdef\n")
	writeTree(t, tree, "/var/lib/dbus/machine-id", "0123456789abcdef0123456789abcdef\n")
	writeTree(t, tree, "/var/lib/apt/lists/deb.example_dists_bookworm_InRelease", "x")
	writeTree(t, tree, "/var/lib/apt/lists/partial/half", "x")
	writeTree(t, tree, "/var/cache/apt/pkgcache.bin", "x")
	writeTree(t, tree, "/var/cache/apt/archives/foo_1.0_amd64.deb", "x")
	writeTree(t, tree, "/usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n")
	writeTree(t, tree, "/tmp/build/junk", "x")
	writeTree(t, tree, "/var/tmp/junk", "x")
	writeTree(t, tree, "/root/.bash_history", "secret command\n")
	writeTree(t, tree, "/var/log/apt/term.log", "lots of output\n")
	writeTree(t, tree, "/etc/resolv.conf", "nameserver 192.0.2.1\n")
	writeTree(t, tree, "/etc/hostname", "keepme\n")
	require.FileExists(t, filepath.Join(tree, "etc/ssh/ssh_host_ed25519_key"))

	require.NoError(t, (&Cleanup{Opts: manifest.Cleanup{MachineID: true, SSHHostKeys: true, AptLists: true}}).Run(context.Background(), env))

	fi, err := os.Lstat(filepath.Join(tree, "etc/machine-id"))
	require.NoError(t, err)
	require.True(t, fi.Mode().IsRegular())
	require.Zero(t, fi.Size())
	link, err := os.Readlink(filepath.Join(tree, "var/lib/dbus/machine-id"))
	require.NoError(t, err)
	require.Equal(t, "/etc/machine-id", link)

	keys, err := filepath.Glob(filepath.Join(tree, "etc/ssh/ssh_host_*"))
	require.NoError(t, err)
	require.Empty(t, keys)
	require.FileExists(t, filepath.Join(tree, "etc/ssh/sshd_config"))
	require.Equal(t, "enabled", isEnabled(t, tree, "kiln-ssh-keygen.service"))
	require.Equal(t, "enabled", isEnabled(t, tree, "kiln-ssh-keygen-rsa.service"))
	// The fast keys before sshd, the slow RSA key after it.
	fast := readTree(t, tree, sshKeygenUnitPath)
	require.Contains(t, fast, "Before=ssh.service")
	require.Contains(t, fast, "-t ed25519")
	require.NotContains(t, fast, "rsa")
	rsa := readTree(t, tree, sshKeygenRSAUnitPath)
	require.Contains(t, rsa, "After=kiln-ssh-keygen.service ssh.service")
	require.NotContains(t, rsa, "Before=")
	require.Contains(t, rsa, "ExecStart=/usr/bin/ssh-keygen -A")
	// The units are well-formed as systemd reads them.
	inTree(t, tree, "systemd-analyze", "verify", "--man=no", sshKeygenUnitPath, sshKeygenRSAUnitPath)
	// They make the keys they promise: the fast unit's commands, run in
	// the tree, leave exactly the Ed25519 and ECDSA keys.
	for _, line := range strings.Split(fast, "\n") {
		if argv, ok := strings.CutPrefix(line, "ExecStart="); ok {
			inTree(t, tree, "sh", "-c", argv)
		}
	}
	keys, err = filepath.Glob(filepath.Join(tree, "etc/ssh/ssh_host_*_key"))
	require.NoError(t, err)
	require.ElementsMatch(t, []string{
		filepath.Join(tree, "etc/ssh/ssh_host_ecdsa_key"), filepath.Join(tree, "etc/ssh/ssh_host_ed25519_key"),
	}, keys)

	lists, err := os.ReadDir(filepath.Join(tree, "var/lib/apt/lists"))
	require.NoError(t, err)
	var names []string
	for _, e := range lists {
		names = append(names, e.Name())
	}
	require.Subset(t, []string{"lock", "partial"}, names)
	require.Contains(t, names, "partial")
	for _, gone := range []string{
		"/var/lib/apt/lists/partial/half", "/var/cache/apt/pkgcache.bin", "/var/cache/apt/archives/foo_1.0_amd64.deb",
		"/usr/sbin/policy-rc.d", "/tmp/build", "/var/tmp/junk", "/root/.bash_history", "/etc/resolv.conf",
	} {
		require.False(t, existsInTree(t, tree, gone), gone)
	}
	require.DirExists(t, filepath.Join(tree, "var/cache/apt/archives/partial"))
	require.DirExists(t, filepath.Join(tree, "tmp"))
	require.Equal(t, "", readTree(t, tree, "/var/log/apt/term.log"))
	require.Equal(t, "keepme\n", readTree(t, tree, "/etc/hostname"))
}

func TestCleanupKeepsResolvedLinkAndHostFiles(t *testing.T) {
	t.Parallel()
	tree := t.TempDir()
	env, _ := fileEnv(t, tree)
	// A sentinel on the host that links in the tree point at.
	sentinelDir := t.TempDir()
	sentinel := filepath.Join(sentinelDir, "keep")
	require.NoError(t, os.WriteFile(sentinel, []byte("host"), 0o644))
	hostLog := filepath.Join(sentinelDir, "host.log")
	require.NoError(t, os.WriteFile(hostLog, []byte("host log"), 0o644))

	require.NoError(t, os.MkdirAll(filepath.Join(tree, "etc/ssh"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(tree, "var/log"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(tree, "var/lib/dbus"), 0o755))
	require.NoError(t, os.Symlink("../run/systemd/resolve/stub-resolv.conf", filepath.Join(tree, "etc/resolv.conf")))
	// /var/tmp climbing out of the tree, /tmp pointing at the host's
	// directory by absolute path, a log linked to a host file.
	require.NoError(t, os.Symlink("../../../../../../../../"+strings.TrimPrefix(sentinelDir, "/"), filepath.Join(tree, "var/tmp")))
	require.NoError(t, os.Symlink(sentinelDir, filepath.Join(tree, "tmp")))
	require.NoError(t, os.Symlink(hostLog, filepath.Join(tree, "var/log/linked.log")))
	require.NoError(t, os.Symlink(sentinel, filepath.Join(tree, "etc/ssh/ssh_host_rsa_key")))
	require.NoError(t, os.Symlink(sentinel, filepath.Join(tree, "etc/machine-id")))
	require.NoError(t, os.Symlink("/etc/machine-id", filepath.Join(tree, "var/lib/dbus/machine-id")))

	require.NoError(t, (&Cleanup{Opts: manifest.Cleanup{MachineID: true, SSHHostKeys: true, AptLists: true}}).Run(context.Background(), env))

	got, err := os.ReadFile(sentinel)
	require.NoError(t, err)
	require.Equal(t, "host", string(got))
	got, err = os.ReadFile(hostLog)
	require.NoError(t, err)
	require.Equal(t, "host log", string(got))
	target, err := os.Readlink(filepath.Join(tree, "etc/resolv.conf"))
	require.NoError(t, err, "the resolved link stays")
	require.Equal(t, "../run/systemd/resolve/stub-resolv.conf", target)
	fi, err := os.Lstat(filepath.Join(tree, "etc/machine-id"))
	require.NoError(t, err)
	require.True(t, fi.Mode().IsRegular(), "a linked machine-id is replaced by an empty file")
	require.False(t, existsInTree(t, tree, "/etc/ssh/ssh_host_rsa_key"))
	require.False(t, existsInTree(t, tree, sshKeygenUnitPath), "no openssh-server, no unit")
	require.False(t, existsInTree(t, tree, sshKeygenRSAUnitPath), "no openssh-server, no unit")
}
