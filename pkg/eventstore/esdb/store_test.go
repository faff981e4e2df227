package esdb

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/eventstore/conformance"
	"github.com/custody/custody/pkg/eventstore/esdb/esdbfake"
	"github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/natsembed"
)

// TestConformance runs the backend conformance suite against a real
// EventStoreDB / KurrentDB server named by CUSTODY_ESDB_URL (for example
// esdb://admin:changeit@localhost:2113?tls=false). Each test gets its own
// service name, so the server need not be empty. Set
// CUSTODY_ESDB_DENY_DELETE=1 when the URL's user has no delete and no
// metadata-write rights, to check that history cannot be removed.
//
// Expect GlobalOrderHasNoGaps to fail on a real server: it asserts that
// positions are consecutive numbers, and EventStoreDB's positions are
// byte offsets in its log (see Store).
func TestConformance(t *testing.T) {
	url := os.Getenv("CUSTODY_ESDB_URL")
	if url == "" {
		t.Skip("CUSTODY_ESDB_URL not set: no EventStoreDB server here; esdb conformance NOT run")
	}
	open := func(t *testing.T, service string) *Store {
		s, err := Open(t.Context(), Config{URL: url, Service: service})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	b := conformance.Backend{
		New: func(t *testing.T) eventstore.Store { return open(t, randomService()) },
		Peer: func(t *testing.T, s eventstore.Store) eventstore.Store {
			p := open(t, s.(*Store).Service())
			t.Cleanup(func() { p.Close() })
			return p
		},
		SkipRestart: "the EventStoreDB server is external: the test cannot restart it",
		SkipDelete:  "set CUSTODY_ESDB_DENY_DELETE=1 (with a user that has no $d/$mw rights) to check that history cannot be removed",
	}
	if os.Getenv("CUSTODY_ESDB_DENY_DELETE") == "1" {
		b.DeleteEvent = func(ctx context.Context, s eventstore.Store, pos uint64) error {
			st := s.(*Store)
			evs, err := st.ReadAll(ctx, pos, 1)
			if err != nil || len(evs) == 0 {
				return fmt.Errorf("find event at %d: %v", pos, err)
			}
			// EventStoreDB's only way to remove single events: truncate before.
			var md esdb.StreamMetadata
			md.SetTruncateBefore(evs[0].Revision + 1)
			_, err = st.Client().SetStreamMetadata(ctx, st.prefix+evs[0].Stream, esdb.AppendToStreamOptions{}, md)
			return err
		}
		b.PurgeStream = func(ctx context.Context, s eventstore.Store, stream string) error {
			st := s.(*Store)
			_, err := st.Client().DeleteStream(ctx, st.prefix+stream, esdb.DeleteStreamOptions{})
			return err
		}
	}
	conformance.Run(t, b)
}

func randomService() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:])
}

// onFake is a store on its own fake server.
type onFake struct {
	*Store
	f *esdbfake.Server
}

// TestConformanceOnFakeServer runs the conformance suite through the real
// client library against the in-process fake server (package esdbfake). It
// exercises this package's use of the client — tails, conflicts, the
// confirmation read, retries the server absorbs, $all reads and
// subscriptions — but it is not a substitute for TestConformance: the fake
// is this package's reading of EventStoreDB, not EventStoreDB. The fake
// numbers its positions 1, 2, 3… here so that GlobalOrderHasNoGaps can run;
// TestSparsePositions covers real, byte-offset positions.
func TestConformanceOnFakeServer(t *testing.T) {
	conformance.Run(t, conformance.Backend{
		New: func(t *testing.T) eventstore.Store {
			f := esdbfake.Start(t, false)
			return onFake{fakeStore(t, f, "test"), f}
		},
		Peer: func(t *testing.T, s eventstore.Store) eventstore.Store {
			return fakeStore(t, s.(onFake).f, "test")
		},
		SkipRestart: "the fake server keeps its data in memory: a server restart cannot be simulated",
		SkipDelete:  "the fake server has no delete API; immutability is the real server's ACLs (see the package documentation)",
	})
}

func events(prefix string, n int) []eventstore.EventData {
	out := make([]eventstore.EventData, n)
	for i := range out {
		out[i] = eventstore.EventData{
			ID:   fmt.Sprintf("%s-%d", prefix, i),
			Type: "custody.test.v1.Happened",
			Data: []byte(fmt.Sprintf("payload %s %d", prefix, i)),
			Metadata: eventstore.Metadata{
				CorrelationID: "corr", CausationID: "cause", Actor: "buyer:b1",
				TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "k=v",
			},
		}
	}
	return out
}

