package engine

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/kiln-project/kiln/internal/engine/stages"
	"github.com/kiln-project/kiln/internal/manifest"
)

// buildPlan is what a build will do, decided under the cache lock before
// any stage runs: every cache key, which pipelines' outputs the cache
// already holds, and which pipelines must run for the artifact.
type buildPlan struct {
	m *manifest.Manifest
	// runners are the checked stages, by pipeline and stage (prepare).
	runners [][]stages.Stage
	// total counts the stages of the whole build.
	total int
	epoch time.Time
	// stageKeys are the cache key after each stage, by pipeline and
	// stage; last maps each pipeline to the key of its output.
	stageKeys [][]string
	last      map[string]string
	// outputs maps a pipeline to its tree directory or file once it is
	// known: cached before the build, or built during it.
	outputs map[string]string
	// needed are the pipelines the artifact needs that must run, or whose
	// tree must be read for its facts.
	needed map[string]bool
	// facts holds what Config.TreeFacts extracted from each tree pipeline.
	facts map[string][]byte
}

// plan computes the build's cache keys and finds what the cache holds.
func (e *Engine) plan(m *manifest.Manifest, runners [][]stages.Stage, total int) *buildPlan {
	p := &buildPlan{m: m, runners: runners, total: total, epoch: e.epoch(m)}
	p.stageKeys, p.last = e.cacheKeys(m, p.epoch)
	p.outputs, p.needed = e.cachedOutputs(m, p.last)
	p.facts = e.cachedFacts(m, p.last, p.outputs, p.needed)
	return p
}

// cacheKeys returns every stage's key and each pipeline's last key. Every
// key is known before anything runs: a pipeline's chain starts from its
// input's last key.
func (e *Engine) cacheKeys(m *manifest.Manifest, epoch time.Time) (stageKeys [][]string, last map[string]string) {
	stageKeys = make([][]string, len(m.Pipelines))
	last = map[string]string{}
	for pi, p := range m.Pipelines {
		k := pipelineKey(fmt.Sprintf("%s epoch %d", e.build, epoch.Unix()), p, last)
		for _, s := range p.Stages {
			if !checks[s.Type] {
				k = stageKey(k, s, m)
			}
			stageKeys[pi] = append(stageKeys[pi], k)
		}
		last[p.Name] = k
	}
	return stageKeys, last
}

// cachedOutputs walks back from the artifact's pipeline: only what the
// artifact needs is built or restored, and a pipeline whose output is
// cached needs nothing before it.
func (e *Engine) cachedOutputs(m *manifest.Manifest, last map[string]string) (outputs map[string]string, needed map[string]bool) {
	outputs = map[string]string{} // pipeline → its tree dir or file
	needed = map[string]bool{m.Output.Pipeline: true}
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
	return outputs, needed
}

// cachedFacts reads the cached facts of the tree pipelines whose tree is
// not at hand; a pipeline whose facts are not cached becomes needed, since
// its facts must come from the tree itself.
func (e *Engine) cachedFacts(m *manifest.Manifest, last, outputs map[string]string, needed map[string]bool) map[string][]byte {
	facts := map[string][]byte{}
	for _, p := range m.Pipelines {
		if p.Produces == "tree" && outputs[p.Name] == "" && e.cfg.TreeFacts != nil {
			b, err := os.ReadFile(e.factsPath(last[p.Name]))
			if err != nil {
				needed[p.Name] = true
				continue
			}
			facts[p.Name] = b
		}
	}
	return facts
}

// run is one build carrying out its plan.
type run struct {
	e *Engine
	*buildPlan
	// work is the build's work directory; log receives the tools' output.
	work string
	log  io.Writer
	// index counts the stages reported so far, across pipelines.
	index int
	// debFiles maps each package's SHA-256 to its verified file, once the
	// first package installation fetched them.
	debFiles map[string]string
}

// pipeline runs pipeline pi, or reports its stages cached when the plan
// does not need it to run.
func (r *run) pipeline(ctx context.Context, pi int) error {
	p := r.m.Pipelines[pi]
	if !r.needed[p.Name] || r.outputs[p.Name] != "" {
		for _, s := range p.Stages {
			r.index++
			r.e.report(Event{Kind: StageCached, Pipeline: p.Name, Stage: s.Type, Index: r.index, Total: r.total})
		}
		if p.Produces == "tree" && r.outputs[p.Name] != "" {
			return r.e.readFacts(p.Name, r.last[p.Name], "", r.outputs[p.Name], r.facts)
		}
		return nil
	}
	r.e.report(Event{Kind: PipelineStart, Pipeline: p.Name})
	dir, file, err := r.outputPath(p)
	if err != nil {
		return err
	}
	resume, linked, err := r.resume(ctx, pi, dir)
	if err != nil {
		return err
	}
	for i, s := range p.Stages {
		r.index++
		if i < resume && !checks[s.Type] {
			r.e.report(Event{Kind: StageCached, Pipeline: p.Name, Stage: s.Type, Index: r.index, Total: r.total})
			continue
		}
		stored, err := r.stage(ctx, pi, i, dir, file)
		if err != nil {
			return err
		}
		if stored {
			linked = append(linked, r.stageKeys[pi][i])
		}
	}
	if err := r.finish(p, dir, file, linked); err != nil {
		return err
	}
	r.e.report(Event{Kind: PipelineDone, Pipeline: p.Name})
	return nil
}

