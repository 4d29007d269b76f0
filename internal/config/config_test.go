package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func write(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	return p
}

func TestLoad(t *testing.T) {
	t.Parallel()
	c, err := Load(filepath.Join(t.TempDir(), "absent.toml"), false)
	require.NoError(t, err, "a missing default file means defaults")
	assert.NotEmpty(t, c.CacheDir)
	assert.Equal(t, 6*time.Hour, c.Depsolve.MetadataMaxAge.Duration)
	assert.Equal(t, 60*time.Second, c.Depsolve.Timeout.Duration)

	c, err = Load(write(t, "cache_dir = \"/srv/cache\"\n[mirrors]\ndebian = \"http://mirror.example/debian\"\n[depsolve]\nmetadata_max_age = \"30m\"\n"), true)
	require.NoError(t, err)
	assert.Equal(t, "/srv/cache", c.CacheDir)
	assert.Equal(t, "http://mirror.example/debian", c.Mirrors["debian"])
	assert.Equal(t, 30*time.Minute, c.Depsolve.MetadataMaxAge.Duration)
	assert.Equal(t, 60*time.Second, c.Depsolve.Timeout.Duration, "unset keys keep their default")
}

func TestLoadRejects(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, text, want string }{
		{"unknown key", "cache_dri = \"/x\"\n", `unknown key "cache_dri"`},
		{"mirror not a URL", "[mirrors]\ndebian = \"mirror.example/debian\"\n", "mirrors.debian"},
		{"mirror with a shell", "[mirrors]\ndebian = \"http://x/$(reboot)\"\n", ""},
		{"bad duration", "[depsolve]\ntimeout = \"soon\"\n", `"soon" is not a duration`},
		{"negative duration", "[depsolve]\ntimeout = \"-1s\"\n", "durations must be positive"},
		{"not TOML", "cache_dir = \n", "configuration"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(write(t, tc.text), true)
			if tc.want == "" {
				require.NoError(t, err, "a URL is only ever passed as one argument, never to a shell")
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err := Load(filepath.Join(t.TempDir(), "absent.toml"), true)
	require.ErrorContains(t, err, "absent.toml", "a file asked for must exist")
}
