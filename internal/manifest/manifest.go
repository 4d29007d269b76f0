// Package manifest is kiln's wire format between "what" and "how": a plain,
// serialisable description of pipelines made of stages, each with explicit,
// typed options, plus the pinned packages every build starts from.
//
// A manifest says everything a build needs and nothing about where it came
// from: it never refers to a blueprint. The same inputs give the same bytes.
package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// Version is the manifest format version this package reads and writes.
const Version = "1"

// Manifest is one image build.
type Manifest struct {
	Version string `json:"version"`
	// Target says what is being built; it is informational.
	Target Target `json:"target"`
	// Sources are the inputs fetched before any stage runs.
	Sources Sources `json:"sources"`
	// Pipelines run in order; a pipeline may take an earlier one's output.
	Pipelines []Pipeline `json:"pipelines"`
	// Output names the pipeline whose result is the artifact.
	Output Output `json:"output"`
}

// Target is what the manifest builds.
type Target struct {
	Distro    string `json:"distro"`
	Arch      string `json:"arch"`
	ImageType string `json:"image_type"`
	// Seed is the seed every identifier in the manifest was drawn from.
	Seed uint64 `json:"seed"`
	// Name and Version are the blueprint's, for file names and the SBOM.
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// Sources are the pinned inputs of a build.
type Sources struct {
	// Repositories record which snapshot of each repository was solved.
	Repositories []Repository `json:"repositories"`
	// Debs are the packages to install, sorted by name.
	Debs []Deb `json:"debs"`
	// Keys pin the repository keys the blueprint named by URL: they were
	// fetched when the manifest was written, and their content is in the
	// apt sources stage, so the build does not fetch them again.
	Keys []KeyPin `json:"keys,omitempty"`
}

// KeyPin records one repository key fetched by URL.
type KeyPin struct {
	// Repository is the id of the blueprint repository the key signs.
	Repository string `json:"repository"`
	URL        string `json:"url"`
	// SHA256 is the digest of the bytes the server sent.
	SHA256 string `json:"sha256"`
}

// Repository is one solved repository suite.
type Repository struct {
	ID    string `json:"id"`
	URI   string `json:"uri"`
	Suite string `json:"suite"`
	Date  string `json:"date"`
}

// Deb is one pinned package, fetched by URL and verified by SHA-256.
type Deb struct {
	Name          string `json:"name"`
	Version       string `json:"version"`
	Arch          string `json:"arch"`
	Source        string `json:"source"`
	SourceVersion string `json:"source_version"`
	URL           string `json:"url"`
	SHA256        string `json:"sha256"`
	Size          int64  `json:"size"`
	Repository    string `json:"repository"`
}

// Pipeline is a sequence of stages that produces a tree or a file.
type Pipeline struct {
	Name string `json:"name"`
	// Input is the pipeline whose output this one starts from (empty: an
	// empty tree).
	Input string `json:"input,omitempty"`
	// Produces is "tree" (a directory) or "file" (Filename).
	Produces string `json:"produces"`
	Filename string `json:"filename,omitempty"`
	// Extra are further earlier pipelines a file pipeline reads (an
	// installer ISO carries the disk image besides booting the tree).
	Extra  []string `json:"extra_inputs,omitempty"`
	Stages []Stage  `json:"stages"`
}

// Output names the artifact.
type Output struct {
	Pipeline string `json:"pipeline"`
	Filename string `json:"filename"`
	MIMEType string `json:"mime_type"`
}

// Stage is one step of a pipeline: a type and its options.
type Stage struct {
	Type    string
	Options StageOptions
}

// StageOptions are the typed options of one stage type. Each stage type's
// options are a struct in stages.go registered under the type's name.
type StageOptions interface {
	// StageType is the name the stage is written under ("kiln.hostname").
	StageType() string
}

// NewStage wraps typed options into a stage.
func NewStage(o StageOptions) Stage { return Stage{Type: o.StageType(), Options: o} }

type wireStage struct {
	Type    string          `json:"type"`
	Options json.RawMessage `json:"options"`
}

// MarshalJSON writes {"type": ..., "options": {...}}.
func (s Stage) MarshalJSON() ([]byte, error) {
	opts, err := json.Marshal(s.Options)
	if err != nil {
		return nil, fmt.Errorf("stage %s: %w", s.Type, err)
	}
	return json.Marshal(wireStage{Type: s.Type, Options: opts})
}

// UnmarshalJSON reads a stage and decodes its options strictly into the
// struct registered for its type.
func (s *Stage) UnmarshalJSON(b []byte) error {
	var w wireStage
	if err := strictDecode(b, &w); err != nil {
		return err
	}
	newOpts, ok := stageTypes[w.Type]
	if !ok {
		return fmt.Errorf("unknown stage type %q", w.Type)
	}
	opts := newOpts()
	if len(w.Options) > 0 {
		if err := strictDecode(w.Options, opts); err != nil {
			return fmt.Errorf("stage %s: options: %w", w.Type, err)
		}
	}
	s.Type, s.Options = w.Type, opts
	return nil
}

func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("trailing data after the JSON value")
	}
	return nil
}

// Marshal writes the manifest as indented JSON ending with a newline. The
// output is a pure function of the manifest's content.
func (m *Manifest) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("serialising manifest: %w", err)
	}
	return append(b, '\n'), nil
}

// Parse reads a manifest, rejecting unknown fields and stage types.
func Parse(b []byte) (*Manifest, error) {
	var m Manifest
	if err := strictDecode(b, &m); err != nil {
		return nil, fmt.Errorf("reading manifest: %w", err)
	}
	if m.Version != Version {
		return nil, fmt.Errorf("reading manifest: version %q is not supported (this kiln reads version %q)", m.Version, Version)
	}
	return &m, nil
}

// Pipeline returns the named pipeline, or nil.
func (m *Manifest) Pipeline(name string) *Pipeline {
	for i := range m.Pipelines {
		if m.Pipelines[i].Name == name {
			return &m.Pipelines[i]
		}
	}
	return nil
}
