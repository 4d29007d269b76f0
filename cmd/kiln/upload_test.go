package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/compose/composetest"
	"github.com/kiln-project/kiln/internal/depsolve"
	"github.com/kiln-project/kiln/internal/distro"
	"github.com/kiln-project/kiln/internal/target"
)

// recordingTarget is an upload type for the tests of the command: it
// checks its options as the aws and azure targets do (12-digit accounts,
// a raw or vhd disk), reads the file it is given and records every
// upload. fail makes Upload fail at its second step; block makes it wait
// for its context to end.
type recordingTarget struct {
	typ   string
	fail  bool
	block bool

	mu      sync.Mutex
	uploads []recordedUpload
	ended   error // the context's error a blocked upload saw
}

type recordedUpload struct {
	artifact target.Artifact
	options  json.RawMessage
	data     []byte
}

type recordingOptions struct {
	ShareWithAccounts []string `json:"share_with_accounts,omitempty"`
	Region            string   `json:"region,omitempty"`
	ResourceGroup     string   `json:"resource_group,omitempty"`
}

var accountID = regexp.MustCompile(`^[0-9]{12}$`)

func (t *recordingTarget) Type() string { return t.typ }

func (t *recordingTarget) Check(img target.Image, options json.RawMessage) error {
	var o recordingOptions
	if err := target.DecodeOptions(options, &o); err != nil {
		return err
	}
	var problems []error
	for i, a := range o.ShareWithAccounts {
		if !accountID.MatchString(a) {
			problems = append(problems, fmt.Errorf("options.share_with_accounts[%d]: %q is not a 12-digit account id", i, a))
		}
	}
	if img.Format != distro.FormatRaw && img.Format != distro.FormatVHD {
		problems = append(problems, fmt.Errorf("image type %s (%s) cannot be imported: use ami or vhd", img.Type, img.Format))
	}
	return errors.Join(problems...)
}

func (t *recordingTarget) Upload(ctx context.Context, a target.Artifact, options json.RawMessage, r target.Reporter) (target.Result, error) {
	data, err := os.ReadFile(a.Path)
	if err != nil {
		return target.Result{}, &target.StepError{Target: t.typ, Step: "upload the disk", Err: err}
	}
	r.Step(target.StepUploading)
	r.Bytes(int64(len(data))/2, int64(len(data)))
	r.Bytes(int64(len(data)), int64(len(data)))
	t.mu.Lock()
	t.uploads = append(t.uploads, recordedUpload{artifact: a, options: options, data: data})
	t.mu.Unlock()
	if t.block {
		<-ctx.Done()
		t.mu.Lock()
		t.ended = ctx.Err()
		t.mu.Unlock()
		return target.Result{}, &target.StepError{Target: t.typ, Step: "import the snapshot", Err: ctx.Err()}
	}
	r.Step(target.StepRegistering)
	if t.fail {
		return target.Result{}, &target.StepError{Target: t.typ, Step: "import the snapshot", Err: errors.New("the service answered 500")}
	}
	return target.Result{AMI: "ami-0123456789abcdef0", Region: "eu-west-1"}, nil
}

func (t *recordingTarget) recorded() []recordedUpload {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]recordedUpload(nil), t.uploads...)
}

// runUploadCLI runs the CLI in-process with the given upload targets,
// packages solved by depsolve.Fake and images built by composetest, and
// ctx as the command's context.
func runUploadCLI(t *testing.T, ctx context.Context, targets target.Registry, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := newRootCommand(&stdout, &stderr)
	if len(args) > 0 && (args[0] == "build" || args[0] == "manifest") {
		args = append(args, fakeMirrors...)
	}
	cmd.SetArgs(append([]string{"--config", emptyConfig(t)}, args...))
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	ctx = context.WithValue(ctx, resolverContextKey{}, depsolve.Resolver(depsolve.Fake{}))
	ctx = context.WithValue(ctx, builderContextKey{}, imageBuilder(&composetest.Builder{Size: 3 << 20}))
	if targets != nil {
		ctx = context.WithValue(ctx, uploadTargetsContextKey{}, targets)
	}
	err := cmd.ExecuteContext(ctx)
	if err != nil {
		printError(&stderr, err)
	}
	return stdout.String(), stderr.String(), err
}

