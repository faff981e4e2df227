package jetstream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/eventstore/jetstream"
)

func sealedCommit(stream string, first uint64, n int) []eventstore.RecordedEvent {
	prev := eventstore.GenesisHash
	out := make([]eventstore.RecordedEvent, n)
	now := time.Unix(1_700_000_000, 123).UTC()
	for i := range out {
		out[i] = eventstore.RecordedEvent{
			EventData: eventstore.EventData{
				ID: fmt.Sprintf("ev-%d", i), Type: fmt.Sprintf("custody.test.v1.T%d", i), Data: []byte{byte(i), 1, 2},
				Metadata: eventstore.Metadata{CorrelationID: "corr", CausationID: "cause", Actor: "support",
					TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "k=v"},
			},
			Stream: stream, Revision: first + uint64(i), RecordedAt: now,
		}
		eventstore.Seal(prev, &out[i])
		prev = out[i].Hash
	}
	return out
}

func sameEvents(t *testing.T, got, want []eventstore.RecordedEvent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Type != w.Type || !bytes.Equal(g.Data, w.Data) || g.Metadata != w.Metadata ||
			g.Stream != w.Stream || g.Revision != w.Revision || !g.RecordedAt.Equal(w.RecordedAt) ||
			!bytes.Equal(g.PrevHash, w.PrevHash) || !bytes.Equal(g.Hash, w.Hash) {
			t.Errorf("event %d\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func TestEncodeCommitRoundTrip(t *testing.T) {
	in := sealedCommit("order-o1", 4, 3)
	m, err := jetstream.EncodeCommit("custody.order.order.o1", in)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		jetstream.HeaderType:        "custody.test.v1.T0",
		jetstream.HeaderTypes:       "custody.test.v1.T0,custody.test.v1.T1,custody.test.v1.T2",
		jetstream.HeaderRevision:    "4",
		jetstream.HeaderCount:       "3",
		jetstream.HeaderTraceParent: in[0].Metadata.TraceParent,
		jetstream.HeaderTraceState:  "k=v",
	} {
		if got := m.Header[k]; len(got) != 1 || got[0] != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	for k := range m.Header {
		if strings.HasPrefix(k, "Nats-Batch") || strings.HasPrefix(k, "Nats-Expected") {
			t.Errorf("unexpected header %s", k)
		}
	}
	out, err := jetstream.Decode(m.Subject, 9, m.Header, m.Data)
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, out, in)
	for i, e := range out {
		if seq, idx := jetstream.SplitPosition(e.Position); seq != 9 || idx != i || e.Position != 9<<16|uint64(i) {
			t.Errorf("event %d at position %d (%d, %d)", i, e.Position, seq, idx)
		}
	}

	one, err := jetstream.EncodeCommit("custody.order.order.o1", in[:1])
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := one.Header[jetstream.HeaderTypes]; ok {
		t.Error("a one-event commit carries Custody-Types")
	}
	if _, err := jetstream.EncodeCommit("custody.order.order.o1", nil); err == nil {
		t.Error("an empty commit encoded")
	}

	// A group commit: appends of several streams in one message, each
	// event naming its stream; the subject names none.
	group := append(sealedCommit("order-o1", 4, 2), sealedCommit("order-o2", 0, 2)...)
	gm, err := jetstream.EncodeCommit(jetstream.PartitionSubject("order", "order"), group)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := gm.Header[jetstream.HeaderTypes]; ok {
		t.Error("a commit of several streams carries Custody-Types")
	}
	got, err := jetstream.Decode(gm.Subject, 3, gm.Header, gm.Data)
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, got, group)
}

func TestDecodeRejects(t *testing.T) {
	good := sealedCommit("order-o1", 0, 2)
	m, err := jetstream.EncodeCommit("custody.order.order.o1", good)
	if err != nil {
		t.Fatal(err)
	}
	gap := slices.Clone(good)
	gap[1].Revision = 5
	mGap, err := jetstream.EncodeCommit("custody.order.order.o1", gap)
	if err != nil {
		t.Fatal(err)
	}
	noType := slices.Clone(good)
	noType[1].Type = ""
	noStream := slices.Clone(good)
	for i := range noStream {
		noStream[i].Stream = ""
	}
	mNoStream, err := jetstream.EncodeCommit("custody.order.order.commits", noStream)
	if err != nil {
		t.Fatal(err)
	}
	badStream := slices.Clone(good)
	badStream[1].Stream = "no stream name"
	mBadStream, err := jetstream.EncodeCommit("custody.order.order.commits", badStream)
	if err != nil {
		t.Fatal(err)
	}
	mNoType, err := jetstream.EncodeCommit("custody.order.order.o1", noType)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		subject string
		data    []byte
	}{
		"no stream, not an event subject": {"orders.o1", mNoStream.Data},
		"bad stream name":                 {"custody.order.order.commits", mBadStream.Data},
		"garbage":                         {"custody.order.order.o1", []byte("garbage")},
		"empty body":                      {"custody.order.order.o1", nil},
		"revision gap":                    {"custody.order.order.o1", mGap.Data},
		"event without type":              {"custody.order.order.o1", mNoType.Data},
		"truncated":                       {"custody.order.order.o1", m.Data[:len(m.Data)-3]},
	} {
		if evs, err := jetstream.Decode(tc.subject, 1, m.Header, tc.data); err == nil {
			t.Errorf("%s: decoded %d events", name, len(evs))
		}
	}
}

