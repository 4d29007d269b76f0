// Package engine runs a manifest: it fetches and verifies the pinned
// packages, runs each pipeline's stages (internal/engine/stages) in order,
// caches what it can under the hash of everything that produced it, and
// writes the artifact, the manifest, an SPDX SBOM and the build log.
package engine

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kiln-project/kiln/internal/engine/stages"
	"github.com/kiln-project/kiln/internal/manifest"
)

// Config configures an Engine. The zero value of each field means its
// default.
type Config struct {
	// CacheDir holds downloads, cached trees and files, and work
	// directories. Required.
	CacheDir string
	// Downloads is how many packages are fetched at once. Default 4.
	Downloads int
	// Epoch is written wherever a time would be (SOURCE_DATE_EPOCH). Nil
	// means the newest Release date of the manifest's repositories.
	Epoch *time.Time
	// Reporter receives progress events. Default: none.
	Reporter Reporter
	// Log receives the engine's own messages. Default: discarded.
	Log *slog.Logger
	// HTTPTimeout bounds each package download. Default 10 minutes.
	HTTPTimeout time.Duration
	// TreeFacts, when set, extracts what the caller needs from each tree
	// pipeline's finished tree (the SBOM's licenses). Its result is cached
	// with the tree, so a build whose artifact comes from the cache needs
	// no tree at all.
	TreeFacts func(tree string) ([]byte, error)
}

// WithDefaults fills the unset fields.
func (c Config) WithDefaults() Config {
	if c.Downloads <= 0 {
		c.Downloads = 4
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Reporter == nil {
		c.Reporter = ReporterFunc(func(Event) {})
	}
	if c.HTTPTimeout <= 0 {
		c.HTTPTimeout = 10 * time.Minute
	}
	return c
}

// Engine builds images.
type Engine struct {
	cfg  Config
	http *http.Client
	// build identifies this kiln binary: cached trees and files made by
	// another build of kiln are not reused, since the stages that made
	// them may have changed.
	build string
}

// New returns an engine.
func New(cfg Config) (*Engine, error) {
	cfg = cfg.WithDefaults()
	if cfg.CacheDir == "" {
		return nil, errors.New("engine: a cache directory is required")
	}
	if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the cache directory: %w", err)
	}
	// The cache holds image trees with the tenants' setuid files owned by
	// root: nobody but root may reach into it (a cache made by an older
	// kiln is closed too).
	if err := os.Chmod(cfg.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("closing the cache directory to other users: %w", err)
	}
	build, err := executableID()
	if err != nil {
		return nil, err
	}
	return &Engine{cfg: cfg, http: &http.Client{Timeout: cfg.HTTPTimeout}, build: build}, nil
}

// executableID is the SHA-256 of the running binary.
func executableID() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the kiln binary: %w", err)
	}
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("reading the kiln binary: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading the kiln binary: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (e *Engine) report(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	e.cfg.Reporter.Report(ev)
}

// Result is a finished build.
type Result struct {
	// Elapsed is the build's wall time.
	Elapsed time.Duration
}

// Output is called once the artifact exists: it copies the artifact into
// place. The artifact is read-only (it is usually the cache's own copy)
// and is gone or shared once Output returns. facts maps each tree pipeline's name to what Config.TreeFacts
// extracted from its tree.
type Output func(ctx context.Context, artifact string, facts map[string][]byte) error

// checkpoints are the stage types after which a tree is cached: the
// expensive ones, so that changing a later stage's options reruns only
// what follows.
var checkpoints = map[string]bool{
	manifest.DebsInstall{}.StageType(): true,
	manifest.Initramfs{}.StageType():   true,
}

