package blueprint

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

var (
	repoIDRe       = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	repoFilenameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	suiteRe        = regexp.MustCompile(`^[A-Za-z0-9._/-]+$`)
	componentRe    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	base64LineRe   = regexp.MustCompile(`^[A-Za-z0-9+/=]*$`)
)

// checkRepoURL returns a problem message for a URL apt cannot use as a
// repository or key location, or "". schemes lists the allowed schemes.
func checkRepoURL(raw string, schemes ...string) string {
	fix := "give an absolute " + strings.Join(schemes, ", ") + " URL, e.g. \"https://deb.example.org/debian\""
	if raw == "" {
		return "empty; " + fix
	}
	if len(raw) > 2048 {
		return fmt.Sprintf("is %d characters long; the limit is 2048", len(raw))
	}
	if strings.ContainsAny(raw, " \t\"'<>\\`") || hasControl(raw) {
		return quote(raw) + " contains spaces, quotes or control characters; percent-encode them"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return quote(raw) + " is not a URL; " + fix
	}
	allowed := false
	for _, s := range schemes {
		allowed = allowed || u.Scheme == s
	}
	switch {
	case !allowed:
		return quote(raw) + " does not use one of the schemes " + strings.Join(schemes, ", ") + "; " + fix
	case u.User != nil:
		return "holds credentials, which would be written into the image's apt sources; give credentials through the image's apt auth.conf instead (customizations.files, /etc/apt/auth.conf.d/)"
	case u.Scheme == "file" && (u.Host != "" || !strings.HasPrefix(u.Path, "/")):
		return quote(raw) + " is not a local path; write file:///absolute/path"
	case u.Scheme != "file" && u.Host == "":
		return quote(raw) + " has no host; " + fix
	}
	return ""
}

// checkArmoredKey returns a problem message for text that is not an
// ASCII-armored OpenPGP public key block, or "".
func checkArmoredKey(key string) string {
	const (
		begin = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
		end   = "-----END PGP PUBLIC KEY BLOCK-----"
		fix   = `give an ASCII-armored public key ("gpg --export --armor KEYID") or an https URL to one`
	)
	text := strings.TrimSpace(key)
	if strings.Contains(text, "PRIVATE KEY BLOCK") {
		return "is a private key; give the public key, and treat the private key as leaked"
	}
	if !strings.HasPrefix(text, begin) || !strings.HasSuffix(text, end) {
		return "is neither an armored public key block nor a URL; " + fix
	}
	body := strings.TrimSuffix(strings.TrimPrefix(text, begin), end)
	lines := strings.Split(strings.TrimSpace(body), "\n")
	inHeaders, data := true, 0
	for _, line := range lines {
		line = strings.TrimSpace(line)
		switch {
		case inHeaders && strings.Contains(line, ": "):
			continue // armor header such as "Comment: ..."
		case line == "":
			inHeaders = false
			continue
		}
		inHeaders = false
		if strings.HasPrefix(line, "=") && len(line) == 5 {
			continue // checksum
		}
		if !base64LineRe.MatchString(line) {
			return "has a line that is not base64 inside the key block; " + fix
		}
		data++
	}
	if data == 0 {
		return "is an empty key block; " + fix
	}
	return ""
}

func (v validator) repositories(at string, repos []RepositoryCustomization) {
	if !v.maxItems(at, len(repos), MaxRepositories) {
		return
	}
	ids := map[string]string{}
	files := map[string]string{}
	for i, r := range repos {
		p := indexPath(at, i)
		switch {
		case r.ID == "":
			v.add(fieldPath(p, "id"), `required; give the repository an id such as "backports"`)
		case len(r.ID) > 100 || !repoIDRe.MatchString(r.ID):
			v.add(fieldPath(p, "id"), "%s is not a repository id: use letters, digits, '_', '.' and '-', starting with a letter, digit or '_'", quote(r.ID))
		default:
			if first, dup := ids[r.ID]; dup {
				v.add(fieldPath(p, "id"), "%s is also the id of %s; ids are unique", quote(r.ID), first)
			}
			ids[r.ID] = p
		}
		if len(r.Name) > 200 || hasControl(r.Name) {
			v.add(fieldPath(p, "name"), "must be one line of at most 200 characters")
		}
		bp := fieldPath(p, "baseurls")
		if len(r.BaseURLs) == 0 {
			v.add(bp, `required; give the repository's URL, e.g. ["https://deb.example.org/debian"]`)
		} else if v.maxItems(bp, len(r.BaseURLs), 16) {
			for j, u := range r.BaseURLs {
				if msg := checkRepoURL(u, "http", "https", "file"); msg != "" {
					v.add(indexPath(bp, j), "%s", msg)
				}
			}
		}
		v.suite(p, r)
		gp := fieldPath(p, "gpgkeys")
		if v.maxItems(gp, len(r.GPGKeys), 16) {
			for j, k := range r.GPGKeys {
				var msg string
				switch {
				case strings.Contains(k, "-----BEGIN") || !strings.Contains(k, "://"):
					msg = checkArmoredKey(k)
				case strings.HasPrefix(strings.ToLower(k), "http://"):
					msg = quote(k) + " is a plain http URL: a key fetched without TLS can be replaced on the way, and it decides which packages are trusted; give its https URL or paste the armored key"
				default:
					msg = checkRepoURL(k, "https")
				}
				if msg != "" {
					v.add(indexPath(gp, j), "%s", msg)
				}
			}
		}
		if r.Priority != nil && (*r.Priority < -32768 || *r.Priority > 32767) {
			v.add(fieldPath(p, "priority"), "%d is not an apt pin priority; give a number from -32768 to 32767 (500 is apt's default, above 1000 allows downgrades)", *r.Priority)
		}
		v.repoFile(p, r, files)
	}
	v.repoPins(at, repos)
}

