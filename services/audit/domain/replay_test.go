package domain_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/audit/domain"
	"github.com/custody/custody/services/audit/internal/story"
	fulfilment "github.com/custody/custody/services/fulfilment/domain"
	order "github.com/custody/custody/services/order/domain"
	trust "github.com/custody/custody/services/trust/domain"
)

func TestReplay(t *testing.T) {
	w := newWorld()
	s := story.New(t0, "o1")
	w.write(t, s, s.Events)
	h := w.histories(t, s)

	type want struct {
		order      order.Status
		shipped    bool
		fulfilment fulfilment.Status // StatusNone: no fulfilment yet
		claim      trust.State       // StateNone: no claim
		money      bool
		captured   int64
		escrow     int64
		pending    int64
		held       int64
		stage      payoutsv1.FundsStage
	}
	tests := []struct {
		name string
		at   time.Duration
		want want
	}{
		{"before the order", 0, want{}},
		{"placed", story.Placed, want{order: order.StatusPending}},
		{"confirmed and captured", story.Confirmed, want{order: order.StatusConfirmed, money: true, captured: story.Total,
			escrow: story.Total, stage: payoutsv1.FundsStage_FUNDS_STAGE_ESCROW}},
		{"fulfilment requested", story.Requested, want{order: order.StatusConfirmed, fulfilment: fulfilment.StatusRequested, money: true,
			captured: story.Total, escrow: story.Total, stage: payoutsv1.FundsStage_FUNDS_STAGE_ESCROW}},
		{"between shipping and delivery: shipped, money in escrow, no claim", story.BetweenShippingAndDelivery,
			want{order: order.StatusShipped, shipped: true, fulfilment: fulfilment.StatusShipped, money: true,
				captured: story.Total, escrow: story.Total, stage: payoutsv1.FundsStage_FUNDS_STAGE_ESCROW}},
		{"delivered: the return window runs", story.Delivered, want{order: order.StatusDelivered, shipped: true,
			fulfilment: fulfilment.StatusDelivered, money: true, captured: story.Total, pending: story.Total,
			stage: payoutsv1.FundsStage_FUNDS_STAGE_PENDING}},
		{"claimed: the vendor's share is held", story.Claimed, want{order: order.StatusDelivered, shipped: true,
			fulfilment: fulfilment.StatusDelivered, claim: trust.StateAwaitingVendor, money: true, captured: story.Total,
			pending: story.Fee, held: story.VendorShare, stage: payoutsv1.FundsStage_FUNDS_STAGE_HELD}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := domain.Replay("o1", t0.Add(tt.at), h)
			if got := snap.Order.Status; got != tt.want.order {
				t.Errorf("order %s, want %s", got, tt.want.order)
			}
			if tt.want.order != order.StatusNone && snap.Order.Shipped() != tt.want.shipped {
				t.Errorf("order shipped = %v", snap.Order.Shipped())
			}
			switch {
			case tt.want.fulfilment == fulfilment.StatusNone && len(snap.Fulfilments) != 0:
				t.Errorf("%d fulfilments, want none", len(snap.Fulfilments))
			case tt.want.fulfilment != fulfilment.StatusNone && (len(snap.Fulfilments) != 1 || snap.Fulfilments[0].Fulfilment.Status() != tt.want.fulfilment):
				t.Errorf("fulfilments %+v, want one %s", snap.Fulfilments, tt.want.fulfilment)
			}
			switch {
			case tt.want.claim == trust.StateNone && len(snap.Claims.Claims) != 0:
				t.Errorf("%d claims, want none", len(snap.Claims.Claims))
			case tt.want.claim != trust.StateNone && (len(snap.Claims.Claims) != 1 || snap.Claims.Claims[0].State != tt.want.claim):
				t.Errorf("claims %+v, want one %s", snap.Claims.Claims, tt.want.claim)
			}
			m := snap.Money
			if (m != nil) != tt.want.money {
				t.Fatalf("money %+v, want money: %v", m, tt.want.money)
			}
			if m == nil {
				return
			}
			if m.Captured != tt.want.captured || m.Escrow != tt.want.escrow || m.Pending != tt.want.pending || m.Held != tt.want.held || m.Released != 0 || m.Refunded != 0 {
				t.Errorf("money %+v", m)
			}
			if sum := m.Escrow + m.Pending + m.Held + m.Released + m.Refunded; sum != m.Captured {
				t.Errorf("escrow+pending+held+released+refunded = %d, captured %d", sum, m.Captured)
			}
			if len(m.Parts) != 1 || m.Parts[0].Stage != tt.want.stage {
				t.Errorf("parts %+v, want one at %s", m.Parts, tt.want.stage)
			}
		})
	}

	last := domain.Replay("o1", t0.Add(story.Claimed), h)
	if last.EventsApplied != countStreams(s) || last.LastEventID == "" {
		t.Errorf("applied %d events (want %d), last %q", last.EventsApplied, countStreams(s), last.LastEventID)
	}
}

