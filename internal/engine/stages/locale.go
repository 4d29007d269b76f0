package stages

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/kiln-project/kiln/internal/manifest"
)

// Locale enables each language in /etc/locale.gen (uncommenting its line,
// or adding it), generates them with locale-gen inside the tree and writes
// LANG=<default> to /etc/default/locale.
//
// A language without a charset, or with "utf8", means its UTF-8 locale
// ("en_US" and "en_US.utf8" are "en_US.UTF-8"); the line enabled is the one
// the image's glibc lists for it in /usr/share/i18n/SUPPORTED. C, POSIX and
// C.UTF-8 are built in and need no generating.
type Locale struct{ Opts manifest.Locale }

var localeRE = regexp.MustCompile(`^([a-z]{2,3}(?:_[A-Z]{2})?)(?:\.([A-Za-z0-9-]{1,32}))?(@[a-z]{1,32})?$`)

// builtinLocale says whether name needs no generating.
func builtinLocale(name string) bool {
	switch name {
	case "C", "POSIX", "C.UTF-8", "C.utf8":
		return true
	}
	return false
}

// Validate implements Stage.
func (s *Locale) Validate() error {
	_, err := s.languages()
	return err
}

// languages checks the locale names and returns the languages with the
// default among them, in a new slice.
func (s *Locale) languages() ([]string, error) {
	langs := slices.Clone(s.Opts.Languages)
	def := s.Opts.Default
	if def == "" {
		return nil, errors.New("locale: no default locale given")
	}
	if !slices.Contains(langs, def) {
		langs = append(langs, def)
	}
	for _, l := range langs {
		if !builtinLocale(l) && !localeRE.MatchString(l) {
			return nil, fmt.Errorf("locale %q is not a locale name such as \"en_US.UTF-8\"", l)
		}
	}
	return langs, nil
}

// Run implements Stage.
func (s *Locale) Run(ctx context.Context, env *Env) error {
	langs, err := s.languages()
	if err != nil {
		return err
	}
	def := s.Opts.Default
	var supported []string
	var enable []string // locale.gen lines, "name charset"
	names := map[string]string{}
	for _, l := range langs {
		if builtinLocale(l) {
			names[l] = l
			continue
		}
		if supported == nil {
			var err error
			if supported, err = supportedLocales(env.Tree); err != nil {
				return err
			}
		}
		line, err := localeLine(supported, l)
		if err != nil {
			return err
		}
		names[l] = strings.Fields(line)[0]
		if !slices.Contains(enable, line) {
			enable = append(enable, line)
		}
	}
	if len(enable) > 0 {
		if err := enableLocales(env.Tree, enable); err != nil {
			return err
		}
		env.Logf("generating locales %s", strings.Join(enable, ", "))
		if err := env.Chroot(ctx, nil, "/usr/sbin/locale-gen"); err != nil {
			return fmt.Errorf("locale-gen: %w", err)
		}
	}
	if err := WriteFile(env.Tree, "/etc/default/locale", []byte("LANG="+names[def]+"\n"), 0o644); err != nil {
		return err
	}
	env.Logf("default locale %s", names[def])
	return nil
}

// supportedLocales reads the "name charset" lines glibc can generate.
func supportedLocales(tree string) ([]string, error) {
	host, err := ResolveInTree(tree, "/usr/share/i18n/SUPPORTED")
	if err != nil {
		return nil, fmt.Errorf("locale: %w", err)
	}
	data, err := os.ReadFile(host)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errors.New("locale: /usr/share/i18n/SUPPORTED is missing; add the locales package to the image")
	}
	if err != nil {
		return nil, fmt.Errorf("locale: %w", err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 2 && !strings.HasPrefix(f[0], "#") {
			out = append(out, f[0]+" "+f[1])
		}
	}
	return out, nil
}

// localeLine finds the SUPPORTED line that generates lang.
func localeLine(supported []string, lang string) (string, error) {
	m := localeRE.FindStringSubmatch(lang)
	base, charset, mod := m[1], m[2], m[3]
	switch strings.ToLower(charset) {
	case "", "utf8", "utf-8":
		charset = "UTF-8"
	}
	candidates := []string{lang, base + "." + charset + mod, base + mod}
	for _, c := range candidates {
		for _, line := range supported {
			if line == c+" "+charset {
				return line, nil
			}
		}
	}
	return "", fmt.Errorf("locale %q is not one the image's glibc can generate (see /usr/share/i18n/SUPPORTED); give a name such as \"en_US.UTF-8\"", lang)
}

// enableLocales uncomments or adds lines in /etc/locale.gen.
func enableLocales(tree string, lines []string) error {
	host, err := ResolveInTree(tree, "/etc/locale.gen")
	if err != nil {
		return fmt.Errorf("/etc/locale.gen: %w", err)
	}
	data, err := os.ReadFile(host)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("/etc/locale.gen: %w", err)
	}
	text := strings.TrimSuffix(string(data), "\n")
	var have []string
	if text != "" {
		have = strings.Split(text, "\n")
	}
	for _, want := range lines {
		found := false
		for i, l := range have {
			if strings.Join(strings.Fields(strings.TrimLeft(l, "# \t")), " ") != want {
				continue
			}
			if strings.HasPrefix(strings.TrimSpace(l), "#") && found {
				continue
			}
			have[i], found = want, true
		}
		if !found {
			have = append(have, want)
		}
	}
	return WriteFile(tree, "/etc/locale.gen", []byte(strings.Join(have, "\n")+"\n"), 0o644)
}
