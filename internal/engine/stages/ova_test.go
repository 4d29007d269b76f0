package stages

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/manifest"
)

// ovfEnvelope is the part of an OVF descriptor the tests read.
type ovfEnvelope struct {
	XMLName xml.Name `xml:"http://schemas.dmtf.org/ovf/envelope/1 Envelope"`
	Files   []struct {
		Href string `xml:"http://schemas.dmtf.org/ovf/envelope/1 href,attr"`
		ID   string `xml:"http://schemas.dmtf.org/ovf/envelope/1 id,attr"`
		Size int64  `xml:"http://schemas.dmtf.org/ovf/envelope/1 size,attr"`
	} `xml:"References>File"`
	Disks []struct {
		Capacity int64  `xml:"http://schemas.dmtf.org/ovf/envelope/1 capacity,attr"`
		Units    string `xml:"http://schemas.dmtf.org/ovf/envelope/1 capacityAllocationUnits,attr"`
		DiskID   string `xml:"http://schemas.dmtf.org/ovf/envelope/1 diskId,attr"`
		FileRef  string `xml:"http://schemas.dmtf.org/ovf/envelope/1 fileRef,attr"`
		Format   string `xml:"http://schemas.dmtf.org/ovf/envelope/1 format,attr"`
	} `xml:"DiskSection>Disk"`
	Networks []struct {
		Name string `xml:"http://schemas.dmtf.org/ovf/envelope/1 name,attr"`
	} `xml:"NetworkSection>Network"`
	System struct {
		ID   string `xml:"http://schemas.dmtf.org/ovf/envelope/1 id,attr"`
		Name string `xml:"Name"`
		OS   struct {
			OSType string `xml:"http://www.vmware.com/schema/ovf osType,attr"`
		} `xml:"OperatingSystemSection"`
		Hardware struct {
			SystemType string `xml:"System>VirtualSystemType"`
			Items      []struct {
				InstanceID      string `xml:"InstanceID"`
				ResourceType    int    `xml:"ResourceType"`
				ResourceSubType string `xml:"ResourceSubType"`
				VirtualQuantity int    `xml:"VirtualQuantity"`
				AllocationUnits string `xml:"AllocationUnits"`
				HostResource    string `xml:"HostResource"`
				Parent          string `xml:"Parent"`
				Connection      string `xml:"Connection"`
			} `xml:"Item"`
			Config []struct {
				Key   string `xml:"http://www.vmware.com/schema/ovf key,attr"`
				Value string `xml:"http://www.vmware.com/schema/ovf value,attr"`
			} `xml:"http://www.vmware.com/schema/ovf Config"`
		} `xml:"VirtualHardwareSection"`
	} `xml:"VirtualSystem"`
}

// ovaMember is one member of an OVA, in archive order.
type ovaMember struct {
	hdr  *tar.Header
	data []byte
}

func readOVA(t *testing.T, p string) []ovaMember {
	t.Helper()
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	tr := tar.NewReader(f)
	var members []ovaMember
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return members
		}
		require.NoError(t, err)
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		members = append(members, ovaMember{hdr, data})
	}
}

// streamOptimizedVMDK converts a raw disk of size bytes, with some data in
// it, to a stream-optimized VMDK.
func streamOptimizedVMDK(t *testing.T, size int64) string {
	t.Helper()
	raw := sparseDisk(t, size)
	vmdk := filepath.Join(t.TempDir(), "disk.vmdk")
	out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, vmdk).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return vmdk
}

func validOVA() manifest.OVA {
	return manifest.OVA{Name: "kiln", VMName: "kiln", Capacity: 64 << 20, CPUs: 2, MemoryMiB: 2048, Firmware: "bios", OSType: "debian12_64Guest"}
}

