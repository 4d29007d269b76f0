package distro

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"reflect"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
)

// The definitions: one file per distribution and one per image type. They
// are decoded strictly (an unknown key is an error) and kept flat: an image
// type may name one other with `extends:`, resolved in Go, field by field.
//
//go:embed data/distros/*.yaml data/imagetypes/*.yaml data/sets/*.txt
var dataFS embed.FS

type distroFile struct {
	Name         string     `yaml:"name"`
	Product      string     `yaml:"product"`
	Family       string     `yaml:"family"`
	Codename     string     `yaml:"codename"`
	Keyring      string     `yaml:"keyring"`
	Repositories []repoFile `yaml:"repositories"`
	Arches       []archFile `yaml:"arches"`
	ImageTypes   []string   `yaml:"image_types"`
	// DirectoryLinks and FileLinks are the symbolic links of a freshly
	// installed tree, from absolute path to target as the link holds it,
	// split by what the target is.
	DirectoryLinks map[string]string `yaml:"directory_links"`
	FileLinks      map[string]string `yaml:"file_links"`
}

type repoFile struct {
	ID         string   `yaml:"id"`
	Mirror     string   `yaml:"mirror"`
	Suites     []string `yaml:"suites"`
	Components []string `yaml:"components"`
}

type archFile struct {
	Name          string    `yaml:"name"`
	DebianArch    string    `yaml:"debian_arch"`
	KernelPackage string    `yaml:"kernel_package"`
	CloudKernel   string    `yaml:"cloud_kernel_package"`
	GrubBIOS      *grubFile `yaml:"grub_bios"`
	GrubUEFI      *grubFile `yaml:"grub_uefi"`
	NotBuildable  string    `yaml:"not_buildable"`
	// SerialConsole is the first serial port's device as the kernel
	// names it on the architecture's usual virtual machine (ttyS0 on
	// x86_64, ttyAMA0 on aarch64): an image type's console=ttyS0 names
	// it instead.
	SerialConsole string `yaml:"serial_console"`
	// ImageTypes, when set, lists the distribution's image types this
	// architecture has (the rest are not offered for it).
	ImageTypes []string `yaml:"image_types"`
	// DirectoryLinks are the architecture's own directory links (/lib64).
	DirectoryLinks map[string]string `yaml:"directory_links"`
}

type grubFile struct {
	Target   string   `yaml:"target"`
	Packages []string `yaml:"packages"`
}

type imageTypeFile struct {
	Name             string              `yaml:"name"`
	Extends          string              `yaml:"extends"`
	Abstract         bool                `yaml:"abstract"`
	Aliases          []string            `yaml:"aliases"`
	Description      string              `yaml:"description"`
	Extension        string              `yaml:"extension"`
	MIMEType         string              `yaml:"mime_type"`
	Bootable         *bool               `yaml:"bootable"`
	Variant          string              `yaml:"variant"`
	Kernel           *bool               `yaml:"kernel"`
	KernelFlavor     string              `yaml:"kernel_flavor"`
	NetworkDrivers   []string            `yaml:"network_drivers"`
	InitramfsDrivers []string            `yaml:"initramfs_drivers"`
	Bootloader       string              `yaml:"bootloader"`
	Network          string              `yaml:"network"`
	Packages         *packagesFile       `yaml:"packages"`
	Services         *servicesFile       `yaml:"services"`
	KernelCmdline    []string            `yaml:"kernel_cmdline"`
	DefaultSize      string              `yaml:"default_size"`
	PartitionTable   *partitionTableFile `yaml:"partition_table"`
	Output           *outputFile         `yaml:"output"`
	Files            []fileFile          `yaml:"files"`
	SupportedOptions []string            `yaml:"supported_options"`
	// Arches holds what differs on one architecture, by kiln's name of
	// it. It is inherited as a whole, like any other field.
	Arches map[string]archOverrideFile `yaml:"arches"`
}

// archOverrideFile is what an image type changes on one architecture;
// each field set replaces the type's own.
type archOverrideFile struct {
	KernelFlavor   string   `yaml:"kernel_flavor"`
	NetworkDrivers []string `yaml:"network_drivers"`
	KernelCmdline  []string `yaml:"kernel_cmdline"`
	Bootloader     string   `yaml:"bootloader"`
}

// fileFile is a file every image of the type gets. Data is a text/template
// with .User (the blueprint's first user, or empty) and .Hostname.
type fileFile struct {
	Path string `yaml:"path"`
	Mode string `yaml:"mode"`
	Data string `yaml:"data"`
}

type packagesFile struct {
	Include []string `yaml:"include"`
	Exclude []string `yaml:"exclude"`
}

type servicesFile struct {
	Enabled  []string `yaml:"enabled"`
	Disabled []string `yaml:"disabled"`
	Masked   []string `yaml:"masked"`
}

