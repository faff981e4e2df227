package jetstream

// Append benchmarks of the JetStream store against raw JetStream publishes of
// the same bytes, in the same run: the ratio store/raw is the figure, not the
// absolute numbers (which depend on the disk's fsync).
//
//	go test -run '^$' -bench . -benchtime 2s ./eventstore/jetstream/
//
// Every sub-benchmark gets a fresh embedded server (SyncAlways unless it is
// under sync=RELAXED_UNSAFE) on a fresh directory, an in-process connection
// (as in `custody run`), and the service stream the store creates. Each
// writer has its own stream (aggregate). Setup (server, stream, encoding the
// raw messages, the stream's first event) is outside the timer.
//
// Custom metrics: events/s (all writers together), p50-µs and p99-µs, the
// latency of one op (one append, or one command for the 3-event variants).
// The raw messages are built by the store's own EncodeCommit: same body, same
// headers, same ~256-byte payload per event, only without
// Nats-Expected-Last-Subject-Sequence.

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/natsembed"
)

const (
	benchService     = "bench"
	benchPayloadSize = 256
	benchManyWriters = 16
)

var benchPayload = bytes.Repeat([]byte("custody-event-payload-0123456789"), benchPayloadSize/32)

type benchEnv struct {
	nc *nats.Conn
	js jetstream.JetStream
	st *Store
}

// newBenchEnvWith also allows atomic batch publishes on the stream when
// atomic is set: the store no longer uses them, the raw_atomic_batch
// comparison still does.
func newBenchEnvWith(b *testing.B, relaxed, atomic bool) *benchEnv {
	b.Helper()
	srv, err := natsembed.Start(natsembed.Config{DataDir: b.TempDir(), RelaxedSync: relaxed})
	if err != nil {
		b.Fatal(err)
	}
	nc, err := srv.Connect()
	if err != nil {
		srv.Shutdown()
		b.Fatal(err)
	}
	b.Cleanup(func() { nc.Close(); srv.Shutdown() })
	st, err := Open(b.Context(), nc, Config{Service: benchService})
	if err != nil {
		b.Fatal(err)
	}
	if atomic {
		cfg := StreamConfig(benchService, 1)
		cfg.AllowAtomicPublish = true
		if _, err := st.js.UpdateStream(b.Context(), cfg); err != nil {
			b.Fatal(err)
		}
	}
	return &benchEnv{nc: nc, js: st.js, st: st}
}

func benchStream(w int) string { return fmt.Sprintf("acct-w%d", w) }

// benchEvent is event k of writer w: realistic envelope, 256-byte payload.
func benchEvent(w, k int) eventstore.EventData {
	return eventstore.EventData{
		ID:   fmt.Sprintf("evt-w%d-%09d-%s", w, k, nuid.Next()),
		Type: "custody.ledger.v1.EntryPosted",
		Data: benchPayload,
		Metadata: eventstore.Metadata{
			CorrelationID: "01JC8Z5Q0B6W8Y3D4M2N7K9T1R",
			CausationID:   fmt.Sprintf("cmd-w%d-%09d", w, k),
			Actor:         "buyer:b-0001",
			TraceParent:   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		},
	}
}

// benchRawMsgs encodes what the store would publish for events evs appended
// at revision rev onwards, perMsg events per message (one append each) —
// without the expected-sequence header.
func benchRawMsgs(w int, rev uint64, evs []eventstore.EventData, perMsg int) []*nats.Msg {
	subject, err := Subject(benchService, benchStream(w))
	if err != nil {
		panic(err)
	}
	prev := eventstore.GenesisHash
	sealed := make([]eventstore.RecordedEvent, len(evs))
	now := time.Now().UTC()
	for i, ed := range evs {
		re := &sealed[i]
		*re = eventstore.RecordedEvent{EventData: ed, Stream: benchStream(w), Revision: rev + uint64(i), RecordedAt: now}
		eventstore.Seal(prev, re)
		prev = re.Hash
	}
	out := make([]*nats.Msg, 0, len(evs)/perMsg)
	for i := 0; i < len(sealed); i += perMsg {
		m, err := EncodeCommit(subject, sealed[i:min(i+perMsg, len(sealed))])
		if err != nil {
			panic(err)
		}
		out = append(out, m)
	}
	return out
}

// benchOp is one timed operation of one writer; i counts that writer's ops.
type benchOp func(ctx context.Context, i int) error

// benchPrepare sets up writer w for n ops (outside the timer) and returns
// its op.
type benchPrepare func(b *testing.B, env *benchEnv, w, n int) benchOp

