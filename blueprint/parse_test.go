package blueprint

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// mustParse parses a document that the test expects to be valid.
func mustParse(t *testing.T, doc string, format Format) *Blueprint {
	t.Helper()
	bp, err := ParseWithOptions([]byte(doc), format, ParseOptions{Rand: zeroReader{}})
	if err != nil {
		t.Fatalf("parsing:\n%s\nerror:\n%v", doc, err)
	}
	return bp
}

// problemsOf parses a document that the test expects to be invalid and
// returns its problems.
func problemsOf(t *testing.T, doc string, format Format) Errors {
	t.Helper()
	_, err := ParseWithOptions([]byte(doc), format, ParseOptions{Rand: zeroReader{}})
	if err == nil {
		t.Fatalf("parsing succeeded, want an error:\n%s", doc)
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, want Errors: %v", err, err)
	}
	return errs
}

// hasProblem reports whether errs holds a problem at path whose message
// contains want.
func hasProblem(errs Errors, path, want string) bool {
	for _, p := range errs {
		if p.Path == path && strings.Contains(p.Message, want) {
			return true
		}
	}
	return false
}

// zeroReader is a deterministic salt source.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestParseExamples(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/*.*")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("found %d example blueprints in testdata, want the examples there", len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			bp, err := ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := bp.Validate(); err != nil {
				t.Fatalf("a parsed blueprint does not validate: %v", err)
			}
			assertRoundTrip(t, bp)
		})
	}
}

// assertRoundTrip exports bp in both formats and checks that each parses
// back to an equal blueprint.
func assertRoundTrip(t *testing.T, bp *Blueprint) {
	t.Helper()
	for _, f := range []struct {
		format Format
		export func() ([]byte, error)
	}{{FormatTOML, bp.ToTOML}, {FormatJSON, bp.ToJSON}, {FormatJSON, func() ([]byte, error) { return json.Marshal(bp) }}} {
		data, err := f.export()
		if err != nil {
			t.Fatalf("exporting as %v: %v", f.format, err)
		}
		back, err := Parse(data, f.format)
		if err != nil {
			t.Fatalf("re-parsing the %v export:\n%s\nerror: %v", f.format, data, err)
		}
		if !reflect.DeepEqual(bp, back) {
			t.Fatalf("the %v export does not round-trip:\n%s\nhave %+v\nwant %+v", f.format, data, back, bp)
		}
	}
}

func TestParseFullTOMLAndJSONAgree(t *testing.T) {
	t.Parallel()
	fromTOML, err := ParseFile("testdata/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err := ParseFile("testdata/full.json")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromTOML, fromJSON) {
		t.Fatalf("full.toml and full.json differ:\n%+v\n%+v", fromTOML, fromJSON)
	}
	c := fromTOML.GetCustomizations()
	checks := []struct {
		name       string
		have, want any
	}{
		{"hostname", c.GetHostname(), "web01.example.org"},
		{"packages", len(fromTOML.AllPackages()), 4},
		{"last package is the module", fromTOML.AllPackages()[3].Name, "vim"},
		{"users", len(c.GetUsers()), 2},
		{"uid", *c.GetUsers()[0].UID, 1001},
		{"filesystem size", c.GetFilesystems()[0].MinSize, 10 * GiB},
		{"filesystem size in bytes", c.GetFilesystems()[1].MinSize, 2 * GiB},
		{"file owner by name", c.GetFiles()[0].User.String(), "www-data"},
		{"file group by id", c.GetFiles()[0].Group.String(), "33"},
		{"services get .service", c.GetServices().GetEnabled(), []string{"nginx.service", "ssh.service", "fstrim.timer"}},
		{"repository enabled by default", c.GetRepositories()[0].IsEnabled(), true},
		{"ca certs", len(c.GetCACerts()), 1},
	}
	for _, tc := range checks {
		if !reflect.DeepEqual(tc.have, tc.want) {
			t.Errorf("%s: have %#v, want %#v", tc.name, tc.have, tc.want)
		}
	}
	tz, ntp := c.GetTimezone()
	if tz != "Europe/Berlin" || len(ntp) != 2 {
		t.Errorf("timezone: have %q %v", tz, ntp)
	}
	langs, kb := c.GetLocale()
	if kb != "de-latin1" || langs[0] != "en_US.UTF-8" {
		t.Errorf("locale: have %v %q", langs, kb)
	}
}

