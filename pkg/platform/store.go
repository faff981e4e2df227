package platform

import (
	"context"
	"fmt"

	"github.com/custody/custody/pkg/eventstore/esdb"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
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
