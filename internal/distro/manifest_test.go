package distro

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/depsolve"
	"github.com/kiln-project/kiln/internal/disk"
	"github.com/kiln-project/kiln/internal/manifest"
)

var update = flag.Bool("update", false, "rewrite the golden manifests under testdata/manifests")

var testMirrors = map[string]string{"debian": "http://mirror.example/debian", "debian-security": "http://mirror.example/debian-security"}

func parseBlueprint(t *testing.T, path string) *blueprint.Blueprint {
	t.Helper()
	bp, err := blueprint.ParseFile(path)
	require.NoError(t, err)
	return bp
}

// makeManifest plans and finishes a manifest with the deterministic fake
// resolver.
func makeManifest(t *testing.T, it *ImageType, bp *blueprint.Blueprint, opts Options) ([]byte, *manifest.Manifest) {
	t.Helper()
	if opts.Mirrors == nil {
		opts.Mirrors = testMirrors
	}
	plan, err := it.Manifest(bp, opts)
	require.NoError(t, err)
	res, err := depsolve.Fake{}.Resolve(context.Background(), plan.Request)
	require.NoError(t, err)
	m, err := plan.Finish(res)
	require.NoError(t, err)
	b, err := m.Marshal()
	require.NoError(t, err)
	return b, m
}

// goldenCases is the matrix whose manifests are checked in: every change to
// a manifest shows up as a diff of these files and is made on purpose.
var goldenCases = []struct{ blueprint, distro, imageType string }{
	{"minimal.toml", "debian-12", "qcow2"},
	{"minimal.toml", "debian-12", "raw"},
	{"minimal.toml", "debian-12", "tar"},
	{"minimal.toml", "debian-12", "raw-xz"},
	{"minimal.toml", "debian-12", "raw-zst"},
	{"minimal.toml", "debian-12", "ami"},
	{"minimal.toml", "debian-12", "ami-xz"},
	{"minimal.toml", "debian-12", "vhd"},
	{"minimal.toml", "debian-12", "gce"},
	{"minimal.toml", "debian-12", "vmdk"},
	{"minimal.toml", "debian-12", "ova"},
	{"minimal.toml", "debian-12", "wsl"},
	{"minimal.toml", "debian-12", "container"},
	{"minimal.toml", "debian-12", "live-iso"},
	{"minimal.toml", "debian-12", "image-installer"},
	{"minimal.toml", "debian-13", "qcow2"},
	{"../../../../examples/web.toml", "debian-12", "qcow2"},
	{"full.json", "debian-12", "qcow2"},
	{"full.json", "debian-13", "raw"},
	{"custom.toml", "debian-12", "qcow2"},
}

func TestGoldenManifests(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	for _, tc := range goldenCases {
		base := strings.TrimSuffix(filepath.Base(tc.blueprint), filepath.Ext(tc.blueprint))
		name := fmt.Sprintf("%s-%s-%s", base, tc.distro, tc.imageType)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			bp := parseBlueprint(t, filepath.Join("testdata", "blueprints", tc.blueprint))
			got, _ := makeManifest(t, imageType(t, reg, tc.distro, "x86_64", tc.imageType), bp, Options{})
			golden := filepath.Join("testdata", "manifests", name+".json")
			if *update {
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./internal/distro -update to create it")
			if string(want) != string(got) {
				diff, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{A: difflib.SplitLines(string(want)), B: difflib.SplitLines(string(got)), FromFile: golden, ToFile: "generated", Context: 3})
				t.Errorf("manifest changed; if on purpose, run go test ./internal/distro -update and review the diff:\n%s", diff)
			}
			_, err = manifest.Parse(got)
			require.NoError(t, err, "the manifest reads back")
		})
	}
}

func TestManifestIsDeterministic(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	it := imageType(t, reg, "debian-12", "x86_64", "qcow2")
	bp := parseBlueprint(t, "testdata/blueprints/full.json")
	a, _ := makeManifest(t, it, bp, Options{})
	for i := 0; i < 5; i++ {
		bp := parseBlueprint(t, "testdata/blueprints/full.json")
		b, _ := makeManifest(t, it, bp, Options{})
		require.Equal(t, sha256.Sum256(a), sha256.Sum256(b), "same inputs, same bytes")
	}
	seed := uint64(99)
	c, mc := makeManifest(t, it, bp, Options{Seed: &seed})
	assert.NotEqual(t, string(a), string(c), "another seed changes the identifiers")
	assert.Equal(t, uint64(99), mc.Target.Seed)
	d, _ := makeManifest(t, it, bp, Options{Seed: &seed})
	assert.Equal(t, string(c), string(d), "the same explicit seed gives the same bytes")
}

