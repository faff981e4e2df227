package deadline_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/deadline"
	"github.com/custody/custody/pkg/kv"
)

// index is a read model's deadline index in a real kv store, written as a
// read model writes it: a change's index keys committed in one batch, then
// the scheduler told (its hook), one change at a time.
type index struct {
	t     *testing.T
	db    *kv.DB
	space *kv.Space
	x     deadline.Index

	mu  sync.Mutex // one change at a time, as a read model's Apply
	pos uint64
	at  map[string]time.Time // what the store holds: the read model's state

	reads atomic.Int64 // deadlines Next has returned
	fail  atomic.Int64 // the next that many Next calls fail
}

func newIndex(t *testing.T, dir string) *index {
	t.Helper()
	db, err := kv.Open(dir, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	space, err := db.Space("test/deadlines")
	if err != nil {
		t.Fatal(err)
	}
	x := &index{t: t, db: db, space: space, x: deadline.Index{Prefix: []byte("d/")}, at: map[string]time.Time{}}
	x.pos, _, err = space.State()
	if err != nil {
		t.Fatal(err)
	}
	err = x.x.Scan(space, nil, func(e deadline.Entry) bool { x.at[e.Key] = e.At; return true })
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func (x *index) Next(after *deadline.Entry, n int) ([]deadline.Entry, error) {
	if x.fail.Add(-1) >= 0 {
		return nil, errors.New("store unavailable")
	}
	next, err := x.x.Next(x.space, after, n)
	x.reads.Add(int64(len(next)))
	return next, err
}

// change stores key at at (zero: closed) and then tells s, if not nil.
func (x *index) change(s *deadline.Scheduler, key string, at time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	b := x.space.Batch()
	defer b.Discard()
	if old, ok := x.at[key]; ok {
		_ = x.x.Delete(b, key, old)
		delete(x.at, key)
	}
	if !at.IsZero() {
		_ = x.x.Set(b, key, at)
		x.at[key] = at
	}
	x.pos++
	if err := b.Commit(x.pos); err != nil {
		x.t.Error(err)
	}
	switch {
	case s == nil:
	case at.IsZero():
		s.Cancel(key)
	default:
		s.Schedule(key, at, nil)
	}
}

// bounded runs a stored scheduler of x holding at most held, whose Fire
// closes the deadline in the store (as the event it decides would) and
// records it with how many were held then; every call to check fails the
// test if more than held were held.
type bounded struct {
	s    *deadline.Scheduler
	held int
	stop func()

	mu    sync.Mutex
	fired []firing
	fail  map[string]int // key: fail its next n fires
}

func runBounded(t *testing.T, x *index, c clock.Clock, held int) *bounded {
	b := &bounded{held: held, fail: map[string]int{}}
	b.s = deadline.NewStored("test", c, nil, deadline.Stored{Store: x, Held: held,
		Fire: func(_ context.Context, key string, at time.Time) error {
			b.mu.Lock()
			if b.fail[key] > 0 {
				b.fail[key]--
				b.mu.Unlock()
				return errors.New("store unavailable")
			}
			b.mu.Unlock()
			x.change(b.s, key, time.Time{})
			b.check(t)
			b.mu.Lock()
			b.fired = append(b.fired, firing{key, at})
			b.mu.Unlock()
			return nil
		}})
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan struct{})
	go func() { b.s.Run(ctx); close(ran) }()
	b.stop = func() { cancel(); <-ran }
	t.Cleanup(b.stop)
	return b
}

func (b *bounded) check(t *testing.T) {
	t.Helper()
	if n := b.s.Pending(); n > b.held {
		t.Errorf("%d deadlines held, the bound is %d", n, b.held)
	}
}

func (b *bounded) got() []firing {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.fired)
}

// sameFirings fails unless got is want.
func sameFirings(t *testing.T, got, want []firing) {
	t.Helper()
	for i := range max(len(got), len(want)) {
		if i >= len(got) || i >= len(want) || got[i].key != want[i].key || !got[i].at.Equal(want[i].at) {
			t.Fatalf("fired %d deadlines, want %d; first difference at #%d:\ngot  %v\nwant %v",
				len(got), len(want), i, got[i:min(i+3, len(got))], want[i:min(i+3, len(want))])
		}
	}
}

// TestStoredRandomScheduleMoveCancelFiresInOrderOnce is
// TestRandomScheduleMoveCancelFiresInOrderOnce with a stored scheduler
// that holds a handful: the deadlines it does not hold fire in order too,
// each once, and it never holds more than its bound.
func TestStoredRandomScheduleMoveCancelFiresInOrderOnce(t *testing.T) {
	tests := []struct {
		name   string
		seed   uint64
		held   int
		keys   int
		spread int // deadlines fall in the next spread minutes: small means many ties
		ops    int // random operations per round
		rounds int
	}{
		{"hold one", 1, 1, 50, 20, 200, 4},
		{"many ties", 2, 4, 50, 5, 300, 4},
		{"few ties", 3, 10, 200, 10_000, 1_000, 4},
		{"many keys", 4, 64, 2_000, 500, 5_000, 3},
		{"bound above the keys", 5, 100, 30, 50, 200, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(tt.seed, tt.seed))
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			c := clock.NewFake(now)
			x := newIndex(t, t.TempDir())
			b := runBounded(t, x, c, tt.held)
			model := map[string]time.Time{} // what should be pending
			var want []firing
			for round := range tt.rounds {
				// Only deadlines after now, so nothing fires until the clock moves.
				for range tt.ops {
					key := fmt.Sprintf("k%04d", rng.IntN(tt.keys))
					if rng.IntN(4) == 0 {
						x.change(b.s, key, time.Time{})
						delete(model, key)
					} else {
						at := now.Add(time.Duration(1+rng.IntN(tt.spread)) * time.Minute)
						x.change(b.s, key, at)
						model[key] = at
					}
					b.check(t)
				}
				// What is held is what is pending, when held.
				for key, at := range model {
					if w, ok := b.s.When(key); ok && !w.Equal(at) {
						t.Fatalf("round %d: When(%s) = %v; want %v", round, key, w, at)
					}
				}
				now = now.Add(time.Duration(1+tt.spread/2) * time.Minute)
				if round == tt.rounds-1 {
					now = now.Add(time.Duration(tt.spread) * time.Minute)
				}
				var due []firing
				for key, at := range model {
					if !at.After(now) {
						due = append(due, firing{key, at})
						delete(model, key)
					}
				}
				slices.SortFunc(due, func(a, b firing) int {
					return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.key, b.key))
				})
				want = append(want, due...)
				c.Set(now)
				eventually(t, fmt.Sprintf("round %d: %d fired", round, len(want)), func() bool { return len(b.got()) >= len(want) })
			}
			b.stop()
			sameFirings(t, b.got(), want)
			if b.s.Pending() != 0 || len(x.at) != 0 {
				t.Fatalf("after the last round: %d held, %d stored", b.s.Pending(), len(x.at))
			}
		})
	}
}

