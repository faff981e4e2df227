package app

import (
	"encoding/gob"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/projection"
	"github.com/custody/custody/services/order/domain"
)

// Page sizes of ListOrders.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// pages pages the read model's lists, newest first.
var pages = projection.Newest[*entry]{
	Key:         func(en *entry) projection.Key { return projection.Key{Time: en.order.PlaceTime, ID: en.order.ID} },
	DefaultSize: DefaultPageSize, MaxSize: MaxPageSize,
	Filters: "buyer, vendor, creator, PSP reference, tracking number, place time range or state",
}

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
// ListOrders; GetOrder reads the aggregate itself. Each order is held once:
// the lists hold pointers to it, and a checkpoint saves them as order ids.
type ReadModel struct {
	pos      *projection.Position
	onChange func(orderID string, status domain.Status)
	tracking *TrackingIndex

	mu        sync.RWMutex
	orders    map[string]*entry
	all       []*entry
	byBuyer   map[string][]*entry
	byVendor  map[string][]*entry
	byCreator map[string][]*entry
	byPSP     map[string][]*entry
}

type entry struct {
	order domain.Order
	rev   uint64
}

// NewReadModel returns an empty read model; onChange (may be nil) is called
// after each event with the order it changed and the order's status then.
func NewReadModel(onChange func(orderID string, status domain.Status)) *ReadModel {
	return &ReadModel{pos: projection.New(), onChange: onChange, tracking: NewTrackingIndex(), orders: map[string]*entry{},
		byBuyer: map[string][]*entry{}, byVendor: map[string][]*entry{}, byCreator: map[string][]*entry{}, byPSP: map[string][]*entry{}}
}

// Tracking is the index of tracking numbers the read model lists by, fed
// by the fulfilment store (a projection of its own, with its own position
// and checkpoint).
func (m *ReadModel) Tracking() *TrackingIndex { return m.tracking }

// Position is the read model's progress through the order store: Apply
// advances it; whoever folds the model (the platform's runtime) marks it
// ready once caught up.
func (m *ReadModel) Position() *projection.Position { return m.pos }

// Has reports whether the read model has the order.
func (m *ReadModel) Has(id string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, ok := m.orders[id]
	return ok
}

// Final is the order as the read model has it (a copy), if it has it
// confirmed, rejected or further.
func (m *ReadModel) Final(id string) (domain.Order, uint64, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	en, ok := m.orders[id]
	if !ok || !en.order.Status.Final() {
		return domain.Order{}, 0, false
	}
	return en.order.Clone(), en.rev, true
}

