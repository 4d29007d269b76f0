package target_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/engine/stages"
	"github.com/kiln-project/kiln/internal/manifest"
	"github.com/kiln-project/kiln/internal/ociindex"
	"github.com/kiln-project/kiln/internal/ociindex/ocitest"
	"github.com/kiln-project/kiln/internal/target"
	"github.com/kiln-project/kiln/internal/target/targettest"
)

var containerImage = target.Image{Type: "container", Format: "oci", BootMode: "none", Arch: "x86_64"}

func noEnv(string) string { return "" }

func TestContainerCheck(t *testing.T) {
	c, err := target.NewContainer(target.RegistryConfig{Host: "registry.example.com"}, noEnv)
	require.NoError(t, err)
	assert.Equal(t, "container", c.Type())
	assert.NoError(t, c.Check(containerImage, json.RawMessage(`{"name":"team/app"}`)))
	assert.NoError(t, c.Check(containerImage, json.RawMessage(`{"name":"team/app","tag":"v1.2_3"}`)))
	for options, want := range map[string]string{
		`{}`:                              "options.name: missing: name the repository to push to, e.g. \"team/app\"",
		`{"name":"Team/App"}`:             `options.name: "Team/App" is not a repository name: use lowercase letters, digits and separators (. _ -) between them, components joined by /, e.g. "team/app" (the registry's host is the server's)`,
		`{"name":"team/app:v1"}`:          `options.name: "team/app:v1" is not a repository name`,
		`{"name":"team//app"}`:            `options.name: "team//app" is not a repository name`,
		`{"name":"app","tag":"-x"}`:       `options.tag: "-x" is not a tag: use up to 128 letters, digits, _ . and -, not starting with . or -`,
		`{"name":"app","tag":"a b"}`:      `options.tag: "a b" is not a tag`,
		`{"name":"app","repository":"x"}`: "options.repository: unknown option (this upload type takes name, tag)",
		`{"name":3}`:                      "options.name: must be a JSON string, not number",
	} {
		err := c.Check(containerImage, json.RawMessage(options))
		if assert.Error(t, err, options) {
			assert.Contains(t, err.Error(), want, options)
		}
	}
	err = c.Check(target.Image{Type: "qcow2", Format: "qcow2", BootMode: "hybrid", Arch: "x86_64"}, json.RawMessage(`{"name":"Bad"}`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `the container upload type pushes container images: image type "qcow2" makes a qcow2 file, not an OCI archive; build the "container" image type, or deliver this one with aws.s3`)
	assert.Contains(t, err.Error(), `options.name: "Bad" is not a repository name`, "every problem is given")
	gz := containerImage
	gz.Compression = "gzip"
	assert.ErrorContains(t, c.Check(gz, json.RawMessage(`{"name":"app"}`)), "pushes an uncompressed OCI archive, not a gzip-compressed one")
}

func TestRegistryConfig(t *testing.T) {
	env := func(k string) string {
		if k == "REG_PASSWORD" {
			return "s3cret"
		}
		return ""
	}
	for _, tc := range []struct {
		cfg  target.RegistryConfig
		want []string
	}{
		{target.RegistryConfig{}, []string{"[targets.registry].host: missing"}},
		{target.RegistryConfig{Host: "registry.example.com/team"}, []string{`[targets.registry].host: "registry.example.com/team" is not a host: give the host (and port) only, and the path in namespace`}},
		{target.RegistryConfig{Host: "registry.example.com", Insecure: true}, []string{`[targets.registry].insecure: plain HTTP is allowed only to a loopback host (localhost, 127.0.0.1, [::1]), not "registry.example.com"`}},
		{target.RegistryConfig{Host: "10.0.0.5:5000", Insecure: true}, []string{"[targets.registry].insecure: plain HTTP is allowed only to a loopback host"}},
		{target.RegistryConfig{Host: "r.example", Namespace: "Team"}, []string{`[targets.registry].namespace: "Team" is not a repository path`}},
		{target.RegistryConfig{Host: "r.example", Username: "u"}, []string{"[targets.registry].password_env: missing"}},
		{target.RegistryConfig{Host: "r.example", Username: "u", PasswordEnv: "UNSET"}, []string{"[targets.registry].password_env: the environment variable UNSET is empty or not set"}},
		{target.RegistryConfig{Host: "r.example", PasswordEnv: "REG_PASSWORD"}, []string{"[targets.registry].username: missing"}},
		{target.RegistryConfig{Host: "r.example", Username: "u", PasswordFile: "/nonexistent/password"}, []string{"[targets.registry].password_file: open /nonexistent/password"}},
		{target.RegistryConfig{Jobs: -1}, []string{"[targets.registry].host: missing", "[targets.registry].jobs: must be 1 or more"}},
	} {
		_, err := target.NewContainer(tc.cfg, env)
		if assert.Error(t, err, "%+v", tc.cfg) {
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), "s3cret")
		}
	}
	for _, ok := range []target.RegistryConfig{
		{Host: "localhost:5000", Insecure: true},
		{Host: "127.0.0.1:5000", Insecure: true},
		{Host: "[::1]:5000", Insecure: true},
		{Host: "registry.example.com", Namespace: "kiln/images", Username: "u", PasswordEnv: "REG_PASSWORD"},
	} {
		_, err := target.NewContainer(ok, env)
		assert.NoError(t, err, "%+v", ok)
	}

	reg, err := target.Build(target.Config{Registry: &target.RegistryConfig{Host: "registry.example.com"}}, noEnv, "")
	require.NoError(t, err)
	assert.Equal(t, []string{"aws.s3", "container", "local"}, reg.Types())
	assert.True(t, target.WantsFile(reg["container"]))
	_, err = target.Build(target.Config{Registry: &target.RegistryConfig{}}, noEnv, "")
	assert.ErrorContains(t, err, "[targets.registry].host: missing")
}