// countStreams counts the story's events in the streams Replay folds.
func countStreams(s story.Story) int {
	n := 0
	for _, e := range s.Events {
		agg, _, _ := eventstore.SplitStream(e.Stream)
		switch agg {
		case "order", "fulfilment", "claims", "orderledger":
			n++
		}
	}
	return n
}

func TestAsOfIsAPrefix(t *testing.T) {
	w := newWorld()
	s := story.New(t0, "o1")
	w.write(t, s, s.Events)
	evs := w.decoded(t, domain.OrderAggregate.Stream("o1"))
	if n := len(domain.AsOf(evs, t0.Add(story.Shipped))); n != 3 {
		t.Errorf("order events by shipping: %d, want 3", n)
	}
	// A later event recorded with an earlier time (a clock that went back)
	// does not let anything after it in.
	evs[1].RecordedAt = t0.Add(time.Hour * 1000)
	if n := len(domain.AsOf(evs, t0.Add(story.Shipped))); n != 1 {
		t.Errorf("prefix of %d, want 1", n)
	}
}

func TestRender(t *testing.T) {
	w := newWorld()
	s := story.New(t0, "o1")
	w.write(t, s, s.Events)
	x := w.index(t)
	v, _ := x.Order("o1")
	var prev = map[domain.StreamRef]string{}
	for _, e := range v.Entries {
		r := domain.Render(e.Service, w.event(t, e), nil)
		if r.PayloadError != "" || r.RawPayload != nil {
			t.Fatalf("%s: %s", r.Type, r.PayloadError)
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(r.PayloadJSON), &obj); err != nil {
			t.Fatalf("%s: payload is not JSON: %v: %s", r.Type, err, r.PayloadJSON)
		}
		if strings.Contains(r.PayloadJSON, "\n") {
			t.Errorf("payload not compact: %s", r.PayloadJSON)
		}
		if len(r.Hash) != 64 || len(r.PrevHash) != 64 {
			t.Errorf("hashes %q %q", r.Hash, r.PrevHash)
		}
		ref := e.Ref()
		if p, ok := prev[ref]; ok && r.PrevHash != p && e.Event.Revision > 0 && ref.Service != "catalog" {
			t.Errorf("%s rev %d: previous hash %s, the previous event's hash was %s", ref, r.Revision, r.PrevHash, p)
		}
		prev[ref] = r.Hash
		if r.Type == "custody.order.v1.OrderPlaced" {
			if obj["order_id"] != "o1" || obj["buyer_id"] != s.BuyerID {
				t.Errorf("OrderPlaced as JSON: %s", r.PayloadJSON)
			}
			if r.Actor != "buyer:"+s.BuyerID || r.CorrelationID != "corr-o1" || r.CausationID == "" || !r.RecordedAt.Equal(t0.Add(story.Placed)) {
				t.Errorf("envelope %+v", r)
			}
		}
	}

	r := domain.Render("fulfilment", eventstore.RecordedEvent{
		EventData: eventstore.EventData{ID: "x", Type: "custody.future.v1.Thing", Data: []byte{8, 1}}, Stream: "fulfilment-f1"}, nil)
	if r.PayloadJSON != "" || !domain.IsUnknownType(r.PayloadError) || string(r.RawPayload) != "\x08\x01" {
		t.Errorf("unknown type rendered as %+v", r)
	}
}

// The timeline shows personal fields as reveal gives them; the hashes stay
// those of the stored bytes; a payload that cannot be revealed is shown as
// stored, with why.
func TestRenderReveals(t *testing.T) {
	const token = "pii1:buyer-b1:sealed"
	placed := &orderv1.OrderPlaced{OrderId: "o1", BuyerId: "b1", ShippingAddress: &typev1.Address{RecipientName: token, CountryCode: "DE"}}
	ed, err := es.Encode(placed)
	if err != nil {
		t.Fatal(err)
	}
	ev := eventstore.RecordedEvent{EventData: ed, Stream: "order-o1", Hash: []byte{1, 2}}
	reveal := func(m proto.Message) (proto.Message, error) {
		c := proto.Clone(m).(*orderv1.OrderPlaced)
		c.ShippingAddress.RecipientName = "Ada"
		return c, nil
	}
	tests := []struct {
		name      string
		reveal    domain.Reveal
		want      string
		wantError bool
	}{
		{"as stored", nil, token, false},
		{"revealed", reveal, "Ada", false},
		{"erased", func(proto.Message) (proto.Message, error) {
			c := proto.Clone(placed).(*orderv1.OrderPlaced)
			c.ShippingAddress.RecipientName = "[erased]"
			return c, nil
		}, "[erased]", false},
		{"cannot reveal", func(proto.Message) (proto.Message, error) { return nil, errors.New("no data key") }, token, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := domain.Render("order", ev, tt.reveal)
			if !strings.Contains(r.PayloadJSON, `"recipient_name":"`+tt.want+`"`) || (r.PayloadError != "") != tt.wantError || r.Hash != "0102" {
				t.Errorf("rendered %s (error %q, hash %s)", r.PayloadJSON, r.PayloadError, r.Hash)
			}
		})
	}
}
