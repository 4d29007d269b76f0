package aptsources

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		tree string
		want []Entry
	}{
		{
			name: "one-line",
			tree: "oneline",
			want: []Entry{
				{Types: []string{"deb"}, URIs: []string{"http://mirror.example/debian"}, Suites: []string{"bookworm"}, Components: []string{"main", "contrib", "non-free-firmware"}, Options: map[string]string{}, File: "sources.list", Line: 2},
				{Types: []string{"deb-src"}, URIs: []string{"http://mirror.example/debian"}, Suites: []string{"bookworm"}, Components: []string{"main"}, Options: map[string]string{}, File: "sources.list", Line: 3},
				{Types: []string{"deb"}, URIs: []string{"http://mirror.example/debian"}, Suites: []string{"bookworm-updates"}, Components: []string{"main"}, SignedBy: "/usr/share/keyrings/debian-archive-keyring.gpg", Options: map[string]string{"arch": "amd64,arm64"}, File: "sources.list", Line: 5},
				{Types: []string{"deb"}, URIs: []string{"http://security.mirror.example/debian-security"}, Suites: []string{"bookworm-security"}, Components: []string{"main"}, Options: map[string]string{"trusted": "no"}, File: "sources.list", Line: 7},
				{Types: []string{"deb"}, URIs: []string{"http://mirror.example/debian"}, Suites: []string{"bookworm-backports"}, Components: []string{"main"}, Options: map[string]string{}, File: "sources.list", Line: 8},
			},
		},
		{
			name: "deb822",
			tree: "deb822",
			want: []Entry{
				{Types: []string{"deb"}, URIs: []string{"http://mirror.example/debian"}, Suites: []string{"bookworm", "bookworm-updates"}, Components: []string{"main"}, SignedBy: "/usr/share/keyrings/debian-archive-keyring.gpg", Options: map[string]string{}, File: "debian.sources", Line: 2},
				{Types: []string{"deb", "deb-src"}, URIs: []string{"http://mirror.example/debian-security"}, Suites: []string{"bookworm-security"}, Components: []string{"main"}, SignedBy: "/usr/share/keyrings/debian-archive-keyring.gpg", Options: map[string]string{"arch": "amd64,arm64"}, File: "debian.sources", Line: 9},
				{Types: []string{"deb"}, URIs: []string{"https://vendor.example/apt"}, Suites: []string{"stable"}, Components: []string{"main"}, SignedBy: "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZfakeKeyMaterial\n-----END PGP PUBLIC KEY BLOCK-----", Options: map[string]string{"x-repolib-name": "vendor,with,an,inline,key"}, File: "inline.sources", Line: 1},
			},
		},
		{name: "all disabled", tree: "disabled", want: nil},
		{name: "no sources at all", tree: "empty", want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Read(filepath.Join("testdata", tc.tree))
			require.NoError(t, err)
			for i := range got {
				got[i].File = filepath.Base(got[i].File)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestFindDebianMirrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		tree      string
		codenames []string
		want      Mirrors
	}{
		{
			name: "one-line", tree: "oneline", codenames: []string{"bookworm"},
			want: Mirrors{Main: "http://mirror.example/debian", Security: "http://security.mirror.example/debian-security", MainFrom: "sources.list:2", SecurityFrom: "sources.list:7"},
		},
		{
			name: "deb822", tree: "deb822", codenames: []string{"bookworm"},
			want: Mirrors{Main: "http://mirror.example/debian", Security: "http://mirror.example/debian-security", MainFrom: "debian.sources:2", SecurityFrom: "debian.sources:9"},
		},
		{
			name: "trixie from a host that lists bookworm", tree: "deb822", codenames: []string{"trixie"},
			want: Mirrors{Main: "http://mirror.example/debian", Security: "http://mirror.example/debian-security", MainFrom: "debian.sources:2", SecurityFrom: "debian.sources:9"},
		},
		{
			name: "Debian archive wins over third-party repositories", tree: "mixed", codenames: []string{"bookworm"},
			want: Mirrors{Main: "http://mirror.example/debian", Security: "http://mirror.example/debian-security", MainFrom: "debian.sources:1", SecurityFrom: "debian.sources:7"},
		},
		{
			name: "bookworm from a trixie host", tree: "trixie-only", codenames: []string{"bookworm"},
			want: Mirrors{Main: "https://mirror.example/debian", Security: "https://mirror.example/debian-security", MainFrom: "debian.sources:1", SecurityFrom: "debian.sources:7"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			entries, err := Read(filepath.Join("testdata", tc.tree))
			require.NoError(t, err)
			for i := range entries {
				entries[i].File = filepath.Base(entries[i].File)
			}
			got, err := FindDebianMirrors(entries, tc.codenames)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestFindDebianMirrorsNone(t *testing.T) {
	t.Parallel()
	for _, tree := range []string{"disabled", "empty"} {
		t.Run(tree, func(t *testing.T) {
			t.Parallel()
			entries, err := Read(filepath.Join("testdata", tree))
			require.NoError(t, err)
			_, err = FindDebianMirrors(entries, []string{"bookworm"})
			var nm *NoMirrorError
			require.ErrorAs(t, err, &nm)
			assert.Contains(t, err.Error(), "pass --mirror or set the mirror in the configuration")
		})
	}
	// Third-party entries alone are not a Debian mirror.
	entries, err := ParseOneLine("vendor.list", "deb https://docker.example/linux/debian bookworm stable\ndeb https://node.example/node nodistro main\n")
	require.NoError(t, err)
	_, err = FindDebianMirrors(entries, nil)
	var nm *NoMirrorError
	require.ErrorAs(t, err, &nm)
	assert.Equal(t, 2, nm.Searched)
}

func TestParseOneLineQuoting(t *testing.T) {
	t.Parallel()
	got, err := ParseOneLine("cd.list", `deb cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_]/ bookworm main`+"\n"+`deb[arch=amd64] "http://mirror.example/debian" bookworm main`+"\n"+`deb [ lang=de#x ] http://mirror.example/debian bookworm main`)
	require.NoError(t, err)
	require.Len(t, got, 3)
	assert.Equal(t, []string{"cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_]/"}, got[0].URIs)
	assert.Equal(t, []string{"http://mirror.example/debian"}, got[1].URIs)
	assert.Equal(t, map[string]string{"arch": "amd64"}, got[1].Options)
	assert.Equal(t, map[string]string{"lang": "de#x"}, got[2].Options, "a # inside the brackets is not a comment")
}

// Hostile and malformed input: every bad file is reported with its name and
// line, never half-parsed.
func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		deb822  bool
		text    string
		line    int
		message string
	}{
		{name: "unknown type", text: "# ok\ndeb-foo http://mirror.example/debian bookworm main\n", line: 2, message: `unknown source type "deb-foo"`},
		{name: "no suite", text: "deb http://mirror.example/debian\n", line: 1, message: "needs a URI and a suite"},
		{name: "no components", text: "\n\ndeb http://mirror.example/debian bookworm\n", line: 3, message: "needs at least one component"},
		{name: "flat with components", text: "deb http://mirror.example/repo ./ main\n", line: 1, message: "must have no components"},
		{name: "unclosed options", text: "deb [arch=amd64 http://mirror.example/debian bookworm main\n", line: 1, message: "never closed"},
		{name: "option without value", text: "deb [trusted] http://mirror.example/debian bookworm main\n", line: 1, message: `option "trusted" is not key=value`},
		{name: "no scheme", text: "deb mirror.example/debian bookworm main\n", line: 1, message: "has no scheme"},
		{name: "shell in scheme", text: "deb $(reboot)://mirror.example/debian bookworm main\n", line: 1, message: "has no scheme"},
		{name: "NUL byte", text: "deb http://mirror.example/debian\x00 bookworm main\n", line: 1, message: "control or invalid character"},
		{name: "escape sequence", text: "deb http://mirror.example/\x1b[2Jdebian bookworm main\n", line: 1, message: "control or invalid character"},
		{name: "invalid UTF-8", text: "deb http://mirror.example/\xffdebian bookworm main\n", line: 1, message: "control or invalid character"},
		{name: "unbalanced quote", text: `deb "http://mirror.example/debian bookworm main` + "\n", line: 1, message: "unbalanced quote"},
		{name: "deb822 no URIs", deb822: true, text: "Types: deb\nSuites: bookworm\nComponents: main\n", line: 1, message: "stanza has no URIs field"},
		{name: "deb822 not a field", deb822: true, text: "Types: deb\nURIs http://mirror.example/debian\n", line: 2, message: "is not a \"Field: value\" line"},
		{name: "deb822 leading continuation", deb822: true, text: "# c\n  bookworm\nTypes: deb\n", line: 2, message: "continuation line without a field"},
		{name: "deb822 duplicate field", deb822: true, text: "Types: deb\nTypes: deb-src\n", line: 2, message: "given twice"},
		{name: "deb822 bad Enabled", deb822: true, text: "\n\nTypes: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\nComponents: main\nEnabled: maybe\n", line: 3, message: `Enabled: "maybe"`},
		{name: "deb822 second stanza broken", deb822: true, text: "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\nComponents: main\n\nTypes: rpm\nURIs: http://mirror.example/x\nSuites: a\nComponents: b\n", line: 6, message: `unknown source type "rpm"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			parse, file := ParseOneLine, "bad.list"
			if tc.deb822 {
				parse, file = ParseDeb822, "bad.sources"
			}
			got, err := parse(file, tc.text)
			assert.Nil(t, got)
			var pe *ParseError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, file, pe.File)
			assert.Equal(t, tc.line, pe.Line)
			assert.Contains(t, err.Error(), tc.message)
		})
	}
}

// A broken file does not hide the good ones, and the error names it.
func TestReadReportsBadFile(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := filepath.Join(root, "etc", "apt", "sources.list.d")
	require.NoError(t, mkdirWrite(filepath.Join(dir, "good.list"), "deb http://mirror.example/debian bookworm main\n"))
	require.NoError(t, mkdirWrite(filepath.Join(dir, "bad.sources"), "Types: deb\nURIs: http://mirror.example/debian\n"))
	entries, err := Read(root)
	var pe *ParseError
	require.True(t, errors.As(err, &pe))
	assert.Equal(t, filepath.Join(dir, "bad.sources"), pe.File)
	assert.Equal(t, 1, pe.Line)
	assert.Contains(t, err.Error(), filepath.Join(dir, "bad.sources")+":1: stanza has no Suites field")
	require.Len(t, entries, 1)
	assert.Equal(t, "http://mirror.example/debian", entries[0].URIs[0])
}

// The host's own sources parse; on a host with apt sources, a Debian
// mirror is found.
func TestReadHost(t *testing.T) {
	t.Parallel()
	entries, err := Read("/")
	require.NoError(t, err)
	if len(entries) == 0 {
		t.Skip("the host has no apt sources")
	}
	m, err := FindDebianMirrors(entries, []string{"bookworm", "trixie"})
	require.NoError(t, err)
	assert.NotEmpty(t, m.Main)
}