// kilnContainerArchive makes an OCI archive the way kiln's container image
// type does (the engine's OCI archive stage, on a small tree with a few
// MiB of random bytes), and returns its path.
func kilnContainerArchive(t *testing.T) string {
	t.Helper()
	tree := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(tree, "etc"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(tree, "etc", "hostname"), []byte("box\n"), 0o644))
	noise := make([]byte, 3<<20)
	rand.Read(noise)
	require.NoError(t, os.WriteFile(filepath.Join(tree, "noise"), noise, 0o644))
	out := filepath.Join(t.TempDir(), "image.oci.tar")
	var log bytes.Buffer
	env := &stages.Env{Input: tree, Output: out, Work: t.TempDir(), Epoch: time.Unix(1700000000, 0), Log: &log}
	stage := &stages.OCIArchive{Opts: manifest.OCIArchive{Arch: "amd64", Config: manifest.OCIConfig{Cmd: []string{"/bin/sh"}}}}
	require.NoError(t, stage.Run(context.Background(), env), log.String())
	return out
}

func artifactOf(t *testing.T, p string) target.Artifact {
	fi, err := os.Stat(p)
	require.NoError(t, err)
	return target.Artifact{ComposeID: "c-registry", Name: "kiln-c-registry", Filename: filepath.Base(p), Path: p, Size: fi.Size(), Image: containerImage}
}

// recordingReporter keeps the steps and byte counts reported.
type recordingReporter struct {
	mu    sync.Mutex
	steps []string
	bytes [][2]int64
}

func (r *recordingReporter) Step(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps = append(r.steps, s)
}

func (r *recordingReporter) Bytes(done, total int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bytes = append(r.bytes, [2]int64{done, total})
}

// countRequests counts the requests of reqs that are method to a path
// containing part.
func countRequests(reqs []string, method, part string) int {
	n := 0
	for _, r := range reqs {
		m, p, _ := strings.Cut(r, " ")
		if m == method && strings.Contains(p, part) {
			n++
		}
	}
	return n
}

func TestContainerPushesKilnsArchive(t *testing.T) {
	reg := targettest.StartRegistry(t, targettest.RegistryOptions{Auth: true})
	cfg := reg.Config
	cfg.Namespace = "kiln"
	c, err := target.NewContainer(cfg, reg.Env)
	require.NoError(t, err)
	target.SetContainerBackoff(c, time.Millisecond)
	archive := kilnContainerArchive(t)
	var rep recordingReporter
	res, err := c.Upload(context.Background(), artifactOf(t, archive), json.RawMessage(`{"name":"team/app","tag":"v1"}`), &rep)
	require.NoError(t, err)
	assert.Equal(t, reg.Host+"/kiln/team/app:v1", res.URL)
	assert.Regexp(t, `^sha256:[0-9a-f]{64}$`, res.Digest)
	assert.Equal(t, res.Digest, reg.Inspect(t, "kiln/team/app", "v1"), "skopeo sees the manifest pushed")
	assert.Equal(t, []string{target.StepUploading}, rep.steps)
	require.NotEmpty(t, rep.bytes)
	last := rep.bytes[len(rep.bytes)-1]
	assert.Equal(t, last[1], last[0], "the last progress report is the whole push")
	assert.Greater(t, last[1], int64(3<<20), "the total counts the layer's bytes")
	assert.Empty(t, reg.OpenUploads(t))

	// The default tag is latest.
	res, err = c.Upload(context.Background(), artifactOf(t, archive), json.RawMessage(`{"name":"team/app"}`), target.NoReporter{})
	require.NoError(t, err)
	assert.Equal(t, reg.Host+"/kiln/team/app:latest", res.URL)
	assert.Equal(t, res.Digest, reg.Inspect(t, "kiln/team/app", "latest"))
}

