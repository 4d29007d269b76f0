package distro

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/blueprint"
)

func TestCheckBlueprint(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	tests := []struct {
		name      string
		imageType string
		toml      string
		wantPath  string
		wantMsg   string
	}{
		{"filesystem on tar", "tar", "[[customizations.filesystem]]\nmountpoint = \"/var\"\nminsize = \"1 GiB\"\n", "customizations.filesystem", "not supported by image type tar"},
		{"kernel on tar", "tar", "[customizations.kernel]\nappend = \"quiet\"\n", "customizations.kernel", "not supported by image type tar"},
		{"unknown time zone", "qcow2", "[customizations.timezone]\ntimezone = \"Europe/Berlim\"\n", "customizations.timezone.timezone", `unknown time zone "Europe/Berlim" (did you mean "Europe/Berlin"?)`},
		{"unknown locale", "qcow2", "[customizations.locale]\nlanguages = [\"en_US.UTF-8\", \"xx_YY.UTF-8\"]\n", "customizations.locale.languages[1]", `unknown locale "xx_YY.UTF-8"`},
		{"unknown keyboard", "qcow2", "[customizations.locale]\nkeyboard = \"dee\"\n", "customizations.locale.keyboard", `unknown keyboard layout "dee"`},
		{"unknown firewall service", "qcow2", "[customizations.firewall.services]\nenabled = [\"htp\"]\n", "customizations.firewall.services.enabled[0]", `unknown firewall service "htp" (did you mean "http"?)`},
		{"service port without that protocol", "qcow2", "[customizations.firewall]\nports = [\"ntp:tcp\"]\n", "customizations.firewall.ports[0]", `service "ntp" has no tcp port`},
		{"lvm", "qcow2", "[customizations.disk]\n[[customizations.disk.partitions]]\ntype = \"lvm\"\nname = \"vg0\"\n[[customizations.disk.partitions.logical_volumes]]\nname = \"root\"\nmountpoint = \"/\"\nfs_type = \"ext4\"\n", "customizations.disk.partitions[0].type", "LVM partitions cannot be built: kiln writes disk images as plain files, without the device-mapper devices"},
		{"other distro", "qcow2", "distro = \"debian-13\"\n", "distro", `the blueprint is for "debian-13" but the build is for "debian-12"`},
		{"other arch", "qcow2", "architecture = \"aarch64\"\n", "architecture", `the blueprint is for "aarch64"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bp, err := blueprint.Parse([]byte("name = \"x\"\n"+tc.toml), blueprint.FormatTOML)
			require.NoError(t, err, "the blueprint itself is valid")
			err = imageType(t, reg, "debian-12", "x86_64", tc.imageType).CheckBlueprint(bp)
			var problems blueprint.Errors
			require.ErrorAs(t, err, &problems)
			var paths []string
			for _, p := range problems {
				paths = append(paths, p.Path)
				if p.Path == tc.wantPath {
					assert.Contains(t, p.Message, tc.wantMsg)
				}
			}
			assert.Contains(t, paths, tc.wantPath)
			_, err = imageType(t, reg, "debian-12", "x86_64", tc.imageType).Manifest(bp, Options{Mirrors: testMirrors})
			require.Error(t, err, "Manifest refuses what CheckBlueprint refuses")
		})
	}
}

func TestCheckBlueprintReportsEverything(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	bp, err := blueprint.Parse([]byte(strings.Join([]string{
		`name = "x"`,
		`[customizations.timezone]`, `timezone = "Nowhere/Town"`,
		`[customizations.locale]`, `languages = ["zz_ZZ.UTF-8"]`, `keyboard = "qq"`,
	}, "\n")), blueprint.FormatTOML)
	require.NoError(t, err)
	err = imageType(t, reg, "debian-12", "x86_64", "qcow2").CheckBlueprint(bp)
	var problems blueprint.Errors
	require.ErrorAs(t, err, &problems)
	assert.Len(t, problems, 3, "every problem at once")
}

func TestEveryOptionIsKnown(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	for _, d := range reg.Distros() {
		for _, a := range d.Arches() {
			for _, it := range a.ImageTypes() {
				for _, o := range it.SupportedOptions {
					assert.True(t, slices.ContainsFunc(blueprintOptions, func(bo blueprintOption) bool { return bo.name == o }),
						"%s: supported_options names an unknown option %s", it.Name, o)
				}
			}
		}
	}
}

// pathBlueprint is a blueprint, built in code as a caller other than Parse
// might, that names one path in the field kind.
func pathBlueprint(kind, p string) *blueprint.Blueprint {
	c := &blueprint.Customizations{}
	switch kind {
	case "file":
		c.Files = []blueprint.FileCustomization{{Path: p, Data: "x"}}
	case "directory":
		c.Directories = []blueprint.DirectoryCustomization{{Path: p}}
	case "home":
		c.User = []blueprint.UserCustomization{{Name: "ops", Home: &p}}
	case "filesystem":
		c.Filesystem = []blueprint.FilesystemCustomization{{Mountpoint: p, MinSize: 1 << 30}}
	case "partition":
		c.Disk = &blueprint.DiskCustomization{Partitions: []blueprint.PartitionCustomization{{Mountpoint: p, FSType: "ext4"}}}
	case "logical volume":
		c.Disk = &blueprint.DiskCustomization{Partitions: []blueprint.PartitionCustomization{{Type: "lvm", LogicalVolumes: []blueprint.LVCustomization{{Mountpoint: p, FSType: "ext4"}}}}}
	default:
		panic(kind)
	}
	return &blueprint.Blueprint{Name: "paths", Customizations: c}
}

var pathField = map[string]string{
	"file":           "customizations.files[0].path",
	"directory":      "customizations.directories[0].path",
	"home":           "customizations.user[0].home",
	"filesystem":     "customizations.filesystem[0].mountpoint",
	"partition":      "customizations.disk.partitions[0].mountpoint",
	"logical volume": "customizations.disk.partitions[0].logical_volumes[0].mountpoint",
}

// TestCheckPaths gives each path field paths that pass through or replace
// a link of the tree and wants exactly the problem, in exact words. The
// blueprints are built in code, so the check is seen to stand on its own
// even for paths the blueprint layer refuses first.
func TestCheckPaths(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	dirKinds := []string{"directory", "home", "filesystem", "partition", "logical volume"}
	tests := []struct {
		distro, arch string
		kinds        []string
		path, want   string
	}{
		// Debian's top-level links, as directories and with a file or directory below.
		{"debian-12", "x86_64", dirKinds, "/var/run", "/var/run is a link to /run in debian-12; use /run"},
		{"debian-12", "x86_64", dirKinds, "/var/lock", "/var/lock is a link to /run/lock in debian-12; use /run/lock"},
		{"debian-12", "x86_64", dirKinds, "/bin", "/bin is a link to /usr/bin in debian-12; use /usr/bin"},
		{"debian-12", "x86_64", dirKinds, "/sbin", "/sbin is a link to /usr/sbin in debian-12; use /usr/sbin"},
		{"debian-12", "x86_64", dirKinds, "/lib", "/lib is a link to /usr/lib in debian-12; use /usr/lib"},
		{"debian-12", "x86_64", dirKinds, "/lib64", "/lib64 is a link to /usr/lib64 in debian-12; use /usr/lib64"},
		{"debian-13", "x86_64", dirKinds, "/var/run", "/var/run is a link to /run in debian-13; use /run"},
		{"debian-13", "x86_64", dirKinds, "/lib64", "/lib64 is a link to /usr/lib64 in debian-13; use /usr/lib64"},
		{"debian-12", "x86_64", []string{"file"}, "/var/run", "/var/run is a link to the directory /run in debian-12, which a file cannot replace; put the file below /run"},
		{"debian-12", "x86_64", []string{"file"}, "/bin", "/bin is a link to the directory /usr/bin in debian-12, which a file cannot replace; put the file below /usr/bin"},
		{"debian-12", "x86_64", append([]string{"file"}, dirKinds...), "/bin/tool", "/bin/tool: /bin is a link to /usr/bin in debian-12; use /usr/bin/tool"},
		{"debian-12", "x86_64", append([]string{"file"}, dirKinds...), "/sbin/tool", "/sbin/tool: /sbin is a link to /usr/sbin in debian-12; use /usr/sbin/tool"},
		{"debian-12", "x86_64", append([]string{"file"}, dirKinds...), "/lib/x/y", "/lib/x/y: /lib is a link to /usr/lib in debian-12; use /usr/lib/x/y"},
		{"debian-12", "x86_64", append([]string{"file"}, dirKinds...), "/lib64/tool", "/lib64/tool: /lib64 is a link to /usr/lib64 in debian-12; use /usr/lib64/tool"},
		{"debian-12", "x86_64", append([]string{"file"}, dirKinds...), "/var/run/app", "/var/run/app: /var/run is a link to /run in debian-12; use /run/app"},
		{"debian-12", "x86_64", append([]string{"file"}, dirKinds...), "/var/lock/app", "/var/lock/app: /var/lock is a link to /run/lock in debian-12; use /run/lock/app"},
		{"debian-13", "x86_64", append([]string{"file"}, dirKinds...), "/bin/tool", "/bin/tool: /bin is a link to /usr/bin in debian-13; use /usr/bin/tool"},
		// Links further down the tree.
		{"debian-12", "x86_64", append([]string{"file"}, dirKinds...), "/var/spool/mail/ops", "/var/spool/mail/ops: /var/spool/mail is a link to /var/mail in debian-12; use /var/mail/ops"},
		{"debian-12", "x86_64", dirKinds, "/var/spool/mail", "/var/spool/mail is a link to /var/mail in debian-12; use /var/mail"},
		{"debian-12", "x86_64", []string{"file"}, "/etc/xdg/systemd/user/app.service", "/etc/xdg/systemd/user/app.service: /etc/xdg/systemd/user is a link to /etc/systemd/user in debian-12; use /etc/systemd/user/app.service"},
		// A link to a file: nothing inside it, and no directory in its place.
		{"debian-12", "x86_64", append([]string{"file"}, dirKinds...), "/etc/os-release/x", "/etc/os-release/x: /etc/os-release is a link to the file /usr/lib/os-release in debian-12, so nothing can be inside it"},
		{"debian-12", "x86_64", dirKinds, "/etc/localtime", "/etc/localtime is a link to the file /usr/share/zoneinfo/Etc/UTC in debian-12; a directory there would replace it: choose another path"},
		{"debian-13", "x86_64", []string{"directory"}, "/etc/mtab", "/etc/mtab is a link to the file /proc/self/mounts in debian-13; a directory there would replace it: choose another path"},
		// arm64 has no /lib64, but its other links are the same.
		{"debian-12", "aarch64", []string{"directory"}, "/lib/x", "/lib/x: /lib is a link to /usr/lib in debian-12; use /usr/lib/x"},
	}
	for _, tc := range tests {
		for _, kind := range tc.kinds {
			t.Run(tc.distro+"/"+tc.arch+"/"+kind+tc.path, func(t *testing.T) {
				t.Parallel()
				d, err := reg.Distro(tc.distro)
				require.NoError(t, err)
				a, err := d.Arch(tc.arch)
				require.NoError(t, err)
				_, err = a.CheckPaths(pathBlueprint(kind, tc.path))
				assert.Equal(t, blueprint.Errors{{Path: pathField[kind], Message: tc.want}}, err)
			})
		}
	}
}

// TestCheckPathsAccepts keeps ordinary paths, and paths that only look like
// links, working; and /lib64 is a plain path on arm64.
func TestCheckPathsAccepts(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	for _, tc := range []struct{ distro, arch, kind, path string }{
		{"debian-12", "x86_64", "file", "/etc/motd"},
		{"debian-12", "x86_64", "file", "/usr/local/bin/tool"},
		{"debian-12", "x86_64", "file", "/etc/systemd/user/app.service"},
		{"debian-12", "x86_64", "file", "/binary"},
		{"debian-12", "x86_64", "file", "/var/running"},
		{"debian-12", "x86_64", "directory", "/srv/data"},
		{"debian-12", "x86_64", "directory", "/run/foo"},
		{"debian-12", "x86_64", "directory", "/var/mail/archive"},
		{"debian-12", "x86_64", "directory", "/usr/bin"},
		{"debian-12", "x86_64", "home", "/home/ops"},
		{"debian-12", "x86_64", "filesystem", "/var/lib/data"},
		{"debian-12", "x86_64", "partition", "/"},
		{"debian-12", "aarch64", "directory", "/lib64"},
		{"debian-13", "aarch64", "file", "/lib64/x"},
	} {
		d, err := reg.Distro(tc.distro)
		require.NoError(t, err)
		a, err := d.Arch(tc.arch)
		require.NoError(t, err)
		warnings, err := a.CheckPaths(pathBlueprint(tc.kind, tc.path))
		assert.NoError(t, err, "%s %s %s", tc.distro, tc.arch, tc.path)
		assert.Empty(t, warnings, "%s %s %s", tc.distro, tc.arch, tc.path)
	}
}

// TestCheckPathsWarnsWhenAFileReplacesALink: a file at a link to a file
// replaces the link and leaves its target alone.
func TestCheckPathsWarnsWhenAFileReplacesALink(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	for _, tc := range []struct{ distro, path, want string }{
		{"debian-12", "/etc/localtime", "/etc/localtime is a link to /usr/share/zoneinfo/Etc/UTC in debian-12; the file replaces the link, and /usr/share/zoneinfo/Etc/UTC is left as it is"},
		{"debian-12", "/etc/os-release", "/etc/os-release is a link to /usr/lib/os-release in debian-12; the file replaces the link, and /usr/lib/os-release is left as it is"},
		{"debian-12", "/etc/alternatives/awk", "/etc/alternatives/awk is a link to /usr/bin/mawk in debian-12; the file replaces the link, and /usr/bin/mawk is left as it is"},
		{"debian-13", "/etc/mtab", "/etc/mtab is a link to /proc/self/mounts in debian-13; the file replaces the link, and /proc/self/mounts is left as it is"},
		{"debian-13", "/etc/default/locale", "/etc/default/locale is a link to /etc/locale.conf in debian-13; the file replaces the link, and /etc/locale.conf is left as it is"},
	} {
		d, err := reg.Distro(tc.distro)
		require.NoError(t, err)
		a, err := d.Arch("x86_64")
		require.NoError(t, err)
		warnings, err := a.CheckPaths(pathBlueprint("file", tc.path))
		require.NoError(t, err, tc.path)
		assert.Equal(t, []blueprint.Problem{{Path: "customizations.files[0].path", Message: tc.want}}, warnings)
	}
}

// TestCheckBlueprintRefusesLinkedPaths checks parsed blueprints through
// CheckBlueprint and Manifest: every problem at once, at its field.
func TestCheckBlueprintRefusesLinkedPaths(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	bp, err := blueprint.Parse([]byte(strings.Join([]string{
		`name = "x"`,
		`[[customizations.user]]`, `name = "ops"`, `home = "/var/run/ops"`,
		`[[customizations.user]]`, `name = "svc"`, `home = "/bin/svc"`,
		`[[customizations.directories]]`, `path = "/etc/localtime"`,
		`[[customizations.directories]]`, `path = "/srv/data"`,
		`[[customizations.files]]`, `path = "/etc/motd"`, `data = "hi"`,
		`[[customizations.files]]`, `path = "/var/spool/mail/ops"`, `data = ""`,
		`[[customizations.files]]`, `path = "/etc/os-release"`, `data = "ID=x"`,
		`[[customizations.filesystem]]`, `mountpoint = "/var/spool/mail"`, `minsize = "1 GiB"`,
	}, "\n")), blueprint.FormatTOML)
	require.NoError(t, err, "the blueprint layer accepts these paths")
	it := imageType(t, reg, "debian-12", "x86_64", "qcow2")
	err = it.CheckBlueprint(bp)
	assert.Equal(t, blueprint.Errors{
		{Path: "customizations.directories[0].path", Message: "/etc/localtime is a link to the file /usr/share/zoneinfo/Etc/UTC in debian-12; a directory there would replace it: choose another path"},
		{Path: "customizations.files[1].path", Message: "/var/spool/mail/ops: /var/spool/mail is a link to /var/mail in debian-12; use /var/mail/ops"},
		{Path: "customizations.filesystem[0].mountpoint", Message: "/var/spool/mail is a link to /var/mail in debian-12; use /var/mail"},
		{Path: "customizations.user[0].home", Message: "/var/run/ops: /var/run is a link to /run in debian-12; use /run/ops"},
		{Path: "customizations.user[1].home", Message: "/bin/svc: /bin is a link to /usr/bin in debian-12; use /usr/bin/svc"},
	}, err)
	_, err = it.Manifest(bp, Options{Mirrors: testMirrors})
	assert.Equal(t, it.CheckBlueprint(bp), err, "Manifest refuses what CheckBlueprint refuses")

	ok, err := blueprint.Parse([]byte(strings.Join([]string{
		`name = "x"`,
		`[[customizations.directories]]`, `path = "/srv/data"`,
		`[[customizations.files]]`, `path = "/etc/os-release"`, `data = "ID=x"`,
	}, "\n")), blueprint.FormatTOML)
	require.NoError(t, err)
	assert.NoError(t, it.CheckBlueprint(ok), "replacing a link to a file is a warning, not an error")
}

// tomlPath is the field of the struct v points to (through pointers, made
// as needed) at a dotted TOML path.
func tomlPath(v reflect.Value, path string) (reflect.Value, bool) {
	for _, part := range strings.Split(path, ".") {
		for v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		found := false
		for i := 0; i < v.NumField(); i++ {
			if name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("toml"), ","); name == part {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return v, false
		}
	}
	return v, true
}

// Each option names a blueprint field, and a blueprint that sets that
// field alone uses that option alone; every field of a blueprint but
// those that say what it is (name, version, distro...) is an option, so a
// new blueprint field fails here until an image type can declare it.
func TestOptionsAreTheBlueprintsFields(t *testing.T) {
	t.Parallel()
	assert.Empty(t, usedOptions(&blueprint.Blueprint{}))
	var names []string
	for _, o := range blueprintOptions {
		names = append(names, o.name)
		bp := &blueprint.Blueprint{}
		f, ok := tomlPath(reflect.ValueOf(bp).Elem(), o.name)
		require.True(t, ok, "the blueprint has no field %s", o.name)
		switch f.Kind() {
		case reflect.Pointer:
			f.Set(reflect.New(f.Type().Elem()))
		case reflect.Slice:
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
		default:
			t.Fatalf("%s is a %s, not a table or a list", o.name, f.Kind())
		}
		assert.Equal(t, []string{o.name}, usedOptions(bp), "a blueprint with only %s set", o.name)
	}

	var fields []string
	identity := []string{"name", "description", "version", "distro", "architecture"}
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		for i := 0; i < typ.NumField(); i++ {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("toml"), ",")
			switch {
			case prefix == "" && name == "customizations":
				walk("customizations.", typ.Field(i).Type)
			case prefix == "" && slices.Contains(identity, name):
			default:
				fields = append(fields, prefix+name)
			}
		}
	}
	walk("", reflect.TypeFor[blueprint.Blueprint]())
	assert.ElementsMatch(t, fields, names)
}
