package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/compose"
	"github.com/kiln-project/kiln/internal/depsolve"
	"github.com/kiln-project/kiln/internal/distro"
	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/manifest"
	"github.com/kiln-project/kiln/internal/ociindex/ocitest"
	"github.com/kiln-project/kiln/internal/target/targettest"
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

// ociBuilder stands in for the engine in kiln build: it writes, for
// each manifest, a small OCI archive of the manifest's architecture (as
// the container image type does) with the manifest, SBOM and log beside
// it, and keeps the architectures it built. It builds in the test's own
// goroutine (kiln build's), so it may fail t.
type ociBuilder struct {
	t      *testing.T
	mu     sync.Mutex
	arches []string
}

// ociArch is the OCI architecture of a kiln architecture.
var ociArch = map[string]string{"x86_64": "amd64", "aarch64": "arm64"}

func (b *ociBuilder) Build(_ context.Context, m *manifest.Manifest, dir string, _ io.Writer, _ engine.Reporter) (*compose.Built, error) {
	b.mu.Lock()
	b.arches = append(b.arches, m.Target.Arch)
	b.mu.Unlock()
	out := compose.OutputFiles(dir, m.Output.Filename)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ocitest.WriteArchive(b.t, out.Artifact, ocitest.Spec{Arch: ociArch[m.Target.Arch], Layers: []v1.Layer{ocitest.Layer(b.t, 8<<10)}, RefName: m.Target.Name + ":latest"})
	mb, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	for p, data := range map[string][]byte{out.Manifest: mb, out.SBOM: []byte("{}\n"), out.Log: []byte("built\n")} {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return nil, err
		}
	}
	return &compose.Built{Files: out, Filename: m.Output.Filename}, nil
}

func (b *ociBuilder) built() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.arches)
}

// runBuildCLI runs the CLI in-process with the configuration file config,
// packages solved by depsolve.Fake and images built by b.
func runBuildCLI(t *testing.T, config string, b imageBuilder, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := newRootCommand(&stdout, &stderr)
	if args[0] == "build" || args[0] == "manifest" {
		args = append(args, fakeMirrors...)
	}
	cmd.SetArgs(append([]string{"--config", config}, args...))
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	ctx := context.WithValue(context.Background(), resolverContextKey{}, depsolve.Resolver(depsolve.Fake{}))
	ctx = context.WithValue(ctx, builderContextKey{}, b)
	err := cmd.ExecuteContext(ctx)
	if err != nil {
		printError(&stderr, err)
	}
	return stdout.String(), stderr.String(), err
}

// requireAarch64Plans skips the test where this tree cannot plan aarch64
// images yet.
func requireAarch64Plans(t *testing.T) {
	t.Helper()
	reg, err := distro.Load()
	require.NoError(t, err)
	d, err := reg.Distro("debian-12")
	require.NoError(t, err)
	a, err := d.Arch("aarch64")
	require.NoError(t, err)
	if a.NotBuildable != "" {
		t.Skipf("aarch64 images are not planned here: %s", a.NotBuildable)
	}
}

