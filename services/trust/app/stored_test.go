package app_test

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	"github.com/custody/custody/services/trust/app"
	"github.com/custody/custody/services/trust/domain"
)

// folder feeds events to read models, numbering positions and revisions
// as one store would.
type folder struct {
	t    *testing.T
	pos  uint64
	revs map[string]uint64
}

func newFolder(t *testing.T) *folder { return &folder{t: t, revs: map[string]uint64{}} }

// event is msg as the store records it on stream.
func (f *folder) event(stream string, msg proto.Message) eventstore.RecordedEvent {
	f.pos++
	f.revs[stream]++
	ed, err := es.Encode(msg)
	if err != nil {
		f.t.Fatal(err)
	}
	ed.ID = fmt.Sprintf("e%d", f.pos)
	return eventstore.RecordedEvent{EventData: ed, Stream: stream, Position: f.pos, Revision: f.revs[stream]}
}

func ts(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(t0.Add(d)) }

// claimEvents are the events of claim n on order: opened, then as far as
// n%5 takes it (awaiting the vendor, an offer pending, a return in
// transit, refunded and closed, escalated).
func claimEvents(order string, n int) []proto.Message {
	id := fmt.Sprintf("c%d", n)
	vendor, buyer := fmt.Sprintf("v%d", n%3), fmt.Sprintf("b%d", n%2)
	at := time.Duration(n%4) * time.Hour // some claims open at the same time
	lines := []*trustv1.ClaimLine{{LineId: "1", SkuId: "sku", Quantity: 1, Amount: eur(500)}}
	out := []proto.Message{&trustv1.ClaimOpened{ClaimId: id, OrderId: order, FulfilmentId: "f-" + order, VendorId: vendor, BuyerId: buyer,
		Reason: trustv1.ClaimReason(1 + n%6), Lines: lines, ClaimedAmount: eur(500), OrderCaptured: eur(1000),
		Evidence: &trustv1.Evidence{Sha256: []string{"ab"}, Text: id},
		OpenTime: ts(at), RespondByTime: ts(at + 72*time.Hour)},
		&trustv1.ClaimAssessed{ClaimId: id, OrderId: order, VendorId: vendor, Outcome: domain.OutcomeAwaitVendor, AssessTime: ts(at + time.Minute)}}
	switch n % 5 {
	case 1:
		out = append(out, &trustv1.ClaimResponded{ClaimId: id, OrderId: order, VendorId: vendor, Response: domain.ResponseOffer.String(),
			OfferedAmount: eur(200), RespondTime: ts(at + time.Hour), AnswerByTime: ts(at + 49*time.Hour), FirstResponse: true})
	case 2:
		out = append(out,
			&trustv1.ReturnAuthorised{ClaimId: id, ReturnId: "r" + id, OrderId: order, VendorId: vendor, Lines: lines,
				AuthoriseTime: ts(at + time.Hour), ShipByTime: ts(at + 200*time.Hour)},
			&trustv1.ReturnShipped{ClaimId: id, ReturnId: "r" + id, OrderId: order, VendorId: vendor, Carrier: "dhl",
				TrackingNumber: "t1", ShipTime: ts(at + 2*time.Hour), ReceiveByTime: ts(at + 300*time.Hour)})
	case 3:
		out = append(out,
			&trustv1.ClaimResolved{ClaimId: id, OrderId: order, VendorId: vendor, Decision: "refund", RefundAmount: eur(500),
				DecidedBy: domain.DecidedByRules, ResolveTime: ts(at + time.Hour)},
			&trustv1.RefundIssued{RefundId: "rf" + id, ClaimId: id, OrderId: order, VendorId: vendor, BuyerId: buyer, Amount: eur(500),
				Lines: lines, OrderRefundedTotal: eur(500), OrderCaptured: eur(1000), RefundTime: ts(at + time.Hour)},
			&trustv1.ClaimClosed{ClaimId: id, OrderId: order, VendorId: vendor, Outcome: domain.ClosedRefunded,
				CloseTime: ts(at + time.Hour), RefundedAmount: eur(500)})
	case 4:
		out = append(out, &trustv1.ClaimEscalated{ClaimId: id, Reason: "vendor disputes", EscalateTime: ts(at + time.Hour)})
	}
	return out
}

// hooked is the last case each claim was handed to a read model's change
// hook with: what the service schedules deadlines from.
type hooked map[string]string

