package distro

import (
	"fmt"
	"path"
	"strings"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/manifest"
)

// generatedFile is a file of the image that a stage of the manifest writes
// (or removes) after the package installation, for a given blueprint and
// image type. A customizations.files entry at the same path would replace
// what the stage wrote, or be removed by it, without a word: such a
// conflict is refused.
type generatedFile struct {
	// path is the file; a path ending in "/" or "-" or "_" is a prefix
	// that covers every file below or beginning with it.
	path string
	// from is what the file is made from: a blueprint field path, or a
	// description of what the image type does.
	from string
	// fix says how to resolve the conflict.
	fix string
	// removed marks a file the stage removes or empties rather than
	// writes.
	removed bool
}

// generatedFileRule lists the files one stage type writes for a blueprint
// and image type; none when the stage would not run.
type generatedFileRule struct {
	stage string
	files func(it *ImageType, c *blueprint.Customizations) []generatedFile
}

// generatedFileRules is the one table of the files the manifest's stages
// write into the tree, by stage type. Every stage type is either here or
// in stagesWritingNoGeneratedFile (TestEveryStageTypeIsCovered).
//
// Some of these paths (/etc/fstab, /etc/passwd, /boot) the blueprint layer
// refuses for any image already; they are listed all the same, so that the
// table is complete and stays true when that rule changes.
//
// Left out on purpose: /etc/hosts (the hostname stage edits one line of
// it; a blueprint's hosts file keeps the host name set in /etc/hostname)
// and /etc/apt/sources.list (removed before the blueprint's files are
// written, so a blueprint's own is kept).
var generatedFileRules = []generatedFileRule{
	{manifest.Hostname{}.StageType(), func(_ *ImageType, c *blueprint.Customizations) []generatedFile {
		if c.Hostname == nil {
			return nil
		}
		return []generatedFile{fromField("/etc/hostname", "customizations.hostname")}
	}},
	{manifest.Timezone{}.StageType(), func(_ *ImageType, c *blueprint.Customizations) []generatedFile {
		if c.Timezone == nil || c.Timezone.Timezone == nil {
			return nil
		}
		return []generatedFile{
			fromField("/etc/timezone", "customizations.timezone.timezone"),
			fromField("/etc/localtime", "customizations.timezone.timezone"),
		}
	}},
	{manifest.NTP{}.StageType(), func(_ *ImageType, c *blueprint.Customizations) []generatedFile {
		if c.Timezone == nil || len(c.Timezone.NTPServers) == 0 {
			return nil
		}
		return []generatedFile{fromField("/etc/systemd/timesyncd.conf.d/kiln.conf", "customizations.timezone.ntpservers")}
	}},
	{manifest.Locale{}.StageType(), func(_ *ImageType, c *blueprint.Customizations) []generatedFile {
		if c.Locale == nil || len(c.Locale.Languages) == 0 {
			return nil
		}
		return []generatedFile{
			fromField("/etc/default/locale", "customizations.locale.languages"),
			fromField("/etc/locale.gen", "customizations.locale.languages"),
		}
	}},
	{manifest.Keyboard{}.StageType(), func(_ *ImageType, c *blueprint.Customizations) []generatedFile {
		if c.Locale == nil || c.Locale.Keyboard == nil {
			return nil
		}
		return []generatedFile{
			fromField("/etc/default/keyboard", "customizations.locale.keyboard"),
			fromField("/etc/vconsole.conf", "customizations.locale.keyboard"),
		}
	}},
	{manifest.Groups{}.StageType(), func(_ *ImageType, c *blueprint.Customizations) []generatedFile {
		if len(c.Group) == 0 {
			return nil
		}
		return []generatedFile{fromField("/etc/group", "customizations.group"), fromField("/etc/gshadow", "customizations.group")}
	}},
	{manifest.Users{}.StageType(), func(_ *ImageType, c *blueprint.Customizations) []generatedFile {
		if len(c.User) == 0 && len(c.SSHKey) == 0 {
			return nil
		}
		field := "customizations.user"
		if len(c.User) == 0 {
			field = "customizations.sshkey"
		}
		out := []generatedFile{fromField("/etc/passwd", field), fromField("/etc/shadow", field), fromField("/etc/group", field), fromField("/etc/gshadow", field)}
		for i, u := range c.User {
			if u.Key != nil {
				out = append(out, fromField(path.Join(homeOf(u.Name, u.Home), ".ssh/authorized_keys"), fmt.Sprintf("customizations.user[%d].key", i)))
			}
		}
		for i, k := range c.SSHKey {
			home := (*string)(nil)
			for _, u := range c.User {
				if u.Name == k.User {
					home = u.Home
				}
			}
			out = append(out, fromField(path.Join(homeOf(k.User, home), ".ssh/authorized_keys"), fmt.Sprintf("customizations.sshkey[%d].key", i)))
		}
		return out
	}},
	{manifest.AptSources{}.StageType(), func(it *ImageType, c *blueprint.Customizations) []generatedFile {
		var out []generatedFile
		for _, r := range it.arch.distro.Repositories {
			out = append(out, generatedFile{
				path: "/etc/apt/sources.list.d/" + r.ID + ".sources",
				from: "the apt source of " + it.arch.distro.Name + "'s repository " + r.ID,
				fix:  "remove this file; add other repositories with customizations.repositories",
			})
		}
		for i, r := range c.Repositories {
			field := fmt.Sprintf("customizations.repositories[%d]", i)
			out = append(out, fromField("/etc/apt/sources.list.d/"+r.SourcesFile()+".sources", field))
			if r.Priority != nil {
				out = append(out, fromField("/etc/apt/preferences.d/"+r.SourcesFile()+".pref", field+".priority"))
			}
		}
		return out
	}},
	{manifest.Firewall{}.StageType(), func(_ *ImageType, c *blueprint.Customizations) []generatedFile {
		if c.Firewall == nil {
			return nil
		}
		return []generatedFile{fromField("/etc/nftables.conf", "customizations.firewall")}
	}},
	{manifest.Systemd{}.StageType(), func(_ *ImageType, c *blueprint.Customizations) []generatedFile {
		if c.Services == nil {
			return nil
		}
		// Masking links the unit's name in /etc/systemd/system to
		// /dev/null; a file there would undo the mask.
		var out []generatedFile
		for i, u := range c.Services.Masked {
			out = append(out, fromField("/etc/systemd/system/"+blueprint.CanonicalUnit(u), fmt.Sprintf("customizations.services.masked[%d]", i)))
		}
		return out
	}},
	{manifest.CACerts{}.StageType(), func(_ *ImageType, c *blueprint.Customizations) []generatedFile {
		if c.CACerts == nil || len(c.CACerts.PEMCerts) == 0 {
			return nil
		}
		return []generatedFile{
			fromField("/usr/local/share/ca-certificates/kiln-", "customizations.cacerts"),
			fromField("/etc/ssl/certs/ca-certificates.crt", "customizations.cacerts"),
		}
	}},
	{manifest.SSHD{}.StageType(), func(_ *ImageType, c *blueprint.Customizations) []generatedFile {
		if c.SSHD == nil {
			return nil
		}
		return []generatedFile{fromField(manifest.SSHDDropIn, "customizations.sshd")}
	}},
	{manifest.Firstboot{}.StageType(), func(_ *ImageType, c *blueprint.Customizations) []generatedFile {
		if c.Firstboot == nil {
			return nil
		}
		return []generatedFile{
			fromField(manifest.FirstbootScriptDir+"/", "customizations.firstboot"),
			fromField(manifest.FirstbootUnitPrefix, "customizations.firstboot"),
		}
	}},
	{manifest.FSTab{}.StageType(), func(it *ImageType, c *blueprint.Customizations) []generatedFile {
		if it.PartitionTable == nil {
			return nil
		}
		from := "the partition table of image type " + it.Name
		switch {
		case c.Disk != nil:
			from = "customizations.disk"
		case len(c.Filesystem) > 0:
			from = "customizations.filesystem"
		}
		return []generatedFile{{
			path: "/etc/fstab",
			from: from,
			fix:  "remove this file: the generated fstab mounts the image's filesystems by their UUIDs, and another would not boot; describe mounts with customizations.filesystem or customizations.disk",
		}}
	}},
	{manifest.Network{}.StageType(), func(it *ImageType, _ *blueprint.Customizations) []generatedFile {
		if it.Network == "" {
			return nil
		}
		return []generatedFile{{
			path: "/etc/systemd/network/80-kiln-dhcp.network",
			from: "the network configuration of image type " + it.Name,
			fix:  "remove this file, or give yours another name: systemd-networkd reads every .network file in name order",
		}}
	}},
	{manifest.Bootloader{}.StageType(), func(it *ImageType, _ *blueprint.Customizations) []generatedFile {
		if !it.Bootable || it.PartitionTable == nil {
			return nil
		}
		from := "the boot loader of image type " + it.Name
		fix := "remove this file; give kernel arguments with customizations.kernel.append"
		return []generatedFile{{path: "/boot/grub/grub.cfg", from: from, fix: fix}, {path: "/etc/default/grub", from: from, fix: fix}}
	}},
	{manifest.Files{}.StageType(), func(it *ImageType, _ *blueprint.Customizations) []generatedFile {
		// The blueprint's own files are its to write; the image type's
		// are written before them.
		var out []generatedFile
		for _, f := range it.Files {
			out = append(out, generatedFile{
				path: f.Path,
				from: "the configuration of image type " + it.Name,
				fix:  "remove this file, or give yours another name in the same directory",
			})
		}
		return out
	}},
	{manifest.Initramfs{}.StageType(), func(it *ImageType, _ *blueprint.Customizations) []generatedFile {
		// The initramfs is built before the blueprint's files are
		// written: a file replacing these would not change the image's
		// initramfs, only the next one the machine builds.
		if len(it.InitramfsDrivers) == 0 {
			return nil
		}
		const from = "the image type's initramfs drivers"
		const fix = "remove this file: the initramfs is built before customizations.files are written"
		return []generatedFile{
			{path: "/etc/initramfs-tools/conf.d/kiln-drivers.conf", from: from, fix: fix},
			{path: "/etc/initramfs-tools/hooks/kiln-drivers", from: from, fix: fix},
		}
	}},
	{manifest.Cleanup{}.StageType(), func(_ *ImageType, _ *blueprint.Customizations) []generatedFile {
		// The cleanup runs last and removes or empties these.
		const from = "the image's final cleanup"
		const fix = "remove this file from customizations.files"
		var out []generatedFile
		for _, p := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id", "/etc/resolv.conf", "/etc/ssh/ssh_host_", "/usr/sbin/policy-rc.d", "/root/.bash_history", "/tmp/", "/var/tmp/", "/var/lib/apt/lists/", "/var/cache/apt/"} {
			out = append(out, generatedFile{path: p, from: from, fix: fix, removed: true})
		}
		// It also writes the units that make new SSH host keys.
		for _, p := range []string{"/etc/systemd/system/kiln-ssh-keygen.service", "/etc/systemd/system/kiln-ssh-keygen-rsa.service"} {
			out = append(out, generatedFile{path: p, from: from, fix: "remove this file, or give your unit another name"})
		}
		return out
	}},
}

