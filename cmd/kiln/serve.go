package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/emulation"
	"github.com/kiln-project/kiln/internal/service"
	"github.com/kiln-project/kiln/internal/target"
	"github.com/kiln-project/kiln/internal/telemetry"
	"github.com/kiln-project/kiln/internal/worker"
)

// defaultDataDir is where the service keeps its database and artifacts.
const defaultDataDir = "/var/lib/kiln"

func newServeCommand(a *app) *cobra.Command {
	var cfg service.Config
	var otlpEndpoint string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the image-builder service: web UI, REST API, job queue and workers",
		Long: `serve runs the image-builder service on one machine: the web UI at /,
the API under /api/image-builder/v1 (its OpenAPI document at
/api/image-builder/v1/openapi.json), the worker API under /api/worker/v1,
an embedded SQLite database and
artifact directory under --data, and in-process workers that build the
composes. Create API tokens with "kiln token create".`,
		Example: `  kiln serve --listen 127.0.0.1:8086 --data /var/lib/kiln`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Workers < -1 {
				return fmt.Errorf("--workers %d: give how many in-process workers to run, 0 for none", cfg.Workers)
			}
			if err := statusFlags(cmd, &cfg); err != nil {
				return err
			}
			cfg.Log = slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(a.stderr, nil)))
			stopTracing, err := startTracing(cmd.Context(), otlpEndpoint, "kiln", cfg.Log)
			if err != nil {
				return err
			}
			defer stopTracing()
			if cfg.Workers > 0 {
				for i, arch := range cfg.WorkerArches {
					cfg.WorkerArches[i] = strings.TrimSpace(arch)
				}
				modes, err := worker.CheckArches("worker-arch", cfg.WorkerArches, checkArch)
				if err != nil {
					return fmt.Errorf("in-process workers: %w", err)
				}
				cfg.Log.Info("in-process workers build", "arches", worker.DescribeArches(cfg.WorkerArches, modes))
			}
			if cfg.Mirrors, cfg.Resolver, err = a.workerDeps(); err != nil {
				return err
			}
			cfg.Distros, cfg.CacheDir = a.registry, a.cfg.CacheDir
			if cfg.Targets, err = target.Build(a.cfg.Targets, os.Getenv, ""); err != nil {
				return fmt.Errorf("configuration [targets]: %w", err)
			}
			cfg.UploadTimeout = a.cfg.Targets.TimeoutOf()
			cfg.Builder = testBuilder
			cfg.Version = version()
			cfg.Ready = func(addr string) { fmt.Fprintf(a.stdout, "kiln serves on http://%s\n", addr) }
			return service.Run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:8086", "address to serve on")
	f.StringVar(&cfg.DataDir, "data", defaultDataDir, "directory for the database and the artifacts (when --database and --artifacts do not say otherwise)")
	f.StringVar(&cfg.Artifacts, "artifacts", os.Getenv("KILN_ARTIFACTS"), "the artifact store: empty for a directory in --data, an absolute path, or s3://BUCKET/PREFIX?endpoint=URL&region=R with credentials in $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY (default $KILN_ARTIFACTS)")
	f.DurationVar(&cfg.DownloadExpiry, "download-expiry", 7*24*time.Hour, "how long presigned download URLs of a bucket last (at most 168h)")
	f.StringVar(&cfg.Database, "database", os.Getenv("KILN_DATABASE"), "the database: empty for SQLite in --data, or postgres://USER@HOST/DB?sslmode=... (default $KILN_DATABASE)")
	f.IntVar(&cfg.Workers, "workers", 1, "in-process workers, which build as root on this host (0: none, remote workers only; -1 means the same)")
	f.StringSliceVar(&cfg.WorkerArches, "worker-arch", []string{emulation.Host()}, "architectures the in-process workers build, comma-separated or repeated (x86_64, aarch64); each must run here natively or through qemu-user (kiln doctor)")
	f.StringVar(&cfg.WorkerKey, "worker-key", os.Getenv("KILN_WORKER_KEY"), "secret remote workers request jobs with (default: $KILN_WORKER_KEY, else a random one for in-process workers)")
	f.BoolVar(&cfg.TrustIdentityHeader, "trust-identity-header", false, "take the org from x-rh-identity: only behind a gateway that sets it and strips it from clients")
	f.DurationVar(&cfg.Lease, "lease", 0, "how long a job stays leased without a heartbeat (default 2m)")
	f.DurationVar(&cfg.Retention.MaxAge, "retention", 14*24*time.Hour, "how long images and logs are kept")
	f.Int64Var(&cfg.Retention.MaxBytes, "artifacts-max-bytes", 0, "bound on the artifact store's size; the oldest finished composes' files go first (0: no bound)")
	f.IntVar(&cfg.Quota.Composes, "quota", 100, "composes each organization may submit per --quota-window")
	f.DurationVar(&cfg.Quota.Window, "quota-window", 14*24*time.Hour, "the period --quota counts")
	f.StringToIntVar(&cfg.Quota.PerOrg, "org-quota", nil, "a quota for one organization, ORG=N (repeatable)")
	f.Float64Var(&cfg.RateLimit.PerSecond, "rate-limit", 50, "API requests per second each organization may make (-1: no limit)")
	f.IntVar(&cfg.RateLimit.Burst, "rate-burst", 100, "API requests an organization may make at once")
	f.DurationVar(&cfg.BodyTimeout, "body-timeout", 30*time.Second, "how long a request's body may take to arrive after its headers (408 past it); a worker's upload may stall this long")
	f.DurationVar(&cfg.StatusInterval, "status-interval", 30*time.Second, "how often the public status page (/status) checks the components and records their uptime (default $KILN_STATUS_INTERVAL, else 30s)")
	f.DurationVar(&cfg.WorkerPoll, "worker-poll", 25*time.Second, "how long a worker's request for a job waits when none is ready; /status counts a worker as gone after 4.8 times this")
	f.IntVar(&cfg.LogStreams.PerOrg, "log-streams", 8, "build logs each organization may follow at once on this replica (429 past it)")
	otlpFlag(f, &otlpEndpoint)
	return cmd
}

// version is the module version and VCS revision this binary was built from.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += "+" + s.Value[:12]
		}
	}
	return v
}

// statusFlags takes --status-interval from $KILN_STATUS_INTERVAL unless
// given, and checks it and --worker-poll.
func statusFlags(cmd *cobra.Command, cfg *service.Config) error {
	if v := os.Getenv("KILN_STATUS_INTERVAL"); v != "" && !cmd.Flags().Changed("status-interval") {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("$KILN_STATUS_INTERVAL %q: give a duration such as 30s or 1m", v)
		}
		cfg.StatusInterval = d
	}
	if cfg.StatusInterval < 100*time.Millisecond {
		return fmt.Errorf("--status-interval %s: give at least 100ms (default 30s)", cfg.StatusInterval)
	}
	if cfg.WorkerPoll < 100*time.Millisecond {
		return fmt.Errorf("--worker-poll %s: give at least 100ms (default 25s)", cfg.WorkerPoll)
	}
	return nil
}
