package clock_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/custody/custody/pkg/clock"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestFake(t *testing.T) {
	tests := []struct {
		name string
		move func(f *clock.Fake)
		want time.Time
	}{
		{"unmoved", func(*clock.Fake) {}, t0},
		{"advance", func(f *clock.Fake) { f.Advance(90 * time.Minute) }, t0.Add(90 * time.Minute)},
		{"advance twice", func(f *clock.Fake) { f.Advance(time.Hour); f.Advance(time.Hour) }, t0.Add(2 * time.Hour)},
		{"set backwards", func(f *clock.Fake) { f.Set(t0.Add(-time.Hour)) }, t0.Add(-time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := clock.NewFake(t0)
			tt.move(f)
			if got := f.Now(); !got.Equal(tt.want) {
				t.Fatalf("Now() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFakeChangedClosesOnMove(t *testing.T) {
	f := clock.NewFake(t0)
	ch := f.Changed()
	select {
	case <-ch:
		t.Fatal("Changed closed before the clock moved")
	default:
	}
	f.Advance(time.Second)
	select {
	case <-ch:
	default:
		t.Fatal("Changed not closed after Advance")
	}
	if f.Changed() == ch {
		t.Fatal("Changed returned the already-closed channel")
	}
}

func TestFakeConcurrent(t *testing.T) {
	f := clock.NewFake(t0)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			ch := f.Changed()
			f.Advance(time.Second)
			<-ch // closed by this goroutine's own Advance at the latest
			_ = f.Now()
		})
	}
	wg.Wait()
	if got, want := f.Now(), t0.Add(50*time.Second); !got.Equal(want) {
		t.Fatalf("Now() = %v, want %v", got, want)
	}
}

func TestScaled(t *testing.T) {
	tests := []struct {
		name    string
		factor  float64
		atLeast time.Duration // scaled time elapsed after 20ms of real time
		atMost  time.Duration
	}{
		{"day per second", 86400, 20 * time.Millisecond * 86400, time.Hour * 24 * 30},
		{"real speed", 1, 20 * time.Millisecond, time.Minute},
		{"non-positive means real speed", 0, 20 * time.Millisecond, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := time.Now()
			c := clock.Scaled(base, tt.factor)
			time.Sleep(20 * time.Millisecond)
			got := c.Now().Sub(base)
			if got < tt.atLeast || got > tt.atMost {
				t.Fatalf("elapsed scaled time %v, want in [%v, %v]", got, tt.atLeast, tt.atMost)
			}
		})
	}
}

func TestWait(t *testing.T) {
	t.Run("fake wakes when advanced past deadline", func(t *testing.T) {
		f := clock.NewFake(t0)
		errc := make(chan error, 1)
		go func() { errc <- clock.Wait(t.Context(), f, t0.Add(time.Hour)) }()
		f.Advance(30 * time.Minute) // not yet
		select {
		case err := <-errc:
			t.Fatalf("Wait returned early: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		f.Advance(30 * time.Minute)
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("Wait: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Wait did not return after deadline passed")
		}
	})
	t.Run("past deadline returns at once", func(t *testing.T) {
		for _, c := range []clock.Clock{clock.Real(), clock.NewFake(t0), clock.Scaled(time.Now(), 10)} {
			if err := clock.Wait(t.Context(), c, t0.Add(-time.Hour)); err != nil {
				t.Fatalf("%T: %v", c, err)
			}
		}
	})
	t.Run("scaled hour passes quickly", func(t *testing.T) {
		c := clock.Scaled(time.Now(), 3600*100) // an hour every 10ms
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		deadline := c.Now().Add(time.Hour)
		if err := clock.Wait(ctx, c, deadline); err != nil {
			t.Fatalf("Wait: %v", err)
		}
		if c.Now().Before(deadline) {
			t.Fatal("Wait returned before the deadline")
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		for _, c := range []clock.Clock{clock.Real(), clock.NewFake(t0)} {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			err := clock.Wait(ctx, c, time.Now().Add(24*time.Hour))
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("%T: err = %v, want context.Canceled", c, err)
			}
		}
	})
}

func TestFakeTickOrdersReadings(t *testing.T) {
	NewFake := clock.NewFake
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := NewFake(t0)
	if first, second := f.Now(), f.Now(); first != t0 || second != t0 {
		t.Fatal("a fake clock without tick moved")
	}
	f.SetTick(time.Microsecond)
	a, b := f.Now(), f.Now()
	if !b.After(a) || b.Sub(a) != time.Microsecond {
		t.Fatalf("readings %v then %v, want 1µs apart", a, b)
	}
}
