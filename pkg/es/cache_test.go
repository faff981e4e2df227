package es_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/eventstore/memory"
)

func add(id, cmdID string, n int64) es.Command[cmd] {
	return es.Command[cmd]{AggregateID: id, ID: cmdID, Body: cmd{add: n}}
}

// The cache keeps the aggregates used last: a command, a load or a peek
// is a use, and past the cache size the least recently used is dropped. An
// aggregate that does not exist is not kept at all: a flood of lookups of
// orders never placed would otherwise evict those that are.
func TestCacheDropsTheLeastRecentlyUsed(t *testing.T) {
	cases := []struct {
		name string
		size int
		uses []string // "a": a command on a; "peek a"; "load a"
		want []string // in memory after
	}{
		{"within the size", 3, []string{"a", "b", "c"}, []string{"a", "b", "c"}},
		{"the oldest goes", 2, []string{"a", "b", "c"}, []string{"b", "c"}},
		{"a command is a use", 2, []string{"a", "b", "a", "c"}, []string{"a", "c"}},
		{"a peek is a use", 2, []string{"a", "b", "peek a", "c"}, []string{"a", "c"}},
		{"a load is a use", 2, []string{"a", "b", "load a", "c"}, []string{"a", "c"}},
		{"a load of nothing is not kept", 2, []string{"a", "b", "load nothing"}, []string{"a", "b"}},
		{"a peek of what is not in memory changes nothing", 2, []string{"a", "b", "peek c"}, []string{"a", "b"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := es.NewHandler(counter, memory.New(nil), es.Options{CacheSize: tc.size})
			for i, u := range tc.uses {
				var err error
				op, id, found := strings.Cut(u, " ")
				if !found {
					op, id = "", u
				}
				switch op {
				case "peek":
					h.Peek(id)
				case "load":
					_, _, _, err = h.Load(t.Context(), id)
				default:
					_, err = h.Handle(t.Context(), add(id, fmt.Sprint("c", i), 1))
				}
				if err != nil {
					t.Fatalf("%s: %v", u, err)
				}
			}
			for _, id := range []string{"a", "b", "c", "nothing"} {
				if got, want := es.Cached(h, id), slices.Contains(tc.want, id); got != want {
					t.Errorf("%s in memory: %v, want %v", id, got, want)
				}
			}
		})
	}
}

// gatedStore holds the appends to one stream until the test opens the gate.
type gatedStore struct {
	eventstore.Store
	stream  string
	entered chan struct{} // receives when an append to stream waits
	gate    chan struct{} // closed: appends to stream go on
}

func (g *gatedStore) Append(ctx context.Context, s string, e eventstore.ExpectedRevision, evs []eventstore.EventData) (eventstore.AppendResult, error) {
	if s == g.stream {
		g.entered <- struct{}{}
		<-g.gate
	}
	return g.Store.Append(ctx, s, e, evs)
}

