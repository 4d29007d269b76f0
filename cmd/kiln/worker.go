package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/emulation"
	"github.com/kiln-project/kiln/internal/target"
	"github.com/kiln-project/kiln/internal/telemetry"
	"github.com/kiln-project/kiln/internal/worker"
	"github.com/kiln-project/kiln/internal/workerproto"
)

// testBuilder, when set, builds the images of the workers of `kiln serve`
// and `kiln worker` instead of the engine. Only tests set it: in-process
// tests directly, and tests that run kiln as a process by building it with
// the kilnfake build tag (fakebuild.go). A kiln built without that tag has
// no code that sets it, so nothing a tenant or an operator does can.
var testBuilder worker.Builder

// checkArch says whether this host builds an architecture's images and
// how; tests replace it so as not to depend on the host they run on.
var checkArch worker.ArchCheck = emulation.Check

func newWorkerCommand(a *app) *cobra.Command {
	var (
		token, name, listen string
		otlpEndpoint        string
		servers, arches     []string
		concurrency         int
		grace               time.Duration
	)
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Build images for a kiln service: take jobs from its worker API",
		Long: `worker connects to a "kiln serve" over HTTP(S) with a worker token (kiln
worker-token create), asks for jobs of the architectures it declares, and
runs them: it resolves packages, builds images in its local build cache
(--cache-dir) and uploads them to the service's artifact store. It
heartbeats each job; a job whose worker disappears goes to another worker.

On SIGTERM or SIGINT it takes no more jobs, lets running ones finish within
--grace and hands the rest back to the queue. While the server is away it
keeps retrying with backoff and keeps its finished images.

Each --arch must be one this host builds: its own, natively, or another
through qemu-user's binfmt_misc handlers (kiln doctor --fix registers
them). The worker refuses to start on one it cannot build, and says how
it builds each.`,
		Example: `  kiln worker --server https://kiln.example.com --worker-token "$(cat token)" --arch x86_64 --concurrency 2
  kiln worker --server https://kiln.example.com --worker-token "$(cat token)" --arch x86_64,aarch64`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(servers) == 0 {
				return errors.New("--server is required (or $KILN_SERVER): the service's address, such as https://kiln.example.com")
			}
			for _, s := range servers {
				if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return fmt.Errorf("--server %q is not an http:// or https:// address", s)
				}
			}
			if token == "" {
				return errors.New("--worker-token is required (or $KILN_WORKER_TOKEN): create one with kiln worker-token create")
			}
			if concurrency < 1 || concurrency > 64 {
				return fmt.Errorf("--concurrency must be between 1 and 64, not %d", concurrency)
			}
			for i, arch := range arches {
				arches[i] = strings.TrimSpace(arch)
				if !knownArch(a, arches[i]) {
					return fmt.Errorf("--arch %q is not an architecture any distribution builds", arch)
				}
			}
			modes, err := worker.CheckArches("arch", arches, checkArch)
			if err != nil {
				return err
			}
			if name == "" {
				host, _ := os.Hostname()
				name = host
			}
			mirrors, resolver, err := a.workerDeps()
			if err != nil {
				return err
			}
			log := slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(a.stderr, nil)))
			stopTracing, err := startTracing(cmd.Context(), otlpEndpoint, "kiln-worker", log)
			if err != nil {
				return err
			}
			defer stopTracing()
			for _, arch := range arches {
				log.Info("builds", "arch", arch, "mode", string(modes[arch]))
			}
			health := worker.NewHealth()
			client := &workerproto.Client{BaseURL: servers[0], Fallbacks: servers[1:], Key: token}

			ctx := cmd.Context()
			if listen != "" {
				ln, err := net.Listen("tcp", listen)
				if err != nil {
					return fmt.Errorf("--listen: %w", err)
				}
				srv := &http.Server{Handler: health.Handler(), ReadHeaderTimeout: 10 * time.Second}
				go srv.Serve(ln)
				defer srv.Close()
				log.Info("health and metrics", "addr", ln.Addr().String())
			}

			targets, err := target.Build(a.cfg.Targets, os.Getenv, "")
			if err != nil {
				return fmt.Errorf("configuration [targets]: %w", err)
			}
			var wg sync.WaitGroup
			for i := range concurrency {
				w, err := worker.New(worker.Config{
					Client: client, Name: fmt.Sprintf("%s/%d", name, i+1), Arches: arches, Grace: grace,
					CacheDir: a.cfg.CacheDir, Mirrors: mirrors, Resolver: resolver, Distros: a.registry,
					Log: log.With("worker", fmt.Sprintf("%s/%d", name, i+1)), Health: health, Builder: testBuilder,
					Targets: targets, UploadTimeout: a.cfg.Targets.TimeoutOf(),
				})
				if err != nil {
					return err
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					_ = w.Run(ctx)
				}()
			}
			fmt.Fprintf(a.stdout, "kiln worker %s takes %s jobs from %s\n", name, worker.DescribeArches(arches, modes), strings.Join(servers, ", "))
			<-ctx.Done()
			log.Info("shutting down", "grace", grace)
			wg.Wait()
			return nil
		},
	}
	f := cmd.Flags()
	var envServers []string
	if v := os.Getenv("KILN_SERVER"); v != "" {
		envServers = strings.Split(v, ",")
	}
	f.StringSliceVar(&servers, "server", envServers, "the service's address; several (comma-separated or repeated) when its replicas have no load balancer in front: a worker goes to the next when one does not answer (default $KILN_SERVER)")
	f.StringVar(&token, "worker-token", os.Getenv("KILN_WORKER_TOKEN"), "the worker token (default $KILN_WORKER_TOKEN)")
	f.StringSliceVar(&arches, "arch", []string{emulation.Host()}, "architectures this worker builds, comma-separated or repeated (x86_64, aarch64); each must run here natively or through qemu-user (kiln doctor)")
	f.IntVar(&concurrency, "concurrency", 1, "jobs run at once")
	f.StringVar(&name, "name", "", "the worker's name in the service's records (default: the host name)")
	f.DurationVar(&grace, "grace", 10*time.Minute, "after SIGTERM, how long running jobs may go on before they are handed back")
	f.StringVar(&listen, "listen", "", "address to serve /livez, /readyz and /metrics on (default: none)")
	otlpFlag(f, &otlpEndpoint)
	return cmd
}

// knownArch tells whether some distribution builds arch.
func knownArch(a *app, arch string) bool {
	for _, d := range a.registry.Distros() {
		for _, x := range d.Arches() {
			if x.Name == arch {
				return true
			}
		}
	}
	return false
}
