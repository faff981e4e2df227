package domain_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/eventstore/memory"
	"github.com/custody/custody/services/audit/domain"
	"github.com/custody/custody/services/audit/internal/story"
)

var t0 = time.Date(2030, 3, 1, 12, 0, 0, 0, time.UTC)

var services = []string{"catalog", "order", "fulfilment", "trust", "payouts"}

type testClock struct{ t time.Time }

func (c *testClock) Set(t time.Time) { c.t = t }
func (c *testClock) Now() time.Time  { return c.t }

// world is one memory store per service, stamped by one settable clock.
type world struct {
	clk    *testClock
	stores map[string]eventstore.Store
}

func newWorld() *world {
	w := &world{clk: &testClock{t: t0}, stores: map[string]eventstore.Store{}}
	for _, s := range services {
		w.stores[s] = memory.New(w.clk.Now)
	}
	return w
}

func (w *world) write(t *testing.T, s story.Story, events []story.Event) {
	t.Helper()
	if err := s.Write(t.Context(), w.stores, w.clk, events); err != nil {
		t.Fatal(err)
	}
}

// all returns every stored event of a service, in position order.
func (w *world) all(t *testing.T, service string) []eventstore.RecordedEvent {
	t.Helper()
	evs, err := w.stores[service].ReadAll(t.Context(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// index builds an index reading the services' stores one after another in
// the order given (each store in its own position order).
func (w *world) index(t *testing.T, order ...string) *domain.Index {
	t.Helper()
	if len(order) == 0 {
		order = services
	}
	x := domain.NewIndex()
	for _, svc := range order {
		for _, e := range w.all(t, svc) {
			add(x, svc, e)
		}
	}
	return x
}

func add(x *domain.Index, svc string, e eventstore.RecordedEvent) {
	x.Add(svc, e, domain.DecodePayload(e))
}

func (w *world) stream(t *testing.T, ref domain.StreamRef) []eventstore.RecordedEvent {
	t.Helper()
	evs, err := w.stores[ref.Service].ReadStream(t.Context(), ref.Stream, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// event reads the stored event an entry stands for.
func (w *world) event(t *testing.T, e *domain.Entry) eventstore.RecordedEvent {
	t.Helper()
	evs, err := w.stores[e.Service].ReadStream(t.Context(), e.Event.Stream, e.Event.Revision, 1)
	if err != nil || len(evs) != 1 {
		t.Fatalf("%s %s@%d: %v", e.Service, e.Event.Stream, e.Event.Revision, err)
	}
	return evs[0]
}

func (w *world) decoded(t *testing.T, ref domain.StreamRef) []es.Event {
	t.Helper()
	evs, err := w.stores[ref.Service].ReadStream(t.Context(), ref.Stream, 0, 0)
	if err != nil {
		return nil
	}
	var out []es.Event
	for _, r := range evs {
		ev, err := es.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func (w *world) histories(t *testing.T, s story.Story) domain.Histories {
	t.Helper()
	h := domain.Histories{
		Order:       w.decoded(t, domain.OrderAggregate.Stream(s.OrderID)),
		Fulfilments: map[string][]es.Event{},
		Claims:      w.decoded(t, domain.ClaimsAggregate.Stream(s.OrderID)),
		Ledger:      w.decoded(t, domain.LedgerAggregate.Stream(s.OrderID)),
	}
	if evs := w.decoded(t, domain.FulfilmentAggregate.Stream(s.FulfilmentID)); evs != nil {
		h.Fulfilments[s.FulfilmentID] = evs
	}
	return h
}

func ids(entries []*domain.Entry) []string {
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, fmt.Sprintf("%s/%s@%d", e.Service, e.Event.Stream, e.Event.Revision))
	}
	return out
}

func sameIDs(a, b []*domain.Entry) bool { return slices.Equal(ids(a), ids(b)) }
