package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/compose"
	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/manifest"
	"github.com/kiln-project/kiln/internal/sbom"
)

func newBuildCommand(a *app) *cobra.Command {
	var f targetFlags
	var outDir, progress, manifestPath, maxCache string
	var force bool
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
  kiln build --manifest out/web-debian-12-x86_64.manifest.json --output ./again`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
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
				bp, it, opts, err := f.plan(a)
				if err != nil {
					return err
				}
				r, err := a.resolver(f.offline, f.refresh)
				if err != nil {
					return err
				}
				res, err := compose.Manifest(ctx, it, bp, opts, r)
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
			return a.build(ctx, m, outDir, progress, force, limit)
		},
	}
	f.register(cmd, false)
	cmd.Flags().StringVarP(&outDir, "output", "o", ".", "directory to write the image, manifest, SBOM and build log to")
	cmd.Flags().BoolVar(&force, "force", false, "replace output files that exist already")
	cmd.Flags().StringVar(&progress, "progress", "auto", "progress output: auto (a live line on a terminal), plain, json or none")
	cmd.Flags().StringVar(&manifestPath, "manifest", "", "build this manifest instead of planning one from a blueprint")
	cmd.Flags().StringVar(&maxCache, "cache-max-size", "", "after the build, evict least recently used cache entries beyond this size (e.g. \"20 GiB\")")
	return cmd
}

// outputs are the files a build writes for an artifact.
type outputs struct{ artifact, manifest, sbom, log string }

func outputPaths(dir, filename string) outputs {
	base := filename
	for _, ext := range []string{".tar.xz", ".tar.gz", ".tar.zst", ".tar", ".qcow2", ".raw", ".vmdk", ".vhd", ".iso"} {
		if strings.HasSuffix(base, ext) {
			base = strings.TrimSuffix(base, ext)
			break
		}
	}
	return outputs{
		artifact: filepath.Join(dir, filename),
		manifest: filepath.Join(dir, base+".manifest.json"),
		sbom:     filepath.Join(dir, base+".spdx.json"),
		log:      filepath.Join(dir, base+".build.log"),
	}
}

func (a *app) build(ctx context.Context, m *manifest.Manifest, outDir, progress string, force bool, cacheLimit int64) error {
	out := outputPaths(outDir, m.Output.Filename)
	if !force {
		for _, p := range []string{out.artifact, out.manifest, out.sbom} {
			if _, err := os.Stat(p); err == nil {
				return fmt.Errorf("%s exists already: remove it, choose another --output, or pass --force", p)
			}
		}
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	reporter, err := a.reporter(progress)
	if err != nil {
		return err
	}
	logFile, err := os.Create(out.log)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cfg := engine.Config{CacheDir: a.cfg.CacheDir, Reporter: reporter, Log: a.log, TreeFacts: sbom.ScanLicenses}
	if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
		sec, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds", v)
		}
		t := time.Unix(sec, 0).UTC()
		cfg.Epoch = &t
	}
	eng, err := engine.New(cfg)
	if err != nil {
		return err
	}
	mb, err := m.Marshal()
	if err != nil {
		return err
	}
	_, err = eng.Build(ctx, m, logFile, func(ctx context.Context, artifact string, facts map[string][]byte) error {
		doc := sbom.New(m, facts["os"], epochOf(cfg, m))
		sb, err := doc.Marshal()
		if err != nil {
			return err
		}
		if err := writeAtomic(out.sbom, sb); err != nil {
			return err
		}
		if err := writeAtomic(out.manifest, mb); err != nil {
			return err
		}
		return copyOut(ctx, artifact, out.artifact)
	})
	if err != nil {
		fmt.Fprintf(logFile, "build failed: %v\n", err)
		return fmt.Errorf("%w\n(the build log is %s)", err, out.log)
	}
	fmt.Fprintf(a.stdout, "%s\n%s\n%s\n%s\n", out.artifact, out.manifest, out.sbom, out.log)
	if cacheLimit > 0 {
		removed, err := engine.Prune(a.cfg.CacheDir, cacheLimit)
		if err != nil {
			return err
		}
		a.log.Info("cache pruned", "entries", len(removed))
	}
	return nil
}

func epochOf(cfg engine.Config, m *manifest.Manifest) time.Time {
	if cfg.Epoch != nil {
		return *cfg.Epoch
	}
	return engine.ManifestEpoch(m)
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

// writeAtomic writes a file under a temporary name and renames it, so a
// reader (or a full disk) never leaves a half-written file behind.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// copyOut copies the artifact src (sparsely) to dst, which appears only
// complete.
func copyOut(ctx context.Context, src, dst string) error {
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".partial")
	defer os.Remove(tmp)
	if err := engine.CopyFile(ctx, src, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
