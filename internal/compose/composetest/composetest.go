// Package composetest is a stand-in for the image builder, for tests of
// what surrounds a build (the queue, failover, the service, the web UI)
// that need an image to exist but not to be real. Its Builder writes, in
// a moment and without root, the same files a real build writes: a small
// deterministic artifact, the manifest, an SBOM and a build log; and it
// reports the manifest's stages as the engine would.
package composetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/compose"
	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/manifest"
	"github.com/kiln-project/kiln/internal/sbom"
)

// Magic starts every artifact the Builder writes.
const Magic = "kiln-fake-image\n"

// Builder builds fake images. Its zero value builds at once. It is safe
// for concurrent use; set its fields before the first build.
type Builder struct {
	// StageTime is how long each stage takes.
	StageTime time.Duration
	// Size is the artifact's size in bytes, at least what Artifact needs
	// for its header. Zero: just the header.
	Size int
	// FailAt names a stage type ("kiln.hostname"): a build fails there,
	// the way the engine fails a stage, with FailMessage (default "exit
	// status 1").
	FailAt      string
	FailMessage string
	// FailProblems, when set with FailAt, is the error the stage fails
	// with instead: what the check after package installation returns
	// when the image lacks what the blueprint asks for, reachable from
	// the build's error with errors.As.
	FailProblems blueprint.Errors

	mu      sync.Mutex
	gate    chan struct{} // while non-nil and open, builds wait at their first stage
	started chan string
	builds  int
}

// Block makes builds wait at their first stage until Release is called
// or their context ends.
func (b *Builder) Block() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.gate == nil {
		b.gate = make(chan struct{})
	}
}

// Release lets blocked builds go on, and later ones run freely.
func (b *Builder) Release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.gate != nil {
		close(b.gate)
		b.gate = nil
	}
}

// Started receives the output filename of each build as it starts
// (dropped when nobody reads at that moment and the buffer of 16 is full).
func (b *Builder) Started() <-chan string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started == nil {
		b.started = make(chan string, 16)
	}
	return b.started
}

// Builds is how many builds started.
func (b *Builder) Builds() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.builds
}

// Artifact is the content of the artifact built from m with the given
// size: Magic, the output filename, the SHA-256 of the manifest and the
// manifest itself, each on its own line, padded with a repeating pattern
// to size bytes.
func Artifact(m *manifest.Manifest, size int) ([]byte, error) {
	mb, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(mb)
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%s%s\n%s\n%s\n", Magic, m.Output.Filename, hex.EncodeToString(sum[:]), mb)
	for i := 0; buf.Len() < size; i++ {
		buf.WriteByte(byte(i % 251))
	}
	return buf.Bytes(), nil
}

// ParseArtifact reads an artifact Artifact wrote and returns the manifest
// it carries, after checking its header, that the manifest's SHA-256 is
// the one recorded and that it names the artifact's filename: what a test
// that downloaded a fake image checks the build was asked for.
func ParseArtifact(data []byte) (*manifest.Manifest, error) {
	rest, ok := bytes.CutPrefix(data, []byte(Magic))
	if !ok {
		return nil, fmt.Errorf("not a fake image: it does not start with %q", Magic)
	}
	filename, rest, ok := bytes.Cut(rest, []byte("\n"))
	if !ok {
		return nil, errors.New("fake image: no filename line")
	}
	sum, rest, ok := bytes.Cut(rest, []byte("\n"))
	if !ok {
		return nil, errors.New("fake image: no checksum line")
	}
	// Marshal indents the manifest and ends it with a newline, so its
	// closing brace is the only one at the start of a line (JSON strings
	// hold no raw newlines).
	end := bytes.Index(rest, []byte("\n}\n"))
	if end < 0 {
		return nil, errors.New("fake image: the manifest does not end")
	}
	mb := rest[:end+3]
	got := sha256.Sum256(mb)
	if hex.EncodeToString(got[:]) != string(sum) {
		return nil, fmt.Errorf("fake image: the manifest's SHA-256 is %x, the header says %s", got, sum)
	}
	m, err := manifest.Parse(mb)
	if err != nil {
		return nil, fmt.Errorf("fake image: %w", err)
	}
	if m.Output.Filename != string(filename) {
		return nil, fmt.Errorf("fake image: the header names %q, the manifest %q", filename, m.Output.Filename)
	}
	return m, nil
}

