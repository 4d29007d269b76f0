package stages

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/manifest"
)

func TestQemuImgConvert(t *testing.T) {
	t.Parallel()
	requireTools(t, "qemu-img")
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	f, err := os.Create(raw)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(64<<20))
	_, err = f.WriteAt([]byte("kiln was here"), 1<<20)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	tests := []struct {
		name   string
		opts   manifest.QemuImgConvert
		format string
		check  func(t *testing.T, info map[string]any)
	}{
		{"qcow2", manifest.QemuImgConvert{Format: "qcow2", Compat: "1.1"}, "qcow2", func(t *testing.T, info map[string]any) {
			data := info["format-specific"].(map[string]any)["data"].(map[string]any)
			assert.Equal(t, "1.1", data["compat"])
		}},
		{"qcow2 compressed", manifest.QemuImgConvert{Format: "qcow2", Compat: "0.10", Compress: true}, "qcow2", func(t *testing.T, info map[string]any) {
			data := info["format-specific"].(map[string]any)["data"].(map[string]any)
			assert.Equal(t, "0.10", data["compat"])
		}},
		{"vmdk", manifest.QemuImgConvert{Format: "vmdk", Subformat: "streamOptimized"}, "vmdk", func(t *testing.T, info map[string]any) {
			data := info["format-specific"].(map[string]any)["data"].(map[string]any)
			assert.Equal(t, "streamOptimized", data["create-type"])
		}},
		{"vpc", manifest.QemuImgConvert{Format: "vpc", Subformat: "dynamic"}, "vpc", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "disk.out")
			env, log := diskEnv(t, raw, out)
			require.NoError(t, (&QemuImgConvert{Opts: tc.opts}).Run(context.Background(), env), log.String())
			js, err := exec.Command("qemu-img", "info", "--output=json", out).Output()
			require.NoError(t, err)
			var info map[string]any
			require.NoError(t, json.Unmarshal(js, &info))
			assert.Equal(t, tc.format, info["format"])
			assert.Equal(t, float64(64<<20), info["virtual-size"], "the exact size is kept")
			if tc.check != nil {
				tc.check(t, info)
			}
			cmp, err := exec.Command("qemu-img", "compare", "-f", "raw", "-F", tc.format, raw, out).CombinedOutput()
			assert.NoError(t, err, "%s", cmp)
		})
	}
}

func TestQemuImgConvertRejects(t *testing.T) {
	t.Parallel()
	raw := filepath.Join(t.TempDir(), "disk.raw")
	require.NoError(t, os.WriteFile(raw, make([]byte, 4096), 0o644))
	tests := []struct {
		opts manifest.QemuImgConvert
		want string
	}{
		{manifest.QemuImgConvert{Format: "iso"}, `format "iso" is not supported`},
		{manifest.QemuImgConvert{Format: "vmdk", Compat: "1.1"}, "applies to qcow2 only"},
		{manifest.QemuImgConvert{Format: "qcow2", Compat: "2"}, "is not known"},
		{manifest.QemuImgConvert{Format: "vpc", Subformat: "streamOptimized"}, `subformat "streamOptimized" is not one of vpc's`},
		{manifest.QemuImgConvert{Format: "vpc", Compress: true}, "compression applies to qcow2 and vmdk only"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "out")
			env, _ := diskEnv(t, raw, out)
			assert.ErrorContains(t, (&QemuImgConvert{Opts: tc.opts}).Run(context.Background(), env), tc.want)
			assert.NoFileExists(t, out)
		})
	}
}

// Converting the same raw image twice, at different moments, gives the
// same bytes in every format: qemu-img's own time and random identifiers
// (the VHD footer's time and UUID, the VMDK's CID) are replaced by ones
// derived from the epoch, and qemu-img still reads the result.
func TestQemuImgConvertIsReproducible(t *testing.T) {
	t.Parallel()
	requireTools(t, "qemu-img")
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	f, err := os.Create(raw)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(16<<20))
	_, err = f.WriteAt([]byte("kiln was here"), 1<<20)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	for _, opts := range []manifest.QemuImgConvert{
		{Format: "qcow2", Compat: "1.1"},
		{Format: "vpc", Subformat: "fixed"},
		{Format: "vpc", Subformat: "dynamic"},
		{Format: "vmdk", Subformat: "streamOptimized"},
		{Format: "vmdk", Subformat: "monolithicSparse"},
	} {
		t.Run(opts.Format+" "+opts.Subformat, func(t *testing.T) {
			t.Parallel()
			var outs [2][]byte
			for i := range outs {
				if i == 1 {
					time.Sleep(1100 * time.Millisecond) // another second in qemu-img's clock
				}
				// The same file name: the VMDK descriptor names its extent.
				out := filepath.Join(t.TempDir(), "disk.out")
				env, log := diskEnv(t, raw, out)
				require.NoError(t, (&QemuImgConvert{Opts: opts}).Run(context.Background(), env), log.String())
				check, err := exec.Command("qemu-img", "compare", "-f", "raw", "-F", opts.Format, raw, out).CombinedOutput()
				require.NoError(t, err, "qemu-img reads the same disk back: %s", check)
				outs[i], err = os.ReadFile(out)
				require.NoError(t, err)
			}
			if !bytes.Equal(outs[0], outs[1]) {
				at := 0
				for at < min(len(outs[0]), len(outs[1])) && outs[0][at] == outs[1][at] {
					at++
				}
				lo, hi := max(at-48, 0), at+48
				require.Failf(t, "two conversions differ", "sizes %d and %d, first difference at byte %d:\n%q\n%q",
					len(outs[0]), len(outs[1]), at, outs[0][lo:min(hi, len(outs[0]))], outs[1][lo:min(hi, len(outs[1]))])
			}
			switch opts.Format {
			case "vpc":
				footer := outs[0][len(outs[0])-vhdFooterSize:]
				assert.Equal(t, uint32(1700000000-vhdEpochSeconds), binary.BigEndian.Uint32(footer[vhdTimestamp:]))
				assert.Equal(t, vhdFooterChecksum(footer), binary.BigEndian.Uint32(footer[vhdChecksum:]))
			case "vmdk":
				assert.Contains(t, string(outs[0][:64<<10]), "\nCID="+vmdkCID(time.Unix(1700000000, 0))+"\n")
			}
		})
	}
}

