package app

import (
	"bytes"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/kv"
	"github.com/custody/custody/pkg/lru"
	"github.com/custody/custody/pkg/projection"
	"github.com/custody/custody/services/order/domain"
)

// Page sizes of ListOrders.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// listFilters names ListOrders' filters in the error a page token of
// another query gets.
const listFilters = "buyer, vendor, creator, PSP reference, tracking number, place time range or state"

// OrderView is an order as read, with its store revision.
type OrderView struct {
	Order    domain.Order
	Revision uint64
}

// ListQuery selects the orders that match every filter given, newest
// first; with no filter, every order.
type ListQuery struct {
	BuyerID   string
	VendorID  string
	CreatorID string
	// PSPReference matches the payment's reference exactly.
	PSPReference string
	// Carrier and TrackingNumber (both or neither) match the orders a
	// part of which shipped with that tracking number (TrackingIndex).
	Carrier, TrackingNumber string
	// From (inclusive) and To (exclusive) bound the place time; zero:
	// unbounded.
	From, To time.Time
	// Status filters; StatusNone means every status.
	Status    domain.Status
	PageSize  int
	PageToken string
}

// query identifies q's filters in its page tokens.
func (q ListQuery) query() string {
	unix := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return fmt.Sprint(t.UnixNano())
	}
	return fmt.Sprintf("b=%q|v=%q|c=%q|p=%q|t=%q/%q|f=%s|u=%s|s=%d", q.BuyerID, q.VendorID, q.CreatorID, q.PSPReference,
		q.Carrier, NormaliseTrackingNumber(q.TrackingNumber), unix(q.From), unix(q.To), q.Status)
}

// Page is one page of orders.
type Page struct {
	Orders        []OrderView
	NextPageToken string
}

// ReadModel indexes every order newest first: all of them, and by buyer,
// vendor, creator and PSP reference, projected from the order store (so it
// sees orders placed by any process); its TrackingIndex, projected from the
// fulfilment store, adds the tracking numbers. It is the query side of
// ListOrders; GetOrder reads the aggregate itself.
//
// It keeps nothing in the heap: orders and lists live in its space of the
// process's read-model store (platform.Stored, pkg/kv), each event's
// changes written with the event's position in one batch:
//
//	o/<order id>                          the order and its revision (codec.go)
//	l/<list><owner>/<place time><order id> an entry of a list, newest last
//
// where <list> is one byte (a all, b buyer, v vendor, c creator, p PSP
// reference), <owner> is length-prefixed, and <place time> is the big-endian
// nanoseconds since 1970 with the sign bit flipped, so keys sort by time.
type ReadModel struct {
	pos      *projection.Position
	onChange func(orderID string, status domain.Status)
	tracking *TrackingIndex

	space atomic.Pointer[kv.Space] // set by Attach, before any event

	// The orders used last, as the space has them: Apply writes through
	// it, so the orders in flight are not read from the store and decoded
	// again at every event and wait.
	recent *lru.Cache[string, storedOrder]
}

// cacheSize bounds ReadModel.recent: a few seconds of orders at thousands
// a second (an order is about 1.5 KB in memory).
const cacheSize = 4096

// NewReadModel returns a read model with no space yet (Attach gives it
// one); onChange (may be nil) is called after each event with the order
// it changed and the order's status then.
func NewReadModel(onChange func(orderID string, status domain.Status)) *ReadModel {
	return &ReadModel{pos: projection.New(), onChange: onChange, tracking: NewTrackingIndex(),
		recent: lru.New[string, storedOrder](cacheSize)}
}

// Version names the shape of what the read model stores
// (platform.Stored); bump it when the keys or the stored order change.
func (m *ReadModel) Version() string { return "orders-kv-4" }

// Attach gives the read model its space (platform.Stored).
func (m *ReadModel) Attach(s *kv.Space) error {
	m.recent.Clear()
	m.space.Store(s)
	return nil
}

// Tracking is the index of tracking numbers the read model lists by, fed
// by the fulfilment store (a projection of its own, with its own position
// and checkpoint).
func (m *ReadModel) Tracking() *TrackingIndex { return m.tracking }

// Position is the read model's progress through the order store: Apply
// advances it; whoever folds the model (the platform's runtime) marks it
// ready once caught up.
func (m *ReadModel) Position() *projection.Position { return m.pos }

// storedOrder is the value of o/<order id>.
type storedOrder struct {
	Order    domain.Order
	Revision uint64
}

func orderKey(id string) []byte { return append([]byte("o/"), id...) }

// Lists, by their byte in the keys.
const (
	listAll     = 'a'
	listBuyer   = 'b'
	listVendor  = 'v'
	listCreator = 'c'
	listPSP     = 'p'
)

// get reads an order; ok false when the read model does not have it.
func get(r interface {
	Get([]byte) ([]byte, bool, error)
}, id string) (storedOrder, bool, error) {
	v, ok, err := r.Get(orderKey(id))
	if err != nil || !ok {
		return storedOrder{}, false, err
	}
	so, err := decodeOrder(v)
	if err != nil {
		return storedOrder{}, false, fmt.Errorf("order read model: order %s: %w", id, err)
	}
	return so, true, nil
}

