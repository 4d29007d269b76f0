package engine

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/kiln-project/kiln/internal/emulation"
	"github.com/kiln-project/kiln/internal/engine/sandbox"
	"github.com/kiln-project/kiln/internal/manifest"
)

// Tool is a host program the engine runs, and the Debian package that has it.
type Tool struct {
	Name    string
	Package string
	// Why says what needs it.
	Why string
}

// toolsByStage lists the host tools each stage type runs.
var toolsByStage = map[string][]Tool{
	manifest.DebsInstall{}.StageType(): {
		{"mmdebstrap", "mmdebstrap", "installs the packages into the image tree"},
		{"apt-ftparchive", "apt-utils", "indexes the pinned packages for the installation"},
	},
	manifest.DiskImage{}.StageType(): {
		{"sfdisk", "fdisk", "writes the partition table"},
		{"mkfs.ext4", "e2fsprogs", "builds ext4 filesystems from the tree"},
		{"mkfs.vfat", "dosfstools", "builds the EFI system partition"},
		{"mcopy", "mtools", "fills the EFI system partition without mounting it"},
	},
	manifest.QemuImgConvert{}.StageType(): {{"qemu-img", "qemu-utils", "converts the disk image"}},
	manifest.TarArchive{}.StageType(): {
		{"tar", "tar", "packs the root filesystem"},
		{"xz", "xz-utils", "compresses archives"},
		{"pigz", "pigz", "gzip-compresses archives on every processor"},
		{"zstd", "zstd", "compresses archives"},
	},
	manifest.Compress{}.StageType(): {
		{"xz", "xz-utils", "compresses disk images"},
		{"zstd", "zstd", "compresses disk images"},
	},
	manifest.FileArchive{}.StageType(): {
		{"tar", "tar", "packs the disk image into a sparse archive"},
		{"pigz", "pigz", "gzip-compresses the archive on every processor"},
	},
	manifest.ISO{}.StageType(): {
		{"mksquashfs", "squashfs-tools", "packs the live root filesystem"},
		{"xorriso", "xorriso", "writes the hybrid ISO"},
		{"grub-mkimage", "grub-common", "builds the ISO's GRUB from the image's own modules"},
		{"mkfs.vfat", "dosfstools", "builds the ISO's EFI boot image"},
		{"mcopy", "mtools", "fills the EFI boot image without mounting it"},
		{"zstd", "zstd", "compresses the installer's disk image"},
	},
}

// baseTools are needed by every build.
var baseTools = []Tool{
	{"cp", "coreutils", "caches and restores trees"},
}

// Requirements lists the host tools a manifest needs (all of them when m
// is nil).
func Requirements(m *manifest.Manifest) []Tool {
	out := slices.Clone(baseTools)
	add := func(ts []Tool) {
		for _, t := range ts {
			if !slices.ContainsFunc(out, func(o Tool) bool { return o.Name == t.Name }) {
				out = append(out, t)
			}
		}
	}
	if m == nil {
		for _, ts := range toolsByStage {
			add(ts)
		}
	} else {
		for _, p := range m.Pipelines {
			for _, s := range p.Stages {
				add(toolsByStage[s.Type])
			}
		}
	}
	slices.SortFunc(out, func(a, b Tool) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// HostProblems returns what the host lacks to build m: root, kernel
// features and tools, each with what to do about it.
func HostProblems(m *manifest.Manifest) []string {
	var problems []string
	if os.Geteuid() != 0 {
		problems = append(problems, "kiln builds as root (it creates device nodes and file owners in the image): run it with sudo")
	}
	if _, err := sandbox.Probe(context.Background()); err != nil {
		problems = append(problems, "the build sandbox cannot run here, and kiln never runs a tree's code without it "+
			"(it needs user namespaces, idmapped mounts on the cache's filesystem, pivot_root and seccomp; Linux 5.12 or later): "+err.Error())
	}
	if m != nil && m.Target.Arch != "" {
		if _, err := emulation.Check(m.Target.Arch); err != nil {
			problems = append(problems, err.Error())
		}
	}
	var missing []string
	for _, t := range Requirements(m) {
		if _, err := exec.LookPath(t.Name); err != nil {
			missing = append(missing, t.Package)
			problems = append(problems, fmt.Sprintf("%s is missing (%s)", t.Name, t.Why))
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		problems = append(problems, "install them with: apt-get install "+strings.Join(slices.Compact(missing), " "))
	}
	return problems
}

func checkHost(m *manifest.Manifest) error {
	if p := HostProblems(m); len(p) > 0 {
		return fmt.Errorf("this host cannot build the image:\n  %s", strings.Join(p, "\n  "))
	}
	return nil
}