func (h hooked) hook(cs domain.Case) {
	for _, c := range cs.Claims {
		h[c.ID] = fmt.Sprintf("%s due %s", c.State, c.DueAt.Format(time.RFC3339))
	}
}

// answers are every query's answer of a read model, all pages.
func answers(t *testing.T, m *app.ReadModel) map[string]any {
	t.Helper()
	out := map[string]any{"trust": m.VendorTrust()}
	claimQueries := []app.ClaimQuery{{}, {VendorID: "v0"}, {VendorID: "v1"}, {VendorID: "v2"}, {BuyerID: "b0"}, {BuyerID: "b1"},
		{State: domain.StateAwaitingVendor}, {State: domain.StateRefunded}, {VendorID: "v1", State: domain.StateOfferPending}}
	for i := range 12 {
		claimQueries = append(claimQueries, app.ClaimQuery{OrderID: fmt.Sprintf("o%d", i)})
	}
	for _, q := range claimQueries {
		var all []app.ClaimView
		for tok := ""; ; {
			q.PageSize, q.PageToken = 2, tok
			p, err := m.Claims(q)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, p.Claims...)
			if tok = p.NextPageToken; tok == "" {
				break
			}
		}
		out[fmt.Sprintf("claims %+v", q)] = all
	}
	for _, tier := range []domain.Tier{"", domain.TierGold, domain.TierSilver, domain.TierStandard, domain.TierWatch} {
		var all []domain.VendorTrust
		for tok := ""; ; {
			p, err := m.Vendors(app.VendorQuery{Tier: tier, PageSize: 1, PageToken: tok})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, p.Vendors...)
			if tok = p.NextPageToken; tok == "" {
				break
			}
		}
		out["vendors "+string(tier)] = all
	}
	return out
}

// A checkpoint restores the claims and vendor trust read model whole: the
// same answer to every query, the same cases handed to the change hook
// (the deadlines the service schedules); later events fold on top; a
// corrupt checkpoint fails and leaves the read model empty.
func TestReadModelCheckpoint(t *testing.T) {
	t.Parallel()
	f := newFolder(t)
	folded := hooked{}
	m := app.NewReadModel(folded.hook)
	apply := func(ms ...*app.ReadModel) func(stream string, msg proto.Message) {
		return func(stream string, msg proto.Message) {
			e := f.event(stream, msg)
			for _, m := range ms {
				m.Apply(e)
			}
		}
	}
	for n := range 10 {
		order := fmt.Sprintf("o%d", n%7) // some orders have two claims
		for _, msg := range claimEvents(order, n) {
			apply(m)("claims-"+order, msg)
		}
		vendor := fmt.Sprintf("v%d", n%3)
		apply(m)("vendortrust-"+vendor, &trustv1.TrustFactsRecorded{VendorId: vendor,
			Delta: &trustv1.TrustCounts{Fulfilments: int64(1 + n), Shipments: int64(n), Claims: 1}, RecordTime: ts(time.Duration(n) * time.Hour)})
	}
	var buf bytes.Buffer
	if err := m.Save(&buf); err != nil {
		t.Fatal(err)
	}
	saved := buf.Bytes()
	restoredHook := hooked{}
	restored := app.NewReadModel(restoredHook.hook)
	if err := restored.Load(bytes.NewReader(saved)); err != nil {
		t.Fatal(err)
	}
	compare := func(when string) {
		t.Helper()
		want := answers(t, m)
		if p, _ := m.Claims(app.ClaimQuery{PageSize: app.MaxPageSize}); len(p.Claims) < 10 || len(m.VendorTrust()) != 3 {
			t.Fatalf("%s: the folded read model has nothing to compare", when)
		}
		if d := cmp.Diff(want, answers(t, restored), protocmp.Transform()); d != "" {
			t.Fatalf("%s: restored read model answers differently (-folded +restored):\n%s", when, d)
		}
		if d := cmp.Diff(folded, restoredHook); d != "" {
			t.Fatalf("%s: the change hook saw other cases (-folded +restored):\n%s", when, d)
		}
	}
	compare("restored")
	open := slices.Collect(maps.Keys(restoredHook))
	if len(open) != 10 {
		t.Fatalf("Load handed the hook %d claims, want 10", len(open))
	}

	// More events on top of both: a response to a waiting claim, the
	// closing of an offered one, a new claim, a vendor's new fact.
	both := apply(m, restored)
	both("claims-o0", &trustv1.ClaimResponded{ClaimId: "c0", OrderId: "o0", VendorId: "v0", Response: domain.ResponseOffer.String(),
		OfferedAmount: eur(100), RespondTime: ts(5 * time.Hour), AnswerByTime: ts(60 * time.Hour)})
	both("claims-o1", &trustv1.ClaimClosed{ClaimId: "c1", OrderId: "o1", VendorId: "v1", Outcome: domain.ClosedWithdrawn, CloseTime: ts(6 * time.Hour)})
	for _, msg := range claimEvents("o11", 11) {
		both("claims-o11", msg)
	}
	both("vendortrust-v2", &trustv1.TrustFactsRecorded{VendorId: "v2", Delta: &trustv1.TrustCounts{CounterfeitsConfirmed: 1}, RecordTime: ts(7 * time.Hour)})
	compare("after more events")

	for name, corrupt := range map[string][]byte{"not gob": []byte("not gob"), "truncated": saved[:len(saved)/2]} {
		h := hooked{}
		empty := app.NewReadModel(h.hook)
		if err := empty.Load(bytes.NewReader(corrupt)); err == nil {
			t.Errorf("%s: a corrupt checkpoint loaded", name)
		}
		if p, _ := empty.Claims(app.ClaimQuery{}); len(p.Claims) != 0 || len(empty.VendorTrust()) != 0 || len(h) != 0 {
			t.Errorf("%s: a failed Load left %d claims, %d vendors, %d hooked claims", name, len(p.Claims), len(empty.VendorTrust()), len(h))
		}
	}
}

