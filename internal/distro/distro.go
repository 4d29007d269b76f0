// Package distro knows what kiln can build: distributions, their
// architectures and their image types, all loaded from embedded data files.
// It is the only reader of blueprints: ImageType.Manifest is the one seam
// where what the user wants (a blueprint) becomes how to build it (a
// manifest).
package distro

import (
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"sort"
	"strings"
	"text/template"

	"github.com/agnivade/levenshtein"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/disk"
)

// Registry holds every distribution kiln knows.
type Registry struct {
	distros []*Distro
	sets    *knownSets
}

// Distro is one distribution release.
type Distro struct {
	Name     string
	Product  string
	Family   string
	Codename string
	// Keyring is the host path of the keyring that signs the archive.
	Keyring      string
	Repositories []RepositorySpec
	arches       []*Arch
	sets         *knownSets
}

// RepositorySpec is a distribution repository whose mirror is chosen at
// run time by its role ("debian", "debian-security").
type RepositorySpec struct {
	ID         string
	MirrorRole string
	Suites     []string
	Components []string
}

// Arch is one architecture of a distribution.
type Arch struct {
	Name          string // kiln's name: x86_64, aarch64
	DebianArch    string // amd64, arm64
	KernelPackage string
	// CloudKernel is the kernel built for virtual machines (smaller, fewer
	// drivers), used by image types with kernel_flavor: cloud.
	CloudKernel string
	GrubBIOS    *GrubTarget
	GrubUEFI    *GrubTarget
	// NotBuildable, when set, says why kiln builds no images of this
	// arch at all. Whether a host can run the arch's programs (natively
	// or emulated) is the host's business: see internal/emulation.
	NotBuildable string
	// SerialConsole is the kernel's name of the first serial port on the
	// architecture's usual virtual machine (ttyS0, ttyAMA0).
	SerialConsole string
	distro        *Distro
	imageTypes    []*ImageType
	// links are the symbolic links of a freshly installed tree of this
	// architecture, the distribution's and its own, by absolute path.
	links map[string]link
}

// link is a symbolic link of a distribution's tree.
type link struct {
	// target is the link's content, absolute or relative to its directory.
	target string
	// dir says whether the target is a directory.
	dir bool
}

// GrubTarget is a GRUB platform and the packages that provide it.
type GrubTarget struct {
	Target   string
	Packages []string
}

// Bootloader kinds.
const (
	BootNone   = "none"
	BootBIOS   = "bios"
	BootUEFI   = "uefi"
	BootHybrid = "hybrid"
)

// Output formats. The disk formats are a partitioned disk image in some
// container; tar and oci are root trees; iso boots live (and may carry a
// disk image to install).
const (
	FormatRaw     = "raw"
	FormatQcow2   = "qcow2"
	FormatVMDK    = "vmdk"
	FormatVHD     = "vhd"
	FormatOVA     = "ova"
	FormatDiskTar = "disk-tar"
	FormatTar     = "tar"
	FormatOCI     = "oci"
	FormatISO     = "iso"
)

// formats lists each output format, whether it is a disk image, and the
// compressions it takes ("" is none).
var formats = map[string]struct {
	disk         bool
	compressions []string
}{
	FormatRaw:     {true, []string{"", "xz", "zstd"}},
	FormatQcow2:   {true, []string{""}},
	FormatVMDK:    {true, []string{""}},
	FormatVHD:     {true, []string{""}},
	FormatOVA:     {true, []string{""}},
	FormatDiskTar: {true, []string{"gzip"}},
	FormatTar:     {false, []string{"", "xz", "gzip", "zstd"}},
	FormatOCI:     {false, []string{""}},
	FormatISO:     {false, []string{""}},
}

