// Package blueprint holds what a user wants in an image: packages, users,
// hostname, timezone, filesystems, files and the rest. It reads the osbuild
// blueprint format (TOML and JSON, same field names) so that blueprints people
// already have keep working, and it validates them, returning every problem at
// once with its field path.
//
// The package holds user intent only and imports nothing else of kiln. Checks
// that depend on the target (is this timezone, locale or option known to the
// distribution and image type?) belong to the distro layer, which is the only
// reader of a Blueprint.
//
// All getters accept a nil receiver, so callers never chain nil checks.
package blueprint

// Blueprint is one parsed and validated blueprint.
type Blueprint struct {
	Name         string `json:"name" toml:"name"`
	Description  string `json:"description,omitempty" toml:"description,omitempty"`
	Version      string `json:"version,omitempty" toml:"version,omitempty"`
	Distro       string `json:"distro,omitempty" toml:"distro,omitempty"`
	Architecture string `json:"architecture,omitempty" toml:"architecture,omitempty"`

	Packages []Package `json:"packages,omitempty" toml:"packages,omitempty"`
	// Modules are treated like packages: Debian has no module streams.
	Modules []Package `json:"modules,omitempty" toml:"modules,omitempty"`
	// Groups are package groups; on Debian they name tasks (tasksel).
	Groups []PackageGroup `json:"groups,omitempty" toml:"groups,omitempty"`

	Customizations *Customizations `json:"customizations,omitempty" toml:"customizations,omitempty"`
}

// Package is one requested package. Version is "*" (or empty) for any
// version, an exact Debian version ("1.2-3"), or a constraint with one of the
// Debian relation operators ("= 1.2-3", ">= 1.2", "<< 2").
type Package struct {
	Name    string `json:"name" toml:"name"`
	Version string `json:"version,omitempty" toml:"version,omitempty"`
}

// PackageGroup is a package group (a Debian task such as "ssh-server").
type PackageGroup struct {
	Name string `json:"name" toml:"name"`
}

// Customizations are the settings of the installed system.
type Customizations struct {
	Hostname     *string                   `json:"hostname,omitempty" toml:"hostname,omitempty"`
	Kernel       *KernelCustomization      `json:"kernel,omitempty" toml:"kernel,omitempty"`
	SSHKey       []SSHKeyCustomization     `json:"sshkey,omitempty" toml:"sshkey,omitempty"`
	User         []UserCustomization       `json:"user,omitempty" toml:"user,omitempty"`
	Group        []GroupCustomization      `json:"group,omitempty" toml:"group,omitempty"`
	Timezone     *TimezoneCustomization    `json:"timezone,omitempty" toml:"timezone,omitempty"`
	Locale       *LocaleCustomization      `json:"locale,omitempty" toml:"locale,omitempty"`
	Firewall     *FirewallCustomization    `json:"firewall,omitempty" toml:"firewall,omitempty"`
	Services     *ServicesCustomization    `json:"services,omitempty" toml:"services,omitempty"`
	Filesystem   []FilesystemCustomization `json:"filesystem,omitempty" toml:"filesystem,omitempty"`
	Disk         *DiskCustomization        `json:"disk,omitempty" toml:"disk,omitempty"`
	Directories  []DirectoryCustomization  `json:"directories,omitempty" toml:"directories,omitempty"`
	Files        []FileCustomization       `json:"files,omitempty" toml:"files,omitempty"`
	Repositories []RepositoryCustomization `json:"repositories,omitempty" toml:"repositories,omitempty"`
	CACerts      *CACustomization          `json:"cacerts,omitempty" toml:"cacerts,omitempty"`
	Firstboot    *FirstbootCustomization   `json:"firstboot,omitempty" toml:"firstboot,omitempty"`
	SSHD         *SSHDCustomization        `json:"sshd,omitempty" toml:"sshd,omitempty"`
}

// KernelCustomization picks the kernel package and extra command-line arguments.
type KernelCustomization struct {
	Name   string `json:"name,omitempty" toml:"name,omitempty"`
	Append string `json:"append,omitempty" toml:"append,omitempty"`
}

// SSHKeyCustomization is the legacy way to give an existing user a key.
type SSHKeyCustomization struct {
	User string `json:"user" toml:"user"`
	Key  string `json:"key" toml:"key"`
}

// UserCustomization creates (or, for root, configures) a user.
//
// Password holds a crypt(3) hash after parsing: a plaintext password given in
// the blueprint is replaced by its SHA-512 crypt hash at parse time and never
// kept in clear.
type UserCustomization struct {
	Name               string   `json:"name" toml:"name"`
	Description        *string  `json:"description,omitempty" toml:"description,omitempty"`
	Password           *string  `json:"password,omitempty" toml:"password,omitempty"`
	Key                *string  `json:"key,omitempty" toml:"key,omitempty"`
	Home               *string  `json:"home,omitempty" toml:"home,omitempty"`
	Shell              *string  `json:"shell,omitempty" toml:"shell,omitempty"`
	Groups             []string `json:"groups,omitempty" toml:"groups,omitempty"`
	UID                *int     `json:"uid,omitempty" toml:"uid,omitempty"`
	GID                *int     `json:"gid,omitempty" toml:"gid,omitempty"`
	ExpireDate         *int     `json:"expiredate,omitempty" toml:"expiredate,omitempty"`
	ForcePasswordReset *bool    `json:"force_password_reset,omitempty" toml:"force_password_reset,omitempty"`
}

