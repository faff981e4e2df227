package platform

import (
	"log/slog"
	"testing"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/eventstore"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/kv"
	"github.com/custody/custody/pkg/natsembed"
)

// A module's store, and another service's read-only one, keep their
// per-stream index in the process's read-model store (a Space per
// partition), not in the heap (docs/eventstore.md, "The index's memory").
func TestStoresKeepTheirIndexBesideTheReadModels(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	db, err := kv.Open(t.TempDir(), kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	d := Deps{Logger: slog.New(slog.DiscardHandler), NATS: nc, Clock: clock.Real(), Replicas: 1, readModels: db}
	st, err := d.OpenStore(t.Context(), "trust")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Append(t.Context(), "claim-1", eventstore.NoStream, []eventstore.EventData{{ID: "e1", Type: "t"}}); err != nil {
		t.Fatal(err)
	}
	ro, err := d.OpenStoreOf(t.Context(), "trust")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if evs, err := ro.ReadStream(t.Context(), "claim-1", 0, 0); err != nil || len(evs) != 1 {
		t.Fatalf("read-only store reads %v, %v", evs, err)
	}
	subject := esjs.PartitionSubject("trust", "claim")
	for _, name := range []string{"trust", "trust/read"} {
		space, err := db.Space("eventstore-index/" + name + "/" + subject)
		if err != nil {
			t.Fatal(err)
		}
		if _, version, err := space.State(); err != nil || version != "eventstore-index-1" {
			t.Errorf("index Space of %s: version %q, %v; want the store's", name, version, err)
		}
	}
}
