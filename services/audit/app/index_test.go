package app

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/eventstore/memory"
	"github.com/custody/custody/pkg/kv"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	"github.com/custody/custody/services/audit/domain"
	"github.com/custody/custody/services/audit/internal/story"
)

// The stored index is checked against the heap index (domain.Index),
// which the domain tests pin down: fed the same events in the same order,
// they file every event under the same order with the same buyer, saw the
// same hashes and count the same — also when the stored one is closed and
// reopened between any two events, resuming after the positions its
// spaces hold.

var t0 = time.Date(2030, 3, 1, 12, 0, 0, 0, time.UTC)

// corpus writes three orders' stories into memory stores, and events that
// name their order only through an id that another store ties to it later
// (in some interleavings), an event of an unknown type and a stray one.
func corpus(t *testing.T) map[string][]eventstore.RecordedEvent {
	t.Helper()
	clk := clock.NewFake(t0)
	stores := map[string]eventstore.Store{}
	for _, svc := range DefaultServices {
		stores[svc] = memory.New(clk.Now)
	}
	var stories []story.Story
	for _, id := range []string{"o1", "o2", "o3"} {
		stories = append(stories, story.New(t0, id))
	}
	s1 := stories[0]
	appendRaw := func(svc, stream, typ string, data []byte) {
		clk.Set(clk.Now().Add(time.Second))
		id := es.DeriveID("corpus", svc, stream, typ, fmt.Sprint(clk.Now().UnixNano()))
		if _, err := stores[svc].Append(t.Context(), stream, eventstore.Any, []eventstore.EventData{{ID: id, Type: typ, Data: data}}); err != nil {
			t.Fatal(err)
		}
	}
	add := func(svc, stream string, msg proto.Message) {
		ed, err := es.Encode(msg)
		if err != nil {
			t.Fatal(err)
		}
		appendRaw(svc, stream, ed.Type, ed.Data)
	}
	// First in their stores: a return received (its id only) in the
	// payouts store, which the trust store ties to o1's claim at its end;
	// a scan naming only o2's fulfilment, in the catalog store; a stray
	// event.
	add("payouts", "returns-r1", &trustv1.ReturnReceived{ReturnId: "r1"})
	add("catalog", "scans-x1", &fulfilmentv1.TrackingEventRecorded{FulfilmentId: stories[1].FulfilmentID, CarrierEventId: "x"})
	appendRaw("order", "gadget-g1", "custody.future.v1.Thing", nil)
	for _, s := range stories {
		if err := s.Write(t.Context(), stores, clk, s.Events); err != nil {
			t.Fatal(err)
		}
	}
	add("trust", "claims-o1", &trustv1.ReturnShipped{ClaimId: s1.ClaimID, ReturnId: "r1"})
	// An unknown type in o3's fulfilment stream; an order whose only event
	// names a buyer, and claims o1's claim id (o1 keeps it).
	appendRaw("fulfilment", "fulfilment-"+stories[2].FulfilmentID, "custody.future.v1.Thing", []byte{1, 2, 3})
	add("trust", "claims-o4", &trustv1.ClaimOpened{ClaimId: s1.ClaimID, OrderId: "o4", BuyerId: "b4"})

	out := map[string][]eventstore.RecordedEvent{}
	for svc, st := range stores {
		evs, err := st.ReadAll(t.Context(), 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		out[svc] = evs
	}
	return out
}

// stored is a Service whose index lives in the kv store in dir.
type stored struct {
	svc   *Service
	db    *kv.DB
	feeds map[string]Feed
}

func openStored(t testing.TB, dir string) *stored {
	t.Helper()
	db, err := kv.Open(dir, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc := New(Config{}, Deps{Clock: clock.NewFake(t0), Logger: slog.New(slog.DiscardHandler)})
	s := &stored{svc: svc, db: db, feeds: map[string]Feed{}}
	for _, f := range svc.Feeds() {
		space, err := db.Space("audit/order index (" + f.Service + ")")
		if err != nil {
			t.Fatal(err)
		}
		pos, version, err := space.State()
		if err != nil {
			t.Fatal(err)
		}
		if version != IndexVersion {
			if err := space.Reset(IndexVersion); err != nil {
				t.Fatal(err)
			}
			pos = 0
		}
		if err := f.Stored.Attach(space); err != nil {
			t.Fatal(err)
		}
		f.Position.Advance(pos)
		s.feeds[f.Service] = f
	}
	return s
}

func (s *stored) close(t testing.TB) {
	t.Helper()
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
}

// snapshot is everything the index answers, as text.
func snapshot(t *testing.T, orders []string, streams []domain.StreamRef, order func(string) (domain.OrderView, bool),
	seen func(domain.StreamRef) [][]byte, stats domain.Stats, ordersOf func(string) []string) []string {
	t.Helper()
	out := []string{fmt.Sprintf("stats %+v", stats)}
	for _, b := range buyers {
		out = append(out, fmt.Sprintf("buyer %s orders %v", b, ordersOf(b)))
	}
	for _, id := range orders {
		v, ok := order(id)
		out = append(out, fmt.Sprintf("order %s %v buyer %q", id, ok, v.BuyerID))
		for _, e := range v.Entries {
			out = append(out, fmt.Sprintf("  %s %s@%d pos %d at %s %s", e.Service, e.Event.Stream, e.Event.Revision, e.Event.Position,
				e.Event.RecordedAt.UTC().Format(time.RFC3339Nano), e.Event.Type))
		}
	}
	for _, r := range streams {
		out = append(out, fmt.Sprintf("seen %s %x", r, seen(r)))
	}
	return out
}

func (s *stored) snapshot(t *testing.T, orders []string, streams []domain.StreamRef) []string {
	x := s.svc.idx
	return snapshot(t, orders, streams, func(id string) (domain.OrderView, bool) {
		v, ok, err := x.order(id)
		if err != nil {
			t.Fatal(err)
		}
		return v, ok
	}, func(r domain.StreamRef) [][]byte {
		h, err := x.seen(r)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}, func() domain.Stats { st, _ := x.stats(); return st }(), func(b string) []string {
		o, err := x.ordersOf(b)
		if err != nil {
			t.Fatal(err)
		}
		return o
	})
}

// buyers are the corpus's buyers (b-o1 … b-o3 from the stories, b4), and
// one without orders.
var buyers = []string{"b-o1", "b-o2", "b-o3", "b4", "b-nope"}

func TestStoredIndexFilesAsTheHeapIndexAcrossReopens(t *testing.T) {
	t.Parallel()
	events := corpus(t)
	orders := []string{"o1", "o2", "o3", "o4", "o-nope"}
	var streams []domain.StreamRef
	total := 0
	for svc, evs := range events {
		total += len(evs)
		for _, e := range evs {
			r := domain.StreamRef{Service: svc, Stream: e.Stream}
			if !slices.Contains(streams, r) {
				streams = append(streams, r)
			}
		}
	}
	slices.SortFunc(streams, func(a, b domain.StreamRef) int { return compare(a.String(), b.String()) })

	for seed := range uint64(12) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			dir := t.TempDir()
			s := openStored(t, dir)
			heap := domain.NewIndex()
			next := map[string]int{} // the next event of each store to feed
			reopens := 0
			for fed := 0; fed < total; {
				// Any event still to feed is as likely next, in its store's
				// order.
				var svc string
				for n, i := rng.IntN(total-fed), 0; ; i++ {
					svc = DefaultServices[i]
					if n -= len(events[svc]) - next[svc]; n < 0 {
						break
					}
				}
				e := events[svc][next[svc]]
				next[svc]++
				fed++
				heap.Add(svc, e, domain.DecodePayload(e))
				s.feeds[svc].Apply(e)
				s.feeds[svc].Position.Advance(e.Position)

				if rng.IntN(8) != 0 {
					continue
				}
				// Close and reopen: the same answers, and each store's part
				// resumes right after the last event it applied.
				before := s.snapshot(t, orders, streams)
				s.close(t)
				s = openStored(t, dir)
				reopens++
				if after := s.snapshot(t, orders, streams); !slices.Equal(after, before) {
					t.Fatalf("after a reopen:\n%v\nbefore:\n%v", after, before)
				}
				for svc, f := range s.feeds {
					want := uint64(0)
					if next[svc] > 0 {
						want = events[svc][next[svc]-1].Position
					}
					if got := f.Position.Last(); got != want {
						t.Fatalf("%s resumes after position %d, want %d", svc, got, want)
					}
				}
			}
			defer s.close(t)
			want := snapshot(t, orders, streams, heap.Order, heap.Seen, heap.Stats(), heap.OrdersOf)
			if got := s.snapshot(t, orders, streams); !slices.Equal(got, want) {
				t.Errorf("%d reopens: stored index\n%v\nheap index\n%v", reopens, got, want)
			}
			if st := s.svc.Stats(); st.Events != total || st.Orders != 4 || st.Unlinked != heap.Stats().Unlinked {
				t.Errorf("stats %+v, want %d events, 4 orders", st, total)
			}
			for buyer, want := range map[string]string{"b-o1": "[o1]", "b4": "[o4]", "b-nope": "[]"} {
				if got, _ := s.svc.idx.ordersOf(buyer); fmt.Sprint(got) != want {
					t.Errorf("orders of %s: %v, want %s", buyer, got, want)
				}
			}
		})
	}
}