func TestOVA(t *testing.T) {
	t.Parallel()
	requireTools(t, "qemu-img")
	vmdk := streamOptimizedVMDK(t, 64<<20)
	vmdkData, err := os.ReadFile(vmdk)
	require.NoError(t, err)
	tests := []struct {
		name string
		opts manifest.OVA
	}{
		{"bios", validOVA()},
		{"efi, hostile name", manifest.OVA{Name: "my-vm_1.0", VMName: `<&"'> ]]> vm`, Capacity: 64 << 20, CPUs: 128, MemoryMiB: 256, Firmware: "efi", OSType: "other5xLinux64Guest"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var sums []string
			for i := 0; i < 2; i++ {
				out := filepath.Join(t.TempDir(), "vm.ova")
				env, log := diskEnv(t, vmdk, out)
				require.NoError(t, (&OVA{Opts: tc.opts}).Run(context.Background(), env), log.String())
				sums = append(sums, sha256File(t, out))
				if i > 0 {
					continue
				}
				raw, err := os.ReadFile(out)
				require.NoError(t, err)
				assert.Equal(t, "ustar\x0000", string(raw[257:265]), "a ustar archive")

				members := readOVA(t, out)
				require.Len(t, members, 3)
				o := tc.opts
				names := []string{members[0].hdr.Name, members[1].hdr.Name, members[2].hdr.Name}
				assert.Equal(t, []string{o.Name + ".ovf", o.Name + "-disk1.vmdk", o.Name + ".mf"}, names, "the descriptor first, then the disk, then the manifest")
				for _, m := range members {
					assert.Equal(t, byte(tar.TypeReg), m.hdr.Typeflag, m.hdr.Name)
					assert.Equal(t, int64(0o644), m.hdr.Mode, m.hdr.Name)
					assert.Equal(t, 0, m.hdr.Uid, m.hdr.Name)
					assert.Equal(t, 0, m.hdr.Gid, m.hdr.Name)
					assert.Equal(t, env.Epoch.Unix(), m.hdr.ModTime.Unix(), m.hdr.Name)
				}
				assert.True(t, bytes.Equal(vmdkData, members[1].data), "the disk is stored as it is")

				var env2 ovfEnvelope
				require.NoError(t, xml.Unmarshal(members[0].data, &env2), "%s", members[0].data)
				require.Len(t, env2.Files, 1)
				assert.Equal(t, o.Name+"-disk1.vmdk", env2.Files[0].Href)
				assert.Equal(t, int64(len(vmdkData)), env2.Files[0].Size, "the file size is the disk's")
				require.Len(t, env2.Disks, 1)
				d := env2.Disks[0]
				assert.Equal(t, int64(64<<20), d.Capacity)
				assert.Equal(t, "byte", d.Units)
				assert.Equal(t, env2.Files[0].ID, d.FileRef)
				assert.Equal(t, "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized", d.Format)
				require.Len(t, env2.Networks, 1)
				assert.Equal(t, o.VMName, env2.System.Name, "the name is escaped and reads back as it was")
				assert.Equal(t, o.VMName, env2.System.ID)
				assert.Equal(t, o.OSType, env2.System.OS.OSType)
				assert.Equal(t, "vmx-13", env2.System.Hardware.SystemType)

				byType := map[int][]int{}
				for i, it := range env2.System.Hardware.Items {
					byType[it.ResourceType] = append(byType[it.ResourceType], i)
				}
				items := env2.System.Hardware.Items
				require.Len(t, byType[3], 1, "one CPU item")
				assert.Equal(t, o.CPUs, items[byType[3][0]].VirtualQuantity)
				require.Len(t, byType[4], 1, "one memory item")
				assert.Equal(t, o.MemoryMiB, items[byType[4][0]].VirtualQuantity)
				assert.Equal(t, "byte * 2^20", items[byType[4][0]].AllocationUnits)
				require.Len(t, byType[6], 1, "one SCSI controller")
				assert.Equal(t, "lsilogic", items[byType[6][0]].ResourceSubType)
				require.Len(t, byType[17], 1, "one disk")
				assert.Equal(t, "ovf:/disk/"+d.DiskID, items[byType[17][0]].HostResource)
				assert.Equal(t, items[byType[6][0]].InstanceID, items[byType[17][0]].Parent, "the disk is on the controller")
				require.Len(t, byType[10], 1, "one network adapter")
				assert.Equal(t, env2.Networks[0].Name, items[byType[10][0]].Connection)
				require.Len(t, env2.System.Hardware.Config, 1)
				assert.Equal(t, "firmware", env2.System.Hardware.Config[0].Key)
				assert.Equal(t, o.Firmware, env2.System.Hardware.Config[0].Value)

				ovfSum := sha256.Sum256(members[0].data)
				vmdkSum := sha256.Sum256(vmdkData)
				wantMF := fmt.Sprintf("SHA256(%s.ovf)= %s\nSHA256(%s-disk1.vmdk)= %s\n", o.Name, hex.EncodeToString(ovfSum[:]), o.Name, hex.EncodeToString(vmdkSum[:]))
				assert.Equal(t, wantMF, string(members[2].data))
			}
			assert.Equal(t, sums[0], sums[1], "the same disk and options give the same bytes")
		})
	}
}

