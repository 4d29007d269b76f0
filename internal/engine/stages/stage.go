// Package stages holds one file per manifest stage type. Each file's doc
// comment on its options (in internal/manifest/stages.go) is the reference
// for what the stage does; the file here is how.
//
// A stage acts on a tree (a root directory being built) or turns an input
// into an output file. Anything that comes from packages or from the user
// and has to execute runs through Env.Chroot or Env.Sandbox: in a user
// namespace without the host's privileges, never against the host's root.
package stages

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/kiln-project/kiln/internal/engine/sandbox"
	"github.com/kiln-project/kiln/internal/manifest"
)

// Stage is one runnable stage.
type Stage interface {
	// Validate checks the stage's options alone, with no tree, tool or
	// network: it runs for every stage of a manifest before any stage
	// runs, so a bad manifest fails at once, naming the field. Rules that
	// depend on the tree (is a tool installed, is a zone in the image)
	// stay in Run.
	Validate() error
	// Run does the stage's work. It must leave no mounts, loop devices or
	// processes behind, also when it fails or ctx is cancelled.
	Run(ctx context.Context, env *Env) error
}

// Env is everything a stage may use.
type Env struct {
	// Tree is the root directory a tree pipeline builds (empty for file
	// pipelines).
	Tree string
	// Input is a file pipeline's input: the tree directory or the file the
	// input pipeline produced.
	Input string
	// Extra maps each of a file pipeline's extra inputs (by pipeline
	// name) to its tree directory or file.
	Extra map[string]string
	// Output is the file a file pipeline's stage writes.
	Output string
	// Work is a scratch directory for this stage, removed afterwards.
	Work string
	// Debs are the manifest's pinned packages; DebFiles maps each
	// package's SHA-256 to its verified file in the download cache.
	Debs     []manifest.Deb
	DebFiles map[string]string
	// Chroot runs argv inside Tree in the sandbox (see
	// internal/engine/sandbox): argv[0] is the absolute path of a packaged
	// tool of the image (see PackagedCommand). stdin may be nil. Output
	// goes to Log.
	Chroot func(ctx context.Context, stdin io.Reader, argv ...string) error
	// Sandbox runs argv in a sandbox of the given options on Tree (the
	// options' Root is Tree; their Out defaults to Log).
	Sandbox func(ctx context.Context, o sandbox.Options, argv ...string) error
	// Epoch is the timestamp written wherever a time would be (from
	// SOURCE_DATE_EPOCH, else the manifest's packages' newest date).
	Epoch time.Time
	// Log receives the stage's output and the tools' output.
	Log io.Writer
}

// Logf writes one line to the build log.
func (e *Env) Logf(format string, args ...any) {
	fmt.Fprintf(e.Log, format+"\n", args...)
}
