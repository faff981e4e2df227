// Package app is the audit service's application layer: the order index
// (domain.Index) and the three queries on it — an order's timeline (from
// the index), verification of its hash chains and its replay as of a
// moment (both re-read the streams from the stores, so they answer for
// what is stored now, not for what the index remembers).
//
// The index is fed from every service's store by the platform's runtime:
// Feeds lists, per service, what folds an event into the index, the
// index's position in that store, and the space of the read-model store
// (pkg/kv) it keeps that store's part of the index in (index.go): the index
// is stored, not held, and a restart resumes where each store's part
// stands. The app itself opens the stores only to read them (Deps.Open),
// never to write, and knows no transport.
//
// It writes to the audit's own store only, through its command handlers:
// redrives of parked events (redrive.go) and buyers' erasures
// (privacy.go, with the export of a buyer's data and the revealing of
// personal fields in what the queries show).
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/kv"
	"github.com/custody/custody/pkg/personal"
	"github.com/custody/custody/pkg/projection"
	"github.com/custody/custody/services/audit/domain"

	// Every service's event types, so the index can decode them.
	_ "github.com/custody/custody/proto/custody/audit/v1"
	_ "github.com/custody/custody/proto/custody/catalog/v1"
	_ "github.com/custody/custody/proto/custody/fulfilment/v1"
	_ "github.com/custody/custody/proto/custody/order/v1"
	_ "github.com/custody/custody/proto/custody/payouts/v1"
	_ "github.com/custody/custody/proto/custody/trust/v1"
)

// Store is a service's event store as the audit service reads it: the
// port, plus the newest position so a query knows what the index must have
// reached.
type Store = projection.Store

// ErrNotCreatedYet: the service has never run, so its events do not exist
// yet. Deps.Open returns it (wrapped); queries then answer without that
// service, and ask again next time.
var ErrNotCreatedYet = errors.New("the service's event stream does not exist yet")

// ErrIndexBehind: the index could not catch up with the stores in time
// (gRPC Unavailable): answering would leave out recent events.
var ErrIndexBehind = errors.New("the audit index is behind the event stores")

// DefaultServices are the stores the audit service indexes.
// The audit's own store holds the redrives of parked events
// (ParkedEventRedriven), which name the order of the event handed back.
var DefaultServices = []string{"catalog", "order", "fulfilment", "trust", "payouts", "audit"}

// Config configures the service. Zero fields take the defaults.
type Config struct {
	// Services whose stores are indexed. Default DefaultServices.
	Services []string
	// FreshnessWait bounds how long a query waits for the index to reach
	// what the stores held when it arrived (read-your-writes). Default 2s.
	FreshnessWait time.Duration
}

func (c Config) withDefaults() Config {
	if len(c.Services) == 0 {
		c.Services = DefaultServices
	}
	c.FreshnessWait = projection.WaitOrDefault(c.FreshnessWait)
	return c
}

// Deps are the service's dependencies; every field is required (the
// platform gives them all).
type Deps struct {
	// Open opens service's events read-only if its stream exists, without
	// waiting for it: an error wrapping ErrNotCreatedYet when it does not
	// exist yet. A query must tell "no events yet" from "not indexed yet",
	// so it cannot wait for a service that may never run.
	Open   func(ctx context.Context, service string) (Store, error)
	Clock  clock.Clock
	Logger *slog.Logger
	// Personal is the process's codec of personal fields: it reveals them
	// (the timeline, the replay, an export) and its keys are erased with a
	// buyer. Optional: without it payloads are shown as stored (tokens) and
	// erasure and export are unavailable.
	Personal *personal.Codec
}

// Service is the audit application.
type Service struct {
	cfg   Config
	open  func(ctx context.Context, service string) (Store, error)
	clock clock.Clock
	log   *slog.Logger

	mu  sync.RWMutex // Lock: applying an event or attaching a space
	idx *index

	sources map[string]*source // fixed at New; each guards itself

	// Redrives (redrive.go); nil when not enabled.
	redrives    *es.Handler[domain.Redrive, domain.RedriveParked]
	deadLetters DeadLetters

	// Personal data (privacy.go); erasures nil when not enabled.
	personal *personal.Codec
	erasures *es.Handler[domain.Erasure, domain.EraseBuyer]
}

