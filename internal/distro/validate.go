package distro

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"unicode"

	"github.com/kiln-project/kiln/blueprint"
)

// blueprintOption is an option an image type may support: its TOML path
// in a blueprint and whether a blueprint (with its customizations, never
// nil) sets it.
type blueprintOption struct {
	name string
	set  func(bp *blueprint.Blueprint, c *blueprint.Customizations) bool
}

// blueprintOptions are the blueprint options an image type may declare in
// supported_options, by their TOML paths, each with how to tell that a
// blueprint sets it. They name what a build can do with any blueprint, so
// they are the blueprint's own fields: the API carries a subset of them,
// which apimodel maps.
var blueprintOptions = []blueprintOption{
	{"packages", func(bp *blueprint.Blueprint, _ *blueprint.Customizations) bool { return len(bp.Packages) > 0 }},
	{"modules", func(bp *blueprint.Blueprint, _ *blueprint.Customizations) bool { return len(bp.Modules) > 0 }},
	{"groups", func(bp *blueprint.Blueprint, _ *blueprint.Customizations) bool { return len(bp.Groups) > 0 }},
	{"customizations.hostname", func(_ *blueprint.Blueprint, c *blueprint.Customizations) bool { return c.Hostname != nil }},
	{"customizations.kernel", func(_ *blueprint.Blueprint, c *blueprint.Customizations) bool { return c.Kernel != nil }},
	{"customizations.user", func(_ *blueprint.Blueprint, c *blueprint.Customizations) bool { return len(c.User) > 0 }},
	{"customizations.group", func(_ *blueprint.Blueprint, c *blueprint.Customizations) bool { return len(c.Group) > 0 }},
	{"customizations.sshkey", func(_ *blueprint.Blueprint, c *blueprint.Customizations) bool { return len(c.SSHKey) > 0 }},
	{"customizations.timezone", func(_ *blueprint.Blueprint, c *blueprint.Customizations) bool { return c.Timezone != nil }},
	{"customizations.locale", func(_ *blueprint.Blueprint, c *blueprint.Customizations) bool { return c.Locale != nil }},
	{"customizations.firewall", func(_ *blueprint.Blueprint, c *blueprint.Customizations) bool { return c.Firewall != nil }},
	{"customizations.services", func(_ *blueprint.Blueprint, c *blueprint.Customizations) bool { return c.Services != nil }},
	{"customizations.filesystem", func(_ *blueprint.Blueprint, c *blueprint.Customizations) bool { return len(c.Filesystem) > 0 }},
	{"customizations.disk", func(_ *blueprint.Blueprint, c *blueprint.Customizations) bool { return c.Disk != nil }},
	{"customizations.directories", func(_ *blueprint.Blueprint, c *blueprint.Customizations) bool { return len(c.Directories) > 0 }},
	{"customizations.files", func(_ *blueprint.Blueprint, c *blueprint.Customizations) bool { return len(c.Files) > 0 }},
	{"customizations.repositories", func(_ *blueprint.Blueprint, c *blueprint.Customizations) bool { return len(c.Repositories) > 0 }},
	{"customizations.cacerts", func(_ *blueprint.Blueprint, c *blueprint.Customizations) bool { return c.CACerts != nil }},
	{"customizations.firstboot", func(_ *blueprint.Blueprint, c *blueprint.Customizations) bool { return c.Firstboot != nil }},
	{"customizations.sshd", func(_ *blueprint.Blueprint, c *blueprint.Customizations) bool { return c.SSHD != nil }},
}

// customizations returns the blueprint's customizations, never nil.
func customizations(bp *blueprint.Blueprint) *blueprint.Customizations {
	if bp == nil || bp.Customizations == nil {
		return &blueprint.Customizations{}
	}
	return bp.Customizations
}

// usedOptions lists the blueprint options a blueprint sets, in the order
// of blueprintOptions.
func usedOptions(bp *blueprint.Blueprint) []string {
	c := customizations(bp)
	var out []string
	for _, o := range blueprintOptions {
		if o.set(bp, c) {
			out = append(out, o.name)
		}
	}
	return out
}

