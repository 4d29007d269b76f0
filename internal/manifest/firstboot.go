package manifest

// Files the Firstboot and SSHD stages write, for the checks that keep a
// blueprint's own files from replacing them.
const (
	// FirstbootScriptDir holds the first-boot scripts, "NN-<name>" in
	// run order.
	FirstbootScriptDir = "/usr/local/libexec/kiln-firstboot"
	// FirstbootUnitPrefix starts the path of each first-boot script's
	// unit file.
	FirstbootUnitPrefix = "/etc/systemd/system/kiln-firstboot-"
	// SSHDDropIn is the sshd_config drop-in the SSHD stage writes. sshd
	// keeps the first value it reads for an option and reads the drop-ins
	// in name order before the rest of Debian's sshd_config, so a low
	// number wins over the packages' own drop-ins (cloud-init's
	// 50-cloud-init.conf).
	SSHDDropIn = "/etc/ssh/sshd_config.d/10-kiln.conf"
)

// FirstbootScript is one script a Firstboot stage installs.
type FirstbootScript struct {
	// Name names the script's file and its unit
	// (kiln-firstboot-<Name>.service).
	Name string `json:"name"`
	// Contents is the script; without a "#!" line it runs with /bin/sh.
	Contents string `json:"contents"`
	// IgnoreFailure lets the next scripts run when this one fails.
	IgnoreFailure bool `json:"ignore_failure,omitempty"`
	// After and Before are units the script is ordered against, besides
	// network-online.target and the script before it.
	After  []string `json:"after,omitempty"`
	Before []string `json:"before,omitempty"`
}

// Firstboot installs scripts that run once, at the first boot, in order:
// each under /usr/local/libexec/kiln-firstboot/, run by an enabled
// oneshot unit ordered after network-online.target and after the unit of
// the script before it. A script that succeeds (or fails with
// IgnoreFailure) leaves a stamp file under /var/lib/kiln-firstboot/, so
// it never runs again; one that fails otherwise fails its unit, stops the
// scripts after it, and is tried again at the next boot.
type Firstboot struct {
	Scripts []FirstbootScript `json:"scripts"`
}

func (Firstboot) StageType() string { return "kiln.firstboot" }

// SSHD writes the drop-in /etc/ssh/sshd_config.d/10-kiln.conf with the
// options that are set. PermitRootLogin is "yes", "no",
// "prohibit-password" or "forced-commands-only";
// ChallengeResponseAuthentication is written as its current name,
// KbdInteractiveAuthentication.
type SSHD struct {
	PasswordAuthentication          *bool  `json:"password_authentication,omitempty"`
	ChallengeResponseAuthentication *bool  `json:"challenge_response_authentication,omitempty"`
	ClientAliveInterval             *int   `json:"client_alive_interval,omitempty"`
	PermitRootLogin                 string `json:"permit_root_login,omitempty"`
}

func (SSHD) StageType() string { return "kiln.sshd" }
