package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/custody/custody/pkg/eventstore"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/telemetry/outcomes"
)

const instrumentation = "github.com/custody/custody/pkg/bus"

// Handler reacts to one event. Returning nil marks it handled (its message
// is acknowledged once all the message's events are); an error has the
// message redelivered later — with all its events — and parked after the
// last attempt. Wrap an error with fault.Permanent to park at once.
// Handlers must be idempotent (see the package documentation): the same
// event may be handed to them more than once. ctx carries the consumer span
// and expires after Config.AckWait.
type Handler func(ctx context.Context, e eventstore.RecordedEvent) error

// Config describes a consumer.
type Config struct {
	// Name is the durable consumer name, "<service>-on-<source>" by
	// convention (e.g. "fulfilment-on-order"): [A-Za-z0-9_-], at most 64.
	// It also names the consumer's dead-letter subject.
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
	// and the handler's deadline for each event. While a message waits in
	// its lanes or its events run within their deadline, the bus keeps
	// restarting the server's clock (in progress); a handler that outlives
	// its deadline lets it run out. It is also how long a message that was
	// in flight when its consumer's process died waits before another
	// delivery, so it is kept short: handlers append a few events.
	// Default 10s.
	AckWait time.Duration
	// Backoff is the delay before redelivering after the n-th failed
	// delivery: Backoff[n-1], the last entry repeating. Default 1s, 2s, 5s, 10s.
	Backoff []time.Duration
	// Prefetch bounds the messages in flight: the client pulls up to
	// Prefetch messages at a time, and at most Prefetch delivered messages
	// are being handled (their events queued in lanes or running) before
	// the next is taken. Default 32.
	Prefetch int
	// Concurrency is the number of lanes, i.e. how many events are handled
	// at once (default 1). Events of one stream (one aggregate) always go
	// to the same lane, in stream order; events of different streams, even
	// of one message, are handled side by side.
	Concurrency int
	// OrderBy, if set, is what must be handled in order instead of the
	// stream: events with the same key share a lane. For a handler that
	// acts on another aggregate than the source's (the order an event of a
	// hot product answers), keying by that aggregate lets the events of
	// one busy stream run side by side.
	OrderBy func(eventstore.RecordedEvent) string
	// Replicas of the dead-letter stream, if this consumer creates it: 1 on
	// the embedded server, 3 on a cluster.
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
	if c.Concurrency <= 0 {
		c.Concurrency = 1
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
	cfg    Config
	js     jetstream.JetStream
	cons   jetstream.Consumer
	h      Handler
	log    *slog.Logger
	wants  func(typ []byte) bool // the event types the handler wants; nil: all
	tracer trace.Tracer
	m      instruments
	attrs  metric.MeasurementOption
	cc     jetstream.ConsumeContext
	lagReg metric.Registration
	// redriveCons reads this consumer's redrive requests (redrive.go).
	redriveCons jetstream.Consumer
	redriveCC   jetstream.ConsumeContext
	base        context.Context

	lanes   []*lane
	workers sync.WaitGroup
	// slots holds a token per message in flight (at most Prefetch).
	slots chan struct{}
	// mu guards inflight: the messages being handled, by stream sequence.
	mu       sync.Mutex
	inflight map[uint64]*delivery
	// refreshNext: how many of the next messages the dispatcher takes get an
	// in-progress at once, because they may have aged in the client's buffer
	// while it waited for a slot. Only the dispatcher touches it.
	refreshNext int

	stopped   atomic.Bool
	quit      chan struct{} // closed by Stop: the dispatcher stops waiting for slots
	beatsDone chan struct{} // closed by Stop once the lanes are idle
	beats     sync.WaitGroup
	stop      sync.Once
}

type instruments struct {
	handled      metric.Int64Counter
	redeliveries metric.Int64Counter
	parked       metric.Int64Counter
	duration     metric.Float64Histogram
	lag          metric.Int64ObservableGauge
	outcomes     *outcomes.Set // consumer=<name>, outcome=…
}

// Subscribe creates (or updates) the durable consumer cfg.Name on the source
// service's stream and the dead-letter stream, and starts handing events to
// h. ctx bounds this setup only; the consumer runs until Stop. The source
// stream must exist (its service opens it).
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
		cfg: cfg, js: js, cons: cons, h: h,
		log:       cfg.Logger.With("consumer", cfg.Name, "source", cfg.SourceService),
		tracer:    otel.Tracer(instrumentation),
		attrs:     metric.WithAttributeSet(attribute.NewSet(attribute.String("consumer", cfg.Name))),
		slots:     make(chan struct{}, cfg.Prefetch),
		inflight:  map[uint64]*delivery{},
		quit:      make(chan struct{}),
		beatsDone: make(chan struct{}),
	}
	if len(cfg.EventTypes) > 0 {
		types := make(map[string]bool, len(cfg.EventTypes))
		for _, t := range cfg.EventTypes {
			types[t] = true
		}
		c.wants = func(typ []byte) bool { return types[string(typ)] }
	}
	if err := c.instrument(); err != nil {
		return nil, err
	}

	// Handlers get the setup context's values but neither its cancellation
	// nor its span: each event's span descends from its producer.
	c.base = trace.ContextWithSpanContext(context.WithoutCancel(ctx), trace.SpanContext{})
	c.startLanes(cfg.Concurrency)
	c.beats.Go(c.heartbeat)
	c.cc, err = cons.Consume(c.dispatch,
		jetstream.PullMaxMessages(cfg.Prefetch),
		// Pull requests that expire every few seconds, with heartbeats at
		// half that: a server that restarted JetStream (the disk guard
		// does after a full disk) loses pending pulls, and the client
		// notices the missing heartbeats within pullExpiry instead of 30s.
		jetstream.PullExpiry(pullExpiry),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			c.log.Warn("bus: consume", "err", err)
		}))
	if err != nil {
		c.stopLanes()
		if c.lagReg != nil {
			_ = c.lagReg.Unregister()
		}
		return nil, fmt.Errorf("bus: consume %s: %w", cfg.Name, err)
	}
	if err := c.subscribeRedrives(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// pullExpiry bounds how long a pull request waits at the server.
const pullExpiry = 5 * time.Second

func (c *Consumer) instrument() error {
	meter := otel.Meter(instrumentation)
	c.m.outcomes = outcomes.New(attribute.String("consumer", c.cfg.Name))
	var err error
	var errs []error
	c.m.handled, err = meter.Int64Counter("custody.bus.handled",
		metric.WithDescription("Events a bus consumer finished with, by outcome: ok and skipped per event; retry and parked per failed delivery"))
	errs = append(errs, err)
	c.m.redeliveries, err = meter.Int64Counter("custody.bus.redeliveries",
		metric.WithDescription("Deliveries of a message that had been delivered before"))
	errs = append(errs, err)
	c.m.parked, err = meter.Int64Counter("custody.bus.parked",
		metric.WithDescription("Messages parked on the dead-letter stream"))
	errs = append(errs, err)
	c.m.duration, err = meter.Float64Histogram("custody.bus.handler.duration", metric.WithUnit("s"),
		metric.WithDescription("Time a bus handler took"))
	errs = append(errs, err)
	c.m.lag, err = meter.Int64ObservableGauge("custody.bus.consumer.lag",
		metric.WithDescription("Messages in the source stream not yet delivered to the consumer"))
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

// Stop stops pulling, lets the events being handled finish, hands every
// other message back to the server at once (buffered ones and those with
// events still queued in a lane: nak'ed without delay, so another instance
// can take them without waiting for AckWait) and returns when nothing runs
// any more. The durable consumer stays on the server; a later Subscribe
// resumes it.
func (c *Consumer) Stop() {
	c.stop.Do(func() {
		c.stopped.Store(true)
		c.log.Debug("bus: stopping")
		close(c.quit)
		c.cc.Drain()
		if c.redriveCC != nil {
			c.redriveCC.Drain()
			<-c.redriveCC.Closed()
		}
		<-c.cc.Closed()
		c.stopLanes()
		if c.lagReg != nil {
			_ = c.lagReg.Unregister()
		}
	})
}

// stopLanes lets the lanes empty their queues (abandoning what has not
// started once stopped is set) and waits for them, then for the heartbeat.
func (c *Consumer) stopLanes() {
	for _, l := range c.lanes {
		l.close()
	}
	c.workers.Wait()
	close(c.beatsDone)
	c.beats.Wait()
}

// ack acknowledges msg. A plain ack, not a double one: an ack lost on the
// way only brings the message back, to idempotent handlers. log gives the
// logger for a failure: most acks log nothing, and the hot paths make a
// message's logger (slog's With formats its attributes at once) only then.
func (c *Consumer) ack(ctx context.Context, msg jetstream.Msg, log func() *slog.Logger) {
	if err := msg.Ack(); err != nil {
		log().WarnContext(ctx, "bus: ack failed; the server redelivers after AckWait", "err", err)
	}
}

// count adds one event to custody.bus.handled per outcome given.
func (c *Consumer) count(ctx context.Context, outcomes ...string) {
	for _, o := range outcomes {
		c.m.handled.Add(ctx, 1, c.m.outcomes.Of(o))
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
