package sqlite

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/storetest"
)

// BenchmarkListComposes lists a page of 100 in an org of 100 000 composes.
func BenchmarkListComposes(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(b.TempDir(), "kiln.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	req := json.RawMessage(`{"distribution":"debian-12","image_requests":[{"architecture":"x86_64","image_type":"qcow2","upload_request":{"type":"local"}}]}`)
	base := time.Now().Add(-time.Hour)
	for i := range 100000 {
		if err := db.CreateCompose(ctx, store.Compose{ID: store.NewID(), OrgID: "big", CreatedAt: base.Add(time.Duration(i) * time.Millisecond), Request: req}, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, _, err := db.ListComposes(ctx, "big", store.ComposeFilter{}, store.Page{Limit: 100, Offset: (i % 50) * 100}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkQueue runs the queue benchmark every backend shares.
func BenchmarkQueue(b *testing.B) {
	db, err := Open(context.Background(), filepath.Join(b.TempDir(), "kiln.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	storetest.BenchmarkQueue(b, db)
}
