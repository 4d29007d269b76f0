package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/target"
)

// This file checks that a client written against image-builder's published
// API (v1) works against kiln: each operation both implement is called
// with the request image-builder's document describes, and the answer is
// checked against the shape that document gives it. The shapes are written
// down here from that document's facts; kiln's own extensions (extra
// fields in an answer) are allowed, missing or mistyped fields are not.

// shape is an expected JSON value: one of the kinds below, an object
// (fields, required unless optional), an array of one shape, or a map of
// one shape by any key.
type shape any

type kind string

const (
	str      kind = "string"
	integer  kind = "integer"
	boolean  kind = "boolean"
	uuid     kind = "uuid"
	anything kind = "any"
	// nullUUID is a UUID or null.
	nullUUID kind = "uuid or null"
)

// object is an object's fields; a name ending in "?" is optional.
type object map[string]shape

// arrayOf is an array whose items have the shape.
type arrayOf struct{ item shape }

// mapOf is an object whose every value has the shape.
type mapOf struct{ value shape }

// enum is a string of the listed values.
type enum []string

var uuidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// reporter is what hasShape reports to: a test, or a recorder in the
// checker's own test.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// hasShape checks v against s and reports each mismatch at its path.
func hasShape(t reporter, path string, v any, s shape) {
	t.Helper()
	switch s := s.(type) {
	case kind:
		ok := false
		switch s {
		case str:
			_, ok = v.(string)
		case integer:
			f, isNum := v.(float64)
			ok = isNum && f == float64(int64(f))
		case boolean:
			_, ok = v.(bool)
		case uuid:
			u, isStr := v.(string)
			ok = isStr && uuidRe.MatchString(u)
		case nullUUID:
			u, isStr := v.(string)
			ok = v == nil || (isStr && uuidRe.MatchString(u))
		case anything:
			ok = true
		}
		assert.True(t, ok, "%s: want %s, got %#v", path, s, v)
	case enum:
		str, isStr := v.(string)
		assert.True(t, isStr && slices.Contains(s, str), "%s: want one of %v, got %#v", path, []string(s), v)
	case object:
		m, ok := v.(map[string]any)
		if !assert.True(t, ok, "%s: want an object, got %#v", path, v) {
			return
		}
		for name, fs := range s {
			field, optional := strings.CutSuffix(name, "?")
			fv, present := m[field]
			if !present {
				assert.True(t, optional, "%s.%s: required, missing", path, field)
				continue
			}
			hasShape(t, path+"."+field, fv, fs)
		}
	case arrayOf:
		list, ok := v.([]any)
		if !assert.True(t, ok, "%s: want an array, got %#v", path, v) {
			return
		}
		for i, it := range list {
			hasShape(t, fmt.Sprintf("%s[%d]", path, i), it, s.item)
		}
	case mapOf:
		m, ok := v.(map[string]any)
		if !assert.True(t, ok, "%s: want an object, got %#v", path, v) {
			return
		}
		for k, it := range m {
			hasShape(t, path+"."+k, it, s.value)
		}
	default:
		t.Errorf("%s: unknown shape %#v", path, s)
	}
}

// The shapes of image-builder's answers (its components/schemas).
var (
	ibListMeta  = object{"count": integer}
	ibListLinks = object{"first": str, "last": str}
	ibError     = object{"errors": arrayOf{object{"title": str, "detail": str}}}
	ibImageType = enum{"aws", "azure", "bootable-container-iso", "edge-commit", "edge-installer", "gcp", "guest-image", "image-installer",
		"network-installer", "oci", "pxe-tar-xz", "vsphere", "vsphere-ova", "wsl", "ami", "rhel-edge-commit", "rhel-edge-installer", "vhd"}
	ibImageRequest = object{"architecture": enum{"x86_64", "aarch64"}, "image_type": anything,
		"upload_request": object{"type": str, "options?": anything}, "size?": integer}
	ibComposeRequest = object{"distribution?": str, "image_name?": str, "image_description?": str,
		"client_id?": enum{"api", "ui", "mcp"}, "image_requests": arrayOf{ibImageRequest}, "customizations?": object{}}
	ibImageStatus = object{"status": enum{"success", "failure", "pending", "building", "uploading", "registering"},
		"upload_status?": object{"status": enum{"success", "failure", "pending", "running"}, "type": str, "options": object{}},
		"error?":         object{"id": integer, "reason": str, "details?": anything}}
	ibLint      = object{"errors": arrayOf{object{"name": str, "description": str}}, "warnings": arrayOf{object{"name": str, "description": str}}}
	ibUser      = object{"name": str, "groups?": arrayOf{str}, "ssh_key?": str, "hasPassword?": boolean}
	ibBlueprint = object{"id": uuid, "name": str, "description": str, "lint": ibLint, "distribution?": str,
		"image_requests": arrayOf{ibImageRequest}, "customizations": object{"users?": arrayOf{ibUser}}}
	ibExport = object{"name": str, "description": str, "distribution?": str, "customizations": object{},
		"metadata": object{"parent_id": nullUUID, "exported_at": str, "is_on_prem": boolean}}
	ibComposesItem = object{"id": uuid, "request": ibComposeRequest, "created_at": str, "image_name?": str,
		"client_id?": enum{"api", "ui", "mcp"}, "blueprint_id?": nullUUID, "blueprint_version?": integer}
	ibImageTypeInfo = object{"name": str, "aliases?": arrayOf{str}, "filename?": str, "mime_type?": str,
		"default_size?": integer, "boot_mode?": enum{"legacy", "uefi", "hybrid", "none"}, "supported_blueprint_options?": arrayOf{str}}
)

