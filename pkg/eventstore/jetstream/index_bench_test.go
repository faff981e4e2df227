package jetstream

// The per-stream index's memory (issue 13): how much heap a store keeps
// for the streams it has written, and what the index costs an append and
// a start.
//
//	go test -run '^$' -bench IndexMemory -benchtime 1x ./pkg/eventstore/jetstream/
//	CUSTODY_INDEX_STREAMS=200000 go test ... (the default)
//	CUSTODY_INDEX_CACHE=65536 go test ... (Config.IndexCache of the kv runs)
//
// Each sub-benchmark starts an embedded server (relaxed sync: the disk is
// not what is measured), appends one event to each of S new streams
// (NoStream, as a new order does), and one more to each (Exact(0)): "cold",
// once every stream has had its first (the streams went cold in between:
// the worst case for the kv's LRU), or "hot", right after its own first. It
// appends from 64 goroutines so that messages are shared as in production.
// It reports:
//
//   - index-B/stream: the heap the store keeps, per stream, measured as the
//     live heap (after GC) with the store minus the live heap once the
//     store is dropped (the server and the kv stay);
//   - append-µs: wall time of the appends / appends × goroutines (mean
//     latency of one append), and appends/s;
//   - open-s and open-index-B/stream: a second Open of the same stream
//     (a restart: the full read that checks for damage and builds the
//     index), its time and the heap that store keeps.
//
// b.N is ignored: each run does the whole workload once (-benchtime 1x).

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nuid"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/kv"
	"github.com/custody/custody/pkg/natsembed"
)

func indexBenchStreams() int {
	if n, err := strconv.Atoi(os.Getenv("CUSTODY_INDEX_STREAMS")); err == nil && n > 0 {
		return n
	}
	return 200_000
}

// liveHeap is the heap in use after two collections.
func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func BenchmarkIndexMemory(b *testing.B) {
	for _, mode := range indexBenchModes {
		for _, cold := range []bool{true, false} {
			name := mode.name + "/hot"
			if cold {
				name = mode.name + "/cold"
			}
			b.Run(name, func(b *testing.B) { benchIndexMemory(b, mode.cfg, cold) })
		}
	}
}

// indexBenchMode configures the store of one sub-benchmark.
type indexBenchMode struct {
	name string
	cfg  func(b *testing.B, cfg *Config)
}

var indexBenchModes = []indexBenchMode{
	{name: "memory", cfg: func(*testing.B, *Config) {}},
	{name: "kv", cfg: func(b *testing.B, cfg *Config) {
		db, err := kv.Open(b.TempDir(), kv.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = db.Close() })
		cfg.Index = db
		if n, err := strconv.Atoi(os.Getenv("CUSTODY_INDEX_CACHE")); err == nil {
			cfg.IndexCache = n
		}
	}},
}

// benchIndexMemory runs the workload; cold: every stream's second append
// comes after every stream's first (the worst case for an LRU), else right
// after its own first, as an order's events come while it is in flight.
func benchIndexMemory(b *testing.B, configure func(*testing.B, *Config), cold bool) {
	streams := indexBenchStreams()
	srv, err := natsembed.Start(natsembed.Config{DataDir: b.TempDir(), RelaxedSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := srv.Connect()
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	ctx := context.Background()
	cfg := Config{Service: "idx"}
	configure(b, &cfg)
	names := make([]string, streams)
	for i := range names {
		names[i] = "order-" + nuid.Next()
	}
	payload := []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	ev := func() []eventstore.EventData {
		return []eventstore.EventData{{ID: "evt-" + nuid.Next(), Type: "custody.order.v1.OrderPlaced", Data: payload}}
	}

	st, err := Open(ctx, nc, cfg)
	if err != nil {
		b.Fatal(err)
	}
	const workers = 64
	var took time.Duration
	passes := [][]eventstore.ExpectedRevision{{eventstore.NoStream}, {eventstore.Exact(0)}}
	if !cold {
		passes = [][]eventstore.ExpectedRevision{{eventstore.NoStream, eventstore.Exact(0)}}
	}
	for _, pass := range passes {
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range workers {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= streams {
						return
					}
					for _, exp := range pass {
						if _, err := st.Append(ctx, names[i], exp, ev()); err != nil {
							b.Error(err)
							return
						}
					}
				}
			})
		}
		wg.Wait()
		took += time.Since(start)
	}
	if b.Failed() {
		return
	}
	withStore := liveHeap()
	runtime.KeepAlive(st)
	_ = st.Close()
	st = nil
	without := liveHeap()
	appends := 2 * streams
	b.ReportMetric(float64(int64(withStore)-int64(without))/float64(streams), "index-B/stream")
	b.ReportMetric(took.Seconds()*1e6*workers/float64(appends), "append-µs")
	b.ReportMetric(float64(appends)/took.Seconds(), "appends/s")

	start := time.Now()
	st2, err := Open(ctx, nc, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(time.Since(start).Seconds(), "open-s")
	// The reopened store answers for a stream written before the restart.
	if got, err := st2.ReadStream(ctx, names[streams/2], 0, 0); err != nil || len(got) != 2 {
		b.Fatalf("read after reopen: %d events, %v", len(got), err)
	}
	with2 := liveHeap()
	runtime.KeepAlive(st2)
	_ = st2.Close()
	st2 = nil
	without2 := liveHeap()
	b.ReportMetric(float64(int64(with2)-int64(without2))/float64(streams), "open-index-B/stream")
	b.Logf("%d streams, %d appends in %v; store heap %.1f MB; after reopen %.1f MB",
		streams, appends, took.Round(time.Millisecond), float64(withStore-without)/1e6, float64(int64(with2)-int64(without2))/1e6)
}
