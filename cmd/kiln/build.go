package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/compose"
	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/manifest"
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

Everything that can be reused is cached: packages by checksum, the installed tree
and each output under the hash of what produced it. Set SOURCE_DATE_EPOCH for
reproducible timestamps.`,
		Example: `  kiln build --blueprint web.toml --distro debian-12 --type qcow2 --output ./out
  kiln build --manifest out/web-debian-12-x86_64.manifest.json --output ./again
  kiln build --blueprint web.toml --type ami --output ./out --upload aws --share-with 123456789012`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			pending, err := a.prepareBuildUpload(ctx, &up)
			if err != nil {
				return err
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
			var limit int64
			if maxCache != "" {
				sz, err := blueprint.ParseSize(maxCache)
				if err != nil {
					return fmt.Errorf("--cache-max-size: %w", err)
				}
				limit = int64(sz)
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
