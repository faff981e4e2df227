package bus

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/custody/custody/pkg/eventstore"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/fault"
)

// A delivery is one message being handled: its events are queued in the
// lanes of their streams, and the message is settled (acked, nak'ed or
// parked) when the last of them is done.
type delivery struct {
	seq uint64 // the message's stream sequence
	evs []eventstore.RecordedEvent

	mu sync.Mutex // guards what follows
	// msg and md are the latest delivery of the message: a redelivery that
	// arrives while it is still being handled replaces them, so the ack
	// goes to the delivery the server waits for.
	msg       jetstream.Msg
	md        *jetstream.MsgMetadata
	refreshed time.Time // when the server's AckWait last restarted
	overdue   bool      // a handler outlived its deadline: no more in progress
	remaining int       // events not done yet
	failures  []failure
	failed    map[string]bool // order keys (streams) with a failed event: their later events wait for the redelivery
	abandoned bool            // events not started because the consumer stops
}

type failure struct {
	index int
	err   error
}

// item is event index i of delivery d, queued in a lane.
type item struct {
	d *delivery
	i int
}

// A lane is a FIFO queue of events and the worker that handles them one
// after the other. Every event of a stream goes to the same lane, in the
// order the messages were delivered and, within a message, in its order.
type lane struct {
	mu     sync.Mutex
	cond   *sync.Cond
	queue  []item
	closed bool
	cur    *delivery // whose event runs, since when
	since  time.Time
}

func (l *lane) push(it item) {
	l.mu.Lock()
	l.queue = append(l.queue, it)
	l.mu.Unlock()
	l.cond.Signal()
}

// next waits for the next item; false once the lane is closed and empty.
func (l *lane) next() (item, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cur = nil
	for len(l.queue) == 0 {
		if l.closed {
			return item{}, false
		}
		l.cond.Wait()
	}
	it := l.queue[0]
	l.queue[0] = item{}
	l.queue = l.queue[1:]
	l.cur, l.since = it.d, time.Now()
	return it, true
}

// running is the delivery whose event the lane is on, and since when.
func (l *lane) running() (*delivery, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur, l.since
}

func (l *lane) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.cond.Broadcast()
}

func (c *Consumer) startLanes(n int) {
	c.lanes = make([]*lane, n)
	for i := range c.lanes {
		l := &lane{}
		l.cond = sync.NewCond(&l.mu)
		c.lanes[i] = l
		c.workers.Go(func() {
			for {
				it, ok := l.next()
				if !ok {
					return
				}
				c.run(it)
			}
		})
	}
}

// orderKey is what orders e's handling: its stream, or Config.OrderBy's key.
func (c *Consumer) orderKey(e eventstore.RecordedEvent) string {
	if c.cfg.OrderBy != nil {
		return c.cfg.OrderBy(e)
	}
	return e.Stream
}

func (c *Consumer) laneOf(key string) *lane {
	h := fnv.New32a()
	h.Write([]byte(key))
	return c.lanes[h.Sum32()%uint32(len(c.lanes))]
}

// dispatch takes one delivered message (the consumer's callback: called for
// one message at a time, in delivery order). It decodes the message, skips
// the events the consumer does not want and queues the others in the lanes
// of their streams, waiting first while Prefetch messages are in flight.
func (c *Consumer) dispatch(msg jetstream.Msg) {
	ctx := c.base
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
	seq := md.Sequence.Stream
	c.mu.Lock()
	if d, ok := c.inflight[seq]; ok {
		// The server gave up waiting (a handler outlived AckWait) while the
		// message is still being handled here: its handling goes on, and
		// settles this delivery.
		d.mu.Lock()
		d.msg, d.md, d.refreshed = msg, md, time.Now()
		d.mu.Unlock()
		c.mu.Unlock()
		c.log.DebugContext(ctx, "bus: message redelivered while still being handled", "seq", seq, "delivery", md.NumDelivered)
		return
	}
	c.mu.Unlock()

	evs, err := esjs.DecodeSelected(msg.Subject(), seq, msg.Headers(), msg.Data(), c.wants)
	if err != nil {
		c.park(ctx, msg, md, nil, -1, CauseUndecodable, err)
		return
	}
	wanted := make([]int, 0, len(evs))
	for i := range evs {
		if evs[i].ID != "" { // "": a type the consumer does not want, not decoded
			wanted = append(wanted, i)
		}
	}
	if skipped := len(evs) - len(wanted); skipped > 0 {
		c.m.handled.Add(ctx, int64(skipped), c.m.outcomes.Of("skipped"))
	}
	if len(wanted) == 0 {
		c.ack(ctx, msg, func() *slog.Logger { return c.msgLog(msg, md, len(evs)) })
		return
	}
	if !c.acquire() {
		_ = msg.Nak()
		return
	}
	d := &delivery{seq: seq, evs: evs, msg: msg, md: md, refreshed: time.Now(), remaining: len(wanted)}
	c.mu.Lock()
	c.inflight[seq] = d
	c.mu.Unlock()
	if c.refreshNext > 0 {
		// It may have waited in the client's buffer while all slots were
		// taken: restart its AckWait now; the heartbeat keeps it going.
		c.refreshNext--
		if err := msg.InProgress(); err != nil {
			c.log.DebugContext(ctx, "bus: cannot extend the ack deadline", "seq", seq, "err", err)
		}
	}
	for _, i := range wanted {
		c.laneOf(c.orderKey(evs[i])).push(item{d, i})
	}
}

