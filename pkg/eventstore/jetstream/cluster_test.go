package jetstream_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/eventstore/conformance"
	"github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/natsembed"
)

// clusterStore is a store on a replicated (R3) stream of a three-node
// cluster: the production shape, where a concurrency conflict is reported
// as 10164 rather than 10071.
type clusterStore struct {
	*jetstream.Store
	nc *nats.Conn
}

func (s *clusterStore) Close() error {
	s.nc.Close()
	return nil
}

// openOn opens service's store through the node at url, its index in a kv
// store of its own with one stream's entry per partition in memory (so the
// fenced appends of two stores meet cold streams).
func openOn(t *testing.T, url, service string) (*jetstream.Store, *nats.Conn) {
	t.Helper()
	db := openIndexDB(t, t.TempDir())
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	// A freshly formed cluster may need a moment to place an R3 stream.
	var st *jetstream.Store
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		st, err = jetstream.Open(ctx, nc, jetstream.Config{Service: service, Replicas: 3, Index: db, IndexCache: 1})
		cancel()
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	return st, nc
}

func TestConformanceOnThreeNodeCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("three-node cluster conformance skipped in -short mode")
	}
	// One cluster serves the whole suite (forming one takes seconds); each
	// case gets a fresh store of its own, a stream no other case touches.
	c, err := natsembed.StartCluster(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Shutdown)
	defer jetstream.SetRefChunk(2)()
	stores := 0
	conformance.Run(t, conformance.Backend{
		// Position = stream sequence << 16 | index in the commit: increasing, not dense.
		DensePositions: false,
		New: func(t *testing.T) eventstore.Store {
			stores++
			st, nc := openOn(t, c.Servers[0].ClientURL(), fmt.Sprintf("case%d", stores))
			return &clusterStore{Store: st, nc: nc}
		},
		// The peer talks to another node of the cluster.
		Peer: func(t *testing.T, s eventstore.Store) eventstore.Store {
			st, nc := openOn(t, c.Servers[2].ClientURL(), s.(*clusterStore).Service())
			t.Cleanup(nc.Close)
			return st
		},
		SkipRestart: "restart durability is covered on one node (TestConformance) and by the crash test",
		DeleteEvent: func(ctx context.Context, s eventstore.Store, pos uint64) error {
			seq, _ := jetstream.SplitPosition(pos)
			return s.(*clusterStore).JetStream().DeleteMsg(ctx, seq)
		},
		PurgeStream: func(ctx context.Context, s eventstore.Store, _ string) error {
			return s.(*clusterStore).JetStream().Purge(ctx)
		},
	})
}
