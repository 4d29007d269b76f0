package apt

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/depsolve"
)

func TestParseConstraint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    constraint
		wantErr string
	}{
		{in: "", want: constraint{}},
		{in: "*", want: constraint{}},
		{in: "1.2-3", want: constraint{"=", "1.2-3"}},
		{in: "= 1:2.0", want: constraint{"=", "1:2.0"}},
		{in: ">= 1.2", want: constraint{">=", "1.2"}},
		{in: ">=1.2", want: constraint{">=", "1.2"}},
		{in: "<< 2", want: constraint{"<<", "2"}},
		{in: "<= 1~rc1", want: constraint{"<=", "1~rc1"}},
		{in: ">> 1", want: constraint{">>", "1"}},
		{in: "> 1", wantErr: "a single > or < is ambiguous"},
		{in: "< 1", wantErr: "a single > or < is ambiguous"},
		{in: ">= ", wantErr: "is not a Debian version"},
		{in: "latest", wantErr: "is not a Debian version"},
		{in: "1.0 evil", wantErr: "is not a Debian version"},
		{in: "1:9.2p1*", want: constraint{"glob", "1:9.2p1*"}},
		{in: "2.9.?-1", want: constraint{"glob", "2.9.?-1"}},
		{in: "= 2.*", want: constraint{"glob", "2.*"}},
		{in: ">= 2.*", wantErr: "version pattern"},
		{in: "2.[0-9]*", wantErr: "version pattern"},
		{in: "abc*", wantErr: "version pattern"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := parseConstraint(tc.in)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestConstraintSatisfied(t *testing.T) {
	t.Parallel()
	tests := []struct {
		c    constraint
		v    string
		want bool
	}{
		{constraint{}, "1", true},
		{constraint{">=", "1.2"}, "1.10", true},
		{constraint{">=", "1.2"}, "1.1", false},
		{constraint{"<<", "2"}, "2~rc1", true},
		{constraint{"<<", "2"}, "2", false},
		{constraint{"<=", "2"}, "2", true},
		{constraint{">>", "1.0"}, "1:0.1", true},
		{constraint{"=", "7.88.1-10+deb12u5"}, "7.88.1-10+deb12u5", true},
		{constraint{"=", "7.88.1-10+deb12u5"}, "7.88.1-10+deb12u15", false},
		{constraint{"glob", "1:9.2p1*"}, "1:9.2p1-2+deb12u3", true},
		{constraint{"glob", "1:9.2p1*"}, "1:9.3p1-1", false},
		{constraint{"glob", "2.9.?-1"}, "2.9.4-1", true},
		{constraint{"glob", "2.9.?-1"}, "2.9.14-1", false},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, tc.c.satisfied(tc.v), "%s %s", tc.v, tc.c)
	}
}

func TestParseMadison(t *testing.T) {
	t.Parallel()
	out := `      curl | 7.88.1-10+deb12u5 | http://mirror.example/debian-security bookworm-security/main amd64 Packages
      curl | 7.88.1-10+deb12u15 | http://mirror.example/debian bookworm/main amd64 Packages
      curl | 7.88.1-10+deb12u15 | http://mirror.example/debian bookworm-updates/main amd64 Packages
   openssl | 3.0.17-1~deb12u2 | http://mirror.example/debian bookworm/main amd64 Packages
`
	assert.Equal(t, map[string][]string{
		"curl":    {"7.88.1-10+deb12u15", "7.88.1-10+deb12u5"},
		"openssl": {"3.0.17-1~deb12u2"},
	}, parseMadison(out))
}

func TestParsePrintURIs(t *testing.T) {
	t.Parallel()
	out := `Reading package lists...
Building dependency tree...
'http://mirror.example/debian/pool/main/v/vim/vim-tiny_9.0.1378-2%2bdeb12u2_amd64.deb' vim-tiny_2%3a9.0.1378-2+deb12u2_amd64.deb 719960 SHA256:1896A2AACF4AD681FF5EACC24A5B0CA4D5D9C9B9C9E4B6DE5197BC1E116EA619
'http://mirror.example/debian/pool/main/a/adduser/adduser_3.134_all.deb' adduser_3.134_all.deb 183272 SHA256:c24fe4eb8e60d8632d72ed104cce7c92cff200847c897dc8ba764b6c47b519e0
`
	debs, err := parsePrintURIs(out)
	require.NoError(t, err)
	assert.Equal(t, []deb{
		{url: "http://mirror.example/debian/pool/main/v/vim/vim-tiny_9.0.1378-2%2bdeb12u2_amd64.deb", name: "vim-tiny", version: "2:9.0.1378-2+deb12u2", arch: "amd64", sha256: "1896a2aacf4ad681ff5eacc24a5b0ca4d5d9c9b9c9e4b6de5197bc1e116ea619", size: 719960},
		{url: "http://mirror.example/debian/pool/main/a/adduser/adduser_3.134_all.deb", name: "adduser", version: "3.134", arch: "all", sha256: "c24fe4eb8e60d8632d72ed104cce7c92cff200847c897dc8ba764b6c47b519e0", size: 183272},
	}, debs)

	for _, bad := range []string{
		"'http://mirror.example/x.deb' x_1_amd64.deb 10 MD5Sum:8e7e741807b1e1939df8f58323affdcb",
		"'http://mirror.example/x.deb' x_1_amd64.deb ten SHA256:1896a2aacf4ad681ff5eacc24a5b0ca4d5d9c9b9c9e4b6de5197bc1e116ea619",
		"'http://mirror.example/x.deb' x_amd64.deb 10 SHA256:1896a2aacf4ad681ff5eacc24a5b0ca4d5d9c9b9c9e4b6de5197bc1e116ea619",
		"'http://mirror.example/x.deb",
	} {
		_, err := parsePrintURIs(bad)
		assert.Error(t, err, bad)
	}
}

func TestListPrefix(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "mirror.example_debian_dists_bookworm_", listPrefix("http://mirror.example/debian/", "bookworm"))
	assert.Equal(t, "mirror.example_debian-security_dists_bookworm-security_", listPrefix("https://user:secret@mirror.example/debian-security", "bookworm-security"))
	assert.Equal(t, "127.0.0.1:9_a%7eb_dists_x%5fy_", listPrefix("http://127.0.0.1:9/a~b", "x_y"))
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	all := []string{"nginx", "nginx-full", "nginx-light", "python3-requests", "python3-requests-toolbelt", "curl", "curlftpfs", "vim", "vim-tiny"}
	tests := []struct {
		name string
		want []string
	}{
		{"nginxx", []string{"nginx"}},
		{"ngnix", []string{"nginx"}},
		{"python3-reqests", []string{"python3-requests"}},
		{"python3-req", []string{"python3-requests", "python3-requests-toolbelt"}},
		{"curll", []string{"curl"}},
		{"vim-tin", []string{"vim-tiny"}},
		{"zzzzzz", nil},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, suggest(tc.name, all, 3), tc.name)
	}
	assert.Len(t, suggest("nginx-", all, 3), 3, "at most n")
}