func ids(evs []eventstore.RecordedEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// TestSparsePositions: with positions that are log offsets, as on a real
// server, ReadAll and SubscribeAll keep only the service's events, in order,
// and start where asked — at an event's position or one past it.
func TestSparsePositions(t *testing.T) {
	f := esdbfake.Start(t, true)
	s := fakeStore(t, f, "order")
	ctx := t.Context()
	mustAppend := func(stream string, evs []eventstore.EventData) {
		t.Helper()
		if _, err := s.Append(ctx, stream, eventstore.Any, evs); err != nil {
			t.Fatal(err)
		}
	}
	mustAppend("order-a", events("a", 2))
	f.Foreign("orders-x", "custody.test.v1.Other")      // a prefix of another service
	f.Foreign("$stats-127.0.0.1", "$statsCollected")    // a system event
	f.Foreign("catalog-sku-1", "custody.test.v1.Other") // another service
	mustAppend("order-b", events("b", 3))

	all, err := s.ReadAll(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a-0", "a-1", "b-0", "b-1", "b-2"}; !slices.Equal(ids(all), want) {
		t.Fatalf("ReadAll = %v, want %v", ids(all), want)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Position <= all[i-1].Position {
			t.Fatalf("positions not increasing: %d then %d", all[i-1].Position, all[i].Position)
		}
		if all[i].Position == all[i-1].Position+1 {
			t.Fatalf("positions %d, %d are consecutive: the fake should make them sparse", all[i-1].Position, all[i].Position)
		}
	}
	cases := []struct {
		name string
		from uint64
		want []string
	}{
		{"from 0", 0, ids(all)},
		{"from 1", 1, ids(all)},
		{"from an event", all[2].Position, ids(all[2:])},
		{"from one past an event", all[2].Position + 1, ids(all[3:])},
		{"from one past an event before foreign ones", all[1].Position + 1, ids(all[2:])},
		{"past the end", all[4].Position + 1, nil},
		{"far past the end", 1 << 40, nil},
	}
	for _, tc := range cases {
		t.Run("ReadAll "+tc.name, func(t *testing.T) {
			got, err := s.ReadAll(ctx, tc.from, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), tc.want) {
				t.Fatalf("ReadAll(%d) = %v, want %v", tc.from, ids(got), tc.want)
			}
		})
	}
	if got, err := s.ReadAll(ctx, all[1].Position, 2); err != nil || !slices.Equal(ids(got), ids(all[1:3])) {
		t.Fatalf("ReadAll limit 2 = %v, %v", ids(got), err)
	}
	for i, tc := range cases {
		t.Run("SubscribeAll "+tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			// Earlier subtests appended live events: expect what ReadAll sees.
			stored, err := s.ReadAll(ctx, tc.from, 0)
			if err != nil {
				t.Fatal(err)
			}
			sub, err := s.SubscribeAll(ctx, tc.from)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			var got []string
			for range stored {
				e, err := sub.Next(ctx)
				if err != nil {
					t.Fatalf("after %v: %v", got, err)
				}
				got = append(got, e.ID)
			}
			if !slices.Equal(got, ids(stored)) {
				t.Fatalf("caught up with %v, want %v", got, ids(stored))
			}
			// Then live, skipping foreign events.
			live := events(fmt.Sprintf("live%d", i), 1)
			f.Foreign("catalog-sku-2", "custody.test.v1.Other")
			mustAppend("order-c", live)
			if tc.from > 1<<39 {
				// Nothing reaches the position: nothing is delivered.
				short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
				defer cancel()
				if e, err := sub.Next(short); !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("delivered %s (%v) before its position", e.ID, err)
				}
				return
			}
			e, err := sub.Next(ctx)
			if err != nil || e.ID != live[0].ID {
				t.Fatalf("live event = %s, %v; want %s", e.ID, err, live[0].ID)
			}
		})
	}
}

