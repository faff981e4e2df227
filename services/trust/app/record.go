package app

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/kv"
	"github.com/custody/custody/pkg/lru"
	"github.com/custody/custody/pkg/projection"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
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

// RecordView is the custody record of every order: domain's fold of the
// order and fulfilment events (OrderIDOf/FoldOrder, FulfilmentOf/Fold),
// kept outside the heap in two spaces of the process's read-model store,
// one per source (Part: the platform follows both streams, each into its
// own stored projection, which resumes after the position stored with its
// state). It is not a durable consumer: every process has its own, and
// decisions wait until it has caught up.
//
// The order part's space:
//
//	o/<order id>      what the order service recorded of the order (codec.go)
//
// The fulfilment part's space:
//
//	f/<fulfilment id>  the fulfilment's record (codec.go)
//	p/<order>/<vendor> the fulfilment id of that vendor's part of the order
//
// where <order> is length-prefixed. Neither part reads the other to fold
// its source's events, so each part is a function of its own source's
// events alone and stands at its own source's position.
type RecordView struct {
	sources map[string]*source
	orders  *RecordPart // the order events' part
	fulfils *RecordPart // the fulfilment events' part

	// recent are the fulfilments folded last, as the fulfilment part's
	// space has them: ApplyFrom writes through it, so a fulfilment's
	// events do not read and decode it again, nor do the trust counts
	// read right after each of them (FulfilmentFacts). Values are never
	// changed once cached (Apply folds a clone).
	recent *lru.Cache[string, *domain.Fulfilment]
}

// source is one upstream stream the view follows.
type source struct {
	pos   *projection.Position
	store *projection.Upstream // opened by the first CatchUp, to learn its last position
	part  *RecordPart
}

// NewRecordView returns a view with no spaces yet (each Part's Attach
// gives it one); open (nil for a view that is only folded, as `custody
// rebuild` does) opens an upstream store for CatchUp.
func NewRecordView(open func(ctx context.Context, service string) (projection.Store, error)) *RecordView {
	v := &RecordView{sources: map[string]*source{}, recent: lru.New[string, *domain.Fulfilment](cacheSize)}
	v.orders = &RecordPart{v: v, service: OrderService, types: eventTypes(
		&orderv1.OrderConfirmed{}, &orderv1.OrderCancelled{}, &orderv1.OrderLinesCancelled{})}
	v.fulfils = &RecordPart{v: v, service: FulfilmentService, types: eventTypes(
		&fulfilmentv1.FulfilmentRequested{}, &fulfilmentv1.FulfilmentShipped{}, &fulfilmentv1.TrackingEventRecorded{},
		&fulfilmentv1.FulfilmentDelivered{}, &fulfilmentv1.DeliveryFailed{}, &fulfilmentv1.ShipByDeadlineMissed{},
		&fulfilmentv1.FulfilmentCancelled{}, &fulfilmentv1.ReceiptConfirmed{})}
	for _, p := range []*RecordPart{v.orders, v.fulfils} {
		v.sources[p.service] = &source{pos: projection.New(), store: projection.NewUpstream(p.service, open), part: p}
	}
	return v
}

// cacheSize bounds the read models' caches: the records of a few seconds
// of orders.
const cacheSize = 4096

// eventTypes is the set of the events' type names.
func eventTypes(ms ...proto.Message) map[string]bool {
	out := map[string]bool{}
	for _, t := range projection.EventTypes(ms...) {
		out[t] = true
	}
	return out
}

// Progress is how far the view has applied service's events (OrderService
// or FulfilmentService).
func (v *RecordView) Progress(service string) *projection.Position { return v.sources[service].pos }

