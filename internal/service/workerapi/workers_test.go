package workerapi

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/sqlite"
	"github.com/kiln-project/kiln/internal/workerproto"
)

// countedWorkers counts the writes to a worker registry.
type countedWorkers struct {
	store.Workers
	mu            sync.Mutex
	sees, touches int
}

func (c *countedWorkers) SeeWorker(ctx context.Context, w store.SeenWorker) error {
	c.mu.Lock()
	c.sees++
	c.mu.Unlock()
	return c.Workers.SeeWorker(ctx, w)
}

func (c *countedWorkers) TouchWorker(ctx context.Context, name string, at time.Time) error {
	c.mu.Lock()
	c.touches++
	c.mu.Unlock()
	return c.Workers.TouchWorker(ctx, name, at)
}

func (c *countedWorkers) counts() (sees, touches int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sees, c.touches
}

// A worker's requests for jobs record it with the arches it declares, and
// its heartbeats keep it connected; each at most once per SeenEvery
// unless its arches change.
func TestWorkersAreRecordedCheaply(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	reg := &countedWorkers{}
	cfg := Config{WorkerKey: "key", PollTimeout: 10 * time.Millisecond, Workers: reg, SeenEvery: 15 * time.Second, Now: clock}
	base, l := leasedJobWith(t, &cfg, func(db *sqlite.DB) { reg.Workers = db })
	client := &workerproto.Client{BaseURL: base, Key: "key"}
	poll := func(name string, arches ...string) {
		t.Helper()
		j, err := client.RequestJob(ctx, workerproto.JobRequest{Types: []string{"depsolve"}, Arches: arches, Worker: name})
		require.NoError(t, err)
		require.Nil(t, j)
	}
	connected := func() []store.SeenWorker {
		t.Helper()
		ws, err := reg.ConnectedWorkers(ctx, clock().Add(-store.ConnectedWindow))
		require.NoError(t, err)
		return ws
	}

	poll("arm", "aarch64")
	assert.Equal(t, []store.SeenWorker{{Name: "arm", Arches: []string{"aarch64"}, LastSeen: clock()}}, connected())
	poll("arm", "aarch64")
	advance(5 * time.Second)
	poll("arm", "aarch64")
	sees, _ := reg.counts()
	assert.Equal(t, 1, sees, "polls within SeenEvery are not written again")
	poll("arm", "aarch64", "x86_64")
	sees, _ = reg.counts()
	assert.Equal(t, 2, sees, "new arches are written at once")
	advance(15 * time.Second)
	poll("arm", "aarch64", "x86_64")
	sees, _ = reg.counts()
	assert.Equal(t, 3, sees, "a poll after SeenEvery is written")
	assert.Equal(t, []store.SeenWorker{{Name: "arm", Arches: []string{"aarch64", "x86_64"}, LastSeen: clock()}}, connected())

	// The leased job's worker ("test") polled through another replica:
	// its heartbeats keep it connected.
	require.NoError(t, reg.Workers.SeeWorker(ctx, store.SeenWorker{Name: "test", Arches: []string{"x86_64"}, LastSeen: clock()}))
	advance(time.Minute)
	job := &workerproto.Job{ID: l.Job.ID, Token: l.Token}
	_, err := client.Heartbeat(ctx, job)
	require.NoError(t, err)
	_, err = client.Heartbeat(ctx, job)
	require.NoError(t, err)
	_, touches := reg.counts()
	assert.Equal(t, 1, touches, "heartbeats within SeenEvery are not written again")
	advance(90 * time.Second)
	ws := connected()
	require.Len(t, ws, 1, "the polling worker went quiet; the busy one heartbeat")
	assert.Equal(t, "test", ws[0].Name)
	assert.Equal(t, []string{"x86_64"}, ws[0].Arches)
}
