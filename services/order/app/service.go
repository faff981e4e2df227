// Package app is the order service's application layer: the commands
// (PlaceOrder, CancelOrder, CancelOrderLines, ChangeShippingAddress), the
// queries (GetOrder from the aggregate, ListOrders from a read model), the
// read models (the orders by buyer, vendor, creator, PSP reference and
// place time, with their tracking numbers from the fulfilment store, and
// the catalog view that prices orders without calling the catalog) and the
// handlers of other services' events (the order side of the stock saga,
// fulfilment's progress and cancellations, trust's refunds, payouts'
// settlements). It knows no transport: the platform's runtime folds the
// read models (Apply) and delivers the events (…Routes), as the order
// module declares.
//
// Consistency, in short:
//   - PlaceOrder returns once OrderPlaced is durably stored. If the catalog
//     view does not know a SKU, link, session or pin the request names, it
//     first catches up with the catalog's stream (bounded by
//     Config.CatalogWait) and decides then, so an order placed right after
//     CreateProduct or PinProduct works. A view that cannot catch up in time
//     answers ErrCatalogUnavailable rather than "unknown SKU".
//   - Until the catalog's stream exists and the view has caught up with it
//     once, PlaceOrder answers ErrCatalogUnavailable (after waiting up to
//     CatalogWait); every other RPC works.
//   - GetOrder and the commands on an order read the aggregate (strongly
//     consistent);
//     ListOrders first waits (bounded) for the read model to reach the order
//     stream's last position, so a caller lists the orders it just placed.
package app

import (
	"context"
	"errors"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/personal"
	"github.com/custody/custody/pkg/projection"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/order/domain"
)

// Config tunes the service. Zero fields take the defaults.
type Config struct {
	// AttributionWindow: how long a touch earns a creator commission.
	// Default domain.DefaultAttributionWindow (7 days).
	AttributionWindow time.Duration
	// CatalogWait bounds read-your-writes waits: for the catalog view before
	// pricing, for the read model before listing. Default 2s.
	CatalogWait time.Duration
	// PollInterval: how soon a PlaceOrder waiting for its outcome first
	// rereads the order from the store if the read model, which wakes the
	// wait, does not have it yet (backing off to 10×). Default 1s.
	PollInterval time.Duration
	// MaxWait caps PlaceOrder's wait_timeout. Default 30s.
	MaxWait time.Duration
}

func (c Config) withDefaults() Config {
	if c.AttributionWindow <= 0 {
		c.AttributionWindow = domain.DefaultAttributionWindow
	}
	c.CatalogWait = projection.WaitOrDefault(c.CatalogWait)
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 30 * time.Second
	}
	return c
}

// Deps is what the service runs on: the order store, and the catalog's,
// opened (Open) when PlaceOrder first catches its view up.
type Deps = projection.Deps

// Service is the order service.
type Service struct {
	cfg      Config
	d        Deps
	h        *es.Handler[domain.Order, domain.Command]
	catalog  *CatalogView
	gate     *stockGate
	orders   *ReadModel
	notifier *notifier
	// catalogStore is opened at the first catch-up.
	catalogStore *projection.Upstream
	// fulfilmentStore is opened at the first search by tracking number.
	fulfilmentStore *projection.Upstream
}

// New returns a service. It starts nothing: until the platform folds its
// read models (Orders, CatalogView), PlaceOrder answers
// ErrCatalogUnavailable and ListOrders lists nothing.
func New(cfg Config, d Deps) *Service {
	s := &Service{cfg: cfg.withDefaults(), d: d,
		h: es.NewHandler(domain.Decider, d.Store, d.Handlers), catalog: NewCatalogView(), notifier: newNotifier(),
		catalogStore: projection.NewUpstream("catalog", d.Open), fulfilmentStore: projection.NewUpstream("fulfilment", d.Open)}
	s.gate = newStockGate(s.catalog)
	s.orders = NewReadModel(func(id string, status domain.Status) {
		s.notifier.notify(id)
		if status == domain.StatusRejected || status == domain.StatusCancelled {
			s.gate.settle(id) // nothing of it is held
		}
	})
	return s
}

