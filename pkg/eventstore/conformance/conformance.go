// Package conformance is the one test suite every eventstore backend must
// pass: memory, jetstream and esdb run exactly these tests, so "a backend"
// means "something that satisfies this file".
package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custody/custody/pkg/eventstore"
)

// Backend tells the suite how to run a backend.
type Backend struct {
	// New returns an empty store; the suite closes it.
	New func(t *testing.T) eventstore.Store
	// Peer returns a second store over the same data, as another process
	// would see it (its own connection, no shared caches). Nil means s.
	Peer func(t *testing.T, s eventstore.Store) eventstore.Store
	// Restart stops the store and whatever server holds its data, starts
	// them again on the same data and returns the new store. Nil skips the
	// restart test (say why in SkipRestart).
	Restart     func(t *testing.T, s eventstore.Store) eventstore.Store
	SkipRestart string
	// DeleteEvent and PurgeStream try to remove history behind the port's
	// back (the backend's own admin API). Nil when the backend has no such
	// API at all; say so in SkipDelete.
	DeleteEvent func(ctx context.Context, s eventstore.Store, position uint64) error
	PurgeStream func(ctx context.Context, s eventstore.Store, stream string) error
	SkipDelete  string
	// DensePositions: positions are 1, 2, 3… (the memory backend). Without
	// it they need only increase (JetStream's pack a message sequence and an
	// index; EventStoreDB's are log offsets).
	DensePositions bool
}

// Run runs the whole suite.
func Run(t *testing.T, b Backend) {
	if b.Peer == nil {
		b.Peer = func(_ *testing.T, s eventstore.Store) eventstore.Store { return s }
	}
	tests := []struct {
		name string
		fn   func(*testing.T, Backend)
	}{
		{"AppendAndReadBack", testAppendAndReadBack},
		{"ExpectedRevision", testExpectedRevision},
		{"InvalidAppendWritesNothing", testInvalidAppend},
		{"RetryAfterLostAckIsIdempotent", testIdempotentRetry},
		{"ConcurrentMultiEventAppendsAreAtomic", testConcurrentAtomic},
		{"AnyUnderContention", testAnyUnderContention},
		{"TwoStoresNeverBothWinAConflict", testTwoStores},
		{"ReadStreamFromRevision", testReadStreamFrom},
		{"GlobalOrderHasNoGaps", testGlobalOrder},
		{"CatchUpSubscriptionGoesLive", testSubscribe},
		{"HistoryCannotBeDeleted", testImmutable},
		{"HashChainDetectsTampering", testHashChain},
		{"RestartKeepsEveryAcknowledgedEvent", testRestart},
		{"RequestFingerprintRoundTrips", testRequestFingerprint},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, b) })
	}
}

func open(t *testing.T, b Backend) eventstore.Store {
	t.Helper()
	s := b.New(t)
	t.Cleanup(func() { s.Close() })
	return s
}

var seq atomic.Int64

// ev builds distinct events; ids are unique within a test run.
func ev(prefix string, n int) []eventstore.EventData {
	out := make([]eventstore.EventData, n)
	for i := range out {
		out[i] = eventstore.EventData{
			ID:   fmt.Sprintf("%s-%d-%d", prefix, seq.Add(1), i),
			Type: "custody.test.v1.Happened",
			Data: []byte(fmt.Sprintf("payload %s %d", prefix, i)),
			Metadata: eventstore.Metadata{
				CorrelationID: "corr-" + prefix, CausationID: "cause-" + prefix, Actor: "support",
				TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			},
		}
	}
	return out
}

func mustAppend(t *testing.T, s eventstore.Store, stream string, exp eventstore.ExpectedRevision, evs []eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(t.Context(), stream, exp, evs)
	if err != nil {
		t.Fatalf("append to %s (expected %s): %v", stream, exp, err)
	}
	return res
}

func read(t *testing.T, s eventstore.Store, stream string) []eventstore.RecordedEvent {
	t.Helper()
	evs, err := s.ReadStream(t.Context(), stream, 0, 0)
	if err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatalf("read %s: %v", stream, err)
	}
	return evs
}

