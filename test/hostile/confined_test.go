package hostile

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/aptsources"
	"github.com/kiln-project/kiln/internal/compose"
	"github.com/kiln-project/kiln/internal/depsolve/apt"
	"github.com/kiln-project/kiln/internal/distro"
	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/engine/sandbox"
	"github.com/kiln-project/kiln/internal/manifest"
	"github.com/kiln-project/kiln/internal/testhost"
	"github.com/kiln-project/kiln/test/imagebuild"
)

// hostCanaries are the host paths handed to the payloads: a directory
// anybody may write, so that only being out of sight keeps a payload from
// it, with a secret file and a marker directory in it.
type hostCanaries struct {
	Dir     string
	Canary  string // must never be created
	Planted string // created by a planted tool if it ever ran
	Secret  string
	Marker  string // a directory holding markerFile
	Token   string // the secret's content
}

const markerFile = "kiln-hostile-marker"

func newHostCanaries(t *testing.T) *hostCanaries {
	t.Helper()
	// Not a test's nested temporary directory, whose parents only root may
	// enter: every directory on the way must be open to anybody.
	dir, err := os.MkdirTemp("", "kiln-hostile-host")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o777))
	c := &hostCanaries{
		Dir: dir, Canary: filepath.Join(dir, "canary"), Planted: filepath.Join(dir, "planted-ran"),
		Secret: filepath.Join(dir, "secret"), Marker: filepath.Join(dir, "marker"), Token: randomToken(t),
	}
	require.NoError(t, os.WriteFile(c.Secret, []byte(c.Token+"\n"), 0o644))
	require.NoError(t, os.Mkdir(c.Marker, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(c.Marker, markerFile), nil, 0o644))
	return c
}

func randomToken(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return "kiln-hostile-secret-" + hex.EncodeToString(b)
}

// hostilePackage is kiln-hostile's files: the probing postinst, filled in
// with the canaries' paths and the repository server's port, and a unit
// for customizations.services to enable.
func hostilePackage(t *testing.T, c *hostCanaries, port int) map[string]fileSpec {
	t.Helper()
	script, err := os.ReadFile(filepath.Join("testdata", "postinst"))
	require.NoError(t, err)
	postinst := strings.NewReplacer("@SECRET@", c.Secret, "@MARKER@", c.Marker, "@CANARY@", c.Canary, "@PORT@", strconv.Itoa(port)).Replace(string(script))
	return map[string]fileSpec{
		"DEBIAN/control": {Mode: 0o644, Data: `Package: kiln-hostile
Version: 1.0
Architecture: all
Maintainer: kiln <kiln@example.invalid>
Description: probes the sandbox its maintainer scripts run in
`},
		"DEBIAN/postinst": {Mode: 0o755, Data: postinst},
		"usr/lib/systemd/system/kiln-hostile.service": {Mode: 0o644, Data: `[Unit]
Description=kiln hostile catalogue
[Service]
ExecStart=/bin/true
[Install]
WantedBy=multi-user.target
`},
	}
}

// plantedTools are the tools the build's stages run, planted under
// /usr/local where a bare name would find them first.
var plantedTools = []string{
	"/usr/local/sbin/systemctl", "/usr/local/bin/systemctl",
	"/usr/local/sbin/nft", "/usr/local/bin/nft",
	"/usr/local/sbin/useradd", "/usr/local/sbin/usermod", "/usr/local/sbin/groupadd",
	"/usr/local/sbin/chpasswd", "/usr/local/bin/chage", "/usr/local/bin/apt-mark",
	"/usr/local/bin/env", "/usr/local/bin/sh",
}

// plantedRanInTree is where a planted tool leaves its mark in the tree,
// for the case that it ran, sandboxed, out of reach of the host canary.
const plantedRanInTree = "/var/lib/kiln-hostile/planted-ran"

