package deadline_test

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/deadline"
)

type firing struct {
	key string
	at  time.Time // the deadline the fired Func was scheduled with
}

// TestRandomScheduleMoveCancelFiresInOrderOnce schedules, moves and cancels
// many keys in random order while Run is running, then moves a fake clock
// on in steps: at each step exactly the deadlines now due fire, each once,
// in (at, key) order, with the Func of their last Schedule.
func TestRandomScheduleMoveCancelFiresInOrderOnce(t *testing.T) {
	tests := []struct {
		name   string
		seed   uint64
		keys   int
		spread int // deadlines fall in the next spread minutes: small means many ties
		ops    int // random operations per round
		rounds int
	}{
		{"many ties", 1, 50, 5, 300, 4},
		{"few ties", 2, 200, 10_000, 1_000, 4},
		{"many keys", 3, 2_000, 500, 5_000, 3},
		{"one key", 4, 1, 3, 20, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(tt.seed, tt.seed))
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			c := clock.NewFake(now)
			s, stop := running(t, c)

			var mu sync.Mutex
			var got []firing
			fn := func(f firing) deadline.Func {
				return func(context.Context) error {
					mu.Lock()
					got = append(got, f)
					mu.Unlock()
					return nil
				}
			}
			model := map[string]time.Time{} // what should be pending
			var want []firing
			for round := range tt.rounds {
				// Only deadlines after now, so nothing fires until the clock moves.
				for range tt.ops {
					key := fmt.Sprintf("k%04d", rng.IntN(tt.keys))
					if rng.IntN(4) == 0 {
						s.Cancel(key)
						delete(model, key)
						continue
					}
					at := now.Add(time.Duration(1+rng.IntN(tt.spread)) * time.Minute)
					s.Schedule(key, at, fn(firing{key, at}))
					model[key] = at
				}
				if s.Pending() != len(model) {
					t.Fatalf("round %d: Pending() = %d, want %d", round, s.Pending(), len(model))
				}
				for key, at := range model {
					if w, ok := s.When(key); !ok || !w.Equal(at) {
						t.Fatalf("round %d: When(%s) = %v, %v; want %v", round, key, w, ok, at)
					}
				}
				// Move on to somewhere in the middle of what is pending (to
				// the end in the last round).
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
				eventually(t, fmt.Sprintf("round %d: %d fired", round, len(want)), func() bool {
					mu.Lock()
					defer mu.Unlock()
					return len(got) >= len(want)
				})
				eventually(t, "pending settles", func() bool { return s.Pending() == len(model) })
			}
			// Nothing is pending and the clock stands still, so nothing more
			// can fire; stopping Run settles any firing still on its way.
			stop()
			mu.Lock()
			defer mu.Unlock()
			for i := range max(len(got), len(want)) {
				if i >= len(got) || i >= len(want) || got[i].key != want[i].key || !got[i].at.Equal(want[i].at) {
					t.Fatalf("fired %d deadlines, want %d; first difference at #%d:\ngot  %v\nwant %v",
						len(got), len(want), i, got[i:min(i+3, len(got))], want[i:min(i+3, len(want))])
				}
			}
			if s.Pending() != 0 {
				t.Fatalf("Pending() = %d after the last round", s.Pending())
			}
		})
	}
}
