package bus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/custody/custody/pkg/bus"
	"github.com/custody/custody/pkg/eventstore"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/natsembed"
)

// The bus reports to the global OpenTelemetry providers; the tests install
// real SDK providers with in-memory readers. Each test uses its own consumer
// names, so their measurements do not mix.
var (
	metrics *sdkmetric.ManualReader
	spans   *tracetest.SpanRecorder
)

func TestMain(m *testing.M) {
	metrics = sdkmetric.NewManualReader()
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(metrics)))
	spans = tracetest.NewSpanRecorder()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)))
	otel.SetTextMapPropagator(propagation.TraceContext{})
	os.Exit(m.Run())
}

const (
	waitFor = 20 * time.Second
	evType  = "custody.test.v1.X"
)

// partition is the subject the store writes the order service's orders to.
var partition = esjs.PartitionSubject("order", "order")

// env is one embedded nats-server with the order service's event store.
type env struct {
	srv   *natsembed.Server
	nc    *nats.Conn
	js    jetstream.JetStream
	store *esjs.Store
	logs  *syncBuffer
}

func startEnv(t *testing.T, cfg natsembed.Config, opts ...nats.Option) *env {
	t.Helper()
	srv, err := natsembed.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := esjs.Open(t.Context(), nc, esjs.Config{Service: "order"})
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, nc: nc, js: js, store: st, logs: &syncBuffer{}}
}

func newEnv(t *testing.T) *env {
	return startEnv(t, natsembed.Config{DataDir: t.TempDir()})
}

func (e *env) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// append stores one event of type evType with id on stream order-<orderID>.
func (e *env) append(t *testing.T, orderID, id string, md eventstore.Metadata) {
	t.Helper()
	appendTo(t, e.store, orderID, id, md)
}

func appendTo(t *testing.T, st *esjs.Store, orderID, id string, md eventstore.Metadata) {
	t.Helper()
	_, err := st.Append(t.Context(), "order-"+orderID, eventstore.Any,
		[]eventstore.EventData{{ID: id, Type: evType, Data: []byte("x"), Metadata: md}})
	if err != nil {
		t.Fatalf("append %s: %v", id, err)
	}
}

func (e *env) subscribe(t *testing.T, cfg bus.Config, h bus.Handler) *bus.Consumer {
	t.Helper()
	cfg.SourceService = "order"
	if cfg.Logger == nil {
		cfg.Logger = e.logger()
	}
	c, err := bus.Subscribe(t.Context(), e.js, cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

// effects counts, per event id, how often the handler was called and how
// often its side effect was applied.
type effects struct {
	mu      sync.Mutex
	calls   map[string]int
	applied map[string]int
}

func newEffects() *effects { return &effects{calls: map[string]int{}, applied: map[string]int{}} }

func (f *effects) call(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[id]++
	return f.calls[id]
}

func (f *effects) apply(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied[id]++
}

// applyOnce is an idempotent effect: applied only if this event's effect
// is not there yet (as a reaction's command, whose id derives from the
// event id, is applied once by its aggregate).
func (f *effects) applyOnce(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.applied[id] == 0 {
		f.applied[id]++
	}
}

func (f *effects) get(id string) (calls, applied int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id], f.applied[id]
}

// eventually retries f until it returns nil or the deadline passes (like
// nats-server's checkFor).
func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after %s: %v", waitFor, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func applied(f *effects, ids ...string) func() error {
	return func() error {
		for _, id := range ids {
			if _, n := f.get(id); n == 0 {
				return fmt.Errorf("%s not applied yet", id)
			}
		}
		return nil
	}
}

// settled: the server has every message up to lastSeq acked or terminated
// and nothing pending or awaiting an ack, so nothing will be redelivered.
func settled(t *testing.T, c *bus.Consumer, lastSeq uint64) func() error {
	return func() error {
		info, err := c.Info(t.Context())
		if err != nil {
			return err
		}
		if info.AckFloor.Stream != lastSeq || info.NumAckPending != 0 || info.NumPending != 0 || info.NumRedelivered != 0 {
			return fmt.Errorf("consumer not settled at %d: ack floor %d, ack pending %d, pending %d, redelivered %d",
				lastSeq, info.AckFloor.Stream, info.NumAckPending, info.NumPending, info.NumRedelivered)
		}
		return nil
	}
}

// sum adds up the data points of counter name whose attributes include attrs.
func sum(t *testing.T, name string, attrs ...attribute.KeyValue) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := metrics.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			data, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("%s is %T, not an int64 sum", name, m.Data)
			}
		dp:
			for _, p := range data.DataPoints {
				for _, a := range attrs {
					if v, ok := p.Attributes.Value(a.Key); !ok || v != a.Value {
						continue dp
					}
				}
				total += p.Value
			}
		}
	}
	return total
}

var runs atomic.Int64

// consumerName makes a name unique to this run, so that counters, which
// accumulate in the global meter provider, start at zero under -count=N.
func consumerName(base string) string { return fmt.Sprintf("%s-%d", base, runs.Add(1)) }

func consumerAttr(name string) attribute.KeyValue { return attribute.String("consumer", name) }
func outcome(o string) attribute.KeyValue         { return attribute.String("outcome", o) }

