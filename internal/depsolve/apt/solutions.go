package apt

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/kiln-project/kiln/internal/depsolve"
)

// Solutions are cached beside the metadata they were solved against: apt
// spends most of a warm resolve building its dependency cache (about half a
// second for Debian's main archive), while the answer to the same request
// against the same metadata never changes. The directory is named for the
// metadata fetch, so a refresh leaves every old solution behind, and the
// next write removes them.

// solutionDir is where solutions against this fetch of the metadata live.
func solutionDir(m *metadata, st *metaState) string {
	return filepath.Join(m.root, "solutions", strconv.FormatInt(st.Fetched.UnixNano(), 10))
}

// solutionKey is the sha256 of everything that decides the answer besides
// the metadata: the whole request.
func solutionKey(req depsolve.Request) (string, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return "", fmt.Errorf("hashing the request: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// loadSolution returns the cached answer, or nil when there is none (or it
// cannot be read: then apt answers again).
func loadSolution(m *metadata, st *metaState, key string) *depsolve.Result {
	b, err := os.ReadFile(filepath.Join(solutionDir(m, st), key+".json"))
	if err != nil {
		return nil
	}
	var res depsolve.Result
	if json.Unmarshal(b, &res) != nil || len(res.Packages) == 0 {
		return nil
	}
	return &res
}

// storeSolution writes the answer atomically and drops solutions against
// older metadata. Failing to cache is not failing to solve: errors are
// returned for logging only.
func storeSolution(m *metadata, st *metaState, key string, res *depsolve.Result) error {
	dir := solutionDir(m, st)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, key+".*.tmp")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, key+".json")); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	old, _ := filepath.Glob(filepath.Join(m.root, "solutions", "*"))
	for _, o := range old {
		if o != dir {
			os.RemoveAll(o)
		}
	}
	return nil
}