// Orders is the read model of orders (all, by buyer, vendor, creator and
// PSP reference), fed by the order store; its Tracking index is fed by
// the fulfilment store.
func (s *Service) Orders() *ReadModel { return s.orders }

// CatalogView is the view of the catalog PlaceOrder prices from, fed by
// the catalog's store.
func (s *Service) CatalogView() *CatalogView { return s.catalog }

// PlaceOrder is a buyer's order as requested.
type PlaceOrder struct {
	RequestID   string
	BuyerID     string
	Lines       []domain.LineRequest
	Address     *typev1.Address
	Attribution *AttributionRequest
	Payment     domain.Payment
	// Wait, if positive, waits (at most Config.MaxWait) for CONFIRMED or
	// REJECTED.
	Wait time.Duration
	// Actor is who asked, recorded with the events: "buyer:b1", "service".
	Actor string
	// Fingerprint identifies the request (apierr.Fingerprint): the same
	// RequestID with another fingerprint is refused (es.ErrRequestReused).
	Fingerprint string
}

// AttributionRequest names the touchpoint the buyer came through: exactly
// one of AffiliateLinkID and LiveSessionID. A zero TouchTime means the
// order time.
type AttributionRequest struct {
	AffiliateLinkID string
	LiveSessionID   string
	TouchTime       time.Time
}

// PlaceOrder places the order (once per buyer and request id) and returns
// it, PENDING or, with Wait, as far as it got.
func (s *Service) PlaceOrder(ctx context.Context, req PlaceOrder) (OrderView, error) {
	id := domain.OrderID(req.BuyerID, req.RequestID)
	// A repeated request finds its order in memory or, through the
	// aggregate (a place command applied before decides nothing), in the
	// store — if it repeats the request that placed the order: the same
	// request id for another order is refused (es.ErrRequestReused).
	o, rev, ok, err := s.h.PeekCommand(id, placeID(id), req.Fingerprint)
	if err != nil {
		return OrderView{}, err
	}
	view := OrderView{Order: o, Revision: rev}
	if !ok {
		if err := s.notErased(ctx, req.BuyerID); err != nil {
			return OrderView{}, err
		}
		if view, err = s.place(ctx, id, req); err != nil {
			if errors.Is(err, es.ErrRequestReused) {
				return OrderView{}, err
			}
			// A repeat may not price any more (the catalog view is not
			// ready after a restart, the SKU sold out meanwhile): the order
			// it placed stands. Most refusals are of new orders: ask the
			// store whether there is one before looking it up.
			if stored, serr := s.h.Stored(ctx, id); serr == nil && !stored {
				return OrderView{}, err
			}
			res, lerr := s.h.Lookup(ctx, id, placeID(id), req.Fingerprint)
			switch {
			case errors.Is(lerr, es.ErrRequestReused):
				return OrderView{}, lerr
			case lerr != nil || !res.Duplicate:
				return OrderView{}, err
			}
			view = OrderView{Order: res.State, Revision: res.Revision}
		}
	}
	if req.Wait > 0 && !view.Order.Status.Final() {
		return s.awaitOutcome(ctx, view, min(req.Wait, s.cfg.MaxWait))
	}
	return view, nil
}

