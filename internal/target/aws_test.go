package target_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/target"
	"github.com/kiln-project/kiln/internal/target/targettest"
)

func startAWS(t *testing.T) (*targettest.S3Server, *targettest.EC2Server) {
	t.Helper()
	s3srv := targettest.StartS3(t)
	return s3srv, targettest.StartEC2(t, s3srv)
}

func newAWSTarget(t *testing.T, s3srv *targettest.S3Server, cfg target.AWSConfig) target.Target {
	t.Helper()
	reg, err := target.Build(target.Config{AWS: &cfg}, s3srv.EnvFunc(), "")
	require.NoError(t, err)
	tg, err := reg.Lookup("aws")
	require.NoError(t, err)
	return tg
}

const shareWith = "123456789012"

func TestAWSImportsRegistersAndShares(t *testing.T) {
	s3srv, ec2srv := startAWS(t)
	tg := newAWSTarget(t, s3srv, ec2srv.AWSConfig())
	assert.True(t, target.WantsFile(tg))
	a, _ := testImage(t, "c-ami", 11*1024*1024, rawDisk)
	opts := json.RawMessage(`{"share_with_accounts":["` + shareWith + `"]}`)
	require.NoError(t, tg.Check(rawDisk, opts))

	rec := &recorder{}
	res, err := tg.Upload(context.Background(), a, opts, rec)
	require.NoError(t, err)

	assert.Equal(t, []string{
		"DescribeImages",              // an earlier attempt's image?
		"DescribeImportSnapshotTasks", // an earlier attempt's import?
		"ImportSnapshot",
		"DescribeImportSnapshotTasks", "DescribeImportSnapshotTasks", // active, completed
		"CreateTags", // the snapshot
		"RegisterImage",
		"ModifyImageAttribute", "ModifySnapshotAttribute",
	}, ec2srv.Actions())
	assert.Equal(t, []string{target.StepUploading, target.StepRegistering}, rec.steps)

	imgs := ec2srv.Images()
	require.Len(t, imgs, 1)
	img := imgs[0]
	assert.Equal(t, target.Result{AMI: img.ID, Region: targettest.S3Region}, res)
	assert.Equal(t, "kiln-c-ami", img.Name)
	assert.Equal(t, "x86_64", img.Architecture)
	assert.Equal(t, "uefi-preferred", img.BootMode, "a hybrid image prefers UEFI")
	assert.True(t, img.EnaSupport)
	assert.Equal(t, map[string]string{"Name": "kiln-c-ami", target.ComposeIDTag: "c-ami"}, img.Tags)
	assert.Equal(t, []string{shareWith}, img.LaunchPermissions)

	snap := ec2srv.Snapshot(img.SnapshotID)
	require.NotNil(t, snap)
	assert.Equal(t, a.SHA256, snap.SHA256, "EC2 imported the image's bytes")
	assert.Equal(t, a.Size, snap.Size)
	assert.Equal(t, "RAW", snap.Format)
	assert.Equal(t, map[string]string{"Name": "kiln-c-ami", target.ComposeIDTag: "c-ami"}, snap.Tags)
	assert.Equal(t, []string{shareWith}, snap.VolumePermissions)

	imp := ec2srv.Calls()[2].Params
	assert.Equal(t, "staging/c-ami/disk.raw", imp.Get("DiskContainer.UserBucket.S3Key"))
	assert.Empty(t, s3srv.Keys(t), "the staging object is deleted once imported")
	assert.Empty(t, s3srv.OpenUploads(t))
}

