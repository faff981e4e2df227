package es_test

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/eventstore/memory"
)

// A command id that comes again with the request fingerprint it was applied
// with is a retry (Duplicate); with another fingerprint it is a request_id
// reused for a different request, refused with a *ReusedError without
// changing anything — by the handler that applied it and by a fresh one
// that loads the aggregate from the store.
func TestRequestReusedForADifferentRequestIsRefused(t *testing.T) {
	st := memory.New(nil)
	ctx := t.Context()
	h := es.NewHandler(counter, st, es.Options{})
	with := func(fp string, c cmd) es.Command[cmd] {
		return es.Command[cmd]{AggregateID: "s1", ID: "req-1", Body: c, Meta: es.Meta{RequestFingerprint: fp}}
	}
	res, err := h.Handle(ctx, with("fp-a", cmd{add: 3}))
	if err != nil || res.Duplicate || len(res.Events) != 1 {
		t.Fatalf("first = %+v, %v", res, err)
	}
	stored, _ := st.ReadStream(ctx, "sku-s1", 0, 0)
	if len(stored) != 1 || stored[0].Metadata.RequestFingerprint != "fp-a" {
		t.Fatalf("stored %+v, want one event recording fingerprint fp-a", stored)
	}
	check := func(name string, h *es.Handler[stock, cmd]) {
		t.Helper()
		res, err := h.Handle(ctx, with("fp-a", cmd{add: 3}))
		if err != nil || !res.Duplicate || res.State.units != 3 {
			t.Errorf("%s: same request again = %+v, %v; want the first result, a duplicate", name, res, err)
		}
		// No fingerprint (a caller that sends none) cannot tell: a repeat.
		if res, err := h.Handle(ctx, with("", cmd{add: 3})); err != nil || !res.Duplicate {
			t.Errorf("%s: without a fingerprint = %+v, %v; want a duplicate", name, res, err)
		}
		_, err = h.Handle(ctx, with("fp-b", cmd{add: 7}))
		var reused *es.ReusedError
		if !errors.Is(err, es.ErrRequestReused) || !errors.As(err, &reused) ||
			reused.CommandID != "req-1" || reused.Applied != "fp-a" || reused.Got != "fp-b" || reused.Stream != "sku-s1" {
			t.Errorf("%s: different request = %v; want a ReusedError for req-1 (fp-a, now fp-b)", name, err)
		}
		if res, err := h.Lookup(ctx, "s1", "req-1", "fp-a"); err != nil || !res.Duplicate || res.State.units != 3 {
			t.Errorf("%s: Lookup of the same request = %+v, %v; want the state as a duplicate", name, res, err)
		}
		if _, err := h.Lookup(ctx, "s1", "req-1", "fp-b"); !errors.Is(err, es.ErrRequestReused) {
			t.Errorf("%s: Lookup of a different request = %v; want ErrRequestReused", name, err)
		}
		if res, err := h.Lookup(ctx, "s1", "req-2", "fp-b"); err != nil || res.Duplicate || res.State.units != 3 {
			t.Errorf("%s: Lookup of a command not applied = %+v, %v; want the state, not a duplicate", name, res, err)
		}
		if _, _, ok, err := h.PeekCommand("s1", "req-1", "fp-a"); !ok || err != nil {
			t.Errorf("%s: PeekCommand of the same request = %v, %v; want found", name, ok, err)
		}
		if _, _, _, err := h.PeekCommand("s1", "req-1", "fp-b"); !errors.Is(err, es.ErrRequestReused) {
			t.Errorf("%s: PeekCommand of a different request = %v; want ErrRequestReused", name, err)
		}
		if _, _, ok, err := h.PeekCommand("s1", "req-2", "fp-a"); ok || err != nil {
			t.Errorf("%s: PeekCommand of a command not applied = %v, %v; want not found", name, ok, err)
		}
	}
	check("the handler that applied it", h)
	check("a fresh handler, loading from the store", es.NewHandler(counter, st, es.Options{}))
	if evs, _ := st.ReadStream(ctx, "sku-s1", 0, 0); len(evs) != 1 {
		t.Fatalf("stream has %d events, want 1: the refused request changed something", len(evs))
	}
}

// Events written before fingerprints existed carry none: a repeat of their
// command id is answered as a duplicate, whatever fingerprint it brings.
func TestEventsWithoutFingerprintAcceptRepeats(t *testing.T) {
	st := memory.New(nil)
	old := mustEncode(t, wrapperspb.Int64(4), "old-event")
	old.Metadata.CausationID = "req-old"
	if _, err := st.Append(t.Context(), "sku-s1", eventstore.NoStream, []eventstore.EventData{old}); err != nil {
		t.Fatal(err)
	}
	h := es.NewHandler(counter, st, es.Options{})
	res, err := h.Handle(t.Context(), es.Command[cmd]{AggregateID: "s1", ID: "req-old", Body: cmd{add: 9},
		Meta: es.Meta{RequestFingerprint: "fp-new"}})
	if err != nil || !res.Duplicate || res.State.units != 4 {
		t.Fatalf("repeat of a command stored without a fingerprint = %+v, %v; want a duplicate", res, err)
	}
}

// Two processes whose copies of an aggregate are equally stale decide the
// same command id: the second append finds the first's event ids in place
// (the store calls it a duplicate). If a different request wrote them, the
// second is refused — not told it succeeded — and its copy is reloaded; if
// the same request did, it is the same outcome.
func TestStaleProcessReusingARequestIDIsRefused(t *testing.T) {
	st := memory.New(nil)
	ctx := t.Context()
	a, b, c := es.NewHandler(counter, st, es.Options{}), es.NewHandler(counter, st, es.Options{}), es.NewHandler(counter, st, es.Options{})
	if _, err := a.Handle(ctx, es.Command[cmd]{AggregateID: "s1", ID: "setup", Body: cmd{add: 1}}); err != nil {
		t.Fatal(err)
	}
	for _, h := range []*es.Handler[stock, cmd]{a, b, c} {
		if _, _, _, err := h.Load(ctx, "s1"); err != nil { // all hold revision 0
			t.Fatal(err)
		}
	}
	first := es.Command[cmd]{AggregateID: "s1", ID: "req-1", Body: cmd{add: 2}, Meta: es.Meta{RequestFingerprint: "fp-a"}}
	if _, err := a.Handle(ctx, first); err != nil {
		t.Fatal(err)
	}
	other := first
	other.Body, other.Meta.RequestFingerprint = cmd{add: 5}, "fp-b"
	if res, err := b.Handle(ctx, other); !errors.Is(err, es.ErrRequestReused) {
		t.Fatalf("stale process, different request = %+v, %v; want ErrRequestReused", res, err)
	}
	if s, _, ok := b.Peek("s1"); !ok || s.units != 3 {
		t.Errorf("the refusing process holds %+v (%v), want the stored 3 units", s, ok)
	}
	if res, err := c.Handle(ctx, first); err != nil || res.State.units != 3 {
		t.Errorf("stale process, same request = %+v, %v; want the first outcome, 3 units", res, err)
	}
	if evs, _ := st.ReadStream(ctx, "sku-s1", 0, 0); len(evs) != 2 {
		t.Fatalf("stream has %d events, want 2", len(evs))
	}
}