func ids(evs []eventstore.RecordedEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func dataIDs(evs []eventstore.EventData) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func testAppendAndReadBack(t *testing.T, b Backend) {
	s := open(t, b)
	before := time.Now().Add(-time.Minute)
	in := ev("a", 2)
	res := mustAppend(t, s, "order-o1", eventstore.NoStream, in)
	if res.LastRevision != 1 || res.Duplicate {
		t.Fatalf("append result = %+v, want last revision 1, not duplicate", res)
	}
	got := read(t, s, "order-o1")
	if len(got) != 2 {
		t.Fatalf("read %d events, want 2", len(got))
	}
	for i, e := range got {
		if e.ID != in[i].ID || e.Type != in[i].Type || !bytes.Equal(e.Data, in[i].Data) || e.Metadata != in[i].Metadata {
			t.Errorf("event %d read back as %+v, want %+v", i, e.EventData, in[i])
		}
		if e.Stream != "order-o1" || e.Revision != uint64(i) {
			t.Errorf("event %d: stream %q revision %d", i, e.Stream, e.Revision)
		}
		if e.RecordedAt.Before(before) || e.RecordedAt.After(time.Now().Add(time.Minute)) {
			t.Errorf("event %d: recorded at %v", i, e.RecordedAt)
		}
		if len(e.Hash) != 32 || len(e.PrevHash) != 32 {
			t.Errorf("event %d: hash %x prev %x", i, e.Hash, e.PrevHash)
		}
	}
	if got[1].Position <= got[0].Position || res.LastPosition != got[1].Position {
		t.Errorf("positions %d, %d; append said last %d", got[0].Position, got[1].Position, res.LastPosition)
	}
	if _, err := s.ReadStream(t.Context(), "order-missing", 0, 0); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Errorf("reading a missing stream: %v, want ErrStreamNotFound", err)
	}
}

func testExpectedRevision(t *testing.T, b Backend) {
	s := open(t, b)
	mustAppend(t, s, "order-x", eventstore.NoStream, ev("x", 2)) // revisions 0,1
	cases := []struct {
		name     string
		expected eventstore.ExpectedRevision
		ok       bool
	}{
		{"no-stream on existing stream", eventstore.NoStream, false},
		{"exact behind", eventstore.Exact(0), false},
		{"exact ahead", eventstore.Exact(5), false},
		{"exact current", eventstore.Exact(1), true},
		{"any", eventstore.Any, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := read(t, s, "order-x")
			in := ev("x", 1)
			res, err := s.Append(t.Context(), "order-x", tc.expected, in)
			after := read(t, s, "order-x")
			if tc.ok {
				if err != nil {
					t.Fatalf("append: %v", err)
				}
				if res.LastRevision != uint64(len(before)) || len(after) != len(before)+1 {
					t.Fatalf("append landed at %d; stream went %d -> %d events", res.LastRevision, len(before), len(after))
				}
				return
			}
			var wev *eventstore.WrongExpectedVersionError
			if !errors.As(err, &wev) || !errors.Is(err, eventstore.ErrWrongExpected) {
				t.Fatalf("append: %v, want *WrongExpectedVersionError", err)
			}
			if !wev.ActualExists || wev.Actual != uint64(len(before)-1) {
				t.Errorf("error says actual %d (exists %v), stream is at %d", wev.Actual, wev.ActualExists, len(before)-1)
			}
			if len(after) != len(before) {
				t.Errorf("a failed append wrote %d events", len(after)-len(before))
			}
		})
	}
	t.Run("exact on missing stream", func(t *testing.T) {
		_, err := s.Append(t.Context(), "order-none", eventstore.Exact(0), ev("n", 1))
		var wev *eventstore.WrongExpectedVersionError
		if !errors.As(err, &wev) || wev.ActualExists {
			t.Fatalf("append: %v, want wrong expected version with no stream", err)
		}
	})
}

func testInvalidAppend(t *testing.T, b Backend) {
	s := open(t, b)
	good := ev("i", 1)
	dup := ev("i", 2)
	dup[1].ID = dup[0].ID
	cases := []struct {
		name   string
		stream string
		events []eventstore.EventData
	}{
		{"no events", "order-i", nil},
		{"bad stream name", "Order.i", good},
		{"stream without id", "order", good},
		{"empty id", "order-i", []eventstore.EventData{{Type: "t"}}},
		{"empty type", "order-i", []eventstore.EventData{{ID: "e"}}},
		{"repeated id", "order-i", dup},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Append(t.Context(), tc.stream, eventstore.Any, tc.events); !errors.Is(err, eventstore.ErrInvalidAppend) {
				t.Fatalf("append: %v, want ErrInvalidAppend", err)
			}
		})
	}
	if all, err := s.ReadAll(t.Context(), 0, 0); err != nil || len(all) != 0 {
		t.Fatalf("after invalid appends the store holds %d events (err %v)", len(all), err)
	}
}

