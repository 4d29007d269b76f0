package targettest

import (
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/kiln-project/kiln/internal/target"
)

// EC2Server speaks the part of EC2's Query protocol (API version
// 2016-11-15: form-encoded POSTs signed with SigV4, XML answers) that
// the aws target's SDK calls send, and keeps the state they make. It
// covers:
//
//   - ImportSnapshot: idempotent by ClientToken; DiskContainer.Format RAW or VHD, the disk named by
//     DiskContainer.UserBucket in the S3Server (read at once: its digest
//     is recorded as the snapshot's), the task tagged through
//     TagSpecification import-snapshot-task.
//   - DescribeImportSnapshotTasks: all tasks, or those of ImportTaskId.N;
//     a task completes (and makes its snapshot) on its PollsToComplete-th
//     poll.
//   - CancelImportTask: an active task becomes deleted.
//   - CreateTags: on a known snapshot or image.
//   - RegisterImage: Name (unique), Architecture x86_64|arm64, BootMode
//     legacy-bios|uefi|uefi-preferred, EnaSupport true, hvm, the root
//     device mapped to a known snapshot, TagSpecification image.
//   - DescribeImages: Owner.1 self, filtered by tag:KEY.
//   - ModifyImageAttribute: LaunchPermission.Add.N.UserId on a known image.
//   - ModifySnapshotAttribute: createVolumePermission
//     CreateVolumePermission.Add.N.UserId on a known snapshot.
//
// Every request must be a POST of Action and Version=2016-11-15 with an
// X-Amz-Date and an AWS4-HMAC-SHA256 Authorization header for the ec2
// service; one signed with another access key than S3AccessKeyID is
// refused with AuthFailure, as EC2 does. Anything else it receives (an
// unknown action, a parameter missing or wrong) fails the test.
type EC2Server struct {
	// URL is the server's endpoint.
	URL string
	// PollsToComplete is the poll of an import task on which it
	// completes (default 2).
	PollsToComplete int

	tb  testing.TB
	s3  *S3Server
	srv *httptest.Server

	mu        sync.Mutex
	calls     []EC2Call
	fail      map[string]int
	lose      map[string]int
	tasks     []*EC2ImportTask
	snapshots map[string]*EC2Snapshot
	images    []*EC2Image
	seq       int
}

// EC2Call is one request the server answered.
type EC2Call struct {
	Action string
	// Region is the region the request was signed for.
	Region string
	Params url.Values
}

// EC2ImportTask is an import task.
type EC2ImportTask struct {
	ID, Status, Format, Bucket, Key, SnapshotID string
	Tags                                        map[string]string
	polls                                       int
	clientToken                                 string
}

// EC2Snapshot is a snapshot an import made: the digest and size of the
// disk it was imported from, and whom it is shared with.
type EC2Snapshot struct {
	ID, SHA256, Format string
	Size               int64
	Tags               map[string]string
	VolumePermissions  []string
}

// EC2Image is a registered image.
type EC2Image struct {
	ID, Name, Architecture, BootMode, SnapshotID, RootDevice string
	EnaSupport                                               bool
	Tags                                                     map[string]string
	LaunchPermissions                                        []string
}

// StartEC2 starts an EC2Server for the test's lifetime, importing disks
// from s3.
func StartEC2(tb testing.TB, s3 *S3Server) *EC2Server {
	tb.Helper()
	e := &EC2Server{PollsToComplete: 2, tb: tb, s3: s3, fail: map[string]int{}, lose: map[string]int{}, snapshots: map[string]*EC2Snapshot{}}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	e.URL = e.srv.URL
	tb.Cleanup(e.srv.Close)
	return e
}

// Close stops the server now (a test of a server that went away).
func (e *EC2Server) Close() { e.srv.Close() }

// AWSConfig is a [targets.aws] section that imports through this server,
// staging in s3's bucket, polling every 10ms.
func (e *EC2Server) AWSConfig() target.AWSConfig {
	return target.AWSConfig{
		Bucket:       S3Bucket,
		Prefix:       "staging/",
		EC2Endpoint:  e.URL,
		PollInterval: target.Duration(10e6),
		AWSAccess:    e.s3.Access(),
		S3Endpoint:   e.s3.Endpoint(),
	}
}

// Fail makes every call of action answer status with an EC2 error (500:
// InternalError, 401: AuthFailure, else InvalidParameterValue).
func (e *EC2Server) Fail(action string, status int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fail[action] = status
}

