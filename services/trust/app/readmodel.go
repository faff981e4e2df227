package app

import (
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

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

// claimPages pages the claims, newest first.
var claimPages = projection.Newest[*claimRef]{
	Key:         func(r *claimRef) projection.Key { return projection.Key{Time: r.open, ID: r.id} },
	DefaultSize: DefaultPageSize, MaxSize: MaxPageSize, Filters: "its filters",
}

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
		cs := evolve(m.cases, domain.Claims, id, ev.Payload)
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
		evolve(m.vendors, domain.Trust, id, ev.Payload).Revision = e.Revision
		m.mu.Unlock()
	}
}

// evolve applies payload to the state of aggregate id in states (d's
// initial state if it has none yet) and returns the state.
func evolve[S, C any](states map[string]*S, d es.Decider[S, C], id string, payload proto.Message) *S {
	s, ok := states[id]
	if !ok {
		initial := d.Initial(id)
		s = &initial
		states[id] = s
	}
	*s = d.Evolve(*s, payload)
	return s
}

func (m *ReadModel) index(c *domain.Claim) {
	ref := &claimRef{id: c.ID, orderID: c.OrderID, open: c.OpenTime}
	m.claims[c.ID] = ref
	m.byOrder[c.OrderID] = projection.Insert(m.byOrder[c.OrderID], ref, claimPages.Key)
	m.byBuyer[c.BuyerID] = projection.Insert(m.byBuyer[c.BuyerID], ref, claimPages.Key)
	m.byVendor[c.VendorID] = projection.Insert(m.byVendor[c.VendorID], ref, claimPages.Key)
	m.all = projection.Insert(m.all, ref, claimPages.Key)
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
	query := fmt.Sprintf("o=%s|v=%s|b=%s|s=%d", q.OrderID, q.VendorID, q.BuyerID, q.State)
	refs, next, err := claimPages.Page(list, query, q.PageSize, q.PageToken, func(ref *claimRef) bool {
		return q.State == domain.StateNone || m.cases[ref.orderID].Claim(ref.id).State == q.State
	})
	page := ClaimPage{NextPageToken: next}
	for _, ref := range refs {
		cs := m.cases[ref.orderID]
		page.Claims = append(page.Claims, ClaimView{Claim: *cs.Clone().Claim(ref.id), Revision: cs.Revision})
	}
	return page, err
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