// ImageType is one kind of image of one architecture of one distribution.
type ImageType struct {
	Name        string
	Aliases     []string
	Description string
	Extension   string
	MIMEType    string
	Bootable    bool
	// Variant is the base package set (see depsolve.Request.Variant).
	Variant string
	Kernel  bool
	// KernelFlavor is "generic" (any hardware) or "cloud" (virtual machines).
	KernelFlavor string
	// NetworkDrivers are the kernel modules of the network cards the
	// type's platforms give a machine by default; the kernel flavour
	// has them all (see flavorNetworkDrivers).
	NetworkDrivers []string
	// InitramfsDrivers, when set, are the storage drivers the initramfs
	// holds (with the root filesystem's) in place of initramfs-tools'
	// MODULES=most: the types for virtual machines set them.
	InitramfsDrivers []string
	Bootloader       string
	Network          string
	Packages         []string
	ExcludePackages  []string
	Services         Services
	KernelCmdline    []string
	DefaultSize      disk.Size
	// PartitionTable is nil for types that are not disk images.
	PartitionTable *disk.Template
	Output         Output
	// Files are written into every image of the type (text/templates).
	Files            []TypeFile
	SupportedOptions []string
	arch             *Arch
}

// TypeFile is a file the image type writes; Data is a text/template with
// .User (the blueprint's first user, or empty) and .Hostname.
type TypeFile struct {
	Path string
	Mode string
	Data string
}

// Services lists systemd units to enable, disable and mask.
type Services struct {
	Enabled  []string `json:"enabled,omitempty"`
	Disabled []string `json:"disabled,omitempty"`
	Masked   []string `json:"masked,omitempty"`
}

// Output is the artifact's format.
type Output struct {
	Format      string `json:"format"`
	Compat      string `json:"compat,omitempty"`
	Compression string `json:"compression,omitempty"`
	// VM is an appliance's virtual hardware (ova).
	VM *VM `json:"vm,omitempty"`
	// Container is a container image's runtime configuration (oci).
	Container *Container `json:"container,omitempty"`
}

// VM is the virtual hardware an appliance describes.
type VM struct {
	CPUs      int    `json:"cpus"`
	MemoryMiB int    `json:"memory_mib"`
	Firmware  string `json:"firmware"`
	OSType    string `json:"os_type"`
}

// Container is a container image's runtime configuration.
type Container struct {
	Cmd        []string `json:"cmd,omitempty"`
	Entrypoint []string `json:"entrypoint,omitempty"`
	Env        []string `json:"env,omitempty"`
	WorkingDir string   `json:"working_dir,omitempty"`
}

// Load reads the embedded definitions.
func Load() (*Registry, error) {
	return load(dataFS)
}

func load(fsys fs.FS) (*Registry, error) {
	types, err := loadImageTypeFiles(fsys)
	if err != nil {
		return nil, err
	}
	sets, err := loadSets(fsys)
	if err != nil {
		return nil, err
	}
	files, err := fs.Glob(fsys, "data/distros/*.yaml")
	if err != nil {
		return nil, err
	}
	reg := &Registry{sets: sets}
	for _, name := range files {
		var f distroFile
		if err := decodeStrict(fsys, name, &f); err != nil {
			return nil, err
		}
		d, err := newDistro(&f, types, sets)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		reg.distros = append(reg.distros, d)
	}
	sort.Slice(reg.distros, func(i, j int) bool { return reg.distros[i].Name < reg.distros[j].Name })
	return reg, nil
}

