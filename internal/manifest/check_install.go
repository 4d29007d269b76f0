package manifest

// CheckInstall checks, right after the packages are installed and before
// any other stage, what only the packages' contents can tell about the
// blueprint: that each systemd unit it enables, disables or masks exists,
// that each supplementary group of a user exists (or is created by the
// blueprint), and that each user's login shell exists and is listed in
// /etc/shells. Every problem is reported at once, each at the blueprint
// field that named it. The stage reads the tree and changes nothing.
type CheckInstall struct {
	Units  []CheckUnit  `json:"units,omitempty"`
	Groups []CheckGroup `json:"groups,omitempty"`
	Shells []CheckShell `json:"shells,omitempty"`
}

func (CheckInstall) StageType() string { return "kiln.check.install" }

// CheckUnit is a systemd unit that must exist ("cockpit.socket"; a name
// without a suffix is a service), with the blueprint field that names it.
type CheckUnit struct {
	Unit  string `json:"unit"`
	Field string `json:"field"`
}

// CheckGroup is a group that must exist, with the blueprint field that
// names it.
type CheckGroup struct {
	Group string `json:"group"`
	Field string `json:"field"`
}

// CheckShell is a login shell that must exist and be listed in
// /etc/shells, with the blueprint field that names it.
type CheckShell struct {
	Shell string `json:"shell"`
	Field string `json:"field"`
}