// Build runs the manifest, writing the tools' output to log, and calls
// out with the artifact before cleaning up.
func (e *Engine) Build(ctx context.Context, m *manifest.Manifest, log io.Writer, out Output) (*Result, error) {
	start := time.Now()
	runners, total, err := prepare(m)
	if err != nil {
		return nil, err
	}
	if err := checkHost(m); err != nil {
		return nil, err
	}
	unlock, err := lockCache(e.cfg.CacheDir, false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	work, release, err := e.newWorkDir()
	if err != nil {
		return nil, err
	}
	defer release()

	e.report(Event{Kind: BuildStart, Total: total, Message: m.Output.Filename})
	epoch := e.epoch(m)

	// Every key is known before anything runs: a pipeline's chain starts
	// from its input's last key.
	stageKeys := make([][]string, len(m.Pipelines))
	last := map[string]string{}
	for pi, p := range m.Pipelines {
		k := pipelineKey(fmt.Sprintf("%s epoch %d", e.build, epoch.Unix()), p, last)
		for _, s := range p.Stages {
			k = stageKey(k, s, m)
			stageKeys[pi] = append(stageKeys[pi], k)
		}
		last[p.Name] = k
	}
	// Only what the artifact needs is built or restored: a pipeline whose
	// output is cached needs nothing before it.
	outputs := map[string]string{} // pipeline → its tree dir or file
	needed := map[string]bool{m.Output.Pipeline: true}
	for pi := len(m.Pipelines) - 1; pi >= 0; pi-- {
		p := m.Pipelines[pi]
		if !needed[p.Name] {
			continue
		}
		if p.Produces == "file" {
			if f, ok := e.cachedFile(last[p.Name], p.Filename); ok {
				outputs[p.Name] = f
				continue
			}
		} else if t, ok := e.cachedTree(last[p.Name]); ok {
			outputs[p.Name] = t
			continue
		}
		if p.Input != "" {
			needed[p.Input] = true
		}
		for _, x := range p.Extra {
			needed[x] = true
		}
	}
	facts := map[string][]byte{}
	for _, p := range m.Pipelines {
		if p.Produces == "tree" && outputs[p.Name] == "" && e.cfg.TreeFacts != nil {
			b, err := os.ReadFile(e.factsPath(last[p.Name]))
			if err != nil {
				needed[p.Name] = true // the facts must come from the tree itself
				continue
			}
			facts[p.Name] = b
		}
	}

	var debFiles map[string]string
	index := 0
	for pi, p := range m.Pipelines {
		if !needed[p.Name] || outputs[p.Name] != "" {
			for _, s := range p.Stages {
				index++
				e.report(Event{Kind: StageCached, Pipeline: p.Name, Stage: s.Type, Index: index, Total: total})
			}
			if p.Produces == "tree" && outputs[p.Name] != "" {
				if err := e.readFacts(p.Name, last[p.Name], outputs[p.Name], facts); err != nil {
					return nil, err
				}
			}
			continue
		}
		e.report(Event{Kind: PipelineStart, Pipeline: p.Name})
		keys := stageKeys[pi]
		var dir, file string
		if p.Produces == "tree" {
			dir = filepath.Join(work, "tree-"+p.Name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, err
			}
		} else {
			file = filepath.Join(work, "file-"+p.Name, p.Filename)
			if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
				return nil, err
			}
		}

		// Resume from the furthest checkpoint in the cache. The entries
		// this tree shares files with are checked again once it is done.
		resume := 0
		var linked []string
		if p.Produces == "tree" {
			for i := len(p.Stages) - 2; i >= 0; i-- {
				if !checkpoints[p.Stages[i].Type] {
					continue
				}
				ok, err := e.restoreTree(ctx, keys[i], dir)
				if err != nil {
					return nil, err
				}
				if ok {
					resume = i + 1
					linked = append(linked, keys[i])
					break
				}
			}
		}
		for i, s := range p.Stages {
			index++
			ev := Event{Pipeline: p.Name, Stage: s.Type, Index: index, Total: total}
			if i < resume {
				ev.Kind = StageCached
				e.report(ev)
				continue
			}
			if s.Type == (manifest.DebsInstall{}).StageType() && debFiles == nil {
				var err error
				if debFiles, err = e.fetchDebs(ctx, m.Sources.Debs); err != nil {
					return nil, err
				}
			}
			ev.Kind = StageStart
			e.report(ev)
			t0 := time.Now()
			fmt.Fprintf(log, "== %s: %s\n", p.Name, s.Type)
			scratch := filepath.Join(work, fmt.Sprintf("scratch-%d-%d", pi, i))
			if err := os.MkdirAll(scratch, 0o755); err != nil {
				return nil, err
			}
			env := &stages.Env{
				Tree: dir, Work: scratch, Debs: m.Sources.Debs, DebFiles: debFiles, Epoch: epoch, Log: log,
			}
			if dir != "" {
				env.Chroot, env.Sandbox = stages.Sandboxed(dir, log, sourceDateEnv(epoch))
			} else {
				env.Input, env.Output = outputs[p.Input], file
				if len(p.Extra) > 0 {
					env.Extra = map[string]string{}
					for _, x := range p.Extra {
						env.Extra[x] = outputs[x]
					}
				}
			}
			if err := runners[pi][i].Run(ctx, env); err != nil {
				e.report(Event{Kind: BuildFailed, Pipeline: p.Name, Stage: s.Type, Message: err.Error()})
				return nil, fmt.Errorf("%s: stage %s: %w", p.Name, s.Type, err)
			}
			os.RemoveAll(scratch)
			if dir != "" && checkpoints[s.Type] && i < len(p.Stages)-1 {
				if err := e.storeTree(ctx, keys[i], dir); err != nil {
					e.cfg.Log.Warn("could not cache the tree", "stage", s.Type, "err", err)
				} else {
					linked = append(linked, keys[i])
				}
			}
			ev.Kind, ev.Elapsed = StageDone, time.Since(t0)
			e.report(ev)
		}
		// The finished output moves into the cache and is read there.
		var err error
		if dir != "" {
			e.verifyLinked(linked)
			outputs[p.Name], err = e.moveTree(last[p.Name], dir)
		} else {
			outputs[p.Name], err = e.storeFile(last[p.Name], p.Filename, file)
		}
		if err != nil {
			e.cfg.Log.Warn("could not cache the pipeline's output", "pipeline", p.Name, "err", err)
		}
		if dir != "" {
			if err := e.readFacts(p.Name, last[p.Name], outputs[p.Name], facts); err != nil {
				return nil, err
			}
		}
		e.report(Event{Kind: PipelineDone, Pipeline: p.Name})
	}
	artifact := outputs[m.Output.Pipeline]
	if err := out(ctx, artifact, facts); err != nil {
		return nil, err
	}
	res := &Result{Elapsed: time.Since(start)}
	fmt.Fprintf(log, "== built %s in %.1fs; kiln's own peak memory %s (the tools it ran are separate processes)\n",
		m.Output.Filename, res.Elapsed.Seconds(), peakRSS())
	e.report(Event{Kind: BuildDone, Message: m.Output.Filename, Elapsed: res.Elapsed})
	return res, nil
}

