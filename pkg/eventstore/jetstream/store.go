// Package jetstream is the production eventstore.Store: NATS JetStream, via
// the embedded server of `custody run` or an external (R3) cluster.
//
// One JetStream stream per service (CUSTODY_<SERVICE>) holds every event of
// that service on subjects custody.<service>.<aggregate>.<id>. The stream
// refuses deletes and purges.
//
// One message per command: an append of n events is ONE message whose body
// is a custody.eventstore.v1.Commit holding all n, so a command is stored all
// or none by construction (see docs/eventstore.md for the choice and
// docs/benchmarks.md for the measurements behind it). An event's global
// position is its message's stream sequence << 16 | its index in the commit
// (see Position): increasing, not dense.
//
// Appends use optimistic concurrency with Nats-Expected-Last-Subject-Sequence
// and Nats-Msg-Id = the first event's id. Because a single-replica stream
// checks the expected sequence before it de-duplicates, a retried append can
// come back as a conflict: on every conflict the store looks for its own
// event ids right after the expected revision before reporting one.
//
// The store indexes each stream's tail (revision, hash and id of its last
// event) and the messages holding its events (index.go: in memory, or in a
// kv store with only the hot streams in memory), so appending to a loaded
// aggregate needs no read; loads read by direct get, never by creating a
// consumer.
package jetstream

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/kv"
	"github.com/custody/custody/pkg/telemetry/outcomes"
)

// Config configures a Store.
type Config struct {
	// Service owns the stream: "catalog", "order", …
	Service string
	// Replicas of the JetStream stream: 1 for the embedded server, 3 on a
	// production cluster.
	Replicas int
	// Now is the clock that stamps RecordedAt; nil means the wall clock.
	Now func() time.Time
	// ReadOnly opens another service's stream for reading (projections of
	// its events) without creating or changing it; Append is refused.
	ReadOnly bool
	// Linger is how long an idle writer waits for more appends before it
	// writes a message (0: none): fewer fsyncs at a moderate rate, for that
	// much latency per write (docs/eventstore.md, "Group commit").
	Linger time.Duration
	// Gate, if set, can refuse writes for a while (the embedded server's
	// natsembed.DiskGuard keeps a reserve of disk).
	Gate Gate
	// AllowDamaged opens a damaged stream (see integrity.go) anyway, for
	// support to inspect: the store reads what it can and refuses appends
	// with eventstore.ErrDamaged. Without it, Open fails with a
	// *DamageError naming the damage.
	AllowDamaged bool
	// Index, if set, keeps the per-stream index (index.go) in this kv
	// store, a Space per partition, with only the hot streams' entries in
	// memory (IndexCache per partition): the heap then does not grow with
	// the number of streams. Nil keeps the whole index in memory, encoded.
	// The index is derived: its Spaces are emptied when the store first
	// uses them and written without fsync.
	Index *kv.DB
	// IndexCache is how many streams' entries each partition keeps
	// decoded in memory in front of Index (0: DefaultIndexCache).
	IndexCache int
}

// Gate refuses writes for a while: appends fail at once with
// eventstore.ErrUnavailable.
type Gate interface {
	// Err is nil while writes are allowed, and otherwise says why not.
	Err() error
	// Context ends when writes stop being allowed: a message waiting for
	// the server's acknowledgement is abandoned then.
	Context() context.Context
}

// Store is the JetStream event store of one service.
type Store struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  jetstream.Stream
	name    string
	service string
	cfg     Config

	mu         sync.Mutex
	partitions map[string]*partition // by subject; see partition.go
	// indexName is the name this store claimed in cfg.Index (index.go).
	indexName string
	// scannedAll: Open's scan read the whole stream (see newPartition).
	scannedAll bool

	// A writer's watermark (watermark.go), and the damage Open found and
	// was allowed to open with (integrity.go).
	wm     *watermark
	damage []eventstore.Damage

	appendDur metric.Float64Histogram
	batchSize metric.Int64Histogram
	conflicts metric.Int64Counter
	attrs     metric.MeasurementOption // service=…
	outcomes  *outcomes.Set            // service=…, outcome=…
}

var servicePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

// StreamConfig is the JetStream stream that holds a service's events.
func StreamConfig(service string, replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamNameFor(service),
		Description: "Custody events of the " + service + " service",
		Subjects:    []string{"custody." + service + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Replicas:    max(replicas, 1),
		Duplicates:  2 * time.Minute,
		DenyDelete:  true,
		DenyPurge:   true,
		// Direct gets may be answered by a follower that lags the leader;
		// a replicated stream reads through the leader so that a load after
		// a conflict sees the write that caused it.
		AllowDirect: replicas <= 1,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		MaxAge:      0,
	}
}