func TestFormatFromPath(t *testing.T) {
	t.Parallel()
	cases := []struct {
		path string
		want Format
		err  string
	}{
		{"web.toml", FormatTOML, ""},
		{"dir/web.JSON", FormatJSON, ""},
		{"web.yaml", 0, `unknown blueprint extension ".yaml"`},
		{"web", 0, "no file extension"},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			got, err := FormatFromPath(tc.path)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("have %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestParseFileErrorsNameTheFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("name = \"x y\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ParseFile(bad)
	var errs Errors
	if err == nil || !strings.Contains(err.Error(), bad) || !errors.As(err, &errs) || errs[0].Path != "name" {
		t.Fatalf("error %v should name %s and wrap Errors", err, bad)
	}
	if _, err := ParseFile(filepath.Join(dir, "missing.toml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v, want os.ErrNotExist", err)
	}
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, bytes.Repeat([]byte(" "), MaxBlueprintSize+10), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseFile(big); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("oversized file: %v", err)
	}
}

func TestParseDecodingProblems(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		format Format
		doc    string
		path   string
		want   string
	}{
		{"unknown top-level field with suggestion", FormatTOML, "name = \"a\"\npackage = []", "package", `did you mean "packages"?`},
		{"unknown field with swapped letters", FormatTOML, "name = \"a\"\n[[customizations.user]]\nnmae = \"u\"", "customizations.user[0].nmae", `did you mean "name"?`},
		{"unknown field wrong case", FormatTOML, "Name = \"a\"", "Name", `did you mean "name"?`},
		{"unknown nested field", FormatTOML, "name = \"a\"\n[customizations]\nhostnme = \"h\"", "customizations.hostnme", `did you mean "hostname"?`},
		{"unknown field without suggestion", FormatJSON, `{"name":"a","flavour":1}`, "flavour", "known fields here are name, description"},
		{"unknown field in a list entry", FormatTOML, "name = \"a\"\n[[customizations.user]]\nname = \"u\"\nuuid = 3", "customizations.user[0].uuid", `did you mean "uid"?`},
		{"string expected", FormatTOML, "name = 3", "name", "expected a string, got an integer"},
		{"integer expected", FormatTOML, "name = \"a\"\n[[customizations.user]]\nname = \"u\"\nuid = \"1000\"", "customizations.user[0].uid", "expected an integer, got a string"},
		{"float for integer TOML", FormatTOML, "name = \"a\"\n[[customizations.group]]\nname = \"g\"\ngid = 1.5", "customizations.group[0].gid", "expected an integer, got a floating-point number"},
		{"float for integer JSON", FormatJSON, `{"name":"a","customizations":{"group":[{"name":"g","gid":1e3}]}}`, "customizations.group[0].gid", "expected an integer, got a number with a fraction"},
		{"integer out of range JSON", FormatJSON, `{"name":"a","customizations":{"group":[{"name":"g","gid":123456789012345678901234567890}]}}`, "customizations.group[0].gid", "out of range"},
		{"boolean expected", FormatJSON, `{"name":"a","customizations":{"directories":[{"path":"/srv/a","ensure_parents":"yes"}]}}`, "customizations.directories[0].ensure_parents", "expected a boolean"},
		{"array expected", FormatTOML, "name = \"a\"\npackages = \"vim\"", "packages", "expected an array, got a string"},
		{"table expected", FormatTOML, "name = \"a\"\ncustomizations = 1", "customizations", "expected a table, got an integer"},
		{"object expected", FormatJSON, `{"name":"a","customizations":[]}`, "customizations", "expected an object, got an array"},
		{"date-time", FormatTOML, "name = 1979-05-27T07:32:00Z", "name", "got a date-time"},
		{"size string", FormatTOML, "name = \"a\"\n[[customizations.filesystem]]\nmountpoint = \"/\"\nminsize = \"ten gigs\"", "customizations.filesystem[0].minsize", "is not a size"},
		{"size unit", FormatTOML, "name = \"a\"\n[[customizations.filesystem]]\nmountpoint = \"/\"\nminsize = \"10 GB2\"", "customizations.filesystem[0].minsize", "unknown unit"},
		{"size negative", FormatTOML, "name = \"a\"\n[[customizations.filesystem]]\nmountpoint = \"/\"\nminsize = -1", "customizations.filesystem[0].minsize", "positive number"},
		{"size zero", FormatTOML, "name = \"a\"\n[[customizations.filesystem]]\nmountpoint = \"/\"\nminsize = 0", "customizations.filesystem[0].minsize", "leave the field out"},
		{"size zero string", FormatTOML, "name = \"a\"\n[[customizations.filesystem]]\nmountpoint = \"/\"\nminsize = \"0 GiB\"", "customizations.filesystem[0].minsize", "zero"},
		{"size wrong type", FormatTOML, "name = \"a\"\n[[customizations.filesystem]]\nmountpoint = \"/\"\nminsize = true", "customizations.filesystem[0].minsize", "expected a size"},
		{"owner negative", FormatJSON, `{"name":"a","customizations":{"files":[{"path":"/etc/a","user":-1}]}}`, "customizations.files[0].user", "cannot be negative"},
		{"owner wrong type", FormatJSON, `{"name":"a","customizations":{"files":[{"path":"/etc/a","group":true}]}}`, "customizations.files[0].group", "a name or a numeric id"},
		{"NUL in string", FormatJSON, `{"name":"a\u0000b"}`, "name", "NUL byte"},
		{"NUL in list", FormatJSON, `{"name":"a","customizations":{"timezone":{"ntpservers":["x\u0000"]}}}`, "customizations.timezone.ntpservers[0]", "NUL byte"},
		{"JSON duplicate key", FormatJSON, `{"name":"a","customizations":{"hostname":"a","hostname":"b"}}`, "customizations.hostname", "given twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			errs := problemsOf(t, tc.doc, tc.format)
			if !hasProblem(errs, tc.path, tc.want) {
				t.Fatalf("want a problem at %q containing %q, have:\n%v", tc.path, tc.want, errs)
			}
		})
	}
}