func TestAWSBootModesArchitecturesAndFormats(t *testing.T) {
	for _, tc := range []struct {
		img            target.Image
		bootMode, arch string
		format         string
	}{
		{target.Image{Type: "ami", Format: "raw", BootMode: "bios", Arch: "x86_64"}, "legacy-bios", "x86_64", "RAW"},
		{target.Image{Type: "ami", Format: "raw", BootMode: "uefi", Arch: "aarch64"}, "uefi", "arm64", "RAW"},
		{target.Image{Type: "vhd", Format: "vhd", BootMode: "hybrid", Arch: "x86_64"}, "uefi-preferred", "x86_64", "VHD"},
	} {
		t.Run(tc.bootMode+"-"+tc.arch, func(t *testing.T) {
			s3srv, ec2srv := startAWS(t)
			tg := newAWSTarget(t, s3srv, ec2srv.AWSConfig())
			a, _ := testImage(t, "c-"+tc.bootMode, 1024*1024, tc.img)
			_, err := tg.Upload(context.Background(), a, nil, &recorder{})
			require.NoError(t, err)
			imgs := ec2srv.Images()
			require.Len(t, imgs, 1)
			assert.Equal(t, tc.bootMode, imgs[0].BootMode)
			assert.Equal(t, tc.arch, imgs[0].Architecture)
			assert.Equal(t, tc.format, ec2srv.Snapshot(imgs[0].SnapshotID).Format)
			assert.NotContains(t, ec2srv.Actions(), "ModifyImageAttribute", "shared with nobody")
		})
	}
}

func TestAWSImageNameIsOneEC2Takes(t *testing.T) {
	s3srv, ec2srv := startAWS(t)
	tg := newAWSTarget(t, s3srv, ec2srv.AWSConfig())
	a, _ := testImage(t, "c-name", 1024*1024, rawDisk)
	a.Name = "web: ünïcode & more " + strings.Repeat("x", 200)
	_, err := tg.Upload(context.Background(), a, nil, &recorder{})
	require.NoError(t, err)
	imgs := ec2srv.Images()
	require.Len(t, imgs, 1)
	assert.Equal(t, "web- -n-code - more "+strings.Repeat("x", 108), imgs[0].Name, "refused characters replaced, cut at 128")
	assert.Equal(t, a.Name, imgs[0].Tags["Name"], "the tag keeps the name as given")
}

func TestAWSCheck(t *testing.T) {
	cfg := target.AWSConfig{Bucket: "b", Buckets: map[string]string{"eu-west-1": "b-eu"}, AWSAccess: target.AWSAccess{Region: "us-east-1"}}
	tg, err := target.NewAWS(cfg, func(string) string { return "" })
	require.NoError(t, err)
	assert.NoError(t, tg.Check(rawDisk, nil))
	assert.NoError(t, tg.Check(rawDisk, json.RawMessage(`{"share_with_accounts":["123456789012","000000000001"],"region":"eu-west-1"}`)))

	err = tg.Check(target.Image{Type: "qcow2", Format: "qcow2", Compression: "xz", BootMode: "none", Arch: "s390x"},
		json.RawMessage(`{"share_with_accounts":["123456789012","12345","abcdefghijkl"],"share_with_sources":["src-1"],"region":"mars-1"}`))
	require.Error(t, err)
	assert.Equal(t, []string{
		`options.share_with_accounts[1]: "12345" is not an AWS account id (12 digits, such as "123456789012")`,
		`options.share_with_accounts[2]: "abcdefghijkl" is not an AWS account id (12 digits, such as "123456789012")`,
		`options.share_with_sources: kiln has no sources service to read accounts from; list the account ids in share_with_accounts`,
		`options.region: "mars-1" has no staging bucket on this server (regions here: eu-west-1, us-east-1)`,
		`image type "qcow2" cannot become an AMI: its format is qcow2, and EC2 imports raw and vhd disks; it is xz-compressed, and EC2 imports uncompressed disks; it does not boot (EC2 needs a BIOS, UEFI or hybrid disk); its architecture is "s390x", and EC2 runs x86_64 and aarch64; use the image type ami (or vhd)`,
	}, strings.Split(err.Error(), "\n"), "every problem, each at its field")

	assert.EqualError(t, tg.Check(rawDisk, json.RawMessage(`{"share_with_account":["123456789012"]}`)),
		"options.share_with_account: unknown option (this upload type takes region, share_with_accounts, share_with_sources)")
}