// emptyConfig is a configuration file with nothing in it, so that the
// host's own does not reach the tests.
func emptyConfig(t *testing.T) string {
	return writeConfig(t, "")
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	return p
}

// buildAMI builds a fake ami image with its manifest beside it and
// returns the image's path.
func buildAMI(t *testing.T) string {
	t.Helper()
	out := t.TempDir()
	stdout, stderr, err := runUploadCLI(t, context.Background(), nil, "build", "-b", writeBlueprint(t, "name = \"web\"\n"), "-t", "ami", "--arch", "x86_64", "--distro", "debian-12", "-o", out, "--progress", "none")
	require.NoError(t, err, stderr)
	img := filepath.Join(out, "web-debian-12-x86_64.ami.raw")
	assert.Contains(t, stdout, img)
	return img
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestUploadDeliversTheImageWithItsManifest(t *testing.T) {
	img := buildAMI(t)
	tg := &recordingTarget{typ: "aws"}
	reg := target.New(tg)
	stdout, stderr, err := runUploadCLI(t, context.Background(), reg, "upload", img, "--to", "aws", "--share-with", "123456789012", "--share-with", "210987654321", "--region", "eu-west-1", "--progress", "plain")
	require.NoError(t, err, stderr)
	assert.Equal(t, "uploaded web-debian-12-x86_64.ami.raw to aws:\n  AMI ami-0123456789abcdef0 in region eu-west-1\n", stdout)
	assert.Equal(t, "  computing the image's SHA-256\n  uploading\n  uploading: 50% (1.5 MiB of 3.0 MiB)\n  uploading: 100% (3.0 MiB of 3.0 MiB)\n  registering\n", stderr)

	ups := tg.recorded()
	require.Len(t, ups, 1)
	a := ups[0].artifact
	data, err := os.ReadFile(img)
	require.NoError(t, err)
	assert.Equal(t, data, ups[0].data, "the target read the image")
	assert.Equal(t, img, a.Path)
	assert.Equal(t, "web-debian-12-x86_64.ami.raw", a.Filename)
	assert.Equal(t, "web-debian-12-x86_64", a.Name, "named after the blueprint, distro and arch")
	assert.Equal(t, int64(len(data)), a.Size)
	assert.Equal(t, sha256Hex(data), a.SHA256)
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, a.ComposeID)
	assert.Equal(t, target.Image{Type: "ami", Format: "raw", BootMode: "hybrid", Arch: "x86_64"}, a.Image, "from the manifest beside the image")
	assert.JSONEq(t, `{"share_with_accounts":["123456789012","210987654321"],"region":"eu-west-1"}`, string(ups[0].options))

	// The same upload again is the same upload: a target resumes or
	// reuses what the first made. Another name is another upload.
	_, stderr, err = runUploadCLI(t, context.Background(), reg, "upload", img, "--to", "aws", "--region", "eu-west-1", "--share-with", "123456789012", "--share-with", "210987654321", "--progress", "none")
	require.NoError(t, err, stderr)
	stdout, stderr, err = runUploadCLI(t, context.Background(), reg, "upload", img, "--to", "aws", "--options", `{"share_with_accounts":["123456789012"]}`, "--image-name", "web-prod", "--progress", "none", "--json")
	require.NoError(t, err, stderr)
	ups = tg.recorded()
	require.Len(t, ups, 3)
	assert.Equal(t, a.ComposeID, ups[1].artifact.ComposeID)
	assert.NotEqual(t, a.ComposeID, ups[2].artifact.ComposeID)
	assert.Equal(t, "web-prod", ups[2].artifact.Name)
	assert.JSONEq(t, `{"share_with_accounts":["123456789012"]}`, string(ups[2].options), "--options go to the target as they are")
	assert.JSONEq(t, `{"ami":"ami-0123456789abcdef0","region":"eu-west-1"}`, stdout)
}

