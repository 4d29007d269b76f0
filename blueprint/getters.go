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

// GetUsers returns the users to create or configure.
func (c *Customizations) GetUsers() []UserCustomization {
	if c == nil {
		return nil
	}
	return c.User
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
