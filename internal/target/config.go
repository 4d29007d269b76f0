package target

import (
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
	// AWS makes the aws upload type: images become AMIs in the
	// operator's account, shared with the accounts a request names.
	AWS *AWSConfig `toml:"aws"`
	// Registry is where the container upload type pushes (see
	// RegistryConfig).
	Registry *RegistryConfig `toml:"registry"`
	// OCI is the Object Storage bucket oci.objectstorage uploads to (see
	// OCIConfig).
	OCI *OCIConfig `toml:"oci"`
	// Azure makes azure images in the operator's subscription.
	Azure *AzureConfig `toml:"azure"`
	// GCP imports gce images into Compute Engine (upload type gcp).
	GCP *GCPConfig `toml:"gcp"`
}

// DefaultTimeout bounds an upload when Config.Timeout is zero.
const DefaultTimeout = 2 * time.Hour

// S3Config is the bucket aws.s3 delivers to (see docs/targets/aws.s3.md).
//
//	[targets.s3]
//	bucket = "kiln-images"
//	prefix = "composes/"
//	region = "eu-west-1"
//	expiry = "72h"
type S3Config struct {
	// Bucket is the bucket images go to.
	Bucket string `toml:"bucket"`
	// Prefix starts every object's key (the key is
	// <prefix><compose id>/<file name>).
	Prefix string `toml:"prefix"`
	// Expiry is how long the download link works: default and at most 7
	// days, as S3's presigned URLs allow.
	Expiry Duration `toml:"expiry"`
	AWSAccess
	S3Endpoint
}

// AWSConfig is the operator's account the aws upload type imports
// images into (see docs/targets/aws.md).
//
//	[targets.aws]
//	region = "eu-west-1"
//	bucket = "kiln-imports"           # staging bucket in that region
//	[targets.aws.buckets]
//	us-east-1 = "kiln-imports-use1"   # a request may name this region too
type AWSConfig struct {
	// Bucket is the staging bucket in Region the disk is uploaded to for
	// EC2 to import; the object is deleted once imported.
	Bucket string `toml:"bucket"`
	// Buckets are staging buckets of other regions, by region: a request
	// may ask for one of these regions (its options.region).
	Buckets map[string]string `toml:"buckets"`
	// Prefix starts the staging objects' keys.
	Prefix string `toml:"prefix"`
	// EC2Endpoint is EC2's URL; empty for AWS's own. The S3 endpoint
	// and addressing are the S3Endpoint fields (endpoint, path_style).
	EC2Endpoint string `toml:"ec2_endpoint"`
	// PollInterval is how often the import's progress is asked for
	// (default 15s); ImportTimeout bounds the import (default 1h).
	PollInterval  Duration `toml:"poll_interval"`
	ImportTimeout Duration `toml:"import_timeout"`
	AWSAccess
	S3Endpoint
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
		t, err := NewS3(*cfg.S3, env)
		if err != nil {
			return nil, err
		}
		targets = append(targets, t)
	}
	if cfg.AWS != nil {
		t, err := NewAWS(*cfg.AWS, env)
		if err != nil {
			return nil, err
		}
		targets = append(targets, t)
	}
	if cfg.Registry != nil {
		c, err := NewContainer(*cfg.Registry, env)
		if err != nil {
			return nil, err
		}
		targets = append(targets, c)
	}
	if cfg.OCI != nil {
		o, err := NewOCIObjectStorage(*cfg.OCI, env)
		if err != nil {
			return nil, err
		}
		targets = append(targets, o)
	}
	if cfg.Azure != nil {
		z, err := NewAzure(*cfg.Azure, env)
		if err != nil {
			return nil, err
		}
		targets = append(targets, z)
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
