package es

import (
	"bytes"
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/telemetry/outcomes"
)

// Handler executes commands against one aggregate type.
type Handler[S any, C any] struct {
	d          Decider[S, C]
	store      eventstore.Store
	maxRetries int
	timeout    time.Duration
	log        *slog.Logger

	// The aggregates in memory: those in use (see acquire), and at most
	// cacheSize in all while some are idle.
	mu        sync.Mutex
	roots     map[string]*root[S, C]
	idle      list.List // of *root: the idle ones, most recently used first
	cacheSize int

	snaps         eventstore.Snapshots // nil: no snapshots
	snapshotEvery int
	personal      Sealer         // nil: events are stored as decided
	writing       sync.WaitGroup // snapshot writes under way

	tracer         trace.Tracer
	duration       metric.Float64Histogram
	batchSize      metric.Int64Histogram
	conflicts      metric.Int64Counter
	cached         metric.Int64UpDownCounter
	evictions      metric.Int64Counter
	snapshotsCount metric.Int64Counter
	attrs          metric.MeasurementOption // aggregate=…
	outcomes       *outcomes.Set            // aggregate=…, outcome=…
}

// Options tune a Handler.
type Options struct {
	// MaxRetries bounds reload-and-decide-again after a concurrency
	// conflict with another process. Default 8.
	MaxRetries int
	// AppendTimeout bounds one append; it is independent of any one
	// caller's context because an append carries several callers' commands.
	// Default 30s.
	AppendTimeout time.Duration
	// CacheSize bounds the aggregates kept in memory: past it the least
	// recently used idle ones are dropped, and loaded again (from the store,
	// or a snapshot) when next used. One that a command or load is using is
	// never dropped. Default DefaultCacheSize.
	CacheSize int
	// Snapshots, if set, keeps snapshots of the aggregates whose Decider
	// has a SnapshotCodec; loads start from the latest one.
	Snapshots eventstore.Snapshots
	// SnapshotEvery is how many events such an aggregate applies between
	// two snapshots. Default DefaultSnapshotEvery.
	SnapshotEvery int
	// Logger reports what fails off the command path (snapshots).
	// Default slog.Default().
	Logger *slog.Logger
	// Personal, if set, seals the personal fields of every decided event
	// before it is encoded (pkg/personal): the store, the hash chain and
	// the aggregate in memory hold tokens, never the values.
	Personal Sealer
}

// Sealer replaces the personal values of an event by tokens, returning
// the event unchanged (not a copy) when it has none to seal.
type Sealer interface {
	Seal(ctx context.Context, m proto.Message) (proto.Message, error)
}

// Defaults of Options.
const (
	DefaultCacheSize     = 10_000
	DefaultSnapshotEvery = 1_000
)

