// Package deadline fires work at moments measured by an injected clock:
// ship-by deadlines, vendor response deadlines, return windows.
//
// A Scheduler keeps deadlines in memory only. Durability comes from the
// event store: a service re-schedules every pending deadline from its own
// events when it starts (its projection knows which are still open), so a
// deadline that passed while the service was down fires right after the
// restart. Firing must be idempotent — derive the command id from the
// deadline's key — because a crash between the fire and its effect being
// stored fires it again.
package deadline

import (
	"container/heap"
	"context"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/custody/custody/pkg/clock"
)

// Func is the work done when a deadline passes. An error retries it after
// a (real-time) backoff.
type Func func(ctx context.Context) error

type item struct {
	key      string
	at       time.Time
	fire     Func
	attempts int
	notAfter time.Time // real time before which a failed item is not retried
	index    int       // position in the scheduler's queue
}

// queue is a min-heap of the scheduled items ordered by (at, key), so that
// Run finds the earliest deadline without scanning the thousands pending.
// Keys are unique in it, so the order is total and ties fire in key order.
type queue []*item

func (q queue) Len() int { return len(q) }

func (q queue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].key < q[j].key
}

func (q queue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index = i
	q[j].index = j
}

func (q *queue) Push(x any) {
	it := x.(*item)
	it.index = len(*q)
	*q = append(*q, it)
}

func (q *queue) Pop() any {
	old := *q
	it := old[len(old)-1]
	old[len(old)-1] = nil // let the item be collected
	*q = old[:len(old)-1]
	return it
}

// Scheduler runs deadlines. The zero value is not usable; use New.
type Scheduler struct {
	name  string
	clock clock.Clock
	log   *slog.Logger

	// mu guards items and queue, which always hold the same items: items
	// finds a key's item, queue the earliest one.
	mu    sync.Mutex
	items map[string]*item
	queue queue
	wake  chan struct{}
}

// New returns a scheduler; name labels its metric and logs ("fulfilment").
func New(name string, c clock.Clock, log *slog.Logger) *Scheduler {
	if log == nil {
		log = slog.Default()
	}
	s := &Scheduler{name: name, clock: c, log: log.With("scheduler", name), items: map[string]*item{}, wake: make(chan struct{}, 1)}
	meter := otel.Meter("github.com/custody/custody/pkg/deadline")
	_, _ = meter.Int64ObservableGauge("custody.deadlines.pending",
		metric.WithDescription("Deadlines scheduled and not yet fired"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(s.Pending()), metric.WithAttributes(attribute.String("scheduler", name)))
			return nil
		}))
	return s
}

// Schedule sets (or moves) the deadline key to at.
func (s *Scheduler) Schedule(key string, at time.Time, fire Func) {
	s.mu.Lock()
	s.remove(key)
	// A new item, not the old one updated, so that a fire in progress of the
	// old one sees that the key moved (see fire).
	it := &item{key: key, at: at, fire: fire}
	s.items[key] = it
	heap.Push(&s.queue, it)
	s.mu.Unlock()
	s.poke()
}

// Cancel forgets the deadline key, if it has not fired.
func (s *Scheduler) Cancel(key string) {
	s.mu.Lock()
	s.remove(key)
	s.mu.Unlock()
	s.poke()
}

// Pending is how many deadlines wait.
func (s *Scheduler) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items)
}

// When returns key's deadline, if scheduled.
func (s *Scheduler) When(key string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.items[key]
	if !ok {
		return time.Time{}, false
	}
	return it.at, true
}

func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run fires deadlines as they pass until ctx is done.
func (s *Scheduler) Run(ctx context.Context) {
	for {
		key, it, ok := s.next()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
				continue
			}
		}
		if wait := time.Until(it.notAfter); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
			case <-time.After(wait):
			}
			continue
		}
		if it.at.After(s.clock.Now()) {
			wctx, cancel := context.WithCancel(ctx)
			go func() {
				select {
				case <-s.wake:
					cancel() // something changed: look again
				case <-wctx.Done():
				}
			}()
			_ = clock.Wait(wctx, s.clock, it.at)
			cancel()
			if ctx.Err() != nil {
				return
			}
			// Look again rather than fire it: a deadline moved before it
			// while we waited (its wake-up not yet seen) must fire first.
			continue
		}
		s.fire(ctx, key, it)
	}
}

// remove forgets key's item, if any. s.mu must be held.
func (s *Scheduler) remove(key string) {
	if it, ok := s.items[key]; ok {
		delete(s.items, key)
		heap.Remove(&s.queue, it.index)
	}
}

// next is the earliest deadline: (at, key) order, top of the queue.
func (s *Scheduler) next() (string, *item, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return "", nil, false
	}
	it := s.queue[0]
	return it.key, it, true
}

func (s *Scheduler) fire(ctx context.Context, key string, it *item) {
	s.mu.Lock()
	if s.items[key] != it { // moved or cancelled meanwhile
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	err := it.fire(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.items[key] != it {
		return
	}
	if err == nil {
		s.remove(key)
		return
	}
	it.attempts++
	backoff := min(time.Duration(it.attempts)*200*time.Millisecond, 10*time.Second)
	// Its at, and so its place in the queue, is unchanged: it stays first
	// and Run waits for notAfter before retrying it, as it always has.
	it.notAfter = time.Now().Add(backoff)
	s.log.Warn("deadline work failed; will retry", "key", key, "attempt", it.attempts, "err", err)
}
