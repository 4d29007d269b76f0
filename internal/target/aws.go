package target

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// AWS is the aws upload type: the disk image becomes an AMI in the
// operator's account. The disk is uploaded to a staging bucket, EC2
// imports it as a snapshot, the snapshot is registered as the root device
// of a new image, and image and snapshot are shared with the accounts the
// request names. Every step is found again by the compose's tag, so a
// requeued upload reuses what an earlier attempt made rather than make a
// second image.
type AWS struct {
	cfg AWSConfig
	env Env
}

// AWSOptions are the options of an aws upload request: image-builder's
// AWSEC2UploadRequestOptions, and kiln's region.
type AWSOptions struct {
	// ShareWithAccounts are the AWS account ids (12 digits) the image is
	// shared with.
	ShareWithAccounts []string `json:"share_with_accounts,omitempty"`
	// ShareWithSources names image-builder's sources service entries;
	// kiln has none and refuses it.
	ShareWithSources []string `json:"share_with_sources,omitempty"`
	// Region is the region the image is made in (kiln's extension);
	// default the configuration's.
	Region string `json:"region,omitempty"`
}

// ComposeIDTag is the tag that marks the AMI, its snapshot and the import
// task with the compose they belong to.
const ComposeIDTag = "kiln:compose-id"

const (
	defaultPollInterval  = 15 * time.Second
	defaultImportTimeout = time.Hour
	rootDevice           = "/dev/xvda"
)

var accountID = regexp.MustCompile(`^[0-9]{12}$`)

