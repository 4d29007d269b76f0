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
	"github.com/kiln-project/kiln/internal/manifest"
	"github.com/kiln-project/kiln/internal/target/targettest"
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

// cloudImageSize is the disk size the cloud composes ask for: half the
// types' default, which holds the system with room to spare and halves
// what every copy of the image moves.
const cloudImageSize = 2 << 30

// TestCloudImages builds the AWS, Azure and GCE types of one blueprint
// through the service (its worker sharing the package installation in one
// cache), each delivered to its cloud: an AMI registered and shared in EC2,
// a managed image in Azure from a page blob, an image in Compute Engine
// from a bucket. Each is checked where it landed (the bytes imported are
// the image's; the account it was shared with), then the image is checked
// the way its cloud reads it, and booted: the AWS image with a NoCloud
// seed, to prove cloud-init takes the user, key and host name from
// metadata and grows the root filesystem to the disk.
func TestCloudImages(t *testing.T) {
	testhost.RequireBuildHost(t, engine.HostProblems(nil))
	t.Parallel()
	key, pub := newSSHKey(t)
	bp := strings.ReplaceAll(cloudBlueprint, "KEY", pub)
	cache := sharedCache(t)
	out := t.TempDir()

	// The clouds: S3 and an EC2 wire-protocol server, Azurite and an ARM
	// one, fake-gcs-server and a Compute Engine one.
	s3 := targettest.StartS3(t)
	ec2 := targettest.StartEC2(t, s3)
	az := targettest.StartAzurite(t)
	arm := targettest.StartARM(t)
	gcp := targettest.StartGCP(t)
	var azureBlob struct {
		sha, typ string
		size     int64
		err      error
	}
	arm.OnCreate(func(img targettest.ARMImage) error {
		// Azure reads the blob when it makes the image: so does the test.
		azureBlob.sha, azureBlob.size, azureBlob.typ, azureBlob.err = az.BlobSHA256(img.BlobURI)
		return azureBlob.err
	})
	awsCfg, azureCfg := ec2.AWSConfig(), targettest.AzureConfig(az, arm)
	tc := gcp.Config
	tc.AWS, tc.Azure = &awsCfg, &azureCfg
	azureEnv := targettest.AzureEnv(az, arm)
	env := func(k string) string {
		if v := s3.EnvFunc()(k); v != "" {
			return v
		}
		return azureEnv(k)
	}
	k := startKiln(t, cache, tc, env)
	const account = "123456789012"
	amiID := k.composeSized(t, bp, "aws", cloudImageSize, map[string]any{"type": "aws", "options": map[string]any{"share_with_accounts": []any{account}}})
	vhdID := k.composeSized(t, bp, "azure", cloudImageSize, map[string]any{"type": "azure", "options": map[string]any{"resource_group": "kiln-e2e", "image_name": "kiln-cloud-e2e"}})
	gceID := k.composeSized(t, bp, "gcp", cloudImageSize, map[string]any{"type": "gcp", "options": map[string]any{"share_with_accounts": []any{"user:alice@example.com"}}})

	// AWS: the disk was imported as a snapshot, registered and shared.
	st, seen := k.wait(t, amiID, 30*time.Minute)
	ami := k.download(t, amiID, filepath.Join(out, "ami", "cloud-debian-12-x86_64.ami.raw"))
	amiSum := sha256File(t, ami)
	opts := st.ImageStatus.UploadStatus.Options
	require.NotEmpty(t, opts["ami"], "the upload status names the AMI")
	assert.Equal(t, targettest.S3Region, opts["region"])
	assert.True(t, seen["registering"] || seen["uploading"], "the compose was seen delivering: %v", seen)
	images := ec2.Images()
	require.Len(t, images, 1)
	assert.Equal(t, opts["ami"], images[0].ID)
	assert.Equal(t, []string{account}, images[0].LaunchPermissions, "shared with the account asked for")
	assert.Equal(t, "uefi-preferred", images[0].BootMode, "the image boots both ways; EC2 is told so")
	snap := ec2.Snapshot(images[0].SnapshotID)
	require.NotNil(t, snap)
	assert.Equal(t, amiSum, snap.SHA256, "the snapshot was imported from the image's bytes")
	assert.Equal(t, []string{account}, snap.VolumePermissions)
	assert.Equal(t, []string{"ImportSnapshot", "RegisterImage", "ModifyImageAttribute"}, inOrder(ec2.Actions(), "ImportSnapshot", "RegisterImage", "ModifyImageAttribute"),
		"import, then register, then share")
	assert.Empty(t, s3.Keys(t), "the staging object is gone after the import")

	// Azure: a page blob of the VHD's bytes became the managed image.
	st, _ = k.wait(t, vhdID, 30*time.Minute)
	vhd := k.download(t, vhdID, filepath.Join(out, "vhd", "cloud-debian-12-x86_64.vhd"))
	assert.Equal(t, "kiln-cloud-e2e", st.ImageStatus.UploadStatus.Options["image_name"])
	require.NoError(t, azureBlob.err)
	assert.Equal(t, "PageBlob", azureBlob.typ)
	assert.Equal(t, sha256File(t, vhd), azureBlob.sha, "Azure made the image from the VHD's bytes")
	require.Len(t, arm.Images(), 1)
	assert.Equal(t, "Succeeded", arm.Images()[0].State)
	assert.Empty(t, az.Blobs(t), "the staging blob is gone once the image is made")

	// GCE: the tarball imported from the bucket, shared, then deleted.
	st, _ = k.wait(t, gceID, 30*time.Minute)
	gce := k.download(t, gceID, filepath.Join(out, "gce", "cloud-debian-12-x86_64.gce.tar.gz"))
	// The three again from the manifests the service built them from, in
	// a second cache of their own (beside the boots below): the same bytes.
	rebuilds := []struct {
		m     *manifest.Manifest
		image string
	}{{k.manifest(t, amiID), ami}, {k.manifest(t, vhdID), vhd}, {k.manifest(t, gceID), gce}}
	t.Run("reproducible", func(t *testing.T) {
		t.Parallel()
		again := newRebuilder(t)
		for _, r := range rebuilds {
			again.assertRebuildsIdentically(t, r.m, r.image, nil)
		}
	})
	name, _ := st.ImageStatus.UploadStatus.Options["image_name"].(string)
	assert.Equal(t, gcp.Compute.Project, st.ImageStatus.UploadStatus.Options["project_id"])
	imp, ok := gcp.Compute.Imports()[name]
	require.True(t, ok, "Compute Engine imported %q: %v", name, gcp.Compute.Imports())
	assert.Equal(t, sha256File(t, gce), imp.SHA256, "the image was made from the tarball's bytes")
	assert.Contains(t, imp.GuestOSFeatures, "UEFI_COMPATIBLE")
	assert.Equal(t, []string{"user:alice@example.com"}, gcp.Compute.Members(name, "roles/compute.imageUser"))
	assert.Empty(t, gcp.GCS.Objects(), "the staged tarball is deleted after the import")

	// Azure: a fixed VHD of a whole number of MiB, footer checksum right.
	footer := readVHDFooter(t, vhd)
	vhdInfo, err := os.Stat(vhd)
	require.NoError(t, err)
	assert.Equal(t, "conectix", footer.cookie)
	assert.Equal(t, uint32(2), footer.diskType, "fixed disk")
	assert.Equal(t, uint64(vhdInfo.Size()-512), footer.currentSize, "the data is the whole file but the footer")
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
		for _, want := range []string{"console=ttyS0,115200n8", "earlyprintk=ttyS0"} {
			assert.Contains(t, cmdline, want)
		}
		assert.NotContains(t, cmdline, "rootdelay=", "Debian's initramfs would sleep that long on every boot")
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

// inOrder is the calls of want as they appear in calls, each at its first
// appearance: equal to want when they came in that order.
func inOrder(calls []string, want ...string) []string {
	var out []string
	for _, w := range want {
		for _, c := range calls {
			if c == w {
				out = append(out, c)
				break
			}
		}
	}
	// Sort by first appearance.
	first := func(name string) int {
		for i, c := range calls {
			if c == name {
				return i
			}
		}
		return -1
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && first(out[j]) < first(out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
