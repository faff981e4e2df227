package platform_test

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/kv"
	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/pkg/platform/platformtest"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// storedModel keeps every position folded into it as a key of its space,
// so a test sees whether an event was applied twice or skipped; applied
// counts the events folded in this run.
type storedModel struct {
	version string

	mu      sync.Mutex
	space   *kv.Space
	applied int
}

func (m *storedModel) Version() string { return m.version }

func (m *storedModel) Attach(s *kv.Space) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.space = s
	return nil
}

func (m *storedModel) Apply(e eventstore.RecordedEvent) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.space.Batch()
	key := binary.BigEndian.AppendUint64(nil, e.Position)
	n := 0
	if v, ok, _ := b.Get(key); ok { // applied before: count it
		n = int(v[0])
	}
	_ = b.Set(key, []byte{byte(n + 1)})
	if err := b.Commit(e.Position); err != nil {
		panic(err)
	}
	m.applied++
}

// state is every position stored with how often it was applied, and the
// events folded in this run.
func (m *storedModel) state() (positions []uint64, twice int, applied int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_ = m.space.Scan(nil, nil, false, func(k, v []byte) bool {
		positions = append(positions, binary.BigEndian.Uint64(k))
		if v[0] > 1 {
			twice++
		}
		return true
	})
	return positions, twice, m.applied
}

type storedToy struct {
	version string

	mu    sync.Mutex
	model *storedModel
}

func (y *storedToy) module() platform.Module {
	return platform.Module{Name: "toy", New: func(ctx context.Context, d platform.Deps) (platform.Parts, error) {
		if _, err := d.OpenStore(ctx, "toy"); err != nil {
			return platform.Parts{}, err
		}
		y.mu.Lock()
		defer y.mu.Unlock()
		y.model = &storedModel{version: y.version}
		return platform.Parts{Projections: []platform.Projection{
			{Name: "stored model", Source: "toy", Apply: y.model.Apply, Stored: y.model},
		}}, nil
	}}
}

func (y *storedToy) current() *storedModel {
	y.mu.Lock()
	defer y.mu.Unlock()
	return y.model
}

// A stored read model keeps its state and position in the read-model
// store: a restart resumes after the stored position, folding only what
// came after it (every event once, none twice); a new version empties its
// space and folds from position 1; `custody rebuild` folds it elsewhere and
// leaves the process's store as it was.
func TestStoredReadModelResumes(t *testing.T) {
	t.Parallel()
	y := &storedToy{version: "1"}
	p := platformtest.Start(t, platformtest.Options{}, y.module())
	var stored []uint64
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
	want := func(what string, n, applied int) {
		t.Helper()
		positions, twice, got := y.current().state()
		if !slices.Equal(positions, stored[:n]) || twice != 0 || got != applied {
			t.Fatalf("%s: the stored read model has %v (%d applied twice; %d folded in this run), want the first %d events once (%d folded)",
				what, positions, twice, got, n, applied)
		}
	}

	emit(20)
	want("first run", 20, 20)
	p.Restart(t)
	want("restarted", 20, 0)
	emit(5)
	want("restarted, then 5 more events", 25, 5)

	y.version = "2"
	p.Restart(t)
	want("another version", 25, 25)

	p.Stop(t)
	rebuilt := &storedToy{version: "2"}
	d := platform.Deps{Logger: slog.New(slog.DiscardHandler), NATS: p.NATS, Clock: clock.Real(), Replicas: 1}
	if _, err := platform.Rebuild(t.Context(), d, rebuilt.module(), io.Discard); err != nil {
		t.Fatal(err)
	}
	if applied := rebuilt.current().applied; applied != 25 {
		t.Fatalf("rebuild folded %d events, want 25", applied)
	}
	p.Restart(t)
	want("restarted after a rebuild", 25, 0)
}
