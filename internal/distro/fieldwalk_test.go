package distro

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/depsolve"
)

// This file holds the guard against fields that are accepted, checked and
// then silently dropped: every leaf field of a blueprint either changes the
// manifest or is refused with a message that names it and says why.

// fieldCase says how the field walk exercises one blueprint field.
type fieldCase struct {
	// base prepares the blueprint the field is set on (it starts with only
	// a name). It makes the field matter — a key for gpgcheck, a user for
	// a user's shell — and may give the field itself another value. The
	// manifest of the base is what the field must change.
	base func(bp *blueprint.Blueprint)
	// value is set at the field; for a pointer field, the value it points
	// to. It is converted to the field's type.
	value any
	// refused, when set, is a word the refusal's message must contain: the
	// field cannot be honoured on Debian, and planning says why.
	refused string
	// at is the field path the refusal names when it is not the field's
	// own (with list indices, [0] for each list).
	at string
	// mentions, when set, is text the changed manifest must still hold:
	// that the field changed the manifest by doing what it says, not by
	// dropping what it is part of.
	mentions string
	// inert, when set, says why the field does not belong in the image;
	// the manifest must then stay the same.
	inert string
}

// Keys and certificates the walk puts into blueprints: well-formed, owned
// by nobody.
const (
	walkSSHKey  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINSOSKLZH9GYzn+gjqei1p55feF26p8vNjwhvky0aGR8 ops@example"
	walkSSHKey2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEd2+N2o6wEnHWgE53GzB6PApoQd1GdU8c8EyNDTinne walk@example"
	walkGPGKey  = `-----BEGIN PGP PUBLIC KEY BLOCK-----

mDMEawc66xYJKwYBBAHaRw8BAQdAY83fp0xD89Oc9w3PGK5zAz7a5w5HtihN5Rc9
MaGXJYq0H0V4YW1wbGUgUmVwbyA8cmVwb0BleGFtcGxlLm9yZz6IkAQTFggAOBYh
BF31yAXvsT5gPTqf8mZfWI+CehDKBQJrBzrrAhsDBQsJCAcCBhUKCQgLAgQWAgMB
Ah4BAheAAAoJEGZfWI+CehDKH3UA/0b+DPyla3plquentENyAo+c7eMuCgOCwpDM
XJMp8D+YAP9ddao4yjViBCkwZyaabvWbz/5rlZie1gn/eNp0zYWvCQ==
=/Mi2
-----END PGP PUBLIC KEY BLOCK-----
`
	walkGPGKey2 = `-----BEGIN PGP PUBLIC KEY BLOCK-----

mDMEaxTPKRYJKwYBBAHaRw8BAQdAzIb2vqeAKXsJF6Qyq7/0vW+EIVq9fUdTXboe
1pmTqPy0HFdhbGsgUmVwbyA8d2Fsa0BleGFtcGxlLm9yZz6IkAQTFggAOBYhBNU9
vEr8xa0ZDlC2cWoRH7VVnoTUBQJrFM8pAhsDBQsJCAcCBhUKCQgLAgQWAgMBAh4B
AheAAAoJEGoRH7VVnoTUUs4A/2WyfP4sthDu/45WDlnff8wg+vskbd3DkYavh3lB
rE0GAP0VGrmxwRVgmSOi4GoCUMfn8424fp281ftUTEM2awylAg==
=QnlG
-----END PGP PUBLIC KEY BLOCK-----
`
	walkPEMCert = "-----BEGIN CERTIFICATE-----\nMIIBhTCCASugAwIBAgIUKFApBDrZ5EcdmbuI9wPFDpgJYOAwCgYIKoZIzj0EAwIw\nFzEVMBMGA1UEAwwMa2lsbiB0ZXN0IENBMCAXDTI2MTEyNTE5NDE1N1oYDzIxMjYx\nMTAxMTk0MTU3WjAXMRUwEwYDVQQDDAxraWxuIHRlc3QgQ0EwWTATBgcqhkjOPQIB\nBggqhkjOPQMBBwNCAATC+OYgNGSJ5C+t/5CToc0odUdP3EhoXFWHaPddCpx9E1G9\nkS7AcIg53UgIid4MOXH8Cir/LhOLvAkYQQdMGtRvo1MwUTAdBgNVHQ4EFgQU5Xc/\ny5Ru7+3h4klrddsqGoTIG/UwHwYDVR0jBBgwFoAU5Xc/y5Ru7+3h4klrddsqGoTI\nG/UwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEAtC0py8gey4yg\nqcqt9EjN1W3aK7ufyELPLusTTyj5dcoCICwAGq7CPWYeEZDoAaEI6/Ajc82h1Cb5\nSPxXASEmxlYB\n-----END CERTIFICATE-----\n"
)

