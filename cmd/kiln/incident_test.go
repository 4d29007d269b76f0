package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/service/status"
)

// An incident is opened, updated and resolved; bad input gets an error
// that names the flag and changes nothing.
func TestIncidentCommands(t *testing.T) {
	data := t.TempDir()
	kiln := func(args ...string) (string, error) {
		t.Helper()
		out, _, err := run(t, append(args, "--data", data, "--database", "")...)
		return out, err
	}
	list := func() []status.ReportIncident {
		t.Helper()
		out, err := kiln("incident", "list", "--format", "json")
		require.NoError(t, err)
		var incs []status.ReportIncident
		require.NoError(t, json.Unmarshal([]byte(out), &incs), out)
		return incs
	}
	assert.Empty(t, list())

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--impact", "huge", "--component", "api", "--message", "x"}, `--impact "huge": give one of minor, major, critical`},
		{[]string{"--impact", "major", "--component", "kitchen", "--message", "x"}, `--component "kitchen": not a component of the status page; give one of `},
		{[]string{"--impact", "major", "--component", "api", "--message", "  "}, "--message is required"},
		{[]string{"--impact", "major", "--message", "x"}, "--component is required"},
	} {
		_, err := kiln(append([]string{"incident", "open", "Slow builds"}, c.args...)...)
		require.Error(t, err, c.args)
		assert.Contains(t, err.Error(), c.want)
	}
	_, err := kiln("incident", "open", " ", "--impact", "major", "--component", "api", "--message", "x")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the title is required")
	assert.Empty(t, list(), "nothing was opened")

	out, err := kiln("incident", "open", "Builds for aarch64 wait", "--impact", "major", "--component", "workers/aarch64",
		"--component", "queue", "--message", "We are looking into it.")
	require.NoError(t, err)
	id := strings.TrimSpace(out)
	require.NotEmpty(t, id)

	_, err = kiln("incident", "update", id, "--status", "resolved", "--message", "x")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `--status "resolved": give one of investigating, identified, monitoring`)
	_, err = kiln("incident", "update", id, "--status", "identified", "--message", "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--message is required")
	_, err = kiln("incident", "update", "no-such-id", "--status", "identified", "--message", "x")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "incident no-such-id: no such incident")

	_, err = kiln("incident", "update", id, "--status", "identified", "--message", "A worker host lost its network.")
	require.NoError(t, err)
	out, err = kiln("incident", "resolve", id, "--message", "Builds run again.")
	require.NoError(t, err)
	assert.Equal(t, id+" resolved\n", out)
	_, err = kiln("incident", "resolve", id, "--message", "again")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "resolved already")

	incs := list()
	require.Len(t, incs, 1)
	inc := incs[0]
	assert.Equal(t, "Builds for aarch64 wait", inc.Title)
	assert.Equal(t, "major", inc.Impact)
	assert.Equal(t, "resolved", inc.Status)
	assert.Equal(t, []string{"workers/aarch64", "queue"}, inc.Components)
	require.NotNil(t, inc.ResolvedAt)
	require.Len(t, inc.Updates, 3, "the refused updates changed nothing")
	assert.Equal(t, []string{"investigating", "identified", "resolved"}, []string{inc.Updates[0].Status, inc.Updates[1].Status, inc.Updates[2].Status})

	out, err = kiln("incident", "list")
	require.NoError(t, err)
	assert.Regexp(t, id+`\s+major\s+resolved\s+\S+\s+workers/aarch64,queue\s+Builds for aarch64 wait`, out)
	_, err = kiln("incident", "list", "--format", "yaml")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `--format "yaml": give text or json`)
}
