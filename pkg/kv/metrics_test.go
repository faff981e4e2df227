package kv_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/custody/custody/pkg/kv"
)

var metrics *sdkmetric.ManualReader

func TestMain(m *testing.M) {
	metrics = sdkmetric.NewManualReader()
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(metrics)))
	os.Exit(m.Run())
}

// sums collects the store's metrics: each counter's or gauge's points,
// by name and then by their one attribute's value ("" without one).
func sums(t *testing.T) map[string]map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := metrics.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			var points []metricdata.DataPoint[int64]
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				points = d.DataPoints
			case metricdata.Gauge[int64]:
				points = d.DataPoints
			}
			for _, p := range points {
				label := ""
				if iter := p.Attributes.Iter(); iter.Next() {
					label = iter.Attribute().Value.AsString()
				}
				if out[m.Name] == nil {
					out[m.Name] = map[string]int64{}
				}
				out[m.Name][label] += p.Value
			}
		}
	}
	return out
}

// Pebble reserves its memtables' size in the block cache; a store whose
// cache were only CacheBytes would keep no block beside full memtables,
// and every read of a table would read the file.
func TestTheBlockCacheKeepsBlocksBesideItsMemtables(t *testing.T) {
	db, err := kv.Open(t.TempDir(), kv.Options{CacheBytes: 1 << 20, MemTableBytes: 1 << 20, PendingBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := space(t, db, "m")
	// Enough to fill memtables several times over, so most keys are in tables.
	const n = 30_000
	for i := range n {
		b := s.Batch()
		if err := b.Set(fmt.Appendf(nil, "%08d", i), make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(uint64(i + 1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	// Read the first thousand keys (in tables by now) again and again.
	for range 20 {
		for i := range 1000 {
			if _, ok, err := s.Get(fmt.Appendf(nil, "%08d", i)); err != nil || !ok {
				t.Fatalf("key %d: %v %v", i, ok, err)
			}
		}
	}
	got := sums(t)
	hits, misses := got["custody.readmodels.block_cache.hits"][""], got["custody.readmodels.block_cache.misses"][""]
	if hits < 10*misses {
		t.Errorf("block cache: %d hits, %d misses; want the rereads answered from the cache", hits, misses)
	}
	if got["custody.readmodels.table_bytes_written"]["flush"] == 0 {
		t.Errorf("no bytes flushed to tables: %v", got["custody.readmodels.table_bytes_written"])
	}
	if got["custody.readmodels.memory"]["memtables"] == 0 {
		t.Errorf("memtables' memory not reported: %v", got["custody.readmodels.memory"])
	}
}
