package apt

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// indexFile is a compact, sorted digest of the repositories' Packages
// files, written after each fetch: one line per binary package version,
//
//	name TAB arch TAB version TAB source TAB source-version TAB repository TAB summary
//
// where repository is the position of the repository in the set. It gives
// Resolve the source of ~200 packages and Search its listing without
// parsing tens of megabytes of Packages files per request.
const indexFile = "packages.idx"

// indexFormat changes whenever the index lines change, so older indexes
// are rebuilt. Format 2 has the lines of format 1; it is new because
// before it a refresh kept the index of the lists it replaced, and every
// index written then may miss what its mirror published since.
const indexFormat = 2

type indexEntry struct {
	name, arch, version, source, sourceVersion, summary string
	repo                                                int
}

func (e indexEntry) line() string {
	return strings.Join([]string{e.name, e.arch, e.version, e.source, e.sourceVersion, strconv.Itoa(e.repo), e.summary}, "\t") + "\n"
}

func parseIndexLine(line []byte) (indexEntry, bool) {
	f := bytes.SplitN(bytes.TrimSuffix(line, []byte("\n")), []byte("\t"), 7)
	if len(f) != 7 {
		return indexEntry{}, false
	}
	repo, err := strconv.Atoi(string(f[5]))
	if err != nil {
		return indexEntry{}, false
	}
	return indexEntry{
		name: string(f[0]), arch: string(f[1]), version: string(f[2]),
		source: string(f[3]), sourceVersion: string(f[4]), repo: repo, summary: string(f[6]),
	}, true
}

// buildIndex reads the Packages files of m's repositories and writes the
// index. It runs under the exclusive lock.
func (m *metadata) buildIndex() error {
	var entries []indexEntry
	for i, repo := range m.repos {
		for _, suite := range repo.Suites {
			prefix := listPrefix(repo.URI, suite)
			des, err := os.ReadDir(m.lists())
			if err != nil {
				return fmt.Errorf("indexing metadata: %w", err)
			}
			for _, de := range des {
				if !strings.HasPrefix(de.Name(), prefix) || !strings.HasSuffix(de.Name(), "_Packages") {
					continue
				}
				es, err := readPackages(filepath.Join(m.lists(), de.Name()), i)
				if err != nil {
					return err
				}
				entries = append(entries, es...)
			}
		}
	}
	slices.SortFunc(entries, func(a, b indexEntry) int {
		if c := cmp.Or(strings.Compare(a.name, b.name), strings.Compare(a.arch, b.arch)); c != 0 {
			return c
		}
		// Newest first; cmp.Or would parse versions for every pair.
		return cmp.Or(compareVersions(b.version, a.version), a.repo-b.repo)
	})
	entries = slices.CompactFunc(entries, func(a, b indexEntry) bool {
		return a.name == b.name && a.arch == b.arch && a.version == b.version
	})
	return writeIndex(m.path(indexFile), entries)
}

// writeIndex writes the index through a temporary file, renamed into place.
func writeIndex(path string, entries []indexEntry) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing package index: %w", err)
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 256<<10)
	fmt.Fprintf(w, "kiln-packages-index %d\n", indexFormat)
	for _, e := range entries {
		w.WriteString(e.line())
	}
	err = w.Flush()
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("writing package index: %w", err)
	}
	return nil
}

// indexCurrent reports whether the index exists in the current format.
func (m *metadata) indexCurrent() bool {
	f, err := os.Open(m.path(indexFile))
	if err != nil {
		return false
	}
	defer f.Close()
	head, err := bufio.NewReader(f).ReadString('\n')
	return err == nil && head == fmt.Sprintf("kiln-packages-index %d\n", indexFormat)
}

// readPackages reads one Packages file.
func readPackages(path string, repo int) ([]indexEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("indexing metadata: %w", err)
	}
	defer f.Close()
	var entries []indexEntry
	var cur indexEntry
	flush := func() {
		if cur.name != "" && cur.version != "" {
			if cur.source == "" {
				cur.source = cur.name
			}
			if cur.sourceVersion == "" {
				cur.sourceVersion = cur.version
			}
			cur.repo = repo
			entries = append(entries, cur)
		}
		cur = indexEntry{}
	}
	rd := bufio.NewReaderSize(f, 256<<10)
	for {
		line, err := rd.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// An over-long continuation line: skip the rest of it.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = rd.ReadSlice('\n')
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("indexing %s: %w", path, err)
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
			flush()
		case line[0] == ' ' || line[0] == '\t':
		default:
			// Only the few fields kept become strings.
			k, v, _ := bytes.Cut(line, []byte(":"))
			field := func() string { return string(bytes.TrimSpace(v)) }
			switch string(k) {
			case "Package":
				cur.name = field()
			case "Architecture":
				cur.arch = field()
			case "Version":
				cur.version = field()
			case "Source":
				n, sv, ok := strings.Cut(field(), " ")
				cur.source = n
				if ok {
					cur.sourceVersion = strings.Trim(strings.TrimSpace(sv), "()")
				}
			case "Description":
				cur.summary = strings.ReplaceAll(field(), "\t", " ")
			}
		}
		if errors.Is(err, io.EOF) {
			flush()
			return entries, nil
		}
	}
}

// lookupSources finds the source package of each deb in the index.
func (m *metadata) lookupSources(debs []deb) (map[string]source, error) {
	want := make(map[string]bool, len(debs))
	for _, d := range debs {
		want[d.name+"\t"+d.arch+"\t"+d.version] = true
	}
	res := make(map[string]source, len(debs))
	err := m.scanIndex(func(line []byte) bool {
		// name, arch and version are the first three fields.
		n := 0
		end := bytes.IndexFunc(line, func(r rune) bool {
			if r == '\t' {
				n++
			}
			return n == 3
		})
		if end < 0 || !want[string(line[:end])] {
			return true
		}
		if e, ok := parseIndexLine(line); ok {
			res[e.name+":"+e.arch+"="+e.version] = source{name: e.source, version: e.sourceVersion}
		}
		return len(res) < len(want)
	})
	if err != nil {
		return nil, err
	}
	for _, d := range debs {
		if _, ok := res[d.key()]; !ok {
			return nil, fmt.Errorf("package %s is not in the package index of %s; refresh the metadata", d.key(), m.root)
		}
	}
	return res, nil
}

// scanIndex calls fn with each index line until it returns false.
func (m *metadata) scanIndex(fn func(line []byte) bool) error {
	f, err := os.Open(m.path(indexFile))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("package index %s is missing; refresh the metadata", m.path(indexFile))
	}
	if err != nil {
		return fmt.Errorf("reading package index: %w", err)
	}
	defer f.Close()
	rd := bufio.NewReaderSize(f, 256<<10)
	if _, err := rd.ReadSlice('\n'); err != nil {
		return fmt.Errorf("reading package index: %w", err)
	}
	for {
		line, err := rd.ReadSlice('\n')
		if len(line) > 0 && !fn(line) {
			return nil
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading package index: %w", err)
		}
	}
}
