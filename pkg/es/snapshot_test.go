package es_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/eventstore/memory"
	"github.com/custody/custody/pkg/natsembed"
	eventstorev1 "github.com/custody/custody/proto/custody/eventstore/v1"
)

// snapshotted is the counter with a snapshot codec: the units as an
// Int64Value.
var snapshotted = withCodec("1")

func withCodec(version string) es.Decider[stock, cmd] {
	d := counter
	d.Snapshot = &es.SnapshotCodec[stock]{
		Version: version,
		Encode: func(s stock) ([]byte, error) {
			return proto.MarshalOptions{Deterministic: true}.Marshal(wrapperspb.Int64(s.units))
		},
		Decode: func(_ string, data []byte) (stock, error) {
			var v wrapperspb.Int64Value
			err := proto.Unmarshal(data, &v)
			return stock{units: v.Value}, err
		},
	}
	return d
}

// tailStore records where each stream read started and how many events it
// returned.
type tailStore struct {
	eventstore.Store
	mu    sync.Mutex
	reads []streamRead
}

type streamRead struct {
	from uint64
	n    int
}

func (s *tailStore) ReadStream(ctx context.Context, stream string, from uint64, limit int) ([]eventstore.RecordedEvent, error) {
	recs, err := s.Store.ReadStream(ctx, stream, from, limit)
	s.mu.Lock()
	s.reads = append(s.reads, streamRead{from, len(recs)})
	s.mu.Unlock()
	return recs, err
}

func (s *tailStore) Reads() []streamRead {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reads)
}

// snapshotOf decodes the snapshot of stream that snaps holds.
func snapshotOf(t *testing.T, snaps eventstore.Snapshots, stream string) *eventstorev1.Snapshot {
	t.Helper()
	data, err := snaps.Get(t.Context(), stream)
	if err != nil || data == nil {
		t.Fatalf("no snapshot of %s (%v)", stream, err)
	}
	var s eventstorev1.Snapshot
	if err := proto.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// fill adds one unit n times to aggregate id, one command (one event) at a
// time, letting each snapshot be written before the next command.
func fill(t *testing.T, h *es.Handler[stock, cmd], id string, n int) {
	t.Helper()
	for i := range n {
		if _, err := h.Handle(t.Context(), es.Command[cmd]{AggregateID: id, ID: fmt.Sprint("add-", i), Body: cmd{add: 1},
			Meta: es.Meta{RequestFingerprint: fmt.Sprint("fp-", i)}}); err != nil {
			t.Fatal(err)
		}
		es.WaitSnapshots(h)
	}
}

// recordingSnapshots notes the revision of every snapshot put.
type recordingSnapshots struct {
	eventstore.Snapshots
	mu   sync.Mutex
	revs []uint64
}

func (r *recordingSnapshots) Put(ctx context.Context, stream string, data []byte) error {
	var s eventstorev1.Snapshot
	if err := proto.Unmarshal(data, &s); err != nil {
		return err
	}
	r.mu.Lock()
	r.revs = append(r.revs, s.GetRevision())
	r.mu.Unlock()
	return r.Snapshots.Put(ctx, stream, data)
}

// A snapshot is written every SnapshotEvery events, of the state and the
// commands applied up to its revision; only deciders with a codec get them.
func TestSnapshotEveryNEvents(t *testing.T) {
	cases := []struct {
		name   string
		d      es.Decider[stock, cmd]
		every  int
		events int
		want   []uint64 // revisions snapshotted
	}{
		{"every 4 of 10", snapshotted, 4, 10, []uint64{3, 7}},
		{"every 1", snapshotted, 1, 3, []uint64{0, 1, 2}},
		{"fewer than every", snapshotted, 5, 4, nil},
		{"no codec, no snapshots", counter, 2, 6, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			snaps := &recordingSnapshots{Snapshots: memory.NewSnapshots()}
			h := es.NewHandler(tc.d, memory.New(nil), es.Options{Snapshots: snaps, SnapshotEvery: tc.every})
			fill(t, h, "s", tc.events)
			if !slices.Equal(snaps.revs, tc.want) {
				t.Fatalf("snapshots at revisions %v, want %v", snaps.revs, tc.want)
			}
			if len(tc.want) == 0 {
				return
			}
			last := tc.want[len(tc.want)-1]
			s := snapshotOf(t, snaps, "sku-s")
			var units wrapperspb.Int64Value
			if err := proto.Unmarshal(s.GetState(), &units); err != nil || units.Value != int64(last)+1 {
				t.Errorf("snapshot state %v (%v), want %d units", units.Value, err, last+1)
			}
			if len(s.GetApplied()) != int(last)+1 || s.GetStream() != "sku-s" || s.GetStateVersion() != "1" || len(s.GetEventHash()) == 0 {
				t.Errorf("snapshot %v, want the stream, version, a hash and %d commands applied", s, last+1)
			}
		})
	}
}