func TestBuildContainerForTwoArchitectures(t *testing.T) {
	requireAarch64Plans(t)
	reg := targettest.StartRegistry(t, targettest.RegistryOptions{})
	config := writeConfig(t, fmt.Sprintf("[targets.registry]\nhost = %q\ninsecure = true\n", reg.Host))
	bp := writeBlueprint(t, "name = \"app\"\n")
	out := t.TempDir()
	b := &ociBuilder{t: t}
	stdout, stderr, err := runBuildCLI(t, config, b, "build", "-b", bp, "-t", "container", "--arch", "x86_64,aarch64", "--distro", "debian-12", "-o", out, "--progress", "none")
	require.NoError(t, err, stderr)
	assert.Equal(t, []string{"x86_64", "aarch64"}, b.built(), "each architecture is a build of its own")
	var want []string
	for _, arch := range []string{"x86_64", "aarch64"} {
		stem := filepath.Join(out, "app-debian-12-"+arch)
		want = append(want, stem+".oci.tar", stem+".oci.manifest.json", stem+".oci.spdx.json", stem+".oci.build.log")
	}
	multi := filepath.Join(out, "app-debian-12-multiarch.oci.tar")
	want = append(want, multi)
	assert.Equal(t, strings.Join(want, "\n")+"\n", stdout)
	for _, p := range want {
		assert.FileExists(t, p)
	}

	top, err := layout.ImageIndexFromPath(ocitest.Unpack(t, multi))
	require.NoError(t, err)
	tm, err := top.IndexManifest()
	require.NoError(t, err)
	require.Len(t, tm.Manifests, 1)
	assert.Equal(t, "app:latest", tm.Manifests[0].Annotations["org.opencontainers.image.ref.name"])
	index, err := top.ImageIndex(tm.Manifests[0].Digest)
	require.NoError(t, err)
	im, err := index.IndexManifest()
	require.NoError(t, err)
	var platforms []string
	for _, m := range im.Manifests {
		platforms = append(platforms, m.Platform.String())
	}
	assert.Equal(t, []string{"linux/amd64", "linux/arm64"}, platforms)

	// Nothing is built over files that are there already.
	_, stderr, err = runBuildCLI(t, config, b, "build", "-b", bp, "-t", "container", "--arch", "x86_64,aarch64", "--distro", "debian-12", "-o", out, "--progress", "none")
	require.Error(t, err)
	assert.Contains(t, stderr, multi)
	assert.Contains(t, stderr, "exists already: remove them, choose another --output, or pass --force")
	assert.Len(t, b.built(), 2, "no build ran")

	// kiln upload pushes the whole index.
	stdout, stderr, err = runBuildCLI(t, config, b, "upload", multi, "--to", "registry", "--name", "team/app", "--tag", "1.0", "--progress", "none")
	require.NoError(t, err, stderr)
	assert.Equal(t, "kiln: no manifest beside the image: recognised it as a multi-architecture OCI archive (linux/amd64, linux/arm64), kiln type container\n", stderr)
	assert.Equal(t, fmt.Sprintf("uploaded app-debian-12-multiarch.oci.tar to container:\n  pushed to %s/team/app:1.0\n  digest %s\n", reg.Host, tm.Manifests[0].Digest), stdout)
	assert.Equal(t, tm.Manifests[0].Digest.String(), reg.Inspect(t, "team/app", "1.0"))

	// So does kiln build --upload, after building again.
	out2 := t.TempDir()
	stdout, stderr, err = runBuildCLI(t, config, b, "build", "-b", bp, "-t", "oci", "--arch", "aarch64,x86_64", "--distro", "debian-12", "-o", out2, "--progress", "none", "--upload", "registry", "--name", "team/app", "--tag", "2.0")
	require.NoError(t, err, stderr)
	assert.Contains(t, stdout, filepath.Join(out2, "app-debian-12-multiarch.oci.tar")+"\nuploaded app-debian-12-multiarch.oci.tar to container:\n  pushed to "+reg.Host+"/team/app:2.0\n")
	assert.NotEmpty(t, reg.Inspect(t, "team/app", "2.0"))
}

func TestBuildArchListIsForTheContainerTypeOnly(t *testing.T) {
	bp := writeBlueprint(t, "name = \"app\"\n")
	b := &ociBuilder{t: t}
	config := emptyConfig(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"build", "-b", bp, "-t", "qcow2", "--arch", "x86_64,aarch64"},
			`--arch "x86_64,aarch64": several architectures are built only for the container image type, into one multi-architecture image; build qcow2 once per architecture (--arch x86_64)`},
		{[]string{"build", "-b", bp, "-t", "container", "--arch", "x86_64,x86_64"},
			`--arch "x86_64,x86_64": x86_64 is named twice: give architectures separated by commas, each once, e.g. x86_64,aarch64`},
		{[]string{"build", "-b", bp, "-t", "container", "--arch", "x86_64,"},
			`--arch "x86_64,": an empty architecture in the list`},
		{[]string{"build", "--manifest", filepath.Join(t.TempDir(), "m.json"), "--arch", "x86_64,aarch64"},
			`--arch "x86_64,aarch64": --manifest builds the one architecture its manifest names`},
		{[]string{"build", "-b", bp, "--arch", "x86_64,aarch64"},
			`--type is required: several architectures (--arch "x86_64,aarch64") are built for the container type only`},
		{[]string{"manifest", "-b", bp, "-t", "container", "--arch", "x86_64,aarch64"},
			`--arch "x86_64,aarch64": one architecture is planned at a time; only kiln build --type container takes several`},
		{[]string{"build", "-b", bp, "-t", "container", "--arch", "x86_64,sparc"},
			`--arch sparc: `},
	} {
		args := append(tc.args, "--distro", "debian-12")
		if args[0] == "build" {
			args = append(args, "-o", t.TempDir(), "--progress", "none")
		}
		_, stderr, err := runBuildCLI(t, config, b, args...)
		if assert.Error(t, err, tc.args) {
			assert.Contains(t, stderr, tc.want, tc.args)
		}
	}
	assert.Empty(t, b.built(), "nothing was built")
}
