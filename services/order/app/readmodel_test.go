package app_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/kv"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/order/app"
	"github.com/custody/custody/services/order/domain"
)

// newSpace is the order read model's space in a read-model store in dir,
// closed when the test ends (or by the caller, to reopen it).
func newSpace(t *testing.T, dir string) (*kv.Space, *kv.DB) {
	t.Helper()
	db, err := kv.Open(dir, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	s, err := db.Space("order/orders")
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

// attached is a read model with its space in dir, and its tracking index
// with another.
func attached(t *testing.T, dir string) (*app.ReadModel, *kv.DB) {
	t.Helper()
	s, db := newSpace(t, dir)
	m := app.NewReadModel(nil)
	if err := m.Attach(s); err != nil {
		t.Fatal(err)
	}
	ts, err := db.Space("order/tracking")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Tracking().Attach(ts); err != nil {
		t.Fatal(err)
	}
	return m, db
}

// The stored read model reopens whole: the same pages for buyers and
// vendors, the same orders and revisions, at the position of its last
// event; later events fold on top.
func TestReadModelReopens(t *testing.T) {
	t.Parallel()
	pos := uint64(0)
	revs := map[string]uint64{}
	apply := func(m *app.ReadModel, id string, msg proto.Message) {
		pos++
		revs[id]++
		ed, err := es.Encode(msg)
		if err != nil {
			t.Fatal(err)
		}
		ed.ID = fmt.Sprint(pos)
		m.Apply(eventstore.RecordedEvent{EventData: ed, Stream: "order-" + id, Position: pos, Revision: revs[id]})
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	m, db := attached(t, dir)
	for i := range 12 {
		id := fmt.Sprintf("o%02d", i)
		apply(m, id, &orderv1.OrderPlaced{OrderId: id, BuyerId: fmt.Sprintf("b%d", i%3),
			Parts:           []*orderv1.VendorPart{{VendorId: fmt.Sprintf("v%d", i%2), Subtotal: &typev1.Money{CurrencyCode: "EUR", AmountMinor: 100}}},
			Total:           &typev1.Money{CurrencyCode: "EUR", AmountMinor: 100},
			ShippingAddress: &typev1.Address{RecipientName: "Ada", CountryCode: "DE"},
			PlaceTime:       timestamppb.New(t0.Add(time.Duration(i%5) * time.Minute))})
		if i%2 == 0 {
			apply(m, id, &orderv1.OrderConfirmed{OrderId: id, BuyerId: fmt.Sprintf("b%d", i%3)})
		}
	}
	list := func(m *app.ReadModel) string {
		var out []string
		for _, q := range []app.ListQuery{{BuyerID: "b0"}, {BuyerID: "b1"}, {BuyerID: "b2"}, {VendorID: "v0"}, {VendorID: "v1"}} {
			for tok := ""; ; {
				q.PageSize, q.PageToken = 2, tok
				p, err := m.List(q)
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range p.Orders {
					out = append(out, fmt.Sprintf("%s %s %d %s %+v", o.Order.ID, o.Order.BuyerID, o.Revision, o.Order.Status, o.Order.Address.GetRecipientName()))
				}
				if tok = p.NextPageToken; tok == "" {
					break
				}
			}
		}
		return strings.Join(out, "\n")
	}
	want := list(m)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	restored, db := attached(t, dir)
	if got := list(restored); got != want || len(want) == 0 {
		t.Fatalf("reopened read model lists\n%s\nwant\n%s", got, want)
	}
	sp, _ := db.Space("order/orders")
	if at, _, err := sp.State(); err != nil || at != pos {
		t.Fatalf("reopened at position %d (%v), want %d", at, err, pos)
	}
	apply(restored, "o01", &orderv1.OrderConfirmed{OrderId: "o01", BuyerId: "b1"})
	if got := list(restored); !strings.Contains(got, "o01 b1 2 confirmed") {
		t.Fatalf("after one more event the reopened read model lists\n%s", got)
	}
}

// search is a read model of orders and shipments for the search tests:
// apply folds an order event, ship a fulfilment event.
type search struct {
	t      *testing.T
	m      *app.ReadModel
	pos    uint64
	revs   map[string]uint64
	fulPos uint64
}

func newSearch(t *testing.T) *search {
	m, _ := attached(t, t.TempDir())
	return &search{t: t, m: m, revs: map[string]uint64{}}
}

func (s *search) apply(id string, msg proto.Message) {
	s.t.Helper()
	s.pos++
	s.revs[id]++
	ed, err := es.Encode(msg)
	if err != nil {
		s.t.Fatal(err)
	}
	ed.ID = fmt.Sprint("o", s.pos)
	s.m.Apply(eventstore.RecordedEvent{EventData: ed, Stream: "order-" + id, Position: s.pos, Revision: s.revs[id]})
}

// place folds an order of buyer placed at, with a part per vendor, the
// payment reference psp and, if creator is not empty, attributed to it.
func (s *search) place(id, buyer, creator, psp string, at time.Time, vendors ...string) {
	s.t.Helper()
	e := &orderv1.OrderPlaced{OrderId: id, BuyerId: buyer, Total: &typev1.Money{CurrencyCode: "EUR", AmountMinor: 100},
		Payment:   &orderv1.Payment{PspReference: psp, Amount: &typev1.Money{CurrencyCode: "EUR", AmountMinor: 100}},
		PlaceTime: timestamppb.New(at)}
	for _, v := range vendors {
		e.Parts = append(e.Parts, &orderv1.VendorPart{VendorId: v, Subtotal: &typev1.Money{CurrencyCode: "EUR", AmountMinor: 100}})
		e.Lines = append(e.Lines, &orderv1.OrderLine{LineId: v, VendorId: v, CreatorId: creator})
	}
	if creator != "" {
		e.Attribution = &orderv1.AttributionRecord{AffiliateLinkId: "l-" + creator, CreatorId: creator, TouchTime: timestamppb.New(at)}
	}
	s.apply(id, e)
}

// ship folds the fulfilment service's FulfilmentShipped of order's part.
func (s *search) ship(orderID, vendor, carrier, number string) {
	s.t.Helper()
	s.fulPos++
	ed, err := es.Encode(&fulfilmentv1.FulfilmentShipped{FulfilmentId: "f" + orderID + vendor, OrderId: orderID, VendorId: vendor,
		ShipmentId: "s1", Carrier: carrier, TrackingNumber: number})
	if err != nil {
		s.t.Fatal(err)
	}
	ed.ID = fmt.Sprint("f", s.fulPos)
	s.m.Tracking().Apply(eventstore.RecordedEvent{EventData: ed, Stream: "fulfilment-f" + orderID + vendor, Position: s.fulPos, Revision: 1})
}

// all lists q in pages of size, newest first, as order ids.
func (s *search) all(q app.ListQuery, size int) []string {
	s.t.Helper()
	var got []string
	for pages := 0; ; pages++ {
		q.PageSize = size
		p, err := s.m.List(q)
		if err != nil {
			s.t.Fatalf("%+v: %v", q, err)
		}
		if len(p.Orders) > size {
			s.t.Fatalf("%+v: a page of %d", q, len(p.Orders))
		}
		for _, o := range p.Orders {
			got = append(got, o.Order.ID)
		}
		if p.NextPageToken == "" {
			return got
		}
		if pages > 20 {
			s.t.Fatalf("%+v: paging does not end", q)
		}
		q.PageToken = p.NextPageToken
	}
}

// searchFixture: ten orders a minute apart (o0 oldest), two buyers, two
// vendors, creators on some, a PSP reference each (o7 and o8 share one),
// three shipped with tracking numbers; o3 confirmed, o6 cancelled.
func searchFixture(t *testing.T) (*search, time.Time) {
	s := newSearch(t)
	return s, fillSearch(s)
}

// fillSearch folds the search tests' orders and shipments into s and
// returns the first order's place time.
func fillSearch(s *search) time.Time {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	creators := []string{"lea", "", "max", "lea", "", "lea", "max", "", "lea", ""}
	for i := range 10 {
		id := fmt.Sprintf("o%d", i)
		psp := fmt.Sprintf("psp-%d", i)
		if i == 8 {
			psp = "psp-7"
		}
		vendors := []string{[]string{"acme", "bolt"}[i%2]}
		if i == 4 {
			vendors = []string{"acme", "bolt"}
		}
		s.place(id, []string{"ada", "bob"}[i%2], creators[i], psp, t0.Add(time.Duration(i)*time.Minute), vendors...)
	}
	s.apply("o3", &orderv1.OrderConfirmed{OrderId: "o3"})
	s.apply("o6", &orderv1.OrderCancelled{OrderId: "o6", Reason: "changed my mind"})
	s.ship("o2", "acme", "dhl", "1234567890")
	s.ship("o4", "acme", "ups", "1Z999AA10123456784")
	s.ship("o4", "bolt", "ups", "1Z999AA10123456785")
	s.ship("o9", "bolt", "dhl", "1234567891")
	return t0
}

func TestReadModelSearch(t *testing.T) {
	t.Parallel()
	s, t0 := searchFixture(t)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	for name, tc := range map[string]struct {
		q    app.ListQuery
		want []string
	}{
		"no filter: every order, newest first": {app.ListQuery{}, []string{"o9", "o8", "o7", "o6", "o5", "o4", "o3", "o2", "o1", "o0"}},
		"buyer":                                {app.ListQuery{BuyerID: "ada"}, []string{"o8", "o6", "o4", "o2", "o0"}},
		"vendor":                               {app.ListQuery{VendorID: "bolt"}, []string{"o9", "o7", "o5", "o4", "o3", "o1"}},
		"creator":                              {app.ListQuery{CreatorID: "lea"}, []string{"o8", "o5", "o3", "o0"}},
		"unknown creator":                      {app.ListQuery{CreatorID: "nobody"}, nil},
		"PSP reference":                        {app.ListQuery{PSPReference: "psp-5"}, []string{"o5"}},
		"PSP reference of two orders":          {app.ListQuery{PSPReference: "psp-7"}, []string{"o8", "o7"}},
		"PSP reference is exact":               {app.ListQuery{PSPReference: "psp"}, nil},
		"tracking number":                      {app.ListQuery{Carrier: "dhl", TrackingNumber: "1234567890"}, []string{"o2"}},
		"tracking number as people write":      {app.ListQuery{Carrier: "ups", TrackingNumber: "1z 999-aa1 0123456785"}, []string{"o4"}},
		"tracking number of another carrier":   {app.ListQuery{Carrier: "ups", TrackingNumber: "1234567890"}, nil},
		"tracking number not shipped":          {app.ListQuery{Carrier: "dhl", TrackingNumber: "9999999999"}, nil},
		"from, inclusive":                      {app.ListQuery{From: at(7)}, []string{"o9", "o8", "o7"}},
		"to, exclusive":                        {app.ListQuery{To: at(2)}, []string{"o1", "o0"}},
		"range":                                {app.ListQuery{From: at(3), To: at(6)}, []string{"o5", "o4", "o3"}},
		"range between orders":                 {app.ListQuery{From: at(3).Add(time.Second), To: at(4)}, nil},
		"range after every order":              {app.ListQuery{From: at(60)}, nil},
		"state":                                {app.ListQuery{Status: domain.StatusCancelled}, []string{"o6"}},
		"creator and range":                    {app.ListQuery{CreatorID: "lea", From: at(1), To: at(8)}, []string{"o5", "o3"}},
		"creator and buyer":                    {app.ListQuery{CreatorID: "max", BuyerID: "ada"}, []string{"o6", "o2"}},
		"creator and state":                    {app.ListQuery{CreatorID: "lea", Status: domain.StatusConfirmed}, []string{"o3"}},
		"buyer and vendor":                     {app.ListQuery{BuyerID: "ada", VendorID: "bolt"}, []string{"o4"}},
		"vendor and tracking number":           {app.ListQuery{VendorID: "acme", Carrier: "dhl", TrackingNumber: "1234567891"}, nil},
		"buyer and tracking number":            {app.ListQuery{BuyerID: "bob", Carrier: "dhl", TrackingNumber: "1234567891"}, []string{"o9"}},
		"PSP reference and buyer":              {app.ListQuery{PSPReference: "psp-7", BuyerID: "bob"}, []string{"o7"}},
		"PSP reference and range":              {app.ListQuery{PSPReference: "psp-7", From: at(8)}, []string{"o8"}},
		"vendor, state and range":              {app.ListQuery{VendorID: "acme", Status: domain.StatusPending, From: at(2), To: at(9)}, []string{"o8", "o4", "o2"}},
	} {
		t.Run(name, func(t *testing.T) {
			for _, size := range []int{1, 2, 50} {
				if got := s.all(tc.q, size); !slices.Equal(got, tc.want) {
					t.Fatalf("pages of %d: %v, want %v", size, got, tc.want)
				}
			}
		})
	}
}

// A page token is the query's: with any filter changed it is refused as
// bad input on page_token.
func TestReadModelSearchTokens(t *testing.T) {
	t.Parallel()
	s, t0 := searchFixture(t)
	base := app.ListQuery{From: t0, PageSize: 2}
	p, err := s.m.List(base)
	if err != nil || p.NextPageToken == "" {
		t.Fatalf("%+v, %v", p, err)
	}
	for name, q := range map[string]app.ListQuery{
		"creator":         {CreatorID: "lea"},
		"PSP reference":   {PSPReference: "psp-7"},
		"tracking number": {Carrier: "dhl", TrackingNumber: "1234567890"},
		"from":            {From: t0.Add(time.Second)},
		"to":              {From: t0, To: t0.Add(time.Hour)},
		"no filter":       {},
		"state":           {From: t0, Status: domain.StatusPending},
	} {
		q.PageToken, q.PageSize = p.NextPageToken, 2
		_, err := s.m.List(q)
		var invalid *fault.InvalidError
		if !errors.As(err, &invalid) || invalid.Violations[0].Field != "page_token" {
			t.Errorf("%s changed: %v, want bad input on page_token", name, err)
		}
	}
	base.PageToken = p.NextPageToken
	if _, err := s.m.List(base); err != nil {
		t.Fatalf("the same query with its token: %v", err)
	}
}

// The search's indexes survive a restart: every query lists the same
// after the store of the order read model and its tracking index is
// reopened.
func TestReadModelSearchRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := &search{t: t, revs: map[string]uint64{}}
	var db *kv.DB
	s.m, db = attached(t, dir)
	t0 := fillSearch(s)
	wants := map[int][]string{}
	queries := []app.ListQuery{{}, {CreatorID: "lea"}, {CreatorID: "max"}, {PSPReference: "psp-7"},
		{Carrier: "ups", TrackingNumber: "1Z999AA10123456784"}, {Carrier: "dhl", TrackingNumber: "1234567891"},
		{From: t0.Add(2 * time.Minute), To: t0.Add(5 * time.Minute)}}
	for i, q := range queries {
		wants[i] = s.all(q, 3)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	restored := &search{t: t, revs: map[string]uint64{}}
	restored.m, db = attached(t, dir)
	if at, _, err := mustSpace(t, db, "order/tracking").State(); err != nil || at != s.fulPos {
		t.Fatalf("tracking index reopened at position %d (%v), want %d", at, err, s.fulPos)
	}
	for i, q := range queries {
		want := wants[i]
		if got := restored.all(q, 3); !slices.Equal(got, want) || len(want) == 0 {
			t.Errorf("%+v: restored lists %v, want %v", q, got, want)
		}
	}
	// Later events fold on top of the restored state.
	restored.pos, restored.revs = s.pos, s.revs
	restored.place("o10", "ada", "lea", "psp-10", t0.Add(time.Hour), "acme")
	restored.fulPos = s.fulPos
	restored.ship("o10", "acme", "dhl", "1234567899")
	if got := restored.all(app.ListQuery{CreatorID: "lea"}, 2); !slices.Equal(got, []string{"o10", "o8", "o5", "o3", "o0"}) {
		t.Errorf("creator after a new order: %v", got)
	}
	if got := restored.all(app.ListQuery{Carrier: "dhl", TrackingNumber: "1234567899"}, 2); !slices.Equal(got, []string{"o10"}) {
		t.Errorf("tracking number after a new shipment: %v", got)
	}
	if got := restored.all(app.ListQuery{}, 4); len(got) != 11 || got[0] != "o10" {
		t.Errorf("every order after a new one: %v", got)
	}
}

func mustSpace(t *testing.T, db *kv.DB, name string) *kv.Space {
	t.Helper()
	s, err := db.Space(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The read model keeps the orders it used last in memory in front of its
// store: what Final hands out is a copy, which later events do not change,
// and the events fold onto the order as stored, whether it is cached or
// read back from the store by a read model that was reopened.
func TestReadModelFinalIsACopy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m, db := attached(t, dir)
	pos := uint64(0)
	apply := func(m *app.ReadModel, rev uint64, msg proto.Message) {
		pos++
		ed, err := es.Encode(msg)
		if err != nil {
			t.Fatal(err)
		}
		ed.ID = fmt.Sprint(pos)
		m.Apply(eventstore.RecordedEvent{EventData: ed, Stream: "order-o1", Position: pos, Revision: rev})
	}
	eur := func(n int64) *typev1.Money { return &typev1.Money{CurrencyCode: "EUR", AmountMinor: n} }
	apply(m, 0, &orderv1.OrderPlaced{OrderId: "o1", BuyerId: "b1", Total: eur(200),
		Parts:     []*orderv1.VendorPart{{VendorId: "v1", Subtotal: eur(100)}, {VendorId: "v2", Subtotal: eur(100)}},
		PlaceTime: timestamppb.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))})
	apply(m, 1, &orderv1.OrderConfirmed{OrderId: "o1", BuyerId: "b1"})
	kept, rev, ok := m.Final("o1")
	if !ok || rev != 1 || kept.Status != domain.StatusConfirmed {
		t.Fatalf("Final = %v rev %d, %v; want confirmed at revision 1", kept.Status, rev, ok)
	}
	apply(m, 2, &orderv1.OrderPartShipped{OrderId: "o1", VendorId: "v1", ShipmentId: "s1"})
	if kept.Parts[0].Shipped {
		t.Error("the order Final handed out changed when a later event was applied")
	}
	now, rev, _ := m.Final("o1")
	if !now.Parts[0].Shipped || now.Parts[1].Shipped || rev != 2 {
		t.Errorf("after v1 shipped: parts shipped %v, %v at revision %d; want true, false at 2", now.Parts[0].Shipped, now.Parts[1].Shipped, rev)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	reopened, _ := attached(t, dir) // nothing cached: the store answers
	apply(reopened, 3, &orderv1.OrderPartShipped{OrderId: "o1", VendorId: "v2", ShipmentId: "s2"})
	if o, rev, _ := reopened.Final("o1"); !o.Parts[0].Shipped || !o.Parts[1].Shipped || rev != 3 {
		t.Errorf("reopened, after v2 shipped: parts shipped %v, %v at revision %d; want both at 3", o.Parts[0].Shipped, o.Parts[1].Shipped, rev)
	}
}
