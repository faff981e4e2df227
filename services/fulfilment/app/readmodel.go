package app

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/projection"
	"github.com/custody/custody/services/fulfilment/domain"
)

// Page sizes of ListFulfilments.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// pages pages the read model's lists, newest first. A fulfilment's place
// (its request time and id) never changes.
var pages = projection.Newest[*View]{
	Key: func(v *View) projection.Key {
		return projection.Key{Time: v.Fulfilment.RequestTime, ID: v.Fulfilment.ID}
	},
	DefaultSize: DefaultPageSize, MaxSize: MaxPageSize, Filters: "vendor, order or state",
}

// View is a fulfilment as read, with its store revision.
type View struct {
	Fulfilment domain.Fulfilment
	Revision   uint64
}

// ListQuery selects a vendor's or an order's fulfilments (or both: the
// vendor's fulfilment of the order), newest first.
type ListQuery struct {
	VendorID string
	OrderID  string
	// Status filters; StatusNone means every status.
	Status    domain.Status
	PageSize  int
	PageToken string
}

// Page is one page of fulfilments.
type Page struct {
	Fulfilments   []View
	NextPageToken string
}

// Change is one change of a fulfilment, as watchers see it: the position
// of the event in the store (the watch cursor), its type and the
// fulfilment after it.
type Change struct {
	Position  uint64
	EventType string
	View      View
}

// ReadModel holds every fulfilment, indexed by vendor and by order, projected
// from the fulfilment store (so it sees what any process wrote). It is the
// query side of ListFulfilments, the source of WatchFulfilments' snapshots
// and live changes, and tells the deadline scheduler about every change.
//
// States are shared, not copied: domain.Evolve never changes memory a state
// shares with its predecessor, so a View handed out stays as it was.
type ReadModel struct {
	pos      *projection.Position
	onChange func(View)

	mu       sync.RWMutex
	applied  uint64
	entries  map[string]*View
	byVendor map[string][]*View
	byOrder  map[string][]*View
	watchers map[string]map[*watcher]struct{}
}

// watcher receives one vendor's changes. When its buffer is full it is
// dropped (ch closed, behind set): a watcher that cannot keep up ends its
// stream rather than hold the projection back or lose changes silently.
type watcher struct {
	ch     chan Change
	behind atomic.Bool
}

// NewReadModel returns an empty read model; onChange (may be nil) is called
// after each fulfilment event with the fulfilment as it now is, outside the
// lock, in store order.
func NewReadModel(onChange func(View)) *ReadModel {
	return &ReadModel{pos: projection.New(), onChange: onChange, entries: map[string]*View{},
		byVendor: map[string][]*View{}, byOrder: map[string][]*View{}, watchers: map[string]map[*watcher]struct{}{}}
}

// Position is the read model's progress: the platform marks it ready once
// the model has caught up, and reads wait on it (read-your-writes).
func (m *ReadModel) Position() *projection.Position { return m.pos }

// Apply applies one event of the fulfilment store.
func (m *ReadModel) Apply(e eventstore.RecordedEvent) {
	var changed *View
	agg, id, err := eventstore.SplitStream(e.Stream)
	if err == nil && agg == domain.Decider.Aggregate {
		if ev, err := es.Decode(e); err == nil {
			changed = m.apply(e, id, ev)
		}
	}
	if changed == nil {
		m.mu.Lock()
		m.applied = e.Position
		m.mu.Unlock()
	}
	m.pos.Advance(e.Position)
	if changed != nil && m.onChange != nil {
		m.onChange(*changed)
	}
}

func (m *ReadModel) apply(e eventstore.RecordedEvent, id string, ev es.Event) *View {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.entries[id]
	if !ok {
		old = &View{Fulfilment: domain.Decider.Initial(id)}
	}
	v := &View{Fulfilment: domain.Evolve(old.Fulfilment, ev.Payload), Revision: e.Revision}
	m.applied = e.Position
	if !v.Fulfilment.Requested {
		return nil
	}
	m.entries[id] = v
	f := v.Fulfilment
	m.byVendor[f.VendorID] = projection.Insert(m.byVendor[f.VendorID], v, pages.Key)
	m.byOrder[f.OrderID] = projection.Insert(m.byOrder[f.OrderID], v, pages.Key)
	c := Change{Position: e.Position, EventType: e.Type, View: *v}
	for w := range m.watchers[f.VendorID] {
		select {
		case w.ch <- c:
		default:
			w.behind.Store(true)
			close(w.ch)
			delete(m.watchers[f.VendorID], w)
		}
	}
	return v
}

// subscribe registers a watcher of vendorID's changes after the position
// applied now, which it returns, with (if snapshot) every current
// fulfilment of the vendor, newest first. Taken under the lock, so no
// change falls between the snapshot and the watcher.
func (m *ReadModel) subscribe(vendorID string, buffer int, snapshot bool) (*watcher, uint64, []View) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := &watcher{ch: make(chan Change, buffer)}
	if m.watchers[vendorID] == nil {
		m.watchers[vendorID] = map[*watcher]struct{}{}
	}
	m.watchers[vendorID][w] = struct{}{}
	var snap []View
	if snapshot {
		for v := range projection.Backward(m.byVendor[vendorID]) {
			snap = append(snap, *v)
		}
	}
	return w, m.applied, snap
}

func (m *ReadModel) unsubscribe(vendorID string, w *watcher) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.watchers[vendorID], w)
	if len(m.watchers[vendorID]) == 0 {
		delete(m.watchers, vendorID)
	}
}

// Watchers is how many watches are open (tests wait on it).
func (m *ReadModel) Watchers() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := 0
	for _, ws := range m.watchers {
		n += len(ws)
	}
	return n
}

// Get returns a fulfilment as projected.
func (m *ReadModel) Get(id string) (View, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	v, ok := m.entries[id]
	if !ok {
		return View{}, false
	}
	return *v, true
}

// Open returns every fulfilment whose ship-by deadline is pending.
func (m *ReadModel) Open() []View {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []View
	for _, v := range m.entries {
		if v.Fulfilment.DeadlinePending() {
			out = append(out, *v)
		}
	}
	return out
}

// List returns one page of q.
func (m *ReadModel) List(q ListQuery) (Page, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	list := m.byOrder[q.OrderID]
	if q.VendorID != "" {
		list = m.byVendor[q.VendorID]
	}
	query := fmt.Sprintf("v=%s|o=%s|s=%d", q.VendorID, q.OrderID, q.Status)
	found, next, err := pages.Page(list, query, q.PageSize, q.PageToken, func(v *View) bool {
		f := &v.Fulfilment
		return (q.OrderID == "" || f.OrderID == q.OrderID) && (q.Status == domain.StatusNone || f.Status() == q.Status)
	})
	page := Page{NextPageToken: next}
	for _, v := range found {
		page.Fulfilments = append(page.Fulfilments, *v)
	}
	return page, err
}