// NewHandler returns a handler for d's aggregates stored in store.
func NewHandler[S any, C any](d Decider[S, C], store eventstore.Store, opts Options) *Handler[S, C] {
	if opts.MaxRetries <= 0 {
		opts.MaxRetries = 8
	}
	if opts.AppendTimeout <= 0 {
		opts.AppendTimeout = 30 * time.Second
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.SnapshotEvery <= 0 {
		opts.SnapshotEvery = DefaultSnapshotEvery
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	meter := otel.Meter("github.com/custody/custody/pkg/es")
	h := &Handler[S, C]{d: d, store: store, maxRetries: opts.MaxRetries, timeout: opts.AppendTimeout,
		log: opts.Logger.With("aggregate", d.Aggregate), roots: map[string]*root[S, C]{}, cacheSize: opts.CacheSize,
		snaps: opts.Snapshots, snapshotEvery: opts.SnapshotEvery, personal: opts.Personal, tracer: otel.Tracer("github.com/custody/custody/pkg/es")}
	h.duration, _ = meter.Float64Histogram("custody.command.duration", metric.WithUnit("s"),
		metric.WithDescription("Time from a command's arrival to its durable outcome"))
	h.batchSize, _ = meter.Int64Histogram("custody.command.batch_size",
		metric.WithDescription("Commands decided into one append"))
	h.conflicts, _ = meter.Int64Counter("custody.command.conflicts",
		metric.WithDescription("Appends that met another process's write and were decided again"))
	h.cached, _ = meter.Int64UpDownCounter("custody.command.cached",
		metric.WithDescription("Aggregates held in memory"))
	h.evictions, _ = meter.Int64Counter("custody.command.evictions",
		metric.WithDescription("Aggregates dropped from memory, the least recently used first"))
	h.snapshotsCount, _ = meter.Int64Counter("custody.command.snapshots",
		metric.WithDescription("Snapshots by outcome: written, failed (to write), loaded (a load, or the next snapshot's writer, started from one), ignored (did not fit the stream)"))
	h.attrs = metric.WithAttributeSet(attribute.NewSet(attribute.String("aggregate", d.Aggregate)))
	h.outcomes = outcomes.New(attribute.String("aggregate", d.Aggregate))
	return h
}

// root is one aggregate's in-memory copy and its queue of waiting commands.
// Only the goroutine that set running touches the fields below mu's.
type root[S any, C any] struct {
	id string
	// users counts the calls using the root; elem is its place in
	// Handler.idle while there are none. Both are Handler.mu's.
	users int
	elem  *list.Element
	// writing: a snapshot of the aggregate is being written.
	writing atomic.Bool

	mu      sync.Mutex
	queue   []*pending[S, C]
	running bool

	loaded   bool
	exists   bool
	revision uint64
	state    S
	applied  map[string]string // command ids already applied → their request fingerprint ("" if none)
	since    int               // events applied since the snapshot loaded or last written (or the first)
}

type pending[S any, C any] struct {
	ctx  context.Context
	cmd  Command[C]
	read bool // a load, not a command
	done chan Result[S]
	err  error

	events  []eventstore.EventData
	decoded []proto.Message
}

// Handle executes cmd and returns once its events are durably stored (or
// it was refused, or found to be a duplicate).
func (h *Handler[S, C]) Handle(ctx context.Context, cmd Command[C]) (Result[S], error) {
	if cmd.ID == "" {
		return Result[S]{}, fmt.Errorf("%w: command id is required", ErrBadCommand)
	}
	if _, _, err := eventstore.SplitStream(h.d.Stream(cmd.AggregateID)); err != nil {
		return Result[S]{}, fmt.Errorf("%w: aggregate id %q: %w", ErrBadCommand, cmd.AggregateID, err)
	}
	start := time.Now()
	ctx, span := h.tracer.Start(ctx, h.d.Aggregate+" command")
	if span.IsRecording() {
		span.SetAttributes(attribute.String("custody.aggregate", h.d.Aggregate),
			attribute.String("custody.aggregate_id", cmd.AggregateID), attribute.String("custody.command_id", cmd.ID))
	}
	defer span.End()
	res, err := h.submit(ctx, &pending[S, C]{ctx: ctx, cmd: cmd})
	outcome := "ok"
	switch {
	case err != nil:
		outcome = "error"
		span.RecordError(err)
	case res.Duplicate:
		outcome = "duplicate"
	}
	h.duration.Record(ctx, time.Since(start).Seconds(), h.outcomes.Of(outcome))
	return res, err
}

// Stored reports whether aggregate id has events in the store, asking the
// store itself (never the cache): far cheaper than Lookup or Load where the
// answer is mostly no.
func (h *Handler[S, C]) Stored(ctx context.Context, id string) (bool, error) {
	_, err := h.store.ReadStream(ctx, h.d.Stream(id), 0, 1)
	switch {
	case errors.Is(err, eventstore.ErrStreamNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// Load returns the current state of aggregate id, caught up with the store.
// exists is false when the aggregate has no events.
func (h *Handler[S, C]) Load(ctx context.Context, id string) (state S, revision uint64, exists bool, err error) {
	if _, _, err := eventstore.SplitStream(h.d.Stream(id)); err != nil {
		return state, 0, false, fmt.Errorf("%w: aggregate id %q: %w", ErrBadCommand, id, err)
	}
	res, err := h.submit(ctx, &pending[S, C]{ctx: ctx, cmd: Command[C]{AggregateID: id}, read: true})
	if err != nil {
		return state, 0, false, err
	}
	return res.State, res.Revision, res.Exists, nil
}

// Peek returns aggregate id as this process holds it in memory, without
// reading the store: as this process's commands left it, perhaps behind
// what another process appended since. ok is false when it is not in
// memory, or a command is being decided on it right now.
func (h *Handler[S, C]) Peek(id string) (state S, revision uint64, ok bool) {
	r, found := h.cachedRoot(id)
	if !found {
		return state, 0, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// With running unset under r.mu no goroutine is changing the fields.
	if r.running || !r.loaded || !r.exists {
		return state, 0, false
	}
	return h.clone(r.state), r.revision, true
}

// Lookup answers a command that may be a repeat without deciding anything:
// it loads aggregate id like Load and, if the aggregate has applied command
// cmdID, returns it with Duplicate set — or a *ReusedError when cmdID was
// applied for a different request (fingerprints differ, see Meta). For a
// command not applied yet it returns the state with Duplicate unset. Use it
// where a repeat is answered before the command can be built (a create
// that has to be prepared first).
func (h *Handler[S, C]) Lookup(ctx context.Context, id, cmdID, fingerprint string) (Result[S], error) {
	if cmdID == "" {
		return Result[S]{}, fmt.Errorf("%w: command id is required", ErrBadCommand)
	}
	if _, _, err := eventstore.SplitStream(h.d.Stream(id)); err != nil {
		return Result[S]{}, fmt.Errorf("%w: aggregate id %q: %w", ErrBadCommand, id, err)
	}
	return h.submit(ctx, &pending[S, C]{ctx: ctx, read: true,
		cmd: Command[C]{AggregateID: id, ID: cmdID, Meta: Meta{RequestFingerprint: fingerprint}}})
}

// PeekCommand is Lookup from memory only, like Peek: ok is false when the
// aggregate is not in memory, a command is being decided on it, or it has
// not applied cmdID (as far as this process knows: ask Lookup then).
func (h *Handler[S, C]) PeekCommand(id, cmdID, fingerprint string) (state S, revision uint64, ok bool, err error) {
	r, found := h.cachedRoot(id)
	if !found {
		return state, 0, false, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running || !r.loaded || !r.exists {
		return state, 0, false, nil
	}
	applied, done := r.applied[cmdID]
	if !done {
		return state, 0, false, nil
	}
	if !sameRequest(applied, fingerprint) {
		return state, 0, false, &ReusedError{Stream: h.d.Stream(id), CommandID: cmdID, Applied: applied, Got: fingerprint}
	}
	return h.clone(r.state), r.revision, true, nil
}

// reused is the refusal of p, whose command id was applied with
// fingerprint applied, or nil when p repeats that request.
func (h *Handler[S, C]) reused(p *pending[S, C], applied string) error {
	if sameRequest(applied, p.cmd.Meta.RequestFingerprint) {
		return nil
	}
	return &ReusedError{Stream: h.d.Stream(p.cmd.AggregateID), CommandID: p.cmd.ID, Applied: applied, Got: p.cmd.Meta.RequestFingerprint}
}

func (h *Handler[S, C]) submit(ctx context.Context, p *pending[S, C]) (Result[S], error) {
	p.done = make(chan Result[S], 1)
	r := h.acquire(p.cmd.AggregateID)
	defer h.release(r)
	r.mu.Lock()
	r.queue = append(r.queue, p)
	lead := !r.running
	r.running = true
	r.mu.Unlock()
	if lead {
		h.drain(r)
	}
	select {
	case res := <-p.done:
		return res, p.err
	case <-ctx.Done():
		// The command may still be appended; a retry with the same id is
		// then a duplicate.
		return Result[S]{}, ctx.Err()
	}
}

// acquire returns aggregate id's root, a new one if it is not in memory,
// in use until release: a root in use is never dropped, so every call on
// an aggregate meets the same root (and queue) while any is under way.
func (h *Handler[S, C]) acquire(id string) *root[S, C] {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.roots[id]
	switch {
	case !ok:
		r = &root[S, C]{id: id}
		h.roots[id] = r
		h.cached.Add(context.Background(), 1, h.attrs)
	case r.elem != nil:
		h.idle.Remove(r.elem)
		r.elem = nil
	}
	r.users++
	return r
}

// release ends a use of r. Once r is idle it is the most recently used,
// and the least recently used idle roots are dropped while more than
// cacheSize are in memory.
func (h *Handler[S, C]) release(r *root[S, C]) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.users--; r.users > 0 {
		return
	}
	r.mu.Lock()
	absent := r.loaded && !r.exists
	r.mu.Unlock()
	if absent {
		// Nothing to keep of an aggregate that does not exist (a lookup of
		// an order never placed): caching it would evict one that does.
		delete(h.roots, r.id)
		h.cached.Add(context.Background(), -1, h.attrs)
		return
	}
	r.elem = h.idle.PushFront(r)
	for len(h.roots) > h.cacheSize && h.idle.Len() > 0 {
		old := h.idle.Remove(h.idle.Back()).(*root[S, C])
		old.elem = nil
		delete(h.roots, old.id)
		h.cached.Add(context.Background(), -1, h.attrs)
		h.evictions.Add(context.Background(), 1, h.attrs)
	}
}

// cachedRoot returns aggregate id's root if it is in memory (a use, for
// the cache's order). Its fields may be read under its mu while it is not
// running, even if it is dropped meanwhile: no one changes them then.
func (h *Handler[S, C]) cachedRoot(id string) (*root[S, C], bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.roots[id]
	if ok && r.elem != nil {
		h.idle.MoveToFront(r.elem)
	}
	return r, ok
}

// drain runs on the leader goroutine: it takes every waiting command,
// decides them together into one append, and repeats until the queue is
// empty.
func (h *Handler[S, C]) drain(r *root[S, C]) {
	for {
		r.mu.Lock()
		batch := r.queue
		r.queue = nil
		if len(batch) == 0 {
			r.running = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		h.process(r, batch)
		h.snapshotIfDue(r)
	}
}

func (h *Handler[S, C]) process(r *root[S, C], batch []*pending[S, C]) {
	live := batch[:0]
	for _, p := range batch {
		if err := p.ctx.Err(); err != nil {
			h.finish(p, Result[S]{}, err)
			continue
		}
		live = append(live, p)
	}
	if len(live) == 0 {
		return
	}
	h.batchSize.Record(context.Background(), int64(len(live)), h.attrs)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(live[0].ctx), h.timeout)
	defer cancel()
	id, stream := r.id, h.d.Stream(r.id)
	// The aggregate in memory is trusted for commands that append: the
	// store's expected-revision check catches a copy that another process
	// made stale, and the retry below reads what it wrote. A decision that
	// appends nothing (a refusal, a no-op) has no such check, so it stands
	// only if made on a copy caught up with the store; loads always read.
	caughtUp := false
	for _, p := range live {
		if p.read {
			caughtUp = true // read anyway, below
		}
	}
	read := !r.loaded || caughtUp
	if read && !caughtUp && h.absent(stream) {
		// A new aggregate: decide on its initial state without a read. An
		// append expects no stream, so another process's creation is
		// caught; a refusal or no-op reads below before it stands.
		r.state, r.revision, r.exists, r.applied, r.since, r.loaded = h.d.Initial(id), 0, false, map[string]string{}, 0, true
		read = false
	}
	for attempt := 0; ; attempt++ {
		if read {
			if _, err := h.catchUp(ctx, r, stream); err != nil {
				h.failAll(live, err)
				return
			}
			caughtUp, read = true, false
		}
		state := h.clone(r.state)
		var all []eventstore.EventData
		appliedNow := map[string]string{} // commands of this batch that append → fingerprint
		unchecked := false                // a command decided to append nothing on a copy not caught up
		for _, p := range live {
			p.err, p.events, p.decoded = nil, nil, nil
			if p.read {
				continue
			}
			// A command applied before is answered, never decided again: as a
			// duplicate if it repeats the request that applied it, else
			// refused. (What is remembered as applied is stored: no need to
			// catch up first.)
			if fp, ok := r.applied[p.cmd.ID]; ok {
				p.err = h.reused(p, fp)
				continue
			}
			if fp, ok := appliedNow[p.cmd.ID]; ok {
				p.err = h.reused(p, fp)
				continue
			}
			evs, err := h.d.Decide(state, p.cmd.Body)
			if err != nil || len(evs) == 0 {
				unchecked = unchecked || !caughtUp
			}
			if err != nil {
				p.err = err
				continue
			}
			for i, m := range evs {
				if h.personal != nil {
					if m, err = h.personal.Seal(p.ctx, m); err != nil {
						p.err = err
						break
					}
				}
				ed, err := Encode(m)
				if err != nil {
					p.err = err
					break
				}
				ed.ID = DeriveID(stream, p.cmd.ID, fmt.Sprint(i))
				ed.Metadata = eventstore.Metadata{CorrelationID: p.cmd.Meta.CorrelationID, CausationID: p.cmd.ID, Actor: p.cmd.Meta.Actor,
					RequestFingerprint: p.cmd.Meta.RequestFingerprint}
				carrier := propagation.MapCarrier{}
				otel.GetTextMapPropagator().Inject(p.ctx, carrier)
				ed.Metadata.TraceParent, ed.Metadata.TraceState = carrier["traceparent"], carrier["tracestate"]
				p.events = append(p.events, ed)
				p.decoded = append(p.decoded, m)
			}
			if p.err != nil {
				p.events, p.decoded = nil, nil
				continue
			}
			for _, m := range p.decoded {
				state = h.d.Evolve(state, m)
			}
			if len(evs) > 0 {
				appliedNow[p.cmd.ID] = p.cmd.Meta.RequestFingerprint
			}
			all = append(all, p.events...)
		}
		if unchecked {
			if h.d.Clone == nil {
				r.loaded = false // deciding may have changed the shared state in place
			}
			read = true
			continue // decide again on a copy caught up with the store
		}
		if len(all) == 0 {
			h.settle(r, live, nil, 0)
			return
		}
		expected := eventstore.NoStream
		if r.exists {
			expected = eventstore.Exact(r.revision)
		}
		res, err := h.store.Append(ctx, stream, expected, all)
		if err != nil && h.d.Clone == nil {
			r.loaded = false // deciding may have changed the shared state in place
		}
		if errors.Is(err, eventstore.ErrWrongExpected) && attempt < h.maxRetries {
			h.conflicts.Add(ctx, 1, h.attrs)
			if err := eventstore.ConflictPause(ctx, attempt); err != nil {
				h.failAll(live, err)
				return
			}
			read = true // catchUp reads what the other writer appended
			continue
		}
		if errors.Is(err, eventstore.ErrWrongExpected) {
			h.failAll(live, fmt.Errorf("%w: %s: %w", ErrConflict, stream, err))
			return
		}
		if err != nil {
			r.loaded = false // the append may or may not have landed
			h.failAll(live, err)
			return
		}
		first := res.LastRevision + 1 - uint64(len(all))
		if res.Duplicate && attempt < h.maxRetries && !h.ours(ctx, stream, first, all) {
			// The store held these event ids already, written by another
			// decision of the same commands (another process, its copy as
			// stale as ours) — perhaps for a different request. Decide again
			// on what is stored: the commands are then found applied.
			if h.d.Clone == nil {
				r.loaded = false
			}
			read = true
			continue
		}
		r.state, r.revision, r.exists = state, res.LastRevision, true
		r.since += len(all)
		for cmdID, fp := range appliedNow {
			r.applied[cmdID] = fp
		}
		h.settle(r, live, all, first)
		return
	}
}

// ours reports whether the events stored from revision first on are the
// ones this append carried (same ids, types, payloads and fingerprints):
// the store absorbed a retry of this very write, rather than holding
// another decision of the same commands.
func (h *Handler[S, C]) ours(ctx context.Context, stream string, first uint64, all []eventstore.EventData) bool {
	got, err := h.store.ReadStream(ctx, stream, first, len(all))
	if err != nil || len(got) != len(all) {
		return false
	}
	for i, e := range got {
		want := all[i]
		if e.ID != want.ID || e.Type != want.Type || !bytes.Equal(e.Data, want.Data) ||
			e.Metadata.RequestFingerprint != want.Metadata.RequestFingerprint {
			return false
		}
	}
	return true
}

// absent reports that the store knows stream does not exist (without a
// round trip, if it keeps an index: eventstore.Absence).
func (h *Handler[S, C]) absent(stream string) bool {
	a, ok := h.store.(eventstore.Absence)
	return ok && a.Absent(stream)
}

// catchUp loads the aggregate (from its latest snapshot, if it has one
// that fits), or reads what was appended since. It returns the hash of the
// last event it read or started from, if any.
func (h *Handler[S, C]) catchUp(ctx context.Context, r *root[S, C], stream string) (hash []byte, err error) {
	var recs []eventstore.RecordedEvent
	fromSnapshot := false
	if !r.loaded {
		r.state, r.revision, r.exists, r.applied, r.since = h.d.Initial(r.id), 0, false, map[string]string{}, 0
		recs, hash, fromSnapshot = h.fromSnapshot(ctx, r, stream)
	}
	if !fromSnapshot {
		from := uint64(0)
		if r.exists {
			from = r.revision + 1
		}
		recs, err = h.store.ReadStream(ctx, stream, from, 0)
		if err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
			r.loaded = false
			return nil, err
		}
	}
	for _, rec := range recs {
		e, err := Decode(rec)
		if err != nil {
			r.loaded = false
			return nil, err
		}
		r.state = h.d.Evolve(r.state, e.Payload)
		r.revision, r.exists, hash = rec.Revision, true, rec.Hash
		r.since++
		if fp, ok := r.applied[rec.Metadata.CausationID]; !ok || fp == "" {
			r.applied[rec.Metadata.CausationID] = rec.Metadata.RequestFingerprint
		}
	}
	r.loaded = true
	return hash, nil
}

// settle answers every caller of a successful (or empty) batch.
func (h *Handler[S, C]) settle(r *root[S, C], live []*pending[S, C], all []eventstore.EventData, first uint64) {
	rev := first
	state := h.clone(r.state) // one copy for the batch, not one per caller
	for _, p := range live {
		res := Result[S]{State: state, Revision: r.revision, Exists: r.exists}
		switch {
		case p.read:
			if fp, ok := r.applied[p.cmd.ID]; ok && p.cmd.ID != "" { // a Lookup
				p.err = h.reused(p, fp)
				res.Duplicate = p.err == nil
			}
		case p.err != nil:
		case len(p.events) == 0:
			_, res.Duplicate = r.applied[p.cmd.ID]
		default:
			for i, ed := range p.events {
				res.Events = append(res.Events, Event{RecordedEvent: eventstore.RecordedEvent{
					EventData: ed, Stream: h.d.Stream(p.cmd.AggregateID), Revision: rev}, Payload: p.decoded[i]})
				rev++
			}
		}
		h.finish(p, res, p.err)
	}
}

func (h *Handler[S, C]) failAll(live []*pending[S, C], err error) {
	for _, p := range live {
		h.finish(p, Result[S]{}, err)
	}
}

func (h *Handler[S, C]) finish(p *pending[S, C], res Result[S], err error) {
	p.err = err
	p.done <- res
}

func (h *Handler[S, C]) clone(s S) S {
	if h.d.Clone == nil {
		return s
	}
	return h.d.Clone(s)
}