// TestLostAcknowledgement: the server stored the append but the answer was
// lost; the retry through the same store is a duplicate, and so is one from a
// store that never saw the stream.
func TestLostAcknowledgement(t *testing.T) {
	f := esdbfake.Start(t, true)
	s := fakeStore(t, f, "order")
	ctx := t.Context()
	first := events("first", 2)
	if _, err := s.Append(ctx, "order-l", eventstore.NoStream, first); err != nil {
		t.Fatal(err)
	}
	in := events("lost", 3)
	f.DropAcks(1)
	_, err := s.Append(ctx, "order-l", eventstore.Exact(1), in)
	if !errors.Is(err, eventstore.ErrUnavailable) {
		t.Fatalf("append with a lost acknowledgement: %v, want ErrUnavailable", err)
	}
	for _, st := range []*Store{s, fakeStore(t, f, "order")} {
		for _, exp := range []eventstore.ExpectedRevision{eventstore.Exact(1), eventstore.Any} {
			res, err := st.Append(ctx, "order-l", exp, in)
			if err != nil || !res.Duplicate || res.LastRevision != 4 {
				t.Fatalf("retry (expected %s) = %+v, %v; want a duplicate ending at 4", exp, res, err)
			}
		}
	}
	got, err := s.ReadStream(ctx, "order-l", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"first-0", "first-1", "lost-0", "lost-1", "lost-2"}; !slices.Equal(ids(got), want) {
		t.Fatalf("stream = %v, want %v", ids(got), want)
	}
	if _, err := eventstore.VerifyChain(got); err != nil {
		t.Fatal(err)
	}
}

// TestServerAbsorbedRetry: a writer with a stale tail retries; EventStoreDB
// finds the ids right after the expected revision and answers success
// without writing. The confirmation read must report it as a duplicate.
func TestServerAbsorbedRetry(t *testing.T) {
	f := esdbfake.Start(t, true)
	s := fakeStore(t, f, "order")
	peer := fakeStore(t, f, "order")
	ctx := t.Context()
	if _, err := s.Append(ctx, "order-s", eventstore.NoStream, events("a", 1)); err != nil {
		t.Fatal(err)
	}
	in := events("b", 2)
	if _, err := peer.Append(ctx, "order-s", eventstore.Exact(0), in); err != nil {
		t.Fatal(err)
	}
	before := f.Appends()
	res, err := s.Append(ctx, "order-s", eventstore.Exact(0), in) // s still believes the tail is 0
	if err != nil || !res.Duplicate || res.LastRevision != 2 {
		t.Fatalf("retry = %+v, %v", res, err)
	}
	sent := f.Appends() - before
	if sent != 1 {
		t.Fatalf("%d appends reached the server, want 1 (the one it absorbed)", sent)
	}
	all, _ := s.ReadStream(ctx, "order-s", 0, 0)
	if res.LastPosition != all[2].Position {
		t.Fatalf("duplicate reported position %d, the event is at %d", res.LastPosition, all[2].Position)
	}
}

// TestSubscriptionResumes: a subscription dropped by the server resumes
// after the last event it saw, without losing or repeating any.
func TestSubscriptionResumes(t *testing.T) {
	f := esdbfake.Start(t, true)
	s := fakeStore(t, f, "order")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if _, err := s.Append(ctx, "order-r", eventstore.Any, events("r1", 2)); err != nil {
		t.Fatal(err)
	}
	sub, err := s.SubscribeAll(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var got []string
	next := func() {
		t.Helper()
		e, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got = append(got, e.ID)
	}
	next()
	next()
	f.DropSubscriptions()
	if _, err := s.Append(ctx, "order-r", eventstore.Any, events("r2", 2)); err != nil {
		t.Fatal(err)
	}
	next()
	next()
	f.DropSubscriptions()
	if _, err := s.Append(ctx, "order-r", eventstore.Any, events("r3", 1)); err != nil {
		t.Fatal(err)
	}
	next()
	if want := []string{"r1-0", "r1-1", "r2-0", "r2-1", "r3-0"}; !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Next(ctx); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("Next after Close: %v, want ErrClosed", err)
	}
}