// acquire takes a slot for a message, waiting while Prefetch messages are in
// flight; false when the consumer stops meanwhile.
func (c *Consumer) acquire() bool {
	select {
	case c.slots <- struct{}{}:
	default:
		select {
		case c.slots <- struct{}{}:
			// Messages behind this one waited in the client's buffer, up to
			// Prefetch of them.
			c.refreshNext = c.cfg.Prefetch
		case <-c.quit:
			return false
		}
	}
	if c.stopped.Load() {
		<-c.slots
		return false
	}
	return true
}

func (c *Consumer) msgLog(msg jetstream.Msg, md *jetstream.MsgMetadata, events int) *slog.Logger {
	return c.log.With("subject", msg.Subject(), "seq", md.Sequence.Stream, "delivery", md.NumDelivered, "events", events)
}

// run handles one queued event on its lane's worker.
func (c *Consumer) run(it item) {
	d, i := it.d, it.i
	if c.stopped.Load() {
		c.finish(d, i, nil, true)
		return
	}
	d.mu.Lock()
	wait := d.failed[c.orderKey(d.evs[i])]
	msg, md := d.msg, d.md
	d.mu.Unlock()
	if wait {
		// An earlier event of its stream in this message failed: this one
		// comes again with the redelivery, after that one.
		c.finish(d, i, nil, false)
		return
	}
	c.finish(d, i, c.handle(d, i, msg.Subject(), md), false)
}

// finish records that event i of d is done (err: its handler failed;
// abandoned: not started because the consumer stops) and settles d after
// its last event.
func (c *Consumer) finish(d *delivery, i int, err error, abandoned bool) {
	d.mu.Lock()
	if err != nil {
		d.failures = append(d.failures, failure{i, err})
		if d.failed == nil {
			d.failed = map[string]bool{}
		}
		d.failed[c.orderKey(d.evs[i])] = true
	}
	if abandoned {
		d.abandoned = true
	}
	d.remaining--
	last := d.remaining == 0
	d.mu.Unlock()
	if last {
		c.settle(d)
	}
}

// settle ends a delivery whose events are all done, in exactly one of: ack
// (every event handled), nak with backoff (an event failed), park then term
// (an event failed for good, or on the last allowed delivery), or nak at
// once (the consumer stops with events not started). Then its slot is free.
func (c *Consumer) settle(d *delivery) {
	defer func() { <-c.slots }()
	c.mu.Lock()
	delete(c.inflight, d.seq)
	c.mu.Unlock()
	// A redelivery that found d in inflight has set msg before the delete.
	d.mu.Lock()
	msg, md, failures, abandoned := d.msg, d.md, d.failures, d.abandoned
	d.mu.Unlock()
	ctx := c.base
	log := func() *slog.Logger { return c.msgLog(msg, md, len(d.evs)) }
	if len(failures) > 0 {
		// The event reported is the first that failed for good, else the
		// first that failed.
		slices.SortFunc(failures, func(a, b failure) int { return a.index - b.index })
		f := failures[0]
		if j := slices.IndexFunc(failures, func(f failure) bool { return fault.IsPermanent(f.err) }); j >= 0 {
			f = failures[j]
		}
		switch {
		case fault.IsPermanent(f.err):
			c.park(ctx, msg, md, d.evs, f.index, CausePermanent, f.err)
		case md.NumDelivered >= uint64(c.cfg.MaxDeliver):
			c.park(ctx, msg, md, d.evs, f.index, CauseMaxDeliver, f.err)
		default:
			failed := log()
			for _, f := range failures {
				ev := d.evs[f.index]
				failed.WarnContext(ctx, "bus: handler failed; will retry", "event_id", ev.ID, "event_type", ev.Type,
					"stream", ev.Stream, "index", f.index, "err", f.err)
			}
			c.retry(ctx, msg, md, failed)
		}
		return
	}
	if abandoned {
		if err := msg.Nak(); err != nil {
			log().WarnContext(ctx, "bus: cannot hand back message; the server redelivers after AckWait", "err", err)
		}
		return
	}
	c.ack(ctx, msg, log)
}

