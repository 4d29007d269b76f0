package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/aptsources"
	"github.com/kiln-project/kiln/internal/depsolve"
	"github.com/kiln-project/kiln/internal/depsolve/apt"
	"github.com/kiln-project/kiln/internal/engine/sandbox"
	"github.com/kiln-project/kiln/internal/manifest"
	"github.com/kiln-project/kiln/internal/testhost"
)

// treeManifest solves a few packages against the host's mirror and returns
// a manifest whose only pipeline is the installed tree plus a hostname.
func treeManifest(t *testing.T, hostname string) *manifest.Manifest {
	t.Helper()
	entries, err := aptsources.Read("/")
	require.NoError(t, err)
	mirrors, err := aptsources.FindDebianMirrors(entries, []string{"bookworm"})
	require.NoError(t, err)
	r, err := apt.New(apt.Config{CacheDir: testhost.CacheDir(t)})
	require.NoError(t, err)
	res, err := r.Resolve(context.Background(), depsolve.Request{
		Arch: "amd64", Variant: "essential",
		Repositories: []depsolve.Repository{{ID: "debian", URI: mirrors.Main, Suites: []string{"bookworm"}, Components: []string{"main"}, SignedBy: "/usr/share/keyrings/debian-archive-keyring.gpg"}},
		Packages:     []depsolve.PackageSpec{{Name: "hostname"}, {Name: "apt"}},
	})
	require.NoError(t, err)
	m := &manifest.Manifest{Version: manifest.Version, Target: manifest.Target{Distro: "debian-12", Arch: "x86_64", ImageType: "tree", Name: "t"}}
	for _, r := range res.Repositories {
		m.Sources.Repositories = append(m.Sources.Repositories, manifest.Repository(r))
	}
	for _, p := range res.Packages {
		m.Sources.Debs = append(m.Sources.Debs, manifest.Deb(p))
	}
	m.Pipelines = []manifest.Pipeline{{Name: "os", Produces: "tree", Stages: []manifest.Stage{
		manifest.NewStage(&manifest.DebsInstall{Arch: "amd64", Variant: "essential", Packages: []string{"apt", "hostname"}}),
		manifest.NewStage(&manifest.Hostname{Hostname: hostname}),
	}}}
	m.Output = manifest.Output{Pipeline: "os", Filename: "tree"}
	return m
}

type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Report(e Event) { r.mu.Lock(); r.events = append(r.events, e); r.mu.Unlock() }

func (r *recorder) kinds(stage string) []EventKind {
	var out []EventKind
	for _, e := range r.events {
		if e.Stage == stage && e.Kind != StageStart {
			out = append(out, e.Kind)
		}
	}
	return out
}

// TestBuildTree installs pinned packages for real, then rebuilds with another
// hostname: the package installation comes from the cache.
func TestBuildTree(t *testing.T) {
	testhost.RequireBuildHost(t, HostProblems(nil))
	cache := t.TempDir()
	// Share downloaded packages with other tests of the run.
	require.NoError(t, os.Symlink(filepath.Join(testhost.CacheDir(t), "debs"), filepath.Join(cache, "debs")))
	require.NoError(t, os.MkdirAll(filepath.Join(testhost.CacheDir(t), "debs"), 0o755))

	build := func(m *manifest.Manifest) (*recorder, string) {
		rec := &recorder{}
		e, err := New(Config{CacheDir: cache, Reporter: rec})
		require.NoError(t, err)
		var log bytes.Buffer
		var checked string
		_, err = e.Build(context.Background(), m, &log, func(ctx context.Context, artifact string, _ map[string][]byte) error {
			var out bytes.Buffer
			require.NoError(t, sandbox.Run(ctx, artifact, nil, &out, nil, "/usr/bin/dpkg-query", "-W", "-f", "${Package}\n"))
			hn, err := os.ReadFile(filepath.Join(artifact, "etc/hostname"))
			require.NoError(t, err)
			checked = out.String() + "hostname=" + string(hn)
			return nil
		})
		require.NoError(t, err, log.String())
		return rec, checked
	}

	m := treeManifest(t, "first")
	rec, got := build(m)
	assert.Contains(t, got, "hostname\n")
	assert.Contains(t, got, "apt\n")
	assert.Contains(t, got, "hostname=first\n")
	assert.Equal(t, []EventKind{StageDone}, rec.kinds("kiln.debs.install"))
	n := strings.Count(got, "\n") - 1
	assert.Equal(t, len(m.Sources.Debs), n, "exactly the pinned packages are installed")

	rec, got = build(treeManifest(t, "second"))
	assert.Contains(t, got, "hostname=second\n")
	assert.Equal(t, []EventKind{StageCached}, rec.kinds("kiln.debs.install"), "only the hostname stage runs again")
	assert.Equal(t, []EventKind{StageDone}, rec.kinds("kiln.hostname"))

	rec, _ = build(treeManifest(t, "second"))
	assert.Equal(t, []EventKind{StageCached}, rec.kinds("kiln.hostname"), "nothing changed, nothing runs")

	entries, err := os.ReadDir(filepath.Join(cache, "work"))
	require.NoError(t, err)
	assert.Empty(t, entries, "no work directory is left behind")
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	assert.NotContains(t, string(mounts), cache, "no mount is left behind")
}