func TestUploadProgressAsJSON(t *testing.T) {
	img := buildAMI(t)
	reg := target.New(&recordingTarget{typ: "aws"})
	stdout, stderr, err := runUploadCLI(t, context.Background(), reg, "upload", img, "--to", "aws", "--progress", "json", "--json")
	require.NoError(t, err, stderr)
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.UseNumber()
	var kinds []string
	for dec.More() {
		var e map[string]any
		require.NoError(t, dec.Decode(&e))
		if k, ok := e["kind"].(string); ok {
			kinds = append(kinds, fmt.Sprintf("%s %v %v/%v", k, e["step"], e["done"], e["size"]))
		} else {
			assert.Equal(t, "ami-0123456789abcdef0", e["ami"], "the result comes last")
		}
	}
	assert.Equal(t, []string{
		"upload-step checksum <nil>/<nil>",
		"upload-step uploading <nil>/<nil>",
		fmt.Sprintf("upload-bytes <nil> %d/%d", (3<<20)/2, 3<<20),
		fmt.Sprintf("upload-bytes <nil> %d/%d", 3<<20, 3<<20),
		"upload-step registering <nil>/<nil>",
	}, kinds)
}

func TestUploadOptionFlags(t *testing.T) {
	tests := []struct {
		args []string
		typ  string
		want string // the options, "" for none
	}{
		{[]string{"--to", "aws", "--share-with", "123456789012", "--region", "us-east-1"}, "aws", `{"share_with_accounts":["123456789012"],"region":"us-east-1"}`},
		{[]string{"--to", "gcp", "--share-with", "user:alice@example.com", "--share-with", "domain:example.com"}, "gcp", `{"share_with_accounts":["user:alice@example.com","domain:example.com"]}`},
		{[]string{"--to", "azure", "--resource-group", "images", "--hyper-v-generation", "V2", "--image-name", "web", "--options", `{"tenant_id":"t"}`}, "azure", `{"resource_group":"images","hyper_v_generation":"V2","image_name":"web","tenant_id":"t"}`},
		{[]string{"--to", "registry", "--name", "team/app", "--tag", "1.0"}, "container", `{"name":"team/app","tag":"1.0"}`},
		{[]string{"--to", "container", "--name", "team/app"}, "container", `{"name":"team/app"}`},
		{[]string{"--to", "s3"}, "aws.s3", ""},
		{[]string{"--to", "aws.s3", "--options", "{}"}, "aws.s3", ""},
		{[]string{"--to", "oci"}, "oci.objectstorage", ""},
		{[]string{"--to", "oci.objectstorage"}, "oci.objectstorage", ""},
		{[]string{"--to", "gcp", "--image-name", "web"}, "gcp", ""}, // the name of the image, not an option
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			u := parseUploadFlags(t, tc.args...)
			typ, options, _, err := u.request()
			require.NoError(t, err)
			assert.Equal(t, tc.typ, typ)
			if tc.want == "" {
				assert.Nil(t, options)
			} else {
				assert.JSONEq(t, tc.want, string(options))
			}
		})
	}
}

// parseUploadFlags parses the upload flags as kiln upload registers
// them.
func parseUploadFlags(t *testing.T, args ...string) *uploadFlags {
	t.Helper()
	u := &uploadFlags{}
	u.register(&cobra.Command{Use: "upload"}, "to", "")
	require.NoError(t, u.cmd.ParseFlags(args))
	return u
}

