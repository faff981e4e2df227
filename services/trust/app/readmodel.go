package app

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
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
	"github.com/custody/custody/services/trust/domain"
)

// Page sizes of the list RPCs.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// claimFilters names ListClaims' filters in the error a page token of
// another query gets.
const claimFilters = "its filters"

// ReadModel is the projection of the trust store: every order's claims
// (folded with the aggregate's own Evolve) listed by order, buyer and
// vendor, and every vendor's trust (folded with the trust aggregate's
// Evolve). It serves ListClaims and ListVendorTrust, its change hook keeps
// the claims' deadline scheduler in step, and it keeps every claim waiting
// on time by due time, where the scheduler reads those it does not hold
// (Next: a deadline.Store).
//
// It is stored (platform.Stored) in its space of the process's read-model
// store, each event's changes written with the event's position in one
// batch:
//
//	c/<order id>                        the order's claims and revision (codec.go)
//	l/<list><owner>/<open time><claim id> an entry of a list: the claim's state and order id
//	d/<due time><deadline key>          an open claim waits on time until due (empty)
//	t/<trust aggregate id>              a vendor's trust (codec.go)
//
// where <list> is one byte (a all, o order, b buyer, v vendor), <owner>
// is length-prefixed and <open time> is the big-endian nanoseconds since
// 1970 with the sign bit flipped, so a list's keys sort oldest first. A
// list entry's value is the claim's state (a uvarint, rewritten when it
// changes) and its order id, so a list filtered by state skips the others
// without reading their cases. <due time> is kv.TimeKey's, so the d/ keys
// sort by due time (deadline.Index); the deadline key names the claim and
// its order (DeadlineKey). An event that makes a claim wait, moves its due
// time or ends its wait sets and deletes its d/ keys in the event's batch
// (the old due time is the case's before the event): the scheduler holds
// only the earliest and reads the others from here, also after a restart.
//
// The heap keeps the cases used last (an LRU) and every vendor's trust:
// one entry per vendor (not per event), written through to the store and
// read back whole at Attach; the vendor list pages through all of them.
type ReadModel struct {
	pos *projection.Position
	// onCase is called (outside the lock, after the event's batch is
	// committed) with a copy of every case an event changed.
	onCase func(domain.Case)

	space atomic.Pointer[kv.Space] // set by Attach, before any event

	// recent are the cases folded last, as the space has them: Apply
	// writes through it (values are never changed once cached).
	recent *lru.Cache[string, *domain.Case]

	mu sync.RWMutex
	// vendors by aggregate id (domain.TrustAggregateID of the vendor id).
	vendors map[string]*domain.VendorTrust
}

// NewReadModel returns a read model with no space yet (Attach gives it
// one); onCase may be nil.
func NewReadModel(onCase func(domain.Case)) *ReadModel {
	return &ReadModel{pos: projection.New(), onCase: onCase, recent: lru.New[string, *domain.Case](cacheSize),
		vendors: map[string]*domain.VendorTrust{}}
}

// Version names the shape of what the read model stores
// (platform.Stored); bump it when the keys or the codec change.
//
// trust-claims-kv-2: d/ by due time, one per claim (kv-1's were
// d/<order id>, one per order).
func (m *ReadModel) Version() string { return "trust-claims-kv-2" }

// Attach gives the read model its space (platform.Stored) and reads every
// vendor's trust from it. It hands the change hook nothing: the deadline
// scheduler reads the claims waiting on time from the space (Next), one
// that passed while the process was down first.
func (m *ReadModel) Attach(s *kv.Space) error {
	vendors := map[string]*domain.VendorTrust{}
	var ferr error
	err := s.Scan([]byte("t/"), []byte("t0"), false, func(k, b []byte) bool {
		v, err := decodeVendor(b)
		if err != nil {
			ferr = fmt.Errorf("claims read model: vendor %s: %w", k[2:], err)
			return false
		}
		vendors[string(k[2:])] = &v
		return true
	})
	if err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.recent.Clear()
	m.vendors = vendors
	m.space.Store(s)
	m.mu.Unlock()
	return nil
}

