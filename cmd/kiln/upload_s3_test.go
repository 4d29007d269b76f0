package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/target/targettest"
)

// kiln upload --to s3 with the configuration file's [targets.s3]: the
// real target, against an S3 server, puts the image in the bucket and
// prints its presigned link.
func TestUploadToAnS3Bucket(t *testing.T) {
	img := buildAMI(t)
	s3 := targettest.StartS3(t)
	for k, v := range s3.Env {
		t.Setenv(k, v)
	}
	config := writeConfig(t, fmt.Sprintf(`[targets.s3]
bucket = %q
prefix = "cli/"
region = %q
access_key_id_env = %q
secret_access_key_env = %q
endpoint = %q
path_style = true
`, targettest.S3Bucket, targettest.S3Region, targettest.S3AccessKeyIDEnv, targettest.S3SecretAccessKeyEnv, s3.URL))
	var stdout, stderr bytes.Buffer
	cmd := newRootCommand(&stdout, &stderr)
	cmd.SetArgs([]string{"--config", config, "upload", img, "--to", "s3", "--progress", "none"})
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	err := cmd.ExecuteContext(context.Background())
	require.NoError(t, err, stderr.String())

	keys := s3.Keys(t)
	require.Len(t, keys, 1)
	assert.True(t, strings.HasPrefix(keys[0], "cli/") && strings.HasSuffix(keys[0], "/web-debian-12-x86_64.ami.raw"), keys[0])
	data, err := os.ReadFile(img)
	require.NoError(t, err)
	assert.Equal(t, data, s3.Object(t, keys[0]), "the object is the image")
	assert.Contains(t, stdout.String(), s3.URL+"/"+targettest.S3Bucket+"/"+keys[0]+"?", "the presigned link is printed")
	assert.Empty(t, s3.OpenUploads(t))
}