func TestUploadRefusesWhatItCannotDo(t *testing.T) {
	img := buildAMI(t)
	badManifest := filepath.Join(t.TempDir(), "x-debian-12-x86_64.raw")
	require.NoError(t, os.WriteFile(badManifest, make([]byte, 4096), 0o644))
	require.NoError(t, os.WriteFile(strings.TrimSuffix(badManifest, ".raw")+".manifest.json", []byte(`{"version": `), 0o644))
	unknownType := filepath.Join(t.TempDir(), "y-debian-12-x86_64.raw")
	require.NoError(t, os.WriteFile(unknownType, make([]byte, 4096), 0o644))
	require.NoError(t, os.WriteFile(strings.TrimSuffix(unknownType, ".raw")+".manifest.json", []byte(`{"version":"1","target":{"distro":"debian-12","arch":"x86_64","image_type":"floppy","name":"y"},"sources":{"repositories":[],"debs":[]},"pipelines":[],"output":{"pipeline":"x","filename":"y-debian-12-x86_64.raw"}}`), 0o644))
	noise := filepath.Join(t.TempDir(), "noise.img")
	require.NoError(t, os.WriteFile(noise, bytes.Repeat([]byte("kiln"), 1024), 0o644))

	reg := target.New(&recordingTarget{typ: "aws"}, target.Local{}, target.StoreLink{})
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"no type", []string{img}, []string{"--to is required"}},
		{"unknown type", []string{img, "--to", "ftp"}, []string{`--to "ftp": unknown upload type (expected one of aws, aws.s3, azure, container, gcp, oci, oci.objectstorage, registry, s3)`}},
		{"local", []string{img, "--to", "local"}, []string{"--to local: local keeps an image in the service's artifact store and means something only to kiln serve"}},
		{"s3 without a bucket", []string{img, "--to", "s3"}, []string{"--to s3 (aws.s3): with no bucket configured, aws.s3 is the service's download link", "[targets.s3]"}},
		{"not configured", []string{img, "--to", "azure", "--resource-group", "rg"}, []string{"--to azure: upload type azure is not configured: add a [targets.azure] section", "docs/targets/azure.md"}},
		{"registry not configured", []string{img, "--to", "registry", "--name", "a/b"}, []string{"--to registry (container): upload type container is not configured: add a [targets.registry] section"}},
		{"a flag the type does not take", []string{img, "--to", "aws", "--resource-group", "rg", "--tag", "1"}, []string{
			"--resource-group: upload type aws does not take it (it takes --share-with, --region, --image-name)",
			"--tag: upload type aws does not take it (it takes --share-with, --region, --image-name)",
		}},
		{"image name for a bucket", []string{img, "--to", "oci", "--image-name", "x"}, []string{"--image-name: upload type oci.objectstorage does not take it (it takes none of the option flags)"}},
		{"bad JSON", []string{img, "--to", "aws", "--options", `{"region":`}, []string{`--options: must be a JSON object such as '{"share_with_accounts":["123456789012"]}' (unexpected end of JSON input)`}},
		{"options not an object", []string{img, "--to", "aws", "--options", `["eu-west-1"]`}, []string{"--options: must be a JSON object", "cannot unmarshal array"}},
		{"a flag and --options both", []string{img, "--to", "aws", "--region", "a", "--options", `{"region":"b"}`}, []string{"--region: --options sets region too; give it once"}},
		{"every problem at once", []string{img, "--to", "local", "--options", "[", "--name", "x"}, []string{"--to local:", "--options: must be a JSON object"}},
		{"the target's check names the flag", []string{img, "--to", "aws", "--share-with", "123456789012", "--share-with", "alice"}, []string{`--share-with: "alice" is not a 12-digit account id`}},
		{"the target's check names the option", []string{img, "--to", "aws", "--options", `{"share_with_accounts":["bob"],"regoin":"x"}`}, []string{"--options: options.regoin: unknown option (this upload type takes region, resource_group, share_with_accounts)"}},
		{"an option of the wrong type", []string{img, "--to", "aws", "--options", `{"region":7}`}, []string{"--options: options.region: must be a JSON string, not number"}},
		{"an image the target does not take", []string{img, "--to", "aws", "--image-type", "qcow2"}, []string{"aws: image type qcow2 (qcow2) cannot be imported: use ami or vhd"}},
		{"a manifest that cannot be read", []string{badManifest, "--to", "aws"}, []string{"the manifest beside the image, " + strings.TrimSuffix(badManifest, ".raw") + ".manifest.json, cannot be read", "pass --image-type"}},
		{"a manifest of an unknown type", []string{unknownType, "--to", "aws"}, []string{`--image-type: unknown image type "floppy" for debian-12 x86_64`}},
		{"an unknown --image-type", []string{img, "--to", "aws", "--image-type", "qcow3"}, []string{`--image-type: unknown image type "qcow3"`, `did you mean "qcow2"?`}},
		{"an unknown --arch", []string{noise, "--to", "aws", "--image-type", "ami", "--arch", "sparc"}, []string{`--arch: unknown architecture "sparc" for debian-12`}},
		{"a file that cannot be recognised", []string{noise, "--to", "aws"}, []string{noise + " has no manifest beside it", "what it is cannot be told", "pass --image-type"}},
		{"no such file", []string{filepath.Join(t.TempDir(), "nope.raw"), "--to", "aws"}, []string{"nope.raw: no such file or directory"}},
		{"a bad --progress", []string{img, "--to", "aws", "--progress", "loud"}, []string{`--progress "loud": expected auto, plain, json or none`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, err := runUploadCLI(t, context.Background(), reg, append([]string{"upload"}, tc.args...)...)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, stderr, w)
			}
		})
	}
	assert.Empty(t, reg["aws"].(*recordingTarget).recorded(), "nothing was uploaded")
}