// LoseAnswer makes the next times calls of action do their work and then
// answer 500 InternalError, as when EC2's answer is lost on the way: the
// SDK retries a call that had succeeded.
func (e *EC2Server) LoseAnswer(action string, times int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lose[action] = times
}

// Calls lists the requests answered, in order.
func (e *EC2Server) Calls() []EC2Call {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]EC2Call(nil), e.calls...)
}

// Actions lists the actions of Calls, in order.
func (e *EC2Server) Actions() []string {
	var names []string
	for _, c := range e.Calls() {
		names = append(names, c.Action)
	}
	return names
}

// Images lists the registered images.
func (e *EC2Server) Images() []EC2Image {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []EC2Image
	for _, img := range e.images {
		out = append(out, *img)
	}
	return out
}

// Snapshot is the snapshot of id, or nil.
func (e *EC2Server) Snapshot(id string) *EC2Snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s, ok := e.snapshots[id]; ok {
		c := *s
		return &c
	}
	return nil
}

// ImportTasks lists the import tasks.
func (e *EC2Server) ImportTasks() []EC2ImportTask {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []EC2ImportTask
	for _, t := range e.tasks {
		out = append(out, *t)
	}
	return out
}

var ec2Auth = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/\d{8}/([a-z0-9-]+)/ec2/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$`)

func (e *EC2Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		e.unexpected(w, "%s %s with Content-Type %q: EC2's Query protocol POSTs a form", r.Method, r.URL, r.Header.Get("Content-Type"))
		return
	}
	if err := r.ParseForm(); err != nil {
		e.unexpected(w, "unreadable form: %v", err)
		return
	}
	p := r.PostForm
	action := p.Get("Action")
	if p.Get("Version") != "2016-11-15" {
		e.unexpected(w, "%s: Version %q, want 2016-11-15", action, p.Get("Version"))
		return
	}
	m := ec2Auth.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil || r.Header.Get("X-Amz-Date") == "" {
		e.unexpected(w, "%s: no SigV4 signature for ec2 (Authorization %q)", action, r.Header.Get("Authorization"))
		return
	}
	if m[1] != S3AccessKeyID {
		writeEC2Error(w, http.StatusUnauthorized, "AuthFailure", "AWS was not able to validate the provided access credentials")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, EC2Call{Action: action, Region: m[2], Params: p})
	if status := e.fail[action]; status != 0 {
		code := "InvalidParameterValue"
		switch status {
		case http.StatusInternalServerError:
			code = "InternalError"
		case http.StatusUnauthorized:
			code = "AuthFailure"
		}
		writeEC2Error(w, status, code, "failing "+action+" as the test asked")
		return
	}
	handlers := map[string]func(url.Values) (string, error){
		"ImportSnapshot":              e.importSnapshot,
		"DescribeImportSnapshotTasks": e.describeImportSnapshotTasks,
		"CancelImportTask":            e.cancelImportTask,
		"CreateTags":                  e.createTags,
		"RegisterImage":               e.registerImage,
		"DescribeImages":              e.describeImages,
		"ModifyImageAttribute":        e.modifyImageAttribute,
		"ModifySnapshotAttribute":     e.modifySnapshotAttribute,
	}
	h, ok := handlers[action]
	if !ok {
		e.unexpected(w, "action %q is not one the aws target calls", action)
		return
	}
	body, err := h(p)
	if err != nil {
		if ae, ok := err.(ec2APIError); ok {
			writeEC2Error(w, http.StatusBadRequest, ae.code, ae.msg)
			return
		}
		e.unexpected(w, "%s: %v", action, err)
		return
	}
	if e.lose[action] > 0 {
		e.lose[action]--
		writeEC2Error(w, http.StatusInternalServerError, "InternalError", "the answer to "+action+" was lost, as the test asked")
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<%sResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>kiln-test-%d</requestId>%s</%sResponse>`, action, len(e.calls), body, action)
}

// ec2APIError is an error EC2 itself would answer (not a test failure).
type ec2APIError struct{ code, msg string }

func (a ec2APIError) Error() string { return a.code + ": " + a.msg }

func (e *EC2Server) unexpected(w http.ResponseWriter, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	e.tb.Errorf("EC2 test server: unexpected request: %s", msg)
	writeEC2Error(w, http.StatusBadRequest, "InvalidRequest", msg)
}

