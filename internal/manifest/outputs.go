package manifest

// The stages that turn a tree or a disk image into the file a platform
// takes: compressed disk images, archives around a disk (GCE, OVA), OCI
// container images and bootable ISOs. Each has one implementation file in
// internal/engine/stages.

// Compress compresses the input file into the output file with xz or zstd,
// deterministically (the same input gives the same bytes).
type Compress struct {
	// Format is "xz" or "zstd".
	Format string `json:"format"`
}

func (Compress) StageType() string { return "kiln.compress" }

// FileArchive packs the input file into a tar archive under Name, as a
// platform that takes "a disk inside a tarball" requires (GCE: disk.raw in
// an oldgnu tar, gzip-compressed). Owners are 0, the mtime is the build's
// epoch.
type FileArchive struct {
	// Name is the input file's name inside the archive.
	Name string `json:"name"`
	// Format is the tar format: "oldgnu", "gnu", "posix" or "ustar".
	Format string `json:"format"`
	// Sparse stores runs of zeros as holes (GNU sparse entries).
	Sparse bool `json:"sparse,omitempty"`
	// Compression is "", "gzip", "xz" or "zstd".
	Compression string `json:"compression,omitempty"`
}

func (FileArchive) StageType() string { return "kiln.file.archive" }

// OVA packs a stream-optimized VMDK (the input) with an OVF descriptor
// and a SHA-256 manifest into an OVA: a ustar archive whose first member
// is the descriptor, as vSphere and VirtualBox import it.
type OVA struct {
	// Name is the base name of the members: <name>.ovf, <name>-disk1.vmdk,
	// <name>.mf.
	Name string `json:"name"`
	// VMName is the virtual machine's name in the descriptor.
	VMName string `json:"vm_name"`
	// Capacity is the disk's virtual size in bytes.
	Capacity int64 `json:"capacity"`
	// CPUs and MemoryMiB are the virtual hardware.
	CPUs      int `json:"cpus"`
	MemoryMiB int `json:"memory_mib"`
	// Firmware is "bios" or "efi".
	Firmware string `json:"firmware"`
	// OSType is the guest OS identifier (vSphere's, e.g. "debian12_64Guest").
	OSType string `json:"os_type"`
}

func (OVA) StageType() string { return "kiln.ova" }

// OCIConfig is the runtime configuration of a container image.
type OCIConfig struct {
	Env        []string          `json:"env,omitempty"`
	User       string            `json:"user,omitempty"`
	Cmd        []string          `json:"cmd,omitempty"`
	Entrypoint []string          `json:"entrypoint,omitempty"`
	WorkingDir string            `json:"working_dir,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
}

// OCIArchive packs the input tree as the single layer of an OCI image and
// writes the image as an OCI image layout in a tar archive (oci-layout,
// index.json, blobs/sha256/...), which podman, skopeo and docker load. The
// creation time is the build's epoch, so the digest is reproducible.
type OCIArchive struct {
	// Arch is the OCI architecture ("amd64", "arm64").
	Arch   string    `json:"arch"`
	Config OCIConfig `json:"config"`
	// Tag is the reference name recorded in the index
	// (org.opencontainers.image.ref.name).
	Tag string `json:"tag,omitempty"`
}

func (OCIArchive) StageType() string { return "kiln.oci.archive" }

// ISOPayload is a file of another pipeline carried on an ISO.
type ISOPayload struct {
	// Input is the pipeline (one of the file pipeline's extra inputs)
	// whose file is carried.
	Input string `json:"input"`
	// Path is where the file goes on the ISO.
	Path string `json:"path"`
	// Compression is "" or "zstd" (then Path should end in .zst).
	Compression string `json:"compression,omitempty"`
}

// ISO makes a hybrid ISO (BIOS and UEFI, from optical media and from a USB
// stick) that boots the input tree live: the tree as a squashfs that
// live-boot mounts, with the tree's kernel and initramfs and a GRUB built
// from the tree's own GRUB modules. An installer ISO carries the disk
// image it writes as a payload.
type ISO struct {
	// Volume is the ISO volume ID (at most 32 of A-Z, 0-9 and _).
	Volume string `json:"volume"`
	// KernelCmdline is appended to live-boot's own arguments.
	KernelCmdline []string `json:"kernel_cmdline,omitempty"`
	// BIOS and UEFI are the GRUB platforms to boot with ("i386-pc",
	// "x86_64-efi"); at least one is set.
	BIOS string `json:"bios,omitempty"`
	UEFI string `json:"uefi,omitempty"`
	// Payloads are files of other pipelines to carry.
	Payloads []ISOPayload `json:"payloads,omitempty"`
	// Exclude are tree paths left out of the live root (e.g. etc/fstab,
	// which names the installed disk's filesystems).
	Exclude []string `json:"exclude,omitempty"`
}

func (ISO) StageType() string { return "kiln.iso" }