func TestAlternativesIn(t *testing.T) {
	t.Parallel()
	stdout := `Reading package lists...
Building dependency tree...
Package mail-transport-agent is a virtual package provided by:
  ssmtp 2.64-11
  postfix 3.7.11-0+deb12u1
  nullmailer 1:2.2-4
  exim4-daemon-light 4.96-15+deb12u10

Package python is not available, but is referred to by another package.
This may mean that the package is missing, has been obsoleted, or
is only available from another source
However the following packages replace it:
  python2-minimal python-is-python3 2to3

`
	assert.Equal(t, []string{"exim4-daemon-light", "nullmailer", "postfix"}, alternativesIn(stdout, "mail-transport-agent"))
	assert.Equal(t, []string{"2to3", "python-is-python3", "python2-minimal"}, alternativesIn(stdout, "python"))
	assert.Nil(t, alternativesIn(stdout, "curl"))
}

func TestUnsatisfiableDetail(t *testing.T) {
	t.Parallel()
	out := aptOutput{
		stdout: `Reading package lists...
Building dependency tree...
Some packages could not be installed. This may mean that you have
requested an impossible situation.
The following information may help to resolve the situation:

The following packages have unmet dependencies:
 openssh-server : Depends: openssh-client (= 1:9.2p1-2+deb12u3) but it is not going to be installed
                  Recommends: xauth
`,
		stderr: "E: Unable to correct problems, you have held broken packages.\n",
	}
	assert.Equal(t, `package openssh-client is excluded, but the request needs it
The following packages have unmet dependencies:
 openssh-server : Depends: openssh-client (= 1:9.2p1-2+deb12u3) but it is not going to be installed
                  Recommends: xauth`, unsatisfiableDetail(out, []string{"openssh-client", "xauth"}))
	assert.Empty(t, unsatisfiableDetail(aptOutput{stdout: "Reading package lists...\n"}, nil))
}

