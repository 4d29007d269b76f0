// Package e2e builds real images from blueprints with the whole of kiln —
// blueprint, depsolve against the host's Debian mirror, manifest, engine —
// and proves them: disk images are booted in qemu with BIOS and with UEFI
// and checked from inside over SSH; tar archives are unpacked and checked
// in a chroot. One image of each kind is built per run and checked for
// everything at once, to keep the suite inside CI's budget.
package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/aptsources"
	"github.com/kiln-project/kiln/internal/boottest"
	"github.com/kiln-project/kiln/internal/compose"
	"github.com/kiln-project/kiln/internal/depsolve/apt"
	"github.com/kiln-project/kiln/internal/distro"
	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/manifest"
	"github.com/kiln-project/kiln/internal/target"
	"github.com/kiln-project/kiln/internal/target/targettest"
	"github.com/kiln-project/kiln/internal/testhost"
	"github.com/kiln-project/kiln/test/imagebuild"
)

// hostDeps are what planning needs from the host: the distributions, its
// Debian mirrors (from its apt sources) and a resolver whose metadata
// cache the run shares.
func hostDeps(t *testing.T) (*distro.Registry, map[string]string, *apt.Resolver) {
	t.Helper()
	reg, err := distro.Load()
	require.NoError(t, err)
	entries, err := aptsources.Read("/")
	require.NoError(t, err)
	mirrors, err := aptsources.FindDebianMirrors(entries, []string{"bookworm"})
	require.NoError(t, err)
	r, err := apt.New(apt.Config{CacheDir: testhost.CacheDir(t)})
	require.NoError(t, err)
	return reg, map[string]string{"debian": mirrors.Main, "debian-security": mirrors.Security}, r
}

// plan turns blueprint text into a manifest, solved against the host's
// Debian mirror.
func plan(t *testing.T, bpText, imageType string) *manifest.Manifest {
	t.Helper()
	return planFor(t, bpText, "x86_64", imageType)
}

// planFor is plan for an architecture.
func planFor(t *testing.T, bpText, arch, imageType string) *manifest.Manifest {
	t.Helper()
	bp, err := blueprint.Parse([]byte(bpText), blueprint.FormatTOML)
	require.NoError(t, err)
	reg, mirrors, r := hostDeps(t)
	it, err := compose.ImageType(reg, bp, compose.Request{Distro: "debian-12", Arch: arch, ImageType: imageType}, compose.Defaults{})
	require.NoError(t, err)
	res, err := compose.Manifest(context.Background(), it, bp, distro.Options{Mirrors: mirrors}, r)
	require.NoError(t, err)
	return res.Manifest
}

// build runs the engine with its cache in cacheDir and returns the
// artifact's path in out.
var build = imagebuild.Build

// sharedCache is an engine cache whose package downloads are shared with
// the rest of the run, but whose trees and files are this test's own.
func sharedCache(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	debs := filepath.Join(testhost.CacheDir(t), "debs")
	require.NoError(t, os.MkdirAll(debs, 0o755))
	require.NoError(t, os.Symlink(debs, filepath.Join(dir, "debs")))
	return dir
}

// guest is a booted image: the machine, its context and sh, which runs a
// command on it and fails the test when the command fails.
type guest struct {
	vm  *boottest.Machine
	ctx context.Context
	sh  func(args ...string) string
}

// bootGuest boots image with firmware, logs in as root with key, waits
// until systemd is done starting (reporting a degraded system with its
// failed units) and stops the machine when the test ends, showing the end
// of the serial console if it failed.
func bootGuest(t *testing.T, image, firmware, key string) *guest {
	t.Helper()
	return bootGuestWith(t, boottest.Config{Image: image, Firmware: firmware, SSHKey: key, User: "root"})
}

