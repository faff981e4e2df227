package audit_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/bus"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/platform/platformtest"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
)

// TestRedriveParkedEvent: a consumer whose handler fails permanently on
// order o1's events parks them; support hands one back through the audit
// service once the handler is fixed, and it is handled once; a second
// redrive does nothing and says so; the redrive is in o1's timeline (who,
// why, which consumer and event); an event whose effect happened before it
// was parked changes nothing when handed back; other roles are refused,
// bad input names its fields, an unknown record is NotFound.
func TestRedriveParkedEvent(t *testing.T) {
	t.Parallel()
	p, s := startWithStory(t, "")
	js, err := jetstream.New(p.NATS)
	if err != nil {
		t.Fatal(err)
	}
	var fixed atomic.Bool
	var mu sync.Mutex
	calls, effects := map[string]int{}, map[string]int{}
	const placed, confirmed = "custody.order.v1.OrderPlaced", "custody.order.v1.OrderConfirmed"
	c, err := bus.Subscribe(t.Context(), js, bus.Config{Name: "test-redrive", SourceService: "order", EventTypes: []string{placed, confirmed}},
		func(_ context.Context, e eventstore.RecordedEvent) error {
			mu.Lock()
			defer mu.Unlock()
			calls[e.Type]++
			if e.Type == confirmed && effects[e.ID] == 0 {
				effects[e.ID]++ // its effect happens (once: idempotent by event id) …
			}
			if !fixed.Load() {
				return fault.Permanent(errors.New("handler bug")) // … and the handler fails after it
			}
			if effects[e.ID] == 0 {
				effects[e.ID]++
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)

	support := as(t, p, "support")
	var parked []*auditv1.ParkedEvent
	platformtest.Eventually(t, "two parked events", func() error {
		r, err := support.ListParkedEvents(t.Context(), &auditv1.ListParkedEventsRequest{Consumer: "test-redrive"})
		if err != nil {
			return err
		}
		if parked = r.GetParked(); len(parked) != 2 {
			return fmt.Errorf("%d parked", len(parked))
		}
		return nil
	})
	byType := map[string]*auditv1.ParkedEvent{}
	for _, pe := range parked {
		if pe.GetDeadLetterSequence() == 0 || pe.GetRedrive() != nil {
			t.Fatalf("parked %v: want a dead-letter sequence and no redrive", pe)
		}
		byType[pe.GetEventType()] = pe
	}
	effectOf := func(id string) int {
		mu.Lock()
		defer mu.Unlock()
		return effects[id]
	}
	callsOf := func(typ string) int {
		mu.Lock()
		defer mu.Unlock()
		return calls[typ]
	}
	placedID, confirmedID := byType[placed].GetEventId(), byType[confirmed].GetEventId()
	if effectOf(placedID) != 0 || effectOf(confirmedID) != 1 || callsOf(placed) != 1 || callsOf(confirmed) != 1 {
		t.Fatalf("before the redrive: calls %v, effects %v", calls, effects)
	}

	// Refused: other roles, bad input, an unknown record.
	req := &auditv1.RedriveParkedEventRequest{RequestId: "rd-1", DeadLetterSequence: byType[placed].GetDeadLetterSequence(), Reason: "handler fixed in 1.2.3"}
	for _, role := range []string{"buyer:" + s.BuyerID, "vendor:" + s.VendorID, "service", ""} {
		_, err := as(t, p, role).RedriveParkedEvent(t.Context(), req)
		if want := codes.PermissionDenied; role == "" {
			want = codes.Unauthenticated
			if status.Code(err) != want {
				t.Errorf("%q: %v, want %s", role, err, want)
			}
		} else if status.Code(err) != want {
			t.Errorf("%q: %v, want %s", role, err, want)
		}
	}
	_, err = support.RedriveParkedEvent(t.Context(), &auditv1.RedriveParkedEventRequest{Consumer: "bad name!"})
	var fields []string
	for _, v := range apierr.FieldViolations(err) {
		fields = append(fields, v.Field)
	}
	slices.Sort(fields)
	if status.Code(err) != codes.InvalidArgument || !slices.Equal(slices.Compact(fields), []string{"consumer", "event_id", "reason", "request_id"}) {
		t.Fatalf("bad input: %v, fields %v", err, fields)
	}
	if _, err := support.RedriveParkedEvent(t.Context(), &auditv1.RedriveParkedEventRequest{RequestId: "rd-x", DeadLetterSequence: 999, Reason: "x"}); status.Code(err) != codes.NotFound {
		t.Fatalf("unknown record: %v", err)
	}
	if _, err := support.RedriveParkedEvent(t.Context(), &auditv1.RedriveParkedEventRequest{RequestId: "rd-y", Consumer: "test-redrive", EventId: "nope", Reason: "x"}); status.Code(err) != codes.NotFound {
		t.Fatalf("unknown event: %v", err)
	}
	if callsOf(placed) != 1 {
		t.Fatalf("a refused redrive handed the event back")
	}

	// The fix is deployed; support hands OrderPlaced back.
	fixed.Store(true)
	first, err := support.RedriveParkedEvent(t.Context(), req)
	if err != nil || first.GetAlreadyRedriven() || first.GetParked().GetRedrive() == nil || first.GetParked().GetEventId() != placedID {
		t.Fatalf("redrive: %v, %v", first, err)
	}
	handled := func(seq uint64) *auditv1.ParkedEvent {
		var got *auditv1.ParkedEvent
		platformtest.Eventually(t, "the redrive handled", func() error {
			r, err := support.ListParkedEvents(t.Context(), &auditv1.ListParkedEventsRequest{Consumer: "test-redrive"})
			if err != nil {
				return err
			}
			for _, pe := range r.GetParked() {
				if pe.GetDeadLetterSequence() == seq {
					got = pe
				}
			}
			if o := got.GetRedrive().GetOutcome(); o != auditv1.RedriveOutcome_REDRIVE_OUTCOME_HANDLED {
				return fmt.Errorf("outcome %s", o)
			}
			return nil
		})
		return got
	}
	pe := handled(byType[placed].GetDeadLetterSequence())
	if r := pe.GetRedrive(); r.GetActor() != "support" || r.GetRequestTime() == nil || r.GetOutcomeTime() == nil {
		t.Fatalf("redrive shown as %v", r)
	}
	if callsOf(placed) != 2 || effectOf(placedID) != 1 {
		t.Fatalf("after the redrive OrderPlaced: %d calls, effect %d times; want 2 calls, once", callsOf(placed), effectOf(placedID))
	}

	// Again: the same request answers as before; another request does
	// nothing and says so; a request_id reused for another request is
	// refused. The handler is not called again.
	same, err := support.RedriveParkedEvent(t.Context(), req)
	if err != nil || same.GetAlreadyRedriven() {
		t.Fatalf("the same request again: %v, %v", same, err)
	}
	again, err := support.RedriveParkedEvent(t.Context(), &auditv1.RedriveParkedEventRequest{RequestId: "rd-2",
		Consumer: "test-redrive", EventId: placedID, Reason: "once more"})
	if err != nil || !again.GetAlreadyRedriven() || again.GetParked().GetRedrive().GetOutcome() != auditv1.RedriveOutcome_REDRIVE_OUTCOME_HANDLED {
		t.Fatalf("a second redrive: %v, %v; want already redriven, handled", again, err)
	}
	reused := &auditv1.RedriveParkedEventRequest{RequestId: "rd-1", DeadLetterSequence: req.GetDeadLetterSequence(), Reason: "another reason"}
	if _, err := support.RedriveParkedEvent(t.Context(), reused); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("request_id reused: %v", err)
	}
	p.Settled(t)
	if callsOf(placed) != 2 || effectOf(placedID) != 1 {
		t.Fatalf("after the repeats OrderPlaced: %d calls, effect %d times; want 2, 1", callsOf(placed), effectOf(placedID))
	}

	// OrderConfirmed's effect happened before it was parked: handed back
	// (by consumer and event id, as platform), it changes nothing.
	if _, err := as(t, p, "platform").RedriveParkedEvent(t.Context(), &auditv1.RedriveParkedEventRequest{RequestId: "rd-3",
		Consumer: "test-redrive", EventId: confirmedID, Reason: "replay"}); err != nil {
		t.Fatal(err)
	}
	handled(byType[confirmed].GetDeadLetterSequence())
	if callsOf(confirmed) != 2 || effectOf(confirmedID) != 1 {
		t.Fatalf("OrderConfirmed: %d calls, effect %d times; want 2 calls, its effect once", callsOf(confirmed), effectOf(confirmedID))
	}

	// The order's timeline shows both redrives: who, why, consumer, event.
	tl, err := support.GetOrderTimeline(t.Context(), &auditv1.GetOrderTimelineRequest{OrderId: s.OrderID})
	if err != nil {
		t.Fatal(err)
	}
	var shown []string
	for _, e := range tl.GetEvents() {
		if e.GetType() != "custody.audit.v1.ParkedEventRedriven" {
			continue
		}
		if e.GetService() != "audit" || !strings.Contains(e.GetPayloadJson(), `"consumer":"test-redrive"`) {
			t.Errorf("timeline entry %v", e)
		}
		shown = append(shown, e.GetActor()+" "+e.GetPayloadJson())
	}
	if len(shown) != 2 || !strings.HasPrefix(shown[0], "support ") || !strings.Contains(shown[0], placedID) ||
		!strings.Contains(shown[0], "handler fixed in 1.2.3") || !strings.HasPrefix(shown[1], "platform ") || !strings.Contains(shown[1], confirmedID) {
		t.Fatalf("redrives in the timeline: %q", shown)
	}
	if v, err := support.VerifyOrderChain(t.Context(), &auditv1.VerifyOrderChainRequest{OrderId: s.OrderID}); err != nil || !v.GetValid() {
		t.Fatalf("chain after the redrives: %v, %v", v, err)
	}
}
