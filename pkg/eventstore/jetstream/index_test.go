package jetstream_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/eventstore/jetstream"
)

// The per-stream index kept in a kv store with few streams in memory
// (index.go): a stream that went cold — its entry evicted from memory, its
// message refs sealed into chunks — is read, appended to, refused and
// recognised as a retry exactly as a hot one.

// coldFixture appends rounds events to each of streams streams, one event
// per append, round by round (so every stream's events are spread over
// many messages), and returns each stream's event ids.
func coldFixture(t *testing.T, st eventstore.Store, streams, rounds int) map[string][]string {
	t.Helper()
	want := map[string][]string{}
	for r := range rounds {
		for k := range streams {
			stream := fmt.Sprintf("order-cold%d", k)
			id := fmt.Sprintf("c%d-r%d", k, r)
			exp := eventstore.NoStream
			if r > 0 {
				exp = eventstore.Exact(uint64(r - 1))
			}
			if _, err := st.Append(t.Context(), stream, exp, []eventstore.EventData{{ID: id, Type: "t"}}); err != nil {
				t.Fatalf("append %s to %s: %v", id, stream, err)
			}
			want[stream] = append(want[stream], id)
		}
	}
	return want
}

func eventIDs(evs []eventstore.RecordedEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func TestColdStreamsReadAndAppendAsHotOnes(t *testing.T) {
	defer jetstream.SetRefChunk(3)()
	i := startKV(t, t.TempDir(), 2)
	defer i.Close()
	const streams, rounds = 20, 10 // 10 messages a stream: 3 sealed chunks and an open ref
	want := coldFixture(t, i, streams, rounds)
	ctx := t.Context()
	for k := range streams {
		stream := fmt.Sprintf("order-cold%d", k)
		t.Run(stream, func(t *testing.T) {
			// Reads from every revision (the refs come from the chunks).
			for from := range rounds + 1 {
				got, err := i.ReadStream(ctx, stream, uint64(from), 0)
				if err != nil {
					t.Fatalf("read from %d: %v", from, err)
				}
				if !slices.Equal(eventIDs(got), want[stream][from:]) {
					t.Fatalf("read from %d: %v, want %v", from, eventIDs(got), want[stream][from:])
				}
			}
			if i.Absent(stream) {
				t.Fatal("Absent says a cold stream was never written")
			}
			// A stale expected revision is refused with the right actual one.
			var wrong *eventstore.WrongExpectedVersionError
			_, err := i.Append(ctx, stream, eventstore.Exact(3), []eventstore.EventData{{ID: stream + "-stale", Type: "t"}})
			if !errors.As(err, &wrong) || wrong.Actual != rounds-1 || !wrong.ActualExists {
				t.Fatalf("stale append: %v, want a conflict at revision %d", err, rounds-1)
			}
			if _, err := i.Append(ctx, stream, eventstore.NoStream, []eventstore.EventData{{ID: stream + "-new", Type: "t"}}); !errors.Is(err, eventstore.ErrWrongExpected) {
				t.Fatalf("NoStream on a cold stream: %v, want a conflict", err)
			}
			// A retry of an append stored long ago is recognised.
			res, err := i.Append(ctx, stream, eventstore.Exact(4), []eventstore.EventData{{ID: want[stream][5], Type: "t"}})
			if err != nil || !res.Duplicate || res.LastRevision != 5 {
				t.Fatalf("retry of revision 5: %+v, %v; want a duplicate at 5", res, err)
			}
			res, err = i.Append(ctx, stream, eventstore.Any, []eventstore.EventData{{ID: want[stream][rounds-1], Type: "t"}})
			if err != nil || !res.Duplicate || res.LastRevision != rounds-1 {
				t.Fatalf("Any retry of the last event: %+v, %v; want a duplicate", res, err)
			}
			// The next append seals onto the stream's last hash.
			res, err = i.Append(ctx, stream, eventstore.Exact(rounds-1), []eventstore.EventData{{ID: stream + "-next", Type: "t"}})
			if err != nil || res.LastRevision != rounds {
				t.Fatalf("append to the cold stream: %+v, %v", res, err)
			}
			got, err := i.ReadStream(ctx, stream, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if n, err := eventstore.VerifyChain(got); err != nil || n != rounds+1 {
				t.Fatalf("chain after appending to a cold stream: %d verified, %v", n, err)
			}
		})
	}
	if !i.Absent("order-never") {
		t.Error("Absent does not know a stream never written")
	}
}

// A second store (another process, with its index in a kv store of its
// own) writes a stream that is cold in the first: the first is refused at
// the old revision, then reads and appends after the other's event.
func TestSecondInstanceWritesAColdStream(t *testing.T) {
	defer jetstream.SetRefChunk(2)()
	a := startKV(t, t.TempDir(), 1)
	defer a.Close()
	nc, err := a.srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	b, err := jetstream.Open(t.Context(), nc, jetstream.Config{Service: "test", Index: openIndexDB(t, t.TempDir()), IndexCache: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := t.Context()
	const streams, rounds = 6, 5
	want := coldFixture(t, a, streams, rounds)
	mine := "order-cold0" // cold in a: five streams were written after it
	if _, err := b.Append(ctx, mine, eventstore.Exact(rounds-1), []eventstore.EventData{{ID: "by-b", Type: "t"}}); err != nil {
		t.Fatalf("b appends to a's cold stream: %v", err)
	}
	if _, err := a.Append(ctx, "order-cold1", eventstore.Exact(rounds-1), []eventstore.EventData{{ID: "a-other", Type: "t"}}); err != nil {
		t.Fatalf("a appends to another stream after b wrote (fenced, then caught up): %v", err)
	}
	var wrong *eventstore.WrongExpectedVersionError
	if _, err := a.Append(ctx, mine, eventstore.Exact(rounds-1), []eventstore.EventData{{ID: "by-a", Type: "t"}}); !errors.As(err, &wrong) || wrong.Actual != rounds {
		t.Fatalf("a appends at the revision b replaced: %v, want a conflict at %d", err, rounds)
	}
	got, err := a.ReadStream(ctx, mine, 0, 0)
	if err != nil || !slices.Equal(eventIDs(got), append(want[mine], "by-b")) {
		t.Fatalf("a reads %v, %v; want b's event last", eventIDs(got), err)
	}
	if _, err := a.Append(ctx, mine, eventstore.Exact(rounds), []eventstore.EventData{{ID: "by-a", Type: "t"}}); err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]eventstore.Store{"a": a, "b": b} {
		got, err := st.ReadStream(ctx, mine, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := eventstore.VerifyChain(got); err != nil || n != rounds+2 || got[n-1].ID != "by-a" {
			t.Fatalf("%s reads %v: %d verified, %v", name, eventIDs(got), n, err)
		}
	}
}

// The kv store outlives the process, but what it holds is never trusted:
// a store that reopens it after another wrote the same streams (here with
// its index in memory) sees their tails as the messages have them.
func TestIndexInKVIsRebuiltNotTrusted(t *testing.T) {
	defer jetstream.SetRefChunk(2)()
	dir := t.TempDir()
	first := startKV(t, dir, 1)
	coldFixture(t, first, 3, 4)
	first.Close()
	startKV(t, dir, 1).Close() // its Open's read wrote the four events' tails to the kv
	other := start(t, dir)     // the same stream, its index in memory
	for k := range 3 {
		if _, err := other.Append(t.Context(), fmt.Sprintf("order-cold%d", k), eventstore.Exact(3), []eventstore.EventData{{ID: fmt.Sprintf("later%d", k), Type: "t"}}); err != nil {
			t.Fatal(err)
		}
	}
	other.Close()
	again := startKV(t, dir, 1) // the kv store of the first run, as it was left
	defer again.Close()
	for k := range 3 {
		stream := fmt.Sprintf("order-cold%d", k)
		res, err := again.Append(t.Context(), stream, eventstore.Exact(4), []eventstore.EventData{{ID: fmt.Sprintf("again%d", k), Type: "t"}})
		if err != nil || res.LastRevision != 5 {
			t.Fatalf("%s: %+v, %v; want revision 5", stream, res, err)
		}
		got, err := again.ReadStream(t.Context(), stream, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := eventstore.VerifyChain(got); err != nil || n != 6 {
			t.Fatalf("%s: %d verified, %v", stream, n, err)
		}
	}
}
