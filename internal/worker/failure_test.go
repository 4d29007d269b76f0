package worker

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/kiln-project/kiln/internal/engine"
)

// A failed build's reason names the stage the engine reported and the
// tool's last error line; the details keep the whole error.
func TestBuildFailureNamesTheStageAndTheToolsLastLine(t *testing.T) {
	msg := "mkfs.ext4: exit status 1: mke2fs 1.47.0 (5-Feb-2023)\nDiscarding device blocks: done\nmkfs.ext4: No space left on device while writing out superblocks"
	err := errors.New("image: stage org.kiln.disk-image: " + msg)
	f := buildFailure(engine.Event{Kind: "build-failed", Pipeline: "image", Stage: "org.kiln.disk-image", Message: msg}, err)
	assert.Equal(t, "stage org.kiln.disk-image of pipeline image: mkfs.ext4: No space left on device while writing out superblocks", f.Reason)
	assert.Equal(t, err.Error(), f.Details)
	assert.False(t, f.Retry)

	tail := "sfdisk: exit status 1: Checking that no-one is using this disk right now ... OK\nfailed to add #2 partition: Numerical result out of range"
	f = buildFailure(engine.Event{Kind: "build-failed", Pipeline: "image", Stage: "org.kiln.disk-image", Message: tail}, errors.New(tail))
	assert.Equal(t, "stage org.kiln.disk-image of pipeline image: sfdisk: failed to add #2 partition: Numerical result out of range", f.Reason,
		"the last line, under the tool's name")

	one := "the locale de_XX.UTF-8 is not in the tree's /usr/share/i18n/SUPPORTED"
	f = buildFailure(engine.Event{Kind: "build-failed", Pipeline: "os", Stage: "org.kiln.locale", Message: one}, errors.New("os: stage org.kiln.locale: "+one))
	assert.Equal(t, "stage org.kiln.locale of pipeline os: "+one, f.Reason, "a one-line error is kept whole")

	f = buildFailure(engine.Event{}, errors.New("fetching packages: 404"))
	assert.Equal(t, "the build failed", f.Reason, "outside a stage nothing is made up")
	assert.Equal(t, "fetching packages: 404", f.Details)
}
