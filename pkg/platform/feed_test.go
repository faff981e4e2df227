package platform

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/eventstore/memory"
)

// recorder is a read model that records the positions applied to it.
type recorder struct {
	mu  sync.Mutex
	pos []uint64
}

func (r *recorder) apply(e eventstore.RecordedEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pos = append(r.pos, e.Position)
}

func (r *recorder) seen() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.pos)
}

// Read models of one source share one subscription: one that starts late
// catches up alone and joins; each sees every event once, in order; the
// last to leave stops the feed.
func TestFeedSharesOneSubscription(t *testing.T) {
	synctest.Test(t, testFeedSharesOneSubscription)
}

// testFeedSharesOneSubscription runs in a synctest bubble: synctest.Wait
// returns once every goroutine of the feed is blocked, with nothing left
// to apply.
func testFeedSharesOneSubscription(t *testing.T) {
	st := memory.New(nil)
	n := 0
	appendN := func(k int) {
		for range k {
			n++
			id := fmt.Sprintf("e%d", n)
			if _, err := st.Append(t.Context(), "thing-a", eventstore.Any, []eventstore.EventData{{ID: id, Type: "t", Data: []byte("x")}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	all := func() []uint64 {
		recs, err := st.ReadAll(t.Context(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var out []uint64
		for _, r := range recs {
			out = append(out, r.Position)
		}
		return out
	}
	until := func(what string, r *recorder, want []uint64) {
		t.Helper()
		synctest.Wait()
		if got := r.seen(); !slices.Equal(got, want) {
			t.Fatalf("%s: saw %v, want %v", what, got, want)
		}
	}
	fs := newFeeds()
	log := slog.New(slog.DiscardHandler)
	follow := func(r *recorder) (context.CancelFunc, *sync.WaitGroup) {
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		wg.Go(func() { fs.follow(ctx, log, "src", st, &member{apply: r.apply}) })
		return cancel, &wg
	}

	appendN(3)
	var a, b recorder
	stopA, doneA := follow(&a)
	until("a, first", &a, all())
	appendN(2)
	until("a, live", &a, all())

	stopB, doneB := follow(&b) // behind the feed: catches up alone, then joins
	until("b, caught up", &b, all())
	appendN(2)
	until("a, shared", &a, all())
	until("b, shared", &b, all())
	f := fs.feed("src", log)
	f.mu.Lock()
	members := len(f.members)
	f.mu.Unlock()
	if members != 2 {
		t.Fatalf("%d members on the feed, want both", members)
	}

	stopA()
	doneA.Wait()
	seenA := a.seen()
	appendN(1)
	until("b, alone", &b, all())
	if got := a.seen(); !slices.Equal(got, seenA) {
		t.Fatalf("a got %v after it left, had %v", got, seenA)
	}
	stopB()
	doneB.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stop != nil || len(f.members) != 0 {
		t.Fatalf("the feed runs on with %d members after the last left", len(f.members))
	}
}