func TestContainerRetriesFailedBlobUploads(t *testing.T) {
	reg := targettest.StartRegistry(t, targettest.RegistryOptions{})
	c, err := target.NewContainer(reg.Config, reg.Env)
	require.NoError(t, err)
	target.SetContainerBackoff(c, time.Millisecond)
	p := filepath.Join(t.TempDir(), "image.oci.tar")
	digest := targettest.WriteOCIArchive(t, p, 3, 1<<20)
	reg.FailBlobUploads(2)
	res, err := c.Upload(context.Background(), artifactOf(t, p), json.RawMessage(`{"name":"app"}`), target.NoReporter{})
	require.NoError(t, err)
	assert.Equal(t, digest, res.Digest)
	assert.Equal(t, digest, reg.Inspect(t, "app", "latest"))
	assert.Equal(t, 2, reg.Failed(), "two blob uploads failed and were tried again")
	// The sessions of the failed attempts are canceled too.
	assert.Empty(t, reg.OpenUploads(t))
}

// cancelInSecondBlob cancels a push when, the registry having committed
// its first blob, the push starts sending the next one's bytes: as a
// worker that dies (or a compose that is canceled) in the middle of a
// push, with an upload session open.
type cancelInSecondBlob struct {
	base      http.RoundTripper
	cancel    context.CancelFunc
	mu        sync.Mutex
	committed bool
}

func (c *cancelInSecondBlob) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	if c.committed && req.Method == http.MethodPatch {
		c.cancel()
	}
	c.mu.Unlock()
	resp, err := c.base.RoundTrip(req)
	if err == nil && req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/blobs/uploads/") && resp.StatusCode == http.StatusCreated {
		c.mu.Lock()
		c.committed = true
		c.mu.Unlock()
	}
	return resp, err
}

func TestContainerCanceledThenRequeuedPushesOnlyWhatIsMissing(t *testing.T) {
	reg := targettest.StartRegistry(t, targettest.RegistryOptions{})
	c, err := target.NewContainer(reg.Config, reg.Env)
	require.NoError(t, err)
	target.SetContainerBackoff(c, time.Millisecond)
	p := filepath.Join(t.TempDir(), "image.oci.tar")
	digest := targettest.WriteOCIArchive(t, p, 4, 1<<20)
	a := artifactOf(t, p)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	target.SetContainerTransport(c, &cancelInSecondBlob{base: http.DefaultTransport, cancel: cancel})
	target.SetContainerJobs(c, 1)
	_, err = c.Upload(ctx, a, json.RawMessage(`{"name":"app","tag":"v1"}`), target.NoReporter{})
	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), "container: push the image: ")
	assert.Empty(t, reg.OpenUploads(t), "the canceled push leaves no upload session open")
	assert.Zero(t, countRequests(reg.Requests(), http.MethodPut, "/manifests/"), "no manifest was pushed")
	firstCommits := countRequests(reg.Requests(), http.MethodPut, "/blobs/uploads/")
	require.Equal(t, 1, firstCommits)
	require.Equal(t, 2, countRequests(reg.Requests(), http.MethodPost, "/blobs/uploads/"), "the second blob's session was open when the push was canceled")

	// The requeued job pushes again: the blobs already there are not sent
	// twice, and the tag gets the one manifest.
	before := len(reg.Requests())
	target.SetContainerTransport(c, http.DefaultTransport)
	target.SetContainerJobs(c, 4)
	res, err := c.Upload(context.Background(), a, json.RawMessage(`{"name":"app","tag":"v1"}`), target.NoReporter{})
	require.NoError(t, err)
	assert.Equal(t, digest, res.Digest)
	assert.Equal(t, digest, reg.Inspect(t, "app", "v1"))
	second := reg.Requests()[before:]
	assert.Equal(t, 4, countRequests(second, http.MethodPut, "/blobs/uploads/"), "only the blobs the first push did not commit are uploaded")
	assert.Empty(t, reg.OpenUploads(t))
}

