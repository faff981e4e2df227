package app

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/deadline"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/kv"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/fulfilment/domain"
)

// fakeDeadlines keeps what the read model tells the ship-by scheduler, as
// Service.trackDeadline does: a pending deadline scheduled at its time,
// anything else cancelled.
type fakeDeadlines map[string]time.Time

func (s fakeDeadlines) track(v View) {
	if f := v.Fulfilment; f.DeadlinePending() {
		s[f.ID] = f.ShipBy
	} else {
		delete(s, f.ID)
	}
}

func (s fakeDeadlines) String() string {
	var out []string
	for _, id := range slices.Sorted(maps.Keys(s)) {
		out = append(out, id+" "+s[id].UTC().Format(time.RFC3339))
	}
	return strings.Join(out, "\n")
}

// recorder numbers events as a store would: positions and per-stream
// revisions.
type recorder struct {
	t   *testing.T
	pos uint64
	rev map[string]uint64
}

func (r *recorder) record(stream string, msg proto.Message) eventstore.RecordedEvent {
	r.t.Helper()
	ed, err := es.Encode(msg)
	if err != nil {
		r.t.Fatal(err)
	}
	r.pos++
	rev, ok := r.rev[stream]
	if ok {
		rev++
	}
	r.rev[stream] = rev
	ed.ID = fmt.Sprint("e", r.pos)
	return eventstore.RecordedEvent{EventData: ed, Stream: stream, Revision: rev, Position: r.pos}
}

// canon renders a view with its pointers followed; an empty slice and a
// nil one read alike (the store keeps no difference, and no query makes
// one).
func canon(t *testing.T, v View) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), "[]", "null")
}

