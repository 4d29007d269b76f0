package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/service/artifacts"
	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/target"
	"github.com/kiln-project/kiln/internal/workerproto"
)

// checkingTarget stands in for a cloud target at the API, which only
// calls Check: it records what it was asked and refuses one option the
// way a target words it.
type checkingTarget struct {
	typ  string
	only string // the one image type it takes ("": any)
	seen []target.Image
}

func (c *checkingTarget) Type() string { return c.typ }

func (c *checkingTarget) Check(img target.Image, options json.RawMessage) error {
	c.seen = append(c.seen, img)
	if c.only != "" && img.Type != c.only {
		return errors.New(c.typ + " takes " + c.only + " images only")
	}
	var o struct {
		ShareWithAccounts []string `json:"share_with_accounts"`
	}
	if err := target.DecodeOptions(options, &o); err != nil {
		return err
	}
	var errs []error
	for _, a := range o.ShareWithAccounts {
		if len(a) != 12 {
			errs = append(errs, errors.New("options.share_with_accounts: "+a+" is not a 12-digit account id"))
		}
	}
	return errors.Join(errs...)
}

func (c *checkingTarget) Upload(context.Context, target.Artifact, json.RawMessage, target.Reporter) (target.Result, error) {
	return target.Result{}, errors.New("the API never uploads")
}

func withUpload(typ string, options map[string]any) map[string]any {
	body := composeBody()
	ir := body["image_requests"].([]any)[0].(map[string]any)
	ir["upload_request"] = map[string]any{"type": typ, "options": options}
	return body
}

// A cloud upload type is checked at submission with the image it will
// get, its option errors land at the option's field, and its job carries
// the image and the name to make; while the cloud imports the image the
// status is registering, and once done the upload status gives
// image-builder's fields for the type.
func TestUploadToACloudTarget(t *testing.T) {
	aws := &checkingTarget{typ: "aws"}
	ts := newTestServer(t, func(c *Config) { c.Targets = target.New(target.Local{}, target.StoreLink{}, aws) })

	r := ts.do(t, "acme", "POST", "/compose", withUpload("aws", map[string]any{"share_with_accounts": []any{"123", "4567"}}))
	require.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	assert.Equal(t, 2, strings.Count(string(r.body), `"field":"image_requests[0].upload_request.options.share_with_accounts"`), "one item per problem: %s", r.body)
	assert.Contains(t, string(r.body), "123 is not a 12-digit account id")
	assert.Contains(t, string(r.body), "4567 is not a 12-digit account id")
	r = ts.do(t, "acme", "POST", "/compose", withUpload("gcp", nil))
	require.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	assert.Contains(t, string(r.body), `upload type \"gcp\" is not configured on this server`)

	r = ts.do(t, "acme", "POST", "/compose", withUpload("aws", map[string]any{"share_with_accounts": []any{"123456789012"}}))
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	id := r.json(t)["id"].(string)
	require.NotEmpty(t, aws.seen)
	assert.Equal(t, target.Image{Type: "qcow2", Format: "qcow2", BootMode: "hybrid", Arch: "x86_64"}, aws.seen[len(aws.seen)-1])

	ctx := context.Background()
	runJob(t, ts, workerproto.KindDepsolve, map[string]any{}, nil)
	runJob(t, ts, workerproto.KindBuild, workerproto.BuildResult{Filename: "disk.qcow2", Size: 20, SHA256: "c0ffee"}, nil)
	l, err := ts.db.Dequeue(ctx, []string{workerproto.KindUpload}, []string{"x86_64"}, store.Worker{Name: "test"}, time.Minute)
	require.NoError(t, err)
	var args workerproto.UploadArgs
	require.NoError(t, json.Unmarshal(l.Job.Args, &args))
	assert.Equal(t, "web server", args.Name, "the compose's image_name names the AMI")
	assert.Equal(t, "qcow2", args.Image.Type)
	assert.JSONEq(t, `{"share_with_accounts":["123456789012"]}`, string(args.Options))

	status := func() (string, map[string]any) {
		t.Helper()
		r := ts.do(t, "acme", "GET", "/composes/"+id, nil)
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		conforms(t, "GET", "/composes/"+id, r)
		st := r.json(t)["image_status"].(map[string]any)
		return st["status"].(string), st["upload_status"].(map[string]any)
	}
	s, us := status()
	assert.Equal(t, "uploading", s)
	assert.Equal(t, map[string]any{}, us["options"], "options are there, empty, until the upload is done")
	require.NoError(t, ts.db.SetProgress(ctx, l.Job.ID, l.Token, store.Progress{Step: target.StepRegistering}))
	s, us = status()
	assert.Equal(t, "registering", s)
	assert.Equal(t, "running", us["status"])

	res, _ := json.Marshal(workerproto.UploadResult{Type: "aws", Result: target.Result{AMI: "ami-0c830793775595d4b", Region: "eu-west-1"}})
	require.NoError(t, ts.db.Finish(ctx, l.Job.ID, l.Token, res, nil))
	s, us = status()
	assert.Equal(t, "success", s)
	assert.Equal(t, map[string]any{"ami": "ami-0c830793775595d4b", "region": "eu-west-1"}, us["options"])
	assert.Equal(t, "aws", us["type"])
}