func walkPtr[T any](v T) *T { return &v }

// walkCustomizations returns the blueprint's customizations, made if absent.
func walkCustomizations(bp *blueprint.Blueprint) *blueprint.Customizations {
	if bp.Customizations == nil {
		bp.Customizations = &blueprint.Customizations{}
	}
	return bp.Customizations
}

func walkWithPackage(bp *blueprint.Blueprint) {
	bp.Packages = []blueprint.Package{{Name: "htop"}}
}

func walkWithModule(bp *blueprint.Blueprint) {
	bp.Modules = []blueprint.Package{{Name: "htop"}}
}

func walkWithSSHKey(bp *blueprint.Blueprint) {
	walkCustomizations(bp).SSHKey = []blueprint.SSHKeyCustomization{{User: "root", Key: walkSSHKey}}
}

func walkWithUser(bp *blueprint.Blueprint) {
	walkCustomizations(bp).User = []blueprint.UserCustomization{{Name: "alice"}}
}

func walkWithGroup(bp *blueprint.Blueprint) {
	walkCustomizations(bp).Group = []blueprint.GroupCustomization{{Name: "web"}}
}

func walkWithTimezone(bp *blueprint.Blueprint) {
	walkCustomizations(bp).Timezone = &blueprint.TimezoneCustomization{Timezone: walkPtr("Etc/UTC")}
}

func walkWithLocale(bp *blueprint.Blueprint) {
	walkCustomizations(bp).Locale = &blueprint.LocaleCustomization{Languages: []string{"en_US.UTF-8"}}
}

func walkWithFirewall(bp *blueprint.Blueprint) {
	walkCustomizations(bp).Firewall = &blueprint.FirewallCustomization{Ports: []string{"22:tcp"}, Services: &blueprint.FirewallServicesCustomization{}}
}

func walkWithServices(bp *blueprint.Blueprint) {
	walkCustomizations(bp).Services = &blueprint.ServicesCustomization{Enabled: []string{"fstrim.timer"}}
}

func walkWithFilesystem(bp *blueprint.Blueprint) {
	walkCustomizations(bp).Filesystem = []blueprint.FilesystemCustomization{{Mountpoint: "/var", MinSize: 2 << 30}}
}

func walkWithDisk(bp *blueprint.Blueprint) {
	walkCustomizations(bp).Disk = &blueprint.DiskCustomization{Partitions: []blueprint.PartitionCustomization{
		{Mountpoint: "/data", MinSize: 1 << 30, FSType: "ext4"},
		{Mountpoint: "/", MinSize: 3 << 30, FSType: "ext4"},
	}}
}

func walkWithLVM(bp *blueprint.Blueprint) {
	walkCustomizations(bp).Disk = &blueprint.DiskCustomization{Partitions: []blueprint.PartitionCustomization{
		{Type: "lvm", Name: "vg0", MinSize: 4 << 30, LogicalVolumes: []blueprint.LVCustomization{{Name: "data", Mountpoint: "/data", MinSize: 1 << 30, FSType: "ext4"}}},
		{Mountpoint: "/", MinSize: 3 << 30, FSType: "ext4"},
	}}
}

func walkWithDirectory(bp *blueprint.Blueprint) {
	walkCustomizations(bp).Directories = []blueprint.DirectoryCustomization{{Path: "/srv/walk"}}
}

func walkWithFile(bp *blueprint.Blueprint) {
	walkCustomizations(bp).Files = []blueprint.FileCustomization{{Path: "/etc/walk.conf", Data: "walk = 1\n"}}
}

func walkWithRepository(bp *blueprint.Blueprint) {
	walkCustomizations(bp).Repositories = []blueprint.RepositoryCustomization{{
		ID: "extra", BaseURLs: []string{"https://repo.example.com/debian"}, Suite: "bookworm", Components: []string{"main"},
		GPGKeys: []string{walkGPGKey},
	}}
}

