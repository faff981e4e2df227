package bus

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/custody/custody/pkg/eventstore"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/fault"
)

const instrumentation = "github.com/custody/custody/pkg/bus"

// ProcessedBucket is the KeyValue bucket that remembers which events each
// consumer has handled.
const ProcessedBucket = "custody_processed"

// Handler reacts to one event. Returning nil marks it handled (its message
// is acknowledged once all the message's events are); an error has it
// redelivered later, and its message parked after the last attempt. Wrap an
// error with fault.Permanent to park at once. Handlers must be idempotent (see the
// package documentation). ctx carries the consumer span and expires after
// Config.AckWait.
type Handler func(ctx context.Context, e eventstore.RecordedEvent) error

// Config describes a consumer.
type Config struct {
	// Name is the durable consumer name, "<service>-on-<source>" by
	// convention (e.g. "fulfilment-on-order"): [A-Za-z0-9_-], at most 64.
	// It also names the consumer's dead-letter subject and processed markers.
	Name string
	// SourceService owns the stream consumed: "order" reads CUSTODY_ORDER.
	SourceService string
	// FilterSubjects narrows the subjects consumed, e.g.
	// "custody.order.order.>"; empty means the whole stream.
	FilterSubjects []string
	// EventTypes, when not empty, lists the event types the handler wants;
	// other events are skipped without calling it (a message whose events
	// are all skipped is simply acked).
	EventTypes []string
	// MaxDeliver is how many deliveries a message (one commit of one or
	// more events) gets while one of its events fails before it is parked.
	// Default 5.
	MaxDeliver int
	// AckWait is how long the server waits for an ack before it redelivers,
	// and the handler's deadline for each event. The bus restarts the
	// server's clock (in progress) before each further event of a message.
	// It is also how long a message that was in flight when its consumer's
	// process died waits before another delivery, so it is kept short:
	// handlers append a few events. Default 10s.
	AckWait time.Duration
	// Backoff is the delay before redelivering after the n-th failed
	// delivery: Backoff[n-1], the last entry repeating. Default 1s, 2s, 5s, 10s.
	Backoff []time.Duration
	// Prefetch is how many messages the client buffers ahead of the handler.
	// Buffered messages age towards AckWait, so keep it small for slow
	// handlers. Default 32.
	Prefetch int
	// Concurrency is how many messages are handled at once (default 1).
	// Events of one aggregate (one subject) are always handled one after
	// the other, in stream order; only different aggregates overlap.
	Concurrency int
	// Replicas of the dead-letter stream and the processed bucket, if this
	// consumer creates them: 1 on the embedded server, 3 on a cluster.
	Replicas int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

var (
	namePattern    = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	servicePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)
)

