package distro

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func loadRegistry(t *testing.T) *Registry {
	t.Helper()
	reg, err := Load()
	require.NoError(t, err)
	return reg
}

func imageType(t *testing.T, reg *Registry, distro, arch, name string) *ImageType {
	t.Helper()
	d, err := reg.Distro(distro)
	require.NoError(t, err)
	a, err := d.Arch(arch)
	require.NoError(t, err)
	it, err := a.ImageType(name)
	require.NoError(t, err)
	return it
}

func TestLoad(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	var names []string
	for _, d := range reg.Distros() {
		names = append(names, d.Name)
	}
	assert.Equal(t, []string{"debian-12", "debian-13"}, names)

	qcow2 := imageType(t, reg, "debian-12", "x86_64", "qcow2")
	assert.Equal(t, qcow2, imageType(t, reg, "debian-12", "amd64", "guest-image"), "Debian arch names and aliases work")
	assert.True(t, qcow2.Bootable)
	assert.Equal(t, BootHybrid, qcow2.Bootloader, "inherited from disk-base")
	require.NotNil(t, qcow2.PartitionTable, "inherited from disk-base")
	assert.Len(t, qcow2.PartitionTable.Partitions, 3)
	assert.Equal(t, "web-debian-12-x86_64.qcow2", qcow2.Filename("web"))
	assert.Contains(t, qcow2.DefaultPackages(), "linux-image-amd64", "guest images get the generic kernel, which drives QEMU's default e1000/e1000e")
	assert.Contains(t, imageType(t, reg, "debian-12", "x86_64", "raw").DefaultPackages(), "linux-image-amd64", "raw disks may meet real hardware")
	assert.Contains(t, qcow2.DefaultPackages(), "grub-pc-bin")
	assert.Contains(t, qcow2.DefaultPackages(), "grub-efi-amd64-bin")

	tar := imageType(t, reg, "debian-13", "x86_64", "tar")
	assert.False(t, tar.Bootable)
	assert.Nil(t, tar.PartitionTable)
	assert.NotContains(t, tar.DefaultPackages(), "linux-image-amd64")

	d, err := reg.Distro("debian-13")
	require.NoError(t, err)
	assert.Equal(t, "trixie", d.Codename)
	arm, err := d.Arch("aarch64")
	require.NoError(t, err)
	assert.Empty(t, arm.NotBuildable, "whether this host runs aarch64 programs is the host's business, not the data's")
	var armTypes []string
	for _, it := range arm.ImageTypes() {
		armTypes = append(armTypes, it.Name)
		assert.NotEqual(t, BootBIOS, it.Bootloader, "%s: aarch64 has no BIOS", it.Name)
		assert.NotEqual(t, BootHybrid, it.Bootloader, "%s: aarch64 has no BIOS", it.Name)
		if it.PartitionTable != nil {
			for _, p := range it.PartitionTable.Partitions {
				assert.NotEqual(t, "bios-boot", string(p.Role), "%s: a UEFI-only disk has no BIOS boot partition", it.Name)
			}
		}
	}
	assert.Equal(t, []string{"qcow2", "raw", "raw-xz", "raw-zst", "ami", "ami-xz", "vhd", "gce", "tar", "wsl", "container"}, armTypes)
	_, err = arm.ImageType("vmdk")
	assert.ErrorContains(t, err, `image type "vmdk" is not built for aarch64 on debian-13, only for x86_64`)
	armQcow2 := imageType(t, reg, "debian-13", "aarch64", "qcow2")
	assert.Equal(t, BootUEFI, armQcow2.Bootloader)
	assert.Equal(t, "cloud", armQcow2.KernelFlavor, "the virt machine's cards are virtio: the cloud kernel suffices")
	assert.Contains(t, armQcow2.DefaultPackages(), "linux-image-cloud-arm64")
	assert.Contains(t, armQcow2.DefaultPackages(), "grub-efi-arm64-bin")
	assert.NotContains(t, armQcow2.DefaultPackages(), "grub-pc-bin")
	assert.Contains(t, armQcow2.KernelCmdline, "console=ttyAMA0,115200n8", "the serial console is the arch's")
	assert.NotContains(t, armQcow2.KernelCmdline, "console=ttyS0,115200n8")
	assert.Contains(t, imageType(t, reg, "debian-13", "aarch64", "ami").KernelCmdline, "console=ttyS0,115200n8", "Graviton's serial port is a 16550")
	assert.Contains(t, imageType(t, reg, "debian-13", "aarch64", "raw").DefaultPackages(), "linux-image-arm64", "raw disks may meet real hardware")
}