// stagesWritingNoGeneratedFile are the stage types left out of
// generatedFileRules, each with the reason.
var stagesWritingNoGeneratedFile = map[string]string{
	manifest.DebsInstall{}.StageType():    "installs the packages before any blueprint file is written; a blueprint's file replacing a package's is what files are for",
	manifest.CheckInstall{}.StageType():   "only reads the tree",
	manifest.Directories{}.StageType():    "the blueprint's own directories",
	manifest.DiskImage{}.StageType():      "writes an output file, not the tree",
	manifest.QemuImgConvert{}.StageType(): "writes an output file, not the tree",
	manifest.TarArchive{}.StageType():     "writes an output file, not the tree",
	manifest.Compress{}.StageType():       "writes an output file, not the tree",
	manifest.FileArchive{}.StageType():    "writes an output file, not the tree",
	manifest.OVA{}.StageType():            "writes an output file, not the tree",
	manifest.OCIArchive{}.StageType():     "writes an output file, not the tree",
	manifest.ISO{}.StageType():            "writes an output file, not the tree",
}

// fromField is a file made from the blueprint field field.
func fromField(p, field string) generatedFile {
	return generatedFile{path: p, from: field, fix: "set it through " + field + " and remove this file, or remove " + field + " and keep the file"}
}

// homeOf is a user's home directory as the users stage makes it.
func homeOf(name string, home *string) string {
	switch {
	case home != nil && *home != "":
		return *home
	case name == "root":
		return "/root"
	}
	return "/home/" + name
}