func (c *Config) normalise() error {
	if !namePattern.MatchString(c.Name) {
		return fmt.Errorf("bus: bad consumer name %q (want [A-Za-z0-9_-], at most 64)", c.Name)
	}
	if !servicePattern.MatchString(c.SourceService) {
		return fmt.Errorf("bus: bad source service %q", c.SourceService)
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 5
	}
	if c.AckWait <= 0 {
		c.AckWait = 10 * time.Second
	}
	if len(c.Backoff) == 0 {
		c.Backoff = []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second}
	}
	if c.Prefetch <= 0 {
		c.Prefetch = 32
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Consumer is a running subscription; Stop it when done.
type Consumer struct {
	cfg     Config
	js      jetstream.JetStream
	cons    jetstream.Consumer
	kv      jetstream.KeyValue
	h       Handler
	log     *slog.Logger
	types   map[string]bool
	tracer  trace.Tracer
	m       instruments
	attrs   metric.MeasurementOption
	cc      jetstream.ConsumeContext
	lagReg  metric.Registration
	stopped atomic.Bool
	stop    sync.Once
	lanes   []chan jetstream.Msg
	workers sync.WaitGroup
}

// startLanes runs n workers. Events of one aggregate (one subject) always
// go to the same worker, so they are handled in stream order while events
// of different aggregates are handled side by side.
func (c *Consumer) startLanes(ctx context.Context, n int) func(jetstream.Msg) {
	c.lanes = make([]chan jetstream.Msg, n)
	for i := range c.lanes {
		lane := make(chan jetstream.Msg, c.cfg.Prefetch)
		c.lanes[i] = lane
		c.workers.Go(func() {
			for m := range lane {
				c.process(ctx, m)
			}
		})
	}
	return func(m jetstream.Msg) {
		h := fnv.New32a()
		h.Write([]byte(m.Subject()))
		c.lanes[h.Sum32()%uint32(n)] <- m
	}
}

type instruments struct {
	handled      metric.Int64Counter
	redeliveries metric.Int64Counter
	parked       metric.Int64Counter
	duration     metric.Float64Histogram
	lag          metric.Int64ObservableGauge
}

// Subscribe creates (or updates) the durable consumer cfg.Name on the source
// service's stream, the dead-letter stream and the processed bucket, and
// starts handing events to h. ctx bounds this setup only; the consumer runs
// until Stop. The source stream must exist (its service opens it).
func Subscribe(ctx context.Context, js jetstream.JetStream, cfg Config, h Handler) (*Consumer, error) {
	if h == nil {
		return nil, errors.New("bus: nil handler")
	}
	if err := cfg.normalise(); err != nil {
		return nil, err
	}
	if err := EnsureDeadLetterStream(ctx, js, cfg.Replicas); err != nil {
		return nil, err
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      ProcessedBucket,
		Description: "Events each bus consumer has handled",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: processed bucket: %w", err)
	}
	stream := esjs.StreamNameFor(cfg.SourceService)
	cons, err := js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable:        cfg.Name,
		Description:    "Custody bus consumer " + cfg.Name,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        cfg.AckWait,
		MaxDeliver:     -1, // bounded by the bus, which parks instead (see package doc)
		FilterSubjects: cfg.FilterSubjects,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: consumer %s on %s: %w", cfg.Name, stream, err)
	}

	c := &Consumer{
		cfg: cfg, js: js, cons: cons, kv: kv, h: h,
		log:    cfg.Logger.With("consumer", cfg.Name, "source", cfg.SourceService),
		tracer: otel.Tracer(instrumentation),
		attrs:  metric.WithAttributeSet(attribute.NewSet(attribute.String("consumer", cfg.Name))),
	}
	if len(cfg.EventTypes) > 0 {
		c.types = make(map[string]bool, len(cfg.EventTypes))
		for _, t := range cfg.EventTypes {
			c.types[t] = true
		}
	}
	if err := c.instrument(); err != nil {
		return nil, err
	}

	// Handlers get the setup context's values but neither its cancellation
	// nor its span: each event's span descends from its producer.
	base := trace.ContextWithSpanContext(context.WithoutCancel(ctx), trace.SpanContext{})
	deliver := func(m jetstream.Msg) { c.process(base, m) }
	if cfg.Concurrency > 1 {
		deliver = c.startLanes(base, cfg.Concurrency)
	}
	c.cc, err = cons.Consume(deliver,
		jetstream.PullMaxMessages(cfg.Prefetch),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			c.log.Warn("bus: consume", "err", err)
		}))
	if err != nil {
		if c.lagReg != nil {
			_ = c.lagReg.Unregister()
		}
		return nil, fmt.Errorf("bus: consume %s: %w", cfg.Name, err)
	}
	return c, nil
}

func (c *Consumer) instrument() error {
	meter := otel.Meter(instrumentation)
	var err error
	var errs []error
	c.m.handled, err = meter.Int64Counter("custody.bus.handled",
		metric.WithDescription("Events a bus consumer finished with, by outcome: ok, retry, parked, duplicate, skipped"))
	errs = append(errs, err)
	c.m.redeliveries, err = meter.Int64Counter("custody.bus.redeliveries",
		metric.WithDescription("Deliveries of an event that had been delivered before"))
	errs = append(errs, err)
	c.m.parked, err = meter.Int64Counter("custody.bus.parked",
		metric.WithDescription("Events parked on the dead-letter stream"))
	errs = append(errs, err)
	c.m.duration, err = meter.Float64Histogram("custody.bus.handler.duration", metric.WithUnit("s"),
		metric.WithDescription("Time a bus handler took"))
	errs = append(errs, err)
	c.m.lag, err = meter.Int64ObservableGauge("custody.bus.consumer.lag",
		metric.WithDescription("Events in the source stream not yet delivered to the consumer"))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bus: metrics: %w", err)
	}
	c.lagReg, err = meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		info, err := c.cons.Info(ctx)
		if err != nil {
			return nil // no observation rather than a wrong one
		}
		o.ObserveInt64(c.m.lag, int64(info.NumPending), c.attrs)
		return nil
	}, c.m.lag)
	if err != nil {
		return fmt.Errorf("bus: metrics: %w", err)
	}
	return nil
}

