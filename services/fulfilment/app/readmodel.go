package app

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/custody/custody/pkg/deadline"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/kv"
	"github.com/custody/custody/pkg/lru"
	"github.com/custody/custody/pkg/projection"
	"github.com/custody/custody/services/fulfilment/domain"
)

// Page sizes of ListFulfilments.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// listFilters names ListFulfilments' filters in the error a page token of
// another query gets.
const listFilters = "vendor, order or state"

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

// ReadModel holds every fulfilment, listed by vendor and by order, projected
// from the fulfilment store (so it sees what any process wrote). It is the
// query side of ListFulfilments, the source of WatchFulfilments' snapshots
// and live changes, tells the deadline scheduler about every change, and is
// the store of the ship-by deadlines it does not hold (deadline.Store).
//
// It keeps no fulfilment in the heap beyond a bounded cache: fulfilments
// and lists live in its space of the process's read-model store
// (platform.Stored, pkg/kv), each event's changes written with the
// event's position in one batch:
//
//	f/<fulfilment id>                        the fulfilment and its revision (codec.go)
//	l/v<vendor>/<request time><fulfilment id> an entry of a vendor's list: its status
//	l/o<order>/<request time><fulfilment id>  an entry of an order's list: its status
//	d/<ship-by time><fulfilment id>           its ship-by deadline is pending (empty value)
//
// where <vendor> and <order> are length-prefixed and <request time> and
// <ship-by time> are the big-endian nanoseconds since 1970 with the sign
// bit flipped, so a list's keys sort oldest first, and the d/ keys in the
// order the deadlines fall due. A list entry's value is the fulfilment's
// status (one byte, rewritten when it changes), so a list filtered by
// status skips the others without reading them. The d/ entries
// (deadline.Index) are where the ship-by scheduler reads the deadlines it
// does not hold in memory (Next): it holds only the earliest, a bounded
// number, also after a restart, which reads no more of them than that.
// An event that opens, moves or closes a deadline sets and deletes its d/
// keys in the event's batch (the old ship-by time is the state's before
// the event, so nothing is read for it).
//
// States are shared, not copied: domain.Evolve never changes memory a state
// shares with its predecessor, so a View handed out stays as it was.
type ReadModel struct {
	pos      *projection.Position
	onChange func(View)

	space atomic.Pointer[kv.Space] // set by Attach, before any event

	// recent are the fulfilments changed last, as the space has them:
	// Apply writes through it (under mu), so the fulfilments in flight are
	// not read and decoded again at every event; readers only look.
	recent *lru.Cache[string, stored]

	// mu orders Apply's commits and watchers against subscribe: applied
	// is the position the space stands at.
	mu       sync.Mutex
	applied  uint64
	watchers map[string]map[*watcher]struct{}
}

// stored is a fulfilment as the space has it, with what Apply needs of it
// again: its address's wire bytes (reused while the address is the same
// message: Evolve never changes one) and its status.
type stored struct {
	View
	addr   []byte
	status domain.Status
}

// cacheSize bounds ReadModel.recent: the fulfilments of a few seconds of
// orders (a fulfilment is one to a few KB in memory).
const cacheSize = 4096

// watcher receives one vendor's changes. When its buffer is full it is
// dropped (ch closed, behind set): a watcher that cannot keep up ends its
// stream rather than hold the projection back or lose changes silently.
type watcher struct {
	ch     chan Change
	behind atomic.Bool
}

// NewReadModel returns a read model with no space yet (Attach gives it
// one); onChange (may be nil) is called after each fulfilment event with
// the fulfilment as it now is, outside the lock, in store order, after the
// event's batch is committed (a stored scheduler relies on that order).
func NewReadModel(onChange func(View)) *ReadModel {
	return &ReadModel{pos: projection.New(), onChange: onChange, recent: lru.New[string, stored](cacheSize),
		watchers: map[string]map[*watcher]struct{}{}}
}

// Version names the shape of what the read model stores
// (platform.Stored); bump it when the keys or the codec change.
//
// fulfilment-kv-2: the d/ keys carry the ship-by time (kv-1's were
// d/<fulfilment id>).
func (m *ReadModel) Version() string { return "fulfilment-kv-2" }

// Attach gives the read model its space (platform.Stored). It reads
// nothing but the space's position: the pending ship-by deadlines stay in
// the space, where the scheduler reads the earliest of them (Next) when it
// runs, one that passed while the process was down first.
func (m *ReadModel) Attach(s *kv.Space) error {
	pos, _, err := s.State()
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.recent.Clear()
	m.applied = pos
	m.space.Store(s)
	m.mu.Unlock()
	return nil
}

// Next returns up to n pending ship-by deadlines, keyed by fulfilment id,
// in (ship-by, id) order after after (nil: from the first): the ship-by
// scheduler's deadline.Store.
func (m *ReadModel) Next(after *deadline.Entry, n int) ([]deadline.Entry, error) {
	s := m.space.Load()
	if s == nil {
		return nil, errors.New("fulfilment read model: not attached")
	}
	return shipByIndex.Next(s, after, n)
}

