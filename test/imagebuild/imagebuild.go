// Package imagebuild runs real builds for the test packages under test/:
// the engine with its cache in a given directory, the build log kept
// beside the artifact and its last lines shown when the build fails.
package imagebuild

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/manifest"
)

// Build builds m with the engine's cache in cacheDir and returns the
// artifact's path in out. epoch, if not nil, is the build's timestamp.
func Build(t *testing.T, m *manifest.Manifest, cacheDir, out string, epoch *time.Time) string {
	t.Helper()
	e, err := engine.New(engine.Config{CacheDir: cacheDir, Epoch: epoch})
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(out, 0o755))
	logPath := filepath.Join(out, "build.log")
	log, err := os.Create(logPath)
	require.NoError(t, err)
	defer log.Close()
	dst := filepath.Join(out, m.Output.Filename)
	_, err = e.Build(context.Background(), m, log, func(ctx context.Context, artifact string, _ map[string][]byte) error {
		return engine.CopyFile(ctx, artifact, dst)
	})
	if err != nil {
		b, _ := os.ReadFile(logPath)
		lines := strings.Split(string(b), "\n")
		if len(lines) > 80 {
			lines = lines[len(lines)-80:]
		}
		t.Fatalf("build failed: %v\nlast lines of the build log:\n%s", err, strings.Join(lines, "\n"))
	}
	return dst
}
