package apt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/depsolve"
)

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestResolveDebian12(t *testing.T) {
	t.Parallel()
	r := newResolver(t, Config{})
	req := bookworm(t, names("openssh-server", "curl", "vim-tiny")...)
	res, err := r.Resolve(context.Background(), req)
	require.NoError(t, err)

	got := byName(res)
	for _, n := range []string{"openssh-server", "curl", "vim-tiny", "base-files", "dpkg", "libc6", "apt"} {
		assert.Contains(t, got, n)
	}
	assert.True(t, slices.IsSortedFunc(res.Packages, func(a, b depsolve.Package) int { return strings.Compare(a.Name, b.Name) }), "sorted by name")
	for _, p := range res.Packages {
		assert.True(t, strings.HasPrefix(p.URL, strings.TrimSuffix(repoURI(req, p.Repository), "/")+"/pool/"), "%s: URL %s under repository %q", p.Name, p.URL, p.Repository)
		assert.Regexp(t, sha256Hex, p.SHA256, p.Name)
		assert.Positive(t, p.Size, p.Name)
		assert.NotEmpty(t, p.Version, p.Name)
		assert.NotEmpty(t, p.Source, p.Name)
		assert.NotEmpty(t, p.SourceVersion, p.Name)
		assert.Contains(t, []string{"amd64", "all"}, p.Arch, p.Name)
	}
	assert.Equal(t, "openssh", got["openssh-server"].Source)
	assert.Equal(t, "glibc", got["libc6"].Source)
	assert.NotContains(t, got, "xauth", "recommends are not installed by default")

	require.Len(t, res.Repositories, 3)
	for _, rs := range res.Repositories {
		assert.NotEmpty(t, rs.Date, "%s %s has its Release date", rs.URI, rs.Suite)
		_, err := time.Parse(time.RFC1123, strings.Replace(rs.Date, "UTC", "GMT", 1))
		assert.NoError(t, err, "Release date %q", rs.Date)
	}
	assert.Equal(t, []string{"bookworm", "bookworm-updates", "bookworm-security"}, []string{res.Repositories[0].Suite, res.Repositories[1].Suite, res.Repositories[2].Suite})

	again, err := r.Resolve(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, res, again, "resolving is deterministic")
}

func repoURI(req depsolve.Request, id string) string {
	for _, r := range req.Repositories {
		if r.ID == id {
			return r.URI
		}
	}
	return "(no repository " + id + ")"
}

// The checksum in the result is the one of the file on the mirror.
func TestSolutionCache(t *testing.T) {
	cache := t.TempDir()
	req := bookworm(t, names("hostname", "curl")...)
	first, err := newResolver(t, Config{CacheDir: cache}).Resolve(context.Background(), req)
	require.NoError(t, err)
	stored, err := filepath.Glob(filepath.Join(cache, "metadata", "*", "solutions", "*", "*.json"))
	require.NoError(t, err)
	require.Len(t, stored, 1, "the answer is kept beside the metadata")

	again, err := newResolver(t, Config{CacheDir: cache, Offline: true}).Resolve(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, first, again, "the cached answer is the answer")
	solved, err := newResolver(t, Config{CacheDir: cache, NoSolutionCache: true}).Resolve(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, first, solved, "apt gives the same answer")

	// A corrupt entry is ignored and apt answers again.
	require.NoError(t, os.WriteFile(stored[0], []byte("{not json"), 0o644))
	fixed, err := newResolver(t, Config{CacheDir: cache}).Resolve(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, first, fixed)

	// New metadata leaves old answers behind.
	_, err = newResolver(t, Config{CacheDir: cache, Refresh: true}).Resolve(context.Background(), req)
	require.NoError(t, err)
	now, err := filepath.Glob(filepath.Join(cache, "metadata", "*", "solutions", "*"))
	require.NoError(t, err)
	require.Len(t, now, 1)
	assert.NotEqual(t, filepath.Dir(stored[0]), now[0], "solutions against the old fetch are gone")
}