func newDistro(f *distroFile, types map[string]*imageTypeFile, sets *knownSets) (*Distro, error) {
	if f.Name == "" || f.Codename == "" || f.Keyring == "" {
		return nil, fmt.Errorf("name, codename and keyring are required")
	}
	d := &Distro{Name: f.Name, Product: f.Product, Family: f.Family, Codename: f.Codename, Keyring: f.Keyring, sets: sets}
	for _, r := range f.Repositories {
		d.Repositories = append(d.Repositories, RepositorySpec{ID: r.ID, MirrorRole: r.Mirror, Suites: r.Suites, Components: r.Components})
	}
	common := map[string]link{}
	if err := addLinks(common, f.DirectoryLinks, true, "directory_links"); err != nil {
		return nil, err
	}
	if err := addLinks(common, f.FileLinks, false, "file_links"); err != nil {
		return nil, err
	}
	for _, tn := range f.ImageTypes {
		if tf, ok := types[tn]; ok {
			for name := range tf.Arches {
				if !slices.ContainsFunc(f.Arches, func(af archFile) bool { return af.Name == name }) {
					return nil, fmt.Errorf("image type %s: arches: %q is not one of the distribution's architectures", tn, name)
				}
			}
		}
	}
	for _, af := range f.Arches {
		a := &Arch{Name: af.Name, DebianArch: af.DebianArch, KernelPackage: af.KernelPackage, CloudKernel: af.CloudKernel,
			NotBuildable: af.NotBuildable, SerialConsole: af.SerialConsole, distro: d}
		if a.SerialConsole == "" {
			a.SerialConsole = "ttyS0"
		}
		a.links = maps.Clone(common)
		if err := addLinks(a.links, af.DirectoryLinks, true, "arches."+af.Name+".directory_links"); err != nil {
			return nil, err
		}
		if af.GrubBIOS != nil {
			a.GrubBIOS = &GrubTarget{Target: af.GrubBIOS.Target, Packages: af.GrubBIOS.Packages}
		}
		if af.GrubUEFI != nil {
			a.GrubUEFI = &GrubTarget{Target: af.GrubUEFI.Target, Packages: af.GrubUEFI.Packages}
		}
		for _, tn := range af.ImageTypes {
			if !slices.Contains(f.ImageTypes, tn) {
				return nil, fmt.Errorf("arches.%s.image_types: %q is not among the distribution's image_types", af.Name, tn)
			}
		}
		for _, tn := range f.ImageTypes {
			if af.ImageTypes != nil && !slices.Contains(af.ImageTypes, tn) {
				continue
			}
			tf, ok := types[tn]
			if !ok {
				return nil, fmt.Errorf("unknown image type %q", tn)
			}
			if tf.Abstract {
				return nil, fmt.Errorf("image type %q is abstract and cannot be listed", tn)
			}
			it, err := newImageType(tf, a)
			if err != nil {
				return nil, fmt.Errorf("image type %s: %w", tn, err)
			}
			a.imageTypes = append(a.imageTypes, it)
		}
		d.arches = append(d.arches, a)
	}
	return d, nil
}

// addLinks adds the links of one data field to links. Each path is
// absolute and canonical, each target a clean path, and a path is listed
// once across the distribution and its architecture.
func addLinks(links map[string]link, from map[string]string, dir bool, field string) error {
	for p, target := range from {
		switch {
		case p == "/" || !strings.HasPrefix(p, "/") || path.Clean(p) != p:
			return fmt.Errorf("%s: %q is not an absolute, canonical path", field, p)
		case target == "" || path.Clean(target) != target || strings.ContainsAny(target, "\x00\n"):
			return fmt.Errorf("%s: %s: the target %q is not a clean path", field, p, target)
		}
		if _, dup := links[p]; dup {
			return fmt.Errorf("%s: %s is listed twice", field, p)
		}
		links[p] = link{target: target, dir: dir}
	}
	return nil
}

func parseSize(field, s string) (disk.Size, error) {
	if s == "" {
		return 0, nil
	}
	v, err := blueprint.ParseSize(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", field, err)
	}
	return disk.Size(v), nil
}

