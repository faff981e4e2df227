package projection_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/projection"
)

// newest is a store that tells only its newest position.
type newest struct {
	eventstore.Store
	last uint64
	err  error
}

func (n *newest) LastPosition(context.Context) (uint64, error) { return n.last, n.err }

func TestCatchUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := projection.New()
		st := &newest{last: 3}
		go func() {
			time.Sleep(time.Second)
			p.Advance(3)
		}()
		if ok, err := p.CatchUp(t.Context(), time.Minute, st); !ok || err != nil {
			t.Fatalf("caught up %v, %v", ok, err)
		}
		st.last = 4
		if ok, err := p.CatchUp(t.Context(), time.Second, st); ok || err != nil {
			t.Fatalf("caught up with 4 at 3: %v, %v", ok, err)
		}
		st.err = errors.New("no NATS")
		if _, err := p.CatchUp(t.Context(), time.Second, st); !errors.Is(err, st.err) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestUpstream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &newest{last: 2}
		opens, fail := 0, true
		up := projection.NewUpstream("order", func(_ context.Context, service string) (projection.Store, error) {
			if service != "order" {
				t.Errorf("opened %s, want order", service)
			}
			opens++
			if fail {
				return nil, errors.New("no stream yet")
			}
			return st, nil
		})
		if _, err := up.Store(t.Context()); err == nil || !strings.Contains(err.Error(), "order") {
			t.Fatalf("a failed open: %v", err)
		}
		fail = false
		for range 2 {
			if got, err := up.Store(t.Context()); got != st || err != nil {
				t.Fatalf("store %v, %v", got, err)
			}
		}
		if opens != 2 {
			t.Fatalf("opened %d times, want 2 (a failed open is tried again, a store is kept)", opens)
		}

		p := projection.New()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := up.CatchUp(ctx, p); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("behind: %v", err)
		}
		p.Advance(2)
		if err := up.CatchUp(t.Context(), p); err != nil {
			t.Fatal(err)
		}
		if _, err := projection.NewUpstream("trust", nil).Store(t.Context()); err == nil {
			t.Fatal("an upstream nothing can open opened")
		}
	})
}
