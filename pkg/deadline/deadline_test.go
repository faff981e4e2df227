package deadline_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/deadline"
)

type fired struct {
	mu   sync.Mutex
	keys []string
}

func (f *fired) fn(key string) deadline.Func {
	return func(context.Context) error {
		f.mu.Lock()
		f.keys = append(f.keys, key)
		f.mu.Unlock()
		return nil
	}
}

func (f *fired) get() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.keys...)
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// running is a scheduler on c whose Run runs until stop, which returns
// once Run has.
func running(t *testing.T, c clock.Clock) (s *deadline.Scheduler, stop func()) {
	s = deadline.New("test", c, nil)
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan struct{})
	go func() { s.Run(ctx); close(ran) }()
	stop = func() { cancel(); <-ran }
	t.Cleanup(stop)
	return s, stop
}

func TestFiresInOrderAsFakeTimeAdvances(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := clock.NewFake(t0)
	s, _ := running(t, c)
	var f fired
	s.Schedule("ship-by", t0.Add(72*time.Hour), f.fn("ship-by"))
	s.Schedule("respond", t0.Add(48*time.Hour), f.fn("respond"))
	s.Schedule("window", t0.Add(7*24*time.Hour), f.fn("window"))
	s.Schedule("cancelled", t0.Add(time.Hour), f.fn("cancelled"))
	s.Cancel("cancelled")

	c.Advance(49 * time.Hour)
	eventually(t, "respond", func() bool { return len(f.get()) == 1 })
	c.Advance(24 * time.Hour)
	eventually(t, "ship-by", func() bool { return len(f.get()) == 2 })
	if got := f.get(); got[0] != "respond" || got[1] != "ship-by" {
		t.Fatalf("fired %v", got)
	}
	if s.Pending() != 1 {
		t.Fatalf("pending %d, want 1 (the window)", s.Pending())
	}
	// Moving a deadline earlier takes effect.
	s.Schedule("window", t0, f.fn("window"))
	eventually(t, "window", func() bool { return len(f.get()) == 3 })
	if s.Pending() != 0 {
		t.Fatalf("pending %d after all fired", s.Pending())
	}
}

func TestPastDeadlineFiresAtOnceAndFailuresRetry(t *testing.T) {
	c := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s, _ := running(t, c)
	var mu sync.Mutex
	calls := 0
	// A deadline that passed while the service was down: scheduled in the
	// past on start, it fires without the clock moving.
	s.Schedule("overdue", c.Now().Add(-time.Hour), func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls < 3 {
			return errors.New("store unavailable")
		}
		return nil
	})
	eventually(t, "three attempts", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return calls == 3
	})
	eventually(t, "done", func() bool { return s.Pending() == 0 })
}
