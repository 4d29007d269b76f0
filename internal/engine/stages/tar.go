package stages

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/kiln-project/kiln/internal/manifest"
)

// TarArchive packs the input tree with GNU tar: numeric owners, extended
// attributes and ACLs, entries sorted by name, modification times clamped
// to the build's epoch and no access or change times, so the same tree and
// epoch give the same bytes. The archive is compressed by xz, gzip (pigz)
// or zstd on every processor, in a pipe, never held in memory or in a
// temporary file.
type TarArchive struct{ Opts manifest.TarArchive }

// compressors maps each compression to the command that compresses stdin
// to stdout, without the thread count (see compressorCommand). Every one
// runs its multi-threaded code, whose output does not depend on the number
// of threads, so the same input gives the same bytes on any machine with
// the same tool versions; TestCompressorsIgnoreThreadCount proves it for
// each command as run here. The presets were chosen by measuring
// (bench/compress.sh; docs/image-types.md has the figures):
//
//   - xz: preset 1, in blocks of 8 MiB. On a tree's tar, preset 1 takes
//     an eighth of the CPU time of xz's default preset 6 for a file 16 %
//     larger (still a fifth smaller than zstd's); presets 2 and 3 save
//     only 2 and 3 % more for 1.8 and 3.2 times preset 1's time. The
//     block size is explicit: xz's default follows the preset and the xz
//     version, and the blocks are what the threads share out, so fixing
//     it fixes the bytes. 8 MiB blocks keep two threads busy on a small
//     tree's tar and lose almost no ratio.
//   - gzip: pigz at gzip's default level 6. pigz compresses 128 KiB blocks
//     in parallel, each primed with the 32 KiB before it, and writes them
//     in order: one stream, the same bytes for any thread count
//     (including one), readable by every gzip reader. -n leaves out the
//     name and time.
//   - zstd: its default level 3; -T runs zstd's multi-threaded mode, whose
//     jobs are sized by the level, not by the thread count.
var compressors = map[string][]string{
	"xz":   {"xz", "-1", "--block-size=8MiB", "--no-adjust", "-c"},
	"gzip": {"pigz", "-6", "-n", "-c"},
	"zstd": {"zstd", "-3", "-q", "-c"},
}

// compressorCommand is the command that compresses with comp using threads
// threads, or nil for no compression.
func compressorCommand(comp string, threads int) []string {
	argv, ok := compressors[comp]
	if !ok {
		return nil
	}
	n := strconv.Itoa(threads)
	switch argv[0] {
	case "xz":
		// A count of 1 would switch xz to its single-threaded encoder,
		// whose output differs; +1 is the multi-threaded one with one
		// thread. --no-adjust makes xz fail rather than fall back to the
		// single-threaded encoder under a memory limit.
		if threads == 1 {
			n = "+1"
		}
		return append([]string{"xz", "--threads=" + n}, argv[1:]...)
	case "pigz":
		return append([]string{"pigz", "--processes", n}, argv[1:]...)
	case "zstd":
		// -T1 still runs one worker beside the reader (--single-thread
		// would be the other encoder).
		return append([]string{"zstd", "-T" + n}, argv[1:]...)
	}
	return append([]string(nil), argv...)
}

// compressorThreads is the number of threads the compressors run: one per
// processor this process may run on.
func compressorThreads() int { return max(runtime.NumCPU(), 1) }

// toolEnv is the environment of tar and the compressors: this process's,
// without the variables through which they take options (XZ_OPT,
// ZSTD_CLEVEL, TAR_OPTIONS …), which would change the output's bytes.
func toolEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "XZ_DEFAULTS", "XZ_OPT", "GZIP", "PIGZ", "ZSTD_CLEVEL", "ZSTD_NBTHREADS", "TAR_OPTIONS":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// Validate implements Stage.
func (s *TarArchive) Validate() error {
	if _, ok := compressors[s.Opts.Compression]; s.Opts.Compression != "" && !ok {
		return fmt.Errorf("tar: compression %q is not supported: use xz, gzip, zstd or none", s.Opts.Compression)
	}
	return nil
}

