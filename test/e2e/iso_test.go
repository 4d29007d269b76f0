package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/boottest"
	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/testhost"
)

// isoBlueprint is what the ISO and raw checks look for; KEY is replaced
// by the run's key. It lists live-boot, which the ISO types add anyway, so
// that the raw image installs the very same packages and the three types
// share one package installation.
const isoBlueprint = `
name = "iso-e2e"

[[packages]]
name = "jq"

[[packages]]
name = "live-boot"

[customizations]
hostname = "kiln-iso"

[[customizations.sshkey]]
user = "root"
key = "KEY"
`

// TestISOImages builds a live ISO, an installer ISO and a raw disk of one
// blueprint, checks that both ISOs are hybrid (El Torito for BIOS and UEFI,
// an MBR with GRUB's boot code, a GPT with the EFI system partition) and
// the raw disk's partition table, then boots the live ISO from a CD with
// UEFI and from a disk (a USB stick) with BIOS, the installer from a CD
// with BIOS next to an empty disk (it installs onto the disk and reboots
// into the installed system, which is how a raw disk boots with BIOS), and
// the raw disk with UEFI.
func TestISOImages(t *testing.T) {
	testhost.RequireBuildHost(t, engine.HostProblems(nil))
	t.Parallel()
	key, pub := newSSHKey(t)
	bp := strings.ReplaceAll(isoBlueprint, "KEY", pub)
	// The three types install the same packages: one cache builds them once.
	cache := sharedCache(t)
	liveOut := filepath.Join(t.TempDir(), "live")
	liveManifest := plan(t, bp, "live-iso")
	live := build(t, liveManifest, cache, liveOut, nil)
	showBuildLogOnFailure(t, liveOut)
	installerManifest := plan(t, bp, "image-installer")
	installerOut := filepath.Join(t.TempDir(), "installer")
	installer := build(t, installerManifest, cache, installerOut, nil)
	showBuildLogOnFailure(t, installerOut)
	rawManifest := plan(t, bp, "raw")
	rawOut := filepath.Join(t.TempDir(), "raw")
	raw := build(t, rawManifest, cache, rawOut, nil)
	showBuildLogOnFailure(t, rawOut)
	checkRawDisk(t, raw)

	checkHybridISO(t, live)
	checkHybridISO(t, installer)
	files := run(t, "xorriso", "-indev", installer, "-find", "/install", "-type", "f")
	assert.Contains(t, files, "'/install/disk.img.zst'")
	rootUUID := rootFilesystemUUID(t, installerManifest)
	assert.Equal(t, rootUUID, rootFilesystemUUID(t, rawManifest), "the types of one blueprint share their identifiers")
	liveSum := sha256File(t, live)

	checkLive := func(t *testing.T, vm *boottest.Machine, ctx context.Context) {
		sh := guestShell(t, vm, ctx)
		assert.Equal(t, "kiln-iso", sh("hostname"))
		assert.Equal(t, "install ok installed", sh("dpkg-query", "-W", "-f", "${Status}", "jq"))
		assert.Equal(t, "overlay", sh("findmnt", "-n", "-o", "FSTYPE", "/"), "the root is live-boot's overlay")
		assert.Equal(t, "iso9660", sh("findmnt", "-n", "-o", "FSTYPE", "/run/live/medium"), "the ISO is mounted as the live medium")
		assert.Contains(t, sh("cat", "/proc/cmdline"), "boot=live components")
		assert.NotEmpty(t, sh("sh", "-c", "ls /run/live/medium/live/filesystem.squashfs"))
		active, _ := vm.Run(ctx, "systemctl", "is-active", "kiln-install.service")
		assert.Equal(t, "inactive", strings.TrimSpace(active), "a live ISO has no installer")
	}
	// The boots run side by side, as many at once as the test's -parallel,
	// the longest (install, reboot, check) first.
	t.Run("installer-cdrom-bios", func(t *testing.T) {
		t.Parallel()
		// A disk larger than the image, as a real one would be.
		vm, ctx := bootISO(t, boottest.Config{CDROM: installer, BlankDisks: []int64{5 << 30}, Firmware: "bios", SSHKey: key, Timeout: 25 * time.Minute})
		// SSH may first answer in the live installer; the installed
		// system is the one whose root is ext4.
		_, err := vm.WaitOutput(ctx, 25*time.Minute, "ext4", "findmnt", "-n", "-o", "FSTYPE", "/")
		require.NoError(t, err, "the installer wrote the disk and rebooted into it")
		sh := guestShell(t, vm, ctx)
		assert.Contains(t, vm.Console(), "kiln-install: installing onto /dev/vda", "the installer picked the empty disk")
		assert.Equal(t, "/dev/vda3", sh("findmnt", "-n", "-o", "SOURCE", "/"), "the root is on the installed disk")
		assert.Equal(t, rootUUID, sh("findmnt", "-n", "-o", "UUID", "/"), "the root is the image's filesystem")
		assert.NotContains(t, sh("cat", "/proc/cmdline"), "boot=live")
		assert.Equal(t, "kiln-iso", sh("hostname"))
		assert.Equal(t, "install ok installed", sh("dpkg-query", "-W", "-f", "${Status}", "jq"))
		assert.Equal(t, []string{"vfat"}, espMount(sh, "FSTYPE"), "the installed fstab mounts the ESP")
		state, _ := vm.Run(ctx, "systemctl", "is-system-running", "--wait")
		if strings.TrimSpace(state) != "running" {
			failed, _ := vm.Run(ctx, "systemctl", "--failed", "--no-legend")
			t.Errorf("installed system state %q; failed units:\n%s", strings.TrimSpace(state), failed)
		}
		active, _ := vm.Run(ctx, "systemctl", "is-active", "kiln-install.service")
		assert.Equal(t, "inactive", strings.TrimSpace(active), "the installer does not run on the installed system")
	})
	t.Run("live-cdrom-uefi", func(t *testing.T) {
		t.Parallel()
		vm, ctx := bootISO(t, boottest.Config{CDROM: live, Firmware: "uefi", SSHKey: key})
		sh := guestShell(t, vm, ctx)
		assert.Equal(t, "yes", sh("sh", "-c", "test -d /sys/firmware/efi && echo yes"), "booted through UEFI")
		assert.Regexp(t, `^/dev/sr0$`, sh("findmnt", "-n", "-o", "SOURCE", "/run/live/medium"), "from the CD-ROM")
		checkLive(t, vm, ctx)
	})
	t.Run("live-usb-bios", func(t *testing.T) {
		t.Parallel()
		vm, ctx := bootISO(t, boottest.Config{Image: live, Firmware: "bios", SSHKey: key})
		sh := guestShell(t, vm, ctx)
		assert.Equal(t, "no", sh("sh", "-c", "test -d /sys/firmware/efi && echo yes || echo no"), "booted through BIOS")
		assert.Regexp(t, `^/dev/vda`, sh("findmnt", "-n", "-o", "SOURCE", "/run/live/medium"), "from the ISO written to a disk")
		checkLive(t, vm, ctx)
		vm.Close()
		assert.Equal(t, liveSum, sha256File(t, live), "the ISO is not modified by booting it")
	})
	t.Run("raw-uefi", func(t *testing.T) {
		t.Parallel()
		sh := bootGuest(t, raw, "uefi", key).sh
		assert.Equal(t, "yes", sh("sh", "-c", "test -d /sys/firmware/efi && echo yes"), "booted through UEFI")
		assert.Equal(t, "kiln-iso", sh("hostname"))
		assert.Equal(t, "/dev/vda3", sh("findmnt", "-n", "-o", "SOURCE", "/"))
		assert.Equal(t, rootUUID, sh("findmnt", "-n", "-o", "UUID", "/"))
		assert.NotContains(t, sh("uname", "-r"), "cloud", "the raw image has the generic kernel")
		assert.Equal(t, "install ok installed\ninstall ok installed", sh("dpkg-query", "-W", "-f", "${Status}\n", "linux-image-amd64", "jq"))
		assert.Equal(t, []string{"vfat"}, espMount(sh, "FSTYPE"))
	})
	// Each type again from its manifest in a second cache, which the three
	// share as the first builds do: the same bytes.
	t.Run("reproducible", func(t *testing.T) {
		t.Parallel()
		again := newRebuilder(t)
		again.assertRebuildsIdentically(t, liveManifest, live, nil)
		again.assertRebuildsIdentically(t, installerManifest, installer, nil)
		again.assertRebuildsIdentically(t, rawManifest, raw, nil)
	})
}

