package es_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/eventstore/memory"
	"github.com/custody/custody/pkg/natsembed"
)

// A stock counter: the smallest aggregate with an invariant worth racing on.
// Events are well-known wrapper types so the test needs no generated code:
// Int64Value(+n) adds stock, Int64Value(-n) takes it.
type stock struct{ units int64 }

type cmd struct {
	add, take int64
}

var errOutOfStock = errors.New("out of stock")

var counter = es.Decider[stock, cmd]{
	Aggregate: "sku",
	Initial:   func(string) stock { return stock{} },
	Decide: func(s stock, c cmd) ([]proto.Message, error) {
		switch {
		case c.add > 0:
			return []proto.Message{wrapperspb.Int64(c.add)}, nil
		case c.take > s.units:
			return nil, errOutOfStock
		case c.take > 0:
			return []proto.Message{wrapperspb.Int64(-c.take)}, nil
		}
		return nil, nil
	},
	Evolve: func(s stock, e proto.Message) stock {
		if v, ok := e.(*wrapperspb.Int64Value); ok {
			s.units += v.Value
		}
		return s
	},
}

// countingStore counts appends, to show that waiting commands share one,
// and stream reads, to show when the handler trusts its copy.
type countingStore struct {
	eventstore.Store
	appends, reads atomic.Int64
}

func (c *countingStore) ReadStream(ctx context.Context, s string, from uint64, limit int) ([]eventstore.RecordedEvent, error) {
	c.reads.Add(1)
	return c.Store.ReadStream(ctx, s, from, limit)
}

func (c *countingStore) Append(ctx context.Context, s string, e eventstore.ExpectedRevision, evs []eventstore.EventData) (eventstore.AppendResult, error) {
	c.appends.Add(1)
	return c.Store.Append(ctx, s, e, evs)
}

func jetStreamStores(t *testing.T, n int) []eventstore.Store {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	var out []eventstore.Store
	for range n {
		nc, err := srv.Connect()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		st, err := esjs.Open(t.Context(), nc, esjs.Config{Service: "catalog"})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, st)
	}
	return out
}

func TestGivenWhenThen(t *testing.T) {
	cases := []struct {
		name    string
		given   []proto.Message
		when    cmd
		want    []int64
		wantErr error
	}{
		{"restock an empty sku", nil, cmd{add: 5}, []int64{5}, nil},
		{"take what is there", []proto.Message{wrapperspb.Int64(5)}, cmd{take: 5}, []int64{-5}, nil},
		{"take more than there is", []proto.Message{wrapperspb.Int64(5), wrapperspb.Int64(-3)}, cmd{take: 3}, nil, errOutOfStock},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := counter.GivenWhenThen("s1", tc.given, tc.when)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("events %v, want %v", got, tc.want)
			}
			for i, e := range got {
				if e.(*wrapperspb.Int64Value).Value != tc.want[i] {
					t.Fatalf("event %d = %v, want %d", i, e, tc.want[i])
				}
			}
		})
	}
}

func TestHandleStoresAndLoads(t *testing.T) {
	st := memory.New(nil)
	h := es.NewHandler(counter, st, es.Options{})
	ctx := t.Context()
	res, err := h.Handle(ctx, es.Command[cmd]{AggregateID: "s1", ID: "r1", Body: cmd{add: 10}, Meta: es.Meta{CorrelationID: "c1", Actor: "vendor:v1"}})
	if err != nil || res.State.units != 10 || len(res.Events) != 1 || res.Duplicate {
		t.Fatalf("restock = %+v, %v", res, err)
	}
	stored, _ := st.ReadStream(ctx, "sku-s1", 0, 0)
	if len(stored) != 1 || stored[0].Metadata.CausationID != "r1" || stored[0].Metadata.Actor != "vendor:v1" || stored[0].Type != "google.protobuf.Int64Value" {
		t.Fatalf("stored %+v", stored)
	}
	if _, err := h.Handle(ctx, es.Command[cmd]{AggregateID: "s1", ID: "r2", Body: cmd{take: 11}}); !errors.Is(err, errOutOfStock) {
		t.Fatalf("over-take: %v", err)
	}
	if stored, _ := st.ReadStream(ctx, "sku-s1", 0, 0); len(stored) != 1 {
		t.Fatalf("a refused command wrote %d events", len(stored)-1)
	}
	// A fresh handler (another process, or after a restart) loads from the store.
	s, rev, exists, err := es.NewHandler(counter, st, es.Options{}).Load(ctx, "s1")
	if err != nil || s.units != 10 || rev != 0 || !exists {
		t.Fatalf("load = %+v rev %d exists %v err %v", s, rev, exists, err)
	}
	if _, _, exists, _ := h.Load(ctx, "nothing"); exists {
		t.Fatal("an aggregate with no events exists")
	}
}