// handle runs event i of d through the handler, in a consumer span whose
// parent is the producer's trace.
func (c *Consumer) handle(d *delivery, i int, subject string, md *jetstream.MsgMetadata) error {
	ev := d.evs[i]
	pctx := otel.GetTextMapPropagator().Extract(c.base, propagation.MapCarrier{
		"traceparent": ev.Metadata.TraceParent,
		"tracestate":  ev.Metadata.TraceState,
	})
	sctx, span := c.tracer.Start(pctx, c.cfg.Name+" process "+ev.Type, trace.WithSpanKind(trace.SpanKindConsumer))
	if span.IsRecording() { // the attributes cost when nothing records them
		span.SetAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", subject),
			attribute.String("messaging.consumer.group.name", c.cfg.Name),
			attribute.String("messaging.message.id", ev.ID),
			attribute.Int64("messaging.message.delivery_count", int64(md.NumDelivered)),
			attribute.String("custody.event.type", ev.Type),
			attribute.String("custody.event.stream", ev.Stream),
			attribute.Int("custody.event.index", i),
			attribute.Int("custody.commit.events", len(d.evs)),
		)
	}
	defer span.End()

	hctx, cancel := context.WithTimeout(sctx, c.cfg.AckWait)
	start := time.Now()
	herr := c.call(hctx, ev)
	cancel()
	result := "ok"
	if herr != nil {
		result = "error"
	}
	c.m.duration.Record(sctx, time.Since(start).Seconds(), c.m.outcomes.Of(result))
	if herr == nil {
		c.count(sctx, "ok")
		return nil
	}
	span.RecordError(herr)
	span.SetStatus(codes.Error, herr.Error())
	c.log.DebugContext(sctx, "bus: handler failed", "seq", d.seq, "event_id", ev.ID, "event_type", ev.Type,
		"stream", ev.Stream, "index", i, "err", herr)
	return herr
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

// heartbeat restarts the server's AckWait of the messages in flight (in
// progress) before it runs out, every AckWait/6 for those not refreshed in
// the last AckWait/3. A message whose handler outlived its deadline is left
// to run out, so the server can offer it again (to this or another
// instance): the deadline bounds a handler, the heartbeat only covers the
// time a message waits in its lanes.
func (c *Consumer) heartbeat() {
	t := time.NewTicker(max(c.cfg.AckWait/6, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-c.beatsDone:
			return
		case now := <-t.C:
			c.beat(now)
		}
	}
}

func (c *Consumer) beat(now time.Time) {
	for _, l := range c.lanes {
		d, since := l.running()
		if d == nil || now.Sub(since) <= c.cfg.AckWait {
			continue
		}
		d.mu.Lock()
		first := !d.overdue
		d.overdue = true
		d.mu.Unlock()
		if first {
			c.log.Warn("bus: a handler outlived its deadline (AckWait); the server will offer its message again",
				"seq", d.seq, "running", now.Sub(since).Round(time.Millisecond).String())
		}
	}
	c.mu.Lock()
	ds := make([]*delivery, 0, len(c.inflight))
	for _, d := range c.inflight {
		ds = append(ds, d)
	}
	c.mu.Unlock()
	for _, d := range ds {
		var msg jetstream.Msg
		d.mu.Lock()
		if !d.overdue && now.Sub(d.refreshed) >= c.cfg.AckWait/3 {
			d.refreshed, msg = now, d.msg
		}
		d.mu.Unlock()
		if msg != nil {
			if err := msg.InProgress(); err != nil {
				c.log.Debug("bus: cannot extend the ack deadline", "seq", d.seq, "err", err)
			}
		}
	}
}
