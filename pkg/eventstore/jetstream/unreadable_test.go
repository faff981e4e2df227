package jetstream_test

import (
	"errors"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/natsembed"
)

// A record the server cannot return (here: removed behind the store's back
// on a stream that still allowed it) must stop readers with ErrUnreadable,
// never be skipped as if it had not been there.
func TestMissingRecordIsUnreadableNotSkipped(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := natsjs.New(nc)
	cfg := jetstream.StreamConfig("test", 1)
	cfg.DenyDelete, cfg.DenyPurge = false, false // only so the test can damage it
	raw, err := js.CreateStream(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := jetstream.Open(t.Context(), nc, jetstream.Config{Service: "test", ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	// Write three one-event commits as the store would (a writer's Open
	// would turn deny_delete back on).
	prev := eventstore.GenesisHash
	for i := range 3 {
		e := eventstore.RecordedEvent{EventData: eventstore.EventData{ID: string(rune('a' + i)), Type: "t"}, Stream: "order-o1", Revision: uint64(i), RecordedAt: time.Now().UTC()}
		eventstore.Seal(prev, &e)
		prev = e.Hash
		m, err := jetstream.EncodeCommit(jetstream.PartitionSubject("test", "order"), []eventstore.RecordedEvent{e})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishMsg(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	if err := raw.DeleteMsg(t.Context(), 2); err != nil {
		t.Fatalf("damaging the test stream: %v", err)
	}
	if _, err := st.ReadStream(t.Context(), "order-o1", 0, 0); !errors.Is(err, eventstore.ErrUnreadable) {
		t.Fatalf("ReadStream over a missing record: %v, want ErrUnreadable", err)
	}
	if _, err := st.ReadAll(t.Context(), 0, 0); !errors.Is(err, eventstore.ErrUnreadable) {
		t.Fatalf("ReadAll over a missing record: %v, want ErrUnreadable", err)
	}
}