// A fresh handler (a restart, or an evicted aggregate) loads from the
// snapshot and reads only the events from the one it covers on: the
// state, the revision and the commands applied are those of a full replay.
func TestLoadFromSnapshotReadsOnlyTheTail(t *testing.T) {
	st, snaps := memory.New(nil), memory.NewSnapshots()
	fill(t, es.NewHandler(snapshotted, st, es.Options{Snapshots: snaps, SnapshotEvery: 5}), "s", 12) // snapshots at 4 and 9

	tail := &tailStore{Store: st}
	h := es.NewHandler(snapshotted, tail, es.Options{Snapshots: snaps, SnapshotEvery: 5})
	s, rev, exists, err := h.Load(t.Context(), "s")
	if err != nil || s.units != 12 || rev != 11 || !exists {
		t.Fatalf("load = %+v at %d (%v, %v), want 12 units at revision 11", s, rev, exists, err)
	}
	if got, want := tail.Reads(), []streamRead{{from: 9, n: 3}}; !slices.Equal(got, want) {
		t.Fatalf("reads %+v, want one read from the covered revision 9: it and the 2 events after it", got)
	}
	// Commands applied before the snapshot are known: a repeat is a
	// duplicate, a reuse for another request refused.
	res, err := h.Handle(t.Context(), es.Command[cmd]{AggregateID: "s", ID: "add-0", Body: cmd{add: 1}, Meta: es.Meta{RequestFingerprint: "fp-0"}})
	if err != nil || !res.Duplicate || res.State.units != 12 {
		t.Errorf("repeat of a command before the snapshot = %+v, %v; want a duplicate", res, err)
	}
	if _, err := h.Handle(t.Context(), es.Command[cmd]{AggregateID: "s", ID: "add-1", Body: cmd{add: 7}, Meta: es.Meta{RequestFingerprint: "other"}}); !errors.Is(err, es.ErrRequestReused) {
		t.Errorf("reuse of a request id before the snapshot = %v, want ErrRequestReused", err)
	}
	if res, err := h.Handle(t.Context(), es.Command[cmd]{AggregateID: "s", ID: "take", Body: cmd{take: 12}}); err != nil || res.State.units != 0 || res.Revision != 12 {
		t.Errorf("take all = %+v, %v; want 0 units at revision 12", res, err)
	}
}

