package blueprint

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// Validate checks the blueprint and returns every problem found as Errors,
// or nil. It checks syntax and consistency only; whether a distribution,
// time zone, locale or package exists is for the distro layer to say.
//
// Passwords must be crypt(3) hashes by now: Parse hashes plaintext ones, and
// blueprints built in code call HashPasswords first.
func (b *Blueprint) Validate() error {
	if b == nil {
		return Errors{{Message: "no blueprint given"}}
	}
	var ps problems
	b.validate(&ps, false)
	return ps.err()
}

// validator carries the problems found and how passwords are judged.
type validator struct {
	ps *problems
	// plaintextOK accepts a clear-text password (it is about to be hashed).
	plaintextOK bool
}

func (b *Blueprint) validate(ps *problems, plaintextOK bool) {
	v := validator{ps: ps, plaintextOK: plaintextOK}
	v.header(b)
	v.packages("packages", b.Packages)
	v.packages("modules", b.Modules)
	v.packageGroups(b.Groups)

	c := b.Customizations
	if c == nil {
		return
	}
	const p = "customizations"
	if c.Hostname != nil {
		v.hostname(fieldPath(p, "hostname"), *c.Hostname)
	}
	v.kernel(fieldPath(p, "kernel"), c.Kernel)
	v.sshKeys(fieldPath(p, "sshkey"), c.SSHKey)
	v.users(fieldPath(p, "user"), c.User)
	v.groups(fieldPath(p, "group"), c.Group)
	v.timezone(fieldPath(p, "timezone"), c.Timezone)
	v.locale(fieldPath(p, "locale"), c.Locale)
	v.firewall(fieldPath(p, "firewall"), c.Firewall)
	v.services(fieldPath(p, "services"), c.Services)
	v.filesystems(fieldPath(p, "filesystem"), c.Filesystem)
	v.disk(fieldPath(p, "disk"), c.Disk)
	if len(c.Filesystem) > 0 && c.Disk != nil {
		v.add(fieldPath(p, "disk"), "cannot be used together with customizations.filesystem; describe the whole layout in disk, or give only filesystem sizes")
	}
	v.directoriesAndFiles(p, c.Directories, c.Files)
	v.repositories(fieldPath(p, "repositories"), c.Repositories)
	v.caCerts(fieldPath(p, "cacerts"), c.CACerts)
	v.firstboot(fieldPath(p, "firstboot"), c.Firstboot)
	v.sshd(fieldPath(p, "sshd"), c.SSHD)
}

func (v validator) add(path, format string, args ...any) {
	v.ps.add(path, format, args...)
}

// maxItems reports a list longer than limit and says whether it is within.
func (v validator) maxItems(path string, n, limit int) bool {
	if n > limit {
		v.add(path, "has %d entries, more than the limit of %d", n, limit)
		return false
	}
	return true
}

