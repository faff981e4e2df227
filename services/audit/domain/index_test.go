package domain_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/custody/custody/pkg/eventstore"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	"github.com/custody/custody/services/audit/domain"
	"github.com/custody/custody/services/audit/internal/story"
)

func TestIndexFilesEveryEventOfTheOrder(t *testing.T) {
	w := newWorld()
	s1, s2 := story.New(t0, "o1"), story.New(t0, "o2")
	w.write(t, s1, s1.Events)
	w.write(t, s2, s2.Events)
	// o2 also holds stock of o1's product: the product stream is shared.
	w.write(t, s2, []story.Event{{Service: "catalog", Stream: "product-" + s1.ProductID, At: story.Placed, Actor: "service:catalog",
		Payload: &catalogv1.StockHeld{ProductId: s1.ProductID, OrderId: "o2"}}})

	x := w.index(t)
	v, ok := x.Order("o1")
	if !ok {
		t.Fatal("order o1 not indexed")
	}
	if len(v.Entries) != s1.OfOrder() {
		t.Fatalf("o1 has %d events, want %d", len(v.Entries), s1.OfOrder())
	}
	if v.BuyerID != s1.BuyerID {
		t.Errorf("buyer = %q, want %q", v.BuyerID, s1.BuyerID)
	}
	for _, e := range v.Entries {
		if e.Order() != "o1" {
			t.Errorf("%s filed under %q", e.Event.Type, e.Order())
		}
		if e.Event.Type == "custody.catalog.v1.ProductCreated" {
			t.Errorf("the product's creation is no event of the order")
		}
	}
	var streams []string
	for _, r := range v.Streams() {
		streams = append(streams, r.String())
	}
	want := []string{
		"catalog/product-" + s1.ProductID, "catalog/reservation-o1",
		"fulfilment/fulfilment-" + s1.FulfilmentID, "fulfilment/tracking-dhl_To1",
		"order/order-o1", "payouts/orderledger-o1", "trust/claims-o1",
	}
	if !slices.Equal(streams, want) {
		t.Errorf("streams\n got %v\nwant %v", streams, want)
	}
	v2, _ := x.Order("o2")
	if len(v2.Entries) != s2.OfOrder()+1 {
		t.Errorf("o2 has %d events, want %d (its story and the hold on o1's product)", len(v2.Entries), s2.OfOrder()+1)
	}
	st := x.Stats()
	if st.Orders != 2 || st.Unlinked != 2 || st.Events != len(s1.Events)+len(s2.Events)+1 {
		t.Errorf("stats %+v", st)
	}
	if got := len(x.Seen(domain.StreamRef{Service: "catalog", Stream: "product-" + s1.ProductID})); got != 4 {
		t.Errorf("seen %d events of o1's product stream, want 4 (created, two holds, sold)", got)
	}
}

func TestIndexDoesNotDependOnTheOrderStoresAreRead(t *testing.T) {
	w := newWorld()
	s := story.New(t0, "o1")
	w.write(t, s, s.Events)
	want, _ := w.index(t).Order("o1")
	for _, order := range [][]string{
		{"payouts", "trust", "fulfilment", "order", "catalog"},
		{"trust", "catalog", "payouts", "order", "fulfilment"},
	} {
		got, ok := w.index(t, order...).Order("o1")
		if !ok || !sameIDs(got.Entries, want.Entries) {
			t.Errorf("reading %v: timeline\n got %v\nwant %v", order, ids(got.Entries), ids(want.Entries))
		}
	}
}