// recordAnswers are the custody record's answers about orders o0..o5.
func recordAnswers(v *app.RecordView) map[string]any {
	out := map[string]any{}
	for i := range 6 {
		order := fmt.Sprintf("o%d", i)
		o, ok := v.Order(order)
		out["order "+order] = fmt.Sprint(ok, o)
		for _, vendor := range []string{"v0", "v1"} {
			r, ok := v.Record(order, vendor)
			out["record "+order+"/"+vendor] = []any{ok, r}
		}
	}
	return out
}

// The custody record checkpoints as two parts, one per source: each
// restores what its own source's events built and nothing else, so each
// can stand at its own position; later events of either source fold on
// top; a corrupt part fails and leaves that part empty.
func TestRecordCheckpoint(t *testing.T) {
	t.Parallel()
	orders, fulfilments := newFolder(t), newFolder(t)
	v := app.NewRecordView(nil)
	order := func(id string, ms ...*app.RecordView) {
		e := orders.event("order-"+id, &orderv1.OrderConfirmed{OrderId: id, BuyerId: "b-" + id, Total: eur(1000),
			Lines: []*orderv1.OrderLine{{LineId: "1", SkuId: "sku", VendorId: "v0", Quantity: 2, UnitPrice: eur(500), LineTotal: eur(1000)}}})
		for _, m := range ms {
			m.ApplyFrom(app.OrderService, e)
		}
	}
	fulfil := func(msg proto.Message, ms ...*app.RecordView) eventstore.RecordedEvent {
		e := fulfilments.event("fulfilment-x", msg)
		for _, m := range ms {
			m.ApplyFrom(app.FulfilmentService, e)
		}
		return e
	}
	shipped := func(order string, ms ...*app.RecordView) {
		f := "f-" + order
		fulfil(&fulfilmentv1.FulfilmentRequested{FulfilmentId: f, OrderId: order, VendorId: "v0", BuyerId: "b-" + order, ShipByTime: ts(48 * time.Hour)}, ms...)
		fulfil(&fulfilmentv1.FulfilmentShipped{FulfilmentId: f, OrderId: order, VendorId: "v0", ShipmentId: "s1", Carrier: "dhl",
			TrackingNumber: "t-" + order, ShipTime: ts(time.Hour), Lines: []*fulfilmentv1.ShippedLine{{LineId: "1", Quantity: 2}}}, ms...)
		fulfil(&fulfilmentv1.TrackingEventRecorded{FulfilmentId: f, ShipmentId: "s1", CarrierEventId: "c1",
			Status: fulfilmentv1.TrackingStatus_TRACKING_STATUS_DELIVERED, OccurTime: ts(30 * time.Hour)}, ms...)
	}
	for i := range 4 {
		order(fmt.Sprintf("o%d", i), v)
		shipped(fmt.Sprintf("o%d", i), v)
	}
	fulfil(&fulfilmentv1.ShipByDeadlineMissed{FulfilmentId: "f-o0", OrderId: "o0", VendorId: "v0"}, v)

	parts := map[string][]byte{}
	for _, service := range []string{app.OrderService, app.FulfilmentService} {
		var buf bytes.Buffer
		if err := v.Checkpoint(service).Save(&buf); err != nil {
			t.Fatal(err)
		}
		parts[service] = buf.Bytes()
	}
	// Each part restores its own source's facts only.
	onlyOrders := app.NewRecordView(nil)
	if err := onlyOrders.Checkpoint(app.OrderService).Load(bytes.NewReader(parts[app.OrderService])); err != nil {
		t.Fatal(err)
	}
	if o, ok := onlyOrders.Order("o1"); !ok || o.BuyerID != "b-o1" {
		t.Errorf("the order part did not restore order o1: %v %+v", ok, o)
	}
	if r, _ := onlyOrders.Record("o1", "v0"); r.Fulfilment != nil {
		t.Errorf("the order part restored a fulfilment: %+v", r.Fulfilment)
	}
	onlyFulfilments := app.NewRecordView(nil)
	if err := onlyFulfilments.Checkpoint(app.FulfilmentService).Load(bytes.NewReader(parts[app.FulfilmentService])); err != nil {
		t.Fatal(err)
	}
	if _, ok := onlyFulfilments.Order("o1"); ok {
		t.Error("the fulfilment part restored an order")
	}

	restored := app.NewRecordView(nil)
	for _, service := range []string{app.OrderService, app.FulfilmentService} {
		if err := restored.Checkpoint(service).Load(bytes.NewReader(parts[service])); err != nil {
			t.Fatal(err)
		}
	}
	compare := func(when string) {
		t.Helper()
		want := recordAnswers(v)
		if r := want["record o3/v0"].([]any)[1].(domain.Record); r.Fulfilment == nil || len(r.Fulfilment.Shipments[0].Scans) != 1 {
			t.Fatalf("%s: the folded record has nothing to compare", when)
		}
		if d := cmp.Diff(want, recordAnswers(restored)); d != "" {
			t.Fatalf("%s: restored record answers differently (-folded +restored):\n%s", when, d)
		}
	}
	compare("restored")

	// More events of both sources on top of both; what a fulfilment event
	// counts (read from the record) is the same in both.
	order("o4", v, restored)
	order("o1", v, restored) // confirmed again: the same facts, another event id
	shipped("o4", v, restored)
	e := fulfil(&fulfilmentv1.TrackingEventRecorded{FulfilmentId: "f-o2", ShipmentId: "s1", CarrierEventId: "c2",
		Status: fulfilmentv1.TrackingStatus_TRACKING_STATUS_DELIVERED, OccurTime: ts(31 * time.Hour)}, v, restored)
	missed := fulfil(&fulfilmentv1.ShipByDeadlineMissed{FulfilmentId: "f-o0", OrderId: "o0", VendorId: "v0"}, v, restored)
	compare("after more events")
	for _, e := range []eventstore.RecordedEvent{e, missed} {
		ev, err := es.Decode(e)
		if err != nil {
			t.Fatal(err)
		}
		wv, wd, wok := v.FulfilmentFacts(ev)
		gv, gd, gok := restored.FulfilmentFacts(ev)
		if gv != wv || gd != wd || gok != wok {
			t.Errorf("restored record counts %s as %q %+v %v, want %q %+v %v", e.Type, gv, gd, gok, wv, wd, wok)
		}
	}

	for _, service := range []string{app.OrderService, app.FulfilmentService} {
		for name, corrupt := range map[string][]byte{"not gob": []byte("not gob"), "truncated": parts[service][:len(parts[service])/2]} {
			empty := app.NewRecordView(nil)
			if err := empty.Checkpoint(service).Load(bytes.NewReader(corrupt)); err == nil {
				t.Errorf("%s part, %s: a corrupt checkpoint loaded", service, name)
			}
			for k, a := range recordAnswers(empty) {
				if strings.HasPrefix(fmt.Sprint(a), "true") || strings.HasPrefix(fmt.Sprint(a), "[true") {
					t.Errorf("%s part, %s: a failed Load left %s: %v", service, name, k, a)
				}
			}
		}
	}
}