func TestCorruptPackageIsFetchedAgain(t *testing.T) {
	testhost.RequireBuildHost(t, HostProblems(nil))
	m := treeManifest(t, "x")
	cache := t.TempDir()
	e, err := New(Config{CacheDir: cache})
	require.NoError(t, err)
	var small manifest.Deb
	for _, d := range m.Sources.Debs {
		if d.Name == "hostname" {
			small = d
		}
	}
	files, err := e.fetchDebs(context.Background(), []manifest.Deb{small})
	require.NoError(t, err)
	p := files[small.SHA256]
	require.NoError(t, os.WriteFile(p, []byte("corrupt"), 0o644))
	files, err = e.fetchDebs(context.Background(), []manifest.Deb{small})
	require.NoError(t, err)
	ok, err := fileHasSHA256(files[small.SHA256], small.SHA256)
	require.NoError(t, err)
	assert.True(t, ok, "the corrupt entry was replaced by a verified download")

	bad := small
	bad.SHA256 = strings.Repeat("0", 64)
	_, err = e.fetchDebs(context.Background(), []manifest.Deb{bad})
	require.ErrorContains(t, err, "checksum mismatch")
	left, _ := filepath.Glob(filepath.Join(cache, "debs", "00", "*"))
	assert.Empty(t, left, "a download that does not match is not kept")
}