// An aggregate a command is being decided on stays in memory however many
// others are used meanwhile: the cache drops only idle ones, so a second
// copy of it can never be made beside the one being decided.
func TestCacheNeverDropsAnAggregateInUse(t *testing.T) {
	st := &gatedStore{Store: memory.New(nil), stream: "sku-a", entered: make(chan struct{}, 8), gate: make(chan struct{})}
	counted := &countingStore{Store: st}
	h := es.NewHandler(counter, counted, es.Options{CacheSize: 1})
	done := make(chan error, 1)
	go func() {
		_, err := h.Handle(context.Background(), add("a", "a1", 5))
		done <- err
	}()
	<-st.entered // a's append waits
	for i, id := range []string{"b", "c", "b"} {
		if _, err := h.Handle(t.Context(), add(id, fmt.Sprint(id, i), 1)); err != nil {
			t.Fatal(err)
		}
	}
	if !es.Cached(h, "a") {
		t.Fatal("the aggregate being decided was dropped from memory")
	}
	if es.Cached(h, "b") || es.Cached(h, "c") {
		t.Error("idle aggregates kept beyond the cache size while another is in use")
	}
	if _, _, ok := h.Peek("a"); ok {
		t.Error("Peek answered for an aggregate being decided")
	}
	close(st.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !es.Cached(h, "a") {
		t.Fatal("the aggregate just decided is not the one in memory")
	}
	reads := counted.reads.Load()
	res, err := h.Handle(t.Context(), es.Command[cmd]{AggregateID: "a", ID: "a2", Body: cmd{take: 2}})
	if err != nil || res.State.units != 3 || res.Revision != 1 {
		t.Fatalf("take 2 of 5 = %+v, %v; want 3 units at revision 1", res, err)
	}
	if counted.reads.Load() != reads {
		t.Error("an aggregate kept in memory was read from the store again")
	}
}

// An aggregate dropped from memory is loaded from the store when next used
// and decides exactly as one that stayed: the same states, revisions,
// refusals and repeats recognised.
func TestEvictedAggregateDecidesTheSame(t *testing.T) {
	steps := []struct {
		id string
		c  cmd
		fp string
	}{
		{"r1", cmd{add: 5}, "fp-1"},
		{"r2", cmd{take: 3}, ""},
		{"r1", cmd{add: 5}, "fp-1"}, // a repeat
		{"r1", cmd{add: 9}, "fp-x"}, // the request id reused for another request
		{"r3", cmd{take: 3}, ""},    // out of stock
		{"r4", cmd{add: 1}, "fp-4"},
		{"r3", cmd{take: 3}, ""},     // now there is stock: r3 was refused, not applied
		{"r2", cmd{take: 3}, "fp-2"}, // a repeat; r2 came without a fingerprint
	}
	type outcome struct {
		units     int64
		revision  uint64
		duplicate bool
		err       error
	}
	run := func(size int, other bool) []outcome {
		st := &countingStore{Store: memory.New(nil)}
		h := es.NewHandler(counter, st, es.Options{CacheSize: size})
		var out []outcome
		for i, s := range steps {
			reads := st.reads.Load()
			res, err := h.Handle(t.Context(), es.Command[cmd]{AggregateID: "m", ID: s.id, Body: s.c, Meta: es.Meta{RequestFingerprint: s.fp}})
			if other {
				if i > 0 && st.reads.Load() == reads {
					t.Errorf("step %d: the dropped aggregate was decided without reading the store", i)
				}
				// Another aggregate takes the one place: m is dropped.
				if _, err := h.Handle(t.Context(), add(fmt.Sprint("o", i), "x", 1)); err != nil {
					t.Fatal(err)
				}
				if es.Cached(h, "m") {
					t.Fatalf("step %d: m is still in memory", i)
				}
			}
			out = append(out, outcome{res.State.units, res.Revision, res.Duplicate, err})
		}
		return out
	}
	kept, dropped := run(100, false), run(1, true)
	for i := range steps {
		k, d := kept[i], dropped[i]
		if k.units != d.units || k.revision != d.revision || k.duplicate != d.duplicate || !sameErr(k.err, d.err) {
			t.Errorf("step %d (%s): kept in memory %+v, dropped and reloaded %+v", i, steps[i].id, k, d)
		}
	}
	if !errors.Is(kept[3].err, es.ErrRequestReused) || !errors.Is(kept[4].err, errOutOfStock) || !kept[2].duplicate || !kept[7].duplicate {
		t.Errorf("the steps did not test what they should: %+v", kept)
	}
}

func sameErr(a, b error) bool {
	switch {
	case a == nil || b == nil:
		return a == b
	case errors.Is(a, es.ErrRequestReused):
		return errors.Is(b, es.ErrRequestReused)
	}
	return errors.Is(b, a)
}

// conflictStore counts appends refused for a wrong expected revision.
type conflictStore struct {
	eventstore.Store
	conflicts atomic.Int64
}

func (c *conflictStore) Append(ctx context.Context, s string, e eventstore.ExpectedRevision, evs []eventstore.EventData) (eventstore.AppendResult, error) {
	res, err := c.Store.Append(ctx, s, e, evs)
	if errors.Is(err, eventstore.ErrWrongExpected) {
		c.conflicts.Add(1)
	}
	return res, err
}

// Many commands on more aggregates than the cache holds, at once: every
// command lands, and since one process never holds two copies of an
// aggregate, no append meets a conflict.
func TestEvictionNeverSplitsAnAggregate(t *testing.T) {
	st := &conflictStore{Store: memory.New(nil)}
	h := es.NewHandler(counter, st, es.Options{CacheSize: 2})
	const aggregates, commands = 6, 300
	var wg sync.WaitGroup
	for i := range commands {
		wg.Go(func() {
			if _, err := h.Handle(t.Context(), add(fmt.Sprint("g", i%aggregates), fmt.Sprint("c", i), 1)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := st.conflicts.Load(); n != 0 {
		t.Errorf("%d appends met a conflict inside one process", n)
	}
	for g := range aggregates {
		if s, _, _, err := h.Load(t.Context(), fmt.Sprint("g", g)); err != nil || s.units != commands/aggregates {
			t.Errorf("g%d: %d units (%v), want %d", g, s.units, err, commands/aggregates)
		}
	}
}

// Stored asks the store, not the cache: an aggregate another process
// created is stored; a refused command stores nothing.
func TestStoredAsksTheStore(t *testing.T) {
	store := memory.New(nil)
	h := es.NewHandler(counter, store, es.Options{})
	other := es.NewHandler(counter, store, es.Options{})
	if _, err := h.Handle(t.Context(), es.Command[cmd]{AggregateID: "refused", ID: "c1", Body: cmd{take: 1}}); !errors.Is(err, errOutOfStock) {
		t.Fatalf("take from nothing: %v", err)
	}
	if _, err := other.Handle(t.Context(), add("elsewhere", "c2", 1)); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"refused": false, "elsewhere": true, "never": false} {
		if got, err := h.Stored(t.Context(), id); err != nil || got != want {
			t.Errorf("Stored(%s) = %v, %v; want %v", id, got, err, want)
		}
	}
}