// Run implements Stage.
func (s *TarArchive) Run(ctx context.Context, env *Env) (err error) {
	if err := s.Validate(); err != nil {
		return err
	}
	comp := compressorCommand(s.Opts.Compression, compressorThreads())
	if fi, err := os.Stat(env.Input); err != nil || !fi.IsDir() {
		return fmt.Errorf("tar: the input %q is not a directory tree", env.Input)
	}
	out, err := os.OpenFile(env.Output, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("tar: %w", err)
	}
	defer func() {
		if cerr := out.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("tar: %w", cerr)
		}
		if err != nil {
			os.Remove(env.Output)
		}
	}()
	env.Logf("packing the tree into %s (compression: %s)", env.Output, orNone(s.Opts.Compression))
	tarArgv := tarCommand(env.Input, env.Epoch.Unix(), !env.Epoch.IsZero())
	return runTarPipeline(ctx, env, tarArgv, comp, out)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// tarCommand is the tar invocation that writes the archive of tree to
// stdout.
func tarCommand(tree string, epoch int64, clamp bool) []string {
	argv := []string{"tar", "--create", "--file=-", "--directory=" + tree,
		"--format=pax", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls",
		"--sort=name",
		// Name extended headers without the PID tar would put in them and
		// leave out the times that differ on every extraction.
		"--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
		// See fileChangedOnly.
		"--warning=no-file-changed",
	}
	if clamp {
		argv = append(argv, "--mtime=@"+strconv.FormatInt(epoch, 10), "--clamp-mtime")
	}
	return append(argv, ".")
}

// runTarPipeline runs tar, piped through the compressor when there is one,
// into out.
func runTarPipeline(ctx context.Context, env *Env, tarArgv, comp []string, out *os.File) error {
	tail := &tailBuffer{max: 4096}
	tarCmd := exec.CommandContext(ctx, tarArgv[0], tarArgv[1:]...)
	tarCmd.Stderr = logAndTail(env, tail)
	tarCmd.Env = toolEnv()
	tarCmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if comp == nil {
		tarCmd.Stdout = out
		if err := fileChangedOnly(tarCmd.Run()); err != nil {
			return tarError(ctx, "tar", err, tail)
		}
		return nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("tar: %w", err)
	}
	tarCmd.Stdout = pw
	compTail := &tailBuffer{max: 4096}
	compCmd := exec.CommandContext(ctx, comp[0], comp[1:]...)
	compCmd.Stdin, compCmd.Stdout, compCmd.Stderr = pr, out, logAndTail(env, compTail)
	compCmd.Env = toolEnv()
	compCmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := compCmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return fmt.Errorf("tar: starting %s: %w", comp[0], err)
	}
	pr.Close()
	tarErr := fileChangedOnly(tarCmd.Run())
	pw.Close() // the compressor sees the end of the archive
	compErr := compCmd.Wait()
	var errs []error
	if tarErr != nil {
		errs = append(errs, tarError(ctx, "tar", tarErr, tail))
	}
	if compErr != nil {
		errs = append(errs, tarError(ctx, comp[0], compErr, compTail))
	}
	return errors.Join(errs...)
}

// fileChangedOnly passes over tar's exit status 1. When it creates an
// archive, GNU tar exits with 1 only to say that a file's status changed
// while it read the file. In an input tree that happens without any change
// to the file: the tree's /usr is hard-linked with the build cache's copy,
// and another build linking the same files (or removing its own links)
// changes their link count and so their ctime. The files themselves are
// the cache's and no stage writes them: the engine checks their size,
// mode, owner and mtime whenever it takes a cached tree and after every
// build that linked it.
func fileChangedOnly(err error) error {
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		return nil
	}
	return err
}

func tarError(ctx context.Context, tool string, err error, tail *tailBuffer) error {
	if ctx.Err() != nil {
		return fmt.Errorf("tar: %s: %w", tool, ctx.Err())
	}
	if msg := tail.String(); msg != "" {
		return fmt.Errorf("tar: %s: %w: %s", tool, err, msg)
	}
	return fmt.Errorf("tar: %s: %w", tool, err)
}

// logAndTail sends a tool's messages to the build log and keeps their end
// for the error.
func logAndTail(env *Env, tail *tailBuffer) io.Writer {
	if env.Log == nil {
		return tail
	}
	return io.MultiWriter(env.Log, tail)
}
