package target

import (
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// SetContainerBackoff makes c's retries wait from d on, so tests of
// failures do not wait seconds.
func SetContainerBackoff(c *Container, d time.Duration) {
	c.backoff = remote.Backoff{Duration: d, Factor: 2, Steps: 5}
}

// SetContainerTransport makes c's requests go through t.
func SetContainerTransport(c *Container, t http.RoundTripper) { c.transport = t }

// SetContainerJobs sets how many blobs c pushes at once.
func SetContainerJobs(c *Container, n int) { c.jobs = n }

// SetOCIRetryBase makes o's retries wait from d on.
func SetOCIRetryBase(o *OCIObjectStorage, d time.Duration) {
	o.retryBase = d
	o.setRetry()
	o.client.Host = o.endpoint
}

// SetOCIHTTPClient makes o's requests go through c.
func SetOCIHTTPClient(o *OCIObjectStorage, c *http.Client) { o.client.HTTPClient = c }
