package api

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/service/artifacts"
)

// A client that sends a request's headers and then stalls its body is
// cut off once the body timeout has passed, instead of holding the
// connection for ever.
func TestStalledBodyIsCutOff(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.BodyTimeout = time.Second })
	u, err := url.Parse(ts.url)
	require.NoError(t, err)
	conn, err := net.Dial("tcp", u.Host)
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "POST "+Prefix+"/compose HTTP/1.1\r\nHost: "+u.Host+"\r\nAuthorization: Bearer "+ts.tokens["acme"]+
		"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
	require.NoError(t, err)

	start := time.Now()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server still waits for the body after %s", time.Since(start))
	if err == nil {
		defer resp.Body.Close()
		assert.Equal(t, http.StatusRequestTimeout, resp.StatusCode)
		assert.True(t, resp.Close, "the connection closes")
	}
	assert.Less(t, time.Since(start), 3*time.Second)
}

// The body timeout does not touch a response that takes longer: a log
// followed past it keeps receiving what is appended.
func TestBodyTimeoutSparesLogStreams(t *testing.T) {
	arts := artifacts.Local{Dir: t.TempDir()}
	ts := newTestServer(t, func(c *Config) {
		c.BodyTimeout = 500 * time.Millisecond
		c.Artifacts = arts
	})
	id := composeOfType(t, ts, "qcow2")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lines := followLog(t, ctx, ts, "acme", id)
	time.Sleep(1500 * time.Millisecond)
	require.NoError(t, arts.Append(ctx, id, artifacts.BuildLog, []byte("late line\n")))
	select {
	case l, ok := <-lines:
		require.True(t, ok, "the stream ended")
		assert.Equal(t, "late line", l)
	case <-ctx.Done():
		t.Fatal("the appended line never arrived")
	}
}

// followLog opens org's log stream of compose id and sends each line it
// receives; the channel closes when the stream ends.
func followLog(t *testing.T, ctx context.Context, ts *testServer, org, id string) <-chan string {
	t.Helper()
	resp := openLog(t, ctx, ts, org, id)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	out := make(chan string, 16)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			out <- strings.TrimSpace(sc.Text())
		}
	}()
	return out
}

func openLog(t *testing.T, ctx context.Context, ts *testServer, org, id string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.url+Prefix+"/composes/"+id+"/logs", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+ts.tokens[org])
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	return resp
}

// An org holds at most LogStreams.PerOrg log streams at once: one more is
// 429 saying how many it may hold; other orgs are not counted with it,
// and a stream the client closes frees its place.
func TestLogStreamsPerOrg(t *testing.T) {
	ts := newTestServer(t, func(c *Config) {
		c.Artifacts = artifacts.Local{Dir: t.TempDir()}
		c.LogStreams.PerOrg = 2
	})
	acme := composeOfType(t, ts, "qcow2")
	r := ts.do(t, "other", "POST", "/compose", composeBody())
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	other := r.json(t)["id"].(string)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	first, cancelFirst := context.WithCancel(ctx)
	followLog(t, first, ts, "acme", acme)
	followLog(t, ctx, ts, "acme", acme)

	extraCtx, cancelExtra := context.WithTimeout(ctx, 3*time.Second)
	defer cancelExtra()
	resp := openLog(t, extraCtx, ts, "acme", acme)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	extra := reply{status: resp.StatusCode, header: resp.Header, body: body}
	require.Equal(t, http.StatusTooManyRequests, extra.status, string(extra.body))
	assert.Contains(t, errorShape(t, extra).Errors[0].Detail, "2 build logs at once")
	assert.Contains(t, errorShape(t, extra).Errors[0].Detail, "close one")

	for range 2 {
		resp := openLog(t, ctx, ts, "other", other)
		assert.Equal(t, http.StatusOK, resp.StatusCode, "another org's streams are its own")
		defer resp.Body.Close()
	}

	cancelFirst()
	require.Eventually(t, func() bool {
		resp := openLog(t, ctx, ts, "acme", acme)
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return false
		}
		t.Cleanup(func() { resp.Body.Close() })
		return true
	}, 5*time.Second, 50*time.Millisecond, "a closed stream frees its place")
}
