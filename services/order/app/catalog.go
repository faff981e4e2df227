package app

import (
	"context"
	"errors"
	"slices"
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
	titles   map[string]string // product id -> title, for the SKUs added without one

	// What the view knows of a SKU's stock, to refuse at once orders the
	// catalog would refuse (stock.go). total is every unit the SKU was
	// given (initial stock and adjustments), which available units never
	// exceed. atMost is what the catalog said was available when it last
	// refused to reserve the SKU (StockReservationFailed): between two
	// catalog events that may return units (a release, a restock, an
	// adjustment) units only leave "available", so atMost stays true until
	// the next such event on the SKU's product, which forgets it. epoch
	// counts those events (anyEpoch those of streams that are not a
	// product's), so that units counted as taken before one count no more.
	total       map[string]int64
	atMost      map[string]int64
	epoch       map[string]uint64
	anyEpoch    uint64
	productSKUs map[string][]string // product stream -> its SKUs
}

// NewCatalogView returns an empty view.
func NewCatalogView() *CatalogView {
	return &CatalogView{pos: projection.New(), skus: map[string]domain.SKU{}, links: map[string]domain.Link{},
		sessions: map[string]*domain.Session{}, vendors: map[string]string{}, titles: map[string]string{},
		total: map[string]int64{}, atMost: map[string]int64{}, epoch: map[string]uint64{}, productSKUs: map[string][]string{}}
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

// SKUStock is what the view knows of a SKU's available units.
type SKUStock struct {
	Known   bool  // false: an unknown SKU
	Total   int64 // available units never exceed it
	Refused bool  // the catalog refused the SKU, and:
	AtMost  int64 // available units are at most these
	// Epoch changes with every event that may have returned units of the
	// SKU to "available".
	Epoch uint64
}

// Stock is what the view knows of a SKU's available units.
func (v *CatalogView) Stock(skuID string) SKUStock {
	v.mu.RLock()
	defer v.mu.RUnlock()
	total, known := v.total[skuID]
	atMost, refused := v.atMost[skuID]
	return SKUStock{Known: known, Total: total, Refused: refused, AtMost: atMost, Epoch: v.epoch[skuID] + v.anyEpoch}
}

// catalogViewTypes are the catalog events the view decodes. The other
// stock moves (two or more per order) are not even decoded.
var catalogViewTypes = setOf(projection.EventTypes(&catalogv1.VendorRegistered{}, &catalogv1.ProductCreated{},
	&catalogv1.AffiliateLinkCreated{}, &catalogv1.LiveSessionStarted{}, &catalogv1.ProductPinned{},
	&catalogv1.ProductUnpinned{}, &catalogv1.LiveSessionEnded{}, &catalogv1.StockReservationFailed{},
	&catalogv1.StockAdjusted{}, &catalogv1.SkuAdded{}, &catalogv1.SkuPriceChanged{}, &catalogv1.ProductArchived{},
	&catalogv1.ProductUpdated{}))

// returnsUnits are the catalog events that may make units of a product
// available again: each forgets the refusal bounds of that product's SKUs.
var returnsUnits = setOf(projection.EventTypes(&catalogv1.StockAdjusted{}, &catalogv1.StockHoldReleased{},
	&catalogv1.StockReleased{}, &catalogv1.StockRestocked{}))

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
	if returnsUnits[e.Type] {
		v.forgetBounds(e.Stream)
	}
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
		v.titles[p.GetProductId()] = p.GetTitle()
		for _, s := range p.GetSkus() {
			v.addSKU(e.Stream, p.GetProductId(), p.GetVendorId(), s)
		}
	case *catalogv1.ProductUpdated:
		// A SKU's line title is its own; the product's only for SKUs that
		// have none, added from now on.
		v.titles[p.GetProductId()] = p.GetTitle()
	case *catalogv1.SkuAdded:
		if skus := v.productSKUs[e.Stream]; len(skus) > 0 {
			first := v.skus[skus[0]] // every product has one, with its vendor
			v.addSKU(e.Stream, first.ProductID, first.VendorID, p.GetSku())
		}
	case *catalogv1.SkuPriceChanged:
		// Orders placed from now on pay it; an order keeps its own.
		if s, ok := v.skus[p.GetSkuId()]; ok {
			s.Price = money.Money{Currency: p.GetPrice().GetCurrencyCode(), Minor: p.GetPrice().GetAmountMinor()}
			v.skus[p.GetSkuId()] = s
		}
	case *catalogv1.ProductArchived:
		for _, id := range v.productSKUs[e.Stream] {
			v.setArchived(id)
		}
	case *catalogv1.StockAdjusted:
		if _, ok := v.total[p.GetSkuId()]; ok {
			v.total[p.GetSkuId()] += p.GetDelta()
		}
	case *catalogv1.StockReservationFailed:
		// Only a product's own refusal counts (the one-step reservation,
		// on the product's stream), and only a shortfall: the saga's
		// reservation stream also fails orders for other reasons.
		if p.GetRequested() > p.GetAvailable() && slices.Contains(v.productSKUs[e.Stream], p.GetSkuId()) {
			v.atMost[p.GetSkuId()] = p.GetAvailable()
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

// addSKU adds a SKU of a product (its stream, id and vendor) as the
// catalog created it.
func (v *CatalogView) addSKU(stream, productID, vendorID string, s *catalogv1.SkuCreated) {
	id := s.GetSkuId()
	if id == "" {
		id = productID + "-" + s.GetCode()
	}
	title := s.GetTitle()
	if title == "" {
		title = v.titles[productID]
	}
	v.skus[id] = domain.SKU{SKUID: id, ProductID: productID, VendorID: vendorID, Title: title,
		Price: money.Money{Currency: s.GetPrice().GetCurrencyCode(), Minor: s.GetPrice().GetAmountMinor()}}
	v.productSKUs[stream] = append(v.productSKUs[stream], id)
	v.total[id] = s.GetInitialStock()
}

// setArchived marks a SKU's product archived: PlaceOrder refuses it.
func (v *CatalogView) setArchived(skuID string) {
	if s, ok := v.skus[skuID]; ok {
		s.Archived = true
		v.skus[skuID] = s
	}
}

// forgetBounds forgets the refusal bounds of the SKUs of the product whose
// stream is named, and starts their next epoch; every SKU's when the stream
// is not a product's.
func (v *CatalogView) forgetBounds(stream string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	skus, ok := v.productSKUs[stream]
	if !ok {
		clear(v.atMost)
		v.anyEpoch++
		return
	}
	for _, id := range skus {
		delete(v.atMost, id)
		v.epoch[id]++
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
