package platform

import (
	"context"
	"fmt"

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
	// them between services: each module relays its own events, in order and
	// idempotently, into its JetStream stream, which the reactions consume.
	StoreESDB = "esdb"
)

// Backend selects where events are stored.
type Backend struct {
	Kind    string // StoreJetStream (also "") or StoreESDB
	ESDBURL string // EventStoreDB connection string, for StoreESDB
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
	return esjs.Open(ctx, d.NATS, esjs.Config{Service: service, Replicas: d.Replicas, ReadOnly: readOnly, Now: d.Clock.Now})
}

// relay is the projection that copies a module's own events from
// EventStoreDB into its JetStream stream, where other services' reactions
// consume them. Each event is appended at its own revision with its own
// id, so a copy made twice (after a restart: the relay starts from the
// beginning) is recognised and not stored again, and the copy's order per
// stream is the original's. The runtime folds it like any projection: it
// has caught up before the module serves, and Settled waits for it.
func relay(ctx context.Context, d Deps, service string) (Projection, error) {
	mirror, err := esjs.Open(ctx, d.NATS, esjs.Config{Service: service, Replicas: d.Replicas, Now: d.Clock.Now})
	if err != nil {
		return Projection{}, err
	}
	log := d.Logger.With("relay", service)
	return Projection{Name: "relay of " + service + " events to NATS", Source: service, Apply: func(e eventstore.RecordedEvent) {
		expected := eventstore.NoStream
		if e.Revision > 0 {
			expected = eventstore.Exact(e.Revision - 1)
		}
		for b := projection.NewBackoff(); ; b.Sleep(ctx) {
			_, err := mirror.Append(ctx, e.Stream, expected, []eventstore.EventData{e.EventData})
			if err == nil || ctx.Err() != nil {
				return
			}
			log.Warn("relaying an event to NATS; will retry", "stream", e.Stream, "revision", e.Revision, "err", err)
		}
	}}, nil
}
