// Package apt resolves package requests with apt itself.
//
// Each set of repositories (with an architecture) gets a private apt
// configuration and state under CacheDir/metadata/<key>/: its own
// etc/apt with the repositories as deb822 sources signed by their keyrings,
// its own lists and package cache, and an empty dpkg status file, so the
// closure is what a fresh system would install and the host's apt and dpkg
// state are never read or written. apt-get and apt-cache run with argument
// vectors and APT_CONFIG pointing at that configuration; the metadata is
// fetched with "apt-get update" only when it is missing, older than
// Config.MaxAge, or a refresh is asked for. See docs/depsolve.md.
package apt

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kiln-project/kiln/internal/depsolve"
)

// Config configures a Resolver. The zero value of each field means its
// default.
type Config struct {
	// CacheDir holds the metadata cache (CacheDir/metadata/<key>/).
	// Default: the user's cache directory + "/kiln".
	CacheDir string
	// MaxAge is how old metadata may be before it is fetched again.
	// Default 6h.
	MaxAge time.Duration
	// Offline uses only cached metadata, however old, and never touches
	// the network.
	Offline bool
	// Refresh fetches the metadata of each repository set again the first
	// time this Resolver uses it, whatever its age.
	Refresh bool
	// Timeout bounds each network operation (apt's Acquire::*::Timeout)
	// and each local apt run. Default 60s. A whole metadata fetch may take
	// up to 10×Timeout.
	Timeout time.Duration
	// Log receives progress (fetches at Info, apt commands at Debug).
	// Default: discarded.
	Log *slog.Logger
	// NoSolutionCache makes apt solve every request, even one it answered
	// before against the same metadata.
	NoSolutionCache bool
	// AptGet and AptCache are the programs to run. Default: looked up in
	// PATH.
	AptGet, AptCache string
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.CacheDir == "" {
		if d, err := os.UserCacheDir(); err == nil {
			c.CacheDir = filepath.Join(d, "kiln")
		}
	}
	if c.MaxAge == 0 {
		c.MaxAge = 6 * time.Hour
	}
	if c.Timeout == 0 {
		c.Timeout = 60 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.AptGet == "" {
		c.AptGet = "apt-get"
	}
	if c.AptCache == "" {
		c.AptCache = "apt-cache"
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.CacheDir == "" {
		errs = append(errs, errors.New("no cache directory: set one, or HOME or XDG_CACHE_HOME"))
	}
	if c.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("maximum metadata age %v is negative", c.MaxAge))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %v is negative", c.Timeout))
	}
	if c.Offline && c.Refresh {
		errs = append(errs, errors.New("offline and refresh exclude each other"))
	}
	return errors.Join(errs...)
}

// Resolver solves requests with apt. It is safe for concurrent use, also
// by several processes sharing one cache directory.
type Resolver struct {
	cfg      Config
	aptGet   string
	aptCache string
	// env is the environment apt runs with: a C locale (its messages are
	// parsed), PATH and the proxy settings captured at construction.
	env []string

	mu        sync.Mutex
	refreshed map[string]bool // metadata keys fetched by this Resolver
}

var _ depsolve.Resolver = (*Resolver)(nil)

// New returns a Resolver. It fails when apt-get or apt-cache is missing.
func New(cfg Config) (*Resolver, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("apt resolver configuration: %w", err)
	}
	aptGet, err := exec.LookPath(cfg.AptGet)
	if err != nil {
		return nil, fmt.Errorf("apt resolver needs apt-get (install apt): %w", err)
	}
	aptCache, err := exec.LookPath(cfg.AptCache)
	if err != nil {
		return nil, fmt.Errorf("apt resolver needs apt-cache (install apt): %w", err)
	}
	abs, err := filepath.Abs(cfg.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("apt resolver cache directory: %w", err)
	}
	cfg.CacheDir = abs
	return &Resolver{
		cfg:       cfg,
		aptGet:    aptGet,
		aptCache:  aptCache,
		env:       aptEnv(os.Environ()),
		refreshed: map[string]bool{},
	}, nil
}

// aptEnv keeps what apt needs from environ: PATH and proxy settings.
func aptEnv(environ []string) []string {
	env := []string{"LC_ALL=C.UTF-8", "LANGUAGE="}
	path := "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "path":
			if k == "PATH" {
				path = kv
			}
		case "http_proxy", "https_proxy", "ftp_proxy", "no_proxy":
			env = append(env, kv)
		}
	}
	return append(env, path)
}
