package blueprint

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFirstbootParses(t *testing.T) {
	t.Parallel()
	doc := `name = "fb"
[[customizations.firstboot.scripts]]
type = "custom"
name = "marker"
after = ["network-online.target"]
contents = """
#!/bin/bash
touch /var/lib/marker
"""

[[customizations.firstboot.scripts]]
type = "custom"
ignore_failure = true
contents = "echo second"
`
	bp, err := Parse([]byte(doc), FormatTOML)
	require.NoError(t, err)
	scripts := bp.Customizations.Firstboot.Scripts
	require.Len(t, scripts, 2)
	assert.Equal(t, "marker", scripts[0].Name)
	assert.Equal(t, []string{"network-online.target"}, scripts[0].After)
	assert.Equal(t, "#!/bin/bash\ntouch /var/lib/marker\n", scripts[0].Contents)
	assert.True(t, scripts[1].IgnoreFailure)
	assert.Equal(t, "script-2", FirstbootScriptName(scripts[1], 1))

	// The same blueprint survives an export and a second parse.
	out, err := bp.ToTOML()
	require.NoError(t, err)
	again, err := Parse(out, FormatTOML)
	require.NoError(t, err)
	assert.Equal(t, bp.Customizations.Firstboot, again.Customizations.Firstboot)
}

func TestFirstbootProblems(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, doc, path, want string
	}{
		{"no scripts", "[customizations.firstboot]\nscripts = []", "customizations.firstboot.scripts", "required"},
		{"no type", "[[customizations.firstboot.scripts]]\ncontents = \"true\"", "customizations.firstboot.scripts[0].type", `only type Debian-family images can run is "custom"`},
		{"no contents", "[[customizations.firstboot.scripts]]\ntype = \"custom\"\nname = \"a\"", "customizations.firstboot.scripts[0].contents", `required for a "custom" script`},
		{"blank contents", "[[customizations.firstboot.scripts]]\ntype = \"custom\"\ncontents = \"  \\n\"", "customizations.firstboot.scripts[0].contents", "required"},
		{"bad name", "[[customizations.firstboot.scripts]]\ntype = \"custom\"\nname = \"a b\"\ncontents = \"true\"", "customizations.firstboot.scripts[0].name", "is not a script name"},
		{"duplicate name", "[[customizations.firstboot.scripts]]\ntype = \"custom\"\nname = \"a\"\ncontents = \"true\"\n[[customizations.firstboot.scripts]]\ntype = \"custom\"\nname = \"a\"\ncontents = \"true\"", "customizations.firstboot.scripts[1].name", "also the name of customizations.firstboot.scripts[0]"},
		{"satellite", "[[customizations.firstboot.scripts]]\ntype = \"satellite\"", "customizations.firstboot.scripts[0].type", "Red Hat Satellite"},
		{"satellite command", "[[customizations.firstboot.scripts]]\ntype = \"satellite\"\ncommand = \"register\"", "customizations.firstboot.scripts[0].command", "Red Hat Satellite, which is not supported for Debian-family images"},
		{"aap", "[[customizations.firstboot.scripts]]\ntype = \"aap\"\njob_template_url = \"https://aap.example.com/x\"\nhost_config_key = \"k\"", "customizations.firstboot.scripts[0].type", "Ansible Automation Platform"},
		{"aap url", "[[customizations.firstboot.scripts]]\ntype = \"aap\"\njob_template_url = \"https://aap.example.com/x\"", "customizations.firstboot.scripts[0].job_template_url", "Ansible Automation Platform"},
		{"unknown type", "[[customizations.firstboot.scripts]]\ntype = \"ansible\"\ncontents = \"x\"", "customizations.firstboot.scripts[0].type", `"ansible" is not a first-boot script type`},
		{"bad after", "[[customizations.firstboot.scripts]]\ntype = \"custom\"\ncontents = \"x\"\nafter = [\"-bad\"]", "customizations.firstboot.scripts[0].after[0]", "not a systemd unit name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			errs := problemsOf(t, "name = \"x\"\n"+tc.doc, FormatTOML)
			if !hasProblem(errs, tc.path, tc.want) {
				t.Fatalf("want a problem at %q containing %q, have:\n%v", tc.path, tc.want, errs)
			}
		})
	}
}

func TestFirstbootProblemsAllAtOnce(t *testing.T) {
	t.Parallel()
	doc := `name = "x"
[[customizations.firstboot.scripts]]
type = "satellite"
[[customizations.firstboot.scripts]]
type = "custom"
[[customizations.firstboot.scripts]]
type = "custom"
name = "bad name"
contents = "true"
`
	errs := problemsOf(t, doc, FormatTOML)
	for _, want := range []string{
		"customizations.firstboot.scripts[0].type",
		"customizations.firstboot.scripts[1].contents",
		"customizations.firstboot.scripts[2].name",
	} {
		assert.True(t, hasProblem(errs, want, ""), "missing a problem at %s in %v", want, errs)
	}
}

// The examples of the reference's first-boot and SSH server sections are
// valid blueprints.
func TestReferenceFirstbootAndSSHDExamplesParse(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/blueprint.md")
	require.NoError(t, err)
	for _, section := range []string{"### First-boot scripts", "### SSH server"} {
		_, rest, ok := strings.Cut(string(doc), section+"\n")
		require.True(t, ok, "docs/blueprint.md has no section %q", section)
		_, rest, _ = strings.Cut(rest, "```toml\n")
		example, _, ok := strings.Cut(rest, "```")
		require.True(t, ok, "section %q has no TOML block", section)
		_, err := Parse([]byte("name = \"example\"\n"+example), FormatTOML)
		assert.NoError(t, err, section)
	}
}