func newImageType(f *imageTypeFile, a *Arch) (*ImageType, error) {
	if o, ok := f.Arches[a.Name]; ok {
		g := *f
		if o.KernelFlavor != "" {
			g.KernelFlavor = o.KernelFlavor
		}
		if o.NetworkDrivers != nil {
			g.NetworkDrivers = o.NetworkDrivers
		}
		if o.KernelCmdline != nil {
			g.KernelCmdline = o.KernelCmdline
		}
		if o.Bootloader != "" {
			g.Bootloader = o.Bootloader
		}
		f = &g
	}
	if o := f.Arches[a.Name]; o.KernelCmdline == nil && a.SerialConsole != "ttyS0" {
		// The type's serial console is the architecture's, unless the
		// type names the arch's command line itself.
		g := *f
		g.KernelCmdline = make([]string, len(f.KernelCmdline))
		for i, arg := range f.KernelCmdline {
			if rest, ok := strings.CutPrefix(arg, "console=ttyS0"); ok {
				arg = "console=" + a.SerialConsole + rest
			}
			g.KernelCmdline[i] = arg
		}
		f = &g
	}
	it := &ImageType{
		Name: f.Name, Aliases: f.Aliases, Description: f.Description, Extension: f.Extension, MIMEType: f.MIMEType,
		Variant: f.Variant, Bootloader: f.Bootloader, Network: f.Network, KernelCmdline: f.KernelCmdline,
		SupportedOptions: f.SupportedOptions, arch: a,
	}
	it.Bootable = f.Bootable != nil && *f.Bootable
	it.Kernel = f.Kernel != nil && *f.Kernel
	it.KernelFlavor = f.KernelFlavor
	switch it.KernelFlavor {
	case "":
		it.KernelFlavor = "generic"
	case "generic", "cloud":
	default:
		return nil, fmt.Errorf("kernel_flavor %q is not generic or cloud", f.KernelFlavor)
	}
	it.NetworkDrivers = f.NetworkDrivers
	it.InitramfsDrivers = f.InitramfsDrivers
	if len(it.InitramfsDrivers) > 0 && !it.Kernel {
		return nil, fmt.Errorf("initramfs_drivers: the image type has no kernel")
	}
	if err := checkNetworkDrivers(it); err != nil {
		return nil, err
	}
	for _, arg := range f.KernelCmdline {
		// Debian's initramfs-tools sleeps for rootdelay= seconds on every
		// boot before it looks for the root device (it then waits for the
		// device by itself, up to max(30 s, rootdelay)).
		if strings.HasPrefix(arg, "rootdelay=") {
			return nil, fmt.Errorf("kernel_cmdline: %q makes Debian's initramfs sleep that long on every boot; leave it out (the initramfs waits for the root device by itself)", arg)
		}
	}
	if it.Variant == "" {
		it.Variant = "required"
	}
	if it.Bootloader == "" {
		it.Bootloader = BootNone
	}
	// An architecture without BIOS (aarch64) boots a hybrid type with
	// UEFI alone, and has no BIOS-only types.
	if a.GrubBIOS == nil && a.GrubUEFI != nil {
		switch it.Bootloader {
		case BootHybrid:
			it.Bootloader = BootUEFI
		case BootBIOS:
			return nil, fmt.Errorf("it boots with BIOS only, which %s does not have: list it in the arch's image_types only where it has BIOS", a.Name)
		}
	}
	if f.Packages != nil {
		it.Packages, it.ExcludePackages = f.Packages.Include, f.Packages.Exclude
	}
	if f.Services != nil {
		it.Services = Services{Enabled: f.Services.Enabled, Disabled: f.Services.Disabled, Masked: f.Services.Masked}
	}
	if f.Output == nil || f.Output.Format == "" {
		return nil, fmt.Errorf("output.format is required")
	}
	it.Output = Output{Format: f.Output.Format, Compat: f.Output.Compat, Compression: f.Output.Compression}
	format, ok := formats[it.Output.Format]
	if !ok {
		var names []string
		for n := range formats {
			names = append(names, n)
		}
		slices.Sort(names)
		return nil, fmt.Errorf("output.format %q is not one of %s", it.Output.Format, strings.Join(names, ", "))
	}
	if !slices.Contains(format.compressions, it.Output.Compression) {
		return nil, fmt.Errorf("output.compression %q does not apply to %s (it takes: %q)", it.Output.Compression, it.Output.Format, format.compressions)
	}
	if v := f.Output.VM; v != nil {
		if it.Output.Format != FormatOVA {
			return nil, fmt.Errorf("output.vm applies to ova only")
		}
		if v.CPUs < 1 || v.MemoryMiB < 256 || (v.Firmware != "bios" && v.Firmware != "efi") || v.OSType == "" {
			return nil, fmt.Errorf("output.vm needs cpus >= 1, memory_mib >= 256, firmware bios or efi, and os_type")
		}
		it.Output.VM = &VM{CPUs: v.CPUs, MemoryMiB: v.MemoryMiB, Firmware: v.Firmware, OSType: v.OSType}
	} else if it.Output.Format == FormatOVA {
		return nil, fmt.Errorf("an ova needs output.vm")
	}
	if c := f.Output.Container; c != nil {
		if it.Output.Format != FormatOCI {
			return nil, fmt.Errorf("output.container applies to oci only")
		}
		it.Output.Container = &Container{Cmd: c.Cmd, Entrypoint: c.Entrypoint, Env: c.Env, WorkingDir: c.WorkingDir}
	}
	for i, tf := range f.Files {
		if !strings.HasPrefix(tf.Path, "/") || tf.Mode == "" {
			return nil, fmt.Errorf("files[%d]: path must be absolute and mode set", i)
		}
		if _, err := template.New(tf.Path).Option("missingkey=error").Parse(tf.Data); err != nil {
			return nil, fmt.Errorf("files[%d]: %w", i, err)
		}
		it.Files = append(it.Files, TypeFile{Path: tf.Path, Mode: tf.Mode, Data: tf.Data})
	}
	var err error
	if it.DefaultSize, err = parseSize("default_size", f.DefaultSize); err != nil {
		return nil, err
	}
	if pt := f.PartitionTable; pt != nil {
		tpl := &disk.Template{Type: disk.TableType(pt.Type)}
		for i, p := range pt.Partitions {
			tp := disk.TemplatePartition{Role: disk.Role(p.Role), Name: p.Name, Bootable: p.Bootable}
			if tp.Size, err = parseSize(fmt.Sprintf("partition_table.partitions[%d].size", i), p.Size); err != nil {
				return nil, err
			}
			if tp.MinSize, err = parseSize(fmt.Sprintf("partition_table.partitions[%d].min_size", i), p.MinSize); err != nil {
				return nil, err
			}
			if fsf := p.Filesystem; fsf != nil {
				tp.Filesystem = &disk.TemplateFilesystem{Type: fsf.Type, Mountpoint: fsf.Mountpoint, Label: fsf.Label, FSTabOptions: fsf.FSTabOptions}
			}
			if tp.Role == disk.RoleBIOSBoot && it.Bootloader == BootUEFI {
				continue // nothing boots with BIOS: no partition for GRUB's BIOS core
			}
			tpl.Partitions = append(tpl.Partitions, tp)
		}
		it.PartitionTable = tpl
	}
	switch {
	case format.disk && it.PartitionTable == nil:
		return nil, fmt.Errorf("the %s format is a disk image and needs a partition table", it.Output.Format)
	case (it.Output.Format == FormatTar || it.Output.Format == FormatOCI) && (it.PartitionTable != nil || it.Bootable):
		return nil, fmt.Errorf("a %s archive is a root tree: it has no partition table and does not boot", it.Output.Format)
	case it.Output.Format == FormatISO && !it.Bootable:
		return nil, fmt.Errorf("an iso boots: set bootable: true")
	}
	if it.Bootable && (!it.Kernel || it.Bootloader == BootNone) {
		return nil, fmt.Errorf("a bootable image type needs kernel: true and a bootloader")
	}
	return it, nil
}