// GroupCustomization creates a group.
type GroupCustomization struct {
	Name string `json:"name" toml:"name"`
	GID  *int   `json:"gid,omitempty" toml:"gid,omitempty"`
}

// TimezoneCustomization sets the time zone (an IANA name) and NTP servers.
type TimezoneCustomization struct {
	Timezone   *string  `json:"timezone,omitempty" toml:"timezone,omitempty"`
	NTPServers []string `json:"ntpservers,omitempty" toml:"ntpservers,omitempty"`
}

// LocaleCustomization sets the languages (locales such as "en_US.UTF-8"; the
// first is the default) and the console keyboard layout.
type LocaleCustomization struct {
	Languages []string `json:"languages,omitempty" toml:"languages,omitempty"`
	Keyboard  *string  `json:"keyboard,omitempty" toml:"keyboard,omitempty"`
}

// FirewallCustomization opens ports ("22:tcp", "8000-8010:udp") and
// enables or disables services by name ("ssh", "http").
type FirewallCustomization struct {
	Ports    []string                       `json:"ports,omitempty" toml:"ports,omitempty"`
	Services *FirewallServicesCustomization `json:"services,omitempty" toml:"services,omitempty"`
}

// FirewallServicesCustomization lists firewall services by name.
type FirewallServicesCustomization struct {
	Enabled  []string `json:"enabled,omitempty" toml:"enabled,omitempty"`
	Disabled []string `json:"disabled,omitempty" toml:"disabled,omitempty"`
}

// ServicesCustomization enables, disables and masks systemd units.
type ServicesCustomization struct {
	Enabled  []string `json:"enabled,omitempty" toml:"enabled,omitempty"`
	Disabled []string `json:"disabled,omitempty" toml:"disabled,omitempty"`
	Masked   []string `json:"masked,omitempty" toml:"masked,omitempty"`
}

// FilesystemCustomization asks for a mount point of at least MinSize bytes.
// In blueprints MinSize is an integer of bytes or a string such as "20 GiB".
type FilesystemCustomization struct {
	Mountpoint string `json:"mountpoint" toml:"mountpoint"`
	MinSize    Size   `json:"minsize,omitempty" toml:"minsize,omitempty"`
}

// DiskCustomization describes the whole partition table. It cannot be used
// together with Filesystem.
type DiskCustomization struct {
	Type       string                   `json:"type,omitempty" toml:"type,omitempty"` // "gpt" or "dos"
	MinSize    Size                     `json:"minsize,omitempty" toml:"minsize,omitempty"`
	Partitions []PartitionCustomization `json:"partitions,omitempty" toml:"partitions,omitempty"`
	// StartOffset is room left free before the first partition, after the
	// first MiB that holds the partition table.
	StartOffset Size `json:"start_offset,omitempty" toml:"start_offset,omitempty"`
	// SectorSize is the logical sector size in bytes; only 512 is built.
	SectorSize int `json:"sector_size,omitempty" toml:"sector_size,omitempty"`
}

// PartitionCustomization is one partition of a DiskCustomization: a plain
// partition carrying a filesystem, or an LVM volume group with logical volumes.
type PartitionCustomization struct {
	Type      string `json:"type,omitempty" toml:"type,omitempty"` // "plain" (default) or "lvm"
	MinSize   Size   `json:"minsize,omitempty" toml:"minsize,omitempty"`
	PartType  string `json:"part_type,omitempty" toml:"part_type,omitempty"`
	PartLabel string `json:"part_label,omitempty" toml:"part_label,omitempty"`
	PartUUID  string `json:"part_uuid,omitempty" toml:"part_uuid,omitempty"`

	// plain
	Mountpoint string `json:"mountpoint,omitempty" toml:"mountpoint,omitempty"`
	Label      string `json:"label,omitempty" toml:"label,omitempty"`
	FSType     string `json:"fs_type,omitempty" toml:"fs_type,omitempty"`

	// lvm
	Name           string            `json:"name,omitempty" toml:"name,omitempty"`
	LogicalVolumes []LVCustomization `json:"logical_volumes,omitempty" toml:"logical_volumes,omitempty"`
}

