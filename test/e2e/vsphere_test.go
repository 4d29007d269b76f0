package e2e

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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

	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/manifest"
	"github.com/kiln-project/kiln/internal/testhost"
)

const vsphereBlueprint = `
name = "vsphere-e2e"
[[packages]]
name = "jq"
[customizations]
hostname = "kiln-vsphere"
[[customizations.sshkey]]
user = "root"
key = "KEY"
`

// vmdkInfo is what qemu-img info says about a VMDK.
type vmdkInfo struct {
	Format         string `json:"format"`
	VirtualSize    int64  `json:"virtual-size"`
	FormatSpecific struct {
		Data struct {
			CreateType string `json:"create-type"`
		} `json:"data"`
	} `json:"format-specific"`
}

func qemuImgInfo(t *testing.T, image string) vmdkInfo {
	t.Helper()
	var info vmdkInfo
	require.NoError(t, json.Unmarshal([]byte(run(t, "qemu-img", "info", "--output=json", image)), &info))
	return info
}

// ovfDescriptor is the part of an OVF descriptor the test reads.
type ovfDescriptor struct {
	XMLName xml.Name `xml:"http://schemas.dmtf.org/ovf/envelope/1 Envelope"`
	Files   []struct {
		Href string `xml:"http://schemas.dmtf.org/ovf/envelope/1 href,attr"`
		ID   string `xml:"http://schemas.dmtf.org/ovf/envelope/1 id,attr"`
		Size int64  `xml:"http://schemas.dmtf.org/ovf/envelope/1 size,attr"`
	} `xml:"References>File"`
	Disks []struct {
		Capacity int64  `xml:"http://schemas.dmtf.org/ovf/envelope/1 capacity,attr"`
		Units    string `xml:"http://schemas.dmtf.org/ovf/envelope/1 capacityAllocationUnits,attr"`
		FileRef  string `xml:"http://schemas.dmtf.org/ovf/envelope/1 fileRef,attr"`
		Format   string `xml:"http://schemas.dmtf.org/ovf/envelope/1 format,attr"`
	} `xml:"DiskSection>Disk"`
	System struct {
		Name string `xml:"Name"`
		OS   struct {
			OSType string `xml:"http://www.vmware.com/schema/ovf osType,attr"`
		} `xml:"OperatingSystemSection"`
		Hardware struct {
			Items []struct {
				ResourceType    int `xml:"ResourceType"`
				VirtualQuantity int `xml:"VirtualQuantity"`
			} `xml:"Item"`
			Config []struct {
				Key   string `xml:"http://www.vmware.com/schema/ovf key,attr"`
				Value string `xml:"http://www.vmware.com/schema/ovf value,attr"`
			} `xml:"http://www.vmware.com/schema/ovf Config"`
		} `xml:"VirtualHardwareSection"`
	} `xml:"VirtualSystem"`
}

