package blueprint

// Limits on what a blueprint may hold. They keep a single request from
// exhausting the memory or the time of the service that parses it; real
// blueprints stay far below them. docs/blueprint.md lists them for users.
const (
	// MaxBlueprintSize is the largest blueprint document accepted, in bytes.
	MaxBlueprintSize = 4 << 20
	// MaxFileDataSize is the largest data of one customizations.files entry.
	MaxFileDataSize = 1 << 20
	// MaxTotalFileDataSize is the largest sum of the data of all files.
	MaxTotalFileDataSize = 3 << 20
	// MaxNestingDepth is how deeply tables and arrays may nest in the
	// document. The blueprint schema itself needs fewer than ten levels.
	MaxNestingDepth = 32

	// MaxPackages caps packages and, separately, modules.
	MaxPackages = 1000
	// MaxPackageGroups caps groups (Debian tasks).
	MaxPackageGroups = 100
	// MaxUsers caps customizations.user and, separately, customizations.sshkey.
	MaxUsers = 100
	// MaxGroups caps customizations.group and the groups of one user.
	MaxGroups = 100
	// MaxSSHKeysPerUser caps the keys (lines) in one key field.
	MaxSSHKeysPerUser = 100
	// MaxListItems caps the short lists: NTP servers, languages, firewall
	// ports and services, and each list of systemd units.
	MaxListItems = 256
	// MaxMountpoints caps filesystems, disk partitions and the logical
	// volumes of one volume group.
	MaxMountpoints = 64
	// MaxFiles caps customizations.files and, separately,
	// customizations.directories.
	MaxFiles = 1000
	// MaxRepositories caps customizations.repositories.
	MaxRepositories = 64
	// MaxCACerts caps cacerts.pem_certs entries.
	MaxCACerts = 64
	// MaxKernelAppend is the longest kernel.append accepted, in bytes.
	MaxKernelAppend = 4096
	// MaxPasswordLength is the longest plaintext password hashed, in bytes.
	MaxPasswordLength = 1024
	// MaxDescription is the longest blueprint description, in bytes.
	MaxDescription = 4096
)