// Name is the durable consumer name.
func (c *Consumer) Name() string { return c.cfg.Name }

// Info returns the server's view of the consumer (position, pending acks).
func (c *Consumer) Info(ctx context.Context) (*jetstream.ConsumerInfo, error) {
	return c.cons.Info(ctx)
}

// Stop stops pulling, lets the event being handled finish, hands buffered
// events back to the server at once (so another instance can take them
// without waiting for AckWait) and returns when nothing runs any more. The
// durable consumer stays on the server; a later Subscribe resumes it.
func (c *Consumer) Stop() {
	c.stop.Do(func() {
		c.stopped.Store(true)
		c.cc.Drain()
		<-c.cc.Closed()
		for _, lane := range c.lanes {
			close(lane)
		}
		c.workers.Wait()
		if c.lagReg != nil {
			_ = c.lagReg.Unregister()
		}
	})
}

// process handles one delivery: one message, which is one commit of one or
// more events (see pkg/eventstore/jetstream). The events are handled in
// order, each skipped if its processed marker says it was handled before, so
// a redelivery after a partial success resumes where it stopped. Every path
// ends in exactly one of ack (all events handled or skipped), nak (with
// delay) or term after a confirmed park of the whole message.
func (c *Consumer) process(ctx context.Context, msg jetstream.Msg) {
	if c.stopped.Load() {
		_ = msg.Nak()
		return
	}
	md, err := msg.Metadata()
	if err != nil {
		// Without metadata there is no ack subject either: nothing to do
		// but let AckWait bring it back.
		c.log.Error("bus: delivery without JetStream metadata", "subject", msg.Subject(), "err", err)
		return
	}
	if md.NumDelivered > 1 {
		c.m.redeliveries.Add(ctx, 1, c.attrs)
	}
	evs, err := esjs.DecodeMsg(msg)
	if err != nil {
		c.park(ctx, msg, md, nil, -1, CauseUndecodable, err)
		return
	}
	mlog := c.log.With("stream", evs[0].Stream, "seq", md.Sequence.Stream, "delivery", md.NumDelivered, "events", len(evs))
	outcomes := make([]string, 0, len(evs))
	for i := range evs {
		if i > 0 {
			// The whole message shares one AckWait on the server: restart it
			// for each further event.
			if err := msg.InProgress(); err != nil {
				mlog.WarnContext(ctx, "bus: cannot extend the ack deadline", "err", err)
			}
		}
		outcome, done := c.handle(ctx, msg, md, evs, i, mlog)
		if !done {
			// Nak'ed or parked: the events handled so far are marked and are
			// skipped on the next delivery.
			c.count(ctx, outcomes...)
			return
		}
		outcomes = append(outcomes, outcome)
	}
	c.ack(ctx, msg, mlog)
	c.count(ctx, outcomes...)
}

