package e2e

import (
	"debug/elf"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/boottest"
	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/ociindex"
	"github.com/kiln-project/kiln/internal/testhost"
)

// arm64Guest is what the aarch64 guest image carries for its checks; KEY
// is replaced by a key made for the run.
const arm64Guest = `
name = "arm64"
version = "1.0.0"

[[packages]]
name = "tmux"

[[packages]]
name = "cron"

[customizations]
hostname = "kiln-arm64"

[[customizations.user]]
name = "ops"
key = "KEY"
groups = ["sudo"]

[[customizations.sshkey]]
user = "root"
key = "KEY"

[customizations.services]
enabled = ["cron"]
masked = ["apt-daily.timer"]
`

// TestArm64Qcow2Image builds an aarch64 qcow2 on this host — through
// qemu-user when the host is x86_64, inside the same sandbox as a native
// build — and boots it on qemu-system-aarch64's virt machine with UEFI
// (AAVMF), then checks from inside that it is the blueprint's system on
// an aarch64 CPU. The one aarch64 boot of the suite: under TCG it takes
// minutes.
func TestArm64Qcow2Image(t *testing.T) {
	testhost.RequireBuildHost(t, engine.HostProblems(nil))
	t.Parallel()
	key, pub := newSSHKey(t)
	m := planFor(t, strings.ReplaceAll(arm64Guest, "KEY", pub), "aarch64", "qcow2")
	require.Equal(t, "aarch64", m.Target.Arch)
	out := t.TempDir()
	start := time.Now()
	image := build(t, m, sharedCache(t), out, nil)
	t.Logf("aarch64 qcow2 built in %s", time.Since(start).Round(time.Second))

	start = time.Now()
	g := bootGuestWith(t, boottest.Config{Image: image, Arch: "aarch64", Firmware: "uefi", SSHKey: key, User: "root"})
	t.Logf("aarch64 guest up (SSH and systemd done) in %s", time.Since(start).Round(time.Second))
	assert.Equal(t, "aarch64", g.sh("uname", "-m"))
	assert.Equal(t, "kiln-arm64", g.sh("hostname"))
	assert.Contains(t, g.sh("id", "ops"), "(sudo)")
	assert.Contains(t, g.sh("cat", "/home/ops/.ssh/authorized_keys"), strings.TrimSpace(pub))
	assert.Equal(t, "arm64 arm64", g.sh("dpkg-query", "-W", "-f", "${Architecture} ", "tmux", "cron"), "the packages are there, and arm64's")
	assert.Equal(t, "active", g.sh("systemctl", "is-active", "cron"))
	masked, _ := g.vm.Run(g.ctx, "systemctl", "is-enabled", "apt-daily.timer") // exits 1 when masked
	assert.Equal(t, "masked", strings.TrimSpace(masked))
	assert.Contains(t, g.sh("cat", "/proc/cmdline"), "console=ttyAMA0", "the serial console is the virt machine's PL011")
	assert.Contains(t, g.sh("uname", "-r"), "cloud-arm64", "the guest image runs the cloud kernel")
	assert.NotEmpty(t, g.sh("ls", "/sys/firmware/efi"), "booted with UEFI")
	assert.Equal(t, []string{"/dev/vda1", "vfat"}, espMount(g.sh, "SOURCE,FSTYPE"), "the ESP is the first partition: no BIOS boot partition")
	checkNetworkDriversOf(t, g.sh, "aarch64", "qcow2")
}

// arm64Tree is the aarch64 root tree's blueprint.
const arm64Tree = `
name = "arm64-tree"
version = "1.0.0"

[[packages]]
name = "jq"

[customizations]
hostname = "kiln-arm64-tree"

[[customizations.user]]
name = "dev"
groups = ["users"]

[[customizations.files]]
path = "/etc/kiln-release"
mode = "0644"
data = "built by kiln for arm64\n"
`

