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

// Batch sizes of BenchmarkQueue's batch path: the producer stores up to
// QueueEnqueueBatch composes (of one job each) with one CreateComposes,
// and each worker takes up to QueueTakeBatch jobs with one DequeueBatch.
const (
	QueueEnqueueBatch = 100
	QueueTakeBatch    = 16
)

// BenchmarkQueue measures the queue's hand-out of no-op jobs, with
// QueueDequeuers workers that long-poll with Wait and take jobs, and
// finish each job at once, and one producer. It reports jobs/s (enqueue,
// dequeue and finish, end to end) and the 50th and 99th percentiles of
// the time from the start of a job's enqueue to a waiting worker holding
// it (p50-ms, p99-ms).
//
// single: the producer enqueues b.N composes of one job each, one at a
// time, keeping at most QueueDequeuers jobs in flight (so a worker is free
// for every job it enqueues); each worker takes one job per Dequeue.
//
// batch: the producer keeps up to QueueDequeuers*QueueTakeBatch jobs in
// flight, storing as many composes as are free (at most
// QueueEnqueueBatch) with one CreateComposes; each worker takes up to
// QueueTakeBatch jobs per DequeueBatch (a worker that runs that many jobs
// at once).
func BenchmarkQueue(b *testing.B, backend store.Backend) {
	b.Run("single", func(b *testing.B) { benchmarkQueue(b, backend, 1, 1) })
	b.Run(fmt.Sprintf("batch-enqueue%d-take%d", QueueEnqueueBatch, QueueTakeBatch), func(b *testing.B) {
		benchmarkQueue(b, backend, QueueEnqueueBatch, QueueTakeBatch)
	})
}

func benchmarkQueue(b *testing.B, backend store.Backend, enqueueBatch, takeBatch int) {
	const typ = "noop"
	inFlight := QueueDequeuers * takeBatch
	slots := make(chan struct{}, inFlight)
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
	// Every run has an org of its own: the org's compose count is one row
	// that every enqueue updates, and runs must not share it.
	org := "bench-" + store.NewID()

	var wg sync.WaitGroup
	for w := range QueueDequeuers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("bench-%d", w)
			for {
				wait := backend.Wait()
				var ls []store.Lease
				var err error
				if takeBatch == 1 {
					var l store.Lease
					l, err = backend.Dequeue(ctx, []string{typ}, nil, store.Worker{Name: name}, time.Minute)
					ls = []store.Lease{l}
				} else {
					ls, err = backend.DequeueBatch(ctx, []string{typ}, nil, store.Worker{Name: name}, time.Minute, takeBatch)
				}
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
				for _, l := range ls {
					var args struct{ Enqueued int64 }
					if err := json.Unmarshal(l.Job.Args, &args); err != nil {
						fail(err)
						return
					}
					mu.Lock()
					latencies = append(latencies, got.Sub(time.Unix(0, args.Enqueued)))
					mu.Unlock()
				}
				for _, l := range ls {
					if err := backend.Finish(ctx, l.Job.ID, l.Token, nil, nil); err != nil {
						fail(err)
						return
					}
					<-slots
					if finished.Add(1) == int64(b.N) {
						close(allDone)
					}
				}
			}
		}()
	}

	b.ResetTimer()
	start := time.Now()
	go func() {
		for i := 0; i < b.N; {
			// Wait for one free slot, then take every other free one,
			// up to the batch.
			select {
			case slots <- struct{}{}:
			case <-stop:
				return
			}
			n := 1
		more:
			for n < enqueueBatch && i+n < b.N {
				select {
				case slots <- struct{}{}:
					n++
				default:
					break more
				}
			}
			t := time.Now()
			cs := make([]store.NewCompose, n)
			for k := range cs {
				args := json.RawMessage(fmt.Sprintf(`{"enqueued":%d}`, t.UnixNano()))
				cs[k] = store.NewCompose{
					Compose: store.Compose{ID: store.NewID(), OrgID: org, CreatedAt: t, ImageName: "noop", Request: json.RawMessage(`{}`)},
					Jobs:    []store.Job{{ID: store.NewID(), Type: typ, Args: args}},
				}
			}
			var err error
			if enqueueBatch == 1 {
				err = backend.CreateCompose(ctx, cs[0].Compose, cs[0].Jobs)
			} else {
				err = backend.CreateComposes(ctx, org, cs, store.Quota{})
			}
			if err != nil {
				fail(err)
				return
			}
			i += n
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