// Distros returns every distribution, sorted by name.
func (r *Registry) Distros() []*Distro { return r.distros }

// Distro returns the named distribution, or an error listing the known ones.
func (r *Registry) Distro(name string) (*Distro, error) {
	var names []string
	for _, d := range r.distros {
		if d.Name == name {
			return d, nil
		}
		names = append(names, d.Name)
	}
	return nil, fmt.Errorf("unknown distribution %q%s (known: %s)", name, didYouMean(name, names), strings.Join(names, ", "))
}

// Arches returns the distribution's architectures.
func (d *Distro) Arches() []*Arch { return d.arches }

// Arch returns the named architecture; Debian names (amd64) are accepted too.
func (d *Distro) Arch(name string) (*Arch, error) {
	var names []string
	for _, a := range d.arches {
		if a.Name == name || a.DebianArch == name {
			return a, nil
		}
		names = append(names, a.Name)
	}
	return nil, fmt.Errorf("unknown architecture %q for %s%s (known: %s)", name, d.Name, didYouMean(name, names), strings.Join(names, ", "))
}

// Distro returns the distribution the architecture belongs to.
func (a *Arch) Distro() *Distro { return a.distro }

// ImageTypes returns the architecture's image types.
func (a *Arch) ImageTypes() []*ImageType { return a.imageTypes }