// TestVSphereImages builds the vmdk and the ova types of one blueprint
// with one engine cache, so the OVA's disk comes from the same cached raw
// disk; checks the VMDK with qemu-img, the OVA's members, descriptor and
// manifest, and boots the disk taken out of the OVA with SeaBIOS.
func TestVSphereImages(t *testing.T) {
	testhost.RequireBuildHost(t, engine.HostProblems(nil))
	t.Parallel()
	dir := t.TempDir()
	key, pub := newSSHKey(t)
	bp := strings.ReplaceAll(vsphereBlueprint, "KEY", pub)
	cache := sharedCache(t)
	// The types of one blueprint share their identifiers (filesystem and
	// partition UUIDs), so the ova's os and image pipelines are the vmdk's.
	vmdkManifest := plan(t, bp, "vmdk")
	vmdk := build(t, vmdkManifest, cache, filepath.Join(dir, "vmdk"), nil)
	ovaManifest := plan(t, bp, "vsphere-ova")
	ova := build(t, ovaManifest, cache, filepath.Join(dir, "ova"), nil)
	// Both again from their manifests in a second cache of their own (run
	// once the checks and the boot below are done): the same bytes.
	t.Run("reproducible", func(t *testing.T) {
		t.Parallel()
		again := newRebuilder(t)
		again.assertRebuildsIdentically(t, vmdkManifest, vmdk, nil)
		again.assertRebuildsIdentically(t, ovaManifest, ova, nil)
	})
	defer func() {
		if t.Failed() {
			for _, out := range []string{"vmdk", "ova"} {
				tail, _ := exec.Command("tail", "-n", "40", filepath.Join(dir, out, "build.log")).CombinedOutput()
				t.Logf("end of the %s build log:\n%s", out, tail)
			}
		}
	}()
	assert.True(t, strings.HasSuffix(vmdk, ".vmdk"), vmdk)
	assert.True(t, strings.HasSuffix(ova, ".ova"), ova)
	ovaLog, err := os.ReadFile(filepath.Join(dir, "ova", "build.log"))
	require.NoError(t, err)
	assert.Contains(t, string(ovaLog), "== ova: kiln.ova")
	assert.False(t, strings.Contains(string(ovaLog), "kiln.debs.install"), "the OVA's os tree is the one the vmdk build left in the cache")
	assert.False(t, strings.Contains(string(ovaLog), "kiln.disk.image"), "the OVA's disk comes from the raw disk the vmdk build left in the cache")

	// The VMDK.
	info := qemuImgInfo(t, vmdk)
	assert.Equal(t, "vmdk", info.Format)
	assert.Equal(t, "streamOptimized", info.FormatSpecific.Data.CreateType)
	run(t, "qemu-img", "check", "-f", "vmdk", vmdk)

	// The OVA: the descriptor first, then the disk, then the manifest.
	var opts *manifest.OVA
	for _, p := range ovaManifest.Pipelines {
		for _, s := range p.Stages {
			if o, ok := s.Options.(*manifest.OVA); ok {
				opts = o
			}
		}
	}
	require.NotNil(t, opts, "the ova manifest has a kiln.ova stage")
	name := opts.Name
	f, err := os.Open(ova)
	require.NoError(t, err)
	defer f.Close()
	head := make([]byte, 512)
	_, err = io.ReadFull(f, head)
	require.NoError(t, err)
	assert.Equal(t, "ustar\x0000", string(head[257:265]), "a ustar archive")
	_, err = f.Seek(0, io.SeekStart)
	require.NoError(t, err)
	tr := tar.NewReader(f)
	var names []string
	var ovf, mf []byte
	sizes := map[string]int64{}
	sums := map[string]string{}
	ovaDisk := filepath.Join(dir, "ova-disk1.vmdk")
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		names = append(names, hdr.Name)
		sizes[hdr.Name] = hdr.Size
		h := sha256.New()
		switch {
		case strings.HasSuffix(hdr.Name, ".ovf"):
			ovf, err = io.ReadAll(io.TeeReader(tr, h))
		case strings.HasSuffix(hdr.Name, ".mf"):
			mf, err = io.ReadAll(io.TeeReader(tr, h))
		default:
			var out *os.File
			out, err = os.Create(ovaDisk)
			require.NoError(t, err)
			_, err = io.Copy(io.MultiWriter(out, h), tr)
			require.NoError(t, out.Close())
		}
		require.NoError(t, err)
		sums[hdr.Name] = hex.EncodeToString(h.Sum(nil))
	}
	require.Equal(t, []string{name + ".ovf", name + "-disk1.vmdk", name + ".mf"}, names)

	diskInfo := qemuImgInfo(t, ovaDisk)
	assert.Equal(t, "streamOptimized", diskInfo.FormatSpecific.Data.CreateType)
	run(t, "qemu-img", "check", "-f", "vmdk", ovaDisk)
	assert.Equal(t, info.VirtualSize, diskInfo.VirtualSize)
	cmp, err := exec.Command("qemu-img", "compare", "-f", "vmdk", "-F", "vmdk", vmdk, ovaDisk).CombinedOutput()
	assert.NoError(t, err, "the OVA's disk holds what the vmdk image holds: %s", cmp)

	var d ovfDescriptor
	require.NoError(t, xml.Unmarshal(ovf, &d), "the descriptor is valid XML:\n%s", ovf)
	require.Len(t, d.Files, 1)
	assert.Equal(t, name+"-disk1.vmdk", d.Files[0].Href)
	assert.Equal(t, sizes[name+"-disk1.vmdk"], d.Files[0].Size, "the File size is the member's")
	require.Len(t, d.Disks, 1)
	assert.Equal(t, diskInfo.VirtualSize, d.Disks[0].Capacity, "the capacity is the disk's virtual size")
	assert.Equal(t, "byte", d.Disks[0].Units)
	assert.Equal(t, d.Files[0].ID, d.Disks[0].FileRef)
	assert.Equal(t, "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized", d.Disks[0].Format)
	assert.Equal(t, "vsphere-e2e", d.System.Name)
	assert.Equal(t, "debian12_64Guest", d.System.OS.OSType)
	quantity := map[int]int{}
	for _, it := range d.System.Hardware.Items {
		quantity[it.ResourceType] = it.VirtualQuantity
	}
	assert.Equal(t, opts.CPUs, quantity[3], "CPUs")
	assert.Equal(t, opts.MemoryMiB, quantity[4], "memory")
	require.Len(t, d.System.Hardware.Config, 1)
	assert.Equal(t, "firmware", d.System.Hardware.Config[0].Key)
	assert.Equal(t, "bios", d.System.Hardware.Config[0].Value)

	wantMF := fmt.Sprintf("SHA256(%s)= %s\nSHA256(%s)= %s\n", names[0], sums[names[0]], names[1], sums[names[1]])
	assert.Equal(t, wantMF, string(mf), "the manifest holds the members' SHA-256")

	// Boot the OVA's disk: boottest takes raw or qcow2 (told apart by the
	// qcow2 magic), so it boots a qcow2 copy.
	qcow2 := filepath.Join(dir, "ova-disk1.qcow2")
	run(t, "qemu-img", "convert", "-f", "vmdk", "-O", "qcow2", ovaDisk, qcow2)
	require.NoError(t, os.Remove(ovaDisk))
	sh := bootGuest(t, qcow2, "bios", key).sh
	assert.Equal(t, "kiln-vsphere", sh("hostname"))
	checkNetworkDrivers(t, sh, "ova")
	assert.Equal(t, "bios", sh("sh", "-c", "test -d /sys/firmware/efi && echo uefi || echo bios"))
	assert.Equal(t, "install ok installed\ninstall ok installed", sh("dpkg-query", "-W", "-f", "${Status}\n", "open-vm-tools", "jq"))
	// open-vm-tools starts only on VMware (ConditionVirtualization=vmware):
	// here it is enabled but not running.
	assert.Equal(t, "enabled", sh("systemctl", "is-enabled", "open-vm-tools"))
}