// CheckBlueprint checks a (syntactically valid) blueprint against this
// image type: the options it uses must be supported, time zones, locales,
// keyboards and firewall services must be known to the target, and no path
// may pass through or replace a symbolic link of the tree (see CheckPaths).
// It returns every problem at once as blueprint.Errors.
func (it *ImageType) CheckBlueprint(bp *blueprint.Blueprint) error {
	var errs blueprint.Errors
	add := func(path, format string, args ...any) {
		errs = append(errs, blueprint.Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	d := it.arch.distro
	if bp.Distro != "" && bp.Distro != d.Name {
		add("distro", "the blueprint is for %q but the build is for %q: remove the field or build for %s", bp.Distro, d.Name, bp.Distro)
	}
	if bp.Architecture != "" && bp.Architecture != it.arch.Name && bp.Architecture != it.arch.DebianArch {
		add("architecture", "the blueprint is for %q but the build is for %q: remove the field or build for %s", bp.Architecture, it.arch.Name, bp.Architecture)
	}
	for _, o := range usedOptions(bp) {
		if !slices.Contains(it.SupportedOptions, o) {
			add(o, "not supported by image type %s (it supports: %s)", it.Name, strings.Join(it.SupportedOptions, ", "))
		}
	}
	c := customizations(bp)
	errs = append(errs, it.targetProblems(c)...)
	if l := c.Locale; l != nil {
		for i, lang := range l.Languages {
			if !d.sets.locales[lang] {
				add(fmt.Sprintf("customizations.locale.languages[%d]", i), "unknown locale %q for %s%s (use a name such as \"en_US.UTF-8\")", lang, d.Name, didYouMean(lang, keys(d.sets.locales)))
			}
		}
	}
	if dk := c.Disk; dk != nil {
		for i, p := range dk.Partitions {
			path := fmt.Sprintf("customizations.disk.partitions[%d]", i)
			if p.Type == "lvm" {
				add(path+".type", "%s", lvmRefusal)
			}
			if p.FSType == "xfs" {
				add(path+".fs_type", "%s", xfsRefusal)
			}
		}
	}
	errs = append(errs, it.diskProblems(c)...)
	// Key URLs are fetched when the manifest is planned (compose.Manifest).
	errs = append(errs, d.repoProblems(c)...)
	errs = append(errs, it.conflicts(bp)...)
	pathErrs, _ := it.arch.pathProblems(bp)
	errs = append(errs, pathErrs...)
	blueprint.SortProblems(errs)
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := keys(m)
	slices.Sort(out)
	return out
}

// A blueprint path's kind says what the blueprint puts there.
type pathKind int

const (
	// dirPath is a directory the blueprint creates or mounts something on:
	// customizations.directories, a user's home, a mount point.
	dirPath pathKind = iota
	// filePath is a file the blueprint writes: customizations.files.
	filePath
)

// namedPath is one path a blueprint names, with its field path.
type namedPath struct {
	at, path string
	kind     pathKind
}

// namedPaths lists every path in the image that a blueprint names.
// A user's shell is left out: it names a program that must already exist,
// and /bin/bash, as /etc/shells lists it, is the usual way to write it.
func namedPaths(bp *blueprint.Blueprint) []namedPath {
	c := customizations(bp)
	var out []namedPath
	for i, f := range c.Files {
		out = append(out, namedPath{fmt.Sprintf("customizations.files[%d].path", i), f.Path, filePath})
	}
	for i, d := range c.Directories {
		out = append(out, namedPath{fmt.Sprintf("customizations.directories[%d].path", i), d.Path, dirPath})
	}
	for i, u := range c.User {
		if u.Home != nil {
			out = append(out, namedPath{fmt.Sprintf("customizations.user[%d].home", i), *u.Home, dirPath})
		}
	}
	for i, fs := range c.Filesystem {
		out = append(out, namedPath{fmt.Sprintf("customizations.filesystem[%d].mountpoint", i), fs.Mountpoint, dirPath})
	}
	if dk := c.Disk; dk != nil {
		for i, p := range dk.Partitions {
			at := fmt.Sprintf("customizations.disk.partitions[%d]", i)
			if p.Mountpoint != "" {
				out = append(out, namedPath{at + ".mountpoint", p.Mountpoint, dirPath})
			}
			for j, lv := range p.LogicalVolumes {
				if lv.Mountpoint != "" {
					out = append(out, namedPath{fmt.Sprintf("%s.logical_volumes[%d].mountpoint", at, j), lv.Mountpoint, dirPath})
				}
			}
		}
	}
	return out
}

// CheckPaths checks every path the blueprint names against the symbolic
// links of the architecture's tree: the build resolves each one inside the
// image without following any link, so a path may not pass through one,
// and a directory or mount point may not replace one. A file may replace
// a link to a file (the link goes, its target is untouched): that is a
// warning. The problems come back as blueprint.Errors.
func (a *Arch) CheckPaths(bp *blueprint.Blueprint) (warnings []blueprint.Problem, err error) {
	errs, warnings := a.pathProblems(bp)
	slices.SortStableFunc(errs, func(a, b blueprint.Problem) int { return strings.Compare(a.Path, b.Path) })
	if len(errs) > 0 {
		return warnings, errs
	}
	return warnings, nil
}

func (a *Arch) pathProblems(bp *blueprint.Blueprint) (errs blueprint.Errors, warnings []blueprint.Problem) {
	d := a.distro.Name
	for _, np := range namedPaths(bp) {
		p := np.path
		// Malformed paths are the blueprint layer's to report.
		if !strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "/" || strings.IndexFunc(p, unicode.IsControl) >= 0 {
			continue
		}
		if msg := a.parentLink(p); msg != "" {
			errs = append(errs, blueprint.Problem{Path: np.at, Message: msg})
			continue
		}
		l, ok := a.links[p]
		if !ok {
			continue
		}
		target := linkTarget(p, l.target)
		switch {
		case np.kind == dirPath && l.dir:
			errs = append(errs, blueprint.Problem{Path: np.at, Message: fmt.Sprintf("%s is a link to %s in %s; use %s", p, target, d, a.resolve(p))})
		case np.kind == dirPath:
			errs = append(errs, blueprint.Problem{Path: np.at, Message: fmt.Sprintf("%s is a link to the file %s in %s; a directory there would replace it: choose another path", p, target, d)})
		case l.dir:
			errs = append(errs, blueprint.Problem{Path: np.at, Message: fmt.Sprintf("%s is a link to the directory %s in %s, which a file cannot replace; put the file below %s", p, target, d, a.resolve(p))})
		default:
			warnings = append(warnings, blueprint.Problem{Path: np.at, Message: fmt.Sprintf("%s is a link to %s in %s; the file replaces the link, and %s is left as it is", p, target, d, target)})
		}
	}
	return errs, warnings
}

// parentLink returns a problem message if a directory above p is a link in
// the tree, or "".
func (a *Arch) parentLink(p string) string {
	for i := 1; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		dir := p[:i]
		l, ok := a.links[dir]
		if !ok {
			continue
		}
		target := linkTarget(dir, l.target)
		if !l.dir {
			return fmt.Sprintf("%s: %s is a link to the file %s in %s, so nothing can be inside it", p, dir, target, a.distro.Name)
		}
		return fmt.Sprintf("%s: %s is a link to %s in %s; use %s", p, dir, target, a.distro.Name, path.Join(a.resolve(path.Dir(p)), path.Base(p)))
	}
	return ""
}

// linkTarget is where the link at p points, as an absolute path.
func linkTarget(p, target string) string {
	if strings.HasPrefix(target, "/") {
		return path.Clean(target)
	}
	return path.Join(path.Dir(p), target)
}

// resolve returns p with every link among its components followed, as the
// kernel would, giving up after 40 links as the kernel does.
func (a *Arch) resolve(p string) string {
	for hops := 0; hops < 40; hops++ {
		followed := false
		for i := 1; i <= len(p); i++ {
			if i < len(p) && p[i] != '/' {
				continue
			}
			if l, ok := a.links[p[:i]]; ok {
				p = path.Join(linkTarget(p[:i], l.target), p[i:])
				followed = true
				break
			}
		}
		if !followed {
			break
		}
	}
	return p
}
