package platform

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/eventstore/esdb"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/projection"
)

// Event store backends (custody run --store).
const (
	// StoreJetStream keeps every service's events in a JetStream stream of
	// the process's NATS (the default): one system to run.
	StoreJetStream = "jetstream"
	// StoreESDB keeps them in EventStoreDB (--esdb-url). NATS still carries
	// them between services: each module relays its own events, in order,
	// into its JetStream stream (esdb.Relay), which the reactions consume.
	StoreESDB = "esdb"
)

// Backend selects where events are stored.
type Backend struct {
	Kind    string // StoreJetStream (also "") or StoreESDB
	ESDBURL string // EventStoreDB connection string, for StoreESDB
	// AllowDamaged opens a module's own damaged JetStream store for
	// support to inspect instead of refusing to start (custody run
	// --allow-damaged): the module serves reads, takes no writes, and runs
	// no reactions or deadlines.
	AllowDamaged bool
	// Linger is how long an idle JetStream writer waits for more appends
	// to share its message (custody run --store-linger).
	Linger time.Duration
}

// Validate reports a backend that cannot be opened as configured.
func (b Backend) Validate() error {
	switch b.Kind {
	case "", StoreJetStream:
		return nil
	case StoreESDB:
		if b.ESDBURL == "" {
			return fmt.Errorf("--store=%s needs --esdb-url", StoreESDB)
		}
		return nil
	}
	return fmt.Errorf("--store=%q: want %q or %q", b.Kind, StoreJetStream, StoreESDB)
}

func (b Backend) esdb() bool { return b.Kind == StoreESDB }

// open opens service's store: the module's own (creating its stream), or
// read-only. A read-only JetStream store whose stream does not exist yet
// fails with esjs.ErrNotCreatedYet.
func (b Backend) open(ctx context.Context, d Deps, service string, readOnly bool) (Store, error) {
	if b.esdb() {
		return esdb.Open(ctx, esdb.Config{URL: b.ESDBURL, Service: service, Now: d.Clock.Now, Logger: d.Logger})
	}
	cfg := esjs.Config{Service: service, Replicas: d.Replicas, ReadOnly: readOnly, Now: d.Clock.Now,
		AllowDamaged: b.AllowDamaged, Gate: d.writeGate, Linger: b.Linger,
		// The per-stream index beside the read models, not in the heap.
		Index: d.readModels}
	st, err := esjs.Open(ctx, d.NATS, cfg)
	// A cluster that is starting, or electing a stream's leader after a
	// node died, answers the JetStream API late: wait for it (bounded)
	// rather than exit, as the connection itself does.
	wctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	for backoff := projection.NewBackoff(); errors.Is(err, eventstore.ErrUnavailable) && wctx.Err() == nil; {
		d.Logger.Warn("opening the event store; will retry", "service", service, "err", err)
		backoff.Sleep(wctx)
		st, err = esjs.Open(ctx, d.NATS, cfg)
	}
	var de *esjs.DamageError
	if errors.As(err, &de) {
		for _, dm := range de.Damage {
			d.Logger.Error("event store damaged", "service", service, "damage", dm.String())
		}
		return nil, fmt.Errorf("%w (to serve it read-only for inspection, start with --allow-damaged)", err)
	}
	if err != nil || readOnly {
		return st, err
	}
	if dmg, _ := st.Damage(ctx); len(dmg) > 0 {
		for _, dm := range dmg {
			d.Logger.Error("event store damaged; serving it read-only (--allow-damaged)", "service", service, "damage", dm.String())
		}
		d.damaged.add(service)
	}
	return st, nil
}

// openTimeout bounds the retries of an event store that does not answer.
const openTimeout = 2 * time.Minute

// damaged are the modules whose own store opened damaged.
type damaged struct {
	mu sync.Mutex
	m  map[string]bool
}

func (x *damaged) add(service string) {
	if x == nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.m == nil {
		x.m = map[string]bool{}
	}
	x.m[service] = true
}

func (x *damaged) has(service string) bool {
	if x == nil {
		return false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.m[service]
}
