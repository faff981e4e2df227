package app

import (
	"encoding/gob"
	"fmt"
	"io"
	"sync"

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
	DefaultSize: DefaultPageSize, MaxSize: MaxPageSize, Filters: "buyer, vendor or state",
}

// OrderView is an order as read, with its store revision.
type OrderView struct {
	Order    domain.Order
	Revision uint64
}

// ListQuery selects a buyer's or a vendor's orders, newest first.
type ListQuery struct {
	BuyerID  string
	VendorID string
	// Status filters; StatusNone means every status.
	Status    domain.Status
	PageSize  int
	PageToken string
}

// Page is one page of orders.
type Page struct {
	Orders        []OrderView
	NextPageToken string
}

// ReadModel indexes every order by buyer and by vendor, newest first,
// projected from the order store (so it sees orders placed by any process).
// It is the query side of ListOrders; GetOrder reads the aggregate itself.
type ReadModel struct {
	pos      *projection.Position
	onChange func(orderID string, status domain.Status)

	mu       sync.RWMutex
	orders   map[string]*entry
	byBuyer  map[string][]*entry
	byVendor map[string][]*entry
}

type entry struct {
	order domain.Order
	rev   uint64
}

// NewReadModel returns an empty read model; onChange (may be nil) is called
// after each event with the order it changed and the order's status then.
func NewReadModel(onChange func(orderID string, status domain.Status)) *ReadModel {
	return &ReadModel{pos: projection.New(), onChange: onChange, orders: map[string]*entry{},
		byBuyer: map[string][]*entry{}, byVendor: map[string][]*entry{}}
}

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
		m.byBuyer[en.order.BuyerID] = projection.Insert(m.byBuyer[en.order.BuyerID], en, pages.Key)
		for _, p := range en.order.Parts {
			m.byVendor[p.VendorID] = projection.Insert(m.byVendor[p.VendorID], en, pages.Key)
		}
	}
	m.mu.Unlock()
	if m.onChange != nil {
		m.onChange(id, status)
	}
}

// List returns one page of q.
func (m *ReadModel) List(q ListQuery) (Page, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	list := m.byBuyer[q.BuyerID]
	if q.BuyerID == "" {
		list = m.byVendor[q.VendorID]
	}
	query := fmt.Sprintf("b=%s|v=%s|s=%d", q.BuyerID, q.VendorID, q.Status)
	found, next, err := pages.Page(list, query, q.PageSize, q.PageToken, func(en *entry) bool {
		return q.Status == domain.StatusNone || en.order.Status == q.Status
	})
	page := Page{NextPageToken: next}
	for _, en := range found {
		page.Orders = append(page.Orders, OrderView{Order: en.order.Clone(), Revision: en.rev})
	}
	return page, err
}

// The read model's checkpoint (platform.Checkpointer): every order with
// its revision, and the buyers' and vendors' lists as order IDs in their
// order, gob-encoded.
type savedOrders struct {
	Orders   []savedOrder
	ByBuyer  map[string][]string
	ByVendor map[string][]string
}

type savedOrder struct {
	Order    domain.Order
	Revision uint64
}

// Version names the checkpoint's shape; bump it when savedOrders or
// domain.Order changes.
func (m *ReadModel) Version() string { return "orders-1" }

// Save writes the read model's state.
func (m *ReadModel) Save(w io.Writer) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := savedOrders{Orders: make([]savedOrder, 0, len(m.orders)), ByBuyer: ids(m.byBuyer), ByVendor: ids(m.byVendor)}
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
	for _, o := range s.Orders {
		orders[o.Order.ID] = &entry{order: o.Order, rev: o.Revision}
	}
	byBuyer, err := entries(s.ByBuyer, orders)
	if err != nil {
		return err
	}
	byVendor, err := entries(s.ByVendor, orders)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.orders, m.byBuyer, m.byVendor = orders, byBuyer, byVendor
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
