package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/compose"
	"github.com/kiln-project/kiln/internal/disk"
	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/manifest"
)

// errNotIdentical is returned when the rebuilt image differs.
var errNotIdentical = errors.New("the rebuilt image is not bit-identical")

func newVerifyCommand(a *app) *cobra.Command {
	var manifestPath, epochFlag, keep, progress string
	cmd := &cobra.Command{
		Use:   "verify IMAGE --manifest FILE",
		Short: "Rebuild an image from its manifest and compare the two bit for bit",
		Long: `verify rebuilds IMAGE from the manifest it was built from (the
<name>.manifest.json kiln build writes next to it), in a cache of its own
unless --cache-dir is given, and compares the SHA-256 of the two. It exits
0 when they are bit-identical and 1 when not, naming the first byte that
differs and, for a disk image, the partition it lies in.

The build's epoch is taken from --source-date-epoch, else SOURCE_DATE_EPOCH,
else the SPDX document written next to the manifest (its creation time is
the epoch the image was built with), else the manifest's own (the newest
Release date of its repositories).`,
		Example: `  kiln verify out/web-debian-12-x86_64.qcow2 --manifest out/web-debian-12-x86_64.manifest.json`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.verify(cmd.Context(), args[0], manifestPath, epochFlag, keep, progress)
		},
	}
	cmd.Flags().StringVar(&manifestPath, "manifest", "", "the manifest the image was built from (required)")
	cmd.Flags().StringVar(&epochFlag, "source-date-epoch", "", "the epoch the image was built with, in seconds since 1970 (see above for the default)")
	cmd.Flags().StringVar(&keep, "keep", "", "write the rebuilt image and its files to this directory and keep them (default: a temporary directory, removed)")
	cmd.Flags().StringVar(&progress, "progress", "auto", "progress output: auto, plain, json or none")
	_ = cmd.MarkFlagRequired("manifest")
	return cmd
}

// epochChoice is the epoch a verification builds with and where it came
// from.
type epochChoice struct {
	epoch  *time.Time // nil: the manifest's
	source string
}

// verifyEpoch picks the epoch as verify's help says.
func verifyEpoch(flag, manifestPath string, m *manifest.Manifest) (epochChoice, error) {
	if flag != "" {
		t, err := compose.ParseEpoch(flag)
		if err != nil {
			return epochChoice{}, fmt.Errorf("--source-date-epoch: %w", err)
		}
		return epochChoice{t, "--source-date-epoch"}, nil
	}
	if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
		t, err := compose.ParseEpoch(v)
		if err != nil {
			return epochChoice{}, fmt.Errorf("SOURCE_DATE_EPOCH: %w", err)
		}
		return epochChoice{t, "SOURCE_DATE_EPOCH"}, nil
	}
	sbom := compose.OutputFiles(filepath.Dir(manifestPath), strings.TrimSuffix(filepath.Base(manifestPath), ".manifest.json")).SBOM
	if strings.HasSuffix(manifestPath, ".manifest.json") {
		b, err := os.ReadFile(sbom)
		switch {
		case err == nil:
			var doc struct {
				CreationInfo struct {
					Created string `json:"created"`
				} `json:"creationInfo"`
			}
			if err := json.Unmarshal(b, &doc); err != nil {
				return epochChoice{}, fmt.Errorf("reading the epoch from %s: %w", sbom, err)
			}
			t, err := time.Parse(time.RFC3339, doc.CreationInfo.Created)
			if err != nil {
				return epochChoice{}, fmt.Errorf("reading the epoch from %s: its creation time %q: %w", sbom, doc.CreationInfo.Created, err)
			}
			if t.Equal(engine.ManifestEpoch(m)) {
				return epochChoice{nil, "the manifest's, as " + sbom + " records"}, nil
			}
			return epochChoice{&t, sbom}, nil
		case !errors.Is(err, os.ErrNotExist):
			return epochChoice{}, err
		}
	}
	return epochChoice{nil, "the manifest's"}, nil
}

