package target

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// MaxS3Expiry is the longest a presigned S3 URL works (SigV4 allows 7
// days), and the default expiry of aws.s3's links.
const MaxS3Expiry = 7 * 24 * time.Hour

// S3 is aws.s3 on a server with a bucket of its own configured
// ([targets.s3]): the image is uploaded to the bucket in parallel parts,
// checked, and the status gives a presigned download URL with the time
// it expires, as image-builder's aws.s3 does.
type S3 struct {
	cfg     S3Config
	up      s3Uploader
	presign *s3.PresignClient
	expiry  time.Duration
}

// NewS3 makes the aws.s3 target of cfg, credentials read through env
// where the section names variables, else found by the SDK's default
// chain.
func NewS3(cfg S3Config, env Env) (*S3, error) {
	var problems []string
	if cfg.Bucket == "" {
		problems = append(problems, "[targets.s3] bucket: required (the bucket images are uploaded to)")
	}
	problems = append(problems, cfg.AWSAccess.check("s3", env)...)
	expiry := time.Duration(cfg.Expiry)
	switch {
	case expiry == 0:
		expiry = MaxS3Expiry
	case expiry < time.Minute || expiry > MaxS3Expiry:
		problems = append(problems, fmt.Sprintf("[targets.s3] expiry: %s is out of range (a presigned S3 URL works from 1m to 168h)", expiry))
	}
	if cfg.PartSize != 0 && cfg.PartSize < 5 {
		problems = append(problems, "[targets.s3] part_size_mib: at least 5 (S3's smallest part)")
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	awsCfg, err := cfg.AWSAccess.awsConfig(context.Background(), "s3", env, "")
	if err != nil {
		return nil, err
	}
	client := newS3Client(awsCfg, cfg.S3Endpoint)
	return &S3{
		cfg:     cfg,
		up:      s3Uploader{client: client, endpoint: cfg.S3Endpoint, bucket: cfg.Bucket},
		presign: s3.NewPresignClient(client),
		expiry:  expiry,
	}, nil
}

// Type implements Target.
func (*S3) Type() string { return "aws.s3" }

// Check implements Target: any image, no options (image-builder's
// AWSS3UploadRequestOptions has none).
func (*S3) Check(_ Image, options json.RawMessage) error {
	return DecodeOptions(options, nil)
}

// Key is where the artifact's object goes in the bucket:
// <prefix><compose id>/<file name>. It is the same for every attempt of a
// compose, so a requeued upload overwrites what an earlier one left.
func (s *S3) Key(a Artifact) string {
	return s.cfg.Prefix + a.ComposeID + "/" + objectName(a)
}

// objectName is the artifact's file name, or its default name.
func objectName(a Artifact) string {
	if a.Filename != "" {
		return path.Base(a.Filename)
	}
	return a.Name
}

// Upload implements Target.
func (s *S3) Upload(ctx context.Context, a Artifact, options json.RawMessage, r Reporter) (Result, error) {
	fail := func(step string, err error) (Result, error) {
		return Result{}, &StepError{Target: "aws.s3", Step: step, Err: err}
	}
	if err := s.Check(a.Image, options); err != nil {
		return fail("read the options", err)
	}
	key := s.Key(a)
	r.Step(StepUploading)
	if err := s.up.put(ctx, key, a.Path, a.Size, r); err != nil {
		return fail("upload the image", err)
	}
	expires := time.Now().Add(s.expiry).UTC().Truncate(time.Second)
	req, err := s.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)}, s3.WithPresignExpires(s.expiry))
	if err != nil {
		return fail("sign the download link", err)
	}
	return Result{URL: req.URL, ExpiresAt: &expires}, nil
}