func stageOf[T manifest.StageOptions](t *testing.T, m *manifest.Manifest, pipeline string) T {
	t.Helper()
	for _, s := range m.Pipeline(pipeline).Stages {
		if o, ok := s.Options.(T); ok {
			return o
		}
	}
	var zero T
	t.Fatalf("pipeline %s has no %T stage", pipeline, zero)
	return zero
}

func TestManifestCarriesTheBlueprint(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	bp := parseBlueprint(t, "testdata/blueprints/full.json")
	_, m := makeManifest(t, imageType(t, reg, "debian-12", "x86_64", "qcow2"), bp, Options{})

	debs := stageOf[*manifest.DebsInstall](t, m, "os")
	for _, want := range []string{"nginx", "curl", "htop", "task-ssh-server", "linux-image-amd64", "grub-pc-bin", "grub-efi-amd64-bin", "nftables", "locales", "keyboard-configuration", "systemd-timesyncd"} {
		assert.Contains(t, debs.Packages, want)
	}
	assert.Equal(t, "full.example.com", stageOf[*manifest.Hostname](t, m, "os").Hostname)
	assert.Equal(t, "America/New_York", stageOf[*manifest.Timezone](t, m, "os").Zone)
	assert.Equal(t, []string{"time.example.com", "192.0.2.1"}, stageOf[*manifest.NTP](t, m, "os").Servers)
	assert.Equal(t, "de_DE.UTF-8", stageOf[*manifest.Locale](t, m, "os").Default)
	assert.Equal(t, manifest.Keyboard{Layout: "de", Variant: "nodeadkeys"}, *stageOf[*manifest.Keyboard](t, m, "os"))

	users := stageOf[*manifest.Users](t, m, "os").Users
	require.Len(t, users, 2, "ops from user[], root from the legacy sshkey[]")
	assert.Equal(t, "ops", users[0].Name)
	assert.True(t, strings.HasPrefix(users[0].PasswordHash, "$6$kilnsalt$"))
	assert.Len(t, users[0].SSHKeys, 1)
	assert.True(t, users[0].ForcePasswordReset)
	assert.Equal(t, "root", users[1].Name)

	fw := stageOf[*manifest.Firewall](t, m, "os")
	// The blueprint's ports, then its services' and ssh's (open unless
	// disabled), each port once: the manifest shows what is opened.
	assert.Equal(t, []manifest.FirewallPort{{From: 22, To: 22, Protocol: "tcp"}, {From: 8000, To: 8010, Protocol: "udp"}, {From: 443, To: 443, Protocol: "tcp"}, {From: 80, To: 80, Protocol: "tcp"}}, fw.Ports)
	assert.Empty(t, fw.EnabledServices, "services are resolved to their ports")
	assert.Empty(t, fw.DisabledServices, "ssh stays open")

	sd := stageOf[*manifest.Systemd](t, m, "os")
	assert.Contains(t, sd.Enabled, "nginx")
	assert.Contains(t, sd.Enabled, "nftables")
	assert.NotContains(t, sd.Enabled, "systemd-resolved", "masked in the blueprint, so not enabled")
	assert.Equal(t, []string{"systemd-resolved"}, sd.Masked)

	var files []manifest.File
	for _, s := range m.Pipeline("os").Stages {
		if f, ok := s.Options.(*manifest.Files); ok {
			files = append(files, f.Files...)
		}
	}
	assert.Contains(t, files, manifest.File{Path: "/srv/app/config.ini", Mode: "0640", User: "ops", Group: "web", Data: "[app]\nport = 8000\n"})
	assert.Equal(t, "/etc/systemd/system/app.service", files[0].Path, "the shipped unit, before the units are enabled")
	dirs := stageOf[*manifest.Directories](t, m, "os").Directories
	assert.Equal(t, "1300", dirs[0].Group, "numeric owners stay numeric")

	img := stageOf[*manifest.DiskImage](t, m, "image")
	var mounts []string
	for _, fs := range img.PartitionTable.Filesystems() {
		mounts = append(mounts, fs.Mountpoint)
	}
	assert.Equal(t, []string{"/boot/efi", "/var", "/home", "/"}, mounts)
	assert.Equal(t, "i386-pc", img.BIOSBootloader)

	fstab := stageOf[*manifest.FSTab](t, m, "os").Entries
	require.Len(t, fstab, 4)
	bl := stageOf[*manifest.Bootloader](t, m, "os")
	assert.Equal(t, img.PartitionTable.FindMountpoint("/").Payload.UUID, bl.RootFSUUID, "GRUB boots the root filesystem by its UUID")
	assert.Equal(t, []string{"console=tty0", "console=ttyS0,115200n8", "nosmt", "mitigations=auto"}, bl.KernelCmdline)
	assert.Equal(t, "x86_64-efi", bl.UEFI)

	src := stageOf[*manifest.AptSources](t, m, "os").Sources
	require.Len(t, src, 3, "debian, debian-security and the blueprint's repository")
	assert.Equal(t, "http://mirror.example/debian", src[0].URIs[0])

	assert.Equal(t, "qcow2", m.Output.Pipeline)
	assert.Equal(t, "full-debian-12-x86_64.qcow2", m.Output.Filename)
	q := stageOf[*manifest.QemuImgConvert](t, m, "qcow2")
	assert.Equal(t, "1.1", q.Compat)
}

