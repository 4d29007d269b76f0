package stages

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/manifest"
)

func TestNTP(t *testing.T) {
	t.Parallel()
	tree := t.TempDir()
	env, _ := fileEnv(t, tree)
	servers := []string{"0.pool.example", "192.0.2.10", "2001:db8::123", "fe80::1%eth0"}
	require.NoError(t, (&NTP{Opts: manifest.NTP{Servers: servers}}).Run(context.Background(), env))
	require.Equal(t, "# Written by kiln from the image's NTP servers.\n[Time]\nNTP=0.pool.example 192.0.2.10 2001:db8::123 fe80::1%eth0\n",
		readTree(t, tree, "/etc/systemd/timesyncd.conf.d/kiln.conf"))
}

func TestNTPRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		servers []string
		want    string
	}{
		{"none", nil, "no servers"},
		{"space", []string{"a b"}, "not a host name"},
		{"newline injects a section", []string{"a\n[Time]\nFallbackNTP=evil"}, "not a host name"},
		{"option-like", []string{"-x"}, "not a host name"},
		{"empty", []string{""}, "not a host name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env, _ := fileEnv(t, t.TempDir())
			require.ErrorContains(t, (&NTP{Opts: manifest.NTP{Servers: tc.servers}}).Run(context.Background(), env), tc.want)
		})
	}
}
