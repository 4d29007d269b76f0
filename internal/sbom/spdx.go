// Package sbom writes the software bill of materials of an image: an SPDX
// 2.3 JSON document listing every installed package with its version,
// architecture, checksum, download location, purl and, where the package's
// machine-readable copyright file says, its licenses.
package sbom

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/kiln-project/kiln/internal/manifest"
)

// Document is an SPDX 2.3 document (the fields kiln writes).
type Document struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      CreationInfo       `json:"creationInfo"`
	Packages          []Package          `json:"packages"`
	Relationships     []Relationship     `json:"relationships"`
	ExtractedLicenses []ExtractedLicense `json:"hasExtractedLicensingInfos,omitempty"`
}

// CreationInfo says who made the document and when.
type CreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

// Package is one SPDX package.
type Package struct {
	SPDXID           string        `json:"SPDXID"`
	Name             string        `json:"name"`
	VersionInfo      string        `json:"versionInfo,omitempty"`
	Supplier         string        `json:"supplier,omitempty"`
	DownloadLocation string        `json:"downloadLocation"`
	FilesAnalyzed    bool          `json:"filesAnalyzed"`
	Checksums        []Checksum    `json:"checksums,omitempty"`
	LicenseConcluded string        `json:"licenseConcluded"`
	LicenseDeclared  string        `json:"licenseDeclared"`
	CopyrightText    string        `json:"copyrightText"`
	SourceInfo       string        `json:"sourceInfo,omitempty"`
	PrimaryPurpose   string        `json:"primaryPackagePurpose,omitempty"`
	ExternalRefs     []ExternalRef `json:"externalRefs,omitempty"`
}

// Checksum is a package checksum.
type Checksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

// ExternalRef is a purl reference.
type ExternalRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

// Relationship links two elements.
type Relationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

// ExtractedLicense declares a LicenseRef- used in the document.
type ExtractedLicense struct {
	LicenseID     string `json:"licenseId"`
	ExtractedText string `json:"extractedText"`
	Name          string `json:"name"`
}

// packageLicense is a package's license expression and the LicenseRef-
// declarations it uses.
type packageLicense struct {
	Expression string             `json:"expression"`
	Refs       []ExtractedLicense `json:"refs,omitempty"`
}

// licenseFacts is what ScanLicenses keeps of a tree, by package name.
type licenseFacts map[string]packageLicense

// ScanLicenses reads the machine-readable copyright file of every package
// installed in tree. Its result is what New takes; the engine caches it
// with the tree.
func ScanLicenses(tree string) ([]byte, error) {
	dirs, err := os.ReadDir(filepath.Join(tree, "usr/share/doc"))
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	facts := licenseFacts{}
	for _, d := range dirs {
		if expr, refs := licenses(tree, d.Name()); expr != "" {
			facts[d.Name()] = packageLicense{Expression: expr, Refs: refs}
		}
	}
	return json.Marshal(facts)
}

// New describes the image built from m. licenses is what ScanLicenses read
// from the installed tree (nil: no licenses are asserted). created is the
// document's timestamp (the build's SOURCE_DATE_EPOCH), so the SBOM of a
// reproducible build is reproducible too.
func New(m *manifest.Manifest, licenses []byte, created time.Time) *Document {
	var facts licenseFacts
	if len(licenses) > 0 {
		_ = json.Unmarshal(licenses, &facts)
	}
	mb, _ := json.Marshal(m)
	sum := sha256.Sum256(mb)
	d := &Document{
		SPDXVersion: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT",
		Name:              m.Output.Filename,
		DocumentNamespace: fmt.Sprintf("https://spdx.org/spdxdocs/kiln-%s-%s", m.Target.Name, hex.EncodeToString(sum[:16])),
		CreationInfo:      CreationInfo{Created: created.UTC().Format(time.RFC3339), Creators: []string{"Tool: kiln"}},
	}
	image := Package{
		SPDXID: "SPDXRef-Image", Name: m.Output.Filename, VersionInfo: m.Target.Version, DownloadLocation: "NOASSERTION",
		LicenseConcluded: "NOASSERTION", LicenseDeclared: "NOASSERTION", CopyrightText: "NOASSERTION",
		PrimaryPurpose: "OPERATING-SYSTEM",
	}
	d.Packages = append(d.Packages, image)
	d.Relationships = append(d.Relationships, Relationship{"SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Image"})
	refs := map[string]ExtractedLicense{}
	for _, deb := range m.Sources.Debs {
		id := "SPDXRef-Package-deb-" + spdxIDPart(deb.Name) + "-" + spdxIDPart(deb.Arch)
		p := Package{
			SPDXID: id, Name: deb.Name, VersionInfo: deb.Version, Supplier: "Organization: Debian",
			DownloadLocation: deb.URL, Checksums: []Checksum{{"SHA256", deb.SHA256}},
			LicenseConcluded: "NOASSERTION", LicenseDeclared: "NOASSERTION", CopyrightText: "NOASSERTION",
			SourceInfo: fmt.Sprintf("built package from: %s %s", deb.Source, deb.SourceVersion),
			ExternalRefs: []ExternalRef{{"PACKAGE-MANAGER", "purl",
				fmt.Sprintf("pkg:deb/debian/%s@%s?arch=%s&distro=%s", deb.Name, purlEscape(deb.Version), deb.Arch, m.Target.Distro)}},
		}
		if f, ok := facts[deb.Name]; ok {
			p.LicenseDeclared = f.Expression
			for _, u := range f.Refs {
				refs[u.LicenseID] = u
			}
		}
		d.Packages = append(d.Packages, p)
		d.Relationships = append(d.Relationships, Relationship{"SPDXRef-Image", "CONTAINS", id})
	}
	for _, k := range sortedKeys(refs) {
		d.ExtractedLicenses = append(d.ExtractedLicenses, refs[k])
	}
	return d
}

