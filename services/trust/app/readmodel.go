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
	"github.com/custody/custody/services/trust/domain"
)

// Page sizes of the list RPCs.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// ReadModel is the projection of the trust store: every order's claims
// (folded with the aggregate's own Evolve) indexed by order, buyer and
// vendor, and every vendor's trust (folded with the trust aggregate's
// Evolve). It serves ListClaims and ListVendorTrust, and its change hook
// schedules the claims' deadlines.
type ReadModel struct {
	pos *projection.Position
	// onCase is called (outside the lock) with a copy of every case an
	// event changed.
	onCase func(domain.Case)

	mu       sync.RWMutex
	cases    map[string]*domain.Case
	claims   map[string]*claimRef
	byOrder  map[string][]*claimRef
	byBuyer  map[string][]*claimRef
	byVendor map[string][]*claimRef
	all      []*claimRef
	// vendors by aggregate id (domain.TrustAggregateID of the vendor id).
	vendors map[string]*domain.VendorTrust
}

// claimRef is a claim's place in the indexes.
type claimRef struct {
	id, orderID string
	open        time.Time
}

// NewReadModel returns an empty read model; onCase may be nil.
func NewReadModel(onCase func(domain.Case)) *ReadModel {
	return &ReadModel{pos: projection.New(), onCase: onCase, cases: map[string]*domain.Case{}, claims: map[string]*claimRef{},
		byOrder: map[string][]*claimRef{}, byBuyer: map[string][]*claimRef{}, byVendor: map[string][]*claimRef{},
		vendors: map[string]*domain.VendorTrust{}}
}

// Apply applies one event of the trust store and advances Progress past it.
func (m *ReadModel) Apply(e eventstore.RecordedEvent) {
	defer m.pos.Advance(e.Position)
	agg, id, err := eventstore.SplitStream(e.Stream)
	if err != nil {
		return
	}
	ev, err := es.Decode(e)
	if err != nil {
		return
	}
	switch agg {
	case domain.Claims.Aggregate:
		m.mu.Lock()
		cs, ok := m.cases[id]
		if !ok {
			c := domain.Claims.Initial(id)
			cs = &c
			m.cases[id] = cs
		}
		*cs = domain.EvolveCase(*cs, ev.Payload)
		cs.Revision = e.Revision
		for _, c := range cs.Claims {
			if _, ok := m.claims[c.ID]; !ok {
				m.index(c)
			}
		}
		var snapshot domain.Case
		if m.onCase != nil {
			snapshot = cs.Clone()
		}
		m.mu.Unlock()
		if m.onCase != nil {
			m.onCase(snapshot)
		}
	case domain.Trust.Aggregate:
		m.mu.Lock()
		v, ok := m.vendors[id]
		if !ok {
			t := domain.Trust.Initial(id)
			v = &t
			m.vendors[id] = v
		}
		*v = domain.EvolveTrust(*v, ev.Payload)
		v.Revision = e.Revision
		m.mu.Unlock()
	}
}

func (m *ReadModel) index(c *domain.Claim) {
	ref := &claimRef{id: c.ID, orderID: c.OrderID, open: c.OpenTime}
	m.claims[c.ID] = ref
	m.byOrder[c.OrderID] = insert(m.byOrder[c.OrderID], ref)
	m.byBuyer[c.BuyerID] = insert(m.byBuyer[c.BuyerID], ref)
	m.byVendor[c.VendorID] = insert(m.byVendor[c.VendorID], ref)
	m.all = insert(m.all, ref)
}

// newer reports whether a lists before b: newest first, ties by id.
func newer(a, b *claimRef) bool {
	if !a.open.Equal(b.open) {
		return a.open.After(b.open)
	}
	return a.id > b.id
}

func insert(list []*claimRef, ref *claimRef) []*claimRef {
	i := sort.Search(len(list), func(i int) bool { return newer(ref, list[i]) })
	list = append(list, nil)
	copy(list[i+1:], list[i:])
	list[i] = ref
	return list
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

func pageSize(n int) int {
	switch {
	case n <= 0:
		return DefaultPageSize
	case n > MaxPageSize:
		return MaxPageSize
	}
	return n
}

// Claims returns one page of q.
func (m *ReadModel) Claims(q ClaimQuery) (ClaimPage, error) {
	key := fmt.Sprintf("o=%s|v=%s|b=%s|s=%d", q.OrderID, q.VendorID, q.BuyerID, q.State)
	size := pageSize(q.PageSize)
	var after *claimRef
	if q.PageToken != "" {
		parts, err := decodeToken(q.PageToken, key, 2)
		if err != nil {
			return ClaimPage{}, err
		}
		nanos, err := strconv.ParseInt(parts[0], 10, 64)
		if err != nil {
			return ClaimPage{}, badToken()
		}
		after = &claimRef{open: time.Unix(0, nanos), id: parts[1]}
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	list := m.all
	switch {
	case q.OrderID != "":
		list = m.byOrder[q.OrderID]
	case q.VendorID != "":
		list = m.byVendor[q.VendorID]
	case q.BuyerID != "":
		list = m.byBuyer[q.BuyerID]
	}
	start := 0
	if after != nil {
		start = sort.Search(len(list), func(i int) bool { return newer(after, list[i]) })
	}
	var page ClaimPage
	for _, ref := range list[start:] {
		cs := m.cases[ref.orderID]
		c := cs.Claim(ref.id)
		if q.State != domain.StateNone && c.State != q.State {
			continue
		}
		if len(page.Claims) == size {
			last := page.Claims[size-1].Claim
			page.NextPageToken = encodeToken(key, strconv.FormatInt(last.OpenTime.UnixNano(), 10), last.ID)
			break
		}
		page.Claims = append(page.Claims, ClaimView{Claim: *cs.Clone().Claim(ref.id), Revision: cs.Revision})
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
	key := "t=" + string(q.Tier)
	size := pageSize(q.PageSize)
	after := ""
	if q.PageToken != "" {
		parts, err := decodeToken(q.PageToken, key, 1)
		if err != nil {
			return VendorPage{}, err
		}
		after = parts[0]
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
	var page VendorPage
	for _, v := range list {
		if len(page.Vendors) == size {
			page.NextPageToken = encodeToken(key, page.Vendors[size-1].VendorID)
			break
		}
		page.Vendors = append(page.Vendors, v)
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

// Page tokens are opaque to clients: the query they belong to and the last
// item returned (keyset paging, so items added meanwhile neither repeat
// nor get skipped).
func encodeToken(key string, last ...string) string {
	raw := strings.Join(append([]string{"1", key}, last...), "\x00")
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeToken(tok, key string, n int) ([]string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return nil, badToken()
	}
	parts := strings.Split(string(raw), "\x00")
	if len(parts) != n+2 || parts[0] != "1" {
		return nil, badToken()
	}
	if parts[1] != key {
		var v domain.Violations
		v.Add("page_token", "the page token belongs to a different query (its filters changed)")
		return nil, v.Err()
	}
	return parts[2:], nil
}

func badToken() error {
	var v domain.Violations
	v.Add("page_token", "not a page token of this service")
	return v.Err()
}
