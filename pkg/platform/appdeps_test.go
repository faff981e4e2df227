package platform_test

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/pkg/clock"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/natsembed"
	"github.com/custody/custody/pkg/platform"
)

// AppDeps hands a service's command handlers the process's aggregate cache
// size and the service's snapshot bucket, which is made at its first use
// (a service that snapshots nothing makes none); with snapshots off, or
// read-only (custody rebuild), there is no snapshot store.
func TestAppDepsHandlerOptions(t *testing.T) {
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
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	bucketExists := func(service string) bool {
		_, err := js.KeyValue(t.Context(), esjs.SnapshotBucket(service))
		if err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	cases := []struct {
		name          string
		snapshotEvery int
		readOnly      bool
		snapshots     bool
	}{
		{"snapshots by default", 0, false, true},
		{"every 10", 10, false, true},
		{"snapshots off", -1, false, false},
		{"read-only", 0, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.readOnly { // the stream a read-only store opens
				d := platform.Deps{Logger: slog.New(slog.DiscardHandler), NATS: nc, Clock: clock.Real(), Replicas: 1}
				if _, err := d.OpenStore(t.Context(), "trust"); err != nil {
					t.Fatal(err)
				}
			}
			d := platform.Deps{Logger: slog.New(slog.DiscardHandler), NATS: nc, Clock: clock.Real(), Replicas: 1,
				AggregateCache: 123, SnapshotEvery: tc.snapshotEvery, ReadOnly: tc.readOnly}
			app, err := d.AppDeps(t.Context(), "trust")
			if err != nil {
				t.Fatal(err)
			}
			h := app.Handlers
			if h.CacheSize != 123 || h.Logger == nil || (h.Snapshots != nil) != tc.snapshots {
				t.Fatalf("handler options %+v, want cache 123, a logger and snapshots %v", h, tc.snapshots)
			}
			if tc.snapshotEvery > 0 && h.SnapshotEvery != tc.snapshotEvery {
				t.Errorf("snapshot every %d, want %d", h.SnapshotEvery, tc.snapshotEvery)
			}
			if !tc.snapshots {
				return
			}
			if bucketExists("trust") {
				t.Fatal("the snapshot bucket was made before it was used")
			}
			if err := h.Snapshots.Put(t.Context(), "vendortrust-v1", []byte("s")); err != nil {
				t.Fatal(err)
			}
			if got, err := h.Snapshots.Get(t.Context(), "vendortrust-v1"); err != nil || string(got) != "s" || !bucketExists("trust") {
				t.Fatalf("snapshot %q, %v; want it in the trust bucket", got, err)
			}
			if err := js.DeleteKeyValue(t.Context(), esjs.SnapshotBucket("trust")); err != nil {
				t.Fatal(err)
			}
		})
	}
}
