package platform_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/pkg/platform/platformtest"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// toyModel is a read model that keeps every position folded into it, so a
// test sees whether an event was applied twice or skipped; applied counts
// the events folded in this run (not restored).
type toyModel struct {
	version string

	mu      sync.Mutex
	seen    []uint64
	applied int
}

func (m *toyModel) Apply(e eventstore.RecordedEvent) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seen = append(m.seen, e.Position)
	m.applied++
}

func (m *toyModel) Version() string { return m.version }

func (m *toyModel) Save(w io.Writer) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return json.NewEncoder(w).Encode(m.seen)
}

func (m *toyModel) Load(r io.Reader) error {
	var seen []uint64
	if err := json.NewDecoder(r).Decode(&seen); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seen = seen
	return nil
}

func (m *toyModel) state() ([]uint64, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.seen), m.applied
}

// toy is a module whose New makes fresh read models of one source: one
// that checkpoints, one that does not (both on the source's one feed).
type toy struct {
	version string

	mu          sync.Mutex
	ckpt, plain *toyModel
}

func (y *toy) module() platform.Module {
	return platform.Module{Name: "toy", New: func(ctx context.Context, d platform.Deps) (platform.Parts, error) {
		if _, err := d.OpenStore(ctx, "toy"); err != nil {
			return platform.Parts{}, err
		}
		y.mu.Lock()
		defer y.mu.Unlock()
		y.ckpt, y.plain = &toyModel{version: y.version}, &toyModel{}
		return platform.Parts{Projections: []platform.Projection{
			{Name: "toy model", Source: "toy", Apply: y.ckpt.Apply, Checkpoint: y.ckpt},
			{Name: "plain model", Source: "toy", Apply: y.plain.Apply},
		}}, nil
	}}
}

func (y *toy) models() (*toyModel, *toyModel) {
	y.mu.Lock()
	defer y.mu.Unlock()
	return y.ckpt, y.plain
}

// A read model with a Checkpointer is saved while it runs and restored at
// the next start, which folds only what came after the checkpoint: every
// event once, none twice. A checkpoint of another version, or one that
// cannot be decoded, is ignored: the read model folds from position 1.
func TestCheckpointedReadModelResumes(t *testing.T) {
	t.Parallel()
	y := &toy{version: "1"}
	p := platformtest.Start(t, platformtest.Options{CheckpointEvery: 5 * time.Millisecond}, y.module())
	var stored []uint64 // the positions of the events in the store
	emit := func(n int) {
		var msgs []proto.Message
		for i := range n {
			msgs = append(msgs, &typev1.Money{CurrencyCode: "EUR", AmountMinor: int64(i)})
		}
		for _, e := range p.Emit(t, "toy", platformtest.ID("thing-"), msgs...) {
			stored = append(stored, e.Position)
		}
		p.Settled(t)
	}
	upTo := func(n uint64) []uint64 { return stored[:n] }
	js, err := jetstream.New(p.NATS)
	if err != nil {
		t.Fatal(err)
	}
	const name = "toy/toy_model"
	checkpointAt := func() uint64 {
		obs, err := js.ObjectStore(t.Context(), platform.CheckpointBucket)
		if err != nil {
			return 0
		}
		data, err := obs.GetBytes(t.Context(), name)
		if err != nil {
			return 0
		}
		var h struct{ Position uint64 }
		line, _, _ := bytes.Cut(data, []byte("\n"))
		if json.Unmarshal(line, &h) != nil {
			return 0
		}
		return h.Position
	}
	want := func(what string, n uint64, applied int) {
		t.Helper()
		ckpt, plain := y.models()
		seen, got := ckpt.state()
		if !slices.Equal(seen, upTo(n)) || got != applied {
			t.Fatalf("%s: the checkpointed read model has %v (%d folded in this run), want 1..%d (%d folded)", what, seen, got, n, applied)
		}
		if seen, _ := plain.state(); !slices.Equal(seen, upTo(n)) {
			t.Fatalf("%s: the read model without checkpoints has %v, want 1..%d", what, seen, n)
		}
	}

	emit(20)
	want("first run", 20, 20)
	platformtest.Until(t, "a checkpoint of the 20th event", func() bool { return checkpointAt() == stored[19] })

	p.Restart(t)
	want("restored", 20, 0)
	emit(5)
	want("restored, then 5 more events", 25, 5)

	// Killed before its next checkpoint: the last one is behind the read
	// model; the restart folds what came after it, once.
	p.Opts().CheckpointEvery = time.Hour
	p.Restart(t)
	want("restored at a clean stop", 25, 0)
	emit(4)
	want("4 more events", 29, 4)
	if at := checkpointAt(); at != stored[24] {
		t.Fatalf("checkpoint at %d, want %d, the 25th event (the hourly one is not due)", at, stored[24])
	}
	obs, err := js.ObjectStore(t.Context(), platform.CheckpointBucket)
	if err != nil {
		t.Fatal(err)
	}
	stale, err := obs.GetBytes(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	p.Restart(t) // saves at 29 on the way down: put the one at 25 back
	if _, err := obs.PutBytes(t.Context(), name, stale); err != nil {
		t.Fatal(err)
	}
	p.Restart(t)
	want("restored from a checkpoint behind the store", 29, 4)

	// The read model's code changed: it folds from 1.
	y.version = "2"
	p.Restart(t)
	want("another version", 29, 29)

	// A checkpoint that cannot be decoded is ignored.
	p.Stop(t)
	if _, err := obs.PutBytes(t.Context(), name, []byte(fmt.Sprintf(`{"version":"2","position":%d}`+"\nnot json", stored[28]))); err != nil {
		t.Fatal(err)
	}
	p.Restart(t)
	want("a corrupt checkpoint", 29, 29)
	p.Stop(t)
	if _, err := obs.PutBytes(t.Context(), name, []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	p.Restart(t)
	want("a checkpoint without a header", 29, 29)

	// Without checkpoints the read model folds from 1.
	p.Opts().CheckpointEvery = 0
	p.Restart(t)
	want("checkpoints off", 29, 29)
}