var (
	blueprintNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	semverRe        = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
	distroRe        = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*$`)
	archRe          = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)
	packageNameRe   = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	groupNameRe     = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]*$`)
	debUpstreamRe   = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~-]*$`)
	debRevisionRe   = regexp.MustCompile(`^[A-Za-z0-9.+~]+$`)
	digitsRe        = regexp.MustCompile(`^[0-9]+$`)
)

func (v validator) header(b *Blueprint) {
	switch {
	case b.Name == "":
		v.add("name", `required; give the blueprint a name such as "web-server"`)
	case len(b.Name) > 100:
		v.add("name", "is %d characters long; the limit is 100", len(b.Name))
	case !blueprintNameRe.MatchString(b.Name):
		v.add("name", "%s may contain only letters, digits, '-', '_' and '.', and must start with a letter or digit", quote(b.Name))
	}
	if len(b.Description) > MaxDescription {
		v.add("description", "is %d bytes long; the limit is %d", len(b.Description), MaxDescription)
	}
	if b.Version != "" && !semverRe.MatchString(b.Version) {
		v.add("version", `%s is not a semantic version; write MAJOR.MINOR.PATCH, e.g. "1.0.0"`, quote(b.Version))
	}
	if b.Distro != "" && (len(b.Distro) > 64 || !distroRe.MatchString(b.Distro)) {
		v.add("distro", `%s is not a distribution name; use lowercase letters, digits, '.' and '-', e.g. "debian-12"`, quote(b.Distro))
	}
	if b.Architecture != "" && (len(b.Architecture) > 32 || !archRe.MatchString(b.Architecture)) {
		v.add("architecture", `%s is not an architecture name; use lowercase letters, digits, '_', '.' and '-', e.g. "x86_64" or "aarch64"`, quote(b.Architecture))
	}
}

func (v validator) packages(path string, pkgs []Package) {
	if !v.maxItems(path, len(pkgs), MaxPackages) {
		return
	}
	for i, p := range pkgs {
		at := indexPath(path, i)
		v.packageName(fieldPath(at, "name"), p.Name)
		if msg := checkPackageVersion(p.Version); msg != "" {
			v.add(fieldPath(at, "version"), "%s", msg)
		}
	}
}

func (v validator) packageName(path, name string) {
	switch {
	case name == "":
		v.add(path, "required; give a Debian package name such as \"openssh-server\"")
	case len(name) > 128 || !packageNameRe.MatchString(name):
		v.add(path, "%s is not a Debian package name: use at least two characters among lowercase letters, digits, '+', '-' and '.', starting with a letter or digit", quote(name))
	}
}

func (v validator) packageGroups(groups []PackageGroup) {
	if !v.maxItems("groups", len(groups), MaxPackageGroups) {
		return
	}
	for i, g := range groups {
		at := fieldPath(indexPath("groups", i), "name")
		switch {
		case g.Name == "":
			v.add(at, `required; give a Debian task name such as "ssh-server"`)
		case len(g.Name) > 128 || !groupNameRe.MatchString(g.Name):
			v.add(at, "%s is not a task name: use lowercase letters, digits, '+', '-' and '.', starting with a letter or digit", quote(g.Name))
		}
	}
}

// checkPackageVersion accepts "", "*", an exact Debian version, a Debian
// relation ("= 1.2-3", ">= 1.2", "<< 2", "<=", ">>"), or a version pattern
// with '*' and '?' wildcards ("2.9.*", "1:9.2p1*", as osbuild blueprints
// write them; the newest matching version is installed). It returns a
// problem message, or "".
func checkPackageVersion(version string) string {
	s := strings.TrimSpace(version)
	if s == "" || s == "*" {
		return ""
	}
	op := "="
	for _, o := range []string{">=", "<=", "<<", ">>", "="} {
		if rest, ok := strings.CutPrefix(s, o); ok {
			op, s = o, strings.TrimSpace(rest)
			break
		}
	}
	bad := fmt.Sprintf(`%s is not a Debian version or relation; use "*" for any version, an exact version such as "1:2.3-4", a relation such as ">= 2.3", or a pattern such as "2.3.*"`, quote(version))
	if strings.ContainsAny(s, "*?") {
		if op != "=" {
			return fmt.Sprintf(`%s mixes a relation with a pattern; give either a relation such as ">= 2.3" or a pattern such as "2.3.*"`, quote(version))
		}
		if strings.ContainsAny(s, "[]\\") || !validDebianVersion(strings.NewReplacer("*", "0", "?", "0").Replace(s)) {
			return bad
		}
	}
	if len(s) > 256 || (!strings.ContainsAny(s, "*?") && !validDebianVersion(s)) {
		return bad
	}
	return ""
}

// validDebianVersion checks the syntax [epoch:]upstream[-revision] of
// Debian policy 5.6.12.
func validDebianVersion(s string) bool {
	if epoch, rest, ok := strings.Cut(s, ":"); ok {
		if !digitsRe.MatchString(epoch) || len(epoch) > 9 {
			return false
		}
		s = rest
	}
	upstream := s
	if i := strings.LastIndexByte(s, '-'); i >= 0 {
		upstream = s[:i]
		if !debRevisionRe.MatchString(s[i+1:]) {
			return false
		}
	}
	return debUpstreamRe.MatchString(upstream)
}

// quote prints a user's value in a message: Go-quoted so that control
// characters show, and cut short when long.
func quote(s string) string {
	const limit = 80
	if len(s) > limit {
		cut := limit
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		return fmt.Sprintf("%q…", s[:cut])
	}
	return fmt.Sprintf("%q", s)
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// hasControl reports whether s holds a control character (newline, tab,
// escape, DEL and the like).
func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}