func testIdempotentRetry(t *testing.T, b Backend) {
	s := open(t, b)
	first := ev("r", 3)
	res1 := mustAppend(t, s, "order-r", eventstore.NoStream, first)
	next := ev("r", 1)
	mustAppend(t, s, "order-r", eventstore.Exact(res1.LastRevision), next)

	// A retry comes from whoever sent it first: this process or, after a
	// crash, another one that has never seen the stream (cold caches, and
	// on one JetStream replica the sequence check fails before the
	// de-duplication window is consulted).
	for _, who := range []string{"same store", "peer store"} {
		st := s
		if who == "peer store" {
			st = b.Peer(t, s)
		}
		cases := []struct {
			name   string
			exp    eventstore.ExpectedRevision
			events []eventstore.EventData
		}{
			{"no-stream retry of the first command", eventstore.NoStream, first},
			{"exact retry of the second command", eventstore.Exact(res1.LastRevision), next},
			{"any retry of the last command", eventstore.Any, next},
		}
		for _, tc := range cases {
			t.Run(who+"/"+tc.name, func(t *testing.T) {
				res, err := st.Append(t.Context(), "order-r", tc.exp, tc.events)
				if err != nil {
					t.Fatalf("retry: %v", err)
				}
				if !res.Duplicate {
					t.Errorf("retry result %+v, want Duplicate", res)
				}
				got := read(t, st, "order-r")
				if len(got) != 4 {
					t.Fatalf("after retry the stream has %d events, want 4", len(got))
				}
				want := append(dataIDs(first), dataIDs(next)...)
				if !slices.Equal(ids(got), want) {
					t.Fatalf("ids %v, want %v", ids(got), want)
				}
			})
		}
	}
	// The lost acknowledgement itself: the first attempt was stored (here by
	// a peer) but this writer never heard back, so it still believes the
	// stream is at the old revision when it retries.
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("stale writer retries %d events", n), func(t *testing.T) {
			cur := read(t, s, "order-r")
			at := cur[len(cur)-1].Revision
			in := ev("lost", n)
			mustAppend(t, b.Peer(t, s), "order-r", eventstore.Exact(at), in)
			res, err := s.Append(t.Context(), "order-r", eventstore.Exact(at), in)
			if err != nil || !res.Duplicate || res.LastRevision != at+uint64(n) {
				t.Fatalf("retry = %+v, %v; want duplicate ending at %d", res, err, at+uint64(n))
			}
			if got := read(t, s, "order-r"); len(got) != int(at)+1+n {
				t.Fatalf("stream has %d events, want %d", len(got), int(at)+1+n)
			}
		})
	}
	t.Run("same ids at another place is a conflict", func(t *testing.T) {
		_, err := s.Append(t.Context(), "order-r", eventstore.Exact(1), first[1:])
		if !errors.Is(err, eventstore.ErrWrongExpected) {
			t.Fatalf("append: %v, want wrong expected version", err)
		}
	})
}

func testConcurrentAtomic(t *testing.T, b Backend) {
	s := open(t, b)
	const writers, rounds, per = 6, 8, 3
	stores := []eventstore.Store{s, b.Peer(t, s)}
	var wg sync.WaitGroup
	var mu sync.Mutex
	written := map[string][]string{} // first id -> the command's ids
	for w := range writers {
		wg.Go(func() {
			st := stores[w%len(stores)]
			for r := 0; r < rounds; r++ {
				for {
					cur := read(t, st, "order-hot")
					exp := eventstore.NoStream
					if len(cur) > 0 {
						exp = eventstore.Exact(cur[len(cur)-1].Revision)
					}
					in := ev(fmt.Sprintf("w%d", w), per)
					_, err := st.Append(context.Background(), "order-hot", exp, in)
					if errors.Is(err, eventstore.ErrWrongExpected) {
						continue
					}
					if err != nil {
						t.Errorf("writer %d: %v", w, err)
						return
					}
					mu.Lock()
					written[in[0].ID] = dataIDs(in)
					mu.Unlock()
					break
				}
			}
		})
	}
	wg.Wait()
	got := read(t, s, "order-hot")
	if len(got) != writers*rounds*per {
		t.Fatalf("stream has %d events, want %d", len(got), writers*rounds*per)
	}
	for i := 0; i < len(got); i += per {
		want, ok := written[got[i].ID]
		if !ok || !slices.Equal(ids(got[i:i+per]), want) {
			t.Fatalf("events %d..%d are %v: not one whole command", i, i+per-1, ids(got[i:i+per]))
		}
	}
	if n, err := eventstore.VerifyChain(got); err != nil || n != len(got) {
		t.Fatalf("chain after concurrent appends: verified %d: %v", n, err)
	}
}

