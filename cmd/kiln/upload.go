package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/compose"
	"github.com/kiln-project/kiln/internal/distro"
	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/manifest"
	"github.com/kiln-project/kiln/internal/ociindex"
	"github.com/kiln-project/kiln/internal/target"
)

// uploadTypeNames maps what --to and --upload take to the API's upload
// types: the API's own names, and the short ones.
var uploadTypeNames = map[string]string{
	"aws":               "aws",
	"aws.s3":            "aws.s3",
	"s3":                "aws.s3",
	"gcp":               "gcp",
	"azure":             "azure",
	"oci.objectstorage": "oci.objectstorage",
	"oci":               "oci.objectstorage",
	"container":         "container",
	"registry":          "container",
	"local":             "local",
}

// uploadSections are the [targets.*] sections each upload type is set up
// in (see target.Config).
var uploadSections = map[string]string{
	"aws": "aws", "aws.s3": "s3", "gcp": "gcp", "azure": "azure", "oci.objectstorage": "oci", "container": "registry",
}

// optionFlag is a convenience flag that sets one field of the upload
// request's options, for the upload types that take that field.
type optionFlag struct {
	flag   string
	option string
	types  []string
	usage  string
}

// optionFlags are the convenience flags, in the order they are checked.
var optionFlags = []optionFlag{
	{"share-with", "share_with_accounts", []string{"aws", "gcp"}, "share the image with this account (repeatable; aws: a 12-digit account id, gcp: user:, serviceAccount:, group: or domain:)"},
	{"region", "region", []string{"aws"}, "the region to register the AMI in (aws; default: the configuration's)"},
	{"resource-group", "resource_group", []string{"azure"}, "the resource group the managed image is made in (azure)"},
	{"hyper-v-generation", "hyper_v_generation", []string{"azure"}, "V1 (BIOS) or V2 (UEFI) (azure; default V1)"},
	{"name", "name", []string{"container"}, "the repository to push to, e.g. team/app (registry)"},
	{"tag", "tag", []string{"container"}, "the tag to push (registry; default latest)"},
}

// imageNameTypes are the upload types --image-name applies to: the name
// of the AMI or cloud image they make (azure also takes it as its
// image_name option).
var imageNameTypes = []string{"aws", "gcp", "azure"}

// uploadFlags are the flags that say where an image goes: --to (or
// --upload for build), --options and the convenience flags. kiln upload
// and kiln build --upload share them.
type uploadFlags struct {
	typeFlag  string // "to" or "upload"
	to        string
	options   string
	shareWith []string
	values    map[string]*string // by flag name, the single-valued convenience flags
	imageName string
	cmd       *cobra.Command
}

func (u *uploadFlags) register(cmd *cobra.Command, typeFlag, typeUsage string) {
	u.typeFlag, u.cmd = typeFlag, cmd
	u.values = map[string]*string{}
	cmd.Flags().StringVar(&u.to, typeFlag, "", typeUsage)
	cmd.Flags().StringVar(&u.options, "options", "", "the upload request's options as JSON, exactly as the API's upload_request.options")
	for _, of := range optionFlags {
		if of.flag == "share-with" {
			cmd.Flags().StringArrayVar(&u.shareWith, of.flag, nil, of.usage)
			continue
		}
		v := new(string)
		u.values[of.flag] = v
		cmd.Flags().StringVar(v, of.flag, "", of.usage)
	}
	cmd.Flags().StringVar(&u.imageName, "image-name", "", "the name of the image the cloud makes (aws, gcp, azure; default: the image file's name)")
	_ = cmd.RegisterFlagCompletionFunc(typeFlag, func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"aws", "gcp", "azure", "s3", "registry", "oci"}, cobra.ShellCompDirectiveNoFileComp
	})
}

// changed reports whether the flag was given on the command line.
func (u *uploadFlags) changed(flag string) bool {
	return u.cmd.Flags().Changed(flag)
}

