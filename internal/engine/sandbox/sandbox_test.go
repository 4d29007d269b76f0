package sandbox

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the sandbox is started by root (run the tests as root)")
	}
}

// run runs a shell script in the host-tools mode on tree, with args as
// its positional parameters, and returns its output and error.
func run(t *testing.T, tree, script string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	argv := append([]string{"/bin/sh", "-c", script, "sh"}, args...)
	err := Exec(context.Background(), Options{Root: tree, Mode: HostTools, Out: &out}, argv...)
	return out.String(), err
}

func TestProbeReportsAnUnprivilegedSandbox(t *testing.T) {
	requireRoot(t)
	iso, err := Probe(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "0 1878982656 65536", iso.UIDMap, "root inside is an unprivileged uid on the host")
	assert.Equal(t, "1", iso.NoNewPrivs)
	assert.Equal(t, "2", iso.Seccomp, "a seccomp filter is in place")
	eff, err := strconv.ParseUint(iso.CapEff, 16, 64)
	require.NoError(t, err)
	for bit, name := range map[uint]string{21: "CAP_SYS_ADMIN", 19: "CAP_SYS_PTRACE", 16: "CAP_SYS_MODULE", 22: "CAP_SYS_BOOT", 17: "CAP_SYS_RAWIO", 27: "CAP_MKNOD", 25: "CAP_SYS_TIME"} {
		assert.Zero(t, eff&(1<<bit), "%s is dropped (CapEff %s)", name, iso.CapEff)
	}
	assert.NotZero(t, eff&(1<<0), "CAP_CHOWN is kept for dpkg")
}

func TestFilesWrittenInsideKeepTheirOwnersOnDisk(t *testing.T) {
	requireRoot(t)
	tree := t.TempDir()
	out, err := run(t, tree, "id -u; echo x >/target/by-root; echo y >/target/by-1000 && chown 1000:1000 /target/by-1000")
	require.NoError(t, err, out)
	assert.Equal(t, "0\n", out)
	for name, want := range map[string]uint32{"by-root": 0, "by-1000": 1000} {
		var st syscall.Stat_t
		require.NoError(t, syscall.Lstat(filepath.Join(tree, name), &st))
		assert.Equal(t, want, st.Uid, "%s is owned by %d on disk, not by the mapped host uid", name, want)
		assert.Equal(t, want, st.Gid, name)
	}
}

func TestNoHostPathIsVisible(t *testing.T) {
	requireRoot(t)
	tree := t.TempDir()
	secretDir := t.TempDir()
	secret := filepath.Join(secretDir, "secret")
	require.NoError(t, os.WriteFile(secret, []byte("host secret"), 0o644))
	out, err := run(t, tree, `ls /; cat "$1" 2>&1; ls "$2" 2>&1; cat /etc/shadow 2>&1 | head -c 60; echo; touch /usr/kiln-canary 2>&1; echo end`, secret, secretDir)
	require.NoError(t, err, out)
	assert.NotContains(t, out, "host secret")
	assert.Contains(t, out, "end")
	assert.NotContains(t, out, "root:", "the host's /etc/shadow stays unreadable")
	assert.NoFileExists(t, "/usr/kiln-canary", "the host's /usr is read-only")
	root := strings.Fields(strings.SplitN(out, "cat:", 2)[0])
	assert.ElementsMatch(t, []string{"bin", "dev", "etc", "lib", "lib64", "proc", "root", "run", "sbin", "target", "tmp", "usr"}, root,
		"/ holds the tools and the tree, nothing else of the host")

	out, err = run(t, tree, "ls /etc")
	require.NoError(t, err, out)
	etc := strings.Fields(out)
	assert.Contains(t, etc, "passwd")
	assert.Contains(t, etc, "ld.so.cache")
	for _, secret := range []string{"shadow", "apt", "ssh", "kiln"} {
		assert.NotContains(t, etc, secret, "only what the tools read of the host's /etc is there")
	}
}

