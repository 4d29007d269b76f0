package hostile

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// hostileSuite and hostileComponent name the test repository's one suite.
const (
	hostileSuite     = "hostile"
	hostileComponent = "main"
)

// hostileRepo is a signed apt repository served on the loopback interface
// that holds one package, kiln-hostile, the way a tenant's own repository
// would hold theirs.
type hostileRepo struct {
	URL    string // base URL of the archive
	Key    string // ASCII-armored public key that signs it
	Server *httptest.Server
}

// requireTools skips the test when the host lacks a tool the catalogue
// needs to make its own packages and repository.
func requireTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("%s is not installed: %v", n, err)
		}
	}
}

// serveHostileRepo serves a signed archive on 127.0.0.1 holding the
// package kiln-hostile, made of what files returns for the server's port
// (paths relative to the package root, "DEBIAN/postinst" among them): the
// server starts first, so the package can know where it came from.
func serveHostileRepo(t *testing.T, files func(port int) map[string]fileSpec) *hostileRepo {
	t.Helper()
	requireTools(t, "dpkg-deb", "apt-ftparchive", "gpg", "gpgconf")
	root := t.TempDir()
	srv := httptest.NewServer(http.FileServer(http.Dir(root)))
	t.Cleanup(srv.Close)
	pool := filepath.Join(root, "pool", hostileComponent)
	require.NoError(t, os.MkdirAll(pool, 0o755))
	buildDeb(t, files(srv.Listener.Addr().(*net.TCPAddr).Port), filepath.Join(pool, "kiln-hostile_1.0_all.deb"))
	writeIndex(t, root)
	key := signRelease(t, filepath.Join(root, "dists", hostileSuite))
	return &hostileRepo{URL: srv.URL, Key: key, Server: srv}
}

// fileSpec is one file of a package: its content and mode.
type fileSpec struct {
	Data string
	Mode os.FileMode
}

// buildDeb writes files into a package tree and builds it with dpkg-deb,
// every file owned by root.
func buildDeb(t *testing.T, files map[string]fileSpec, out string) {
	t.Helper()
	dir := t.TempDir()
	for p, f := range files {
		dst := filepath.Join(dir, p)
		require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
		require.NoError(t, os.WriteFile(dst, []byte(f.Data), f.Mode))
		require.NoError(t, os.Chmod(dst, f.Mode))
	}
	run(t, dir, "dpkg-deb", "--root-owner-group", "--build", dir, out)
}

// writeIndex writes the Packages index of the pool and the suite's Release
// file, as apt-ftparchive lays them out for a suite with one component.
func writeIndex(t *testing.T, root string) {
	t.Helper()
	suite := filepath.Join(root, "dists", hostileSuite)
	bin := filepath.Join(suite, hostileComponent, "binary-amd64")
	require.NoError(t, os.MkdirAll(bin, 0o755))
	packages := run(t, root, "apt-ftparchive", "packages", "pool")
	require.NoError(t, os.WriteFile(filepath.Join(bin, "Packages"), []byte(packages), 0o644))
	release := run(t, root, "apt-ftparchive",
		"-o", "APT::FTPArchive::Release::Suite="+hostileSuite,
		"-o", "APT::FTPArchive::Release::Codename="+hostileSuite,
		"-o", "APT::FTPArchive::Release::Components="+hostileComponent,
		"-o", "APT::FTPArchive::Release::Architectures=amd64",
		"release", filepath.Join("dists", hostileSuite))
	require.NoError(t, os.WriteFile(filepath.Join(suite, "Release"), []byte(release), 0o644))
}

// signRelease makes a throw-away signing key, writes InRelease and
// Release.gpg next to suite's Release and returns the public key, armored.
func signRelease(t *testing.T, suite string) string {
	t.Helper()
	// gpg-agent's socket lives in the home directory, whose path must stay
	// short: a temporary directory of its own, not a test's nested one.
	home, err := os.MkdirTemp("", "kiln-gpg")
	require.NoError(t, err)
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		os.RemoveAll(home)
	})
	gpg := func(args ...string) string {
		return run(t, suite, "gpg", append([]string{"--homedir", home, "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
	}
	const uid = "kiln hostile catalogue <hostile@example.invalid>"
	gpg("--quick-gen-key", uid, "ed25519", "sign", "never")
	gpg("--local-user", uid, "--clearsign", "--output", "InRelease", "Release")
	gpg("--local-user", uid, "--armor", "--detach-sign", "--output", "Release.gpg", "Release")
	return strings.TrimSpace(gpg("--armor", "--export", uid)) + "\n"
}

// run runs a host tool in dir and returns its standard output; it fails
// the test, showing both outputs, if the tool fails.
func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	var stdout, stderr strings.Builder
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "%s %v: %s%s", name, args, stdout.String(), stderr.String())
	return stdout.String()
}
