package distro

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/depsolve"
	"github.com/kiln-project/kiln/internal/disk"
	"github.com/kiln-project/kiln/internal/keyfetch"
	"github.com/kiln-project/kiln/internal/manifest"
)

// Options are the inputs of manifest generation besides the blueprint.
type Options struct {
	// Seed fixes every identifier in the manifest (filesystem and partition
	// UUIDs). Nil means the seed derived from the blueprint name,
	// distribution and architecture, so that the same inputs give the same
	// manifest and the image types of one blueprint share their cached
	// trees and disks.
	Seed *uint64
	// Mirrors maps a mirror role ("debian", "debian-security") to its URI.
	Mirrors map[string]string
	// GPGKeys are the blueprint's repository keys given by URL, fetched,
	// by URL (see keyfetch.Fetcher.Blueprint). Nil means none was fetched:
	// the plan is then only a check, and leaves key URLs out with a
	// warning; compose.Manifest always fetches.
	GPGKeys map[string]keyfetch.Key
	// KeyClient is the HTTP client compose.Manifest fetches those keys
	// with; nil means keyfetch's default, which reaches public addresses
	// only (a worker building tenants' blueprints); the CLI passes
	// keyfetch.AnyAddressClient, since its blueprints are the user's.
	KeyClient *http.Client
}

// PackageRepositories are the distribution's repositories whose mirror
// role mirrors names, as the package solver reads them (for searches).
func (d *Distro) PackageRepositories(mirrors map[string]string) []depsolve.Repository {
	var out []depsolve.Repository
	for _, r := range d.Repositories {
		if uri := mirrors[r.MirrorRole]; uri != "" {
			out = append(out, depsolve.Repository{ID: r.ID, URI: uri, Suites: r.Suites, Components: r.Components, SignedBy: d.Keyring})
		}
	}
	return out
}

// Plan is a manifest waiting for its packages: Request says what to solve,
// Finish turns the solution into the manifest. Generating it is pure.
type Plan struct {
	// Request is the package set to solve.
	Request depsolve.Request
	// Warnings are things the user should know that do not stop the build.
	Warnings []string
	// Problems are the blueprint's problems PlanAll found, sorted by field
	// path. A plan with problems is for reporting only: its Request can
	// still be solved to find missing packages, but it cannot be finished.
	Problems blueprint.Errors

	it       *ImageType
	bp       *blueprint.Blueprint
	seed     uint64
	explicit []string
	// origins maps a requested package name to the blueprint field that
	// asked for it, so solver errors can point at the field.
	origins map[string]string
	pt      *disk.PartitionTable
	repos   []manifest.AptSource
	keys    []manifest.KeyPin
}

// DefaultSeed is the seed used when none is given. The image type is not
// part of it: the vmdk and the ova of a blueprint are then the same disk,
// built once.
func DefaultSeed(name, distro, arch string) uint64 {
	sum := sha256.Sum256([]byte(strings.Join([]string{"kiln", name, distro, arch}, "\x00")))
	return binary.BigEndian.Uint64(sum[:8])
}

// Manifest is the seam between what and how: it checks the blueprint
// against the image type and plans the manifest. Call Finish on the plan
// with the solved package set. Every problem of the blueprint comes back
// at once, as blueprint.Errors.
func (it *ImageType) Manifest(bp *blueprint.Blueprint, opts Options) (*Plan, error) {
	if err := it.Buildable(); err != nil {
		return nil, err
	}
	p, err := it.PlanAll(bp, opts, nil)
	if err != nil {
		return nil, err
	}
	if len(p.Problems) > 0 {
		return nil, p.Problems
	}
	return p, nil
}