func TestParseUnsupportedKeys(t *testing.T) {
	t.Parallel()
	cases := []struct {
		doc, path, want string
	}{
		{"[[customizations.firstboot.scripts]]\ntype = \"satellite\"\ncommand = \"x\"", "customizations.firstboot.scripts[0].command", "not supported for Debian-family images"},
		{"[customizations.firewall]\nzones = []", "customizations.firewall.zones", "not supported yet"},
		{"[[customizations.files]]\npath = \"/etc/a\"\nuri = \"https://x/a\"", "customizations.files[0].uri", "not supported yet"},
		{"[[containers]]\nsource = \"quay.io/x\"", "containers", "not supported for Debian-family images"},
		{"[[enabled_modules]]\nname = \"nodejs\"", "enabled_modules", "not supported for Debian-family images"},
		{"[ostree]\nref = \"debian/12/x86_64/edge\"", "ostree", "OSTree commits are not supported"},
		{"[customizations.fdo]\nmanufacturing_server_url = \"x\"", "customizations.fdo", "not supported for Debian-family images"},
		{"[customizations.openscap]\nprofile_id = \"x\"", "customizations.openscap", "not supported for Debian-family images"},
		{"[customizations.oscap]\nprofile_id = \"x\"", "customizations.oscap", "not supported for Debian-family images"},
		{"[customizations.ignition.embedded]\nconfig = \"x\"", "customizations.ignition", "not supported for Debian-family images"},
		{"[customizations]\nfips = true", "customizations.fips", "not supported for Debian-family images"},
		{"[customizations.installer]\nunattended = true", "customizations.installer", "not supported for Debian-family images"},
		{"[customizations.rhsm.config]\nx = 1", "customizations.rhsm", "not supported for Debian-family images"},
		{"[customizations.rpm.import_keys]\nfiles = []", "customizations.rpm", "not supported for Debian-family images"},
		{"[customizations]\ninstallation_device = \"/dev/sda\"", "customizations.installation_device", "not supported for Debian-family images"},
		{"[customizations]\npartitioning_mode = \"lvm\"", "customizations.partitioning_mode", "not supported for Debian-family images"},
		{"[customizations.wsl.distribution]\nname = \"x\"", "customizations.wsl", "not supported for Debian-family images"},
		{"[customizations.dnf.config]\nset_releasever = true", "customizations.dnf", "not supported for Debian-family images"},
		{"[customizations.containers-storage]\ndestination-path = \"/x\"", "customizations.containers-storage", "not supported for Debian-family images"},
		{"[[customizations.repositories]]\nid = \"x\"\nmetalink = \"https://x\"", "customizations.repositories[0].metalink", "not supported for Debian-family images"},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			errs := problemsOf(t, "name = \"a\"\n"+tc.doc, FormatTOML)
			if !hasProblem(errs, tc.path, tc.want) {
				t.Fatalf("want a problem at %q containing %q, have:\n%v", tc.path, tc.want, errs)
			}
		})
	}
}

