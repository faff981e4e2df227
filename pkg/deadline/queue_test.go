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
	if len(s.queue) != len(s.items) {
		t.Fatalf("queue has %d items, map %d", len(s.queue), len(s.items))
	}
	for i, it := range s.queue {
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
