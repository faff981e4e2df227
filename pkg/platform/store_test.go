package platform_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/eventstore/esdb"
	"github.com/custody/custody/pkg/eventstore/esdb/esdbfake"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/pkg/platform/platformtest"
)

// With --store=esdb a module's events live in EventStoreDB, and its relay
// copies them into its JetStream stream, where the other services'
// reactions consume them. The server here is esdbfake, an in-process
// stand-in for EventStoreDB (no real server can run on our machines): this
// test says that the platform wires the esdb backend end to end, not that
// a real server behaves like the fake.
func TestESDBStoreRelaysEventsToReactions(t *testing.T) {
	f := esdbfake.Start(t, true)
	shop, err := esdb.Open(t.Context(), esdb.Config{URL: f.URL(), Service: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	defer shop.Close()
	const n = 12
	for i := range n {
		if _, err := shop.Append(t.Context(), fmt.Sprintf("cart-%d", i%3), eventstore.Any,
			[]eventstore.EventData{{ID: fmt.Sprintf("ev-%d", i), Type: "custody.shop.v1.Added"}}); err != nil {
			t.Fatal(err)
		}
	}

	var folded atomic.Int64
	var mu sync.Mutex
	handled := map[string]int{}
	owner := platform.Module{Name: "shop", New: func(ctx context.Context, d platform.Deps) (platform.Parts, error) {
		_, err := d.OpenStore(ctx, "shop")
		return platform.Parts{}, err
	}}
	watcher := platform.Module{Name: "watcher", New: func(context.Context, platform.Deps) (platform.Parts, error) {
		return platform.Parts{
			Projections: []platform.Projection{{Name: "carts", Source: "shop", Apply: func(eventstore.RecordedEvent) { folded.Add(1) }}},
			Reactions: []platform.Reaction{{Name: "watcher-on-shop", Source: "shop", EventTypes: []string{"custody.shop.v1.Added"},
				Handle: func(_ context.Context, e eventstore.RecordedEvent) error {
					mu.Lock()
					handled[e.ID]++
					mu.Unlock()
					return nil
				}}},
		}, nil
	}}
	p := platformtest.Start(t, platformtest.Options{Store: platform.Backend{Kind: platform.StoreESDB, ESDBURL: f.URL()}}, owner, watcher)
	p.Settled(t)
	check := func(when string, n int) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if len(handled) != n {
			t.Errorf("%s: the reaction handled %d events, want %d", when, len(handled), n)
		}
		for id, times := range handled {
			if times != 1 {
				t.Errorf("%s: %s handled %d times", when, id, times)
			}
		}
		if got := folded.Load(); got != int64(n) {
			t.Errorf("%s: the projection folded %d events from EventStoreDB, want %d", when, got, n)
		}
		mirror, err := esjs.Open(t.Context(), p.NATS, esjs.Config{Service: "shop", ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		copied, err := mirror.ReadAll(t.Context(), 0, 0)
		if err != nil || len(copied) != n {
			t.Fatalf("%s: the JetStream copy holds %d events (%v), want %d", when, len(copied), err, n)
		}
	}
	check("first start", n)

	// A restarted relay resumes after what it forwarded: nothing twice;
	// an event written meanwhile reaches the reaction once.
	folded.Store(0)
	p.Restart(t)
	if _, err := shop.Append(t.Context(), "cart-9", eventstore.NoStream,
		[]eventstore.EventData{{ID: "ev-late", Type: "custody.shop.v1.Added"}}); err != nil {
		t.Fatal(err)
	}
	p.Settled(t)
	check("after a restart and one more event", n+1)
}
