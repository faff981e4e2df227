// Package app runs the catalog's use cases on its event store: one
// es.Handler per aggregate (commands are stamped with the injected clock's
// time here, never in the domain), the handlers of other services' events —
// the reservation saga on order events (Saga.Routes) and the stock moves on
// shipments and returns (ShipmentRoutes, ReturnRoutes) — and the
// products-by-vendor read model behind ListProducts (ProductIndex).
//
// It knows no transport: the platform (see the catalog package) subscribes
// the handlers, retries and parks what they fail, and feeds the read model.
// A handler returns an error to be retried, or one marked fault.Permanent
// for an event no retry can cure.
//
// Reads of one resource (GetProduct, GetVendor, …) load the aggregate and
// are strongly consistent; listing reads the read model, which waits for the
// store's current position first so a caller sees its own writes.
package app

import (
	"context"
	"log/slog"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/projection"
	"github.com/custody/custody/services/catalog/domain"
)

// Store is the catalog's event store: the port plus the position of its
// newest event, which read models wait for. The JetStream store is one.
type Store = projection.Store

// App holds the catalog's command handlers and read models.
type App struct {
	store Store
	clock clock.Clock
	log   *slog.Logger

	Vendors      *es.Handler[domain.Vendor, domain.VendorCommand]
	Products     *es.Handler[domain.Product, domain.ProductCommand]
	Links        *es.Handler[domain.Link, domain.LinkCommand]
	Sessions     *es.Handler[domain.Session, domain.SessionCommand]
	Reservations *es.Handler[domain.Reservation, domain.ReservationCommand]

	index  *ProductIndex
	orders *projection.Upstream // read for the products of an order whose part fulfilment cancelled
}

// Deps is what the App runs on: the catalog's store, the clock and the
// logger, and Open for the order service's store (read only to find the
// products of an order whose part the ship-by policy cancelled).
type Deps = projection.Deps

// New returns an App on d.Store. It starts nothing: the platform folds the
// store into the read model (Index) and hands the App the events it
// reacts to.
func New(d Deps) *App {
	store := d.Store
	return &App{
		store: store, clock: d.Clock, log: d.Logger,
		Vendors:      es.NewHandler(domain.Vendors, store, d.Handlers),
		Products:     es.NewHandler(domain.Products, store, d.Handlers),
		Links:        es.NewHandler(domain.Links, store, d.Handlers),
		Sessions:     es.NewHandler(domain.Sessions, store, d.Handlers),
		Reservations: es.NewHandler(domain.Reservations, store, d.Handlers),
		index:        NewProductIndex(),
		orders:       projection.NewUpstream("order", d.Open),
	}
}

// Index is the products-by-vendor read model behind ListProducts, to be fed
// every event of the catalog's store in order.
func (a *App) Index() *ProductIndex { return a.index }

// Call identifies one command: its idempotency id and who asked.
type Call struct {
	// ID is the command id, e.g. es.DeriveID(rpc, scope, request_id):
	// repeating it changes nothing and returns the current state.
	ID   string
	Meta es.Meta
}

func command[C any](aggregateID string, call Call, body C) es.Command[C] {
	return es.Command[C]{AggregateID: aggregateID, ID: call.ID, Body: body, Meta: call.Meta}
}

// RegisterVendor registers a vendor.
func (a *App) RegisterVendor(ctx context.Context, call Call, c domain.RegisterVendor) (domain.Vendor, error) {
	c.Now = a.clock.Now()
	res, err := a.Vendors.Handle(ctx, command[domain.VendorCommand](c.VendorID, call, c))
	return res.State, err
}

// CreateProduct lists a product for a registered vendor.
func (a *App) CreateProduct(ctx context.Context, call Call, c domain.CreateProduct) (domain.Product, error) {
	v, _, _, err := a.Vendors.Load(ctx, c.VendorID)
	if err != nil {
		return domain.Product{}, err
	}
	if !v.Registered {
		return domain.Product{}, &domain.NotFoundError{Resource: "vendor", ID: c.VendorID}
	}
	c.Now = a.clock.Now()
	res, err := a.Products.Handle(ctx, command[domain.ProductCommand](c.ProductID, call, c))
	return res.State, err
}