// Position is the read model's progress: the platform marks it ready once
// the model has caught up, and reads wait on it (read-your-writes).
func (m *ReadModel) Position() *projection.Position { return m.pos }

// Keys.

func viewKey(id string) []byte { return append([]byte("f/"), id...) }

// shipByIndex is the pending ship-by deadlines by due time.
var shipByIndex = deadline.Index{Prefix: []byte("d/")}

// Lists, by their byte in the keys.
const (
	listVendor = 'v'
	listOrder  = 'o'
)

// read reads a fulfilment, and its address's wire bytes, from r (the
// space or a batch); ok false when the read model does not have it.
func read(r interface {
	Get([]byte) ([]byte, bool, error)
}, id string) (View, []byte, bool, error) {
	b, ok, err := r.Get(viewKey(id))
	if err != nil || !ok {
		return View{}, nil, false, err
	}
	v, addr, err := decodeView(b)
	if err != nil {
		return View{}, nil, false, fmt.Errorf("fulfilment read model: fulfilment %s: %w", id, err)
	}
	return v, addr, true, nil
}

// view reads a fulfilment from the cache or s, caching nothing (only
// Apply fills the cache, so it never holds an older state than s).
func (m *ReadModel) view(s *kv.Space, id string) (View, bool, error) {
	if c, ok := m.recent.Get(id); ok {
		return c.View, true, nil
	}
	v, _, ok, err := read(s, id)
	return v, ok, err
}

// Apply applies one event of the fulfilment store. A read model without a
// space cannot apply anything: that is a wiring mistake, and it panics; so
// does a store that cannot be read or written (following cannot go on
// correctly).
func (m *ReadModel) Apply(e eventstore.RecordedEvent) {
	var changed *View
	agg, id, err := eventstore.SplitStream(e.Stream)
	var ev es.Event
	if err == nil && agg == domain.Decider.Aggregate {
		ev, err = es.Decode(e)
	}
	if err != nil || agg != domain.Decider.Aggregate {
		m.mu.Lock()
		m.commit(m.space.Load().Batch(), e.Position) // nothing of ours: the position still moves
		m.mu.Unlock()
	} else {
		changed = m.apply(e, id, ev)
	}
	m.pos.Advance(e.Position)
	if changed != nil && m.onChange != nil {
		m.onChange(*changed)
	}
}

func (m *ReadModel) apply(e eventstore.RecordedEvent, id string, ev es.Event) *View {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.space.Load().Batch()
	defer b.Discard()
	var old stored
	ok := false
	if e.Revision > 0 { // the first event of a fulfilment's stream finds nothing
		if old, ok = m.recent.Get(id); !ok {
			var err error
			if old.View, old.addr, ok, err = read(b, id); err != nil {
				panic(err)
			}
			old.status = old.Fulfilment.Status()
		}
	}
	if !ok {
		old = stored{View: View{Fulfilment: domain.Decider.Initial(id)}}
	}
	v := View{Fulfilment: domain.Evolve(old.Fulfilment, ev.Payload), Revision: e.Revision}
	if !v.Fulfilment.Requested {
		m.commit(b, e.Position)
		return nil
	}
	addr := old.addr
	if v.Fulfilment.Address != old.Fulfilment.Address {
		addr = nil // another message: encoded again
	}
	val, addr, err := encodeView(v, addr)
	if err != nil {
		panic(err)
	}
	_ = b.Set(viewKey(id), val)
	f, was := v.Fulfilment, old.Fulfilment
	st := f.Status()
	if !was.Requested || old.status != st ||
		was.VendorID != f.VendorID || was.OrderID != f.OrderID || !was.RequestTime.Equal(f.RequestTime) {
		sk := kv.TimeKey(f.RequestTime, id)
		_ = b.Set(append(kv.ListPrefix(listVendor, f.VendorID), sk...), []byte{byte(st)})
		_ = b.Set(append(kv.ListPrefix(listOrder, f.OrderID), sk...), []byte{byte(st)})
	}
	pending, wasPending := f.DeadlinePending(), was.Requested && was.DeadlinePending()
	moved := !pending || !wasPending || !f.ShipBy.Equal(was.ShipBy)
	if wasPending && moved {
		_ = shipByIndex.Delete(b, id, was.ShipBy)
	}
	if pending && moved {
		_ = shipByIndex.Set(b, id, f.ShipBy)
	}
	m.commit(b, e.Position)
	m.recent.Put(id, stored{View: v, addr: addr, status: st})
	c := Change{Position: e.Position, EventType: e.Type, View: v}
	for w := range m.watchers[f.VendorID] {
		select {
		case w.ch <- c:
		default:
			w.behind.Store(true)
			close(w.ch)
			delete(m.watchers[f.VendorID], w)
		}
	}
	return &v
}

