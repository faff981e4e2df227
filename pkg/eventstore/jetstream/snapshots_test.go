package jetstream_test

import (
	"testing"

	"github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/natsembed"
)

// The snapshot bucket answers nil for a stream without a snapshot, keeps
// the latest one per stream, and keeps it across a restart of the server.
func TestSnapshots(t *testing.T) {
	dir := t.TempDir()
	open := func() (*jetstream.Snapshots, func()) {
		srv, err := natsembed.Start(natsembed.Config{DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		nc, err := srv.Connect()
		if err != nil {
			t.Fatal(err)
		}
		s, err := jetstream.OpenSnapshots(t.Context(), nc, "trust", 1)
		if err != nil {
			t.Fatal(err)
		}
		return s, func() { nc.Close(); srv.Shutdown() }
	}
	s, stop := open()
	steps := []struct {
		name, stream string
		put          string // "": a read
		want         string // "": none
	}{
		{"no snapshot yet", "vendortrust-v1", "", ""},
		{"put", "vendortrust-v1", "one", ""},
		{"read it back", "vendortrust-v1", "", "one"},
		{"put again", "vendortrust-v1", "two", ""},
		{"the latest", "vendortrust-v1", "", "two"},
		{"another stream has none", "vendortrust-v_2", "", ""},
	}
	for _, st := range steps {
		if st.put != "" {
			if err := s.Put(t.Context(), st.stream, []byte(st.put)); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			continue
		}
		got, err := s.Get(t.Context(), st.stream)
		if err != nil || string(got) != st.want || (st.want == "") != (got == nil) {
			t.Fatalf("%s: %q, %v; want %q", st.name, got, err, st.want)
		}
	}
	stop()
	s, stop = open()
	defer stop()
	if got, err := s.Get(t.Context(), "vendortrust-v1"); err != nil || string(got) != "two" {
		t.Fatalf("after a restart: %q, %v; want %q", got, err, "two")
	}
	if _, err := jetstream.OpenSnapshots(t.Context(), nil, "Bad.Name", 1); err == nil {
		t.Fatal("a bad service name was accepted")
	}
}