func (s *Service) place(ctx context.Context, id string, req PlaceOrder) (OrderView, error) {
	if err := s.catalog.WaitReady(ctx, s.cfg.CatalogWait); err != nil {
		return OrderView{}, err
	}
	now := s.d.Clock.Now()
	lines, attr, v := s.price(req, now)
	switch {
	case len(v) > 0:
		// Read your writes: the catalog may have just created the SKU, the
		// link or the pin this order names.
		if err := s.catchUpCatalog(ctx); err != nil {
			return OrderView{}, err
		}
		if lines, attr, v = s.price(req, now); len(v) > 0 {
			return OrderView{}, v.Err()
		}
	case !domain.Pays(lines, req.Payment.Amount):
		// The buyer may pay a price the catalog set a moment ago, which
		// the view has not folded yet: catch up and price again. If the
		// view cannot, the aggregate answers with the total it has
		// (payment.amount).
		if s.catchUpCatalog(ctx) == nil {
			if lines, attr, v = s.price(req, now); len(v) > 0 {
				return OrderView{}, v.Err()
			}
		}
	}
	if err := domain.CheckOnSale(req.Lines, s.catalog.SKU); err != nil {
		return OrderView{}, err
	}
	if err := s.gate.admit(id, lines); err != nil {
		return OrderView{}, err
	}
	// The aggregate splits the priced lines by vendor and checks the
	// payment against the total.
	res, err := s.h.Handle(ctx, es.Command[domain.Command]{
		AggregateID: id, ID: placeID(id),
		Body: domain.PlaceOrder{BuyerID: req.BuyerID, Lines: lines, Address: req.Address, Attribution: attr,
			Payment: req.Payment, Time: now},
		Meta: es.Meta{CorrelationID: id, Actor: req.Actor, RequestFingerprint: req.Fingerprint},
	})
	if err != nil || res.Duplicate {
		s.gate.settle(id) // nothing placed now: no claim
	}
	if err != nil {
		return OrderView{}, err
	}
	return OrderView{Order: res.State, Revision: res.Revision}, nil
}

// placeID is the id of the command that places order id.
func placeID(id string) string { return es.DeriveID("place", id) }

// price prices the lines, whose shape the edge has checked, and attributes
// them, from the catalog view.
func (s *Service) price(req PlaceOrder, now time.Time) ([]domain.Line, *domain.Attribution, domain.Violations) {
	lines, v := domain.PriceLines(req.Lines, s.catalog.SKU)
	a := req.Attribution
	if len(v) > 0 || a == nil {
		return lines, nil, v
	}
	switch {
	case a.AffiliateLinkID != "":
		link, ok := s.catalog.Link(a.AffiliateLinkID)
		if !ok {
			v.Add("attribution.affiliate_link_id", "unknown affiliate link %q", a.AffiliateLinkID)
			return nil, nil, v
		}
		return domain.AttributeToLink(lines, link, a.TouchTime, now, s.cfg.AttributionWindow)
	case a.LiveSessionID != "":
		session, ok := s.catalog.Session(a.LiveSessionID)
		if !ok || session.CreatorID == "" {
			v.Add("attribution.live_session_id", "unknown live session %q", a.LiveSessionID)
			return nil, nil, v
		}
		return domain.AttributeToSession(lines, session, a.TouchTime, now, s.cfg.AttributionWindow)
	}
	return lines, nil, nil
}

// catchUpCatalog waits, at most CatalogWait, until the catalog view has
// applied every catalog event stored now.
func (s *Service) catchUpCatalog(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CatalogWait)
	defer cancel()
	if err := s.catalogStore.CatchUp(ctx, s.catalog.Position()); err != nil {
		return errors.Join(ErrCatalogUnavailable, err)
	}
	return nil
}