// commit writes b with pos (under mu) and records pos as applied.
func (m *ReadModel) commit(b *kv.Batch, pos uint64) {
	if err := b.Commit(pos); err != nil {
		panic(fmt.Errorf("fulfilment read model: %w", err))
	}
	m.applied = pos
}

// subscribe registers a watcher of vendorID's changes after the position
// applied now, which it returns, with (if snapshot) every current
// fulfilment of the vendor, newest first. Taken under the lock, so no
// change falls between the snapshot and the watcher. On error nothing is
// registered.
func (m *ReadModel) subscribe(vendorID string, buffer int, snapshot bool) (*watcher, uint64, []View, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var snap []View
	if s := m.space.Load(); snapshot && s != nil {
		prefix := kv.ListPrefix(listVendor, vendorID)
		var err error
		snap, _, err = m.walk(s, prefix, kv.PrefixEnd(prefix), -1, domain.StatusNone, nil)
		if err != nil {
			return nil, 0, nil, err
		}
	}
	w := &watcher{ch: make(chan Change, buffer)}
	if m.watchers[vendorID] == nil {
		m.watchers[vendorID] = map[*watcher]struct{}{}
	}
	m.watchers[vendorID][w] = struct{}{}
	return w, m.applied, snap, nil
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
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, ws := range m.watchers {
		n += len(ws)
	}
	return n
}

// Get returns a fulfilment as projected.
func (m *ReadModel) Get(id string) (View, bool) {
	s := m.space.Load()
	if s == nil {
		return View{}, false
	}
	v, ok, err := m.view(s, id)
	return v, ok && err == nil
}

// Open returns every fulfilment whose ship-by deadline is pending, the
// earliest deadline first.
func (m *ReadModel) Open() []View {
	s := m.space.Load()
	if s == nil {
		return nil
	}
	var out []View
	_ = shipByIndex.Scan(s, nil, func(e deadline.Entry) bool {
		if v, ok, err := m.view(s, e.Key); ok && err == nil {
			out = append(out, v)
		}
		return true
	})
	return out
}

// List returns one page of q: the order's list if q names an order (the
// shorter), else the vendor's, newest first from the page token's
// fulfilment.
func (m *ReadModel) List(q ListQuery) (Page, error) {
	prefix := kv.ListPrefix(listOrder, q.OrderID)
	if q.OrderID == "" && q.VendorID != "" {
		prefix = kv.ListPrefix(listVendor, q.VendorID)
	}
	query := fmt.Sprintf("v=%s|o=%s|s=%d", q.VendorID, q.OrderID, q.Status)
	to := kv.PrefixEnd(prefix)
	if q.PageToken != "" {
		f, err := projection.ParsePageToken(q.PageToken, query, listFilters, 2)
		if err != nil {
			return Page{}, err
		}
		nanos, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return Page{}, projection.BadPageToken("not a page token of this service")
		}
		to = append(bytes.Clone(prefix), kv.TimeKey(time.Unix(0, nanos), f[1])...) // exclusive: the token's own was on the last page
	}
	s := m.space.Load()
	if s == nil {
		return Page{}, nil
	}
	found, more, err := m.walk(s, prefix, to, projection.PageSize(q.PageSize, DefaultPageSize, MaxPageSize), q.Status, func(v View) bool {
		f := &v.Fulfilment
		return (q.OrderID == "" || f.OrderID == q.OrderID) && (q.VendorID == "" || f.VendorID == q.VendorID) &&
			(q.Status == domain.StatusNone || f.Status() == q.Status)
	})
	if err != nil {
		return Page{}, err
	}
	page := Page{Fulfilments: found}
	if more {
		last := found[len(found)-1].Fulfilment
		page.NextPageToken = projection.PageToken(query, strconv.FormatInt(last.RequestTime.UnixNano(), 10), last.ID)
	}
	return page, nil
}

// walk returns, newest first, up to size (negative: all) fulfilments of
// the list entries in [prefix, to) of status (StatusNone: any) that keep
// accepts (nil: every one), and whether another accepted one follows them.
func (m *ReadModel) walk(s *kv.Space, prefix, to []byte, size int, status domain.Status, keep func(View) bool) ([]View, bool, error) {
	var out []View
	more := false
	var ferr error
	err := s.Scan(prefix, to, true, func(k, st []byte) bool {
		if status != domain.StatusNone && len(st) == 1 && domain.Status(st[0]) != status {
			return true // not read: its status says no
		}
		v, ok, err := m.view(s, string(k[len(prefix)+8:]))
		if err != nil {
			ferr = err
			return false
		}
		if !ok || (keep != nil && !keep(v)) {
			return true
		}
		if len(out) == size {
			more = true
			return false
		}
		out = append(out, v)
		return true
	})
	if err == nil {
		err = ferr
	}
	return out, more, err
}