// A restart with many pending deadlines reads only the bound's worth of
// them; those that passed while the process was down fire at once, the
// others in order as the fake clock moves on, each read once, the bound
// never passed.
func TestStoredRestartHoldsTheBound(t *testing.T) {
	t.Parallel()
	const n, held = 10_000, 100
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	{ // a process left them: 50 overdue, the rest one a minute from t0
		x := newIndex(t, dir)
		for i := range n {
			x.change(nil, fmt.Sprintf("k%05d", i), t0.Add(time.Duration(i-50)*time.Minute))
		}
		if err := x.db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	x := newIndex(t, dir) // the same store, reopened
	if len(x.at) != n {
		t.Fatalf("%d stored", len(x.at))
	}
	x.reads.Store(0)
	c := clock.NewFake(t0)
	b := runBounded(t, x, c, held)
	eventually(t, "the overdue to fire", func() bool { return len(b.got()) == 51 }) // k00050 is due at t0
	if r := x.reads.Load(); r > 2*held {
		t.Fatalf("a restart read %d deadlines, the bound is %d", r, held)
	}
	b.check(t)
	for step := range 100 {
		c.Advance(time.Duration(n/100) * time.Minute)
		eventually(t, fmt.Sprintf("step %d", step), func() bool { return len(b.got()) >= min(n, 51+(step+1)*n/100) })
		b.check(t)
	}
	b.stop()
	var want []firing
	for i := range n {
		want = append(want, firing{fmt.Sprintf("k%05d", i), t0.Add(time.Duration(i-50) * time.Minute)})
	}
	sameFirings(t, b.got(), want)
	if r := x.reads.Load(); r != n {
		t.Fatalf("read %d deadlines from the store, want each of the %d once", r, n)
	}
}

// Deadlines the scheduler does not hold can be cancelled, moved before
// the ones it holds or further away; a fire that fails and a read of the
// store that fails are retried.
func TestStoredCancelMoveAndRetry(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	x := newIndex(t, t.TempDir())
	for i := range 10 {
		x.change(nil, fmt.Sprintf("k%d", i), t0.Add(time.Duration(i+1)*time.Hour))
	}
	x.fail.Store(2) // the first two reads fail
	c := clock.NewFake(t0)
	b := runBounded(t, x, c, 2)
	eventually(t, "the first read", func() bool { return b.s.Pending() == 2 })
	for _, k := range []string{"k0", "k1"} {
		if _, ok := b.s.When(k); !ok {
			t.Fatalf("%s not held", k)
		}
	}
	for _, k := range []string{"k2", "k5", "k7", "k8"} {
		if _, ok := b.s.When(k); ok {
			t.Fatalf("%s held beyond the bound", k)
		}
	}
	x.change(b.s, "k5", time.Time{})            // cancelled, not held
	x.change(b.s, "k7", t0.Add(30*time.Minute)) // moved before the ones held: held, k1 let go
	x.change(b.s, "k8", t0.Add(100*time.Hour))  // moved further, not held
	x.change(b.s, "k1", t0.Add(30*time.Minute)) // let go, moved back: held again, k0 let go
	x.change(b.s, "k0", t0.Add(30*time.Minute)) // and back
	x.change(b.s, "k9", t0.Add(20*time.Hour))   // a move of one not held, still not held
	x.change(b.s, "k10", t0.Add(9*time.Hour))   // a new one, not held
	b.mu.Lock()
	b.fail["k3"] = 2
	b.mu.Unlock()
	b.check(t)
	for range 30 {
		c.Advance(4 * time.Hour)
		b.check(t)
	}
	eventually(t, "all fired", func() bool { return len(b.got()) == 10 })
	b.stop()
	at := func(h time.Duration) time.Time { return t0.Add(h) }
	sameFirings(t, b.got(), []firing{
		{"k0", at(30 * time.Minute)}, {"k1", at(30 * time.Minute)}, {"k7", at(30 * time.Minute)},
		{"k2", at(3 * time.Hour)}, {"k3", at(4 * time.Hour)}, {"k4", at(5 * time.Hour)}, {"k6", at(7 * time.Hour)},
		{"k10", at(9 * time.Hour)}, {"k9", at(20 * time.Hour)}, {"k8", at(100 * time.Hour)},
	})
	if x.fail.Load() >= 0 {
		t.Fatalf("the failing reads were not all tried: %d left", x.fail.Load())
	}
}
