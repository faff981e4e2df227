package projection_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/eventstore/memory"
	"github.com/custody/custody/pkg/projection"
)

var quiet = slog.New(slog.DiscardHandler)

func TestReach(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		p := projection.New()
		if pos, ready := p.Get(); pos != 0 || ready {
			t.Fatalf("new position: %d, ready %v", pos, ready)
		}
		if !p.Reach(ctx, time.Second, 0) {
			t.Fatal("position 0 not reached at once")
		}

		start := time.Now()
		if p.Reach(ctx, time.Second, 1) {
			t.Fatal("reached 1 with nothing applied")
		}
		if waited := time.Since(start); waited != time.Second {
			t.Fatalf("gave up after %v, want 1s", waited)
		}

		go func() {
			time.Sleep(time.Minute)
			p.Advance(2)
			time.Sleep(time.Minute)
			p.Advance(3)
		}()
		start = time.Now()
		if !p.Reach(ctx, 0, 3) { // no bound but ctx
			t.Fatal("did not reach 3")
		}
		if waited := time.Since(start); waited != 2*time.Minute {
			t.Fatalf("reached 3 after %v, want 2m", waited)
		}

		p.Advance(1) // never goes back
		if got := p.Last(); got != 3 {
			t.Fatalf("position %d after advancing to 1, want 3", got)
		}

		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		start = time.Now()
		if p.Reach(cctx, 0, 4) {
			t.Fatal("reached 4")
		}
		if waited := time.Since(start); waited != time.Minute {
			t.Fatalf("gave up after %v, want the context's 1m", waited)
		}
	})
}

func TestWaitForReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		p := projection.New()
		ready := func(_ uint64, ready bool) bool { return ready }
		if p.WaitFor(ctx, time.Second, ready) {
			t.Fatal("ready before MarkReady")
		}

		var seen [][2]any
		go func() {
			time.Sleep(time.Second)
			p.Advance(5)
			time.Sleep(time.Second)
			p.MarkReady()
		}()
		start := time.Now()
		ok := p.WaitFor(ctx, time.Minute, func(pos uint64, ready bool) bool {
			seen = append(seen, [2]any{pos, ready})
			return ready
		})
		if !ok || time.Since(start) != 2*time.Second {
			t.Fatalf("WaitFor = %v after %v, want true after 2s", ok, time.Since(start))
		}
		// The condition is checked at first and after every change.
		want := [][2]any{{uint64(0), false}, {uint64(5), false}, {uint64(5), true}}
		if fmt.Sprint(seen) != fmt.Sprint(want) {
			t.Fatalf("cond saw %v, want %v", seen, want)
		}
		if pos, ready := p.Get(); pos != 5 || !ready {
			t.Fatalf("Get = %d, %v; want 5, true", pos, ready)
		}
	})
}

func TestBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		b := projection.NewBackoff()
		var got []time.Duration
		for range 8 {
			start := time.Now()
			b.Sleep(ctx)
			got = append(got, time.Since(start))
		}
		ms := time.Millisecond
		want := []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 5000 * ms, 5000 * ms}
		if !slices.Equal(got, want) {
			t.Fatalf("delays %v, want %v", got, want)
		}
		b.Reset()
		start := time.Now()
		b.Sleep(ctx)
		if d := time.Since(start); d != 100*ms {
			t.Fatalf("after Reset slept %v, want 100ms", d)
		}

		cctx, cancel := context.WithCancel(ctx)
		cancel()
		start = time.Now()
		b.Sleep(cctx)
		if d := time.Since(start); d != 0 {
			t.Fatalf("slept %v with ctx done", d)
		}
	})
}

// recorder is a read model that keeps what Follow applied.
type recorder struct {
	pos *projection.Position
	mu  sync.Mutex
	got []string
}

func (r *recorder) apply(e eventstore.RecordedEvent) {
	defer r.pos.Advance(e.Position)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, fmt.Sprintf("%d:%s", e.Position, e.ID))
}

func (r *recorder) events() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func appendEvent(t *testing.T, s eventstore.Store, stream, id string) {
	t.Helper()
	if _, err := s.Append(t.Context(), stream, eventstore.Any, []eventstore.EventData{{ID: id, Type: "test.Event"}}); err != nil {
		t.Fatal(err)
	}
}

func TestFollowMemoryStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.New(nil)
		appendEvent(t, store, "order-1", "a")
		appendEvent(t, store, "order-2", "b")

		r := &recorder{pos: projection.New()}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			projection.Follow(ctx, quiet, store, 1, r.apply)
		}()

		if !r.pos.Reach(ctx, time.Second, 2) {
			t.Fatalf("events appended before start not applied: %v", r.events())
		}
		appendEvent(t, store, "order-1", "c")
		if !r.pos.Reach(ctx, time.Second, 3) {
			t.Fatalf("event appended after start not applied: %v", r.events())
		}
		cancel()
		<-done
		if want := []string{"1:a", "2:b", "3:c"}; !slices.Equal(r.events(), want) {
			t.Fatalf("applied %v, want %v", r.events(), want)
		}
	})
}

