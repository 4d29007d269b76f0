package stages

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/kiln-project/kiln/internal/manifest"
)

// firstbootStampDir holds a stamp file per script that has run.
const firstbootStampDir = "/var/lib/kiln-firstboot"

var (
	// firstbootNameRe is a script's name: part of a file and a unit name.
	firstbootNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	// firstbootUnitRe is a unit name with its type, as After= and
	// Before= take it: one line, nothing a unit file would read as more.
	firstbootUnitRe = regexp.MustCompile(`^[A-Za-z0-9_:][A-Za-z0-9:_.\\@-]*\.[a-z]+$`)
)

// Firstboot installs the first-boot scripts and their enabled units; see
// manifest.Firstboot.
type Firstboot struct{ Opts manifest.Firstboot }

// Validate implements Stage.
func (s *Firstboot) Validate() error {
	if len(s.Opts.Scripts) == 0 {
		return fmt.Errorf("firstboot scripts: none given")
	}
	seen := map[string]bool{}
	for i, sc := range s.Opts.Scripts {
		if !firstbootNameRe.MatchString(sc.Name) {
			return fmt.Errorf("firstboot scripts[%d]: name %q is not 1 to 64 letters, digits, '-' and '_'", i, sc.Name)
		}
		if seen[sc.Name] {
			return fmt.Errorf("firstboot scripts[%d]: name %q is used twice", i, sc.Name)
		}
		seen[sc.Name] = true
		if strings.TrimSpace(sc.Contents) == "" {
			return fmt.Errorf("firstboot scripts[%d]: contents are empty", i)
		}
		for _, u := range append(append([]string{}, sc.After...), sc.Before...) {
			if !firstbootUnitRe.MatchString(u) || strings.ContainsAny(u, "\n\r") {
				return fmt.Errorf("firstboot scripts[%d]: %q is not a unit name with its type, such as \"network-online.target\"", i, u)
			}
		}
	}
	return nil
}

// Run implements Stage.
func (s *Firstboot) Run(_ context.Context, env *Env) error {
	if err := s.Validate(); err != nil {
		return err
	}
	prev := ""
	for i, sc := range s.Opts.Scripts {
		script := firstbootScriptPath(i, sc.Name)
		contents := sc.Contents
		if !strings.HasPrefix(contents, "#!") {
			contents = "#!/bin/sh\n" + contents
		}
		if !strings.HasSuffix(contents, "\n") {
			contents += "\n"
		}
		if err := WriteFile(env.Tree, script, []byte(contents), 0o755); err != nil {
			return err
		}
		unit := firstbootUnitName(sc.Name)
		unitPath := "/etc/systemd/system/" + unit
		if err := WriteFile(env.Tree, unitPath, []byte(firstbootUnit(sc, script, prev)), 0o644); err != nil {
			return err
		}
		if err := enableUnit(env.Tree, unitPath, "multi-user.target"); err != nil {
			return err
		}
		env.Logf("installed first-boot script %s, run by %s", script, unit)
		prev = unit
	}
	return nil
}

// firstbootScriptPath is where the index-th script named name goes.
func firstbootScriptPath(index int, name string) string {
	return fmt.Sprintf("%s/%02d-%s", manifest.FirstbootScriptDir, index+1, name)
}

// firstbootUnitName is the unit that runs the script named name.
func firstbootUnitName(name string) string {
	return path.Base(manifest.FirstbootUnitPrefix) + name + ".service"
}

// firstbootUnit is the unit that runs one script once: it waits for the
// network and for the script before it (prev, "" for the first), and
// skips itself once the script's stamp file exists.
func firstbootUnit(sc manifest.FirstbootScript, script, prev string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[Unit]\nDescription=First-boot script %s\n", sc.Name)
	b.WriteString("Wants=network-online.target\nAfter=network-online.target\n")
	if prev != "" {
		// Requires: when the script before fails, this one does not run.
		fmt.Fprintf(&b, "Requires=%s\nAfter=%s\n", prev, prev)
	}
	for _, u := range sc.After {
		fmt.Fprintf(&b, "After=%s\n", u)
	}
	for _, u := range sc.Before {
		fmt.Fprintf(&b, "Before=%s\n", u)
	}
	stamp := path.Join(firstbootStampDir, sc.Name+".done")
	fmt.Fprintf(&b, "ConditionPathExists=!%s\n\n", stamp)
	b.WriteString("[Service]\nType=oneshot\nRemainAfterExit=yes\nStateDirectory=kiln-firstboot\n")
	ignore := ""
	if sc.IgnoreFailure {
		ignore = "-"
	}
	fmt.Fprintf(&b, "ExecStart=%s%s\n", ignore, script)
	fmt.Fprintf(&b, "ExecStartPost=/bin/touch %s\n\n", stamp)
	b.WriteString("[Install]\nWantedBy=multi-user.target\n")
	return b.String()
}

// enableUnit links the unit at unitPath into target's wants directory, as
// "systemctl enable" does for WantedBy=target.
func enableUnit(tree, unitPath, target string) error {
	wants := "/etc/systemd/system/" + target + ".wants/" + path.Base(unitPath)
	link, err := resolveEntry(tree, wants)
	if err != nil {
		return fmt.Errorf("%s: %w", wants, err)
	}
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return fmt.Errorf("%s: %w", wants, err)
	}
	if err := os.RemoveAll(link); err != nil {
		return fmt.Errorf("%s: %w", wants, err)
	}
	if err := os.Symlink(unitPath, link); err != nil {
		return fmt.Errorf("enabling %s: %w", unitPath, err)
	}
	return nil
}