func plantedScript(c *hostCanaries) string {
	return fmt.Sprintf("#!/bin/sh\necho \"$0 $*\" >>%s\necho \"$0 $*\" >>%s\n", c.Planted, plantedRanInTree)
}

// Content of the files written over Debian's symbolic links.
const (
	awkData       = "not awk: written by a blueprint over /etc/alternatives/awk\n"
	osReleaseData = "NAME=\"not Debian\"\nID=kiln-hostile\n"
)

// hostileBlueprint carries every confined payload at once.
func hostileBlueprint(repo *hostileRepo, c *hostCanaries) map[string]any {
	files := []any{
		map[string]any{"path": "/etc/alternatives/awk", "data": awkData},
		map[string]any{"path": "/etc/os-release", "data": osReleaseData},
	}
	for _, p := range plantedTools {
		files = append(files, map[string]any{"path": p, "mode": "0755", "data": plantedScript(c)})
	}
	return map[string]any{
		"name":     "hostile",
		"packages": []any{map[string]any{"name": "kiln-hostile"}},
		"customizations": map[string]any{
			"hostname": "kiln-hostile",
			"user":     []any{map[string]any{"name": "hostile", "groups": []string{"users"}}},
			"group":    []any{map[string]any{"name": "hostiles"}},
			"services": map[string]any{"enabled": []string{"kiln-hostile.service"}},
			"firewall": map[string]any{"ports": []string{"8080:tcp"}},
			"repositories": []any{map[string]any{
				"id": "hostile", "baseurls": []string{repo.URL}, "suite": hostileSuite,
				"components": []string{hostileComponent}, "gpgkeys": []string{repo.Key}, "install_from": true,
			}},
			"files": files,
		},
	}
}

// plan turns the blueprint into a tar manifest for debian-12 on x86_64,
// solved against the host's Debian mirror and the hostile repository. The
// solver's metadata is the test's own: the repository's address and key
// are new on every run, and would only pile up in the shared cache.
func plan(t *testing.T, bp map[string]any) *manifest.Manifest {
	t.Helper()
	doc, err := json.Marshal(bp)
	require.NoError(t, err)
	parsed, err := blueprint.Parse(doc, blueprint.FormatJSON)
	require.NoError(t, err)
	reg, err := distro.Load()
	require.NoError(t, err)
	it, err := compose.ImageType(reg, parsed, compose.Request{Distro: "debian-12", Arch: "x86_64", ImageType: "tar"}, compose.Defaults{})
	require.NoError(t, err)
	entries, err := aptsources.Read("/")
	require.NoError(t, err)
	mirrors, err := aptsources.FindDebianMirrors(entries, []string{"bookworm"})
	require.NoError(t, err)
	r, err := apt.New(apt.Config{CacheDir: t.TempDir()})
	require.NoError(t, err)
	res, err := compose.Manifest(context.Background(), it, parsed, distro.Options{Mirrors: map[string]string{"debian": mirrors.Main, "debian-security": mirrors.Security}}, r)
	require.NoError(t, err)
	return res.Manifest
}

// openCache is an engine cache laid out as kiln's default one
// (/var/cache/kiln): its directories open to anybody, as the engine makes
// them. Its packages are the shared test cache's, so the build costs only
// the hostile package and the tree.
func openCache(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kiln-hostile-cache")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	debs := filepath.Join(testhost.CacheDir(t), "debs")
	require.NoError(t, os.MkdirAll(debs, 0o755))
	require.NoError(t, os.Symlink(debs, filepath.Join(dir, "debs")))
	return dir
}

// build runs the engine and returns the artifact's path.
func build(t *testing.T, m *manifest.Manifest, cacheDir string) string {
	t.Helper()
	start := time.Now()
	dst := imagebuild.Build(t, m, cacheDir, t.TempDir(), nil)
	t.Logf("the hostile image was built in %s", time.Since(start).Round(time.Second))
	return dst
}