// storedDeadlines is the ship-by deadlines m's store keeps, where the scheduler
// reads them (Next), one at a time so that every step of the paging is
// taken.
func storedDeadlines(t *testing.T, m *ReadModel) fakeDeadlines {
	t.Helper()
	out := fakeDeadlines{}
	var after *deadline.Entry
	for {
		next, err := m.Next(after, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(next) == 0 {
			return out
		}
		if after != nil && !next[0].At.After(after.At) && (!next[0].At.Equal(after.At) || next[0].Key <= after.Key) {
			t.Fatalf("Next after %v read %v: not in (at, key) order", *after, next[0])
		}
		out[next[0].Key] = next[0].At
		after = &next[0]
	}
}

// answers is every answer of m's queries about ids, vendors and orders,
// what a watch subscribed now would start from, and the ship-by deadlines
// its store keeps for the scheduler.
func answers(t *testing.T, m *ReadModel, ids, vendors, orders []string) string {
	t.Helper()
	var b strings.Builder
	for _, id := range append(ids, "nope") {
		v, ok := m.Get(id)
		fmt.Fprintf(&b, "get %s %v %s\n", id, ok, canon(t, v))
	}
	open := m.Open()
	slices.SortFunc(open, func(a, b View) int { return strings.Compare(a.Fulfilment.ID, b.Fulfilment.ID) })
	for _, v := range open {
		fmt.Fprintf(&b, "open %s\n", canon(t, v))
	}
	var queries []ListQuery
	for _, st := range []domain.Status{domain.StatusNone, domain.StatusRequested, domain.StatusPartiallyShipped,
		domain.StatusShipped, domain.StatusDelivered, domain.StatusDeliveryFailed, domain.StatusCancelled} {
		for _, vendor := range append(vendors, "") {
			for _, order := range append(orders, "") {
				if vendor != "" || order != "" {
					queries = append(queries, ListQuery{VendorID: vendor, OrderID: order, Status: st})
				}
			}
		}
	}
	for _, q := range queries {
		for _, size := range []int{0, 1, 2} {
			q.PageSize, q.PageToken = size, ""
			for {
				p, err := m.List(q)
				fmt.Fprintf(&b, "list %+v: %v next %q\n", q, err, p.NextPageToken)
				for _, v := range p.Fulfilments {
					fmt.Fprintf(&b, "  %s\n", canon(t, v))
				}
				if err != nil || p.NextPageToken == "" {
					break
				}
				q.PageToken = p.NextPageToken
			}
		}
	}
	for _, vendor := range append(vendors, "nobody") {
		w, at, snap, err := m.subscribe(vendor, 1, true)
		if err != nil {
			t.Fatal(err)
		}
		m.unsubscribe(vendor, w)
		fmt.Fprintf(&b, "watch %s from %d:", vendor, at)
		for _, v := range snap {
			fmt.Fprintf(&b, " %s@%d", v.Fulfilment.ID, v.Revision)
		}
		fmt.Fprintln(&b)
	}
	fmt.Fprintf(&b, "watchers %d\nscheduled\n%s\n", m.Watchers(), storedDeadlines(t, m))
	return b.String()
}

// The read model reopened on its store answers every query as one that
// never stopped (lists, pages, Get, Open), starts watches at the same
// position with the same snapshot, keeps for the scheduler exactly the
// pending ship-by deadlines (those a hook that saw every change from
// position 1 holds: the stored state alone, nothing is folded again), and
// goes on folding as the other; reopened once more, it keeps the
// deadlines the later events moved.
func TestReadModelReopens(t *testing.T) {
	t.Parallel()
	ts := func(h int) *timestamppb.Timestamp { return timestamppb.New(t0.Add(time.Duration(h) * time.Hour)) }
	req := func(id, vendor string, h int) *fulfilmentv1.FulfilmentRequested {
		r := requested(id, vendor, time.Duration(h)*time.Minute)
		r.Lines = append(r.Lines, &fulfilmentv1.ShippedLine{LineId: "2", SkuId: "s2", Quantity: 3})
		r.ShippingAddress = &typev1.Address{RecipientName: "R " + id, AddressLines: []string{"1 Road", "Flat " + id},
			Locality: "Berlin", PostalCode: "10115", CountryCode: "DE"}
		return r
	}
	ship := func(id, shipment string, fully bool, h int, qty int64) *fulfilmentv1.FulfilmentShipped {
		return &fulfilmentv1.FulfilmentShipped{FulfilmentId: id, OrderId: "o-" + id, ShipmentId: shipment, Carrier: "dhl",
			TrackingNumber: "123" + id + shipment, RequestId: "rq-" + shipment, FullyShipped: fully,
			Packages: []*fulfilmentv1.Package{{PackageId: "p1", Lines: []*fulfilmentv1.ShippedLine{{LineId: "2", SkuId: "s2", Quantity: qty}},
				Evidence: &fulfilmentv1.PackingEvidence{PhotoSha256: []string{strings.Repeat("a", 64)},
					Units: []*fulfilmentv1.PackedUnit{{LineId: "2", SerialNumber: "sn1", SkuId: "s2"}}}}},
			Lines:    []*fulfilmentv1.ShippedLine{{LineId: "2", SkuId: "s2", Quantity: qty}},
			ShipTime: ts(h), ExpectedDeliveryTime: ts(h + 120)}
	}
	scan := func(id, shipment, evID string, st fulfilmentv1.TrackingStatus, h int, proof bool) *fulfilmentv1.TrackingEventRecorded {
		e := &fulfilmentv1.TrackingEventRecorded{FulfilmentId: id, ShipmentId: shipment, Carrier: "dhl", CarrierEventId: evID,
			Status: st, OccurTime: ts(h), Location: "Hub", Description: "scan " + evID, BuyerId: "b"}
		if proof {
			e.Proof = &fulfilmentv1.ProofOfDelivery{RecipientName: "R", SignatureSha256: strings.Repeat("b", 64), Location: "door"}
		}
		return e
	}
	type ev struct {
		stream string
		msg    proto.Message
	}
	fs := func(id string) string { return "fulfilment-" + id }
	before := []ev{
		{fs("f1"), req("f1", "v1", 1)},
		{fs("f2"), req("f2", "v1", 2)},
		{fs("f3"), req("f3", "v2", 3)},
		{fs("f4"), req("f4", "v2", 4)},
		{fs("f5"), req("f5", "v1", 5)},
		{fs("f6"), req("f6", "v3", 6)},
		{"tracking-dhl_123f1s1", &fulfilmentv1.TrackingNumberClaimed{FulfilmentId: "f1", ShipmentId: "s1"}}, // not a fulfilment's
		{fs("f1"), ship("f1", "s1", false, 10, 1)},                                                          // partly shipped: still pending
		{fs("f1"), scan("f1", "s1", "c1", domain.PickedUp, 11, false)},
		{fs("f2"), ship("f2", "s1", false, 10, 3)},
		{fs("f2"), &fulfilmentv1.FulfilmentShipped{FulfilmentId: "f2", ShipmentId: "s2", Carrier: "ups", TrackingNumber: "1Z",
			FullyShipped: true, Lines: []*fulfilmentv1.ShippedLine{{LineId: "1", SkuId: "s", Quantity: 1}}, ShipTime: ts(12), ExpectedDeliveryTime: ts(60)}},
		{fs("f2"), scan("f2", "s1", "c3", domain.Delivered, 40, true)},
		{fs("f2"), scan("f2", "s1", "c2", domain.InTransit, 20, false)},
		{fs("f3"), &fulfilmentv1.ShipByDeadlineMissed{FulfilmentId: "f3", ShipByTime: ts(72), Action: domain.ActionGrace, GraceUntilTime: ts(96)}},
		{fs("f4"), &fulfilmentv1.ShipByDeadlineMissed{FulfilmentId: "f4", ShipByTime: ts(72), Action: domain.ActionCancel}},
		{fs("f4"), &fulfilmentv1.FulfilmentCancelled{FulfilmentId: "f4", Reason: "ship-by missed", CancelTime: ts(72)}},
		{fs("f5"), ship("f5", "s1", false, 5, 1)},
		{fs("f5"), &fulfilmentv1.ShipByDeadlineMissed{FulfilmentId: "f5", ShipByTime: ts(72), Action: domain.ActionFlag}},
		{fs("f6"), ship("f6", "s1", false, 8, 3)},
		{fs("f6"), &fulfilmentv1.FulfilmentShipped{FulfilmentId: "f6", ShipmentId: "s2", Carrier: "dhl", TrackingNumber: "456",
			FullyShipped: true, Lines: []*fulfilmentv1.ShippedLine{{LineId: "1", SkuId: "s", Quantity: 1}}, ShipTime: ts(9), ExpectedDeliveryTime: ts(129)}},
		{fs("f6"), scan("f6", "s1", "c9", domain.Lost, 30, false)},
		{fs("f6"), &fulfilmentv1.ReceiptConfirmed{FulfilmentId: "f6", ConfirmTime: ts(50)}},
		{"fulfilment-ghost", &fulfilmentv1.ShipByDeadlineMissed{FulfilmentId: "ghost", Action: domain.ActionGrace, GraceUntilTime: ts(1)}}, // never requested
	}
	// after moves every piece of state: a new fulfilment (of a vendor and
	// one new), a deadline moved, one closed by shipping, one cancelled,
	// scans (one repeated) and a receipt.
	after := []ev{
		{fs("f7"), req("f7", "v1", 7)},
		{fs("f8"), req("f8", "v4", 8)},
		{fs("f1"), &fulfilmentv1.ShipByDeadlineMissed{FulfilmentId: "f1", ShipByTime: ts(72), Action: domain.ActionGrace, GraceUntilTime: ts(100)}},
		{fs("f3"), ship("f3", "s1", false, 90, 3)},
		{fs("f3"), &fulfilmentv1.FulfilmentShipped{FulfilmentId: "f3", ShipmentId: "s2", Carrier: "dhl", TrackingNumber: "789",
			FullyShipped: true, Lines: []*fulfilmentv1.ShippedLine{{LineId: "1", SkuId: "s", Quantity: 1}}, ShipTime: ts(91), ExpectedDeliveryTime: ts(200)}},
		{fs("f3"), scan("f3", "s1", "c1", domain.Delivered, 95, true)},
		{fs("f3"), scan("f3", "s1", "c1", domain.Delivered, 95, true)},
		{fs("f7"), &fulfilmentv1.FulfilmentCancelled{FulfilmentId: "f7", Reason: "order cancelled", CancelTime: ts(9)}},
		{fs("f2"), &fulfilmentv1.ReceiptConfirmed{FulfilmentId: "f2", ConfirmTime: ts(45)}},
		{"tracking-ups_1Z", &fulfilmentv1.TrackingNumberClaimed{FulfilmentId: "f2"}},
	}
	ids := []string{"f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "ghost"}
	vendors := []string{"v1", "v2", "v3", "v4"}
	var orders []string
	for _, id := range ids {
		orders = append(orders, "o-"+id)
	}

	rec := &recorder{t: t, rev: map[string]uint64{}}
	sched, keptSched := fakeDeadlines{}, fakeDeadlines{}
	m, _ := attached(t, t.TempDir(), sched.track) // never stops
	dir := t.TempDir()
	kept, db := attached(t, dir, keptSched.track) // closed and reopened
	for _, e := range before {
		r := rec.record(e.stream, e.msg)
		m.Apply(r)
		kept.Apply(r)
	}
	live, _, _, _ := m.subscribe("v1", 16, false) // a watcher of the one that never stops
	defer m.unsubscribe("v1", live)
	want := answers(t, m, ids, vendors, orders)
	if !strings.Contains(want, "watch v1 from 23: f5@2 f2@4 f1@2") || !strings.Contains(want, "watchers 1") ||
		sched.String() != "f1 2030-01-04T00:00:00Z\nf3 2030-01-05T00:00:00Z" || keptSched.String() != sched.String() ||
		storedDeadlines(t, m).String() != sched.String() {
		t.Fatalf("the fold is not what the test means:\n%s", tail(want))
	}
	if m.Version() != "fulfilment-kv-2" {
		t.Fatalf("version %q", m.Version())
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	restoredSched := fakeDeadlines{}
	restored, db := attached(t, dir, restoredSched.track)
	if at, _ := restored.pos.Get(); at != rec.pos {
		t.Fatalf("reopened at position %d, want %d", at, rec.pos)
	}
	got := answers(t, restored, ids, vendors, orders)
	if len(restoredSched) != 0 {
		t.Fatalf("Attach handed the hook %v: the scheduler reads the store", restoredSched)
	}
	if got != strings.Replace(want, "watchers 1", "watchers 0", 1) {
		t.Fatalf("reopened answers differ:\n%s", diff(got, want))
	}
	// A page token of the one that never stopped reads the same page of
	// the reopened one.
	q := ListQuery{VendorID: "v1", PageSize: 1}
	p1, err := m.List(q)
	if err != nil {
		t.Fatal(err)
	}
	q.PageToken = p1.NextPageToken
	p2, err1 := m.List(q)
	r2, err2 := restored.List(q)
	if err1 != nil || err2 != nil || len(r2.Fulfilments) != 1 || canon(t, p2.Fulfilments[0]) != canon(t, r2.Fulfilments[0]) ||
		p2.NextPageToken != r2.NextPageToken {
		t.Fatalf("page 2: %+v %v / %+v %v", p2, err1, r2, err2)
	}

	// Both go on folding alike, watchers of the reopened one included.
	rw, at, _, _ := restored.subscribe("v1", 16, false)
	defer restored.unsubscribe("v1", rw)
	if at != 23 {
		t.Fatalf("a watch of the reopened model starts at %d", at)
	}
	for _, e := range after {
		r := rec.record(e.stream, e.msg)
		m.Apply(r)
		restored.Apply(r)
	}
	want = answers(t, m, ids, vendors, orders)
	got = answers(t, restored, ids, vendors, orders)
	if got != want {
		t.Fatalf("after more events, reopened answers differ:\n%s", diff(got, want))
	}
	if !strings.Contains(want, "watch v1 from 33: f7@1 f5@2 f2@5 f1@3") ||
		sched.String() != "f1 2030-01-05T04:00:00Z\nf8 2030-01-04T00:00:00Z" || storedDeadlines(t, m).String() != sched.String() {
		t.Fatalf("the fold after is not what the test means:\n%s", tail(want))
	}
	drain := func(w *watcher) string {
		var out []string
		for len(w.ch) > 0 {
			c := <-w.ch
			out = append(out, fmt.Sprintf("%d %s %s@%d", c.Position, c.EventType, c.View.Fulfilment.ID, c.View.Revision))
		}
		return strings.Join(out, "\n")
	}
	if a, b := drain(live), drain(rw); a != b || strings.Count(a, "\n") != 3 {
		t.Fatalf("watchers saw\n%s\nand\n%s", a, b)
	}

	statusListsAgree(t, m, vendors, orders)
	statusListsAgree(t, restored, vendors, orders)

	// Reopened again: the deadlines the later events moved, opened and
	// closed come from the store.
	restored.unsubscribe("v1", rw)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	again, _ := attached(t, dir, nil)
	got = answers(t, again, ids, vendors, orders)
	if got != strings.Replace(want, "watchers 1", "watchers 0", 1) || storedDeadlines(t, again).String() != sched.String() {
		t.Fatalf("reopened twice, answers differ:\n%s", diff(got, want))
	}
}

// statusListsAgree checks that every list filtered by status (which skips
// entries by the status stored in them) holds exactly the fulfilments of
// the unfiltered list that have that status now, in the same order.
func statusListsAgree(t *testing.T, m *ReadModel, vendors, orders []string) {
	t.Helper()
	all := func(q ListQuery) []string {
		var out []string
		q.PageSize = MaxPageSize
		p, err := m.List(q)
		if err != nil || p.NextPageToken != "" {
			t.Fatalf("%+v: %v, next %q", q, err, p.NextPageToken)
		}
		for _, v := range p.Fulfilments {
			out = append(out, fmt.Sprintf("%s %s", v.Fulfilment.ID, v.Fulfilment.Status()))
		}
		return out
	}
	var queries []ListQuery
	for _, v := range vendors {
		queries = append(queries, ListQuery{VendorID: v})
	}
	for _, o := range orders {
		queries = append(queries, ListQuery{OrderID: o})
	}
	statuses := map[domain.Status]bool{}
	for _, q := range queries {
		want := map[domain.Status][]string{}
		for _, line := range all(q) {
			_, name, _ := strings.Cut(line, " ")
			for st := domain.StatusRequested; st <= domain.StatusCancelled; st++ {
				if name == st.String() {
					want[st] = append(want[st], line)
					statuses[st] = true
				}
			}
		}
		for st := domain.StatusRequested; st <= domain.StatusCancelled; st++ {
			q.Status = st
			if got := all(q); fmt.Sprint(got) != fmt.Sprint(want[st]) {
				t.Errorf("%+v lists %v, want %v", q, got, want[st])
			}
		}
	}
	if len(statuses) < 5 {
		t.Fatalf("the lists hold only the statuses %v", statuses)
	}
}

// Attach reads nothing but the position (the scheduler reads the pending
// deadlines as it needs them), so a store that does not hold what it
// lists attaches, and the deadline of a fulfilment it lost is still read
// back (MissShipBy then finds no fulfilment to act on); a value that does
// not decode is an error of the reads that meet it, never a wrong answer.
func TestReadModelRefusesADamagedStore(t *testing.T) {
	t.Parallel()
	rec := &recorder{t: t, rev: map[string]uint64{}}
	dir := t.TempDir()
	m, db := attached(t, dir, nil)
	m.Apply(rec.record("fulfilment-f1", requested("f1", "v1", 0)))
	m.Apply(rec.record("fulfilment-f2", requested("f2", "v1", time.Minute)))
	s, err := db.Space(spaceName)
	if err != nil {
		t.Fatal(err)
	}
	b := s.Batch()
	_ = b.Set(viewKey("f1"), []byte{codecVersion, 0xff}) // truncated
	_ = b.Delete(viewKey("f2"))                          // listed and pending, but gone
	if err := b.Commit(rec.pos); err != nil {
		t.Fatal(err)
	}
	sched := fakeDeadlines{}
	fresh := NewReadModel(sched.track)
	if err := fresh.Attach(s); err != nil || len(sched) != 0 {
		t.Fatalf("Attach of a damaged store: %v, %d scheduled", err, len(sched))
	}
	if due := storedDeadlines(t, fresh).String(); due != "f1 2030-01-04T00:00:00Z\nf2 2030-01-04T00:00:00Z" {
		t.Fatalf("stored deadlines of a damaged store:\n%s", due)
	}
	if _, ok := fresh.Get("f1"); ok {
		t.Fatal("Get decoded a truncated value")
	}
	if _, err := fresh.List(ListQuery{VendorID: "v1"}); err == nil {
		t.Fatal("List read past a truncated value")
	}
	if _, _, _, err := fresh.subscribe("v1", 1, true); err == nil || fresh.Watchers() != 0 {
		t.Fatalf("subscribe over a truncated value: %v, %d watchers", err, fresh.Watchers())
	}
}

// spaceName is the read model's space, as the platform names it.
const spaceName = "fulfilment/fulfilments"

// attached is a read model on the store in dir (created, or reopened as a
// test left it) whose space is attached as the platform's runtime does:
// emptied when of another version, then the position it stands at marked.
func attached(t *testing.T, dir string, onChange func(View)) (*ReadModel, *kv.DB) {
	t.Helper()
	db, err := kv.Open(dir, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	s, err := db.Space(spaceName)
	if err != nil {
		t.Fatal(err)
	}
	m := NewReadModel(onChange)
	pos, version, err := s.State()
	if err != nil {
		t.Fatal(err)
	}
	if version != m.Version() {
		if err := s.Reset(m.Version()); err != nil {
			t.Fatal(err)
		}
		pos = 0
	}
	if err := m.Attach(s); err != nil {
		t.Fatal(err)
	}
	m.pos.Advance(pos)
	return m, db
}

// diff is the first lines where got and want differ.
func diff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	var out []string
	for i := 0; i < max(len(g), len(w)) && len(out) < 6; i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			out = append(out, fmt.Sprintf("line %d\n got: %s\nwant: %s", i+1, gl, wl))
		}
	}
	return strings.Join(out, "\n")
}

// tail is answers' watches and schedule.
func tail(answers string) string {
	if i := strings.Index(answers, "\nwatch "); i >= 0 {
		return answers[i+1:]
	}
	return answers
}
