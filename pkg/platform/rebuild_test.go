package platform

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/eventstore/jetstream/blockfile"
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

// foldRecorder is a module whose projections write down, in order, every event
// and every unreadable position they are handed: two folds gave the same
// read model exactly when their recordings are equal.
type foldRecorder struct {
	name    string
	sources []string             // one projection per entry; a source may repeat
	seen    map[string]*[]string // by projection; filled by New, each written by its own projection only
}

func (r *foldRecorder) module() Module {
	return Module{Name: r.name, New: func(context.Context, Deps) (Parts, error) {
		r.seen = map[string]*[]string{}
		var ps []Projection
		for i, src := range r.sources {
			name := fmt.Sprintf("%s/%d from %s", r.name, i, src)
			seen := new([]string)
			r.seen[name] = seen
			ps = append(ps, Projection{Name: name, Source: src,
				Apply: func(e eventstore.RecordedEvent) {
					*seen = append(*seen, fmt.Sprintf("%d %s %d %s", e.Position, e.Stream, e.Revision, e.ID))
				},
				Skipped: func(pos uint64) { *seen = append(*seen, fmt.Sprintf("%d unreadable", pos)) },
			})
		}
		return Parts{Projections: ps}, nil
	}}
}

// Modules rebuilt together read each shared source once, in parallel, and
// each read model is folded exactly as when its module is rebuilt alone:
// every event of its source in the store's order, and the same report.
func TestRebuildingModulesTogetherFoldsEachAsAlone(t *testing.T) {
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
	inOrder := map[string][]string{} // each source's events as ReadAll gives them
	for _, svc := range []string{"alpha", "beta"} {
		st, err := d.OpenStore(t.Context(), svc)
		if err != nil {
			t.Fatal(err)
		}
		// Writers at once: messages of several appends of several streams.
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := range 30 {
					evs := []eventstore.EventData{{ID: fmt.Sprintf("%s-%d-%d", svc, w, i), Type: "t"}}
					if i%3 == 0 {
						evs = append(evs, eventstore.EventData{ID: fmt.Sprintf("%s-%d-%d-b", svc, w, i), Type: "t"})
					}
					if _, err := st.Append(t.Context(), fmt.Sprintf("thing-%s%d", svc, (w+i)%5), eventstore.Any, evs); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		evs, err := st.ReadAll(t.Context(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			inOrder[svc] = append(inOrder[svc], fmt.Sprintf("%d %s %d %s", e.Position, e.Stream, e.Revision, e.ID))
		}
	}
	const perSource = 8 * 40
	recorders := func() []*foldRecorder {
		return []*foldRecorder{
			{name: "one", sources: []string{"alpha"}},
			{name: "two", sources: []string{"beta", "alpha"}},
			{name: "three", sources: []string{"beta", "beta"}},
		}
	}

	together := recorders()
	var modules []Module
	for _, r := range together {
		modules = append(modules, r.module())
	}
	all, err := RebuildModules(t.Context(), d, modules, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if all.Events != 2*perSource || len(all.Sources) != 2 {
		t.Fatalf("read %d events of %v; want each of the two sources read once, %d events", all.Events, all.Sources, 2*perSource)
	}
	for i, alone := range recorders() {
		rep, err := Rebuild(t.Context(), d, alone.module(), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		joint := all.Modules[i]
		if rep.Module != joint.Module || rep.Events != joint.Events || rep.Streams != joint.Streams ||
			!slices.Equal(rep.Projections, joint.Projections) || len(rep.Broken)+len(joint.Broken)+len(rep.Unreadable)+len(joint.Unreadable) != 0 {
			t.Errorf("%s: together %+v, alone %+v", alone.name, joint, rep)
		}
		for j, src := range alone.sources {
			name := fmt.Sprintf("%s/%d from %s", alone.name, j, src)
			got, solo, want := *together[i].seen[name], *alone.seen[name], inOrder[src]
			if len(want) != perSource || !slices.Equal(got, want) || !slices.Equal(solo, want) {
				t.Errorf("%s: %d events folded together, %d alone, %d in the store; want the store's, in its order", name, len(got), len(solo), len(want))
			}
		}
	}
}

// An unreadable record (one flipped byte in the block file) is named in
// the report and told to the read models that record gaps; the events
// after it are still folded, the chain it breaks is named too, and
// `custody rebuild` fails.
func TestRebuildReportsAnUnreadableRecord(t *testing.T) {
	dir := t.TempDir()
	srv, err := natsembed.Start(natsembed.Config{DataDir: filepath.Join(dir, "nats")})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	d := Deps{Logger: discardLogger(), NATS: nc, Clock: clock.Real(), Replicas: 1}
	st, err := d.OpenStore(t.Context(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 { // one message each: e2 (thing-t0 revision 1) in message 3
		if _, err := st.Append(t.Context(), fmt.Sprintf("thing-t%d", i%2), eventstore.Any,
			[]eventstore.EventData{{ID: fmt.Sprintf("e%d", i), Type: "custody.demo.v1.Happened", Data: []byte("some payload")}}); err != nil {
			t.Fatal(err)
		}
	}
	nc.Close()
	srv.Shutdown()
	if err := blockfile.Edit(blockfile.Msgs(filepath.Join(dir, "nats"), "CUSTODY_DEMO"), 3, func(msg []byte) bool {
		msg[len(msg)/2] ^= 0xff
		return false
	}); err != nil {
		t.Fatal(err)
	}

	r := &foldRecorder{name: "demo", sources: []string{"demo"}}
	var out bytes.Buffer
	err = RebuildTargets(t.Context(), Config{DataDir: dir, Targets: "demo"}, []Module{r.module()}, &out)
	if err == nil {
		t.Fatalf("rebuild over a damaged store succeeded:\n%s", out.String())
	}
	for _, want := range []string{"UNREADABLE", "CUSTODY_DEMO message 3: the server cannot return it",
		"HASH CHAIN BROKEN", "thing-t0 revision 2 (event e4): revision 2 where 1 was expected"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report does not say %q:\n%s", want, out.String())
		}
	}
	var folded []string
	for _, s := range *r.seen["demo/0 from demo"] {
		folded = append(folded, s[strings.LastIndexByte(s, ' ')+1:])
	}
	if want := []string{"e0", "e1", "unreadable", "e3", "e4", "e5"}; !slices.Equal(folded, want) {
		t.Errorf("folded %v, want %v", folded, want)
	}
}
