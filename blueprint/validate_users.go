package blueprint

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"golang.org/x/crypto/ssh"
)

// maxID is the largest user or group id accepted. 65535 is (uid_t)-1 on
// 16-bit systems and reserved; ids above 65535 are left to containers and
// dynamic allocation.
const maxID = 65534

var (
	accountNameRe = regexp.MustCompile(`^[a-z_][-a-z0-9_]*\$?$`)
	absPathRe     = regexp.MustCompile(`^[A-Za-z0-9/._+@:,=~-]+$`)
)

// checkAccountName returns a problem message for a name that is not a
// Debian user or group name, or "".
func checkAccountName(name, what string) string {
	switch {
	case name == "":
		return fmt.Sprintf("empty; give a %s name such as \"admin\"", what)
	case len(name) > 32:
		return fmt.Sprintf("%s is %d characters long; a %s name has at most 32", quote(name), len(name), what)
	case !accountNameRe.MatchString(name):
		return fmt.Sprintf("%s is not a valid %s name: use lowercase letters, digits, '_' and '-', starting with a letter or '_'", quote(name), what)
	}
	return ""
}

// checkID returns a problem message for an id outside 0..maxID, or "".
func checkID(id int64) string {
	if id < 0 || id > maxID {
		return fmt.Sprintf("%d is outside 0-%d", id, maxID)
	}
	return ""
}

// checkSystemPath returns a problem message for a path that is not an
// absolute, canonical path of plain characters, or "".
func checkSystemPath(p string) string {
	switch {
	case p == "":
		return "empty; give an absolute path"
	case !strings.HasPrefix(p, "/"):
		return fmt.Sprintf("%s is not an absolute path; start it with /", quote(p))
	case len(p) > 1024:
		return fmt.Sprintf("is %d characters long; the limit is 1024", len(p))
	case !absPathRe.MatchString(p):
		return fmt.Sprintf("%s may contain only letters, digits and / . _ - + @ : , = ~", quote(p))
	case path.Clean(p) != p:
		return fmt.Sprintf("%s is not in canonical form (no '..', '.', '//' or trailing '/'); write %s", quote(p), quote(path.Clean(p)))
	}
	return ""
}

// checkSSHKeys parses every non-empty line of an authorized_keys style
// value and returns a problem message, or "".
func checkSSHKeys(keys string) string {
	const fix = `expected one public key a line, e.g. "ssh-ed25519 AAAA... user@host"`
	if strings.TrimSpace(keys) == "" {
		return "empty; " + fix + ", or leave the field out"
	}
	n := 0
	for i, line := range strings.Split(keys, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		n++
		if n > MaxSSHKeysPerUser {
			return fmt.Sprintf("holds more than %d keys", MaxSSHKeysPerUser)
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		if _, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(line)); err != nil || len(rest) != 0 {
			if strings.Contains(line, "PRIVATE KEY") {
				return fmt.Sprintf("line %d is a private key; give the public key (the .pub file), and treat the private key as leaked", i+1)
			}
			return fmt.Sprintf("line %d is not an SSH public key (%s)", i+1, fix)
		}
	}
	return ""
}

func (v validator) sshKeys(at string, keys []SSHKeyCustomization) {
	if !v.maxItems(at, len(keys), MaxUsers) {
		return
	}
	for i, k := range keys {
		p := indexPath(at, i)
		if msg := checkAccountName(k.User, "user"); msg != "" {
			v.add(fieldPath(p, "user"), "%s", msg)
		}
		if msg := checkSSHKeys(k.Key); msg != "" {
			v.add(fieldPath(p, "key"), "%s", msg)
		}
	}
}

