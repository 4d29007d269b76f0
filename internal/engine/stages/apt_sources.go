package stages

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/kiln-project/kiln/internal/manifest"
)

// AptSources writes /etc/apt/sources.list.d/<file>.sources (deb822) for
// each source and removes /etc/apt/sources.list, so the installed system
// reads its repositories from one place. SignedBy is either a keyring path
// in the image or an armored key block, which is written inline as a
// deb822 multi-line field (each line indented by a space, an empty line as
// " ."). Trusted sources get "Trusted: yes", disabled ones "Enabled: no",
// and a source's title becomes its X-Repolib-Name field. A source with a
// priority also gets /etc/apt/preferences.d/<file>.pref pinning the hosts
// of its URIs (apt's "origin" selector, the one that names a repository
// without reading its Release file) to that priority.
type AptSources struct{ Opts manifest.AptSources }

var (
	aptSourceNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	aptWordRE       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+~/-]*$`)
	aptSchemeRE     = regexp.MustCompile(`^[a-z][a-z0-9+.-]*$`)
	keyringPathRE   = regexp.MustCompile(`^/[A-Za-z0-9/._+-]+$`)
)

const (
	armorBegin = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
	armorEnd   = "-----END PGP PUBLIC KEY BLOCK-----"
)

// aptFile is one file the stage writes into the tree.
type aptFile struct {
	path string
	data string
}

// Validate implements Stage.
func (s *AptSources) Validate() error {
	_, err := s.files()
	return err
}

// files checks the sources and returns the files to write: each one's
// deb822 text and, for those with a priority, its preferences file.
func (s *AptSources) files() ([]aptFile, error) {
	if len(s.Opts.Sources) == 0 {
		return nil, errors.New("apt sources: no sources given; an installed system needs at least one")
	}
	seen, seenFile := map[string]bool{}, map[string]bool{}
	var files []aptFile
	for i, src := range s.Opts.Sources {
		text, err := deb822Source(src)
		if err != nil {
			return nil, fmt.Errorf("apt sources[%d]: %w", i, err)
		}
		if seen[src.Name] {
			return nil, fmt.Errorf("apt sources[%d]: name %q is used twice", i, src.Name)
		}
		seen[src.Name] = true
		file := sourceFile(src)
		if seenFile[file] {
			return nil, fmt.Errorf("apt sources[%d]: file %q is used twice", i, file)
		}
		seenFile[file] = true
		files = append(files, aptFile{path: "/etc/apt/sources.list.d/" + file + ".sources", data: text})
		if src.Priority != nil {
			files = append(files, aptFile{path: "/etc/apt/preferences.d/" + file + ".pref", data: aptPin(src)})
		}
	}
	return files, nil
}

// sourceFile is the base name of src's files.
func sourceFile(src manifest.AptSource) string {
	if src.Filename != "" {
		return src.Filename
	}
	return src.Name
}

// aptPin returns the preferences file pinning src's packages: one stanza
// per distinct host of its URIs (an empty host, as file: URIs have, is
// apt's selector for local repositories). deb822Source has checked src.
func aptPin(src manifest.AptSource) string {
	label := src.Name
	if src.Title != "" {
		label = src.Title
	}
	var hosts []string
	for _, raw := range src.URIs {
		u, _ := url.Parse(raw)
		if !slices.Contains(hosts, u.Hostname()) {
			hosts = append(hosts, u.Hostname())
		}
	}
	var b strings.Builder
	for i, h := range hosts {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "Explanation: repository %s\nPackage: *\nPin: origin \"%s\"\nPin-Priority: %d\n", label, h, *src.Priority)
	}
	return b.String()
}

// Run implements Stage.
func (s *AptSources) Run(_ context.Context, env *Env) error {
	files, err := s.files()
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := WriteFile(env.Tree, f.path, []byte(f.data), 0o644); err != nil {
			return err
		}
		env.Logf("wrote %s", f.path)
	}
	if err := removeEntry(env.Tree, "/etc/apt/sources.list"); err != nil {
		return err
	}
	return nil
}

// deb822Source validates src and returns its .sources file.
func deb822Source(src manifest.AptSource) (string, error) {
	if !aptSourceNameRE.MatchString(src.Name) {
		return "", fmt.Errorf("name %q: use letters, digits, '_', '.' and '-' (it names a file)", src.Name)
	}
	if src.Filename != "" && !aptSourceNameRE.MatchString(src.Filename) {
		return "", fmt.Errorf("source %q: filename %q: use letters, digits, '_', '.' and '-'", src.Name, src.Filename)
	}
	if len(src.Title) > 200 || strings.ContainsFunc(src.Title, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", fmt.Errorf("source %q: the title must be one line of at most 200 characters", src.Name)
	}
	if p := src.Priority; p != nil && (*p < -32768 || *p > 32767) {
		return "", fmt.Errorf("source %q: priority %d is not an apt pin priority (-32768 to 32767)", src.Name, *p)
	}
	if len(src.URIs) == 0 || len(src.Suites) == 0 {
		return "", fmt.Errorf("source %q needs at least one URI and one suite", src.Name)
	}
	for _, u := range src.URIs {
		if err := checkAptURI(u); err != nil {
			return "", fmt.Errorf("source %q: %w", src.Name, err)
		}
	}
	flat := false
	for _, s := range src.Suites {
		// "./" is the flat repository at the URI itself.
		if rest, flatHere := strings.CutPrefix(s, "./"); (!aptWordRE.MatchString(s) && !(flatHere && (rest == "" || aptWordRE.MatchString(rest)))) || len(s) > 128 {
			return "", fmt.Errorf("source %q: suite %q is not a suite name such as \"bookworm\"", src.Name, s)
		}
		if strings.HasSuffix(s, "/") {
			flat = true
		}
	}
	for _, c := range src.Components {
		if !aptWordRE.MatchString(c) || strings.HasSuffix(c, "/") || len(c) > 128 {
			return "", fmt.Errorf("source %q: component %q is not a component name such as \"main\"", src.Name, c)
		}
	}
	switch {
	case flat && len(src.Components) > 0:
		return "", fmt.Errorf("source %q: a suite ending in '/' is an exact path and takes no components", src.Name)
	case !flat && len(src.Components) == 0:
		return "", fmt.Errorf("source %q: give the components (e.g. \"main\")", src.Name)
	}
	var b strings.Builder
	if title := strings.TrimSpace(src.Title); title != "" {
		fmt.Fprintf(&b, "X-Repolib-Name: %s\n", title)
	}
	if src.Disabled {
		b.WriteString("Enabled: no\n")
	}
	fmt.Fprintf(&b, "Types: deb\nURIs: %s\nSuites: %s\n", strings.Join(src.URIs, " "), strings.Join(src.Suites, " "))
	if len(src.Components) > 0 {
		fmt.Fprintf(&b, "Components: %s\n", strings.Join(src.Components, " "))
	}
	switch key := strings.TrimSpace(src.SignedBy); {
	case key == "":
	case strings.HasPrefix(key, armorBegin):
		block, err := inlineKey(key)
		if err != nil {
			return "", fmt.Errorf("source %q: signed_by: %w", src.Name, err)
		}
		b.WriteString("Signed-By:\n" + block)
	default:
		if !keyringPathRE.MatchString(key) || path.Clean(key) != key {
			return "", fmt.Errorf("source %q: signed_by %q is neither an absolute keyring path nor an armored public key block", src.Name, key)
		}
		fmt.Fprintf(&b, "Signed-By: %s\n", key)
	}
	if src.Trusted {
		b.WriteString("Trusted: yes\n")
	}
	return b.String(), nil
}

// checkAptURI accepts an absolute URI with no blanks or control characters.
func checkAptURI(raw string) error {
	if raw == "" || len(raw) > 2048 || strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("URI %q may not be empty or contain blanks or control characters", raw)
	}
	u, err := url.Parse(raw)
	if err != nil || !aptSchemeRE.MatchString(u.Scheme) {
		return fmt.Errorf("URI %q is not an absolute URI such as \"http://host/debian\"", raw)
	}
	return nil
}

// inlineKey formats an armored key block as the continuation lines of a
// deb822 field.
func inlineKey(key string) (string, error) {
	key = strings.ReplaceAll(key, "\r\n", "\n")
	if !strings.HasSuffix(key, armorEnd) {
		return "", errors.New("the armored key block does not end with " + armorEnd)
	}
	if strings.Count(key, armorBegin) != 1 {
		return "", errors.New("give exactly one armored key block")
	}
	var b strings.Builder
	for _, line := range strings.Split(key, "\n") {
		line = strings.TrimRight(line, " \t")
		if strings.ContainsFunc(line, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return "", errors.New("the armored key block contains control characters")
		}
		if line == "" {
			b.WriteString(" .\n")
			continue
		}
		b.WriteString(" " + line + "\n")
	}
	return b.String(), nil
}
