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
	prio := 700
	s := &AptSources{Opts: manifest.AptSources{Sources: []manifest.AptSource{
		{Name: "debian", URIs: []string{"http://example.invalid/debian"}, Suites: []string{"bookworm"}, Components: []string{"main"}, SignedBy: "/usr/share/keyrings/debian-archive-keyring.gpg"},
		{Name: "vendor", Title: "Vendor packages", URIs: []string{"https://example.invalid/apt"}, Suites: []string{"stable"}, Components: []string{"main"}, SignedBy: testArmoredKey, Priority: &prio},
		{Name: "off", Title: "Switched off", URIs: []string{"https://off.example.invalid/apt"}, Suites: []string{"stable"}, Components: []string{"main"}, Disabled: true},
	}}}
	require.NoError(t, s.Run(context.Background(), env), log.String())
	// apt itself parses the files (without network: it only prints).
	uris := inTree(t, tree, "apt-get", "--print-uris", "update")
	require.Contains(t, uris, "'http://example.invalid/debian/dists/bookworm/InRelease'")
	require.Contains(t, uris, "'https://example.invalid/apt/dists/stable/InRelease'")
	require.NotContains(t, strings.ToLower(uris), "malformed")
	require.NotContains(t, uris, "off.example.invalid", "apt skips a source with Enabled: no")
	// apt reads the preferences file without complaint.
	policy := inTree(t, tree, "sh", "-c", "apt-cache policy 2>&1")
	require.NotContains(t, policy, "E: ")
	require.NotContains(t, policy, "W: ")
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
		{"filename with slash", with(func(s *manifest.AptSource) { s.Filename = "../sources" }), "filename"},
		{"title with newline", with(func(s *manifest.AptSource) { s.Title = "Extra\nTrusted: yes" }), "one line"},
		{"priority out of range", with(func(s *manifest.AptSource) { p := 40000; s.Priority = &p }), "not an apt pin priority"},
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

// Every field of a blueprint repository reaches the image: its file name,
// its human name, whether it is enabled, and its pin priority.
func TestAptSourcesRepositoryFields(t *testing.T) {
	t.Parallel()
	tree := t.TempDir()
	env, _ := fileEnv(t, tree)
	prio, low := 900, -10
	s := &AptSources{Opts: manifest.AptSources{Sources: []manifest.AptSource{
		{Name: "debian", URIs: []string{"http://example.invalid/debian"}, Suites: []string{"bookworm"}, Components: []string{"main"}},
		{Name: "extra", Filename: "vendor-extra", Title: "Vendor extras", URIs: []string{"https://a.example.invalid/apt", "https://b.example.invalid/apt", "https://a.example.invalid/mirror"},
			Suites: []string{"stable"}, Components: []string{"main"}, Priority: &prio},
		{Name: "off", URIs: []string{"https://off.example.invalid/apt"}, Suites: []string{"stable"}, Components: []string{"main"}, Disabled: true, Priority: &low},
		{Name: "local", URIs: []string{"file:/srv/repo"}, Suites: []string{"./"}, Trusted: true, Priority: &prio},
	}}}
	require.NoError(t, s.Run(context.Background(), env))

	require.Equal(t, "X-Repolib-Name: Vendor extras\nTypes: deb\nURIs: https://a.example.invalid/apt https://b.example.invalid/apt https://a.example.invalid/mirror\nSuites: stable\nComponents: main\n",
		readTree(t, tree, "/etc/apt/sources.list.d/vendor-extra.sources"))
	require.False(t, existsInTree(t, tree, "/etc/apt/sources.list.d/extra.sources"), "the file is named after filename, not id")
	require.Equal(t, "Explanation: repository Vendor extras\nPackage: *\nPin: origin \"a.example.invalid\"\nPin-Priority: 900\n\n"+
		"Explanation: repository Vendor extras\nPackage: *\nPin: origin \"b.example.invalid\"\nPin-Priority: 900\n",
		readTree(t, tree, "/etc/apt/preferences.d/vendor-extra.pref"))

	require.Equal(t, "Enabled: no\nTypes: deb\nURIs: https://off.example.invalid/apt\nSuites: stable\nComponents: main\n",
		readTree(t, tree, "/etc/apt/sources.list.d/off.sources"))
	require.Equal(t, "Explanation: repository off\nPackage: *\nPin: origin \"off.example.invalid\"\nPin-Priority: -10\n",
		readTree(t, tree, "/etc/apt/preferences.d/off.pref"))
	require.Equal(t, "Explanation: repository local\nPackage: *\nPin: origin \"\"\nPin-Priority: 900\n",
		readTree(t, tree, "/etc/apt/preferences.d/local.pref"))
	require.False(t, existsInTree(t, tree, "/etc/apt/preferences.d/debian.pref"), "no priority, no pin")

	// Read back, the disabled source is not among the enabled ones.
	entries, err := aptsources.Read(tree)
	require.NoError(t, err)
	byURI := map[string]bool{}
	for _, e := range entries {
		byURI[e.URIs[0]] = true
	}
	require.True(t, byURI["https://a.example.invalid/apt"])
	require.False(t, byURI["https://off.example.invalid/apt"], "a disabled source is not read")
}

// Two sources may not share a file, whatever their names.
func TestAptSourcesFileCollision(t *testing.T) {
	t.Parallel()
	env, _ := fileEnv(t, t.TempDir())
	a := manifest.AptSource{Name: "a", Filename: "same", URIs: []string{"http://example.invalid/a"}, Suites: []string{"stable"}, Components: []string{"main"}}
	b := a
	b.Name, b.Filename = "same", ""
	err := (&AptSources{Opts: manifest.AptSources{Sources: []manifest.AptSource{a, b}}}).Run(context.Background(), env)
	require.ErrorContains(t, err, `file "same" is used twice`)
}
