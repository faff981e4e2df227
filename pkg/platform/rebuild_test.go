package platform

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/eventstore/memory"
	"github.com/custody/custody/pkg/natsembed"
)

func TestRebuildFoldsEveryEventAndVerifiesChains(t *testing.T) {
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
	d := Deps{Logger: discardLogger(), NATS: nc, Clock: clock.Real(), Replicas: 1}
	st, err := d.OpenStore(t.Context(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		evs := []eventstore.EventData{{ID: fmt.Sprintf("e%d", i), Type: "custody.demo.v1.Happened"}}
		if i%3 == 0 {
			evs = append(evs, eventstore.EventData{ID: fmt.Sprintf("e%d-b", i), Type: "custody.demo.v1.Happened"})
		}
		if _, err := st.Append(t.Context(), fmt.Sprintf("thing-t%d", i%4), eventstore.Any, evs); err != nil {
			t.Fatal(err)
		}
	}
	var applied int
	m := Module{Name: "demo", New: func(context.Context, Deps) (Parts, error) {
		return Parts{Projections: []Projection{{Name: "count", Source: "demo", Apply: func(eventstore.RecordedEvent) { applied++ }}}}, nil
	}}
	var out bytes.Buffer
	rep, err := Rebuild(t.Context(), d, m, &out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Events != 40 || applied != 40 || rep.Streams != 4 || len(rep.Broken) != 0 {
		t.Fatalf("report %+v, applied %d; want 40 events in 4 valid streams", rep, applied)
	}
	if !strings.Contains(out.String(), "100%") {
		t.Fatalf("no progress shown: %q", out.String())
	}
}

func TestVerifyNextFindsEditsAndGaps(t *testing.T) {
	st := memory.New(nil)
	for i := range 4 {
		if _, err := st.Append(t.Context(), "thing-a", eventstore.Any, []eventstore.EventData{{ID: fmt.Sprintf("e%d", i), Type: "t", Data: []byte("x")}}); err != nil {
			t.Fatal(err)
		}
	}
	evs, _ := st.ReadStream(t.Context(), "thing-a", 0, 0)
	cases := []struct {
		name   string
		events func() []eventstore.RecordedEvent
		broken string
	}{
		{"intact", func() []eventstore.RecordedEvent { return evs }, ""},
		{"edited", func() []eventstore.RecordedEvent {
			c := append([]eventstore.RecordedEvent(nil), evs...)
			c[2].Data = []byte("y")
			return c
		}, "revision 2"},
		{"dropped", func() []eventstore.RecordedEvent {
			return append(append([]eventstore.RecordedEvent(nil), evs[:1]...), evs[2:]...)
		}, "revision 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prev, next := map[string][]byte{}, map[string]uint64{}
			var first string
			for _, e := range tc.events() {
				if err := verifyNext(prev, next, e); err != nil && first == "" {
					first = err.Error()
				}
			}
			if (tc.broken == "") != (first == "") || !strings.Contains(first, tc.broken) {
				t.Fatalf("first break %q, want one at %q", first, tc.broken)
			}
		})
	}
}
