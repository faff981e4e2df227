package deadline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/kv"
)

// scanNext is the linear scan that next replaced, kept as its oracle.
func scanNext(s *Scheduler) (string, *item, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var key string
	var best *item
	for k, it := range s.items {
		if best == nil || it.at.Before(best.at) || (it.at.Equal(best.at) && k < key) {
			key, best = k, it
		}
	}
	return key, best, best != nil
}

// checkQueue fails unless queue and items hold the same items, every index
// is right and the queue is a heap.
func checkQueue(t *testing.T, s *Scheduler) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue.items) != len(s.items) {
		t.Fatalf("queue has %d items, map %d", len(s.queue.items), len(s.items))
	}
	for i, it := range s.queue.items {
		if it.index != i {
			t.Fatalf("queue[%d] (%s) has index %d", i, it.key, it.index)
		}
		if s.items[it.key] != it {
			t.Fatalf("queue[%d] (%s) is not the map's item", i, it.key)
		}
		if i > 0 && s.queue.Less(i, (i-1)/2) {
			t.Fatalf("queue[%d] (%s) is before its parent", i, it.key)
		}
	}
}

// TestNextMatchesScan drives the scheduler by hand — Schedule, Cancel and
// firing the earliest item, which may fail, or move or cancel itself or
// another key while it runs — and checks after every step that next finds
// what the old scan found.
func TestNextMatchesScan(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			s := New("test", clock.NewFake(t0), slog.New(slog.DiscardHandler))
			key := func() string { return fmt.Sprintf("k%02d", rng.IntN(40)) }
			at := func() time.Time { return t0.Add(time.Duration(rng.IntN(20)) * time.Minute) }
			var fn Func
			fn = func(context.Context) error {
				switch rng.IntN(6) {
				case 0:
					return errors.New("fail")
				case 1:
					s.Schedule(key(), at(), fn) // maybe this very key
				case 2:
					s.Cancel(key())
				}
				return nil
			}
			for step := range 3_000 {
				switch rng.IntN(3) {
				case 0:
					s.Schedule(key(), at(), fn)
				case 1:
					s.Cancel(key())
				default:
					if k, it, ok := s.next(); ok {
						s.fire(t.Context(), k, it)
					}
				}
				checkQueue(t, s)
				gk, git, gok := s.next()
				wk, wit, wok := scanNext(s)
				if gk != wk || git != wit || gok != wok {
					t.Fatalf("step %d: next() = %s, %v; scan found %s, %v", step, gk, gok, wk, wok)
				}
			}
		})
	}
}

// checkStored fails unless a stored scheduler's latest holds its items as
// a heap, it holds at most its bound, and it holds exactly the deadlines
// of the store up to its watermark (all of them when all is set), at their
// stored times.
func checkStored(t *testing.T, s *Scheduler, stored map[string]time.Time) {
	t.Helper()
	checkQueue(t, s)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.items) > s.held {
		t.Fatalf("%d items held, the bound is %d", len(s.items), s.held)
	}
	if len(s.latest.items) != len(s.items) {
		t.Fatalf("latest has %d items, map %d", len(s.latest.items), len(s.items))
	}
	for i, it := range s.latest.items {
		if it.maxIndex != i || s.items[it.key] != it {
			t.Fatalf("latest[%d] (%s): index %d, the map's: %v", i, it.key, it.maxIndex, s.items[it.key] == it)
		}
		if i > 0 && s.latest.Less(i, (i-1)/2) {
			t.Fatalf("latest[%d] (%s) is before its parent", i, it.key)
		}
	}
	for key, at := range stored {
		covered := s.all || (s.marked && !before(s.mark.At, s.mark.Key, at, key))
		it, held := s.items[key]
		if covered != held || (held && !it.at.Equal(at)) {
			t.Fatalf("%s at %v (watermark %v %v, all %v): held %v", key, at, s.mark, s.marked, s.all, held)
		}
	}
	for key := range s.items {
		if _, ok := stored[key]; !ok {
			t.Fatalf("%s held, not stored", key)
		}
	}
}

// TestStoredHoldsTheStoreUpToTheWatermark drives a stored scheduler by
// hand over a real kv store — changes written to the store then told to
// the scheduler, reads of the store, fires that close their deadline, fail,
// or move this or another deadline — and checks after every step that it
// holds exactly the stored deadlines up to its watermark, never more than
// its bound, and that next finds the earliest stored deadline.
func TestStoredHoldsTheStoreUpToTheWatermark(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for seed := range uint64(12) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 11))
			db, err := kv.Open(t.TempDir(), kv.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			space, err := db.Space("test")
			if err != nil {
				t.Fatal(err)
			}
			x := Index{Prefix: []byte("d/")}
			stored := map[string]time.Time{}
			var pos uint64
			var s *Scheduler
			change := func(key string, at time.Time) { // at zero: closed
				b := space.Batch()
				defer b.Discard()
				if old, ok := stored[key]; ok {
					_ = x.Delete(b, key, old)
					delete(stored, key)
				}
				if !at.IsZero() {
					_ = x.Set(b, key, at)
					stored[key] = at
				}
				pos++
				if err := b.Commit(pos); err != nil {
					t.Fatal(err)
				}
				if at.IsZero() {
					s.Cancel(key)
				} else {
					s.Schedule(key, at, nil)
				}
			}
			key := func() string { return fmt.Sprintf("k%02d", rng.IntN(60)) }
			at := func() time.Time { return t0.Add(time.Duration(rng.IntN(30)) * time.Minute) }
			held := 1 + int(seed%4)*3
			s = NewStored("test", clock.NewFake(t0), slog.New(slog.DiscardHandler), Stored{
				Store: storeFunc(func(after *Entry, n int) ([]Entry, error) { return x.Next(space, after, n) }),
				Held:  held,
				Fire: func(_ context.Context, k string, _ time.Time) error {
					switch rng.IntN(5) {
					case 0:
						return errors.New("fail")
					case 1:
						change(k, at()) // moved
					case 2:
						change(key(), at())
						change(k, time.Time{})
					default:
						change(k, time.Time{}) // closed, as the event it decides
					}
					return nil
				},
			})
			for step := range 3_000 {
				switch rng.IntN(6) {
				case 0, 1:
					change(key(), at())
				case 2:
					change(key(), time.Time{})
				case 3:
					s.refill()
				default:
					s.refill()
					if k, it, ok := s.next(); ok {
						s.fire(t.Context(), k, it)
					}
				}
				checkStored(t, s, stored)
				if k, it, ok := s.next(); ok {
					for sk, sat := range stored {
						if before(sat, sk, it.at, k) {
							t.Fatalf("step %d: next is %s at %v; %s at %v is stored before it", step, k, it.at, sk, sat)
						}
					}
				}
			}
		})
	}
}

type storeFunc func(after *Entry, n int) ([]Entry, error)

func (f storeFunc) Next(after *Entry, n int) ([]Entry, error) { return f(after, n) }
