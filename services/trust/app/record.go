package app

import (
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
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
// with the order and fulfilment events, in memory, rebuilt on every start
// from position 1 or from each source's checkpoint (the platform follows
// both streams into ApplyFrom). It is not a durable consumer: every
// process has its own, and decisions wait until it has caught up.
type RecordView struct {
	mu      sync.RWMutex
	records *domain.Records
	sources map[string]*source
}

// source is one upstream stream the view follows.
type source struct {
	pos   *projection.Position
	store *projection.Upstream // opened by the first CatchUp, to learn its last position
}

// NewRecordView returns an empty view; open (nil for a view that is only
// folded, as `custody rebuild` does) opens an upstream store for CatchUp.
func NewRecordView(open func(ctx context.Context, service string) (projection.Store, error)) *RecordView {
	v := &RecordView{records: domain.NewRecords(), sources: map[string]*source{}}
	for _, service := range []string{OrderService, FulfilmentService} {
		v.sources[service] = &source{pos: projection.New(), store: projection.NewUpstream(service, open)}
	}
	return v
}

// Progress is how far the view has applied service's events (OrderService
// or FulfilmentService).
func (v *RecordView) Progress(service string) *projection.Position { return v.sources[service].pos }

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
		src := v.sources[name]
		if err := src.store.CatchUp(wctx, src.pos); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%w (waited up to %s): %w", ErrRecordUnavailable, d, err)
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

// Checkpoint is the checkpoint (platform.Checkpointer) of the part of the
// view that service's events build (OrderService or FulfilmentService).
// The view is one model fed by two projections, each with its own
// position; each projection saves only its own source's part, which no
// event of the other source changes or reads (domain.Records), so a part
// is always saved with the position it stands at.
func (v *RecordView) Checkpoint(service string) *RecordPart {
	if _, ok := v.sources[service]; !ok {
		panic("custody record: no source " + service)
	}
	return &RecordPart{v: v, service: service}
}

// RecordPart is the part of a RecordView one source's events build.
type RecordPart struct {
	v       *RecordView
	service string
}

// Version names the checkpoint's shape; bump it when the part's types
// in domain (OrderFacts; FulfilmentPart and Fulfilment) change.
func (p *RecordPart) Version() string { return "record-" + p.service + "s-1" }

// Save writes the part, gob-encoded.
func (p *RecordPart) Save(w io.Writer) error {
	p.v.mu.RLock()
	defer p.v.mu.RUnlock()
	if p.service == OrderService {
		return gob.NewEncoder(w).Encode(p.v.records.OrderPart())
	}
	return gob.NewEncoder(w).Encode(p.v.records.FulfilmentPart())
}

// Load replaces the part, empty, with what Save wrote; on error it leaves
// it as it was. The other source's part is not touched.
func (p *RecordPart) Load(r io.Reader) error {
	if p.service == OrderService {
		var orders map[string]domain.OrderFacts
		if err := gob.NewDecoder(r).Decode(&orders); err != nil {
			return err
		}
		p.v.mu.Lock()
		defer p.v.mu.Unlock()
		p.v.records.SetOrderPart(orders)
		return nil
	}
	var part domain.FulfilmentPart
	if err := gob.NewDecoder(r).Decode(&part); err != nil {
		return err
	}
	p.v.mu.Lock()
	defer p.v.mu.Unlock()
	p.v.records.SetFulfilmentPart(part)
	return nil
}
