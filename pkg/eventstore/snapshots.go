package eventstore

import "context"

// Snapshots keeps the latest snapshot of each stream: opaque bytes that the
// command handler (pkg/es) writes now and then for a long-lived aggregate
// and reads back when it loads one, so that it replays only the events
// after the snapshot. Snapshots are an optimisation, never history: they
// may be lost, stale or from another store, and the handler checks each
// against the stream (see es.SnapshotCodec) and replays the stream when
// one does not fit. Backends: jetstream.Snapshots (a key-value bucket per
// service) and memory.Snapshots (tests).
type Snapshots interface {
	// Get returns stream's latest snapshot, or nil if it has none.
	Get(ctx context.Context, stream string) ([]byte, error)
	// Put replaces stream's snapshot.
	Put(ctx context.Context, stream string, snapshot []byte) error
}
