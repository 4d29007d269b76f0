package stages

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-project/kiln/internal/aptsources"
	"github.com/kiln-project/kiln/internal/engine/sandbox"

	"github.com/kiln-project/kiln/internal/testhost"
)

// fixtureSuite and fixturePackages describe the Debian tree the stages that
// run commands inside a tree are tested on: a minimal system with the tools
// those stages call.
const fixtureSuite = "bookworm"

var fixturePackages = []string{
	"ca-certificates", "keyboard-configuration", "locales", "nftables",
	"openssh-server", "passwd", "sudo", "systemd", "systemd-timesyncd",
}

// testCacheDir is where slow fixtures are kept between test runs.
func testCacheDir() string {
	if d := os.Getenv("KILN_TEST_CACHE_DIR"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "kiln-test-cache")
}

// requireRoot skips a test that needs root or mmdebstrap when the host
// truly lacks them, saying why.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: extracting a Debian tree with its owners and running commands in it with namespaces")
	}
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		t.Skip("needs mmdebstrap to build the Debian test tree (apt-get install mmdebstrap)")
	}
}

// fixtureTarball returns the cached tarball of a test tree holding
// packages, building it with mmdebstrap the first time. A file lock keeps
// parallel tests and test binaries from building it twice.
func fixtureTarball(t *testing.T, packages []string) string {
	t.Helper()
	key := sha256.Sum256([]byte(fixtureSuite + "\nrequired\n" + strings.Join(packages, "\n")))
	dir := filepath.Join(testCacheDir(), "fixtures")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(dir, fixtureSuite+"-"+hex.EncodeToString(key[:8])+".tar")
	lock, err := os.OpenFile(tarball+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("locking %s: %v", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(tarball); err == nil {
		return tarball
	}
	entries, err := aptsources.Read("/")
	if err != nil {
		t.Fatalf("reading the host's apt sources: %v", err)
	}
	mirrors, err := aptsources.FindDebianMirrors(entries, []string{fixtureSuite})
	if err != nil {
		t.Fatal(err)
	}
	tmp := tarball + ".tmp.tar"
	defer os.Remove(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "mmdebstrap", "--variant=required",
		"--include="+strings.Join(packages, ","),
		fixtureSuite, tmp, "deb "+mirrors.Main+" "+fixtureSuite+" main")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("building the Debian test tree with mmdebstrap: %v\n%s", err, out.String())
	}
	if err := os.Rename(tmp, tarball); err != nil {
		t.Fatal(err)
	}
	t.Logf("built the Debian test tree %s in %s", tarball, time.Since(start).Round(time.Second))
	return tarball
}

// debianTree returns a fresh copy of the Debian test tree in a temporary
// directory.
func debianTree(t *testing.T) string {
	t.Helper()
	return debianTreeWith(t, fixturePackages)
}

// debianTreeWith returns a fresh copy of a Debian test tree holding
// packages (and the required set) in a temporary directory.
//
// Tests on it run Debian's own tools (useradd, locale-gen,
// update-ca-certificates, systemctl, nft) in the sandbox, tens of seconds
// each on a busy machine, after an mmdebstrap build the first time: they
// run in the full suite and not in the fast lane (go test -short), where
// the stages' tests on small trees of their own run.
func debianTreeWith(t *testing.T, packages []string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs Debian's tools in a copy of the Debian test tree: full suite only, not in the fast lane (go test -short)")
	}
	requireRoot(t)
	tarball := fixtureTarball(t, packages)
	dir := t.TempDir()
	out, err := exec.Command("tar", "-C", dir, "--numeric-owner", "-xpf", tarball).CombinedOutput()
	if err != nil {
		t.Fatalf("extracting %s: %v\n%s", tarball, err, out)
	}
	return dir
}

// syncBuffer is a log buffer safe for the concurrent writes of a command's
// stdout and stderr.
type syncBuffer = testhost.SyncBuffer

// testEnv returns an Env on tree whose Chroot runs commands in the sandbox,
// and the log the stage writes to.
func testEnv(t *testing.T, tree string) (*Env, *syncBuffer) {
	t.Helper()
	log := &syncBuffer{}
	chroot, sb := Sandboxed(tree, log, nil)
	env := &Env{
		Tree:    tree,
		Work:    t.TempDir(),
		Epoch:   time.Unix(1700000000, 0).UTC(),
		Log:     log,
		Chroot:  chroot,
		Sandbox: sb,
	}
	return env, log
}

// fileEnv returns an Env for stages that only write files: its Chroot
// fails the test if it is called.
func fileEnv(t *testing.T, tree string) (*Env, *syncBuffer) {
	t.Helper()
	log := &syncBuffer{}
	return &Env{
		Tree:  tree,
		Work:  t.TempDir(),
		Epoch: time.Unix(1700000000, 0).UTC(),
		Log:   log,
		Chroot: func(_ context.Context, _ io.Reader, argv ...string) error {
			return fmt.Errorf("unexpected command in the tree: %q", argv)
		},
	}, log
}

// inTree runs argv inside tree and returns its output. A command named
// without a path is looked up on the tree's PATH by the tree's env.
func inTree(t *testing.T, tree string, argv ...string) string {
	t.Helper()
	if !strings.HasPrefix(argv[0], "/") {
		argv = append([]string{"/usr/bin/env"}, argv...)
	}
	var out syncBuffer
	if err := sandbox.Run(context.Background(), tree, nil, &out, nil, argv...); err != nil {
		t.Fatalf("%q: %v\n%s", argv, err, out.String())
	}
	return out.String()
}

// readTree returns the content of the absolute path p in tree.
func readTree(t *testing.T, tree, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(tree, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// writeTree writes a file at the absolute path p in tree, creating parents.
func writeTree(t *testing.T, tree, p, data string) {
	t.Helper()
	dst := filepath.Join(tree, p)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// existsInTree says whether the absolute path p exists in tree (without
// following a last symbolic link).
func existsInTree(t *testing.T, tree, p string) bool {
	t.Helper()
	_, err := os.Lstat(filepath.Join(tree, p))
	if err == nil {
		return true
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return false
}
