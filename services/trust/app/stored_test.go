package app_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/deadline"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/kv"
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

// hooked is what the service schedules from the cases a read model hands
// its change hook (Service.schedule): the step and deadline of every open
// claim that waits on time, nothing for the others.
type hooked map[string]string

func (h hooked) hook(cs domain.Case) {
	for _, c := range cs.Claims {
		if c.State.Open() && !c.DueAt.IsZero() {
			h[c.ID] = fmt.Sprintf("%s due %s", c.State, c.DueAt.Format(time.RFC3339))
		} else {
			delete(h, c.ID)
		}
	}
}

// stored is what the scheduler would hold of m's store if it held every
// claim waiting on time: Next, one at a time so that every step of the
// paging is taken, each claim as Waiting reads it, as hooked has it.
func stored(t *testing.T, m *app.ReadModel) hooked {
	t.Helper()
	out := hooked{}
	var after *deadline.Entry
	for {
		next, err := m.Next(after, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(next) == 0 {
			return out
		}
		e := next[0]
		if after != nil && (e.At.Before(after.At) || (e.At.Equal(after.At) && e.Key <= after.Key)) {
			t.Fatalf("Next after %v read %v: not in (at, key) order", *after, e)
		}
		c, ok, err := m.Waiting(e.Key)
		if err != nil || !ok || !app.WaitsOnTime(&c) || !c.DueAt.Equal(e.At) || e.Key != app.DeadlineKey(c.OrderID, c.ID) {
			t.Fatalf("stored deadline %q at %v: %+v %v %v", e.Key, e.At, c, ok, err)
		}
		out[c.ID] = fmt.Sprintf("%s due %s", c.State, c.DueAt.Format(time.RFC3339))
		after = &e
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

// The claims and vendor trust read model reopened on its store gives the
// same answer to every query as one that never stopped, hands the change
// hook nothing and keeps by due time, for the scheduler, exactly the
// claims waiting on time that the hook of one that never stopped was
// told of; later events fold on top alike, and a second reopening keeps
// what they changed.
func TestReadModelReopens(t *testing.T) {
	t.Parallel()
	f := newFolder(t)
	folded, keptHook := hooked{}, hooked{}
	m := app.NewReadModel(folded.hook)
	attach(t, t.TempDir(), "trust/claims and vendor trust", m)
	dir := t.TempDir()
	kept := app.NewReadModel(keptHook.hook)
	db := attach(t, dir, "trust/claims and vendor trust", kept)
	apply := func(ms ...*app.ReadModel) func(stream string, msg proto.Message) {
		return func(stream string, msg proto.Message) {
			e := f.event(stream, msg)
			for _, m := range ms {
				m.Apply(e)
			}
		}
	}
	both := apply(m, kept)
	for n := range 10 {
		order := fmt.Sprintf("o%d", n%7) // some orders have two claims
		for _, msg := range claimEvents(order, n) {
			both("claims-"+order, msg)
		}
		vendor := fmt.Sprintf("v%d", n%3)
		both("vendortrust-"+vendor, &trustv1.TrustFactsRecorded{VendorId: vendor,
			Delta: &trustv1.TrustCounts{Fulfilments: int64(1 + n), Shipments: int64(n), Claims: 1}, RecordTime: ts(time.Duration(n) * time.Hour)})
	}
	if m.Version() != "trust-claims-kv-2" {
		t.Fatalf("version %q", m.Version())
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	restoredHook := hooked{}
	restored := app.NewReadModel(restoredHook.hook)
	db = attach(t, dir, "trust/claims and vendor trust", restored)
	compare := func(when string, restored *app.ReadModel) {
		t.Helper()
		want := answers(t, m)
		if p, _ := m.Claims(app.ClaimQuery{PageSize: app.MaxPageSize}); len(p.Claims) < 10 || len(m.VendorTrust()) != 3 {
			t.Fatalf("%s: the folded read model has nothing to compare", when)
		}
		if d := cmp.Diff(want, answers(t, restored), protocmp.Transform()); d != "" {
			t.Fatalf("%s: reopened read model answers differently (-folded +reopened):\n%s", when, d)
		}
		if d := cmp.Diff(folded, stored(t, m)); d != "" {
			t.Fatalf("%s: the folded read model keeps other deadlines than its hook was told (-told +kept):\n%s", when, d)
		}
		if d := cmp.Diff(folded, stored(t, restored)); d != "" {
			t.Fatalf("%s: the reopened read model keeps other deadlines (-folded +reopened):\n%s", when, d)
		}
	}
	compare("reopened", restored)
	if len(restoredHook) != 0 {
		t.Fatalf("Attach told the hook %v", restoredHook)
	}
	// Claims 3 and 8 are closed (refunded) and 4 and 9 escalated (support
	// decides): nothing waits on time for them.
	if kept := stored(t, restored); len(kept) != 6 || kept["c3"] != "" || kept["c4"] != "" || kept["c0"] == "" {
		t.Fatalf("the reopened read model keeps %v, want the 6 claims that wait on time", kept)
	}

	// More events on top of both: a response to a waiting claim, the
	// closing of an offered one, a new claim, a vendor's new fact.
	both = apply(m, restored)
	both("claims-o0", &trustv1.ClaimResponded{ClaimId: "c0", OrderId: "o0", VendorId: "v0", Response: domain.ResponseOffer.String(),
		OfferedAmount: eur(100), RespondTime: ts(5 * time.Hour), AnswerByTime: ts(60 * time.Hour)})
	both("claims-o1", &trustv1.ClaimClosed{ClaimId: "c1", OrderId: "o1", VendorId: "v1", Outcome: domain.ClosedWithdrawn, CloseTime: ts(6 * time.Hour)})
	for _, msg := range claimEvents("o11", 11) {
		both("claims-o11", msg)
	}
	both("vendortrust-v2", &trustv1.TrustFactsRecorded{VendorId: "v2", Delta: &trustv1.TrustCounts{CounterfeitsConfirmed: 1}, RecordTime: ts(7 * time.Hour)})
	compare("after more events", restored)
	stateListsAgree(t, restored)

	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	again := app.NewReadModel(nil)
	attach(t, dir, "trust/claims and vendor trust", again)
	compare("reopened again", again)
	if kept := stored(t, again); kept["c1"] != "" || !strings.HasPrefix(kept["c0"], domain.StateOfferPending.String()) || kept["c11"] == "" {
		t.Fatalf("reopened again, the read model keeps %v", kept)
	}
}

// stateListsAgree checks that every claims list filtered by state (which
// skips entries by the state stored in them) holds exactly the claims of
// the unfiltered list in that state now, in the same order.
func stateListsAgree(t *testing.T, m *app.ReadModel) {
	t.Helper()
	all := func(q app.ClaimQuery) []string {
		var out []string
		q.PageSize = app.MaxPageSize
		p, err := m.Claims(q)
		if err != nil || p.NextPageToken != "" {
			t.Fatalf("%+v: %v, next %q", q, err, p.NextPageToken)
		}
		for _, c := range p.Claims {
			out = append(out, c.Claim.ID+" "+c.Claim.State.String())
		}
		return out
	}
	states := map[string]bool{}
	for _, q := range []app.ClaimQuery{{}, {VendorID: "v0"}, {VendorID: "v1"}, {BuyerID: "b0"}, {OrderID: "o0"}, {OrderID: "o1"}} {
		want := map[domain.State][]string{}
		for _, line := range all(q) {
			_, name, _ := strings.Cut(line, " ")
			for st := domain.StateNone + 1; st <= domain.StateWithdrawn; st++ {
				if name == st.String() {
					want[st] = append(want[st], line)
					states[st.String()] = true
				}
			}
		}
		for st := domain.StateNone + 1; st <= domain.StateWithdrawn; st++ {
			q.State = st
			if got := all(q); fmt.Sprint(got) != fmt.Sprint(want[st]) {
				t.Errorf("%+v lists %v, want %v", q, got, want[st])
			}
		}
	}
	if len(states) < 5 {
		t.Fatalf("the lists hold only the states %v", states)
	}
}

// A store whose vendors do not decode fails Attach; Attach reads no case
// (the scheduler reads the waiting claims as it needs them), so a case gone
// or damaged is seen by what reads it: Waiting, for the scheduler, reports
// it gone or fails. Attach hands the hook nothing either way.
func TestReadModelRefusesADamagedStore(t *testing.T) {
	t.Parallel()
	f := newFolder(t)
	dir := t.TempDir()
	m := app.NewReadModel(nil)
	db := attach(t, dir, "claims", m)
	for _, msg := range claimEvents("o1", 0) {
		m.Apply(f.event("claims-o1", msg))
	}
	s, err := db.Space("claims")
	if err != nil {
		t.Fatal(err)
	}
	key := app.DeadlineKey("o1", "c0")
	if c, ok, err := m.Waiting(key); err != nil || !ok || !app.WaitsOnTime(&c) {
		t.Fatalf("the claim does not wait: %+v %v %v", c, ok, err)
	}
	for name, damage := range map[string]func(*kv.Batch){
		"a case gone":       func(b *kv.Batch) { _ = b.Delete([]byte("c/o1")) },
		"a case truncated":  func(b *kv.Batch) { _ = b.Set([]byte("c/o1"), []byte{1, 2}) },
		"a vendor of bytes": func(b *kv.Batch) { _ = b.Set([]byte("t/v1"), []byte("not a vendor")) },
	} {
		vendor := strings.Contains(name, "vendor")
		snapshot := map[string][]byte{}
		_ = s.Scan(nil, nil, false, func(k, v []byte) bool { snapshot[string(k)] = bytes.Clone(v); return true })
		b := s.Batch()
		damage(b)
		if err := b.Commit(f.pos); err != nil {
			t.Fatal(err)
		}
		h := hooked{}
		r := app.NewReadModel(h.hook)
		if err := r.Attach(s); (err == nil) == vendor || len(h) != 0 {
			t.Errorf("%s: Attach %v, %d scheduled", name, err, len(h))
		}
		if !vendor {
			_, ok, err := r.Waiting(key)
			if ok || (err == nil) != (name == "a case gone") {
				t.Errorf("%s: Waiting: %v %v", name, ok, err)
			}
		}
		b = s.Batch() // undo
		for k, v := range snapshot {
			_ = b.Set([]byte(k), v)
		}
		_ = b.Delete([]byte("t/v1"))
		if err := b.Commit(f.pos); err != nil {
			t.Fatal(err)
		}
	}
}

// store is what the platform attaches a stored read model as.
type store interface {
	Version() string
	Attach(*kv.Space) error
}

// attach opens (or reopens) the read-model store in dir and attaches rm to
// its space name as the platform's runtime does: a space of another
// version is emptied first. It returns the store, closed at the test's end.
func attach(t *testing.T, dir, name string, rm store) *kv.DB {
	t.Helper()
	db := openStore(t, dir)
	attachTo(t, db, name, rm)
	return db
}

// openStore opens (or reopens) the read-model store in dir, closed at the
// test's end.
func openStore(t *testing.T, dir string) *kv.DB {
	t.Helper()
	db, err := kv.Open(dir, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func attachTo(t *testing.T, db *kv.DB, name string, rm store) {
	t.Helper()
	s, err := db.Space(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, version, err := s.State(); err != nil {
		t.Fatal(err)
	} else if version != rm.Version() {
		if err := s.Reset(rm.Version()); err != nil {
			t.Fatal(err)
		}
	}
	if err := rm.Attach(s); err != nil {
		t.Fatal(err)
	}
}

// attachStores gives a service's stored read models a new store of their
// own, as a new process on an empty data directory has.
func attachStores(t *testing.T, svc *app.Service) {
	t.Helper()
	db := attach(t, t.TempDir(), "trust/claims and vendor trust", svc.ReadModel())
	attachTo(t, db, "trust/custody record (orders)", svc.Record().Part(app.OrderService))
	attachTo(t, db, "trust/custody record (fulfilments)", svc.Record().Part(app.FulfilmentService))
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

// The custody record is stored as two parts, one per source, each in a
// space of its own: reopened, each holds what its own source's events
// built and nothing else (so each stands at its own position), the record
// answers as one that never stopped and counts the same trust facts;
// later events of either source fold on top alike.
func TestRecordReopens(t *testing.T) {
	t.Parallel()
	orders, fulfilments := newFolder(t), newFolder(t)
	v := app.NewRecordView(nil)
	parts := func(db *kv.DB, v *app.RecordView) {
		attachTo(t, db, "trust/custody record (orders)", v.Part(app.OrderService))
		attachTo(t, db, "trust/custody record (fulfilments)", v.Part(app.FulfilmentService))
	}
	parts(openStore(t, t.TempDir()), v)
	dir := t.TempDir()
	kept := app.NewRecordView(nil)
	db := openStore(t, dir)
	parts(db, kept)
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
			TrackingNumber: "t-" + order, ShipTime: ts(time.Hour), Lines: []*fulfilmentv1.ShippedLine{{LineId: "1", Quantity: 2}},
			Packages: []*fulfilmentv1.Package{{Evidence: &fulfilmentv1.PackingEvidence{PhotoSha256: []string{"aa", "bb"},
				Units: []*fulfilmentv1.PackedUnit{{LineId: "1", SerialNumber: "sn-" + order}, {LineId: "1", LotNumber: "lot"}}}}}}, ms...)
		fulfil(&fulfilmentv1.TrackingEventRecorded{FulfilmentId: f, ShipmentId: "s1", CarrierEventId: "c1",
			Status: fulfilmentv1.TrackingStatus_TRACKING_STATUS_DELIVERED, OccurTime: ts(30 * time.Hour),
			Proof: &fulfilmentv1.ProofOfDelivery{RecipientName: "R"}, BuyerId: "b-" + order}, ms...)
	}
	for i := range 4 {
		order(fmt.Sprintf("o%d", i), v, kept)
		shipped(fmt.Sprintf("o%d", i), v, kept)
	}
	fulfil(&fulfilmentv1.ShipByDeadlineMissed{FulfilmentId: "f-o0", OrderId: "o0", VendorId: "v0"}, v, kept)
	fulfil(&fulfilmentv1.FulfilmentDelivered{FulfilmentId: "f-o1", OrderId: "o1", VendorId: "v0", DeliverTime: ts(30 * time.Hour),
		WithProof: true, CarrierEventIds: []string{"c1"}}, v, kept)
	fulfil(&fulfilmentv1.DeliveryFailed{FulfilmentId: "f-o2", OrderId: "o2", VendorId: "v0", ShipmentId: "s1",
		Status: fulfilmentv1.TrackingStatus_TRACKING_STATUS_LOST, FailTime: ts(40 * time.Hour)}, v, kept)
	fulfil(&fulfilmentv1.ReceiptConfirmed{FulfilmentId: "f-o3", OrderId: "o3", ConfirmTime: ts(50 * time.Hour)}, v, kept)
	fulfil(&fulfilmentv1.FulfilmentCancelled{FulfilmentId: "f-o5", OrderId: "o5", VendorId: "v1"}, v, kept)
	e := orders.event("order-o5", &orderv1.OrderCancelled{OrderId: "o5"})
	v.ApplyFrom(app.OrderService, e)
	kept.ApplyFrom(app.OrderService, e)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openStore(t, dir)
	for service, folder := range map[string]*folder{app.OrderService: orders, app.FulfilmentService: fulfilments} {
		s, _ := db.Space("trust/custody record (" + service + "s)")
		if at, version, err := s.State(); err != nil || at != folder.pos || version != v.Part(service).Version() {
			t.Fatalf("the %s part stands at %d, version %q (%v); want %d, %q", service, at, version, err, folder.pos, v.Part(service).Version())
		}
	}
	// Each part holds its own source's facts only.
	onlyOrders := app.NewRecordView(nil)
	attachTo(t, db, "trust/custody record (orders)", onlyOrders.Part(app.OrderService))
	attachTo(t, db, "empty", onlyOrders.Part(app.FulfilmentService))
	if o, ok := onlyOrders.Order("o1"); !ok || o.BuyerID != "b-o1" {
		t.Errorf("the order part does not hold order o1: %v %+v", ok, o)
	}
	if r, _ := onlyOrders.Record("o1", "v0"); r.Fulfilment != nil {
		t.Errorf("the order part holds a fulfilment: %+v", r.Fulfilment)
	}
	onlyFulfilments := app.NewRecordView(nil)
	attachTo(t, db, "empty too", onlyFulfilments.Part(app.OrderService))
	attachTo(t, db, "trust/custody record (fulfilments)", onlyFulfilments.Part(app.FulfilmentService))
	if _, ok := onlyFulfilments.Order("o1"); ok {
		t.Error("the fulfilment part holds an order")
	}

	restored := app.NewRecordView(nil)
	parts(db, restored)
	compare := func(when string) {
		t.Helper()
		want := recordAnswers(v)
		if r := want["record o3/v0"].([]any)[1].(domain.Record); r.Fulfilment == nil || len(r.Fulfilment.Shipments[0].Scans) != 1 ||
			r.Fulfilment.Receipt == nil || len(r.Fulfilment.Shipments[0].Units) != 2 {
			t.Fatalf("%s: the folded record has nothing to compare", when)
		}
		if d := cmp.Diff(want, recordAnswers(restored)); d != "" {
			t.Fatalf("%s: reopened record answers differently (-folded +reopened):\n%s", when, d)
		}
	}
	compare("reopened")
	if v.Part(app.OrderService).Version() != "trust-records-orders-kv-2" || v.Part(app.FulfilmentService).Version() != "trust-records-fulfilments-kv-1" {
		t.Fatalf("versions %q, %q", v.Part(app.OrderService).Version(), v.Part(app.FulfilmentService).Version())
	}

	// More events of both sources on top of both; what a fulfilment event
	// counts (read from the record) is the same in both.
	order("o4", v, restored)
	order("o1", v, restored) // confirmed again: the same facts, another event id
	shipped("o4", v, restored)
	scan := fulfil(&fulfilmentv1.TrackingEventRecorded{FulfilmentId: "f-o2", ShipmentId: "s1", CarrierEventId: "c2",
		Status: fulfilmentv1.TrackingStatus_TRACKING_STATUS_DELIVERED, OccurTime: ts(31 * time.Hour)}, v, restored)
	missed := fulfil(&fulfilmentv1.ShipByDeadlineMissed{FulfilmentId: "f-o0", OrderId: "o0", VendorId: "v0"}, v, restored)
	compare("after more events")
	for _, e := range []eventstore.RecordedEvent{scan, missed} {
		ev, err := es.Decode(e)
		if err != nil {
			t.Fatal(err)
		}
		wv, wd, wok := v.FulfilmentFacts(ev)
		gv, gd, gok := restored.FulfilmentFacts(ev)
		if gv != wv || gd != wd || gok != wok {
			t.Errorf("reopened record counts %s as %q %+v %v, want %q %+v %v", e.Type, gv, gd, gok, wv, wd, wok)
		}
	}
}
