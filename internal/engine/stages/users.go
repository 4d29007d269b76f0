package stages

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/kiln-project/kiln/internal/manifest"
)

// Users creates and configures accounts inside the tree with the shadow
// tools (useradd, usermod, chpasswd, chage).
//
// A user that does not exist yet is created with its home directory
// (useradd -m) and, unless a shell is given, /bin/bash when the image has
// it. A user whose gid names no group of the image first gets a group of
// its own name with that gid. A user that already exists (root always
// does) is changed with usermod instead: description, home, shell,
// primary group, supplementary groups (added to the ones it has) and
// expiry. Password hashes reach chpasswd on its standard input, never on a
// command line, and never appear in the log. SSH keys are added to
// ~/.ssh/authorized_keys (0600, in a 0700 directory, owned by the user),
// keeping keys already there.
type Users struct{ Opts manifest.Users }

// passwordHashRE matches crypt(3) hashes ("$id$…", legacy 13-character DES)
// optionally locked with a leading "!", and the bare lock markers.
var passwordHashRE = regexp.MustCompile(`^!?(\$[0-9a-z]{1,8}\$[./0-9A-Za-z$=,]{1,500}|[./0-9A-Za-z]{13}|\*|!)?$`)

// Validate implements Stage.
func (s *Users) Validate() error {
	seen := map[string]bool{}
	for i, u := range s.Opts.Users {
		if err := checkUser(u); err != nil {
			return fmt.Errorf("users[%d]: %w", i, err)
		}
		if seen[u.Name] {
			return fmt.Errorf("users[%d]: user %q is listed twice", i, u.Name)
		}
		seen[u.Name] = true
	}
	return nil
}

// Run implements Stage.
func (s *Users) Run(ctx context.Context, env *Env) error {
	if err := s.Validate(); err != nil {
		return err
	}
	for _, u := range s.Opts.Users {
		if err := configureUser(ctx, env, u); err != nil {
			return fmt.Errorf("user %s: %w", u.Name, err)
		}
	}
	return nil
}

// checkUser validates one user's options without echoing its password.
func checkUser(u manifest.User) error {
	if err := checkAccountName(u.Name, "user"); err != nil {
		return err
	}
	if d := u.Description; len(d) > 256 || strings.ContainsAny(d, ":") || hasControl(d) {
		return fmt.Errorf("user %q: the description may not contain ':' or control characters and is at most 256 bytes (it is a passwd field)", u.Name)
	}
	if u.PasswordHash != "" && !passwordHashRE.MatchString(u.PasswordHash) {
		return fmt.Errorf("user %q: the password is not a crypt(3) hash (expected e.g. the output of \"mkpasswd -m yescrypt\"); the value is not shown", u.Name)
	}
	for _, p := range []struct{ what, v string }{{"home", u.Home}, {"shell", u.Shell}} {
		if p.v == "" {
			continue
		}
		if err := checkTreePath(p.v); err != nil {
			return fmt.Errorf("user %q: %s: %w", u.Name, p.what, err)
		}
		if strings.ContainsAny(p.v, ":,= \t") {
			return fmt.Errorf("user %q: %s %q may not contain ':', ',', '=' or blanks", u.Name, p.what, p.v)
		}
	}
	for _, g := range u.Groups {
		if err := checkAccountName(g, "group"); err != nil {
			return fmt.Errorf("user %q: groups: %w", u.Name, err)
		}
	}
	if u.UID != nil {
		if err := checkID(*u.UID, "user"); err != nil {
			return fmt.Errorf("user %q: %w", u.Name, err)
		}
		if (u.Name == "root") != (*u.UID == 0) {
			return fmt.Errorf("user %q: uid %d: uid 0 is root's and only root's", u.Name, *u.UID)
		}
	}
	if u.GID != nil {
		if err := checkID(*u.GID, "group"); err != nil {
			return fmt.Errorf("user %q: %w", u.Name, err)
		}
	}
	if u.ExpireDate != nil && (*u.ExpireDate < 0 || *u.ExpireDate > 1<<31-1) {
		return fmt.Errorf("user %q: expiredate %d is not a day count since 1970-01-01", u.Name, *u.ExpireDate)
	}
	for i, k := range u.SSHKeys {
		if err := checkSSHKey(k); err != nil {
			return fmt.Errorf("user %q: ssh key %d: %w", u.Name, i+1, err)
		}
	}
	return nil
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// checkSSHKey accepts one authorized_keys line: a public key (with
// options and comment) or a comment.
func checkSSHKey(k string) error {
	k = strings.TrimSpace(k)
	switch {
	case k == "":
		return errors.New("empty key")
	case strings.ContainsAny(k, "\r\n"):
		return errors.New("a key is one line")
	case strings.HasPrefix(k, "#"):
		return nil
	case strings.Contains(k, "PRIVATE KEY"):
		return errors.New("this is a private key; give the public key (the .pub file)")
	}
	if _, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(k)); err != nil || len(rest) != 0 {
		return errors.New(`not an SSH public key (expected e.g. "ssh-ed25519 AAAA... user@host")`)
	}
	return nil
}

