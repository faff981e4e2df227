// Package app is the payouts service's application layer: the reactions
// to other services' events (order confirmed or cancelled, fulfilment
// delivered or cancelled, claims opened and closed, refunds issued), the
// return-window and reserve deadlines, payout runs, and the read side
// (balances, ledger entries, statements).
//
// Consistency, in short:
//   - Every money movement is decided by an aggregate (one per order, one
//     for payout runs) and appended with the fact that explains it; the
//     command id derives from the causing event (or deadline, or request),
//     and the aggregate also refuses a cause it has booked, so redelivery,
//     replay and restarts change nothing.
//   - Events of different services arrive through different consumers, so
//     a delivery, claim or refund can overtake the OrderConfirmed it
//     depends on (a lagging consumer, a replay from scratch). A reaction
//     that finds its order not captured reads the order's own stream and,
//     if OrderConfirmed is there, captures first — with the very command
//     id the order consumer uses, so whichever comes second is a no-op.
//   - Reads (balances, entries, statements) first wait, bounded, for the
//     read side to reach the store's newest position: a caller sees its own
//     and every earlier write. RunPayouts requires it: it decides from the
//     balances at that position and refuses (Unavailable) rather than pay
//     from a stale view.
//   - Deadlines are in memory; the read side re-schedules every open one
//     as it replays the store at start, so a window that closed while the
//     service was down releases right after it comes back.
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
	"github.com/custody/custody/pkg/deadline"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/projection"
	"github.com/custody/custody/services/payouts/domain"
)

// Config tunes the service. Zero fields take the defaults.
type Config struct {
	// Policy holds the rates and durations (domain.DefaultPolicy).
	Policy domain.Policy
	// ReadWait bounds read-your-writes waits (read side, tier view).
	// Default 2s.
	ReadWait time.Duration
	// Concurrency of the order and fulfilment consumers (different orders
	// side by side; each order's events in order). Default 8. The trust
	// consumer is sequential, so a claim's open, refund and close are
	// booked in the order trust wrote them.
	Concurrency int
}

func (c Config) withDefaults() Config {
	if c.Policy.Tiers == nil {
		c.Policy = domain.DefaultPolicy()
	}
	if c.ReadWait <= 0 {
		c.ReadWait = 2 * time.Second
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 8
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
	// Store holds the payouts events.
	Store Store
	// OpenUpstream opens another service's events read-only ("order",
	// "fulfilment", "trust"), waiting until that service has created its
	// stream (platform.Deps.OpenStoreOf).
	OpenUpstream func(ctx context.Context, service string) (Store, error)
	// JetStream runs the durable consumers; nil runs none (tests that call
	// the Handle*Event methods themselves).
	JetStream jetstream.JetStream
	Replicas  int
	Clock     clock.Clock
	Logger    *slog.Logger
}

// Consumer names (durable, on the upstream services' streams).
const (
	OrderConsumer      = "payouts-on-order"
	FulfilmentConsumer = "payouts-on-fulfilment"
	TrustConsumer      = "payouts-on-trust"
)

// Service is the payouts service.
type Service struct {
	cfg    Config
	d      Deps
	clock  clock.Clock
	log    *slog.Logger
	ledger *es.Handler[domain.Ledger, domain.Command]
	runs   *es.Handler[domain.Payouts, domain.RunPayouts]
	view   *LedgerView
	tiers  *TierView
	sched  *deadline.Scheduler

	mu     sync.RWMutex
	orders Store // the order service's events, once open

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
		ledger: es.NewHandler(domain.LedgerDecider, d.Store, es.Options{}),
		runs:   es.NewHandler(domain.PayoutsDecider, d.Store, es.Options{}),
		tiers:  NewTierView(), sched: deadline.New("payouts", d.Clock, d.Logger)}
	s.view = NewLedgerView(scheduler{s}, d.Logger.With("projection", "ledger"))
	return s
}

// View is the read side (tests wait on it).
func (s *Service) View() *LedgerView { return s.view }

// Start catches the read side up with the payouts store (bounded by ctx),
// which schedules every open deadline, starts the deadline scheduler and,
// in the background, the consumers of the order, fulfilment and trust
// streams (each waits for its stream, which may not exist yet).
func (s *Service) Start(ctx context.Context) error {
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = cancel
	target, err := s.d.Store.LastPosition(ctx)
	if err != nil {
		cancel()
		return err
	}
	s.wg.Go(func() { projection.Follow(bg, s.log.With("projection", "ledger"), s.d.Store, 1, s.view.Apply) })
	if !s.view.pos.Reach(ctx, 0, target) {
		cancel()
		s.wg.Wait()
		return errors.Join(errors.New("payouts read side did not catch up"), ctx.Err())
	}
	s.log.Info("payouts ledger caught up", "position", target, "deadlines", s.sched.Pending())
	s.wg.Go(func() { s.sched.Run(bg) })
	if s.d.OpenUpstream != nil {
		s.wg.Go(func() { s.upstream(bg, "order", OrderConsumer, OrderEventTypes, s.cfg.Concurrency, s.HandleOrderEvent) })
		s.wg.Go(func() {
			s.upstream(bg, "fulfilment", FulfilmentConsumer, FulfilmentEventTypes, s.cfg.Concurrency, s.HandleFulfilmentEvent)
		})
		s.wg.Go(func() { s.upstream(bg, "trust", TrustConsumer, TrustEventTypes, 1, s.HandleTrustEvent) })
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

// upstream opens a service's stream (waiting for it), starts what reads it
// and keeps a durable consumer on it until ctx ends.
func (s *Service) upstream(ctx context.Context, service, name string, types []string, concurrency int, h bus.Handler) {
	log := s.log.With("consumer", name)
	var store Store
	for b := projection.NewBackoff(); ctx.Err() == nil; b.Sleep(ctx) {
		st, err := s.d.OpenUpstream(ctx, service)
		if err == nil {
			store = st
			break
		}
		if ctx.Err() == nil {
			log.Warn("opening "+service+"'s events; will retry", "err", err)
		}
	}
	if store == nil {
		return
	}
	switch service {
	case "order":
		s.mu.Lock()
		s.orders = store
		s.mu.Unlock()
	case "trust":
		s.wg.Go(func() { s.tiers.Run(ctx, log.With("projection", "tiers"), store) })
	}
	if s.d.JetStream == nil {
		return
	}
	for b := projection.NewBackoff(); ctx.Err() == nil; b.Sleep(ctx) {
		c, err := bus.Subscribe(ctx, s.d.JetStream, bus.Config{
			Name: name, SourceService: service, EventTypes: types, Concurrency: concurrency, Replicas: s.d.Replicas, Logger: log,
			Backoff:    []time.Duration{200 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second},
			MaxDeliver: 20, // ~1.5 min of retries before parking: outlasts a lagging order consumer
		}, h)
		if err != nil {
			log.Warn("starting the consumer; will retry", "err", err)
			continue
		}
		log.Info("reacting to " + service + " events")
		<-ctx.Done()
		c.Stop()
		return
	}
}

func (s *Service) orderStore() Store {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.orders
}

// catchUp waits (at most ReadWait) until the read side has applied every
// payouts event stored now, and reports whether it did.
func (s *Service) catchUp(ctx context.Context) (bool, error) {
	target, err := s.d.Store.LastPosition(ctx)
	if err != nil {
		return false, err
	}
	return s.view.pos.Reach(ctx, s.cfg.ReadWait, target), nil
}
