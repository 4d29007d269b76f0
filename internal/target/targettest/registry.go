// Package targettest starts, for tests, servers that speak the protocols
// of kiln's upload targets: the real servers where one exists as a
// program (a container registry), else small servers that speak exactly
// the requests the official SDK sends and check each one. Each starter
// takes the test, stops its server when the test ends, and returns the
// target.Config section that delivers to it and what a test needs to
// verify what landed.
package targettest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"golang.org/x/crypto/bcrypt"

	"github.com/kiln-project/kiln/internal/target"
)

// RegistryBinary is Debian's build of the distribution registry
// (package docker-registry).
const RegistryBinary = "/usr/bin/docker-registry"

// RegistryOptions say how StartRegistry sets the registry up.
type RegistryOptions struct {
	// Auth makes the registry ask for a username and password (htpasswd,
	// HTTP basic); the Config returned pushes with them.
	Auth bool
}

// Registry is a running registry (the docker-registry program on a
// loopback port, storing in a temporary directory) behind a proxy that
// can fail blob uploads on demand.
type Registry struct {
	// Config is the [targets.registry] section that pushes to the
	// registry through the proxy; Env gives the password it names.
	Config target.RegistryConfig
	Env    target.Env
	// Host is the proxy's host:port, where Config pushes; Direct is the
	// registry's own.
	Host   string
	Direct string
	// Username and Password are the registry's account when Auth is set.
	Username, Password string
	// Root is the registry's storage directory.
	Root string

	cmd  *exec.Cmd
	logs *bytes.Buffer

	mu        sync.Mutex
	failNext  int
	failed    int
	requests  []string
	stopped   bool
	proxySrvr *httptest.Server
}

// registryPasswordEnv is the variable Registry.Config reads its password from.
const registryPasswordEnv = "KILN_TEST_REGISTRY_PASSWORD"

