// Package aptsources reads the host's apt source lists — the one-line format
// of /etc/apt/sources.list and sources.list.d/*.list, and the deb822 format
// of sources.list.d/*.sources — and finds the Debian mirrors among them, so
// kiln uses the mirror the host is already configured for instead of a
// built-in one.
package aptsources

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Entry is one enabled source: one line of a .list file or one stanza of a
// .sources file.
type Entry struct {
	// Types are "deb" and/or "deb-src".
	Types []string
	URIs  []string
	// Suites are distribution names ("bookworm", "bookworm-updates") or,
	// for a flat repository, a path ending in "/".
	Suites     []string
	Components []string
	// SignedBy is the keyring path(s) or fingerprint(s) of the signed-by
	// option, or an inline ASCII-armored key from a .sources file.
	SignedBy string
	// Options are the remaining options under their one-line names
	// ("arch", "lang", "trusted", …); list values are comma-separated.
	Options map[string]string
	// File and Line say where the entry was written.
	File string
	Line int
}

// HasType reports whether the entry has type t ("deb" or "deb-src").
func (e Entry) HasType(t string) bool { return slices.Contains(e.Types, t) }

// Where is "file:line", for messages.
func (e Entry) Where() string { return fmt.Sprintf("%s:%d", e.File, e.Line) }

// ParseError is a malformed source list.
type ParseError struct {
	File string
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s:%d: %s (fix or disable this apt source, or set the mirror explicitly)", e.File, e.Line, e.Msg)
}

// Read parses the apt sources under root: root/etc/apt/sources.list and the
// *.list and *.sources files in root/etc/apt/sources.list.d, in apt's
// order (sources.list first, then the directory sorted by name). Files with
// other suffixes are ignored, as apt ignores them. Root is "/" for the
// host; tests use a directory tree.
func Read(root string) ([]Entry, error) {
	var files []string
	main := filepath.Join(root, "etc", "apt", "sources.list")
	if _, err := os.Stat(main); err == nil {
		files = append(files, main)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading apt sources: %w", err)
	}
	dir := filepath.Join(root, "etc", "apt", "sources.list.d")
	des, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading apt sources: %w", err)
	}
	for _, de := range des {
		name := de.Name()
		if de.IsDir() || !(strings.HasSuffix(name, ".list") || strings.HasSuffix(name, ".sources")) {
			continue
		}
		files = append(files, filepath.Join(dir, name))
	}
	var entries []Entry
	var errs []error
	for _, f := range files {
		es, err := ReadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		entries = append(entries, es...)
	}
	return entries, errors.Join(errs...)
}

// maxFileSize bounds a source list; real ones are a few kilobytes.
const maxFileSize = 4 << 20

// ReadFile parses one source list, choosing the format by its suffix
// (".sources" is deb822, anything else the one-line format).
func ReadFile(path string) ([]Entry, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading apt sources: %w", err)
	}
	if fi.Size() > maxFileSize {
		return nil, &ParseError{File: path, Line: 0, Msg: fmt.Sprintf("file is %d bytes, larger than the %d a source list may have", fi.Size(), maxFileSize)}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading apt sources: %w", err)
	}
	if strings.HasSuffix(path, ".sources") {
		return ParseDeb822(path, string(data))
	}
	return ParseOneLine(path, string(data))
}
