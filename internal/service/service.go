// Package service runs one replica of the image-builder service: the API,
// the worker API, the store (SQLite, or PostgreSQL shared by replicas), the
// artifact store, the loop that rescues jobs whose worker died, and
// in-process workers that take jobs over the worker API like remote ones.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kiln-project/kiln/internal/depsolve"
	"github.com/kiln-project/kiln/internal/depsolve/apt"
	"github.com/kiln-project/kiln/internal/distro"
	"github.com/kiln-project/kiln/internal/service/api"
	"github.com/kiln-project/kiln/internal/service/artifacts"
	"github.com/kiln-project/kiln/internal/service/metrics"
	"github.com/kiln-project/kiln/internal/service/status"
	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/backends"
	"github.com/kiln-project/kiln/internal/service/ui"
	"github.com/kiln-project/kiln/internal/service/workerapi"
	"github.com/kiln-project/kiln/internal/target"
	"github.com/kiln-project/kiln/internal/worker"
	"github.com/kiln-project/kiln/internal/workerproto"
)

// Config configures the service. Zero values mean the defaults.
type Config struct {
	// Listen is the address to serve on. Default 127.0.0.1:8086.
	Listen string
	// DataDir holds the SQLite database (kiln.db) and artifacts/ unless
	// Database names another database.
	DataDir string
	// Database names the database (see backends.Open): empty for SQLite
	// in DataDir, or a postgres:// URL, which any number of replicas share.
	Database string
	// TrustIdentityHeader honours x-rh-identity (behind a gateway only).
	TrustIdentityHeader bool
	// Workers is how many in-process workers run; zero (or negative):
	// none, remote workers only. An in-process worker builds as root on
	// the API host, so none runs unless asked for.
	Workers int
	// WorkerArches are the architectures the in-process workers build
	// (the caller checked that this host builds them). Default x86_64.
	WorkerArches []string
	// Targets are the upload types composes may ask for, as the API checks
	// them and the in-process workers deliver to them. Default: local
	// and aws.s3 (the artifact store's download link).
	Targets target.Registry
	// UploadTimeout bounds the in-process workers' uploads (default
	// target.DefaultTimeout).
	UploadTimeout time.Duration
	// WorkerKey is the secret remote workers request jobs with. Default:
	// a random one, for the in-process workers only.
	WorkerKey string
	// Lease is how long a job stays leased without a heartbeat. Default 2m.
	Lease time.Duration
	// RescueEvery is how often expired leases are looked for. Default: a
	// quarter of Lease, at most 15s.
	RescueEvery time.Duration
	// MaxBodyBytes bounds API request bodies. Default 1 MiB.
	MaxBodyBytes int64
	// BodyTimeout bounds how long a client may take to send a request's
	// body (on the worker API: how long an upload may stall). Default
	// 30s. Responses, such as a followed build log, are not bounded by it.
	BodyTimeout time.Duration
	// Retention bounds the artifact store.
	Retention Retention
	// Artifacts says where the artifact store is (see artifacts.Open):
	// empty for DataDir/artifacts, an absolute directory, or
	// s3://bucket/prefix?endpoint=URL&region=R.
	Artifacts string
	// DownloadExpiry is how long presigned download URLs last. Default 7
	// days.
	DownloadExpiry time.Duration
	// Quota and RateLimit bound what each org may do (see api.Quota).
	Quota     api.Quota
	RateLimit api.RateLimit
	// LogStreams bounds each org's followed build logs (see
	// api.LogStreams).
	LogStreams api.LogStreams
	// StatusInterval is how often the status page's prober checks the
	// components. Default 30s.
	StatusInterval time.Duration
	// WorkerPoll is how long a worker's request for a job waits when
	// none is ready. Default 25s. The status page counts a worker as
	// gone once it has not been heard from for 4.8 times this (2m by
	// default).
	WorkerPoll time.Duration

	// What the in-process workers need to build.
	CacheDir string
	Mirrors  map[string]string
	Resolver depsolve.Resolver
	Distros  *distro.Registry
	// Builder builds the in-process workers' images (see
	// worker.Config.Builder). Default: the engine.
	Builder worker.Builder

	Log     *slog.Logger
	Version string
	// Ready is called with the address once the service listens.
	Ready func(addr string)
}