// Events that name the order only through another id wait until an event
// ties that id to the order, whichever comes first.
func TestIndexLinksThroughReferences(t *testing.T) {
	at := t0
	rec := func(stream string, rev uint64, pos uint64) eventstore.RecordedEvent {
		at = at.Add(time.Second)
		return eventstore.RecordedEvent{Stream: stream, Revision: rev, Position: pos, RecordedAt: at}
	}
	id := func(service string, e eventstore.RecordedEvent) string {
		return fmt.Sprintf("%s/%s@%d", service, e.Stream, e.Revision)
	}
	x := domain.NewIndex()
	// A scan (fulfilment id only) before the fulfilment is known.
	scan := rec("fulfilment-f1", 1, 2)
	x.Add("fulfilment", scan, &fulfilmentv1.TrackingEventRecorded{FulfilmentId: "f1", CarrierEventId: "e1"})
	// A return received (return id only), before its claim's return is known.
	received := rec("returns-r1", 0, 1)
	x.Add("trust", received, &trustv1.ReturnReceived{ReturnId: "r1"})
	// An event of a type this binary does not know, in the fulfilment's stream.
	unknown := rec("fulfilment-f1", 2, 3)
	unknown.Type = "custody.future.v1.Thing"
	x.Add("fulfilment", unknown, nil)
	// …and one in a stream nothing ties to an order.
	stray := rec("gadget-g1", 0, 4)
	x.Add("fulfilment", stray, nil)
	if _, ok := x.Order("o1"); ok {
		t.Fatal("o1 indexed before anything named it")
	}

	x.Add("fulfilment", rec("fulfilment-f1", 0, 1), &fulfilmentv1.FulfilmentRequested{FulfilmentId: "f1", OrderId: "o1", BuyerId: "b1"})
	// The return is tied to a claim, the claim to the order.
	x.Add("trust", rec("claims-o1", 1, 3), &trustv1.ReturnShipped{ClaimId: "c1", ReturnId: "r1"})
	x.Add("trust", rec("claims-o1", 0, 2), &trustv1.ClaimOpened{ClaimId: "c1", OrderId: "o1"})

	v, ok := x.Order("o1")
	if !ok {
		t.Fatal("o1 not indexed")
	}
	got := ids(v.Entries)
	for _, want := range []string{id("fulfilment", scan), id("trust", received), id("fulfilment", unknown)} {
		if !slices.Contains(got, want) {
			t.Errorf("%s not filed under o1: %v", want, got)
		}
	}
	if slices.Contains(got, id("fulfilment", stray)) {
		t.Errorf("an event of an unrelated stream was filed under o1")
	}
	if len(got) != 6 {
		t.Errorf("o1 has %d events, want 6: %v", len(got), got)
	}
	if v.BuyerID != "b1" {
		t.Errorf("buyer %q", v.BuyerID)
	}
	if s := x.Stats(); s.Unlinked != 1 {
		t.Errorf("stats %+v, want the stray event unlinked", s)
	}
}

func TestTimelineOrder(t *testing.T) {
	w := newWorld()
	s := story.New(t0, "o1")
	w.write(t, s, s.Events)
	v, _ := w.index(t, "payouts", "trust", "fulfilment", "order", "catalog").Order("o1")
	lastRev := map[domain.StreamRef]int64{}
	for i, e := range v.Entries {
		if i > 0 {
			p := v.Entries[i-1]
			if e.Event.RecordedAt.Before(p.Event.RecordedAt) ||
				e.Event.RecordedAt.Equal(p.Event.RecordedAt) && (e.Service < p.Service || e.Service == p.Service && e.Event.Position < p.Event.Position) {
				t.Errorf("event %d (%s %s) sorts before event %d (%s %s)", i, e.Service, e.Event.Type, i-1, p.Service, p.Event.Type)
			}
		}
		r, ok := lastRev[e.Ref()]
		if ok && int64(e.Event.Revision) <= r {
			t.Errorf("%s: revision %d after %d", e.Ref(), e.Event.Revision, r)
		}
		lastRev[e.Ref()] = int64(e.Event.Revision)
	}
	if first := v.Entries[0].Event.Type; first != "custody.catalog.v1.StockHeld" {
		t.Errorf("first event %s; at the same moment catalog sorts before order", first)
	}
	if last := v.Entries[len(v.Entries)-1].Event.Type; last != "custody.trust.v1.ClaimOpened" {
		// payouts < trust, so trust's claim comes last at that moment.
		t.Errorf("last event %s", last)
	}
}

func TestPaging(t *testing.T) {
	w := newWorld()
	s := story.New(t0, "o1")
	w.write(t, s, s.Until(story.Delivered))
	x := w.index(t)
	v, _ := x.Order("o1")

	var got []*domain.Entry
	var after *domain.Cursor
	for pages := 0; ; pages++ {
		p := domain.Page(v.Entries, after, 4)
		if p.Total != len(v.Entries) || len(p.Entries) > 4 {
			t.Fatalf("page %d: %d entries of %d", pages, len(p.Entries), p.Total)
		}
		got = append(got, p.Entries...)
		if p.Next == nil {
			break
		}
		tok := domain.EncodeToken("o1", *p.Next)
		c, err := domain.DecodeToken("o1", tok)
		if err != nil {
			t.Fatal(err)
		}
		after = &c
		if pages == 1 {
			// Events recorded meanwhile (the claim, later) join at the end.
			w.write(t, s, s.Events[len(s.Until(story.Delivered)):])
			x = w.index(t)
			v, _ = x.Order("o1")
		}
	}
	if !sameIDs(got, v.Entries) {
		t.Errorf("pages stitched\n got %v\nwant %v", ids(got), ids(v.Entries))
	}

	if p := domain.Page(v.Entries, nil, 0); len(p.Entries) != len(v.Entries) || p.Next != nil {
		t.Errorf("default page size: %d entries, next %v", len(p.Entries), p.Next)
	}
	tok := domain.EncodeToken("o1", domain.Cursor{At: t0, Service: "order", Position: 3})
	for _, bad := range []struct{ order, tok string }{{"o2", tok}, {"o1", "!!"}, {"o1", "b3Jk"}, {"o1", tok[:len(tok)-3]}} {
		if _, err := domain.DecodeToken(bad.order, bad.tok); err == nil {
			t.Errorf("DecodeToken(%q, %q) accepted", bad.order, bad.tok)
		}
	}
}
