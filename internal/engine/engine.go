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
	"syscall"
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
	build, err := executableID(cfg.CacheDir)
	if err != nil {
		return nil, err
	}
	return &Engine{cfg: cfg, http: &http.Client{Timeout: cfg.HTTPTimeout}, build: build}, nil
}

// executableID is the SHA-256 of the running binary. Hashing a binary of
// a hundred megabytes on every build would cost a no-change rebuild a
// good part of its time, so the hash is kept in the cache under the
// binary's identity: its path, device, inode, size and modification and
// change times. Replacing or rewriting the binary changes its change time
// (which no system call can set back), so a stale hash is never used. A
// binary changed within the last second is hashed and not remembered: a
// rewrite in the same clock tick could keep the change time.
func executableID(cacheDir string) (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the kiln binary: %w", err)
	}
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("reading the kiln binary: %w", err)
	}
	defer f.Close()
	var stamp string
	if fi, err := f.Stat(); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && time.Since(time.Unix(st.Ctim.Unix())) > time.Second {
			sum := sha256.Sum256(fmt.Appendf(nil, "%q %d %d %d %d %d", p, st.Dev, st.Ino, st.Size, st.Mtim.Nano(), st.Ctim.Nano()))
			stamp = filepath.Join(cacheDir, "binaries", hex.EncodeToString(sum[:]))
			if b, err := os.ReadFile(stamp); err == nil && len(b) == sha256.Size*2 {
				return string(b), nil
			}
		}
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading the kiln binary: %w", err)
	}
	id := hex.EncodeToString(h.Sum(nil))
	if stamp != "" {
		_ = writeFileAtomic(stamp, []byte(id)) // not remembered: hashed again next time
	}
	return id, nil
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

// checks are the stage types that only read the tree and fail or pass: they
// change nothing, so they are left out of the cache-key chain (changing
// what a check looks for does not rerun the stages after it), and they run
// again on a tree restored from a later checkpoint, which holds the same
// packages. Every stage that follows a check and acts on what it checked
// (users, systemd) has those names in its own options, so its key covers
// them.
var checks = map[string]bool{
	manifest.CheckInstall{}.StageType(): true,
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
	r := &run{e: e, buildPlan: e.plan(m, runners, total), work: work, log: log}
	for pi := range m.Pipelines {
		if err := r.pipeline(ctx, pi); err != nil {
			return nil, err
		}
	}
	artifact := r.outputs[m.Output.Pipeline]
	if err := out(ctx, artifact, r.facts); err != nil {
		return nil, err
	}
	res := &Result{Elapsed: time.Since(start)}
	fmt.Fprintf(log, "== built %s in %.1fs; kiln's own peak memory %s (the tools it ran are separate processes)\n",
		m.Output.Filename, res.Elapsed.Seconds(), peakRSS())
	e.report(Event{Kind: BuildDone, Message: m.Output.Filename, Elapsed: res.Elapsed})
	return res, nil
}

// readFacts fills facts[name] from the tree entry's facts, or from the
// tree itself (saving them when the tree is in the cache). digest, when
// known, is the tree's linked digest: facts are read from the shared /usr
// only (the packages' copyright files), so trees with the same digest
// (the same hostname-only rebuild, say) have the same facts, kept under
// facts/<digest>.
func (e *Engine) readFacts(name, key, digest, tree string, facts map[string][]byte) error {
	if e.cfg.TreeFacts == nil {
		return nil
	}
	if b, err := os.ReadFile(e.factsPath(key)); err == nil {
		facts[name] = b
		return nil
	}
	byDigest := ""
	if digest != "" {
		byDigest = filepath.Join(e.cfg.CacheDir, "facts", digest)
	}
	b, err := os.ReadFile(byDigest)
	if byDigest == "" || err != nil {
		if b, err = e.cfg.TreeFacts(tree); err != nil {
			return fmt.Errorf("%s: reading the finished tree: %w", name, err)
		}
		if byDigest != "" {
			if err := writeFileAtomic(byDigest, b); err != nil {
				e.cfg.Log.Warn("could not cache the tree's facts", "pipeline", name, "err", err)
			}
		}
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