// report is the postinst's report: each probe's key and outcome.
type report map[string]string

func readReport(t *testing.T, root string) report {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "var/lib/kiln-hostile/report"))
	require.NoError(t, err, "the postinst wrote its report into the image")
	defer f.Close()
	r := report{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, _ := strings.Cut(s.Text(), " ")
		r[k] = v
	}
	require.NoError(t, s.Err())
	return r
}

// places are where the postinst ran probes: in the tree it was installed
// into, and after the double chroot, wherever that got it.
var places = []string{"tree", "escaped"}

// TestConfinedBuild builds one image that carries every confined payload
// and checks, payload by payload, that none reached the host.
func TestConfinedBuild(t *testing.T) {
	testhost.RequireBuildHost(t, engine.HostProblems(nil))
	requireTools(t, "setpriv")
	c := newHostCanaries(t)
	// The repository's server is started before its package is made, so
	// the postinst knows the port to try.
	repo := serveHostileRepo(t, func(port int) map[string]fileSpec { return hostilePackage(t, c, port) })
	m := plan(t, hostileBlueprint(repo, c))
	cache := openCache(t)
	image := build(t, m, cache)
	root := t.TempDir()
	run(t, root, "tar", "--numeric-owner", "-xJf", image, "-C", root)
	rep := readReport(t, root)
	t.Logf("the postinst's report:\n%s", rep)

	checks := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"maintainer script runs as an unprivileged host uid", func(t *testing.T) {
			n := 0
			for _, at := range places {
				m, ok := rep[at+".uid_map"]
				if !ok || strings.HasPrefix(m, "fail") {
					continue
				}
				n++
				f := strings.Fields(m)
				require.Len(t, f, 3, "%s.uid_map", at)
				assert.Equal(t, "0", f[0], "%s: uid 0 is mapped", at)
				assert.NotEqual(t, "0", f[1], "%s: uid 0 in the sandbox is not uid 0 on the host", at)
				assert.Equal(t, strconv.Itoa(sandbox.UIDBase), f[1], "%s: uid 0 in the sandbox is the sandbox range's first uid", at)
			}
			assert.NotZero(t, n, "the postinst could read its uid map somewhere")
		}},
		{"maintainer script has no_new_privs and seccomp", func(t *testing.T) {
			for _, at := range statusPlaces(t, rep) {
				assert.Equal(t, "1", rep[at+".status.NoNewPrivs"], "%s: NoNewPrivs", at)
				assert.Equal(t, "2", rep[at+".status.Seccomp"], "%s: Seccomp (2 is a filter)", at)
			}
		}},
		{"maintainer script lacks the capabilities that reach the host", func(t *testing.T) {
			for _, at := range statusPlaces(t, rep) {
				for _, set := range []string{"CapEff", "CapBnd"} {
					v, err := strconv.ParseUint(rep[at+".status."+set], 16, 64)
					require.NoError(t, err, "%s.status.%s", at, set)
					for _, c := range []struct {
						name string
						bit  uint
					}{{"CAP_SYS_ADMIN", 21}, {"CAP_SYS_PTRACE", 19}, {"CAP_SYS_MODULE", 16}, {"CAP_SYS_BOOT", 22}} {
						assert.Zero(t, v&(1<<c.bit), "%s: %s holds %s", at, set, c.name)
					}
				}
			}
		}},
		{"mount fails", func(t *testing.T) { requireFailed(t, rep, "mount") }},
		{"sysrq cannot be triggered", func(t *testing.T) { requireFailed(t, rep, "sysrq") }},
		{"ptrace fails", func(t *testing.T) { requireFailed(t, rep, "ptrace") }},
		{"no network to the host", func(t *testing.T) { requireFailed(t, rep, "connect") }},
		{"host files are out of sight", func(t *testing.T) {
			for _, at := range places {
				assert.NotContains(t, rep[at+".secret"], c.Token, "%s: the postinst read the host's secret", at)
				assert.NotContains(t, rep[at+".marker"], markerFile, "%s: the postinst listed the host's marker directory", at)
			}
			requireFailed(t, rep, "secret")
			requireFailed(t, rep, "marker")
		}},
		{"host canary is never created", func(t *testing.T) {
			assert.NoFileExists(t, c.Canary, "the postinst created a file on the host")
		}},
		{"double chroot ends in the sandbox's root", func(t *testing.T) {
			// Whether or not chroot is allowed, what lies above the tree is
			// the sandbox's tools root, never the host's /.
			listing := strings.Split(rep["escaped.root"], ",")
			for _, hostOnly := range []string{"var", "home", "boot", "srv", "opt"} {
				assert.NotContains(t, listing, hostOnly, "the double chroot reached a root with /%s: the host's", hostOnly)
			}
			if v, ok := rep["escaped.shadow"]; ok {
				assert.True(t, strings.HasPrefix(v, "fail"), "the escaped postinst read the host's /etc/shadow: %s", v)
			}
		}},
		{"image files are owned by root on disk", func(t *testing.T) {
			assertOwner(t, root, "usr/bin/mawk", 0, 0)
			assertOwner(t, root, "etc/shadow", 0, groupID(t, root, "shadow"))
			assertOwner(t, root, "var/lib/kiln-hostile/report", 0, 0)
			assertOwner(t, root, "home/hostile", userID(t, root, "hostile"), groupID(t, root, "hostile"))
		}},
		{"planted tools are data and never run", func(t *testing.T) {
			assert.NoFileExists(t, c.Planted, "a planted tool ran and reached the host")
			assert.NoFileExists(t, filepath.Join(root, plantedRanInTree), "a planted tool ran in the tree")
			for _, p := range plantedTools {
				b, err := os.ReadFile(filepath.Join(root, p))
				if assert.NoError(t, err, "%s is in the image", p) {
					assert.Equal(t, plantedScript(c), string(b), "%s is the blueprint's data", p)
				}
				assertMode(t, root, p, 0o755)
			}
			// The tools the blueprint made the build use did their work.
			assert.FileExists(t, filepath.Join(root, "etc/systemd/system/multi-user.target.wants/kiln-hostile.service"))
			assert.Contains(t, readFile(t, root, "etc/nftables.conf"), "8080")
			assert.Contains(t, readFile(t, root, "etc/passwd"), "\nhostile:")
		}},
		{"file over /etc/alternatives/awk replaces the link only", func(t *testing.T) {
			assertReplacedLink(t, root, "etc/alternatives/awk", awkData)
			assertPackageFile(t, root, "mawk", "usr/bin/mawk")
		}},
		{"file over /etc/os-release replaces the link only", func(t *testing.T) {
			assertReplacedLink(t, root, "etc/os-release", osReleaseData)
			assertPackageFile(t, root, "base-files", "usr/lib/os-release")
		}},
		{"setuid files of the tree are out of host users' reach", func(t *testing.T) {
			assert.Equal(t, "0", rep["tree.suid-planted"], "the postinst made its setuid copy of id")
			trees, err := filepath.Glob(filepath.Join(cache, "trees", "*", "tree", "usr/local/bin/kiln-hostile-suid"))
			require.NoError(t, err)
			require.NotEmpty(t, trees, "the cache holds the tree with the postinst's setuid file")
			for _, p := range trees {
				// An unprivileged host user runs the tree's setuid file. The
				// shell does the path look-up as that user (setpriv's own
				// exec of a path would not show whether the user can reach it).
				out, err := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
					"/bin/sh", "-c", `exec "$0" -u`, p).CombinedOutput()
				got := strings.TrimSpace(string(out))
				assert.False(t, err == nil && got == "0", "a host user became root through %s", p)
			}
		}},
	}
	for _, tc := range checks {
		t.Run(tc.name, tc.check)
	}
}