// order reads an order from the cache or the space; the caller may change
// what it gets (a copy). Only Apply fills the cache, after its commit: a
// reader that cached what it read could put back an order older than the
// one Apply has just stored, and the next event would fold onto it.
func (m *ReadModel) order(r interface {
	Get([]byte) ([]byte, bool, error)
}, id string) (storedOrder, bool, error) {
	if so, ok := m.recent.Get(id); ok {
		so.Order = so.Order.Clone()
		return so, true, nil
	}
	return get(r, id)
}

// Has reports whether the read model has the order.
func (m *ReadModel) Has(id string) bool {
	if _, ok := m.recent.Get(id); ok {
		return true
	}
	s := m.space.Load()
	if s == nil {
		return false
	}
	_, ok, err := m.order(s, id)
	return ok && err == nil
}

// Final is the order as the read model has it, if it has it confirmed,
// rejected or further.
func (m *ReadModel) Final(id string) (domain.Order, uint64, bool) {
	s := m.space.Load()
	if s == nil {
		return domain.Order{}, 0, false
	}
	so, ok, err := m.order(s, id)
	if err != nil || !ok || !so.Order.Status.Final() {
		return domain.Order{}, 0, false
	}
	return so.Order, so.Revision, true
}

// Apply applies one event of the order store. A read model without a space
// cannot apply anything: that is a wiring mistake, and it panics.
func (m *ReadModel) Apply(e eventstore.RecordedEvent) {
	defer m.pos.Advance(e.Position)
	s := m.space.Load()
	b := s.Batch()
	defer b.Discard()
	agg, id, err := eventstore.SplitStream(e.Stream)
	var ev es.Event
	if err == nil && agg == domain.Decider.Aggregate {
		ev, err = es.Decode(e)
	}
	if err != nil || agg != domain.Decider.Aggregate {
		m.commit(b, e.Position) // nothing of ours: the position still moves
		return
	}
	var so storedOrder
	ok := false
	if e.Revision > 0 { // the first event of an order's stream finds nothing
		so, ok, err = m.order(b, id)
		if err != nil {
			panic(err) // the store cannot be read: following cannot go on correctly
		}
	}
	if !ok {
		so.Order = domain.Decider.Initial(id)
	}
	wasPlaced := so.Order.Status != domain.StatusNone
	so.Order = domain.Evolve(so.Order, ev.Payload)
	so.Revision = e.Revision
	status := so.Order.Status
	if so.Order.Status != domain.StatusNone {
		v, err := encodeOrder(so)
		if err != nil {
			panic(err)
		}
		_ = b.Set(orderKey(id), v)
		if !wasPlaced {
			sk := kv.TimeKey(so.Order.PlaceTime, id)
			index := func(list byte, owner string) {
				_ = b.Set(append(kv.ListPrefix(list, owner), sk...), nil)
			}
			index(listAll, "")
			index(listBuyer, so.Order.BuyerID)
			for _, p := range so.Order.Parts {
				index(listVendor, p.VendorID)
			}
			if c := creatorOf(so.Order); c != "" {
				index(listCreator, c)
			}
			if ref := so.Order.Payment.PSPReference; ref != "" {
				index(listPSP, ref)
			}
		}
	}
	m.commit(b, e.Position)
	if so.Order.Status != domain.StatusNone {
		m.recent.Put(id, so)
	}
	if m.onChange != nil {
		m.onChange(id, status)
	}
}

func (m *ReadModel) commit(b *kv.Batch, pos uint64) {
	if err := b.Commit(pos); err != nil {
		panic(fmt.Errorf("order read model: %w", err))
	}
}

// creatorOf is the creator an order is attributed to, if any.
func creatorOf(o domain.Order) string {
	if o.Attribution == nil {
		return ""
	}
	return o.Attribution.CreatorID
}