// walkWithVolumes is an LVM layout whose first partition does not say it
// is one.
func walkWithVolumes(bp *blueprint.Blueprint) {
	walkWithLVM(bp)
	bp.Customizations.Disk.Partitions[0].Type = ""
}

// walkWith returns a base that sets the field at path to value, by
// reflection: for fields newer than the bases above, or for bases that
// set a sibling of the field under test.
func walkWith(path string, value any, more ...func(*blueprint.Blueprint)) func(*blueprint.Blueprint) {
	return func(bp *blueprint.Blueprint) {
		for _, m := range more {
			m(bp)
		}
		if _, err := setBlueprintField(reflect.ValueOf(bp).Elem(), path, value); err != nil {
			panic(fmt.Sprintf("fieldCases: a base sets %s: %v", path, err))
		}
	}
}

// walkWithScript is a blueprint with one custom first-boot script.
var walkWithScript = walkWith("customizations.firstboot.scripts.type", "custom",
	walkWith("customizations.firstboot.scripts.contents", "#!/bin/sh\ntrue\n"))

func walkWithCACerts(bp *blueprint.Blueprint) {
	walkCustomizations(bp).CACerts = &blueprint.CACustomization{}
}

// fieldCases holds every leaf field of a blueprint by its path (json names,
// no list indices). A field missing here fails TestEveryFieldTakesEffect:
// a new field is added here on purpose, with a value that shows it taking
// effect or the refusal it gets.
var fieldCases = map[string]fieldCase{
	"name":        {value: "walk-renamed"},
	"description": {value: "A blueprint about nothing", inert: "a description tells people about the blueprint; the image has no place for it"},
	"version":     {value: "1.2.3"},
	// distro and architecture select the target: a matching value changes
	// nothing, another is refused.
	"distro":       {value: "debian-13", refused: "build is for"},
	"architecture": {value: "aarch64", refused: "build is for"},

	"packages.name":    {value: "htop"},
	"packages.version": {base: walkWithPackage, value: "= 3.2.2-2"},
	"modules.name":     {value: "htop"},
	"modules.version":  {base: walkWithModule, value: "= 3.2.2-2"},
	"groups.name":      {value: "ssh-server"},

	"customizations.hostname":      {value: "walk.example.com"},
	"customizations.kernel.name":   {value: "linux-image-rt-amd64"},
	"customizations.kernel.append": {value: "nosmt"},

	"customizations.sshkey.user": {base: walkWithSSHKey, value: "admin"},
	"customizations.sshkey.key":  {base: walkWithSSHKey, value: walkSSHKey2},

	"customizations.user.name":                 {base: walkWithUser, value: "bob"},
	"customizations.user.description":          {base: walkWithUser, value: "Alice Example"},
	"customizations.user.password":             {base: walkWithUser, value: "walk-secret"},
	"customizations.user.key":                  {base: walkWithUser, value: walkSSHKey},
	"customizations.user.home":                 {base: walkWithUser, value: "/srv/alice"},
	"customizations.user.shell":                {base: walkWithUser, value: "/bin/sh"},
	"customizations.user.groups":               {base: walkWithUser, value: []string{"users"}},
	"customizations.user.uid":                  {base: walkWithUser, value: 1500},
	"customizations.user.gid":                  {base: walkWithUser, value: 100},
	"customizations.user.expiredate":           {base: walkWithUser, value: 20000},
	"customizations.user.force_password_reset": {base: walkWithUser, value: true},

	"customizations.group.name": {base: walkWithGroup, value: "ops"},
	"customizations.group.gid":  {base: walkWithGroup, value: 1400},

	"customizations.timezone.timezone":   {base: walkWithTimezone, value: "Europe/Berlin"},
	"customizations.timezone.ntpservers": {base: walkWithTimezone, value: []string{"time.example.com"}},

	"customizations.locale.languages": {base: walkWithLocale, value: []string{"de_DE.UTF-8"}},
	"customizations.locale.keyboard":  {base: walkWithLocale, value: "de"},

	"customizations.firewall.ports":             {base: walkWithFirewall, value: []string{"8080:tcp"}},
	"customizations.firewall.services.enabled":  {base: walkWithFirewall, value: []string{"http"}},
	"customizations.firewall.services.disabled": {base: walkWithFirewall, value: []string{"dhcpv6-client"}},

	"customizations.services.enabled":  {base: walkWithServices, value: []string{"e2scrub_all.timer"}},
	"customizations.services.disabled": {base: walkWithServices, value: []string{"apt-daily.timer"}},
	"customizations.services.masked":   {base: walkWithServices, value: []string{"apt-daily-upgrade.timer"}},

	"customizations.filesystem.mountpoint": {base: walkWithFilesystem, value: "/srv"},
	"customizations.filesystem.minsize":    {base: walkWithFilesystem, value: blueprint.Size(4 << 30)},

	"customizations.disk.type":                  {base: walkWithDisk, value: "dos"},
	"customizations.disk.minsize":               {base: walkWithDisk, value: blueprint.Size(20 << 30)},
	"customizations.disk.partitions.type":       {base: walkWithVolumes, value: "lvm", refused: "LVM"},
	"customizations.disk.partitions.minsize":    {base: walkWithDisk, value: blueprint.Size(2 << 30)},
	"customizations.disk.partitions.part_type":  {base: walkWithDisk, value: "933AC7E1-2EB4-4F13-B844-0E14E2AEF915"},
	"customizations.disk.partitions.part_label": {base: walkWithDisk, value: "data"},
	"customizations.disk.partitions.mountpoint": {base: walkWithDisk, value: "/srv"},
	"customizations.disk.partitions.label":      {base: walkWithDisk, value: "data"},
	"customizations.disk.partitions.fs_type":    {base: walkWithDisk, value: "vfat"},
	// The fields of an LVM partition matter only on one, which is refused.
	"customizations.disk.partitions.name":                       {base: walkWithLVM, value: "vg1", refused: "LVM", at: "customizations.disk.partitions[0].type"},
	"customizations.disk.partitions.logical_volumes.name":       {base: walkWithLVM, value: "srv", refused: "LVM", at: "customizations.disk.partitions[0].type"},
	"customizations.disk.partitions.logical_volumes.minsize":    {base: walkWithLVM, value: blueprint.Size(2 << 30), refused: "LVM", at: "customizations.disk.partitions[0].type"},
	"customizations.disk.partitions.logical_volumes.mountpoint": {base: walkWithLVM, value: "/srv", refused: "LVM", at: "customizations.disk.partitions[0].type"},
	"customizations.disk.partitions.logical_volumes.label":      {base: walkWithLVM, value: "data", refused: "LVM", at: "customizations.disk.partitions[0].type"},
	"customizations.disk.partitions.logical_volumes.fs_type":    {base: walkWithLVM, value: "ext4", refused: "LVM", at: "customizations.disk.partitions[0].type"},

	"customizations.directories.path":           {base: walkWithDirectory, value: "/srv/other"},
	"customizations.directories.user":           {base: walkWithDirectory, value: blueprint.Owner{Name: "daemon"}},
	"customizations.directories.group":          {base: walkWithDirectory, value: blueprint.Owner{ID: walkPtr(int64(1))}},
	"customizations.directories.mode":           {base: walkWithDirectory, value: "0700"},
	"customizations.directories.ensure_parents": {base: walkWithDirectory, value: true},

	"customizations.files.path":  {base: walkWithFile, value: "/etc/other.conf"},
	"customizations.files.user":  {base: walkWithFile, value: blueprint.Owner{Name: "daemon"}},
	"customizations.files.group": {base: walkWithFile, value: blueprint.Owner{ID: walkPtr(int64(1))}},
	"customizations.files.mode":  {base: walkWithFile, value: "0600"},
	"customizations.files.data":  {base: walkWithFile, value: "walk = 2\n"},

	"customizations.repositories.id":       {base: walkWithRepository, value: "other"},
	"customizations.repositories.name":     {base: walkWithRepository, value: "Extra packages"},
	"customizations.repositories.baseurls": {base: walkWithRepository, value: []string{"https://other.example.com/debian"}},
	"customizations.repositories.gpgkeys":  {base: walkWithRepository, value: []string{walkGPGKey2}},
	"customizations.repositories.gpgcheck": {base: walkWithRepository, value: false},
	// A disabled repository is written disabled, not left out.
	"customizations.repositories.enabled":      {base: walkWithRepository, value: false, mentions: "https://repo.example.com/debian"},
	"customizations.repositories.priority":     {base: walkWithRepository, value: 700},
	"customizations.repositories.filename":     {base: walkWithRepository, value: "extra-walk"},
	"customizations.repositories.suite":        {base: walkWithRepository, value: "bookworm-backports"},
	"customizations.repositories.components":   {base: walkWithRepository, value: []string{"main", "contrib"}},
	"customizations.repositories.install_from": {base: walkWithRepository, value: true},

	"customizations.cacerts.pem_certs": {base: walkWithCACerts, value: []string{walkPEMCert}},

	"customizations.disk.start_offset":                {base: walkWithDisk, value: blueprint.Size(8 << 20)},
	"customizations.disk.sector_size":                 {base: walkWithDisk, value: 4096, refused: "512"},
	"customizations.disk.partitions.part_uuid":        {base: walkWithDisk, value: "6c5c1e4a-6f2b-4e49-9b2b-9d3f5a7e1c20"},
	"customizations.firstboot.scripts.type":           {base: walkWithScript, value: "satellite", refused: "Red Hat Satellite"},
	"customizations.firstboot.scripts.name":           {base: walkWithScript, value: "walk-script"},
	"customizations.firstboot.scripts.contents":       {base: walkWithScript, value: "#!/bin/sh\necho walked\n"},
	"customizations.firstboot.scripts.ignore_failure": {base: walkWithScript, value: true},
	"customizations.firstboot.scripts.after":          {base: walkWithScript, value: []string{"network-online.target"}},
	"customizations.firstboot.scripts.before":         {base: walkWithScript, value: []string{"ssh.service"}},

	"customizations.sshd.password_authentication":           {base: walkWith("customizations.sshd.client_alive_interval", 30), value: false},
	"customizations.sshd.challenge_response_authentication": {base: walkWith("customizations.sshd.client_alive_interval", 30), value: false},
	"customizations.sshd.client_alive_interval":             {base: walkWith("customizations.sshd.password_authentication", false), value: 120},
	"customizations.sshd.permit_root_login":                 {base: walkWith("customizations.sshd.password_authentication", false), value: "prohibit-password"},
}