// ibBlueprintRequest is a blueprint as image-builder's frontend sends it:
// customizations always present, an image-builder type name, an upload
// request with options, a user with hasPassword.
func ibBlueprintRequest(name string) map[string]any {
	return map[string]any{
		"name": name, "description": "made by a client of image-builder", "distribution": "debian-12",
		"image_requests": []any{map[string]any{"architecture": "x86_64", "image_type": "guest-image",
			"upload_request": map[string]any{"type": "aws.s3", "options": map[string]any{}}}},
		"customizations": map[string]any{
			"packages": []any{"curl"},
			"users": []any{map[string]any{"name": "admin", "groups": []any{"sudo"}, "password": "s3cret",
				"ssh_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINSOSKLZH9GYzn+gjqei1p55feF26p8vNjwhvky0aGR8 admin@example"}},
			"custom_repositories": []any{map[string]any{"id": "vendor", "name": "Vendor", "baseurl": []any{"https://apt.example.org/vendor/"},
				"gpgkey": []any{"https://apt.example.org/vendor/key.asc"}, "check_gpg": true, "enabled": true}},
			"payload_repositories": []any{map[string]any{"baseurl": "https://apt.example.org/vendor/", "rhsm": false, "check_gpg": true}},
		},
	}
}

// decodeAny decodes a reply's body as any JSON value.
func (r reply) decodeAny(t *testing.T) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(r.body, &v), string(r.body))
	return v
}