func (r report) String() string {
	keys := slices.Sorted(maps.Keys(r))
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s %s\n", k, r[k])
	}
	return b.String()
}

// statusPlaces are the places where the postinst could read its
// /proc/self/status; there is at least one.
func statusPlaces(t *testing.T, rep report) []string {
	t.Helper()
	var at []string
	for _, p := range places {
		if _, ok := rep[p+".status.Seccomp"]; ok {
			at = append(at, p)
		}
	}
	require.NotEmpty(t, at, "the postinst could read /proc/self/status somewhere")
	return at
}

// requireFailed asserts that the probe failed wherever it ran.
func requireFailed(t *testing.T, rep report, probe string) {
	t.Helper()
	n := 0
	for _, at := range places {
		v, ok := rep[at+"."+probe]
		if !ok {
			continue
		}
		n++
		assert.True(t, strings.HasPrefix(v, "fail"), "%s: %s succeeded: %s", at, probe, v)
	}
	assert.NotZero(t, n, "the postinst ran the %s probe", probe)
}

func stat(t *testing.T, root, p string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Lstat(filepath.Join(root, p))
	require.NoError(t, err)
	return fi.Sys().(*syscall.Stat_t)
}

func assertOwner(t *testing.T, root, p string, uid, gid uint32) {
	t.Helper()
	st := stat(t, root, p)
	assert.Equal(t, [2]uint32{uid, gid}, [2]uint32{st.Uid, st.Gid}, "owner (uid, gid) of /%s", p)
}