// NewAWS makes the aws target of cfg.
func NewAWS(cfg AWSConfig, env Env) (*AWS, error) {
	var problems []string
	if cfg.Bucket == "" {
		problems = append(problems, "[targets.aws] bucket: required (the staging bucket, in region, that EC2 imports disks from)")
	}
	problems = append(problems, cfg.AWSAccess.check("aws", env)...)
	for region, bucket := range cfg.Buckets {
		if bucket == "" {
			problems = append(problems, fmt.Sprintf("[targets.aws.buckets] %s: the staging bucket of the region is empty", region))
		}
	}
	if cfg.PartSize != 0 && cfg.PartSize < 5 {
		problems = append(problems, "[targets.aws] part_size_mib: at least 5 (S3's smallest part)")
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	return &AWS{cfg: cfg, env: env}, nil
}

// Type implements Target.
func (*AWS) Type() string { return "aws" }

// regions are the regions a request may name, sorted.
func (t *AWS) regions() []string {
	names := []string{t.cfg.Region}
	for r := range t.cfg.Buckets {
		if r != t.cfg.Region {
			names = append(names, r)
		}
	}
	sort.Strings(names)
	return names
}

// bucket is the staging bucket of region.
func (t *AWS) bucket(region string) (string, bool) {
	if region == t.cfg.Region {
		return t.cfg.Bucket, true
	}
	b, ok := t.cfg.Buckets[region]
	return b, ok
}

// Check implements Target. EC2 imports raw and VHD disks (kiln's ami is
// raw, vhd is the fixed VHD that azure also takes), uncompressed and
// bootable, for x86_64 and aarch64.
func (t *AWS) Check(img Image, options json.RawMessage) error {
	var o AWSOptions
	if err := DecodeOptions(options, &o); err != nil {
		return err
	}
	var problems []error
	for i, acct := range o.ShareWithAccounts {
		if !accountID.MatchString(acct) {
			problems = append(problems, fmt.Errorf("options.share_with_accounts[%d]: %q is not an AWS account id (12 digits, such as \"123456789012\")", i, acct))
		}
	}
	if len(o.ShareWithSources) > 0 {
		problems = append(problems, errors.New("options.share_with_sources: kiln has no sources service to read accounts from; list the account ids in share_with_accounts"))
	}
	if o.Region != "" {
		if _, ok := t.bucket(o.Region); !ok {
			problems = append(problems, fmt.Errorf("options.region: %q has no staging bucket on this server (regions here: %s)", o.Region, strings.Join(t.regions(), ", ")))
		}
	}
	if err := awsImageProblem(img); err != nil {
		problems = append(problems, err)
	}
	return errors.Join(problems...)
}

// awsImageProblem says why EC2 cannot import img, and what would work.
func awsImageProblem(img Image) error {
	var why []string
	if img.Format != "raw" && img.Format != "vhd" {
		why = append(why, fmt.Sprintf("its format is %s, and EC2 imports raw and vhd disks", img.Format))
	}
	if img.Compression != "" {
		why = append(why, fmt.Sprintf("it is %s-compressed, and EC2 imports uncompressed disks", img.Compression))
	}
	if _, ok := ec2BootMode(img.BootMode); !ok {
		why = append(why, "it does not boot (EC2 needs a BIOS, UEFI or hybrid disk)")
	}
	if _, ok := ec2Arch(img.Arch); !ok {
		why = append(why, fmt.Sprintf("its architecture is %q, and EC2 runs x86_64 and aarch64", img.Arch))
	}
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("image type %q cannot become an AMI: %s; use the image type ami (or vhd)", img.Type, strings.Join(why, "; "))
}

// ec2BootMode is the boot mode EC2 registers for kiln's.
func ec2BootMode(mode string) (ec2types.BootModeValues, bool) {
	switch mode {
	case "bios":
		return ec2types.BootModeValuesLegacyBios, true
	case "uefi":
		return ec2types.BootModeValuesUefi, true
	case "hybrid":
		return ec2types.BootModeValuesUefiPreferred, true
	}
	return "", false
}

// ec2Arch is EC2's name of an architecture.
func ec2Arch(arch string) (ec2types.ArchitectureValues, bool) {
	switch arch {
	case "x86_64":
		return ec2types.ArchitectureValuesX8664, true
	case "aarch64":
		return ec2types.ArchitectureValuesArm64, true
	}
	return "", false
}

// awsUpload is one upload's state: its clients and what it has made.
type awsUpload struct {
	t       *AWS
	a       Artifact
	opts    AWSOptions
	region  string
	ec2     *ec2.Client
	up      s3Uploader
	key     string
	r       Reporter
	staged  bool
	imageID string
}

func (u *awsUpload) fail(step string, err error) error {
	return &StepError{Target: "aws", Step: step, Err: err}
}

// Upload implements Target.
func (t *AWS) Upload(ctx context.Context, a Artifact, options json.RawMessage, r Reporter) (Result, error) {
	u := &awsUpload{t: t, a: a, r: r}
	if err := t.Check(a.Image, options); err != nil {
		return Result{}, u.fail("read the options", err)
	}
	_ = DecodeOptions(options, &u.opts)
	u.region = u.opts.Region
	if u.region == "" {
		u.region = t.cfg.Region
	}
	bucket, _ := t.bucket(u.region)
	awsCfg, err := t.cfg.AWSAccess.awsConfig(ctx, "aws", t.env, u.region)
	if err != nil {
		return Result{}, u.fail("load the configuration", err)
	}
	u.ec2 = ec2.NewFromConfig(awsCfg, func(o *ec2.Options) {
		if t.cfg.EC2Endpoint != "" {
			o.BaseEndpoint = aws.String(t.cfg.EC2Endpoint)
		}
	})
	u.up = s3Uploader{client: newS3Client(awsCfg, t.cfg.S3Endpoint), endpoint: t.cfg.S3Endpoint, bucket: bucket}
	u.key = t.cfg.Prefix + a.ComposeID + "/" + objectName(a)
	// What an earlier attempt staged goes too, whatever this one does.
	u.staged = true
	defer u.removeStaged()

	img, err := u.findImage(ctx)
	if err != nil {
		return Result{}, u.fail("look for an earlier attempt's image", err)
	}
	if img == nil {
		if img, err = u.makeImage(ctx); err != nil {
			return Result{}, err
		}
	}
	u.imageID = aws.ToString(img.ImageId)
	if err := u.share(ctx, img); err != nil {
		return Result{}, u.fail("share the image", err)
	}
	return Result{AMI: u.imageID, Region: u.region}, nil
}

// makeImage imports the disk as a snapshot (or finds an earlier
// attempt's import) and registers the image.
func (u *awsUpload) makeImage(ctx context.Context) (*ec2types.Image, error) {
	task, err := u.findImport(ctx)
	if err != nil {
		return nil, u.fail("look for an earlier attempt's import", err)
	}
	if task == "" {
		u.r.Step(StepUploading)
		if err := u.up.put(ctx, u.key, u.a.Path, u.a.Size, u.r); err != nil {
			return nil, u.fail("upload the disk", err)
		}
		if task, err = u.startImport(ctx); err != nil {
			return nil, u.fail("import the snapshot", err)
		}
	}
	u.r.Step(StepRegistering)
	snapshot, err := u.waitImport(ctx, task)
	if err != nil {
		return nil, u.fail("import the snapshot", err)
	}
	// The staging object has served its purpose.
	u.removeStaged()
	if _, err := u.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{snapshot}, Tags: u.tags()}); err != nil {
		return nil, u.fail("tag the snapshot", err)
	}
	img, err := u.register(ctx, snapshot)
	if err != nil {
		return nil, u.fail("register the image", err)
	}
	return img, nil
}