// PlanAll is Manifest that does not stop at the blueprint's problems: it
// collects them in the plan's Problems (the image type's checks, the
// repositories, excluded packages, the disk layout) and still computes
// the package request, so that a solver can add the missing packages to
// the same answer. reported are problems an earlier check (parsing)
// found in bp: fields they cover are not checked again, and packages
// they cover are left out of the request. The error is for what is not
// the blueprint's fault (no mirror). A plan can be made for an
// architecture this host cannot build (see Buildable), to check it.
func (it *ImageType) PlanAll(bp *blueprint.Blueprint, opts Options, reported blueprint.Errors) (*Plan, error) {
	a, d := it.arch, it.arch.distro
	var problems blueprint.Errors
	addProblems := func(err error) {
		var errs blueprint.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				if e.Path == "" || !reported.Covers(e.Path) {
					problems = append(problems, e)
				}
			}
		}
	}
	addProblems(it.CheckBlueprint(bp))
	p := &Plan{it: it, bp: bp, origins: map[string]string{}}
	if opts.Seed != nil {
		p.seed = *opts.Seed
	} else {
		p.seed = DefaultSeed(bp.Name, d.Name, a.Name)
	}
	c := customizations(bp)

	// Repositories: the distribution's, by mirror role, then the blueprint's.
	req := depsolve.Request{Arch: a.DebianArch, Variant: it.Variant, Exclude: slices.Clone(it.ExcludePackages)}
	for _, r := range d.Repositories {
		uri := opts.Mirrors[r.MirrorRole]
		if uri == "" {
			if r.MirrorRole == "debian" {
				return nil, fmt.Errorf("no mirror is configured for %s: add a Debian mirror to the host's apt sources, pass --mirror, or set mirrors.debian in the configuration file", d.Name)
			}
			p.Warnings = append(p.Warnings, fmt.Sprintf("no %s mirror is configured: repository %s (%s) is left out, so the image will not have its updates", r.MirrorRole, r.ID, strings.Join(r.Suites, " ")))
			continue
		}
		req.Repositories = append(req.Repositories, depsolve.Repository{ID: r.ID, URI: uri, Suites: r.Suites, Components: r.Components, SignedBy: d.Keyring})
		p.repos = append(p.repos, manifest.AptSource{Name: r.ID, URIs: []string{uri}, Suites: r.Suites, Components: r.Components, SignedBy: "/usr/share/keyrings/debian-archive-keyring.gpg"})
	}
	srcs, solve, keys, keyWarnings, errs := blueprintRepos(reposToPlan(c, reported), opts.GPGKeys)
	if len(errs) > 0 {
		addProblems(errs)
	}
	p.repos, p.keys = append(p.repos, srcs...), keys
	req.Repositories = append(req.Repositories, solve...)
	p.Warnings = append(p.Warnings, keyWarnings...)
	p.Warnings = append(p.Warnings, pinWarnings(c, opts.Mirrors)...)
	for _, w := range bp.Warnings() {
		p.Warnings = append(p.Warnings, w.String())
	}
	// CheckBlueprint refused every path problem; what is left are the
	// links a file replaces, which the user should hear about.
	if ws, err := a.CheckPaths(bp); err == nil {
		for _, w := range ws {
			p.Warnings = append(p.Warnings, w.String())
		}
	}

	// Packages: the image type's, what the customizations need, the blueprint's.
	addPkg := func(name, version, origin string) {
		if i := slices.IndexFunc(req.Packages, func(s depsolve.PackageSpec) bool { return s.Name == name }); i >= 0 {
			if version != "" && version != "*" {
				req.Packages[i].Version = version
				p.origins[name] = origin
			}
			return
		}
		if version == "*" {
			version = ""
		}
		req.Packages = append(req.Packages, depsolve.PackageSpec{Name: name, Version: version})
		p.origins[name] = origin
	}
	kernel := it.KernelPackage()
	if c.Kernel != nil && c.Kernel.Name != "" {
		kernel = c.Kernel.Name
	}
	for _, name := range it.DefaultPackages() {
		if name == it.KernelPackage() {
			addPkg(kernel, "", "customizations.kernel.name")
			continue
		}
		addPkg(name, "", "image type "+it.Name)
	}
	if tz := c.Timezone; tz != nil && len(tz.NTPServers) > 0 {
		addPkg("systemd-timesyncd", "", "customizations.timezone.ntpservers")
	}
	if tz := c.Timezone; tz != nil && tz.Timezone != nil {
		if pkg := d.timezonePackage(*tz.Timezone); pkg != "" {
			addPkg(pkg, "", "customizations.timezone.timezone")
		}
	}
	if l := c.Locale; l != nil {
		if len(l.Languages) > 0 {
			addPkg("locales", "", "customizations.locale.languages")
		}
		if l.Keyboard != nil {
			addPkg("keyboard-configuration", "", "customizations.locale.keyboard")
			addPkg("console-setup", "", "customizations.locale.keyboard")
		}
	}
	if c.Firewall != nil {
		addPkg("nftables", "", "customizations.firewall")
	}
	// Units are enabled with systemctl: a tree that would not have systemd
	// otherwise (tar, container) gets it, rather than failing its build.
	if s := c.Services; s != nil && len(s.Enabled)+len(s.Disabled)+len(s.Masked) > 0 {
		addPkg("systemd", "", "customizations.services")
	} else if c.Firewall != nil {
		addPkg("systemd", "", "customizations.firewall")
	}
	if c.CACerts != nil {
		addPkg("ca-certificates", "", "customizations.cacerts")
	}
	if c.SSHD != nil {
		addPkg("openssh-server", "", "customizations.sshd")
	}
	if c.Firstboot != nil {
		addPkg("systemd", "", "customizations.firstboot")
	}
	if len(c.User) > 0 || len(c.SSHKey) > 0 {
		addPkg("passwd", "", "customizations.user")
	}
	for i, g := range bp.Groups {
		name := g.Name
		if !strings.HasPrefix(name, "task-") {
			name = "task-" + name
		}
		addPkg(name, "", fmt.Sprintf("groups[%d].name", i))
	}
	// Packages before modules, each in blueprint order: when one name
	// appears twice with versions, the later one wins, the same every time.
	for i, pk := range bp.AllPackages() {
		origin := fmt.Sprintf("packages[%d]", i)
		if i >= len(bp.Packages) {
			origin = fmt.Sprintf("modules[%d]", i-len(bp.Packages))
		}
		addPkg(pk.Name, pk.Version, origin)
	}
	// A package whose field had a problem is not asked for: its name or
	// version may be only half decoded.
	req.Packages = slices.DeleteFunc(req.Packages, func(s depsolve.PackageSpec) bool { return touches(reported, p.origins[s.Name]) })
	slices.SortFunc(req.Packages, func(a, b depsolve.PackageSpec) int { return strings.Compare(a.Name, b.Name) })
	for _, s := range req.Packages {
		p.explicit = append(p.explicit, s.Name)
		if slices.Contains(req.Exclude, s.Name) {
			addProblems(blueprint.Errors{{Path: p.origins[s.Name], Message: fmt.Sprintf("package %q is excluded from image type %s", s.Name, it.Name)}})
		}
	}
	p.Request = req

	// Disk layout.
	if it.PartitionTable != nil {
		pt, err := disk.NewPartitionTable(*it.PartitionTable, diskRequest(it, c), disk.NewIDs(p.seed))
		if err != nil {
			field := "customizations.filesystem"
			if c.Disk != nil {
				field = "customizations.disk"
			}
			if !diskReported(reported) {
				addProblems(blueprint.Errors{{Path: field, Message: err.Error()}})
			}
		}
		p.pt = pt
	}
	blueprint.SortProblems(problems)
	p.Problems = problems
	return p, nil
}