func TestManifestWithoutSecurityMirror(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	it := imageType(t, reg, "debian-12", "x86_64", "tar")
	plan, err := it.Manifest(&blueprint.Blueprint{Name: "x"}, Options{Mirrors: map[string]string{"debian": "http://mirror.example/debian"}})
	require.NoError(t, err)
	require.Len(t, plan.Warnings, 1)
	assert.Contains(t, plan.Warnings[0], "debian-security")
	require.Len(t, plan.Request.Repositories, 1)

	_, err = it.Manifest(&blueprint.Blueprint{Name: "x"}, Options{})
	assert.ErrorContains(t, err, "no mirror is configured for debian-12")
}

func TestManifestAarch64(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	it := imageType(t, reg, "debian-12", "aarch64", "qcow2")
	plan, err := it.Manifest(&blueprint.Blueprint{Name: "x"}, Options{Mirrors: testMirrors})
	require.NoError(t, err)
	assert.Equal(t, "arm64", plan.Request.Arch)
	_, m := makeManifest(t, it, &blueprint.Blueprint{Name: "x"}, Options{})
	assert.Equal(t, "aarch64", m.Target.Arch)
	bl := stageOf[*manifest.Bootloader](t, m, "os")
	assert.Equal(t, "arm64-efi", bl.UEFI)
	assert.Empty(t, bl.BIOS, "aarch64 boots with UEFI only")
	assert.Contains(t, bl.KernelCmdline, "console=ttyAMA0,115200n8")
	img := stageOf[*manifest.DiskImage](t, m, "image")
	assert.Empty(t, img.BIOSBootloader)
	for _, p := range img.PartitionTable.Partitions {
		assert.NotEqual(t, disk.RoleBIOSBoot, p.Role)
	}
}

func TestManifestNotBuildableArch(t *testing.T) {
	t.Parallel()
	fsys := minimalFS()
	fsys["data/distros/d.yaml"].Data = []byte("name: d\ncodename: c\nkeyring: /k\narches: [{name: x86_64, debian_arch: amd64, not_buildable: no kernel for it yet}]\nimage_types: [t]\n")
	reg, err := load(fsys)
	require.NoError(t, err)
	_, err = imageType(t, reg, "d", "x86_64", "t").Manifest(&blueprint.Blueprint{Name: "x"}, Options{Mirrors: map[string]string{"debian": "http://mirror.example/debian"}})
	assert.ErrorContains(t, err, "d x86_64 images cannot be built on this host: no kernel for it yet")
}

func TestExplainSolveError(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	bp := &blueprint.Blueprint{Name: "x", Packages: []blueprint.Package{{Name: "curl"}, {Name: "missing-nginxx"}}}
	plan, err := imageType(t, reg, "debian-12", "x86_64", "tar").Manifest(bp, Options{Mirrors: testMirrors})
	require.NoError(t, err)
	_, err = depsolve.Fake{}.Resolve(context.Background(), plan.Request)
	require.Error(t, err)
	err = plan.ExplainSolveError(&depsolve.MissingPackagesError{Missing: []depsolve.MissingPackage{{Name: "missing-nginxx", Suggestions: []string{"nginx"}}}})
	var problems blueprint.Errors
	require.ErrorAs(t, err, &problems)
	assert.Equal(t, blueprint.Problem{Path: "packages[1]", Message: `package "missing-nginxx" does not exist in debian-12 (did you mean "nginx"?)`}, problems[0])
}