// bootGuestWith is bootGuest with the whole machine configuration.
func bootGuestWith(t *testing.T, cfg boottest.Config) *guest {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	t.Cleanup(cancel)
	vm, err := boottest.Boot(ctx, cfg)
	require.NoError(t, err)
	// The boot time in every log, so a slower boot shows; the load says
	// how busy the host was (the tests boot side by side under TCG).
	firmware, what := cfg.Firmware, cfg.Image
	if firmware == "" {
		firmware = "default"
	}
	if what == "" {
		what = cfg.CDROM
	}
	accel := "tcg"
	if vm.KVM() {
		accel = "kvm"
	}
	loadavg, _ := os.ReadFile("/proc/loadavg")
	load := strings.Fields(string(loadavg))
	load = load[:min(3, len(load))]
	t.Logf("boot: ssh after %.1f s (firmware %s, image %s, %s, load %s)", vm.SSHAfter().Seconds(), firmware, filepath.Base(what), accel, strings.Join(load, " "))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("end of the serial console:\n%s", vm.ConsoleTail(40))
		}
		vm.Close()
	})
	g := &guest{vm: vm, ctx: ctx}
	g.sh = func(args ...string) string {
		t.Helper()
		out, err := vm.Run(ctx, args...)
		require.NoError(t, err, "%v", args)
		return strings.TrimSpace(out)
	}
	state, _ := vm.Run(ctx, "systemctl", "is-system-running", "--wait")
	if times, err := vm.BootTimes(ctx); err == nil {
		t.Logf("boot: %s (firmware %s, image %s)", times, firmware, filepath.Base(what))
	}
	if strings.TrimSpace(state) != "running" {
		failed, _ := vm.Run(ctx, "systemctl", "--failed", "--no-legend", "--plain")
		t.Errorf("system state %q; failed units:\n%s", strings.TrimSpace(state), failed)
		// Each failed unit's own log, to find the cause of a failure that
		// does not happen on every boot.
		for _, line := range strings.Split(strings.TrimSpace(failed), "\n") {
			if f := strings.Fields(line); len(f) > 0 {
				journal, _ := vm.Run(ctx, "journalctl", "-b", "--no-pager", "-o", "short-monotonic", "-n", "60", "-u", f[0])
				t.Logf("journal of %s:\n%s", f[0], journal)
			}
		}
	}
	return g
}

// checkNetworkDrivers checks that the booted image has a module (or a
// built-in driver) for every network card its image type declares, so it
// has a network on each platform the type is for, not only on the card
// this boot used.
func checkNetworkDrivers(t *testing.T, sh func(args ...string) string, imageType string) {
	t.Helper()
	checkNetworkDriversOf(t, sh, "x86_64", imageType)
}

// checkNetworkDriversOf is checkNetworkDrivers for an architecture.
func checkNetworkDriversOf(t *testing.T, sh func(args ...string) string, arch, imageType string) {
	t.Helper()
	reg, err := distro.Load()
	require.NoError(t, err)
	d, err := reg.Distro("debian-12")
	require.NoError(t, err)
	a, err := d.Arch(arch)
	require.NoError(t, err)
	it, err := a.ImageType(imageType)
	require.NoError(t, err)
	require.NotEmpty(t, it.NetworkDrivers, "image type %s declares its network cards", imageType)
	for _, driver := range it.NetworkDrivers {
		// modinfo finds modules and built-in drivers alike, and reads
		// "xen_netfront" as xen-netfront.ko.
		assert.NotEmpty(t, sh("/usr/sbin/modinfo", "-F", "filename", driver), "the kernel of %s has %s", imageType, driver)
	}
}

// espMount is the columns cols of findmnt for the ESP mounted at /boot/efi.
// The ESP is mounted when first used (x-systemd.automount): listing it
// mounts it first.
func espMount(sh func(args ...string) string, cols string) []string {
	return strings.Fields(sh("sh", "-c", `ls /boot/efi >/dev/null && findmnt -n -t vfat -o "$1" /boot/efi`, "sh", cols))
}

// newSSHKey makes a key pair for logging in to a built image and returns
// the private key's path and the public key.
func newSSHKey(t *testing.T) (key, pub string) {
	t.Helper()
	key = filepath.Join(t.TempDir(), "id_ed25519")
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kiln-e2e", "-f", key)
	b, err := os.ReadFile(key + ".pub")
	require.NoError(t, err)
	return key, strings.TrimSpace(string(b))
}