func TestUploadTimesOutAndCancels(t *testing.T) {
	img := buildAMI(t)
	tg := &recordingTarget{typ: "aws", block: true}
	var stdout, stderr bytes.Buffer
	cmd := newRootCommand(&stdout, &stderr)
	cmd.SetArgs([]string{"--config", writeConfig(t, "[targets]\ntimeout = \"200ms\"\n"), "upload", img, "--to", "aws", "--progress", "none"})
	err := cmd.ExecuteContext(context.WithValue(context.Background(), uploadTargetsContextKey{}, target.New(tg)))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the upload took longer than its timeout of 200ms (timeout in the [targets] section of the configuration file): aws: import the snapshot: context deadline exceeded")
	assert.ErrorIs(t, tg.ended, context.DeadlineExceeded, "the target saw its context end")

	tg = &recordingTarget{typ: "aws", block: true}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for len(tg.recorded()) == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		cancel() // as Ctrl-C does
	}()
	_, stderr2, err := runUploadCLI(t, ctx, target.New(tg), "upload", img, "--to", "aws", "--progress", "none")
	require.Error(t, err)
	assert.Contains(t, stderr2, "the upload was canceled: aws: import the snapshot: context canceled")
	assert.ErrorIs(t, tg.ended, context.Canceled)
}

func TestBuildUpload(t *testing.T) {
	tg := &recordingTarget{typ: "aws"}
	out := t.TempDir()
	stdout, stderr, err := runUploadCLI(t, context.Background(), target.New(tg), "build", "-b", writeBlueprint(t, "name = \"web\"\n"), "-t", "ami", "--arch", "x86_64", "--distro", "debian-12", "-o", out, "--progress", "plain", "--upload", "aws", "--share-with", "123456789012")
	require.NoError(t, err, stderr)
	img := filepath.Join(out, "web-debian-12-x86_64.ami.raw")
	assert.Contains(t, stdout, img+"\n")
	assert.Contains(t, stdout, "uploaded web-debian-12-x86_64.ami.raw to aws:\n  AMI ami-0123456789abcdef0 in region eu-west-1\n")
	assert.Contains(t, stderr, "  uploading: 100% (3.0 MiB of 3.0 MiB)\n")
	ups := tg.recorded()
	require.Len(t, ups, 1)
	data, err := os.ReadFile(img)
	require.NoError(t, err)
	assert.Equal(t, data, ups[0].data)
	assert.Equal(t, "web-debian-12-x86_64", ups[0].artifact.Name)
	assert.Equal(t, target.Image{Type: "ami", Format: "raw", BootMode: "hybrid", Arch: "x86_64"}, ups[0].artifact.Image)
	assert.JSONEq(t, `{"share_with_accounts":["123456789012"]}`, string(ups[0].options))

	// kiln upload of what the build wrote is the same upload.
	_, stderr, err = runUploadCLI(t, context.Background(), target.New(tg), "upload", img, "--to", "aws", "--share-with", "123456789012", "--progress", "none")
	require.NoError(t, err, stderr)
	require.Len(t, tg.recorded(), 2)
	assert.Equal(t, ups[0].artifact.ComposeID, tg.recorded()[1].artifact.ComposeID)
}

