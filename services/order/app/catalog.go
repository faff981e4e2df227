package app

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/money"
	"github.com/custody/custody/pkg/projection"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	"github.com/custody/custody/services/order/domain"
)

// ErrCatalogUnavailable: the catalog's events cannot be read yet (its stream
// does not exist, or the view is still catching up), so an order cannot be
// priced. Clients retry (gRPC Unavailable).
var ErrCatalogUnavailable = errors.New("the catalog view is not available")

// CatalogView is this service's own copy of what it needs from the catalog
// (prices and vendors of SKUs, affiliate links, live sessions and their
// pins), projected from the catalog's events. Writes never ask the catalog
// service: PlaceOrder prices from here.
type CatalogView struct {
	pos *projection.Position

	mu       sync.RWMutex
	skus     map[string]domain.SKU
	links    map[string]domain.Link
	sessions map[string]*domain.Session
	vendors  map[string]string // id -> display name
}

// NewCatalogView returns an empty view.
func NewCatalogView() *CatalogView {
	return &CatalogView{pos: projection.New(), skus: map[string]domain.SKU{}, links: map[string]domain.Link{},
		sessions: map[string]*domain.Session{}, vendors: map[string]string{}}
}

// Position is the view's progress through the catalog's events: Apply
// advances it, and whoever folds the view (the platform's runtime) marks
// it ready once the view has caught up with the catalog's stream.
func (v *CatalogView) Position() *projection.Position { return v.pos }

// WaitReady waits, at most d, until the view has caught up once.
func (v *CatalogView) WaitReady(ctx context.Context, d time.Duration) error {
	if !v.pos.WaitFor(ctx, d, func(_ uint64, ready bool) bool { return ready }) {
		return ErrCatalogUnavailable
	}
	return nil
}

// SKU looks a SKU up.
func (v *CatalogView) SKU(id string) (domain.SKU, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	s, ok := v.skus[id]
	return s, ok
}

// Link looks an affiliate link up.
func (v *CatalogView) Link(id string) (domain.Link, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	l, ok := v.links[id]
	return l, ok
}

// Session looks a live session up (a copy).
func (v *CatalogView) Session(id string) (domain.Session, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	s, ok := v.sessions[id]
	if !ok {
		return domain.Session{}, false
	}
	c := *s
	c.Pins = append([]domain.Pin(nil), s.Pins...)
	return c, true
}

// catalogViewTypes are the catalog events the view folds. The others (the
// stock moves, two or more per order) are not even decoded.
var catalogViewTypes = setOf(projection.EventTypes(&catalogv1.VendorRegistered{}, &catalogv1.ProductCreated{},
	&catalogv1.AffiliateLinkCreated{}, &catalogv1.LiveSessionStarted{}, &catalogv1.ProductPinned{},
	&catalogv1.ProductUnpinned{}, &catalogv1.LiveSessionEnded{}))

func setOf(types []string) map[string]bool {
	set := make(map[string]bool, len(types))
	for _, t := range types {
		set[t] = true
	}
	return set
}

// Apply applies one catalog event; events the view does not need (and
// types this binary does not know) only advance its position.
func (v *CatalogView) Apply(e eventstore.RecordedEvent) {
	defer v.pos.Advance(e.Position)
	if !catalogViewTypes[e.Type] {
		return
	}
	ev, err := es.Decode(e)
	if err != nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	switch p := ev.Payload.(type) {
	case *catalogv1.VendorRegistered:
		v.vendors[p.GetVendorId()] = p.GetDisplayName()
	case *catalogv1.ProductCreated:
		for _, s := range p.GetSkus() {
			id := s.GetSkuId()
			if id == "" {
				id = p.GetProductId() + "-" + s.GetCode()
			}
			title := s.GetTitle()
			if title == "" {
				title = p.GetTitle()
			}
			v.skus[id] = domain.SKU{SKUID: id, ProductID: p.GetProductId(), VendorID: p.GetVendorId(), Title: title,
				Price: money.Money{Currency: s.GetPrice().GetCurrencyCode(), Minor: s.GetPrice().GetAmountMinor()}}
		}
	case *catalogv1.AffiliateLinkCreated:
		v.links[p.GetLinkId()] = domain.Link{LinkID: p.GetLinkId(), CreatorID: p.GetCreatorId(), ProductID: p.GetProductId(), CommissionBps: p.GetCommissionBps()}
	case *catalogv1.LiveSessionStarted:
		s := v.session(p.GetSessionId())
		s.CreatorID, s.StartTime = p.GetCreatorId(), p.GetStartTime().AsTime()
	case *catalogv1.ProductPinned:
		s := v.session(p.GetSessionId())
		at := p.GetPinTime().AsTime()
		closePin(s, p.GetProductId(), at) // pinned again: the old rate ends here
		s.Pins = append(s.Pins, domain.Pin{ProductID: p.GetProductId(), CommissionBps: p.GetCommissionBps(), From: at})
	case *catalogv1.ProductUnpinned:
		closePin(v.session(p.GetSessionId()), p.GetProductId(), p.GetUnpinTime().AsTime())
	case *catalogv1.LiveSessionEnded:
		s := v.session(p.GetSessionId())
		for i := range s.Pins {
			if s.Pins[i].Until.IsZero() {
				s.Pins[i].Until = p.GetEndTime().AsTime()
			}
		}
	}
}

func (v *CatalogView) session(id string) *domain.Session {
	s, ok := v.sessions[id]
	if !ok {
		s = &domain.Session{SessionID: id}
		v.sessions[id] = s
	}
	return s
}

func closePin(s *domain.Session, productID string, at time.Time) {
	for i := range s.Pins {
		if s.Pins[i].ProductID == productID && s.Pins[i].Until.IsZero() {
			s.Pins[i].Until = at
		}
	}
}