func sha256File(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	require.NoError(t, err)
	return hex.EncodeToString(h.Sum(nil))
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Run(), "%s %v: %s", name, args, out.String())
	return out.String()
}

const tarBlueprint = `
name = "rootfs"
[[packages]]
name = "jq"
[customizations]
hostname = "kiln-tar"
[[customizations.user]]
name = "dev"
groups = ["users"]
[[customizations.files]]
path = "/etc/kiln-release"
mode = "0600"
data = "built by kiln\n"
`

// TestTarImage builds the tar image twice from scratch — once with the
// engine, as `kiln build` does, and once through the service, whose
// compose is delivered to OCI Object Storage — and requires identical
// bytes everywhere: the same blueprint gives the same image whoever
// builds it, and what the pre-authenticated link serves is that image.
// It then checks the unpacked tree in a chroot.
func TestTarImage(t *testing.T) {
	testhost.RequireBuildHost(t, engine.HostProblems(nil))
	t.Parallel()
	m := plan(t, tarBlueprint, "tar")
	epoch := engine.ManifestEpoch(m) // the service's builds use the manifest's own
	a := build(t, m, sharedCache(t), t.TempDir(), &epoch)

	oci := targettest.StartOCIObjectStorage(t)
	s3 := targettest.StartS3(t)
	s3Cfg := s3.S3Config()
	k := startKiln(t, sharedCache(t), target.Config{OCI: &oci.Config, S3: &s3Cfg}, s3.EnvFunc())
	id := k.compose(t, tarBlueprint, "tar", map[string]any{"type": "oci.objectstorage"})
	// The same again to an S3 bucket: the same manifest, so the second
	// build is the cache's.
	id2 := k.compose(t, tarBlueprint, "tar", map[string]any{"type": "aws.s3"})
	st, _ := k.wait(t, id, 20*time.Minute)
	b := k.download(t, id, filepath.Join(t.TempDir(), "tar.tar.xz"))
	assert.Equal(t, sha256File(t, a), sha256File(t, b), "two builds from scratch, by the engine and by the service, give a bit-identical archive")
	st2, _ := k.wait(t, id2, 20*time.Minute)
	for _, s := range []composeStatus{st, st2} {
		us := s.ImageStatus.UploadStatus
		link, _ := us.Options["url"].(string)
		require.NotEmpty(t, link, "the %s upload status gives a link", us.Type)
		assert.NotEmpty(t, us.Options["expires_at"])
		resp, err := http.Get(link)
		require.NoError(t, err)
		delivered, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		sum := sha256.Sum256(delivered)
		assert.Equal(t, sha256File(t, a), hex.EncodeToString(sum[:]), "the %s link serves the image", us.Type)
	}
	assert.True(t, strings.HasPrefix(st2.ImageStatus.UploadStatus.Options["url"].(string), s3.URL), "aws.s3 links into the bucket")
	assert.Empty(t, s3.OpenUploads(t))

	root := t.TempDir()
	run(t, "tar", "--numeric-owner", "-xJf", a, "-C", root)
	chroot := func(args ...string) string { return run(t, "chroot", append([]string{root}, args...)...) }
	assert.Contains(t, chroot("dpkg-query", "-W", "-f", "${Package}\n", "jq"), "jq")
	assert.Equal(t, "kiln-tar\n", chroot("cat", "/etc/hostname"))
	assert.Contains(t, chroot("id", "dev"), "(users)")
	assert.Equal(t, "600 root root\n", chroot("stat", "-c", "%a %U %G", "/etc/kiln-release"))
	mid, err := os.Stat(filepath.Join(root, "etc/machine-id"))
	require.NoError(t, err)
	assert.Zero(t, mid.Size(), "machine-id is empty, so each container gets its own")
	ssh, _ := filepath.Glob(filepath.Join(root, "etc/ssh/ssh_host_*"))
	assert.Empty(t, ssh, "no SSH host keys are shipped")
	lists, _ := filepath.Glob(filepath.Join(root, "var/lib/apt/lists/*_Packages"))
	assert.Empty(t, lists, "apt lists are cleaned")
}
