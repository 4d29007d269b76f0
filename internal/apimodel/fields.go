package apimodel

import "strings"

// Kind says how a field's value is carried between the API and the
// blueprint.
type Kind int

const (
	// Plain values (a string, a number, a list of strings) are carried as
	// they are.
	Plain Kind = iota
	// Object is an object whose fields Items declares.
	Object
	// ObjectList is a list of objects whose fields Items declares.
	ObjectList
	// NameList is a list of names in the API and a list of tables with a
	// name (and a version the API cannot carry) in the blueprint: packages.
	NameList
)

// Field maps one API customization field onto the blueprint field that
// holds it.
type Field struct {
	// API is the field's JSON name: under customizations in a compose or
	// blueprint request for a row of Customizations, within the object for
	// an item.
	API string
	// Blueprint is the field's TOML path: from the blueprint's root for a
	// row of Customizations (packages, customizations.user), within the
	// table for an item (key). Empty for a field only the API has, which
	// translation drops: see Note.
	Blueprint string
	// Kind says how the value is carried.
	Kind Kind
	// Items are the fields of an Object or of each item of an ObjectList.
	Items []Field
	// Note says, for a field only the API has, why nothing carries it.
	Note string
}

// Customizations is the one declared mapping between the API's
// customizations and the blueprint: both translations, the rewriting of
// the blueprint validator's field paths into the request's, and the tests
// against the OpenAPI document all read it.
var Customizations = []Field{
	{API: "packages", Blueprint: "packages", Kind: NameList},
	{API: "users", Blueprint: "customizations.user", Kind: ObjectList, Items: []Field{
		{API: "name", Blueprint: "name"},
		{API: "groups", Blueprint: "groups"},
		{API: "ssh_key", Blueprint: "key"},
		{API: "password", Blueprint: "password"},
		{API: "hasPassword", Note: "returned in place of the password; sent back without a password, the update keeps the stored one"},
	}},
	{API: "groups", Blueprint: "customizations.group", Kind: ObjectList, Items: []Field{
		{API: "name", Blueprint: "name"},
		{API: "gid", Blueprint: "gid"},
	}},
	{API: "filesystem", Blueprint: "customizations.filesystem", Kind: ObjectList, Items: []Field{
		{API: "mountpoint", Blueprint: "mountpoint"},
		{API: "min_size", Blueprint: "minsize"},
	}},
	{API: "services", Blueprint: "customizations.services", Kind: Object, Items: []Field{
		{API: "enabled", Blueprint: "enabled"},
		{API: "disabled", Blueprint: "disabled"},
		{API: "masked", Blueprint: "masked"},
	}},
	{API: "hostname", Blueprint: "customizations.hostname"},
	{API: "kernel", Blueprint: "customizations.kernel", Kind: Object, Items: []Field{
		{API: "name", Blueprint: "name"},
		{API: "append", Blueprint: "append"},
	}},
	{API: "timezone", Blueprint: "customizations.timezone", Kind: Object, Items: []Field{
		{API: "timezone", Blueprint: "timezone"},
		{API: "ntpservers", Blueprint: "ntpservers"},
	}},
	{API: "locale", Blueprint: "customizations.locale", Kind: Object, Items: []Field{
		{API: "languages", Blueprint: "languages"},
		{API: "keyboard", Blueprint: "keyboard"},
	}},
	{API: "firewall", Blueprint: "customizations.firewall", Kind: Object, Items: []Field{
		{API: "ports", Blueprint: "ports"},
		{API: "services", Blueprint: "services", Kind: Object, Items: []Field{
			{API: "enabled", Blueprint: "enabled"},
			{API: "disabled", Blueprint: "disabled"},
		}},
	}},
	{API: "files", Blueprint: "customizations.files", Kind: ObjectList, Items: []Field{
		{API: "path", Blueprint: "path"},
		{API: "mode", Blueprint: "mode"},
		{API: "user", Blueprint: "user"},
		{API: "group", Blueprint: "group"},
		{API: "data", Blueprint: "data"},
		{API: "ensure_parents", Note: "a file always gets its parent directories"},
		{API: "data_encoding", Note: "`base64` data is decoded into the file's text"},
	}},
	{API: "directories", Blueprint: "customizations.directories", Kind: ObjectList, Items: []Field{
		{API: "path", Blueprint: "path"},
		{API: "mode", Blueprint: "mode"},
		{API: "user", Blueprint: "user"},
		{API: "group", Blueprint: "group"},
		{API: "ensure_parents", Blueprint: "ensure_parents"},
	}},
	{API: "custom_repositories", Blueprint: "customizations.repositories", Kind: ObjectList, Items: []Field{
		{API: "id", Blueprint: "id"},
		{API: "name", Blueprint: "name"},
		{API: "baseurl", Blueprint: "baseurls"},
		{API: "gpgkey", Blueprint: "gpgkeys"},
		{API: "check_gpg", Blueprint: "gpgcheck"},
		{API: "enabled", Blueprint: "enabled"},
		{API: "priority", Blueprint: "priority"},
		{API: "filename", Blueprint: "filename"},
		{API: "suite", Blueprint: "suite"},
		{API: "components", Blueprint: "components"},
		{API: "install_from", Blueprint: "install_from"},
	}},
	// Image-builder's disk has the blueprint's own field names all the
	// way down; the blueprint validator checks it and names its fields.
	{API: "disk", Blueprint: "customizations.disk"},
	{API: "cacerts", Blueprint: "customizations.cacerts", Kind: Object, Items: []Field{
		{API: "pem_certs", Blueprint: "pem_certs"},
	}},
	// A kiln extension: the blueprint's first-boot scripts under the same
	// names (image-builder's API has none).
	{API: "firstboot", Blueprint: "customizations.firstboot", Kind: Object, Items: []Field{
		{API: "scripts", Blueprint: "scripts", Kind: ObjectList, Items: []Field{
			{API: "type", Blueprint: "type"},
			{API: "name", Blueprint: "name"},
			{API: "ignore_failure", Blueprint: "ignore_failure"},
			{API: "after", Blueprint: "after"},
			{API: "before", Blueprint: "before"},
			{API: "contents", Blueprint: "contents"},
		}},
	}},
	{API: "fips", Note: "FIPS mode is not available for Debian: only `enabled: false` is taken"},
	{API: "payload_repositories", Note: "each makes the custom repository with its id or baseurl `install_from` (see docs/service.md)"},
}

