package blueprint

import (
	"strings"
	"testing"
)

func repoTOML(id string, extra ...string) string {
	return "[[customizations.repositories]]\nid = \"" + id + "\"\nbaseurls = [\"https://deb.example.org/" + id + "\"]\nsuite = \"bookworm\"\ncomponents = [\"main\"]\n" + strings.Join(extra, "\n") + "\n"
}

func TestValidateRepositoryFieldsThatReachTheImage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, doc, path, want string
	}{
		{"key over http", repoTOML("a", `gpgkeys = ["http://deb.example.org/key.asc"]`), "customizations.repositories[0].gpgkeys[0]", "plain http URL"},
		{"file named twice after suffixes", repoTOML("a", `filename = "extra.repo"`) + repoTOML("b", `filename = "extra.list"`), "customizations.repositories[1].filename", "also the file of customizations.repositories[0] (as extra.sources)"},
		{"filename collides with an id", repoTOML("extra") + repoTOML("b", `filename = "extra"`), "customizations.repositories[1].filename", "also the file of customizations.repositories[0]"},
		{"id cannot name a file", repoTOML("_hidden"), "customizations.repositories[0].id", "give a filename"},
		{"filename too long", repoTOML("a", `filename = "`+strings.Repeat("f", 65)+`"`), "customizations.repositories[0].filename", "at most 64 characters"},
		{"two pins on one host", repoTOML("a", "priority = 700") + repoTOML("b", "priority = 100"), "customizations.repositories[1].priority", `same host "deb.example.org"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			errs := problemsOf(t, "name = \"r\"\n"+tc.doc, FormatTOML)
			if !hasProblem(errs, tc.path, tc.want) {
				t.Fatalf("want a problem at %s containing %q, have:\n%v", tc.path, tc.want, errs)
			}
		})
	}
	// What is accepted: the same priority on one host, a suffix osbuild
	// users give, a key over https, an id that names the file itself.
	mustParse(t, "name = \"r\"\n"+repoTOML("a", "priority = 700", `filename = "vendor.repo"`, `gpgkeys = ["https://deb.example.org/key.asc"]`)+repoTOML("b", "priority = 700", "enabled = false"), FormatTOML)
}

func TestSourcesFile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ id, filename, want string }{
		{"extra", "", "extra"},
		{"extra", "vendor", "vendor"},
		{"extra", "vendor.repo", "vendor"},
		{"extra", "vendor.list", "vendor"},
		{"extra", "vendor.sources", "vendor"},
		{"extra", "vendor.conf", "vendor.conf"},
		{"extra", ".repo", ".repo"},
	} {
		r := RepositoryCustomization{ID: tc.id, Filename: tc.filename}
		if have := r.SourcesFile(); have != tc.want {
			t.Errorf("id %q filename %q: have %q, want %q", tc.id, tc.filename, have, tc.want)
		}
	}
}