// walkLeafTypes are types the blueprint decodes as one value although they
// are structs.
var walkLeafTypes = []reflect.Type{reflect.TypeFor[blueprint.Size](), reflect.TypeFor[blueprint.Owner]()}

// blueprintLeaves lists the path of every leaf field below typ: through
// pointers, tables and the element types of lists of tables.
func blueprintLeaves(prefix string, typ reflect.Type) []string {
	var out []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && !slices.Contains(walkLeafTypes, ft) {
			out = append(out, blueprintLeaves(path, ft)...)
			continue
		}
		out = append(out, path)
	}
	return out
}

// setBlueprintField sets value at path (json names, no indices) in the
// struct v points to, making tables as needed and descending into the
// first element of each list (made if the list is empty). It returns the
// path with list indices, as problems name it.
func setBlueprintField(v reflect.Value, path string, value any) (string, error) {
	parts := strings.Split(path, ".")
	var at []string
	for n, part := range parts {
		for v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		found := false
		for i := range v.NumField() {
			if name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ","); name == part {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return "", fmt.Errorf("%s has no field %q", strings.Join(at, "."), part)
		}
		at = append(at, part)
		if n == len(parts)-1 {
			break
		}
		if v.Kind() == reflect.Slice {
			if v.Len() == 0 {
				v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem())))
			}
			v = v.Index(0)
			at[len(at)-1] += "[0]"
		}
	}
	if v.Kind() == reflect.Pointer {
		v.Set(reflect.New(v.Type().Elem()))
		v = v.Elem()
	}
	rv := reflect.ValueOf(value)
	if !rv.CanConvert(v.Type()) {
		return "", fmt.Errorf("the table's value for %s is a %T, the field a %s", path, value, v.Type())
	}
	v.Set(rv.Convert(v.Type()))
	return strings.Join(at, "."), nil
}

