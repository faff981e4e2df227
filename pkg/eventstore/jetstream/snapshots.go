package jetstream

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/pkg/eventstore"
)

// Snapshots is one service's eventstore.Snapshots: a JetStream key-value
// bucket (SnapshotBucket) with one key per stream, its name, holding only
// the latest snapshot. Reads are direct gets, as the event store's are.
type Snapshots struct{ kv jetstream.KeyValue }

var _ eventstore.Snapshots = (*Snapshots)(nil)

// SnapshotBucket is the key-value bucket of service's snapshots.
func SnapshotBucket(service string) string { return "custody_snapshots_" + service }

// OpenSnapshots opens service's snapshot bucket, creating it, or updating
// its replicas, if need be. A snapshot larger than the server's max_payload
// cannot be put: the handler logs it and replays that stream on loads.
func OpenSnapshots(ctx context.Context, nc *nats.Conn, service string, replicas int) (*Snapshots, error) {
	if !servicePattern.MatchString(service) {
		return nil, fmt.Errorf("jetstream: bad service name %q", service)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      SnapshotBucket(service),
		Description: "Custody aggregate snapshots of the " + service + " service (an optimisation: losing them loses nothing)",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("jetstream: snapshot bucket of %s: %w", service, err)
	}
	return &Snapshots{kv: kv}, nil
}

// Get implements eventstore.Snapshots.
func (s *Snapshots) Get(ctx context.Context, stream string) ([]byte, error) {
	e, err := s.kv.Get(ctx, stream)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return e.Value(), nil
}

// Put implements eventstore.Snapshots.
func (s *Snapshots) Put(ctx context.Context, stream string, snapshot []byte) error {
	_, err := s.kv.Put(ctx, stream, snapshot)
	return err
}