// Every image-builder operation kiln implements, in the order a client of
// the frontend calls them, answers in image-builder's shape.
func TestImageBuilderCompatibility(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Packages = fakeSearcher{} })
	call := func(method, path string, body any, status int, s shape) any {
		t.Helper()
		r := ts.do(t, "acme", method, path, body)
		require.Equal(t, status, r.status, "%s %s: %s", method, path, r.body)
		if s == nil {
			return nil
		}
		v := r.decodeAny(t)
		hasShape(t, method+" "+path, v, s)
		return v
	}

	// Meta and distributions.
	call("GET", "/version", nil, 200, object{"version": str, "build_commit?": str, "build_time?": str})
	call("GET", "/ready", nil, 200, object{"readiness": str})
	call("GET", "/openapi.json", nil, 200, object{"openapi": str, "paths": mapOf{object{}}})
	call("GET", "/distributions", nil, 200, arrayOf{object{"name": str, "description": str}})
	d := call("GET", "/distributions/debian-12", nil, 200, object{"name": str, "codename?": str, "releasever?": str, "os_version?": str, "product?": str,
		"architectures": mapOf{object{"name": str, "image_types": mapOf{ibImageTypeInfo}}}}).(map[string]any)
	require.NotEmpty(t, d["architectures"])
	call("GET", "/distributions/debian-12?image_type=ami&image_type=aws&architecture=x86_64", nil, 200, object{"name": str, "architectures": mapOf{object{"name": str}}})
	arches := call("GET", "/architectures/debian-12", nil, 200, arrayOf{object{"arch": str, "image_types": arrayOf{str}, "repositories": arrayOf{object{"rhsm": boolean}}}}).([]any)
	offered := arches[0].(map[string]any)["image_types"].([]any)
	for _, name := range []string{"aws", "gcp", "azure", "guest-image", "vsphere", "vsphere-ova", "wsl", "image-installer", "oci", "ami", "vhd"} {
		assert.Contains(t, offered, name, "the frontend's target picker finds %s", name)
		hasShape(t, "image type "+name, name, ibImageType)
	}

	call("GET", "/packages?distribution=debian-12&architecture=x86_64&search=vim&limit=100&offset=0", nil, 200,
		object{"meta": ibListMeta, "links": ibListLinks, "data": arrayOf{object{"name": str, "summary": str}}})

	// Blueprints.
	created := call("POST", "/blueprints", ibBlueprintRequest("ib-client"), 201, object{"id": uuid}).(map[string]any)
	id := created["id"].(string)
	call("GET", "/blueprints", nil, 200, object{"meta": ibListMeta, "links": ibListLinks, "data": arrayOf{object{"id": uuid, "version": integer, "name": str, "description": str, "last_modified_at": str}}})
	found := call("GET", "/blueprints?search=IB-CLI", nil, 200, object{"meta": ibListMeta, "links": ibListLinks, "data": arrayOf{object{"id": uuid}}}).(map[string]any)
	assert.Equal(t, float64(1), found["meta"].(map[string]any)["count"])
	call("GET", "/blueprints?name=ib-client&limit=100&offset=0", nil, 200, object{"meta": ibListMeta, "data": arrayOf{object{"id": uuid}}})
	bp := call("GET", "/blueprints/"+id, nil, 200, ibBlueprint).(map[string]any)
	bp = call("GET", "/blueprints/"+id+"?version=-1", nil, 200, ibBlueprint).(map[string]any)
	assert.Equal(t, true, bp["customizations"].(map[string]any)["users"].([]any)[0].(map[string]any)["hasPassword"])

	// The frontend edits what it read: users come back with hasPassword
	// and no password, and the password stays.
	update := map[string]any{"name": bp["name"], "description": "edited", "distribution": bp["distribution"], "image_requests": bp["image_requests"], "customizations": bp["customizations"]}
	call("PUT", "/blueprints/"+id, update, 200, object{"id": uuid})
	bp = call("GET", "/blueprints/"+id, nil, 200, ibBlueprint).(map[string]any)
	assert.Equal(t, "edited", bp["description"])
	assert.Equal(t, true, bp["customizations"].(map[string]any)["users"].([]any)[0].(map[string]any)["hasPassword"])

	export := call("GET", "/blueprints/"+id+"/export", nil, 200, ibExport).(map[string]any)
	assert.Equal(t, id, export["metadata"].(map[string]any)["parent_id"])

	composed := call("POST", "/blueprints/"+id+"/compose", map[string]any{"image_types": []any{"guest-image"}}, 201, arrayOf{object{"id": uuid}}).([]any)
	require.Len(t, composed, 1)
	call("GET", "/blueprints/"+id+"/composes", nil, 200, object{"meta": ibListMeta, "links": ibListLinks, "data": arrayOf{ibComposesItem}})
	call("GET", "/blueprints/"+id+"/composes?blueprint_version=-1&limit=10&offset=0&ignoreImageTypes=rhel-edge-installer&ignoreImageTypes=rhel-edge-commit", nil, 200,
		object{"meta": ibListMeta, "data": arrayOf{ibComposesItem}})

	// Composes.
	compose := map[string]any{
		"distribution": "debian-12", "image_name": "ib-image", "image_description": "from a client of image-builder", "client_id": "mcp",
		"image_requests": []any{map[string]any{"architecture": "x86_64", "image_type": "wsl",
			"upload_request": map[string]any{"type": "aws.s3", "options": map[string]any{}}}},
		"customizations": map[string]any{"packages": []any{"curl"}},
	}
	cid := call("POST", "/compose", compose, 201, object{"id": uuid}).(map[string]any)["id"].(string)
	call("GET", "/composes", nil, 200, object{"meta": ibListMeta, "links": ibListLinks, "data": arrayOf{ibComposesItem}})
	call("GET", "/composes?limit=100&offset=0&ignoreImageTypes=rhel-edge-installer&ignoreImageTypes=rhel-edge-commit&ignoreImageTypes=edge-installer&ignoreImageTypes=edge-commit", nil, 200,
		object{"meta": ibListMeta, "data": arrayOf{ibComposesItem}})
	call("GET", "/composes/"+cid, nil, 200, object{"image_status": ibImageStatus, "request": ibComposeRequest})
	call("DELETE", "/composes/"+cid, nil, 200, nil)
	call("DELETE", "/blueprints/"+id, nil, 204, nil)

	// Failing requests answer image-builder's error list.
	for _, tc := range []struct {
		method, path string
		body         any
		status       int
	}{
		{"GET", "/blueprints/" + id, nil, 404},
		{"PUT", "/blueprints/" + id, ibBlueprintRequest("gone"), 404},
		{"GET", "/blueprints/" + id + "/export", nil, 404},
		{"GET", "/blueprints/" + id + "/composes", nil, 404},
		{"DELETE", "/blueprints/" + id, nil, 404},
		{"GET", "/distributions/fedora-41", nil, 404},
		{"POST", "/compose", map[string]any{"distribution": "debian-12", "image_requests": []any{map[string]any{"architecture": "x86_64", "image_type": "edge-commit", "upload_request": map[string]any{"type": "local", "options": map[string]any{}}}}}, 400},
		{"PATCH", "/blueprints/" + id, nil, 405},
		{"POST", "/compose", map[string]any{"distribution": "debian-12", "image_requests": []any{map[string]any{"architecture": "x86_64", "image_type": "guest-image",
			"upload_request": map[string]any{"type": "local", "options": map[string]any{}}, "snapshot_date": "2025-11-26T00:00:00.000Z"}}}, 400},
	} {
		call(tc.method, tc.path, tc.body, tc.status, ibError)
	}
}