// ExplainSolveError points a solver error at the blueprint field that asked
// for the package, where it can.
func (p *Plan) ExplainSolveError(err error) error {
	var missing *depsolve.MissingPackagesError
	if !errors.As(err, &missing) {
		return err
	}
	var errs blueprint.Errors
	for _, m := range missing.Missing {
		msg := fmt.Sprintf("package %q does not exist in %s", m.Name, p.it.arch.distro.Name)
		if len(m.Suggestions) > 0 {
			msg += fmt.Sprintf(" (did you mean %q?)", m.Suggestions[0])
		}
		path := p.origins[m.Name]
		if path == "" {
			path = "packages"
		}
		errs = append(errs, blueprint.Problem{Path: path, Message: msg})
	}
	return errs
}

// Finish writes the manifest from the solved packages.
func (p *Plan) Finish(res *depsolve.Result) (*manifest.Manifest, error) {
	it, a, d := p.it, p.it.arch, p.it.arch.distro
	c := customizations(p.bp)
	m := &manifest.Manifest{
		Version: manifest.Version,
		Target:  manifest.Target{Distro: d.Name, Arch: a.Name, ImageType: it.Name, Seed: p.seed, Name: p.bp.Name, Version: p.bp.Version},
		Output:  manifest.Output{Filename: it.Filename(p.bp.Name), MIMEType: it.MIMEType},
	}
	for _, r := range res.Repositories {
		m.Sources.Repositories = append(m.Sources.Repositories, manifest.Repository(r))
	}
	for _, pk := range res.Packages {
		m.Sources.Debs = append(m.Sources.Debs, manifest.Deb(pk))
	}
	m.Sources.Keys = p.keys
	slices.SortFunc(m.Sources.Debs, func(a, b manifest.Deb) int { return strings.Compare(a.Name, b.Name) })
	for _, name := range p.explicit {
		if !slices.ContainsFunc(m.Sources.Debs, func(d manifest.Deb) bool { return d.Name == name }) {
			return nil, fmt.Errorf("the solved package set lacks the requested package %q", name)
		}
	}

	os := manifest.Pipeline{Name: "os", Produces: "tree"}
	add := func(o manifest.StageOptions) { os.Stages = append(os.Stages, manifest.NewStage(o)) }
	add(&manifest.DebsInstall{Arch: a.DebianArch, Variant: it.Variant, Packages: p.explicit})
	// What only the packages' contents can tell is checked before anything
	// else runs, all at once.
	if ci := p.installChecks(c); ci != nil {
		add(ci)
	}
	// What boots the system comes straight after the packages: it depends
	// on nothing the blueprint configures, so the tree after the initramfs
	// is cached and changing a user or the hostname reruns none of it.
	if p.pt != nil {
		fstab := &manifest.FSTab{}
		for _, fs := range p.pt.Filesystems() {
			mp := fs.Mountpoint
			if fs.Type == "swap" {
				mp = "none"
			}
			fstab.Entries = append(fstab.Entries, manifest.FSTabEntry{UUID: fs.UUID, Mountpoint: mp, FSType: fs.Type, Options: fs.FSTabOptions, PassNo: fs.FSTabPassNo})
		}
		add(fstab)
	}
	if it.Bootable && p.pt != nil {
		bl := &manifest.Bootloader{RootFSUUID: p.pt.FindMountpoint("/").Payload.UUID, KernelCmdline: p.kernelCmdline(c), Timeout: 1}
		if boot := p.pt.FindMountpoint("/boot"); boot != nil {
			bl.BootFSUUID = boot.Payload.UUID
		}
		if (it.Bootloader == BootBIOS || it.Bootloader == BootHybrid) && a.GrubBIOS != nil {
			bl.BIOS = a.GrubBIOS.Target
		}
		if (it.Bootloader == BootUEFI || it.Bootloader == BootHybrid) && a.GrubUEFI != nil {
			bl.UEFI = a.GrubUEFI.Target
		}
		add(bl)
	}
	if it.Bootable {
		add(&manifest.Initramfs{Drivers: p.initramfsDrivers()})
	}
	add(&manifest.AptSources{Sources: p.repos})
	if it.Network != "" {
		add(&manifest.Network{Mode: it.Network})
	}
	hostname := "debian"
	if c.Hostname != nil {
		hostname = *c.Hostname
	}
	add(&manifest.Hostname{Hostname: hostname})
	zone := "Etc/UTC"
	if tz := c.Timezone; tz != nil && tz.Timezone != nil {
		zone = *tz.Timezone
	}
	add(&manifest.Timezone{Zone: zone})
	if tz := c.Timezone; tz != nil && len(tz.NTPServers) > 0 {
		add(&manifest.NTP{Servers: tz.NTPServers})
	}
	if l := c.Locale; l != nil {
		if len(l.Languages) > 0 {
			add(&manifest.Locale{Languages: l.Languages, Default: l.Languages[0]})
		}
		if l.Keyboard != nil {
			kb, _ := d.sets.keyboard(*l.Keyboard)
			add(&kb)
		}
	}
	if len(c.Group) > 0 {
		g := &manifest.Groups{}
		for _, bg := range c.Group {
			g.Groups = append(g.Groups, manifest.Group{Name: bg.Name, GID: bg.GID})
		}
		add(g)
	}
	if users := p.users(c); len(users) > 0 {
		add(&manifest.Users{Users: users})
	}
	if o := sshdOptions(c.SSHD); o != nil {
		add(o)
	}
	if o := firstbootOptions(c.Firstboot); o != nil {
		add(o)
	}
	// Stages that execute a tool of the image (systemctl, nft,
	// update-ca-certificates) come before the blueprint's directories and
	// files, so nothing a blueprint writes is in the tree while anything
	// runs there — except unit files, which systemctl only reads, so a
	// unit the blueprint ships can be enabled.
	var unitFiles, otherFiles []blueprint.FileCustomization
	for _, bf := range c.Files {
		if isUnitPath(bf.Path) {
			unitFiles = append(unitFiles, bf)
		} else {
			otherFiles = append(otherFiles, bf)
		}
	}
	if len(it.Files) > 0 {
		fs, err := p.typeFiles(hostname)
		if err != nil {
			return nil, err
		}
		add(fs)
	}
	if len(unitFiles) > 0 {
		add(blueprintFiles(unitFiles))
	}
	services := manifest.Systemd{Enabled: slices.Clone(it.Services.Enabled), Disabled: slices.Clone(it.Services.Disabled), Masked: slices.Clone(it.Services.Masked)}
	if fw := c.Firewall; fw != nil {
		f, err := d.sets.firewall(fw)
		if err != nil {
			return nil, err
		}
		add(f)
		services.Enabled = append(services.Enabled, "nftables")
	}
	if tz := c.Timezone; tz != nil && len(tz.NTPServers) > 0 {
		services.Enabled = append(services.Enabled, "systemd-timesyncd")
	}
	if s := c.Services; s != nil {
		services.Enabled = append(services.Enabled, s.Enabled...)
		services.Disabled = append(services.Disabled, s.Disabled...)
		services.Masked = append(services.Masked, s.Masked...)
		off := append(slices.Clone(s.Disabled), s.Masked...)
		services.Enabled = slices.DeleteFunc(services.Enabled, func(u string) bool { return slices.Contains(off, u) })
	}
	services.Enabled = uniq(services.Enabled)
	if len(services.Enabled)+len(services.Disabled)+len(services.Masked) > 0 {
		add(&services)
	}
	if ca := c.CACerts; ca != nil && len(ca.PEMCerts) > 0 {
		add(&manifest.CACerts{PEMCerts: ca.PEMCerts})
	}
	if len(c.Directories) > 0 {
		ds := &manifest.Directories{}
		for _, bd := range c.Directories {
			ds.Directories = append(ds.Directories, manifest.Directory{Path: bd.Path, Mode: modeOr(bd.Mode, "0755"), User: bd.User.String(), Group: bd.Group.String(), EnsureParents: bd.EnsureParents})
		}
		add(ds)
	}
	if len(otherFiles) > 0 {
		add(blueprintFiles(otherFiles))
	}
	add(&manifest.Cleanup{MachineID: true, SSHHostKeys: true, AptLists: true})
	m.Pipelines = append(m.Pipelines, os)

	m.Pipelines = append(m.Pipelines, p.outputPipelines(m.Output.Filename)...)
	m.Output.Pipeline = m.Pipelines[len(m.Pipelines)-1].Name
	return m, nil
}