func TestFailingHandlerIsRetriedAndAppliedOnce(t *testing.T) {
	e := newEnv(t)
	name := consumerName("test-on-order-retry")
	f := newEffects()
	e.append(t, "o1", "e1", eventstore.Metadata{})
	c := e.subscribe(t, bus.Config{Name: name, MaxDeliver: 5, AckWait: 5 * time.Second,
		Backoff: []time.Duration{time.Millisecond, 2 * time.Millisecond}},
		func(ctx context.Context, ev eventstore.RecordedEvent) error {
			if f.call(ev.ID) <= 2 && ev.ID == "e1" {
				return errors.New("store unavailable")
			}
			f.apply(ev.ID)
			return nil
		})

	eventually(t, applied(f, "e1"))
	eventually(t, settled(t, c, 1))
	// Later traffic flows, and e1 does not come back with it.
	e.append(t, "o2", "e2", eventstore.Metadata{})
	eventually(t, applied(f, "e2"))
	eventually(t, settled(t, c, 2))

	if calls, n := f.get("e1"); calls != 3 || n != 1 {
		t.Errorf("e1: %d calls, applied %d times; want 3 calls, applied once", calls, n)
	}
	if calls, n := f.get("e2"); calls != 1 || n != 1 {
		t.Errorf("e2: %d calls, applied %d times; want 1, 1", calls, n)
	}
	if got := sum(t, "custody.bus.redeliveries", consumerAttr(name)); got != 2 {
		t.Errorf("redeliveries = %d, want 2", got)
	}
	if got := sum(t, "custody.bus.handled", consumerAttr(name), outcome("retry")); got != 2 {
		t.Errorf("handled{retry} = %d, want 2", got)
	}
	if got := sum(t, "custody.bus.handled", consumerAttr(name), outcome("ok")); got != 2 {
		t.Errorf("handled{ok} = %d, want 2", got)
	}
	if got := sum(t, "custody.bus.parked", consumerAttr(name)); got != 0 {
		t.Errorf("parked = %d, want 0", got)
	}
}

func TestPoisonMessagesAreParkedAndDoNotBlock(t *testing.T) {
	e := newEnv(t)
	name := consumerName("test-on-order-poison")
	const producerTrace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	f := newEffects()
	e.append(t, "o1", "poison", eventstore.Metadata{TraceParent: producerTrace, Actor: "buyer:b1"})    // seq 1
	e.append(t, "o2", "ok1", eventstore.Metadata{})                                                    // seq 2
	e.append(t, "o3", "bad", eventstore.Metadata{})                                                    // seq 3
	if _, err := e.js.Publish(t.Context(), "custody.order.order.raw", []byte("garbage")); err != nil { // seq 4
		t.Fatal(err)
	}
	e.append(t, "o4", "ok2", eventstore.Metadata{}) // seq 5

	c := e.subscribe(t, bus.Config{Name: name, MaxDeliver: 3, AckWait: 5 * time.Second,
		Backoff: []time.Duration{time.Millisecond}},
		func(ctx context.Context, ev eventstore.RecordedEvent) error {
			f.call(ev.ID)
			switch ev.ID {
			case "poison":
				return errors.New("boom:\nstock service says no")
			case "bad":
				return fault.Permanent(errors.New("payload does not decode"))
			}
			f.apply(ev.ID)
			return nil
		})

	var parked []bus.Parked
	eventually(t, func() (err error) {
		parked, err = bus.ListParked(t.Context(), e.js, name)
		if err == nil && len(parked) != 3 {
			err = fmt.Errorf("%d parked, want 3", len(parked))
		}
		return err
	})
	eventually(t, applied(f, "ok1", "ok2"))
	// The consumer goes on after parking.
	e.append(t, "o5", "ok3", eventstore.Metadata{}) // seq 6
	eventually(t, applied(f, "ok3"))
	eventually(t, settled(t, c, 6))

	for id, want := range map[string]int{"poison": 3, "bad": 1, "ok1": 1, "ok2": 1, "ok3": 1} {
		if calls, _ := f.get(id); calls != want {
			t.Errorf("%s: handler called %d times, want %d", id, calls, want)
		}
	}

	bySeq := map[uint64]bus.Parked{}
	for _, p := range parked {
		bySeq[p.OriginalSequence] = p
	}
	type want struct {
		cause, reason, eventID, subject string
		deliveries                      uint64
		decodes                         bool
	}
	for seq, w := range map[uint64]want{
		1: {bus.CauseMaxDeliver, "boom: stock service says no", "poison", partition, 3, true},
		3: {bus.CausePermanent, "permanent: payload does not decode", "bad", partition, 1, true},
		4: {bus.CauseUndecodable, "is not a commit", "", "custody.order.order.raw", 1, false},
	} {
		p, ok := bySeq[seq]
		if !ok {
			t.Errorf("message %d not parked; parked: %+v", seq, parked)
			continue
		}
		if p.Subject != "custody.deadletter."+name+".order" || p.Subject != bus.DeadLetterSubject(name, "order") {
			t.Errorf("seq %d parked on %q", seq, p.Subject)
		}
		if p.Consumer != name || p.SourceService != "order" || p.OriginalStream != "CUSTODY_ORDER" {
			t.Errorf("seq %d: consumer %q, service %q, stream %q", seq, p.Consumer, p.SourceService, p.OriginalStream)
		}
		if p.Cause != w.cause || !strings.Contains(p.Reason, w.reason) || p.Deliveries != w.deliveries ||
			p.OriginalSubject != w.subject || p.EventID != w.eventID {
			t.Errorf("seq %d parked as %+v, want %+v", seq, p, w)
		}
		for _, h := range []string{bus.HeaderDeadLetterReason, bus.HeaderDeadLetterConsumer, bus.HeaderDeadLetterDeliveries,
			bus.HeaderDeadLetterOriginalSubject, bus.HeaderDeadLetterOriginalSequence} {
			if p.Header.Get(h) == "" {
				t.Errorf("seq %d: header %s missing", seq, h)
			}
		}
		if got := p.Header.Get(bus.HeaderDeadLetterOriginalSequence); got != strconv.FormatUint(seq, 10) {
			t.Errorf("seq %d: original sequence header %q", seq, got)
		}
		if (p.Event != nil) != w.decodes {
			t.Errorf("seq %d: decoded event %v, want decodable %v", seq, p.Event, w.decodes)
		}
		if p.Event != nil && (p.Event.ID != w.eventID || p.Event.Type != evType || string(p.Event.Data) != "x") {
			t.Errorf("seq %d: parked event %+v", seq, p.Event)
		}
	}
	// The original message travels with the parked copy: its headers, trace
	// context included under its lower-case name, and its body.
	if p := bySeq[1]; p.Header.Get(esjs.HeaderType) != evType || len(p.Header["traceparent"]) != 1 || p.Header["traceparent"][0] != producerTrace {
		t.Errorf("parked copy lost original headers: %v", p.Header)
	}
	if p := bySeq[1]; p.Event == nil || p.Event.Metadata.Actor != "buyer:b1" || p.Event.Metadata.TraceParent != producerTrace ||
		len(p.Events) != 1 || p.EventIndex != 0 || p.EventType != evType {
		t.Errorf("parked copy lost the original event: %+v", p)
	}
	if p := bySeq[4]; string(p.Data) != "garbage" {
		t.Errorf("undecodable message parked with data %q", p.Data)
	}

	if got := sum(t, "custody.bus.parked", consumerAttr(name)); got != 3 {
		t.Errorf("parked metric = %d, want 3", got)
	}
	if got := strings.Count(e.logs.String(), "level=ERROR msg=\"bus: message parked"); got != 3 {
		t.Errorf("%d parking errors logged, want 3:\n%s", got, e.logs)
	}
	if other, err := bus.ListParked(t.Context(), e.js, "someone-else"); err != nil || len(other) != 0 {
		t.Errorf("ListParked(someone-else) = %v, %v; want nothing", other, err)
	}
	if all, err := bus.ListParked(t.Context(), e.js, ""); err != nil || len(all) != 3 {
		t.Errorf("ListParked(all) = %d, %v; want 3", len(all), err)
	}
}

