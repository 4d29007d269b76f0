package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-project/kiln/internal/service/store"
)

// QueueDequeuers is how many workers BenchmarkQueue runs.
const QueueDequeuers = 8

// BenchmarkQueue measures the queue's hand-out of no-op jobs: a producer
// enqueues b.N composes of one job each, keeping at most QueueDequeuers
// jobs in flight (so a worker is free for every job it enqueues), and
// QueueDequeuers workers long-poll with Wait and Dequeue and finish each
// job at once. It reports jobs/s (enqueue, dequeue and finish, end to end)
// and the 50th and 99th percentiles of the time from the start of the
// enqueue to a waiting worker holding the job (p50-ms, p99-ms).
func BenchmarkQueue(b *testing.B, backend store.Backend) {
	const typ = "noop"
	slots := make(chan struct{}, QueueDequeuers)
	stop := make(chan struct{})
	latencies := make([]time.Duration, 0, b.N)
	var mu sync.Mutex
	var finished atomic.Int64
	allDone := make(chan struct{})
	var failed atomic.Value
	fail := func(err error) {
		if failed.CompareAndSwap(nil, err) {
			close(stop)
		}
	}

	var wg sync.WaitGroup
	for w := range QueueDequeuers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("bench-%d", w)
			for {
				wait := backend.Wait()
				l, err := backend.Dequeue(ctx, []string{typ}, nil, store.Worker{Name: name}, time.Minute)
				if errors.Is(err, store.ErrNoJob) {
					select {
					case <-wait:
						continue
					case <-stop:
						return
					}
				}
				if err != nil {
					fail(err)
					return
				}
				got := time.Now()
				var args struct{ Enqueued int64 }
				if err := json.Unmarshal(l.Job.Args, &args); err != nil {
					fail(err)
					return
				}
				mu.Lock()
				latencies = append(latencies, got.Sub(time.Unix(0, args.Enqueued)))
				mu.Unlock()
				if err := backend.Finish(ctx, l.Job.ID, l.Token, nil, nil); err != nil {
					fail(err)
					return
				}
				<-slots
				if finished.Add(1) == int64(b.N) {
					close(allDone)
				}
			}
		}()
	}

	b.ResetTimer()
	start := time.Now()
	go func() {
		for i := 0; i < b.N; i++ {
			select {
			case slots <- struct{}{}:
			case <-stop:
				return
			}
			t := time.Now()
			c := store.Compose{ID: store.NewID(), OrgID: "bench", CreatedAt: t, ImageName: "noop", Request: json.RawMessage(`{}`)}
			args := json.RawMessage(fmt.Sprintf(`{"enqueued":%d}`, t.UnixNano()))
			if err := backend.CreateCompose(ctx, c, []store.Job{{ID: store.NewID(), Type: typ, Args: args}}); err != nil {
				fail(err)
				return
			}
		}
	}()
	select {
	case <-allDone:
		close(stop)
	case <-stop:
	}
	elapsed := time.Since(start)
	b.StopTimer()
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
