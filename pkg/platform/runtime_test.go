package platform_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/pkg/bus"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/pkg/platform/platformtest"
	"github.com/custody/custody/pkg/projection"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// recorder is a module that declares one of each part, so the test sees
// what the runtime does with them.
type recorder struct {
	own, other atomic.Int64 // events folded by the two projections
	carts      atomic.Int64 // events handled by the reaction narrowed to carts
	ownPos     *projection.Position
	working    atomic.Bool

	mu       sync.Mutex
	attempts map[int64]int // Money amount -> handler calls
	handled  []int64       // amounts handled successfully, in order
}

// Amounts with a meaning to the handler.
const (
	flaky  = 13 // fails on its first delivery, then succeeds
	poison = 66 // a permanent error: parked at once
)

func (r *recorder) module() platform.Module {
	return platform.Module{Name: "demo", New: func(ctx context.Context, d platform.Deps) (platform.Parts, error) {
		if _, err := d.OpenStore(ctx, "demo"); err != nil {
			return platform.Parts{}, err
		}
		return platform.Parts{
			Projections: []platform.Projection{
				{Name: "own", Source: "demo", Position: r.ownPos, Apply: func(eventstore.RecordedEvent) { r.own.Add(1) }},
				{Name: "other", Source: "other", Apply: func(eventstore.RecordedEvent) { r.other.Add(1) }},
			},
			Reactions: []platform.Reaction{{
				Name: "demo-on-other", Source: "other", EventTypes: []string{"custody.type.v1.Money"},
				Handle: r.handle,
			}, {
				Name: "demo-on-carts", Source: "other", Aggregates: []string{"cart"},
				EventTypes: []string{"custody.type.v1.Money", "custody.type.v1.Address"},
				Handle:     func(context.Context, eventstore.RecordedEvent) error { r.carts.Add(1); return nil },
			}},
			Workers: []func(context.Context){func(ctx context.Context) { r.working.Store(true); <-ctx.Done() }},
		}, nil
	}}
}

func (r *recorder) handle(_ context.Context, e eventstore.RecordedEvent) error {
	ev, err := es.Decode(e)
	if err != nil {
		return fault.Permanent(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	amount := ev.Payload.(*typev1.Money).GetAmountMinor()
	r.attempts[amount]++
	switch {
	case amount == poison:
		return fault.Permanent(errors.New("poison"))
	case amount == flaky && r.attempts[amount] == 1:
		return errors.New("a passing failure")
	}
	r.handled = append(r.handled, amount)
	return nil
}

func TestRuntimeRunsWhatAModuleDeclares(t *testing.T) {
	r := &recorder{ownPos: projection.New(), attempts: map[int64]int{}}
	// The module's own events from before a start: its own projection has
	// folded them before the process serves.
	p := platformtest.Start(t, platformtest.Options{}, r.module())
	for i := range 3 {
		p.Emit(t, "demo", fmt.Sprintf("thing-%d", i), &typev1.Address{CountryCode: "DE"})
	}
	// The running process folds them too; once it has, nothing of it can
	// add to the count after it is reset (an event it was still applying
	// while stopped made the count 4 in one run of a hundred).
	platformtest.Eventually(t, "the running process to fold the 3 events", func() error {
		if n := r.own.Load(); n != 3 {
			return fmt.Errorf("%d folded", n)
		}
		return nil
	})
	r.own.Store(0)
	p.Restart(t)
	if n, ready := r.own.Load(), func() bool { _, ok := r.ownPos.Get(); return ok }(); n != 3 || !ready {
		t.Fatalf("serving with the own projection at %d events (ready %v), want 3 and ready", n, ready)
	}
	platformtest.Eventually(t, "the worker to run", func() error {
		if !r.working.Load() {
			return errors.New("not running")
		}
		return nil
	})

	// The other service's stream appears only now: the reaction and the
	// projection wait for it, then handle everything, retrying what fails
	// once and parking what can never succeed.
	p.Emit(t, "other", "cart-1", &typev1.Address{CountryCode: "FR"}) // for the reaction narrowed to carts only
	p.Emit(t, "other", "thing-a", &typev1.Money{CurrencyCode: "EUR", AmountMinor: 1})
	p.Emit(t, "other", "thing-b", &typev1.Money{CurrencyCode: "EUR", AmountMinor: flaky},
		&typev1.Address{CountryCode: "DE"}) // a type the reaction does not want
	p.Emit(t, "other", "thing-c", &typev1.Money{CurrencyCode: "EUR", AmountMinor: poison})
	p.Emit(t, "other", "thing-a", &typev1.Money{CurrencyCode: "EUR", AmountMinor: 2})
	p.Settled(t)

	r.mu.Lock()
	handled, attempts := slices.Clone(r.handled), maps.Clone(r.attempts)
	r.mu.Unlock()
	slices.Sort(handled)
	if want := []int64{1, 2, flaky}; !slices.Equal(handled, want) {
		t.Errorf("handled %v, want %v", handled, want)
	}
	if attempts[flaky] != 2 || attempts[poison] != 1 || attempts[1] != 1 {
		t.Errorf("attempts %v: want the flaky event twice, the poison and the others once", attempts)
	}
	if n := r.other.Load(); n != 6 {
		t.Errorf("the other projection folded %d events, want 6", n)
	}
	if n := r.carts.Load(); n != 1 {
		t.Errorf("the reaction narrowed to carts handled %d events, want 1", n)
	}
	parked, err := bus.ListParked(t.Context(), jetstreamOf(t, p), "demo-on-other")
	if err != nil || len(parked) != 1 || parked[0].Cause != bus.CausePermanent {
		t.Fatalf("parked %+v, %v: want the poison event, parked as permanent", parked, err)
	}

	// After a restart the projections fold from the start again and the
	// durable reaction hands nothing a second time.
	r.own.Store(0)
	r.other.Store(0)
	p.Restart(t)
	p.Settled(t)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.handled) != 3 || r.own.Load() != 3 || r.other.Load() != 6 || r.carts.Load() != 1 {
		t.Errorf("after restart: handled %v, own %d, other %d", r.handled, r.own.Load(), r.other.Load())
	}
}

func jetstreamOf(t *testing.T, p *platformtest.Platform) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(p.NATS)
	if err != nil {
		t.Fatal(err)
	}
	return js
}
