package stages

import (
	"fmt"

	"github.com/kiln-project/kiln/internal/manifest"
)

// New returns the Stage that runs a manifest stage. Every stage type of the
// manifest has exactly one implementation, one file each.
func New(s manifest.Stage) (Stage, error) {
	switch o := s.Options.(type) {
	case nil:
		return nil, fmt.Errorf("stage %s has no options", s.Type)
	case *manifest.DebsInstall:
		return &DebsInstall{Opts: *o}, nil
	case *manifest.AptSources:
		return &AptSources{Opts: *o}, nil
	case *manifest.Network:
		return &Network{Opts: *o}, nil
	case *manifest.Hostname:
		return &Hostname{Opts: *o}, nil
	case *manifest.Timezone:
		return &Timezone{Opts: *o}, nil
	case *manifest.NTP:
		return &NTP{Opts: *o}, nil
	case *manifest.Locale:
		return &Locale{Opts: *o}, nil
	case *manifest.Keyboard:
		return &Keyboard{Opts: *o}, nil
	case *manifest.Groups:
		return &Groups{Opts: *o}, nil
	case *manifest.Users:
		return &Users{Opts: *o}, nil
	case *manifest.Firewall:
		return &Firewall{Opts: *o}, nil
	case *manifest.Systemd:
		return &Systemd{Opts: *o}, nil
	case *manifest.Directories:
		return &Directories{Opts: *o}, nil
	case *manifest.Files:
		return &Files{Opts: *o}, nil
	case *manifest.CACerts:
		return &CACerts{Opts: *o}, nil
	case *manifest.FSTab:
		return &FSTab{Opts: *o}, nil
	case *manifest.Bootloader:
		return &Bootloader{Opts: *o}, nil
	case *manifest.Initramfs:
		return &Initramfs{Opts: *o}, nil
	case *manifest.Cleanup:
		return &Cleanup{Opts: *o}, nil
	case *manifest.DiskImage:
		return &DiskImage{Opts: *o}, nil
	case *manifest.QemuImgConvert:
		return &QemuImgConvert{Opts: *o}, nil
	case *manifest.TarArchive:
		return &TarArchive{Opts: *o}, nil
	case *manifest.Compress:
		return &Compress{Opts: *o}, nil
	case *manifest.FileArchive:
		return &FileArchive{Opts: *o}, nil
	case *manifest.OVA:
		return &OVA{Opts: *o}, nil
	case *manifest.OCIArchive:
		return &OCIArchive{Opts: *o}, nil
	case *manifest.ISO:
		return &ISO{Opts: *o}, nil
	default:
		return nil, fmt.Errorf("stage type %s has no implementation", s.Type)
	}
}
