package es

import (
	"bytes"
	"context"
	"errors"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/eventstore"
	eventstorev1 "github.com/custody/custody/proto/custody/eventstore/v1"
)

// SnapshotCodec encodes the state of a long-lived aggregate for snapshots.
//
// With a snapshot store (Options.Snapshots) the handler writes a snapshot
// of such an aggregate once it has applied Options.SnapshotEvery events
// since the last one, and loads it from its latest snapshot and the events
// stored after it. A snapshot (custody.eventstore.v1.Snapshot) holds the
// encoded state, the command ids applied so far (repeats are still
// recognised) and the revision and hash of the last event it covers.
//
// Snapshots are an optimisation only: one that is missing, of another
// Version, undecodable, or whose covered event the store does not hold
// with that hash (the hash chains the whole history before it) is ignored
// and the stream replayed. Writing one never fails or delays a command: it
// is made in the background from the latest snapshot and the events after
// it, as a load would, and a failure is logged.
type SnapshotCodec[S any] struct {
	// Version names the encoding and the meaning of the state. Change it
	// whenever either changes (a field added, Evolve counting differently):
	// snapshots of another version are ignored.
	Version string
	// Encode and Decode turn a state into bytes and back: Decode(id,
	// Encode(s)) must be s, for any s folded for aggregate id.
	Encode func(S) ([]byte, error)
	Decode func(id string, data []byte) (S, error)
}

// snapshots reports whether h writes and reads snapshots.
func (h *Handler[S, C]) snapshots() bool { return h.snaps != nil && h.d.Snapshot != nil }

// fromSnapshot loads r from the latest snapshot of its stream, if there is
// one that fits, and returns the events stored after it (to be applied).
// ok is false, and r untouched, when there is none that fits: then the
// stream is replayed.
func (h *Handler[S, C]) fromSnapshot(ctx context.Context, r *root[S, C], stream string) (after []eventstore.RecordedEvent, hash []byte, ok bool) {
	if !h.snapshots() {
		return nil, nil, false
	}
	data, err := h.snaps.Get(ctx, stream)
	if err != nil {
		h.log.Warn("reading a snapshot failed; replaying the stream", "stream", stream, "err", err)
		return nil, nil, false
	}
	if data == nil {
		return nil, nil, false
	}
	ignore := func(reason string, args ...any) ([]eventstore.RecordedEvent, []byte, bool) {
		h.log.Warn("snapshot ignored; replaying the stream", append([]any{"stream", stream, "reason", reason}, args...)...)
		h.snapshotsCount.Add(ctx, 1, h.outcomes.Of("ignored"))
		return nil, nil, false
	}
	var snap eventstorev1.Snapshot
	if err := proto.Unmarshal(data, &snap); err != nil {
		return ignore("undecodable", "err", err)
	}
	if snap.GetStream() != stream || snap.GetStateVersion() != h.d.Snapshot.Version {
		return ignore("another stream or state version", "snapshot_stream", snap.GetStream(), "version", snap.GetStateVersion())
	}
	state, err := h.d.Snapshot.Decode(r.id, snap.GetState())
	if err != nil {
		return ignore("state undecodable", "err", err)
	}
	// Read from the covered event on: the store must hold it, with the hash
	// the snapshot was made after.
	recs, err := h.store.ReadStream(ctx, stream, snap.GetRevision(), 0)
	if err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
		return nil, nil, false // the replay meets the same error and reports it
	}
	if len(recs) == 0 || recs[0].Revision != snap.GetRevision() || len(snap.GetEventHash()) == 0 || !bytes.Equal(recs[0].Hash, snap.GetEventHash()) {
		return ignore("the stream does not hold the covered event", "revision", snap.GetRevision())
	}
	applied := make(map[string]string, len(snap.GetApplied()))
	for _, a := range snap.GetApplied() {
		applied[a.GetCommandId()] = a.GetRequestFingerprint()
	}
	r.state, r.revision, r.exists, r.applied = state, snap.GetRevision(), true, applied
	h.snapshotsCount.Add(ctx, 1, h.outcomes.Of("loaded"))
	return recs[1:], recs[0].Hash, true
}

// snapshotIfDue starts writing a snapshot of r once it has applied
// SnapshotEvery events since its last one, unless one is being written
// (the next command tries again). Only the leader calls it.
func (h *Handler[S, C]) snapshotIfDue(r *root[S, C]) {
	if !h.snapshots() || !r.loaded || r.since < h.snapshotEvery || !r.writing.CompareAndSwap(false, true) {
		return
	}
	r.since = 0
	h.writing.Add(1)
	go func() {
		defer h.writing.Done()
		defer r.writing.Store(false)
		outcome := "written"
		if err := h.writeSnapshot(r.id); err != nil {
			outcome = "failed"
			h.log.Warn("writing a snapshot failed; loads replay more of the stream", "stream", h.d.Stream(r.id), "err", err)
		}
		h.snapshotsCount.Add(context.Background(), 1, h.outcomes.Of(outcome))
	}()
}

// writeSnapshot loads aggregate id afresh, from its latest snapshot and the
// events after it (so nothing the handler holds in memory is shared with,
// or copied for, the writer), and stores it as the new snapshot.
func (h *Handler[S, C]) writeSnapshot(id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	stream := h.d.Stream(id)
	r := &root[S, C]{id: id}
	hash, err := h.catchUp(ctx, r, stream)
	if err != nil || r.since == 0 {
		return err // nothing newer than the latest snapshot
	}
	if len(hash) == 0 {
		return errors.New("es: the store gave no hash for the event to cover")
	}
	state, err := h.d.Snapshot.Encode(r.state)
	if err != nil {
		return err
	}
	snap := &eventstorev1.Snapshot{Stream: stream, Revision: r.revision, EventHash: hash,
		StateVersion: h.d.Snapshot.Version, State: state, Applied: make([]*eventstorev1.AppliedCommand, 0, len(r.applied))}
	for cmdID, fp := range r.applied {
		snap.Applied = append(snap.Applied, &eventstorev1.AppliedCommand{CommandId: cmdID, RequestFingerprint: fp})
	}
	data, err := proto.Marshal(snap)
	if err != nil {
		return err
	}
	return h.snaps.Put(ctx, stream, data)
}
