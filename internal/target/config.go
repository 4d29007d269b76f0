package target

import (
	"fmt"
	"time"
)

// Config is the [targets] section of kiln's configuration file: which
// upload types this server delivers to, and the operator's account in
// each. Secrets (keys, passwords) are never written here in the clear:
// each section names the environment variables or files they are read
// from, so the file can be shown and kept in version control.
//
//	[targets]
//	timeout = "2h"
//	[targets.aws]
//	region = "eu-west-1"
//	bucket = "kiln-imports"
//
// local and aws.s3 are always there: with no [targets.s3], aws.s3 is the
// service's own artifact store and its signed download link.
type Config struct {
	// Timeout bounds one upload, from the first byte to the registered
	// image. Default 2h.
	Timeout time.Duration `toml:"timeout"`
	// S3 makes aws.s3 put images into this bucket rather than leave them
	// in the artifact store.
	S3 *S3Config `toml:"s3"`
	// GCP imports gce images into Compute Engine (upload type gcp).
	GCP *GCPConfig `toml:"gcp"`
}

// DefaultTimeout bounds an upload when Config.Timeout is zero.
const DefaultTimeout = 2 * time.Hour

// S3Config is the bucket aws.s3 delivers to.
type S3Config struct {
	Bucket string `toml:"bucket"`
}

// GCPConfig is the project and bucket the gcp upload type imports into
// (see docs/targets/gcp.md).
//
//	[targets.gcp]
//	project = "my-project"
//	bucket = "my-project-kiln-imports"
//	credentials_file = "/etc/kiln/gcp-service-account.json"
type GCPConfig struct {
	// Project is the project the images are made in.
	Project string `toml:"project"`
	// Bucket holds the disk tarballs while Compute Engine imports them.
	Bucket string `toml:"bucket"`
	// Prefix starts the staging objects' names ("" or e.g. "kiln/").
	Prefix string `toml:"prefix"`
	// Location is where the images are stored (a region or
	// multi-region, e.g. "eu"); empty: Compute Engine's default.
	Location string `toml:"location"`
	// CredentialsFile is a service account's JSON key file (or an
	// external account's configuration). Empty: the file
	// GOOGLE_APPLICATION_CREDENTIALS names, else the application
	// default credentials (the metadata server on Google Cloud).
	CredentialsFile string `toml:"credentials_file"`
	// StorageEndpoint and ComputeEndpoint replace the APIs' addresses
	// (an emulator, a private endpoint); a bare scheme://host adds the
	// API's path.
	StorageEndpoint string `toml:"storage_endpoint"`
	ComputeEndpoint string `toml:"compute_endpoint"`
	// PartSize is the size of the parts a big file is uploaded in, in
	// parallel, and then composed (default 64 MiB; at least 1 MiB).
	PartSize int64 `toml:"part_size"`
	// Parallel is how many parts go up at once (default 4).
	Parallel int `toml:"parallel"`
	// MaxAttempts bounds the tries of one request (default 6) and
	// RetryDelay is the wait before the first retry, doubled after each
	// (default 1s).
	MaxAttempts int           `toml:"max_attempts"`
	RetryDelay  time.Duration `toml:"retry_delay"`
	// PollInterval is how often the import's operation is looked at
	// (default 10s).
	PollInterval time.Duration `toml:"poll_interval"`
}

// Env reads an environment variable; tests give their own.
type Env func(string) string

// Build makes the registry of the configured targets. baseURL is the
// API's address that local download links start from ("" for paths).
func Build(cfg Config, env Env, baseURL string) (Registry, error) {
	targets := []Target{Local{BaseURL: baseURL}}
	if cfg.S3 == nil {
		targets = append(targets, StoreLink{BaseURL: baseURL})
	} else {
		return nil, fmt.Errorf("[targets.s3]: not implemented yet")
	}
	if cfg.GCP != nil {
		t, err := NewGCP(*cfg.GCP, env)
		if err != nil {
			return nil, err
		}
		targets = append(targets, t)
	}
	return New(targets...), nil
}

// TimeoutOf is the configured upload timeout, or the default.
func (c Config) TimeoutOf() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}