func configureUser(ctx context.Context, env *Env, u manifest.User) error {
	existing, exists, err := lookupUser(env.Tree, u.Name)
	if err != nil {
		return err
	}
	if exists && u.UID != nil && *u.UID != existing.UID {
		return fmt.Errorf("already exists in the image with uid %d, not %d", existing.UID, *u.UID)
	}
	if u.GID != nil {
		if _, ok, err := groupByGID(env.Tree, *u.GID); err != nil {
			return err
		} else if !ok {
			if err := createGroup(ctx, env, u.Name, u.GID); err != nil {
				return err
			}
		}
	}
	for _, g := range u.Groups {
		if _, ok, err := lookupGroup(env.Tree, g); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("group %q does not exist in the image; create it with a group customization first", g)
		}
	}
	shell := u.Shell
	if shell == "" && !exists {
		if host, err := ResolveInTree(env.Tree, "/bin/bash"); err == nil {
			if _, err := os.Stat(host); err == nil {
				shell = "/bin/bash"
			}
		}
	}
	if shell != "" {
		host, err := ResolveInTree(env.Tree, shell)
		if err != nil {
			return fmt.Errorf("shell %s: %w", shell, err)
		}
		if _, err := os.Stat(host); err != nil {
			return fmt.Errorf("shell %s does not exist in the image; install the package that provides it", shell)
		}
	}
	var argv []string
	if exists {
		argv = []string{"/usr/sbin/usermod"}
		if u.Home != "" {
			argv = append(argv, "-d", u.Home)
		}
	} else {
		argv = []string{"/usr/sbin/useradd", "-m"}
		if u.UID != nil {
			argv = append(argv, "-u", strconv.Itoa(*u.UID))
		}
		if u.Home != "" {
			if err := ensureParentDir(env.Tree, u.Home); err != nil {
				return err
			}
			argv = append(argv, "-d", u.Home)
		}
	}
	if u.GID != nil {
		argv = append(argv, "-g", strconv.Itoa(*u.GID))
	}
	if len(u.Groups) > 0 {
		if exists {
			argv = append(argv, "-a")
		}
		argv = append(argv, "-G", strings.Join(u.Groups, ","))
	}
	if shell != "" {
		argv = append(argv, "-s", shell)
	}
	if u.Description != "" {
		argv = append(argv, "-c", u.Description)
	}
	if u.ExpireDate != nil {
		day := time.Unix(int64(*u.ExpireDate)*86400, 0).UTC().Format("2006-01-02")
		argv = append(argv, "-e", day)
	}
	if !exists || len(argv) > 1 {
		argv = append(argv, "--", u.Name)
		env.Logf("%s: %s", u.Name, strings.Join(argv, " "))
		if err := env.Chroot(ctx, nil, withEpoch(env, argv)...); err != nil {
			return fmt.Errorf("%s: %w", argv[0], err)
		}
	}
	if u.PasswordHash != "" {
		env.Logf("%s: setting the password hash (not logged)", u.Name)
		if err := env.Chroot(ctx, strings.NewReader(u.Name+":"+u.PasswordHash+"\n"), withEpoch(env, []string{"/usr/sbin/chpasswd", "-e"})...); err != nil {
			return fmt.Errorf("setting the password: %w", err)
		}
	}
	if u.ForcePasswordReset {
		env.Logf("%s: password must be changed at first login", u.Name)
		if err := env.Chroot(ctx, nil, "/usr/bin/chage", "-d", "0", "--", u.Name); err != nil {
			return fmt.Errorf("forcing a password reset: %w", err)
		}
	}
	if len(u.SSHKeys) > 0 {
		if err := addAuthorizedKeys(env, u.Name, u.SSHKeys); err != nil {
			return err
		}
	}
	return nil
}

