package composetest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/compose"
	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/manifest"
)

type events struct {
	mu   sync.Mutex
	list []engine.Event
}

func (e *events) Report(ev engine.Event) { e.mu.Lock(); e.list = append(e.list, ev); e.mu.Unlock() }

func (e *events) kinds() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.list {
		out = append(out, string(ev.Kind)+" "+ev.Pipeline+" "+ev.Stage)
	}
	return out
}

// The fake writes the files a real build writes, named alike, and reports
// the manifest's stages in the engine's order.
func TestBuilderWritesTheFilesAndReportsTheStages(t *testing.T) {
	m := TarManifest()
	dir := t.TempDir()
	var log bytes.Buffer
	ev := &events{}
	b := &Builder{Size: 4096}
	built, err := b.Build(context.Background(), m, dir, &log, ev)
	require.NoError(t, err)
	assert.Equal(t, compose.OutputFiles(dir, "t.tar.xz"), built.Files)
	assert.Equal(t, "t.tar.xz", built.Filename)

	art, err := os.ReadFile(built.Artifact)
	require.NoError(t, err)
	want, err := Artifact(m, 4096)
	require.NoError(t, err)
	assert.Equal(t, want, art)
	assert.Len(t, art, 4096)
	assert.True(t, strings.HasPrefix(string(art), Magic+"t.tar.xz\n"))
	assert.Contains(t, string(art), `"hostname": "fake"`, "the artifact carries its manifest")
	other := TarManifest()
	other.Pipelines[0].Stages[0] = manifest.NewStage(&manifest.Hostname{Hostname: "other"})
	differs, err := Artifact(other, 4096)
	require.NoError(t, err)
	assert.NotEqual(t, want, differs, "another manifest, another image")

	mb, err := os.ReadFile(built.Manifest)
	require.NoError(t, err)
	parsed, err := manifest.Parse(mb)
	require.NoError(t, err)
	assert.Equal(t, "t.tar.xz", parsed.Output.Filename)
	sb, err := os.ReadFile(built.SBOM)
	require.NoError(t, err)
	assert.Contains(t, string(sb), `"spdxVersion": "SPDX-2.3"`)
	logged, err := os.ReadFile(built.Log)
	require.NoError(t, err)
	assert.Equal(t, "== os: kiln.hostname\n== archive: kiln.tar\n", string(logged))
	assert.Equal(t, string(logged), log.String())

	assert.Equal(t, []string{
		"build-start  ",
		"pipeline-start os ", "stage-start os kiln.hostname", "stage-done os kiln.hostname", "pipeline-done os ",
		"pipeline-start archive ", "stage-start archive kiln.tar", "stage-done archive kiln.tar", "pipeline-done archive ",
		"build-done  ",
	}, ev.kinds())
	assert.Equal(t, 1, b.Builds())
}

// Told to fail at a stage, the fake fails there as the engine does: a
// build-failed event naming it, the error at the end of the log, and no
// files.
func TestBuilderFailsAtTheNamedStage(t *testing.T) {
	dir := t.TempDir()
	var log bytes.Buffer
	ev := &events{}
	b := &Builder{FailAt: "kiln.tar", FailMessage: "tar: exit status 2"}
	_, err := b.Build(context.Background(), TarManifest(), dir, &log, ev)
	require.EqualError(t, err, "archive: stage kiln.tar: tar: exit status 2")
	assert.True(t, strings.HasSuffix(log.String(), "build failed: archive: stage kiln.tar: tar: exit status 2\n"), log.String())
	k := ev.kinds()
	assert.Equal(t, "build-failed archive kiln.tar", k[len(k)-1])
	_, err = os.Stat(compose.OutputFiles(dir, "t.tar.xz").Artifact)
	assert.True(t, os.IsNotExist(err), "no artifact")
}

// Told to fail at a stage with blueprint problems, the fake fails there
// with them, as the check after package installation does: the build's
// error carries them for errors.As, and the build-failed event and the
// log say them.
func TestBuilderFailsWithBlueprintProblems(t *testing.T) {
	problems := blueprint.Errors{
		{Path: "customizations.services.enabled[0]", Message: "no installed unit is called cockpit.socket"},
		{Path: "customizations.user[0].shell", Message: "/bin/zsh is not in the image"},
	}
	var log bytes.Buffer
	ev := &events{}
	b := &Builder{FailAt: "kiln.hostname", FailProblems: problems}
	_, err := b.Build(context.Background(), TarManifest(), t.TempDir(), &log, ev)
	var got blueprint.Errors
	require.ErrorAs(t, err, &got)
	assert.Equal(t, problems, got)
	assert.Contains(t, log.String(), "customizations.user[0].shell: /bin/zsh is not in the image")
	k := ev.kinds()
	assert.Equal(t, "build-failed os kiln.hostname", k[len(k)-1])
}

// A blocked fake waits at its first stage until released, or until its
// context ends.
func TestBuilderBlocksUntilReleased(t *testing.T) {
	b := &Builder{}
	b.Block()
	started := b.Started()
	done := make(chan error, 1)
	go func() {
		_, err := b.Build(context.Background(), TarManifest(), t.TempDir(), nil, nil)
		done <- err
	}()
	assert.Equal(t, "t.tar.xz", <-started)
	select {
	case <-done:
		t.Fatal("the build went on before it was released")
	case <-time.After(200 * time.Millisecond):
	}
	b.Release()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the released build did not end")
	}

	b.Block()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, err := b.Build(ctx, TarManifest(), t.TempDir(), nil, nil)
		done <- err
	}()
	<-started
	cancel()
	select {
	case err := <-done:
		assert.True(t, errors.Is(err, context.Canceled), "%v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the canceled build did not end")
	}
	b.Release()
}

// ParseArtifact gives back the manifest an artifact was built from, at
// any size, and refuses what Artifact did not write or what was changed.
func TestParseArtifactReadsTheManifestBack(t *testing.T) {
	m := TarManifest()
	for _, size := range []int{0, 4096} {
		art, err := Artifact(m, size)
		require.NoError(t, err)
		got, err := ParseArtifact(art)
		require.NoError(t, err, "size %d", size)
		assert.Equal(t, m, got, "size %d", size)
	}

	art, err := Artifact(m, 0)
	require.NoError(t, err)
	_, err = ParseArtifact(append([]byte("not-"), art...))
	assert.ErrorContains(t, err, "not a fake image")
	changed := bytes.Replace(art, []byte(`"hostname": "fake"`), []byte(`"hostname": "fakf"`), 1)
	require.NotEqual(t, art, changed)
	_, err = ParseArtifact(changed)
	assert.ErrorContains(t, err, "SHA-256")
	renamed := bytes.Replace(art, []byte(Magic+"t.tar.xz\n"), []byte(Magic+"u.tar.xz\n"), 1)
	_, err = ParseArtifact(renamed)
	assert.ErrorContains(t, err, `the header names "u.tar.xz"`)
	_, err = ParseArtifact(art[:len(art)-10])
	assert.ErrorContains(t, err, "does not end")
}
