package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/eventstore/memory"
	"github.com/custody/custody/pkg/kv"
	"github.com/custody/custody/pkg/platform/platformtest"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/fulfilment/domain"
)

// process is the fulfilment service as a process runs it, on a memory
// event store and a real read-model store in dir: its read model follows
// the store, its scheduler runs. It counts what the store's events say of
// each fulfilment's ship-by deadline.
type process struct {
	t    *testing.T
	svc  *Service
	db   *kv.DB
	stop func()

	mu        sync.Mutex
	applied   uint64
	missed    map[string]int // ShipByDeadlineMissed per fulfilment
	cancelled map[string]int // FulfilmentCancelled per fulfilment
}

func startProcess(t *testing.T, store *memory.Store, clk clock.Clock, dir string, held int) *process {
	t.Helper()
	svc := New(Config{DeadlinesHeld: held}, // the zero policy cancels at once
		Deps{Store: memStore{store}, Clock: clk, Logger: slog.New(slog.DiscardHandler)})
	db, err := kv.Open(dir, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	space, err := db.Space(spaceName)
	if err != nil {
		t.Fatal(err)
	}
	pos, version, err := space.State()
	if err != nil {
		t.Fatal(err)
	}
	if version != svc.rm.Version() {
		if err := space.Reset(svc.rm.Version()); err != nil {
			t.Fatal(err)
		}
		pos = 0
	}
	if err := svc.rm.Attach(space); err != nil {
		t.Fatal(err)
	}
	p := &process{t: t, svc: svc, db: db, applied: pos, missed: map[string]int{}, cancelled: map[string]int{}}
	ctx, cancel := context.WithCancel(t.Context())
	sub, err := store.SubscribeAll(ctx, pos+1)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			e, err := sub.Next(ctx)
			if err != nil {
				return
			}
			svc.rm.Apply(e)
			p.mu.Lock()
			p.applied = e.Position
			_, id, _ := eventstore.SplitStream(e.Stream)
			switch e.Type {
			case "custody.fulfilment.v1.ShipByDeadlineMissed":
				p.missed[id]++
			case "custody.fulfilment.v1.FulfilmentCancelled":
				p.cancelled[id]++
			}
			p.mu.Unlock()
		}
	})
	// The platform runs the scheduler once the read model has caught up.
	last, err := store.ReadAll(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(last) > 0 {
		p.until("the read model to catch up", func() bool { return p.applied >= last[len(last)-1].Position })
	}
	wg.Go(func() { svc.deadlines.Run(ctx) })
	p.stop = func() {
		cancel()
		_ = sub.Close()
		wg.Wait()
		_ = db.Close()
	}
	t.Cleanup(p.stop)
	return p
}

// memStore is a memory store as the services' Deps want it.
type memStore struct{ *memory.Store }

func (m memStore) LastPosition(ctx context.Context) (uint64, error) {
	all, err := m.ReadAll(ctx, 0, 0)
	if err != nil || len(all) == 0 {
		return 0, err
	}
	return all[len(all)-1].Position, nil
}

func (p *process) until(what string, ok func() bool) {
	p.t.Helper()
	platformtest.Until(p.t, what, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return ok()
	})
}

// held fails the test if the scheduler holds more than the bound.
func (p *process) held(bound int) {
	p.t.Helper()
	if n := p.svc.Deadlines().Pending(); n > bound {
		p.t.Fatalf("the scheduler holds %d ship-by deadlines, the bound is %d", n, bound)
	}
}

// Under a flash sale nothing ships for a while: 10,000 ship-by deadlines
// pending, the scheduler holding 100 of them, also after a restart. As the
// fake clock passes them every one fires, in time, and cancels its
// fulfilment once (the cancel policy), the bound never passed.
func TestManyShipByDeadlinesAreNotAllHeldAndAllFire(t *testing.T) {
	t.Parallel()
	const n, bound = 10_000, 100
	clk := clock.NewFake(t0)
	store := memory.New(clk.Now)
	dir := t.TempDir()
	p := startProcess(t, store, clk, dir, bound)

	shipBy := func(i int) time.Time { return t0.Add(time.Hour + time.Duration(i%(n/2))*time.Minute) } // two to a minute
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("ff%05d", i)
		_, err := p.svc.h.Handle(t.Context(), es.Command[domain.Command]{
			AggregateID: ids[i], ID: es.DeriveID("request", ids[i]),
			Body: domain.RequestFulfilment{OrderID: "o" + ids[i], VendorID: "v1", BuyerID: "b1",
				Lines:   []domain.Line{{LineID: "1", SKUID: "s1", Quantity: 1}},
				Address: &typev1.Address{RecipientName: "R", AddressLines: []string{"1 Road"}, Locality: "Berlin", PostalCode: "10115", CountryCode: "DE"},
				ShipBy:  shipBy(i), Time: clk.Now()},
		})
		if err != nil {
			t.Fatal(err)
		}
		if i%1000 == 0 {
			p.held(bound)
		}
	}
	p.until("the read model to apply every request", func() bool { return p.applied == n })
	if due := storedDeadlines(t, p.svc.rm); len(due) != n {
		t.Fatalf("%d ship-by deadlines stored, want %d", len(due), n)
	}
	p.held(bound)
	if got := len(p.svc.rm.Open()); got != n {
		t.Fatalf("Open lists %d", got)
	}

	// Half of them pass; then the process restarts, and the rest pass.
	fired, base := 0, 0 // base: those a process before p fired
	step := func(d time.Duration) {
		clk.Advance(d)
		want := 0
		for i := range n {
			if !shipBy(i).After(clk.Now()) {
				want++
			}
		}
		p.until(fmt.Sprintf("%d deadlines to fire by %v", want, clk.Now()), func() bool { return base+len(p.cancelled) >= want })
		p.held(bound)
		fired = want
	}
	step(time.Hour - time.Minute) // none due yet
	for range 25 {
		step(100 * time.Minute)
	}
	if fired < n/3 || fired > 2*n/3 {
		t.Fatalf("%d fired before the restart", fired)
	}
	p.stop()
	missed, cancelled := p.missed, p.cancelled // p has stopped

	p, base = startProcess(t, store, clk, dir, bound), fired
	p.held(bound)
	if due := storedDeadlines(t, p.svc.rm); len(due) != n-fired {
		t.Fatalf("after the restart %d ship-by deadlines stored, want %d", len(due), n-fired)
	}
	for range 26 {
		step(100 * time.Minute)
	}
	if fired != n {
		t.Fatalf("%d due at the end", fired)
	}
	p.stop()
	for id, c := range p.missed {
		missed[id] += c
	}
	for id, c := range p.cancelled {
		cancelled[id] += c
	}
	for _, id := range ids {
		if missed[id] != 1 || cancelled[id] != 1 {
			t.Fatalf("%s: missed %d times, cancelled %d times", id, missed[id], cancelled[id])
		}
	}
	if len(missed) != n || len(cancelled) != n {
		t.Fatalf("%d missed, %d cancelled", len(missed), len(cancelled))
	}
	// Every fulfilment is cancelled, and nothing is left to fire.
	p = startProcess(t, store, clk, dir, bound)
	if due := storedDeadlines(t, p.svc.rm); len(due) != 0 {
		t.Fatalf("%d ship-by deadlines left", len(due))
	}
	for _, id := range []string{ids[0], ids[n/2], ids[n-1]} {
		if v, ok := p.svc.rm.Get(id); !ok || v.Fulfilment.Status() != domain.StatusCancelled {
			t.Fatalf("%s: %v %v", id, ok, v.Fulfilment.Status())
		}
	}
}
