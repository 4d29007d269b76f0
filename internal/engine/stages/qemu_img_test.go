package stages

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

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
