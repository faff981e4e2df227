// Package app is the audit service's application layer. It follows every
// service's event store from the beginning into the index (domain.Index)
// and answers the three queries: an order's timeline (from the index),
// verification of its hash chains and its replay as of a moment (both
// re-read the streams from the stores, so they answer for what is stored
// now, not for what the index remembers).
//
// The audit service writes nothing: it opens every store read-only.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/projection"
	"github.com/custody/custody/services/audit/domain"

	// Every service's event types, so the index can decode them.
	_ "github.com/custody/custody/proto/custody/catalog/v1"
	_ "github.com/custody/custody/proto/custody/fulfilment/v1"
	_ "github.com/custody/custody/proto/custody/order/v1"
	_ "github.com/custody/custody/proto/custody/payouts/v1"
	_ "github.com/custody/custody/proto/custody/trust/v1"
)

// Store is a service's event store as the audit service reads it: the
// port, plus the newest position so the index knows when it has caught up
// (the JetStream store has it).
type Store interface {
	eventstore.Store
	LastPosition(ctx context.Context) (uint64, error)
}

// ErrNotCreatedYet: the service has never run, so its events do not exist
// yet. Deps.Open returns it (wrapped); the index then keeps trying in the
// background.
var ErrNotCreatedYet = errors.New("the service's event stream does not exist yet")

// ErrIndexBehind: the index could not catch up with the stores in time
// (gRPC Unavailable): answering would leave out recent events.
var ErrIndexBehind = errors.New("the audit index is behind the event stores")

// DefaultServices are the stores the audit service indexes.
var DefaultServices = []string{"catalog", "order", "fulfilment", "trust", "payouts"}

// Config configures the service. Zero fields take the defaults.
type Config struct {
	// Services whose stores are indexed. Default DefaultServices.
	Services []string
	// FreshnessWait bounds how long a query waits for the index to reach
	// what the stores held when it arrived (read-your-writes). Default 2s.
	FreshnessWait time.Duration
	// RetryOpen is how often a store that does not exist yet is looked for
	// again. Default 1s.
	RetryOpen time.Duration
}

func (c Config) withDefaults() Config {
	if len(c.Services) == 0 {
		c.Services = DefaultServices
	}
	if c.FreshnessWait <= 0 {
		c.FreshnessWait = 2 * time.Second
	}
	if c.RetryOpen <= 0 {
		c.RetryOpen = time.Second
	}
	return c
}

// Deps are the service's dependencies.
type Deps struct {
	// Open opens service's events read-only, without waiting: an error
	// wrapping ErrNotCreatedYet when its stream does not exist yet.
	Open   func(ctx context.Context, service string) (Store, error)
	Clock  clock.Clock
	Logger *slog.Logger
}

// Service is the audit application.
type Service struct {
	cfg   Config
	open  func(ctx context.Context, service string) (Store, error)
	clock clock.Clock
	log   *slog.Logger

	mu  sync.RWMutex
	idx *domain.Index

	srcMu   sync.Mutex
	sources map[string]*source

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// source is one service's store being followed.
type source struct {
	service string
	store   Store
	pos     *projection.Position

	mu  sync.Mutex
	gap *domain.StoreGap // events the store holds but cannot deliver
}

func (src *source) setGap(after, last uint64) bool {
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.gap != nil && src.gap.After == after && src.gap.Last >= last {
		return false
	}
	src.gap = &domain.StoreGap{Service: src.service, After: after, Last: last}
	return true
}

func (src *source) getGap() *domain.StoreGap {
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.gap == nil {
		return nil
	}
	g := *src.gap
	return &g
}

// New returns a service; Start starts indexing.
func New(cfg Config, d Deps) *Service {
	if d.Clock == nil {
		d.Clock = clock.Real()
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	return &Service{cfg: cfg.withDefaults(), open: d.Open, clock: d.Clock, log: d.Logger, idx: domain.NewIndex(), sources: map[string]*source{}}
}

// Start opens every service's store that exists and returns once the index
// has caught up with them (bounded by ctx). Stores that do not exist yet
// are looked for in the background and followed from their first event as
// soon as they appear; until then the index serves what there is.
func (s *Service) Start(ctx context.Context) error {
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	var opened []*source
	for _, svc := range s.cfg.Services {
		st, err := s.open(ctx, svc)
		switch {
		case err == nil:
			opened = append(opened, s.follow(bg, svc, st))
		case errors.Is(err, ErrNotCreatedYet):
			s.log.Info("no events of this service yet; will index them when they appear", "service", svc)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.awaitStore(bg, svc)
			}()
		default:
			cancel()
			s.wg.Wait()
			return fmt.Errorf("audit: open %s events: %w", svc, err)
		}
	}
	for _, src := range opened {
		last, err := src.store.LastPosition(ctx)
		if err != nil {
			return fmt.Errorf("audit: %s events: %w", src.service, err)
		}
		if err := s.settle(ctx, src, last, 0); err != nil {
			return fmt.Errorf("audit: indexing %s events (at %d of %d): %w", src.service, src.pos.Last(), last, err)
		}
	}
	st := s.Stats()
	s.log.Info("audit index caught up", "events", st.Events, "orders", st.Orders, "stores", len(opened))
	return nil
}

// Stop stops following the stores.
func (s *Service) Stop(context.Context) error {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	return nil
}

// awaitStore looks for a store until it exists, then follows it.
func (s *Service) awaitStore(ctx context.Context, svc string) {
	for attempt := 1; ctx.Err() == nil; attempt++ {
		t := time.NewTimer(s.cfg.RetryOpen)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		st, err := s.open(ctx, svc)
		switch {
		case err == nil:
			s.log.Info("events of this service appeared; indexing them", "service", svc)
			s.follow(ctx, svc, st)
			return
		case errors.Is(err, ErrNotCreatedYet):
			if attempt%60 == 0 {
				s.log.Info("still no events of this service", "service", svc)
			}
		default:
			s.log.Warn("cannot open a service's events; retrying", "service", svc, "err", err)
		}
	}
}

// follow registers a store and follows it from its first event.
func (s *Service) follow(ctx context.Context, svc string, st Store) *source {
	src := &source{service: svc, store: st, pos: projection.New()}
	s.srcMu.Lock()
	s.sources[svc] = src
	s.srcMu.Unlock()
	log := s.log.With("service", svc)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		// A message that cannot be decoded is skipped past so that catching
		// up still ends; VerifyOrderChain re-reads the stream and reports it.
		projection.FollowSkipping(ctx, log, st, 1, func(e eventstore.RecordedEvent) {
			s.apply(svc, e)
			src.pos.Advance(e.Position)
		}, src.pos.Advance)
	}()
	return src
}

