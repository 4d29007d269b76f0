package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/boottest"
	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/testhost"
)

// cloudBlueprint has no users of its own: on a cloud the first user comes
// from the cloud's metadata. Root's key is there so the images that boot
// without metadata here can be checked.
const cloudBlueprint = `
name = "cloud"
[[packages]]
name = "jq"
[customizations]
hostname = "kiln-cloud"
[[customizations.sshkey]]
user = "root"
key = "KEY"
`

// TestCloudImages builds the AWS, Azure and GCE types of one blueprint
// (sharing the package installation in one cache), checks each file the
// way its cloud reads it, and boots each: the AWS image with a NoCloud seed,
// to prove cloud-init takes the user, key and host name from metadata and
// grows the root filesystem to the disk.
func TestCloudImages(t *testing.T) {
	testhost.RequireBuildHost(t, engine.HostProblems(nil))
	t.Parallel()
	key, pub := newSSHKey(t)
	bp := strings.ReplaceAll(cloudBlueprint, "KEY", pub)
	cache := sharedCache(t)
	out := t.TempDir()
	var (
		ami = build(t, plan(t, bp, "aws"), cache, filepath.Join(out, "ami"), nil)
		vhd = build(t, plan(t, bp, "azure"), cache, filepath.Join(out, "vhd"), nil)
		gce = build(t, plan(t, bp, "gcp"), cache, filepath.Join(out, "gce"), nil)
	)
	assert.True(t, strings.HasSuffix(ami, "cloud-debian-12-x86_64.ami.raw"), ami)

	// Azure: a fixed VHD of a whole number of MiB, footer checksum right.
	footer := readVHDFooter(t, vhd)
	st, err := os.Stat(vhd)
	require.NoError(t, err)
	assert.Equal(t, "conectix", footer.cookie)
	assert.Equal(t, uint32(2), footer.diskType, "fixed disk")
	assert.Equal(t, uint64(st.Size()-512), footer.currentSize, "the data is the whole file but the footer")
	assert.Zero(t, footer.currentSize%(1<<20), "Azure takes sizes of whole MiB only")
	assert.True(t, footer.checksumOK, "footer checksum")
	vhdAsQcow2 := filepath.Join(out, "vhd.qcow2")
	run(t, "qemu-img", "convert", "-f", "vpc", "-O", "qcow2", vhd, vhdAsQcow2)

	// GCE: one member, disk.raw, an oldgnu sparse entry in a gzip stream.
	listing := strings.Fields(run(t, "tar", "-tzf", gce))
	assert.Equal(t, []string{"disk.raw"}, listing)
	header := firstTarHeader(t, gce)
	assert.Equal(t, "ustar  \x00", string(header[257:265]), "oldgnu magic, as GCE requires")
	assert.Equal(t, byte('S'), header[156], "a GNU sparse entry")
	gceDir := t.TempDir()
	run(t, "tar", "-xSzf", gce, "-C", gceDir)
	gceRaw := filepath.Join(gceDir, "disk.raw")

	// The NoCloud seed: its own key for cloud-init's default user.
	nocloudKey, nocloudPub := newSSHKey(t)
	seed := nocloudSeed(t, "kiln-nocloud", nocloudPub)
	// A bigger disk than the image, as a cloud gives: cloud-init grows root.
	bigAMI := filepath.Join(out, "ami-8g.raw")
	run(t, "cp", "--sparse=always", ami, bigAMI)
	require.NoError(t, os.Truncate(bigAMI, 8<<30))

	t.Run("aws-nocloud", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		vm, err := boottest.Boot(ctx, boottest.Config{Image: bigAMI, Firmware: "uefi", SSHKey: nocloudKey, User: "debian", Drives: []string{seed}})
		require.NoError(t, err, "cloud-init made the debian user with the seed's key")
		defer func() {
			if t.Failed() {
				t.Logf("end of the serial console:\n%s", vm.ConsoleTail(40))
			}
			vm.Close()
		}()
		sh := func(args ...string) string {
			t.Helper()
			out, err := vm.Run(ctx, args...)
			require.NoError(t, err, "%v: %s", args, out)
			return strings.TrimSpace(out)
		}
		status, err := vm.Run(ctx, "cloud-init", "status", "--wait", "--long")
		require.NoError(t, err, "cloud-init finished without errors:\n%s", status)
		assert.Contains(t, status, "status: done")
		assert.Equal(t, "nocloud", sh("cloud-init", "query", "platform"))
		assert.Equal(t, "kiln-nocloud", sh("hostname"), "the host name comes from the metadata")
		assert.Contains(t, sh("id", "debian"), "(sudo)")
		assert.Equal(t, "root", sh("sudo", "-n", "id", "-un"), "the default user has passwordless sudo")
		size, err := strconv.ParseInt(sh("findmnt", "-n", "-b", "-o", "SIZE", "/"), 10, 64)
		require.NoError(t, err)
		assert.Greater(t, size, int64(7<<30), "the root filesystem grew to the 8 GiB disk")
		assert.Contains(t, sh("cat", "/proc/cmdline"), "nvme_core.io_timeout=4294967295")
		// ENA is a module of the cloud kernel, NVMe built in: either counts.
		for _, driver := range []string{"ena", "nvme"} {
			assert.Equal(t, "present", sh("sh", "-c", `grep -qE "/$1\.ko(\.[a-z]+)?(:|$)" "/lib/modules/$(uname -r)/modules.dep" "/lib/modules/$(uname -r)/modules.builtin" && echo present`, "sh", driver), driver)
		}
		assert.Contains(t, sh("cat", "/etc/cloud/cloud.cfg.d/90_kiln_datasource.cfg"), "[Ec2, NoCloud, None]")
		checkNetworkDrivers(t, sh, "ami")
		assert.Equal(t, "install ok installed", sh("dpkg-query", "-W", "-f", "${Status}", "jq"))
		assert.Equal(t, "yes", sh("sh", "-c", "test -d /sys/firmware/efi && echo yes"), "booted through UEFI")
	})
	t.Run("azure", func(t *testing.T) {
		t.Parallel()
		g := bootGuest(t, vhdAsQcow2, "bios", key)
		sh := g.sh
		assert.Equal(t, "kiln-cloud", sh("hostname"))
		cmdline := sh("cat", "/proc/cmdline")
		for _, want := range []string{"console=ttyS0,115200n8", "earlyprintk=ttyS0", "rootdelay=300"} {
			assert.Contains(t, cmdline, want)
		}
		assert.Empty(t, sh("swapon", "--show"), "no swap on the OS disk")
		assert.Contains(t, sh("cat", "/etc/cloud/cloud.cfg.d/90_kiln_datasource.cfg"), "[Azure, NoCloud, None]")
		assert.Equal(t, "install ok installed", sh("dpkg-query", "-W", "-f", "${Status}", "cloud-init"))
		sh("/usr/sbin/modinfo", "-n", "hv_netvsc")
		sh("/usr/sbin/modinfo", "-n", "hv_storvsc")
		checkNetworkDrivers(t, sh, "vhd")
	})
	t.Run("gcp", func(t *testing.T) {
		t.Parallel()
		g := bootGuest(t, gceRaw, "bios", key)
		sh := g.sh
		assert.Equal(t, "kiln-cloud", sh("hostname"))
		assert.Contains(t, sh("cat", "/proc/cmdline"), "console=ttyS0,38400n8d")
		assert.Equal(t, "enabled", sh("systemctl", "is-enabled", "systemd-timesyncd"))
		assert.Contains(t, sh("systemd-analyze", "cat-config", "systemd/timesyncd.conf"), "NTP=metadata.google.internal")
		assert.Contains(t, sh("cat", "/etc/cloud/cloud.cfg.d/90_kiln_datasource.cfg"), "[GCE, NoCloud, None]")
		checkNetworkDrivers(t, sh, "gce")
		assert.Equal(t, "install ok installed", sh("dpkg-query", "-W", "-f", "${Status}", "jq"))
	})
}