// Next returns up to n claims waiting on time, by due time, after after
// (nil: from the first): the claims' deadline scheduler's deadline.Store.
// Their keys are DeadlineKey's.
func (m *ReadModel) Next(after *deadline.Entry, n int) ([]deadline.Entry, error) {
	s := m.space.Load()
	if s == nil {
		return nil, errors.New("claims read model: not attached")
	}
	return dueIndex.Next(s, after, n)
}

// Waiting returns the claim of a deadline key (DeadlineKey) as the read
// model has it; ok false when it does not have it.
func (m *ReadModel) Waiting(key string) (domain.Claim, bool, error) {
	orderID, claimID, ok := parseDeadlineKey(key)
	s := m.space.Load()
	if !ok || s == nil {
		return domain.Claim{}, false, fmt.Errorf("claims read model: deadline key %q", key)
	}
	cs, ok, err := m.caseOf(s, orderID)
	if err != nil || !ok {
		return domain.Claim{}, false, err
	}
	c := cs.Claim(claimID)
	if c == nil {
		return domain.Claim{}, false, nil
	}
	return *c, true, nil
}

// DeadlineKey is a claim's key in the deadlines (Next): its order id,
// length-prefixed, and its id.
func DeadlineKey(orderID, claimID string) string {
	k := binary.AppendUvarint(make([]byte, 0, 1+len(orderID)+len(claimID)), uint64(len(orderID)))
	return string(append(append(k, orderID...), claimID...))
}

func parseDeadlineKey(key string) (orderID, claimID string, ok bool) {
	n, w := binary.Uvarint([]byte(key))
	if w <= 0 || uint64(len(key)-w) < n {
		return "", "", false
	}
	return key[w : w+int(n)], key[w+int(n):], true
}

// dueIndex is the claims waiting on time, by due time.
var dueIndex = deadline.Index{Prefix: []byte("d/")}

// Apply applies one event of the trust store and advances Progress past
// it. A read model without a space cannot apply anything: that is a wiring
// mistake, and it panics; so does a store that cannot be read or written.
func (m *ReadModel) Apply(e eventstore.RecordedEvent) {
	defer m.pos.Advance(e.Position)
	b := m.space.Load().Batch()
	defer b.Discard()
	var ev es.Event
	agg, id, err := eventstore.SplitStream(e.Stream)
	if err == nil {
		ev, err = es.Decode(e)
	}
	var changed *domain.Case
	var vendor *domain.VendorTrust
	if err == nil {
		switch agg {
		case domain.Claims.Aggregate:
			changed = m.applyCase(b, e, id, ev)
		case domain.Trust.Aggregate:
			m.mu.RLock()
			v, ok := m.vendors[id]
			m.mu.RUnlock()
			if !ok {
				initial := domain.Trust.Initial(id)
				v = &initial
			}
			next := domain.Trust.Evolve(*v, ev.Payload)
			next.Revision = e.Revision
			_ = b.Set(vendorKey(id), encodeVendor(&next))
			vendor = &next
		}
	}
	if err := b.Commit(e.Position); err != nil {
		panic(fmt.Errorf("claims read model: %w", err))
	}
	if vendor != nil {
		m.mu.Lock()
		m.vendors[id] = vendor
		m.mu.Unlock()
	}
	if changed != nil {
		m.recent.Put(id, changed)
		if m.onCase != nil {
			m.onCase(changed.Clone())
		}
	}
}

