// Package config is kiln's configuration file: one documented struct whose
// zero values mean "default", resolved once at start-up.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/kiln-project/kiln/internal/target"
)

// DefaultPath is where the configuration file is looked for when --config
// is not given and the process runs as root.
const DefaultPath = "/etc/kiln/config.toml"

// Config is the configuration file (TOML).
//
//	cache_dir = "/var/cache/kiln"
//	[mirrors]
//	debian = "http://mirror.example/debian"
//	debian-security = "http://mirror.example/debian-security"
//	[depsolve]
//	metadata_max_age = "6h"
//	timeout = "60s"
type Config struct {
	// CacheDir holds downloaded metadata and packages. Default:
	// /var/cache/kiln as root, else $XDG_CACHE_HOME/kiln (~/.cache/kiln).
	CacheDir string `toml:"cache_dir"`
	// Mirrors maps a mirror role ("debian", "debian-security") to a URI.
	// Roles left out are found in the host's apt sources.
	Mirrors map[string]string `toml:"mirrors"`
	// Depsolve tunes package resolution.
	Depsolve Depsolve `toml:"depsolve"`
	// Targets are the upload types the service, its workers and
	// `kiln upload` deliver to, with the operator's accounts (see
	// target.Config).
	Targets target.Config `toml:"targets"`
}

// Depsolve tunes package resolution.
type Depsolve struct {
	// MetadataMaxAge is how old cached repository metadata may be before it
	// is fetched again. Default 6h.
	MetadataMaxAge Duration `toml:"metadata_max_age"`
	// Timeout bounds each network operation. Default 60s.
	Timeout Duration `toml:"timeout"`
}

// Duration is a time.Duration written as "6h" or "90s".
type Duration struct{ time.Duration }

// UnmarshalText reads "6h".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (e.g. \"6h\", \"90s\")", b)
	}
	d.Duration = v
	return nil
}

// Load reads the file at path. A missing file at the default path is not an
// error (the defaults apply); a missing file that was asked for is.
func Load(path string, explicit bool) (*Config, error) {
	var c Config
	if path != "" {
		md, err := toml.DecodeFile(path, &c)
		switch {
		case errors.Is(err, fs.ErrNotExist) && !explicit:
		case err != nil:
			return nil, fmt.Errorf("configuration %s: %w", path, err)
		default:
			if und := md.Undecoded(); len(und) > 0 {
				return nil, fmt.Errorf("configuration %s: unknown key %q", path, und[0].String())
			}
		}
	}
	c = c.WithDefaults()
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("configuration %s: %w", path, err)
	}
	return &c, nil
}

// WithDefaults fills every unset field with its default.
func (c Config) WithDefaults() Config {
	if c.CacheDir == "" {
		c.CacheDir = defaultCacheDir()
	}
	if c.Depsolve.MetadataMaxAge.Duration == 0 {
		c.Depsolve.MetadataMaxAge.Duration = 6 * time.Hour
	}
	if c.Depsolve.Timeout.Duration == 0 {
		c.Depsolve.Timeout.Duration = 60 * time.Second
	}
	return c
}

func (c Config) validate() error {
	for role, uri := range c.Mirrors {
		u, err := url.Parse(uri)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") || (u.Host == "" && u.Scheme != "file") {
			return fmt.Errorf("mirrors.%s: %q is not an http(s) or file URL", role, uri)
		}
	}
	if c.Depsolve.MetadataMaxAge.Duration < 0 || c.Depsolve.Timeout.Duration < 0 {
		return fmt.Errorf("depsolve: durations must be positive")
	}
	return nil
}

func defaultCacheDir() string {
	if os.Geteuid() == 0 {
		return "/var/cache/kiln"
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "kiln")
	}
	return filepath.Join(os.TempDir(), "kiln-cache")
}