// LVCustomization is one logical volume of an LVM partition.
type LVCustomization struct {
	Name       string `json:"name,omitempty" toml:"name,omitempty"`
	MinSize    Size   `json:"minsize,omitempty" toml:"minsize,omitempty"`
	Mountpoint string `json:"mountpoint,omitempty" toml:"mountpoint,omitempty"`
	Label      string `json:"label,omitempty" toml:"label,omitempty"`
	FSType     string `json:"fs_type,omitempty" toml:"fs_type,omitempty"`
}

// DirectoryCustomization creates a directory. User and Group are a name or
// a numeric id (see Owner).
type DirectoryCustomization struct {
	Path          string `json:"path" toml:"path"`
	User          Owner  `json:"user,omitempty" toml:"user,omitempty"`
	Group         Owner  `json:"group,omitempty" toml:"group,omitempty"`
	Mode          string `json:"mode,omitempty" toml:"mode,omitempty"`
	EnsureParents bool   `json:"ensure_parents,omitempty" toml:"ensure_parents,omitempty"`
}

// FileCustomization creates a file with the given content.
type FileCustomization struct {
	Path  string `json:"path" toml:"path"`
	User  Owner  `json:"user,omitempty" toml:"user,omitempty"`
	Group Owner  `json:"group,omitempty" toml:"group,omitempty"`
	Mode  string `json:"mode,omitempty" toml:"mode,omitempty"`
	Data  string `json:"data,omitempty" toml:"data,omitempty"`
}

// RepositoryCustomization adds a package repository. For Debian it is an apt
// source: BaseURLs are the URIs, Suite and Components say what to read, and
// GPGKeys (armored keys or their https URLs, fetched when the manifest is
// written) sign it.
type RepositoryCustomization struct {
	ID string `json:"id" toml:"id"`
	// Name is kept in the sources file as its X-Repolib-Name field.
	Name     string   `json:"name,omitempty" toml:"name,omitempty"`
	BaseURLs []string `json:"baseurls,omitempty" toml:"baseurls,omitempty"`
	GPGKeys  []string `json:"gpgkeys,omitempty" toml:"gpgkeys,omitempty"`
	GPGCheck *bool    `json:"gpgcheck,omitempty" toml:"gpgcheck,omitempty"`
	// Enabled false writes the source with "Enabled: no" and leaves it
	// out of the build.
	Enabled *bool `json:"enabled,omitempty" toml:"enabled,omitempty"`
	// Priority is the apt pin priority, by the host of the URLs.
	Priority *int `json:"priority,omitempty" toml:"priority,omitempty"`
	// Filename names the sources file (see SourcesFile).
	Filename   string   `json:"filename,omitempty" toml:"filename,omitempty"`
	Suite      string   `json:"suite,omitempty" toml:"suite,omitempty"`
	Components []string `json:"components,omitempty" toml:"components,omitempty"`
	// InstallFrom also uses the repository while building the image, not
	// only in the installed system's apt configuration.
	InstallFrom bool `json:"install_from,omitempty" toml:"install_from,omitempty"`
}

// CACustomization adds trusted CA certificates (PEM).
type CACustomization struct {
	PEMCerts []string `json:"pem_certs,omitempty" toml:"pem_certs,omitempty"`
}

// FirstbootCustomization lists scripts that run once, at the first boot of
// the installed system, in the order given.
type FirstbootCustomization struct {
	Scripts []FirstbootScript `json:"scripts,omitempty" toml:"scripts,omitempty"`
}

// FirstbootScript is one first-boot script. Only Type "custom" can be
// built for Debian; osbuild's "satellite" and "aap" types register the
// system with Red Hat services and are refused.
type FirstbootScript struct {
	Type string `json:"type,omitempty" toml:"type,omitempty"`
	// Name names the script and its unit; unique within the blueprint.
	Name string `json:"name,omitempty" toml:"name,omitempty"`
	// IgnoreFailure lets the later scripts run when this one fails.
	IgnoreFailure bool `json:"ignore_failure,omitempty" toml:"ignore_failure,omitempty"`
	// After and Before are systemd units the script is ordered against.
	After  []string `json:"after,omitempty" toml:"after,omitempty"`
	Before []string `json:"before,omitempty" toml:"before,omitempty"`
	// Contents is the script: run by its "#!" interpreter, else by /bin/sh.
	Contents string `json:"contents,omitempty" toml:"contents,omitempty"`
}

// SSHDCustomization sets options of the SSH server, written as a drop-in
// of sshd_config.
type SSHDCustomization struct {
	PasswordAuthentication          *bool     `json:"password_authentication,omitempty" toml:"password_authentication,omitempty"`
	ChallengeResponseAuthentication *bool     `json:"challenge_response_authentication,omitempty" toml:"challenge_response_authentication,omitempty"`
	ClientAliveInterval             *int      `json:"client_alive_interval,omitempty" toml:"client_alive_interval,omitempty"`
	PermitRootLogin                 RootLogin `json:"permit_root_login,omitempty" toml:"permit_root_login,omitempty"`
}