func assertMode(t *testing.T, root, p string, mode os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(filepath.Join(root, p))
	if assert.NoError(t, err) {
		assert.Equal(t, mode, fi.Mode(), "mode of %s", p)
	}
}

func readFile(t *testing.T, root, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, p))
	require.NoError(t, err)
	return string(b)
}

// userID and groupID look a name up in the image's own files.
func userID(t *testing.T, root, name string) uint32  { return idIn(t, root, "etc/passwd", name) }
func groupID(t *testing.T, root, name string) uint32 { return idIn(t, root, "etc/group", name) }

func idIn(t *testing.T, root, file, name string) uint32 {
	t.Helper()
	for _, line := range strings.Split(readFile(t, root, file), "\n") {
		f := strings.Split(line, ":")
		if len(f) > 2 && f[0] == name {
			id, err := strconv.ParseUint(f[2], 10, 32)
			require.NoError(t, err)
			return uint32(id)
		}
	}
	t.Fatalf("no %s in the image's /%s", name, file)
	return 0
}

// assertReplacedLink: the blueprint's file took the place of the link.
func assertReplacedLink(t *testing.T, root, p, data string) {
	t.Helper()
	fi, err := os.Lstat(filepath.Join(root, p))
	require.NoError(t, err)
	assert.True(t, fi.Mode().IsRegular(), "/%s is a regular file now, not %s", p, fi.Mode())
	if fi.Mode().IsRegular() {
		assert.Equal(t, data, readFile(t, root, p))
	}
}

// assertPackageFile: the file is still what the package installed, by
// dpkg's own md5sums.
func assertPackageFile(t *testing.T, root, pkg, p string) {
	t.Helper()
	var want string
	for _, line := range strings.Split(readFile(t, root, "var/lib/dpkg/info/"+pkg+".md5sums"), "\n") {
		if sum, name, ok := strings.Cut(line, "  "); ok && name == p {
			want = sum
		}
	}
	require.NotEmpty(t, want, "%s's md5sums list /%s", pkg, p)
	f, err := os.Open(filepath.Join(root, p))
	require.NoError(t, err)
	defer f.Close()
	h := md5.New()
	_, err = io.Copy(h, f)
	require.NoError(t, err)
	assert.Equal(t, want, hex.EncodeToString(h.Sum(nil)), "/%s is still %s's file", p, pkg)
}