// readFacts fills facts[name] from the tree entry's facts, or from the
// tree itself (saving them when the tree is in the cache).
func (e *Engine) readFacts(name, key, tree string, facts map[string][]byte) error {
	if e.cfg.TreeFacts == nil {
		return nil
	}
	if b, err := os.ReadFile(e.factsPath(key)); err == nil {
		facts[name] = b
		return nil
	}
	b, err := e.cfg.TreeFacts(tree)
	if err != nil {
		return fmt.Errorf("%s: reading the finished tree: %w", name, err)
	}
	facts[name] = b
	if tree == e.treePath(key) {
		if err := writeFileAtomic(e.factsPath(key), b); err != nil {
			e.cfg.Log.Warn("could not cache the tree's facts", "pipeline", name, "err", err)
		}
	}
	return nil
}

// prepare checks the pipelines and builds and validates every stage
// before any runs, so a manifest with a bad stage fails before anything
// is downloaded, naming the pipeline, the stage and the field.
func prepare(m *manifest.Manifest) ([][]stages.Stage, int, error) {
	if m.Version != manifest.Version {
		return nil, 0, fmt.Errorf("manifest version %q is not supported", m.Version)
	}
	seen := map[string]string{}
	var out [][]stages.Stage
	total := 0
	for _, p := range m.Pipelines {
		switch p.Produces {
		case "tree":
		case "file":
			if p.Filename == "" || strings.ContainsAny(p.Filename, "/\x00") || p.Filename == "." || p.Filename == ".." {
				return nil, 0, fmt.Errorf("pipeline %s: %q is not a file name", p.Name, p.Filename)
			}
			if seen[p.Input] == "" {
				return nil, 0, fmt.Errorf("pipeline %s: input %q is not an earlier pipeline", p.Name, p.Input)
			}
			if len(p.Stages) != 1 {
				return nil, 0, fmt.Errorf("pipeline %s: a file pipeline has exactly one stage, not %d", p.Name, len(p.Stages))
			}
		default:
			return nil, 0, fmt.Errorf("pipeline %s: produces %q (expected tree or file)", p.Name, p.Produces)
		}
		if p.Produces == "tree" && (p.Input != "" || len(p.Extra) > 0) {
			return nil, 0, fmt.Errorf("pipeline %s: tree pipelines start from an empty tree", p.Name)
		}
		for _, x := range p.Extra {
			if seen[x] == "" {
				return nil, 0, fmt.Errorf("pipeline %s: extra input %q is not an earlier pipeline", p.Name, x)
			}
		}
		var row []stages.Stage
		for i, s := range p.Stages {
			st, err := stages.Check(s)
			if err != nil {
				return nil, 0, fmt.Errorf("pipeline %s: stage %d (%s): %w", p.Name, i+1, s.Type, err)
			}
			row = append(row, st)
			total++
		}
		out = append(out, row)
		seen[p.Name] = p.Produces
	}
	if seen[m.Output.Pipeline] == "" {
		return nil, 0, fmt.Errorf("the output pipeline %q does not exist", m.Output.Pipeline)
	}
	return out, total, nil
}

