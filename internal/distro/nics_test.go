package distro

import (
	"testing"

	"github.com/kiln-project/kiln/internal/manifest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every bootable disk image declares the network cards of its platforms,
// and the kernel it installs drives each of them.
func TestImageTypesHaveTheirNetworkDrivers(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	want := map[string][]string{
		"qcow2":   {"virtio_net", "e1000", "e1000e"},
		"raw":     {"virtio_net", "e1000", "e1000e"},
		"raw-xz":  {"virtio_net", "e1000", "e1000e"},
		"raw-zst": {"virtio_net", "e1000", "e1000e"},
		"vmdk":    {"vmxnet3", "e1000", "e1000e"},
		"ova":     {"vmxnet3", "e1000", "e1000e"},
		"vhd":     {"hv_netvsc"},
		"ami":     {"ena", "xen_netfront"},
		"gce":     {"gve", "virtio_net"},
	}
	// What differs on an architecture: QEMU's virt machine has virtio
	// cards only; Graviton instances are Nitro only.
	wantArch := map[string][]string{
		"aarch64 qcow2": {"virtio_net"},
		"aarch64 ami":   {"ena"},
	}
	for _, d := range reg.Distros() {
		for _, a := range d.Arches() {
			for _, it := range a.ImageTypes() {
				if w, ok := wantArch[a.Name+" "+it.Name]; ok {
					assert.Equal(t, w, it.NetworkDrivers, "%s %s %s", d.Name, a.Name, it.Name)
				} else if w, ok := want[it.Name]; ok {
					assert.Equal(t, w, it.NetworkDrivers, "%s %s %s", d.Name, a.Name, it.Name)
				}
				if it.Bootable && it.PartitionTable != nil && it.Name != "image-installer" {
					assert.NotEmpty(t, it.NetworkDrivers, "%s %s %s: a bootable disk image declares its network cards", d.Name, a.Name, it.Name)
				}
				for _, drv := range it.NetworkDrivers {
					assert.Contains(t, flavorNetworkDrivers[it.KernelFlavor], drv, "%s %s %s: the %s kernel drives %s", d.Name, a.Name, it.Name, it.KernelFlavor, drv)
				}
			}
		}
	}
	qcow2 := imageType(t, reg, "debian-12", "x86_64", "qcow2")
	assert.Equal(t, "generic", qcow2.KernelFlavor, "QEMU's default cards need the generic kernel")
}

func TestNetworkDriversTheKernelLacksAreRefused(t *testing.T) {
	t.Parallel()
	err := checkNetworkDrivers(&ImageType{Kernel: true, KernelFlavor: "cloud", NetworkDrivers: []string{"virtio_net", "e1000", "e1000e"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the cloud kernel has no e1000, e1000e driver")
	err = checkNetworkDrivers(&ImageType{NetworkDrivers: []string{"virtio_net"}})
	assert.ErrorContains(t, err, "no kernel")
	assert.NoError(t, checkNetworkDrivers(&ImageType{Kernel: true, KernelFlavor: "generic", NetworkDrivers: []string{"e1000"}}))
}

// The images for virtual machines carry their platforms' disk drivers in
// the initramfs (and QEMU's, to be tried locally) plus the root
// filesystem's module; the images for real hardware keep initramfs-tools'
// default.
func TestInitramfsDriversOfVirtualMachineTypes(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	platform := map[string][]string{
		"qcow2":  {"virtio_blk", "virtio_scsi", "ahci"},
		"vmdk":   {"vmw_pvscsi", "mptspi"},
		"ova":    {"vmw_pvscsi", "mptspi"},
		"vhd":    {"hv_storvsc"},
		"ami":    {"nvme", "xen_blkfront"},
		"ami-xz": {"nvme", "xen_blkfront"},
		"gce":    {"virtio_scsi", "nvme"},
	}
	for _, d := range reg.Distros() {
		for _, a := range d.Arches() {
			for _, it := range a.ImageTypes() {
				what := d.Name + " " + a.Name + " " + it.Name
				want, vm := platform[it.Name]
				if !vm {
					assert.Empty(t, it.InitramfsDrivers, "%s: initramfs-tools' default for real hardware", what)
					continue
				}
				for _, drv := range append(want, "virtio_blk", "ahci", "nvme") {
					assert.Contains(t, it.InitramfsDrivers, drv, what)
				}
			}
		}
	}
	bp := parseBlueprint(t, "testdata/blueprints/minimal.toml")
	_, m := makeManifest(t, imageType(t, reg, "debian-12", "x86_64", "qcow2"), bp, Options{})
	drivers := stageOf[*manifest.Initramfs](t, m, "os").Drivers
	assert.Contains(t, drivers, "ext4", "the root filesystem's module")
	assert.NotContains(t, drivers, "vfat", "the ESP is mounted by the booted system")
	_, m = makeManifest(t, imageType(t, reg, "debian-12", "x86_64", "raw"), bp, Options{})
	assert.Empty(t, stageOf[*manifest.Initramfs](t, m, "os").Drivers)
}