type partitionTableFile struct {
	Type       string          `yaml:"type"`
	Partitions []partitionFile `yaml:"partitions"`
}

type partitionFile struct {
	Role       string          `yaml:"role"`
	Name       string          `yaml:"name"`
	Size       string          `yaml:"size"`
	MinSize    string          `yaml:"min_size"`
	Bootable   bool            `yaml:"bootable"`
	Filesystem *filesystemFile `yaml:"filesystem"`
}

type filesystemFile struct {
	Type         string `yaml:"type"`
	Mountpoint   string `yaml:"mountpoint"`
	Label        string `yaml:"label"`
	FSTabOptions string `yaml:"fstab_options"`
}

type outputFile struct {
	Format      string         `yaml:"format"`
	Compat      string         `yaml:"compat"`
	Compression string         `yaml:"compression"`
	VM          *vmFile        `yaml:"vm"`
	Container   *containerFile `yaml:"container"`
}

// vmFile is the virtual hardware an appliance (OVA) describes.
type vmFile struct {
	CPUs      int    `yaml:"cpus"`
	MemoryMiB int    `yaml:"memory_mib"`
	Firmware  string `yaml:"firmware"`
	OSType    string `yaml:"os_type"`
}

// containerFile is a container image's runtime configuration.
type containerFile struct {
	Cmd        []string `yaml:"cmd"`
	Entrypoint []string `yaml:"entrypoint"`
	Env        []string `yaml:"env"`
	WorkingDir string   `yaml:"working_dir"`
}

func decodeStrict(fsys fs.FS, name string, v any) error {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return err
	}
	if err := yaml.NewDecoder(bytes.NewReader(b), yaml.DisallowUnknownField()).Decode(v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// loadImageTypeFiles reads every image type file and resolves `extends:`.
func loadImageTypeFiles(fsys fs.FS) (map[string]*imageTypeFile, error) {
	names, err := fs.Glob(fsys, "data/imagetypes/*.yaml")
	if err != nil {
		return nil, err
	}
	raw := map[string]*imageTypeFile{}
	for _, n := range names {
		var f imageTypeFile
		if err := decodeStrict(fsys, n, &f); err != nil {
			return nil, err
		}
		if want := strings.TrimSuffix(path.Base(n), ".yaml"); f.Name != want {
			return nil, fmt.Errorf("%s: name %q does not match the file name", n, f.Name)
		}
		raw[f.Name] = &f
	}
	resolved := map[string]*imageTypeFile{}
	for name := range raw {
		f, err := resolveExtends(raw, name, nil)
		if err != nil {
			return nil, err
		}
		resolved[name] = f
	}
	return resolved, nil
}

// resolveExtends returns the image type with every field it leaves unset
// taken from the type it extends (recursively). Name, Extends, Abstract and
// Aliases are never inherited. Packages, services and files add to the
// parent's (a child lists only what it adds); every other field the child
// sets replaces the parent's.
func resolveExtends(raw map[string]*imageTypeFile, name string, seen []string) (*imageTypeFile, error) {
	f, ok := raw[name]
	if !ok {
		return nil, fmt.Errorf("image type %q extends unknown image type %q", seen[len(seen)-1], name)
	}
	for _, s := range seen {
		if s == name {
			return nil, fmt.Errorf("image types extend each other in a loop: %s", strings.Join(append(seen, name), " -> "))
		}
	}
	out := *f
	if f.Extends == "" {
		return &out, nil
	}
	parent, err := resolveExtends(raw, f.Extends, append(seen, name))
	if err != nil {
		return nil, err
	}
	if f.Packages != nil && parent.Packages != nil {
		out.Packages = &packagesFile{
			Include: append(slices.Clone(parent.Packages.Include), f.Packages.Include...),
			Exclude: append(slices.Clone(parent.Packages.Exclude), f.Packages.Exclude...),
		}
	}
	if f.Services != nil && parent.Services != nil {
		out.Services = &servicesFile{
			Enabled:  append(slices.Clone(parent.Services.Enabled), f.Services.Enabled...),
			Disabled: append(slices.Clone(parent.Services.Disabled), f.Services.Disabled...),
			Masked:   append(slices.Clone(parent.Services.Masked), f.Services.Masked...),
		}
	}
	if len(f.Files) > 0 {
		out.Files = append(slices.Clone(parent.Files), f.Files...)
	}
	dst, src := reflect.ValueOf(&out).Elem(), reflect.ValueOf(parent).Elem()
	for i := 0; i < dst.NumField(); i++ {
		switch dst.Type().Field(i).Name {
		case "Name", "Extends", "Abstract", "Aliases":
			continue
		}
		if dst.Field(i).IsZero() {
			dst.Field(i).Set(src.Field(i))
		}
	}
	return &out, nil
}