func (u *awsUpload) tags() []ec2types.Tag {
	return []ec2types.Tag{
		{Key: aws.String("Name"), Value: aws.String(u.a.Name)},
		{Key: aws.String(ComposeIDTag), Value: aws.String(u.a.ComposeID)},
	}
}

// findImage is the image an earlier attempt registered for the compose,
// or nil.
func (u *awsUpload) findImage(ctx context.Context) (*ec2types.Image, error) {
	out, err := u.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners:  []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("tag:" + ComposeIDTag), Values: []string{u.a.ComposeID}}},
	})
	if err != nil {
		return nil, err
	}
	for _, img := range out.Images {
		switch img.State {
		case ec2types.ImageStatePending, ec2types.ImageStateAvailable:
			return &img, nil
		}
	}
	return nil, nil
}

// findImport is the import task an earlier attempt started for the
// compose, still running or done, or "".
func (u *awsUpload) findImport(ctx context.Context) (string, error) {
	p := ec2.NewDescribeImportSnapshotTasksPaginator(u.ec2, &ec2.DescribeImportSnapshotTasksInput{})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return "", err
		}
		for _, task := range out.ImportSnapshotTasks {
			if !hasTag(task.Tags, ComposeIDTag, u.a.ComposeID) || task.SnapshotTaskDetail == nil {
				continue
			}
			switch aws.ToString(task.SnapshotTaskDetail.Status) {
			case "active", "completed":
				return aws.ToString(task.ImportTaskId), nil
			}
		}
	}
	return "", nil
}

func hasTag(tags []ec2types.Tag, key, value string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == key && aws.ToString(t.Value) == value {
			return true
		}
	}
	return false
}

// startImport asks EC2 to import the staged disk as a snapshot.
func (u *awsUpload) startImport(ctx context.Context) (string, error) {
	format := "RAW"
	if u.a.Image.Format == "vhd" {
		format = "VHD"
	}
	// The token makes the SDK's retries of this call one import: EC2
	// answers a repeated token with the task it already started.
	token := fmt.Sprintf("kiln-%s-%x", u.a.ComposeID, time.Now().UnixNano())
	if len(token) > 64 {
		token = token[len(token)-64:]
	}
	out, err := u.ec2.ImportSnapshot(ctx, &ec2.ImportSnapshotInput{
		ClientToken: aws.String(token),
		Description: aws.String("kiln compose " + u.a.ComposeID),
		DiskContainer: &ec2types.SnapshotDiskContainer{
			Format:     aws.String(format),
			UserBucket: &ec2types.UserBucket{S3Bucket: aws.String(u.up.bucket), S3Key: aws.String(u.key)},
		},
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeImportSnapshotTask, Tags: u.tags()}},
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ImportTaskId), nil
}

// waitImport polls the import task until it has made its snapshot, and
// cancels it when ctx ends or the import times out.
func (u *awsUpload) waitImport(ctx context.Context, task string) (string, error) {
	timeout := time.Duration(u.t.cfg.ImportTimeout)
	if timeout <= 0 {
		timeout = defaultImportTimeout
	}
	interval := time.Duration(u.t.cfg.PollInterval)
	if interval <= 0 {
		interval = defaultPollInterval
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		out, err := u.ec2.DescribeImportSnapshotTasks(wctx, &ec2.DescribeImportSnapshotTasksInput{ImportTaskIds: []string{task}})
		if err != nil && wctx.Err() == nil {
			return "", err
		}
		if err == nil {
			if len(out.ImportSnapshotTasks) == 0 || out.ImportSnapshotTasks[0].SnapshotTaskDetail == nil {
				return "", fmt.Errorf("EC2 does not know the import task %s", task)
			}
			d := out.ImportSnapshotTasks[0].SnapshotTaskDetail
			switch status := aws.ToString(d.Status); status {
			case "completed":
				return aws.ToString(d.SnapshotId), nil
			case "deleting", "deleted":
				return "", fmt.Errorf("EC2 gave up the import task %s: %s", task, aws.ToString(d.StatusMessage))
			}
		}
		select {
		case <-wctx.Done():
			u.cancelImport(task)
			if ctx.Err() != nil {
				return "", fmt.Errorf("import task %s canceled: %w", task, ctx.Err())
			}
			return "", fmt.Errorf("import task %s not done after %s (the section's import_timeout): %w", task, timeout, wctx.Err())
		case <-time.After(interval):
		}
	}
}