// TestArm64TarImage builds an aarch64 tar on this host and checks it file
// by file: every program in /usr/bin and /usr/sbin is an AArch64 ELF (or
// a script or link), the packages are arm64's, and the blueprint's
// customizations are in the tree. The same blueprint's container is then
// built for both architectures (the aarch64 one from the tar's cached
// package installation) and assembled into one OCI image index.
func TestArm64TarImage(t *testing.T) {
	testhost.RequireBuildHost(t, engine.HostProblems(nil))
	t.Parallel()
	cache := sharedCache(t)
	m := planFor(t, arm64Tree, "aarch64", "tar")
	a := build(t, m, cache, t.TempDir(), nil)
	t.Run("multi-architecture container", func(t *testing.T) { testMultiArchContainer(t, cache) })
	root := t.TempDir()
	run(t, "tar", "--numeric-owner", "-xJf", a, "-C", root)

	var elves, others int
	for _, dir := range []string{"usr/bin", "usr/sbin", "usr/lib/aarch64-linux-gnu"} {
		require.NoError(t, filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			f, err := elf.Open(p)
			if err != nil {
				others++ // a script, data
				return nil
			}
			defer f.Close()
			elves++
			assert.Equal(t, elf.EM_AARCH64, f.Machine, "%s is an AArch64 program", strings.TrimPrefix(p, root))
			return nil
		}))
	}
	assert.Greater(t, elves, 200, "a Debian tree has hundreds of programs and libraries")
	t.Logf("%d ELF files checked, all AArch64; %d other files", elves, others)
	_, err := os.Stat(filepath.Join(root, "usr/lib/x86_64-linux-gnu"))
	assert.ErrorIs(t, err, fs.ErrNotExist, "no amd64 libraries")
	// Lstat: the linker may be a link whose absolute target means the
	// tree's file, not the host's.
	_, err = os.Lstat(filepath.Join(root, "usr/lib/ld-linux-aarch64.so.1"))
	assert.NoError(t, err, "arm64's dynamic linker")

	status, err := os.ReadFile(filepath.Join(root, "var/lib/dpkg/status"))
	require.NoError(t, err)
	arches := map[string]int{}
	for _, stanza := range strings.Split(string(status), "\n\n") {
		for _, line := range strings.Split(stanza, "\n") {
			if v, ok := strings.CutPrefix(line, "Architecture: "); ok {
				arches[v]++
			}
		}
	}
	assert.Greater(t, arches["arm64"], 50)
	assert.Zero(t, arches["amd64"], "no amd64 package: %v", arches)
	assert.Contains(t, string(status), "Package: jq\n")

	hostname, err := os.ReadFile(filepath.Join(root, "etc/hostname"))
	require.NoError(t, err)
	assert.Equal(t, "kiln-arm64-tree\n", string(hostname))
	passwd, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	require.NoError(t, err)
	assert.Contains(t, string(passwd), "\ndev:x:")
	release, err := os.ReadFile(filepath.Join(root, "etc/kiln-release"))
	require.NoError(t, err)
	assert.Equal(t, "built by kiln for arm64\n", string(release))
	// The tree's own programs run here through the same emulation the
	// build used.
	assert.Equal(t, "aarch64\n", run(t, "chroot", root, "/usr/bin/uname", "-m"))
	assert.Equal(t, "3\n", run(t, "chroot", root, "/usr/bin/jq", "-n", "1+2"))
}

// testMultiArchContainer builds arm64Tree's container for x86_64 and
// aarch64 and assembles the two archives into one image index, as
// `kiln build -t container --arch x86_64,aarch64` does, then reads each
// platform's image back with skopeo.
func testMultiArchContainer(t *testing.T, cache string) {
	out := t.TempDir()
	var archives []string
	for _, arch := range []string{"x86_64", "aarch64"} {
		start := time.Now()
		archives = append(archives, build(t, planFor(t, arm64Tree, arch, "container"), cache, filepath.Join(out, arch), nil))
		t.Logf("%s container built in %s", arch, time.Since(start).Round(time.Second))
	}
	multi := filepath.Join(out, "arm64-tree-debian-12-multiarch.oci.tar")
	idx, err := ociindex.Assemble(multi, archives, ociindex.Options{})
	require.NoError(t, err)
	assert.Equal(t, "linux/amd64, linux/arm64", idx.Platforms())
	platforms, err := ociindex.Platforms(multi)
	require.NoError(t, err)
	require.Len(t, platforms, 2)

	raw := run(t, "skopeo", "inspect", "--raw", "oci-archive:"+multi)
	assert.Contains(t, raw, "application/vnd.oci.image.index.v1+json", "the archive's image is an index")
	for arch, want := range map[string]string{"amd64": "amd64", "arm64": "arm64"} {
		var info struct{ Architecture, Os string }
		require.NoError(t, json.Unmarshal([]byte(run(t, "skopeo", "--override-arch", arch, "inspect", "oci-archive:"+multi)), &info))
		assert.Equal(t, want, info.Architecture)
		assert.Equal(t, "linux", info.Os)
	}
}
