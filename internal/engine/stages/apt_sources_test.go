package stages

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/aptsources"
	"github.com/kiln-project/kiln/internal/manifest"
)

const testArmoredKey = `-----BEGIN PGP PUBLIC KEY BLOCK-----

mDMEZQAAABYJKwYBBAHaRw8BAQdAc2VjcmV0IHRlc3Qga2V5IG1hdGVyaWFsIGhl
cmU=
=abcd
-----END PGP PUBLIC KEY BLOCK-----
`

func TestAptSources(t *testing.T) {
	t.Parallel()
	tree := t.TempDir()
	writeTree(t, tree, "/etc/apt/sources.list", "deb http://example.invalid/debian bookworm main\n")
	env, _ := fileEnv(t, tree)
	s := &AptSources{Opts: manifest.AptSources{Sources: []manifest.AptSource{
		{Name: "debian", URIs: []string{"http://example.invalid/debian"}, Suites: []string{"bookworm", "bookworm-updates"}, Components: []string{"main", "contrib"}, SignedBy: "/usr/share/keyrings/debian-archive-keyring.gpg"},
		{Name: "vendor", URIs: []string{"https://example.invalid/apt"}, Suites: []string{"stable"}, Components: []string{"main"}, SignedBy: testArmoredKey},
		{Name: "local", URIs: []string{"file:/srv/repo"}, Suites: []string{"repo/"}, Trusted: true}, // a flat repository

	}}}
	require.NoError(t, s.Run(context.Background(), env))
	require.False(t, existsInTree(t, tree, "/etc/apt/sources.list"))

	require.Equal(t, "Types: deb\nURIs: http://example.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main contrib\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
		readTree(t, tree, "/etc/apt/sources.list.d/debian.sources"))
	require.Equal(t, "Types: deb\nURIs: https://example.invalid/apt\nSuites: stable\nComponents: main\nSigned-By:\n"+
		" -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n mDMEZQAAABYJKwYBBAHaRw8BAQdAc2VjcmV0IHRlc3Qga2V5IG1hdGVyaWFsIGhl\n cmU=\n =abcd\n -----END PGP PUBLIC KEY BLOCK-----\n",
		readTree(t, tree, "/etc/apt/sources.list.d/vendor.sources"))
	require.Equal(t, "Types: deb\nURIs: file:/srv/repo\nSuites: repo/\nTrusted: yes\n",
		readTree(t, tree, "/etc/apt/sources.list.d/local.sources"))

	// The files read back as apt reads deb822.
	entries, err := aptsources.Read(tree)
	require.NoError(t, err)
	require.Len(t, entries, 3)
	for _, e := range entries {
		require.Equal(t, []string{"deb"}, e.Types)
	}
}

func TestAptSourcesDebianTree(t *testing.T) {
	t.Parallel()
	tree := debianTree(t)
	env, log := testEnv(t, tree)
	s := &AptSources{Opts: manifest.AptSources{Sources: []manifest.AptSource{
		{Name: "debian", URIs: []string{"http://example.invalid/debian"}, Suites: []string{"bookworm"}, Components: []string{"main"}, SignedBy: "/usr/share/keyrings/debian-archive-keyring.gpg"},
		{Name: "vendor", URIs: []string{"https://example.invalid/apt"}, Suites: []string{"stable"}, Components: []string{"main"}, SignedBy: testArmoredKey},
	}}}
	require.NoError(t, s.Run(context.Background(), env), log.String())
	// apt itself parses the files (without network: it only prints).
	uris := inTree(t, tree, "apt-get", "--print-uris", "update")
	require.Contains(t, uris, "'http://example.invalid/debian/dists/bookworm/InRelease'")
	require.Contains(t, uris, "'https://example.invalid/apt/dists/stable/InRelease'")
	require.NotContains(t, strings.ToLower(uris), "malformed")
}

func TestAptSourcesRejects(t *testing.T) {
	t.Parallel()
	good := manifest.AptSource{Name: "x", URIs: []string{"http://example.invalid/debian"}, Suites: []string{"bookworm"}, Components: []string{"main"}}
	with := func(f func(*manifest.AptSource)) manifest.AptSource {
		s := good
		f(&s)
		return s
	}
	for _, tc := range []struct {
		name string
		src  manifest.AptSource
		want string
	}{
		{"name with slash", with(func(s *manifest.AptSource) { s.Name = "../../etc/passwd" }), "names a file"},
		{"empty name", with(func(s *manifest.AptSource) { s.Name = "" }), "names a file"},
		{"no uris", with(func(s *manifest.AptSource) { s.URIs = nil }), "at least one URI"},
		{"uri with newline", with(func(s *manifest.AptSource) { s.URIs = []string{"http://a/\nTrusted: yes"} }), "control characters"},
		{"uri with space", with(func(s *manifest.AptSource) { s.URIs = []string{"http://a b/"} }), "blanks"},
		{"relative uri", with(func(s *manifest.AptSource) { s.URIs = []string{"example/debian"} }), "not an absolute URI"},
		{"suite injection", with(func(s *manifest.AptSource) { s.Suites = []string{"bookworm\nTrusted: yes"} }), "not a suite name"},
		{"component injection", with(func(s *manifest.AptSource) { s.Components = []string{"main contrib"} }), "not a component name"},
		{"no components", with(func(s *manifest.AptSource) { s.Components = nil }), "give the components"},
		{"flat with components", with(func(s *manifest.AptSource) { s.Suites = []string{"repo/"} }), "takes no components"},
		{"relative keyring", with(func(s *manifest.AptSource) { s.SignedBy = "keyring.gpg" }), "neither an absolute keyring path"},
		{"keyring with newline", with(func(s *manifest.AptSource) { s.SignedBy = "/k.gpg\nTrusted: yes" }), "neither an absolute keyring path"},
		{"truncated key", with(func(s *manifest.AptSource) { s.SignedBy = "-----BEGIN PGP PUBLIC KEY BLOCK-----\nabc\n" }), "does not end with"},
		{"two keys", with(func(s *manifest.AptSource) { s.SignedBy = strings.TrimSpace(testArmoredKey) + "\n" + testArmoredKey }), "exactly one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tree := t.TempDir()
			env, _ := fileEnv(t, tree)
			err := (&AptSources{Opts: manifest.AptSources{Sources: []manifest.AptSource{tc.src}}}).Run(context.Background(), env)
			require.ErrorContains(t, err, tc.want)
		})
	}
	t.Run("duplicate names", func(t *testing.T) {
		t.Parallel()
		env, _ := fileEnv(t, t.TempDir())
		err := (&AptSources{Opts: manifest.AptSources{Sources: []manifest.AptSource{good, good}}}).Run(context.Background(), env)
		require.ErrorContains(t, err, "used twice")
	})
}