func TestFollowFrom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.New(nil)
		for _, id := range []string{"a", "b", "c"} {
			appendEvent(t, store, "s-1", id)
		}
		r := &recorder{pos: projection.New()}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			projection.Follow(ctx, quiet, store, 2, r.apply)
		}()
		if !r.pos.Reach(ctx, time.Second, 3) {
			t.Fatalf("not caught up: %v", r.events())
		}
		cancel()
		<-done
		if want := []string{"2:b", "3:c"}; !slices.Equal(r.events(), want) {
			t.Fatalf("applied %v, want %v", r.events(), want)
		}
	})
}

// script is a Source whose subscriptions deliver scripted results; each
// subscription ends (ErrClosed) after its script. A SubscribeAll call
// beyond the scripts blocks until ctx ends.
type script struct {
	mu    sync.Mutex
	fails int      // SubscribeAll errors before the first subscription
	subs  [][]step // one script per subscription
	froms []uint64 // from of every SubscribeAll call
}

type step struct {
	e   eventstore.RecordedEvent
	err error
}

func ev(pos uint64) step {
	return step{e: eventstore.RecordedEvent{Stream: "s-1", Position: pos, EventData: eventstore.EventData{ID: fmt.Sprint("e", pos)}}}
}

func bad(pos uint64) step {
	return step{e: eventstore.RecordedEvent{Stream: "s-1", Position: pos}, err: errors.New("cannot decode")}
}

func (s *script) SubscribeAll(ctx context.Context, from uint64) (eventstore.Subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.froms = append(s.froms, from)
	if s.fails > 0 {
		s.fails--
		return nil, errors.New("no connection")
	}
	if len(s.subs) == 0 {
		return &scripted{}, nil
	}
	sub := &scripted{steps: s.subs[0], end: true}
	s.subs = s.subs[1:]
	return sub, nil
}

func (s *script) calls() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.froms)
}

type scripted struct {
	steps []step
	end   bool // ErrClosed after the steps; else block until ctx ends
}

func (s *scripted) Next(ctx context.Context) (eventstore.RecordedEvent, error) {
	if len(s.steps) > 0 {
		st := s.steps[0]
		s.steps = s.steps[1:]
		return st.e, st.err
	}
	if s.end {
		return eventstore.RecordedEvent{}, eventstore.ErrClosed
	}
	<-ctx.Done()
	return eventstore.RecordedEvent{}, ctx.Err()
}

func (s *scripted) Close() error { return nil }

func TestFollowResubscribes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &script{fails: 2, subs: [][]step{
			{ev(1), ev(2)},
			{ev(2), ev(3)}, // a redelivered event is not applied twice
		}}
		r := &recorder{pos: projection.New()}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			projection.Follow(ctx, quiet, src, 1, r.apply)
		}()
		if !r.pos.Reach(ctx, time.Minute, 3) {
			t.Fatalf("not caught up: %v", r.events())
		}
		time.Sleep(time.Minute) // past the backoff, to the resubscription
		cancel()
		<-done
		if want := []string{"1:e1", "2:e2", "3:e3"}; !slices.Equal(r.events(), want) {
			t.Fatalf("applied %v, want %v", r.events(), want)
		}
		if want := []uint64{1, 1, 1, 3, 4}; !slices.Equal(src.calls(), want) {
			t.Fatalf("subscribed from %v, want %v", src.calls(), want)
		}
	})
}

func TestFollowGoesOnBehindAnUndecodableEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &script{subs: [][]step{{ev(1), bad(2), ev(3)}}}
		r := &recorder{pos: projection.New()}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			projection.Follow(ctx, quiet, src, 1, r.apply)
		}()
		if !r.pos.Reach(ctx, time.Minute, 3) {
			t.Fatalf("not past the bad event: %v", r.events())
		}
		time.Sleep(time.Minute) // past the backoff, to the resubscription
		cancel()
		<-done
		if want := []string{"1:e1", "3:e3"}; !slices.Equal(r.events(), want) {
			t.Fatalf("applied %v, want %v", r.events(), want)
		}
		// Follow resumes after the last applied event.
		if want := []uint64{1, 4}; !slices.Equal(src.calls(), want) {
			t.Fatalf("subscribed from %v, want %v", src.calls(), want)
		}
	})
}

func TestFollowSkipping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The bad event is the last one: only skipping it moves the
		// position, and the resubscription starts after it.
		src := &script{subs: [][]step{{ev(1), bad(2), bad(1)}}}
		r := &recorder{pos: projection.New()}
		var skipped []uint64
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			projection.FollowSkipping(ctx, quiet, src, 1, r.apply, func(pos uint64) {
				skipped = append(skipped, pos)
				r.pos.Advance(pos)
			})
		}()
		if !r.pos.Reach(ctx, time.Minute, 2) {
			t.Fatalf("not past the bad event: %v", r.events())
		}
		time.Sleep(time.Minute) // past the backoff, to the resubscription
		cancel()
		<-done
		if want := []string{"1:e1"}; !slices.Equal(r.events(), want) {
			t.Fatalf("applied %v, want %v", r.events(), want)
		}
		// A bad event before from is logged but not reported.
		if want := []uint64{2}; !slices.Equal(skipped, want) {
			t.Fatalf("skipped %v, want %v", skipped, want)
		}
		if want := []uint64{1, 3}; !slices.Equal(src.calls(), want) {
			t.Fatalf("subscribed from %v, want %v", src.calls(), want)
		}
	})
}