// Marshal writes the document as indented JSON.
func (d *Document) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// spdxToIDs maps Debian's short license names to SPDX identifiers.
var spdxToIDs = map[string]string{
	"gpl-1": "GPL-1.0-only", "gpl-1+": "GPL-1.0-or-later",
	"gpl-2": "GPL-2.0-only", "gpl-2+": "GPL-2.0-or-later", "gpl-2.0": "GPL-2.0-only", "gpl-2.0+": "GPL-2.0-or-later",
	"gpl-3": "GPL-3.0-only", "gpl-3+": "GPL-3.0-or-later", "gpl-3.0": "GPL-3.0-only", "gpl-3.0+": "GPL-3.0-or-later",
	"lgpl-2": "LGPL-2.0-only", "lgpl-2+": "LGPL-2.0-or-later",
	"lgpl-2.1": "LGPL-2.1-only", "lgpl-2.1+": "LGPL-2.1-or-later",
	"lgpl-3": "LGPL-3.0-only", "lgpl-3+": "LGPL-3.0-or-later",
	"agpl-3": "AGPL-3.0-only", "agpl-3+": "AGPL-3.0-or-later",
	"bsd-2-clause": "BSD-2-Clause", "bsd-3-clause": "BSD-3-Clause", "bsd-4-clause": "BSD-4-Clause",
	"expat": "MIT", "mit": "MIT", "isc": "ISC", "zlib": "Zlib", "apache-2.0": "Apache-2.0",
	"mpl-1.1": "MPL-1.1", "mpl-2.0": "MPL-2.0", "artistic": "Artistic-1.0-Perl", "artistic-2.0": "Artistic-2.0",
	"cc0-1.0": "CC0-1.0", "openssl": "OpenSSL", "curl": "curl", "bsl-1.0": "BSL-1.0", "python-2.0": "Python-2.0",
	"psf-2": "PSF-2.0", "ofl-1.1": "OFL-1.1", "gfdl-1.2+": "GFDL-1.2-or-later", "gfdl-1.3+": "GFDL-1.3-or-later",
	"unicode-dfs-2016": "Unicode-DFS-2016", "x11": "X11", "wtfpl": "WTFPL", "bzip2-1.0.6": "bzip2-1.0.6",
}

var licenseLine = regexp.MustCompile(`^License:\s*(\S.*)$`)
var refChars = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

// licenseSeparators split a DEP-5 license expression into its names.
var licenseSeparators = regexp.MustCompile(`(?i)\s+(?:or|and)\s+|\s*,\s*`)

// licenses reads the machine-readable (DEP-5) copyright file of a package
// and returns an SPDX expression of every license it names ("A AND B"),
// with the LicenseRef- declarations for names SPDX does not know.
func licenses(tree, pkg string) (string, []ExtractedLicense) {
	f, err := os.Open(filepath.Join(tree, "usr/share/doc", pkg, "copyright"))
	if err != nil {
		return "", nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "Format:") {
		return "", nil // not machine-readable
	}
	var ids []string
	var refs []ExtractedLicense
	for sc.Scan() {
		m := licenseLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		for _, alt := range licenseSeparators.Split(strings.TrimSpace(m[1]), -1) {
			alt = strings.TrimSpace(alt)
			if alt == "" {
				continue
			}
			name := strings.ToLower(alt)
			id, ok := spdxToIDs[name]
			if !ok {
				id = "LicenseRef-Debian-" + strings.Trim(refChars.ReplaceAllString(alt, "-"), "-")
				refs = append(refs, ExtractedLicense{LicenseID: id, Name: alt,
					ExtractedText: fmt.Sprintf("The license called %q in /usr/share/doc/%s/copyright", alt, pkg)})
			}
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids)
	if len(ids) == 0 {
		return "", nil
	}
	if len(ids) == 1 {
		return ids[0], refs
	}
	return "(" + strings.Join(ids, " AND ") + ")", refs
}

func spdxIDPart(s string) string { return refChars.ReplaceAllString(s, "-") }

// purlEscape percent-encodes a Debian version for a purl.
func purlEscape(v string) string {
	return strings.NewReplacer("%", "%25", ":", "%3A", "+", "%2B", "~", "%7E").Replace(v)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
