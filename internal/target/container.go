package target

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// RegistryConfig is the [targets.registry] section: the container
// registry the container upload type pushes to, in the operator's
// account.
//
//	[targets.registry]
//	host = "registry.example.com"
//	namespace = "kiln"
//	username = "kiln-push"
//	password_env = "KILN_REGISTRY_PASSWORD"
type RegistryConfig struct {
	// Host is the registry's host, with its port if not 443.
	Host string `toml:"host"`
	// Namespace, when set, is the path every pushed repository is put
	// under: a request's name "team/app" goes to <host>/<namespace>/team/app.
	Namespace string `toml:"namespace"`
	// Username is the account pushed as; empty pushes anonymously.
	Username string `toml:"username"`
	// PasswordEnv names the environment variable holding the password
	// (or token), PasswordFile a file holding it; one of them is needed
	// with a username.
	PasswordEnv  string `toml:"password_env"`
	PasswordFile string `toml:"password_file"`
	// Insecure speaks plain HTTP to the registry. Only a loopback host
	// may be insecure (a registry on this machine, as tests run); any
	// other is reached over HTTPS only.
	Insecure bool `toml:"insecure"`
	// Jobs is how many blobs are pushed at once. Default 4.
	Jobs int `toml:"jobs"`
}

// Container is the container upload type: an OCI archive (kiln's
// container image type, one image, or the image index of a
// multi-architecture build) pushed to the operator's registry as
// <host>/[<namespace>/]<name>:<tag>. image-builder's API has no registry
// upload; kiln names it "container" as osbuild-composer's cloud API does.
type Container struct {
	host      string
	namespace string
	auth      authn.Authenticator
	insecure  bool
	jobs      int
	// backoff is how pushes retry a failed request (5xx, 429, a dropped
	// connection).
	backoff remote.Backoff
	// transport carries the registry requests (http.DefaultTransport
	// unless a test sets its own).
	transport http.RoundTripper
}

// containerOptions are the container upload type's options.
type containerOptions struct {
	// Name is the repository, under the configured namespace.
	Name string `json:"name"`
	// Tag is the tag pushed; default "latest".
	Tag string `json:"tag,omitempty"`
}

// repositoryPath is a repository's path in the distribution
// specification's grammar: lowercase components joined by "/".
var repositoryPath = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)

// tagName is a tag in the distribution specification's grammar.
var tagName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// NewContainer makes the container target of a [targets.registry]
// section, reading its password from env or the file it names.
func NewContainer(cfg RegistryConfig, env Env) (*Container, error) {
	var problems []string
	host := strings.TrimSpace(cfg.Host)
	switch {
	case host == "":
		problems = append(problems, "[targets.registry].host: missing: name the registry's host, e.g. \"registry.example.com\" or \"registry.example.com:5000\"")
	case strings.Contains(host, "/"):
		problems = append(problems, fmt.Sprintf("[targets.registry].host: %q is not a host: give the host (and port) only, and the path in namespace", host))
	default:
		if _, err := name.NewRegistry(host, name.StrictValidation); err != nil {
			problems = append(problems, fmt.Sprintf("[targets.registry].host: %q is not a registry host: %v", host, err))
		} else if cfg.Insecure && !loopbackHost(host) {
			problems = append(problems, fmt.Sprintf("[targets.registry].insecure: plain HTTP is allowed only to a loopback host (localhost, 127.0.0.1, [::1]), not %q: serve the registry over HTTPS", host))
		}
	}
	ns := strings.Trim(cfg.Namespace, "/")
	if ns != "" && !repositoryPath.MatchString(ns) {
		problems = append(problems, fmt.Sprintf("[targets.registry].namespace: %q is not a repository path: use lowercase letters, digits and separators (. _ -) between them, components joined by /", cfg.Namespace))
	}
	if cfg.Jobs < 0 {
		problems = append(problems, "[targets.registry].jobs: must be 1 or more (or 0 for the default, 4)")
	}
	auth := authn.Anonymous
	if cfg.PasswordEnv != "" && cfg.PasswordFile != "" {
		problems = append(problems, "[targets.registry].password_env: set password_env or password_file, not both")
	}
	switch {
	case cfg.Username == "" && (cfg.PasswordEnv != "" || cfg.PasswordFile != ""):
		problems = append(problems, "[targets.registry].username: missing: a password is configured, name the account it belongs to")
	case cfg.Username != "":
		password, err := readSecret(cfg.PasswordEnv, cfg.PasswordFile, env)
		if err != nil {
			problems = append(problems, "[targets.registry]."+err.Error())
		} else {
			auth = &authn.Basic{Username: cfg.Username, Password: password}
		}
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	jobs := cfg.Jobs
	if jobs == 0 {
		jobs = 4
	}
	return &Container{
		host:      host,
		namespace: ns,
		auth:      auth,
		insecure:  cfg.Insecure,
		jobs:      jobs,
		backoff:   remote.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.1, Steps: 5},
		transport: http.DefaultTransport,
	}, nil
}

