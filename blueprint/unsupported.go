package blueprint

// unsupportedField explains why a key that osbuild blueprints know is not
// accepted here. Such keys are rejected rather than ignored, because a
// setting that silently does nothing is worse than an error. The path has no
// list indices ("customizations.files.uri").
func unsupportedField(path string) (string, bool) {
	const (
		notYet    = "not supported yet; remove it (this image builder does not implement it so far)"
		notDebian = "not supported for Debian-family images; remove it"
	)
	switch path {
	// Planned, but not there yet.
	case "customizations.sshd.config":
		return "write the sshd options directly in customizations.sshd: password_authentication, challenge_response_authentication, client_alive_interval, permit_root_login", true
	case "customizations.firewall.zones":
		return "firewall zones are " + notYet, true
	case "customizations.iso":
		return "ISO settings are " + notYet, true
	case "customizations.files.uri":
		return "files fetched from a URI are " + notYet + "; give the content in data", true
	case "customizations.disk.partitions.subvolumes":
		return "btrfs subvolumes are " + notYet, true
	case "customizations.repositories.sslverify":
		return "not supported: apt always verifies the repository's TLS certificate; remove it, and for a private CA add it with customizations.cacerts", true
	case "customizations.repositories.repo_gpgcheck":
		return "not supported: apt always checks the signature of the repository's metadata (its Release file), so there is nothing to switch; remove it", true

	// Specific to RPM-family distributions or to Red Hat services.
	case "enabled_modules":
		return "module streams are " + notDebian + "; Debian has none, list the packages instead", true
	case "ostree":
		return "OSTree commits are " + notDebian + "; kiln builds package-based images, so describe the system with packages and customizations", true
	case "containers", "customizations.containers-storage":
		return "embedded containers are " + notDebian, true
	case "customizations.fdo":
		return "FIDO device onboarding is " + notDebian, true
	case "customizations.openscap", "customizations.oscap":
		return "OpenSCAP remediation is " + notDebian, true
	case "customizations.ignition":
		return "Ignition is " + notDebian + "; use customizations.files, user and services", true
	case "customizations.fips":
		return "FIPS mode is " + notDebian + "; Debian ships no FIPS-validated crypto policy", true
	case "customizations.installer":
		return "Anaconda installer settings are " + notDebian, true
	case "customizations.rhsm":
		return "Red Hat Subscription Manager settings are " + notDebian, true
	case "customizations.rpm":
		return "RPM settings are " + notDebian, true
	case "customizations.dnf":
		return "DNF settings are " + notDebian + "; apt is configured through customizations.repositories", true
	case "customizations.installation_device", "customizations.partitioning_mode":
		return "this installer/partitioning option is " + notDebian + "; describe the layout with customizations.filesystem or customizations.disk", true
	case "customizations.wsl":
		return "WSL settings are " + notDebian, true
	case "customizations.repositories.metalink", "customizations.repositories.mirrorlist":
		return "metalinks and mirror lists are " + notDebian + "; list the mirrors in baseurls", true
	case "customizations.firstboot.scripts.command":
		return "the satellite first-boot script registers the system with Red Hat Satellite, which is " + notDebian + `; use a script of type "custom"`, true
	case "customizations.firstboot.scripts.job_template_url", "customizations.firstboot.scripts.host_config_key":
		return "the aap first-boot script calls back Red Hat Ansible Automation Platform, which is " + notDebian + `; use a script of type "custom"`, true
	case "customizations.firstboot.scripts.cacerts":
		return "CA certificates of a first-boot script belong to the satellite and aap types, which are " + notDebian + "; trust a CA with customizations.cacerts", true
	case "customizations.repositories.module_hotfixes":
		return "module hotfixes are " + notDebian, true
	}
	return "", false
}