// benchRun runs b.N ops spread over writers goroutines, each on its own
// stream, and reports events/s and per-op latency percentiles.
func benchRun(b *testing.B, relaxed bool, writers, eventsPerOp int, prepare benchPrepare) {
	benchRunWith(b, relaxed, false, writers, eventsPerOp, prepare)
}

func benchRunWith(b *testing.B, relaxed, atomic bool, writers, eventsPerOp int, prepare benchPrepare) {
	b.StopTimer()
	env := newBenchEnvWith(b, relaxed, atomic)
	ctx := b.Context()
	ops := make([]benchOp, writers)
	counts := make([]int, writers)
	for w := range writers {
		counts[w] = b.N / writers
		if w < b.N%writers {
			counts[w]++
		}
		ops[w] = prepare(b, env, w, counts[w])
	}
	lat := make([][]time.Duration, writers)
	for w := range writers {
		lat[w] = make([]time.Duration, 0, counts[w])
	}
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	b.ReportAllocs()
	b.ResetTimer()
	b.StartTimer()
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range counts[w] {
				t0 := time.Now()
				if err := ops[w](ctx, i); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("writer %d op %d: %w", w, i, err) })
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p int) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(len(all)-1, len(all)*p/100)]) / float64(time.Microsecond)
	}
	b.ReportMetric(float64(b.N*eventsPerOp)/elapsed.Seconds(), "events/s")
	b.ReportMetric(pct(50), "p50-µs")
	b.ReportMetric(pct(99), "p99-µs")
}

// storeWriter appends to writer w's stream with expected revision Exact,
// after creating the stream with one event outside the timer: each op's
// perOp events as one append (whole), or as perOp appends of one event.
func storeWriter(b *testing.B, env *benchEnv, w, n, perOp int, whole bool) benchOp {
	ctx := b.Context()
	stream := benchStream(w)
	res, err := env.st.Append(ctx, stream, eventstore.NoStream, []eventstore.EventData{benchEvent(w, -1)})
	if err != nil {
		b.Fatal(err)
	}
	rev := res.LastRevision
	evs := make([][]eventstore.EventData, n)
	for i := range evs {
		evs[i] = make([]eventstore.EventData, perOp)
		for k := range perOp {
			evs[i][k] = benchEvent(w, i*perOp+k)
		}
	}
	return func(ctx context.Context, i int) error {
		if whole {
			res, err := env.st.Append(ctx, stream, eventstore.Exact(rev), evs[i])
			if err != nil {
				return err
			}
			rev = res.LastRevision
			return nil
		}
		for k := range evs[i] {
			res, err := env.st.Append(ctx, stream, eventstore.Exact(rev), evs[i][k:k+1])
			if err != nil {
				return err
			}
			rev = res.LastRevision
		}
		return nil
	}
}

// rawWriter publishes pre-encoded one-event messages, perOp of them per op,
// each waiting for its ack.
func rawWriter(b *testing.B, env *benchEnv, w, n, perOp int) benchOp {
	msgs := rawMsgs(b, env, w, n*perOp, 1)
	return func(ctx context.Context, i int) error {
		for _, m := range msgs[i*perOp : (i+1)*perOp] {
			if _, err := env.js.PublishMsg(ctx, m); err != nil {
				return err
			}
		}
		return nil
	}
}

// rawMsgs stores writer w's first event (outside the timer) and encodes
// count more events after it, perMsg per message.
func rawMsgs(b *testing.B, env *benchEnv, w, count, perMsg int) []*nats.Msg {
	ctx := b.Context()
	first := benchRawMsgs(w, 0, []eventstore.EventData{benchEvent(w, -1)}, 1)
	if _, err := env.js.PublishMsg(ctx, first[0]); err != nil {
		b.Fatal(err)
	}
	evs := make([]eventstore.EventData, count)
	for i := range evs {
		evs[i] = benchEvent(w, i)
	}
	return benchRawMsgs(w, 1, evs, perMsg)
}

// rawExpectWriter publishes pre-encoded event messages one at a time WITH
// the expected-last-subject-sequence header the store sets (taken from the
// previous ack): the server-side cost of the concurrency check, without the
// store's client-side work.
func rawExpectWriter(b *testing.B, env *benchEnv, w, n int) benchOp {
	msgs := rawMsgs(b, env, w, n, 1)
	subject, _ := Subject(benchService, benchStream(w))
	last, err := env.st.stream.GetLastMsgForSubject(b.Context(), subject)
	if err != nil {
		b.Fatal(err)
	}
	seq := last.Sequence
	return func(ctx context.Context, i int) error {
		msgs[i].Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(seq, 10))
		ack, err := env.js.PublishMsg(ctx, msgs[i])
		if err != nil {
			return err
		}
		seq = ack.Sequence
		return nil
	}
}