// source is one service's store as the index follows it.
type source struct {
	service string
	pos     *projection.Position // advanced by whoever feeds the index

	mu    sync.Mutex
	store Store            // nil until a query found the stream
	gap   *domain.StoreGap // events the store holds but cannot deliver
}

// New returns a service whose index has no space yet: each Feed's Stored
// is given its store's space (platform.Stored) before its first event.
func New(cfg Config, d Deps) *Service {
	s := &Service{cfg: cfg.withDefaults(), open: d.Open, clock: d.Clock, log: d.Logger, sources: map[string]*source{},
		personal: d.Personal}
	s.idx = newIndex(s.cfg.Services)
	for _, svc := range s.cfg.Services {
		s.sources[svc] = &source{service: svc, pos: projection.New()}
	}
	return s
}

// Feed is what folds one service's events into the index, in store order,
// from the event after the position its space holds.
type Feed struct {
	Service string
	// Stored keeps this store's part of the index (platform.Stored):
	// Attach gives it its space before any event is applied, and Apply and
	// Skipped then commit each event's changes with its position.
	Stored *Stored
	// Apply indexes one event. It panics when its space cannot be written:
	// following cannot go on correctly.
	Apply func(eventstore.RecordedEvent)
	// Position is the index's progress in the service's store: the feeder
	// advances it past every event applied or skipped, and queries wait on
	// it.
	Position *projection.Position
	// Skipped is told the position of an event the store delivered but
	// that cannot be read; the index goes on behind it (VerifyOrderChain,
	// which re-reads the stream, names the event).
	Skipped func(pos uint64)
}

// Feeds are the index's feeds, one per service indexed.
func (s *Service) Feeds() []Feed {
	out := make([]Feed, 0, len(s.cfg.Services))
	for _, svc := range s.cfg.Services {
		src := s.sources[svc]
		out = append(out, Feed{
			Service:  svc,
			Stored:   &Stored{s: s, service: svc},
			Apply:    func(e eventstore.RecordedEvent) { s.apply(svc, e) },
			Position: src.pos,
			Skipped:  func(pos uint64) { s.skipped(svc, pos) },
		})
	}
	return out
}