// aws.s3 on a server with no bucket of its own is the artifact store's
// signed download link, as the image-builder frontend expects of it.
func TestAWSS3WithoutABucketIsTheDownloadLink(t *testing.T) {
	arts := artifacts.Local{Dir: t.TempDir()}
	ts := newTestServer(t, func(c *Config) {
		c.Artifacts = arts
		c.DownloadKey = []byte("0123456789abcdef0123456789abcdef")
		c.DownloadExpiry = time.Hour
	})
	r := ts.do(t, "acme", "POST", "/compose", withUpload("aws.s3", map[string]any{}))
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	id := r.json(t)["id"].(string)
	runJob(t, ts, workerproto.KindDepsolve, map[string]any{}, nil)
	_, err := arts.Put(context.Background(), id, "disk.qcow2", strings.NewReader(image))
	require.NoError(t, err)
	runJob(t, ts, workerproto.KindBuild, workerproto.BuildResult{Filename: "disk.qcow2", Size: int64(len(image)), SHA256: "c0ffee"}, nil)
	res, _ := json.Marshal(workerproto.UploadResult{Type: "aws.s3", Result: target.Result{URL: Prefix + "/composes/" + id + "/download"}})
	runJob(t, ts, workerproto.KindUpload, json.RawMessage(res), nil)

	r = ts.do(t, "acme", "GET", "/composes/"+id, nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	conforms(t, "GET", "/composes/"+id, r)
	us := r.json(t)["image_status"].(map[string]any)["upload_status"].(map[string]any)
	assert.Equal(t, "aws.s3", us["type"])
	opts := us["options"].(map[string]any)
	assert.Contains(t, opts["url"], "/composes/"+id+"/download?", "a signed link")
	assert.NotEmpty(t, opts["expires_at"])
	assert.Equal(t, float64(len(image)), opts["size"])
}

// The upload types are the server's configured ones, each with the image
// types it takes.
func TestUploadTypesListsWhatEachTakes(t *testing.T) {
	aws := &checkingTarget{typ: "aws", only: "ami"}
	ts := newTestServer(t, func(c *Config) { c.Targets = target.New(target.Local{}, target.StoreLink{}, aws) })
	r := ts.do(t, "acme", "GET", "/upload_types", nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	conforms(t, "GET", "/upload_types", r)
	assert.JSONEq(t, `{"data":[{"type":"aws"},{"type":"aws.s3"},{"type":"local"}]}`, string(r.body))

	r = ts.do(t, "acme", "GET", "/upload_types?distribution=debian-12&architecture=x86_64", nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var got struct {
		Data []uploadTypeItem `json:"data"`
	}
	require.NoError(t, json.Unmarshal(r.body, &got))
	require.Len(t, got.Data, 3)
	assert.Equal(t, []string{"ami"}, got.Data[0].ImageTypes, "aws takes what its check accepts")
	assert.Contains(t, got.Data[1].ImageTypes, "qcow2")
	assert.Contains(t, got.Data[1].ImageTypes, "ami")

	r = ts.do(t, "acme", "GET", "/upload_types?distribution=debian-12", nil)
	assert.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	r = ts.do(t, "acme", "GET", "/upload_types?distribution=fedora-40&architecture=x86_64", nil)
	assert.Equal(t, http.StatusBadRequest, r.status, string(r.body))
}
