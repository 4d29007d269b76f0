package stages

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/kiln-project/kiln/internal/manifest"
)

// FileArchive packs the input file into a tar archive under a name of its
// own, as platforms that take "a disk inside a tarball" require (Google
// Compute Engine: disk.raw in an oldgnu tar, sparse, gzip-compressed).
//
// The input is staged as a symbolic link named Name in the stage's work
// directory and archived with --dereference, so tar reads the file itself
// (and finds its holes with --sparse) without copying it. Owners are 0,
// the mode 0644 and the mtime the build's epoch, so the same input and
// epoch give the same bytes. Compression runs in a pipe, as in the tar
// stage.
type FileArchive struct{ Opts manifest.FileArchive }

// fileArchiveNameRE is the member names accepted: one plain file name, no
// directory, no leading dot or dash.
var fileArchiveNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._+-]*$`)

// Validate implements Stage.
func (s *FileArchive) Validate() error {
	o := s.Opts
	if err := validateFileArchive(&o); err != nil {
		return fmt.Errorf("file archive: %w", err)
	}
	return nil
}

// Run implements Stage.
func (s *FileArchive) Run(ctx context.Context, env *Env) (err error) {
	o := s.Opts
	if err := validateFileArchive(&o); err != nil {
		return fmt.Errorf("file archive: %w", err)
	}
	comp := compressorCommand(o.Compression, compressorThreads())
	in, err := openRegular(env.Input)
	if err != nil {
		return fmt.Errorf("file archive: %w", err)
	}
	in.Close()
	input, err := filepath.Abs(env.Input)
	if err != nil {
		return fmt.Errorf("file archive: %w", err)
	}
	stage := filepath.Join(env.Work, "file-archive")
	if err := os.Mkdir(stage, 0o755); err != nil {
		return fmt.Errorf("file archive: %w", err)
	}
	defer os.RemoveAll(stage)
	if err := os.Symlink(input, filepath.Join(stage, o.Name)); err != nil {
		return fmt.Errorf("file archive: staging the input as %s: %w", o.Name, err)
	}

	out, err := os.OpenFile(env.Output, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("file archive: %w", err)
	}
	defer func() {
		if cerr := out.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("file archive: %w", cerr)
		}
		if err != nil {
			os.Remove(env.Output)
		}
	}()
	sparse := ""
	if o.Sparse {
		sparse = ", sparse"
	}
	env.Logf("packing %s as %s into a %s tar archive%s (compression: %s)", env.Input, o.Name, o.Format, sparse, orNone(o.Compression))
	argv := []string{"tar", "--create", "--file=-", "--directory=" + stage,
		"--format=" + o.Format, "--dereference",
		"--mtime=@" + strconv.FormatInt(env.Epoch.Unix(), 10),
		"--owner=0", "--group=0", "--numeric-owner", "--mode=0644",
	}
	if o.Format == "posix" {
		// As in the tar stage: no process ID in the extended headers'
		// names, no times that differ from one run to the next.
		argv = append(argv, "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime")
	}
	if o.Sparse {
		argv = append(argv, "--sparse")
	}
	argv = append(argv, "--", o.Name)
	if err := runTarPipeline(ctx, env, argv, comp, out); err != nil {
		return fmt.Errorf("file archive: %w", err)
	}
	return nil
}

// validateFileArchive checks the options, naming the field at fault.
func validateFileArchive(o *manifest.FileArchive) error {
	if !fileArchiveNameRE.MatchString(o.Name) || len(o.Name) > 100 {
		return fmt.Errorf("name %q is not a plain file name: use at most 100 of A-Z, a-z, 0-9, '.', '_', '+' and '-', not starting with '.', '+' or '-', without '/'", o.Name)
	}
	switch o.Format {
	case "oldgnu", "gnu":
	case "posix", "ustar":
		if o.Sparse {
			// ustar has no sparse members; GNU tar names a posix sparse
			// member after its own process ID, so the bytes would differ
			// from one build to the next.
			return fmt.Errorf("sparse is not supported with format %q: use oldgnu or gnu", o.Format)
		}
	default:
		return fmt.Errorf("format %q is not supported: use oldgnu, gnu, posix or ustar", o.Format)
	}
	if _, ok := compressors[o.Compression]; o.Compression != "" && !ok {
		return fmt.Errorf("compression %q is not supported: use gzip, xz, zstd or none", o.Compression)
	}
	return nil
}
