package blueprint

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParse feeds arbitrary documents to the parser in both formats. Any
// input must either parse into a blueprint that validates and round-trips
// through both export formats, or fail with Errors; nothing may panic.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.*")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		format, err := FormatFromPath(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, format == FormatJSON)
	}
	for _, seed := range []string{
		"", "name = \"a\"", "{}", `{"name": "a", "customizations": {"user": [{"name": "u", "password": "p"}]}}`,
		"name = \"a\"\n[customizations]\nhostname = \"h\"\n[[customizations.user]]\nname = \"u\"\nuid = 1000",
		"name = [[[[[[]]]]]]", `{"name": [[[[{}]]]]}`, "a.b.c.d = 1", "name = \"a\"\n[[customizations.files]]\npath = \"/etc/a\"\nmode = \"0644\"\nuser = 0",
		`{"name": "a", "customizations": {"disk": {"partitions": [{"type": "lvm", "logical_volumes": [{"mountpoint": "/", "minsize": "1 GiB"}]}]}}}`,
	} {
		f.Add([]byte(seed), seed != "" && seed[0] == '{')
		f.Add([]byte(seed), seed == "" || seed[0] != '{')
	}
	f.Fuzz(func(t *testing.T, data []byte, asJSON bool) {
		format := FormatTOML
		if asJSON {
			format = FormatJSON
		}
		bp, err := ParseWithOptions(data, format, ParseOptions{Rand: zeroReader{}})
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("the error is not a list of problems: %T %v", err, err)
			}
			for _, p := range errs {
				if p.Message == "" {
					t.Fatalf("a problem without a message at %q", p.Path)
				}
			}
			return
		}
		if err := bp.Validate(); err != nil {
			t.Fatalf("a parsed blueprint does not validate: %v", err)
		}
		for _, export := range []struct {
			format Format
			fn     func() ([]byte, error)
		}{{FormatTOML, bp.ToTOML}, {FormatJSON, bp.ToJSON}} {
			out, err := export.fn()
			if err != nil {
				t.Fatalf("exporting as %v: %v", export.format, err)
			}
			back, err := ParseWithOptions(out, export.format, ParseOptions{Rand: zeroReader{}})
			if err != nil {
				t.Fatalf("re-parsing the %v export:\n%s\n%v", export.format, out, err)
			}
			if !reflect.DeepEqual(bp, back) {
				t.Fatalf("the %v export does not round-trip:\n%s", export.format, out)
			}
		}
	})
}