func TestContainerFailures(t *testing.T) {
	p := filepath.Join(t.TempDir(), "image.oci.tar")
	targettest.WriteOCIArchive(t, p, 2, 256<<10)

	t.Run("registry down", func(t *testing.T) {
		reg := targettest.StartRegistry(t, targettest.RegistryOptions{})
		reg.Stop()
		cfg := reg.Config
		cfg.Host = reg.Direct // nothing listens there any more
		c, err := target.NewContainer(cfg, reg.Env)
		require.NoError(t, err)
		target.SetContainerBackoff(c, time.Millisecond)
		_, err = c.Upload(context.Background(), artifactOf(t, p), json.RawMessage(`{"name":"app"}`), target.NoReporter{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "container: push the image: ")
		assert.Contains(t, err.Error(), "connection refused")
		assert.Empty(t, reg.OpenUploads(t))
	})
	t.Run("500 on every blob upload", func(t *testing.T) {
		// With credentials: the sessions' deletion authenticates too.
		reg := targettest.StartRegistry(t, targettest.RegistryOptions{Auth: true})
		c, err := target.NewContainer(reg.Config, reg.Env)
		require.NoError(t, err)
		target.SetContainerBackoff(c, time.Millisecond)
		reg.FailBlobUploads(-1)
		_, err = c.Upload(context.Background(), artifactOf(t, p), json.RawMessage(`{"name":"app"}`), target.NoReporter{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "container: push the image: ")
		assert.Contains(t, err.Error(), "injected failure")
		reqs := reg.Requests()
		require.NotZero(t, countRequests(reqs, http.MethodPost, "/blobs/uploads/"), "upload sessions were opened")
		assert.NotZero(t, countRequests(reqs, http.MethodDelete, "/blobs/uploads/"), "and canceled")
		assert.Empty(t, reg.OpenUploads(t), "no upload session is left open")
	})
	t.Run("credentials refused", func(t *testing.T) {
		reg := targettest.StartRegistry(t, targettest.RegistryOptions{Auth: true})
		env := func(k string) string {
			if k == reg.Config.PasswordEnv {
				return "not-the-password"
			}
			return ""
		}
		c, err := target.NewContainer(reg.Config, env)
		require.NoError(t, err)
		target.SetContainerBackoff(c, time.Millisecond)
		_, err = c.Upload(context.Background(), artifactOf(t, p), json.RawMessage(`{"name":"app"}`), target.NoReporter{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "container: push the image: ")
		assert.Contains(t, err.Error(), "401 Unauthorized")
		assert.NotContains(t, err.Error(), "not-the-password")
		assert.Empty(t, reg.OpenUploads(t))
	})
	t.Run("not an OCI archive", func(t *testing.T) {
		c, err := target.NewContainer(target.RegistryConfig{Host: "127.0.0.1:1", Insecure: true}, noEnv)
		require.NoError(t, err)
		raw := filepath.Join(t.TempDir(), "disk.raw")
		require.NoError(t, os.WriteFile(raw, make([]byte, 4096), 0o644))
		_, err = c.Upload(context.Background(), artifactOf(t, raw), json.RawMessage(`{"name":"app"}`), target.NoReporter{})
		assert.ErrorContains(t, err, "container: read the image: disk.raw is not an OCI image layout: it has no oci-layout file")
	})
}

func TestContainerRefusesPlainHTTPUnlessInsecure(t *testing.T) {
	reg := targettest.StartRegistry(t, targettest.RegistryOptions{})
	cfg := reg.Config
	cfg.Insecure = false
	c, err := target.NewContainer(cfg, reg.Env)
	require.NoError(t, err)
	target.SetContainerBackoff(c, time.Millisecond)
	p := filepath.Join(t.TempDir(), "image.oci.tar")
	targettest.WriteOCIArchive(t, p, 1, 1024)
	_, err = c.Upload(context.Background(), artifactOf(t, p), json.RawMessage(`{"name":"app"}`), target.NoReporter{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "container: push the image: ")
	assert.Empty(t, countRequests(reg.Requests(), http.MethodPost, "/blobs/uploads/"), "nothing was sent over plain HTTP")
}

// otherDigest answers the manifest HEAD after a push with another digest,
// as a registry where the tag moved (or the manifest was rewritten) would.
type otherDigest struct{ base http.RoundTripper }

func (o otherDigest) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := o.base.RoundTrip(req)
	if err == nil && req.Method == http.MethodHead && strings.Contains(req.URL.Path, "/manifests/") && resp.StatusCode == http.StatusOK {
		resp.Header.Set("Docker-Content-Digest", "sha256:"+strings.Repeat("0", 64))
	}
	return resp, err
}

func TestContainerChecksTheTagsDigest(t *testing.T) {
	reg := targettest.StartRegistry(t, targettest.RegistryOptions{})
	c, err := target.NewContainer(reg.Config, reg.Env)
	require.NoError(t, err)
	target.SetContainerBackoff(c, time.Millisecond)
	p := filepath.Join(t.TempDir(), "image.oci.tar")
	digest := targettest.WriteOCIArchive(t, p, 1, 1024)
	target.SetContainerTransport(c, otherDigest{http.DefaultTransport})
	_, err = c.Upload(context.Background(), artifactOf(t, p), json.RawMessage(`{"name":"app"}`), target.NoReporter{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "container: check the pushed image: the registry has sha256:000")
	assert.Contains(t, err.Error(), "not the "+digest+" pushed")
}

// skopeo runs skopeo against the test registry (directly, not through
// its fault proxy) with its credentials, and returns its output.
func skopeo(t *testing.T, reg *targettest.Registry, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Fatal("skopeo is not installed: run ./scripts/setup")
	}
	args = append([]string{args[0], "--tls-verify=false"}, args[1:]...)
	if reg.Username != "" {
		args = append([]string{args[0], "--creds", reg.Username + ":" + reg.Password}, args[1:]...)
	}
	if args[0] == "copy" {
		// copy names its source's options --src-…
		for i, a := range args[1:] {
			switch {
			case a == "--creds":
				args[i+1] = "--src-creds"
			case a == "--tls-verify=false":
				args[i+1] = "--src-tls-verify=false"
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "skopeo", args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "skopeo %s: %s", strings.Join(args, " "), stderr.String())
	return out
}

// multiArchArchive assembles an amd64 and an arm64 archive (sharing a
// layer) into one multi-platform archive, and returns its path, its
// index and the two images' manifest digests by architecture.
func multiArchArchive(t *testing.T) (string, *ociindex.Index, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	shared := ocitest.Layer(t, 1<<20)
	var inputs []string
	digests := map[string]string{}
	for _, arch := range []string{"amd64", "arm64"} {
		p := filepath.Join(dir, "app-debian-12-"+arch+".oci.tar")
		digests[arch] = ocitest.WriteArchive(t, p, ocitest.Spec{Arch: arch, Layers: []v1.Layer{shared, ocitest.Layer(t, 512<<10)}, RefName: "app:1.0"})
		inputs = append(inputs, p)
	}
	out := filepath.Join(dir, "app-debian-12-multiarch.oci.tar")
	idx, err := ociindex.Assemble(out, inputs, ociindex.Options{})
	require.NoError(t, err)
	return out, idx, digests
}

func TestContainerPushesAMultiArchitectureIndex(t *testing.T) {
	reg := targettest.StartRegistry(t, targettest.RegistryOptions{Auth: true})
	c, err := target.NewContainer(reg.Config, reg.Env)
	require.NoError(t, err)
	target.SetContainerBackoff(c, time.Millisecond)
	archive, idx, digests := multiArchArchive(t)
	var rep recordingReporter
	res, err := c.Upload(context.Background(), artifactOf(t, archive), json.RawMessage(`{"name":"team/app","tag":"1.0"}`), &rep)
	require.NoError(t, err)
	assert.Equal(t, reg.Host+"/team/app:1.0", res.URL)
	assert.Equal(t, idx.Digest.String(), res.Digest, "the result is the index's digest")
	require.NotEmpty(t, rep.bytes)
	last := rep.bytes[len(rep.bytes)-1]
	assert.Equal(t, last[1], last[0], "the last progress report is the whole push")
	assert.Empty(t, reg.OpenUploads(t))
	// The shared layer went once: 2 configs, 1 shared and 2 own layers.
	assert.Equal(t, 5, countRequests(reg.Requests(), http.MethodPut, "/blobs/uploads/"))

	ref := "docker://" + reg.Direct + "/team/app:1.0"
	raw := skopeo(t, reg, "inspect", "--raw", ref)
	var index v1.IndexManifest
	require.NoError(t, json.Unmarshal(raw, &index), string(raw))
	assert.Equal(t, types.OCIImageIndex, index.MediaType)
	assert.Equal(t, idx.Digest.String(), "sha256:"+sha256Hex(raw), "the registry serves the index pushed, byte for byte")
	require.Len(t, index.Manifests, 2)
	platforms := map[string]string{}
	for _, m := range index.Manifests {
		require.NotNil(t, m.Platform)
		platforms[m.Platform.String()] = m.Digest.String()
	}
	assert.Equal(t, map[string]string{"linux/amd64": digests["amd64"], "linux/arm64": digests["arm64"]}, platforms)

	// Each platform's image is there whole: skopeo picks it by
	// architecture, and copies it out with every blob.
	for _, arch := range []string{"amd64", "arm64"} {
		var got struct{ Architecture, Os, Digest string }
		require.NoError(t, json.Unmarshal(skopeo(t, reg, "inspect", "--override-os", "linux", "--override-arch", arch, ref), &got))
		assert.Equal(t, arch, got.Architecture)
		assert.Equal(t, "linux", got.Os)
		dir := filepath.Join(t.TempDir(), arch)
		skopeo(t, reg, "copy", "--override-os", "linux", "--override-arch", arch, ref, "oci:"+dir+":app")
		copied, err := layout.ImageIndexFromPath(dir)
		require.NoError(t, err)
		im, err := copied.IndexManifest()
		require.NoError(t, err)
		require.Len(t, im.Manifests, 1)
		assert.Equal(t, digests[arch], im.Manifests[0].Digest.String(), "the %s image pulled is the one built", arch)
		img, err := copied.Image(im.Manifests[0].Digest)
		require.NoError(t, err)
		require.NoError(t, validate.Image(img), "every blob of the %s image arrived whole", arch)
	}

	// Pushing it again sends no blob twice and keeps the tag's digest.
	before := len(reg.Requests())
	res, err = c.Upload(context.Background(), artifactOf(t, archive), json.RawMessage(`{"name":"team/app","tag":"1.0"}`), target.NoReporter{})
	require.NoError(t, err)
	assert.Equal(t, idx.Digest.String(), res.Digest)
	assert.Zero(t, countRequests(reg.Requests()[before:], http.MethodPut, "/blobs/uploads/"))
}

func TestContainerRefusesADamagedIndex(t *testing.T) {
	c, err := target.NewContainer(target.RegistryConfig{Host: "127.0.0.1:1", Insecure: true}, noEnv)
	require.NoError(t, err)
	archive, idx, digests := multiArchArchive(t)
	dir := ocitest.Unpack(t, archive)

	// An image of the index without its config blob.
	raw, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(digests["arm64"], "sha256:")))
	require.NoError(t, err)
	var m v1.Manifest
	require.NoError(t, json.Unmarshal(raw, &m))
	require.NoError(t, os.Remove(filepath.Join(dir, "blobs", "sha256", m.Config.Digest.Hex)))
	missing := filepath.Join(t.TempDir(), "missing.oci.tar")
	ocitest.Pack(t, dir, missing)
	_, err = c.Upload(context.Background(), artifactOf(t, missing), json.RawMessage(`{"name":"app"}`), target.NoReporter{})
	assert.ErrorContains(t, err, "container: read the image: the image linux/arm64 "+digests["arm64"]+": the blob "+m.Config.Digest.String()+" is missing")

	// An index whose bytes are not the digest index.json names.
	indexBlob := filepath.Join(dir, "blobs", "sha256", idx.Digest.Hex)
	b, err := os.ReadFile(indexBlob)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(indexBlob, bytes.Replace(b, []byte("arm64"), []byte("arm65"), 1), 0o644))
	damaged := filepath.Join(t.TempDir(), "damaged.oci.tar")
	ocitest.Pack(t, dir, damaged)
	_, err = c.Upload(context.Background(), artifactOf(t, damaged), json.RawMessage(`{"name":"app"}`), target.NoReporter{})
	assert.ErrorContains(t, err, "container: read the image: the image index's blob has digest sha256:")
	assert.ErrorContains(t, err, "not the "+idx.Digest.String()+" it is named by")
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