// StartRegistry starts a registry for the test. A missing docker-registry
// fails the test, naming ./scripts/setup, which installs it.
func StartRegistry(tb testing.TB, opts RegistryOptions) *Registry {
	tb.Helper()
	if _, err := os.Stat(RegistryBinary); err != nil {
		tb.Fatalf("the container registry (%s, Debian's docker-registry package) is not installed: run ./scripts/setup", RegistryBinary)
	}
	dir := tb.TempDir()
	root := filepath.Join(dir, "storage")
	port, err := registryFreePort()
	if err != nil {
		tb.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	r := &Registry{Direct: addr, Root: root, logs: &bytes.Buffer{}}
	auth := ""
	if opts.Auth {
		r.Username, r.Password = "kiln", registryRandomHex(12)
		hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcrypt.MinCost)
		if err != nil {
			tb.Fatal(err)
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(r.Username+":"+string(hash)+"\n"), 0o600); err != nil {
			tb.Fatal(err)
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: kiln-test\n    path: %s\n", htpasswd)
	}
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: %s
%s`, root, addr, registryRandomHex(16), auth)
	configFile := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
		tb.Fatal(err)
	}
	r.cmd = exec.Command(RegistryBinary, "serve", configFile)
	r.cmd.Stdout, r.cmd.Stderr = &registryLogWriter{w: r.logs, mu: &r.mu}, &registryLogWriter{w: r.logs, mu: &r.mu}
	if err := r.cmd.Start(); err != nil {
		tb.Fatalf("starting %s: %v", RegistryBinary, err)
	}
	tb.Cleanup(r.Stop)
	if err := registryWaitHTTP("http://"+addr+"/v2/", 15*time.Second); err != nil {
		tb.Fatalf("the registry did not start: %v\n%s", err, r.Logs())
	}

	upstream := &url.URL{Scheme: "http", Host: addr}
	proxy := httputil.NewSingleHostReverseProxy(upstream)
	r.proxySrvr = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.fault(req) {
			io.Copy(io.Discard, req.Body)
			http.Error(w, `{"errors":[{"code":"UNKNOWN","message":"injected failure"}]}`, http.StatusInternalServerError)
			return
		}
		proxy.ServeHTTP(w, req)
	}))
	tb.Cleanup(r.proxySrvr.Close)
	r.Host = strings.TrimPrefix(r.proxySrvr.URL, "http://")
	r.Config = target.RegistryConfig{Host: r.Host, Insecure: true}
	r.Env = func(string) string { return "" }
	if opts.Auth {
		r.Config.Username, r.Config.PasswordEnv = r.Username, registryPasswordEnv
		password := r.Password
		r.Env = func(k string) string {
			if k == registryPasswordEnv {
				return password
			}
			return ""
		}
	}
	return r
}

// fault records req and tells whether to fail it: a blob upload request
// (PATCH or PUT to an upload session) while failures are asked for.
func (r *Registry) fault(req *http.Request) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, req.Method+" "+req.URL.Path)
	if r.failNext == 0 || !strings.Contains(req.URL.Path, "/blobs/uploads/") || (req.Method != http.MethodPatch && req.Method != http.MethodPut) {
		return false
	}
	if r.failNext > 0 {
		r.failNext--
	}
	r.failed++
	return true
}

// Failed is how many requests the proxy has failed.
func (r *Registry) Failed() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// FailBlobUploads answers the next n blob upload requests (PATCH or PUT
// to an upload session) with 500 in place of the registry; n < 0 fails
// every one from now on, 0 stops failing.
func (r *Registry) FailBlobUploads(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failNext = n
}

// Requests are the requests the proxy received, as "METHOD path".
func (r *Registry) Requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.requests...)
}

// OpenUploads are the blob upload sessions the registry holds, as
// "repository/id": each is a directory under a repository's _uploads in
// its storage with the session's start time (startedat) or the bytes
// received so far (data). A push that failed or was canceled should
// leave none. A session canceled by DELETE loses both; the registry
// leaves an empty hash state behind, which is not a session (a request
// to it is answered BLOB_UPLOAD_UNKNOWN).
func (r *Registry) OpenUploads(tb testing.TB) []string {
	tb.Helper()
	repos := filepath.Join(r.Root, "docker", "registry", "v2", "repositories")
	var open []string
	err := filepath.WalkDir(repos, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if d.IsDir() && filepath.Base(filepath.Dir(p)) == "_uploads" {
			if registryFileExists(filepath.Join(p, "startedat")) || registryFileExists(filepath.Join(p, "data")) {
				rel, _ := filepath.Rel(repos, p)
				open = append(open, strings.Replace(filepath.ToSlash(rel), "/_uploads/", "/", 1))
			}
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return open
}

// Stop stops the registry (the proxy stays, answering 502), as a test of
// a registry that is down needs.
func (r *Registry) Stop() {
	r.mu.Lock()
	stopped := r.stopped
	r.stopped = true
	r.mu.Unlock()
	if stopped || r.cmd == nil || r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Kill()
	r.cmd.Wait()
}

// Logs is what the registry printed.
func (r *Registry) Logs() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.logs.String()
}

// Inspect runs skopeo inspect on <Direct>/<repository>:<tag> and returns
// the manifest digest it reports. A missing skopeo fails the test, naming
// ./scripts/setup.
func (r *Registry) Inspect(tb testing.TB, repository, tag string) string {
	tb.Helper()
	if _, err := exec.LookPath("skopeo"); err != nil {
		tb.Fatal("skopeo is not installed: run ./scripts/setup")
	}
	args := []string{"inspect", "--tls-verify=false", "--format", "{{.Digest}}"}
	if r.Username != "" {
		args = append(args, "--creds", r.Username+":"+r.Password)
	}
	args = append(args, "docker://"+r.Direct+"/"+repository+":"+tag)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "skopeo", args...)
	cmd.Env = append(os.Environ(), "HOME="+tb.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("skopeo inspect %s/%s:%s: %v\n%s", r.Direct, repository, tag, err, out)
	}
	return strings.TrimSpace(string(out))
}

// WriteOCIArchive writes a random image of the given number of layers,
// each of about layerSize bytes, as an OCI image layout in a tar at p
// (the format of kiln's container image type), and returns its manifest
// digest.
func WriteOCIArchive(tb testing.TB, p string, layers int, layerSize int64) string {
	tb.Helper()
	img, err := random.Image(layerSize, int64(layers))
	if err != nil {
		tb.Fatal(err)
	}
	digest, err := img.Digest()
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		tb.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		tb.Fatal(err)
	}
	if err := tarOCILayout(dir, p); err != nil {
		tb.Fatal(err)
	}
	return digest.String()
}

// tarOCILayout packs dir's files into a tar at p.
func tarOCILayout(dir, p string) error {
	out, err := os.Create(p)
	if err != nil {
		return err
	}
	defer out.Close()
	tw := tar.NewWriter(out)
	err = filepath.WalkDir(dir, func(f string, d fs.DirEntry, err error) error {
		if err != nil || f == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, f)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		in, err := os.Open(f)
		if err != nil {
			return err
		}
		defer in.Close()
		_, err = io.Copy(tw, in)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return out.Close()
}

// registryWaitHTTP waits until u answers HTTP at all.
func registryWaitHTTP(u string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func registryFileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// registryFreePort finds a loopback port nothing listens on.
func registryFreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func registryRandomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// registryLogWriter serializes writes to w.
type registryLogWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *registryLogWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