// readSecret reads a secret from the environment variable envName or
// the file fileName; its error names the field at fault, without the
// section.
func readSecret(envName, fileName string, env Env) (string, error) {
	switch {
	case envName != "":
		v := env(envName)
		if v == "" {
			return "", fmt.Errorf("password_env: the environment variable %s is empty or not set: set it to the password", envName)
		}
		return v, nil
	case fileName != "":
		b, err := os.ReadFile(fileName)
		if err != nil {
			return "", fmt.Errorf("password_file: %v", err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("password_file: %s is empty", fileName)
		}
		return v, nil
	default:
		return "", fmt.Errorf("password_env: missing: name the environment variable (or password_file, the file) holding the password of the username")
	}
}

// loopbackHost reports whether host (with an optional port) is this
// machine.
func loopbackHost(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.Trim(h, "[]")
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Type implements Target.
func (*Container) Type() string { return "container" }

// Check implements Target: an OCI archive, uncompressed (kiln's
// container image type), and a valid repository name and tag.
func (c *Container) Check(img Image, options json.RawMessage) error {
	var o containerOptions
	if err := DecodeOptions(options, &o); err != nil {
		return err
	}
	var problems []string
	if img.Format != "oci" {
		problems = append(problems, fmt.Sprintf("the container upload type pushes container images: image type %q makes a %s file, not an OCI archive; build the \"container\" image type, or deliver this one with aws.s3", img.Type, img.Format))
	} else if img.Compression != "" {
		problems = append(problems, fmt.Sprintf("the container upload type pushes an uncompressed OCI archive, not a %s-compressed one (the layers inside are compressed already)", img.Compression))
	}
	if _, _, err := c.reference(o); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// reference is where options push to, and the tag.
func (c *Container) reference(o containerOptions) (name.Tag, string, error) {
	if o.Name == "" {
		return name.Tag{}, "", fmt.Errorf("options.name: missing: name the repository to push to, e.g. \"team/app\"")
	}
	if !repositoryPath.MatchString(o.Name) {
		return name.Tag{}, "", fmt.Errorf("options.name: %q is not a repository name: use lowercase letters, digits and separators (. _ -) between them, components joined by /, e.g. \"team/app\" (the registry's host is the server's)", o.Name)
	}
	tag := o.Tag
	if tag == "" {
		tag = "latest"
	}
	if !tagName.MatchString(tag) {
		return name.Tag{}, "", fmt.Errorf("options.tag: %q is not a tag: use up to 128 letters, digits, _ . and -, not starting with . or -", o.Tag)
	}
	repo := o.Name
	if c.namespace != "" {
		repo = c.namespace + "/" + repo
	}
	opts := []name.Option{name.StrictValidation}
	if c.insecure {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.NewTag(c.host+"/"+repo+":"+tag, opts...)
	if err != nil {
		return name.Tag{}, "", fmt.Errorf("options.name: %q: %v", o.Name, err)
	}
	return ref, c.host + "/" + repo + ":" + tag, nil
}

// Upload implements Target: it pushes the archive's image with its blobs
// in parallel, retrying failed requests, then checks that the registry's
// manifest for the tag is the one pushed. An archive holding an image
// index pushes every platform's image (its blobs, then its manifest),
// then the index under the tag; the result's digest is the index's. A push that fails or is
// canceled cancels the blob upload sessions it opened, so the registry
// keeps no half-written upload; blobs that did land are content
// addressed, and a second push of the same compose (a requeued job)
// finds them there and pushes only what is missing, then the same
// manifest under the same tag.
func (c *Container) Upload(ctx context.Context, a Artifact, options json.RawMessage, r Reporter) (Result, error) {
	fail := func(step string, err error) (Result, error) {
		return Result{}, &StepError{Target: c.Type(), Step: step, Err: err}
	}
	var o containerOptions
	if err := DecodeOptions(options, &o); err != nil {
		return fail("read the options", err)
	}
	ref, shown, err := c.reference(o)
	if err != nil {
		return fail("read the options", err)
	}
	archive, err := openOCIArchive(a.Path)
	if err != nil {
		return fail("read the image", err)
	}
	defer archive.Close()
	img, idx, err := archive.Contents()
	if err != nil {
		return fail("read the image", err)
	}
	var pushed interface{ Digest() (v1.Hash, error) } = img
	if idx != nil {
		pushed = idx
	}
	want, err := pushed.Digest()
	if err != nil {
		return fail("read the image", err)
	}

	r.Step(StepUploading)
	sessions := newUploadSessions(c.transport, c.insecure)
	progress := make(chan v1.Update, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var last time.Time
		for u := range progress {
			if now := time.Now(); now.Sub(last) >= 250*time.Millisecond || u.Complete == u.Total {
				r.Bytes(u.Complete, u.Total)
				last = now
			}
		}
	}()
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuth(c.auth),
		remote.WithJobs(c.jobs),
		remote.WithTransport(sessions),
		remote.WithRetryBackoff(c.backoff),
		remote.WithProgress(progress),
		remote.WithUserAgent("kiln"),
	}
	if idx != nil {
		err = remote.WriteIndex(ref, idx, opts...)
	} else {
		err = remote.Write(ref, img, opts...)
	}
	<-done
	// Sessions still open are those of failed attempts, retried or not.
	// After a push that succeeded, one the registry will not cancel is
	// left to its upload purging.
	cerr := sessions.cancelOpen()
	if err != nil {
		if cerr != nil {
			err = fmt.Errorf("%w (and canceling its open blob uploads: %v)", err, cerr)
		}
		return fail("push the image", err)
	}

	desc, err := remote.Head(ref, remote.WithContext(ctx), remote.WithAuth(c.auth), remote.WithTransport(sessions), remote.WithRetryBackoff(c.backoff))
	if err != nil {
		return fail("check the pushed image", err)
	}
	if desc.Digest != want {
		return fail("check the pushed image", fmt.Errorf("the registry has %s under %s, not the %s pushed", desc.Digest, shown, want))
	}
	return Result{URL: shown, Digest: want.String()}, nil
}
