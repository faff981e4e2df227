// Package clock gives code an injectable notion of "now".
//
// Domain code and saga deadline schedulers take a Clock instead of calling
// time.Now, so tests can drive time with a Fake and demos can compress days
// into seconds with Scaled. Wait blocks until a clock reaches a deadline and
// works with every clock in this package.
package clock

import (
	"context"
	"sync"
	"time"
)

// Clock tells the current time.
type Clock interface {
	Now() time.Time
}

// Real returns the system clock.
func Real() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Fake is a manually driven clock for tests. It is safe for concurrent use.
// Time only moves when Set or Advance is called; every move closes the
// channel returned by Changed so waiters can re-check their deadlines.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	tick    time.Duration
	changed chan struct{}
}

// NewFake returns a Fake clock reading t0.
func NewFake(t0 time.Time) *Fake {
	return &Fake{now: t0, changed: make(chan struct{})}
}

// Now returns the fake current time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.now
	f.now = f.now.Add(f.tick)
	return t
}

// SetTick makes every reading move the clock on by d (without waking
// waiters), so that a process on a fake clock still stamps what happens one
// after another with increasing times: a timeline sorted by time then shows
// causes before effects. Zero (the default) stops it.
func (f *Fake) SetTick(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tick = d
}

// Set moves the clock to t (backwards too) and wakes waiters.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = t
	close(f.changed)
	f.changed = make(chan struct{})
}

// Advance moves the clock forward by d and wakes waiters.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	close(f.changed)
	f.changed = make(chan struct{})
}

// Changed returns a channel that is closed the next time the clock moves.
// Take the channel before reading Now to avoid missing a move in between.
func (f *Fake) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// Scaled returns a clock on which time runs factor× faster than real time,
// measured from base: at real time base it reads base, and every real second
// after that adds factor seconds. With factor 86400 a day passes every second.
// Processes given the same base and factor agree on the time, so a fixed base
// keeps a multi-process demo consistent; time.Now() is fine for one process.
// A factor <= 0 is treated as 1.
func Scaled(base time.Time, factor float64) Clock {
	if factor <= 0 {
		factor = 1
	}
	return scaled{base: base, factor: factor}
}

type scaled struct {
	base   time.Time
	factor float64
}

func (s scaled) Now() time.Time {
	return s.base.Add(time.Duration(float64(time.Since(s.base)) * s.factor))
}

// realDuration converts a span of scaled time into the real time it takes.
func (s scaled) realDuration(d time.Duration) time.Duration {
	return time.Duration(float64(d) / s.factor)
}

// Wait blocks until c reads at or after deadline, or ctx is done, in which
// case it returns the context's error. A Fake wakes waiters when it moves;
// other clocks are re-checked by a timer.
func Wait(ctx context.Context, c Clock, deadline time.Time) error {
	for {
		var wake <-chan struct{}
		if f, ok := c.(*Fake); ok {
			wake = f.Changed()
		}
		remaining := deadline.Sub(c.Now())
		if remaining <= 0 {
			return nil
		}
		if wake == nil {
			if s, ok := c.(scaled); ok {
				remaining = s.realDuration(remaining)
			}
			t := time.NewTimer(max(remaining, time.Millisecond))
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		}
	}
}
