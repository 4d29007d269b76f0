package blueprint

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// checkCustomPath returns a problem message for a path where a blueprint may
// not create a file or directory, or "". Such paths are managed by the
// system (/etc/passwd and friends are written from customizations.user),
// are not on disk (/proc, /run), or belong to packages (/usr outside
// /usr/local, /boot).
func checkCustomPath(p string) string {
	if msg := checkSystemPath(p); msg != "" {
		return msg
	}
	switch p {
	case "/":
		return `"/" is the root directory and already exists; give a path below it`
	case "/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/fstab":
		return quote(p) + " is generated from the blueprint's users, groups and filesystems; use customizations.user, group or filesystem instead"
	case "/var/run", "/var/lock":
		return quote(p) + " is a link to " + map[string]string{"/var/run": "/run", "/var/lock": "/run/lock"}[p] + " in Debian, which is not on disk; a file or directory here would replace the link and break the system (create what is needed under /run at boot with a file in /etc/tmpfiles.d)"
	case "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media", "/mnt",
		"/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", "/usr/local":
		return quote(p) + " is a standard system directory and already exists; give a path below it"
	}
	for _, root := range []string{"/proc", "/sys", "/dev", "/run", "/var/run", "/var/lock", "/boot", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"} {
		if strings.HasPrefix(p, root+"/") {
			return fmt.Sprintf("%s is under %s, which is not writable by blueprints (it is virtual, or belongs to the system's packages)", quote(p), root)
		}
	}
	if strings.HasPrefix(p, "/usr/") && !strings.HasPrefix(p, "/usr/local/") {
		return quote(p) + " is under /usr, which belongs to the system's packages; use /usr/local, /etc or /opt"
	}
	return ""
}

// checkMode returns a problem message for a mode that is not an octal
// permission value ("0644", "755", "0o2775"), or "".
func checkMode(mode string) string {
	const fix = `give the permissions as an octal string such as "0644" or "0755"`
	digits := strings.TrimPrefix(mode, "0o")
	if digits == "" || len(digits) > 5 {
		return quote(mode) + " is not a mode; " + fix
	}
	n, err := strconv.ParseUint(digits, 8, 32)
	if err != nil {
		return quote(mode) + " is not an octal mode; " + fix
	}
	if n > 0o7777 {
		return quote(mode) + " has bits above 07777 (file type bits are not allowed); " + fix
	}
	return ""
}

// checkSpecialBits returns a problem message for a valid mode that sets the
// setuid, setgid or sticky bit where a blueprint may not, or "". A
// blueprint is hostile input: a setuid or setgid file written by it would
// be a privileged program planted by whoever submitted the blueprint, and
// the sticky bit means nothing on a file. On a directory, setgid is
// allowed: it only makes what is created inside belong to the directory's
// group; it runs nothing and grants no privilege, and the kernel drops the
// setgid bit of a file created there by someone outside that group.
// Setuid means nothing on a directory, and a directory that needs the
// sticky bit is world-writable, which the package or tmpfiles.d entry that
// owns it should set up.
func checkSpecialBits(mode string, dir bool) string {
	n, err := strconv.ParseUint(strings.TrimPrefix(mode, "0o"), 8, 32)
	if err != nil {
		return ""
	}
	refused, why := uint64(0o7000), "kiln refuses setuid, setgid and sticky modes in blueprints because anyone who can submit a blueprint could plant a privileged binary"
	if dir {
		refused, why = 0o5000, "kiln refuses setuid and sticky modes on directories (setgid is allowed: it grants no privilege)"
	}
	for _, b := range []struct {
		bit  uint64
		name string
	}{{0o4000, "setuid"}, {0o2000, "setgid"}, {0o1000, "sticky"}} {
		if n&b.bit != 0 && refused&b.bit != 0 {
			return fmt.Sprintf("%s sets the %s bit; %s; use %q", quote(mode), b.name, why, fmt.Sprintf("%04o", n&^refused))
		}
	}
	return ""
}

// owner checks the user or group of a file or directory.
func (v validator) owner(at string, o Owner, what string) {
	if o.ID != nil {
		if msg := checkID(*o.ID); msg != "" {
			v.add(at, "%s", msg)
		}
		return
	}
	if o.Name != "" {
		if msg := checkAccountName(o.Name, what); msg != "" {
			v.add(at, "%s", msg)
		}
	}
}

func (v validator) directoriesAndFiles(parent string, dirs []DirectoryCustomization, files []FileCustomization) {
	dp, fp := fieldPath(parent, "directories"), fieldPath(parent, "files")
	if !v.maxItems(dp, len(dirs), MaxFiles) || !v.maxItems(fp, len(files), MaxFiles) {
		return
	}
	dirAt := map[string]string{}
	for i, d := range dirs {
		p := indexPath(dp, i)
		v.ownership(p, d.User, d.Group, d.Mode, true)
		at := fieldPath(p, "path")
		if msg := checkCustomPath(d.Path); msg != "" {
			v.add(at, "%s", msg)
			continue
		}
		if first, dup := dirAt[d.Path]; dup {
			v.add(at, "%s is also declared by %s; declare each directory once", quote(d.Path), first)
			continue
		}
		dirAt[d.Path] = at
	}

	fileAt := map[string]string{}
	total := 0
	for i, f := range files {
		p := indexPath(fp, i)
		v.ownership(p, f.User, f.Group, f.Mode, false)
		if len(f.Data) > MaxFileDataSize {
			v.add(fieldPath(p, "data"), "is %d bytes; a file's data may be at most %d bytes (1 MiB)", len(f.Data), MaxFileDataSize)
		}
		total += len(f.Data)
		at := fieldPath(p, "path")
		if msg := checkCustomPath(f.Path); msg != "" {
			v.add(at, "%s", msg)
			continue
		}
		if first, dup := fileAt[f.Path]; dup {
			v.add(at, "%s is also declared by %s; declare each file once", quote(f.Path), first)
			continue
		}
		if dir, isDir := dirAt[f.Path]; isDir {
			v.add(at, "%s is also declared as a directory by %s; a path is a file or a directory", quote(f.Path), dir)
			continue
		}
		fileAt[f.Path] = at
	}
	if total > MaxTotalFileDataSize {
		v.add(fp, "hold %d bytes of data in all; the limit is %d bytes (3 MiB)", total, MaxTotalFileDataSize)
	}

	// Nothing may be created inside a path that is declared as a file.
	for i, f := range files {
		v.underFile(fieldPath(indexPath(fp, i), "path"), f.Path, fileAt)
	}
	for i, d := range dirs {
		v.underFile(fieldPath(indexPath(dp, i), "path"), d.Path, fileAt)
	}
}

// underFile reports a path whose parent directory is declared as a file.
func (v validator) underFile(at, p string, fileAt map[string]string) {
	if !strings.HasPrefix(p, "/") {
		return
	}
	for dir := path.Dir(p); dir != "/" && dir != "."; dir = path.Dir(dir) {
		if first, ok := fileAt[dir]; ok {
			v.add(at, "%s is inside %s, which %s declares as a file", quote(p), quote(dir), first)
			return
		}
	}
}

// ownership checks the user, group and mode of the directory (dir) or file
// at p.
func (v *validator) ownership(p string, user, group Owner, mode string, dir bool) {
	v.owner(fieldPath(p, "user"), user, "user")
	v.owner(fieldPath(p, "group"), group, "group")
	if mode != "" {
		msg := checkMode(mode)
		if msg == "" {
			msg = checkSpecialBits(mode, dir)
		}
		if msg != "" {
			v.add(fieldPath(p, "mode"), "%s", msg)
		}
	}
}
