package compose

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/manifest"
	"github.com/kiln-project/kiln/internal/testhost"
)

func TestOutputFilesDropTheImageExtension(t *testing.T) {
	for filename, base := range map[string]string{
		"web-debian-12-x86_64.tar.xz": "web-debian-12-x86_64",
		"web-debian-12-x86_64.qcow2":  "web-debian-12-x86_64",
		"web-debian-12-x86_64.iso":    "web-debian-12-x86_64",
		"rootfs":                      "rootfs",
	} {
		f := OutputFiles("out", filename)
		assert.Equal(t, Files{
			Artifact: filepath.Join("out", filename),
			Manifest: filepath.Join("out", base+".manifest.json"),
			SBOM:     filepath.Join("out", base+".spdx.json"),
			Log:      filepath.Join("out", base+".build.log"),
		}, f, filename)
	}
}

func TestParseEpoch(t *testing.T) {
	e, err := ParseEpoch("")
	require.NoError(t, err)
	assert.Nil(t, e, "no SOURCE_DATE_EPOCH: the manifest's own epoch")
	e, err = ParseEpoch("1700000000")
	require.NoError(t, err)
	require.NotNil(t, e)
	assert.Equal(t, time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC), *e)
	_, err = ParseEpoch("yesterday")
	assert.ErrorContains(t, err, `SOURCE_DATE_EPOCH="yesterday" is not a number of seconds`)
}

// hostnameTar is a manifest with no packages: a tree with a hostname,
// archived as an xz tar.
func hostnameTar(filename string) *manifest.Manifest {
	return &manifest.Manifest{Version: manifest.Version,
		Target: manifest.Target{Distro: "debian-12", Arch: "x86_64", ImageType: "tar", Name: "t"},
		Pipelines: []manifest.Pipeline{
			{Name: "os", Produces: "tree", Stages: []manifest.Stage{manifest.NewStage(&manifest.Hostname{Hostname: "built"})}},
			{Name: "archive", Input: "os", Produces: "file", Filename: filename, Stages: []manifest.Stage{manifest.NewStage(&manifest.TarArchive{Compression: "xz"})}},
		},
		Output: manifest.Output{Pipeline: "archive", Filename: filename},
	}
}

// Build refuses to replace what is there before anything runs, unless
// told to.
func TestBuildRefusesToReplaceFiles(t *testing.T) {
	dir := t.TempDir()
	m := hostnameTar("x.tar.xz")
	existing := filepath.Join(dir, "x.spdx.json")
	require.NoError(t, os.WriteFile(existing, []byte("keep me"), 0o644))
	_, err := Build(context.Background(), m, BuildOptions{CacheDir: t.TempDir(), Dir: dir})
	require.ErrorIs(t, err, ErrExists)
	assert.Contains(t, err.Error(), existing+" exists already")
	b, err := os.ReadFile(existing)
	require.NoError(t, err)
	assert.Equal(t, "keep me", string(b))
	_, err = os.Stat(filepath.Join(dir, "x.build.log"))
	assert.True(t, os.IsNotExist(err), "not even a log is started")
}

// A build that fails writes its error at the end of the log file and of
// the log it streams, and no artifact, manifest or SBOM.
func TestFailedBuildLogsItsErrorAndWritesNoFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	m := hostnameTar("x.tar.xz")
	m.Pipelines[1].Input = "nowhere"
	var streamed bytes.Buffer
	_, err := Build(context.Background(), m, BuildOptions{CacheDir: t.TempDir(), Dir: dir, Log: &streamed})
	require.Error(t, err)
	files := OutputFiles(dir, "x.tar.xz")
	logged, rerr := os.ReadFile(files.Log)
	require.NoError(t, rerr)
	assert.Equal(t, "build failed: "+err.Error()+"\n", string(logged))
	assert.Equal(t, string(logged), streamed.String(), "the streamed log is the log file")
	for _, p := range []string{files.Artifact, files.Manifest, files.SBOM} {
		_, err := os.Stat(p)
		assert.True(t, os.IsNotExist(err), p)
	}
}

// A real (package-free) build writes the artifact, the manifest, the SBOM
// dated by the epoch given, and the log; without an epoch the SBOM takes
// the manifest's own.
func TestBuildWritesEveryFile(t *testing.T) {
	testhost.RequireBuildHost(t, engine.HostProblems(nil))
	cache := t.TempDir()
	m := hostnameTar("x.tar.xz")
	m.Sources.Repositories = []manifest.Repository{{ID: "debian", Date: "Sat, 09 Nov 2024 10:00:00 UTC"}}
	epoch := time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC)
	for _, tc := range []struct {
		epoch   *time.Time
		created string
	}{
		{&epoch, "2023-11-14T22:13:20Z"},
		{nil, "2024-11-09T10:00:00Z"},
	} {
		dir := t.TempDir()
		var events []string
		built, err := Build(context.Background(), m, BuildOptions{CacheDir: cache, Dir: dir, Epoch: tc.epoch,
			Progress: engine.ReporterFunc(func(ev engine.Event) { events = append(events, string(ev.Kind)) })})
		require.NoError(t, err)
		assert.Equal(t, OutputFiles(dir, "x.tar.xz"), built.Files)
		assert.Equal(t, "x.tar.xz", built.Filename)
		assert.Contains(t, events, "build-done")

		head := make([]byte, 6)
		f, err := os.Open(built.Artifact)
		require.NoError(t, err)
		_, err = f.Read(head)
		f.Close()
		require.NoError(t, err)
		assert.Equal(t, "\xfd7zXZ\x00", string(head), "an xz-compressed tar")

		mb, err := os.ReadFile(built.Manifest)
		require.NoError(t, err)
		want, err := m.Marshal()
		require.NoError(t, err)
		assert.Equal(t, want, mb)

		var doc struct {
			SPDXVersion  string `json:"spdxVersion"`
			CreationInfo struct {
				Created string `json:"created"`
			} `json:"creationInfo"`
		}
		sb, err := os.ReadFile(built.SBOM)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(sb, &doc))
		assert.Equal(t, "SPDX-2.3", doc.SPDXVersion)
		assert.Equal(t, tc.created, doc.CreationInfo.Created)
		_, err = os.Stat(built.Log)
		assert.NoError(t, err)
	}
}