// StreamNameFor is the JetStream stream name of a service.
func StreamNameFor(service string) string { return "CUSTODY_" + strings.ToUpper(service) }

// Open creates or updates the service's stream and returns its store.
func Open(ctx context.Context, nc *nats.Conn, cfg Config) (*Store, error) {
	if !servicePattern.MatchString(cfg.Service) {
		return nil, fmt.Errorf("jetstream: bad service name %q", cfg.Service)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	var st jetstream.Stream
	if cfg.ReadOnly {
		st, err = js.Stream(ctx, StreamNameFor(cfg.Service))
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("jetstream: events of %s: %w", cfg.Service, ErrNotCreatedYet)
		}
	} else {
		st, err = js.CreateOrUpdateStream(ctx, StreamConfig(cfg.Service, cfg.Replicas))
	}
	if err != nil {
		return nil, fmt.Errorf("jetstream: open stream of %s: %w: %w", cfg.Service, eventstore.ErrUnavailable, err)
	}
	meter := otel.Meter("github.com/custody/custody/pkg/eventstore/jetstream")
	s := &Store{nc: nc, js: js, stream: st, name: StreamNameFor(cfg.Service), service: cfg.Service, cfg: cfg, partitions: map[string]*partition{}}
	s.appendDur, _ = meter.Float64Histogram("custody.eventstore.append.duration", metric.WithUnit("s"),
		metric.WithDescription("Time to durably append one command's events"))
	s.batchSize, _ = meter.Int64Histogram("custody.eventstore.append.batch_size",
		metric.WithDescription("Appends stored together in one message (group commit)"))
	s.conflicts, _ = meter.Int64Counter("custody.eventstore.append.conflicts",
		metric.WithDescription("Messages refused because another writer had written to the partition first"))
	s.attrs = metric.WithAttributeSet(attribute.NewSet(attribute.String("service", cfg.Service)))
	s.outcomes = outcomes.New(attribute.String("service", cfg.Service))
	if cfg.Index != nil {
		base := cfg.Service
		if cfg.ReadOnly {
			base += "/read"
		}
		s.indexName = claimIndexName(cfg.Index, base)
	}
	if cfg.ReadOnly {
		return s, nil
	}
	if err := s.account(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// account checks, before a writer serves, that every sequence of the
// stream is there and sound (integrity.go), with the damage earlier starts
// recorded, and raises the watermark to the stream's end.
func (s *Store) account(ctx context.Context) error {
	wm, err := openWatermark(ctx, s.js, s.service, s.cfg.Replicas, false)
	if err != nil {
		return err
	}
	found, last, err := s.check(ctx, wm)
	if err != nil {
		return err
	}
	damage := found
	recorded, when := wm.recorded()
	for _, d := range recorded {
		if !slices.Contains(found, d) {
			d.Reason += " (recorded by a start at " + when.Format(time.RFC3339) + ")"
			damage = append(damage, d)
		}
	}
	if err := wm.update(ctx, last, found); err != nil {
		return err
	}
	s.wm = wm
	if len(damage) == 0 {
		return nil
	}
	if !s.cfg.AllowDamaged {
		return &DamageError{Service: s.service, Damage: damage}
	}
	s.damage = damage
	return nil
}

var (
	_ eventstore.Store          = (*Store)(nil)
	_ eventstore.DamageReporter = (*Store)(nil)
)

// Service is the service whose events this store holds.
func (s *Store) Service() string { return s.service }

// LastPosition is the position of the newest event in the store (0 when
// empty): projections wait until they have caught up with it. It reads the
// last message to learn how many events it holds; a last message that is not
// a commit counts as one event at index 0.
func (s *Store) LastPosition(ctx context.Context) (uint64, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("jetstream: %w: %w", eventstore.ErrUnavailable, err)
	}
	last := info.State.LastSeq
	if s.damage != nil {
		// Opened damaged for inspection: the newest position its own read
		// models can reach is that of the last message it can read.
		for back := 0; last > 1 && back < scanBatch; back++ {
			if _, err := s.stream.GetMsg(ctx, last); !errors.Is(err, jetstream.ErrMsgNotFound) {
				break
			}
			last--
		}
	}
	return LastPosition(ctx, s.stream, last)
}

// LastPosition is the position of the last event of the message at sequence
// lastSeq of st (the stream's last sequence; 0 for an empty stream).
func LastPosition(ctx context.Context, st jetstream.Stream, lastSeq uint64) (uint64, error) {
	if lastSeq == 0 {
		return 0, nil
	}
	m, err := st.GetMsg(ctx, lastSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Position(lastSeq, 0), nil
	}
	if err != nil {
		return 0, fmt.Errorf("jetstream: read message %d: %w: %w", lastSeq, eventstore.ErrUnavailable, err)
	}
	evs, err := Decode(m.Subject, m.Sequence, m.Header, m.Data)
	if err != nil {
		return Position(lastSeq, 0), nil
	}
	return evs[len(evs)-1].Position, nil
}

// JetStream returns the underlying stream (tests use it to try deletes).
func (s *Store) JetStream() jetstream.Stream { return s.stream }

// Close implements eventstore.Store: it gives back the store's name in
// Config.Index. The connection and the kv store belong to the caller.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.indexName != "" {
		releaseIndexName(s.cfg.Index, s.indexName)
		s.indexName = ""
	}
	return nil
}