// ApplyFrom folds one event of service (OrderService or FulfilmentService)
// into the view and advances the view's Progress past it. The part of a
// view without a space cannot apply anything: that is a wiring mistake,
// and it panics; so does a store that cannot be read or written.
func (v *RecordView) ApplyFrom(service string, e eventstore.RecordedEvent) {
	src, ok := v.sources[service]
	if !ok {
		return
	}
	defer src.pos.Advance(e.Position)
	src.part.apply(e)
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

// Record is the custody record of vendorID's part of orderID. A store
// that cannot be read answers as if nothing were known (logged by the
// store; decisions then find no record).
func (v *RecordView) Record(orderID, vendorID string) (domain.Record, bool) {
	o, ok := v.Order(orderID)
	if !ok {
		return domain.Record{}, false
	}
	r := domain.Record{Order: o}
	if s := v.fulfils.space.Load(); s != nil {
		if id, ok, err := s.Get(partKey(orderID, vendorID)); err == nil && ok {
			if f, ok, err := v.fulfilment(s, string(id)); err == nil && ok {
				c := f.Clone()
				r.Fulfilment = &c
			}
		}
	}
	return r, true
}

// Order is what is known of an order.
func (v *RecordView) Order(orderID string) (domain.OrderFacts, bool) {
	s := v.orders.space.Load()
	if s == nil {
		return domain.OrderFacts{}, false
	}
	b, ok, err := s.Get(orderKey(orderID))
	if err != nil || !ok {
		return domain.OrderFacts{}, false
	}
	o, err := decodeOrder(b)
	return o, err == nil
}

// FulfilmentFacts is what a fulfilment event (already applied) adds to its
// vendor's trust counts.
func (v *RecordView) FulfilmentFacts(e es.Event) (string, domain.Counts, bool) {
	var f *domain.Fulfilment
	if id, _, ok := domain.FulfilmentOf(e.Payload); ok {
		if s := v.fulfils.space.Load(); s != nil {
			if got, ok, err := v.fulfilment(s, id); err == nil && ok {
				f = got
			}
		}
	}
	return domain.FulfilmentFactsOf(f, e.ID, e.Payload)
}

// fulfilment reads a fulfilment's record from the cache or r; the caller
// must not change it.
func (v *RecordView) fulfilment(r interface {
	Get([]byte) ([]byte, bool, error)
}, id string) (*domain.Fulfilment, bool, error) {
	if f, ok := v.recent.Get(id); ok {
		return f, true, nil
	}
	b, ok, err := r.Get(fulfilmentKey(id))
	if err != nil || !ok {
		return nil, false, err
	}
	f, err := decodeFulfilment(b)
	if err != nil {
		return nil, false, fmt.Errorf("custody record: fulfilment %s: %w", id, err)
	}
	return &f, true, nil
}

// fulfilmentAggregate is the fulfilment service's aggregate of a
// fulfilment (its streams are "fulfilment-<id>").
const fulfilmentAggregate = "fulfilment"

// Keys.

func orderKey(id string) []byte      { return append([]byte("o/"), id...) }
func fulfilmentKey(id string) []byte { return append([]byte("f/"), id...) }
func partKey(orderID, vendorID string) []byte {
	k := binary.AppendUvarint([]byte("p/"), uint64(len(orderID)))
	return append(append(k, orderID...), vendorID...)
}

// Part is the stored projection (platform.Stored) of the part of the view
// that service's events build (OrderService or FulfilmentService). The
// view is one model fed by two projections, each with its own space and
// position; no event of one source changes or reads the other's part.
func (v *RecordView) Part(service string) *RecordPart {
	src, ok := v.sources[service]
	if !ok {
		panic("custody record: no source " + service)
	}
	return src.part
}

// RecordPart is the part of a RecordView one source's events build.
type RecordPart struct {
	v       *RecordView
	service string
	types   map[string]bool // the event types it folds
	space   atomic.Pointer[kv.Space]
}

// Version names the shape of what the part stores (platform.Stored);
// bump it when the keys or the codec of its records change (orders kv-2:
// the units cancelled per line and the OrderLinesCancelled folded).
func (p *RecordPart) Version() string {
	if p.service == OrderService {
		return "trust-records-orders-kv-2"
	}
	return "trust-records-" + p.service + "s-kv-1"
}

// Attach gives the part its space (platform.Stored).
func (p *RecordPart) Attach(s *kv.Space) error {
	if p.service == FulfilmentService {
		p.v.recent.Clear()
	}
	p.space.Store(s)
	return nil
}

// apply folds one event of the part's source and commits it with the
// event's position. Events of other types are not even decoded.
func (p *RecordPart) apply(e eventstore.RecordedEvent) {
	b := p.space.Load().Batch()
	defer b.Discard()
	var msg proto.Message
	if p.types[e.Type] {
		if ev, err := es.Decode(e); err == nil { // an event this build cannot read carries no fact we use
			msg = ev.Payload
		}
	}
	var cache func()
	if msg != nil {
		var err error
		if p.service == OrderService {
			err = p.foldOrder(b, e.ID, msg)
		} else {
			cache, err = p.foldFulfilment(b, e, msg)
		}
		if err != nil {
			panic(err)
		}
	}
	if err := b.Commit(e.Position); err != nil {
		panic(fmt.Errorf("custody record: %w", err))
	}
	if cache != nil {
		cache()
	}
}

func (p *RecordPart) foldOrder(b *kv.Batch, eventID string, msg proto.Message) error {
	id, ok := domain.OrderIDOf(msg)
	if !ok {
		return nil
	}
	var prev domain.OrderFacts
	old, found, err := b.Get(orderKey(id))
	if err != nil {
		return err
	}
	if found {
		if prev, err = decodeOrder(old); err != nil {
			return fmt.Errorf("custody record: order %s: %w", id, err)
		}
	}
	return b.Set(orderKey(id), encodeOrder(domain.FoldOrder(prev, found, eventID, msg)))
}

// foldFulfilment folds msg into its fulfilment's record in b and returns
// what puts the record in the cache once b is committed.
func (p *RecordPart) foldFulfilment(b *kv.Batch, e eventstore.RecordedEvent, msg proto.Message) (func(), error) {
	id, create, ok := domain.FulfilmentOf(msg)
	if !ok {
		return nil, nil
	}
	var old *domain.Fulfilment
	found := false
	// The first event of the fulfilment's own stream finds nothing.
	if agg, sid, err := eventstore.SplitStream(e.Stream); err != nil || e.Revision > 0 || agg != fulfilmentAggregate || sid != id {
		if old, found, err = p.v.fulfilment(b, id); err != nil {
			return nil, err
		}
	}
	var f domain.Fulfilment
	switch {
	case found:
		f = old.Clone()
	case !create:
		return nil, nil
	default:
		f = domain.Fulfilment{FulfilmentID: id}
	}
	if f.Fold(e.ID, msg) {
		if err := b.Set(partKey(f.OrderID, f.VendorID), []byte(f.FulfilmentID)); err != nil {
			return nil, err
		}
	}
	if err := b.Set(fulfilmentKey(id), encodeFulfilment(&f)); err != nil {
		return nil, err
	}
	return func() { p.v.recent.Put(id, &f) }, nil
}
