package app

import (
	"context"
	"errors"
	"fmt"
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

// RecordView is the custody record of every order: domain.Records fed
// with the order and fulfilment events from position 1, in memory, rebuilt
// on every start (the platform follows both streams into ApplyFrom). It is
// not a durable consumer: every process has its own, and decisions wait
// until it has caught up.
type RecordView struct {
	mu      sync.RWMutex
	records *domain.Records
	sources map[string]*source
	// open opens an upstream service's store (to learn its last position).
	open func(ctx context.Context, service string) (Store, error)
}

// source is one upstream stream the view follows.
type source struct {
	pos *projection.Position

	mu    sync.Mutex
	store Store // nil until opened
}

// NewRecordView returns an empty view; open (nil for a view that is only
// folded, as `custody rebuild` does) opens an upstream store for CatchUp.
func NewRecordView(open func(ctx context.Context, service string) (Store, error)) *RecordView {
	return &RecordView{records: domain.NewRecords(), open: open, sources: map[string]*source{
		OrderService: {pos: projection.New()}, FulfilmentService: {pos: projection.New()},
	}}
}

// Progress is how far the view has applied service's events (OrderService
// or FulfilmentService).
func (v *RecordView) Progress(service string) *projection.Position { return v.sources[service].pos }

// store opens service's store once, waiting for its stream as long as ctx
// allows.
func (v *RecordView) store(ctx context.Context, service string) (Store, error) {
	src := v.sources[service]
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.store != nil {
		return src.store, nil
	}
	if v.open == nil {
		return nil, errors.New("no upstream stores to catch up with")
	}
	st, err := v.open(ctx, service)
	if err != nil {
		return nil, err
	}
	src.store = st
	return st, nil
}

// ApplyFrom folds one event of service (OrderService or FulfilmentService)
// into the view and advances the view's Progress past it.
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
		st, err := v.store(wctx, name)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%w: the %s stream is not open yet: %w", ErrRecordUnavailable, name, err)
		}
		last, err := st.LastPosition(wctx)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrRecordUnavailable, name, err)
		}
		if !v.sources[name].pos.Reach(wctx, 0, last) {
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