// outputPath makes the place a pipeline builds in: a tree directory, or
// the directory of its file.
func (r *run) outputPath(p manifest.Pipeline) (dir, file string, err error) {
	if p.Produces == "tree" {
		dir = filepath.Join(r.work, "tree-"+p.Name)
		return dir, "", os.MkdirAll(dir, 0o755)
	}
	file = filepath.Join(r.work, "file-"+p.Name, p.Filename)
	return "", file, os.MkdirAll(filepath.Dir(file), 0o755)
}

// resume restores a tree pipeline from the furthest checkpoint in the
// cache and returns the index of the first stage left to run. linked are
// the cache entries the tree now shares files with, checked again once it
// is done.
func (r *run) resume(ctx context.Context, pi int, dir string) (resume int, linked []string, err error) {
	p := r.m.Pipelines[pi]
	if p.Produces != "tree" {
		return 0, nil, nil
	}
	for i := len(p.Stages) - 2; i >= 0; i-- {
		if !checkpoints[p.Stages[i].Type] {
			continue
		}
		ok, err := r.e.restoreTree(ctx, r.stageKeys[pi][i], dir)
		if err != nil {
			return 0, nil, err
		}
		if ok {
			return i + 1, []string{r.stageKeys[pi][i]}, nil
		}
	}
	return 0, nil, nil
}

// stage runs stage i of pipeline pi on dir (a tree pipeline) or into file
// (a file pipeline), reporting it. stored says the tree after it went into
// the cache as a checkpoint.
func (r *run) stage(ctx context.Context, pi, i int, dir, file string) (stored bool, err error) {
	p := r.m.Pipelines[pi]
	s := p.Stages[i]
	if s.Type == (manifest.DebsInstall{}).StageType() && r.debFiles == nil {
		if r.debFiles, err = r.e.fetchDebs(ctx, r.m.Sources.Debs); err != nil {
			return false, err
		}
	}
	ev := Event{Kind: StageStart, Pipeline: p.Name, Stage: s.Type, Index: r.index, Total: r.total}
	r.e.report(ev)
	t0 := time.Now()
	fmt.Fprintf(r.log, "== %s: %s\n", p.Name, s.Type)
	scratch := filepath.Join(r.work, fmt.Sprintf("scratch-%d-%d", pi, i))
	if err := os.MkdirAll(scratch, 0o755); err != nil {
		return false, err
	}
	if err := r.runners[pi][i].Run(ctx, r.env(p, dir, file, scratch)); err != nil {
		r.e.report(Event{Kind: BuildFailed, Pipeline: p.Name, Stage: s.Type, Message: err.Error()})
		return false, fmt.Errorf("%s: stage %s: %w", p.Name, s.Type, err)
	}
	os.RemoveAll(scratch)
	if dir != "" && checkpoints[s.Type] && i < len(p.Stages)-1 {
		if err := r.e.storeTree(ctx, r.stageKeys[pi][i], dir); err != nil {
			r.e.cfg.Log.Warn("could not cache the tree", "stage", s.Type, "err", err)
		} else {
			stored = true
		}
	}
	ev.Kind, ev.Elapsed = StageDone, time.Since(t0)
	r.e.report(ev)
	return stored, nil
}

// env is what a stage of pipeline p may use: the tree and its sandbox for
// a tree pipeline, the inputs and the output file for a file pipeline.
func (r *run) env(p manifest.Pipeline, dir, file, scratch string) *stages.Env {
	env := &stages.Env{
		Tree: dir, Work: scratch, Debs: r.m.Sources.Debs, DebFiles: r.debFiles, Epoch: r.epoch, Log: r.log,
	}
	if dir != "" {
		env.Chroot, env.Sandbox = stages.Sandboxed(dir, r.log, sourceDateEnv(r.epoch))
		return env
	}
	env.Input, env.Output = r.outputs[p.Input], file
	if len(p.Extra) > 0 {
		env.Extra = map[string]string{}
		for _, x := range p.Extra {
			env.Extra[x] = r.outputs[x]
		}
	}
	return env
}

// finish moves a pipeline's finished output into the cache, where it is
// read from, and reads a tree's facts.
func (r *run) finish(p manifest.Pipeline, dir, file string, linked []string) error {
	var err error
	var digest string
	if dir != "" {
		r.outputs[p.Name], digest, err = r.e.moveTree(r.last[p.Name], dir)
		r.e.verifyLinked(linked, digest)
	} else {
		r.outputs[p.Name], err = r.e.storeFile(r.last[p.Name], p.Filename, file)
	}
	if err != nil {
		r.e.cfg.Log.Warn("could not cache the pipeline's output", "pipeline", p.Name, "err", err)
	}
	if dir != "" {
		return r.e.readFacts(p.Name, r.last[p.Name], digest, r.outputs[p.Name], r.facts)
	}
	return nil
}