func TestRepeatedCommandIsAppliedOnce(t *testing.T) {
	st := memory.New(nil)
	ctx := t.Context()
	h := es.NewHandler(counter, st, es.Options{})
	c := es.Command[cmd]{AggregateID: "s1", ID: "req-1", Body: cmd{add: 3}}
	for i, handler := range []*es.Handler[stock, cmd]{h, h, es.NewHandler(counter, st, es.Options{})} {
		res, err := handler.Handle(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if res.State.units != 3 || res.Duplicate != (i > 0) {
			t.Fatalf("attempt %d: %+v", i, res)
		}
	}
	if evs, _ := st.ReadStream(ctx, "sku-s1", 0, 0); len(evs) != 1 {
		t.Fatalf("stream has %d events, want 1", len(evs))
	}
}

// A command that appends is decided on the aggregate in memory, without
// reading the store; a refusal is only given on a copy caught up with the
// store, and a copy another writer made stale is reloaded on the conflict.
func TestTrustsTheAggregateInMemory(t *testing.T) {
	st := &countingStore{Store: memory.New(nil)}
	h := es.NewHandler(counter, st, es.Options{})
	handle := func(id string, c cmd) (es.Result[stock], error) {
		return h.Handle(t.Context(), es.Command[cmd]{AggregateID: "m", ID: id, Body: c})
	}
	if _, err := handle("add-0", cmd{add: 1}); err != nil {
		t.Fatal(err)
	}
	reads := st.reads.Load() // the first command loads the aggregate
	for i := 1; i <= 10; i++ {
		if _, err := handle(fmt.Sprintf("add-%d", i), cmd{add: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if got := st.reads.Load() - reads; got != 0 {
		t.Errorf("ten appending commands on a loaded aggregate read the store %d times, want 0", got)
	}
	// Another process takes 5 behind this handler's back.
	if _, err := st.Store.Append(t.Context(), "sku-m", eventstore.Exact(10), []eventstore.EventData{mustEncode(t, wrapperspb.Int64(-5), "other-take")}); err != nil {
		t.Fatal(err)
	}
	// In memory 11 units are left, in the store 6: taking 8 must be refused,
	// and only after reading the store.
	reads = st.reads.Load()
	if _, err := handle("take-8", cmd{take: 8}); !errors.Is(err, errOutOfStock) {
		t.Fatalf("take 8 of 6: %v, want out of stock", err)
	}
	if st.reads.Load() == reads {
		t.Error("a refusal was given without reading the store")
	}
	// The stale copy is caught by the expected revision and reloaded.
	if _, err := st.Store.Append(t.Context(), "sku-m", eventstore.Exact(11), []eventstore.EventData{mustEncode(t, wrapperspb.Int64(-1), "other-take-2")}); err != nil {
		t.Fatal(err)
	}
	// Peek answers from memory: what this handler's last command left.
	if _, _, ok := h.Peek("unknown"); ok {
		t.Error("Peek of an aggregate never loaded answered")
	}
	reads = st.reads.Load()
	if s, rev, ok := h.Peek("m"); !ok || s.units != 6 || rev != 11 || st.reads.Load() != reads {
		t.Errorf("Peek = %+v at %d, %v (%d reads); want the copy in memory, 6 units at 11, no read", s, rev, ok, st.reads.Load()-reads)
	}
	res, err := handle("take-5", cmd{take: 5})
	if err != nil || res.State.units != 0 || res.Revision != 13 {
		t.Fatalf("take 5 of 5 after another writer: %+v, %v; want 0 units at revision 13", res, err)
	}
}

func mustEncode(t *testing.T, m proto.Message, id string) eventstore.EventData {
	t.Helper()
	ed, err := es.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	ed.ID = id
	return ed
}

func TestBadCommand(t *testing.T) {
	h := es.NewHandler(counter, memory.New(nil), es.Options{})
	for _, c := range []es.Command[cmd]{{AggregateID: "s1"}, {AggregateID: "bad.id", ID: "x"}, {AggregateID: "", ID: "x"}} {
		if _, err := h.Handle(t.Context(), c); !errors.Is(err, es.ErrBadCommand) {
			t.Errorf("%+v: %v, want ErrBadCommand", c, err)
		}
	}
}

// flashSale: buyers race for units; exactly `units` succeed.
func flashSale(t *testing.T, handlers []*es.Handler[stock, cmd], units, buyers int) (ok, out int64) {
	t.Helper()
	if _, err := handlers[0].Handle(t.Context(), es.Command[cmd]{AggregateID: "hot", ID: "restock", Body: cmd{add: int64(units)}}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var okN, outN atomic.Int64
	for b := range buyers {
		wg.Go(func() {
			_, err := handlers[b%len(handlers)].Handle(t.Context(), es.Command[cmd]{AggregateID: "hot", ID: fmt.Sprintf("buy-%d", b), Body: cmd{take: 1}})
			switch {
			case err == nil:
				okN.Add(1)
			case errors.Is(err, errOutOfStock):
				outN.Add(1)
			default:
				t.Errorf("buyer %d: %v", b, err)
			}
		})
	}
	wg.Wait()
	return okN.Load(), outN.Load()
}

func TestHotAggregateGroupCommit(t *testing.T) {
	st := &countingStore{Store: jetStreamStores(t, 1)[0]}
	h := es.NewHandler(counter, st, es.Options{})
	ok, out := flashSale(t, []*es.Handler[stock, cmd]{h}, 100, 1000)
	if ok != 100 || out != 900 {
		t.Fatalf("%d sold, %d refused; want 100 and 900", ok, out)
	}
	s, _, _, _ := h.Load(t.Context(), "hot")
	if s.units != 0 {
		t.Fatalf("%d units left", s.units)
	}
	// 1 restock + 100 sales; far fewer appends than commands because
	// waiting commands were decided together.
	if evs, _ := st.ReadStream(t.Context(), "sku-hot", 0, 0); len(evs) != 101 {
		t.Fatalf("stream has %d events, want 101", len(evs))
	}
	if n := st.appends.Load(); n >= 101 {
		t.Fatalf("%d appends for 101 events: commands were not grouped", n)
	}
}

func TestTwoProcessesNeverOversell(t *testing.T) {
	stores := jetStreamStores(t, 2)
	hs := []*es.Handler[stock, cmd]{
		es.NewHandler(counter, stores[0], es.Options{MaxRetries: 100}),
		es.NewHandler(counter, stores[1], es.Options{MaxRetries: 100}),
	}
	ok, out := flashSale(t, hs, 50, 300)
	if ok != 50 || out != 250 {
		t.Fatalf("%d sold, %d refused; want 50 and 250", ok, out)
	}
	evs, err := stores[0].ReadStream(t.Context(), "sku-hot", 0, 0)
	if err != nil || len(evs) != 51 {
		t.Fatalf("stream has %d events (%v), want 51", len(evs), err)
	}
	if _, err := eventstore.VerifyChain(evs); err != nil {
		t.Fatal(err)
	}
}

// A new aggregate is decided without reading the store when the store's
// index has not seen it (eventstore.Absence). When that answer is stale,
// because another process created the aggregate meanwhile, the append that
// expects no stream fails and the handler decides again on what is stored.
func TestNewAggregateWithAStaleIndex(t *testing.T) {
	stores := jetStreamStores(t, 2)
	ctx := t.Context()
	a, b := es.NewHandler(counter, stores[0], es.Options{}), es.NewHandler(counter, stores[1], es.Options{})
	// b's index catches up once, before a creates "x".
	if _, _, _, err := b.Load(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Handle(ctx, es.Command[cmd]{AggregateID: "x", ID: "restock", Body: cmd{add: 5}}); err != nil {
		t.Fatal(err)
	}
	if !stores[1].(eventstore.Absence).Absent("sku-x") {
		t.Fatal("b's index is expected to be stale here, or this test no longer tests a stale answer")
	}
	res, err := b.Handle(ctx, es.Command[cmd]{AggregateID: "x", ID: "buy", Body: cmd{take: 3}})
	if err != nil {
		t.Fatalf("take 3 of the 5 another process added: %v", err)
	}
	if res.State.units != 2 || res.Revision != 1 {
		t.Fatalf("state %+v at revision %d, want 2 units at revision 1", res.State, res.Revision)
	}
	// A refusal stands only on what is stored: on its initial state b
	// would refuse to take from "z", which a has stocked meanwhile.
	if _, err := a.Handle(ctx, es.Command[cmd]{AggregateID: "z", ID: "restock", Body: cmd{add: 1}}); err != nil {
		t.Fatal(err)
	}
	if !stores[1].(eventstore.Absence).Absent("sku-z") {
		t.Fatal("b's index is expected to be stale for z")
	}
	if _, err := b.Handle(ctx, es.Command[cmd]{AggregateID: "z", ID: "buy", Body: cmd{take: 1}}); err != nil {
		t.Fatalf("take the unit another process added: %v", err)
	}
	evs, err := stores[0].ReadStream(ctx, "sku-x", 0, 0)
	if err != nil || len(evs) != 2 {
		t.Fatalf("stream has %d events (%v), want 2", len(evs), err)
	}
}

func TestTwoProcessesNeverOversellOnReplicatedStream(t *testing.T) {
	if testing.Short() {
		t.Skip("three-node cluster test skipped in -short mode")
	}
	c, err := natsembed.StartCluster(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Shutdown)
	var hs []*es.Handler[stock, cmd]
	var first eventstore.Store
	for i := range 2 {
		nc, err := nats.Connect(c.Servers[i*2].ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		var st *esjs.Store
		for deadline := time.Now().Add(30 * time.Second); ; {
			st, err = esjs.Open(t.Context(), nc, esjs.Config{Service: "catalog", Replicas: 3})
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = st
		}
		hs = append(hs, es.NewHandler(counter, st, es.Options{MaxRetries: 100}))
	}
	ok, out := flashSale(t, hs, 30, 120)
	if ok != 30 || out != 90 {
		t.Fatalf("%d sold, %d refused; want 30 and 90", ok, out)
	}
	evs, err := first.ReadStream(t.Context(), "sku-hot", 0, 0)
	if err != nil || len(evs) != 31 {
		t.Fatalf("stream has %d events (%v), want 31", len(evs), err)
	}
}

// An event handed to several readers (Shared) is decoded once: every reader
// gets the same payload. Without Shared each decodes its own.
func TestDecodeSharedOnce(t *testing.T) {
	ed, err := es.Encode(wrapperspb.Int64(7))
	if err != nil {
		t.Fatal(err)
	}
	rec := eventstore.RecordedEvent{EventData: ed, Stream: "sku-s", Shared: &eventstore.Shared{}}
	first, err := es.Decode(rec)
	if err != nil {
		t.Fatal(err)
	}
	again, err := es.Decode(rec)
	if err != nil || again.Payload != first.Payload {
		t.Fatalf("shared event decoded twice: %p then %p (%v)", first.Payload, again.Payload, err)
	}
	rec.Shared = nil
	if other, _ := es.Decode(rec); other.Payload == first.Payload || other.Payload.(*wrapperspb.Int64Value).GetValue() != 7 {
		t.Fatalf("unshared decode %v", other.Payload)
	}
}