func TestStaleWorkDirectoriesAreRemoved(t *testing.T) {
	cache := t.TempDir()
	e, err := New(Config{CacheDir: cache})
	require.NoError(t, err)
	// A build killed with SIGKILL leaves its work directory and an
	// unlocked lock file behind.
	stale := filepath.Join(cache, "work", "deadbeef")
	require.NoError(t, os.MkdirAll(filepath.Join(stale, "tree-os", "etc"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(stale, "work.lock"), nil, 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(cache, "trees", "abc.tmp-1234"), 0o755))
	dir, release, err := e.newWorkDir()
	require.NoError(t, err)
	_, err = os.Stat(stale)
	assert.True(t, os.IsNotExist(err), "the killed build's work directory is gone")
	_, err = os.Stat(filepath.Join(cache, "trees", "abc.tmp-1234"))
	assert.True(t, os.IsNotExist(err), "half-written cache entries are gone")

	// A running build's directory is kept: its lock is held.
	e2, _ := New(Config{CacheDir: cache})
	dir2, release2, err := e2.newWorkDir()
	require.NoError(t, err)
	_, err = os.Stat(dir)
	assert.NoError(t, err, "a running build keeps its work directory")
	release()
	release2()
	_, err = os.Stat(dir2)
	assert.True(t, os.IsNotExist(err))
}

func TestPrepareRejectsBadManifests(t *testing.T) {
	t.Parallel()
	base := func() *manifest.Manifest {
		return &manifest.Manifest{Version: manifest.Version, Pipelines: []manifest.Pipeline{
			{Name: "os", Produces: "tree", Stages: []manifest.Stage{manifest.NewStage(&manifest.Hostname{Hostname: "a"})}},
			{Name: "img", Input: "os", Produces: "file", Filename: "x.raw", Stages: []manifest.Stage{manifest.NewStage(&manifest.Hostname{Hostname: "a"})}},
		}, Output: manifest.Output{Pipeline: "img", Filename: "x.raw"}}
	}
	tests := []struct {
		name string
		edit func(m *manifest.Manifest)
		want string
	}{
		{"file name with a slash", func(m *manifest.Manifest) { m.Pipelines[1].Filename = "../../etc/passwd" }, "is not a file name"},
		{"input from later", func(m *manifest.Manifest) { m.Pipelines[1].Input = "nope" }, "not an earlier pipeline"},
		{"unknown output", func(m *manifest.Manifest) { m.Output.Pipeline = "zzz" }, "does not exist"},
		{"tree with input", func(m *manifest.Manifest) { m.Pipelines[0].Input = "img" }, "start from an empty tree"},
		{"other version", func(m *manifest.Manifest) { m.Version = "9" }, "not supported"},
		{"bad host name", func(m *manifest.Manifest) {
			m.Pipelines[0].Stages = append(m.Pipelines[0].Stages, manifest.NewStage(&manifest.Hostname{Hostname: "-web"}))
		}, `pipeline os: stage 2 (kiln.hostname): hostname: "-web" is not a valid host name`},
		{"bad option in the last pipeline", func(m *manifest.Manifest) {
			m.Pipelines[1].Stages[0] = manifest.NewStage(&manifest.TarArchive{Compression: "lz4"})
		}, `pipeline img: stage 1 (kiln.tar): tar: compression "lz4" is not supported`},
	}
	_, _, err := prepare(base())
	require.NoError(t, err, "the unedited manifest is valid")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := base()
			tc.edit(m)
			_, _, err := prepare(m)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestHostToolsAreNamed(t *testing.T) {
	t.Parallel()
	for _, tool := range Requirements(nil) {
		assert.NotEmpty(t, tool.Package)
		_, err := exec.LookPath(tool.Name)
		assert.NoError(t, err, "%s (from %s) must be installed by scripts/setup", tool.Name, tool.Package)
	}
}

// TestCachedArtifactNeedsNoTree rebuilds an unchanged manifest: the
// artifact comes from the cache and the tree it was made from is neither
// rebuilt nor restored; its facts come from the cache too.
func TestCachedArtifactNeedsNoTree(t *testing.T) {
	testhost.RequireBuildHost(t, HostProblems(nil))
	m := &manifest.Manifest{Version: manifest.Version, Pipelines: []manifest.Pipeline{
		{Name: "os", Produces: "tree", Stages: []manifest.Stage{manifest.NewStage(&manifest.Hostname{Hostname: "cached"})}},
		{Name: "archive", Input: "os", Produces: "file", Filename: "x.tar.xz", Stages: []manifest.Stage{manifest.NewStage(&manifest.TarArchive{Compression: "xz"})}},
	}, Output: manifest.Output{Pipeline: "archive", Filename: "x.tar.xz"}}
	cache := t.TempDir()
	scans := 0
	build := func() (*recorder, []byte) {
		rec := &recorder{}
		e, err := New(Config{CacheDir: cache, Reporter: rec, TreeFacts: func(tree string) ([]byte, error) {
			scans++
			return os.ReadFile(filepath.Join(tree, "etc/hostname"))
		}})
		require.NoError(t, err)
		var got []byte
		_, err = e.Build(context.Background(), m, io.Discard, func(_ context.Context, artifact string, facts map[string][]byte) error {
			_, err := os.Stat(artifact)
			got = facts["os"]
			return err
		})
		require.NoError(t, err)
		return rec, got
	}
	rec, facts := build()
	assert.Equal(t, []EventKind{StageDone}, rec.kinds("kiln.hostname"))
	assert.Equal(t, "cached\n", string(facts))
	rec, facts = build()
	assert.Equal(t, []EventKind{StageCached}, rec.kinds("kiln.hostname"))
	assert.Equal(t, []EventKind{StageCached}, rec.kinds("kiln.tar"))
	for _, e := range rec.events {
		if e.Kind == PipelineStart {
			assert.NotEqual(t, "os", e.Pipeline, "the tree is neither rebuilt nor restored")
		}
	}
	assert.Equal(t, "cached\n", string(facts), "the facts come from the cache")
	assert.Equal(t, 1, scans, "the tree was read once")
}

// Two builds sharing one cache run at once: both succeed with their own
// hostname, the cache ends up with one entry per key and nothing half
// written, and a third build finds everything cached.
func TestConcurrentBuildsShareOneCache(t *testing.T) {
	testhost.RequireBuildHost(t, HostProblems(nil))
	cache := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(testhost.CacheDir(t), "debs"), 0o755))
	require.NoError(t, os.Symlink(filepath.Join(testhost.CacheDir(t), "debs"), filepath.Join(cache, "debs")))

	// Manifests are solved up front: require may not stop the test from
	// the builds' goroutines.
	manifests := map[string]*manifest.Manifest{"alpha": treeManifest(t, "alpha"), "beta": treeManifest(t, "beta")}
	build := func(hostname string) (*recorder, string, error) {
		rec := &recorder{}
		e, err := New(Config{CacheDir: cache, Reporter: rec})
		if err != nil {
			return nil, "", err
		}
		var log bytes.Buffer
		var got []byte
		_, err = e.Build(context.Background(), manifests[hostname], &log, func(_ context.Context, artifact string, _ map[string][]byte) error {
			var err error
			got, err = os.ReadFile(filepath.Join(artifact, "etc/hostname"))
			return err
		})
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, log.String())
		}
		return rec, string(got), err
	}
	var wg sync.WaitGroup
	got := make([]string, 2)
	errs := make([]error, 2)
	for i, h := range []string{"alpha", "beta"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, got[i], errs[i] = build(h)
		}()
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	assert.Equal(t, []string{"alpha\n", "beta\n"}, got)

	entries, err := os.ReadDir(filepath.Join(cache, "trees"))
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.Len(t, names, 3, "one package installation and two finished trees, nothing half written: %v", names)
	work, err := os.ReadDir(filepath.Join(cache, "work"))
	require.NoError(t, err)
	assert.Empty(t, work)

	rec, hn, err := build("alpha")
	require.NoError(t, err)
	assert.Equal(t, "alpha\n", hn)
	assert.Equal(t, []EventKind{StageCached}, rec.kinds("kiln.debs.install"))
	assert.Equal(t, []EventKind{StageCached}, rec.kinds("kiln.hostname"))
}

// Trees in the cache hold the tenants' setuid files, owned by root on
// disk: the cache is closed to every other user, also one an older kiln
// left open.
func TestCacheIsClosedToOtherUsers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	_, err := New(Config{CacheDir: dir})
	require.NoError(t, err)
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
}