// rawBatchWriter publishes each command as one JetStream atomic batch of
// perOp one-event messages, as the store did before it went to one message
// per command (without the expected-sequence check). Needs a stream that
// allows atomic publishes (benchRunWith atomic).
func rawBatchWriter(b *testing.B, env *benchEnv, w, n, perOp int) benchOp {
	msgs := rawMsgs(b, env, w, n*perOp, 1)
	for i := range n {
		id := nuid.Next()
		for k, m := range msgs[i*perOp : (i+1)*perOp] {
			m.Header.Set("Nats-Batch-Id", id)
			m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(k+1))
			if k == perOp-1 {
				m.Header.Set("Nats-Batch-Commit", "1")
			}
		}
	}
	return func(ctx context.Context, i int) error {
		cmd := msgs[i*perOp : (i+1)*perOp]
		for _, m := range cmd[:perOp-1] {
			if err := env.nc.PublishMsg(m); err != nil {
				return err
			}
		}
		_, err := env.js.PublishMsg(ctx, cmd[perOp-1])
		return err
	}
}

// rawOneMsgWriter publishes each command as ONE message carrying all its
// events: exactly what the store publishes for a perOp-event append, without
// the expected-sequence check.
func rawOneMsgWriter(b *testing.B, env *benchEnv, w, n, perOp int) benchOp {
	cmds := rawMsgs(b, env, w, n*perOp, perOp)
	return func(ctx context.Context, i int) error {
		_, err := env.js.PublishMsg(ctx, cmds[i])
		return err
	}
}

func syncName(relaxed bool) string {
	if relaxed {
		return "sync=RELAXED_UNSAFE"
	}
	return "sync=always"
}

// BenchmarkAppend: one event per append, the store (expected revision Exact)
// against raw publishes, one writer and many. The RELAXED_UNSAFE pairs show
// what fsync costs; never run a store like that.
func BenchmarkAppend(b *testing.B) {
	for _, relaxed := range []bool{false, true} {
		for _, writers := range []int{1, benchManyWriters} {
			name := fmt.Sprintf("%s/writers=%d", syncName(relaxed), writers)
			b.Run(name+"/raw_publish", func(b *testing.B) {
				benchRun(b, relaxed, writers, 1, func(b *testing.B, env *benchEnv, w, n int) benchOp {
					return rawWriter(b, env, w, n, 1)
				})
			})
			b.Run(name+"/raw_publish_expect_seq", func(b *testing.B) {
				benchRun(b, relaxed, writers, 1, func(b *testing.B, env *benchEnv, w, n int) benchOp {
					return rawExpectWriter(b, env, w, n)
				})
			})
			b.Run(name+"/store_append", func(b *testing.B) {
				benchRun(b, relaxed, writers, 1, func(b *testing.B, env *benchEnv, w, n int) benchOp {
					return storeWriter(b, env, w, n, 1, true)
				})
			})
		}
	}
}

// BenchmarkAppendCommand3: a command of three events, written as one message
// by the store (store_append_command), against the alternatives: the same
// message raw, three raw publishes, three separate store appends (not
// atomic), and the three one-event messages as one JetStream atomic batch
// (what the store did before). b.N counts commands.
func BenchmarkAppendCommand3(b *testing.B) {
	const per = 3
	for _, writers := range []int{1, benchManyWriters} {
		name := fmt.Sprintf("%s/writers=%d", syncName(false), writers)
		b.Run(name+"/store_append_command", func(b *testing.B) {
			benchRun(b, false, writers, per, func(b *testing.B, env *benchEnv, w, n int) benchOp {
				return storeWriter(b, env, w, n, per, true)
			})
		})
		b.Run(name+"/raw_atomic_batch", func(b *testing.B) {
			benchRunWith(b, false, true, writers, per, func(b *testing.B, env *benchEnv, w, n int) benchOp {
				return rawBatchWriter(b, env, w, n, per)
			})
		})
		b.Run(name+"/raw_publish_x3", func(b *testing.B) {
			benchRun(b, false, writers, per, func(b *testing.B, env *benchEnv, w, n int) benchOp {
				return rawWriter(b, env, w, n, per)
			})
		})
		b.Run(name+"/store_append_x3", func(b *testing.B) {
			benchRun(b, false, writers, per, func(b *testing.B, env *benchEnv, w, n int) benchOp {
				return storeWriter(b, env, w, n, per, false)
			})
		})
		b.Run(name+"/raw_one_msg_per_command", func(b *testing.B) {
			benchRun(b, false, writers, per, func(b *testing.B, env *benchEnv, w, n int) benchOp {
				return rawOneMsgWriter(b, env, w, n, per)
			})
		})
	}
}