// ErrNotCreatedYet: a read-only store was opened before the owning service
// ever started, so its stream does not exist yet.
var ErrNotCreatedYet = errors.New("stream not created yet")

// Append implements eventstore.Store. The append joins its partition's
// queue (see partition.go); it returns once the message that carries it is
// durably stored, or it was refused.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if s.cfg.ReadOnly {
		return eventstore.AppendResult{}, fmt.Errorf("jetstream: %s events are read-only here: %w", s.service, eventstore.ErrInvalidAppend)
	}
	if s.damage != nil {
		return eventstore.AppendResult{}, fmt.Errorf("jetstream: %s events: %w (%d damaged records; see the start-up log)", s.service, eventstore.ErrDamaged, len(s.damage))
	}
	if err := s.gate(); err != nil {
		return eventstore.AppendResult{}, err
	}
	if err := eventstore.ValidateAppend(stream, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	if err := validateCommit(events); err != nil {
		return eventstore.AppendResult{}, err
	}
	if size := appendSize(events); size > s.maxBody() {
		// A message carries whole appends: one must fit the server's max_payload.
		return eventstore.AppendResult{}, fmt.Errorf("%w: %d events encode to about %d bytes, more than the %d bytes a message of the server may carry",
			eventstore.ErrInvalidAppend, len(events), size, s.maxBody())
	}
	p, err := s.partitionOf(stream)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	start := time.Now()
	res, err := s.enqueue(ctx, p, &pendingAppend{stream: stream, expected: expected, events: events, ctx: ctx})
	outcome := "ok"
	switch {
	case err != nil:
		outcome = "error"
	case res.Duplicate:
		outcome = "duplicate"
	}
	s.appendDur.Record(ctx, time.Since(start).Seconds(), s.outcomes.Of(outcome))
	return res, err
}

// gate is Config.Gate's verdict, as an append's error.
func (s *Store) gate() error {
	if s.cfg.Gate == nil {
		return nil
	}
	if err := s.cfg.Gate.Err(); err != nil {
		return fmt.Errorf("jetstream: %s events not written: %w: %w", s.service, eventstore.ErrUnavailable, err)
	}
	return nil
}