// awaitOutcome waits until the order leaves PENDING, d passes (then it
// returns the order as it is) or ctx ends.
func (s *Service) awaitOutcome(ctx context.Context, last OrderView, d time.Duration) (OrderView, error) {
	id := last.Order.ID
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	// The notifier wakes us (the read model sees every order event, whoever
	// wrote it), and the answer is in memory: the order this process
	// decided, or the read model's copy of one another process decided.
	// Reading the store is the fallback of a poll, backing off so that a
	// flash sale's thousands of waiting checkouts do not hammer it.
	poll := s.cfg.PollInterval
	tick := time.NewTimer(poll)
	defer tick.Stop()
	for {
		woken, release := s.notifier.watch(id)
		if v, ok := s.decided(id); ok {
			release()
			return v, nil
		}
		polled := false
		select {
		case <-woken:
		case <-tick.C:
			polled = true
			poll = min(2*poll, 10*s.cfg.PollInterval)
			tick.Reset(poll)
		case <-wctx.Done():
		}
		release()
		if ctx.Err() != nil {
			return OrderView{}, ctx.Err()
		}
		if wctx.Err() != nil {
			return last, nil // the wait ran out: the order as it is
		}
		if v, ok := s.decided(id); ok {
			return v, nil
		}
		if !polled {
			continue
		}
		if s.orders.Has(id) {
			// The read model has the order, pending: it will wake us. (Under
			// overload, thousands of waits rereading the store made it worse.)
			continue
		}
		o, rev, _, err := s.h.Load(wctx, id)
		if err != nil && wctx.Err() == nil {
			return OrderView{}, err
		}
		if err == nil {
			last = OrderView{Order: o, Revision: rev}
			if o.Status.Final() {
				return last, nil
			}
		}
	}
}

// decided is the order, if this process has it in memory confirmed or
// rejected: in its handler (this process decides most orders itself) or
// in the read model (fed by the store, whoever wrote it).
func (s *Service) decided(id string) (OrderView, bool) {
	if o, rev, ok := s.h.Peek(id); ok && o.Status.Final() {
		return OrderView{Order: o, Revision: rev}, true
	}
	if o, rev, ok := s.orders.Final(id); ok {
		return OrderView{Order: o, Revision: rev}, true
	}
	return OrderView{}, false
}

// GetOrder reads an order.
func (s *Service) GetOrder(ctx context.Context, id string) (OrderView, error) {
	o, rev, exists, err := s.h.Load(ctx, id)
	if err != nil {
		return OrderView{}, err
	}
	if !exists {
		return OrderView{}, &fault.NotFoundError{Resource: "order", ID: id}
	}
	return OrderView{Order: o, Revision: rev}, nil
}

// CancelOrder cancels an order that has not shipped. The same request id
// again returns the same answer; cancelling a cancelled order is a no-op.
type CancelOrder struct {
	OrderID   string
	RequestID string
	Reason    string
	Actor     string
	// Fingerprint identifies the request (apierr.Fingerprint): the same
	// RequestID with another fingerprint is refused (es.ErrRequestReused).
	Fingerprint string
}

// CancelOrder cancels an order.
func (s *Service) CancelOrder(ctx context.Context, req CancelOrder) (OrderView, error) {
	return s.request(ctx, req.OrderID, "cancel", req.RequestID, req.Actor, req.Fingerprint,
		domain.CancelOrder{Reason: req.Reason, By: req.Actor, Time: s.d.Clock.Now()})
}

// CancelOrderLines cancels units of unshipped lines, or a vendor's whole
// unshipped part, of a confirmed order (domain.CancelOrderLines). The same
// request id again returns the order as it is, cancelling nothing more.
type CancelOrderLines struct {
	OrderID   string
	RequestID string
	Lines     []domain.LineCancellation
	VendorID  string
	Reason    string
	// Vendor is the vendor asking, who may cancel only its own part's
	// lines; empty for the buyer, support and services.
	Vendor string
	Actor  string
	// Fingerprint identifies the request (apierr.Fingerprint).
	Fingerprint string
}

// CancelOrderLines cancels lines or a part of an order.
func (s *Service) CancelOrderLines(ctx context.Context, req CancelOrderLines) (OrderView, error) {
	return s.request(ctx, req.OrderID, "cancel-lines", req.RequestID, req.Actor, req.Fingerprint,
		domain.CancelOrderLines{Lines: req.Lines, VendorID: req.VendorID, Vendor: req.Vendor, Reason: req.Reason, By: req.Actor, Time: s.d.Clock.Now()})
}

// ChangeShippingAddress changes an order's shipping address until its
// first part ships. The same request id again returns the order as it is.
type ChangeShippingAddress struct {
	OrderID   string
	RequestID string
	Address   *typev1.Address
	Actor     string
	// Fingerprint identifies the request (apierr.Fingerprint).
	Fingerprint string
}

