package blueprint

// Getters accept a nil receiver and return the zero value for anything not
// set, so callers never chain nil checks. Slices are the blueprint's own;
// callers must not modify them.

// GetCustomizations returns the customizations, or nil.
func (b *Blueprint) GetCustomizations() *Customizations {
	if b == nil {
		return nil
	}
	return b.Customizations
}

// GetName returns the blueprint's name.
func (b *Blueprint) GetName() string {
	if b == nil {
		return ""
	}
	return b.Name
}

// GetDistro returns the requested distribution, or "" for the default.
func (b *Blueprint) GetDistro() string {
	if b == nil {
		return ""
	}
	return b.Distro
}

// GetArchitecture returns the requested architecture, or "" for the default.
func (b *Blueprint) GetArchitecture() string {
	if b == nil {
		return ""
	}
	return b.Architecture
}

// GetPackages returns the packages list.
func (b *Blueprint) GetPackages() []Package {
	if b == nil {
		return nil
	}
	return b.Packages
}

// GetModules returns the modules list (plain packages on Debian).
func (b *Blueprint) GetModules() []Package {
	if b == nil {
		return nil
	}
	return b.Modules
}

// GetPackageGroups returns the package groups (Debian tasks).
func (b *Blueprint) GetPackageGroups() []PackageGroup {
	if b == nil {
		return nil
	}
	return b.Groups
}

// AllPackages returns the packages followed by the modules, in blueprint
// order, in a new slice: Debian has no module streams, so both are packages.
func (b *Blueprint) AllPackages() []Package {
	if b == nil || len(b.Packages)+len(b.Modules) == 0 {
		return nil
	}
	all := make([]Package, 0, len(b.Packages)+len(b.Modules))
	all = append(all, b.Packages...)
	return append(all, b.Modules...)
}

// GetHostname returns the host name, or "" when not set.
func (c *Customizations) GetHostname() string {
	if c == nil || c.Hostname == nil {
		return ""
	}
	return *c.Hostname
}

// GetKernel returns the kernel customization, or nil.
func (c *Customizations) GetKernel() *KernelCustomization {
	if c == nil {
		return nil
	}
	return c.Kernel
}

// GetName returns the kernel package, or "" for the distribution's default.
func (k *KernelCustomization) GetName() string {
	if k == nil {
		return ""
	}
	return k.Name
}

// GetAppend returns the extra kernel command-line arguments.
func (k *KernelCustomization) GetAppend() string {
	if k == nil {
		return ""
	}
	return k.Append
}

// GetUsers returns the users to create or configure.
func (c *Customizations) GetUsers() []UserCustomization {
	if c == nil {
		return nil
	}
	return c.User
}

// GetGroups returns the groups to create.
func (c *Customizations) GetGroups() []GroupCustomization {
	if c == nil {
		return nil
	}
	return c.Group
}

// GetSSHKeys returns the legacy sshkey entries.
func (c *Customizations) GetSSHKeys() []SSHKeyCustomization {
	if c == nil {
		return nil
	}
	return c.SSHKey
}

// GetTimezone returns the time zone ("" when not set) and the NTP servers.
func (c *Customizations) GetTimezone() (tz string, ntp []string) {
	if c == nil || c.Timezone == nil {
		return "", nil
	}
	if c.Timezone.Timezone != nil {
		tz = *c.Timezone.Timezone
	}
	return tz, c.Timezone.NTPServers
}

// GetLocale returns the languages (the first is the default) and the
// keyboard layout ("" when not set).
func (c *Customizations) GetLocale() (languages []string, keyboard string) {
	if c == nil || c.Locale == nil {
		return nil, ""
	}
	if c.Locale.Keyboard != nil {
		keyboard = *c.Locale.Keyboard
	}
	return c.Locale.Languages, keyboard
}

// GetFirewall returns the firewall customization, or nil.
func (c *Customizations) GetFirewall() *FirewallCustomization {
	if c == nil {
		return nil
	}
	return c.Firewall
}

