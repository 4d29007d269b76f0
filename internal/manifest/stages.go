package manifest

import "github.com/kiln-project/kiln/internal/disk"

// stageTypes maps each stage type to a constructor of its options, so a
// manifest read from JSON gets typed options back and unknown types fail.
// The stages that validate and run them are registered in
// internal/engine/stages (registry.go), which this package does not link:
// the service reads manifests it never runs. A test there proves the two
// name the same types.
var stageTypes = map[string]func() StageOptions{
	DebsInstall{}.StageType():    func() StageOptions { return &DebsInstall{} },
	CheckInstall{}.StageType():   func() StageOptions { return &CheckInstall{} },
	AptSources{}.StageType():     func() StageOptions { return &AptSources{} },
	Hostname{}.StageType():       func() StageOptions { return &Hostname{} },
	Timezone{}.StageType():       func() StageOptions { return &Timezone{} },
	NTP{}.StageType():            func() StageOptions { return &NTP{} },
	Locale{}.StageType():         func() StageOptions { return &Locale{} },
	Keyboard{}.StageType():       func() StageOptions { return &Keyboard{} },
	Groups{}.StageType():         func() StageOptions { return &Groups{} },
	Users{}.StageType():          func() StageOptions { return &Users{} },
	Firewall{}.StageType():       func() StageOptions { return &Firewall{} },
	Systemd{}.StageType():        func() StageOptions { return &Systemd{} },
	Directories{}.StageType():    func() StageOptions { return &Directories{} },
	Files{}.StageType():          func() StageOptions { return &Files{} },
	CACerts{}.StageType():        func() StageOptions { return &CACerts{} },
	Network{}.StageType():        func() StageOptions { return &Network{} },
	FSTab{}.StageType():          func() StageOptions { return &FSTab{} },
	Bootloader{}.StageType():     func() StageOptions { return &Bootloader{} },
	Initramfs{}.StageType():      func() StageOptions { return &Initramfs{} },
	Cleanup{}.StageType():        func() StageOptions { return &Cleanup{} },
	DiskImage{}.StageType():      func() StageOptions { return &DiskImage{} },
	QemuImgConvert{}.StageType(): func() StageOptions { return &QemuImgConvert{} },
	TarArchive{}.StageType():     func() StageOptions { return &TarArchive{} },
	Compress{}.StageType():       func() StageOptions { return &Compress{} },
	FileArchive{}.StageType():    func() StageOptions { return &FileArchive{} },
	OVA{}.StageType():            func() StageOptions { return &OVA{} },
	OCIArchive{}.StageType():     func() StageOptions { return &OCIArchive{} },
	ISO{}.StageType():            func() StageOptions { return &ISO{} },
	Firstboot{}.StageType():      func() StageOptions { return &Firstboot{} },
	SSHD{}.StageType():           func() StageOptions { return &SSHD{} },
}

// StageTypes lists every known stage type name.
func StageTypes() []string {
	out := make([]string, 0, len(stageTypes))
	for k := range stageTypes {
		out = append(out, k)
	}
	return out
}

// DebsInstall creates the root tree from the pinned packages of the
// manifest's sources (all of them, with no network: the packages are fetched
// and verified before the stage runs). Variant is the base set the closure
// was solved with ("essential", "required", "important").
type DebsInstall struct {
	Arch    string `json:"arch"`
	Variant string `json:"variant"`
	// Packages are the packages asked for explicitly (marked manually
	// installed); the rest of Sources.Debs are their dependencies.
	Packages []string `json:"packages"`
}

func (DebsInstall) StageType() string { return "kiln.debs.install" }

// AptSource is one entry of the installed system's apt sources (deb822).
type AptSource struct {
	Name       string   `json:"name"`
	URIs       []string `json:"uris"`
	Suites     []string `json:"suites"`
	Components []string `json:"components"`
	// SignedBy is a keyring path inside the image, or an armored key block.
	SignedBy string `json:"signed_by,omitempty"`
	// Trusted marks a source whose signatures are not checked (the
	// blueprint turned gpgcheck off).
	Trusted bool `json:"trusted,omitempty"`
	// Filename names the file under /etc/apt/sources.list.d (without
	// ".sources"); empty means Name.
	Filename string `json:"filename,omitempty"`
	// Title is the repository's human-readable name, kept in the file as
	// its X-Repolib-Name field.
	Title string `json:"title,omitempty"`
	// Disabled writes the source with "Enabled: no": configured in the
	// image, read by apt only once an administrator enables it.
	Disabled bool `json:"disabled,omitempty"`
	// Priority, when set, is the apt pin priority of the source's
	// packages, written to /etc/apt/preferences.d/<file>.pref and
	// selecting the source by the host names of its URIs.
	Priority *int `json:"priority,omitempty"`
}