func testAnyUnderContention(t *testing.T, b Backend) {
	s := open(t, b)
	stores := []eventstore.Store{s, b.Peer(t, s)}
	const writers, each = 4, 10
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for range each {
				if _, err := stores[w%2].Append(context.Background(), "sku-pinned", eventstore.Any, ev("any", 2)); err != nil {
					t.Errorf("append any: %v", err)
				}
			}
		})
	}
	wg.Wait()
	got := read(t, s, "sku-pinned")
	if len(got) != writers*each*2 {
		t.Fatalf("stream has %d events, want %d", len(got), writers*each*2)
	}
	if _, err := eventstore.VerifyChain(got); err != nil {
		t.Fatal(err)
	}
}

// Two store instances over the same data (two processes running the same
// service) never both accept conflicting appends, whatever each has cached:
// each round both append at the same expected revision, at once; exactly
// one wins. Many streams are written at once so that a backend that stores
// several appends together is exercised across streams too.
func testTwoStores(t *testing.T, b Backend) {
	s := open(t, b)
	stores := []eventstore.Store{s, b.Peer(t, s)}
	const streams, rounds = 4, 6
	var wg sync.WaitGroup
	for k := range streams {
		stream := fmt.Sprintf("order-two%d", k)
		wg.Go(func() {
			exp := eventstore.NoStream
			for r := range rounds {
				var won atomic.Int32
				var rw sync.WaitGroup
				for w, st := range stores {
					rw.Go(func() {
						_, err := st.Append(context.Background(), stream, exp, ev(fmt.Sprintf("s%d-r%d-w%d", k, r, w), 2))
						switch {
						case err == nil:
							won.Add(1)
						case !errors.Is(err, eventstore.ErrWrongExpected):
							t.Errorf("%s round %d, store %d: %v", stream, r, w, err)
						}
					})
				}
				rw.Wait()
				if n := won.Load(); n != 1 {
					t.Errorf("%s round %d: %d appends at %s accepted, want exactly 1", stream, r, n, exp)
					return
				}
				exp = eventstore.Exact(uint64(2*r + 1))
			}
		})
	}
	wg.Wait()
	for k := range streams {
		for w, st := range stores {
			got := read(t, st, fmt.Sprintf("order-two%d", k))
			if len(got) != 2*rounds {
				t.Fatalf("store %d: order-two%d has %d events, want %d", w, k, len(got), 2*rounds)
			}
			if n, err := eventstore.VerifyChain(got); err != nil || n != len(got) {
				t.Fatalf("store %d: order-two%d chain verified %d: %v", w, k, n, err)
			}
		}
	}
	// A store whose view is stale (the peer appended since it last looked)
	// is refused, and then reads what the peer wrote.
	last := read(t, s, "order-two0")
	at := last[len(last)-1].Revision
	peer := ev("peer", 1)
	mustAppend(t, stores[1], "order-two0", eventstore.Exact(at), peer)
	if _, err := s.Append(t.Context(), "order-two0", eventstore.Exact(at), ev("stale", 1)); !errors.Is(err, eventstore.ErrWrongExpected) {
		t.Fatalf("stale append: %v, want wrong expected version", err)
	}
	if got := read(t, s, "order-two0"); got[len(got)-1].ID != peer[0].ID {
		t.Fatalf("after the peer's append this store reads %v last", got[len(got)-1].ID)
	}
}