// repoFile checks the name of the repository's file under
// /etc/apt/sources.list.d: filename without a .repo, .list or .sources
// suffix, or else the id. files maps the file names seen so far to the
// path of the repository that has each.
func (v validator) repoFile(p string, r RepositoryCustomization, files map[string]string) {
	field, given := fieldPath(p, "filename"), r.Filename
	if r.Filename == "" {
		field, given = fieldPath(p, "id"), r.ID
		if r.ID == "" || !repoIDRe.MatchString(r.ID) {
			return // the id's own check speaks
		}
	}
	name := r.SourcesFile()
	switch {
	case !repoFilenameRe.MatchString(name) && r.Filename == "":
		v.add(field, "%s also names the repository's file in /etc/apt/sources.list.d, which must start with a letter or digit and have at most 64 characters; give a filename", quote(given))
	case !repoFilenameRe.MatchString(name):
		v.add(field, "%s is not a file name for /etc/apt/sources.list.d: use letters, digits, '_', '.' and '-', without '/', starting with a letter or digit, at most 64 characters", quote(given))
	default:
		if first, dup := files[name]; dup {
			v.add(field, "%s is also the file of %s (as %s.sources); give each repository its own file", quote(given), first, name)
		}
		files[name] = p
	}
}

// repoPins refuses two pinned repositories on one host with different
// priorities: the image's apt preferences select a repository by the host
// of its URLs, so one of the two priorities would not hold.
func (v validator) repoPins(at string, repos []RepositoryCustomization) {
	type pin struct {
		path     string
		priority int
	}
	byHost := map[string]pin{}
repos:
	for i, r := range repos {
		if r.Priority == nil {
			continue
		}
		p := indexPath(at, i)
		for _, raw := range r.BaseURLs {
			u, err := url.Parse(raw)
			if err != nil {
				continue
			}
			host := u.Hostname()
			first, seen := byHost[host]
			switch {
			case !seen:
				byHost[host] = pin{p, *r.Priority}
			case first.path != p && first.priority != *r.Priority:
				v.add(fieldPath(p, "priority"), "%d differs from the priority %d of %s, which has a URL on the same host %s; apt pins repositories by host, so give both the same priority or leave one unset", *r.Priority, first.priority, first.path, quote(host))
				continue repos
			}
		}
	}
}

// SourcesFile is the base name of the repository's files in the image
// (/etc/apt/sources.list.d/<name>.sources and, with a priority,
// /etc/apt/preferences.d/<name>.pref): the filename without the .repo,
// .list or .sources suffix other tools give it, or else the id.
func (r *RepositoryCustomization) SourcesFile() string {
	if r.Filename == "" {
		return r.ID
	}
	name := r.Filename
	for _, suffix := range []string{".repo", ".list", ".sources"} {
		if trimmed, ok := strings.CutSuffix(name, suffix); ok && trimmed != "" {
			return trimmed
		}
	}
	return name
}

// suite checks suite and components: a flat repository ("./", a path
// ending in "/") has no components; any other suite needs at least one.
func (v validator) suite(p string, r RepositoryCustomization) {
	sp, cp := fieldPath(p, "suite"), fieldPath(p, "components")
	flat := strings.HasSuffix(r.Suite, "/")
	switch {
	case r.Suite == "":
		v.add(sp, `required; give the distribution suite such as "bookworm" or "bookworm-backports", or a path ending in "/" such as "./" for a flat repository`)
	case len(r.Suite) > 200 || !suiteRe.MatchString(r.Suite) || strings.HasPrefix(r.Suite, "/") || strings.Contains(r.Suite, ".."):
		v.add(sp, "%s is not a suite: use letters, digits, '.', '_', '-' and '/', as a relative path without '..'", quote(r.Suite))
	case flat && len(r.Components) > 0:
		v.add(cp, "a flat repository (suite ending in \"/\") has no components; remove components")
	case !flat && len(r.Components) == 0:
		v.add(cp, `required for suite %s; e.g. ["main"]`, quote(r.Suite))
	}
	if !v.maxItems(cp, len(r.Components), 16) {
		return
	}
	for j, c := range r.Components {
		if len(c) > 64 || !componentRe.MatchString(c) {
			v.add(indexPath(cp, j), `%s is not a component; use lowercase letters, digits and '-', e.g. "main" or "non-free-firmware"`, quote(c))
		}
	}
}

// checkPEMCerts returns a problem message unless bundle is one or more PEM
// certificates that parse as X.509, or "".
func checkPEMCerts(bundle string) string {
	rest := []byte(bundle)
	n := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			if strings.Contains(block.Type, "PRIVATE KEY") {
				return fmt.Sprintf("holds a %s block; give only certificates, and treat the key as leaked", block.Type)
			}
			return fmt.Sprintf("holds a %s block; give only CERTIFICATE blocks", block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Sprintf("certificate %d does not parse as X.509: %v", n+1, err)
		}
		n++
	}
	if n == 0 {
		return `holds no PEM certificate; give a block starting with "-----BEGIN CERTIFICATE-----"`
	}
	if strings.TrimSpace(string(rest)) != "" {
		return "has text after the last certificate that is not a PEM block; remove it"
	}
	return ""
}

func (v validator) caCerts(at string, ca *CACustomization) {
	if ca == nil {
		return
	}
	cp := fieldPath(at, "pem_certs")
	if !v.maxItems(cp, len(ca.PEMCerts), MaxCACerts) {
		return
	}
	for i, bundle := range ca.PEMCerts {
		if msg := checkPEMCerts(bundle); msg != "" {
			v.add(indexPath(cp, i), "%s", msg)
		}
	}
}