// applyCase folds a claims event into its order's case in b and returns
// the case after it (the caller caches it once b is committed).
func (m *ReadModel) applyCase(b *kv.Batch, e eventstore.RecordedEvent, orderID string, ev es.Event) *domain.Case {
	var cs domain.Case
	old, ok := (*domain.Case)(nil), false
	if e.Revision > 0 { // the first event of an order's claims finds nothing
		var err error
		if old, ok, err = m.caseOf(b, orderID); err != nil {
			panic(err)
		}
	}
	if ok {
		cs = old.Clone()
	} else {
		cs = domain.Claims.Initial(orderID)
	}
	cs = domain.Claims.Evolve(cs, ev.Payload)
	cs.Revision = e.Revision
	for _, c := range cs.Claims {
		var was *domain.Claim
		if ok {
			was = old.Claim(c.ID)
		}
		if was != nil && was.State == c.State {
			continue
		}
		// A claim's place in the lists is where it was first indexed.
		at, sk := c, kv.TimeKey(c.OpenTime, c.ID)
		if was != nil {
			at, sk = was, kv.TimeKey(was.OpenTime, was.ID)
		}
		entry := append(binary.AppendUvarint(nil, uint64(c.State)), at.OrderID...)
		for _, l := range []struct {
			list  byte
			owner string
		}{{listAll, ""}, {listOrder, at.OrderID}, {listBuyer, at.BuyerID}, {listVendor, at.VendorID}} {
			_ = b.Set(append(kv.ListPrefix(l.list, l.owner), sk...), entry)
		}
	}
	val, err := encodeCase(&cs)
	if err != nil {
		panic(fmt.Errorf("claims read model: order %s: %w", orderID, err))
	}
	_ = b.Set(caseKey(orderID), val)
	for _, c := range cs.Claims {
		var was *domain.Claim
		if ok {
			was = old.Claim(c.ID)
		}
		waits, waited := WaitsOnTime(c), was != nil && WaitsOnTime(was)
		moved := !waits || !waited || !c.DueAt.Equal(was.DueAt)
		if waited && moved {
			_ = dueIndex.Delete(b, DeadlineKey(orderID, c.ID), was.DueAt)
		}
		if waits && moved {
			_ = dueIndex.Set(b, DeadlineKey(orderID, c.ID), c.DueAt)
		}
	}
	return &cs
}

// WaitsOnTime reports whether c is open with a deadline (what the service
// schedules).
func WaitsOnTime(c *domain.Claim) bool { return c.State.Open() && !c.DueAt.IsZero() }

// Keys.

func caseKey(orderID string) []byte { return append([]byte("c/"), orderID...) }
func vendorKey(id string) []byte    { return append([]byte("t/"), id...) }

// Lists, by their byte in the keys.
const (
	listAll    = 'a'
	listOrder  = 'o'
	listBuyer  = 'b'
	listVendor = 'v'
)

// readCase reads an order's claims from r (the space or a batch).
func readCase(r interface {
	Get([]byte) ([]byte, bool, error)
}, orderID string) (*domain.Case, bool, error) {
	b, ok, err := r.Get(caseKey(orderID))
	if err != nil || !ok {
		return nil, false, err
	}
	cs, err := decodeCase(b)
	if err != nil {
		return nil, false, fmt.Errorf("claims read model: order %s: %w", orderID, err)
	}
	return &cs, true, nil
}

// caseOf reads an order's claims from the cache or r; the caller must not
// change what it gets.
func (m *ReadModel) caseOf(r interface {
	Get([]byte) ([]byte, bool, error)
}, orderID string) (*domain.Case, bool, error) {
	if cs, ok := m.recent.Get(orderID); ok {
		return cs, true, nil
	}
	return readCase(r, orderID)
}

// ClaimQuery selects claims: of one order, vendor or buyer (at most one;
// none means every claim), optionally in one state, newest first.
type ClaimQuery struct {
	OrderID, VendorID, BuyerID string
	// State filters; StateNone means every state.
	State     domain.State
	PageSize  int
	PageToken string
}

// ClaimPage is one page of claims.
type ClaimPage struct {
	Claims        []ClaimView
	NextPageToken string
}

// ClaimView is a claim as read, with the revision of its order's claims
// stream.
type ClaimView struct {
	Claim    domain.Claim
	Revision uint64
}

