package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/testhost"
)

// engineCache is a build cache for one test that shares downloaded
// packages and repository metadata with the rest of the run.
func engineCache(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	shared := testhost.CacheDir(t)
	for _, sub := range []string{"debs", "metadata"} {
		require.NoError(t, os.MkdirAll(filepath.Join(shared, sub), 0o755))
		require.NoError(t, os.Symlink(filepath.Join(shared, sub), filepath.Join(dir, sub)))
	}
	return dir
}

func writeBlueprint(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bp.toml")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	return p
}

func TestBuildRefusesToOverwrite(t *testing.T) {
	cache := engineCache(t)
	out := t.TempDir()
	existing := filepath.Join(out, "x-debian-12-x86_64.tar.xz")
	require.NoError(t, os.WriteFile(existing, []byte("keep me"), 0o644))
	_, stderr, err := run(t, "--cache-dir", cache, "build", "-b", writeBlueprint(t, "name = \"x\"\n"), "-t", "tar", "--distro", "debian-12", "-o", out, "--progress", "none")
	require.Error(t, err)
	assert.Contains(t, stderr, existing+" exists already")
	assert.Contains(t, stderr, "--force")
	b, err := os.ReadFile(existing)
	require.NoError(t, err)
	assert.Equal(t, "keep me", string(b), "nothing the user had is lost")
}

func TestBuildWithAMissingPackageDownloadsNothing(t *testing.T) {
	cache := t.TempDir()
	require.NoError(t, os.Symlink(filepath.Join(testhost.CacheDir(t), "metadata"), filepath.Join(cache, "metadata")))
	out := t.TempDir()
	_, stderr, err := run(t, "--cache-dir", cache, "build", "-b", writeBlueprint(t, "name = \"x\"\n[[packages]]\nname = \"jq\"\n[[packages]]\nname = \"no-such-package-kiln\"\n"), "-t", "tar", "--distro", "debian-12", "-o", out)
	require.Error(t, err)
	assert.Contains(t, stderr, `packages[1]: package "no-such-package-kiln" does not exist in debian-12`)
	_, err = os.Stat(filepath.Join(cache, "debs"))
	assert.True(t, os.IsNotExist(err), "the error comes before any download")
	entries, _ := os.ReadDir(out)
	assert.Empty(t, entries)
}

// TestBuildOnAFullDisk fills the cache's filesystem mid-download: the build
// fails with a clear error and leaves no work directory, mount or partial
// file behind. It stays a real build: what it proves is the engine's own
// clean-up.
func TestBuildOnAFullDisk(t *testing.T) {
	testhost.RequireBuildHost(t, engine.HostProblems(nil))
	small := t.TempDir()
	require.NoError(t, syscall.Mount("kiln-test", small, "tmpfs", 0, "size=24m"))
	defer syscall.Unmount(small, syscall.MNT_DETACH)
	require.NoError(t, os.Symlink(filepath.Join(testhost.CacheDir(t), "metadata"), filepath.Join(small, "metadata")))
	out := filepath.Join(small, "out")
	_, stderr, err := run(t, "--cache-dir", small, "build", "-b", writeBlueprint(t, "name = \"x\"\n"), "-t", "tar", "--distro", "debian-12", "-o", out, "--progress", "none")
	require.Error(t, err)
	assert.Contains(t, stderr, "no space left on device")
	work, _ := os.ReadDir(filepath.Join(small, "work"))
	assert.Empty(t, work, "the work directory is cleaned up")
	partial, _ := filepath.Glob(filepath.Join(small, "debs", "*", ".fetch-*"))
	assert.Empty(t, partial, "no half-downloaded package is left")
	_, err = os.Stat(filepath.Join(out, "x-debian-12-x86_64.tar.xz"))
	assert.True(t, os.IsNotExist(err), "no artifact is written")
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	assert.Equal(t, 1, strings.Count(string(mounts), small), "only the test's own tmpfs is mounted there")
}

// TestKilledBuildDoesNotBreakTheNext kills kiln with SIGKILL while it
// installs packages, then builds again in the same cache. It stays a real
// build: only a real mmdebstrap can be left running or mounted.
func TestKilledBuildDoesNotBreakTheNext(t *testing.T) {
	testhost.RequireBuildHost(t, engine.HostProblems(nil))
	bin := filepath.Join(t.TempDir(), "kiln")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))
	cache := engineCache(t)
	bp := writeBlueprint(t, "name = \"killed\"\n")
	args := []string{"--cache-dir", cache, "build", "-b", bp, "-t", "tar", "--distro", "debian-12", "-o", t.TempDir(), "--progress", "json"}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	first := exec.CommandContext(ctx, bin, args...)
	stdout, err := first.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, first.Start())
	sc := bufio.NewScanner(stdout)
	started := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"kind":"stage-start"`) && strings.Contains(sc.Text(), "kiln.debs.install") {
			started = true
			break
		}
	}
	require.True(t, started, "the package installation started")
	time.Sleep(3 * time.Second) // mmdebstrap is at work now
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_ = first.Wait()
	time.Sleep(time.Second) // unshare and mmdebstrap die with it

	var errOut bytes.Buffer
	second := exec.CommandContext(ctx, bin, args[:len(args)-2]...)
	second.Args = append(second.Args, "--progress", "none")
	second.Stderr = &errOut
	require.NoError(t, second.Run(), errOut.String())
	work, _ := os.ReadDir(filepath.Join(cache, "work"))
	assert.Empty(t, work, "the killed build's work directory was removed")
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	assert.NotContains(t, string(mounts), cache, "nothing of either build is still mounted")
	ps, _ := exec.Command("pgrep", "-f", filepath.Join(cache, "work")).Output()
	assert.Empty(t, strings.TrimSpace(string(ps)), "mmdebstrap died with the killed build")
}
