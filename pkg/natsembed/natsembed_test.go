package natsembed_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/pkg/natsembed"
)

func TestEmbeddedServerKeepsDataAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	publish := func() uint64 {
		s, err := natsembed.Start(natsembed.Config{DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Shutdown()
		nc, err := s.Connect()
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		if _, err := js.CreateOrUpdateStream(t.Context(), jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: jetstream.FileStorage}); err != nil {
			t.Fatal(err)
		}
		ack, err := js.Publish(t.Context(), "t.a", []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	if seq := publish(); seq != 1 {
		t.Fatalf("first publish seq = %d", seq)
	}
	if seq := publish(); seq != 2 {
		t.Fatalf("after restart, publish seq = %d, want 2 (data lost?)", seq)
	}
}

func TestClusterReplicatesStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test skipped in -short mode")
	}
	c, err := natsembed.StartCluster(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	nc, err := c.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	var st jetstream.Stream
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err = js.CreateOrUpdateStream(t.Context(), jetstream.StreamConfig{Name: "R3", Subjects: []string{"r.>"}, Replicas: 3, Storage: jetstream.FileStorage})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), "r.a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := 1 + len(info.Cluster.Replicas); got != 3 {
		t.Fatalf("stream has %d replicas, want 3", got)
	}
}
