// Package deadline fires work at moments measured by an injected clock:
// ship-by deadlines, vendor response deadlines, return windows.
//
// A Scheduler made by New keeps its deadlines in memory only. Durability
// comes from the event store: a service re-schedules every pending
// deadline from its own events when it starts (its projection knows which
// are still open), so a deadline that passed while the service was down
// fires right after the restart. Firing must be idempotent — derive the
// command id from the deadline's key — because a crash between the fire
// and its effect being stored fires it again.
//
// Bounded. A Scheduler made by NewStored holds at most Stored.Held
// deadlines in memory, whatever the number pending: the service keeps
// every pending deadline in its stored read model, indexed by due time
// (Index: written in the same kv batch as the event that opens, moves or
// closes it), and the scheduler holds only the earliest of them. It keeps
// a watermark W, an (at, key) pair: it holds exactly the stored deadlines
// at or before W, so the earliest it holds is the earliest there is, and
// fires in (at, key) order as New's does. Schedule of a deadline after W
// holds nothing (the index has it); one at or before W is held, and when
// that passes the bound the latest held is let go and W moves back to the
// latest still held. When fewer than half the bound are held, Run reads
// the next ones after W from the index (Store.Next, at most the bound
// less those held) and moves W to the last read (or past everything when
// the index had no more). Nothing is read at start but the first page, so
// a restart with 100,000 pending deadlines holds only the earliest Held;
// one that passed while the process was down is among the first read and
// fires at once. A read holds the scheduler's lock, so a Schedule or
// Cancel that follows the commit of its index change (as the read model's
// hook does) is applied after the read, over whatever the read saw.
package deadline

import (
	"container/heap"
	"context"
	"errors"
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
	fire     Func // nil in a stored scheduler: Stored.Fire
	attempts int
	notAfter time.Time // real time before which a failed item is not retried
	index    int       // position in the scheduler's queue
	maxIndex int       // position in a stored scheduler's latest
}

// before orders deadlines: by time, then key.
func before(at time.Time, key string, at2 time.Time, key2 string) bool {
	if !at.Equal(at2) {
		return at.Before(at2)
	}
	return key < key2
}

// itemHeap is a heap of items in the order of less; each item keeps its
// place in it at *at(item), so that it can be removed. The scheduler's
// queue is one, earliest (at, key) first, so that Run finds the earliest
// deadline without scanning the thousands pending (keys are unique, so the
// order is total and ties fire in key order); a stored scheduler's latest
// is another over the same items, latest first, whose top it lets go of
// when it holds more than its bound.
type itemHeap struct {
	items []*item
	less  func(a, b *item) bool
	at    func(*item) *int
}

func earliestFirst() itemHeap {
	return itemHeap{less: func(a, b *item) bool { return before(a.at, a.key, b.at, b.key) },
		at: func(it *item) *int { return &it.index }}
}

func latestFirst() itemHeap {
	return itemHeap{less: func(a, b *item) bool { return before(b.at, b.key, a.at, a.key) },
		at: func(it *item) *int { return &it.maxIndex }}
}

func (h itemHeap) Len() int { return len(h.items) }

func (h itemHeap) Less(i, j int) bool { return h.less(h.items[i], h.items[j]) }

func (h itemHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	*h.at(h.items[i]) = i
	*h.at(h.items[j]) = j
}

func (h *itemHeap) Push(x any) {
	it := x.(*item)
	*h.at(it) = len(h.items)
	h.items = append(h.items, it)
}

func (h *itemHeap) Pop() any {
	old := h.items
	it := old[len(old)-1]
	old[len(old)-1] = nil // let the item be collected
	h.items = old[:len(old)-1]
	return it
}

// Entry is a stored deadline: its key and when it is due.
type Entry struct {
	Key string
	At  time.Time
}

// Store is where a stored scheduler's deadlines wait (see Bounded): the
// service's read model, which writes a deadline's entry in the same batch
// as the event that opens, moves or closes it (Index).
type Store interface {
	// Next returns up to n stored deadlines in (At, Key) order: the first
	// ones after after, or from the first if after is nil. Fewer than n
	// means there are no more.
	Next(after *Entry, n int) ([]Entry, error)
}

// Stored configures a scheduler that holds a bounded number of deadlines
// in memory (NewStored).
type Stored struct {
	// Store has every pending deadline, by due time.
	Store Store
	// Fire is the work of the deadline key due at: every deadline fires
	// with it (Schedule's fire is not kept). Idempotent, as any Func.
	Fire func(ctx context.Context, key string, at time.Time) error
	// Held bounds the deadlines held in memory; default DefaultHeld.
	Held int
}

// DefaultHeld is Stored.Held's default: about 0.75 MB of deadlines with
// 32-character keys (~190 bytes each, measured).
const DefaultHeld = 4096

// Scheduler runs deadlines. The zero value is not usable; use New or
// NewStored.
type Scheduler struct {
	name  string
	clock clock.Clock
	log   *slog.Logger

	// mu guards items and queue (and latest), which always hold the same
	// items: items finds a key's item, queue the earliest one, latest the
	// latest. It also guards the stored scheduler's fields below.
	mu    sync.Mutex
	items map[string]*item
	queue itemHeap
	wake  chan struct{}

	// A stored scheduler's (NewStored); store is nil in New's.
	store  Store
	fireAt func(ctx context.Context, key string, at time.Time) error
	held   int
	latest itemHeap
	// mark is the watermark: the items are exactly the stored deadlines at
	// or before it (nothing before the first read: marked false), or all
	// of them when all is set.
	mark   Entry
	marked bool
	all    bool
	// A read of the store that failed is tried again after readAfter
	// (real time), with a backoff that grows with readFails.
	readAfter time.Time
	readFails int
}