// A skipped event counts across a reopen, and moves the position.
func TestStoredIndexCountsSkippedAcrossReopens(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openStored(t, dir)
	s.feeds["order"].Skipped(7)
	s.close(t)
	s = openStored(t, dir)
	defer s.close(t)
	if st := s.svc.Stats(); st.Skipped != 1 || st.Events != 0 {
		t.Errorf("stats %+v", st)
	}
	if p := s.feeds["order"].Position.Last(); p != 7 {
		t.Errorf("resumes after %d, want 7", p)
	}
}

// The space the stores share is emptied when it was written by another
// version (the platform empties the stores' spaces then): what an older
// index tied is forgotten, and the events fold again as the heap index
// files them.
func TestStoredIndexOfAnotherVersionFoldsAgain(t *testing.T) {
	t.Parallel()
	events := corpus(t)
	dir := t.TempDir()
	db, err := kv.Open(dir, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// An older index: every id of the corpus tied to a stale order.
	shared, err := db.Space(sharedSpace)
	if err != nil {
		t.Fatal(err)
	}
	if err := shared.Reset("audit-index-1"); err != nil {
		t.Fatal(err)
	}
	b := shared.Batch()
	heap := domain.NewIndex()
	for _, svc := range DefaultServices {
		for _, e := range events[svc] {
			for _, k := range domain.RefsOf(e.Stream, domain.DecodePayload(e)).Keys {
				if err := b.Set(linkKey(k), []byte("o-stale")); err != nil {
					t.Fatal(err)
				}
			}
			heap.Add(svc, e, domain.DecodePayload(e))
		}
	}
	if err := b.Set(orderRecordKey("o-stale"), []byte("b-stale")); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(0); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s := openStored(t, dir)
	defer s.close(t)
	for _, svc := range DefaultServices {
		for _, e := range events[svc] {
			s.feeds[svc].Apply(e)
			s.feeds[svc].Position.Advance(e.Position)
		}
	}
	orders := []string{"o1", "o2", "o3", "o4", "o-stale"}
	want := snapshot(t, orders, nil, heap.Order, heap.Seen, heap.Stats(), heap.OrdersOf)
	if got := s.snapshot(t, orders, nil); !slices.Equal(got, want) {
		t.Errorf("stored index\n%v\nheap index\n%v", got, want)
	}
	if _, v, err := s.svc.idx.shared.State(); err != nil || v != IndexVersion {
		t.Errorf("shared space of version %q (%v), want %q", v, err, IndexVersion)
	}
}
