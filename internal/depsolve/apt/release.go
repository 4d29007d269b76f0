package apt

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// listPrefix is the file name prefix apt gives the index files of one
// suite in Dir::State::lists: apt's URItoFileName of "<uri>/dists/<suite>/",
// i.e. the URI without scheme and credentials, unsafe bytes %-quoted and
// "/" turned into "_".
func listPrefix(uri, suite string) string {
	s := strings.TrimSuffix(uri, "/") + "/dists/" + suite + "/"
	if _, rest, ok := strings.Cut(s, "://"); ok {
		s = rest
	} else if _, rest, ok := strings.Cut(s, ":"); ok {
		s = rest
	}
	host, path, _ := strings.Cut(s, "/")
	if i := strings.LastIndexByte(host, '@'); i >= 0 {
		host = host[i+1:]
	}
	s = host + "/" + path
	const bad = "\\|{}[]<>\"^~_=!@#$%^&*"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if strings.IndexByte(bad, c) >= 0 || c <= 0x20 || c >= 0x7f {
			fmt.Fprintf(&b, "%%%02x", c)
			continue
		}
		b.WriteByte(c)
	}
	return strings.ReplaceAll(b.String(), "/", "_")
}

// releaseDate reads the Date field of a suite's InRelease (or Release)
// file in the lists directory.
func releaseDate(lists, uri, suite string) (string, error) {
	prefix := filepath.Join(lists, listPrefix(uri, suite))
	var errs []error
	for _, name := range []string{"InRelease", "Release"} {
		date, err := readDate(prefix + name)
		if err == nil {
			return date, nil
		}
		errs = append(errs, err)
	}
	return "", errors.Join(errs...)
}

func readDate(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "Date:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "Date:")), nil
		}
		// Index lists and the signature follow the header fields.
		if strings.HasPrefix(line, "MD5Sum:") || strings.HasPrefix(line, "SHA256:") || strings.HasPrefix(line, "-----BEGIN PGP SIGNATURE") {
			break
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return "", fmt.Errorf("%s has no Date field: %w", path, fs.ErrNotExist)
}