// AptSources writes /etc/apt/sources.list.d/<name>.sources for each source
// and removes /etc/apt/sources.list.
type AptSources struct {
	Sources []AptSource `json:"sources"`
}

func (AptSources) StageType() string { return "kiln.apt.sources" }

// Hostname writes /etc/hostname and the 127.0.1.1 line of /etc/hosts.
type Hostname struct {
	Hostname string `json:"hostname"`
}

func (Hostname) StageType() string { return "kiln.hostname" }

// Timezone links /etc/localtime to the zone and writes /etc/timezone.
type Timezone struct {
	Zone string `json:"zone"`
}

func (Timezone) StageType() string { return "kiln.timezone" }

// NTP configures systemd-timesyncd to use Servers.
type NTP struct {
	Servers []string `json:"servers"`
}

func (NTP) StageType() string { return "kiln.ntp" }

// Locale generates Languages and makes Default the system locale.
type Locale struct {
	Languages []string `json:"languages"`
	Default   string   `json:"default"`
}

func (Locale) StageType() string { return "kiln.locale" }

// Keyboard writes /etc/default/keyboard (XKB layout and variant), which
// also sets the console keymap.
type Keyboard struct {
	Layout  string `json:"layout"`
	Variant string `json:"variant,omitempty"`
	// Model and Options are XKB's (default pc105 and none).
	Model   string `json:"model,omitempty"`
	Options string `json:"options,omitempty"`
	// Keymap is the console keymap when the blueprint named one
	// ("de-latin1"); by default it is "<layout>" or "<layout>-<variant>".
	Keymap string `json:"keymap,omitempty"`
}

func (Keyboard) StageType() string { return "kiln.keyboard" }

// Group is one group to create.
type Group struct {
	Name string `json:"name"`
	GID  *int   `json:"gid,omitempty"`
}

// Groups creates groups.
type Groups struct {
	Groups []Group `json:"groups"`
}

func (Groups) StageType() string { return "kiln.groups" }

// User is one user to create or configure. Password is a crypt(3) hash.
type User struct {
	Name               string   `json:"name"`
	Description        string   `json:"description,omitempty"`
	PasswordHash       string   `json:"password_hash,omitempty"`
	SSHKeys            []string `json:"ssh_keys,omitempty"`
	Home               string   `json:"home,omitempty"`
	Shell              string   `json:"shell,omitempty"`
	Groups             []string `json:"groups,omitempty"`
	UID                *int     `json:"uid,omitempty"`
	GID                *int     `json:"gid,omitempty"`
	ExpireDate         *int     `json:"expiredate,omitempty"`
	ForcePasswordReset bool     `json:"force_password_reset,omitempty"`
}

// Users creates users (root is configured, not created), sets password
// hashes and writes ~/.ssh/authorized_keys.
type Users struct {
	Users []User `json:"users"`
}

func (Users) StageType() string { return "kiln.users" }

// FirewallPort is one opened port or port range.
type FirewallPort struct {
	From     int    `json:"from"`
	To       int    `json:"to"`
	Protocol string `json:"protocol"`
}

// Firewall writes an nftables ruleset that drops inbound traffic except
// established connections, loopback, ICMP, the listed ports and the ports of
// the enabled services; DisabledServices are removed from the defaults.
type Firewall struct {
	Ports            []FirewallPort `json:"ports"`
	EnabledServices  []string       `json:"enabled_services,omitempty"`
	DisabledServices []string       `json:"disabled_services,omitempty"`
	// Closed are the ports of disabled services: dropped before anything
	// is accepted, so they stay closed whatever a later rule opens.
	Closed []FirewallPort `json:"closed,omitempty"`
}

func (Firewall) StageType() string { return "kiln.firewall" }

// Systemd enables, disables and masks units.
type Systemd struct {
	Enabled  []string `json:"enabled,omitempty"`
	Disabled []string `json:"disabled,omitempty"`
	Masked   []string `json:"masked,omitempty"`
	// DefaultTarget is the default boot target, when set.
	DefaultTarget string `json:"default_target,omitempty"`
}

func (Systemd) StageType() string { return "kiln.systemd" }

// Directory is one directory to create. User and Group are names or ids.
type Directory struct {
	Path          string `json:"path"`
	Mode          string `json:"mode"`
	User          string `json:"user,omitempty"`
	Group         string `json:"group,omitempty"`
	EnsureParents bool   `json:"ensure_parents,omitempty"`
}