func TestResolvedChecksumMatchesDownload(t *testing.T) {
	t.Parallel()
	r := newResolver(t, Config{})
	res, err := r.Resolve(context.Background(), bookworm(t, names("hostname")...))
	require.NoError(t, err)
	p, ok := byName(res)["hostname"]
	require.True(t, ok)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(httpReq)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, p.URL)
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	require.NoError(t, err)
	assert.Equal(t, p.Size, n)
	assert.Equal(t, p.SHA256, hex.EncodeToString(h.Sum(nil)))
}

func TestVariants(t *testing.T) {
	t.Parallel()
	r := newResolver(t, Config{})
	sets := map[string]map[string]depsolve.Package{}
	for _, v := range []string{"essential", "required", "important"} {
		req := bookworm(t)
		req.Variant = v
		res, err := r.Resolve(context.Background(), req)
		require.NoError(t, err, v)
		sets[v] = byName(res)
	}
	for _, n := range []string{"base-files", "dpkg", "libc6", "bash", "coreutils"} {
		assert.Contains(t, sets["essential"], n)
	}
	assert.NotContains(t, sets["essential"], "apt", "apt is required, not essential")
	assert.Contains(t, sets["required"], "apt")
	assert.Contains(t, sets["important"], "vim-tiny", "vim-tiny is important")
	assert.NotContains(t, sets["required"], "vim-tiny")
	for n := range sets["essential"] {
		assert.Contains(t, sets["required"], n)
	}
	for n := range sets["required"] {
		assert.Contains(t, sets["important"], n)
	}

	req := bookworm(t)
	req.Variant = "minbase"
	_, err := r.Resolve(context.Background(), req)
	assert.ErrorContains(t, err, `variant "minbase" is not one of essential, required, important`)
}

func TestInstallRecommends(t *testing.T) {
	t.Parallel()
	r := newResolver(t, Config{})
	req := bookworm(t, names("openssh-server")...)
	req.InstallRecommends = true
	res, err := r.Resolve(context.Background(), req)
	require.NoError(t, err)
	assert.Contains(t, byName(res), "xauth", "openssh-server recommends xauth")
}