// TestRelay forwards an EventStoreDB service (the fake) to an embedded NATS
// server, stops, and resumes after the last relayed event.
func TestRelay(t *testing.T) {
	f := esdbfake.Start(t, true)
	s := fakeStore(t, f, "order")
	srv, err := natsembed.Start(natsembed.Config{DataDir: t.TempDir(), RelaxedSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	var want []eventstore.RecordedEvent
	add := func(stream string, evs []eventstore.EventData) {
		t.Helper()
		if _, err := s.Append(ctx, stream, eventstore.Any, evs); err != nil {
			t.Fatal(err)
		}
		got, err := s.ReadStream(ctx, stream, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, got[len(got)-len(evs):]...)
	}
	add("order-o1", events("o1a", 2))
	f.Foreign("catalog-sku-1", "custody.test.v1.Other")
	add("order-o2", events("o2a", 1))

	// run relays until `until` events were checkpointed, and returns their positions.
	run := func(until int) []uint64 {
		t.Helper()
		rctx, stop := context.WithCancel(ctx)
		defer stop()
		var checkpoints []uint64
		done := make(chan error, 1)
		go func() {
			done <- Relay(rctx, s, nc, 0, func(pos uint64) error {
				checkpoints = append(checkpoints, pos)
				if len(checkpoints) == until {
					stop()
				}
				return nil
			})
		}()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("relay: %v", err)
			}
		case <-ctx.Done():
			t.Fatal("relay did not forward the events in time")
		}
		return checkpoints
	}
	positions := func(evs []eventstore.RecordedEvent) []uint64 {
		var out []uint64
		for _, e := range evs {
			out = append(out, e.Position)
		}
		return out
	}
	if got := run(3); !slices.Equal(got, positions(want)) {
		t.Fatalf("first run checkpointed %v, want %v", got, positions(want))
	}
	add("order-o1", events("o1b", 2))
	// The second run resumes after the last relayed event.
	if got := run(2); !slices.Equal(got, positions(want[3:])) {
		t.Fatalf("second run checkpointed %v, want %v", got, positions(want[3:]))
	}

	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, jetstream.StreamNameFor("order"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(len(want)) {
		t.Fatalf("JetStream holds %d messages, want %d (no duplicates, nothing foreign)", info.State.Msgs, len(want))
	}
	for i, w := range want {
		m, err := st.GetMsg(ctx, uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		subject, _ := jetstream.Subject("order", w.Stream)
		if m.Subject != subject {
			t.Errorf("message %d on %s, want %s", i+1, m.Subject, subject)
		}
		evs, err := jetstream.Decode(m.Subject, m.Sequence, m.Header, m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 || evs[0].Position != jetstream.Position(m.Sequence, 0) {
			t.Fatalf("message %d holds %d events (position %d), want one", i+1, len(evs), evs[0].Position)
		}
		sameEvent(t, evs[0], w)
		if m.Header.Get(natsjs.MsgIDHeader) != w.ID || m.Header.Get(HeaderPosition) != fmt.Sprint(w.Position) {
			t.Errorf("message %d: msg id %q position %q", i+1, m.Header.Get(natsjs.MsgIDHeader), m.Header.Get(HeaderPosition))
		}
	}
}

// sameEvent compares everything but the position.
func sameEvent(t *testing.T, got, want eventstore.RecordedEvent) {
	t.Helper()
	if got.ID != want.ID || got.Type != want.Type || !bytes.Equal(got.Data, want.Data) || got.Metadata != want.Metadata ||
		got.Stream != want.Stream || got.Revision != want.Revision || !got.RecordedAt.Equal(want.RecordedAt) ||
		!bytes.Equal(got.PrevHash, want.PrevHash) || !bytes.Equal(got.Hash, want.Hash) {
		t.Errorf("event\n got %+v\nwant %+v", got, want)
	}
}

func TestEventUUID(t *testing.T) {
	a, b := EventUUID("cmd-42-0"), EventUUID("cmd-42-0")
	if a != b {
		t.Fatalf("same id, different UUIDs: %s %s", a, b)
	}
	if a.Version() != 5 || a.Variant() != uuid.RFC4122 {
		t.Fatalf("UUID %s is version %d variant %v, want a name-based (SHA-1) RFC 4122 UUID", a, a.Version(), a.Variant())
	}
	// Pinned: the mapping must never change, or retries of old commands
	// would no longer be recognised by the server.
	if want := uuid.NewSHA1(uuid.MustParse("6f1c2a9e-3b7d-4c52-9a0e-5d8f41b2c7e3"), []byte("cmd-42-0")); a != want {
		t.Fatalf("EventUUID changed: %s, want %s", a, want)
	}
	seen := map[uuid.UUID]string{}
	for _, id := range []string{"a", "b", "A", "a ", "cmd-42-1", "cmd-42-0x", "", string(make([]byte, 64)), "ümlaut", "order-1-0"} {
		u := EventUUID(id)
		if prev, ok := seen[u]; ok {
			t.Fatalf("ids %q and %q map to the same UUID %s", prev, id, u)
		}
		seen[u] = id
	}
	for i := range 10000 {
		id := fmt.Sprintf("c%d.%d", i/3, i%3)
		u := EventUUID(id)
		if prev, ok := seen[u]; ok {
			t.Fatalf("ids %q and %q map to the same UUID %s", prev, id, u)
		}
		seen[u] = id
	}
}

func TestStreamName(t *testing.T) {
	good := []struct{ service, stream, name string }{
		{"order", "order-0f8c", "order-order-0f8c"},
		{"catalog", "sku-ab_C-9", "catalog-sku-ab_C-9"},
		{"payment_v2", "refund-r1", "payment_v2-refund-r1"},
	}
	for _, tc := range good {
		name, err := StreamName(tc.service, tc.stream)
		if err != nil || name != tc.name {
			t.Errorf("StreamName(%q, %q) = %q, %v; want %q", tc.service, tc.stream, name, err, tc.name)
		}
		back, ok := PortStream(tc.service, name)
		if !ok || back != tc.stream {
			t.Errorf("PortStream(%q, %q) = %q, %v; want %q", tc.service, name, back, ok, tc.stream)
		}
	}
	bad := []struct{ service, stream string }{
		{"order", "order"}, {"order", "Order-1"}, {"order", "order-a.b"}, {"Order", "order-1"},
		{"or-der", "order-1"}, {"", "order-1"}, {"order", "-1"},
	}
	for _, tc := range bad {
		if name, err := StreamName(tc.service, tc.stream); !errors.Is(err, eventstore.ErrInvalidAppend) {
			t.Errorf("StreamName(%q, %q) = %q, %v; want ErrInvalidAppend", tc.service, tc.stream, name, err)
		}
	}
	notOurs := []struct{ service, name string }{
		{"order", "orders-order-1"}, {"order", "catalog-sku-1"}, {"order", "$stats-x"}, {"order", "$$order-order-1"},
		{"order", "order-"}, {"order", "order-order"}, {"order", "order"},
	}
	for _, tc := range notOurs {
		if s, ok := PortStream(tc.service, tc.name); ok {
			t.Errorf("PortStream(%q, %q) = %q: should not be the service's", tc.service, tc.name, s)
		}
	}
}

func sealed(t *testing.T) []eventstore.RecordedEvent {
	t.Helper()
	at := time.Date(2026, 3, 4, 5, 6, 7, 891011121, time.UTC)
	var out []eventstore.RecordedEvent
	prev := eventstore.GenesisHash
	for i, ed := range events("cmd-7", 3) {
		if i == 1 {
			ed.Metadata = eventstore.Metadata{} // empty fields survive too
			ed.Data = nil
		}
		e := eventstore.RecordedEvent{EventData: ed, Stream: "order-o7", Revision: uint64(i), RecordedAt: at}
		eventstore.Seal(prev, &e)
		prev = e.Hash
		out = append(out, e)
	}
	return out
}

// asRead is what the client hands back for an appended event.
func asRead(d esdb.EventData, name string, rev, pos uint64) *esdb.RecordedEvent {
	return &esdb.RecordedEvent{EventID: d.EventID, EventType: d.EventType, ContentType: "application/octet-stream", StreamID: name,
		EventNumber: rev, Position: esdb.Position{Commit: pos, Prepare: pos}, Data: d.Data, UserMetadata: d.Metadata}
}

func TestMetadataRoundTrip(t *testing.T) {
	in := sealed(t)
	var out []eventstore.RecordedEvent
	for i := range in {
		d, err := EncodeEvent(&in[i])
		if err != nil {
			t.Fatal(err)
		}
		if d.EventID != EventUUID(in[i].ID) || d.EventType != in[i].Type || d.ContentType != esdb.ContentTypeBinary {
			t.Fatalf("encoded as %+v", d)
		}
		got, err := DecodeEvent("order", asRead(d, "order-order-o7", in[i].Revision, uint64(1000+100*i)))
		if err != nil {
			t.Fatal(err)
		}
		want := in[i]
		want.Position = uint64(1000 + 100*i)
		if want.Data == nil {
			want.Data = []byte{}
		}
		sameEvent(t, got, want)
		if got.Position != want.Position || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("position %d data %q, want %d %q", got.Position, got.Data, want.Position, want.Data)
		}
		out = append(out, got)
	}
	if n, err := eventstore.VerifyChain(out); err != nil || n != len(in) {
		t.Fatalf("decoded chain verified %d: %v", n, err)
	}
	// The documented field names, for anyone reading the store with other tools.
	d, _ := EncodeEvent(&in[0])
	for _, key := range []string{`"id":`, `"correlation":`, `"causation":`, `"actor":`, `"traceparent":`, `"tracestate":`, `"recorded_at":`, `"prev_hash":`, `"hash":`} {
		if !bytes.Contains(d.Metadata, []byte(key)) {
			t.Errorf("metadata %s lacks %s", d.Metadata, key)
		}
	}
	// Unknown position (the server reports all ones).
	r := asRead(d, "order-order-o7", 0, 0)
	r.Position = esdb.Position{Commit: ^uint64(0), Prepare: ^uint64(0)}
	if got, err := DecodeEvent("order", r); err != nil || got.Position != 0 {
		t.Fatalf("unknown position decoded as %d, %v", got.Position, err)
	}
}

func TestDecodeRejects(t *testing.T) {
	in := sealed(t)
	d, _ := EncodeEvent(&in[0])
	cases := map[string]func(r *esdb.RecordedEvent){
		"another service's stream": func(r *esdb.RecordedEvent) { r.StreamID = "catalog-sku-1" },
		"uuid not the id's":        func(r *esdb.RecordedEvent) { r.EventID = uuid.New() },
		"metadata not json":        func(r *esdb.RecordedEvent) { r.UserMetadata = []byte("{") },
		"no id":                    func(r *esdb.RecordedEvent) { r.UserMetadata = []byte(`{"hash":""}`) },
		"bad hash": func(r *esdb.RecordedEvent) {
			r.UserMetadata = bytes.Replace(r.UserMetadata, []byte(`"hash":"`), []byte(`"hash":"zz`), 1)
		},
	}
	for name, edit := range cases {
		r := asRead(d, "order-order-o7", 0, 10)
		edit(r)
		if _, err := DecodeEvent("order", r); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
	bad := in[0]
	bad.Metadata.Actor = "buyer:\xff"
	if _, err := EncodeEvent(&bad); !errors.Is(err, eventstore.ErrInvalidAppend) {
		t.Errorf("invalid UTF-8 actor: %v, want ErrInvalidAppend", err)
	}
}

func TestEncodeMsgIsTheJetStreamEnvelope(t *testing.T) {
	for _, e := range sealed(t) {
		e.Position = 77
		subject, err := jetstream.Subject("order", e.Stream)
		if err != nil {
			t.Fatal(err)
		}
		m, err := EncodeMsg(subject, &e)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != "custody.order.order.o7" || m.Header.Get(natsjs.MsgIDHeader) != e.ID ||
			m.Header.Get(jetstream.HeaderCount) != "1" || m.Header.Get(jetstream.HeaderType) != e.Type {
			t.Fatalf("subject %s headers %v", m.Subject, m.Header)
		}
		got, err := jetstream.Decode(m.Subject, 5, m.Header, m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Position != jetstream.Position(5, 0) {
			t.Fatalf("decoded %d events, position %d; want one at the JetStream position of sequence 5", len(got), got[0].Position)
		}
		sameEvent(t, got[0], e)
	}
}

// TestErrorMapping maps errors the client really returns (from the fake
// server, and from no server at all) and bare gRPC statuses.
func TestErrorMapping(t *testing.T) {
	f := esdbfake.Start(t, true)
	s := fakeStore(t, f, "order")
	ctx := t.Context()

	// Wrong expected version, as the client reports it.
	if _, err := s.Append(ctx, "order-w", eventstore.NoStream, events("w", 2)); err != nil {
		t.Fatal(err)
	}
	_, raw := s.Client().AppendToStream(ctx, "order-order-w", esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(0)},
		esdb.EventData{EventID: uuid.New(), EventType: "t", Data: []byte{}, Metadata: []byte("{}")})
	if errorCode(raw) != esdb.ErrorCodeWrongExpectedVersion {
		t.Fatalf("client error %v is not a wrong expected version", raw)
	}
	if err := mapError("append", raw); !errors.Is(err, eventstore.ErrWrongExpected) {
		t.Errorf("mapped to %v, want ErrWrongExpected", err)
	}
	_, err := s.Append(ctx, "order-w", eventstore.Exact(0), events("w2", 1))
	var wev *eventstore.WrongExpectedVersionError
	if !errors.As(err, &wev) || !wev.ActualExists || wev.Actual != 1 || wev.Stream != "order-w" {
		t.Errorf("append: %v, want wrong expected version at 1", err)
	}
	_, err = s.Append(ctx, "order-none", eventstore.Exact(3), events("n", 1))
	if !errors.As(err, &wev) || wev.ActualExists {
		t.Errorf("append to a missing stream: %v, want wrong expected version, no stream", err)
	}

	// Stream not found.
	if _, err := s.ReadStream(ctx, "order-missing", 0, 0); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Errorf("read missing: %v, want ErrStreamNotFound", err)
	}
	if _, err := s.ReadStream(ctx, "bad name", 0, 0); !errors.Is(err, eventstore.ErrInvalidAppend) {
		t.Errorf("read bad name: %v, want ErrInvalidAppend", err)
	}

	// Bare statuses.
	for c, unavailable := range map[codes.Code]bool{
		codes.Unavailable: true, codes.DeadlineExceeded: true, codes.Aborted: true, codes.Internal: true,
		codes.PermissionDenied: false, codes.Unauthenticated: false, codes.InvalidArgument: false,
	} {
		if got := errors.Is(mapError("op", status.Error(c, "x")), eventstore.ErrUnavailable); got != unavailable {
			t.Errorf("status %v: unavailable %v, want %v", c, got, unavailable)
		}
	}

	// The server goes away.
	f.Stop()
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := s.Append(rctx, "order-w", eventstore.Any, events("gone", 1)); !errors.Is(err, eventstore.ErrUnavailable) {
		t.Errorf("append with the server gone: %v, want ErrUnavailable", err)
	}
	if _, err := Open(rctx, Config{URL: f.URL() + "&maxDiscoverAttempts=1&discoveryInterval=10", Service: "order", Logger: quiet}); !errors.Is(err, eventstore.ErrUnavailable) {
		t.Errorf("open with no server: %v, want ErrUnavailable", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "order-w", eventstore.Any, events("closed", 1)); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("append after close: %v, want ErrClosed", err)
	}
}

func TestOpenValidates(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "esdb://localhost:2113?tls=false", Service: "Order"},
		{URL: "esdb://localhost:2113?tls=false", Service: "or-der"},
		{URL: "", Service: "order"},
		{URL: "http://localhost:2113", Service: "order"},
	} {
		cfg.Logger = quiet
		if s, err := Open(t.Context(), cfg); err == nil {
			s.Close()
			t.Errorf("Open(%+v) succeeded", cfg)
		}
	}
}