func testReadStreamFrom(t *testing.T, b Backend) {
	s := open(t, b)
	for range 5 {
		mustAppend(t, s, "order-f", eventstore.Any, ev("f", 2))
	}
	mustAppend(t, s, "order-g", eventstore.Any, ev("g", 1)) // interleaved other stream
	cases := []struct {
		from      uint64
		limit     int
		wantFirst uint64
		wantN     int
	}{
		{0, 0, 0, 10}, {4, 0, 4, 6}, {9, 0, 9, 1}, {10, 0, 0, 0}, {3, 2, 3, 2}, {0, 100, 0, 10},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("from %d limit %d", tc.from, tc.limit), func(t *testing.T) {
			for _, st := range []eventstore.Store{s, b.Peer(t, s)} {
				got, err := st.ReadStream(t.Context(), "order-f", tc.from, tc.limit)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != tc.wantN {
					t.Fatalf("read %d events, want %d", len(got), tc.wantN)
				}
				for i, e := range got {
					if e.Revision != tc.wantFirst+uint64(i) || e.Stream != "order-f" {
						t.Fatalf("event %d has revision %d of %s", i, e.Revision, e.Stream)
					}
				}
			}
		})
	}
}

func testGlobalOrder(t *testing.T, b Backend) {
	s := open(t, b)
	for i := range 6 {
		mustAppend(t, s, fmt.Sprintf("order-g%d", i%3), eventstore.Any, ev("g", 1+i%2))
	}
	all, err := s.ReadAll(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 9 {
		t.Fatalf("ReadAll returned %d events, want 9", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].Position <= all[i-1].Position || (b.DensePositions && all[i].Position != all[i-1].Position+1) {
			t.Fatalf("positions %d then %d: a gap or disorder", all[i-1].Position, all[i].Position)
		}
	}
	page, err := s.ReadAll(t.Context(), all[3].Position, 2)
	if err != nil || len(page) != 2 || page[0].ID != all[3].ID || page[1].ID != all[4].ID {
		t.Fatalf("ReadAll from %d limit 2 = %v (%v)", all[3].Position, ids(page), err)
	}
}

func testSubscribe(t *testing.T, b Backend) {
	s := open(t, b)
	mustAppend(t, s, "order-s", eventstore.NoStream, ev("s", 3))
	all, _ := s.ReadAll(t.Context(), 0, 0)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	sub, err := s.SubscribeAll(ctx, all[1].Position)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var got []string
	next := func() {
		e, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("next after %v: %v", got, err)
		}
		got = append(got, e.ID)
	}
	next()
	next()
	live := ev("live", 2)
	mustAppend(t, b.Peer(t, s), "order-t", eventstore.NoStream, live)
	next()
	next()
	want := []string{all[1].ID, all[2].ID, live[0].ID, live[1].ID}
	if !slices.Equal(got, want) {
		t.Fatalf("subscription delivered %v, want %v", got, want)
	}
}

func testImmutable(t *testing.T, b Backend) {
	if b.DeleteEvent == nil {
		t.Skip(b.SkipDelete)
	}
	s := open(t, b)
	res := mustAppend(t, s, "order-d", eventstore.NoStream, ev("d", 2))
	if err := b.DeleteEvent(t.Context(), s, res.LastPosition); err == nil {
		t.Error("deleting an event succeeded")
	}
	if err := b.PurgeStream(t.Context(), s, "order-d"); err == nil {
		t.Error("purging a stream succeeded")
	}
	if got := read(t, s, "order-d"); len(got) != 2 {
		t.Fatalf("after delete attempts the stream has %d events, want 2", len(got))
	}
}

