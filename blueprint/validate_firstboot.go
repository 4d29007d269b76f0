package blueprint

import (
	"regexp"
	"strconv"
	"strings"
)

// MaxFirstbootScripts caps customizations.firstboot.scripts.
const MaxFirstbootScripts = 64

// firstbootNameRe is what a first-boot script's name may be: it becomes
// part of a file and a unit name.
var firstbootNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

// firstbootTypeRefusals explains the first-boot script types of osbuild
// that register the system with a Red Hat service.
var firstbootTypeRefusals = map[string]string{
	"satellite": "registers the system with Red Hat Satellite, which Debian-family images cannot use",
	"aap":       "calls back Red Hat Ansible Automation Platform's job template to register the system, which Debian-family images do not support",
}

// FirstbootScriptName is the name a first-boot script goes by: its own,
// or "script-N" (N counting from 1) when it has none.
func FirstbootScriptName(s FirstbootScript, index int) string {
	if s.Name != "" {
		return s.Name
	}
	return "script-" + strconv.Itoa(index+1)
}

func (v validator) firstboot(path string, fb *FirstbootCustomization) {
	if fb == nil {
		return
	}
	at := fieldPath(path, "scripts")
	if len(fb.Scripts) == 0 {
		v.add(at, `required; list at least one script, e.g. [[customizations.firstboot.scripts]] with type = "custom" and contents`)
		return
	}
	if !v.maxItems(at, len(fb.Scripts), MaxFirstbootScripts) {
		return
	}
	seen := map[string]int{}
	for i, s := range fb.Scripts {
		sp := indexPath(at, i)
		switch s.Type {
		case "custom":
		case "":
			v.add(fieldPath(sp, "type"), `required; the only type Debian-family images can run is "custom"`)
		default:
			if why, ok := firstbootTypeRefusals[s.Type]; ok {
				v.add(fieldPath(sp, "type"), `a %q script %s; use a script of type "custom"`, s.Type, why)
			} else {
				v.add(fieldPath(sp, "type"), `%s is not a first-boot script type; use "custom"`, quote(s.Type))
			}
		}
		if s.Name != "" {
			if len(s.Name) > 64 || !firstbootNameRe.MatchString(s.Name) {
				v.add(fieldPath(sp, "name"), "%s is not a script name: use up to 64 letters, digits, '-' and '_', starting with a letter or digit", quote(s.Name))
			}
		}
		name := FirstbootScriptName(s, i)
		if j, dup := seen[name]; dup {
			v.add(fieldPath(sp, "name"), "%s is also the name of customizations.firstboot.scripts[%d]; give each script its own name", quote(name), j)
		} else {
			seen[name] = i
		}
		if s.Type == "custom" {
			switch {
			case strings.TrimSpace(s.Contents) == "":
				v.add(fieldPath(sp, "contents"), `required for a "custom" script; give the script, e.g. "#!/bin/sh\necho hello"`)
			case len(s.Contents) > MaxFileDataSize:
				v.add(fieldPath(sp, "contents"), "is %d bytes long; the limit is %d", len(s.Contents), MaxFileDataSize)
			case strings.ContainsRune(s.Contents, 0):
				v.add(fieldPath(sp, "contents"), "contains a NUL byte; a script is text")
			}
		}
		for _, order := range []struct {
			name  string
			units []string
		}{{"after", s.After}, {"before", s.Before}} {
			op := fieldPath(sp, order.name)
			if !v.maxItems(op, len(order.units), MaxListItems) {
				continue
			}
			for k, u := range order.units {
				if _, msg := canonicalUnit(u); msg != "" {
					v.add(indexPath(op, k), "%s", msg)
				}
			}
		}
	}
}

// CanonicalUnit returns a unit name with the type systemctl gives a bare
// name ("nginx" is "nginx.service"); a name that is not a valid unit name
// comes back as it is.
func CanonicalUnit(name string) string {
	unit, msg := canonicalUnit(name)
	if msg != "" {
		return name
	}
	return unit
}