// versionResolver is the fake resolver, except that a package requested
// with an exact version ("= 1.2-3") comes back in that version, as a real
// solver would give it; so a manifest shows the versions it was asked for.
type versionResolver struct{}

func (versionResolver) Resolve(ctx context.Context, req depsolve.Request) (*depsolve.Result, error) {
	res, err := depsolve.Fake{}.Resolve(ctx, req)
	if err != nil {
		return nil, err
	}
	for _, spec := range req.Packages {
		version, ok := strings.CutPrefix(spec.Version, "=")
		if !ok {
			continue
		}
		for i := range res.Packages {
			if res.Packages[i].Name == spec.Name {
				res.Packages[i].Version = strings.TrimSpace(version)
			}
		}
	}
	return res, nil
}

// planBlueprint takes bp through what a user's blueprint goes through —
// written out, parsed and validated, planned, solved and finished — and
// returns the manifest's JSON or the first error on the way.
func planBlueprint(it *ImageType, bp *blueprint.Blueprint) ([]byte, error) {
	doc, err := bp.ToJSON()
	if err != nil {
		return nil, err
	}
	parsed, err := blueprint.Parse(doc, blueprint.FormatJSON)
	if err != nil {
		return nil, err
	}
	plan, err := it.Manifest(parsed, Options{Mirrors: testMirrors})
	if err != nil {
		return nil, err
	}
	res, err := versionResolver{}.Resolve(context.Background(), plan.Request)
	if err != nil {
		return nil, plan.ExplainSolveError(err)
	}
	m, err := plan.Finish(res)
	if err != nil {
		return nil, err
	}
	return m.Marshal()
}