// A snapshot that does not fit the stream is ignored and the stream
// replayed from its first event: each case is a snapshot that would fit
// but for one thing, and claims 999 units, so using it would show.
func TestSnapshotThatDoesNotFitIsIgnored(t *testing.T) {
	const stream = "sku-s"
	st := memory.New(nil)
	fill(t, es.NewHandler(counter, st, es.Options{}), "s", 6)
	stored, err := st.ReadStream(t.Context(), stream, 5, 1)
	if err != nil {
		t.Fatal(err)
	}
	claim := func(change func(*eventstorev1.Snapshot)) func(*testing.T) []byte {
		return func(t *testing.T) []byte {
			state, _ := proto.Marshal(wrapperspb.Int64(999))
			s := &eventstorev1.Snapshot{Stream: stream, Revision: 5, EventHash: slices.Clone(stored[0].Hash), StateVersion: "1", State: state}
			change(s)
			data, err := proto.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			return data
		}
	}
	cases := []struct {
		name     string
		snapshot func(*testing.T) []byte
		used     bool
	}{
		{"it fits (the control: it is used)", claim(func(*eventstorev1.Snapshot) {}), true},
		{"not a snapshot", func(*testing.T) []byte { return []byte("not a snapshot") }, false},
		{"another state version", claim(func(s *eventstorev1.Snapshot) { s.StateVersion = "0" }), false},
		{"another stream's", claim(func(s *eventstorev1.Snapshot) { s.Stream = "sku-t" }), false},
		{"the state does not decode", claim(func(s *eventstorev1.Snapshot) { s.State = []byte{0xff} }), false},
		{"the covered event's hash differs", claim(func(s *eventstorev1.Snapshot) { s.EventHash[0] ^= 1 }), false},
		{"beyond the stream", claim(func(s *eventstorev1.Snapshot) { s.Revision = 9 }), false},
		{"of another store's history", func(t *testing.T) []byte {
			// Another history of the same stream, as long: 2 units a command.
			other, snaps := memory.New(nil), memory.NewSnapshots()
			h := es.NewHandler(snapshotted, other, es.Options{Snapshots: snaps, SnapshotEvery: 6})
			for i := range 6 {
				if _, err := h.Handle(t.Context(), es.Command[cmd]{AggregateID: "s", ID: fmt.Sprint("o", i), Body: cmd{add: 2}}); err != nil {
					t.Fatal(err)
				}
			}
			es.WaitSnapshots(h)
			data, _ := snaps.Get(t.Context(), stream)
			return data
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			snaps := memory.NewSnapshots()
			if err := snaps.Put(t.Context(), stream, tc.snapshot(t)); err != nil {
				t.Fatal(err)
			}
			tail := &tailStore{Store: st}
			h := es.NewHandler(snapshotted, tail, es.Options{Snapshots: snaps, SnapshotEvery: 100})
			s, rev, _, err := h.Load(t.Context(), "s")
			if err != nil || rev != 5 {
				t.Fatalf("load: revision %d, %v", rev, err)
			}
			from := tail.Reads()[len(tail.Reads())-1].from
			switch {
			case tc.used && (s.units != 999 || from != 5):
				t.Errorf("%d units read from %d: the snapshot was not used", s.units, from)
			case !tc.used && (s.units != 6 || from != 0):
				t.Errorf("%d units read from %d, want the replay's 6 from 0", s.units, from)
			}
		})
	}
}

// failingSnapshots fails every read and write.
type failingSnapshots struct{}

func (failingSnapshots) Get(context.Context, string) ([]byte, error) {
	return nil, eventstore.ErrUnavailable
}

func (failingSnapshots) Put(context.Context, string, []byte) error { return eventstore.ErrUnavailable }

// Snapshots are an optimisation: a snapshot store that fails every call
// fails no command and no load.
func TestSnapshotFailuresFailNothing(t *testing.T) {
	st := memory.New(nil)
	h := es.NewHandler(snapshotted, st, es.Options{Snapshots: failingSnapshots{}, SnapshotEvery: 1})
	fill(t, h, "s", 3)
	fresh := es.NewHandler(snapshotted, st, es.Options{Snapshots: failingSnapshots{}, SnapshotEvery: 1})
	if s, rev, _, err := fresh.Load(t.Context(), "s"); err != nil || s.units != 3 || rev != 2 {
		t.Fatalf("load = %+v at %d, %v; want 3 units at revision 2", s, rev, err)
	}
}

// The same on JetStream, with the snapshots in the service's key-value
// bucket: a second process loads from the snapshot the first wrote.
func TestSnapshotsOnJetStream(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	process := func() (eventstore.Store, eventstore.Snapshots) {
		nc, err := srv.Connect()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		st, err := esjs.Open(t.Context(), nc, esjs.Config{Service: "catalog"})
		if err != nil {
			t.Fatal(err)
		}
		snaps, err := esjs.OpenSnapshots(t.Context(), nc, "catalog", 1)
		if err != nil {
			t.Fatal(err)
		}
		return st, snaps
	}
	st, snaps := process()
	fill(t, es.NewHandler(snapshotted, st, es.Options{Snapshots: snaps, SnapshotEvery: 4}), "s", 10) // at 3 and 7
	st2, snaps2 := process()
	tail := &tailStore{Store: st2}
	s, rev, _, err := es.NewHandler(snapshotted, tail, es.Options{Snapshots: snaps2, SnapshotEvery: 4}).Load(t.Context(), "s")
	if err != nil || s.units != 10 || rev != 9 {
		t.Fatalf("load = %+v at %d, %v; want 10 units at revision 9", s, rev, err)
	}
	if got, want := tail.Reads(), []streamRead{{from: 7, n: 3}}; !slices.Equal(got, want) {
		t.Fatalf("reads %+v, want %+v", got, want)
	}
}
