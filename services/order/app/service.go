// Package app is the order service's application layer: the commands
// (PlaceOrder, CancelOrder), the queries (GetOrder from the aggregate,
// ListOrders from a read model), the catalog view that prices orders
// without calling the catalog, and the order side of the stock saga.
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
//   - GetOrder and CancelOrder read the aggregate (strongly consistent);
//     ListOrders first waits (bounded) for the read model to reach the order
//     stream's last position, so a caller lists the orders it just placed.
package app

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/pkg/bus"
	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
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
	// rereads the order in case no notification came (backing off to 10×).
	// Default 100ms.
	PollInterval time.Duration
	// MaxWait caps PlaceOrder's wait_timeout. Default 30s.
	MaxWait time.Duration
	// SagaConcurrency: catalog events handled at once (different orders
	// side by side). Default 8.
	SagaConcurrency int
}

func (c Config) withDefaults() Config {
	if c.AttributionWindow <= 0 {
		c.AttributionWindow = domain.DefaultAttributionWindow
	}
	if c.CatalogWait <= 0 {
		c.CatalogWait = 2 * time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 100 * time.Millisecond
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 30 * time.Second
	}
	if c.SagaConcurrency <= 0 {
		c.SagaConcurrency = 8
	}
	return c
}

// Store is an event store that can tell its newest position, as the
// JetStream store does: projections wait until they have caught up with it.
type Store interface {
	eventstore.Store
	LastPosition(ctx context.Context) (uint64, error)
}

// Deps is what the service runs on.
type Deps struct {
	// Store holds the order events.
	Store Store
	// OpenCatalog opens the catalog's events read-only, waiting until the
	// catalog has created its stream (platform.Deps.OpenStoreOf).
	OpenCatalog func(ctx context.Context) (Store, error)
	// JetStream runs the saga's durable consumer; nil runs none (tests
	// that drive HandleCatalogEvent themselves).
	JetStream jetstream.JetStream
	Replicas  int
	Clock     clock.Clock
	Logger    *slog.Logger
}