func TestBuildUploadFailureKeepsTheImage(t *testing.T) {
	tg := &recordingTarget{typ: "aws", fail: true}
	out := t.TempDir()
	_, stderr, err := runUploadCLI(t, context.Background(), target.New(tg), "build", "-b", writeBlueprint(t, "name = \"web\"\n"), "-t", "ami", "--arch", "x86_64", "--distro", "debian-12", "-o", out, "--progress", "none", "--upload", "aws", "--share-with", "123456789012", "--options", `{"region":"eu-north-1"}`)
	require.Error(t, err)
	img := filepath.Join(out, "web-debian-12-x86_64.ami.raw")
	assert.Contains(t, stderr, "aws: import the snapshot: the service answered 500\n")
	assert.Contains(t, stderr, "the image is built and kept: "+img+"\n")
	assert.Regexp(t, `to try the upload again: kiln --config \S+ upload `+regexp.QuoteMeta(img)+` --to aws --options '\{"region":"eu-north-1"\}' --share-with 123456789012\n`, stderr)
	_, err = os.Stat(img)
	assert.NoError(t, err, "the image is kept")
}

func TestBuildUploadChecksBeforeBuilding(t *testing.T) {
	tg := &recordingTarget{typ: "aws"}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-t", "ami", "--upload", "aws", "--share-with", "alice"}, `--share-with: "alice" is not a 12-digit account id`},
		{[]string{"-t", "qcow2", "--upload", "aws"}, "aws: image type qcow2 (qcow2) cannot be imported: use ami or vhd"},
		{[]string{"-t", "ami", "--upload", "local"}, "--upload local: local keeps an image in the service's artifact store"},
		{[]string{"-t", "ami", "--upload", "gcp"}, "--upload gcp: upload type gcp is not configured"},
		{[]string{"-t", "ami", "--upload", "aws", "--tag", "x"}, "--tag: upload type aws does not take it"},
		{[]string{"-t", "ami", "--share-with", "123456789012", "--region", "x"}, "--share-with, --region: says how to upload the image, but --upload does not say where"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out := t.TempDir()
			args := append([]string{"build", "-b", writeBlueprint(t, "name = \"web\"\n"), "--arch", "x86_64", "-o", out, "--progress", "none"}, tc.args...)
			_, stderr, err := runUploadCLI(t, context.Background(), target.New(tg), args...)
			require.Error(t, err)
			assert.Contains(t, stderr, tc.want)
			entries, _ := os.ReadDir(out)
			assert.Empty(t, entries, "nothing was built")
		})
	}
	assert.Empty(t, tg.recorded())
}

// Disks for the recognition tests: 512-byte sectors, partition tables
// written by hand.

// gptDisk is the first 64 KiB of a disk with a GPT holding partitions of
// the given type GUIDs (as stored).
func gptDisk(types ...[]byte) []byte {
	d := make([]byte, 64<<10)
	d[446+4] = 0xee // protective MBR
	d[510], d[511] = 0x55, 0xaa
	h := d[512:]
	copy(h, "EFI PART")
	binary.LittleEndian.PutUint64(h[72:], 2)   // entries at LBA 2
	binary.LittleEndian.PutUint32(h[80:], 128) // 128 entries
	binary.LittleEndian.PutUint32(h[84:], 128) // of 128 bytes
	for i, t := range types {
		copy(d[1024+i*128:], t)
	}
	return d
}

// mbrDisk is a DOS-partitioned disk: with boot code and an active
// partition, or with an EFI system partition.
func mbrDisk(bootCode bool, partType byte) []byte {
	d := make([]byte, 64<<10)
	if bootCode {
		copy(d, []byte{0xeb, 0x63, 0x90})
		d[446] = 0x80
	}
	d[446+4] = partType
	d[510], d[511] = 0x55, 0xaa
	return d
}

// qcow2Of is a qcow2 (version 3, 64 KiB clusters) whose first cluster is
// disk: header, L1 table, L2 table, data.
func qcow2Of(disk []byte) []byte {
	const cluster = 64 << 10
	f := make([]byte, 4*cluster)
	copy(f, "QFI\xfb")
	binary.BigEndian.PutUint32(f[4:], 3)
	binary.BigEndian.PutUint32(f[20:], 16)                // cluster bits
	binary.BigEndian.PutUint64(f[24:], uint64(len(disk))) // virtual size
	binary.BigEndian.PutUint32(f[36:], 1)                 // L1 entries
	binary.BigEndian.PutUint64(f[40:], cluster)           // L1 table
	binary.BigEndian.PutUint64(f[cluster:], 2*cluster|1<<63)
	binary.BigEndian.PutUint64(f[2*cluster:], 3*cluster|1<<63)
	copy(f[3*cluster:], disk)
	return f
}