// Apply applies one event of the order store.
func (m *ReadModel) Apply(e eventstore.RecordedEvent) {
	defer m.pos.Advance(e.Position)
	agg, id, err := eventstore.SplitStream(e.Stream)
	if err != nil || agg != domain.Decider.Aggregate {
		return
	}
	ev, err := es.Decode(e)
	if err != nil {
		return
	}
	m.mu.Lock()
	en, ok := m.orders[id]
	if !ok {
		en = &entry{order: domain.Decider.Initial(id)}
	}
	wasPlaced := en.order.Status != domain.StatusNone
	en.order = domain.Evolve(en.order, ev.Payload)
	en.rev = e.Revision
	status := en.order.Status
	if !wasPlaced && en.order.Status != domain.StatusNone {
		m.orders[id] = en
		m.all = projection.Insert(m.all, en, pages.Key)
		m.byBuyer[en.order.BuyerID] = projection.Insert(m.byBuyer[en.order.BuyerID], en, pages.Key)
		for _, p := range en.order.Parts {
			m.byVendor[p.VendorID] = projection.Insert(m.byVendor[p.VendorID], en, pages.Key)
		}
		if c := creatorOf(en.order); c != "" {
			m.byCreator[c] = projection.Insert(m.byCreator[c], en, pages.Key)
		}
		if ref := en.order.Payment.PSPReference; ref != "" {
			m.byPSP[ref] = projection.Insert(m.byPSP[ref], en, pages.Key)
		}
	}
	m.mu.Unlock()
	if m.onChange != nil {
		m.onChange(id, status)
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
// every order), cut to the place time range, and keeps the orders that
// match the other filters.
func (m *ReadModel) List(q ListQuery) (Page, error) {
	var tracked map[string]bool
	if q.Carrier != "" || q.TrackingNumber != "" {
		tracked = map[string]bool{}
		for _, id := range m.tracking.Orders(q.Carrier, q.TrackingNumber) {
			tracked[id] = true
		}
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	list := m.all
	narrow := func(l []*entry) {
		if len(l) < len(list) {
			list = l
		}
	}
	if tracked != nil {
		list = make([]*entry, 0, len(tracked))
		for id := range tracked {
			if en, ok := m.orders[id]; ok {
				list = append(list, en)
			}
		}
		projection.Sort(list, pages.Key)
	}
	if q.PSPReference != "" {
		narrow(m.byPSP[q.PSPReference])
	}
	if q.BuyerID != "" {
		narrow(m.byBuyer[q.BuyerID])
	}
	if q.VendorID != "" {
		narrow(m.byVendor[q.VendorID])
	}
	if q.CreatorID != "" {
		narrow(m.byCreator[q.CreatorID])
	}
	// The lists are oldest first: the range is a slice of them.
	lo, hi := 0, len(list)
	if !q.From.IsZero() {
		lo = sort.Search(len(list), func(i int) bool { return !list[i].order.PlaceTime.Before(q.From) })
	}
	if !q.To.IsZero() {
		hi = sort.Search(len(list), func(i int) bool { return !list[i].order.PlaceTime.Before(q.To) })
	}
	list = list[lo:max(lo, hi)]
	found, next, err := pages.Page(list, q.query(), q.PageSize, q.PageToken, func(en *entry) bool {
		o := en.order
		return (q.Status == domain.StatusNone || o.Status == q.Status) &&
			(q.BuyerID == "" || o.BuyerID == q.BuyerID) &&
			(q.VendorID == "" || o.HasVendor(q.VendorID)) &&
			(q.CreatorID == "" || creatorOf(o) == q.CreatorID) &&
			(q.PSPReference == "" || o.Payment.PSPReference == q.PSPReference) &&
			(tracked == nil || tracked[o.ID])
	})
	page := Page{NextPageToken: next}
	for _, en := range found {
		page.Orders = append(page.Orders, OrderView{Order: en.order.Clone(), Revision: en.rev})
	}
	return page, err
}

// The read model's checkpoint (platform.Checkpointer): every order with
// its revision, and the buyers', vendors', creators' and PSP references'
// lists as order IDs in their order, gob-encoded. The list of all orders
// is sorted again on loading.
type savedOrders struct {
	Orders    []savedOrder
	ByBuyer   map[string][]string
	ByVendor  map[string][]string
	ByCreator map[string][]string
	ByPSP     map[string][]string
}

type savedOrder struct {
	Order    domain.Order
	Revision uint64
}

// Version names the checkpoint's shape; bump it when savedOrders or
// domain.Order changes.
func (m *ReadModel) Version() string { return "orders-2" }

// Save writes the read model's state.
func (m *ReadModel) Save(w io.Writer) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := savedOrders{Orders: make([]savedOrder, 0, len(m.orders)), ByBuyer: ids(m.byBuyer), ByVendor: ids(m.byVendor),
		ByCreator: ids(m.byCreator), ByPSP: ids(m.byPSP)}
	for _, en := range m.orders {
		s.Orders = append(s.Orders, savedOrder{Order: en.order, Revision: en.rev})
	}
	return gob.NewEncoder(w).Encode(&s)
}

// Load replaces the state of an empty read model with what Save wrote; on
// error it leaves the read model as it was.
func (m *ReadModel) Load(r io.Reader) error {
	var s savedOrders
	if err := gob.NewDecoder(r).Decode(&s); err != nil {
		return err
	}
	orders := make(map[string]*entry, len(s.Orders))
	all := make([]*entry, 0, len(s.Orders))
	for _, o := range s.Orders {
		en := &entry{order: o.Order, rev: o.Revision}
		orders[o.Order.ID] = en
		all = append(all, en)
	}
	projection.Sort(all, pages.Key)
	var lists [4]map[string][]*entry
	for i, saved := range []map[string][]string{s.ByBuyer, s.ByVendor, s.ByCreator, s.ByPSP} {
		l, err := entries(saved, orders)
		if err != nil {
			return err
		}
		lists[i] = l
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.orders, m.all, m.byBuyer, m.byVendor, m.byCreator, m.byPSP = orders, all, lists[0], lists[1], lists[2], lists[3]
	return nil
}

func ids(lists map[string][]*entry) map[string][]string {
	out := make(map[string][]string, len(lists))
	for k, list := range lists {
		l := make([]string, len(list))
		for i, en := range list {
			l[i] = en.order.ID
		}
		out[k] = l
	}
	return out
}

func entries(lists map[string][]string, orders map[string]*entry) (map[string][]*entry, error) {
	out := make(map[string][]*entry, len(lists))
	for k, l := range lists {
		list := make([]*entry, len(l))
		for i, id := range l {
			en, ok := orders[id]
			if !ok {
				return nil, fmt.Errorf("checkpoint lists order %q, which it does not hold", id)
			}
			list[i] = en
		}
		out[k] = list
	}
	return out, nil
}