// TestImageTypesAddToWhatTheyExtend checks that a type's packages,
// services and files add to its parents', and that its files are rendered
// with the blueprint's first user.
func TestImageTypesAddToWhatTheyExtend(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	bp := parseBlueprint(t, "testdata/blueprints/full.json")
	_, m := makeManifest(t, imageType(t, reg, "debian-12", "x86_64", "gcp"), bp, Options{})
	debs := stageOf[*manifest.DebsInstall](t, m, "os").Packages
	for _, want := range []string{"openssh-server", "cloud-init", "cloud-guest-utils", "systemd-timesyncd", "linux-image-cloud-amd64", "nginx"} {
		assert.Contains(t, debs, want, "from system-base, cloud-base, gce and the blueprint")
	}
	assert.Contains(t, stageOf[*manifest.Systemd](t, m, "os").Enabled, "systemd-timesyncd")
	assert.Contains(t, stageOf[*manifest.Systemd](t, m, "os").Enabled, "ssh")
	var paths []string
	for _, f := range stageOf[*manifest.Files](t, m, "os").Files {
		paths = append(paths, f.Path)
	}
	assert.Contains(t, paths, "/etc/cloud/cloud.cfg.d/90_kiln_datasource.cfg")
	assert.Contains(t, paths, "/etc/systemd/timesyncd.conf.d/90-kiln-gce.conf")
	assert.Equal(t, &manifest.FileArchive{Name: "disk.raw", Format: "oldgnu", Sparse: true, Compression: "gzip"}, stageOf[*manifest.FileArchive](t, m, "archive"))

	min := parseBlueprint(t, "testdata/blueprints/minimal.toml")
	_, m = makeManifest(t, imageType(t, reg, "debian-12", "x86_64", "wsl"), min, Options{})
	assert.NotContains(t, stageOf[*manifest.Files](t, m, "os").Files[0].Data, "[user]", "no user, no default user")
	bp.Customizations.Firewall, bp.Customizations.Filesystem, bp.Customizations.Kernel = nil, nil, nil
	_, m = makeManifest(t, imageType(t, reg, "debian-12", "x86_64", "wsl"), bp, Options{})
	wsl := stageOf[*manifest.Files](t, m, "os").Files[0]
	assert.Equal(t, "/etc/wsl.conf", wsl.Path)
	assert.Contains(t, wsl.Data, "[user]\ndefault=ops\n")

	_, m = makeManifest(t, imageType(t, reg, "debian-12", "x86_64", "oci"), min, Options{})
	oci := stageOf[*manifest.OCIArchive](t, m, "oci")
	assert.Equal(t, "amd64", oci.Arch)
	assert.Equal(t, []string{"/bin/bash"}, oci.Config.Cmd)
	assert.Equal(t, "minimal:latest", oci.Tag)
}

func TestISOVolumeAndOVANames(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "WEB_SERVER_2", volumeID("web-server.2"))
	assert.Equal(t, "KILN", volumeID("---"))
	assert.Len(t, volumeID(strings.Repeat("a", 40)), 32)
	assert.Equal(t, "web-server.2", ovaName("web-server.2"))
	assert.Equal(t, "a--b-c", ovaName("a<&b>c"))
	assert.Equal(t, "image", ovaName(".."))
	assert.Len(t, ovaName(strings.Repeat("n", 100)), 89, "<name>-disk1.vmdk fits a ustar name")
}