// FuzzDecode: Decode reads bytes that any NATS client with publish rights
// can put on an event subject. It must never panic, and whatever it accepts
// must be a well-formed commit that encodes back to the same events.
func FuzzDecode(f *testing.F) {
	for _, n := range []int{1, 3} {
		m, err := jetstream.EncodeCommit("custody.order.order.o1", sealedCommit("order-o1", 7, n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add("custody.order.order.o1", uint64(3), jetstream.HeaderCount, "3", m.Data)
	}
	f.Add("custody.order.order.o1", uint64(1), "", "", []byte("garbage"))
	f.Add("custody.x", uint64(0), natsjs.MsgIDHeader, "e", []byte{})
	f.Add("custody.a.b.c", ^uint64(0), "traceparent", "x", []byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, subject string, seq uint64, hk, hv string, data []byte) {
		h := nats.Header{}
		if hk != "" {
			h[hk] = []string{hv}
		}
		evs, err := jetstream.Decode(subject, seq, h, data)
		if err != nil {
			return
		}
		if len(evs) == 0 || len(evs) > jetstream.MaxCommitEvents {
			t.Fatalf("accepted a commit of %d events", len(evs))
		}
		for i, e := range evs {
			if e.ID == "" || e.Type == "" || e.Revision != evs[0].Revision+uint64(i) || e.Position != jetstream.Position(seq, i) {
				t.Fatalf("accepted a malformed event %d: %+v", i, e)
			}
		}
		m, err := jetstream.EncodeCommit(subject, evs)
		if err != nil {
			t.Fatalf("accepted events do not encode: %v", err)
		}
		again, err := jetstream.Decode(subject, seq, m.Header, m.Data)
		if err != nil {
			t.Fatalf("re-encoded commit does not decode: %v", err)
		}
		sameEvents(t, again, evs)
	})
}

// Appends made one after another are one message each; positions are
// message sequence and index.
func TestMessagesAndPositions(t *testing.T) {
	i := start(t, t.TempDir())
	defer i.Close()
	ctx := t.Context()
	info, err := i.JetStream().Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.AllowAtomicPublish || !info.Config.DenyDelete || !info.Config.DenyPurge || !info.Config.AllowDirect || info.Config.Storage != natsjs.FileStorage {
		t.Errorf("stream config %+v", info.Config)
	}
	if p, err := i.LastPosition(ctx); err != nil || p != 0 {
		t.Errorf("LastPosition of an empty store = %d, %v", p, err)
	}

	evs := func(prefix string, n int) []eventstore.EventData {
		out := make([]eventstore.EventData, n)
		for k := range out {
			out[k] = eventstore.EventData{ID: fmt.Sprintf("%s-%d", prefix, k), Type: "custody.test.v1.T", Data: []byte(prefix)}
		}
		return out
	}
	r1, err := i.Append(ctx, "order-a", eventstore.NoStream, evs("a", 3)) // message 1
	if err != nil {
		t.Fatal(err)
	}
	r2, err := i.Append(ctx, "order-b", eventstore.NoStream, evs("b", 1)) // message 2
	if err != nil {
		t.Fatal(err)
	}
	r3, err := i.Append(ctx, "order-a", eventstore.Exact(2), evs("c", 2)) // message 3
	if err != nil {
		t.Fatal(err)
	}
	if r1.LastPosition != jetstream.Position(1, 2) || r2.LastPosition != jetstream.Position(2, 0) || r3.LastPosition != jetstream.Position(3, 1) || r3.LastRevision != 4 {
		t.Fatalf("append results %+v %+v %+v", r1, r2, r3)
	}
	info, err = i.JetStream().Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Fatalf("stream holds %d messages, want 3 (one per append, made one after another)", info.State.Msgs)
	}
	m, err := i.JetStream().GetMsg(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	// Message 3 is the order partition's next after message 2 (the fence).
	if m.Subject != "custody.test.order.commits" || m.Header.Get(jetstream.HeaderRevision) != "3" || m.Header.Get(jetstream.HeaderCount) != "2" ||
		m.Header.Get(natsjs.ExpectedLastSubjSeqHeader) != "2" {
		t.Errorf("message 3 headers %v", m.Header)
	}
	if p, err := i.LastPosition(ctx); err != nil || p != r3.LastPosition {
		t.Errorf("LastPosition = %d, %v; want %d", p, err, r3.LastPosition)
	}

	all, err := i.ReadAll(ctx, 0, 0)
	if err != nil || len(all) != 6 {
		t.Fatalf("ReadAll = %d events, %v", len(all), err)
	}
	want := []uint64{1 << 16, 1<<16 | 1, 1<<16 | 2, 2 << 16, 3 << 16, 3<<16 | 1}
	for k, e := range all {
		if e.Position != want[k] {
			t.Errorf("event %d (%s) at position %d, want %d", k, e.ID, e.Position, want[k])
		}
	}
	// Reading from the middle of a commit skips its earlier events.
	for from, wantIDs := range map[uint64][]string{
		1:                   {"a-0", "a-1", "a-2", "b-0", "c-0", "c-1"},
		1<<16 | 1:           {"a-1", "a-2", "b-0", "c-0", "c-1"},
		1<<16 | 3:           {"b-0", "c-0", "c-1"},
		3<<16 | 1:           {"c-1"},
		3<<16 | 2:           nil,
		all[5].Position + 1: nil,
	} {
		got, err := i.ReadAll(ctx, from, 0)
		if err != nil || !slices.Equal(idsOf(got), wantIDs) {
			t.Errorf("ReadAll(%d) = %v, %v; want %v", from, idsOf(got), err, wantIDs)
		}
	}
	if got, err := i.ReadAll(ctx, 1<<16|1, 3); err != nil || !slices.Equal(idsOf(got), []string{"a-1", "a-2", "b-0"}) {
		t.Errorf("ReadAll(1<<16|1, 3) = %v, %v", idsOf(got), err)
	}

	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sub, err := i.SubscribeAll(sctx, 1<<16|2)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var got []string
	for range 4 {
		e, err := sub.Next(sctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.ID)
	}
	if !slices.Equal(got, []string{"a-2", "b-0", "c-0", "c-1"}) {
		t.Errorf("SubscribeAll(1<<16|2) delivered %v", got)
	}
}

func idsOf(evs []eventstore.RecordedEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}

// A read whose limit ends inside a commit must not leave a tail in the middle
// of that commit: the next append expects the message's sequence and must
// stamp the revision after its LAST event.
func TestLimitedReadKeepsTailAtMessageBoundary(t *testing.T) {
	i := start(t, t.TempDir())
	defer i.Close()
	ctx := t.Context()
	in := []eventstore.EventData{{ID: "x0", Type: "t"}, {ID: "x1", Type: "t"}, {ID: "x2", Type: "t"}}
	if _, err := i.Append(ctx, "order-x", eventstore.NoStream, in); err != nil {
		t.Fatal(err)
	}
	nc, err := i.srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	cold, err := jetstream.Open(ctx, nc, jetstream.Config{Service: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := cold.ReadStream(ctx, "order-x", 0, 1); err != nil || len(got) != 1 {
		t.Fatalf("read with limit 1: %v, %v", got, err)
	}
	_, err = cold.Append(ctx, "order-x", eventstore.Exact(0), []eventstore.EventData{{ID: "y", Type: "t"}})
	if !errors.Is(err, eventstore.ErrWrongExpected) {
		t.Fatalf("append expecting revision 0 after a limited read: %v, want wrong expected version", err)
	}
	res, err := cold.Append(ctx, "order-x", eventstore.Any, []eventstore.EventData{{ID: "y", Type: "t"}})
	if err != nil || res.LastRevision != 3 {
		t.Fatalf("append any: %+v, %v; want revision 3", res, err)
	}
	got, err := i.ReadStream(ctx, "order-x", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := eventstore.VerifyChain(got); err != nil || n != 4 {
		t.Fatalf("chain: %d, %v", n, err)
	}
}

func TestAppendLimits(t *testing.T) {
	i := start(t, t.TempDir())
	defer i.Close()
	ctx := t.Context()
	many := make([]eventstore.EventData, jetstream.MaxCommitEvents+1)
	for k := range many {
		many[k] = eventstore.EventData{ID: fmt.Sprintf("m%d", k), Type: "t"}
	}
	if _, err := i.Append(ctx, "order-m", eventstore.Any, many); !errors.Is(err, eventstore.ErrInvalidAppend) {
		t.Errorf("append of %d events: %v, want ErrInvalidAppend", len(many), err)
	}
	for name, e := range map[string]eventstore.EventData{
		"id":    {ID: "bad\xff", Type: "t"},
		"type":  {ID: "u1", Type: "t\xff"},
		"actor": {ID: "u2", Type: "t", Metadata: eventstore.Metadata{Actor: "buyer:\xff"}},
	} {
		if _, err := i.Append(ctx, "order-u", eventstore.Any, []eventstore.EventData{e}); !errors.Is(err, eventstore.ErrInvalidAppend) {
			t.Errorf("invalid UTF-8 %s: %v, want ErrInvalidAppend", name, err)
		}
	}
	big := bytes.Repeat([]byte("x"), 1<<20)
	huge := make([]eventstore.EventData, 9) // 9 MiB > the embedded server's 8 MiB max payload
	for k := range huge {
		huge[k] = eventstore.EventData{ID: fmt.Sprintf("h%d", k), Type: "t", Data: big}
	}
	if _, err := i.Append(ctx, "order-h", eventstore.Any, huge); !errors.Is(err, eventstore.ErrInvalidAppend) {
		t.Errorf("append of 9 MiB: %v, want ErrInvalidAppend", err)
	}
	if all, err := i.ReadAll(ctx, 0, 0); err != nil || len(all) != 0 {
		t.Errorf("refused appends stored %d events (%v)", len(all), err)
	}
}
