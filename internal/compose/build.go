package compose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/manifest"
	"github.com/kiln-project/kiln/internal/sbom"
)

// Files are the paths of what a build writes for one artifact.
type Files struct {
	Artifact string // the image
	Manifest string // the manifest it was built from
	SBOM     string // its SPDX 2.3 software bill of materials
	Log      string // the full build log
}

// artifactExts are the artifact extensions the other files' names drop.
var artifactExts = []string{".tar.xz", ".tar.gz", ".tar.zst", ".tar", ".qcow2", ".raw", ".vmdk", ".vhd", ".iso"}

// OutputFiles names the files a build of the artifact filename writes in
// dir: the artifact itself, and <base>.manifest.json, <base>.spdx.json and
// <base>.build.log beside it, where base is filename without its image
// extension.
func OutputFiles(dir, filename string) Files {
	base := filename
	for _, ext := range artifactExts {
		if strings.HasSuffix(base, ext) {
			base = strings.TrimSuffix(base, ext)
			break
		}
	}
	return Files{
		Artifact: filepath.Join(dir, filename),
		Manifest: filepath.Join(dir, base+".manifest.json"),
		SBOM:     filepath.Join(dir, base+".spdx.json"),
		Log:      filepath.Join(dir, base+".build.log"),
	}
}

// ErrExists is wrapped by Build's error when an output file exists and
// BuildOptions.Replace is not set.
var ErrExists = errors.New("exists already")

// BuildOptions configure Build.
type BuildOptions struct {
	// CacheDir is the engine's cache. Required.
	CacheDir string
	// Dir is the directory the files are written to; it is created if
	// missing.
	Dir string
	// Replace lets the build replace an artifact, manifest or SBOM that
	// exists already. Without it Build refuses before doing anything.
	Replace bool
	// Epoch, when set, is written wherever a time would be (the
	// SOURCE_DATE_EPOCH of reproducible builds). Nil: the manifest's own
	// epoch, the newest Release date of its repositories.
	Epoch *time.Time
	// Progress receives the engine's events. Default: none.
	Progress engine.Reporter
	// Log, when set, receives the build log as it is written, besides the
	// log file.
	Log io.Writer
	// Logger receives the engine's own messages. Default: discarded.
	Logger *slog.Logger
}

// Built is what a build wrote, every file complete.
type Built struct {
	Files
	// Filename is the artifact's file name, the manifest's output.
	Filename string
}

// Build runs the second half of the flow for one manifest: the engine
// builds the image, then its SBOM, the manifest and the artifact are
// written into opts.Dir, each under a temporary name and renamed into
// place, so that the directory never holds a half-written file. The build
// log is written as the build goes. A failed build's log ends with the
// error.
func Build(ctx context.Context, m *manifest.Manifest, opts BuildOptions) (*Built, error) {
	out := OutputFiles(opts.Dir, m.Output.Filename)
	if !opts.Replace {
		for _, p := range []string{out.Artifact, out.Manifest, out.SBOM} {
			if _, err := os.Stat(p); err == nil {
				return nil, fmt.Errorf("%s %w", p, ErrExists)
			}
		}
	}
	mb, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	logFile, err := os.Create(out.Log)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	var log io.Writer = logFile
	if opts.Log != nil {
		log = io.MultiWriter(logFile, opts.Log)
	}
	eng, err := engine.New(engine.Config{CacheDir: opts.CacheDir, Epoch: opts.Epoch, Reporter: opts.Progress, Log: opts.Logger, TreeFacts: sbom.ScanLicenses})
	if err == nil {
		_, err = eng.Build(ctx, m, log, func(ctx context.Context, artifact string, facts map[string][]byte) error {
			doc := sbom.New(m, facts["os"], epochOf(opts.Epoch, m))
			sb, err := doc.Marshal()
			if err != nil {
				return err
			}
			if err := writeAtomic(out.SBOM, sb); err != nil {
				return err
			}
			if err := writeAtomic(out.Manifest, mb); err != nil {
				return err
			}
			copied, err := placeArtifact(ctx, opts.CacheDir, artifact, out.Artifact)
			if err == nil && !copied {
				fmt.Fprintf(log, "== %s is already the cached artifact (unchanged since kiln copied it): kept\n", out.Artifact)
			}
			return err
		})
	}
	if err != nil {
		fmt.Fprintf(log, "build failed: %v\n", err)
		return nil, err
	}
	return &Built{Files: out, Filename: m.Output.Filename}, nil
}

// epochOf is the time a build writes: the one given, else the manifest's.
func epochOf(given *time.Time, m *manifest.Manifest) time.Time {
	if given != nil {
		return given.UTC()
	}
	return engine.ManifestEpoch(m)
}

// ParseEpoch reads a SOURCE_DATE_EPOCH value, a number of seconds since
// 1970. The empty string is no epoch (nil).
func ParseEpoch(v string) (*time.Time, error) {
	if v == "" {
		return nil, nil
	}
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds", v)
	}
	t := time.Unix(sec, 0).UTC()
	return &t, nil
}

// writeAtomic writes a file under a temporary name and renames it, so a
// reader (or a full disk) never leaves a half-written file behind.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Engine builds with the real engine: it is what the service's workers
// build with unless they are given another builder.
type Engine struct {
	// CacheDir is the engine's cache. Required.
	CacheDir string
	// Epoch, when set, replaces the manifest's own epoch (see
	// BuildOptions.Epoch).
	Epoch *time.Time
	// Logger receives the engine's own messages.
	Logger *slog.Logger
}

// Build builds m into dir with compose.Build, writing the build log to
// log and the engine's events to progress.
func (e Engine) Build(ctx context.Context, m *manifest.Manifest, dir string, log io.Writer, progress engine.Reporter) (*Built, error) {
	return Build(ctx, m, BuildOptions{CacheDir: e.CacheDir, Dir: dir, Replace: true, Epoch: e.Epoch, Progress: progress, Log: log, Logger: e.Logger})
}
