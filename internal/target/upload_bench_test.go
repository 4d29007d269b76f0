package target_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
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
	// The same multipart protocol the target speaks, driven by plain
	// HTTP with the target's part size and concurrency: what the server
	// itself gives a multipart upload, without any client's overhead.
	partSize, conc := int64(16<<20), 8
	if cfg.PartSize >= 5 {
		partSize = cfg.PartSize << 20
	}
	if cfg.Concurrency > 0 {
		conc = cfg.Concurrency
	}
	mpURL := srv.URL + "/" + targettest.S3Bucket + "/rawmp/" + a.Filename
	send := func(method, u string, body []byte) []byte {
		req, err := http.NewRequest(method, u, bytes.NewReader(body))
		require.NoError(b, err)
		req.Header.Set("Authorization", auth)
		req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(b, err)
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		require.NoError(b, err)
		require.Equal(b, http.StatusOK, resp.StatusCode, string(out))
		return out
	}
	rawMultipart := func() {
		var created struct {
			UploadID string `xml:"UploadId"`
		}
		require.NoError(b, xml.Unmarshal(send(http.MethodPost, mpURL+"?uploads", nil), &created))
		parts := int((int64(len(data)) + partSize - 1) / partSize)
		etags := make([]string, parts)
		var wg sync.WaitGroup
		sem := make(chan struct{}, conc)
		for i := range parts {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				end := min(int64(i+1)*partSize, int64(len(data)))
				req, err := http.NewRequest(http.MethodPut, fmt.Sprintf("%s?partNumber=%d&uploadId=%s", mpURL, i+1, created.UploadID), bytes.NewReader(data[int64(i)*partSize:end]))
				if err != nil {
					panic(err)
				}
				req.Header.Set("Authorization", auth)
				req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					panic(err)
				}
				resp.Body.Close()
				etags[i] = resp.Header.Get("ETag")
			}()
		}
		wg.Wait()
		var done bytes.Buffer
		done.WriteString("<CompleteMultipartUpload>")
		for i, e := range etags {
			fmt.Fprintf(&done, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i+1, e)
		}
		done.WriteString("</CompleteMultipartUpload>")
		send(http.MethodPost, mpURL+"?uploadId="+created.UploadID, done.Bytes())
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
	var bestRaw, bestMultipart, bestTarget time.Duration
	for range b.N {
		if d := timed(rawPut); bestRaw == 0 || d < bestRaw {
			bestRaw = d
		}
		if d := timed(rawMultipart); bestMultipart == 0 || d < bestMultipart {
			bestMultipart = d
		}
		if d := timed(upload); bestTarget == 0 || d < bestTarget {
			bestTarget = d
		}
	}
	mbps := func(d time.Duration) float64 { return float64(a.Size) / 1e6 / d.Seconds() }
	b.ReportMetric(mbps(bestRaw), "raw-MB/s")
	b.ReportMetric(mbps(bestTarget), "target-MB/s")
	b.ReportMetric(mbps(bestTarget)/mbps(bestRaw), "target/raw")
	b.ReportMetric(mbps(bestMultipart), "raw-multipart-MB/s")
	b.ReportMetric(mbps(bestTarget)/mbps(bestMultipart), "target/raw-multipart")
}
