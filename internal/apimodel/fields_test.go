package apimodel

import (
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/blueprint"
)

// tomlField is the field of struct type t whose TOML name is name.
func tomlField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("toml"), ","); tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// deref is t without pointers and slices.
func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	return t
}

// lookup is the type of the blueprint field at a dotted TOML path below t.
func lookup(t reflect.Type, path string) (reflect.Type, bool) {
	for _, part := range strings.Split(path, ".") {
		f, ok := tomlField(deref(t), part)
		if !ok {
			return nil, false
		}
		t = f.Type
	}
	return t, true
}

// checkBlueprintSide checks that each field names a blueprint field of the
// shape its kind says, and its items likewise.
func checkBlueprintSide(t *testing.T, within reflect.Type, fields []Field) {
	for _, f := range fields {
		if f.Blueprint == "" {
			assert.NotEmpty(t, f.Note, "%s: a field only the API has says why", f.API)
			continue
		}
		ft, ok := lookup(within, f.Blueprint)
		if !assert.True(t, ok, "%s: the blueprint has no field %s", f.API, f.Blueprint) {
			continue
		}
		switch f.Kind {
		case NameList:
			assert.Equal(t, reflect.Slice, ft.Kind(), f.API)
			_, ok := tomlField(deref(ft), "name")
			assert.True(t, ok, "%s: the blueprint's items have a name", f.API)
		case ObjectList:
			assert.Equal(t, reflect.Slice, ft.Kind(), f.API)
			assert.Equal(t, reflect.Struct, deref(ft).Kind(), f.API)
		case Object:
			assert.Equal(t, reflect.Pointer, ft.Kind(), f.API)
			assert.Equal(t, reflect.Struct, deref(ft).Kind(), f.API)
		}
		if f.Kind == Object || f.Kind == ObjectList {
			require.NotEmpty(t, f.Items, "%s declares its fields", f.API)
			checkBlueprintSide(t, ft, f.Items)
		}
	}
}

// Every row of the table names a blueprint field of its shape, and no two
// rows name the same field on either side.
func TestTableNamesBlueprintFields(t *testing.T) {
	checkBlueprintSide(t, reflect.TypeFor[blueprint.Blueprint](), Customizations)
	var unique func(fields []Field)
	unique = func(fields []Field) {
		api, bp := map[string]bool{}, map[string]bool{}
		for _, f := range fields {
			assert.False(t, api[f.API], "API field %s appears twice", f.API)
			api[f.API] = true
			if f.Blueprint != "" {
				assert.False(t, bp[f.Blueprint], "blueprint field %s appears twice", f.Blueprint)
				bp[f.Blueprint] = true
			}
			unique(f.Items)
		}
	}
	unique(Customizations)
	for _, fd := range Folds {
		from, ok := lookup(reflect.TypeFor[blueprint.Blueprint](), fd.Blueprint)
		require.True(t, ok, fd.Blueprint)
		into := byBlueprint(Customizations, fd.Into)
		require.NotNil(t, into, "%s folds into a row of the table", fd.Blueprint)
		for k, v := range fd.Items {
			_, ok := tomlField(deref(from), k)
			assert.True(t, ok, "%s has a field %s", fd.Blueprint, k)
			assert.NotNil(t, byBlueprint(into.Items, v), "%s has a field %s", fd.Into, v)
		}
	}
}

// Every blueprint customization the table does not carry is one the API
// is known not to carry yet: a new blueprint field fails here until it is
// given a row or added to this list.
func TestBlueprintFieldsTheAPILacks(t *testing.T) {
	lacks := []string{
		"modules", "groups",
		"customizations.user.description", "customizations.user.home", "customizations.user.shell",
		"customizations.user.uid", "customizations.user.gid", "customizations.user.expiredate",
		"customizations.user.force_password_reset",
		"packages.version",
		// The image-builder API has no sshd options.
		"customizations.sshd",
	}
	carried := map[string]bool{}
	for _, k := range CarriedApart {
		carried[k] = true
	}
	for _, fd := range Folds {
		carried[fd.Blueprint] = true
	}
	var walk func(prefix string, fields []Field)
	walk = func(prefix string, fields []Field) {
		for _, f := range fields {
			if f.Blueprint != "" {
				carried[prefix+f.Blueprint] = true
				walk(prefix+f.Blueprint+".", f.Items)
			}
		}
	}
	walk("", Customizations)
	carried["packages.name"] = true

	var missing []string
	var visit func(prefix string, t reflect.Type)
	visit = func(prefix string, t reflect.Type) {
		t = deref(t)
		for i := 0; i < t.NumField(); i++ {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
			if name == "" || name == "-" {
				continue
			}
			p := prefix + name
			switch {
			case carried[p]:
				// Objects the table carries are checked field by field.
				if ft := deref(t.Field(i).Type); ft.Kind() == reflect.Struct && (p == "packages" || p == "customizations" || hasItems(p)) {
					visit(p+".", ft)
				}
			case p == "customizations":
				visit(p+".", t.Field(i).Type)
			default:
				missing = append(missing, p)
			}
		}
	}
	visit("", reflect.TypeFor[blueprint.Blueprint]())
	assert.ElementsMatch(t, lacks, missing)
}

// hasItems says whether the table's field at blueprint path p declares
// fields of its own.
func hasItems(p string) bool {
	fields := Customizations
	for {
		var f *Field
		for i := range fields {
			if rest, ok := strings.CutPrefix(p, fields[i].Blueprint); ok && (rest == "" || rest[0] == '.') {
				f = &fields[i]
				p = strings.TrimPrefix(rest, ".")
				break
			}
		}
		if f == nil {
			return false
		}
		if p == "" {
			return len(f.Items) > 0
		}
		fields = f.Items
	}
}

func TestRequestPath(t *testing.T) {
	for bp, req := range map[string]string{
		"packages[3]":                                  "customizations.packages[3]",
		"packages[3].name":                             "customizations.packages[3]",
		"customizations.user[0].key":                   "customizations.users[0].ssh_key",
		"customizations.user[0]":                       "customizations.users[0]",
		"customizations.user[2].groups[1]":             "customizations.users[2].groups[1]",
		"customizations.group[0].gid":                  "customizations.groups[0].gid",
		"customizations.filesystem[1].minsize":         "customizations.filesystem[1].min_size",
		"customizations.repositories[2].gpgcheck":      "customizations.custom_repositories[2].check_gpg",
		"customizations.repositories[0].gpgkeys[1]":    "customizations.custom_repositories[0].gpgkey[1]",
		"customizations.repositories":                  "customizations.custom_repositories",
		"customizations.timezone.timezone":             "customizations.timezone.timezone",
		"customizations.firewall.services.enabled[0]":  "customizations.firewall.services.enabled[0]",
		"customizations.hostname":                      "customizations.hostname",
		"customizations.firstboot.scripts[1].contents": "customizations.firstboot.scripts[1].contents",
		"customizations.files[0].path":                 "customizations.files[0].path",
		"customizations.sshkey[0].key":                 "customizations.sshkey[0].key",
		"customizations.users":                         "customizations.users",
		"name":                                         "name",
	} {
		assert.Equal(t, req, RequestPath(bp), bp)
	}
}