// Run serves until ctx ends, then stops the workers (their jobs go back to
// the queue), finishes the requests in flight and closes the database.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:8086"
	}
	if cfg.DataDir == "" {
		return errors.New("the data directory is required")
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 2 * time.Minute
	}
	if cfg.RescueEvery <= 0 {
		// A job whose worker died waits at most a quarter lease more.
		cfg.RescueEvery = min(15*time.Second, max(cfg.Lease/4, time.Second))
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Targets == nil {
		cfg.Targets = target.New(target.Local{}, target.StoreLink{})
	}
	cfg.Retention.withDefaults()
	if cfg.WorkerKey == "" {
		key, _ := store.NewSecret("kwk_")
		cfg.WorkerKey = key
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return err
	}
	db, err := backends.Open(ctx, cfg.Database, cfg.DataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	arts, err := artifacts.Open(cfg.Artifacts, cfg.DataDir)
	if err != nil {
		return err
	}
	if _, local := arts.(artifacts.Local); local && cfg.Database != "" {
		cfg.Log.Warn("the database can be shared by replicas but the artifact store is a local directory: every replica must see the same directory, or give --artifacts an s3:// bucket",
			"artifacts", arts.(artifacts.Local).Dir)
	}

	// Links to images in a local directory are signed, so a browser
	// downloads them without the API token (a bucket presigns its own).
	var downloadKey []byte
	if l, ok := arts.(artifacts.Local); ok {
		if downloadKey, err = l.DownloadKey(); err != nil {
			return err
		}
	}
	mets := metrics.New(db)
	var packages api.PackageSearcher
	if r, ok := cfg.Resolver.(*apt.Resolver); ok {
		packages = aptSearcher{resolver: r, distros: cfg.Distros, mirrors: cfg.Mirrors}
	}
	apiServer, err := api.New(api.Config{Store: db, Distros: cfg.Distros, Artifacts: arts, DownloadExpiry: cfg.DownloadExpiry, DownloadKey: downloadKey, RetentionMaxAge: cfg.Retention.MaxAge, TrustIdentityHeader: cfg.TrustIdentityHeader,
		MaxBodyBytes: cfg.MaxBodyBytes, BodyTimeout: cfg.BodyTimeout, Quota: cfg.Quota, RateLimit: cfg.RateLimit, LogStreams: cfg.LogStreams, Metrics: mets, Packages: packages, Log: cfg.Log, Version: cfg.Version, Targets: cfg.Targets})
	if err != nil {
		return err
	}
	// A worker is recorded at most every seenEvery and asks for a job
	// at least every WorkerPoll: both scale with WorkerPoll, and so does
	// how long the status page waits before it counts a worker as gone.
	var seenEvery, workerWindow time.Duration
	if cfg.WorkerPoll > 0 {
		seenEvery = cfg.WorkerPoll * 15 / 25
		workerWindow = cfg.WorkerPoll * 24 / 5 // store.ConnectedWindow at the default 25s
	}
	mux := http.NewServeMux()
	apiHandler := apiServer.Handler()
	mux.Handle(api.Prefix+"/", apiHandler)
	mux.Handle("GET /livez", apiHandler)
	mux.Handle("GET /readyz", apiHandler)
	// The public status page, before the UI's catch-all.
	prober := status.New(status.Config{Store: db, Artifacts: arts, Arches: status.OfferedArches(cfg.Distros, cfg.WorkerArches), Targets: cfg.Targets.Types(),
		Interval: cfg.StatusInterval, WorkerWindow: workerWindow, Log: cfg.Log})
	statusHandler := prober.Handler()
	mux.Handle("GET /status", statusHandler)
	mux.Handle("GET /status.json", statusHandler)
	mux.Handle("GET /status/", statusHandler)
	// Everything else is the web UI (and a JSON 404 for other /api/ paths).
	mux.Handle("/", ui.Handler())
	mux.Handle("GET /metrics", promhttp.HandlerFor(mets.Registry, promhttp.HandlerOpts{}))
	mux.Handle(workerproto.Prefix+"/", workerapi.Handler(workerapi.Config{Queue: db, Tokens: db, Workers: db, Artifacts: arts, WorkerKey: cfg.WorkerKey, Lease: cfg.Lease, BodyTimeout: cfg.BodyTimeout, Changed: apiServer.LogChanged, Log: cfg.Log, Metrics: mets,
		PollTimeout: cfg.WorkerPoll, SeenEvery: seenEvery}))

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	// No ReadTimeout or WriteTimeout: they would cut followed logs and
	// long downloads. Bodies are bounded per request (BodyTimeout), idle
	// keep-alive connections here.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	addr := ln.Addr().String()
	cfg.Log.Info("serving", "addr", addr, "data", cfg.DataDir, "workers", max(cfg.Workers, 0))

	// Jobs whose worker stopped heartbeating go back to the queue.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(cfg.RescueEvery)
		defer t.Stop()
		for {
			rescue(bg, db, mets, cfg.Log)
			select {
			case <-bg.Done():
				return
			case <-t.C:
			}
		}
	}()

	// Artifacts expire; the store's size is measured as they do.
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(cfg.Retention.Every)
		defer t.Stop()
		for {
			n, total, err := cleanup(bg, db, arts, cfg.Retention, time.Now(), cfg.Log)
			if err != nil && bg.Err() == nil {
				cfg.Log.Error("artifact retention", "err", err)
			} else {
				mets.ArtifactBytes.Set(float64(total))
				if n > 0 {
					cfg.Log.Info("artifacts expired", "composes", n, "bytes_left", total)
				}
			}
			select {
			case <-bg.Done():
				return
			case <-t.C:
			}
		}
	}()

	// The status page's prober checks that this replica answers HTTP.
	// It asks for the status page's stylesheet, which the access log
	// leaves out: that the database answers is a component of its own.
	readyClient := &http.Client{Timeout: 10 * time.Second}
	prober.SetReady(func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, "http://"+addr+"/status/status.css", nil)
		if err != nil {
			return err
		}
		resp, err := readyClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("the server answered %s", resp.Status)
		}
		return nil
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		prober.Run(bg)
	}()

	workerCtx, stopWorkers := context.WithCancel(context.WithoutCancel(ctx))
	var workers sync.WaitGroup
	for i := range max(cfg.Workers, 0) {
		w, err := worker.New(worker.Config{
			Client:   &workerproto.Client{BaseURL: "http://" + addr, Key: cfg.WorkerKey},
			Name:     fmt.Sprintf("in-process-%d", i+1),
			Arches:   cfg.WorkerArches,
			CacheDir: cfg.CacheDir, Mirrors: cfg.Mirrors, Resolver: cfg.Resolver, Distros: cfg.Distros,
			Builder: cfg.Builder, Log: cfg.Log.With("worker", i+1), Targets: cfg.Targets, UploadTimeout: cfg.UploadTimeout,
		})
		if err != nil {
			stopWorkers()
			stopBG()
			srv.Close()
			return err
		}
		workers.Add(1)
		go func() {
			defer workers.Done()
			_ = w.Run(workerCtx)
		}()
	}
	if cfg.Ready != nil {
		cfg.Ready(addr)
	}

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		stopWorkers()
		stopBG()
		return err
	}
	cfg.Log.Info("shutting down: handing running jobs back")
	stopWorkers()
	workers.Wait()
	stopBG()
	wg.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// rescue requeues the jobs whose worker stopped heartbeating, or gives
// them up once their attempts are used. A job given up ends its compose
// (a compose runs one job at a time) without passing through the worker
// API's finish, so the compose-success SLO counts it here: the service
// lost it, the user did nothing wrong.
func rescue(ctx context.Context, db store.Queue, mets *metrics.Metrics, log *slog.Logger) {
	requeued, failed, err := db.Rescue(ctx)
	if err != nil {
		if ctx.Err() == nil {
			log.Error("rescuing jobs", "err", err)
		}
		return
	}
	if requeued+failed > 0 {
		log.Warn("jobs whose worker stopped heartbeating", "requeued", requeued, "failed", failed)
	}
	mets.ComposesFinished.WithLabelValues(metrics.OutcomeFailure).Add(float64(failed))
}
