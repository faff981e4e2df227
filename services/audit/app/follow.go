package app

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/custody/custody/pkg/eventstore"
)

// follow hands every event of store from position from on to apply, in
// order, until ctx ends. It resubscribes after the last applied event when
// the subscription breaks, so the index survives NATS hiccups. A message
// that cannot be decoded is skipped (and logged); when the store tells its
// position, the index moves past it so that catching up still ends —
// VerifyOrderChain re-reads the stream and reports it.
func follow(ctx context.Context, log *slog.Logger, store eventstore.Store, from uint64, apply func(eventstore.RecordedEvent), skipped func(pos uint64)) {
	backoff := newBackoff()
	for ctx.Err() == nil {
		sub, err := store.SubscribeAll(ctx, from)
		if err != nil {
			log.Warn("subscribing to events; will retry", "from", from, "err", err)
			backoff.sleep(ctx)
			continue
		}
		for {
			e, err := sub.Next(ctx)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, eventstore.ErrClosed) {
					break
				}
				log.Error("skipping an event that cannot be read", "after", from, "stream", e.Stream, "position", e.Position, "err", err)
				if e.Position >= from {
					skipped(e.Position)
					from = e.Position + 1
				}
				continue
			}
			backoff.reset()
			if e.Position < from {
				continue
			}
			apply(e)
			from = e.Position + 1
		}
		_ = sub.Close()
		if ctx.Err() == nil {
			log.Warn("event subscription ended; resubscribing", "from", from)
			backoff.sleep(ctx)
		}
	}
}

// position is how far the index has read one store; others wait on it.
type position struct {
	mu      sync.Mutex
	pos     uint64
	changed chan struct{}
}

func newPosition() *position { return &position{changed: make(chan struct{})} }

// advance records that everything up to p is applied.
func (p *position) advance(to uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if to > p.pos {
		p.pos = to
	}
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *position) get() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pos
}

// waitFor waits until the position reaches target, ctx ends or d passes
// (d <= 0: no bound but ctx). It reports whether the target was reached.
func (p *position) waitFor(ctx context.Context, d time.Duration, target uint64) bool {
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	for {
		p.mu.Lock()
		ok, ch := p.pos >= target, p.changed
		p.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-timeout:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

type backoff struct{ d time.Duration }

func newBackoff() *backoff { return &backoff{d: 100 * time.Millisecond} }
func (b *backoff) reset()  { b.d = 100 * time.Millisecond }
func (b *backoff) sleep(ctx context.Context) {
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	b.d = min(2*b.d, 5*time.Second)
}