// A unit the blueprint ships is written before the units are enabled, so
// enabling it works; every other file and directory of the blueprint is
// written after the last stage that executes a tool in the tree, so
// nothing a blueprint wrote is there while anything runs.
func TestBlueprintFilesComeAfterEveryToolRuns(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	bp := parseBlueprint(t, "testdata/blueprints/full.json")
	_, m := makeManifest(t, imageType(t, reg, "debian-12", "x86_64", "qcow2"), bp, Options{})
	executes := map[string]bool{}
	for _, o := range []manifest.StageOptions{&manifest.DebsInstall{}, &manifest.Bootloader{}, &manifest.Initramfs{},
		&manifest.Locale{}, &manifest.Keyboard{}, &manifest.Groups{}, &manifest.Users{}, &manifest.Firewall{},
		&manifest.Systemd{}, &manifest.CACerts{}} {
		executes[o.StageType()] = true
	}
	lastTool, systemd := -1, -1
	var units, others, dirs []int
	for i, s := range m.Pipeline("os").Stages {
		if executes[s.Type] {
			lastTool = i
		}
		switch o := s.Options.(type) {
		case *manifest.Systemd:
			systemd = i
		case *manifest.Directories:
			dirs = append(dirs, i)
		case *manifest.Files:
			for _, f := range o.Files {
				if !slices.ContainsFunc(bp.Customizations.Files, func(bf blueprint.FileCustomization) bool { return bf.Path == f.Path }) {
					continue // the image type's own file
				}
				if strings.HasPrefix(f.Path, "/etc/systemd/system/") {
					units = append(units, i)
				} else {
					others = append(others, i)
				}
			}
		}
	}
	require.NotEmpty(t, units, "full.json ships a unit")
	require.NotEmpty(t, others, "full.json ships a file that is not a unit")
	require.NotEmpty(t, dirs, "full.json has directories")
	for _, i := range units {
		assert.Less(t, i, systemd, "a shipped unit is written before systemctl enables it")
	}
	for _, i := range append(others, dirs...) {
		assert.Greater(t, i, lastTool, "blueprint files and directories are written after every tool ran")
	}
}

// A tree without an init system (tar) gets systemd when the blueprint
// enables units or a firewall, since systemctl enables them; without
// either it stays without.
func TestServicesBringSystemd(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	tar := imageType(t, reg, "debian-12", "x86_64", "tar")
	for name, text := range map[string]string{
		"services": "name = \"s\"\n[customizations.services]\nenabled = [\"nginx\"]\n",
		"firewall": "name = \"f\"\n[customizations.firewall]\nports = [\"8080:tcp\"]\n",
	} {
		bp, err := blueprint.Parse([]byte(text), blueprint.FormatTOML)
		require.NoError(t, err, name)
		_, m := makeManifest(t, tar, bp, Options{})
		assert.Contains(t, stageOf[*manifest.DebsInstall](t, m, "os").Packages, "systemd", name)
	}
	bp, err := blueprint.Parse([]byte("name = \"plain\"\n"), blueprint.FormatTOML)
	require.NoError(t, err)
	_, m := makeManifest(t, tar, bp, Options{})
	assert.NotContains(t, stageOf[*manifest.DebsInstall](t, m, "os").Packages, "systemd")
}

// A file that replaces one of the distribution's file links builds, and
// the plan says so.
func TestManifestWarnsWhenAFileReplacesALink(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	it := imageType(t, reg, "debian-12", "x86_64", "tar")
	bp := &blueprint.Blueprint{Name: "x", Customizations: &blueprint.Customizations{
		Files: []blueprint.FileCustomization{{Path: "/etc/os-release", Data: "NAME=x\n"}},
	}}
	plan, err := it.Manifest(bp, Options{Mirrors: testMirrors})
	require.NoError(t, err)
	require.Len(t, plan.Warnings, 1)
	assert.Contains(t, plan.Warnings[0], "customizations.files[0].path")
	assert.Contains(t, plan.Warnings[0], "/usr/lib/os-release")
}

// A name in both packages and modules with different versions asks for
// the module's version, the later one, every time: the plan does not
// depend on the order a map is walked in.
func TestPackageInPackagesAndModulesIsDeterministic(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	tar := imageType(t, reg, "debian-12", "x86_64", "tar")
	bp := &blueprint.Blueprint{
		Name:     "both",
		Packages: []blueprint.Package{{Name: "nginx", Version: "1.22.1-9"}},
		Modules:  []blueprint.Package{{Name: "nginx", Version: "1.22.1-9+deb12u1"}},
	}
	for range 32 {
		plan, err := tar.Manifest(bp, Options{Mirrors: testMirrors})
		require.NoError(t, err)
		i := slices.IndexFunc(plan.Request.Packages, func(s depsolve.PackageSpec) bool { return s.Name == "nginx" })
		require.GreaterOrEqual(t, i, 0, "nginx is asked for")
		require.Equal(t, "1.22.1-9+deb12u1", plan.Request.Packages[i].Version)
		require.Equal(t, "modules[0]", plan.origins["nginx"])
	}
}