// Fold is a blueprint list the API has no field of its own for: its
// entries become entries of another list's field.
type Fold struct {
	// Blueprint is the folded list's TOML path.
	Blueprint string
	// Into is the TOML path of the list its entries join.
	Into string
	// Items maps each folded entry's fields to the fields of Into's items
	// (blueprint names).
	Items map[string]string
}

// Folds are the blueprint lists that reach the API folded into another:
// a legacy sshkey entry is a user with a key.
var Folds = []Fold{
	{Blueprint: "customizations.sshkey", Into: "customizations.user", Items: map[string]string{"user": "name", "key": "key"}},
}

// CarriedApart are the blueprint's top-level fields that are not
// customizations: a request carries its name, description and
// distribution in fields of its own, and drops the rest.
var CarriedApart = []string{"name", "description", "version", "distro", "architecture"}

// byAPI is the field of fields whose API name is name, or nil.
func byAPI(fields []Field, name string) *Field {
	for i := range fields {
		if fields[i].API == name {
			return &fields[i]
		}
	}
	return nil
}

// byBlueprint is the field of fields whose blueprint path is path, or nil.
func byBlueprint(fields []Field, path string) *Field {
	if path == "" {
		return nil
	}
	for i := range fields {
		if fields[i].Blueprint == path {
			return &fields[i]
		}
	}
	return nil
}

// RequestPath turns a field path of the blueprint a request was translated
// into (customizations.user[0].key) into the request's own path
// (customizations.users[0].ssh_key). A path the table has no row for is
// returned as it is.
func RequestPath(p string) string {
	for _, f := range Customizations {
		rest, ok := strings.CutPrefix(p, f.Blueprint)
		if !ok || (rest != "" && rest[0] != '.' && rest[0] != '[') {
			continue
		}
		return "customizations." + f.API + requestRest(&f, rest)
	}
	return p
}

// requestRest rewrites what follows field f in a blueprint path.
func requestRest(f *Field, rest string) string {
	switch f.Kind {
	case NameList:
		// packages[i].name is the API's packages[i].
		idx, after, ok := cutIndex(rest)
		if !ok {
			return rest
		}
		if a, ok := strings.CutPrefix(after, ".name"); ok && (a == "" || a[0] == '.' || a[0] == '[') {
			after = a
		}
		return idx + after
	case ObjectList:
		idx, after, ok := cutIndex(rest)
		if !ok {
			return rest
		}
		return idx + itemRest(f.Items, after)
	case Object:
		return itemRest(f.Items, rest)
	}
	return rest
}

// itemRest rewrites ".field..." within an object whose fields are items.
func itemRest(items []Field, rest string) string {
	after, ok := strings.CutPrefix(rest, ".")
	if !ok {
		return rest
	}
	name := after
	if i := strings.IndexAny(after, ".["); i >= 0 {
		name = after[:i]
	}
	it := byBlueprint(items, name)
	if it == nil {
		return rest
	}
	return "." + it.API + requestRest(it, after[len(name):])
}

// cutIndex splits "[i]..." into "[i]" and what follows.
func cutIndex(s string) (idx, after string, ok bool) {
	if !strings.HasPrefix(s, "[") {
		return "", s, false
	}
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return "", s, false
	}
	return s[:end+1], s[end+1:], true
}