func TestBasePattern(t *testing.T) {
	t.Parallel()
	p, err := basePattern("", nil)
	require.NoError(t, err)
	assert.Equal(t, "?or(?essential,?priority(required))", p)
	p, err = basePattern("essential", []string{"mawk", "g++"})
	require.NoError(t, err)
	assert.Equal(t, "?and(?essential,?not(?exact-name(mawk)),?not(?exact-name(g++)))", p)
	_, err = basePattern("buildd", nil)
	assert.Error(t, err)
}

func TestValidName(t *testing.T) {
	t.Parallel()
	for _, n := range []string{"curl", "g++", "libstdc++6", "python3.11", "0ad", "xz-utils"} {
		assert.True(t, validName(n), n)
	}
	for _, n := range []string{"", "a", "-o", "curl-", "Curl", "cu rl", "?essential", "curl:amd64", "curl=1", "x+", "../x", "c\x00"} {
		assert.False(t, validName(n), n)
	}
}

func TestKeyOf(t *testing.T) {
	t.Parallel()
	repo := depsolve.Repository{ID: "debian", URI: "http://mirror.example/debian", Suites: []string{"bookworm"}, Components: []string{"main"}, SignedBy: "/k.gpg"}
	base := keyOf("amd64", []depsolve.Repository{repo})
	assert.Len(t, base, 64)
	renamed := repo
	renamed.ID = "other"
	renamed.URI += "/"
	assert.Equal(t, base, keyOf("amd64", []depsolve.Repository{renamed}), "IDs and a trailing slash do not matter")
	assert.NotEqual(t, base, keyOf("arm64", []depsolve.Repository{repo}))
	other := repo
	other.Suites = []string{"trixie"}
	assert.NotEqual(t, base, keyOf("amd64", []depsolve.Repository{other}))
	keyed := repo
	keyed.SignedByKeys = []string{"-----BEGIN PGP PUBLIC KEY BLOCK-----"}
	assert.NotEqual(t, base, keyOf("amd64", []depsolve.Repository{keyed}))
	pinned := repo
	prio := 700
	pinned.Priority = &prio
	assert.NotEqual(t, base, keyOf("amd64", []depsolve.Repository{pinned}), "pins live in the tree")
}

// A repository with a priority is pinned in the solver's tree as in the
// image, by the host of its URI.
func TestSolverPins(t *testing.T) {
	t.Parallel()
	prio := 990
	m := &metadata{root: t.TempDir(), arch: "amd64", repos: []depsolve.Repository{
		{ID: "debian", URI: "http://mirror.example/debian", Suites: []string{"bookworm"}, Components: []string{"main"}},
		{ID: "vendor\nPin: origin \"x\"", URI: "https://apt.example.org:8443/vendor", Suites: []string{"stable"}, Components: []string{"main"}, Priority: &prio},
	}}
	assert.Equal(t, "Explanation: repository vendorPin: origin \"x\"\nPackage: *\nPin: origin \"apt.example.org\"\nPin-Priority: 990\n", m.pins())
	m.repos = m.repos[:1]
	assert.Empty(t, m.pins(), "no priority, no preferences file")
	require.Error(t, checkRepositories("amd64", []depsolve.Repository{{ID: "x", URI: "http://a/", Suites: []string{"s"}, Components: []string{"main"}, SignedBy: "/k", Priority: func() *int { p := 40000; return &p }()}}))
}