// withEpoch prefixes argv so that the shadow tools date the accounts'
// "last password change" from env.Epoch rather than the build's clock,
// which keeps /etc/shadow reproducible.
func withEpoch(env *Env, argv []string) []string {
	if env.Epoch.IsZero() {
		return argv
	}
	return append([]string{"/usr/bin/env", "SOURCE_DATE_EPOCH=" + strconv.FormatInt(env.Epoch.Unix(), 10)}, argv...)
}

// ensureParentDir creates the missing parents of the absolute path p in the
// tree (0755, root), never leaving the tree.
func ensureParentDir(tree, p string) error {
	host, err := ResolveInTree(tree, path.Dir(p))
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if err := os.MkdirAll(host, 0o755); err != nil {
		return fmt.Errorf("creating the parents of %s: %w", p, err)
	}
	return nil
}

// addAuthorizedKeys adds keys to the user's ~/.ssh/authorized_keys, with
// the user's ids read from the tree. A symbolic link at ~/.ssh or at the
// file is refused: following it would hand another file to the user.
func addAuthorizedKeys(env *Env, name string, keys []string) error {
	acct, ok, err := lookupUser(env.Tree, name)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("not found in the image's /etc/passwd after it was created")
	}
	if !path.IsAbs(acct.Home) || acct.Home == "/" || acct.Home == "/nonexistent" {
		return fmt.Errorf("its home directory %q cannot hold SSH keys; give the user a home", acct.Home)
	}
	home, err := ResolveInTree(env.Tree, acct.Home)
	if err != nil {
		return fmt.Errorf("home %s: %w", acct.Home, err)
	}
	if fi, err := os.Stat(home); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(home, 0o700); err != nil {
			return fmt.Errorf("creating home %s: %w", acct.Home, err)
		}
		if err := setOwnerMode(home, acct.UID, acct.GID, 0o700); err != nil {
			return fmt.Errorf("home %s: %w", acct.Home, err)
		}
	} else if err != nil {
		return fmt.Errorf("home %s: %w", acct.Home, err)
	} else if !fi.IsDir() {
		return fmt.Errorf("home %s is not a directory in the image", acct.Home)
	}
	sshDir := filepath.Join(home, ".ssh")
	switch fi, err := os.Lstat(sshDir); {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Mkdir(sshDir, 0o700); err != nil {
			return fmt.Errorf("creating %s/.ssh: %w", acct.Home, err)
		}
	case err != nil:
		return fmt.Errorf("%s/.ssh: %w", acct.Home, err)
	case !fi.IsDir():
		return fmt.Errorf("%s/.ssh in the image is not a directory (a symbolic link or file is not followed)", acct.Home)
	}
	if err := setOwnerMode(sshDir, acct.UID, acct.GID, 0o700); err != nil {
		return fmt.Errorf("%s/.ssh: %w", acct.Home, err)
	}
	file := filepath.Join(sshDir, "authorized_keys")
	var lines []string
	switch fi, err := os.Lstat(file); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("%s/.ssh/authorized_keys: %w", acct.Home, err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s/.ssh/authorized_keys in the image is not a regular file (a symbolic link is not followed)", acct.Home)
	default:
		old, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("%s/.ssh/authorized_keys: %w", acct.Home, err)
		}
		for _, l := range strings.Split(string(old), "\n") {
			if strings.TrimSpace(l) != "" {
				lines = append(lines, l)
			}
		}
	}
	for _, k := range keys {
		if k = strings.TrimSpace(k); !slices.Contains(lines, k) {
			lines = append(lines, k)
		}
	}
	inTree := path.Join(acct.Home, ".ssh", "authorized_keys")
	if err := WriteFile(env.Tree, inTree, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	if err := setOwnerMode(file, acct.UID, acct.GID, 0o600); err != nil {
		return fmt.Errorf("%s: %w", inTree, err)
	}
	env.Logf("%s: %d SSH key(s) in %s", name, len(keys), inTree)
	return nil
}