func writeEC2Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>kiln-test</RequestID></Response>`, code, html.EscapeString(msg))
}

func (e *EC2Server) nextID(prefix string) string {
	e.seq++
	return fmt.Sprintf("%s-%017x", prefix, e.seq)
}

// ec2List reads the values of a flattened list parameter: name.1, name.2...
func ec2List(p url.Values, name string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := p[name+"."+strconv.Itoa(i)]
		if !ok {
			return out
		}
		out = append(out, v[0])
	}
}

// ec2Tags reads a flattened list of tags under prefix (Tag or
// TagSpecification.1.Tag).
func ec2Tags(p url.Values, prefix string) (map[string]string, error) {
	out := map[string]string{}
	for i := 1; ; i++ {
		k := fmt.Sprintf("%s.%d.Key", prefix, i)
		if _, ok := p[k]; !ok {
			break
		}
		out[p.Get(k)] = p.Get(fmt.Sprintf("%s.%d.Value", prefix, i))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no %s.N.Key", prefix)
	}
	return out, nil
}

func ec2Require(p url.Values, names ...string) error {
	for _, n := range names {
		if p.Get(n) == "" {
			return fmt.Errorf("parameter %s missing", n)
		}
	}
	return nil
}

func ec2TagSetXML(t map[string]string) string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("<tagSet>")
	for _, k := range keys {
		fmt.Fprintf(&b, "<item><key>%s</key><value>%s</value></item>", html.EscapeString(k), html.EscapeString(t[k]))
	}
	b.WriteString("</tagSet>")
	return b.String()
}

func (e *EC2Server) importSnapshot(p url.Values) (string, error) {
	if err := ec2Require(p, "DiskContainer.Format", "DiskContainer.UserBucket.S3Bucket", "DiskContainer.UserBucket.S3Key"); err != nil {
		return "", err
	}
	format := p.Get("DiskContainer.Format")
	if format != "RAW" && format != "VHD" {
		return "", fmt.Errorf("DiskContainer.Format %q, want RAW or VHD", format)
	}
	if p.Get("TagSpecification.1.ResourceType") != "import-snapshot-task" {
		return "", fmt.Errorf("TagSpecification.1.ResourceType %q, want import-snapshot-task", p.Get("TagSpecification.1.ResourceType"))
	}
	t, err := ec2Tags(p, "TagSpecification.1.Tag")
	if err != nil {
		return "", err
	}
	bucket, key := p.Get("DiskContainer.UserBucket.S3Bucket"), p.Get("DiskContainer.UserBucket.S3Key")
	if bucket != S3Bucket {
		return "", ec2APIError{"InvalidParameter", "bucket " + bucket + " does not exist"}
	}
	sum, size, err := e.s3.ObjectSHA256(key)
	if err != nil {
		return "", ec2APIError{"InvalidParameter", fmt.Sprintf("the object s3://%s/%s cannot be read: %v", bucket, key, err)}
	}
	for _, t := range e.tasks {
		if token := p.Get("ClientToken"); token != "" && t.clientToken == token {
			return fmt.Sprintf("<importTaskId>%s</importTaskId><snapshotTaskDetail><status>%s</status></snapshotTaskDetail>", t.ID, t.Status), nil
		}
	}
	task := &EC2ImportTask{ID: e.nextID("import-snap"), clientToken: p.Get("ClientToken"), Status: "active", Format: format, Bucket: bucket, Key: key, Tags: t}
	e.tasks = append(e.tasks, task)
	snap := &EC2Snapshot{ID: e.nextID("snap"), SHA256: sum, Size: size, Format: format}
	task.SnapshotID = snap.ID
	e.snapshots[snap.ID] = snap
	return fmt.Sprintf("<importTaskId>%s</importTaskId><description>%s</description><snapshotTaskDetail><status>active</status><format>%s</format></snapshotTaskDetail>%s",
		task.ID, html.EscapeString(p.Get("Description")), format, ec2TagSetXML(t)), nil
}

func (e *EC2Server) describeImportSnapshotTasks(p url.Values) (string, error) {
	ids := ec2List(p, "ImportTaskId")
	var b strings.Builder
	b.WriteString("<importSnapshotTaskSet>")
	for _, t := range e.tasks {
		if len(ids) > 0 && !ec2Has(ids, t.ID) {
			continue
		}
		if len(ids) > 0 && t.Status == "active" {
			t.polls++
			if t.polls >= e.PollsToComplete {
				t.Status = "completed"
			}
		}
		detail := fmt.Sprintf("<status>%s</status><format>%s</format><userBucket><s3Bucket>%s</s3Bucket><s3Key>%s</s3Key></userBucket>", t.Status, t.Format, t.Bucket, html.EscapeString(t.Key))
		if t.Status == "completed" {
			detail += "<snapshotId>" + t.SnapshotID + "</snapshotId><progress>100</progress>"
		}
		if t.Status == "deleted" {
			detail += "<statusMessage>canceled</statusMessage>"
		}
		fmt.Fprintf(&b, "<item><importTaskId>%s</importTaskId><snapshotTaskDetail>%s</snapshotTaskDetail>%s</item>", t.ID, detail, ec2TagSetXML(t.Tags))
	}
	b.WriteString("</importSnapshotTaskSet>")
	return b.String(), nil
}

func (e *EC2Server) cancelImportTask(p url.Values) (string, error) {
	if err := ec2Require(p, "ImportTaskId"); err != nil {
		return "", err
	}
	for _, t := range e.tasks {
		if t.ID == p.Get("ImportTaskId") {
			prev := t.Status
			if prev == "active" {
				t.Status = "deleted"
				delete(e.snapshots, t.SnapshotID)
			}
			return fmt.Sprintf("<importTaskId>%s</importTaskId><previousState>%s</previousState><state>%s</state>", t.ID, prev, t.Status), nil
		}
	}
	return "", ec2APIError{"InvalidConversionTaskId.Malformed", "no import task " + p.Get("ImportTaskId")}
}

func (e *EC2Server) createTags(p url.Values) (string, error) {
	ids := ec2List(p, "ResourceId")
	if len(ids) == 0 {
		return "", fmt.Errorf("no ResourceId.N")
	}
	t, err := ec2Tags(p, "Tag")
	if err != nil {
		return "", err
	}
	for _, id := range ids {
		target := e.tagsOf(id)
		if target == nil {
			return "", ec2APIError{"InvalidID", "no resource " + id}
		}
		for k, v := range t {
			target[k] = v
		}
	}
	return "<return>true</return>", nil
}

func (e *EC2Server) tagsOf(id string) map[string]string {
	if s, ok := e.snapshots[id]; ok {
		if s.Tags == nil {
			s.Tags = map[string]string{}
		}
		return s.Tags
	}
	for _, img := range e.images {
		if img.ID == id {
			return img.Tags
		}
	}
	return nil
}

func (e *EC2Server) registerImage(p url.Values) (string, error) {
	if err := ec2Require(p, "Name", "Architecture", "BootMode", "RootDeviceName", "BlockDeviceMapping.1.DeviceName", "BlockDeviceMapping.1.Ebs.SnapshotId"); err != nil {
		return "", err
	}
	img := &EC2Image{
		Name: p.Get("Name"), Architecture: p.Get("Architecture"), BootMode: p.Get("BootMode"),
		RootDevice: p.Get("RootDeviceName"), SnapshotID: p.Get("BlockDeviceMapping.1.Ebs.SnapshotId"),
		EnaSupport: p.Get("EnaSupport") == "true",
	}
	if img.Architecture != "x86_64" && img.Architecture != "arm64" {
		return "", fmt.Errorf("Architecture %q", img.Architecture)
	}
	if !ec2Has([]string{"legacy-bios", "uefi", "uefi-preferred"}, img.BootMode) {
		return "", fmt.Errorf("BootMode %q", img.BootMode)
	}
	if p.Get("VirtualizationType") != "hvm" || !img.EnaSupport {
		return "", fmt.Errorf("VirtualizationType %q, EnaSupport %q: want hvm, true", p.Get("VirtualizationType"), p.Get("EnaSupport"))
	}
	if p.Get("BlockDeviceMapping.1.DeviceName") != img.RootDevice {
		return "", fmt.Errorf("the root device %s is not mapped (BlockDeviceMapping.1.DeviceName %s)", img.RootDevice, p.Get("BlockDeviceMapping.1.DeviceName"))
	}
	if p.Get("TagSpecification.1.ResourceType") != "image" {
		return "", fmt.Errorf("TagSpecification.1.ResourceType %q, want image", p.Get("TagSpecification.1.ResourceType"))
	}
	t, err := ec2Tags(p, "TagSpecification.1.Tag")
	if err != nil {
		return "", err
	}
	img.Tags = t
	if _, ok := e.snapshots[img.SnapshotID]; !ok {
		return "", ec2APIError{"InvalidSnapshot.NotFound", "no snapshot " + img.SnapshotID}
	}
	for _, other := range e.images {
		if other.Name == img.Name {
			return "", ec2APIError{"InvalidAMIName.Duplicate", "AMI name " + img.Name + " is already in use by AMI " + other.ID}
		}
	}
	img.ID = e.nextID("ami")
	e.images = append(e.images, img)
	return "<imageId>" + img.ID + "</imageId>", nil
}

func (e *EC2Server) describeImages(p url.Values) (string, error) {
	if owners := ec2List(p, "Owner"); len(owners) != 1 || owners[0] != "self" {
		return "", fmt.Errorf("Owner.N %v, want self", owners)
	}
	var b strings.Builder
	b.WriteString("<imagesSet>")
	for _, img := range e.images {
		match := true
		for i := 1; p.Get(fmt.Sprintf("Filter.%d.Name", i)) != ""; i++ {
			name := p.Get(fmt.Sprintf("Filter.%d.Name", i))
			key, ok := strings.CutPrefix(name, "tag:")
			if !ok {
				return "", fmt.Errorf("filter %q: only tag:KEY filters are expected", name)
			}
			if !ec2Has(ec2List(p, fmt.Sprintf("Filter.%d.Value", i)), img.Tags[key]) {
				match = false
			}
		}
		if !match {
			continue
		}
		fmt.Fprintf(&b, "<item><imageId>%s</imageId><name>%s</name><imageState>available</imageState><architecture>%s</architecture><bootMode>%s</bootMode><rootDeviceName>%s</rootDeviceName><blockDeviceMapping><item><deviceName>%s</deviceName><ebs><snapshotId>%s</snapshotId></ebs></item></blockDeviceMapping>%s</item>",
			img.ID, html.EscapeString(img.Name), img.Architecture, img.BootMode, img.RootDevice, img.RootDevice, img.SnapshotID, ec2TagSetXML(img.Tags))
	}
	b.WriteString("</imagesSet>")
	return b.String(), nil
}

func (e *EC2Server) modifyImageAttribute(p url.Values) (string, error) {
	if err := ec2Require(p, "ImageId"); err != nil {
		return "", err
	}
	var ids []string
	for i := 1; p.Get(fmt.Sprintf("LaunchPermission.Add.%d.UserId", i)) != ""; i++ {
		ids = append(ids, p.Get(fmt.Sprintf("LaunchPermission.Add.%d.UserId", i)))
	}
	if len(ids) == 0 {
		return "", fmt.Errorf("want LaunchPermission.Add.N.UserId")
	}
	for _, img := range e.images {
		if img.ID == p.Get("ImageId") {
			img.LaunchPermissions = ec2AppendNew(img.LaunchPermissions, ids...)
			return "<return>true</return>", nil
		}
	}
	return "", ec2APIError{"InvalidAMIID.NotFound", "no image " + p.Get("ImageId")}
}

func (e *EC2Server) modifySnapshotAttribute(p url.Values) (string, error) {
	if err := ec2Require(p, "SnapshotId", "Attribute"); err != nil {
		return "", err
	}
	if p.Get("Attribute") != "createVolumePermission" {
		return "", fmt.Errorf("Attribute %q, want createVolumePermission", p.Get("Attribute"))
	}
	var ids []string
	for i := 1; p.Get(fmt.Sprintf("CreateVolumePermission.Add.%d.UserId", i)) != ""; i++ {
		ids = append(ids, p.Get(fmt.Sprintf("CreateVolumePermission.Add.%d.UserId", i)))
	}
	if len(ids) == 0 {
		return "", fmt.Errorf("want CreateVolumePermission.Add.N.UserId")
	}
	s, ok := e.snapshots[p.Get("SnapshotId")]
	if !ok {
		return "", ec2APIError{"InvalidSnapshot.NotFound", "no snapshot " + p.Get("SnapshotId")}
	}
	s.VolumePermissions = ec2AppendNew(s.VolumePermissions, ids...)
	return "<return>true</return>", nil
}

func ec2Has(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func ec2AppendNew(list []string, add ...string) []string {
	for _, a := range add {
		if !ec2Has(list, a) {
			list = append(list, a)
		}
	}
	return list
}
