package target

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLocal(t *testing.T) {
	r := New(Local{BaseURL: "http://kiln.example:8086"})
	tg, err := r.Lookup("local")
	require.NoError(t, err)
	assert.NoError(t, tg.Check(nil))
	assert.NoError(t, tg.Check(json.RawMessage(`{}`)))
	assert.ErrorContains(t, tg.Check(json.RawMessage(`{"bucket":"x"}`)), "options.bucket")
	res, err := tg.Upload(context.Background(), Artifact{ComposeID: "c1", Filename: "x.qcow2"}, nil)
	require.NoError(t, err)
	assert.Equal(t, "http://kiln.example:8086/api/image-builder/v1/composes/c1/download", res.URL)

	_, err = r.Lookup("aws.s3")
	assert.ErrorContains(t, err, `upload type "aws.s3" is not supported (supported: local)`)
}