// refusalAt reports whether err is a list of problems with one at path
// whose message contains word.
func refusalAt(err error, path, word string) bool {
	var errs blueprint.Errors
	if !errors.As(err, &errs) {
		return false
	}
	return slices.ContainsFunc(errs, func(p blueprint.Problem) bool {
		return p.Path == path && strings.Contains(p.Message, word)
	})
}

// Every leaf field of a blueprint takes effect — the manifest differs
// from the one without it — or is refused with a message at its path that
// says why. A field accepted and then dropped fails here; so does a new
// field until fieldCases says how it shows.
func TestEveryFieldTakesEffect(t *testing.T) {
	t.Parallel()
	it := imageType(t, loadRegistry(t), "debian-12", "x86_64", "qcow2")
	leaves := blueprintLeaves("", reflect.TypeFor[blueprint.Blueprint]())
	for path := range fieldCases {
		if !slices.Contains(leaves, path) {
			t.Errorf("fieldCases has %s, which is no field of a blueprint: remove or rename it", path)
		}
	}
	for _, path := range leaves {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			fc, ok := fieldCases[path]
			if !ok {
				t.Fatalf("blueprint field %s is not in fieldCases: add a value that shows it in the manifest, or the refusal it gets on Debian", path)
			}
			blank := func() *blueprint.Blueprint {
				bp := &blueprint.Blueprint{Name: "walk"}
				if fc.base != nil {
					fc.base(bp)
				}
				return bp
			}
			bp := blank()
			at, err := setBlueprintField(reflect.ValueOf(bp).Elem(), path, fc.value)
			if err != nil {
				t.Fatal(err)
			}
			got, err := planBlueprint(it, bp)
			if fc.refused != "" {
				if fc.at != "" {
					at = fc.at
				}
				if !refusalAt(err, at, fc.refused) {
					t.Fatalf("%s = %#v: want a refusal at %s saying %q, got %v", path, fc.value, at, fc.refused, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s = %#v: planning failed: %v", path, fc.value, err)
			}
			want, err := planBlueprint(it, blank())
			if err != nil {
				t.Fatalf("the base blueprint of %s does not plan: %v", path, err)
			}
			switch {
			case fc.inert != "" && string(got) != string(want):
				t.Errorf("%s = %#v changed the manifest, but fieldCases says it should not (%s)", path, fc.value, fc.inert)
			case fc.inert == "" && string(got) == string(want):
				t.Errorf("%s = %#v was accepted and left the manifest as it was: the field is dropped; make it take effect or refuse it with a reason", path, fc.value)
			case fc.mentions != "" && !strings.Contains(string(got), fc.mentions):
				t.Errorf("%s = %#v dropped %s from the manifest instead of taking effect", path, fc.value, fc.mentions)
			}
		})
	}
}
