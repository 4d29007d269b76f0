package distro

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"

	"github.com/kiln-project/kiln/internal/manifest"
)

// outputPipelines are the pipelines after the os tree that make the
// artifact, by output format. The last one writes filename. A disk format
// starts from the same "image" pipeline (the raw disk, disk.raw), so every
// disk type of one blueprint shares it in the engine's cache.
func (p *Plan) outputPipelines(filename string) []manifest.Pipeline {
	it, a := p.it, p.it.arch
	o := it.Output
	file := func(name, input, filename string, opts manifest.StageOptions) manifest.Pipeline {
		return manifest.Pipeline{Name: name, Input: input, Produces: "file", Filename: filename, Stages: []manifest.Stage{manifest.NewStage(opts)}}
	}
	image := func(filename string) manifest.Pipeline {
		img := manifest.DiskImage{PartitionTable: *p.pt}
		if a.GrubBIOS != nil && (it.Bootloader == BootBIOS || it.Bootloader == BootHybrid) {
			img.BIOSBootloader = a.GrubBIOS.Target
		}
		return file("image", "os", filename, &img)
	}
	switch o.Format {
	case FormatTar:
		return []manifest.Pipeline{file("archive", "os", filename, &manifest.TarArchive{Compression: o.Compression})}
	case FormatOCI:
		return []manifest.Pipeline{file("oci", "os", filename, p.ociArchive())}
	case FormatISO:
		iso := &manifest.ISO{Volume: volumeID(p.bp.Name), KernelCmdline: p.kernelCmdline(customizations(p.bp))}
		for _, g := range it.grubTargets() {
			if g == a.GrubBIOS {
				iso.BIOS = g.Target
			} else {
				iso.UEFI = g.Target
			}
		}
		if p.pt == nil {
			return []manifest.Pipeline{file("iso", "os", filename, iso)}
		}
		// An installer carries the disk image it writes. The disk's fstab
		// names filesystems the live system does not have.
		iso.Payloads = []manifest.ISOPayload{{Input: "image", Path: "install/disk.img.zst", Compression: "zstd"}}
		iso.Exclude = []string{"etc/fstab"}
		isoPipeline := file("iso", "os", filename, iso)
		isoPipeline.Extra = []string{"image"}
		return []manifest.Pipeline{image("disk.raw"), isoPipeline}
	case FormatRaw:
		if o.Compression == "" {
			return []manifest.Pipeline{image(filename)}
		}
		return []manifest.Pipeline{image("disk.raw"), file("compressed", "image", filename, &manifest.Compress{Format: o.Compression})}
	case FormatQcow2:
		return []manifest.Pipeline{image("disk.raw"), file("qcow2", "image", filename, &manifest.QemuImgConvert{Format: "qcow2", Compat: o.Compat})}
	case FormatVMDK:
		return []manifest.Pipeline{image("disk.raw"), file("vmdk", "image", filename, &manifest.QemuImgConvert{Format: "vmdk", Subformat: "streamOptimized"})}
	case FormatVHD:
		// Azure takes fixed VHDs only, of a whole number of MiB (the
		// partition table's size always is).
		return []manifest.Pipeline{image("disk.raw"), file("vhd", "image", filename, &manifest.QemuImgConvert{Format: "vpc", Subformat: "fixed"})}
	case FormatOVA:
		vm := o.VM
		ova := &manifest.OVA{Name: ovaName(p.bp.Name), VMName: p.bp.Name, Capacity: int64(p.pt.Size), CPUs: vm.CPUs, MemoryMiB: vm.MemoryMiB, Firmware: vm.Firmware, OSType: strings.ReplaceAll(vm.OSType, "{release}", p.it.arch.distro.release())}
		return []manifest.Pipeline{
			image("disk.raw"),
			file("vmdk", "image", "disk.vmdk", &manifest.QemuImgConvert{Format: "vmdk", Subformat: "streamOptimized"}),
			file("ova", "vmdk", filename, ova),
		}
	case FormatDiskTar:
		return []manifest.Pipeline{image("disk.raw"), file("archive", "image", filename, &manifest.FileArchive{Name: "disk.raw", Format: "oldgnu", Sparse: true, Compression: o.Compression})}
	}
	panic("unreachable: output format " + o.Format + " was checked when the image type was loaded")
}

// ociArchive is the container image's configuration: the image type's,
// with the blueprint's first user as the user it runs as.
func (p *Plan) ociArchive() *manifest.OCIArchive {
	o := &manifest.OCIArchive{Arch: p.it.arch.DebianArch}
	if c := p.it.Output.Container; c != nil {
		o.Config = manifest.OCIConfig{Cmd: c.Cmd, Entrypoint: c.Entrypoint, Env: c.Env, WorkingDir: c.WorkingDir}
	}
	if users := p.users(customizations(p.bp)); len(users) > 0 {
		o.Config.User = users[0].Name
	}
	version := p.bp.Version
	o.Config.Labels = map[string]string{"org.opencontainers.image.title": p.bp.Name}
	if version != "" {
		o.Config.Labels["org.opencontainers.image.version"] = version
	} else {
		version = "latest"
	}
	o.Tag = strings.ToLower(p.bp.Name) + ":" + version
	return o
}

// typeFiles renders the image type's files.
func (p *Plan) typeFiles(hostname string) (*manifest.Files, error) {
	data := struct{ User, Hostname string }{Hostname: hostname}
	if users := p.users(customizations(p.bp)); len(users) > 0 {
		data.User = users[0].Name
	}
	out := &manifest.Files{}
	for _, f := range p.it.Files {
		t, err := template.New(f.Path).Option("missingkey=error").Parse(f.Data)
		if err != nil {
			return nil, fmt.Errorf("image type %s: %s: %w", p.it.Name, f.Path, err)
		}
		var b bytes.Buffer
		if err := t.Execute(&b, data); err != nil {
			return nil, fmt.Errorf("image type %s: %s: %w", p.it.Name, f.Path, err)
		}
		out.Files = append(out.Files, manifest.File{Path: f.Path, Mode: f.Mode, User: "root", Group: "root", Data: b.String()})
	}
	return out, nil
}

// volumeID is an ISO volume ID from a blueprint name: at most 32 of A-Z,
// 0-9 and _.
func volumeID(name string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(name) {
		switch {
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() == 32 {
			break
		}
	}
	if strings.Trim(b.String(), "_") == "" {
		return "KILN"
	}
	return b.String()
}

// ovaName is the base name of an OVA's members: the blueprint name with
// anything but [A-Za-z0-9._-] replaced.
func ovaName(name string) string {
	s := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			return r
		}
		return '-'
	}, name)
	if strings.Trim(s, ".-_") == "" {
		return "image"
	}
	return s
}

// release is the distribution's release number ("12" of debian-12).
func (d *Distro) release() string {
	_, r, _ := strings.Cut(d.Name, "-")
	return r
}