// covers says whether the generated file g is the file p or, for a
// prefix, holds it.
func (g generatedFile) covers(p string) bool {
	if strings.HasSuffix(g.path, "/") || strings.HasSuffix(g.path, "-") || strings.HasSuffix(g.path, "_") {
		return strings.HasPrefix(p, g.path)
	}
	return p == g.path
}

// conflicts returns the blueprint's settings that contradict each other
// for this image type: a customizations.files entry at a path a stage
// writes, and a firewall whose nftables service is disabled or masked.
func (it *ImageType) conflicts(bp *blueprint.Blueprint) blueprint.Errors {
	c := customizations(bp)
	var errs blueprint.Errors
	var generated []generatedFile
	for _, r := range generatedFileRules {
		generated = append(generated, r.files(it, c)...)
	}
	for i, f := range c.Files {
		for _, g := range generated {
			if !g.covers(f.Path) {
				continue
			}
			msg := fmt.Sprintf("%s is written from %s, and this file would silently replace it; %s", f.Path, g.from, g.fix)
			if g.removed {
				msg = fmt.Sprintf("%s is removed or emptied by %s, so the image would not keep this file; %s", f.Path, g.from, g.fix)
			}
			errs = append(errs, blueprint.Problem{Path: fmt.Sprintf("customizations.files[%d].path", i), Message: msg})
			break
		}
	}
	if c.Firewall != nil && c.Services != nil {
		for _, l := range []struct {
			name, verb string
			units      []string
		}{{"disabled", "disables", c.Services.Disabled}, {"masked", "masks", c.Services.Masked}} {
			for i, u := range l.units {
				if blueprint.CanonicalUnit(u) == "nftables.service" {
					errs = append(errs, blueprint.Problem{
						Path:    fmt.Sprintf("customizations.services.%s[%d]", l.name, i),
						Message: fmt.Sprintf("%s nftables, which customizations.firewall needs to start; remove one of them", l.verb),
					})
				}
			}
		}
	}
	return errs
}
