package deadline

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/custody/custody/pkg/clock"
)

// BenchmarkScheduleWithManyPending moves one deadline and then asks for the
// earliest one, as Run does on every wake-up, with n other deadlines
// pending. The cost per op should not grow with n.
func BenchmarkScheduleWithManyPending(b *testing.B) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	nop := func(context.Context) error { return nil }
	for _, n := range []int{100, 1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("pending=%d", n), func(b *testing.B) {
			s := New("bench", clock.NewFake(t0), nil)
			rng := rand.New(rand.NewPCG(1, 2))
			keys := make([]string, n)
			for i := range keys {
				keys[i] = fmt.Sprintf("ship-by-%d", i)
				s.Schedule(keys[i], t0.Add(time.Duration(rng.IntN(1_000_000))*time.Second), nop)
			}
			for i := 0; b.Loop(); i++ {
				s.Schedule(keys[i%n], t0.Add(time.Duration(rng.IntN(1_000_000))*time.Second), nop)
				if _, _, ok := s.next(); !ok {
					b.Fatal("nothing pending")
				}
			}
		})
	}
}
