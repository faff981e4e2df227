package fulfilment_test

import (
	"testing"
	"time"

	"github.com/custody/custody/pkg/platform/platformtest"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	"github.com/custody/custody/services/fulfilment"
)

// TestShipByDeadlines runs its own process, started before the order
// service ever created its stream, with the default policy (one day of
// grace, then cancel). Deadlines that pass while the process is down fire
// once after the restart; a watch resumes across the restart from its
// cursor.
func TestShipByDeadlines(t *testing.T) {
	t.Parallel()
	e := start(t, fulfilment.Options{})
	// The order service appears after us (its first event creates its
	// stream); its events are picked up.
	vendor := uniq("v")
	confirmed := e.clock.Now()
	idle := fulfilmentID(e.confirmOrder(t, uniq("b"), part{vendor, []lineQty{{"a", 1}}}), vendor)
	partial := fulfilmentID(e.confirmOrder(t, uniq("b"), part{vendor, []lineQty{{"a", 1}, {"b", 1}}}), vendor)
	done := fulfilmentID(e.confirmOrder(t, uniq("b"), part{vendor, []lineQty{{"a", 1}}}), vendor)
	vc := e.as(t, "vendor:"+vendor)
	if _, err := vc.ShipFulfilment(t.Context(), shipReq(partial, "dhl", dhlNumber(), box(line("1", 1)))); err != nil {
		t.Fatal(err)
	}
	if _, err := vc.ShipFulfilment(t.Context(), shipReq(done, "dhl", dhlNumber(), box(line("1", 1)))); err != nil {
		t.Fatal(err)
	}
	w := e.watch(t, "vendor:"+vendor, vendor, "")
	_, cursor := w.snapshot(t)
	w.cancel()

	// Down while the deadline passes.
	e.Stop(t)
	shipBy := confirmed.Add(3 * day)
	e.clock.Set(shipBy.Add(time.Hour))
	e.Restart(t)
	missed := func(id string) []*fulfilmentv1.ShipByDeadlineMissed {
		return eventsOf[*fulfilmentv1.ShipByDeadlineMissed](t, e, id)
	}
	platformtest.Until(t, "the deadlines missed while down to fire", func() bool {
		return len(missed(idle)) > 0 && len(missed(partial)) > 0
	})
	for _, id := range []string{idle, partial} {
		m := missed(id)
		if len(m) != 1 || m[0].GetAction() != "grace" || !m[0].GetShipByTime().AsTime().Equal(shipBy) ||
			!m[0].GetGraceUntilTime().AsTime().Equal(shipBy.Add(day)) {
			t.Fatalf("%s: %v", id, m)
		}
	}
	if m := missed(done); len(m) != 0 {
		t.Fatalf("a shipped fulfilment missed its deadline: %v", m)
	}
	f := e.waitState(t, idle, stateRequested)
	if !f.GetShipByMissed() || !f.GetShipByTime().AsTime().Equal(shipBy.Add(day)) {
		t.Fatalf("after the grace was granted: %v", f)
	}

	// The watch resumes across the restart from its cursor.
	w = e.watch(t, "vendor:"+vendor, vendor, cursor)
	seen := map[string]bool{}
	for range 2 {
		m := w.next(t)
		if m.GetEventType() != "custody.fulfilment.v1.ShipByDeadlineMissed" {
			t.Fatalf("resumed watch: %v", m)
		}
		seen[m.GetFulfilment().GetFulfilmentId()] = true
	}
	if !seen[idle] || !seen[partial] {
		t.Fatalf("resumed watch saw %v", seen)
	}
	w.cancel()

	// A second restart fires nothing again; the grace period then runs
	// out while running: the idle fulfilment is cancelled, the partly
	// shipped one only flagged.
	e.Restart(t)
	vc = e.as(t, "vendor:"+vendor) // the restart closed the old connection
	e.clock.Advance(day)
	e.waitState(t, idle, stateCancelled)
	platformtest.Until(t, "the partly shipped fulfilment's second miss", func() bool {
		return len(missed(partial)) >= 2
	})
	if m := missed(idle); len(m) != 2 || m[1].GetAction() != "cancel" {
		t.Fatalf("idle: %v", m)
	}
	if m := missed(partial); len(m) != 2 || m[1].GetAction() != "flag" {
		t.Fatalf("partial: %v", m)
	}
	c := eventsOf[*fulfilmentv1.FulfilmentCancelled](t, e, idle)
	if len(c) != 1 || c[0].GetReason() != "ship-by deadline missed" {
		t.Fatalf("cancelled: %v", c)
	}
	e.waitState(t, partial, statePartial)
	_, err := vc.ShipFulfilment(t.Context(), shipReq(idle, "dhl", dhlNumber(), box(line("1", 1))))
	wantReason(t, err, "FULFILMENT_CANCELLED")
	// The partly shipped one may still ship the rest; no deadline is left.
	if _, err := vc.ShipFulfilment(t.Context(), shipReq(partial, "dhl", dhlNumber(), box(line("2", 1)))); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(30 * day)
	e.Restart(t)
	e.waitState(t, partial, stateShipped)
	if m := missed(partial); len(m) != 2 {
		t.Fatalf("partial after shipping: %v", m)
	}
}