func TestParseDocumentProblems(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		format Format
		doc    string
		want   string
	}{
		{"TOML syntax", FormatTOML, "name = \"a\nx", "not valid TOML: line 1"},
		{"TOML duplicate key", FormatTOML, "name = \"a\"\nname = \"b\"", "not valid TOML: line 2"},
		{"JSON syntax", FormatJSON, "{\n\"name\": \"a\",,}", "not valid JSON: line 2"},
		{"JSON truncated", FormatJSON, `{"name": "a"`, "ends early"},
		{"JSON trailing data", FormatJSON, `{"name": "a"} {}`, "unexpected data after"},
		{"JSON not an object", FormatJSON, `["name"]`, "must be an object, got an array"},
		{"raw NUL byte", FormatTOML, "name = \"a\x00\"", "NUL byte"},
		{"too large", FormatTOML, "name = \"a\"\n#" + strings.Repeat("x", MaxBlueprintSize), "more than the limit"},
		{"deep TOML arrays", FormatTOML, "name = " + strings.Repeat("[", 100000), "nest more than"},
		{"deep TOML inline tables", FormatTOML, "name = " + strings.Repeat("{a=", 100000), "nest more than"},
		{"deep JSON arrays", FormatJSON, `{"name": ` + strings.Repeat("[", 100000), "nest more than"},
		{"deep JSON objects", FormatJSON, strings.Repeat(`{"a":`, 100000), "nest more than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			errs := problemsOf(t, tc.doc, tc.format)
			if len(errs) != 1 || errs[0].Path != "" || !strings.Contains(errs[0].Message, tc.want) {
				t.Fatalf("want one document problem containing %q, have:\n%v", tc.want, errs)
			}
		})
	}
	if _, err := Parse([]byte(`name = "a"`), Format(9)); err == nil || !strings.Contains(err.Error(), "unknown blueprint format") {
		t.Fatalf("unknown format: %v", err)
	}
}

func TestParseNestingWithinLimitIsATypeError(t *testing.T) {
	t.Parallel()
	doc := "name = " + strings.Repeat("[", 20) + strings.Repeat("]", 20)
	errs := problemsOf(t, doc, FormatTOML)
	if !hasProblem(errs, "name", "expected a string, got an array") {
		t.Fatalf("have %v", errs)
	}
	// Brackets inside strings and comments do not count.
	mustParse(t, "name = \"a\" # "+strings.Repeat("[", 100)+"\ndescription = '"+strings.Repeat("{", 100)+"'\n", FormatTOML)
	mustParse(t, `{"name": "a", "description": "`+strings.Repeat(`[\"`, 100)+`"}`, FormatJSON)
}

func TestParseReportsEveryProblemOnce(t *testing.T) {
	t.Parallel()
	doc := `
name = 42
version = "one"

[customizations]
hostname = "-bad-"

[[customizations.user]]
name = "Bad User"
uid = "x"
`
	errs := problemsOf(t, doc, FormatTOML)
	want := map[string]string{
		"name":                        "expected a string",
		"version":                     "not a semantic version",
		"customizations.hostname":     "not a valid host name",
		"customizations.user[0].name": "not a valid user name",
		"customizations.user[0].uid":  "expected an integer",
	}
	if len(errs) != len(want) {
		t.Fatalf("want %d problems, have %d:\n%v", len(want), len(errs), errs)
	}
	for path, msg := range want {
		if !hasProblem(errs, path, msg) {
			t.Errorf("missing problem at %s (%q) in:\n%v", path, msg, errs)
		}
	}
}

func TestJSONNullMeansUnset(t *testing.T) {
	t.Parallel()
	bp := mustParse(t, `{"name": "a", "description": null, "customizations": {"hostname": null, "user": null}}`, FormatJSON)
	if bp.GetCustomizations().GetHostname() != "" || bp.Description != "" {
		t.Fatalf("null should leave fields unset: %+v", bp)
	}
}

