package manifest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/disk"
)

func sample() *Manifest {
	gid := 1001
	return &Manifest{
		Version: Version,
		Target:  Target{Distro: "debian-12", Arch: "x86_64", ImageType: "qcow2", Seed: 7, Name: "web"},
		Sources: Sources{
			Repositories: []Repository{{ID: "debian", URI: "http://mirror.example/debian", Suite: "bookworm", Date: "Sat, 01 Jan 2000 00:00:00 UTC"}},
			Debs:         []Deb{{Name: "base-files", Version: "12.4", Arch: "amd64", Source: "base-files", SourceVersion: "12.4", URL: "http://mirror.example/debian/pool/main/b/base-files/base-files_12.4_amd64.deb", SHA256: strings.Repeat("a", 64), Size: 70000, Repository: "debian"}},
		},
		Pipelines: []Pipeline{
			{Name: "os", Produces: "tree", Stages: []Stage{
				NewStage(&DebsInstall{Arch: "amd64", Variant: "required", Packages: []string{"base-files"}}),
				NewStage(&Hostname{Hostname: "web01"}),
				NewStage(&Groups{Groups: []Group{{Name: "web", GID: &gid}}}),
				NewStage(&Initramfs{}),
			}},
			{Name: "image", Input: "os", Produces: "file", Filename: "disk.raw", Stages: []Stage{
				NewStage(&DiskImage{PartitionTable: disk.PartitionTable{Type: disk.GPT, UUID: "u", Size: disk.GiB}, BIOSBootloader: "i386-pc"}),
			}},
		},
		Output: Output{Pipeline: "image", Filename: "web.raw", MIMEType: "application/octet-stream"},
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	m := sample()
	b, err := m.Marshal()
	require.NoError(t, err)
	back, err := Parse(b)
	require.NoError(t, err)
	assert.Equal(t, m, back, "typed options survive JSON")
	b2, err := back.Marshal()
	require.NoError(t, err)
	assert.Equal(t, string(b), string(b2), "serialisation is stable")
	assert.IsType(t, &Hostname{}, back.Pipeline("os").Stages[1].Options)
	assert.Nil(t, back.Pipeline("nope"))
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	good, err := sample().Marshal()
	require.NoError(t, err)
	tests := []struct {
		name, from, to, want string
	}{
		{"unknown stage type", `"kiln.hostname"`, `"kiln.shell"`, `unknown stage type "kiln.shell"`},
		{"unknown option", `"hostname": "web01"`, `"hostname": "web01", "command": "rm -rf /"`, `unknown field "command"`},
		{"unknown top-level field", `"version": "1",`, `"version": "1", "extra": 1,`, `unknown field "extra"`},
		{"other version", `"version": "1",`, `"version": "2",`, `version "2" is not supported`},
		{"wrong type", `"hostname": "web01"`, `"hostname": 5`, `cannot unmarshal number`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bad := strings.Replace(string(good), tc.from, tc.to, 1)
			require.NotEqual(t, string(good), bad, "the test edits the manifest")
			_, err := Parse([]byte(bad))
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err = Parse(append(good, []byte(`{}`)...))
	require.ErrorContains(t, err, "trailing data")
}

func TestEveryStageTypeRoundTrips(t *testing.T) {
	t.Parallel()
	for _, name := range StageTypes() {
		opts := stageTypes[name]()
		require.Equal(t, name, opts.StageType(), "registered under its own name")
		b, err := NewStage(opts).MarshalJSON()
		require.NoError(t, err)
		var s Stage
		require.NoError(t, s.UnmarshalJSON(b), name)
		assert.Equal(t, opts, s.Options, name)
	}
}

func TestSummary(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	require.NoError(t, sample().Summary(&b))
	out := b.String()
	for _, want := range []string{"web.raw (debian-12 x86_64 qcow2)", "Packages:   1 (0.1 MiB", "bookworm", "os -> tree", "image from os -> file disk.raw", " 2. kiln.hostname"} {
		assert.Contains(t, out, want)
	}
}
