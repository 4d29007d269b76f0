package apt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-project/kiln/internal/depsolve"
)

// stateFile records when a repository set's metadata was fetched and the
// Date of each suite's Release file.
const stateFile = "kiln-state.json"

type metaState struct {
	Arch         string                     `json:"arch"`
	Repositories []depsolve.Repository      `json:"repositories"`
	Fetched      time.Time                  `json:"fetched"`
	Suites       []depsolve.RepositoryState `json:"suites"`
}

// metadata is the private apt root of one repository set.
type metadata struct {
	key   string
	root  string // CacheDir/metadata/<key>
	arch  string
	repos []depsolve.Repository
}

// keyOf is the sha256 of the architecture and each repository's URI,
// suites, components, keyring path and inline keys: what changes apt's
// view of the archive. Repository IDs are labels and do not count.
func keyOf(arch string, repos []depsolve.Repository) string {
	h := sha256.New()
	fmt.Fprintf(h, "arch %q\n", arch)
	for _, r := range repos {
		fmt.Fprintf(h, "repo %q %q %q %q\n", strings.TrimSuffix(r.URI, "/"), r.Suites, r.Components, r.SignedBy)
		for _, k := range r.SignedByKeys {
			fmt.Fprintf(h, "key %x\n", sha256.Sum256([]byte(k)))
		}
		if r.Priority != nil {
			// The pins live in the tree's preferences.d: another tree.
			fmt.Fprintf(h, "pin %d\n", *r.Priority)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (r *Resolver) metadataFor(arch string, repos []depsolve.Repository) (*metadata, error) {
	if err := checkRepositories(arch, repos); err != nil {
		return nil, err
	}
	key := keyOf(arch, repos)
	return &metadata{
		key:   key,
		root:  filepath.Join(r.cfg.CacheDir, "metadata", key),
		arch:  arch,
		repos: repos,
	}, nil
}

func checkRepositories(arch string, repos []depsolve.Repository) error {
	if !validArch(arch) {
		return fmt.Errorf("architecture %q is not a Debian architecture name (e.g. amd64, arm64)", arch)
	}
	if len(repos) == 0 {
		return errors.New("no repositories to resolve against")
	}
	var errs []error
	for i, r := range repos {
		where := fmt.Sprintf("repository %d (%s)", i+1, r.ID)
		if !strings.HasPrefix(r.URI, "http://") && !strings.HasPrefix(r.URI, "https://") && !strings.HasPrefix(r.URI, "file:/") {
			errs = append(errs, fmt.Errorf("%s: URI %q is not http://, https:// or file:/", where, r.URI))
		}
		if len(r.Suites) == 0 {
			errs = append(errs, fmt.Errorf("%s: no suites", where))
		}
		if len(r.Components) == 0 {
			errs = append(errs, fmt.Errorf("%s: no components", where))
		}
		for _, f := range append(append([]string{r.URI}, r.Suites...), r.Components...) {
			if f == "" || strings.ContainsFunc(f, func(c rune) bool { return c <= ' ' || c == 0x7f || c == '#' }) {
				errs = append(errs, fmt.Errorf("%s: %q contains blanks or control characters", where, f))
			}
		}
		for j, k := range r.SignedByKeys {
			if !strings.HasPrefix(strings.TrimSpace(k), "-----BEGIN PGP PUBLIC KEY BLOCK-----") {
				errs = append(errs, fmt.Errorf("%s: key %d is not an ASCII-armored public key (-----BEGIN PGP PUBLIC KEY BLOCK-----)", where, j+1))
			}
		}
		if r.Priority != nil && (*r.Priority < -32768 || *r.Priority > 32767) {
			errs = append(errs, fmt.Errorf("%s: priority %d is not an apt pin priority (-32768 to 32767)", where, *r.Priority))
		}
		switch {
		case r.SignedBy == "" && len(r.SignedByKeys) == 0:
			errs = append(errs, fmt.Errorf("%s: no signed-by keyring or keys; kiln only reads signed repositories", where))
		case r.SignedBy == "":
			// Inline keys only.
		case !filepath.IsAbs(r.SignedBy):
			errs = append(errs, fmt.Errorf("%s: keyring %q is not an absolute path", where, r.SignedBy))
		default:
			if _, err := os.Stat(r.SignedBy); err != nil {
				errs = append(errs, fmt.Errorf("%s: keyring: %w", where, err))
			}
		}
	}
	return errors.Join(errs...)
}

func validArch(a string) bool {
	if a == "" || len(a) > 32 {
		return false
	}
	for _, c := range a {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func (m *metadata) path(elem ...string) string {
	return filepath.Join(append([]string{m.root}, elem...)...)
}

func (m *metadata) aptConfig() string { return m.path("apt.conf") }
func (m *metadata) lists() string     { return m.path("var", "lib", "apt", "lists") }

// describe names the repository set in messages.
func (m *metadata) describe() string {
	var parts []string
	for _, r := range m.repos {
		parts = append(parts, r.URI+" "+strings.Join(r.Suites, ","))
	}
	return strings.Join(parts, "; ") + " (" + m.arch + ")"
}

// aptFile is one file of the private apt tree with the content it must
// have.
type aptFile struct {
	path string
	data []byte
	// config marks files apt builds its binary cache from.
	config bool
}

// files returns the configuration files of the private apt tree. It only
// reads (the repositories' keyrings).
func (m *metadata) files(timeout time.Duration) ([]aptFile, error) {
	var files []aptFile
	var sources bytes.Buffer
	for i, r := range m.repos {
		keyrings, err := m.keyrings(i, r)
		if err != nil {
			return nil, err
		}
		var paths []string
		for _, k := range keyrings {
			paths = append(paths, k.path)
			if k.data != nil {
				files = append(files, k)
			}
		}
		if i > 0 {
			sources.WriteString("\n")
		}
		fmt.Fprintf(&sources, "Types: deb\nURIs: %s\nSuites: %s\nComponents: %s\nArchitectures: %s\nSigned-By: %s\n",
			r.URI, strings.Join(r.Suites, " "), strings.Join(r.Components, " "), m.arch, strings.Join(paths, ","))
	}
	if pins := m.pins(); pins != "" {
		files = append(files, aptFile{path: m.path("etc", "apt", "preferences.d", "kiln.pref"), data: []byte(pins), config: true})
	}
	secs := strconv.Itoa(max(1, int(timeout/time.Second)))
	conf := fmt.Sprintf(`// Written by kiln: a private apt root for one repository set.
Dir "%[1]s/";
Dir::State::status "%[1]s/var/lib/dpkg/status";
Dir::Cache::srcpkgcache "";
APT::Architecture "%[2]s";
APT::Architectures { "%[2]s"; };
APT::Install-Suggests "false";
APT::Cmd::Pattern-Only "true";
// apt counts itself as Essential unless told not to; the essential
// variant is the packages marked Essential: yes and nothing else.
pkgCacheGen::ForceEssential ",";
Acquire::Languages "none";
Acquire::PDiffs "false";
Acquire::Retries "1";
Acquire::ForceHash "SHA256";
Acquire::http::Timeout "%[3]s";
Acquire::https::Timeout "%[3]s";
Acquire::ftp::Timeout "%[3]s";
`, m.root, m.arch, secs)
	return append(files,
		aptFile{path: m.aptConfig(), data: []byte(conf), config: true},
		aptFile{path: m.path("etc", "apt", "sources.list.d", "kiln.sources"), data: sources.Bytes(), config: true},
		aptFile{path: m.path("var", "lib", "dpkg", "status"), data: []byte{}},
	), nil
}

// pins returns the apt preferences pinning each repository that has a
// priority, selected by the host of its URI (apt's "origin"), or "".
func (m *metadata) pins() string {
	var b strings.Builder
	for _, r := range m.repos {
		if r.Priority == nil {
			continue
		}
		host := ""
		if u, err := url.Parse(r.URI); err == nil {
			host = u.Hostname()
		}
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		label := strings.Map(func(c rune) rune {
			if c < ' ' || c == 0x7f {
				return -1
			}
			return c
		}, r.ID)
		fmt.Fprintf(&b, "Explanation: repository %s\nPackage: *\nPin: origin \"%s\"\nPin-Priority: %d\n", label, host, *r.Priority)
	}
	return b.String()
}

// current reports whether every file of the tree has its content already.
func current(files []aptFile) bool {
	for _, f := range files {
		old, err := os.ReadFile(f.path)
		if err != nil || !bytes.Equal(old, f.data) {
			return false
		}
	}
	return true
}

// prepare writes the private apt tree. It runs under the exclusive lock;
// files are only rewritten when their content changes.
func (m *metadata) prepare(files []aptFile) error {
	for _, d := range [][]string{
		{"etc", "apt", "apt.conf.d"},
		{"etc", "apt", "preferences.d"},
		{"etc", "apt", "sources.list.d"},
		{"etc", "apt", "keyrings"},
		{"var", "lib", "apt", "lists", "partial"},
		{"var", "cache", "apt", "archives", "partial"},
		{"var", "lib", "dpkg"},
		{"var", "log", "apt"},
	} {
		if err := os.MkdirAll(m.path(d...), 0o755); err != nil {
			return fmt.Errorf("preparing apt metadata directory: %w", err)
		}
	}
	changed := false
	for _, f := range files {
		c, err := writeIfChanged(f.path, f.data)
		if err != nil {
			return fmt.Errorf("preparing apt metadata directory: %w", err)
		}
		changed = changed || (c && f.config)
	}
	if changed {
		// apt checks its binary cache against the lists, not against the
		// configuration it was built with.
		if err := os.Remove(m.path("var", "cache", "apt", "pkgcache.bin")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("preparing apt metadata directory: %w", err)
		}
	}
	return nil
}

// keyrings returns the files apt should check repository i's signatures
// with, each with the content kiln must write there (nil for a keyring
// used in place). A binary keyring is used in place; an ASCII-armored one
// not named *.asc is copied to a .asc name, since apt tells the formats
// apart by suffix; inline keys are written to .asc files.
func (m *metadata) keyrings(i int, r depsolve.Repository) ([]aptFile, error) {
	var files []aptFile
	if r.SignedBy != "" {
		data, err := os.ReadFile(r.SignedBy)
		if err != nil {
			return nil, fmt.Errorf("repository keyring: %w", err)
		}
		if strings.HasSuffix(r.SignedBy, ".asc") || !bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN PGP")) {
			files = append(files, aptFile{path: r.SignedBy})
		} else {
			files = append(files, aptFile{path: m.path("etc", "apt", "keyrings", fmt.Sprintf("repository-%d.asc", i)), data: data})
		}
	}
	for j, k := range r.SignedByKeys {
		files = append(files, aptFile{
			path: m.path("etc", "apt", "keyrings", fmt.Sprintf("repository-%d-key-%d.asc", i, j)),
			data: []byte(strings.TrimSpace(k) + "\n"),
		})
	}
	return files, nil
}

// writeIfChanged writes data to path unless it holds data already, and
// reports whether it wrote.
func writeIfChanged(path string, data []byte) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	return true, writeAtomic(path, data)
}

func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func (m *metadata) readState() (*metaState, error) {
	data, err := os.ReadFile(m.path(stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading metadata state: %w", err)
	}
	var st metaState
	if err := json.Unmarshal(data, &st); err != nil {
		// A damaged stamp only costs a fetch.
		return nil, nil
	}
	return &st, nil
}

func (m *metadata) writeState(st *metaState) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("writing metadata state: %w", err)
	}
	if err := writeAtomic(m.path(stateFile), append(data, '\n')); err != nil {
		return fmt.Errorf("writing metadata state: %w", err)
	}
	return nil
}

// ensure makes the metadata usable and returns its state, fetching it when
// it is missing, stale or to be refreshed. It returns holding the shared
// lock; the caller releases it when done reading. The common case — the
// metadata is there and fresh — never takes the exclusive lock, so
// resolves against one cache run side by side.
func (r *Resolver) ensure(ctx context.Context, m *metadata) (*metaState, *fileLock, error) {
	if err := os.MkdirAll(filepath.Dir(m.root), 0o755); err != nil {
		return nil, nil, fmt.Errorf("creating metadata cache: %w", err)
	}
	files, err := m.files(r.cfg.Timeout)
	if err != nil {
		return nil, nil, err
	}
	lock, err := lockFile(ctx, m.root+".lock", false)
	if err != nil {
		return nil, nil, err
	}
	st, ready, err := r.ready(m, files)
	if err == nil && !ready {
		// Re-checked under the exclusive lock: another process may have
		// done the work meanwhile.
		if err = lock.lock(ctx, true); err == nil {
			st, err = r.makeReady(ctx, m, files)
		}
		if err == nil {
			err = lock.lock(ctx, false)
		}
	}
	if err != nil {
		lock.release()
		return nil, nil, err
	}
	return st, lock, nil
}

// ready reports whether m can be read as it is.
func (r *Resolver) ready(m *metadata, files []aptFile) (*metaState, bool, error) {
	st, err := m.readState()
	if err != nil {
		return nil, false, err
	}
	if st == nil || !hasLists(m.lists()) {
		if r.cfg.Offline {
			return nil, false, r.offlineError(m)
		}
		return nil, false, nil
	}
	fresh := r.cfg.Offline || (time.Since(st.Fetched) <= r.cfg.MaxAge && !r.wantsRefresh(m.key))
	return st, fresh && current(files) && m.indexCurrent(), nil
}

func (r *Resolver) offlineError(m *metadata) error {
	return fmt.Errorf("no cached metadata for %s in %s; run once without --offline", m.describe(), r.cfg.CacheDir)
}

// makeReady writes the apt tree, fetches the metadata if needed and builds
// the index. It runs under the exclusive lock.
func (r *Resolver) makeReady(ctx context.Context, m *metadata, files []aptFile) (*metaState, error) {
	if err := m.prepare(files); err != nil {
		return nil, err
	}
	st, err := m.readState()
	if err != nil {
		return nil, err
	}
	listsPresent := st != nil && hasLists(m.lists())
	switch {
	case r.cfg.Offline:
		if !listsPresent {
			return nil, r.offlineError(m)
		}
		r.cfg.Log.Debug("using cached metadata (offline)", "repositories", m.describe(), "fetched", st.Fetched)
	case !listsPresent || time.Since(st.Fetched) > r.cfg.MaxAge || r.wantsRefresh(m.key):
		if st, err = r.update(ctx, m); err != nil {
			return nil, err
		}
		r.markRefreshed(m.key)
	}
	if !m.indexCurrent() {
		if err := m.buildIndex(); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func (r *Resolver) wantsRefresh(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cfg.Refresh && !r.refreshed[key]
}

func (r *Resolver) markRefreshed(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refreshed[key] = true
}

func hasLists(dir string) bool {
	des, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, de := range des {
		if strings.HasSuffix(de.Name(), "_Packages") {
			return true
		}
	}
	return false
}

// update runs apt-get update for m, then stamps the fetch time and the
// Release dates.
func (r *Resolver) update(ctx context.Context, m *metadata) (*metaState, error) {
	start := time.Now()
	r.cfg.Log.Info("fetching repository metadata", "repositories", m.describe())
	// The fetch as a whole is bounded too, so a mirror that trickles
	// bytes cannot hold a build for ever.
	uctx, cancel := context.WithTimeout(ctx, 10*r.cfg.Timeout)
	defer cancel()
	// The index digests the lists about to be replaced: it goes first, so
	// it is rebuilt from the new ones (also when this process dies before
	// that), and a version the mirror published since is found in it.
	if err := os.Remove(m.path(indexFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("removing the package index: %w", err)
	}
	out, err := r.run(uctx, m, r.aptGet, "update", "--error-on=any", "-q")
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("fetching metadata for %s: %w", m.describe(), ctx.Err())
		}
		if uctx.Err() != nil {
			return nil, &depsolve.MirrorError{URI: m.repos[0].URI, Detail: fmt.Sprintf("fetching the metadata took longer than %v", 10*r.cfg.Timeout), Err: uctx.Err()}
		}
		return nil, mirrorError(m.repos, out, err)
	}
	st := &metaState{Arch: m.arch, Repositories: m.repos, Fetched: time.Now().UTC()}
	for _, repo := range m.repos {
		for _, suite := range repo.Suites {
			date, err := releaseDate(m.lists(), repo.URI, suite)
			if err != nil {
				return nil, &depsolve.MirrorError{URI: repo.URI, Detail: "suite " + suite + " has no readable Release file after the fetch", Err: err}
			}
			st.Suites = append(st.Suites, depsolve.RepositoryState{ID: repo.ID, URI: repo.URI, Suite: suite, Date: date})
		}
	}
	if err := m.writeState(st); err != nil {
		return nil, err
	}
	r.cfg.Log.Info("fetched repository metadata", "repositories", m.describe(), "duration", time.Since(start).Round(time.Millisecond))
	return st, nil
}
