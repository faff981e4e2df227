package platform

import (
	"context"
	"sync"

	"github.com/nats-io/nats.go"

	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
)

// snapshotBucket is a service's snapshot store (esjs.Snapshots, on the
// process's NATS whatever the event store), opened at its first use: a
// service none of whose aggregates is snapshotted makes no bucket, and one
// that failed to open is tried again at the next use (the handler logs the
// failure and replays the stream meanwhile).
type snapshotBucket struct {
	nc       *nats.Conn
	service  string
	replicas int

	mu sync.Mutex
	s  *esjs.Snapshots
}

func (d Deps) snapshots(service string) *snapshotBucket {
	return &snapshotBucket{nc: d.NATS, service: service, replicas: d.Replicas}
}

func (b *snapshotBucket) open(ctx context.Context) (*esjs.Snapshots, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.s == nil {
		s, err := esjs.OpenSnapshots(ctx, b.nc, b.service, b.replicas)
		if err != nil {
			return nil, err
		}
		b.s = s
	}
	return b.s, nil
}

// Get implements eventstore.Snapshots.
func (b *snapshotBucket) Get(ctx context.Context, stream string) ([]byte, error) {
	s, err := b.open(ctx)
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, stream)
}

// Put implements eventstore.Snapshots.
func (b *snapshotBucket) Put(ctx context.Context, stream string, snapshot []byte) error {
	s, err := b.open(ctx)
	if err != nil {
		return err
	}
	return s.Put(ctx, stream, snapshot)
}