func TestVersionConstraints(t *testing.T) {
	t.Parallel()
	r := newResolver(t, Config{})
	res, err := r.Resolve(context.Background(), bookworm(t, names("curl")...))
	require.NoError(t, err)
	newest := byName(res)["curl"].Version
	require.NotEmpty(t, newest)

	ok := []struct {
		name, version, want string
	}{
		{"any version", "*", newest},
		{"relation >=", ">= 1", newest},
		{"relation <=", "<= " + newest, newest},
		{"exact", newest, newest},
		{"exact with =", "= " + newest, newest},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, err := r.Resolve(context.Background(), bookworm(t, depsolve.PackageSpec{Name: "curl", Version: tc.version}))
			require.NoError(t, err)
			assert.Equal(t, tc.want, byName(res)["curl"].Version)
		})
	}

	bad := []struct {
		name, version string
		want          []string
	}{
		{"nothing that old", "<< 0.1", []string{"curl", `"<< 0.1"`, "available: " + newest}},
		{"nothing newer than the newest", ">> " + newest, []string{"curl", `">> ` + newest + `"`}},
		{"exact version that does not exist", "0.0.1-1", []string{"curl", `"= 0.0.1-1"`, "available:"}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := r.Resolve(context.Background(), bookworm(t, depsolve.PackageSpec{Name: "curl", Version: tc.version}))
			var ue *depsolve.UnsatisfiableError
			require.ErrorAs(t, err, &ue)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestMissingPackages(t *testing.T) {
	t.Parallel()
	r := newResolver(t, Config{})
	_, err := r.Resolve(context.Background(), bookworm(t, depsolve.PackageSpec{Name: "nginxx"}, depsolve.PackageSpec{Name: "curl"},
		depsolve.PackageSpec{Name: "kiln-no-such-package-at-all", Version: ">= 1"}, depsolve.PackageSpec{Name: "mail-transport-agent"}))
	var me *depsolve.MissingPackagesError
	require.ErrorAs(t, err, &me)
	require.Len(t, me.Missing, 3, "every missing package is reported: %v", err)
	assert.Equal(t, "nginxx", me.Missing[0].Name)
	assert.Contains(t, me.Missing[0].Suggestions, "nginx")
	assert.LessOrEqual(t, len(me.Missing[0].Suggestions), 3)
	assert.Equal(t, "kiln-no-such-package-at-all", me.Missing[1].Name)
	assert.Equal(t, "mail-transport-agent", me.Missing[2].Name, "a virtual package with many providers has no candidate")
	assert.Len(t, me.Missing[2].Suggestions, 3, "its providers are suggested")
	assert.Contains(t, err.Error(), `package "nginxx" does not exist in the configured repositories (did you mean "nginx"`)
}

func TestExclude(t *testing.T) {
	t.Parallel()
	r := newResolver(t, Config{})

	t.Run("left out of the base set", func(t *testing.T) {
		t.Parallel()
		req := bookworm(t)
		req.Variant = "important"
		req.Exclude = []string{"vim-tiny", "kiln-no-such-package"}
		res, err := r.Resolve(context.Background(), req)
		require.NoError(t, err)
		got := byName(res)
		assert.NotContains(t, got, "vim-tiny")
		assert.Contains(t, got, "dpkg")
	})
	t.Run("needed by the request", func(t *testing.T) {
		t.Parallel()
		req := bookworm(t, names("openssh-server")...)
		req.Exclude = []string{"openssh-client"}
		_, err := r.Resolve(context.Background(), req)
		var ue *depsolve.UnsatisfiableError
		require.ErrorAs(t, err, &ue)
		assert.Contains(t, ue.Detail, "package openssh-client is excluded, but the request needs it")
		assert.Contains(t, ue.Detail, "openssh-server : Depends: openssh-client")
	})
	t.Run("requested and excluded", func(t *testing.T) {
		t.Parallel()
		req := bookworm(t, names("curl")...)
		req.Exclude = []string{"curl"}
		_, err := r.Resolve(context.Background(), req)
		var ue *depsolve.UnsatisfiableError
		require.ErrorAs(t, err, &ue)
		assert.Contains(t, ue.Detail, "package curl is both requested and excluded")
	})
}

func TestConflicts(t *testing.T) {
	t.Parallel()
	r := newResolver(t, Config{})
	_, err := r.Resolve(context.Background(), bookworm(t, names("exim4-daemon-light", "postfix")...))
	var ue *depsolve.UnsatisfiableError
	require.ErrorAs(t, err, &ue)
	assert.Contains(t, ue.Detail, "The following packages have unmet dependencies:")
	assert.Contains(t, ue.Detail, "Conflicts:")
	assert.NotContains(t, ue.Detail, "Reading package lists", "only the relevant lines")
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	r := newResolver(t, Config{CacheDir: t.TempDir(), Offline: true})
	repos := debianRepos(hostMirrors(t), "bookworm")
	tests := []struct {
		name string
		req  depsolve.Request
		want string
	}{
		{"option as a name", depsolve.Request{Arch: "amd64", Repositories: repos, Packages: names("-oDir=/")}, `package name "-oDir=/" is not a Debian package name`},
		{"pattern as a name", depsolve.Request{Arch: "amd64", Repositories: repos, Packages: names("?essential")}, `package name "?essential" is not a Debian package name`},
		{"removal as a name", depsolve.Request{Arch: "amd64", Repositories: repos, Packages: names("curl-")}, `package name "curl-" is not`},
		{"bad version", depsolve.Request{Arch: "amd64", Repositories: repos, Packages: []depsolve.PackageSpec{{Name: "curl", Version: "> 1"}}}, "use >>, >=, << or <="},
		{"bad version text", depsolve.Request{Arch: "amd64", Repositories: repos, Packages: []depsolve.PackageSpec{{Name: "curl", Version: "1.0 evil"}}}, "is not a Debian version"},
		{"two versions", depsolve.Request{Arch: "amd64", Repositories: repos, Packages: []depsolve.PackageSpec{{Name: "curl", Version: "1"}, {Name: "curl", Version: "2"}}}, "requested twice"},
		{"bad arch", depsolve.Request{Arch: "amd64 -o", Repositories: repos}, "is not a Debian architecture"},
		{"no repositories", depsolve.Request{Arch: "amd64"}, "no repositories"},
		{"no keyring", depsolve.Request{Arch: "amd64", Repositories: []depsolve.Repository{{ID: "x", URI: "http://127.0.0.1:9/debian", Suites: []string{"bookworm"}, Components: []string{"main"}}}}, "no signed-by keyring or keys"},
		{"keyring missing", depsolve.Request{Arch: "amd64", Repositories: []depsolve.Repository{{ID: "x", URI: "http://127.0.0.1:9/debian", Suites: []string{"bookworm"}, Components: []string{"main"}, SignedBy: "/nonexistent.gpg"}}}, "no such file"},
		{"not a key", depsolve.Request{Arch: "amd64", Repositories: []depsolve.Repository{{ID: "x", URI: "http://127.0.0.1:9/debian", Suites: []string{"bookworm"}, Components: []string{"main"}, SignedByKeys: []string{"hello"}}}}, "not an ASCII-armored public key"},
		{"blank in suite", depsolve.Request{Arch: "amd64", Repositories: []depsolve.Repository{{ID: "x", URI: "http://127.0.0.1:9/debian", Suites: []string{"bookworm\nSigned-By: /x"}, Components: []string{"main"}, SignedBy: debianKeyring}}}, "contains blanks or control characters"},
		{"bad scheme", depsolve.Request{Arch: "amd64", Repositories: []depsolve.Repository{{ID: "x", URI: "cdrom:/x", Suites: []string{"bookworm"}, Components: []string{"main"}, SignedBy: debianKeyring}}}, "is not http://"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := r.Resolve(context.Background(), tc.req)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestOffline(t *testing.T) {
	t.Parallel()
	t.Run("empty cache", func(t *testing.T) {
		t.Parallel()
		r := newResolver(t, Config{CacheDir: t.TempDir(), Offline: true})
		within(t, 5*time.Second, func() {
			_, err := r.Resolve(context.Background(), bookworm(t, names("curl")...))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "no cached metadata for ")
			assert.Contains(t, err.Error(), "; run once without --offline")
		})
	})
	t.Run("warm cache", func(t *testing.T) {
		t.Parallel()
		// Warm the shared cache, then resolve from it alone, with no
		// network: the mirror is replaced by nothing at all.
		_, err := newResolver(t, Config{}).Resolve(context.Background(), bookworm(t, names("curl")...))
		require.NoError(t, err)
		r := newResolver(t, Config{Offline: true, MaxAge: time.Nanosecond})
		res, err := r.Resolve(context.Background(), bookworm(t, names("curl")...))
		require.NoError(t, err)
		assert.Contains(t, byName(res), "curl")
	})
}

func TestMirrorErrors(t *testing.T) {
	t.Parallel()
	m := hostMirrors(t)
	key, err := os.ReadFile(filepath.Join("testdata", "unrelated-key.asc"))
	require.NoError(t, err)
	tests := []struct {
		name string
		repo depsolve.Repository
		want string
	}{
		{"unreachable", depsolve.Repository{ID: "x", URI: "http://127.0.0.1:9/debian", Suites: []string{"bookworm"}, Components: []string{"main"}, SignedBy: debianKeyring}, "Could not connect"},
		{"missing suite", depsolve.Repository{ID: "x", URI: m.Main, Suites: []string{"kiln-no-such-suite"}, Components: []string{"main"}, SignedBy: debianKeyring}, "does not have a Release file"},
		{"wrong key", depsolve.Repository{ID: "x", URI: m.Main, Suites: []string{"bookworm-updates"}, Components: []string{"main"}, SignedByKeys: []string{string(key)}}, "is not signed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newResolver(t, Config{CacheDir: t.TempDir(), Timeout: 5 * time.Second})
			within(t, 30*time.Second, func() {
				_, err := r.Resolve(context.Background(), depsolve.Request{Arch: "amd64", Repositories: []depsolve.Repository{tc.repo}, Packages: names("curl")})
				var me *depsolve.MirrorError
				require.ErrorAs(t, err, &me)
				assert.Equal(t, tc.repo.URI, me.URI)
				assert.Contains(t, err.Error(), tc.want)
				assert.Contains(t, err.Error(), "use --offline with a warm metadata cache")
			})
		})
	}
}

// Keys given inline (a blueprint's repositories) verify the archive too.
func TestInlineKeys(t *testing.T) {
	t.Parallel()
	gpg, err := exec.LookPath("gpg")
	if err != nil {
		t.Skipf("gpg is not installed, so the keyring cannot be exported: %v", err)
	}
	home := t.TempDir()
	cmd := exec.Command(gpg, "--homedir", home, "--batch", "--no-default-keyring", "--keyring", debianKeyring, "--armor", "--export")
	armored, err := cmd.Output()
	require.NoError(t, err)
	req := bookworm(t, names("curl")...)
	for i := range req.Repositories {
		req.Repositories[i].SignedBy = ""
		req.Repositories[i].SignedByKeys = []string{string(armored)}
	}
	res, err := newResolver(t, Config{}).Resolve(context.Background(), req)
	require.NoError(t, err)
	assert.Contains(t, byName(res), "curl")
}

func TestResolveDebian13(t *testing.T) {
	t.Parallel()
	r := newResolver(t, Config{})
	req := depsolve.Request{Arch: "amd64", Repositories: debianRepos(hostMirrors(t), "trixie"), Packages: names("openssh-server", "curl")}
	res, err := r.Resolve(context.Background(), req)
	require.NoError(t, err)
	got := byName(res)
	require.Contains(t, got, "base-files")
	assert.True(t, strings.HasPrefix(got["base-files"].Version, "13"), "trixie's base-files, got %s", got["base-files"].Version)
	assert.Contains(t, got, "curl")
	assert.Equal(t, "trixie-security", res.Repositories[2].Suite)
}

// Metadata older than MaxAge is fetched again; two processes (here two
// resolvers) refreshing one cache at once both succeed.
func TestRefresh(t *testing.T) {
	t.Parallel()
	req := bookworm(t, names("curl")...)
	_, err := newResolver(t, Config{}).Resolve(context.Background(), req)
	require.NoError(t, err)
	m, err := newResolver(t, Config{}).metadataFor(req.Arch, req.Repositories)
	require.NoError(t, err)
	before, err := m.readState()
	require.NoError(t, err)

	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = newResolver(t, Config{Refresh: true}).Resolve(context.Background(), req)
		}()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	after, err := m.readState()
	require.NoError(t, err)
	assert.True(t, after.Fetched.After(before.Fetched), "fetched again")
}

// A refresh rebuilds the package index: an index of the lists before the
// fetch lacks every version the mirror published since, and a resolve that
// picks one of those could not name its source package. Not parallel: it
// replaces the index the other tests read.
func TestRefreshRebuildsTheIndex(t *testing.T) {
	req := bookworm(t, names("curl")...)
	_, err := newResolver(t, Config{}).Resolve(context.Background(), req)
	require.NoError(t, err)
	m, err := newResolver(t, Config{}).metadataFor(req.Arch, req.Repositories)
	require.NoError(t, err)
	// The index of older lists: none of the packages apt finds today.
	require.NoError(t, writeIndex(m.path(indexFile), nil))
	res, err := newResolver(t, Config{Refresh: true, NoSolutionCache: true}).Resolve(context.Background(), req)
	require.NoError(t, err, "the refresh rebuilt the index")
	assert.Equal(t, "curl", byName(res)["curl"].Source)
}

func TestSearch(t *testing.T) {
	t.Parallel()
	r := newResolver(t, Config{})
	repos := debianRepos(hostMirrors(t), "bookworm")
	all, total, err := r.Search(context.Background(), repos, "amd64", "openssh", 0, 0)
	require.NoError(t, err)
	require.Equal(t, total, len(all))
	var found bool
	for _, p := range all {
		assert.Contains(t, p.Name, "openssh")
		if p.Name == "openssh-server" {
			found = true
			assert.NotEmpty(t, p.Version)
			assert.Contains(t, strings.ToLower(p.Summary), "ssh")
			assert.NotEmpty(t, p.Repository)
		}
	}
	assert.True(t, found, "openssh-server is listed")
	assert.True(t, slices.IsSortedFunc(all, func(a, b PackageInfo) int { return strings.Compare(a.Name, b.Name) }))

	page, total2, err := r.Search(context.Background(), repos, "amd64", "OpenSSH", 2, 1)
	require.NoError(t, err)
	assert.Equal(t, total, total2)
	assert.Equal(t, all[1:3], page)

	none, n, err := r.Search(context.Background(), repos, "amd64", "kiln-no-such-package", 10, 0)
	require.NoError(t, err)
	assert.Empty(t, none)
	assert.Zero(t, n)

	// Exact names only: "openssh" is part of names, not a package.
	missing, err := r.Missing(context.Background(), repos, "amd64", []string{"openssh-server", "kiln-no-such-package", "openssh", "jq", "kiln-no-such-package"})
	require.NoError(t, err)
	assert.Equal(t, []string{"kiln-no-such-package", "openssh"}, missing)
}

// benchPackages is a typical small image request.
var benchPackages = []string{"openssh-server", "curl", "vim-tiny", "ca-certificates", "sudo", "less", "iproute2", "systemd-sysv", "locales", "tzdata"}

// BenchmarkResolveWarm resolves ~10 packages with fresh metadata in the
// cache: the common case. It reports the peak RSS of this process (apt runs
// in its own processes).
func BenchmarkResolveWarm(b *testing.B) {
	r := newResolver(b, Config{})
	req := bookworm(b, names(benchPackages...)...)
	ctx := context.Background()
	res, err := r.Resolve(ctx, req) // warms the cache
	require.NoError(b, err)
	b.ResetTimer()
	for b.Loop() {
		if _, err := r.Resolve(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(res.Packages)), "packages")
	reportPeakRSS(b)
}

// BenchmarkResolveWarmUncached is BenchmarkResolveWarm with apt solving
// every time, as for a request it has not answered before.
func BenchmarkResolveWarmUncached(b *testing.B) {
	r := newResolver(b, Config{NoSolutionCache: true})
	req := bookworm(b, names(benchPackages...)...)
	ctx := context.Background()
	_, err := r.Resolve(ctx, req) // warms the metadata
	require.NoError(b, err)
	b.ResetTimer()
	for b.Loop() {
		if _, err := r.Resolve(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	reportPeakRSS(b)
}

// BenchmarkResolveCold resolves with an empty cache: fetching the
// metadata from the mirror, indexing it, then solving.
func BenchmarkResolveCold(b *testing.B) {
	requireApt(b)
	req := bookworm(b, names(benchPackages...)...)
	for b.Loop() {
		r := newResolver(b, Config{CacheDir: b.TempDir()})
		if _, err := r.Resolve(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
	reportPeakRSS(b)
}

// reportPeakRSS reports this process's peak resident set (VmHWM).
func reportPeakRSS(b *testing.B) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb float64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%f kB", &kb); err == nil {
				b.ReportMetric(kb/1024, "peak-RSS-MiB")
			}
		}
	}
}
