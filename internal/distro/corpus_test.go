package distro

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-project/kiln/blueprint"
)

// The corpus under testdata/corpus holds blueprints in osbuild's format
// that carry what osbuild's own test configurations and its blueprint
// reference exercise, each file saying in its header which ones it covers.
// Those in accepted/ must plan a manifest; those in refused/ keep a
// feature Debian or kiln cannot provide and must be refused, at the field,
// saying what and why.
//
// Header comments tune a file's check:
//
//	# image-type: vhd        the image type to plan (default qcow2)
//	# distro: debian-13      the distribution (default debian-12)
//	# refused: PATH | WORD   a problem the refusal must hold: at PATH, with
//	                         WORD in its message (refused/ only; one line
//	                         per problem, and no other problem may come)

// corpusExpectation is a problem a refused corpus blueprint must get.
type corpusExpectation struct{ path, word string }

// corpusHeader is what the header comments of a corpus file say.
type corpusHeader struct {
	imageType, distro string
	refused           []corpusExpectation
	covers            bool
}

func readCorpusHeader(t *testing.T, text string) corpusHeader {
	t.Helper()
	h := corpusHeader{imageType: "qcow2", distro: "debian-12"}
	for _, line := range strings.Split(text, "\n") {
		comment, ok := strings.CutPrefix(line, "#")
		if !ok {
			break // the header ends at the first line that is not a comment
		}
		key, value, _ := strings.Cut(strings.TrimSpace(comment), ":")
		value = strings.TrimSpace(value)
		switch key {
		case "Covers":
			h.covers = true
		case "image-type":
			h.imageType = value
		case "distro":
			h.distro = value
		case "refused":
			path, word, ok := strings.Cut(value, "|")
			if !ok {
				t.Fatalf("%q: write refused: PATH | WORD", line)
			}
			h.refused = append(h.refused, corpusExpectation{strings.TrimSpace(path), strings.TrimSpace(word)})
		}
	}
	return h
}

// planCorpusBlueprint parses and plans one corpus file.
func planCorpusBlueprint(t *testing.T, reg *Registry, h corpusHeader, data []byte) error {
	t.Helper()
	// Every phase answers at once, as validate and the API do: what the
	// blueprint layer refuses and what the image type refuses.
	it := imageType(t, reg, h.distro, "x86_64", h.imageType)
	bp, reported := blueprint.ParseAll(data, blueprint.FormatTOML)
	if bp == nil {
		return reported
	}
	plan, err := it.PlanAll(bp, Options{Mirrors: testMirrors}, reported)
	if err != nil {
		return err
	}
	if all := reported.Merge(plan.Problems); len(all) > 0 {
		return all
	}
	_, err = planBlueprint(it, bp)
	return err
}

func corpusFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "corpus", dir, "*.toml"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// readCorpusFile reads a corpus blueprint and its header, which must say
// which upstream blueprints the file covers.
func readCorpusFile(t *testing.T, file string) ([]byte, corpusHeader) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	h := readCorpusHeader(t, string(data))
	if !h.covers {
		t.Fatal("the header does not say which upstream blueprints the file covers (# Covers: ...)")
	}
	return data, h
}

// Blueprints written for osbuild, with only what is RHEL's or Fedora's
// taken out or renamed, produce a manifest.
func TestCorpusAccepted(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	files := corpusFiles(t, "accepted")
	if len(files) < 25 {
		t.Fatalf("found %d accepted corpus blueprints; the corpus has more", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			data, h := readCorpusFile(t, f)
			if len(h.refused) > 0 {
				t.Fatal("an accepted blueprint expects a refusal; move it to refused/")
			}
			if err := planCorpusBlueprint(t, reg, h, data); err != nil {
				t.Errorf("refused on %s %s:\n%v", h.distro, h.imageType, err)
			}
		})
	}
}

// Blueprints that keep a feature Debian or kiln cannot provide are refused
// with every such problem at its field, each saying what it is, and with
// nothing else.
func TestCorpusRefused(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	files := corpusFiles(t, "refused")
	if len(files) < 8 {
		t.Fatalf("found %d refused corpus blueprints; the corpus has more", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			data, h := readCorpusFile(t, f)
			if len(h.refused) == 0 {
				t.Fatal("the header lists no expected refusal (# refused: PATH | WORD)")
			}
			err := planCorpusBlueprint(t, reg, h, data)
			if err == nil {
				t.Fatal("planned a manifest; it must be refused")
			}
			var problems blueprint.Errors
			if !errors.As(err, &problems) {
				t.Fatalf("refused without field paths: %v", err)
			}
			for _, want := range h.refused {
				if !slices.ContainsFunc(problems, func(p blueprint.Problem) bool {
					return p.Path == want.path && strings.Contains(p.Message, want.word)
				}) {
					t.Errorf("no problem at %s saying %q; got:\n%v", want.path, want.word, problems)
				}
			}
			for _, p := range problems {
				if !slices.ContainsFunc(h.refused, func(want corpusExpectation) bool { return want.path == p.Path }) {
					t.Errorf("unexpected problem %s", fmt.Sprint(p))
				}
			}
		})
	}
}