func TestOVARejects(t *testing.T) {
	t.Parallel()
	requireTools(t, "qemu-img")
	vmdk := streamOptimizedVMDK(t, 64<<20)
	out := filepath.Join(t.TempDir(), "vm.ova")
	tests := []struct {
		change func(o *manifest.OVA)
		want   string
	}{
		{func(o *manifest.OVA) { o.Name = "" }, `name "" is not a valid base name`},
		{func(o *manifest.OVA) { o.Name = "../vm" }, `name "../vm" is not a valid base name`},
		{func(o *manifest.OVA) { o.Name = "a/vm" }, `name "a/vm" is not a valid base name`},
		{func(o *manifest.OVA) { o.Name = ".." }, `name ".." is not a valid base name`},
		{func(o *manifest.OVA) { o.Name = "my vm" }, `name "my vm" is not a valid base name`},
		{func(o *manifest.OVA) { o.Name = strings.Repeat("v", 90) }, "is not a valid base name"},
		{func(o *manifest.OVA) { o.VMName = "" }, `vm_name "" must be non-empty`},
		{func(o *manifest.OVA) { o.VMName = "vm\x00" }, `vm_name "vm\x00" must be non-empty UTF-8 text without control characters`},
		{func(o *manifest.OVA) { o.VMName = "vm\xff" }, `must be non-empty UTF-8`},
		{func(o *manifest.OVA) { o.Capacity = 0 }, "capacity 0 must be a positive"},
		{func(o *manifest.OVA) { o.Capacity = 128 << 20 }, "capacity 134217728 does not match the disk's virtual size, 67108864 bytes"},
		{func(o *manifest.OVA) { o.CPUs = 0 }, "cpus 0 must be between 1 and 128"},
		{func(o *manifest.OVA) { o.CPUs = 129 }, "cpus 129 must be between 1 and 128"},
		{func(o *manifest.OVA) { o.MemoryMiB = 255 }, "memory_mib 255 must be at least 256"},
		{func(o *manifest.OVA) { o.Firmware = "uefi" }, `firmware "uefi" is not supported`},
		{func(o *manifest.OVA) { o.Firmware = "" }, `firmware "" is not supported`},
		{func(o *manifest.OVA) { o.OSType = "" }, `os_type "" is not a guest OS identifier`},
		{func(o *manifest.OVA) { o.OSType = `debian"/>` }, `os_type "debian\"/>" is not a guest OS identifier`},
	}
	for _, tc := range tests {
		o := validOVA()
		tc.change(&o)
		env, _ := diskEnv(t, vmdk, out)
		assert.ErrorContains(t, (&OVA{Opts: o}).Run(context.Background(), env), tc.want)
		assert.NoFileExists(t, out)
	}

	// The input must be a stream-optimized VMDK.
	raw := sparseDisk(t, 64<<20)
	sparse := filepath.Join(t.TempDir(), "sparse.vmdk")
	msg, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "vmdk", raw, sparse).CombinedOutput()
	require.NoError(t, err, "%s", msg)
	for input, want := range map[string]string{
		raw:                                "not a VMDK (no KDMV magic)",
		sparse:                             "not a stream-optimized VMDK",
		filepath.Join(t.TempDir(), "gone"): "opening the input",
		t.TempDir():                        "is not a regular file",
	} {
		env, _ := diskEnv(t, input, out)
		assert.ErrorContains(t, (&OVA{Opts: validOVA()}).Run(context.Background(), env), want)
		assert.NoFileExists(t, out)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	env, _ := diskEnv(t, vmdk, out)
	assert.ErrorIs(t, (&OVA{Opts: validOVA()}).Run(ctx, env), context.Canceled)
	assert.NoFileExists(t, out)
}
