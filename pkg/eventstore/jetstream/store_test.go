package jetstream_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/eventstore/conformance"
	"github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/kv"
	"github.com/custody/custody/pkg/natsembed"
)

// instance is one embedded server and a store on it, owned by one test.
type instance struct {
	*jetstream.Store
	srv *natsembed.Server
	nc  *nats.Conn
	dir string
	db  *kv.DB // the store's index, if kept in a kv store (startKV)
}

func (i *instance) Close() error {
	_ = i.Store.Close()
	i.nc.Close()
	i.srv.Shutdown()
	if i.db != nil {
		return i.db.Close()
	}
	return nil
}

func start(t *testing.T, dir string) *instance {
	t.Helper()
	return startWith(t, dir, nil)
}

// startKV starts a store whose index is in a kv store of its own in
// dir/index, keeping cache streams' entries in memory per partition.
func startKV(t *testing.T, dir string, cache int) *instance {
	t.Helper()
	db := openIndexDB(t, filepath.Join(dir, "index"))
	i := startWith(t, dir, func(c *jetstream.Config) { c.Index, c.IndexCache = db, cache })
	i.db = db
	return i
}

func openIndexDB(t *testing.T, dir string) *kv.DB {
	t.Helper()
	db, err := kv.Open(dir, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func startWith(t *testing.T, dir string, configure func(*jetstream.Config)) *instance {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	cfg := jetstream.Config{Service: "test"}
	if configure != nil {
		configure(&cfg)
	}
	st, err := jetstream.Open(t.Context(), nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &instance{Store: st, srv: srv, nc: nc, dir: dir}
}

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Backend{
		// Position = stream sequence << 16 | index in the commit: increasing, not dense.
		DensePositions: false,
		New:            func(t *testing.T) eventstore.Store { return start(t, t.TempDir()) },
		Peer: func(t *testing.T, s eventstore.Store) eventstore.Store {
			i := s.(*instance)
			nc, err := i.srv.Connect()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			st, err := jetstream.Open(t.Context(), nc, jetstream.Config{Service: "test"})
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
		Restart: func(t *testing.T, s eventstore.Store) eventstore.Store {
			i := s.(*instance)
			i.Close()
			return start(t, i.dir)
		},
		DeleteEvent: func(ctx context.Context, s eventstore.Store, pos uint64) error {
			seq, _ := jetstream.SplitPosition(pos)
			return s.(*instance).JetStream().DeleteMsg(ctx, seq)
		},
		PurgeStream: func(ctx context.Context, s eventstore.Store, stream string) error {
			return s.(*instance).JetStream().Purge(ctx)
		},
	})
}

// The same suite with the index in a kv store and one stream's entry per
// partition in memory, message refs sealed two by two: every stream but
// the last one touched is cold, read from the kv. The peer (another
// process) has a kv store of its own; a restart reopens the same kv store,
// whose Spaces from before must not be trusted.
func TestConformanceWithIndexInKV(t *testing.T) {
	defer jetstream.SetRefChunk(2)()
	conformance.Run(t, conformance.Backend{
		DensePositions: false,
		New:            func(t *testing.T) eventstore.Store { return startKV(t, t.TempDir(), 1) },
		Peer: func(t *testing.T, s eventstore.Store) eventstore.Store {
			i := s.(*instance)
			nc, err := i.srv.Connect()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			db := openIndexDB(t, t.TempDir())
			st, err := jetstream.Open(t.Context(), nc, jetstream.Config{Service: "test", Index: db, IndexCache: 1})
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
		Restart: func(t *testing.T, s eventstore.Store) eventstore.Store {
			i := s.(*instance)
			i.Close()
			return startKV(t, i.dir, 1)
		},
		DeleteEvent: func(ctx context.Context, s eventstore.Store, pos uint64) error {
			seq, _ := jetstream.SplitPosition(pos)
			return s.(*instance).JetStream().DeleteMsg(ctx, seq)
		},
		PurgeStream: func(ctx context.Context, s eventstore.Store, stream string) error {
			return s.(*instance).JetStream().Purge(ctx)
		},
	})
}

// Appends of many aggregates made at once share messages (group commit),
// and each is still its own atomic append with its own revisions.
func TestConcurrentAppendsShareMessages(t *testing.T) {
	i := start(t, t.TempDir())
	defer i.Close()
	const appends = 200
	var wg sync.WaitGroup
	for k := range appends {
		wg.Go(func() {
			in := []eventstore.EventData{{ID: fmt.Sprintf("g%d-0", k), Type: "t"}, {ID: fmt.Sprintf("g%d-1", k), Type: "t"}}
			res, err := i.Append(t.Context(), fmt.Sprintf("order-g%d", k), eventstore.NoStream, in)
			if err != nil || res.LastRevision != 1 {
				t.Errorf("append %d: %+v, %v", k, res, err)
			}
		})
	}
	wg.Wait()
	info, err := i.JetStream().Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs >= appends {
		t.Errorf("%d appends made at once took %d messages; group commit should share them", appends, info.State.Msgs)
	}
	for k := range appends {
		got, err := i.ReadStream(t.Context(), fmt.Sprintf("order-g%d", k), 0, 0)
		if err != nil || len(got) != 2 || got[0].ID != fmt.Sprintf("g%d-0", k) || got[1].Revision != 1 {
			t.Fatalf("order-g%d: %v, %v", k, got, err)
		}
		if _, err := eventstore.VerifyChain(got); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d appends in %d messages", appends, info.State.Msgs)
}