// uploadType is the API's upload type --to names.
func (u *uploadFlags) uploadType() (string, error) {
	typ, ok := uploadTypeNames[u.to]
	if !ok {
		names := make([]string, 0, len(uploadTypeNames))
		for n := range uploadTypeNames {
			if n != "local" {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		return "", fmt.Errorf("--%s %q: unknown upload type (expected one of %s)", u.typeFlag, u.to, strings.Join(names, ", "))
	}
	if typ == "local" {
		return "", fmt.Errorf("--%s local: local keeps an image in the service's artifact store and means something only to kiln serve; a local build is on disk already", u.typeFlag)
	}
	return typ, nil
}

// request works out the upload type and its options from the flags,
// collecting every problem. fromFlag maps each option field a convenience
// flag set to that flag.
func (u *uploadFlags) request() (typ string, options json.RawMessage, fromFlag map[string]string, err error) {
	var problems []error
	typ, err = u.uploadType()
	if err != nil {
		problems = append(problems, err)
	}
	opts := map[string]json.RawMessage{}
	if strings.TrimSpace(u.options) != "" {
		if err := json.Unmarshal([]byte(u.options), &opts); err != nil || opts == nil {
			why := "not a JSON object"
			if err != nil {
				why = err.Error()
			}
			problems = append(problems, fmt.Errorf("--options: must be a JSON object such as '{\"share_with_accounts\":[\"123456789012\"]}' (%s)", why))
			opts = map[string]json.RawMessage{}
		}
	}
	fromFlag = map[string]string{}
	for _, of := range optionFlags {
		if !u.changed(of.flag) {
			continue
		}
		if typ != "" && !slices.Contains(of.types, typ) {
			problems = append(problems, fmt.Errorf("--%s: upload type %s does not take it (%s)", of.flag, typ, flagsOf(typ)))
			continue
		}
		if _, dup := opts[of.option]; dup {
			problems = append(problems, fmt.Errorf("--%s: --options sets %s too; give it once", of.flag, of.option))
			continue
		}
		var v any = u.shareWith
		if of.flag != "share-with" {
			v = *u.values[of.flag]
		}
		b, _ := json.Marshal(v)
		opts[of.option] = b
		fromFlag[of.option] = "--" + of.flag
	}
	if u.changed("image-name") {
		switch {
		case typ != "" && !slices.Contains(imageNameTypes, typ):
			problems = append(problems, fmt.Errorf("--image-name: upload type %s does not take it (%s)", typ, flagsOf(typ)))
		case typ == "azure":
			if _, dup := opts["image_name"]; dup {
				problems = append(problems, fmt.Errorf("--image-name: --options sets image_name too; give it once"))
				break
			}
			b, _ := json.Marshal(u.imageName)
			opts["image_name"] = b
			fromFlag["image_name"] = "--image-name"
		}
	}
	if len(problems) > 0 {
		return "", nil, nil, errors.Join(problems...)
	}
	if len(opts) == 0 {
		return typ, nil, fromFlag, nil
	}
	options, err = json.Marshal(opts)
	return typ, options, fromFlag, err
}

// flagsOf says which convenience flags an upload type takes.
func flagsOf(typ string) string {
	var flags []string
	for _, of := range optionFlags {
		if slices.Contains(of.types, typ) {
			flags = append(flags, "--"+of.flag)
		}
	}
	if slices.Contains(imageNameTypes, typ) {
		flags = append(flags, "--image-name")
	}
	if len(flags) == 0 {
		return "it takes none of the option flags"
	}
	return "it takes " + strings.Join(flags, ", ")
}

// commandLine gives back the upload flags that were set, to show how to
// run the same upload again.
func (u *uploadFlags) commandLine() []string {
	args := []string{"--to", u.to}
	if u.options != "" {
		args = append(args, "--options", shellQuote(u.options))
	}
	for _, of := range optionFlags {
		if !u.changed(of.flag) {
			continue
		}
		if of.flag == "share-with" {
			for _, s := range u.shareWith {
				args = append(args, "--share-with", shellQuote(s))
			}
			continue
		}
		args = append(args, "--"+of.flag, shellQuote(*u.values[of.flag]))
	}
	if u.changed("image-name") {
		args = append(args, "--image-name", shellQuote(u.imageName))
	}
	return args
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.,:/@=+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// uploadTargetsContextKey is the context key of a target registry that
// replaces the one the configuration gives (how tests deliver without a
// cloud).
type uploadTargetsContextKey struct{}

// uploadTargets are the configured upload targets, or those the command's
// context carries under uploadTargetsContextKey.
func (a *app) uploadTargets(ctx context.Context) (target.Registry, error) {
	if r, ok := ctx.Value(uploadTargetsContextKey{}).(target.Registry); ok {
		return r, nil
	}
	reg, err := target.Build(a.cfg.Targets, os.Getenv, "")
	if err != nil {
		return nil, fmt.Errorf("the configuration's targets: %w", err)
	}
	return reg, nil
}

// uploadTarget finds the target of an upload type for an image on this
// machine, refusing those that mean something only inside the service.
// given is what the flag said (a short name or the type).
func (a *app) uploadTarget(ctx context.Context, flag, given, typ string) (target.Target, error) {
	reg, err := a.uploadTargets(ctx)
	if err != nil {
		return nil, err
	}
	said := given
	if given != typ {
		said = fmt.Sprintf("%s (%s)", given, typ)
	}
	tg, ok := reg[typ]
	if !ok {
		return nil, fmt.Errorf("--%s %s: upload type %s is not configured: add a [targets.%s] section to the configuration file (--config; see docs/targets/%s.md)", flag, said, typ, uploadSections[typ], typ)
	}
	if !target.WantsFile(tg) {
		return nil, fmt.Errorf("--%s %s: with no bucket configured, %s is the service's download link and means something only to kiln serve; to upload to a bucket, add a [targets.%s] section with its bucket to the configuration file", flag, said, typ, uploadSections[typ])
	}
	return tg, nil
}

// checkUpload runs the target's checks on the image and options, naming
// the flag each problem came from.
func checkUpload(tg target.Target, img target.Image, options json.RawMessage, fromFlag map[string]string) error {
	err := tg.Check(img, options)
	if err == nil {
		return nil
	}
	var lines []string
	for _, line := range strings.Split(err.Error(), "\n") {
		field, msg, ok := strings.Cut(line, ": ")
		name, _, _ := strings.Cut(strings.TrimPrefix(field, "options."), "[")
		switch {
		case !ok || !strings.HasPrefix(field, "options"):
			lines = append(lines, fmt.Sprintf("%s: %s", tg.Type(), line))
		case fromFlag[name] != "":
			lines = append(lines, fmt.Sprintf("%s: %s", fromFlag[name], msg))
		default:
			lines = append(lines, "--options: "+line)
		}
	}
	return errors.New(strings.Join(lines, "\n"))
}

// imageFlags say what an image is when its manifest does not.
type imageFlags struct {
	imageType string
	arch      string
}

// localImage is an image file on this machine and what it is.
type localImage struct {
	image target.Image
	// name is the default name of what a target makes of it: the file's
	// name without its extensions (<name>-<distro>-<arch>).
	name string
	// notes are said to the user: what was guessed.
	notes []string
}

// describeImage works out what the image file at path is: from the
// manifest the build wrote beside it, else by recognising the file.
// --image-type and --arch override.
func (a *app) describeImage(path string, f imageFlags) (*localImage, error) {
	files := compose.OutputFiles(filepath.Dir(path), filepath.Base(path))
	name, _, _ := strings.Cut(filepath.Base(path), ".")
	b, err := os.ReadFile(files.Manifest)
	switch {
	case err == nil:
		m, err := manifest.Parse(b)
		if err != nil {
			return nil, fmt.Errorf("the manifest beside the image, %s, cannot be read: %w (pass --image-type to say what the image is)", files.Manifest, err)
		}
		typ, arch := m.Target.ImageType, m.Target.Arch
		if f.imageType != "" {
			typ = f.imageType
		}
		if f.arch != "" {
			arch = f.arch
		}
		img, err := a.imageOfType(m.Target.Distro, arch, typ)
		if err != nil {
			return nil, fmt.Errorf("the manifest beside the image, %s: %w", files.Manifest, err)
		}
		return &localImage{image: img, name: cmp.Or(imageStem(m), name)}, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("the manifest beside the image, %s, cannot be read: %w (pass --image-type to say what the image is)", files.Manifest, err)
	}
	arch := f.arch
	if arch == "" {
		arch = hostArch()
	}
	if f.imageType != "" {
		img, err := a.imageOfType(defaultDistro, arch, f.imageType)
		if err != nil {
			return nil, err
		}
		return &localImage{image: img, name: name}, nil
	}
	img, err := recogniseImage(path)
	if err != nil {
		return nil, fmt.Errorf("%s has no manifest beside it (%s) and %w: pass --image-type", path, files.Manifest, err)
	}
	img.Arch = arch
	note := fmt.Sprintf("no manifest beside the image: recognised it as %s", describeRecognised(img))
	if img.Format == distro.FormatOCI {
		// A multi-architecture archive (kiln build --arch a,b) is no one
		// architecture's.
		if platforms, _ := ociindex.Platforms(path); len(platforms) > 0 {
			names := make([]string, len(platforms))
			for i, p := range platforms {
				names[i] = p.String()
			}
			note = fmt.Sprintf("no manifest beside the image: recognised it as a multi-architecture OCI archive (%s), kiln type %s", strings.Join(names, ", "), img.Type)
			return &localImage{image: img, name: name, notes: []string{note}}, nil
		}
	}
	if f.arch == "" {
		note += fmt.Sprintf("; architecture taken to be %s, this host's (pass --arch to change)", arch)
	}
	return &localImage{image: img, name: name, notes: []string{note}}, nil
}

// imageStem is the name of an image's files without their extensions,
// <name>-<distro>-<arch>, as a build names them ("" when the manifest
// has no name).
func imageStem(m *manifest.Manifest) string {
	if m.Target.Name == "" {
		return ""
	}
	return fmt.Sprintf("%s-%s-%s", m.Target.Name, m.Target.Distro, m.Target.Arch)
}

// imageOfType is what a target needs to know of an image type: the same
// facts the API gives targets when a compose is submitted.
func (a *app) imageOfType(distroName, arch, typ string) (target.Image, error) {
	d, err := a.registry.Distro(distroName)
	if err != nil {
		return target.Image{}, err
	}
	ar, err := d.Arch(arch)
	if err != nil {
		return target.Image{}, fmt.Errorf("--arch: %w", err)
	}
	it, err := ar.ImageType(typ)
	if err != nil {
		return target.Image{}, fmt.Errorf("--image-type: %w", err)
	}
	boot := it.Bootloader
	if boot == "" || !it.Bootable {
		boot = distro.BootNone
	}
	return target.Image{Type: it.Name, Format: it.Output.Format, Compression: it.Output.Compression, BootMode: boot, Arch: ar.Name}, nil
}

func describeRecognised(img target.Image) string {
	s := "a " + img.Format
	if img.Compression != "" {
		s += " (" + img.Compression + ")"
	}
	switch img.BootMode {
	case distro.BootNone:
	case distro.BootHybrid:
		s += " that boots with BIOS and UEFI"
	default:
		s += " that boots with " + strings.ToUpper(img.BootMode)
	}
	return s + ", kiln type " + img.Type
}

// uploadID names one upload of a local image the way a compose id names
// one of the service's: targets name what they make after it, and find
// what an interrupted attempt left. It is drawn from the image's digest,
// the upload type, the name and the options, so running the same upload
// again resumes or reuses what the first run made, and never makes a
// second copy; a different name or options make a new upload.
func uploadID(sha, typ, name string, options json.RawMessage) string {
	h := sha256.Sum256([]byte(strings.Join([]string{sha, typ, name, string(options)}, "\x00")))
	h[6] = h[6]&0x0f | 0x80 // version 8: a custom UUID
	h[8] = h[8]&0x3f | 0x80 // RFC 4122 variant
	x := hex.EncodeToString(h[:16])
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}

// hashImage is the image file's SHA-256 and size.
func hashImage(ctx context.Context, path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, readerWithContext{ctx, f})
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// readerWithContext stops reading when ctx ends (Ctrl-C while a big
// image is hashed).
type readerWithContext struct {
	ctx context.Context
	r   io.Reader
}

func (r readerWithContext) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// pendingUpload is an upload checked and ready to run.
type pendingUpload struct {
	typ      string
	target   target.Target
	options  json.RawMessage
	fromFlag map[string]string
	image    target.Image
}

// prepareUpload reads the flags and finds the target; the image is
// checked separately (checkUpload), once it is known.
func (a *app) prepareUpload(ctx context.Context, u *uploadFlags) (*pendingUpload, error) {
	typ, options, fromFlag, err := u.request()
	if err != nil {
		return nil, err
	}
	tg, err := a.uploadTarget(ctx, u.typeFlag, u.to, typ)
	if err != nil {
		return nil, err
	}
	return &pendingUpload{typ: typ, target: tg, options: options, fromFlag: fromFlag}, nil
}

// runUpload delivers the image at path, within the configured timeout,
// reporting progress in the given mode ("auto", "plain", "json", "none").
// name is what the target names what it makes.
func (a *app) runUpload(ctx context.Context, p *pendingUpload, path, name, progress string) (target.Result, error) {
	rep, finish, err := a.uploadReporter(progress)
	if err != nil {
		return target.Result{}, err
	}
	defer finish()
	timeout := a.cfg.Targets.TimeoutOf()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	abs, err := filepath.Abs(path)
	if err != nil {
		return target.Result{}, err
	}
	rep.Step(stepChecksum)
	sha, size, err := hashImage(ctx, abs)
	if err != nil {
		return target.Result{}, uploadContextError(ctx, timeout, fmt.Errorf("reading %s: %w", path, err))
	}
	art := target.Artifact{
		ComposeID: uploadID(sha, p.typ, name, p.options),
		Name:      name,
		Filename:  filepath.Base(abs),
		Path:      abs,
		Size:      size,
		SHA256:    sha,
		Image:     p.image,
	}
	res, err := p.target.Upload(ctx, art, p.options, rep)
	if err != nil {
		return target.Result{}, uploadContextError(ctx, timeout, err)
	}
	return res, nil
}

// uploadContextError says why an upload stopped when its context ended.
func uploadContextError(ctx context.Context, timeout time.Duration, err error) error {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("the upload took longer than its timeout of %s (timeout in the [targets] section of the configuration file): %w", timeout, err)
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("the upload was canceled: %w", err)
	}
	return err
}

// describeResult says in words where the image went.
func describeResult(typ string, r target.Result) []string {
	var lines []string
	switch {
	case r.AMI != "":
		lines = append(lines, fmt.Sprintf("AMI %s in region %s", r.AMI, r.Region))
	case r.ImageName != "" && r.ProjectID != "":
		lines = append(lines, fmt.Sprintf("image %s in project %s", r.ImageName, r.ProjectID))
	case r.ImageName != "":
		lines = append(lines, fmt.Sprintf("managed image %s", r.ImageName))
	}
	if r.URL != "" {
		if r.Digest != "" {
			lines = append(lines, "pushed to "+r.URL)
		} else {
			lines = append(lines, "download link: "+r.URL)
		}
	}
	if r.ExpiresAt != nil {
		lines = append(lines, "the link expires at "+r.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if r.Digest != "" {
		lines = append(lines, "digest "+r.Digest)
	}
	if r.Region != "" && r.AMI == "" {
		lines = append(lines, "region "+r.Region)
	}
	if len(lines) == 0 {
		lines = append(lines, "the target gave no location")
	}
	return lines
}

func (a *app) printResult(path, typ string, r target.Result, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Fprintf(a.stdout, "uploaded %s to %s:\n", filepath.Base(path), typ)
	for _, l := range describeResult(typ, r) {
		fmt.Fprintf(a.stdout, "  %s\n", l)
	}
	return nil
}

// uploadReporter shows an upload's progress: on a terminal ("auto") one
// line redrawn in place, else a line per step and every 10% of the bytes;
// "json" writes one object a line to stdout. finish ends a live line.
func (a *app) uploadReporter(mode string) (target.Reporter, func(), error) {
	switch mode {
	case "auto":
		fi, err := os.Stderr.Stat()
		live := err == nil && fi.Mode()&os.ModeCharDevice != 0 && a.stderr == os.Stderr
		r := &textUploadReporter{w: a.stderr, live: live, lastPct: -1}
		return r, r.finish, nil
	case "plain":
		r := &textUploadReporter{w: a.stderr, lastPct: -1}
		return r, r.finish, nil
	case "json":
		return &jsonUploadReporter{enc: json.NewEncoder(a.stdout)}, func() {}, nil
	case "none":
		return target.NoReporter{}, func() {}, nil
	}
	return nil, nil, fmt.Errorf("--progress %q: expected auto, plain, json or none", mode)
}

// stepChecksum is the step before the upload, kiln upload's own: the
// image's SHA-256 is computed, which targets check what landed against.
const stepChecksum = "checksum"

// stepLabels say the steps in words, where the name is not enough.
var stepLabels = map[string]string{stepChecksum: "computing the image's SHA-256"}

// textUploadReporter writes progress for people.
type textUploadReporter struct {
	mu       sync.Mutex
	w        io.Writer
	live     bool
	step     string
	lastPct  int64
	lastDraw time.Time
	open     bool // a live line is drawn and not ended
}

// Step implements target.Reporter.
func (r *textUploadReporter) Step(step string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if step == r.step {
		return
	}
	r.step, r.lastPct = step, -1
	label := cmp.Or(stepLabels[step], step)
	if r.live {
		if r.open {
			fmt.Fprintln(r.w)
		}
		fmt.Fprintf(r.w, "\r  %s ...", label)
		r.open = true
		return
	}
	fmt.Fprintf(r.w, "  %s\n", label)
}

// Bytes implements target.Reporter.
func (r *textUploadReporter) Bytes(done, total int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if total <= 0 {
		return
	}
	pct := done * 100 / total
	step := r.step
	if step == "" {
		step = target.StepUploading
	}
	if r.live {
		if done < total && time.Since(r.lastDraw) < 100*time.Millisecond {
			return
		}
		r.lastDraw = time.Now()
		fmt.Fprintf(r.w, "\r  %s [%-20s] %3d%% %s/%s", step, strings.Repeat("#", int(pct/5)), pct, mebibytes(done), mebibytes(total))
		r.open = true
		return
	}
	if pct/10 != r.lastPct/10 || (done >= total && r.lastPct != 100) {
		r.lastPct = pct
		fmt.Fprintf(r.w, "  %s: %d%% (%s of %s)\n", step, pct, mebibytes(done), mebibytes(total))
	}
}

func (r *textUploadReporter) finish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.open {
		fmt.Fprintln(r.w)
		r.open = false
	}
}

func mebibytes(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// uploadEvent is one line of `--progress json` during an upload.
type uploadEvent struct {
	Time time.Time `json:"time"`
	// Kind is "upload-step" (Step is the step) or "upload-bytes" (Done of
	// Size bytes sent).
	Kind string `json:"kind"`
	Step string `json:"step,omitempty"`
	Done int64  `json:"done,omitempty"`
	Size int64  `json:"size,omitempty"`
}

// jsonUploadReporter writes one JSON object a line.
type jsonUploadReporter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

// Step implements target.Reporter.
func (r *jsonUploadReporter) Step(step string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = r.enc.Encode(uploadEvent{Time: time.Now().UTC(), Kind: "upload-step", Step: step})
}

// Bytes implements target.Reporter.
func (r *jsonUploadReporter) Bytes(done, total int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = r.enc.Encode(uploadEvent{Time: time.Now().UTC(), Kind: "upload-bytes", Done: done, Size: total})
}

func newUploadCommand(a *app) *cobra.Command {
	var u uploadFlags
	var img imageFlags
	var progress string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "upload IMAGE --to TYPE",
		Short: "Upload a built image to a cloud, a bucket or a registry",
		Long: `Delivers an image kiln built on this machine where it will run, as the
service does for a compose's upload_request: --to takes the API's upload
types (aws, aws.s3, gcp, azure, oci.objectstorage, container) and the short
names s3, registry and oci. The accounts are the operator's, from the
[targets] section of the configuration file and the environment; they are
never given on the command line.

What the image is comes from the manifest kiln build wrote beside it
(<name>-<distro>-<arch>.manifest.json); without one, the file is
recognised (qcow2, VHD, a gzip tar with disk.raw, an OCI archive, an ISO,
a raw disk). --image-type says it outright.

--options takes the API's upload_request.options as JSON; the flags
--share-with, --region, --resource-group, --image-name,
--hyper-v-generation, --name and --tag set the same options. Running the
same upload again resumes or reuses what an interrupted one left.`,
		Example: `  kiln upload out/web-debian-12-x86_64.raw --to aws --share-with 123456789012
  kiln upload out/web-debian-12-x86_64.tar.gz --to gcp --share-with user:alice@example.com
  kiln upload out/web-debian-12-x86_64.vhd --to azure --resource-group images --hyper-v-generation V2
  kiln upload out/app-debian-12-x86_64.tar --to registry --name team/app --tag 1.0
  kiln upload out/web-debian-12-x86_64.qcow2 --to s3 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			path := args[0]
			if u.to == "" {
				return fmt.Errorf("--to is required: aws, gcp, azure, s3, registry or oci")
			}
			if _, err := os.Stat(path); err != nil {
				return err
			}
			p, err := a.prepareUpload(ctx, &u)
			if err != nil {
				return err
			}
			local, err := a.describeImage(path, img)
			if err != nil {
				return err
			}
			for _, n := range local.notes {
				fmt.Fprintf(a.stderr, "kiln: %s\n", n)
			}
			p.image = local.image
			if err := checkUpload(p.target, p.image, p.options, p.fromFlag); err != nil {
				return err
			}
			res, err := a.runUpload(ctx, p, path, cmp.Or(u.imageName, local.name), progress)
			if err != nil {
				return err
			}
			return a.printResult(path, p.typ, res, asJSON)
		},
	}
	u.register(cmd, "to", "where the image goes: aws, gcp, azure, s3 (aws.s3), registry (container) or oci (oci.objectstorage)")
	cmd.Flags().StringVar(&img.imageType, "image-type", "", "the image's kiln type (see kiln list-images), when its manifest is not beside it or is wrong")
	cmd.Flags().StringVar(&img.arch, "arch", "", "the image's architecture (default: its manifest's, else this host's)")
	cmd.Flags().StringVar(&progress, "progress", "auto", "progress output: auto (a live line on a terminal), plain, json or none")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print where the image went as JSON (the upload status options)")
	return cmd
}

// imageBuilder builds an image into a directory, as compose.Build does.
type imageBuilder interface {
	Build(ctx context.Context, m *manifest.Manifest, dir string, log io.Writer, progress engine.Reporter) (*compose.Built, error)
}

// builderContextKey is the context key of an imageBuilder that replaces
// the engine in kiln build (how tests build in a moment, without root).
type builderContextKey struct{}

// prepareBuildUpload reads kiln build's upload flags before anything is
// built, so that a mistake in them costs no build. It returns nil when
// no upload was asked for.
func (a *app) prepareBuildUpload(ctx context.Context, u *uploadFlags) (*pendingUpload, error) {
	if u.to == "" {
		var stray []string
		for _, of := range append(optionFlags, optionFlag{flag: "image-name"}, optionFlag{flag: "options"}) {
			if u.changed(of.flag) {
				stray = append(stray, "--"+of.flag)
			}
		}
		if len(stray) > 0 {
			return nil, fmt.Errorf("%s: says how to upload the image, but --upload does not say where", strings.Join(stray, ", "))
		}
		return nil, nil
	}
	return a.prepareUpload(ctx, u)
}

// uploadBuilt uploads the image a build wrote. A failed upload keeps the
// image and says how to try again with kiln upload.
func (a *app) uploadBuilt(ctx context.Context, p *pendingUpload, u *uploadFlags, m *manifest.Manifest, artifact, progress string) error {
	res, err := a.runUpload(ctx, p, artifact, cmp.Or(u.imageName, imageStem(m)), progress)
	if err != nil {
		retry := []string{"kiln"}
		if a.configPath != "" {
			retry = append(retry, "--config", shellQuote(a.configPath))
		}
		retry = append(retry, "upload", shellQuote(artifact))
		retry = append(retry, u.commandLine()...)
		return fmt.Errorf("%w\nthe image is built and kept: %s\nto try the upload again: %s", err, artifact, strings.Join(retry, " "))
	}
	return a.printResult(artifact, p.typ, res, false)
}