// Service is the order service.
type Service struct {
	cfg      Config
	d        Deps
	clock    clock.Clock
	log      *slog.Logger
	h        *es.Handler[domain.Order, domain.Command]
	catalog  *CatalogView
	orders   *ReadModel
	notifier *notifier

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// New returns a service; Start it before use.
func New(cfg Config, d Deps) *Service {
	if d.Clock == nil {
		d.Clock = clock.Real()
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	s := &Service{cfg: cfg.withDefaults(), d: d, clock: d.Clock, log: d.Logger,
		h: es.NewHandler(domain.Decider, d.Store, es.Options{}), catalog: NewCatalogView(), notifier: newNotifier()}
	s.orders = NewReadModel(s.notifier.notify)
	return s
}

// Start catches the read model up with the order stream (bounded by ctx)
// and starts, in the background, the catalog view and the saga consumer:
// they wait for the catalog's stream, which may not exist yet.
func (s *Service) Start(ctx context.Context) error {
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = cancel
	target, err := s.d.Store.LastPosition(ctx)
	if err != nil {
		cancel()
		return err
	}
	s.wg.Go(func() { projection.Follow(bg, s.log.With("projection", "orders"), s.d.Store, 1, s.orders.Apply) })
	if !s.orders.pos.Reach(ctx, 0, target) {
		cancel()
		s.wg.Wait()
		return errors.Join(errors.New("order read model did not catch up"), ctx.Err())
	}
	s.orders.pos.MarkReady()
	if s.d.JetStream != nil {
		s.wg.Go(func() { s.consume(bg, FulfilmentConsumer, "fulfilment", FulfilmentEventTypes, s.HandleFulfilmentEvent) })
		s.wg.Go(func() { s.consume(bg, TrustConsumer, "trust", TrustEventTypes, s.HandleTrustEvent) })
	}
	if s.d.OpenCatalog != nil {
		s.wg.Go(func() { s.runCatalog(bg) })
	}
	return nil
}

// Stop stops the background work and waits for it, bounded by ctx.
func (s *Service) Stop(ctx context.Context) error {
	if s.stop == nil {
		return nil
	}
	s.stop()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) runCatalog(ctx context.Context) {
	log := s.log.With("projection", "catalog")
	var store Store
	for b := projection.NewBackoff(); ctx.Err() == nil; b.Sleep(ctx) {
		st, err := s.d.OpenCatalog(ctx)
		if err == nil {
			store = st
			break
		}
		if ctx.Err() == nil {
			log.Warn("opening the catalog's events; will retry", "err", err)
		}
	}
	if store == nil {
		return
	}
	s.wg.Go(func() { s.catalog.Run(ctx, log, store) })
	if s.d.JetStream == nil {
		return
	}
	for b := projection.NewBackoff(); ctx.Err() == nil; b.Sleep(ctx) {
		c, err := bus.Subscribe(ctx, s.d.JetStream, bus.Config{
			Name: SagaConsumer, SourceService: "catalog", EventTypes: SagaEventTypes,
			Replicas: s.d.Replicas, Logger: s.log, Concurrency: s.cfg.SagaConcurrency,
		}, s.HandleCatalogEvent)
		if err != nil {
			log.Warn("starting the saga consumer; will retry", "err", err)
			continue
		}
		<-ctx.Done()
		c.Stop()
		return
	}
}

// CatalogView is the service's catalog view (tests wait on it).
func (s *Service) CatalogView() *CatalogView { return s.catalog }

// NotFoundError: no order has this id.
type NotFoundError struct{ OrderID string }

func (e *NotFoundError) Error() string { return "order " + e.OrderID + " not found" }

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
	o, rev, exists, err := s.h.Load(ctx, id)
	if err != nil {
		return OrderView{}, err
	}
	view := OrderView{Order: o, Revision: rev}
	if !exists {
		if view, err = s.place(ctx, id, req); err != nil {
			return OrderView{}, err
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
	now := s.clock.Now()
	lines, attr, v := s.price(req, now)
	if len(v) > 0 {
		// Read your writes: the catalog may have just created the SKU, the
		// link or the pin this order names.
		if err := s.catalog.CatchUp(ctx, s.cfg.CatalogWait); err != nil {
			return OrderView{}, err
		}
		if lines, attr, v = s.price(req, now); len(v) > 0 {
			return OrderView{}, v.Err()
		}
	}
	res, err := s.h.Handle(ctx, es.Command[domain.Command]{
		AggregateID: id, ID: es.DeriveID("place", id),
		Body: domain.PlaceOrder{BuyerID: req.BuyerID, Lines: lines, Address: req.Address, Attribution: attr,
			Payment: req.Payment, Time: now},
		Meta: es.Meta{CorrelationID: id, Actor: req.Actor},
	})
	if err != nil {
		return OrderView{}, err
	}
	return OrderView{Order: res.State, Revision: res.Revision}, nil
}

// price prices and attributes the order from the catalog view.
func (s *Service) price(req PlaceOrder, now time.Time) ([]domain.Line, *domain.Attribution, domain.Violations) {
	lines, v := domain.PriceLines(req.Lines, s.catalog.SKU)
	if len(v) > 0 {
		return nil, nil, v
	}
	var attr *domain.Attribution
	if a := req.Attribution; a != nil {
		switch {
		case a.AffiliateLinkID != "":
			link, ok := s.catalog.Link(a.AffiliateLinkID)
			if !ok {
				v.Add("attribution.affiliate_link_id", "unknown affiliate link %q", a.AffiliateLinkID)
				return nil, nil, v
			}
			lines, attr, v = domain.AttributeToLink(lines, link, a.TouchTime, now, s.cfg.AttributionWindow)
		case a.LiveSessionID != "":
			session, ok := s.catalog.Session(a.LiveSessionID)
			if !ok || session.CreatorID == "" {
				v.Add("attribution.live_session_id", "unknown live session %q", a.LiveSessionID)
				return nil, nil, v
			}
			lines, attr, v = domain.AttributeToSession(lines, session, a.TouchTime, now, s.cfg.AttributionWindow)
		}
		if len(v) > 0 {
			return nil, nil, v
		}
	}
	_, total, err := domain.Split(lines)
	if err != nil {
		v.Add("lines", "%v", err)
		return nil, nil, v
	}
	if v = domain.CheckPayment(total, req.Payment.Amount); len(v) > 0 {
		return nil, nil, v
	}
	return lines, attr, nil
}

// awaitOutcome waits until the order leaves PENDING, d passes (then it
// returns the order as it is) or ctx ends.
func (s *Service) awaitOutcome(ctx context.Context, last OrderView, d time.Duration) (OrderView, error) {
	id := last.Order.ID
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	// The notifier wakes us (the read model sees every order event, whoever
	// wrote it); polling is the fallback, backing off so that a flash sale's
	// thousands of waiting checkouts do not hammer the store.
	poll := s.cfg.PollInterval
	tick := time.NewTimer(poll)
	defer tick.Stop()
	for {
		woken, release := s.notifier.watch(id)
		o, rev, _, err := s.h.Load(wctx, id)
		if err == nil {
			last = OrderView{Order: o, Revision: rev}
		}
		if err == nil && o.Status.Final() {
			release()
			return last, nil
		}
		if err != nil && wctx.Err() == nil {
			release()
			return OrderView{}, err
		}
		select {
		case <-woken:
		case <-tick.C:
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
	}
}

// GetOrder reads an order.
func (s *Service) GetOrder(ctx context.Context, id string) (OrderView, error) {
	o, rev, exists, err := s.h.Load(ctx, id)
	if err != nil {
		return OrderView{}, err
	}
	if !exists {
		return OrderView{}, &NotFoundError{OrderID: id}
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
}

// CancelOrder cancels an order.
func (s *Service) CancelOrder(ctx context.Context, req CancelOrder) (OrderView, error) {
	res, err := s.h.Handle(ctx, es.Command[domain.Command]{
		AggregateID: req.OrderID, ID: es.DeriveID("cancel", req.OrderID, req.RequestID),
		Body: domain.CancelOrder{Reason: req.Reason, By: req.Actor, Time: s.clock.Now()},
		Meta: es.Meta{CorrelationID: req.OrderID, Actor: req.Actor},
	})
	if errors.Is(err, domain.ErrNotPlaced) {
		return OrderView{}, &NotFoundError{OrderID: req.OrderID}
	}
	if err != nil {
		return OrderView{}, err
	}
	return OrderView{Order: res.State, Revision: res.Revision}, nil
}

// ListOrders lists a buyer's or a vendor's orders, newest first. It first
// lets the read model catch up with the orders stored now (bounded by
// CatalogWait; after that it answers from what it has).
func (s *Service) ListOrders(ctx context.Context, q ListQuery) (Page, error) {
	if target, err := s.d.Store.LastPosition(ctx); err == nil {
		s.orders.pos.Reach(ctx, s.cfg.CatalogWait, target)
	}
	return s.orders.List(q)
}
