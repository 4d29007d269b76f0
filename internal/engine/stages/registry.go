package stages

import (
	"fmt"
	"slices"

	"github.com/kiln-project/kiln/internal/manifest"
)

// Type is one stage type: the options a manifest decodes its entries into
// (a struct of package manifest, which names the type and decodes it) and
// the stage that checks those options and runs them.
type Type struct {
	// Name is the type's name in a manifest ("kiln.hostname"), taken from
	// its options' StageType.
	Name string
	// wrap returns the stage for options of this type, or false for
	// options of another type.
	wrap func(manifest.StageOptions) (Stage, bool)
}

// register makes the Type of the options O, run by the stage newStage
// returns. The name comes from O itself, so it is written once.
func register[O manifest.StageOptions](newStage func(O) Stage) Type {
	var zero O
	return Type{
		Name: zero.StageType(),
		wrap: func(o manifest.StageOptions) (Stage, bool) {
			switch o := any(o).(type) {
			case *O:
				if o == nil {
					return nil, false
				}
				return newStage(*o), true
			case O:
				return newStage(o), true
			}
			return nil, false
		},
	}
}

// registry is the one list of stage implementations, one file each. The
// manifest's decoder knows the same names (TestRegistryMatchesManifest).
var registry = []Type{
	register(func(o manifest.DebsInstall) Stage { return &DebsInstall{Opts: o} }),
	register(func(o manifest.AptSources) Stage { return &AptSources{Opts: o} }),
	register(func(o manifest.Network) Stage { return &Network{Opts: o} }),
	register(func(o manifest.Hostname) Stage { return &Hostname{Opts: o} }),
	register(func(o manifest.Timezone) Stage { return &Timezone{Opts: o} }),
	register(func(o manifest.NTP) Stage { return &NTP{Opts: o} }),
	register(func(o manifest.Locale) Stage { return &Locale{Opts: o} }),
	register(func(o manifest.Keyboard) Stage { return &Keyboard{Opts: o} }),
	register(func(o manifest.Groups) Stage { return &Groups{Opts: o} }),
	register(func(o manifest.Users) Stage { return &Users{Opts: o} }),
	register(func(o manifest.Firewall) Stage { return &Firewall{Opts: o} }),
	register(func(o manifest.Systemd) Stage { return &Systemd{Opts: o} }),
	register(func(o manifest.Directories) Stage { return &Directories{Opts: o} }),
	register(func(o manifest.Files) Stage { return &Files{Opts: o} }),
	register(func(o manifest.CACerts) Stage { return &CACerts{Opts: o} }),
	register(func(o manifest.FSTab) Stage { return &FSTab{Opts: o} }),
	register(func(o manifest.Bootloader) Stage { return &Bootloader{Opts: o} }),
	register(func(o manifest.Initramfs) Stage { return &Initramfs{Opts: o} }),
	register(func(o manifest.Cleanup) Stage { return &Cleanup{Opts: o} }),
	register(func(o manifest.DiskImage) Stage { return &DiskImage{Opts: o} }),
	register(func(o manifest.QemuImgConvert) Stage { return &QemuImgConvert{Opts: o} }),
	register(func(o manifest.TarArchive) Stage { return &TarArchive{Opts: o} }),
	register(func(o manifest.Compress) Stage { return &Compress{Opts: o} }),
	register(func(o manifest.FileArchive) Stage { return &FileArchive{Opts: o} }),
	register(func(o manifest.OVA) Stage { return &OVA{Opts: o} }),
	register(func(o manifest.OCIArchive) Stage { return &OCIArchive{Opts: o} }),
	register(func(o manifest.ISO) Stage { return &ISO{Opts: o} }),
	register(func(o manifest.Firstboot) Stage { return &Firstboot{Opts: o} }),
	register(func(o manifest.SSHD) Stage { return &SSHD{Opts: o} }),
}

// byName indexes registry.
var byName = func() map[string]Type {
	m := make(map[string]Type, len(registry))
	for _, t := range registry {
		if _, dup := m[t.Name]; dup {
			panic("stages: stage type " + t.Name + " is registered twice")
		}
		m[t.Name] = t
	}
	return m
}()

// Types lists the name of every stage type that has an implementation,
// sorted.
func Types() []string {
	names := make([]string, 0, len(registry))
	for _, t := range registry {
		names = append(names, t.Name)
	}
	slices.Sort(names)
	return names
}

// New returns the Stage that runs a manifest stage. It does not check the
// options: call the stage's Validate before running it (Check does both).
func New(s manifest.Stage) (Stage, error) {
	if s.Options == nil {
		return nil, fmt.Errorf("stage %s has no options", s.Type)
	}
	t, ok := byName[s.Type]
	if !ok {
		return nil, fmt.Errorf("stage type %s has no implementation", s.Type)
	}
	st, ok := t.wrap(s.Options)
	if !ok {
		return nil, fmt.Errorf("stage %s: options of type %T belong to stage type %s", s.Type, s.Options, s.Options.StageType())
	}
	return st, nil
}

// Check returns the Stage that runs a manifest stage once its options
// pass the stage's Validate: everything that can be known about a stage
// before it runs, without a tree, a tool or the network.
func Check(s manifest.Stage) (Stage, error) {
	st, err := New(s)
	if err != nil {
		return nil, err
	}
	if err := st.Validate(); err != nil {
		return nil, err
	}
	return st, nil
}
