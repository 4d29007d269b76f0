package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/compose/composetest"
	"github.com/kiln-project/kiln/internal/disk"
	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/manifest"
)

// buildFake builds a fake image of type imageType and returns the paths of
// the image and its manifest.
func buildFake(t *testing.T, config string, b *composetest.Builder, imageType, ext string) (string, string) {
	t.Helper()
	out := t.TempDir()
	bp := writeBlueprint(t, "name = \"web\"\n")
	_, stderr, err := runBuildCLI(t, config, b, "build", "-b", bp, "-t", imageType, "--distro", "debian-12", "-o", out, "--progress", "none")
	require.NoError(t, err, stderr)
	return filepath.Join(out, "web-debian-12-x86_64"+ext), filepath.Join(out, "web-debian-12-x86_64.manifest.json")
}

func TestVerifyIdentical(t *testing.T) {
	config := writeConfig(t, "")
	b := &composetest.Builder{Size: 1 << 20}
	image, m := buildFake(t, config, b, "qcow2", ".qcow2")
	stdout, stderr, err := runBuildCLI(t, config, b, "verify", image, "--manifest", m, "--progress", "none")
	require.NoError(t, err, stderr)
	sum, _, err := hashImage(context.Background(), image)
	require.NoError(t, err)
	assert.Contains(t, stdout, "image    sha256:"+sum)
	assert.Contains(t, stdout, "rebuilt  sha256:"+sum)
	assert.Contains(t, stdout, "bit-identical")
	assert.Contains(t, stdout, "), the manifest's, as ", "the epoch is the one the SBOM next to the manifest records")
	assert.Equal(t, 2, b.Builds(), "the image was built again")
}

// A changed byte is reported with its offset and, in a raw disk, the
// partition holding it; the command fails.
func TestVerifyReportsTheFirstDifference(t *testing.T) {
	config := writeConfig(t, "")
	b := &composetest.Builder{Size: 4 << 20}
	image, mPath := buildFake(t, config, b, "raw", ".raw")
	mb, err := os.ReadFile(mPath)
	require.NoError(t, err)
	m, err := manifest.Parse(mb)
	require.NoError(t, err)
	pt := partitionTable(m)
	require.NotNil(t, pt, "a raw image's manifest has a partition table")
	// A byte inside the first partition that starts within the fake
	// image's 4 MiB.
	var at int64 = -1
	part := 0
	for i, p := range pt.Partitions {
		if int64(p.Start)+100 < 4<<20 {
			at, part = int64(p.Start)+100, i+1
			break
		}
	}
	require.GreaterOrEqual(t, at, int64(0), "a partition starts within 4 MiB")
	f, err := os.OpenFile(image, os.O_RDWR, 0)
	require.NoError(t, err)
	one := []byte{0}
	_, err = f.ReadAt(one, at)
	require.NoError(t, err)
	one[0] ^= 0xff
	_, err = f.WriteAt(one, at)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	stdout, _, err := runBuildCLI(t, config, b, "verify", image, "--manifest", mPath, "--progress", "none")
	require.ErrorIs(t, err, errNotIdentical)
	assert.Contains(t, stdout, "first differ at byte "+strconv.FormatInt(at, 10))
	assert.Contains(t, stdout, "in partition "+strconv.Itoa(part)+" (")
	assert.Contains(t, stdout, "100 bytes into it")
	assert.NotContains(t, stdout, "bit-identical\n")
}