// pipelineKey starts a pipeline's chain of cache keys from its input's.
func pipelineKey(build string, p manifest.Pipeline, keys map[string]string) string {
	h := sha256.New()
	fmt.Fprintf(h, "kiln %s\npipeline %q %q %q\ninput %s\n", build, p.Name, p.Produces, p.Filename, keys[p.Input])
	for _, x := range p.Extra {
		fmt.Fprintf(h, "extra %q %s\n", x, keys[x])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// stageKey chains a stage onto the key before it: its type, its options
// and, for the package installation, every package's checksum.
func stageKey(prev string, s manifest.Stage, m *manifest.Manifest) string {
	h := sha256.New()
	opts, _ := json.Marshal(s.Options)
	fmt.Fprintf(h, "%s\n%s\n%s\n", prev, s.Type, opts)
	if s.Type == (manifest.DebsInstall{}).StageType() {
		for _, d := range m.Sources.Debs {
			fmt.Fprintf(h, "%s %s\n", d.Name, d.SHA256)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// epoch is SOURCE_DATE_EPOCH, else ManifestEpoch.
func (e *Engine) epoch(m *manifest.Manifest) time.Time {
	if e.cfg.Epoch != nil {
		return e.cfg.Epoch.UTC()
	}
	return ManifestEpoch(m)
}

// ManifestEpoch is the newest Release date of the manifest's repositories,
// else the Unix epoch: never the wall clock, so a manifest alone decides
// every timestamp of its image.
func ManifestEpoch(m *manifest.Manifest) time.Time {
	var newest time.Time
	for _, r := range m.Sources.Repositories {
		for _, layout := range []string{time.RFC1123, time.RFC1123Z, "Mon, 2 Jan 2006 15:04:05 MST"} {
			if t, err := time.Parse(layout, r.Date); err == nil {
				if t.After(newest) {
					newest = t
				}
				break
			}
		}
	}
	if newest.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return newest.UTC()
}

func sourceDateEnv(t time.Time) []string {
	return []string{fmt.Sprintf("SOURCE_DATE_EPOCH=%d", t.Unix())}
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// peakRSS is this process's peak resident set size, as the kernel counts it.
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// writeFileAtomic writes a small cache file under a temporary name first.
func writeFileAtomic(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := p + ".tmp-" + randomID()
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, p)
}
