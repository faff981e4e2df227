package app

import (
	"encoding/base64"
	"fmt"
	"sort"
	"strconv"
	"strings"
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
	onChange func(orderID string)

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
// after each event with the order it changed.
func NewReadModel(onChange func(orderID string)) *ReadModel {
	return &ReadModel{pos: projection.New(), onChange: onChange, orders: map[string]*entry{},
		byBuyer: map[string][]*entry{}, byVendor: map[string][]*entry{}}
}

// Position is the read model's progress through the order store: Apply
// advances it; whoever folds the model (the platform's runtime) marks it
// ready once caught up.
func (m *ReadModel) Position() *projection.Position { return m.pos }

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
	if !wasPlaced && en.order.Status != domain.StatusNone {
		m.orders[id] = en
		m.byBuyer[en.order.BuyerID] = insert(m.byBuyer[en.order.BuyerID], en)
		for _, p := range en.order.Parts {
			m.byVendor[p.VendorID] = insert(m.byVendor[p.VendorID], en)
		}
	}
	m.mu.Unlock()
	if m.onChange != nil {
		m.onChange(id)
	}
}

// newer reports whether a lists before b: newest first, ties by id.
func newer(a, b *domain.Order) bool {
	if !a.PlaceTime.Equal(b.PlaceTime) {
		return a.PlaceTime.After(b.PlaceTime)
	}
	return a.ID > b.ID
}

func insert(list []*entry, en *entry) []*entry {
	i := sort.Search(len(list), func(i int) bool { return newer(&en.order, &list[i].order) })
	list = append(list, nil)
	copy(list[i+1:], list[i:])
	list[i] = en
	return list
}

// List returns one page of q.
func (m *ReadModel) List(q ListQuery) (Page, error) {
	key := queryKey(q)
	size := q.PageSize
	switch {
	case size == 0:
		size = DefaultPageSize
	case size > MaxPageSize:
		size = MaxPageSize
	}
	var after *domain.Order
	if q.PageToken != "" {
		c, err := decodeToken(q.PageToken, key)
		if err != nil {
			var v domain.Violations
			v.Add("page_token", "%v", err)
			return Page{}, v.Err()
		}
		after = &c
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	list := m.byBuyer[q.BuyerID]
	if q.BuyerID == "" {
		list = m.byVendor[q.VendorID]
	}
	start := 0
	if after != nil {
		start = sort.Search(len(list), func(i int) bool { return newer(after, &list[i].order) })
	}
	var page Page
	for _, en := range list[start:] {
		if q.Status != domain.StatusNone && en.order.Status != q.Status {
			continue
		}
		if len(page.Orders) == size {
			last := page.Orders[size-1].Order
			page.NextPageToken = encodeToken(key, last)
			break
		}
		page.Orders = append(page.Orders, OrderView{Order: en.order.Clone(), Revision: en.rev})
	}
	return page, nil
}

// Page tokens are opaque to clients: the query they belong to and the last
// order returned (keyset paging, so orders placed meanwhile neither repeat
// nor get skipped).
func queryKey(q ListQuery) string {
	return fmt.Sprintf("b=%s|v=%s|s=%d", q.BuyerID, q.VendorID, q.Status)
}

func encodeToken(key string, last domain.Order) string {
	raw := strings.Join([]string{"1", key, strconv.FormatInt(last.PlaceTime.UnixNano(), 10), last.ID}, "\x00")
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeToken(tok, key string) (domain.Order, error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return domain.Order{}, fmt.Errorf("not a page token of this service")
	}
	parts := strings.Split(string(raw), "\x00")
	if len(parts) != 4 || parts[0] != "1" {
		return domain.Order{}, fmt.Errorf("not a page token of this service")
	}
	if parts[1] != key {
		return domain.Order{}, fmt.Errorf("the page token belongs to a different query (buyer, vendor or state changed)")
	}
	nanos, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return domain.Order{}, fmt.Errorf("not a page token of this service")
	}
	return domain.Order{ID: parts[3], PlaceTime: time.Unix(0, nanos)}, nil
}