func TestWhatABuildNeverNeedsIsRefused(t *testing.T) {
	requireRoot(t)
	tree := t.TempDir()
	for name, script := range map[string]string{
		"mount":         "mount -t tmpfs none /tmp",
		"new namespace": "unshare --user --map-root-user true",
		"sysrq":         "echo h >/proc/sysrq-trigger",
		"mknod":         "mknod /target/null c 1 3",
		"network":       "exec 3<>/dev/tcp/127.0.0.1/22",
		"hostname":      "hostname evil",
		"reboot":        "perl -e 'syscall(169, 0xfee1dead, 672274793, 0x4321fedc, 0) == -1 or exit 0; exit 1'",
		"ptrace":        "perl -e 'syscall(101, 16, 1, 0, 0) == -1 or exit 0; exit 1'", // PTRACE_ATTACH to PID 1
	} {
		t.Run(name, func(t *testing.T) {
			out, err := run(t, tree, "/bin/bash -c '"+strings.ReplaceAll(script, "'", `'"'"'`)+"'")
			require.Error(t, err, "%s must fail in the sandbox: %s", name, out)
			t.Logf("%s: %v: %s", name, err, out)
		})
	}
	assert.NoFileExists(t, filepath.Join(tree, "null"))
}

func TestDoubleChrootEscapeStaysInside(t *testing.T) {
	requireRoot(t)
	tree := t.TempDir()
	canaryDir, err := os.MkdirTemp("/var/tmp", "kiln-canary-")
	require.NoError(t, err)
	defer os.RemoveAll(canaryDir)
	canary := filepath.Join(canaryDir, "escaped")
	// The classic escape: chroot into a subdirectory while keeping the
	// working directory outside it, climb, and chroot to what is reached.
	script := `perl -e 'mkdir "/target/x"; chdir "/target" or die; chroot "/target/x" or die "chroot: $!"; chdir ".." for 1..64; chroot "." or die "chroot2: $!"; open(my $f, ">", $ARGV[0]) and print "WROTE\n"; opendir(my $d, $ARGV[1]) and print "LISTED\n"; print "done\n"' "$1" "$2"`
	out, err := run(t, tree, script, canary, canaryDir)
	require.NoError(t, err, out)
	assert.Contains(t, out, "done")
	assert.NotContains(t, out, "LISTED", "the host's directory is not reachable")
	assert.NotContains(t, out, "WROTE")
	assert.NoFileExists(t, canary)
}

func TestInTreeRunsOnlyByAbsolutePath(t *testing.T) {
	requireRoot(t)
	err := Run(context.Background(), t.TempDir(), nil, nil, nil, "systemctl", "enable", "x")
	require.ErrorContains(t, err, "not an absolute path")
}

func TestCancelKillsEverythingInside(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Exec(ctx, Options{Root: t.TempDir(), Mode: HostTools}, "/bin/sh", "-c", "sleep 300 & sleep 300")
	}()
	time.Sleep(500 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("the sandbox outlived its context")
	}
}

func TestSeccompFiltersAssemble(t *testing.T) {
	for _, a := range []string{"amd64", "arm64"} {
		prog, err := filterFor(a)
		require.NoError(t, err, a)
		assert.NotEmpty(t, prog, a)
	}
	_, err := filterFor("mips")
	require.Error(t, err)
}

// BenchmarkExec measures what starting one sandboxed command costs (a
// build runs a few dozen). BenchmarkUnshareChroot is the namespaces-only
// isolation kiln used before, for comparison.
func BenchmarkExec(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	tree := b.TempDir()
	for i := 0; i < b.N; i++ {
		if err := Exec(context.Background(), Options{Root: tree, Mode: HostTools}, "/bin/true"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnshareChroot(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	for i := 0; i < b.N; i++ {
		cmd := exec.Command("unshare", "--mount", "--pid", "--net", "--uts", "--ipc", "--fork", "--kill-child", "--", "chroot", "/", "/bin/true")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatal(err, string(out))
		}
	}
}