// vhdOf is a fixed VHD: the disk and a footer.
func vhdOf(disk []byte) []byte {
	footer := make([]byte, 512)
	copy(footer, "conectix")
	binary.BigEndian.PutUint32(footer[60:], 2) // fixed
	return append(append([]byte{}, disk...), footer...)
}

func tarOf(t *testing.T, files map[string][]byte, order ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range order {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg}))
		_, err := tw.Write(files[name])
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

func gzipOf(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(b)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func TestRecogniseImage(t *testing.T) {
	hybrid := gptDisk(espGUID, biosBootGUID, make([]byte, 16))
	uefi := gptDisk(espGUID)
	iso := make([]byte, 0x9000)
	copy(iso[0x8001:], "CD001")
	tests := []struct {
		name string
		data []byte
		want target.Image
	}{
		{"disk.raw", hybrid, target.Image{Type: "raw", Format: "raw", BootMode: "hybrid"}},
		{"uefi.img", uefi, target.Image{Type: "raw", Format: "raw", BootMode: "uefi"}},
		{"bios.img", gptDisk(biosBootGUID), target.Image{Type: "raw", Format: "raw", BootMode: "bios"}},
		{"dos.img", mbrDisk(true, 0x83), target.Image{Type: "raw", Format: "raw", BootMode: "bios"}},
		{"dos-esp.img", mbrDisk(false, 0xef), target.Image{Type: "raw", Format: "raw", BootMode: "uefi"}},
		{"data.img", mbrDisk(false, 0x83), target.Image{Type: "raw", Format: "raw", BootMode: "none"}},
		{"x.qcow2", qcow2Of(uefi), target.Image{Type: "qcow2", Format: "qcow2", BootMode: "uefi"}},
		{"x.vhd", vhdOf(hybrid), target.Image{Type: "vhd", Format: "vhd", BootMode: "hybrid"}},
		{"x.tar.gz", gzipOf(t, tarOf(t, map[string][]byte{"disk.raw": uefi}, "disk.raw")), target.Image{Type: "gce", Format: "disk-tar", Compression: "gzip", BootMode: "uefi"}},
		{"root.tar.gz", gzipOf(t, tarOf(t, map[string][]byte{"etc/hostname": []byte("x\n")}, "etc/hostname")), target.Image{Type: "tar", Format: "tar", Compression: "gzip", BootMode: "none"}},
		{"app.oci.tar", tarOf(t, map[string][]byte{"oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`), "index.json": []byte(`{}`), "blobs/sha256/ab": []byte("x")}, "oci-layout", "blobs/sha256/ab", "index.json"), target.Image{Type: "container", Format: "oci", BootMode: "none"}},
		{"x.ova", tarOf(t, map[string][]byte{"x.ovf": []byte(`<Envelope><vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="efi"/></Envelope>`), "x.mf": []byte("SHA256(x.ovf)= 00\n"), "x-disk1.vmdk": []byte("KDMV")}, "x.ovf", "x.mf", "x-disk1.vmdk"), target.Image{Type: "ova", Format: "ova", BootMode: "uefi"}},
		{"root.tar", tarOf(t, map[string][]byte{"etc/hostname": []byte("x\n")}, "etc/hostname"), target.Image{Type: "tar", Format: "tar", BootMode: "none"}},
		{"root.tar.xz", []byte("\xfd7zXZ\x00rest"), target.Image{Type: "tar", Format: "tar", Compression: "xz", BootMode: "none"}},
		{"x.iso", iso, target.Image{Type: "live-iso", Format: "iso", BootMode: "none"}},
	}
	dir := t.TempDir()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			require.NoError(t, os.WriteFile(p, tc.data, 0o644))
			got, err := recogniseImage(p)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}

	refused := []struct {
		name string
		data []byte
		want string
	}{
		{"noise.img", bytes.Repeat([]byte{1, 2, 3, 4}, 1024), "what it is cannot be told: it is not a qcow2, a VHD, a tar archive (plain or gzip), an OCI archive, an OVA, an ISO or a raw disk with a partition table"},
		{"dynamic.vhd", append([]byte("conectix"), make([]byte, 1024)...), "it is a dynamic VHD, which clouds do not import: convert it to a fixed one"},
		{"bare.ova", tarOf(t, map[string][]byte{"x.ovf": []byte("<Envelope/>")}, "x.ovf"), "it is an OVA whose descriptor names no firmware, so how it boots cannot be told"},
		{"x.vmdk", append([]byte("KDMV"), make([]byte, 1024)...), "it is a VMDK, and how it boots cannot be told"},
		{"disk.raw.xz", []byte("\xfd7zXZ\x00rest"), "it is a xz-compressed raw disk, and how it boots cannot be told without unpacking it"},
		{"image.zst", []byte{0x28, 0xb5, 0x2f, 0xfd, 0}, "it is zstd-compressed, and whether it holds a tar archive or a disk cannot be told from its name"},
		{"broken.gz", []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3}, "it is gzip-compressed but holds no tar archive that can be read"},
		{"x.vhd", vhdOf(make([]byte, 4096)), "it is a vhd, but how it boots cannot be told: it has no partition table"},
		{"broken.qcow2", []byte("QFI\xfb\x00\x00\x00\x03"), "it is a qcow2, but its first sectors cannot be read"},
		{"half-gpt.img", func() []byte { d := gptDisk(espGUID); copy(d[512:], "NOT GPT!"); return d }(), "it is a raw, but how it boots cannot be told: its protective MBR is not followed by a GPT header"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			require.NoError(t, os.WriteFile(p, tc.data, 0o644))
			_, err := recogniseImage(p)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestUploadRecognisesAnImageWithoutItsManifest(t *testing.T) {
	p := filepath.Join(t.TempDir(), "disk.vhd")
	require.NoError(t, os.WriteFile(p, vhdOf(gptDisk(espGUID, biosBootGUID)), 0o644))
	tg := &recordingTarget{typ: "azure"}
	_, stderr, err := runUploadCLI(t, context.Background(), target.New(tg), "upload", p, "--to", "azure", "--resource-group", "rg", "--progress", "none")
	require.NoError(t, err, stderr)
	assert.Equal(t, "kiln: no manifest beside the image: recognised it as a vhd that boots with BIOS and UEFI, kiln type vhd; architecture taken to be "+hostArch()+", this host's (pass --arch to change)\n", stderr)
	ups := tg.recorded()
	require.Len(t, ups, 1)
	assert.Equal(t, target.Image{Type: "vhd", Format: "vhd", BootMode: "hybrid", Arch: hostArch()}, ups[0].artifact.Image)
	assert.Equal(t, "disk", ups[0].artifact.Name)

	// --image-type and --arch say it outright.
	_, stderr, err = runUploadCLI(t, context.Background(), target.New(tg), "upload", p, "--to", "azure", "--resource-group", "rg", "--image-type", "azure", "--arch", "aarch64", "--progress", "none")
	require.NoError(t, err, stderr)
	assert.Empty(t, stderr)
	assert.Equal(t, target.Image{Type: "vhd", Format: "vhd", BootMode: "uefi", Arch: "aarch64"}, tg.recorded()[1].artifact.Image, "aarch64's vhd boots with UEFI only")
}

func TestUploadLiveProgressLine(t *testing.T) {
	var buf bytes.Buffer
	r := &textUploadReporter{w: &buf, live: true, lastPct: -1}
	r.Step(target.StepUploading)
	r.Bytes(1<<20, 4<<20)
	r.Bytes(2<<20, 4<<20) // within 100ms of the last draw: not drawn
	r.Bytes(4<<20, 4<<20) // the end is always drawn
	r.Step(target.StepRegistering)
	r.finish()
	assert.Equal(t, "\r  uploading ..."+
		"\r  uploading [#####               ]  25% 1.0 MiB/4.0 MiB"+
		"\r  uploading [####################] 100% 4.0 MiB/4.0 MiB\n"+
		"\r  registering ...\n", buf.String())
}