func TestAWSOtherRegionUsesItsBucket(t *testing.T) {
	s3srv, ec2srv := startAWS(t)
	cfg := ec2srv.AWSConfig()
	cfg.Region, cfg.Bucket = "eu-west-1", "not-this-one"
	cfg.Buckets = map[string]string{targettest.S3Region: targettest.S3Bucket}
	tg := newAWSTarget(t, s3srv, cfg)
	a, _ := testImage(t, "c-region", 1024*1024, rawDisk)
	res, err := tg.Upload(context.Background(), a, json.RawMessage(`{"region":"`+targettest.S3Region+`"}`), &recorder{})
	require.NoError(t, err)
	assert.Equal(t, targettest.S3Region, res.Region)
	for _, c := range ec2srv.Calls() {
		assert.Equal(t, targettest.S3Region, c.Region, "%s signed for the request's region", c.Action)
	}
}

func TestAWSRequeueReusesTheImage(t *testing.T) {
	s3srv, ec2srv := startAWS(t)
	tg := newAWSTarget(t, s3srv, ec2srv.AWSConfig())
	a, _ := testImage(t, "c-again", 1024*1024, rawDisk)
	opts := json.RawMessage(`{"share_with_accounts":["` + shareWith + `"]}`)
	first, err := tg.Upload(context.Background(), a, opts, &recorder{})
	require.NoError(t, err)
	n := len(ec2srv.Calls())

	second, err := tg.Upload(context.Background(), a, opts, &recorder{})
	require.NoError(t, err)
	assert.Equal(t, first, second)
	assert.Len(t, ec2srv.Images(), 1, "never a second image")
	var again []string
	for _, c := range ec2srv.Calls()[n:] {
		again = append(again, c.Action)
	}
	assert.Equal(t, []string{"DescribeImages", "ModifyImageAttribute", "ModifySnapshotAttribute"}, again, "found by its tag and shared again")
}

func TestAWSRetriedCallsMakeOneImport(t *testing.T) {
	s3srv, ec2srv := startAWS(t)
	tg := newAWSTarget(t, s3srv, ec2srv.AWSConfig())
	ec2srv.LoseAnswer("ImportSnapshot", 1)
	ec2srv.LoseAnswer("RegisterImage", 1)
	a, _ := testImage(t, "c-lost", 1024*1024, rawDisk)
	res, err := tg.Upload(context.Background(), a, nil, &recorder{})
	require.NoError(t, err)

	var tokens []string
	registers := 0
	for _, c := range ec2srv.Calls() {
		switch c.Action {
		case "ImportSnapshot":
			tokens = append(tokens, c.Params.Get("ClientToken"))
		case "RegisterImage":
			registers++
		}
	}
	require.Len(t, tokens, 2, "the SDK retried the import")
	assert.NotEmpty(t, tokens[0])
	assert.Equal(t, tokens[0], tokens[1], "with the same client token")
	assert.Len(t, ec2srv.ImportTasks(), 1, "one import")
	assert.Equal(t, 2, registers, "the SDK retried the registration")
	require.Len(t, ec2srv.Images(), 1, "one image")
	assert.Equal(t, ec2srv.Images()[0].ID, res.AMI, "the image the lost answer made")
}