// ReadStream implements eventstore.Store: it catches the stream's partition
// up with the server (one direct get when nothing is new), then reads the
// messages that hold the stream's events from revision from on.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, limit int) ([]eventstore.RecordedEvent, error) {
	p, err := s.partitionOf(stream)
	if err != nil {
		return nil, err
	}
	if err := s.catchUp(ctx, p); err != nil {
		return nil, err
	}
	p.mu.Lock()
	si, ok, err := p.idx.lookup(stream)
	var refs []msgRef
	if ok {
		refs, err = p.idx.refsFrom(stream, si, from)
	}
	p.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("jetstream: read %s: %w: %w", stream, eventstore.ErrUnavailable, err)
	}
	if !ok {
		return nil, eventstore.ErrStreamNotFound
	}
	var out []eventstore.RecordedEvent
	for _, ref := range refs {
		if limit > 0 && len(out) >= limit {
			break
		}
		evs, err := s.readMsg(ctx, ref.seq)
		if err != nil {
			return nil, fmt.Errorf("jetstream: read %s: %w", stream, err)
		}
		next := ref.first
		for _, e := range evs {
			if e.Stream != stream {
				continue
			}
			if e.Revision != next {
				return nil, fmt.Errorf("jetstream: read %s: message %d: revision %d where %d was indexed: %w", stream, ref.seq, e.Revision, next, eventstore.ErrUnreadable)
			}
			next++
			if e.Revision >= from && (limit <= 0 || len(out) < limit) {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// readMsg reads and decodes the message at seq.
func (s *Store) readMsg(ctx context.Context, seq uint64) ([]eventstore.RecordedEvent, error) {
	m, err := s.stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("message %d: %w", seq, eventstore.ErrUnreadable)
	}
	if err != nil {
		return nil, fmt.Errorf("message %d: %w: %w", seq, eventstore.ErrUnavailable, err)
	}
	return Decode(m.Subject, m.Sequence, m.Header, m.Data)
}

// ReadAll implements eventstore.Store: messages from sequence from>>16 on,
// skipping the events of the first one that lie before from.
func (s *Store) ReadAll(ctx context.Context, from uint64, limit int) ([]eventstore.RecordedEvent, error) {
	var out []eventstore.RecordedEvent
	first, _ := SplitPosition(from)
	for seq := max(first, 1); limit <= 0 || len(out) < limit; seq++ {
		m, err := s.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			// The stream refuses deletes, so a missing sequence below the
			// last one is a record the server cannot read, not the end.
			if last, ierr := s.lastSeq(ctx); ierr == nil && seq < last {
				return out, fmt.Errorf("jetstream: read all: message %d of %d: %w", seq, last, eventstore.ErrUnreadable)
			}
			break
		}
		if err != nil {
			return nil, fmt.Errorf("jetstream: read all: %w: %w", eventstore.ErrUnavailable, err)
		}
		evs, err := Decode(m.Subject, m.Sequence, m.Header, m.Data)
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			if e.Position >= from && (limit <= 0 || len(out) < limit) {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

func (s *Store) lastSeq(ctx context.Context) (uint64, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// SubscribeAll implements eventstore.Store with an ordered consumer: it
// replays from the message at sequence from>>16 (skipping its events before
// from) and then follows the stream live, one event at a time.
func (s *Store) SubscribeAll(ctx context.Context, from uint64) (eventstore.Subscription, error) {
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if first, _ := SplitPosition(from); first > 1 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = first
	}
	cons, err := s.stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("jetstream: subscribe: %w: %w", eventstore.ErrUnavailable, err)
	}
	// Short pulls, as in pkg/bus: a JetStream restart is noticed in seconds.
	it, err := cons.Messages(jetstream.PullExpiry(5 * time.Second))
	if err != nil {
		return nil, fmt.Errorf("jetstream: subscribe: %w: %w", eventstore.ErrUnavailable, err)
	}
	first, _ := SplitPosition(from)
	sub := &subscription{it: it, from: from, next: max(first, 1), ch: make(chan result, 64), done: make(chan struct{})}
	go sub.pump()
	return sub, nil
}

type result struct {
	e   eventstore.RecordedEvent
	err error
}

type subscription struct {
	it   jetstream.MessagesContext
	from uint64
	// next is the sequence the next message must have: the stream refuses
	// deletes, so a jump is messages the server cannot return, which an
	// ordered consumer passes over without a word.
	next uint64
	ch   chan result
	done chan struct{}
	once sync.Once
}

func (sub *subscription) pump() {
	defer close(sub.ch)
	for {
		m, err := sub.it.Next()
		if err != nil {
			if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				sub.send(result{err: err})
			}
			return
		}
		var seq uint64
		if md, err := m.Metadata(); err == nil {
			seq = md.Sequence.Stream
			if seq > sub.next {
				gap := fmt.Errorf("jetstream: messages %d-%d cannot be read: %w", sub.next, seq-1, eventstore.ErrUnreadable)
				if !sub.send(result{e: eventstore.RecordedEvent{Position: Position(seq-1, 0)}, err: gap}) {
					return
				}
			}
			sub.next = seq + 1
		}
		evs, err := DecodeMsg(m)
		if err != nil {
			if !sub.send(result{e: eventstore.RecordedEvent{Position: Position(seq, 0)}, err: err}) {
				return
			}
			continue
		}
		for _, e := range evs {
			if e.Position < sub.from {
				continue
			}
			if !sub.send(result{e: e}) {
				return
			}
		}
	}
}

func (sub *subscription) send(r result) bool {
	select {
	case sub.ch <- r:
		return true
	case <-sub.done:
		return false
	}
}

func (sub *subscription) Next(ctx context.Context) (eventstore.RecordedEvent, error) {
	select {
	case r, ok := <-sub.ch:
		if !ok {
			return eventstore.RecordedEvent{}, eventstore.ErrClosed
		}
		return r.e, r.err
	case <-ctx.Done():
		return eventstore.RecordedEvent{}, ctx.Err()
	case <-sub.done:
		return eventstore.RecordedEvent{}, eventstore.ErrClosed
	}
}

func (sub *subscription) Close() error {
	sub.once.Do(func() {
		close(sub.done)
		sub.it.Stop()
	})
	return nil
}