// nocloudSeed makes a NoCloud seed ISO (volume "cidata") that names the
// instance, sets its host name and gives cloud-init's default user a key.
// It is attached as a virtio disk, as a config drive is: the cloud kernel's
// initramfs has virtio but no CD-ROM driver, and cloud-init looks for its
// data source before udev has loaded any other.
func nocloudSeed(t *testing.T, hostname, pub string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "meta-data"), []byte("instance-id: kiln-e2e-1\nlocal-hostname: "+hostname+"\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "user-data"), []byte("#cloud-config\nssh_authorized_keys:\n  - "+pub+"\n"), 0o644))
	seed := filepath.Join(t.TempDir(), "seed.iso")
	run(t, "xorriso", "-as", "mkisofs", "-quiet", "-o", seed, "-V", "cidata", "-J", "-R",
		filepath.Join(dir, "user-data"), filepath.Join(dir, "meta-data"))
	return seed
}

// firstTarHeader is the first 512-byte header of a gzip-compressed tar.
func firstTarHeader(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err, "gzip stream")
	b := make([]byte, 512)
	_, err = io.ReadFull(zr, b)
	require.NoError(t, err)
	return b
}

type vhdFooter struct {
	cookie      string
	diskType    uint32
	currentSize uint64
	checksumOK  bool
}

// readVHDFooter parses the 512-byte footer at the end of a VHD (Microsoft's
// Virtual Hard Disk Image Format Specification): the cookie, the current
// size, the disk type and the one's complement checksum over the footer.
func readVHDFooter(t *testing.T, path string) vhdFooter {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	st, err := f.Stat()
	require.NoError(t, err)
	b := make([]byte, 512)
	_, err = f.ReadAt(b, st.Size()-512)
	require.NoError(t, err)
	want := binary.BigEndian.Uint32(b[64:68])
	var sum uint32
	for i, c := range b {
		if i < 64 || i >= 68 {
			sum += uint32(c)
		}
	}
	return vhdFooter{
		cookie:      string(bytes.TrimRight(b[0:8], "\x00")),
		currentSize: binary.BigEndian.Uint64(b[48:56]),
		diskType:    binary.BigEndian.Uint32(b[60:64]),
		checksumOK:  ^sum == want,
	}
}
