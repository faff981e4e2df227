package projection

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
)

// Store is an event store that can tell its newest position, as every
// backend here can: a read model that waits until it has reached that
// position shows a caller its own writes (read-your-writes).
type Store interface {
	eventstore.Store
	LastPosition(ctx context.Context) (uint64, error)
}

// DefaultWait bounds a read-your-writes wait that a service's settings
// leave at zero.
const DefaultWait = 2 * time.Second

// WaitOrDefault is d, or DefaultWait when d is not positive.
func WaitOrDefault(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultWait
	}
	return d
}

// CatchUp waits until p has reached the newest position of store, ctx
// ends or d passes (d <= 0: no bound but ctx), and reports whether it got
// there. The error is the store's, when it cannot tell its position.
func (p *Position) CatchUp(ctx context.Context, d time.Duration, store Store) (bool, error) {
	target, err := store.LastPosition(ctx)
	if err != nil {
		return false, err
	}
	return p.Reach(ctx, d, target), nil
}

// Upstream is another service's store as a read model or an event handler
// reads it: opened on first use and kept. An open that fails (the service
// has not created its stream yet, NATS is unreachable) is tried again at
// the next use.
type Upstream struct {
	service string
	open    func(ctx context.Context, service string) (Store, error)

	mu sync.Mutex
	st Store
}

// NewUpstream returns service's store, opened by open(ctx, service) (as
// the platform's Deps.OpenStoreOf does; nil: never readable).
func NewUpstream(service string, open func(ctx context.Context, service string) (Store, error)) *Upstream {
	return &Upstream{service: service, open: open}
}

// Store returns the store, opening it (bounded by ctx) if need be.
func (u *Upstream) Store(ctx context.Context) (Store, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.st != nil {
		return u.st, nil
	}
	if u.open == nil {
		return nil, fmt.Errorf("the %s service's events are not available here", u.service)
	}
	st, err := u.open(ctx, u.service)
	if err != nil {
		return nil, fmt.Errorf("opening the %s service's events: %w", u.service, err)
	}
	u.st = st
	return st, nil
}

// First returns the first event of the aggregate's stream in this store
// (an order's OrderPlaced, say), decoded; ok is false when the stream does
// not exist or is empty. An event that cannot be decoded is a permanent
// fault (fault.Permanent): reading it again will not help.
func (u *Upstream) First(ctx context.Context, aggregate, id string) (ev es.Event, ok bool, err error) {
	st, err := u.Store(ctx)
	if err != nil {
		return es.Event{}, false, err
	}
	recs, err := st.ReadStream(ctx, eventstore.StreamName(aggregate, id), 0, 1)
	if errors.Is(err, eventstore.ErrStreamNotFound) || (err == nil && len(recs) == 0) {
		return es.Event{}, false, nil
	}
	if err != nil {
		return es.Event{}, false, err
	}
	if ev, err = es.Decode(recs[0]); err != nil {
		return es.Event{}, false, fault.Permanent(err)
	}
	return ev, true, nil
}

// CatchUp waits, bounded by ctx and DefaultWait, until p (a read model's
// progress through this store) has reached the store's newest position:
// read-your-writes across services. Running out of time is an error naming
// both positions, never a wait without end.
func (u *Upstream) CatchUp(ctx context.Context, p *Position) error {
	st, err := u.Store(ctx)
	if err != nil {
		return err
	}
	target, err := st.LastPosition(ctx)
	if err != nil {
		return fmt.Errorf("the %s service's newest position: %w", u.service, err)
	}
	if !p.Reach(ctx, DefaultWait, target) {
		return fmt.Errorf("the %s service's events applied up to position %d, not %d, in time: %w",
			u.service, p.Last(), target, cmp.Or(ctx.Err(), context.DeadlineExceeded))
	}
	return nil
}