// ec2Client is an EC2 client of the test's own, to play a worker that
// died after it started an import.
func ec2Client(ec2srv *targettest.EC2Server) *ec2.Client {
	return ec2.New(ec2.Options{
		Region: targettest.S3Region, BaseEndpoint: aws.String(ec2srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider(targettest.S3AccessKeyID, targettest.S3SecretAccessKey, ""),
	})
}

func TestAWSRequeueWaitsForTheRunningImport(t *testing.T) {
	s3srv, ec2srv := startAWS(t)
	tg := newAWSTarget(t, s3srv, ec2srv.AWSConfig())
	a, want := testImage(t, "c-crash", 1024*1024, rawDisk)

	// The dead worker staged the disk and started its import.
	client := s3.New(s3.Options{
		Region: targettest.S3Region, BaseEndpoint: aws.String(s3srv.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(targettest.S3AccessKeyID, targettest.S3SecretAccessKey, ""),
	})
	key := "staging/c-crash/disk.raw"
	_, err := client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(targettest.S3Bucket), Key: aws.String(key), Body: strings.NewReader(string(want))})
	require.NoError(t, err)
	_, err = ec2Client(ec2srv).ImportSnapshot(context.Background(), &ec2.ImportSnapshotInput{
		DiskContainer: &ec2types.SnapshotDiskContainer{Format: aws.String("RAW"), UserBucket: &ec2types.UserBucket{S3Bucket: aws.String(targettest.S3Bucket), S3Key: aws.String(key)}},
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeImportSnapshotTask, Tags: []ec2types.Tag{
			{Key: aws.String(target.ComposeIDTag), Value: aws.String("c-crash")},
		}}},
	})
	require.NoError(t, err)
	n := len(ec2srv.Calls())

	_, err = tg.Upload(context.Background(), a, nil, &recorder{})
	require.NoError(t, err)
	var actions []string
	for _, c := range ec2srv.Calls()[n:] {
		actions = append(actions, c.Action)
	}
	assert.Equal(t, []string{"DescribeImages", "DescribeImportSnapshotTasks", "DescribeImportSnapshotTasks", "DescribeImportSnapshotTasks", "CreateTags", "RegisterImage"}, actions,
		"the running import is waited for, not started again")
	assert.Len(t, ec2srv.ImportTasks(), 1)
	assert.Len(t, ec2srv.Images(), 1)
	assert.Empty(t, s3srv.Keys(t), "the dead worker's staging object is deleted")
}

// awsFailure checks a failed upload: its error names aws and the step,
// and it left no multipart upload open and no staging object.
func awsFailure(t *testing.T, s3srv *targettest.S3Server, err error, step string) {
	t.Helper()
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "aws: "+step+": "), "error %q names aws and %q", err, step)
	assert.Empty(t, s3srv.OpenUploads(t), "no multipart upload left open")
	assert.Empty(t, s3srv.Keys(t), "no staging object left")
}

func TestAWSFailures(t *testing.T) {
	t.Run("EC2 down", func(t *testing.T) {
		s3srv, ec2srv := startAWS(t)
		tg := newAWSTarget(t, s3srv, ec2srv.AWSConfig())
		ec2srv.Close()
		a, _ := testImage(t, "c-down", 1024*1024, rawDisk)
		_, err := tg.Upload(context.Background(), a, nil, &recorder{})
		awsFailure(t, s3srv, err, "look for an earlier attempt's image")
		assert.Contains(t, err.Error(), "connect")
	})
	t.Run("credentials refused", func(t *testing.T) {
		s3srv, ec2srv := startAWS(t)
		s3srv.Env[targettest.S3AccessKeyIDEnv] = "SOMEONEELSE"
		tg := newAWSTarget(t, s3srv, ec2srv.AWSConfig())
		a, _ := testImage(t, "c-creds", 1024*1024, rawDisk)
		_, err := tg.Upload(context.Background(), a, nil, &recorder{})
		awsFailure(t, s3srv, err, "look for an earlier attempt's image")
		assert.Contains(t, err.Error(), "AuthFailure")
	})
	t.Run("S3 500 on a part", func(t *testing.T) {
		s3srv, ec2srv := startAWS(t)
		tg := newAWSTarget(t, s3srv, ec2srv.AWSConfig())
		s3srv.FailPart(2, 1000)
		a, _ := testImage(t, "c-500", 11*1024*1024, rawDisk)
		_, err := tg.Upload(context.Background(), a, nil, &recorder{})
		awsFailure(t, s3srv, err, "upload the disk")
		assert.Contains(t, err.Error(), "InternalError")
		assert.NotContains(t, ec2srv.Actions(), "ImportSnapshot")
	})
	t.Run("import refused", func(t *testing.T) {
		s3srv, ec2srv := startAWS(t)
		tg := newAWSTarget(t, s3srv, ec2srv.AWSConfig())
		ec2srv.Fail("ImportSnapshot", http.StatusInternalServerError)
		a, _ := testImage(t, "c-import", 1024*1024, rawDisk)
		_, err := tg.Upload(context.Background(), a, nil, &recorder{})
		awsFailure(t, s3srv, err, "import the snapshot")
		assert.Contains(t, err.Error(), "InternalError")
	})
	t.Run("import times out", func(t *testing.T) {
		s3srv, ec2srv := startAWS(t)
		ec2srv.PollsToComplete = 1 << 30
		cfg := ec2srv.AWSConfig()
		cfg.ImportTimeout = target.Duration(100 * time.Millisecond)
		tg := newAWSTarget(t, s3srv, cfg)
		a, _ := testImage(t, "c-slow", 1024*1024, rawDisk)
		_, err := tg.Upload(context.Background(), a, nil, &recorder{})
		awsFailure(t, s3srv, err, "import the snapshot")
		assert.Contains(t, err.Error(), "not done after 100ms (the section's import_timeout)")
		assert.Contains(t, ec2srv.Actions(), "CancelImportTask")
		assert.Equal(t, "deleted", ec2srv.ImportTasks()[0].Status)
	})
	t.Run("canceled while importing", func(t *testing.T) {
		s3srv, ec2srv := startAWS(t)
		ec2srv.PollsToComplete = 1 << 30
		tg := newAWSTarget(t, s3srv, ec2srv.AWSConfig())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		rec := &recorder{}
		go func() {
			for range 500 {
				time.Sleep(5 * time.Millisecond)
				rec.mu.Lock()
				importing := len(rec.steps) == 2
				rec.mu.Unlock()
				if importing {
					cancel()
					return
				}
			}
		}()
		a, _ := testImage(t, "c-cancel", 1024*1024, rawDisk)
		_, err := tg.Upload(ctx, a, nil, rec)
		awsFailure(t, s3srv, err, "import the snapshot")
		assert.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, "deleted", ec2srv.ImportTasks()[0].Status, "the import was canceled with the upload")
		assert.Empty(t, ec2srv.Images())
	})
	t.Run("register refused", func(t *testing.T) {
		s3srv, ec2srv := startAWS(t)
		tg := newAWSTarget(t, s3srv, ec2srv.AWSConfig())
		ec2srv.Fail("RegisterImage", http.StatusBadRequest)
		a, _ := testImage(t, "c-reg", 1024*1024, rawDisk)
		_, err := tg.Upload(context.Background(), a, nil, &recorder{})
		awsFailure(t, s3srv, err, "register the image")
	})
}

