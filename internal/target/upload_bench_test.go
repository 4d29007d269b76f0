package target_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/target"
	"github.com/kiln-project/kiln/internal/target/targettest"
)

// benchMiB is the size of the image the upload benchmarks send:
// KILN_BENCH_MIB, default 128.
func benchMiB(b *testing.B) int64 {
	if v := os.Getenv("KILN_BENCH_MIB"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		require.NoError(b, err)
		return n
	}
	return 128
}

// BenchmarkS3Upload measures, in one run against one S3 test server,
// the server's raw PUT throughput (one PUT of the whole image with
// net/http: nothing read from disk, hashed or signed on the client) and
// the aws.s3 target's upload of the same image (parallel parts read from
// the file, the parts' MD5s computed on the way for the ETag check, the
// object checked and its link signed). Each iteration does one of each,
// one after the other, so both see the same load; the best of each is
// reported (raw-MB/s, target-MB/s) with their ratio (target/raw), as
// bench/upload.sh prints them. KILN_BENCH_MIB sets the image's size
// (default 128), KILN_BENCH_PART_MIB and KILN_BENCH_CONCURRENCY the
// target's part size and concurrency (default the target's own).
func BenchmarkS3Upload(b *testing.B) {
	srv := targettest.StartS3(b)
	cfg := srv.S3Config()
	cfg.S3Endpoint = target.S3Endpoint{Endpoint: srv.URL, PathStyle: true}
	if v := os.Getenv("KILN_BENCH_PART_MIB"); v != "" {
		cfg.PartSize, _ = strconv.ParseInt(v, 10, 64)
	}
	if v := os.Getenv("KILN_BENCH_CONCURRENCY"); v != "" {
		cfg.Concurrency, _ = strconv.Atoi(v)
	}
	tg, err := target.NewS3(cfg, srv.EnvFunc())
	require.NoError(b, err)
	a, data := testImage(b, "bench", benchMiB(b)*1024*1024, rawDisk)

	url := srv.URL + "/" + targettest.S3Bucket + "/raw/" + a.Filename
	auth := fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s/%s/%s/s3/aws4_request, SignedHeaders=host, Signature=%064d",
		targettest.S3AccessKeyID, time.Now().UTC().Format("20060102"), targettest.S3Region, 0)
	rawPut := func() {
		req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(data))
		require.NoError(b, err)
		req.Header.Set("Authorization", auth)
		req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(b, err)
		resp.Body.Close()
		require.Equal(b, http.StatusOK, resp.StatusCode)
	}
	upload := func() {
		_, err := tg.Upload(context.Background(), a, nil, target.NoReporter{})
		require.NoError(b, err)
	}
	timed := func(f func()) time.Duration {
		runtime.GC()
		start := time.Now()
		f()
		return time.Since(start)
	}

	b.SetBytes(a.Size)
	b.ResetTimer()
	var bestRaw, bestTarget time.Duration
	for range b.N {
		if d := timed(rawPut); bestRaw == 0 || d < bestRaw {
			bestRaw = d
		}
		if d := timed(upload); bestTarget == 0 || d < bestTarget {
			bestTarget = d
		}
	}
	mbps := func(d time.Duration) float64 { return float64(a.Size) / 1e6 / d.Seconds() }
	b.ReportMetric(mbps(bestRaw), "raw-MB/s")
	b.ReportMetric(mbps(bestTarget), "target-MB/s")
	b.ReportMetric(mbps(bestTarget)/mbps(bestRaw), "target/raw")
}