func testHashChain(t *testing.T, b Backend) {
	s := open(t, b)
	for range 3 {
		mustAppend(t, s, "order-h", eventstore.Any, ev("h", 2))
	}
	got := read(t, s, "order-h")
	if n, err := eventstore.VerifyChain(got); err != nil || n != 6 {
		t.Fatalf("stored chain verified %d of 6: %v", n, err)
	}
	for i := 1; i < len(got); i++ {
		if !bytes.Equal(got[i].PrevHash, got[i-1].Hash) {
			t.Fatalf("event %d does not link to event %d", i, i-1)
		}
	}
	clone := func() []eventstore.RecordedEvent {
		out := make([]eventstore.RecordedEvent, len(got))
		for i, e := range got {
			e.Data = bytes.Clone(e.Data)
			out[i] = e
		}
		return out
	}
	cases := []struct {
		name   string
		tamper func([]eventstore.RecordedEvent) []eventstore.RecordedEvent
		want   uint64 // revision reported broken
	}{
		{"payload edited", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent { e[3].Data[0] ^= 1; return e }, 3},
		{"actor edited", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			e[2].Metadata.Actor = "vendor:v9"
			return e
		}, 2},
		{"time edited", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			e[4].RecordedAt = e[4].RecordedAt.Add(-time.Hour)
			return e
		}, 4},
		{"event dropped", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent { return slices.Delete(e, 2, 3) }, 3},
		{"events swapped", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent { e[1], e[2] = e[2], e[1]; return e }, 2},
		{"edited and rehashed", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			e[1].Data = []byte("forged")
			e[1].Hash = eventstore.Hash(e[1].PrevHash, &e[1])
			return e
		}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := eventstore.VerifyChain(tc.tamper(clone()))
			var ce *eventstore.ChainError
			if !errors.As(err, &ce) || !errors.Is(err, eventstore.ErrChainBroken) {
				t.Fatalf("verify: %v, want a ChainError", err)
			}
			if ce.Revision != tc.want {
				t.Fatalf("chain reported broken at revision %d (%v), want %d", ce.Revision, err, tc.want)
			}
			if n >= len(got) {
				t.Fatalf("verified count %d", n)
			}
		})
	}
}

func testRestart(t *testing.T, b Backend) {
	if b.Restart == nil {
		t.Skip(b.SkipRestart)
	}
	s := b.New(t)
	var want []string
	for i := range 5 {
		in := ev("p", 1+i%3)
		mustAppend(t, s, "order-p", eventstore.Any, in)
		want = append(want, dataIDs(in)...)
	}
	s = b.Restart(t, s)
	t.Cleanup(func() { s.Close() })
	got := read(t, s, "order-p")
	if !slices.Equal(ids(got), want) {
		t.Fatalf("after restart ids = %v, want %v", ids(got), want)
	}
	if _, err := eventstore.VerifyChain(got); err != nil {
		t.Fatal(err)
	}
	res := mustAppend(t, s, "order-p", eventstore.Exact(got[len(got)-1].Revision), ev("p", 1))
	if res.LastRevision != uint64(len(want)) {
		t.Fatalf("append after restart landed at revision %d, want %d", res.LastRevision, len(want))
	}
}

// testRequestFingerprint: the request fingerprint an event carries
// (eventstore.Metadata.RequestFingerprint) comes back unchanged, and covered
// by the hash chain, from every way of reading — ReadStream, another
// process's store, ReadAll, a subscription, a restart — and an event without
// one comes back without one.
func testRequestFingerprint(t *testing.T, b Backend) {
	s := b.New(t)
	t.Cleanup(func() { s.Close() }) // the store after the restart, if there is one
	in := ev("f", 3)
	in[0].Metadata.RequestFingerprint = "5f1d0c8e2b7a49d3a0e6c4b8f2d1e7a9"
	in[2].Metadata.RequestFingerprint = "0123456789abcdef0123456789abcdef"
	mustAppend(t, s, "order-f", eventstore.NoStream, in)
	check := func(how string, got []eventstore.RecordedEvent) {
		t.Helper()
		if len(got) != len(in) {
			t.Fatalf("%s: %d events, want %d", how, len(got), len(in))
		}
		for i, e := range got {
			if e.ID != in[i].ID || e.Metadata != in[i].Metadata {
				t.Errorf("%s: event %d %s has metadata %+v, want %+v", how, i, e.ID, e.Metadata, in[i].Metadata)
			}
		}
		if _, err := eventstore.VerifyChain(got); err != nil {
			t.Errorf("%s: %v", how, err)
		}
	}
	check("ReadStream", read(t, s, "order-f"))
	check("ReadStream of another process", read(t, b.Peer(t, s), "order-f"))
	all, err := s.ReadAll(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	check("ReadAll", slices.DeleteFunc(all, func(e eventstore.RecordedEvent) bool { return e.Stream != "order-f" }))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	sub, err := s.SubscribeAll(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var delivered []eventstore.RecordedEvent
	for len(delivered) < len(in) {
		e, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("subscription after %d events: %v", len(delivered), err)
		}
		if e.Stream == "order-f" {
			delivered = append(delivered, e)
		}
	}
	sub.Close()
	check("SubscribeAll", delivered)
	if b.Restart != nil {
		s = b.Restart(t, s)
		check("ReadStream after a restart", read(t, s, "order-f"))
	}
}
