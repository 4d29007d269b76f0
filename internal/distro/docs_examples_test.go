package distro

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/kiln-project/kiln/blueprint"
)

// docsRoot is the repository's top directory, seen from this package.
const docsRoot = "../.."

// docsDefaultImageType is the image type a documented blueprint is planned
// for unless its block says otherwise: it supports every customization.
const docsDefaultImageType = "qcow2"

// A Markdown comment right before a ```toml block that tunes its check:
//
//	<!-- invalid: why the block is refused on purpose -->
//	<!-- image-type: tar -->
var docsMarkerRe = regexp.MustCompile(`^<!--\s*(invalid|image-type):\s*(.*?)\s*-->$`)

// docsExample is one blueprint shown in the documentation.
type docsExample struct {
	// where is the file and line the block starts at.
	where string
	text  string
	// invalid, when set, says why the block is refused on purpose.
	invalid   string
	imageType string
}

// markdownTOMLBlocks returns the ```toml blocks of a Markdown file with
// the markers in the comment lines right before each.
func markdownTOMLBlocks(t *testing.T, path string) []docsExample {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []docsExample
	var markers []string
	var cur *docsExample
	var body strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case cur != nil && trimmed == "```":
			cur.text = body.String()
			out = append(out, *cur)
			cur, markers = nil, nil
		case cur != nil:
			body.WriteString(line + "\n")
		case trimmed == "```toml":
			cur = &docsExample{where: fmt.Sprintf("%s:%d", filepath.Base(path), n), imageType: docsDefaultImageType}
			body.Reset()
			for _, m := range markers {
				kv := docsMarkerRe.FindStringSubmatch(m)
				switch kv[1] {
				case "invalid":
					cur.invalid = kv[2]
				case "image-type":
					cur.imageType = kv[2]
				}
			}
		case docsMarkerRe.MatchString(trimmed):
			markers = append(markers, trimmed)
		case trimmed != "":
			markers = nil // a marker belongs to the block right after it
		}
	}
	if cur != nil {
		t.Fatalf("%s: the ```toml block is not closed", cur.where)
	}
	return out
}

// blueprintKeys are the top-level keys of a blueprint document.
var blueprintKeys = func() map[string]bool {
	keys := map[string]bool{}
	for _, leaf := range blueprintLeaves("", reflect.TypeFor[blueprint.Blueprint]()) {
		top, _, _ := strings.Cut(leaf, ".")
		keys[top] = true
	}
	return keys
}()

// isBlueprintTOML says whether a TOML block is (part of) a blueprint rather
// than, say, a configuration file: some top-level key is a blueprint's.
func isBlueprintTOML(text string) bool {
	var doc map[string]any
	if _, err := toml.Decode(text, &doc); err != nil {
		return true // broken TOML is checked as a blueprint, and fails
	}
	for k := range doc {
		if blueprintKeys[k] {
			return true
		}
	}
	return false
}

// docsBlueprint completes a documentation fragment into a blueprint: a
// fragment that shows only some fields gets a name.
func docsBlueprint(text string) []byte {
	var doc map[string]any
	if _, err := toml.Decode(text, &doc); err == nil {
		if _, ok := doc["name"]; !ok {
			return []byte("name = \"docs-example\"\n" + text)
		}
	}
	return []byte(text)
}

// checkDocsBlueprint parses, checks and plans a documented blueprint for
// its image type on its distribution (debian-12 unless it names one).
func checkDocsBlueprint(reg *Registry, doc []byte, imageTypeName string) error {
	bp, err := blueprint.Parse(doc, blueprint.FormatTOML)
	if err != nil {
		return err
	}
	distroName := "debian-12"
	if bp.Distro != "" {
		distroName = bp.Distro
	}
	d, err := reg.Distro(distroName)
	if err != nil {
		return err
	}
	a, err := d.Arch("x86_64")
	if err != nil {
		return err
	}
	it, err := a.ImageType(imageTypeName)
	if err != nil {
		return err
	}
	_, err = planBlueprint(it, bp)
	return err
}

// Every blueprint the documentation shows works as shown: each ```toml
// block of docs/*.md and README.md that is a blueprint (fragments get a
// name) and every blueprint in examples/ parses, passes the distribution's
// checks and plans a manifest. A block refused on purpose says so with an
// "invalid" marker, and must then be refused.
func TestDocsExamplesAreValid(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	mds, err := filepath.Glob(filepath.Join(docsRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	mds = append(mds, filepath.Join(docsRoot, "README.md"))
	var examples []docsExample
	for _, md := range mds {
		for _, ex := range markdownTOMLBlocks(t, md) {
			if isBlueprintTOML(ex.text) {
				examples = append(examples, ex)
			}
		}
	}
	files, err := filepath.Glob(filepath.Join(docsRoot, "examples", "*.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		examples = append(examples, docsExample{where: "examples/" + filepath.Base(f), text: string(data), imageType: docsDefaultImageType})
	}
	if len(examples) < 15 {
		t.Fatalf("found only %d documented blueprints; the search for them is broken", len(examples))
	}
	for _, ex := range examples {
		t.Run(ex.where, func(t *testing.T) {
			t.Parallel()
			err := checkDocsBlueprint(reg, docsBlueprint(ex.text), ex.imageType)
			switch {
			case ex.invalid == "" && err != nil:
				t.Errorf("%s: the documented blueprint is refused; fix the example, or mark it <!-- invalid: why --> if that is its point:\n%v", ex.where, err)
			case ex.invalid != "" && err == nil:
				t.Errorf("%s: marked invalid (%s) but it plans a manifest; remove the marker", ex.where, ex.invalid)
			}
		})
	}
}

// A marker applies to the block right after it, and only to that block.
func TestMarkdownTOMLBlocksReadMarkers(t *testing.T) {
	t.Parallel()
	md := filepath.Join(t.TempDir(), "doc.md")
	text := strings.Join([]string{
		"<!-- invalid: shows the error -->",
		"<!-- image-type: tar -->",
		"```toml",
		`hostname = "a"`,
		"```",
		"<!-- invalid: not for the next one -->",
		"Some text between.",
		"",
		"```toml",
		`hostname = "b"`,
		"```",
		"```sh",
		"kiln build",
		"```",
	}, "\n")
	if err := os.WriteFile(md, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	got := markdownTOMLBlocks(t, md)
	want := []docsExample{
		{where: "doc.md:3", text: "hostname = \"a\"\n", invalid: "shows the error", imageType: "tar"},
		{where: "doc.md:9", text: "hostname = \"b\"\n", imageType: docsDefaultImageType},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if isBlueprintTOML("[mirrors]\ndebian = \"http://mirror.example/debian\"\n") {
		t.Error("a configuration file is taken for a blueprint")
	}
	if !isBlueprintTOML("[customizations]\nhostname = \"a\"\n") {
		t.Error("a blueprint fragment is not taken for a blueprint")
	}
}
