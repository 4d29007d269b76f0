package target

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var qcow2 = Image{Type: "qcow2", Format: "qcow2", BootMode: "hybrid", Arch: "x86_64"}

func TestLocal(t *testing.T) {
	r := New(Local{BaseURL: "http://kiln.example:8086"})
	tg, err := r.Lookup("local")
	require.NoError(t, err)
	assert.NoError(t, tg.Check(qcow2, nil))
	assert.NoError(t, tg.Check(qcow2, json.RawMessage(`{}`)))
	assert.EqualError(t, tg.Check(qcow2, json.RawMessage(`{"bucket":"x"}`)), "options.bucket: this upload type takes no options")
	assert.False(t, WantsFile(tg), "the image stays in the artifact store")
	res, err := tg.Upload(context.Background(), Artifact{ComposeID: "c1", Filename: "x.qcow2"}, nil, NoReporter{})
	require.NoError(t, err)
	assert.Equal(t, "http://kiln.example:8086/api/image-builder/v1/composes/c1/download", res.URL)

	_, err = r.Lookup("aws")
	assert.EqualError(t, err, `upload type "aws" is not configured on this server (its operator sets it up in the [targets.aws] section of the configuration file); configured here: local`)
	_, err = r.Lookup("ftp")
	assert.EqualError(t, err, `upload type "ftp" is not supported (supported here: local)`)
}

func TestBuildWithoutConfigurationGivesTheStoreLink(t *testing.T) {
	r, err := Build(Config{}, func(string) string { return "" }, "")
	require.NoError(t, err)
	assert.Equal(t, []string{"aws.s3", "local"}, r.Types())
	res, err := r["aws.s3"].Upload(context.Background(), Artifact{ComposeID: "c2"}, nil, NoReporter{})
	require.NoError(t, err)
	assert.Equal(t, "/api/image-builder/v1/composes/c2/download", res.URL)
	assert.False(t, WantsFile(r["aws.s3"]))
	assert.EqualError(t, r["aws.s3"].Check(qcow2, json.RawMessage(`[1]`)), "options: must be a JSON object")
}

type awsLike struct {
	ShareWithAccounts []string `json:"share_with_accounts,omitempty"`
	Region            string   `json:"region,omitempty"`
}

func TestDecodeOptions(t *testing.T) {
	var o awsLike
	require.NoError(t, DecodeOptions(json.RawMessage(`{"share_with_accounts":["123456789012"]}`), &o))
	assert.Equal(t, []string{"123456789012"}, o.ShareWithAccounts)
	assert.EqualError(t, DecodeOptions(json.RawMessage(`{"regoin":"x"}`), &o), "options.regoin: unknown option (this upload type takes region, share_with_accounts)")
	assert.EqualError(t, DecodeOptions(json.RawMessage(`{"share_with_accounts":"123"}`), &o), "options.share_with_accounts: must be a JSON array, not string")
	assert.NoError(t, DecodeOptions(json.RawMessage(`null`), &o))
	assert.NoError(t, DecodeOptions(nil, nil))
}

func TestStepErrorNamesTargetAndStep(t *testing.T) {
	err := &StepError{Target: "aws", Step: "import the snapshot", Err: context.DeadlineExceeded}
	assert.EqualError(t, err, "aws: import the snapshot: context deadline exceeded")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}