func TestFixVHDFooterRefusesOtherData(t *testing.T) {
	footer := make([]byte, vhdFooterSize)
	assert.ErrorContains(t, fixVHDFooter(footer, time.Unix(1700000000, 0)), "conectix")
	copy(footer, "conectix")
	assert.ErrorContains(t, fixVHDFooter(footer, time.Unix(1700000000, 0)), "checksum")
	binary.BigEndian.PutUint32(footer[vhdChecksum:], vhdFooterChecksum(footer))
	assert.ErrorContains(t, fixVHDFooter(footer, time.Unix(0, 0)), "VHD time")
	require.NoError(t, fixVHDFooter(footer, time.Unix(1700000000, 0)))
	assert.Equal(t, vhdFooterChecksum(footer), binary.BigEndian.Uint32(footer[vhdChecksum:]))
	assert.NotEqual(t, make([]byte, 16), footer[vhdUUID:vhdUUID+16], "the UUID is set")

	file := filepath.Join(t.TempDir(), "x.vmdk")
	require.NoError(t, os.WriteFile(file, []byte("not a disk"), 0o644))
	assert.ErrorContains(t, fixVMDKCID(file, time.Unix(1700000000, 0)), "not a VMDK")
}

// qemu-img prints the random CID with %x, so one time in sixteen it has
// fewer than eight digits; the fixed descriptor must be the same bytes
// whatever the random one's length.
func TestFixVMDKCIDOfAnyLength(t *testing.T) {
	epoch := time.Unix(1700000000, 0)
	var results []string
	for _, cid := range []string{"1a2b3c4d", "a2b3c4d", "d"} {
		file := filepath.Join(t.TempDir(), "x.vmdk")
		desc := "# Disk DescriptorFile\nversion=1\nCID=" + cid + "\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n"
		require.NoError(t, os.WriteFile(file, []byte(desc), 0o644))
		require.NoError(t, fixVMDKCID(file, epoch), "CID=%s", cid)
		b, err := os.ReadFile(file)
		require.NoError(t, err)
		assert.Contains(t, string(b), "\nCID="+vmdkCID(epoch)+"\nparentCID=ffffffff\n")
		results = append(results, string(b))
	}
	assert.Equal(t, results[0], results[1])
	assert.Equal(t, results[0], results[2])

	// An embedded descriptor that qemu-img rewrote itself with a shorter
	// CID: the old text's tail stays after the NUL and is not the text.
	embedded := func(desc string) []byte {
		img := make([]byte, 4096)
		copy(img, "KDMV")
		binary.LittleEndian.PutUint64(img[28:], 1) // descriptor at sector 1
		binary.LittleEndian.PutUint64(img[36:], 2) // two sectors long
		copy(img[512:], desc)
		return img
	}
	const text = "# Disk DescriptorFile\nversion=1\nCID=%s\nparentCID=ffffffff\nddb.toolsVersion = \"2147483647\"\n"
	var images [][]byte
	for _, desc := range []string{fmt.Sprintf(text, "1a2b3c4d"), fmt.Sprintf(text, "2b3c4d") + "\x00\"\n"} {
		file := filepath.Join(t.TempDir(), "x.vmdk")
		require.NoError(t, os.WriteFile(file, embedded(desc), 0o644))
		require.NoError(t, fixVMDKCID(file, epoch))
		b, err := os.ReadFile(file)
		require.NoError(t, err)
		images = append(images, b)
	}
	assert.Equal(t, images[0], images[1], "the bytes after the descriptor's NUL are not kept")
}