// apply indexes one event.
func (s *Service) apply(svc string, rec eventstore.RecordedEvent) {
	s.mu.Lock()
	IndexEvent(s.idx, svc, rec)
	s.mu.Unlock()
}

// IndexEvent decodes one event of service svc and files it in idx (an event
// of a type this binary does not know is filed with the reason).
func IndexEvent(idx *domain.Index, svc string, rec eventstore.RecordedEvent) {
	var payload proto.Message
	var perr string
	if ev, err := es.Decode(rec); err == nil {
		payload = ev.Payload
	} else {
		perr = domain.DescribeDecodeError(rec.Type, err).Error()
	}
	idx.Add(svc, rec, payload, perr)
}

func (s *Service) source(svc string) *source {
	s.srcMu.Lock()
	defer s.srcMu.Unlock()
	return s.sources[svc]
}

func (s *Service) openSources() []*source {
	s.srcMu.Lock()
	defer s.srcMu.Unlock()
	out := make([]*source, 0, len(s.sources))
	for _, svc := range s.cfg.Services {
		if src, ok := s.sources[svc]; ok {
			out = append(out, src)
		}
	}
	return out
}

// catchUp waits (up to FreshnessWait) until the index holds everything the
// stores held when it was called, so a query sees the writes that preceded
// it.
func (s *Service) catchUp(ctx context.Context) error {
	for _, src := range s.openSources() {
		last, err := src.store.LastPosition(ctx)
		if err != nil {
			return err
		}
		if err := s.settle(ctx, src, last, s.cfg.FreshnessWait); err != nil {
			return err
		}
	}
	return nil
}

// stallCheck is how long the index may sit short of a store's newest
// position before settle asks the store whether the next event is there.
const stallCheck = 500 * time.Millisecond

// settle waits until the index of src reaches target, bounded by ctx and
// (if > 0) by wait. When the index stops short, it asks the store for the
// next event: if there is none although the store's newest position is
// further, the store holds events it cannot deliver (a record nats-server
// refuses as corrupt reads as missing). That is recorded as a gap — every
// order with events in the store then fails verification — and the index
// is as complete as the store allows, so settle returns.
func (s *Service) settle(ctx context.Context, src *source, target uint64, wait time.Duration) error {
	start := time.Now()
	for {
		if g := src.getGap(); g != nil && g.After == src.pos.Last() && g.Last >= target {
			return nil // known: nothing more can be read
		}
		step := stallCheck
		if wait > 0 {
			step = min(step, max(wait-time.Since(start), time.Millisecond))
		}
		if src.pos.Reach(ctx, step, target) {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		at := src.pos.Last()
		next, err := src.store.ReadAll(ctx, at+1, 1)
		if err != nil {
			return err
		}
		if len(next) == 0 {
			if src.setGap(at, target) {
				s.log.Error("a store holds events it cannot deliver; orders with events there will not verify",
					"service", src.service, "readable_up_to", at, "newest_position", target)
			}
			return nil
		}
		if wait > 0 && time.Since(start) >= wait {
			return fmt.Errorf("%w: %s events indexed up to %d of %d", ErrIndexBehind, src.service, at, target)
		}
	}
}

// gaps are the stores known to hold events they cannot deliver.
func (s *Service) gaps() []domain.StoreGap {
	var out []domain.StoreGap
	for _, src := range s.openSources() {
		if g := src.getGap(); g != nil {
			out = append(out, *g)
		}
	}
	return out
}

// Stats are the index's counts.
func (s *Service) Stats() domain.Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.idx.Stats()
}

// OrderInfo is what authorization needs to know of an order.
type OrderInfo struct {
	OrderID string
	// BuyerID is the buyer the order's events name ("" if none does).
	BuyerID string
}

// Allow decides whether the caller may see an order; nil allows.
type Allow func(OrderInfo) error

// NotFoundError: no event of the order is indexed.
type NotFoundError struct{ OrderID string }

func (e *NotFoundError) Error() string { return "no events of order " + e.OrderID }

// order catches up, looks the order up and authorizes the caller.
func (s *Service) order(ctx context.Context, orderID string, allow Allow) (domain.OrderView, error) {
	if err := s.catchUp(ctx); err != nil {
		return domain.OrderView{}, err
	}
	s.mu.RLock()
	v, ok := s.idx.Order(orderID)
	s.mu.RUnlock()
	if !ok {
		return domain.OrderView{}, &NotFoundError{OrderID: orderID}
	}
	if allow != nil {
		if err := allow(OrderInfo{OrderID: orderID, BuyerID: v.BuyerID}); err != nil {
			return domain.OrderView{}, err
		}
	}
	return v, nil
}