// Close releases the stores the queries opened.
func (s *Service) Close(context.Context) error {
	var errs []error
	for _, src := range s.sources {
		src.mu.Lock()
		if src.store != nil {
			errs = append(errs, src.store.Close())
			src.store = nil
		}
		src.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Stored is one store's part of the index as the platform keeps it
// (platform.Stored): its space is "audit/order index (<service>)".
type Stored struct {
	s       *Service
	service string
}

// Version names the shape of what the index stores (IndexVersion).
func (*Stored) Version() string { return IndexVersion }

// Attach gives the store's part of the index its space.
func (st *Stored) Attach(space *kv.Space) error {
	st.s.mu.Lock()
	defer st.s.mu.Unlock()
	return st.s.idx.attach(st.service, space)
}

// apply indexes one event of service svc (an event of a type this binary
// does not know is filed by its stream; the timeline says why when shown).
func (s *Service) apply(svc string, rec eventstore.RecordedEvent) {
	payload := domain.DecodePayload(rec)
	s.mu.Lock()
	err := s.idx.add(svc, rec, payload)
	s.mu.Unlock()
	if err != nil {
		panic(fmt.Sprintf("audit index: %s event at position %d: %v", svc, rec.Position, err))
	}
}

// skipped counts an event of svc the store delivered but that cannot be
// read; the index goes on behind it.
func (s *Service) skipped(svc string, pos uint64) {
	s.mu.Lock()
	err := s.idx.skipped(svc, pos)
	s.mu.Unlock()
	if err != nil {
		panic(fmt.Sprintf("audit index: %s event at position %d skipped: %v", svc, pos, err))
	}
}

// store returns the store of service, opening it the first time it
// exists; nil (and no error) while the service has never run, or for a
// service not indexed.
func (s *Service) store(ctx context.Context, service string) (Store, error) {
	src, ok := s.sources[service]
	if !ok {
		return nil, nil
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.store != nil {
		return src.store, nil
	}
	st, err := s.open(ctx, src.service)
	switch {
	case errors.Is(err, ErrNotCreatedYet):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("open %s events: %w", src.service, err)
	}
	src.store = st
	return st, nil
}

// catchUp waits (up to FreshnessWait) until the index holds everything the
// stores held when it was called, so a query sees the writes that preceded
// it — also right after the process started, while the index is still
// being built, and right after a service's stream appeared.
func (s *Service) catchUp(ctx context.Context) error {
	for _, svc := range s.cfg.Services {
		st, err := s.store(ctx, svc)
		if err != nil {
			return err
		}
		if st == nil {
			continue // the service never ran: nothing of it to wait for
		}
		last, err := st.LastPosition(ctx)
		if err != nil {
			return err
		}
		if err := s.settle(ctx, s.sources[svc], st, last); err != nil {
			return err
		}
	}
	return nil
}

// stallCheck is how long the index may sit short of a store's newest
// position before settle asks the store whether the next event is there.
const stallCheck = 500 * time.Millisecond

// settle waits until the index of src reaches target, bounded by ctx and
// FreshnessWait. When the index stops short, it asks the store for the
// next event: if there is none although the store's newest position is
// further, the store holds events it cannot deliver (a record nats-server
// refuses as corrupt reads as missing). That is recorded as a gap — every
// order with events in the store then fails verification — and the index
// is as complete as the store allows, so settle returns.
func (s *Service) settle(ctx context.Context, src *source, st Store, target uint64) error {
	wait := s.cfg.FreshnessWait
	start := time.Now()
	for {
		if g := src.getGap(); g != nil && g.After == src.pos.Last() && g.Last >= target {
			return nil // known: nothing more can be read
		}
		if src.pos.Reach(ctx, min(stallCheck, max(wait-time.Since(start), time.Millisecond)), target) {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		at := src.pos.Last()
		next, err := st.ReadAll(ctx, at+1, 1)
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
		if time.Since(start) >= wait {
			return fmt.Errorf("%w: %s events indexed up to %d of %d", ErrIndexBehind, src.service, at, target)
		}
	}
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

// storeGaps are gaps and, for each store that checks itself, the damage
// it reports: a verdict is never "valid" over history a store cannot serve.
func (s *Service) storeGaps(ctx context.Context) ([]domain.StoreGap, error) {
	out := s.gaps()
	for _, svc := range s.cfg.Services {
		st, err := s.store(ctx, svc)
		if err != nil || st == nil {
			continue // not opened: its streams' checks say so
		}
		dr, ok := st.(eventstore.DamageReporter)
		if !ok {
			continue
		}
		ds, err := dr.Damage(ctx)
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			out = append(out, domain.StoreGap{Service: svc, Damage: &d})
		}
	}
	return out, nil
}

// gaps are the stores known to hold events they cannot deliver.
func (s *Service) gaps() []domain.StoreGap {
	var out []domain.StoreGap
	for _, svc := range s.cfg.Services {
		if g := s.sources[svc].getGap(); g != nil {
			out = append(out, *g)
		}
	}
	return out
}

// Stats are the index's counts.
type Stats struct {
	domain.Stats
	// Skipped counts the events the stores delivered that could not be
	// read, so are in no timeline.
	Skipped int
}

// Stats returns the index's counts.
func (s *Service) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st, skipped := s.idx.stats()
	return Stats{Stats: st, Skipped: skipped}
}

// OrderInfo is what authorization needs to know of an order.
type OrderInfo struct {
	OrderID string
	// BuyerID is the buyer the order's events name ("" if none does).
	BuyerID string
}

// Allow decides whether the caller may see an order; nil allows.
type Allow func(OrderInfo) error

// order catches up, looks the order up (a *fault.NotFoundError when no
// event of it is indexed) and authorizes the caller.
func (s *Service) order(ctx context.Context, orderID string, allow Allow) (domain.OrderView, error) {
	if err := s.catchUp(ctx); err != nil {
		return domain.OrderView{}, err
	}
	s.mu.RLock()
	v, ok, err := s.idx.order(orderID)
	s.mu.RUnlock()
	if err != nil {
		return domain.OrderView{}, err
	}
	if !ok {
		return domain.OrderView{}, &fault.NotFoundError{Resource: "order", ID: orderID}
	}
	if allow != nil {
		if err := allow(OrderInfo{OrderID: orderID, BuyerID: v.BuyerID}); err != nil {
			return domain.OrderView{}, err
		}
	}
	return v, nil
}
