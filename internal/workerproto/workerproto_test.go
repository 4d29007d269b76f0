package workerproto_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/kiln-project/kiln/internal/workerproto"
)

// What the client's Path fills in, the handler's pattern for the same
// route matches and reads back unchanged, wildcard by wildcard.
func TestPathRoundTripsThroughTheRoute(t *testing.T) {
	for _, tc := range []struct {
		name, route string
		values      []string
		want        string
	}{
		{"no wildcards", workerproto.RouteJobs, nil, "/jobs"},
		{"a job", workerproto.RouteHeartbeat, []string{"4f1c"}, "/jobs/4f1c/heartbeat"},
		{"a file name escaped", workerproto.RouteFile, []string{"j1", "disk image.raw"}, "/jobs/j1/files/disk%20image.raw"},
		{"a slash stays in its segment", workerproto.RouteFile, []string{"j1", "a/b"}, "/jobs/j1/files/a%2Fb"},
		{"two wildcards", workerproto.RouteCompleteUpload, []string{"j1", "up-7"}, "/jobs/j1/uploads/up-7/complete"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := workerproto.Path(tc.route, tc.values...)
			assert.Equal(t, tc.want, got)

			var read []string
			mux := http.NewServeMux()
			mux.HandleFunc(workerproto.Prefix+tc.route, func(w http.ResponseWriter, r *http.Request) {
				for _, name := range []string{"id", "name", "upload"} {
					if v := r.PathValue(name); v != "" {
						read = append(read, v)
					}
				}
			})
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, workerproto.Prefix+got, nil))
			assert.Equal(t, http.StatusOK, rec.Code, "the route's pattern matches what Path made")
			assert.Equal(t, tc.values, read)
		})
	}
}

// A wildcard given no value stays as it is, and values beyond the
// wildcards are ignored.
func TestPathWithTooFewOrTooManyValues(t *testing.T) {
	assert.Equal(t, "/jobs/j1/uploads/{upload}/complete", workerproto.Path(workerproto.RouteCompleteUpload, "j1"))
	assert.Equal(t, "/jobs/j1/finish", workerproto.Path(workerproto.RouteFinish, "j1", "extra"))
}