// GetPorts returns the ports to open, as written ("22:tcp").
func (f *FirewallCustomization) GetPorts() []string {
	if f == nil {
		return nil
	}
	return f.Ports
}

// GetServices returns the firewall services, or nil.
func (f *FirewallCustomization) GetServices() *FirewallServicesCustomization {
	if f == nil {
		return nil
	}
	return f.Services
}

// GetEnabled returns the firewall services to allow.
func (f *FirewallServicesCustomization) GetEnabled() []string {
	if f == nil {
		return nil
	}
	return f.Enabled
}

// GetDisabled returns the firewall services to deny.
func (f *FirewallServicesCustomization) GetDisabled() []string {
	if f == nil {
		return nil
	}
	return f.Disabled
}

// GetServices returns the systemd services customization, or nil.
func (c *Customizations) GetServices() *ServicesCustomization {
	if c == nil {
		return nil
	}
	return c.Services
}

// GetEnabled returns the units to enable, with ".service" added to bare
// names as systemctl does ("sshd" becomes "sshd.service").
func (s *ServicesCustomization) GetEnabled() []string {
	if s == nil {
		return nil
	}
	return canonicalUnits(s.Enabled)
}

// GetDisabled returns the units to disable, with ".service" added to bare
// names.
func (s *ServicesCustomization) GetDisabled() []string {
	if s == nil {
		return nil
	}
	return canonicalUnits(s.Disabled)
}

// GetMasked returns the units to mask, with ".service" added to bare names.
func (s *ServicesCustomization) GetMasked() []string {
	if s == nil {
		return nil
	}
	return canonicalUnits(s.Masked)
}

// canonicalUnits returns names with the ".service" suffix systemctl adds;
// a name that is not valid (Validate reports it) is kept as it is.
func canonicalUnits(names []string) []string {
	if len(names) == 0 {
		return nil
	}
	out := make([]string, len(names))
	for i, n := range names {
		if unit, msg := canonicalUnit(n); msg == "" {
			out[i] = unit
		} else {
			out[i] = n
		}
	}
	return out
}

// GetFilesystems returns the requested mount points and sizes.
func (c *Customizations) GetFilesystems() []FilesystemCustomization {
	if c == nil {
		return nil
	}
	return c.Filesystem
}

// GetDisk returns the whole-disk layout, or nil.
func (c *Customizations) GetDisk() *DiskCustomization {
	if c == nil {
		return nil
	}
	return c.Disk
}

// GetPartitions returns the partitions of the disk.
func (d *DiskCustomization) GetPartitions() []PartitionCustomization {
	if d == nil {
		return nil
	}
	return d.Partitions
}

// GetDirectories returns the directories to create.
func (c *Customizations) GetDirectories() []DirectoryCustomization {
	if c == nil {
		return nil
	}
	return c.Directories
}

// GetFiles returns the files to create.
func (c *Customizations) GetFiles() []FileCustomization {
	if c == nil {
		return nil
	}
	return c.Files
}

// GetRepositories returns the extra package repositories.
func (c *Customizations) GetRepositories() []RepositoryCustomization {
	if c == nil {
		return nil
	}
	return c.Repositories
}

// IsEnabled reports whether the repository is enabled (the default).
func (r *RepositoryCustomization) IsEnabled() bool {
	return r != nil && (r.Enabled == nil || *r.Enabled)
}

// ChecksSignatures reports whether apt must verify the repository's
// signatures: true unless gpgcheck = false.
func (r *RepositoryCustomization) ChecksSignatures() bool {
	return r != nil && (r.GPGCheck == nil || *r.GPGCheck)
}

// GetCACerts returns the PEM bundles of extra trusted CA certificates.
func (c *Customizations) GetCACerts() []string {
	if c == nil || c.CACerts == nil {
		return nil
	}
	return c.CACerts.PEMCerts
}
