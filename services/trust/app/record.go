package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/projection"
	"github.com/custody/custody/services/trust/domain"
)

// ErrRecordUnavailable: the custody record could not catch up with the
// order and fulfilment services' events in time, so no decision is taken
// from it (an automatic refund rests on the absence of a DELIVERED scan:
// deciding from a stale record could be wrong).
var ErrRecordUnavailable = errors.New("the custody record is not up to date with the order and fulfilment events")

// Upstream services whose events make the custody record.
const (
	OrderService      = "order"
	FulfilmentService = "fulfilment"
)

// RecordView is the custody record of every order: domain.Records fed by
// ordered subscriptions to the order and fulfilment streams (from position
// 1, in memory, rebuilt on every start). It is not a durable consumer:
// every process has its own, and decisions wait until it has caught up.
type RecordView struct {
	mu      sync.RWMutex
	records *domain.Records
	sources map[string]*source
}

// source is one upstream stream the view follows.
type source struct {
	pos *projection.Position

	mu    sync.Mutex
	store Store // nil until opened
}

func (s *source) opened() Store {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.store
}

// NewRecordView returns an empty view.
func NewRecordView() *RecordView {
	return &RecordView{records: domain.NewRecords(), sources: map[string]*source{
		OrderService: {pos: projection.New()}, FulfilmentService: {pos: projection.New()},
	}}
}

// Run opens service's store (retrying: it may not exist yet) and follows
// it until ctx ends.
func (v *RecordView) Run(ctx context.Context, log *slog.Logger, service string, open func(context.Context) (Store, error)) {
	src := v.sources[service]
	var st Store
	for b := projection.NewBackoff(); ctx.Err() == nil; b.Sleep(ctx) {
		s, err := open(ctx)
		if err == nil {
			st = s
			break
		}
		if ctx.Err() == nil {
			log.Warn("opening an upstream event stream; will retry", "service", service, "err", err)
		}
	}
	if st == nil {
		return
	}
	src.mu.Lock()
	src.store = st
	src.mu.Unlock()
	src.pos.MarkReady()
	projection.Follow(ctx, log, st, 1, func(e eventstore.RecordedEvent) { v.apply(src, e) })
}

// ApplyFrom folds one event of service (OrderService or FulfilmentService)
// into the view, as Run does; `custody rebuild` feeds it directly.
func (v *RecordView) ApplyFrom(service string, e eventstore.RecordedEvent) {
	if src, ok := v.sources[service]; ok {
		v.apply(src, e)
	}
}

func (v *RecordView) apply(src *source, e eventstore.RecordedEvent) {
	defer src.pos.Advance(e.Position)
	ev, err := es.Decode(e)
	if err != nil {
		return // an event type this build does not know carries no fact we use
	}
	v.mu.Lock()
	v.records.Apply(e.ID, ev.Payload)
	v.mu.Unlock()
}

// CatchUp waits (at most d) until the view has applied every order and
// fulfilment event stored now: read-your-writes across services.
func (v *RecordView) CatchUp(ctx context.Context, d time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for _, name := range []string{OrderService, FulfilmentService} {
		src := v.sources[name]
		if !src.pos.WaitFor(wctx, 0, func(_ uint64, ready bool) bool { return ready }) {
			return fmt.Errorf("%w: the %s stream is not open yet", ErrRecordUnavailable, name)
		}
		last, err := src.opened().LastPosition(wctx)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrRecordUnavailable, name, err)
		}
		if !src.pos.Reach(wctx, 0, last) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%w: %s events up to %d not applied within %s", ErrRecordUnavailable, name, last, d)
		}
	}
	return nil
}

// WaitFor waits (at most d) until the view has applied service's event at
// position pos.
func (v *RecordView) WaitFor(ctx context.Context, service string, pos uint64, d time.Duration) error {
	if !v.sources[service].pos.Reach(ctx, d, pos) {
		return fmt.Errorf("%w: %s event %d not applied yet", ErrRecordUnavailable, service, pos)
	}
	return nil
}

// Record is the custody record of vendorID's part of orderID.
func (v *RecordView) Record(orderID, vendorID string) (domain.Record, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.records.Record(orderID, vendorID)
}

// Order is what is known of an order.
func (v *RecordView) Order(orderID string) (domain.OrderFacts, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.records.Order(orderID)
}

// FulfilmentFacts is what a fulfilment event (already applied) adds to its
// vendor's trust counts.
func (v *RecordView) FulfilmentFacts(e es.Event) (string, domain.Counts, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.records.FulfilmentFacts(e.ID, e.Payload)
}
