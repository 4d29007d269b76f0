// Package testhost is what kiln's slow tests share: the cache directory
// that one test run uses for repository metadata, packages and fixtures,
// and the check that this host can build images at all.
package testhost

import (
	"os"
	"path/filepath"
	"testing"
)

// CacheDir is the cache shared by every test of a run:
// $KILN_TEST_CACHE_DIR, else kiln-test-cache in the temporary directory.
func CacheDir(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("KILN_TEST_CACHE_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "kiln-test-cache")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// RequireBuildHost marks a test that builds or boots a real image. It skips
// the test in the fast lane (go test -short), and, saying why, when this
// host cannot build images: problems are engine.HostProblems(nil).
// scripts/test runs without -short and fails a run in which any test was
// skipped, so on CI's machine this never hides a test.
func RequireBuildHost(tb testing.TB, problems []string) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("builds a real image: not in the fast lane (go test -short)")
	}
	if len(problems) > 0 {
		tb.Skipf("this host cannot build images: %v", problems)
	}
}