// Directories creates directories inside the tree (never following a
// symbolic link out of it).
type Directories struct {
	Directories []Directory `json:"directories"`
}

func (Directories) StageType() string { return "kiln.directories" }

// File is one file to write; Data is its exact content.
type File struct {
	Path  string `json:"path"`
	Mode  string `json:"mode"`
	User  string `json:"user,omitempty"`
	Group string `json:"group,omitempty"`
	Data  string `json:"data"`
}

// Files writes files inside the tree (never following a symbolic link out
// of it).
type Files struct {
	Files []File `json:"files"`
}

func (Files) StageType() string { return "kiln.files" }

// CACerts adds PEM certificates to the system trust store.
type CACerts struct {
	PEMCerts []string `json:"pem_certs"`
}

func (CACerts) StageType() string { return "kiln.cacerts" }

// Network configures the network. Mode "networkd-dhcp" brings every
// Ethernet interface up with DHCP through systemd-networkd.
type Network struct {
	Mode string `json:"mode"`
}

func (Network) StageType() string { return "kiln.network" }

// FSTabEntry is one line of /etc/fstab.
type FSTabEntry struct {
	UUID       string `json:"uuid"`
	Mountpoint string `json:"mountpoint"`
	FSType     string `json:"fstype"`
	Options    string `json:"options"`
	PassNo     int    `json:"passno"`
}

// FSTab writes /etc/fstab, filesystems named by UUID.
type FSTab struct {
	Entries []FSTabEntry `json:"entries"`
}

func (FSTab) StageType() string { return "kiln.fstab" }

// Bootloader installs GRUB's configuration and EFI binaries into the tree:
// /boot/grub/grub.cfg booting the root filesystem by UUID with
// KernelCmdline, and for UEFI the removable-media path on the ESP. BIOS
// is "i386-pc" when the image boots with legacy BIOS; UEFI is the EFI
// target ("x86_64-efi") when it boots with UEFI.
type Bootloader struct {
	BIOS          string   `json:"bios,omitempty"`
	UEFI          string   `json:"uefi,omitempty"`
	RootFSUUID    string   `json:"root_fs_uuid"`
	BootFSUUID    string   `json:"boot_fs_uuid,omitempty"`
	KernelCmdline []string `json:"kernel_cmdline"`
	Timeout       int      `json:"timeout"`
}

func (Bootloader) StageType() string { return "kiln.bootloader" }

// Initramfs regenerates the initramfs of every installed kernel. With
// Drivers set, the initramfs holds those kernel modules (and what they
// need) in place of initramfs-tools' default of most of the kernel's
// storage, filesystem and network drivers: a virtual machine's image needs
// its platforms' disk drivers and its root filesystem's, a fraction of
// the size, which the firmware reads and the kernel unpacks on every boot.
type Initramfs struct {
	Drivers []string `json:"drivers,omitempty"`
}

func (Initramfs) StageType() string { return "kiln.initramfs" }

// Cleanup makes the tree a generic image: empties /etc/machine-id, removes
// SSH host keys (regenerated on first boot), apt lists and caches, the
// build's resolv.conf, logs and temporary files.
type Cleanup struct {
	MachineID   bool `json:"machine_id"`
	SSHHostKeys bool `json:"ssh_host_keys"`
	AptLists    bool `json:"apt_lists"`
}

func (Cleanup) StageType() string { return "kiln.cleanup" }

// DiskImage writes a raw disk image of the input tree: the partition table,
// each filesystem built from its part of the tree at its offset, and the
// BIOS boot code when Bootloader.BIOS is set.
type DiskImage struct {
	PartitionTable disk.PartitionTable `json:"partition_table"`
	BIOSBootloader string              `json:"bios_bootloader,omitempty"`
}

func (DiskImage) StageType() string { return "kiln.disk.image" }

// QemuImgConvert converts the input file to Format ("qcow2", "vmdk",
// "vpc") with qemu-img.
type QemuImgConvert struct {
	Format    string `json:"format"`
	Compat    string `json:"compat,omitempty"`
	Compress  bool   `json:"compress,omitempty"`
	Subformat string `json:"subformat,omitempty"`
}

func (QemuImgConvert) StageType() string { return "kiln.qemu-img.convert" }

// TarArchive packs the input tree into a tar archive with numeric owners,
// extended attributes and fixed timestamps, compressed with Compression
// ("", "gzip", "xz", "zstd").
type TarArchive struct {
	Compression string `json:"compression,omitempty"`
}

func (TarArchive) StageType() string { return "kiln.tar" }