// acceptingTarget stands in for a cloud target, whose own tests hold its
// checks: at the API a target is only asked to check a request.
type acceptingTarget struct{ typ string }

func (a acceptingTarget) Type() string { return a.typ }

func (acceptingTarget) Check(target.Image, json.RawMessage) error { return nil }

func (acceptingTarget) Upload(context.Context, target.Artifact, json.RawMessage, target.Reporter) (target.Result, error) {
	return target.Result{}, errors.New("the API never uploads")
}

// The upload types image-builder's clients send, with the options they
// send, are taken by the document and get composes in image-builder's
// shape, on a server whose operator configured them.
func TestImageBuilderUploadTypes(t *testing.T) {
	ts := newTestServer(t, func(c *Config) {
		c.Targets = target.New(target.Local{}, target.StoreLink{}, acceptingTarget{"aws"}, acceptingTarget{"gcp"}, acceptingTarget{"azure"},
			acceptingTarget{"oci.objectstorage"})
	})
	sp, err := loadSpec()
	require.NoError(t, err)
	offered := sp.doc.Components.Schemas["UploadTypes"].Value.Enum
	for _, tc := range []struct {
		upload, imageType string
		options           map[string]any
	}{
		{"aws.s3", "guest-image", map[string]any{}},
		{"aws", "aws", map[string]any{"share_with_accounts": []any{"123456789012"}}},
		{"gcp", "gcp", map[string]any{"share_with_accounts": []any{"user:alice@example.com"}}},
		{"azure", "azure", map[string]any{"resource_group": "images", "tenant_id": "5c7ef5b6-1c3f-4da0-a622-0b060239d7d7", "subscription_id": "4e5d8b2c-ab24-4413-90c5-612306e809e2"}},
		{"oci.objectstorage", "oci", map[string]any{}},
	} {
		t.Run(tc.upload, func(t *testing.T) {
			require.Contains(t, offered, any(tc.upload), "the document takes upload type %s", tc.upload)
			body := map[string]any{"distribution": "debian-12", "image_requests": []any{map[string]any{"architecture": "x86_64", "image_type": tc.imageType,
				"upload_request": map[string]any{"type": tc.upload, "options": tc.options}}}}
			r := ts.do(t, "acme", "POST", "/compose", body)
			require.Equal(t, http.StatusCreated, r.status, string(r.body))
			id := r.json(t)["id"].(string)
			r = ts.do(t, "acme", "GET", "/composes/"+id, nil)
			require.Equal(t, http.StatusOK, r.status, string(r.body))
			st := r.decodeAny(t)
			hasShape(t, "GET /composes/"+id, st, object{"image_status": ibImageStatus, "request": ibComposeRequest})
			us := st.(map[string]any)["image_status"].(map[string]any)["upload_status"].(map[string]any)
			assert.Equal(t, tc.upload, us["type"])
		})
	}
}

// The shape checker fails on what it should: a missing field, a wrong
// type, a value outside an enum, a bad UUID.
func TestShapeCheckerCatchesMismatches(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    string
		s    shape
	}{
		{"missing", `{}`, object{"id": uuid}},
		{"wrong type", `{"count":"1"}`, object{"count": integer}},
		{"not an integer", `{"count":1.5}`, object{"count": integer}},
		{"enum", `{"status":"lost"}`, object{"status": enum{"success"}}},
		{"uuid", `{"id":"abc"}`, object{"id": uuid}},
		{"array item", `[{"name":1}]`, arrayOf{object{"name": str}}},
		{"map value", `{"x":{"name":true}}`, mapOf{object{"name": str}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v any
			require.NoError(t, json.Unmarshal([]byte(tc.v), &v))
			var rec recorder
			hasShape(&rec, "value", v, tc.s)
			assert.NotEmpty(t, rec.errors, "%s is caught", tc.v)
			var ok recorder
			hasShape(&ok, "value", v, anything)
			assert.Empty(t, ok.errors)
		})
	}
}

// recorder keeps what hasShape reports.
type recorder struct{ errors []string }

func (*recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