// fakeStore opens a Store on f for service.
func fakeStore(t *testing.T, f *esdbfake.Server, service string) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := Open(ctx, Config{URL: f.URL(), Service: service, Logger: quiet})
	if err != nil {
		t.Fatalf("open store on the fake server: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var quiet = slog.New(slog.DiscardHandler)

// LastPosition is the service's newest event, not the log's: other
// services' and system events written after it do not count.
func TestLastPositionIsTheServicesOwn(t *testing.T) {
	f := esdbfake.Start(t, true)
	s := fakeStore(t, f, "order")
	if p, err := s.LastPosition(t.Context()); err != nil || p != 0 {
		t.Fatalf("empty store: LastPosition = %d, %v; want 0", p, err)
	}
	res, err := s.Append(t.Context(), "order-1", eventstore.NoStream, events("a", 2))
	if err != nil {
		t.Fatal(err)
	}
	f.Foreign("catalog-sku-1", "custody.test.v1.Other")
	f.Foreign("$stats-127.0.0.1", "$statsCollected")
	p, err := s.LastPosition(t.Context())
	if err != nil || p != res.LastPosition {
		t.Fatalf("LastPosition = %d, %v; want %d (the last of order's own)", p, err, res.LastPosition)
	}
	all, err := s.ReadAll(t.Context(), 0, 0)
	if err != nil || len(all) != 2 || all[1].Position != p {
		t.Fatalf("ReadAll = %v, %v: its last position must be LastPosition", all, err)
	}
}