// AdjustStock restocks or corrects one SKU.
func (a *App) AdjustStock(ctx context.Context, call Call, c domain.AdjustStock) (domain.Product, error) {
	c.Now = a.clock.Now()
	return a.onSKU(ctx, call, c.SkuID, c)
}

// onSKU hands c to the product skuID names (NotFound when it names none).
func (a *App) onSKU(ctx context.Context, call Call, skuID string, c domain.ProductCommand) (domain.Product, error) {
	productID, ok := domain.ProductOfSKU(skuID)
	if !ok {
		return domain.Product{}, &domain.NotFoundError{Resource: "sku", ID: skuID}
	}
	res, err := a.Products.Handle(ctx, command[domain.ProductCommand](productID, call, c))
	return res.State, err
}

// SetVendorHandlingTime sets or clears a vendor's handling time.
func (a *App) SetVendorHandlingTime(ctx context.Context, call Call, vendorID string, c domain.SetHandlingTime) (domain.Vendor, error) {
	c.Now = a.clock.Now()
	res, err := a.Vendors.Handle(ctx, command[domain.VendorCommand](vendorID, call, c))
	return res.State, err
}

// UpdateProduct changes a product's descriptive fields.
func (a *App) UpdateProduct(ctx context.Context, call Call, productID string, c domain.UpdateProduct) (domain.Product, error) {
	c.Now = a.clock.Now()
	res, err := a.Products.Handle(ctx, command[domain.ProductCommand](productID, call, c))
	return res.State, err
}

// SetSkuPrice changes one SKU's price.
func (a *App) SetSkuPrice(ctx context.Context, call Call, c domain.SetSkuPrice) (domain.Product, error) {
	c.Now = a.clock.Now()
	return a.onSKU(ctx, call, c.SkuID, c)
}

// AddSKU adds a SKU to a product.
func (a *App) AddSKU(ctx context.Context, call Call, productID string, c domain.AddSKU) (domain.Product, error) {
	c.Now = a.clock.Now()
	res, err := a.Products.Handle(ctx, command[domain.ProductCommand](productID, call, c))
	return res.State, err
}

// ArchiveProduct stops selling a product.
func (a *App) ArchiveProduct(ctx context.Context, call Call, productID string, c domain.ArchiveProduct) (domain.Product, error) {
	c.Now = a.clock.Now()
	res, err := a.Products.Handle(ctx, command[domain.ProductCommand](productID, call, c))
	return res.State, err
}

// CreateLink makes creatorID's link linkID to productID, at the product's
// commission rate of this moment.
func (a *App) CreateLink(ctx context.Context, call Call, linkID, creatorID, productID string) (domain.Link, error) {
	p, err := a.Product(ctx, productID)
	if err != nil {
		return domain.Link{}, err
	}
	c := domain.CreateLink{CreatorID: creatorID, ProductID: p.ID, VendorID: p.VendorID, CommissionBps: p.CommissionBps,
		Archived: p.Archived, Now: a.clock.Now()}
	res, err := a.Links.Handle(ctx, command[domain.LinkCommand](linkID, call, c))
	return res.State, err
}

// StartSession starts a live session.
func (a *App) StartSession(ctx context.Context, call Call, sessionID string, c domain.StartSession) (domain.Session, error) {
	c.Now = a.clock.Now()
	res, err := a.Sessions.Handle(ctx, command[domain.SessionCommand](sessionID, call, c))
	return res.State, err
}

// PinProduct pins productID in a session at its commission rate of this
// moment.
func (a *App) PinProduct(ctx context.Context, call Call, sessionID, productID string) (domain.Session, error) {
	p, err := a.Product(ctx, productID)
	if err != nil {
		return domain.Session{}, err
	}
	c := domain.PinProduct{ProductID: p.ID, VendorID: p.VendorID, CommissionBps: p.CommissionBps, Archived: p.Archived, Now: a.clock.Now()}
	res, err := a.Sessions.Handle(ctx, command[domain.SessionCommand](sessionID, call, c))
	return res.State, err
}

