package distro

import (
	"bufio"
	"bytes"
	"io/fs"
)

// knownSets are the values a target system knows: time zones (tzdata),
// locales (glibc's supported list) and keyboard layouts (XKB layouts and
// layout-variant pairs). They are generated from Debian's packages by
// scripts/gen-sets.
type knownSets struct {
	timezones map[string]bool
	locales   map[string]bool
	keyboards map[string]bool
}

func loadSets(fsys fs.FS) (*knownSets, error) {
	read := func(name string) (map[string]bool, error) {
		b, err := fs.ReadFile(fsys, "data/sets/"+name)
		if err != nil {
			return nil, err
		}
		m := map[string]bool{}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if line := sc.Text(); line != "" {
				m[line] = true
			}
		}
		return m, sc.Err()
	}
	var s knownSets
	var err error
	if s.timezones, err = read("timezones.txt"); err != nil {
		return nil, err
	}
	if s.locales, err = read("locales.txt"); err != nil {
		return nil, err
	}
	if s.keyboards, err = read("keyboards.txt"); err != nil {
		return nil, err
	}
	return &s, nil
}