// checkRawDisk checks that image is a raw disk with a GPT holding the BIOS
// boot, EFI system and root partitions.
func checkRawDisk(t *testing.T, image string) {
	t.Helper()
	assert.True(t, strings.HasSuffix(image, ".raw"), image)
	assert.Contains(t, run(t, "qemu-img", "info", "--output=json", image), `"format": "raw"`)
	var dump struct {
		PartitionTable struct {
			Label      string `json:"label"`
			Partitions []struct {
				Name string `json:"name"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	require.NoError(t, json.Unmarshal([]byte(run(t, "sfdisk", "--json", image)), &dump))
	assert.Equal(t, "gpt", dump.PartitionTable.Label)
	var names []string
	for _, p := range dump.PartitionTable.Partitions {
		names = append(names, p.Name)
	}
	assert.Equal(t, []string{"bios-boot", "esp", "root"}, names)
}

// bootISO boots cfg and stops the machine when the test ends, showing the
// end of the serial console if the test failed.
func bootISO(t *testing.T, cfg boottest.Config) (*boottest.Machine, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	t.Cleanup(cancel)
	vm, err := boottest.Boot(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("end of the serial console:\n%s", vm.ConsoleTail(60))
		}
		vm.Close()
	})
	return vm, ctx
}

// guestShell runs a command on vm and fails the test when it fails.
func guestShell(t *testing.T, vm *boottest.Machine, ctx context.Context) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		out, err := vm.Run(ctx, args...)
		require.NoError(t, err, "%v", args)
		return strings.TrimSpace(out)
	}
}

// checkHybridISO checks that iso boots with BIOS and UEFI from optical
// media (El Torito) and from a disk (GRUB's MBR code, a GPT holding the
// EFI system partition), and carries the live system.
func checkHybridISO(t *testing.T, iso string) {
	t.Helper()
	el := run(t, "xorriso", "-indev", iso, "-report_el_torito", "plain")
	assert.Regexp(t, `El Torito boot img :\s+1\s+BIOS\s+y`, el)
	assert.Regexp(t, `El Torito boot img :\s+2\s+UEFI\s+y`, el)
	assert.Regexp(t, `Volume id\s+:\s+'ISO_E2E'`, el)
	sys := run(t, "xorriso", "-indev", iso, "-report_system_area", "plain")
	assert.Contains(t, sys, "grub2-mbr", "GRUB's hybrid MBR code")
	assert.Regexp(t, regexp.MustCompile(`GPT type GUID\s+:\s+\d+\s+28732ac11ff8d211ba4b00a0c93ec93b`), sys, "an EFI system partition in the GPT")
	f, err := os.Open(iso)
	require.NoError(t, err)
	defer f.Close()
	head := make([]byte, 1024)
	_, err = f.ReadAt(head, 0)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x55, 0xaa}, head[510:512], "MBR signature")
	assert.Equal(t, "EFI PART", string(head[512:520]), "GPT header")
	files := run(t, "xorriso", "-indev", iso, "-find", "/live", "-type", "f")
	for _, p := range []string{"/live/filesystem.squashfs", "/live/vmlinuz", "/live/initrd.img"} {
		assert.Contains(t, files, "'"+p+"'")
	}
}

func showBuildLogOnFailure(t *testing.T, out string) {
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(out, "build.log"))
			lines := strings.Split(string(b), "\n")
			if len(lines) > 40 {
				lines = lines[len(lines)-40:]
			}
			t.Logf("end of the build log:\n%s", strings.Join(lines, "\n"))
		}
	})
}
