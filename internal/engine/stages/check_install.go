package stages

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/manifest"
)

// CheckInstall checks the installed packages against the blueprint's
// units, groups and shells (see manifest.CheckInstall). It only reads the
// tree, resolving every path inside it (a link never leads out), and runs
// nothing. Its error is a blueprint.Errors with every problem at once, so
// the problems reach the user as field errors.
type CheckInstall struct{ Opts manifest.CheckInstall }

// unitSearchDirs are where systemd looks for unit files, most specific
// first.
var unitSearchDirs = []string{"/etc/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}

// Validate implements Stage: every check names what it checks and the
// field it reports at.
func (s *CheckInstall) Validate() error {
	var errs []error
	for i, u := range s.Opts.Units {
		if err := checkUnitName(u.Unit); err != nil {
			errs = append(errs, fmt.Errorf("check install: units[%d]: %w", i, err))
		}
		if u.Field == "" {
			errs = append(errs, fmt.Errorf("check install: units[%d]: no field", i))
		}
	}
	for i, g := range s.Opts.Groups {
		if err := checkAccountName(g.Group, "group"); err != nil {
			errs = append(errs, fmt.Errorf("check install: groups[%d]: %w", i, err))
		}
		if g.Field == "" {
			errs = append(errs, fmt.Errorf("check install: groups[%d]: no field", i))
		}
	}
	for i, sh := range s.Opts.Shells {
		if !path.IsAbs(sh.Shell) || path.Clean(sh.Shell) != sh.Shell || strings.ContainsAny(sh.Shell, "\x00\n:") {
			errs = append(errs, fmt.Errorf("check install: shells[%d]: %q is not a clean absolute path", i, sh.Shell))
		}
		if sh.Field == "" {
			errs = append(errs, fmt.Errorf("check install: shells[%d]: no field", i))
		}
	}
	return errors.Join(errs...)
}

// Run implements Stage.
func (s *CheckInstall) Run(_ context.Context, env *Env) error {
	if err := s.Validate(); err != nil {
		return err
	}
	var problems blueprint.Errors
	add := func(field, format string, args ...any) {
		problems = append(problems, blueprint.Problem{Path: field, Message: fmt.Sprintf(format, args...)})
	}
	for _, u := range s.Opts.Units {
		ok, err := unitExists(env.Tree, u.Unit)
		if err != nil {
			return err
		}
		if !ok {
			add(u.Field, "unit %s is not in the image: no package installed ships it; add the package that does to packages, or drop the unit", unitFileName(u.Unit))
		}
	}
	if len(s.Opts.Groups) > 0 {
		// A tree without /etc/group has no groups at all.
		groups, err := readAccounts(env.Tree, "/etc/group")
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		for _, g := range s.Opts.Groups {
			if !containsAccount(groups, g.Group) {
				add(g.Field, "%s", missingGroupMessage(g.Group))
			}
		}
	}
	if len(s.Opts.Shells) > 0 {
		listed, err := readShells(env.Tree)
		if err != nil {
			return err
		}
		for _, sh := range s.Opts.Shells {
			if msg := shellProblem(env.Tree, sh.Shell, listed); msg != "" {
				add(sh.Field, "%s", msg)
			}
		}
	}
	if len(problems) > 0 {
		blueprint.SortProblems(problems)
		return problems
	}
	env.Logf("checked %d units, %d groups and %d shells against the installed packages", len(s.Opts.Units), len(s.Opts.Groups), len(s.Opts.Shells))
	return nil
}

// unitFileName is the file of a unit: a name without a type suffix is a
// service, as systemctl reads it.
func unitFileName(unit string) string {
	for _, suffix := range []string{".service", ".socket", ".target", ".timer", ".mount", ".automount", ".swap", ".path", ".slice", ".scope", ".device"} {
		if strings.HasSuffix(unit, suffix) {
			return unit
		}
	}
	return unit + ".service"
}

// unitExists says whether a unit file for unit is in one of systemd's unit
// directories of the tree. An instance ("getty@tty1.service") exists when
// its template ("getty@.service") does.
func unitExists(tree, unit string) (bool, error) {
	name := unitFileName(unit)
	names := []string{name}
	if at := strings.Index(name, "@"); at >= 0 {
		if dot := strings.LastIndex(name, "."); dot > at+1 {
			names = append(names, name[:at+1]+name[dot:])
		}
	}
	for _, dir := range unitSearchDirs {
		for _, n := range names {
			host, err := ResolveInTree(tree, path.Join(dir, n))
			if err != nil {
				return false, fmt.Errorf("looking for unit %s in the tree: %w", n, err)
			}
			if _, err := os.Lstat(host); err == nil {
				return true, nil
			} else if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrInvalid) {
				return false, fmt.Errorf("looking for unit %s in the tree: %w", n, err)
			}
		}
	}
	return false, nil
}

// missingGroupMessage says what to do about a group the image lacks. The
// administrators' group of Fedora and RHEL, wheel, is sudo on Debian.
func missingGroupMessage(group string) string {
	if group == "wheel" {
		return `group "wheel" does not exist on Debian: its administrators' group is "sudo" (members may use sudo); use "sudo", or create "wheel" in customizations.group`
	}
	return fmt.Sprintf("group %q does not exist in the image: create it in customizations.group, or add the package that creates it", group)
}

func containsAccount(accounts []account, name string) bool {
	for _, a := range accounts {
		if a.Name == name {
			return true
		}
	}
	return false
}

// readShells reads the tree's /etc/shells: the login shells it allows. A
// missing file lists none.
func readShells(tree string) (map[string]bool, error) {
	host, err := ResolveInTree(tree, "/etc/shells")
	if err != nil {
		return nil, fmt.Errorf("reading /etc/shells in the tree: %w", err)
	}
	data, err := os.ReadFile(host)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading /etc/shells in the tree: %w", err)
	}
	listed := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			listed[line] = true
		}
	}
	return listed, sc.Err()
}

// shellProblem says what is wrong with shell as a login shell of the
// tree, or returns "".
func shellProblem(tree, shell string, listed map[string]bool) string {
	host, err := ResolveInTree(tree, shell)
	if err != nil {
		return fmt.Sprintf("shell %s cannot be resolved in the image: %v", shell, err)
	}
	fi, err := os.Stat(host)
	switch {
	case err != nil:
		return fmt.Sprintf("shell %s is not in the image: add the package that ships it to packages, or use /bin/bash", shell)
	case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
		return fmt.Sprintf("shell %s is not an executable file in the image", shell)
	case !listed[shell]:
		return fmt.Sprintf("shell %s is not listed in /etc/shells of the image, so the user could not log in: use a shell listed there, such as /bin/bash", shell)
	}
	return ""
}