// UnpinProduct unpins productID.
func (a *App) UnpinProduct(ctx context.Context, call Call, sessionID, productID string) (domain.Session, error) {
	c := domain.UnpinProduct{ProductID: productID, Now: a.clock.Now()}
	res, err := a.Sessions.Handle(ctx, command[domain.SessionCommand](sessionID, call, c))
	return res.State, err
}

// EndSession ends a session.
func (a *App) EndSession(ctx context.Context, call Call, sessionID string) (domain.Session, error) {
	res, err := a.Sessions.Handle(ctx, command[domain.SessionCommand](sessionID, call, domain.EndSession{Now: a.clock.Now()}))
	return res.State, err
}

// load loads aggregate id with h: a NotFoundError of resource unless
// exists holds for its state.
func load[S, C any](ctx context.Context, h *es.Handler[S, C], resource, id string, exists func(S) bool) (S, error) {
	s, _, _, err := h.Load(ctx, id)
	if err == nil && !exists(s) {
		err = &domain.NotFoundError{Resource: resource, ID: id}
	}
	return s, err
}

// Vendor loads a vendor (NotFoundError if it is not registered).
func (a *App) Vendor(ctx context.Context, id string) (domain.Vendor, error) {
	return load(ctx, a.Vendors, "vendor", id, func(v domain.Vendor) bool { return v.Registered })
}

// Product loads a product.
func (a *App) Product(ctx context.Context, id string) (domain.Product, error) {
	return load(ctx, a.Products, "product", id, func(p domain.Product) bool { return p.Created })
}

// ProductOfSKU loads the product a SKU belongs to (NotFoundError for a SKU
// that does not exist).
func (a *App) ProductOfSKU(ctx context.Context, skuID string) (domain.Product, error) {
	id, ok := domain.ProductOfSKU(skuID)
	if !ok {
		return domain.Product{}, &domain.NotFoundError{Resource: "sku", ID: skuID}
	}
	p, err := a.Product(ctx, id)
	if err != nil {
		if domain.IsA(err, &domain.NotFoundError{Resource: "product"}) {
			err = &domain.NotFoundError{Resource: "sku", ID: skuID}
		}
		return p, err
	}
	if _, ok := p.SKU(skuID); !ok {
		return p, &domain.NotFoundError{Resource: "sku", ID: skuID}
	}
	return p, nil
}

// Link loads an affiliate link.
func (a *App) Link(ctx context.Context, id string) (domain.Link, error) {
	return load(ctx, a.Links, "link", id, func(l domain.Link) bool { return l.Created })
}

// Session loads a live session.
func (a *App) Session(ctx context.Context, id string) (domain.Session, error) {
	return load(ctx, a.Sessions, "session", id, func(s domain.Session) bool { return s.Started })
}

// Reservation loads an order's reservation.
func (a *App) Reservation(ctx context.Context, orderID string) (domain.Reservation, error) {
	r, _, _, err := a.Reservations.Load(ctx, orderID)
	return r, err
}

// ListProducts returns up to limit of a vendor's products, newest first,
// created before position before (0: from the newest), and the position to
// pass for the next page (0 at the end).
func (a *App) ListProducts(ctx context.Context, vendorID string, limit int, before uint64) ([]domain.Product, uint64, error) {
	// Read your writes, for a bounded wait; after it, what the read model has.
	ok, err := a.index.Progress().CatchUp(ctx, projection.DefaultWait, a.store)
	switch {
	case err != nil:
		a.log.Warn("catalog: listing without read-your-writes: store position unknown", "err", err)
	case !ok && ctx.Err() != nil:
		return nil, 0, ctx.Err()
	}
	ps, next := a.index.List(vendorID, limit, before)
	return ps, next, nil
}