// If the dead-letter stream cannot take the message, it is not terminated:
// it keeps coming back until it can be parked.
func TestMessageIsNotDroppedWhenParkingFails(t *testing.T) {
	e := newEnv(t)
	name := consumerName("test-on-order-noparking")
	f := newEffects()
	c := e.subscribe(t, bus.Config{Name: name, MaxDeliver: 2, AckWait: 5 * time.Second,
		Backoff: []time.Duration{time.Millisecond, 5 * time.Millisecond}},
		func(ctx context.Context, ev eventstore.RecordedEvent) error {
			f.call(ev.ID)
			return errors.New("always fails")
		})
	if err := e.js.DeleteStream(t.Context(), bus.DeadLetterStream); err != nil {
		t.Fatal(err)
	}
	e.append(t, "o1", "poison", eventstore.Metadata{})

	// Past MaxDeliver and still being delivered: parking failed, nothing dropped.
	eventually(t, func() error {
		if calls, _ := f.get("poison"); calls < 4 {
			return fmt.Errorf("%d calls", calls)
		}
		return nil
	})
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.AckFloor.Stream != 0 || info.NumAckPending != 1 {
		t.Fatalf("message left the consumer without being parked: ack floor %d, ack pending %d", info.AckFloor.Stream, info.NumAckPending)
	}
	if got := sum(t, "custody.bus.parked", consumerAttr(name)); got != 0 {
		t.Fatalf("parked metric = %d before the dead-letter stream exists", got)
	}

	if err := bus.EnsureDeadLetterStream(t.Context(), e.js, 1); err != nil {
		t.Fatal(err)
	}
	eventually(t, settled(t, c, 1))
	parked, err := bus.ListParked(t.Context(), e.js, name)
	if err != nil || len(parked) != 1 {
		t.Fatalf("ListParked = %v, %v; want the one message", parked, err)
	}
	if p := parked[0]; p.EventID != "poison" || p.Cause != bus.CauseMaxDeliver || p.Deliveries < 4 {
		t.Errorf("parked %+v", p)
	}
}

// The bus keeps no record of what it handled: a redelivered event reaches
// the handler again, and an idempotent handler (keyed by event id, as the
// reactions are by their derived command ids) applies its effect once.
func TestRedeliveryHasEffectsOnce(t *testing.T) {
	t.Run("consumer re-created replays the stream", func(t *testing.T) {
		e := newEnv(t)
		name := consumerName("test-on-order-recreated")
		f := newEffects()
		h := func(ctx context.Context, ev eventstore.RecordedEvent) error {
			f.call(ev.ID)
			f.applyOnce(ev.ID)
			return nil
		}
		cfg := bus.Config{Name: name, AckWait: 5 * time.Second, Backoff: []time.Duration{time.Millisecond}}
		e.append(t, "o1", "e1", eventstore.Metadata{})
		e.append(t, "o2", "e2", eventstore.Metadata{})
		c := e.subscribe(t, cfg, h)
		eventually(t, applied(f, "e1", "e2"))
		eventually(t, settled(t, c, 2))
		c.Stop()

		// A new durable of the same name starts from the first event again.
		if err := e.js.DeleteConsumer(t.Context(), esjs.StreamNameFor("order"), name); err != nil {
			t.Fatal(err)
		}
		c = e.subscribe(t, cfg, h)
		eventually(t, settled(t, c, 2))
		e.append(t, "o3", "e3", eventstore.Metadata{})
		eventually(t, applied(f, "e3"))
		eventually(t, settled(t, c, 3))

		for id, want := range map[string]int{"e1": 2, "e2": 2, "e3": 1} {
			if calls, n := f.get(id); calls != want || n != 1 {
				t.Errorf("%s: %d calls, applied %d; want %d calls, applied once", id, calls, n, want)
			}
		}
		if got := sum(t, "custody.bus.handled", consumerAttr(name), outcome("ok")); got != 5 {
			t.Errorf("handled{ok} = %d, want 5 (e1 and e2 twice, e3 once)", got)
		}
		noMarkers(t, e)
	})

	t.Run("ack after AckWait", func(t *testing.T) {
		e := newEnv(t)
		name := consumerName("test-on-order-lateack")
		f := newEffects()
		release := make(chan struct{})
		c := e.subscribe(t, bus.Config{Name: name, AckWait: 300 * time.Millisecond, Backoff: []time.Duration{time.Millisecond}},
			func(ctx context.Context, ev eventstore.RecordedEvent) error {
				f.call(ev.ID)
				<-release // a slow handler that outlives AckWait (and ignores its deadline)
				f.applyOnce(ev.ID)
				return nil
			})
		e.append(t, "o1", "e1", eventstore.Metadata{})

		// Hold the handler until the server has given up on the first
		// delivery and this consumer has received the message again.
		eventually(t, func() error {
			info, err := c.Info(t.Context())
			if err != nil {
				return err
			}
			if info.NumRedelivered == 0 {
				return errors.New("not redelivered yet")
			}
			if !strings.Contains(e.logs.String(), "bus: message redelivered while still being handled") {
				return errors.New("redelivery not received yet")
			}
			return nil
		})
		close(release)
		eventually(t, settled(t, c, 1))
		// The redelivery of a message still being handled takes over its
		// ack; it is not handed to the handler a second time.
		if calls, n := f.get("e1"); calls != 1 || n != 1 {
			t.Errorf("e1: %d calls, applied %d; want once", calls, n)
		}
		if got := sum(t, "custody.bus.redeliveries", consumerAttr(name)); got < 1 {
			t.Errorf("redeliveries = %d, want at least 1", got)
		}
		noMarkers(t, e)
	})
}

