package bus_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custody/custody/pkg/bus"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
)

// redriveDone waits until the dead-letter record seq of consumer name has a
// redrive outcome and returns the record.
func redriveDone(t *testing.T, e *env, seq uint64) bus.Parked {
	t.Helper()
	var p bus.Parked
	eventually(t, func() (err error) {
		p, err = bus.GetParked(t.Context(), e.js, seq)
		if err == nil && (p.Redrive == nil || p.Redrive.Outcome == "") {
			err = fmt.Errorf("record %d: redrive %+v, no outcome yet", seq, p.Redrive)
		}
		return err
	})
	return p
}

// TestRedriveHandsAParkedEventBackOnce: an event parked because its handler
// failed permanently is handed back once the cause is fixed and handled
// exactly once; redriving it again does nothing; an event whose effect had
// happened before it was parked changes nothing when redriven (the handler
// is idempotent); an event that still fails is parked again, as a new record
// that names the one it came from.
func TestRedriveHandsAParkedEventBackOnce(t *testing.T) {
	e := newEnv(t)
	name := consumerName("test-on-order-redrive")
	f := newEffects()
	var fixed atomic.Bool
	e.append(t, "o1", "broken", eventstore.Metadata{})   // fails until fixed
	e.append(t, "o2", "applied", eventstore.Metadata{})  // its effect happens, then the handler fails
	e.append(t, "o3", "hopeless", eventstore.Metadata{}) // never handled
	c := e.subscribe(t, bus.Config{Name: name, MaxDeliver: 2, AckWait: 5 * time.Second, Backoff: []time.Duration{time.Millisecond}},
		func(ctx context.Context, ev eventstore.RecordedEvent) error {
			f.call(ev.ID)
			switch {
			case ev.ID == "broken" && !fixed.Load():
				return fault.Permanent(errors.New("a bug in the handler"))
			case ev.ID == "applied" && !fixed.Load():
				f.applyOnce(ev.ID)
				return fault.Permanent(errors.New("failed after its effect"))
			case ev.ID == "hopeless":
				return errors.New("still down")
			}
			f.applyOnce(ev.ID)
			return nil
		})
	var parked []bus.Parked
	eventually(t, func() (err error) {
		parked, err = bus.ListParked(t.Context(), e.js, name)
		if err == nil && len(parked) != 3 {
			err = fmt.Errorf("%d parked, want 3", len(parked))
		}
		return err
	})
	eventually(t, settled(t, c, 3))
	byEvent := map[string]bus.Parked{}
	for _, p := range parked {
		if p.Redrive != nil {
			t.Fatalf("%s shows a redrive before any: %+v", p.EventID, p.Redrive)
		}
		byEvent[p.EventID] = p
	}
	if _, err := bus.GetParked(t.Context(), e.js, 999); !errors.Is(err, bus.ErrParkedNotFound) {
		t.Fatalf("GetParked of no record: %v", err)
	}
	if p, err := bus.FindParked(t.Context(), e.js, name, "broken"); err != nil || p.Sequence != byEvent["broken"].Sequence {
		t.Fatalf("FindParked(broken) = %+v, %v", p, err)
	}

	fixed.Store(true)
	for _, id := range []string{"broken", "applied", "hopeless"} {
		ok, err := bus.RequestRedrive(t.Context(), e.js, byEvent[id], "cmd-"+id, "support:alice", 1)
		if err != nil || !ok {
			t.Fatalf("redrive %s: %v, %v", id, ok, err)
		}
	}

	broken := redriveDone(t, e, byEvent["broken"].Sequence)
	if r := broken.Redrive; r.Outcome != bus.RedriveHandled || r.ID != "cmd-broken" || r.Actor != "support:alice" || r.RequestedAt.IsZero() || r.OutcomeAt.Before(r.RequestedAt) {
		t.Fatalf("broken's redrive = %+v, want handled, by support:alice", r)
	}
	if calls, n := f.get("broken"); calls != 2 || n != 1 {
		t.Fatalf("broken: %d calls, applied %d times; want 2 calls (parked, redriven), applied once", calls, n)
	}
	applied := redriveDone(t, e, byEvent["applied"].Sequence)
	if applied.Redrive.Outcome != bus.RedriveHandled {
		t.Fatalf("applied's redrive = %+v", applied.Redrive)
	}
	if calls, n := f.get("applied"); calls != 2 || n != 1 {
		t.Fatalf("applied: %d calls, applied %d times; want 2 calls, its effect once", calls, n)
	}

	hopeless := redriveDone(t, e, byEvent["hopeless"].Sequence)
	if r := hopeless.Redrive; r.Outcome != bus.RedriveParkedAgain || r.ParkedAgainAs == 0 || r.Reason == "" {
		t.Fatalf("hopeless's redrive = %+v, want parked again", r)
	}
	again, err := bus.GetParked(t.Context(), e.js, hopeless.Redrive.ParkedAgainAs)
	if err != nil || again.RedriveOf != hopeless.Sequence || again.EventID != "hopeless" || again.Cause != bus.CauseMaxDeliver ||
		again.OriginalSequence != hopeless.OriginalSequence || again.Redrive != nil {
		t.Fatalf("the record parked again: %+v, %v", again, err)
	}
	if p, err := bus.FindParked(t.Context(), e.js, name, "hopeless"); err != nil || p.Sequence != again.Sequence {
		t.Fatalf("FindParked(hopeless) = #%d, %v; want the newest record #%d", p.Sequence, err, again.Sequence)
	}

	// A second redrive of a record handed back does nothing.
	ok, err := bus.RequestRedrive(t.Context(), e.js, broken, "cmd-again", "support:bob", 1)
	if err != nil || ok {
		t.Fatalf("second redrive: %v, %v; want refused as done", ok, err)
	}
	// Nothing runs it again: wait until the consumer has nothing pending,
	// then count.
	eventually(t, func() error {
		n, err := c.RedrivesPending(t.Context())
		if err == nil && n != 0 {
			err = fmt.Errorf("%d redrives pending", n)
		}
		return err
	})
	if calls, n := f.get("broken"); calls != 2 || n != 1 {
		t.Fatalf("after a second redrive broken: %d calls, applied %d times; want 2, 1", calls, n)
	}
	if p, _ := bus.GetParked(t.Context(), e.js, broken.Sequence); p.Redrive.ID != "cmd-broken" {
		t.Fatalf("the second redrive replaced the first: %+v", p.Redrive)
	}
	all, err := bus.ListParked(t.Context(), e.js, name)
	if err != nil || len(all) != 4 || all[0].Redrive == nil || all[3].Redrive != nil {
		t.Fatalf("ListParked after the redrives: %d records, %v", len(all), err)
	}
}