// List returns one page of q. It walks the shortest of the lists q's
// filters select (a tracking number's or a PSP reference's orders are one
// or a few; a buyer's, vendor's or creator's are theirs; no such filter:
// every order), newest first from the page token's order, within the place
// time range, and keeps the orders that match the other filters.
func (m *ReadModel) List(q ListQuery) (Page, error) {
	size := projection.PageSize(q.PageSize, DefaultPageSize, MaxPageSize)
	after := projection.Key{}
	if q.PageToken != "" {
		f, err := projection.ParsePageToken(q.PageToken, q.query(), listFilters, 2)
		if err != nil {
			return Page{}, err
		}
		nanos, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return Page{}, projection.BadPageToken("not a page token of this service")
		}
		after = projection.Key{Time: time.Unix(0, nanos).UTC(), ID: f[1]}
	}
	s := m.space.Load()
	if s == nil {
		return Page{}, nil
	}
	keep := func(so storedOrder) bool {
		o := so.Order
		return (q.Status == domain.StatusNone || o.Status == q.Status) &&
			(q.BuyerID == "" || o.BuyerID == q.BuyerID) &&
			(q.VendorID == "" || o.HasVendor(q.VendorID)) &&
			(q.CreatorID == "" || creatorOf(o) == q.CreatorID) &&
			(q.PSPReference == "" || o.Payment.PSPReference == q.PSPReference) &&
			(q.From.IsZero() || !o.PlaceTime.Before(q.From)) &&
			(q.To.IsZero() || o.PlaceTime.Before(q.To))
	}
	var found []storedOrder
	more := false
	take := func(so storedOrder) bool { // false: the page is full
		if !keep(so) {
			return true
		}
		if len(found) == size {
			more = true
			return false
		}
		found = append(found, so)
		return true
	}
	var err error
	if q.Carrier != "" || q.TrackingNumber != "" {
		err = m.listTracked(s, q, after, take)
	} else {
		var list []byte
		if list, err = narrowest(s, q); err == nil {
			err = m.listFrom(s, list, q, after, take)
		}
	}
	if err != nil {
		return Page{}, err
	}
	page := Page{}
	for _, so := range found {
		page.Orders = append(page.Orders, OrderView{Order: so.Order, Revision: so.Revision})
	}
	if more {
		last := found[len(found)-1].Order
		page.NextPageToken = projection.PageToken(q.query(), strconv.FormatInt(last.PlaceTime.UnixNano(), 10), last.ID)
	}
	return page, nil
}

// narrowest is the shortest of the lists q's filters select (every order
// if none). The lists are not kept counts of (a count read and written at
// every order was a fifth of a rebuild): each is counted up to a limit
// that grows fourfold until one ends below it, so the work is a few times
// the shortest list, whatever the length of the others.
func narrowest(s *kv.Space, q ListQuery) ([]byte, error) {
	var lists [][]byte
	for _, c := range []struct {
		list  byte
		owner string
	}{{listPSP, q.PSPReference}, {listBuyer, q.BuyerID}, {listVendor, q.VendorID}, {listCreator, q.CreatorID}} {
		if c.owner != "" {
			lists = append(lists, kv.ListPrefix(c.list, c.owner))
		}
	}
	switch len(lists) {
	case 0:
		return kv.ListPrefix(listAll, ""), nil
	case 1:
		return lists[0], nil
	}
	for limit := 64; ; limit *= 4 {
		best, bestN := -1, limit
		for i, l := range lists {
			n := 0
			err := s.Scan(l, kv.PrefixEnd(l), false, func(_, _ []byte) bool { n++; return n < limit })
			if err != nil {
				return nil, err
			}
			if n < bestN {
				best, bestN = i, n
			}
		}
		if best >= 0 {
			return lists[best], nil
		}
	}
}

// listFrom walks the list with prefix newest first, from the order after
// after (zero: the newest), within q's time range, handing each order to
// take until it returns false.
func (m *ReadModel) listFrom(s *kv.Space, prefix []byte, q ListQuery, after projection.Key, take func(storedOrder) bool) error {
	from := bytes.Clone(prefix)
	to := kv.PrefixEnd(prefix)
	if !q.From.IsZero() {
		from = append(bytes.Clone(prefix), kv.TimeKey(q.From, "")...)
	}
	if !q.To.IsZero() {
		to = append(bytes.Clone(prefix), kv.TimeKey(q.To, "")...)
	}
	if !after.Time.IsZero() || after.ID != "" {
		if k := append(bytes.Clone(prefix), kv.TimeKey(after.Time, after.ID)...); bytes.Compare(k, to) < 0 {
			to = k // exclusive: the token's order itself was on the last page
		}
	}
	var ferr error
	err := s.Scan(from, to, true, func(k, _ []byte) bool {
		id := string(k[len(prefix)+8:])
		so, ok, err := get(s, id)
		if err != nil {
			ferr = err
			return false
		}
		return !ok || take(so)
	})
	if err == nil {
		err = ferr
	}
	return err
}

// listTracked hands take the orders shipped with q's tracking number,
// newest first, after after.
func (m *ReadModel) listTracked(s *kv.Space, q ListQuery, after projection.Key, take func(storedOrder) bool) error {
	var list []storedOrder
	ids, err := m.tracking.Orders(q.Carrier, q.TrackingNumber)
	if err != nil {
		return err
	}
	for _, id := range ids {
		so, ok, err := get(s, id)
		if err != nil {
			return err
		}
		if ok {
			list = append(list, so)
		}
	}
	key := func(so storedOrder) projection.Key { return projection.Key{Time: so.Order.PlaceTime, ID: so.Order.ID} }
	projection.Sort(list, key) // oldest first
	paging := !after.Time.IsZero() || after.ID != ""
	for i := len(list) - 1; i >= 0; i-- {
		if paging && !after.Before(key(list[i])) {
			continue
		}
		if !take(list[i]) {
			return nil
		}
	}
	return nil
}
