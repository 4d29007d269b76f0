package stages

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"github.com/kiln-project/kiln/internal/manifest"
)

// Compress compresses the input file with xz or zstd, the same commands
// the tar stage pipes its archives through (see compressors). The input
// file is the compressor's stdin and the output file its stdout, so nothing
// is held in memory or in a temporary file; a sparse input's holes are read
// as zeros, which both compressors shrink to almost nothing (but still
// read: they cost xz about 6 ms of CPU per MiB, zstd about 2).
// Both run in their multi-threaded mode on every processor, whose output
// does not depend on the number of threads, so the same input gives the
// same bytes.
type Compress struct{ Opts manifest.Compress }

// Validate implements Stage.
func (s *Compress) Validate() error {
	switch s.Opts.Format {
	case "xz", "zstd":
		return nil
	}
	return fmt.Errorf("compress: format %q is not supported: use xz or zstd", s.Opts.Format)
}

// Run implements Stage.
func (s *Compress) Run(ctx context.Context, env *Env) (err error) {
	if err := s.Validate(); err != nil {
		return err
	}
	argv := compressorCommand(s.Opts.Format, compressorThreads())
	in, err := openRegular(env.Input)
	if err != nil {
		return fmt.Errorf("compress: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(env.Output, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("compress: %w", err)
	}
	defer func() {
		if cerr := out.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("compress: %w", cerr)
		}
		if err != nil {
			os.Remove(env.Output)
		}
	}()
	env.Logf("compressing %s with %s", env.Input, s.Opts.Format)
	if err := filterFile(ctx, env, in, out, argv...); err != nil {
		return fmt.Errorf("compress: %w", err)
	}
	return nil
}

// openRegular opens the input file of a file stage, which must be a
// regular file.
func openRegular(name string) (*os.File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("opening the input: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening the input: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("the input %q is not a regular file", name)
	}
	return f, nil
}

// filterFile runs argv with in as its stdin and out as its stdout; its
// messages go to the build log and end the error when it fails.
func filterFile(ctx context.Context, env *Env, in, out *os.File, argv ...string) error {
	tail := &tailBuffer{max: 4096}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, out, logAndTail(env, tail)
	cmd.Env = toolEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", argv[0], ctx.Err())
		}
		if msg := tail.String(); msg != "" {
			return fmt.Errorf("%s: %w: %s", argv[0], err, msg)
		}
		return fmt.Errorf("%s: %w", argv[0], err)
	}
	return nil
}