// handle runs event i of a delivered commit through the filter, the
// processed marker and the handler. done reports that the message may go on
// to its next event (outcome ok, skipped or duplicate); otherwise handle has
// already nak'ed or parked the message.
func (c *Consumer) handle(ctx context.Context, msg jetstream.Msg, md *jetstream.MsgMetadata, evs []eventstore.RecordedEvent, i int, mlog *slog.Logger) (outcome string, done bool) {
	ev := evs[i]
	log := mlog.With("event_id", ev.ID, "event_type", ev.Type, "index", i)
	if c.types != nil && !c.types[ev.Type] {
		return "skipped", true
	}
	key := MarkerKey(c.cfg.Name, ev.ID)
	if _, err := c.kv.Get(ctx, key); err == nil {
		log.DebugContext(ctx, "bus: event already processed; skipping it")
		return "duplicate", true
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		// Not the event's fault: retry without spending an attempt on the handler.
		log.WarnContext(ctx, "bus: cannot read processed marker; will retry", "err", err)
		c.retry(ctx, msg, md, log)
		return "", false
	}

	pctx := otel.GetTextMapPropagator().Extract(ctx, propagation.MapCarrier{
		"traceparent": ev.Metadata.TraceParent,
		"tracestate":  ev.Metadata.TraceState,
	})
	sctx, span := c.tracer.Start(pctx, c.cfg.Name+" process "+ev.Type,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", msg.Subject()),
			attribute.String("messaging.consumer.group.name", c.cfg.Name),
			attribute.String("messaging.message.id", ev.ID),
			attribute.Int64("messaging.message.delivery_count", int64(md.NumDelivered)),
			attribute.String("custody.event.type", ev.Type),
			attribute.Int("custody.event.index", i),
			attribute.Int("custody.commit.events", len(evs)),
		))
	defer span.End()

	hctx, cancel := context.WithTimeout(sctx, c.cfg.AckWait)
	start := time.Now()
	herr := c.call(hctx, ev)
	cancel()
	result := "ok"
	if herr != nil {
		result = "error"
	}
	c.m.duration.Record(sctx, time.Since(start).Seconds(), metric.WithAttributes(
		attribute.String("consumer", c.cfg.Name), attribute.String("outcome", result)))

	if herr == nil {
		// Marker first, then (after the message's last event) ack: an ack
		// lost after this point is harmless.
		if _, err := c.kv.Create(sctx, key, []byte(strconv.FormatUint(md.Sequence.Stream, 10))); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			log.WarnContext(sctx, "bus: event handled but not marked processed; a redelivery will reach the (idempotent) handler again", "err", err)
		}
		return "ok", true
	}

	span.RecordError(herr)
	span.SetStatus(codes.Error, herr.Error())
	switch {
	case fault.IsPermanent(herr):
		c.park(sctx, msg, md, evs, i, CausePermanent, herr)
	case md.NumDelivered >= uint64(c.cfg.MaxDeliver):
		c.park(sctx, msg, md, evs, i, CauseMaxDeliver, herr)
	default:
		log.WarnContext(sctx, "bus: handler failed; will retry", "err", herr)
		c.retry(sctx, msg, md, log)
	}
	return "", false
}

// call runs the handler, turning a panic into an error so that one bad event
// follows the failure path instead of taking the process down.
func (c *Consumer) call(ctx context.Context, ev eventstore.RecordedEvent) (err error) {
	defer func() {
		if r := recover(); r != nil {
			c.log.ErrorContext(ctx, "bus: handler panicked", "event_id", ev.ID, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("bus: handler panicked: %v", r)
		}
	}()
	return c.h(ctx, ev)
}

func (c *Consumer) ack(ctx context.Context, msg jetstream.Msg, log *slog.Logger) {
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := msg.DoubleAck(actx); err != nil {
		// The markers (or the handler's own idempotency) absorb the redelivery.
		log.WarnContext(ctx, "bus: ack not confirmed", "err", err)
	}
}

// count adds one event to custody.bus.handled per outcome given.
func (c *Consumer) count(ctx context.Context, outcomes ...string) {
	for _, o := range outcomes {
		c.m.handled.Add(ctx, 1, metric.WithAttributes(
			attribute.String("consumer", c.cfg.Name), attribute.String("outcome", o)))
	}
}

func (c *Consumer) retry(ctx context.Context, msg jetstream.Msg, md *jetstream.MsgMetadata, log *slog.Logger) {
	if err := msg.NakWithDelay(c.backoff(md.NumDelivered)); err != nil {
		log.WarnContext(ctx, "bus: nak failed; the server redelivers after AckWait", "err", err)
	}
	c.count(ctx, "retry")
}

// backoff is the delay after the n-th failed delivery.
func (c *Consumer) backoff(n uint64) time.Duration {
	i := int(min(max(n, 1), uint64(len(c.cfg.Backoff)))) - 1
	return c.cfg.Backoff[i]
}

// MarkerKey is the processed-bucket key of an event for a consumer. Event ids
// made of [A-Za-z0-9_-] are used as they are; any other id is base64url
// encoded behind a "=", which no plain id contains, so keys never collide.
func MarkerKey(consumer, eventID string) string {
	if plainID.MatchString(eventID) {
		return consumer + "." + eventID
	}
	return consumer + ".=" + base64.RawURLEncoding.EncodeToString([]byte(eventID))
}

var plainID = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// headerValue makes s safe as a NATS header value: one line, bounded.
func headerValue(s string, limit int) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	if len(s) > limit {
		s = strings.ToValidUTF8(s[:limit], "") + "…"
	}
	return s
}
