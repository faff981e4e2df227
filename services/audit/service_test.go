package audit_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/platform/platformtest"
	"github.com/custody/custody/pkg/server/servertest"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	"github.com/custody/custody/services/audit/internal/story"
)

// TestReplayBetweenShippingAndDelivery is the "must show": replayed
// at a moment between shipping and delivery, the order's fulfilment is
// SHIPPED, its money still in escrow, and there is no claim — folded with
// the order, fulfilment, trust and payouts services' own deciders.
func TestReplayBetweenShippingAndDelivery(t *testing.T) {
	t.Parallel()
	p, s := startWithStory(t, "")
	support := as(t, p, "support")

	r, err := support.ReplayOrder(t.Context(), &auditv1.ReplayOrderRequest{OrderId: "o1",
		AsOf: timestamppb.New(t0.Add(story.BetweenShippingAndDelivery))})
	if err != nil {
		t.Fatal(err)
	}
	o := r.GetOrder()
	if o.GetState() != orderv1.OrderState_ORDER_STATE_SHIPPED || len(o.GetParts()) != 1 || !o.GetParts()[0].GetShipped() || o.GetParts()[0].GetDelivered() {
		t.Errorf("order %v", o)
	}
	if len(r.GetFulfilments()) != 1 {
		t.Fatalf("fulfilments %v", r.GetFulfilments())
	}
	f := r.GetFulfilments()[0]
	if f.GetState() != fulfilmentv1.FulfilmentState_FULFILMENT_STATE_SHIPPED || f.GetFulfilmentId() != s.FulfilmentID || len(f.GetShipments()) != 1 {
		t.Errorf("fulfilment %v, want SHIPPED", f)
	}
	if sh := f.GetShipments()[0]; sh.GetStatus() != fulfilmentv1.TrackingStatus_TRACKING_STATUS_IN_TRANSIT || sh.GetDeliverTime() != nil || sh.GetTrackingNumber() != s.TrackingNumber {
		t.Errorf("shipment %v", sh)
	}
	if len(r.GetClaims()) != 0 {
		t.Errorf("claims %v, want none", r.GetClaims())
	}
	m := r.GetMoney()
	if m.GetCaptured().GetAmountMinor() != story.Total || m.GetEscrow().GetAmountMinor() != story.Total ||
		m.GetPending().GetAmountMinor() != 0 || m.GetReleased().GetAmountMinor() != 0 || m.GetRefunded().GetAmountMinor() != 0 {
		t.Errorf("money %v, want all %d in escrow", m, story.Total)
	}
	if len(m.GetParts()) != 1 || m.GetParts()[0].GetStage() != payoutsv1.FundsStage_FUNDS_STAGE_ESCROW {
		t.Errorf("parts %v", m.GetParts())
	}
	if !r.GetChainValid() || r.GetEventsApplied() == 0 || !r.GetAsOf().AsTime().Equal(t0.Add(story.BetweenShippingAndDelivery)) {
		t.Errorf("chain valid %v, applied %d, as of %v", r.GetChainValid(), r.GetEventsApplied(), r.GetAsOf().AsTime())
	}

	// Later moments, and now.
	r, err = support.ReplayOrder(t.Context(), &auditv1.ReplayOrderRequest{OrderId: "o1", AsOf: timestamppb.New(t0.Add(story.Delivered))})
	if err != nil {
		t.Fatal(err)
	}
	if r.GetOrder().GetState() != orderv1.OrderState_ORDER_STATE_DELIVERED ||
		r.GetFulfilments()[0].GetState() != fulfilmentv1.FulfilmentState_FULFILMENT_STATE_DELIVERED ||
		r.GetMoney().GetEscrow().GetAmountMinor() != 0 || r.GetMoney().GetPending().GetAmountMinor() != story.Total {
		t.Errorf("at delivery: %v / %v / %v", r.GetOrder().GetState(), r.GetFulfilments()[0].GetState(), r.GetMoney())
	}
	r, err = as(t, p, "platform").ReplayOrder(t.Context(), &auditv1.ReplayOrderRequest{OrderId: "o1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.GetClaims()) != 1 || r.GetClaims()[0].GetState() != trustv1.ClaimState_CLAIM_STATE_AWAITING_VENDOR ||
		r.GetClaims()[0].GetReason() != trustv1.ClaimReason_CLAIM_REASON_DAMAGED ||
		r.GetMoney().GetHeld().GetAmountMinor() != story.VendorShare ||
		r.GetMoney().GetParts()[0].GetStage() != payoutsv1.FundsStage_FUNDS_STAGE_HELD {
		t.Errorf("now: claims %v, money %v", r.GetClaims(), r.GetMoney())
	}
	r, err = support.ReplayOrder(t.Context(), &auditv1.ReplayOrderRequest{OrderId: "o1", AsOf: timestamppb.New(t0)})
	if err != nil {
		t.Fatal(err)
	}
	if r.GetOrder().GetState() != orderv1.OrderState_ORDER_STATE_UNSPECIFIED || r.GetMoney() != nil || len(r.GetFulfilments()) != 0 || r.GetEventsApplied() != 0 {
		t.Errorf("before the order: %v", r)
	}
}

func TestTimeline(t *testing.T) {
	t.Parallel()
	p, clk := startAudit(t, "", services...)
	s := story.New(t0, "o1")
	write(t, p, clk, s, s.Events)
	// An event of a type this service does not know, in the fulfilment's
	// stream: shown, not decoded.
	unknown := eventstore.EventData{ID: "future-1", Type: "custody.fulfilment.v2.ParcelTeleported", Data: []byte{10, 3, 'a', 'b', 'c'},
		Metadata: eventstore.Metadata{Actor: "service:fulfilment"}}
	clk.Set(t0.Add(story.Claimed + time.Hour))
	if _, err := p.Store(t, "fulfilment").Append(t.Context(), "fulfilment-"+s.FulfilmentID, eventstore.Any, []eventstore.EventData{unknown}); err != nil {
		t.Fatal(err)
	}
	support := as(t, p, "support")

	var all []*auditv1.TimelineEvent
	var streams []string
	token := ""
	for pages := 0; ; pages++ {
		resp, err := support.GetOrderTimeline(t.Context(), &auditv1.GetOrderTimelineRequest{OrderId: "o1", PageSize: 7, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		if int(resp.GetTotalSize()) != s.OfOrder()+1 || len(resp.GetEvents()) > 7 {
			t.Fatalf("page %d: %d events, total %d", pages, len(resp.GetEvents()), resp.GetTotalSize())
		}
		all = append(all, resp.GetEvents()...)
		streams = resp.GetStreams()
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(all) != s.OfOrder()+1 {
		t.Fatalf("%d events, want %d", len(all), s.OfOrder()+1)
	}
	wantStreams := []string{"catalog/product-" + s.ProductID, "catalog/reservation-o1", "fulfilment/fulfilment-" + s.FulfilmentID,
		"fulfilment/tracking-dhl_To1", "order/order-o1", "payouts/orderledger-o1", "trust/claims-o1"}
	if !slices.Equal(streams, wantStreams) {
		t.Errorf("streams %v", streams)
	}
	lastHash := map[string]string{}
	for i, ev := range all {
		if i > 0 && ev.GetRecordTime().AsTime().Before(all[i-1].GetRecordTime().AsTime()) {
			t.Errorf("event %d recorded before event %d", i, i-1)
		}
		key := ev.GetService() + "/" + ev.GetStream()
		if h, ok := lastHash[key]; ok && ev.GetService() != "catalog" && ev.GetPreviousHash() != h {
			t.Errorf("%s revision %d: previous hash %s, want %s", key, ev.GetRevision(), ev.GetPreviousHash(), h)
		}
		lastHash[key] = ev.GetHash()
		if ev.GetType() == unknown.Type {
			if ev.GetPayloadJson() != "" || !strings.HasPrefix(ev.GetPayloadError(), "(unknown type)") || string(ev.GetRawPayload()) != string(unknown.Data) {
				t.Errorf("unknown event shown as %v", ev)
			}
			continue
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(ev.GetPayloadJson()), &obj); err != nil || ev.GetPayloadError() != "" {
			t.Errorf("%s payload %q: %v %s", ev.GetType(), ev.GetPayloadJson(), err, ev.GetPayloadError())
		}
		if ev.GetEventId() == "" || ev.GetActor() == "" || len(ev.GetHash()) != 64 || ev.GetPosition() == 0 {
			t.Errorf("envelope %v", ev)
		}
	}
	if first := all[0]; first.GetType() != "custody.catalog.v1.StockHeld" || !strings.Contains(first.GetPayloadJson(), `"order_id":"o1"`) {
		t.Errorf("first event %v", first)
	}
	if last := all[len(all)-1]; last.GetType() != unknown.Type {
		t.Errorf("last event %s", last.GetType())
	}
}

func TestVerifyOrderChain(t *testing.T) {
	t.Parallel()
	p, s := startWithStory(t, "")
	resp, err := as(t, p, "support").VerifyOrderChain(t.Context(), &auditv1.VerifyOrderChainRequest{OrderId: "o1"})
	if err != nil {
		t.Fatal(err)
	}
	// Every stream of the order, whole: the product's stream includes its
	// creation, which is no event of the order but part of the chain.
	if !resp.GetValid() || resp.GetBrokenLink() != nil || resp.GetStreamsChecked() != 7 || resp.GetEventsChecked() != int64(len(s.Events)) {
		t.Fatalf("verdict %v", resp)
	}
	for _, c := range resp.GetStreams() {
		if !c.GetValid() || c.GetEventsChecked() == 0 {
			t.Errorf("stream %v", c)
		}
	}
}

func TestAccess(t *testing.T) {
	t.Parallel()
	p, s := startWithStory(t, "")
	ctx := t.Context()
	verify := &auditv1.VerifyOrderChainRequest{OrderId: "o1"}
	timeline := &auditv1.GetOrderTimelineRequest{OrderId: "o1"}
	replay := &auditv1.ReplayOrderRequest{OrderId: "o1"}

	call := func(role, rpc string) error {
		c := as(t, p, role)
		var err error
		switch rpc {
		case "verify":
			_, err = c.VerifyOrderChain(ctx, verify)
		case "timeline":
			_, err = c.GetOrderTimeline(ctx, timeline)
		case "replay":
			_, err = c.ReplayOrder(ctx, replay)
		case "parked":
			_, err = c.ListParkedEvents(ctx, &auditv1.ListParkedEventsRequest{})
		}
		return err
	}
	tests := []struct {
		role, rpc string
		want      codes.Code
	}{
		{"support", "timeline", codes.OK},
		{"support", "verify", codes.OK},
		{"support", "replay", codes.OK},
		{"platform", "timeline", codes.OK},
		{"platform", "replay", codes.OK},
		{"support", "parked", codes.OK},
		{"platform", "parked", codes.OK},
		{"buyer:" + s.BuyerID, "parked", codes.PermissionDenied},
		{"buyer:" + s.BuyerID, "verify", codes.OK},
		{"buyer:" + s.BuyerID, "timeline", codes.PermissionDenied},
		{"buyer:" + s.BuyerID, "replay", codes.PermissionDenied},
		{"buyer:someone-else", "verify", codes.PermissionDenied},
		{"vendor:" + s.VendorID, "timeline", codes.PermissionDenied},
		{"vendor:" + s.VendorID, "verify", codes.PermissionDenied},
		{"service", "timeline", codes.PermissionDenied},
		{"", "verify", codes.Unauthenticated},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %s", tt.role, tt.rpc), func(t *testing.T) {
			platformtest.WantCode(t, call(tt.role, tt.rpc), tt.want)
		})
	}

	support := as(t, p, "support")
	_, err := support.VerifyOrderChain(ctx, &auditv1.VerifyOrderChainRequest{OrderId: "o-unknown"})
	platformtest.WantCode(t, err, codes.NotFound) // an unknown order
	bad := []struct {
		err   error
		field string
	}{
		{second(support.VerifyOrderChain(ctx, &auditv1.VerifyOrderChainRequest{})), "order_id"},
		{second(support.GetOrderTimeline(ctx, &auditv1.GetOrderTimelineRequest{OrderId: "o1", PageSize: -2})), "page_size"},
		{second(support.GetOrderTimeline(ctx, &auditv1.GetOrderTimelineRequest{OrderId: "o1", PageToken: "nope"})), "page_token"},
		{second(support.ReplayOrder(ctx, &auditv1.ReplayOrderRequest{OrderId: "o/1"})), "order_id"},
		{second(support.ReplayOrder(ctx, &auditv1.ReplayOrderRequest{OrderId: "o1", AsOf: &timestamppb.Timestamp{Nanos: -1}})), "as_of"},
		{second(support.ListParkedEvents(ctx, &auditv1.ListParkedEventsRequest{Consumer: "no.dots"})), "consumer"},
		{servertest.CallInvalidUTF8(support.VerifyOrderChain, ctx, &auditv1.VerifyOrderChainRequest{OrderId: "o1"}, "order_id")(), "order_id"},
	}
	for _, b := range bad {
		fvs := apierr.FieldViolations(b.err)
		if status.Code(b.err) != codes.InvalidArgument || len(fvs) != 1 || fvs[0].Field != b.field {
			t.Errorf("%v: violations %v, want %s", b.err, fvs, b.field)
		}
	}
}

func second[T any](_ T, err error) error { return err }

// TestStartsBeforeTheOtherServices: `custody run --target=audit` alone, on
// a NATS where no service ever ran. The audit service serves at once and
// indexes each service's events as soon as its stream appears.
func TestStartsBeforeTheOtherServices(t *testing.T) {
	t.Parallel()
	p, clk := startAudit(t, "")
	s := story.New(t0, "o1")
	support := as(t, p, "support")
	_, err := support.GetOrderTimeline(t.Context(), &auditv1.GetOrderTimelineRequest{OrderId: "o1"})
	platformtest.WantCode(t, err, codes.NotFound) // before any event
	write(t, p, clk, s, s.Events)
	platformtest.Eventually(t, "every event of the order in the timeline", func() error {
		resp, err := support.GetOrderTimeline(t.Context(), &auditv1.GetOrderTimelineRequest{OrderId: "o1", PageSize: 1000})
		if err != nil {
			return err
		}
		if n := len(resp.GetEvents()); n != s.OfOrder() {
			return fmt.Errorf("%d events, want %d", n, s.OfOrder())
		}
		return nil
	})
	// Once a stream is being followed, a query sees what was written before
	// it (the index catches up first).
	clk.Set(t0.Add(100 * time.Hour))
	ev, err := es.Encode(&orderv1.OrderCancelled{OrderId: "o1", Reason: "late"})
	if err != nil {
		t.Fatal(err)
	}
	ev.ID = "cancel-o1"
	if _, err := p.Store(t, "order").Append(t.Context(), "order-o1", eventstore.Any, []eventstore.EventData{ev}); err != nil {
		t.Fatal(err)
	}
	resp, err := support.GetOrderTimeline(t.Context(), &auditv1.GetOrderTimelineRequest{OrderId: "o1", PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(resp.GetEvents()); n != s.OfOrder()+1 || resp.GetEvents()[n-1].GetEventId() != "cancel-o1" {
		t.Errorf("after a write: %d events", n)
	}
}