func TestLookupErrors(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	_, err := reg.Distro("debian-21")
	assert.ErrorContains(t, err, `unknown distribution "debian-21" (did you mean "debian-12"?) (known: debian-12, debian-13)`)
	d, _ := reg.Distro("debian-12")
	_, err = d.Arch("x86-64")
	assert.ErrorContains(t, err, `did you mean "x86_64"?`)
	a, _ := d.Arch("x86_64")
	_, err = a.ImageType("qcow")
	assert.ErrorContains(t, err, `unknown image type "qcow" for debian-12 x86_64 (did you mean "qcow2"?)`)
}

// minimalFS is a definition tree that loads; tests break one file of it.
func minimalFS() fstest.MapFS {
	fsys := fstest.MapFS{}
	for _, name := range []string{"timezones.txt", "locales.txt", "keyboards.txt", "timezones-legacy.txt"} {
		fsys["data/sets/"+name] = &fstest.MapFile{Data: []byte("x\n")}
	}
	fsys["data/sets/kbd-model-map.txt"] = &fstest.MapFile{Data: []byte("# consolelayout xlayout xmodel xvariant xoptions\nx x pc105 - -\n")}
	fsys["data/sets/services.txt"] = &fstest.MapFile{Data: []byte("x 1 tcp\n")}
	fsys["data/distros/d.yaml"] = &fstest.MapFile{Data: []byte("name: d\ncodename: c\nkeyring: /k\narches: [{name: x86_64, debian_arch: amd64}]\nimage_types: [t]\n")}
	fsys["data/imagetypes/t.yaml"] = &fstest.MapFile{Data: []byte("name: t\nextension: tar\noutput: {format: tar}\n")}
	return fsys
}

func TestLoadRejectsBIOSTypeOnUEFIOnlyArch(t *testing.T) {
	t.Parallel()
	fsys := minimalFS()
	fsys["data/distros/d.yaml"].Data = []byte("name: d\ncodename: c\nkeyring: /k\narches: [{name: x86_64, debian_arch: amd64, grub_uefi: {target: x86_64-efi}}]\nimage_types: [t]\n")
	fsys["data/imagetypes/t.yaml"].Data = []byte("name: t\nextension: img\nbootable: true\nkernel: true\nbootloader: bios\noutput: {format: raw}\npartition_table: {type: gpt, partitions: [{role: root, min_size: 1 GiB, filesystem: {type: ext4, mountpoint: /}}]}\n")
	_, err := load(fsys)
	assert.ErrorContains(t, err, "boots with BIOS only, which x86_64 does not have")
}

