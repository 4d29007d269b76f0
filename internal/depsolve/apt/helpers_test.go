package apt

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/aptsources"
	"github.com/kiln-project/kiln/internal/depsolve"
)

const debianKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// testCacheDir is the metadata cache shared by every test of a run and by
// other packages' tests: KILN_TEST_CACHE_DIR, or kiln-test-cache in the
// temporary directory.
func testCacheDir() string {
	if d := os.Getenv("KILN_TEST_CACHE_DIR"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "kiln-test-cache")
}

// requireApt skips the test when the host has no apt.
func requireApt(tb testing.TB) {
	tb.Helper()
	for _, p := range []string{"apt-get", "apt-cache"} {
		if _, err := exec.LookPath(p); err != nil {
			tb.Skipf("%s is not installed: %v", p, err)
		}
	}
}

// newResolver returns a resolver on the shared cache unless cfg names
// another.
func newResolver(tb testing.TB, cfg Config) *Resolver {
	tb.Helper()
	requireApt(tb)
	if cfg.CacheDir == "" {
		cfg.CacheDir = testCacheDir()
	}
	r, err := New(cfg)
	require.NoError(tb, err)
	return r
}

// hostMirrors finds the Debian mirrors in the host's apt configuration.
func hostMirrors(tb testing.TB) aptsources.Mirrors {
	tb.Helper()
	entries, err := aptsources.Read("/")
	require.NoError(tb, err)
	m, err := aptsources.FindDebianMirrors(entries, []string{"bookworm", "trixie"})
	require.NoError(tb, err, "the tests resolve against the host's Debian mirror")
	require.NotEmpty(tb, m.Security, "the host's apt sources list no security archive")
	return m
}

// debianRepos are the repositories of a Debian release on the host's
// mirror.
func debianRepos(m aptsources.Mirrors, codename string) []depsolve.Repository {
	return []depsolve.Repository{
		{ID: "debian", URI: m.Main, Suites: []string{codename, codename + "-updates"}, Components: []string{"main"}, SignedBy: debianKeyring},
		{ID: "debian-security", URI: m.Security, Suites: []string{codename + "-security"}, Components: []string{"main"}, SignedBy: debianKeyring},
	}
}

func bookworm(tb testing.TB, pkgs ...depsolve.PackageSpec) depsolve.Request {
	tb.Helper()
	return depsolve.Request{Arch: "amd64", Repositories: debianRepos(hostMirrors(tb), "bookworm"), Packages: pkgs}
}

func names(ns ...string) []depsolve.PackageSpec {
	var s []depsolve.PackageSpec
	for _, n := range ns {
		s = append(s, depsolve.PackageSpec{Name: n})
	}
	return s
}

func byName(res *depsolve.Result) map[string]depsolve.Package {
	m := map[string]depsolve.Package{}
	for _, p := range res.Packages {
		m[p.Name] = p
	}
	return m
}

// within fails the test when fn takes longer than d.
func within(tb testing.TB, d time.Duration, fn func()) {
	tb.Helper()
	start := time.Now()
	fn()
	if took := time.Since(start); took > d {
		tb.Errorf("took %v, want at most %v", took, d)
	}
}
