package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/compose"
	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/manifest"
	"github.com/kiln-project/kiln/internal/ociindex"
)

func newBuildCommand(a *app) *cobra.Command {
	var f targetFlags
	var outDir, progress, manifestPath, maxCache string
	var force bool
	var up uploadFlags
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Build an image from a blueprint",
		Long: `Plans the image, solves and pins its packages, fetches and verifies them, runs every
stage and writes, into the output directory:

  <name>-<distro>-<arch>.<ext>           the image
  <name>-<distro>-<arch>.manifest.json   the manifest it was built from
  <name>-<distro>-<arch>.spdx.json       the SPDX 2.3 software bill of materials
  <name>-<distro>-<arch>.build.log       the full build log

The container type builds for several architectures at once: with
--arch x86_64,aarch64 each is built as above, then

  <name>-<distro>-multiarch.oci.tar      one OCI archive of an image index
                                         with an image per platform

is assembled from their archives (and is what --upload pushes).

Everything that can be reused is cached: packages by checksum, the installed tree
and each output under the hash of what produced it. Set SOURCE_DATE_EPOCH for
reproducible timestamps.`,
		Example: `  kiln build --blueprint web.toml --distro debian-12 --type qcow2 --output ./out
  kiln build --manifest out/web-debian-12-x86_64.manifest.json --output ./again
  kiln build --blueprint web.toml --type ami --output ./out --upload aws --share-with 123456789012
  kiln build --blueprint app.toml --type container --arch x86_64,aarch64 --output ./out --upload registry --name team/app --tag 1.0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			pending, err := a.prepareBuildUpload(ctx, &up)
			if err != nil {
				return err
			}
			arches, err := f.archList()
			if err != nil {
				return err
			}
			if len(arches) > 1 {
				if manifestPath != "" {
					return fmt.Errorf("--arch %q: --manifest builds the one architecture its manifest names; to build several, plan them from a blueprint with --blueprint", f.arch)
				}
				if f.imageType == "" {
					return fmt.Errorf("--type is required: several architectures (--arch %q) are built for the container type only", f.arch)
				}
				limit, err := parseCacheLimit(maxCache)
				if err != nil {
					return err
				}
				return a.buildMultiArch(ctx, f, arches, multiArchRun{outDir: outDir, progress: progress, force: force, cacheLimit: limit, pending: pending, up: &up})
			}
			var m *manifest.Manifest
			if manifestPath != "" {
				b, err := os.ReadFile(manifestPath)
				if err != nil {
					return err
				}
				if m, err = manifest.Parse(b); err != nil {
					return err
				}
			} else {
				if f.imageType == "" {
					return fmt.Errorf("--type is required (or build an existing manifest with --manifest)")
				}
				res, err := f.manifest(ctx, a)
				if err != nil {
					return err
				}
				for _, w := range res.Warnings {
					fmt.Fprintf(a.stderr, "kiln: warning: %s\n", w)
				}
				m = res.Manifest
			}
			limit, err := parseCacheLimit(maxCache)
			if err != nil {
				return err
			}
			if pending != nil {
				if pending.image, err = a.imageOfType(m.Target.Distro, m.Target.Arch, m.Target.ImageType); err != nil {
					return err
				}
				if err := checkUpload(pending.target, pending.image, pending.options, pending.fromFlag); err != nil {
					return err
				}
			}
			if err := a.build(ctx, m, outDir, progress, force, limit); err != nil || pending == nil {
				return err
			}
			return a.uploadBuilt(ctx, pending, &up, m, compose.OutputFiles(outDir, m.Output.Filename).Artifact, progress)
		},
	}
	f.register(cmd, false)
	up.register(cmd, "upload", "after a successful build, upload the image: aws, gcp, azure, s3 (aws.s3), registry (container) or oci (oci.objectstorage); see kiln upload")
	cmd.Flags().StringVarP(&outDir, "output", "o", ".", "directory to write the image, manifest, SBOM and build log to")
	cmd.Flags().BoolVar(&force, "force", false, "replace output files that exist already")
	cmd.Flags().StringVar(&progress, "progress", "auto", "progress output: auto (a live line on a terminal), plain, json or none")
	cmd.Flags().StringVar(&manifestPath, "manifest", "", "build this manifest instead of planning one from a blueprint")
	cmd.Flags().StringVar(&maxCache, "cache-max-size", "", "after the build, evict least recently used cache entries beyond this size (e.g. \"20 GiB\")")
	return cmd
}

// parseCacheLimit reads --cache-max-size: 0 when it is not given.
func parseCacheLimit(v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	sz, err := blueprint.ParseSize(v)
	if err != nil {
		return 0, fmt.Errorf("--cache-max-size: %w", err)
	}
	return int64(sz), nil
}

func (a *app) build(ctx context.Context, m *manifest.Manifest, outDir, progress string, force bool, cacheLimit int64) error {
	reporter, err := a.reporter(progress)
	if err != nil {
		return err
	}
	epoch, err := compose.ParseEpoch(os.Getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		return err
	}
	var built *compose.Built
	if b, ok := ctx.Value(builderContextKey{}).(imageBuilder); ok {
		built, err = b.Build(ctx, m, outDir, io.Discard, reporter)
	} else {
		built, err = compose.Build(ctx, m, compose.BuildOptions{
			CacheDir: a.cfg.CacheDir, Dir: outDir, Replace: force, Epoch: epoch, Progress: reporter, Logger: a.log,
		})
	}
	switch {
	case errors.Is(err, compose.ErrExists):
		return fmt.Errorf("%w: remove it, choose another --output, or pass --force", err)
	case err != nil:
		return fmt.Errorf("%w\n(the build log is %s)", err, compose.OutputFiles(outDir, m.Output.Filename).Log)
	}
	fmt.Fprintf(a.stdout, "%s\n%s\n%s\n%s\n", built.Artifact, built.Manifest, built.SBOM, built.Log)
	if cacheLimit > 0 {
		removed, err := engine.Prune(a.cfg.CacheDir, cacheLimit)
		if err != nil {
			return err
		}
		a.log.Info("cache pruned", "entries", len(removed))
	}
	return nil
}

func (a *app) reporter(mode string) (engine.Reporter, error) {
	switch mode {
	case "auto":
		fi, err := os.Stderr.Stat()
		live := err == nil && fi.Mode()&os.ModeCharDevice != 0 && a.stderr == os.Stderr
		return engine.NewTextReporter(a.stderr, live), nil
	case "plain":
		return engine.NewTextReporter(a.stderr, false), nil
	case "json":
		return engine.NewJSONReporter(a.stdout), nil
	case "none":
		return engine.ReporterFunc(func(engine.Event) {}), nil
	}
	return nil, fmt.Errorf("--progress %q: expected auto, plain, json or none", mode)
}

// multiArchSuffix ends the file name of a multi-architecture container
// image: <name>-<distro>-multiarch.oci.tar, where a build of one
// architecture writes <name>-<distro>-<arch>.oci.tar.
const multiArchSuffix = "-multiarch.oci.tar"

// multiArchRun is how buildMultiArch builds: kiln build's flags.
type multiArchRun struct {
	outDir, progress string
	force            bool
	cacheLimit       int64
	pending          *pendingUpload
	up               *uploadFlags
}

// multiArchFilename is the multi-architecture archive's file name for
// the image m is one architecture of.
func multiArchFilename(m *manifest.Manifest) string {
	stem, ok := strings.CutSuffix(m.Output.Filename, "-"+m.Target.Arch+".oci.tar")
	if !ok {
		stem = fmt.Sprintf("%s-%s", cmp.Or(m.Target.Name, "image"), m.Target.Distro)
	}
	return stem + multiArchSuffix
}

// buildMultiArch builds the container image of f for each of arches, each
// a build of its own with its own files, then assembles their OCI
// archives into one multi-architecture archive (an image index with an
// image per platform), and uploads that when asked. Every architecture
// is planned, and every output file checked, before anything is built.
func (a *app) buildMultiArch(ctx context.Context, f targetFlags, arches []string, run multiArchRun) error {
	var problems []string
	var ms []*manifest.Manifest
	for _, arch := range arches {
		fa := f
		fa.arch = arch
		t, err := fa.plan(a)
		if err != nil {
			problems = append(problems, fmt.Sprintf("--arch %s: %v", arch, err))
			continue
		}
		if t.it.Name != "container" {
			return fmt.Errorf("--arch %q: several architectures are built only for the container image type, into one multi-architecture image; build %s once per architecture (--arch %s)", f.arch, t.it.Name, arches[0])
		}
		res, err := fa.manifest(ctx, a)
		if err != nil {
			problems = append(problems, fmt.Sprintf("--arch %s: %v", arch, err))
			continue
		}
		for _, w := range res.Warnings {
			fmt.Fprintf(a.stderr, "kiln: warning: %s: %s\n", arch, w)
		}
		ms = append(ms, res.Manifest)
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	seen := map[string]string{}
	for i, m := range ms {
		if first, ok := seen[m.Target.Arch]; ok {
			return fmt.Errorf("--arch %q: %s and %s are both %s: name each architecture once", f.arch, first, arches[i], m.Target.Arch)
		}
		seen[m.Target.Arch] = arches[i]
	}

	output := filepath.Join(run.outDir, multiArchFilename(ms[0]))
	if !run.force {
		files := []string{output}
		for _, m := range ms {
			o := compose.OutputFiles(run.outDir, m.Output.Filename)
			files = append(files, o.Artifact, o.Manifest, o.SBOM)
		}
		var existing []string
		for _, p := range files {
			if _, err := os.Lstat(p); err == nil {
				existing = append(existing, p)
			}
		}
		if len(existing) > 0 {
			return fmt.Errorf("%s: %w: remove them, choose another --output, or pass --force", strings.Join(existing, ", "), compose.ErrExists)
		}
	}
	if run.pending != nil {
		img, err := a.imageOfType(ms[0].Target.Distro, ms[0].Target.Arch, ms[0].Target.ImageType)
		if err != nil {
			return err
		}
		run.pending.image = img
		if err := checkUpload(run.pending.target, run.pending.image, run.pending.options, run.pending.fromFlag); err != nil {
			return err
		}
	}

	var archives []string
	for i, m := range ms {
		var limit int64
		if i == len(ms)-1 {
			limit = run.cacheLimit
		}
		if err := a.build(ctx, m, run.outDir, run.progress, run.force, limit); err != nil {
			return fmt.Errorf("--arch %s: %w", arches[i], err)
		}
		archives = append(archives, compose.OutputFiles(run.outDir, m.Output.Filename).Artifact)
	}
	var opts ociindex.Options
	epoch, err := compose.ParseEpoch(os.Getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		return err
	}
	if epoch != nil {
		opts.Epoch = *epoch
	}
	idx, err := ociindex.Assemble(output, archives, opts)
	if err != nil {
		return fmt.Errorf("assembling the multi-architecture image %s: %w", output, err)
	}
	a.log.Info("multi-architecture image written", "path", output, "index", idx.Digest.String(), "platforms", idx.Platforms())
	fmt.Fprintln(a.stdout, output)
	if run.pending == nil {
		return nil
	}
	// The upload is named after the multi-architecture archive:
	// <name>-<distro>-multiarch.
	named := *ms[0]
	named.Target.Arch = "multiarch"
	return a.uploadBuilt(ctx, run.pending, run.up, &named, output, run.progress)
}