func TestUnmarshalIsStrict(t *testing.T) {
	t.Parallel()
	var wrapper struct {
		Blueprint Blueprint `json:"blueprint"`
	}
	if err := json.Unmarshal([]byte(`{"blueprint": {"name": "a", "packages": [{"name": "vim"}]}}`), &wrapper); err != nil {
		t.Fatal(err)
	}
	if wrapper.Blueprint.Packages[0].Name != "vim" {
		t.Fatalf("have %+v", wrapper.Blueprint)
	}
	err := json.Unmarshal([]byte(`{"blueprint": {"name": "a", "pakages": []}}`), &wrapper)
	var errs Errors
	if !errors.As(err, &errs) || errs[0].Path != "pakages" {
		t.Fatalf("JSON: %v", err)
	}

	var tw struct {
		Blueprint Blueprint `toml:"blueprint"`
	}
	if _, err := toml.Decode("[blueprint]\nname = \"a\"\n[[blueprint.packages]]\nname = \"vim\"\n", &tw); err != nil {
		t.Fatal(err)
	}
	if tw.Blueprint.Packages[0].Name != "vim" {
		t.Fatalf("have %+v", tw.Blueprint)
	}
	if _, err := toml.Decode("[blueprint]\nname = \"a\"\nhostname = \"x\"\n", &tw); err == nil || !strings.Contains(err.Error(), "hostname") {
		t.Fatalf("TOML: %v", err)
	}
}

func TestOwnerJSON(t *testing.T) {
	t.Parallel()
	id := int64(1000)
	for _, tc := range []struct {
		owner Owner
		json  string
	}{{Owner{Name: "www-data"}, `"www-data"`}, {Owner{ID: &id}, `1000`}, {Owner{}, `null`}} {
		data, err := json.Marshal(tc.owner)
		if err != nil || string(data) != tc.json {
			t.Fatalf("marshal %+v: %s, %v; want %s", tc.owner, data, err, tc.json)
		}
		var back Owner
		if err := json.Unmarshal(data, &back); err != nil || back.String() != tc.owner.String() {
			t.Fatalf("unmarshal %s: %+v, %v", data, back, err)
		}
	}
	var o Owner
	if err := json.Unmarshal([]byte(`-3`), &o); err == nil {
		t.Fatal("a negative owner id must be rejected")
	}
}

func TestWarnings(t *testing.T) {
	t.Parallel()
	bp := mustParse(t, `
name = "a"
[[customizations.user]]
name = "old"
password = "$1$abc$OGyl6dDvZCDiGmIVbeuCq/"
[[customizations.repositories]]
id = "unsigned"
baseurls = ["http://deb.example.org/debian"]
suite = "stable"
components = ["main"]
gpgcheck = false
`, FormatTOML)
	w := bp.Warnings()
	if len(w) != 2 || w[0].Path != "customizations.repositories[0].gpgcheck" || w[1].Path != "customizations.user[0].password" {
		t.Fatalf("have %v", w)
	}
	if (*Blueprint)(nil).Warnings() != nil {
		t.Fatal("a nil blueprint has no warnings")
	}
}

func TestErrorsFormat(t *testing.T) {
	t.Parallel()
	errs := Errors{{Path: "name", Message: "required"}, {Message: "document problem"}}
	if errs.Error() != "name: required\ndocument problem" {
		t.Fatalf("have %q", errs.Error())
	}
}

func TestProblemsAreInSchemaOrder(t *testing.T) {
	t.Parallel()
	ps := Errors{
		{Path: "zzz"}, {Path: "customizations.user[10].name"}, {Path: "customizations.user[2].uid"},
		{Path: "customizations.user[2].name"}, {Path: "customizations.hostname"}, {Path: "name"}, {Path: ""},
	}
	sortProblems(ps)
	var got []string
	for _, p := range ps {
		got = append(got, p.Path)
	}
	want := []string{"", "name", "customizations.hostname", "customizations.user[2].name", "customizations.user[2].uid", "customizations.user[10].name", "zzz"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("have %q\nwant %q", got, want)
	}
}

// TestReferenceExampleParses keeps the complete example of the user
// reference valid.
func TestReferenceExampleParses(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/blueprint.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "## A complete example")
	if !ok {
		t.Fatal("docs/blueprint.md has no complete example")
	}
	_, rest, _ = strings.Cut(rest, "```toml\n")
	example, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("the complete example has no TOML block")
	}
	bp := mustParse(t, example, FormatTOML)
	if bp.Name != "web-server" {
		t.Fatalf("have %q", bp.Name)
	}
}

func TestParseStripsTrailingSlashOfHome(t *testing.T) {
	t.Parallel()
	bp := mustParse(t, "name = \"a\"\n[[customizations.user]]\nname = \"app\"\nhome = \"/srv/app/\"\n[[customizations.user]]\nname = \"b\"\nhome = \"/home/b\"\n", FormatTOML)
	if got := *bp.Customizations.User[0].Home; got != "/srv/app" {
		t.Errorf("home = %q, want /srv/app: osbuild strips the slash, and so does kiln", got)
	}
	if got := *bp.Customizations.User[1].Home; got != "/home/b" {
		t.Errorf("home = %q, want /home/b", got)
	}
}