// Build writes the fake image of m and its files into dir, reporting each
// of the manifest's stages to progress and writing a line for each to log.
// It implements worker.Builder.
func (b *Builder) Build(ctx context.Context, m *manifest.Manifest, dir string, log io.Writer, progress engine.Reporter) (*compose.Built, error) {
	if progress == nil {
		progress = engine.ReporterFunc(func(engine.Event) {})
	}
	b.mu.Lock()
	b.builds++
	gate, started := b.gate, b.started
	b.mu.Unlock()
	if started != nil {
		select {
		case started <- m.Output.Filename:
		default:
		}
	}
	out := compose.OutputFiles(dir, m.Output.Filename)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	logFile, err := os.Create(out.Log)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	if log == nil {
		log = io.Discard
	}
	log = io.MultiWriter(logFile, log)

	err = b.run(ctx, m, log, progress, gate)
	if err != nil {
		fmt.Fprintf(log, "build failed: %v\n", err)
		return nil, err
	}
	art, err := Artifact(m, b.Size)
	if err != nil {
		return nil, err
	}
	mb, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	sb, err := sbom.New(m, nil, engine.ManifestEpoch(m)).Marshal()
	if err != nil {
		return nil, err
	}
	for p, data := range map[string][]byte{out.Artifact: art, out.Manifest: mb, out.SBOM: sb} {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return nil, err
		}
	}
	return &compose.Built{Files: out, Filename: m.Output.Filename}, nil
}

// run reports the manifest's pipelines and stages as the engine does,
// waiting StageTime for each, at the gate before the first, and failing
// at FailAt.
func (b *Builder) run(ctx context.Context, m *manifest.Manifest, log io.Writer, progress engine.Reporter, gate chan struct{}) error {
	start := time.Now()
	report := func(ev engine.Event) {
		ev.Time = time.Now()
		progress.Report(ev)
	}
	total := 0
	for _, p := range m.Pipelines {
		total += len(p.Stages)
	}
	report(engine.Event{Kind: engine.BuildStart, Total: total})
	index := 0
	for _, p := range m.Pipelines {
		report(engine.Event{Kind: engine.PipelineStart, Pipeline: p.Name, Total: total})
		for _, st := range p.Stages {
			index++
			report(engine.Event{Kind: engine.StageStart, Pipeline: p.Name, Stage: st.Type, Index: index, Total: total})
			fmt.Fprintf(log, "== %s: %s\n", p.Name, st.Type)
			began := time.Now()
			if gate != nil {
				select {
				case <-gate:
				case <-ctx.Done():
				}
				gate = nil
			}
			if b.StageTime > 0 {
				select {
				case <-time.After(b.StageTime):
				case <-ctx.Done():
				}
			}
			err := ctx.Err()
			if err == nil && st.Type == b.FailAt {
				msg := b.FailMessage
				if msg == "" {
					msg = "exit status 1"
				}
				err = fmt.Errorf("%s", msg)
				if len(b.FailProblems) > 0 {
					err = b.FailProblems
				}
			}
			if err != nil {
				report(engine.Event{Kind: engine.BuildFailed, Pipeline: p.Name, Stage: st.Type, Index: index, Total: total, Message: err.Error()})
				return fmt.Errorf("%s: stage %s: %w", p.Name, st.Type, err)
			}
			report(engine.Event{Kind: engine.StageDone, Pipeline: p.Name, Stage: st.Type, Index: index, Total: total, Elapsed: time.Since(began)})
		}
		report(engine.Event{Kind: engine.PipelineDone, Pipeline: p.Name, Total: total})
	}
	report(engine.Event{Kind: engine.BuildDone, Total: total, Elapsed: time.Since(start)})
	return nil
}

// TarManifest is a small manifest of two pipelines (a tree with a host
// name, then its xz tar t.tar.xz): what a fake build needs to report
// stages and name its artifact, for tests of what surrounds a build.
func TarManifest() *manifest.Manifest {
	return &manifest.Manifest{Version: manifest.Version,
		Target: manifest.Target{Distro: "debian-12", Arch: "x86_64", ImageType: "tar", Name: "t"},
		Pipelines: []manifest.Pipeline{
			{Name: "os", Produces: "tree", Stages: []manifest.Stage{manifest.NewStage(&manifest.Hostname{Hostname: "fake"})}},
			{Name: "archive", Input: "os", Produces: "file", Filename: "t.tar.xz", Stages: []manifest.Stage{manifest.NewStage(&manifest.TarArchive{Compression: "xz"})}},
		},
		Output: manifest.Output{Pipeline: "archive", Filename: "t.tar.xz"},
	}
}