func TestVerifyRefusesWrongInput(t *testing.T) {
	config := writeConfig(t, "")
	b := &composetest.Builder{Size: 1 << 20}
	image, m := buildFake(t, config, b, "qcow2", ".qcow2")
	builds := b.Builds()

	_, _, err := runBuildCLI(t, config, b, "verify", filepath.Join(t.TempDir(), "missing.qcow2"), "--manifest", m)
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.ErrorContains(t, err, "the image")

	_, _, err = runBuildCLI(t, config, b, "verify", image, "--manifest", filepath.Join(t.TempDir(), "missing.manifest.json"))
	assert.ErrorContains(t, err, "the manifest")

	_, _, err = runBuildCLI(t, config, b, "verify", image)
	assert.ErrorContains(t, err, "manifest")

	notJSON := filepath.Join(t.TempDir(), "x.manifest.json")
	require.NoError(t, os.WriteFile(notJSON, []byte("not a manifest"), 0o644))
	_, _, err = runBuildCLI(t, config, b, "verify", image, "--manifest", notJSON)
	assert.ErrorContains(t, err, "the manifest "+notJSON)

	raw := filepath.Join(t.TempDir(), "web-debian-12-x86_64.raw")
	require.NoError(t, os.WriteFile(raw, []byte("a raw disk"), 0o644))
	_, _, err = runBuildCLI(t, config, b, "verify", raw, "--manifest", m)
	assert.ErrorContains(t, err, "is a .raw file, but the manifest builds a qcow2 image")

	_, _, err = runBuildCLI(t, config, b, "verify", image, "--manifest", m, "--source-date-epoch", "yesterday")
	assert.ErrorContains(t, err, "--source-date-epoch")

	assert.Equal(t, builds, b.Builds(), "nothing was built for wrong input")
}

func TestVerifyEpoch(t *testing.T) {
	m := &manifest.Manifest{}
	m.Sources.Repositories = []manifest.Repository{{Date: "Sat, 10 Jun 2023 09:30:00 UTC"}}
	dir := t.TempDir()
	mPath := filepath.Join(dir, "web-debian-12-x86_64.manifest.json")

	c, err := verifyEpoch("", mPath, m)
	require.NoError(t, err)
	assert.Nil(t, c.epoch, "no SBOM: the manifest's epoch")

	sbom := filepath.Join(dir, "web-debian-12-x86_64.spdx.json")
	require.NoError(t, os.WriteFile(sbom, []byte(`{"creationInfo":{"created":"2024-01-02T03:04:05Z"}}`), 0o644))
	c, err = verifyEpoch("", mPath, m)
	require.NoError(t, err)
	require.NotNil(t, c.epoch)
	assert.Equal(t, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), c.epoch.UTC(), "the SBOM records the SOURCE_DATE_EPOCH the image was built with")
	assert.Equal(t, sbom, c.source)

	require.NoError(t, os.WriteFile(sbom, []byte(`{"creationInfo":{"created":"`+engine.ManifestEpoch(m).Format(time.RFC3339)+`"}}`), 0o644))
	c, err = verifyEpoch("", mPath, m)
	require.NoError(t, err)
	assert.Nil(t, c.epoch, "the SBOM's time is the manifest's epoch")

	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	c, err = verifyEpoch("", mPath, m)
	require.NoError(t, err)
	assert.Equal(t, int64(1700000000), c.epoch.Unix())
	assert.Equal(t, "SOURCE_DATE_EPOCH", c.source)

	c, err = verifyEpoch("1600000000", mPath, m)
	require.NoError(t, err)
	assert.Equal(t, int64(1600000000), c.epoch.Unix(), "the flag wins")

	require.NoError(t, os.WriteFile(sbom, []byte(`{}`), 0o644))
	t.Setenv("SOURCE_DATE_EPOCH", "")
	_, err = verifyEpoch("", mPath, m)
	assert.ErrorContains(t, err, "reading the epoch from "+sbom)
}

func TestWherein(t *testing.T) {
	pt := &disk.PartitionTable{Type: disk.GPT, Size: 100 * disk.MiB, Partitions: []disk.Partition{
		{Role: disk.RoleBIOSBoot, Start: disk.MiB, Size: disk.MiB},
		{Role: disk.RoleRoot, Start: 2 * disk.MiB, Size: 90 * disk.MiB, Payload: &disk.Filesystem{Type: "ext4", Mountpoint: "/"}},
	}}
	assert.Equal(t, "in the partition table or boot code before the first partition", wherein(pt, 100))
	assert.Equal(t, "in partition 1 (bios-boot), 5 bytes into it", wherein(pt, 1<<20+5))
	assert.Equal(t, "in partition 2 (ext4 /), 0 bytes into it", wherein(pt, 2<<20))
	assert.Contains(t, wherein(pt, 99<<20), "outside every partition")
}
