package boottest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestShellQuote(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "plain", "with space", "it's", `"double"`, "$HOME", "a;b|c&d", "`id`", "new\nline", "*", "-n"} {
		out, err := exec.Command("sh", "-c", "printf %s "+ShellQuote(s)).Output()
		require.NoError(t, err, "%q", s)
		assert.Equal(t, s, string(out), "the remote shell sees %q as one word", s)
	}
	assert.Equal(t, "findmnt", ShellQuote("findmnt"))
	assert.Equal(t, "'a b'", ShellQuote("a b"))
}

func TestConfigRejects(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	image := filepath.Join(dir, "disk.raw")
	key := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(image, make([]byte, 1<<20), 0o644))
	require.NoError(t, os.WriteFile(key, []byte("key"), 0o600))
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{SSHKey: key}, "no image to boot"},
		{Config{Image: filepath.Join(dir, "missing"), SSHKey: key}, "is not a readable file"},
		{Config{Image: image, SSHKey: key, Firmware: "coreboot"}, `firmware "coreboot"`},
		{Config{Image: image}, "no SSH private key"},
		{Config{Image: image, SSHKey: filepath.Join(dir, "nokey")}, "SSH key"},
		{Config{Image: image, SSHKey: key, Memory: 64}, "too little"},
		{Config{Image: image, SSHKey: key, User: "-oProxyCommand=x"}, "not a user name"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			_, err := Boot(context.Background(), tc.cfg)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

// An image that cannot boot fails within the timeout, with the console in
// the error, and leaves neither QEMU nor temporary files behind.
func TestBootFailureCleansUp(t *testing.T) {
	for _, tool := range []string{"qemu-system-x86_64", "ssh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	dir := t.TempDir()
	image := filepath.Join(dir, "blank.raw")
	key := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(image, make([]byte, 1<<20), 0o644))
	require.NoError(t, os.WriteFile(key, []byte("key"), 0o600))

	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	start := time.Now()
	_, err := Boot(context.Background(), Config{Image: image, SSHKey: key, Timeout: 5 * time.Second})
	require.Error(t, err)
	assert.Less(t, time.Since(start), time.Minute)
	assert.Contains(t, err.Error(), "SSH did not let root in within 5s")
	assert.Contains(t, err.Error(), "last lines of the serial console")
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, entries, "the machine's temporary files are removed")
	out, _ := exec.Command("pgrep", "-f", "hostfwd=tcp:127.0.0.1:[0-9]+-:22.*"+regexpQuote(image)).Output()
	assert.Empty(t, strings.TrimSpace(string(out)), "QEMU is not left running")
}

func regexpQuote(s string) string {
	r := strings.NewReplacer(".", `\.`, "+", `\+`, "*", `\*`, "?", `\?`, "(", `\(`, ")", `\)`, "[", `\[`, "]", `\]`)
	return r.Replace(s)
}