// Claims returns one page of q.
func (m *ReadModel) Claims(q ClaimQuery) (ClaimPage, error) {
	prefix := kv.ListPrefix(listAll, "")
	switch {
	case q.OrderID != "":
		prefix = kv.ListPrefix(listOrder, q.OrderID)
	case q.VendorID != "":
		prefix = kv.ListPrefix(listVendor, q.VendorID)
	case q.BuyerID != "":
		prefix = kv.ListPrefix(listBuyer, q.BuyerID)
	}
	query := fmt.Sprintf("o=%s|v=%s|b=%s|s=%d", q.OrderID, q.VendorID, q.BuyerID, q.State)
	to := kv.PrefixEnd(prefix)
	if q.PageToken != "" {
		f, err := projection.ParsePageToken(q.PageToken, query, claimFilters, 2)
		if err != nil {
			return ClaimPage{}, err
		}
		nanos, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return ClaimPage{}, projection.BadPageToken("not a page token of this service")
		}
		to = append(bytes.Clone(prefix), kv.TimeKey(time.Unix(0, nanos), f[1])...) // exclusive: the token's own was on the last page
	}
	s := m.space.Load()
	if s == nil {
		return ClaimPage{}, nil
	}
	size := projection.PageSize(q.PageSize, DefaultPageSize, MaxPageSize)
	var page ClaimPage
	var last projection.Key
	var ferr error
	err := s.Scan(prefix, to, true, func(k, entry []byte) bool {
		state, n := binary.Uvarint(entry)
		if n <= 0 {
			ferr = fmt.Errorf("claims read model: list entry %q: %w", k, kv.ErrCorrupt)
			return false
		}
		if q.State != domain.StateNone && domain.State(state) != q.State {
			return true // not read: its state says no
		}
		id := string(k[len(prefix)+8:])
		cs, ok, err := m.caseOf(s, string(entry[n:]))
		if err != nil {
			ferr = err
			return false
		}
		var c *domain.Claim
		if ok {
			c = cs.Claim(id)
		}
		if c == nil || (q.State != domain.StateNone && c.State != q.State) {
			return true
		}
		if len(page.Claims) == size {
			page.NextPageToken = projection.PageToken(query, strconv.FormatInt(last.Time.UnixNano(), 10), last.ID)
			return false
		}
		page.Claims = append(page.Claims, ClaimView{Claim: *cs.Clone().Claim(id), Revision: cs.Revision})
		at, _ := kv.TimeOfKey(k[len(prefix):])
		last = projection.Key{Time: at, ID: id}
		return true
	})
	if err == nil {
		err = ferr
	}
	if err != nil {
		return ClaimPage{}, err
	}
	return page, nil
}

// VendorQuery selects vendors' trust by vendor id, optionally of one tier.
type VendorQuery struct {
	// Tier filters; "" means every tier.
	Tier      domain.Tier
	PageSize  int
	PageToken string
}

// VendorPage is one page of vendors' trust.
type VendorPage struct {
	Vendors       []domain.VendorTrust
	NextPageToken string
}

// Vendors returns one page of q.
func (m *ReadModel) Vendors(q VendorQuery) (VendorPage, error) {
	query := "t=" + string(q.Tier)
	after := ""
	if q.PageToken != "" {
		last, err := projection.ParsePageToken(q.PageToken, query, "its filters", 1)
		if err != nil {
			return VendorPage{}, err
		}
		after = last[0]
	}
	m.mu.RLock()
	var list []domain.VendorTrust
	for _, v := range m.vendors {
		if v.VendorID != "" && v.VendorID > after && (q.Tier == "" || v.Tier == q.Tier) {
			list = append(list, *v)
		}
	}
	m.mu.RUnlock()
	sort.Slice(list, func(i, j int) bool { return list[i].VendorID < list[j].VendorID })
	vendors, more := projection.Take(slices.Values(list), projection.PageSize(q.PageSize, DefaultPageSize, MaxPageSize), nil)
	page := VendorPage{Vendors: vendors}
	if more {
		page.NextPageToken = projection.PageToken(query, vendors[len(vendors)-1].VendorID)
	}
	return page, nil
}

// VendorTrust returns the projected trust of every vendor with a history,
// by vendor id.
func (m *ReadModel) VendorTrust() map[string]domain.VendorTrust {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make(map[string]domain.VendorTrust, len(m.vendors))
	for _, v := range m.vendors {
		if v.VendorID != "" {
			out[v.VendorID] = *v
		}
	}
	return out
}

// Progress is how far the read model has applied the trust store.
func (m *ReadModel) Progress() *projection.Position { return m.pos }