// noMarkers: the bus wrote no processed markers: there is no KeyValue
// bucket (nor any KV stream) on the server but the event stores'
// watermarks.
func noMarkers(t *testing.T, e *env) {
	t.Helper()
	if _, err := e.js.KeyValue(t.Context(), "custody_processed"); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Errorf("processed bucket: %v, want ErrBucketNotFound", err)
	}
	names := e.js.StreamNames(t.Context())
	for n := range names.Name() {
		if strings.HasPrefix(n, "KV_") && n != "KV_"+esjs.WatermarkBucket {
			t.Errorf("KeyValue stream %s exists", n)
		}
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestConsumerSurvivesServerRestart(t *testing.T) {
	dir := t.TempDir()
	e := startEnv(t, natsembed.Config{DataDir: dir, Listen: true, ReadyTimeout: 5 * time.Second},
		nats.ReconnectWait(20*time.Millisecond))
	u, err := url.Parse(e.srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())

	name := consumerName("test-on-order-restart")
	f := newEffects()
	h := func(ctx context.Context, ev eventstore.RecordedEvent) error {
		f.call(ev.ID)
		f.apply(ev.ID)
		return nil
	}
	cfg := bus.Config{Name: name, AckWait: 2 * time.Second, Backoff: []time.Duration{time.Millisecond}}
	c := e.subscribe(t, cfg, h)
	e.append(t, "o1", "e1", eventstore.Metadata{})
	e.append(t, "o2", "e2", eventstore.Metadata{})
	eventually(t, applied(f, "e1", "e2"))
	eventually(t, settled(t, c, 2))

	// The server restarts under the running consumer; the client reconnects.
	e.srv.Shutdown()
	var srv2 *natsembed.Server
	eventually(t, func() (err error) {
		srv2, err = natsembed.Start(natsembed.Config{DataDir: dir, Listen: true, Port: port, ReadyTimeout: 5 * time.Second})
		return err
	})
	t.Cleanup(srv2.Shutdown)
	eventually(t, func() error {
		// Retrying is safe: the same event id is stored once.
		_, err := e.store.Append(t.Context(), "order-o3", eventstore.Any,
			[]eventstore.EventData{{ID: "e3", Type: evType, Data: []byte("x")}})
		return err
	})
	eventually(t, applied(f, "e3"))
	eventually(t, settled(t, c, 3))

	// Now the process goes too: a new server and a new consumer of the same
	// name resume after the last acked event.
	c.Stop()
	e.nc.Close()
	srv2.Shutdown()
	e3 := startEnv(t, natsembed.Config{DataDir: dir})
	c3 := e3.subscribe(t, cfg, h)
	eventually(t, settled(t, c3, 3))
	e3.append(t, "o4", "e4", eventstore.Metadata{})
	eventually(t, applied(f, "e4"))
	eventually(t, settled(t, c3, 4))

	for _, id := range []string{"e1", "e2", "e3", "e4"} {
		if calls, n := f.get(id); calls != 1 || n != 1 {
			t.Errorf("%s: %d calls, applied %d; want once", id, calls, n)
		}
	}
	if got := sum(t, "custody.bus.redeliveries", consumerAttr(name)); got != 0 {
		t.Errorf("%d messages came back after the restarts; want none", got)
	}
}

func TestHandlerRunsInConsumerSpanOfProducerTrace(t *testing.T) {
	e := newEnv(t)
	name := consumerName("test-on-order-trace")
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	parentID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	var mu sync.Mutex
	got := map[string]trace.SpanContext{}
	c := e.subscribe(t, bus.Config{Name: name, AckWait: 5 * time.Second},
		func(ctx context.Context, ev eventstore.RecordedEvent) error {
			mu.Lock()
			got[ev.ID] = trace.SpanContextFromContext(ctx)
			mu.Unlock()
			return nil
		})
	e.append(t, "o1", "traced", eventstore.Metadata{
		TraceParent: "00-" + traceID.String() + "-" + parentID.String() + "-01", TraceState: "custody=1"})
	e.append(t, "o2", "untraced", eventstore.Metadata{})
	eventually(t, settled(t, c, 2))

	mu.Lock()
	defer mu.Unlock()
	if sc := got["traced"]; sc.TraceID() != traceID || sc.SpanID() == parentID || sc.TraceState().Get("custody") != "1" {
		t.Errorf("handler span context %v; want a new span in trace %s", sc, traceID)
	}
	if sc := got["untraced"]; !sc.IsValid() || sc.TraceID() == traceID {
		t.Errorf("untraced event: handler span context %v; want a new root", sc)
	}
	var found bool
	for _, s := range spans.Ended() {
		if s.SpanContext().SpanID() != got["traced"].SpanID() {
			continue
		}
		found = true
		if s.Name() != name+" process "+evType || s.SpanKind() != trace.SpanKindConsumer ||
			s.Parent().SpanID() != parentID || !s.Parent().IsRemote() {
			t.Errorf("span %q kind %v parent %v", s.Name(), s.SpanKind(), s.Parent())
		}
	}
	if !found {
		t.Error("consumer span not recorded")
	}
}

func TestEventTypesFilter(t *testing.T) {
	e := newEnv(t)
	name := consumerName("test-on-order-types")
	var mu sync.Mutex
	var seen []string
	c := e.subscribe(t, bus.Config{Name: name, EventTypes: []string{"custody.test.v1.Wanted"}, AckWait: 5 * time.Second},
		func(ctx context.Context, ev eventstore.RecordedEvent) error {
			mu.Lock()
			seen = append(seen, ev.ID)
			mu.Unlock()
			return nil
		})
	for i, typ := range []string{"custody.test.v1.Other", "custody.test.v1.Wanted", "custody.test.v1.Other"} {
		if _, err := e.store.Append(t.Context(), "order-o1", eventstore.Any,
			[]eventstore.EventData{{ID: fmt.Sprintf("e%d", i+1), Type: typ}}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, settled(t, c, 3))
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != "e2" {
		t.Errorf("handler saw %v, want [e2]", seen)
	}
	if got := sum(t, "custody.bus.handled", consumerAttr(name), outcome("skipped")); got != 2 {
		t.Errorf("handled{skipped} = %d, want 2", got)
	}
}

func TestSubscribeValidates(t *testing.T) {
	e := newEnv(t)
	h := func(context.Context, eventstore.RecordedEvent) error { return nil }
	for _, cfg := range []bus.Config{
		{Name: "", SourceService: "order"},
		{Name: "has.dot", SourceService: "order"},
		{Name: "ok", SourceService: "Order"},
	} {
		if _, err := bus.Subscribe(t.Context(), e.js, cfg, h); err == nil {
			t.Errorf("Subscribe(%+v) succeeded", cfg)
		}
	}
	if _, err := bus.Subscribe(t.Context(), e.js, bus.Config{Name: "ok", SourceService: "nosuch"}, h); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("Subscribe to a missing stream: %v, want ErrStreamNotFound", err)
	}
}

// syncBuffer is a log sink the consumer goroutines and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// commits builds messages in the store's format by hand: group commits
// holding events of several streams, each stream's events sealed onto its
// chain, as the store writes them when appends of several aggregates share
// one write.
type commits struct {
	next map[string]uint64
	prev map[string][]byte
}

func newCommits() *commits { return &commits{next: map[string]uint64{}, prev: map[string][]byte{}} }

// ev is the next event, of type typ, of stream order-<orderID>.
func (cm *commits) ev(orderID, id, typ string) eventstore.RecordedEvent {
	stream := eventstore.StreamName("order", orderID)
	re := eventstore.RecordedEvent{
		EventData: eventstore.EventData{ID: id, Type: typ, Data: []byte("x")},
		Stream:    stream, Revision: cm.next[stream], RecordedAt: time.Now().UTC(),
	}
	eventstore.Seal(cm.prev[stream], &re)
	cm.next[stream]++
	cm.prev[stream] = re.Hash
	return re
}

// publish stores evs as one message on the orders' partition and returns
// its stream sequence.
func (e *env) publish(t *testing.T, evs ...eventstore.RecordedEvent) uint64 {
	t.Helper()
	m, err := esjs.EncodeCommit(partition, evs)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := e.js.PublishMsg(t.Context(), m, jetstream.WithExpectStream(esjs.StreamNameFor("order")))
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// Messages holding events of many streams: the events of one message are
// handled side by side across streams, and each stream's events in order,
// also across messages.
func TestConcurrentLanesKeepEachStreamInOrder(t *testing.T) {
	e := newEnv(t)
	name := consumerName("test-on-order-lanes")
	const orders, msgs, perMsg, lanes = 6, 4, 2, 4
	var mu sync.Mutex
	seen := map[string][]int{} // stream -> revisions in handling order
	inFlight, maxInFlight := 0, 0
	release := make(chan struct{})
	c := e.subscribe(t, bus.Config{Name: name, Concurrency: lanes, AckWait: 10 * time.Second},
		func(ctx context.Context, ev eventstore.RecordedEvent) error {
			mu.Lock()
			inFlight++
			maxInFlight = max(maxInFlight, inFlight)
			mu.Unlock()
			if ev.Revision == 0 {
				<-release // hold the first event of every stream until several are in flight
			}
			mu.Lock()
			inFlight--
			seen[ev.Stream] = append(seen[ev.Stream], int(ev.Revision))
			mu.Unlock()
			return nil
		})
	// Message m holds revisions perMsg*m … perMsg*m+perMsg-1 of every
	// stream, the streams interleaved.
	cm := newCommits()
	var last uint64
	for m := range msgs {
		var evs []eventstore.RecordedEvent
		for j := range perMsg {
			for o := range orders {
				evs = append(evs, cm.ev(fmt.Sprintf("o%d", o), fmt.Sprintf("o%d-%d", o, m*perMsg+j), evType))
			}
		}
		last = e.publish(t, evs...)
	}
	// All the held events are in the first message.
	eventually(t, func() error {
		mu.Lock()
		defer mu.Unlock()
		if maxInFlight < 2 {
			return fmt.Errorf("%d handlers in flight", maxInFlight)
		}
		return nil
	})
	close(release)
	eventually(t, settled(t, c, last))
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != orders {
		t.Fatalf("saw %d streams, want %d", len(seen), orders)
	}
	for stream, revs := range seen {
		if len(revs) != msgs*perMsg {
			t.Errorf("%s: %d events handled, want %d: %v", stream, len(revs), msgs*perMsg, revs)
		}
		for i, r := range revs {
			if r != i {
				t.Fatalf("%s handled in order %v", stream, revs)
			}
		}
	}
	if maxInFlight > lanes {
		t.Errorf("%d handlers ran at once with %d lanes", maxInFlight, lanes)
	}
	if got := sum(t, "custody.bus.handled", consumerAttr(name), outcome("ok")); got != orders*msgs*perMsg {
		t.Errorf("handled{ok} = %d, want %d", got, orders*msgs*perMsg)
	}
}

// One busy stream whose events answer different orders (Config.OrderBy
// keys them by correlation): the events of different keys run side by
// side, though one stream holds them all, and each key's in order.
func TestOrderByRunsOneStreamSideBySide(t *testing.T) {
	e := newEnv(t)
	name := consumerName("test-order-by")
	const keys, perKey = 4, 3
	var mu sync.Mutex
	seen := map[string][]string{} // key -> event ids in handling order
	inFlight, maxInFlight := 0, 0
	release := make(chan struct{})
	c := e.subscribe(t, bus.Config{Name: name, Concurrency: keys, AckWait: 10 * time.Second,
		OrderBy: func(ev eventstore.RecordedEvent) string { return ev.Metadata.CorrelationID }},
		func(ctx context.Context, ev eventstore.RecordedEvent) error {
			mu.Lock()
			inFlight++
			maxInFlight = max(maxInFlight, inFlight)
			mu.Unlock()
			if strings.HasSuffix(ev.ID, "-0") {
				<-release // hold each key's first event until several are in flight
			}
			mu.Lock()
			inFlight--
			seen[ev.Metadata.CorrelationID] = append(seen[ev.Metadata.CorrelationID], ev.ID)
			mu.Unlock()
			return nil
		})
	cm := newCommits()
	var evs []eventstore.RecordedEvent
	for i := range perKey {
		for k := range keys {
			ev := cm.ev("hot", fmt.Sprintf("k%d-%d", k, i), evType)
			ev.Metadata.CorrelationID = fmt.Sprintf("k%d", k)
			evs = append(evs, ev)
		}
	}
	last := e.publish(t, evs...)
	eventually(t, func() error {
		mu.Lock()
		defer mu.Unlock()
		if maxInFlight < 2 {
			return fmt.Errorf("%d handlers in flight: the stream's events ran one by one", maxInFlight)
		}
		return nil
	})
	close(release)
	eventually(t, settled(t, c, last))
	mu.Lock()
	defer mu.Unlock()
	for k := range keys {
		key := fmt.Sprintf("k%d", k)
		want := []string{key + "-0", key + "-1", key + "-2"}
		if !slices.Equal(seen[key], want) {
			t.Errorf("%s handled %v, want %v", key, seen[key], want)
		}
	}
}

// Concurrent appends through the store share messages (group commit); the
// consumer hands every event over once, each stream's in order.
func TestGroupCommitsOfTheStoreAreHandledPerStream(t *testing.T) {
	e := newEnv(t)
	name := consumerName("test-on-order-groups")
	const orders, each = 8, 10
	var mu sync.Mutex
	seen := map[string][]int{}
	calls := map[string]int{}
	c := e.subscribe(t, bus.Config{Name: name, Concurrency: 3, AckWait: 10 * time.Second},
		func(ctx context.Context, ev eventstore.RecordedEvent) error {
			mu.Lock()
			defer mu.Unlock()
			seen[ev.Stream] = append(seen[ev.Stream], int(ev.Revision))
			calls[ev.ID]++
			return nil
		})
	var wg sync.WaitGroup
	for o := range orders {
		wg.Go(func() {
			for r := range each {
				if _, err := e.store.Append(t.Context(), fmt.Sprintf("order-g%d", o), eventstore.Any,
					[]eventstore.EventData{{ID: fmt.Sprintf("g%d-%d", o, r), Type: evType}}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	st, err := e.js.Stream(t.Context(), esjs.StreamNameFor("order"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d events in %d messages", orders*each, info.State.Msgs)
	eventually(t, settled(t, c, info.State.LastSeq))
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != orders {
		t.Fatalf("saw %d streams, want %d", len(seen), orders)
	}
	for stream, revs := range seen {
		if len(revs) != each {
			t.Errorf("%s: handled %v, want %d events", stream, revs, each)
		}
		for i, r := range revs {
			if r != i {
				t.Fatalf("%s handled in order %v", stream, revs)
			}
		}
	}
	for id, n := range calls {
		if n != 1 {
			t.Errorf("%s handled %d times", id, n)
		}
	}
}

// appendCommand stores one command of several events (one append) on
// stream order-<orderID>.
func (e *env) appendCommand(t *testing.T, orderID string, evs ...eventstore.EventData) {
	t.Helper()
	if _, err := e.store.Append(t.Context(), "order-"+orderID, eventstore.Any, evs); err != nil {
		t.Fatalf("append %d events: %v", len(evs), err)
	}
}

// A command of several events of one stream; the handler fails on the
// second once. The third is not handed over before the second succeeded;
// the redelivery hands all three to the (idempotent) handler again, so
// every side effect happens once, and the message is acked only after the
// last one.
func TestMultiEventCommitIsRedeliveredWholeAfterPartialFailure(t *testing.T) {
	e := newEnv(t)
	name := consumerName("test-on-order-commit")
	f := newEffects()
	var mu sync.Mutex
	var order []string
	hold := make(chan struct{})
	e.appendCommand(t, "o1",
		eventstore.EventData{ID: "c1", Type: evType, Data: []byte("1")},
		eventstore.EventData{ID: "c2", Type: evType, Data: []byte("2")},
		eventstore.EventData{ID: "c3", Type: evType, Data: []byte("3")})
	c := e.subscribe(t, bus.Config{Name: name, MaxDeliver: 5, AckWait: 5 * time.Second,
		Backoff: []time.Duration{time.Millisecond}},
		func(ctx context.Context, ev eventstore.RecordedEvent) error {
			n := f.call(ev.ID)
			mu.Lock()
			order = append(order, ev.ID)
			mu.Unlock()
			switch {
			case ev.ID == "c2" && n == 1:
				return errors.New("transient failure")
			case ev.ID == "c3":
				<-hold // the message is still unacked while its last event runs
			}
			f.applyOnce(ev.ID)
			return nil
		})

	eventually(t, func() error {
		if calls, _ := f.get("c3"); calls != 1 {
			return fmt.Errorf("c3 called %d times", calls)
		}
		return nil
	})
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.AckFloor.Stream != 0 || info.NumAckPending != 1 {
		t.Errorf("message acked before its last event was handled: ack floor %d, ack pending %d", info.AckFloor.Stream, info.NumAckPending)
	}
	close(hold)
	eventually(t, settled(t, c, 1))

	for id, want := range map[string][2]int{"c1": {2, 1}, "c2": {2, 1}, "c3": {1, 1}} {
		if calls, n := f.get(id); calls != want[0] || n != want[1] {
			t.Errorf("%s: %d calls, applied %d; want %d calls, applied %d", id, calls, n, want[0], want[1])
		}
	}
	mu.Lock()
	if got := strings.Join(order, ","); got != "c1,c2,c1,c2,c3" {
		t.Errorf("handled in order %s, want c1,c2,c1,c2,c3", got)
	}
	mu.Unlock()
	for o, want := range map[string]int64{"ok": 4, "retry": 1} {
		if got := sum(t, "custody.bus.handled", consumerAttr(name), outcome(o)); got != want {
			t.Errorf("handled{%s} = %d, want %d", o, got, want)
		}
	}
	if got := sum(t, "custody.bus.redeliveries", consumerAttr(name)); got != 1 {
		t.Errorf("redeliveries = %d, want 1", got)
	}
}

// One message of several streams with a failing event. Its stream's later
// event waits for the redelivery; the other streams' events are handled at
// once and again on the redelivery (effects once: idempotent handler); the
// message is acked only after all succeeded. A message whose event keeps
// failing is parked after MaxDeliver, naming that event and its index.
func TestMultiStreamMessageWithAFailingEvent(t *testing.T) {
	e := newEnv(t)
	name := consumerName("test-on-order-multistream")
	f := newEffects()
	var mu sync.Mutex
	perStream := map[string][]string{}
	hold := make(chan struct{})
	cm := newCommits()
	first := e.publish(t, cm.ev("a", "a1", evType), cm.ev("b", "b1", evType), cm.ev("a", "a2", evType), cm.ev("c", "c1", evType))
	second := e.publish(t, cm.ev("x", "x1", evType), cm.ev("y", "y1", evType), cm.ev("z", "z1", evType))
	c := e.subscribe(t, bus.Config{Name: name, Concurrency: 3, MaxDeliver: 3, AckWait: 5 * time.Second,
		Backoff: []time.Duration{time.Millisecond}},
		func(ctx context.Context, ev eventstore.RecordedEvent) error {
			n := f.call(ev.ID)
			mu.Lock()
			perStream[ev.Stream] = append(perStream[ev.Stream], ev.ID)
			mu.Unlock()
			switch {
			case ev.ID == "a1" && n == 1:
				return errors.New("transient failure")
			case ev.ID == "z1":
				return errors.New("no such vendor")
			case ev.ID == "c1" && n == 2:
				<-hold // the redelivered message is still unacked while c1 runs
			}
			f.applyOnce(ev.ID)
			return nil
		})

	eventually(t, func() error {
		if calls, _ := f.get("c1"); calls != 2 {
			return fmt.Errorf("c1 called %d times", calls)
		}
		return nil
	})
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.AckFloor.Stream >= first {
		t.Errorf("message acked before all its events were handled: ack floor %d", info.AckFloor.Stream)
	}
	close(hold)
	var parked []bus.Parked
	eventually(t, func() (err error) {
		parked, err = bus.ListParked(t.Context(), e.js, name)
		if err == nil && len(parked) != 1 {
			err = fmt.Errorf("%d parked, want 1", len(parked))
		}
		return err
	})
	eventually(t, settled(t, c, second))

	for id, want := range map[string][2]int{
		"a1": {2, 1}, "a2": {1, 1}, "b1": {2, 1}, "c1": {2, 1},
		"x1": {3, 1}, "y1": {3, 1}, "z1": {3, 0},
	} {
		if calls, n := f.get(id); calls != want[0] || n != want[1] {
			t.Errorf("%s: %d calls, applied %d; want %d calls, applied %d", id, calls, n, want[0], want[1])
		}
	}
	mu.Lock()
	if got := strings.Join(perStream["order-a"], ","); got != "a1,a1,a2" {
		t.Errorf("order-a handled as %s, want a1,a1,a2", got)
	}
	mu.Unlock()

	p := parked[0]
	if p.OriginalSequence != second || p.OriginalSubject != partition || p.Cause != bus.CauseMaxDeliver || p.Deliveries != 3 ||
		p.EventID != "z1" || p.EventIndex != 2 || p.EventType != evType || !strings.Contains(p.Reason, "no such vendor") {
		t.Errorf("parked %+v; want message %d, event z1 at index 2", p, second)
	}
	if p.Header.Get(bus.HeaderDeadLetterEventIndex) != "2" || p.Header.Get(bus.HeaderDeadLetterEventID) != "z1" {
		t.Errorf("dead-letter headers %v", p.Header)
	}
	if p.Event == nil || p.Event.Stream != "order-z" || len(p.Events) != 3 || p.Events[0].Stream != "order-x" || p.Events[1].Stream != "order-y" {
		t.Errorf("parked events %+v (failed %+v)", p.Events, p.Event)
	}
	// ok: b1 and c1, then a1, a2, b1, c1; x1 and y1 on each of 3 deliveries.
	for o, want := range map[string]int64{"ok": 12, "retry": 3, "parked": 1} {
		if got := sum(t, "custody.bus.handled", consumerAttr(name), outcome(o)); got != want {
			t.Errorf("handled{%s} = %d, want %d", o, got, want)
		}
	}
	if got := sum(t, "custody.bus.redeliveries", consumerAttr(name)); got != 3 {
		t.Errorf("redeliveries = %d, want 3", got)
	}
	if got := sum(t, "custody.bus.parked", consumerAttr(name)); got != 1 {
		t.Errorf("parked = %d, want 1", got)
	}
}

// The event types filter applies per event of a commit, and a poison event
// parks its whole commit, saying which event failed; the events of its
// stream after it are not handed over.
func TestMultiEventCommitFilterAndParking(t *testing.T) {
	e := newEnv(t)
	name := consumerName("test-on-order-commitpark")
	f := newEffects()
	const wanted, other = "custody.test.v1.Wanted", "custody.test.v1.Other"
	e.appendCommand(t, "o1", // seq 1
		eventstore.EventData{ID: "m1", Type: other},
		eventstore.EventData{ID: "m2", Type: wanted},
		eventstore.EventData{ID: "m3", Type: other})
	e.appendCommand(t, "o2", // seq 2
		eventstore.EventData{ID: "p1", Type: wanted},
		eventstore.EventData{ID: "p2", Type: wanted, Data: []byte("poison")},
		eventstore.EventData{ID: "p3", Type: wanted})
	c := e.subscribe(t, bus.Config{Name: name, EventTypes: []string{wanted}, AckWait: 5 * time.Second,
		Backoff: []time.Duration{time.Millisecond}},
		func(ctx context.Context, ev eventstore.RecordedEvent) error {
			f.call(ev.ID)
			if string(ev.Data) == "poison" {
				return fault.Permanent(errors.New("cannot understand it"))
			}
			f.apply(ev.ID)
			return nil
		})
	eventually(t, settled(t, c, 2))

	for id, want := range map[string]int{"m1": 0, "m2": 1, "m3": 0, "p1": 1, "p2": 1, "p3": 0} {
		if calls, _ := f.get(id); calls != want {
			t.Errorf("%s: handler called %d times, want %d", id, calls, want)
		}
	}
	if got := sum(t, "custody.bus.handled", consumerAttr(name), outcome("skipped")); got != 2 {
		t.Errorf("handled{skipped} = %d, want 2", got)
	}
	parked, err := bus.ListParked(t.Context(), e.js, name)
	if err != nil || len(parked) != 1 {
		t.Fatalf("ListParked = %v, %v; want the poisoned commit", parked, err)
	}
	p := parked[0]
	if p.OriginalSequence != 2 || p.Cause != bus.CausePermanent || p.EventID != "p2" || p.EventIndex != 1 || p.EventType != wanted {
		t.Errorf("parked %+v; want seq 2, event p2 at index 1", p)
	}
	if p.Header.Get(bus.HeaderDeadLetterEventIndex) != "1" || p.Header.Get(bus.HeaderDeadLetterEventID) != "p2" {
		t.Errorf("dead-letter headers %v", p.Header)
	}
	if p.Event == nil || p.Event.ID != "p2" || len(p.Events) != 3 || p.Events[0].ID != "p1" || p.Events[2].ID != "p3" {
		t.Errorf("parked events %+v (failed %+v)", p.Events, p.Event)
	}
}

// Stop lets the running event finish and hands its message back at once,
// with the events not started: a new consumer of the same name takes it
// long before AckWait, and the idempotent handler applies each effect once.
func TestStopHandsBackUnfinishedMessages(t *testing.T) {
	e := newEnv(t)
	name := consumerName("test-on-order-stop")
	f := newEffects()
	release := make(chan struct{})
	var finished atomic.Bool
	cm := newCommits()
	seq := e.publish(t, cm.ev("a", "a1", evType), cm.ev("b", "b1", evType))
	cfg := bus.Config{Name: name, Concurrency: 1, AckWait: time.Minute, Backoff: []time.Duration{time.Minute}}
	c := e.subscribe(t, cfg, func(ctx context.Context, ev eventstore.RecordedEvent) error {
		if f.call(ev.ID) == 1 && ev.ID == "a1" {
			<-release
			defer finished.Store(true)
		}
		f.applyOnce(ev.ID)
		return nil
	})
	eventually(t, func() error {
		if calls, _ := f.get("a1"); calls != 1 {
			return errors.New("a1 not running yet")
		}
		return nil
	})
	stopped := make(chan struct{})
	go func() { c.Stop(); close(stopped) }()
	eventually(t, func() error {
		if !strings.Contains(e.logs.String(), "bus: stopping") {
			return errors.New("not stopping yet")
		}
		return nil
	})
	close(release)
	<-stopped
	if !finished.Load() {
		t.Error("Stop returned before the running handler finished")
	}
	if calls, _ := f.get("b1"); calls != 0 {
		t.Errorf("b1 handled %d times after Stop", calls)
	}

	c2 := e.subscribe(t, cfg, func(ctx context.Context, ev eventstore.RecordedEvent) error {
		f.call(ev.ID)
		f.applyOnce(ev.ID)
		return nil
	})
	eventually(t, applied(f, "b1"))
	eventually(t, settled(t, c2, seq))
	for id, want := range map[string]int{"a1": 2, "b1": 1} {
		if calls, n := f.get(id); calls != want || n != 1 {
			t.Errorf("%s: %d calls, applied %d; want %d calls, applied once", id, calls, n, want)
		}
	}
}