func TestLoadRejectsBadDefinitions(t *testing.T) {
	t.Parallel()
	const d = "name: d\ncodename: c\nkeyring: /k\narches: [{name: x86_64, debian_arch: amd64}]\nimage_types: [t]\n"
	tests := []struct {
		name, file, data, want string
	}{
		{"unknown key", "data/imagetypes/t.yaml", "name: t\nextension: tar\nbootabel: true\noutput: {format: tar}\n", "unknown field \"bootabel\""},
		{"name does not match the file", "data/imagetypes/t.yaml", "name: u\noutput: {format: tar}\n", "does not match the file name"},
		{"extends an unknown type", "data/imagetypes/t.yaml", "name: t\nextends: nope\noutput: {format: tar}\n", "extends unknown image type \"nope\""},
		{"extends loop", "data/imagetypes/u.yaml", "name: u\nextends: v\n", "loop"},
		{"unknown output format", "data/imagetypes/t.yaml", "name: t\noutput: {format: zip}\n", "not one of disk-tar, iso, oci, ova, qcow2, raw, tar, vhd, vmdk"},
		{"disk format without partitions", "data/imagetypes/t.yaml", "name: t\noutput: {format: raw}\n", "the raw format is a disk image and needs a partition table"},
		{"compression the format does not take", "data/imagetypes/t.yaml", "name: t\noutput: {format: tar, compression: lz4}\n", "output.compression \"lz4\" does not apply to tar"},
		{"ova without virtual hardware", "data/imagetypes/t.yaml", "name: t\noutput: {format: ova}\n", "needs output.vm"},
		{"container that boots", "data/imagetypes/t.yaml", "name: t\nbootable: true\nkernel: true\nbootloader: bios\noutput: {format: oci}\n", "has no partition table and does not boot"},
		{"iso that does not boot", "data/imagetypes/t.yaml", "name: t\noutput: {format: iso}\n", "an iso boots"},
		{"file with a broken template", "data/imagetypes/t.yaml", "name: t\noutput: {format: tar}\nfiles: [{path: /etc/x, mode: \"0644\", data: \"{{.User\"}]\n", "files[0]"},
		{"file with a relative path", "data/imagetypes/t.yaml", "name: t\noutput: {format: tar}\nfiles: [{path: etc/x, mode: \"0644\", data: x}]\n", "path must be absolute"},
		{"rootdelay on the command line", "data/imagetypes/t.yaml", "name: t\noutput: {format: tar}\nkernel_cmdline: [console=ttyS0, rootdelay=300]\n", `kernel_cmdline: "rootdelay=300" makes Debian's initramfs sleep`},
		{"bad size", "data/imagetypes/t.yaml", "name: t\ndefault_size: 4 GB-ish\noutput: {format: tar}\n", "default_size"},
		{"distro lists an unknown type", "data/distros/d.yaml", "name: d\ncodename: c\nkeyring: /k\narches: [{name: x86_64}]\nimage_types: [zzz]\n", "unknown image type \"zzz\""},
		{"distro without keyring", "data/distros/d.yaml", "name: d\ncodename: c\n", "keyring"},
		{"links under an unknown key", "data/distros/d.yaml", d + "links: {/bin: usr/bin}\n", "unknown field \"links\""},
		{"relative link path", "data/distros/d.yaml", d + "directory_links: {bin: usr/bin}\n", `directory_links: "bin" is not an absolute, canonical path`},
		{"link path not canonical", "data/distros/d.yaml", d + "file_links: {/etc//mtab: ../proc/self/mounts}\n", `file_links: "/etc//mtab" is not an absolute, canonical path`},
		{"link to the root", "data/distros/d.yaml", d + "directory_links: {/: x}\n", `directory_links: "/" is not an absolute, canonical path`},
		{"empty link target", "data/distros/d.yaml", d + "directory_links: {/bin: \"\"}\n", `directory_links: /bin: the target "" is not a clean path`},
		{"link target not clean", "data/distros/d.yaml", d + "directory_links: {/bin: usr/bin/}\n", `directory_links: /bin: the target "usr/bin/" is not a clean path`},
		{"link both a file and a directory", "data/distros/d.yaml", d + "directory_links: {/bin: usr/bin}\nfile_links: {/bin: usr/bin}\n", "file_links: /bin is listed twice"},
		{"arch lists a type the distro has not", "data/distros/d.yaml", "name: d\ncodename: c\nkeyring: /k\narches: [{name: x86_64, debian_arch: amd64, image_types: [u]}]\nimage_types: [t]\n", `arches.x86_64.image_types: "u" is not among the distribution's image_types`},
		{"type overrides an unknown arch", "data/imagetypes/t.yaml", "name: t\nextension: tar\noutput: {format: tar}\narches: {sparc: {kernel_flavor: cloud}}\n", `image type t: arches: "sparc" is not one of the distribution's architectures`},
		{"arch link also the distro's", "data/distros/d.yaml", "name: d\ncodename: c\nkeyring: /k\ndirectory_links: {/lib64: usr/lib64}\narches: [{name: x86_64, debian_arch: amd64, directory_links: {/lib64: usr/lib64}}]\nimage_types: [t]\n", "arches.x86_64.directory_links: /lib64 is listed twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fsys := minimalFS()
			_, err := load(fsys)
			require.NoError(t, err, "the base tree loads")
			fsys[tc.file] = &fstest.MapFile{Data: []byte(tc.data)}
			if tc.name == "extends loop" {
				fsys["data/imagetypes/v.yaml"] = &fstest.MapFile{Data: []byte("name: v\nextends: u\n")}
			}
			_, err = load(fsys)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestLinks pins the facts of the data: the links every Debian tree has,
// and /lib64 on amd64 only.
func TestLinks(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	for _, d := range reg.Distros() {
		for _, a := range d.Arches() {
			for p, target := range map[string]string{"/bin": "usr/bin", "/sbin": "usr/sbin", "/lib": "usr/lib", "/var/run": "/run", "/var/lock": "/run/lock", "/var/spool/mail": "../mail"} {
				assert.Equal(t, link{target: target, dir: true}, a.links[p], "%s %s %s", d.Name, a.Name, p)
			}
			for p, target := range map[string]string{"/etc/os-release": "../usr/lib/os-release", "/etc/mtab": "../proc/self/mounts", "/etc/localtime": "/usr/share/zoneinfo/Etc/UTC"} {
				assert.Equal(t, link{target: target}, a.links[p], "%s %s %s", d.Name, a.Name, p)
			}
			_, lib64 := a.links["/lib64"]
			assert.Equal(t, a.DebianArch == "amd64", lib64, "%s %s: /lib64 is a link on amd64 only", d.Name, a.Name)
		}
	}
}