// ChangeShippingAddress changes where an order goes.
func (s *Service) ChangeShippingAddress(ctx context.Context, req ChangeShippingAddress) (OrderView, error) {
	addr, err := s.storedIfSame(ctx, req.OrderID, req.Address)
	if err != nil {
		return OrderView{}, err
	}
	return s.request(ctx, req.OrderID, "change-address", req.RequestID, req.Actor, req.Fingerprint,
		domain.ChangeShippingAddress{Address: addr, By: req.Actor, Time: s.d.Clock.Now()})
}

// notErased refuses a new order of a buyer whose personal data was
// erased: its address would be stored as "[erased]" (pkg/personal), an
// order nobody could ship.
func (s *Service) notErased(ctx context.Context, buyerID string) error {
	c, ok := s.d.Handlers.Personal.(*personal.Codec)
	if !ok {
		return nil
	}
	erased, err := c.Keys().IsErased(ctx, personal.Subject("buyer", buyerID))
	if err != nil {
		return err
	}
	if erased {
		return fault.Precondition(domain.ReasonBuyerErased, "buyer %s was erased (their personal data is gone): it can place no new order", buyerID)
	}
	return nil
}

// storedIfSame returns the order's stored address when it is addr, else
// addr. The stored one is sealed (pkg/personal: its personal fields are
// tokens), so the decider, which sees only tokens, cannot tell that a
// request asks for the address the order already has; given the stored
// one, it decides nothing, as it does for the same address in clear.
func (s *Service) storedIfSame(ctx context.Context, orderID string, addr *typev1.Address) (*typev1.Address, error) {
	r, ok := s.d.Handlers.Personal.(interface {
		Reveal(context.Context, proto.Message) (proto.Message, error)
	})
	if !ok {
		return addr, nil
	}
	o, _, exists, err := s.h.Load(ctx, orderID)
	if err != nil || !exists || o.Address == nil {
		return addr, err
	}
	stored, err := r.Reveal(ctx, o.Address)
	if err != nil {
		return nil, err
	}
	if proto.Equal(stored, addr) {
		return o.Address, nil
	}
	return addr, nil
}

// request runs a caller's command on an order, once per request id: its
// command id is derived from the order, the kind of request and the
// request id, so a repeat appends nothing (and one with another
// fingerprint is refused, es.ErrRequestReused).
func (s *Service) request(ctx context.Context, orderID, kind, requestID, actor, fingerprint string, body domain.Command) (OrderView, error) {
	res, err := s.h.Handle(ctx, es.Command[domain.Command]{
		AggregateID: orderID, ID: es.DeriveID(kind, orderID, requestID), Body: body,
		Meta: es.Meta{CorrelationID: orderID, Actor: actor, RequestFingerprint: fingerprint},
	})
	if errors.Is(err, domain.ErrNotPlaced) {
		return OrderView{}, &fault.NotFoundError{Resource: "order", ID: orderID}
	}
	if err != nil {
		return OrderView{}, err
	}
	return OrderView{Order: res.State, Revision: res.Revision}, nil
}

// ListOrders lists the orders that match q, newest first. It first lets
// the read model catch up with the orders stored now, and for a tracking
// number its tracking index with the shipments stored now (each bounded by
// CatalogWait; after that it answers from what it has), so a caller finds
// the order it just placed or shipped.
func (s *Service) ListOrders(ctx context.Context, q ListQuery) (Page, error) {
	_, _ = s.orders.Position().CatchUp(ctx, s.cfg.CatalogWait, s.d.Store) // then as far as it got
	if q.TrackingNumber != "" {
		wctx, cancel := context.WithTimeout(ctx, s.cfg.CatalogWait)
		_ = s.fulfilmentStore.CatchUp(wctx, s.orders.Tracking().Position()) // no shipments yet, or then as far as it got
		cancel()
	}
	return s.orders.List(q)
}