func (v validator) users(at string, users []UserCustomization) {
	if !v.maxItems(at, len(users), MaxUsers) {
		return
	}
	names := map[string]int{}
	uids := map[int]int{}
	for i, u := range users {
		p := indexPath(at, i)
		if msg := checkAccountName(u.Name, "user"); msg != "" {
			v.add(fieldPath(p, "name"), "%s", msg)
		} else if first, dup := names[u.Name]; dup {
			v.add(fieldPath(p, "name"), "user %s is also defined at %s; define each user once", quote(u.Name), indexPath(at, first))
		} else {
			names[u.Name] = i
		}
		if u.Description != nil {
			if d := *u.Description; len(d) > 256 || strings.ContainsAny(d, ":") || hasControl(d) {
				v.add(fieldPath(p, "description"), "may not contain ':' or control characters such as newlines, and is at most 256 bytes (it is a passwd field)")
			}
		}
		if u.Password != nil {
			v.password(fieldPath(p, "password"), *u.Password)
		}
		if u.Key != nil {
			if msg := checkSSHKeys(*u.Key); msg != "" {
				v.add(fieldPath(p, "key"), "%s", msg)
			}
		}
		if u.Home != nil {
			if msg := checkSystemPath(*u.Home); msg != "" {
				v.add(fieldPath(p, "home"), "%s", msg)
			}
		}
		if u.Shell != nil {
			if msg := checkSystemPath(*u.Shell); msg != "" {
				v.add(fieldPath(p, "shell"), "%s", msg)
			}
		}
		gp := fieldPath(p, "groups")
		if v.maxItems(gp, len(u.Groups), MaxGroups) {
			for j, g := range u.Groups {
				if msg := checkAccountName(g, "group"); msg != "" {
					v.add(indexPath(gp, j), "%s", msg)
				}
			}
		}
		if u.UID != nil {
			uid := *u.UID
			switch {
			case checkID(int64(uid)) != "":
				v.add(fieldPath(p, "uid"), "%s", checkID(int64(uid)))
			case u.Name == "root" && uid != 0:
				v.add(fieldPath(p, "uid"), "root's uid is 0; leave uid out for root")
			case u.Name != "root" && uid == 0:
				v.add(fieldPath(p, "uid"), "uid 0 is root's; give another uid or leave it out")
			default:
				if first, dup := uids[uid]; dup {
					v.add(fieldPath(p, "uid"), "uid %d is also given to %s; give each user its own uid", uid, indexPath(at, first))
				} else {
					uids[uid] = i
				}
			}
		}
		if u.GID != nil {
			if msg := checkID(int64(*u.GID)); msg != "" {
				v.add(fieldPath(p, "gid"), "%s", msg)
			}
		}
		if u.ExpireDate != nil && (*u.ExpireDate < 0 || *u.ExpireDate > 1<<31-1) {
			v.add(fieldPath(p, "expiredate"), "%d is not a day count; give the days since 1970-01-01 when the account expires (0 or more)", *u.ExpireDate)
		}
	}
}

// password checks a password field without ever repeating its value.
func (v validator) password(at, pw string) {
	switch classifyPassword(pw) {
	case passwordHash:
		return
	case passwordMalformed:
		v.add(at, "starts like a crypt(3) hash but is malformed; give a complete hash (e.g. from \"mkpasswd -m sha-512\") or the password itself")
		return
	}
	switch {
	case pw == "":
		v.add(at, "empty; give a password or a crypt(3) hash, or leave the field out to have no password")
	case isLockMarker(pw):
		v.add(at, "is a lock marker, not a password; leave the field out to have no password")
	case len(pw) > MaxPasswordLength:
		v.add(at, "is longer than %d bytes", MaxPasswordLength)
	case strings.ContainsAny(pw, "\n\r"):
		v.add(at, "contains a line break; a password is one line")
	case !v.plaintextOK:
		v.add(at, "is not a crypt(3) hash; Parse hashes plaintext passwords, and blueprints built in code call HashPasswords before Validate")
	}
}

func (v validator) groups(at string, groups []GroupCustomization) {
	if !v.maxItems(at, len(groups), MaxGroups) {
		return
	}
	names := map[string]int{}
	gids := map[int]int{}
	for i, g := range groups {
		p := indexPath(at, i)
		if msg := checkAccountName(g.Name, "group"); msg != "" {
			v.add(fieldPath(p, "name"), "%s", msg)
		} else if first, dup := names[g.Name]; dup {
			v.add(fieldPath(p, "name"), "group %s is also defined at %s; define each group once", quote(g.Name), indexPath(at, first))
		} else {
			names[g.Name] = i
		}
		if g.GID != nil {
			if msg := checkID(int64(*g.GID)); msg != "" {
				v.add(fieldPath(p, "gid"), "%s", msg)
			} else if first, dup := gids[*g.GID]; dup {
				v.add(fieldPath(p, "gid"), "gid %d is also given to %s; give each group its own gid", *g.GID, indexPath(at, first))
			} else {
				gids[*g.GID] = i
			}
		}
	}
}