// ImageType returns the image type with this name or alias.
func (a *Arch) ImageType(name string) (*ImageType, error) {
	var names []string
	for _, it := range a.imageTypes {
		if it.Name == name || slices.Contains(it.Aliases, name) {
			return it, nil
		}
		names = append(names, it.Name)
		names = append(names, it.Aliases...)
	}
	var elsewhere []string
	for _, o := range a.distro.arches {
		if o != a && slices.ContainsFunc(o.imageTypes, func(it *ImageType) bool { return it.Name == name || slices.Contains(it.Aliases, name) }) {
			elsewhere = append(elsewhere, o.Name)
		}
	}
	if len(elsewhere) > 0 {
		return nil, fmt.Errorf("image type %q is not built for %s on %s, only for %s (%s has: %s)", name, a.Name, a.distro.Name, strings.Join(elsewhere, ", "), a.Name, strings.Join(names, ", "))
	}
	return nil, fmt.Errorf("unknown image type %q for %s %s%s (known: %s)", name, a.distro.Name, a.Name, didYouMean(name, names), strings.Join(names, ", "))
}

// Arch returns the architecture the image type belongs to.
func (it *ImageType) Arch() *Arch { return it.arch }

// Filename is the artifact's file name for a blueprint name:
// <name>-<distro>-<arch>.<extension>.
func (it *ImageType) Filename(name string) string {
	return fmt.Sprintf("%s-%s-%s.%s", name, it.arch.distro.Name, it.arch.Name, it.Extension)
}

// DefaultPackages are the packages every image of this type gets: the
// type's own, the kernel and the bootloader's.
func (it *ImageType) DefaultPackages() []string {
	pkgs := slices.Clone(it.Packages)
	if k := it.KernelPackage(); k != "" {
		pkgs = append(pkgs, k)
	}
	for _, g := range it.grubTargets() {
		pkgs = append(pkgs, g.Packages...)
	}
	return pkgs
}

// KernelPackage is the kernel the image type installs by default ("" for
// types without a kernel).
func (it *ImageType) KernelPackage() string {
	if !it.Kernel {
		return ""
	}
	if it.KernelFlavor == "cloud" && it.arch.CloudKernel != "" {
		return it.arch.CloudKernel
	}
	return it.arch.KernelPackage
}

// grubTargets returns the GRUB platforms the image type boots with.
func (it *ImageType) grubTargets() []*GrubTarget {
	var out []*GrubTarget
	if (it.Bootloader == BootBIOS || it.Bootloader == BootHybrid) && it.arch.GrubBIOS != nil {
		out = append(out, it.arch.GrubBIOS)
	}
	if (it.Bootloader == BootUEFI || it.Bootloader == BootHybrid) && it.arch.GrubUEFI != nil {
		out = append(out, it.arch.GrubUEFI)
	}
	return out
}

// didYouMean suggests the closest candidate within two edits; ties go to
// the first in sorted order, so the suggestion is stable.
func didYouMean(name string, candidates []string) string {
	best, bestD := "", 3
	sorted := slices.Clone(candidates)
	slices.Sort(sorted)
	for _, c := range sorted {
		if d := levenshtein.ComputeDistance(name, c); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}