func TestAWSConfiguration(t *testing.T) {
	var cfg target.Config
	_, err := toml.Decode(`
[aws]
region = "eu-west-1"
bucket = "kiln-imports"
prefix = "staging/"
ec2_endpoint = "http://127.0.0.1:1"
endpoint = "http://127.0.0.1:2"
path_style = true
poll_interval = "5s"
import_timeout = "30m"
profile = "imports"
max_attempts = 7
[aws.buckets]
us-east-1 = "kiln-imports-use1"
`, &cfg)
	require.NoError(t, err)
	require.NotNil(t, cfg.AWS)
	assert.Equal(t, target.AWSConfig{
		Bucket: "kiln-imports", Buckets: map[string]string{"us-east-1": "kiln-imports-use1"}, Prefix: "staging/",
		EC2Endpoint: "http://127.0.0.1:1", PollInterval: target.Duration(5 * time.Second), ImportTimeout: target.Duration(30 * time.Minute),
		AWSAccess:  target.AWSAccess{Region: "eu-west-1", Profile: "imports", MaxAttempts: 7},
		S3Endpoint: target.S3Endpoint{Endpoint: "http://127.0.0.1:2", PathStyle: true},
	}, *cfg.AWS)
	reg, err := target.Build(cfg, func(string) string { return "" }, "")
	require.NoError(t, err)
	assert.Equal(t, []string{"aws", "aws.s3", "local"}, reg.Types())

	_, err = target.Build(target.Config{AWS: &target.AWSConfig{Buckets: map[string]string{"us-east-1": ""}}}, func(string) string { return "" }, "")
	require.Error(t, err)
	assert.Equal(t, []string{
		"[targets.aws.buckets] us-east-1: the staging bucket of the region is empty",
		"[targets.aws] bucket: required (the staging bucket, in region, that EC2 imports disks from)",
		`[targets.aws] region: required (an AWS region such as "us-east-1")`,
	}, strings.Split(err.Error(), "\n"))
}
