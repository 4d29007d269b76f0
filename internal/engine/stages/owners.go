package stages

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// maxID is the largest user or group id a stage accepts; 65535 is
// (uid_t)-1 on 16-bit systems.
const maxID = 65534

var accountNameRE = regexp.MustCompile(`^[a-z_][-a-z0-9_]*\$?$`)

// checkAccountName returns an error for a name that is not a Debian user or
// group name (what is "user" or "group"). Such names never reach a command
// line unchecked, so shell metacharacters and option-like names are out.
func checkAccountName(name, what string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty %s name", what)
	case len(name) > 32:
		return fmt.Errorf("%s name %q is %d characters long; the limit is 32", what, name, len(name))
	case !accountNameRE.MatchString(name):
		return fmt.Errorf("%q is not a valid %s name: use lowercase letters, digits, '_' and '-', starting with a letter or '_'", name, what)
	}
	return nil
}

// checkID returns an error for a user or group id outside 0..maxID.
func checkID(id int, what string) error {
	if id < 0 || id > maxID {
		return fmt.Errorf("%s id %d is outside 0-%d", what, id, maxID)
	}
	return nil
}

// account is one entry of the tree's /etc/passwd or /etc/group. For a
// group, UID holds the gid and Home and Shell are empty.
type account struct {
	Name  string
	UID   int
	GID   int
	Home  string
	Shell string
}

// readAccounts parses the tree's /etc/passwd or /etc/group (file is the
// absolute path in the tree). Comment lines and NIS compat entries are
// skipped.
func readAccounts(tree, file string) ([]account, error) {
	host, err := ResolveInTree(tree, file)
	if err != nil {
		return nil, fmt.Errorf("reading %s in the tree: %w", file, err)
	}
	data, err := os.ReadFile(host)
	if err != nil {
		return nil, fmt.Errorf("reading %s in the tree: %w", file, err)
	}
	var out []account
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < 3 {
			return nil, fmt.Errorf("%s line %d in the tree is malformed", file, n)
		}
		id, err := strconv.Atoi(f[2])
		if err != nil {
			return nil, fmt.Errorf("%s line %d in the tree: id %q is not a number", file, n, f[2])
		}
		a := account{Name: f[0], UID: id}
		if len(f) >= 7 {
			if a.GID, err = strconv.Atoi(f[3]); err != nil {
				return nil, fmt.Errorf("%s line %d in the tree: gid %q is not a number", file, n, f[3])
			}
			a.Home, a.Shell = f[5], f[6]
		}
		out = append(out, a)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s in the tree: %w", file, err)
	}
	return out, nil
}

// lookupUser finds a user of the tree by name.
func lookupUser(tree, name string) (account, bool, error) {
	users, err := readAccounts(tree, "/etc/passwd")
	if err != nil {
		return account{}, false, err
	}
	for _, u := range users {
		if u.Name == name {
			return u, true, nil
		}
	}
	return account{}, false, nil
}

// lookupGroup finds a group of the tree by name (ok false when there is
// none) and returns its gid.
func lookupGroup(tree, name string) (gid int, ok bool, err error) {
	groups, err := readAccounts(tree, "/etc/group")
	if err != nil {
		return 0, false, err
	}
	for _, g := range groups {
		if g.Name == name {
			return g.UID, true, nil
		}
	}
	return 0, false, nil
}

// groupByGID finds the name of the tree's group with gid.
func groupByGID(tree string, gid int) (name string, ok bool, err error) {
	groups, err := readAccounts(tree, "/etc/group")
	if err != nil {
		return "", false, err
	}
	for _, g := range groups {
		if g.UID == gid {
			return g.Name, true, nil
		}
	}
	return "", false, nil
}

// resolveOwner turns a file's user and group, each a name of the tree's
// accounts or a numeric id ("" means root), into ids.
func resolveOwner(tree, user, group string) (uid, gid int, err error) {
	if uid, err = ownerID(tree, user, "user"); err != nil {
		return 0, 0, err
	}
	if gid, err = ownerID(tree, group, "group"); err != nil {
		return 0, 0, err
	}
	return uid, gid, nil
}

// ownerID resolves one user or group (what) name or id.
func ownerID(tree, spec, what string) (int, error) {
	if spec == "" {
		return 0, nil
	}
	if spec[0] >= '0' && spec[0] <= '9' {
		id, err := strconv.Atoi(spec)
		if err != nil {
			return 0, fmt.Errorf("%s %q is neither a name nor a number", what, spec)
		}
		return id, checkID(id, what)
	}
	if err := checkAccountName(spec, what); err != nil {
		return 0, err
	}
	if what == "user" {
		u, ok, err := lookupUser(tree, spec)
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, fmt.Errorf("user %q does not exist in the image's /etc/passwd; create it with a user customization or give a numeric uid", spec)
		}
		return u.UID, nil
	}
	gid, ok, err := lookupGroup(tree, spec)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("group %q does not exist in the image's /etc/group; create it with a group customization or give a numeric gid", spec)
	}
	return gid, nil
}