func (a *app) verify(ctx context.Context, imagePath, manifestPath, epochFlag, keep, progress string) (err error) {
	fi, err := os.Stat(imagePath)
	if err != nil {
		return fmt.Errorf("the image: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("the image %s is not a regular file", imagePath)
	}
	b, err := os.ReadFile(manifestPath)
	if err != nil {
		return fmt.Errorf("the manifest: %w", err)
	}
	m, err := manifest.Parse(b)
	if err != nil {
		return fmt.Errorf("the manifest %s: %w", manifestPath, err)
	}
	if err := matchesOutput(imagePath, m); err != nil {
		return err
	}
	choice, err := verifyEpoch(epochFlag, manifestPath, m)
	if err != nil {
		return err
	}
	reporter, err := a.reporter(progress)
	if err != nil {
		return err
	}

	outDir := keep
	if outDir == "" {
		if outDir, err = os.MkdirTemp("", "kiln-verify-*"); err != nil {
			return err
		}
		defer os.RemoveAll(outDir)
	}
	cacheDir := a.cacheDir
	if cacheDir == "" {
		// A cache of its own: nothing an earlier build left is reused.
		if cacheDir, err = os.MkdirTemp("", "kiln-verify-cache-*"); err != nil {
			return err
		}
		defer os.RemoveAll(cacheDir)
	}
	epoch := engine.ManifestEpoch(m)
	if choice.epoch != nil {
		epoch = choice.epoch.UTC()
	}
	fmt.Fprintf(a.stdout, "rebuilding %s from %s\n  epoch %d (%s), %s\n  cache %s\n", m.Output.Filename, manifestPath,
		epoch.Unix(), epoch.Format(time.RFC3339), choice.source, cacheDir)

	var built *compose.Built
	if bld, ok := ctx.Value(builderContextKey{}).(imageBuilder); ok {
		built, err = bld.Build(ctx, m, outDir, io.Discard, reporter)
	} else {
		built, err = compose.Build(ctx, m, compose.BuildOptions{
			CacheDir: cacheDir, Dir: outDir, Replace: true, Epoch: choice.epoch, Progress: reporter, Logger: a.log,
		})
	}
	if err != nil {
		return fmt.Errorf("rebuilding: %w", err)
	}
	want, _, err := hashImage(ctx, imagePath)
	if err != nil {
		return fmt.Errorf("reading %s: %w", imagePath, err)
	}
	got, _, err := hashImage(ctx, built.Artifact)
	if err != nil {
		return fmt.Errorf("reading %s: %w", built.Artifact, err)
	}
	fmt.Fprintf(a.stdout, "image    sha256:%s  %s\nrebuilt  sha256:%s  %s\n", want, imagePath, got, built.Artifact)
	if want == got {
		fmt.Fprintln(a.stdout, "bit-identical")
		return nil
	}
	report, err := describeDifference(ctx, imagePath, built.Artifact, m)
	if err != nil {
		report = "comparing them: " + err.Error()
	}
	fmt.Fprintln(a.stdout, report)
	if keep == "" {
		fmt.Fprintln(a.stdout, "(pass --keep DIR to keep the rebuilt image for a closer look)")
	}
	return errNotIdentical
}

// matchesOutput refuses an image whose file name says it is of another
// type than the manifest builds.
func matchesOutput(imagePath string, m *manifest.Manifest) error {
	want := m.Output.Filename
	if want == "" {
		return errors.New("the manifest names no output file")
	}
	base := filepath.Base(imagePath)
	if base == want || filepath.Ext(base) == filepath.Ext(want) {
		return nil
	}
	return fmt.Errorf("%s is a %s file, but the manifest builds a %s image, %s: give the manifest written next to the image", base, filepath.Ext(base), m.Target.ImageType, want)
}

// partitionTable returns the partition table of the disk the manifest
// builds, if it builds one.
func partitionTable(m *manifest.Manifest) *disk.PartitionTable {
	for _, p := range m.Pipelines {
		for _, s := range p.Stages {
			if o, ok := s.Options.(*manifest.DiskImage); ok {
				return &o.PartitionTable
			}
		}
	}
	return nil
}

// qemuFormats are the file extensions of the disk formats qemu-img reads,
// with its format name.
var qemuFormats = map[string]string{".qcow2": "qcow2", ".vhd": "vpc", ".vmdk": "vmdk"}

// describeDifference says where two images first differ: the offset, the
// sizes and, for a disk image, the partition the offset lies in. For a
// qcow2, VHD or VMDK it also compares the disks they hold.
func describeDifference(ctx context.Context, a, b string, m *manifest.Manifest) (string, error) {
	var out strings.Builder
	off, err := compose.FirstDifference(a, b)
	if err != nil {
		return "", err
	}
	sizeA, sizeB := fileSize(a), fileSize(b)
	fmt.Fprintf(&out, "not bit-identical: the files (%d and %d bytes) first differ at byte %d (%#x)", sizeA, sizeB, off, off)
	pt := partitionTable(m)
	if pt == nil {
		return out.String(), nil
	}
	format, converted := qemuFormats[filepath.Ext(a)]
	if !converted {
		if strings.HasSuffix(a, ".raw") {
			fmt.Fprintf(&out, ", %s", wherein(pt, off))
		}
		return out.String(), nil
	}
	dir, err := os.MkdirTemp("", "kiln-verify-raw-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	var raws [2]string
	for i, p := range []string{a, b} {
		raws[i] = filepath.Join(dir, strconv.Itoa(i)+".raw")
		if msg, err := exec.CommandContext(ctx, "qemu-img", "convert", "-f", format, "-O", "raw", p, raws[i]).CombinedOutput(); err != nil {
			return "", fmt.Errorf("qemu-img convert %s: %w: %s", p, err, strings.TrimSpace(string(msg)))
		}
	}
	off, err = compose.FirstDifference(raws[0], raws[1])
	if err != nil {
		return "", err
	}
	if off < 0 {
		fmt.Fprintf(&out, "; the disks they hold are identical: the %s container differs", format)
		return out.String(), nil
	}
	fmt.Fprintf(&out, "; the disks they hold first differ at byte %d (%#x), %s", off, off, wherein(pt, off))
	return out.String(), nil
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return -1
	}
	return fi.Size()
}

// wherein names the part of the disk byte off lies in.
func wherein(pt *disk.PartitionTable, off int64) string {
	if off < 0 {
		return "nowhere"
	}
	o := disk.Size(off)
	for i, p := range pt.Partitions {
		if o >= p.Start && o < p.Start+p.Size {
			what := string(p.Role)
			if fs := p.Payload; fs != nil {
				what = fs.Type
				if fs.Mountpoint != "" {
					what += " " + fs.Mountpoint
				}
			}
			return fmt.Sprintf("in partition %d (%s), %d bytes into it", i+1, what, uint64(o-p.Start))
		}
	}
	if o < 34*disk.SectorSize {
		return "in the partition table or boot code before the first partition"
	}
	return "outside every partition (the partition table's backup or a gap)"
}