// unitDirs are where systemd looks for unit files.
var unitDirs = []string{"/etc/systemd/system/", "/usr/lib/systemd/system/", "/lib/systemd/system/"}

// isUnitPath says whether p is a unit file (or a drop-in) in one of
// systemd's unit directories.
func isUnitPath(p string) bool {
	return slices.ContainsFunc(unitDirs, func(d string) bool { return strings.HasPrefix(p, d) })
}

// blueprintFiles is the Files stage of some of the blueprint's files.
func blueprintFiles(files []blueprint.FileCustomization) *manifest.Files {
	fs := &manifest.Files{}
	for _, bf := range files {
		fs.Files = append(fs.Files, manifest.File{Path: bf.Path, Mode: modeOr(bf.Mode, "0644"), User: bf.User.String(), Group: bf.Group.String(), Data: bf.Data})
	}
	return fs
}

// users merges customizations.user and the legacy customizations.sshkey.
func (p *Plan) users(c *blueprint.Customizations) []manifest.User {
	var out []manifest.User
	for _, u := range c.User {
		mu := manifest.User{Name: u.Name, Groups: u.Groups, UID: u.UID, GID: u.GID, ExpireDate: u.ExpireDate}
		mu.Description = deref(u.Description)
		mu.PasswordHash = deref(u.Password)
		mu.Home = deref(u.Home)
		mu.Shell = deref(u.Shell)
		mu.SSHKeys = splitKeys(deref(u.Key))
		mu.ForcePasswordReset = u.ForcePasswordReset != nil && *u.ForcePasswordReset
		out = append(out, mu)
	}
	for _, k := range c.SSHKey {
		i := slices.IndexFunc(out, func(u manifest.User) bool { return u.Name == k.User })
		if i < 0 {
			out = append(out, manifest.User{Name: k.User})
			i = len(out) - 1
		}
		out[i].SSHKeys = append(out[i].SSHKeys, splitKeys(k.Key)...)
	}
	return out
}

func (p *Plan) kernelCmdline(c *blueprint.Customizations) []string {
	args := slices.Clone(p.it.KernelCmdline)
	if c.Kernel != nil {
		args = append(args, strings.Fields(c.Kernel.Append)...)
	}
	return args
}

func splitKeys(s string) []string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func modeOr(mode, def string) string {
	if mode == "" {
		return def
	}
	return mode
}

func uniq(s []string) []string {
	var out []string
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// initramfsDrivers are the drivers the image's initramfs holds: the type's
// storage drivers and the modules of the filesystems on its disk (the
// initramfs mounts the root filesystem), or none for initramfs-tools'
// default, most of the kernel's drivers, which the types for real
// hardware keep.
func (p *Plan) initramfsDrivers() []string {
	if len(p.it.InitramfsDrivers) == 0 {
		return nil
	}
	out := slices.Clone(p.it.InitramfsDrivers)
	for _, fs := range p.pt.Filesystems() {
		switch fs.Type {
		case "vfat", "swap", "":
			// The ESP and swap are the booted system's, not the initramfs'.
		default:
			if !slices.Contains(out, fs.Type) {
				out = append(out, fs.Type)
			}
		}
	}
	return out
}
