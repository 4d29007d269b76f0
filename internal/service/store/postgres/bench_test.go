package postgres

import (
	"context"
	"testing"

	"github.com/kiln-project/kiln/internal/service/store/storetest"
	"github.com/kiln-project/kiln/internal/testhost"
)

// BenchmarkQueue runs the queue benchmark every backend shares, on a
// server of its own (fsync off: it measures the queue, not the disk).
func BenchmarkQueue(b *testing.B) {
	db, err := Open(context.Background(), testhost.StartPostgres(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	storetest.BenchmarkQueue(b, db)
}