// cancelImport stops an import that will not be waited for, so it makes
// no snapshot nobody uses.
func (u *awsUpload) cancelImport(task string) {
	ctx, cancel := cleanupContext()
	defer cancel()
	_, _ = u.ec2.CancelImportTask(ctx, &ec2.CancelImportTaskInput{ImportTaskId: aws.String(task), CancelReason: aws.String("the kiln upload was canceled or timed out")})
}

// register makes the image of the snapshot.
func (u *awsUpload) register(ctx context.Context, snapshot string) (*ec2types.Image, error) {
	boot, _ := ec2BootMode(u.a.Image.BootMode)
	arch, _ := ec2Arch(u.a.Image.Arch)
	out, err := u.ec2.RegisterImage(ctx, &ec2.RegisterImageInput{
		Name:               aws.String(amiName(u.a.Name)),
		Description:        aws.String("Built by kiln, compose " + u.a.ComposeID),
		Architecture:       arch,
		BootMode:           boot,
		EnaSupport:         aws.Bool(true),
		VirtualizationType: aws.String("hvm"),
		RootDeviceName:     aws.String(rootDevice),
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{{
			DeviceName: aws.String(rootDevice),
			Ebs: &ec2types.EbsBlockDevice{
				SnapshotId:          aws.String(snapshot),
				DeleteOnTermination: aws.Bool(true),
				VolumeType:          ec2types.VolumeTypeGp3,
			},
		}},
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeImage, Tags: u.tags()}},
	})
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "InvalidAMIName.Duplicate" {
		// A retry of a call that had registered the image, or an image
		// of this name made since findImage looked: it is this compose's
		// only if it carries its tag.
		if img, ferr := u.findImage(ctx); ferr == nil && img != nil {
			return img, nil
		}
		return nil, fmt.Errorf("%w (an image of another compose has this name; give the compose another image_name)", err)
	}
	if err != nil {
		return nil, err
	}
	return &ec2types.Image{
		ImageId: out.ImageId,
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{{
			DeviceName: aws.String(rootDevice),
			Ebs:        &ec2types.EbsBlockDevice{SnapshotId: aws.String(snapshot)},
		}},
	}, nil
}

// amiNameChar matches what an AMI name may not hold: EC2 takes letters,
// digits, spaces and ()[]./-'@_ only.
var amiNameChar = regexp.MustCompile(`[^A-Za-z0-9 ()\[\]./\-'@_]`)

// amiName is name as EC2 takes it: characters it refuses become "-", and
// it is 3 to 128 characters long.
func amiName(name string) string {
	name = amiNameChar.ReplaceAllString(name, "-")
	if len(name) > 128 {
		name = name[:128]
	}
	for len(name) < 3 {
		name += "-"
	}
	return name
}

// share lets each of the request's accounts launch the image and make
// volumes of its snapshot. Both calls are idempotent, so a requeued
// upload shares again without harm.
func (u *awsUpload) share(ctx context.Context, img *ec2types.Image) error {
	if len(u.opts.ShareWithAccounts) == 0 {
		return nil
	}
	var perms []ec2types.LaunchPermission
	var volPerms []ec2types.CreateVolumePermission
	for _, acct := range u.opts.ShareWithAccounts {
		perms = append(perms, ec2types.LaunchPermission{UserId: aws.String(acct)})
		volPerms = append(volPerms, ec2types.CreateVolumePermission{UserId: aws.String(acct)})
	}
	if _, err := u.ec2.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{
		ImageId:          img.ImageId,
		LaunchPermission: &ec2types.LaunchPermissionModifications{Add: perms},
	}); err != nil {
		return err
	}
	for _, bdm := range img.BlockDeviceMappings {
		if bdm.Ebs == nil || bdm.Ebs.SnapshotId == nil {
			continue
		}
		if _, err := u.ec2.ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{
			SnapshotId:             bdm.Ebs.SnapshotId,
			Attribute:              ec2types.SnapshotAttributeNameCreateVolumePermission,
			CreateVolumePermission: &ec2types.CreateVolumePermissionModifications{Add: volPerms},
		}); err != nil {
			return err
		}
	}
	return nil
}

// removeStaged deletes the staging object, once imported or when the
// upload failed; the import reads it, so it stays while that runs.
func (u *awsUpload) removeStaged() {
	if !u.staged {
		return
	}
	if err := u.up.remove(u.key); err == nil {
		u.staged = false
	}
}