// New returns a scheduler that holds every deadline in memory; name labels
// its metric and logs ("fulfilment").
func New(name string, c clock.Clock, log *slog.Logger) *Scheduler {
	if log == nil {
		log = slog.Default()
	}
	s := &Scheduler{name: name, clock: c, log: log.With("scheduler", name), items: map[string]*item{}, wake: make(chan struct{}, 1),
		queue: earliestFirst(), latest: latestFirst()}
	meter := otel.Meter("github.com/custody/custody/pkg/deadline")
	_, _ = meter.Int64ObservableGauge("custody.deadlines.pending",
		metric.WithDescription("Deadlines held in memory, not yet fired (a stored scheduler's are at most its bound)"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(s.Pending()), metric.WithAttributes(attribute.String("scheduler", name)))
			return nil
		}))
	return s
}

// NewStored returns a scheduler that holds at most o.Held deadlines in
// memory and reads the others from o.Store as their time comes (see
// Bounded). It holds nothing until Run reads the store's first ones.
func NewStored(name string, c clock.Clock, log *slog.Logger, o Stored) *Scheduler {
	if o.Store == nil || o.Fire == nil {
		panic(errors.New("deadline: NewStored without a Store or a Fire"))
	}
	s := New(name, c, log)
	s.store, s.fireAt, s.held = o.Store, o.Fire, o.Held
	if s.held <= 0 {
		s.held = DefaultHeld
	}
	return s
}

// Schedule sets (or moves) the deadline key to at. A stored scheduler
// ignores fire (Stored.Fire fires every deadline) and holds the deadline
// only if it is due before the ones its store still keeps; the caller has
// written it to the store first.
func (s *Scheduler) Schedule(key string, at time.Time, fire Func) {
	s.mu.Lock()
	s.remove(key)
	if s.store == nil {
		// A new item, not the old one updated, so that a fire in progress of
		// the old one sees that the key moved (see fire).
		s.add(&item{key: key, at: at, fire: fire})
	} else if s.all || (s.marked && !before(s.mark.At, s.mark.Key, at, key)) {
		s.add(&item{key: key, at: at})
		s.trim()
	}
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

// Pending is how many deadlines wait in memory: all of New's, at most the
// bound of a stored scheduler's.
func (s *Scheduler) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items)
}

// When returns key's deadline, if scheduled (for a stored scheduler: if
// held in memory).
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
		retry := s.refill()
		key, it, ok := s.next()
		if !ok {
			var again <-chan time.Time
			if retry > 0 {
				again = time.After(retry)
			}
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
			case <-again:
			}
			continue
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

// add holds it. s.mu must be held, and its key must not be.
func (s *Scheduler) add(it *item) {
	s.items[it.key] = it
	heap.Push(&s.queue, it)
	if s.store != nil {
		heap.Push(&s.latest, it)
	}
}

// remove forgets key's item, if any. s.mu must be held.
func (s *Scheduler) remove(key string) {
	if it, ok := s.items[key]; ok {
		delete(s.items, key)
		heap.Remove(&s.queue, it.index)
		if s.store != nil {
			heap.Remove(&s.latest, it.maxIndex)
		}
	}
}

// trim lets go of a stored scheduler's latest items past its bound: the
// watermark moves back to the latest still held (the store has the ones
// let go). s.mu must be held.
func (s *Scheduler) trim() {
	for len(s.items) > s.held {
		s.remove(s.latest.items[0].key)
		top := s.latest.items[0] // held >= 1, so one is left
		s.mark, s.marked, s.all = Entry{Key: top.key, At: top.at}, true, false
	}
}

// refill reads a stored scheduler's next deadlines after the watermark
// when it holds fewer than half its bound and the store may have more.
// It returns how long to wait (real time) before a read that failed may
// be tried again, 0 when none is waiting.
func (s *Scheduler) refill() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.store == nil || s.all || 2*len(s.items) >= s.held {
		return 0
	}
	if wait := time.Until(s.readAfter); wait > 0 {
		return wait
	}
	var after *Entry
	if s.marked {
		after = &Entry{Key: s.mark.Key, At: s.mark.At}
	}
	// Under s.mu: a Schedule or Cancel of a change the read saw, or missed,
	// is applied after it, over it.
	n := s.held - len(s.items)
	next, err := s.store.Next(after, n)
	if err != nil {
		s.readFails++
		backoff := min(time.Duration(s.readFails)*200*time.Millisecond, 10*time.Second)
		s.readAfter = time.Now().Add(backoff)
		s.log.Warn("reading the stored deadlines failed; will retry", "attempt", s.readFails, "err", err)
		return backoff
	}
	s.readFails = 0
	for _, e := range next {
		s.remove(e.Key) // the store has what the last change of it wrote
		s.add(&item{key: e.Key, at: e.At})
	}
	if len(next) < n {
		s.all = true
	} else {
		last := next[len(next)-1]
		s.mark, s.marked = last, true
	}
	return 0
}

// next is the earliest deadline: (at, key) order, top of the queue.
func (s *Scheduler) next() (string, *item, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queue.Len() == 0 {
		return "", nil, false
	}
	it := s.queue.items[0]
	return it.key, it, true
}

func (s *Scheduler) fire(ctx context.Context, key string, it *item) {
	s.mu.Lock()
	if s.items[key] != it { // moved or cancelled meanwhile
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	var err error
	if it.fire != nil {
		err = it.fire(ctx)
	} else {
		err = s.fireAt(ctx, key, it.at)
	}
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
