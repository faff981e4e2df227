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
// The store remembers the tail (revision, sequence, hash of the last event of
// the last message) of each stream it touched, so appending to a loaded
// aggregate needs no read; loads read by direct get, never by creating a
// consumer.
package jetstream

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/custody/custody/pkg/eventstore"
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
	// MaxConflictRetries bounds how often an append with expected revision
	// Any is retried when another writer got in first. Default 16.
	MaxConflictRetries int
}

// Store is the JetStream event store of one service.
type Store struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  jetstream.Stream
	name    string
	service string
	cfg     Config

	mu    sync.Mutex
	tails map[string]tail // last known point of each stream; always true history

	appendDur metric.Float64Histogram
	conflicts metric.Int64Counter
}

// tail is a point of a stream's history: the event at revision rev is the
// LAST event of the message at sequence seq (never one in the middle of a
// commit: the next append expects seq as the subject's last sequence and
// stamps rev+1). History never changes, so an old tail is still a valid
// starting point for reads, only maybe no longer the last one.
type tail struct {
	rev  uint64
	seq  uint64
	hash []byte
	id   string
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
	if cfg.MaxConflictRetries <= 0 {
		cfg.MaxConflictRetries = 16
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
	s := &Store{nc: nc, js: js, stream: st, name: StreamNameFor(cfg.Service), service: cfg.Service, cfg: cfg, tails: map[string]tail{}}
	s.appendDur, _ = meter.Float64Histogram("custody.eventstore.append.duration", metric.WithUnit("s"),
		metric.WithDescription("Time to durably append one command's events"))
	s.conflicts, _ = meter.Int64Counter("custody.eventstore.append.conflicts",
		metric.WithDescription("Appends that met a concurrent writer"))
	return s, nil
}

var _ eventstore.Store = (*Store)(nil)

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
	return LastPosition(ctx, s.stream, info.State.LastSeq)
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

// Close implements eventstore.Store. The connection belongs to the caller.
func (s *Store) Close() error { return nil }

// ErrNotCreatedYet: a read-only store was opened before the owning service
// ever started, so its stream does not exist yet.
var ErrNotCreatedYet = errors.New("stream not created yet")

// Append implements eventstore.Store.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if s.cfg.ReadOnly {
		return eventstore.AppendResult{}, fmt.Errorf("jetstream: %s events are read-only here: %w", s.service, eventstore.ErrInvalidAppend)
	}
	if err := eventstore.ValidateAppend(stream, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	if err := validateCommit(events); err != nil {
		return eventstore.AppendResult{}, err
	}
	subject, err := Subject(s.service, stream)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	start := time.Now()
	res, err := s.append(ctx, stream, subject, expected, events)
	outcome := "ok"
	switch {
	case err != nil:
		outcome = "error"
	case res.Duplicate:
		outcome = "duplicate"
	}
	s.appendDur.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(
		attribute.String("service", s.service), attribute.String("outcome", outcome)))
	return res, err
}

func (s *Store) append(ctx context.Context, stream, subject string, expected eventstore.ExpectedRevision, events []eventstore.EventData) (eventstore.AppendResult, error) {
	for attempt := 0; ; attempt++ {
		t, exists, cached, err := s.tail(ctx, stream, subject)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		if expected.IsAny() && exists && t.id == events[len(events)-1].ID && t.rev+1 >= uint64(len(events)) {
			if res, ok, err := s.alreadyStored(ctx, stream, subject, t.rev+1-uint64(len(events)), events); err != nil || ok {
				return res, err
			}
		}
		if !expected.Matches(exists, t.rev) {
			if cached {
				s.forget(stream)
				continue // the cache may be stale; look again before deciding
			}
			return s.conflict(ctx, stream, subject, expected, events, t, exists)
		}
		res, err := s.publish(ctx, stream, subject, events, t, exists)
		if err == nil {
			return res, nil
		}
		if !isConflict(err) {
			return eventstore.AppendResult{}, err
		}
		s.conflicts.Add(ctx, 1, metric.WithAttributes(attribute.String("service", s.service)))
		s.forget(stream)
		if expected.IsAny() && attempt < s.cfg.MaxConflictRetries {
			if err := eventstore.ConflictPause(ctx, attempt); err != nil {
				return eventstore.AppendResult{}, err
			}
			continue
		}
		t, exists, _, err = s.tail(ctx, stream, subject)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		return s.conflict(ctx, stream, subject, expected, events, t, exists)
	}
}

// conflict reports a wrong expected version, unless the events are already
// stored right after the expected revision (a retry of an append whose
// acknowledgement was lost), in which case the append is a success.
func (s *Store) conflict(ctx context.Context, stream, subject string, expected eventstore.ExpectedRevision, events []eventstore.EventData, t tail, exists bool) (eventstore.AppendResult, error) {
	var from uint64
	switch {
	case expected.IsNoStream():
		from = 0
	case expected.IsAny():
		if t.rev+1 < uint64(len(events)) {
			return eventstore.AppendResult{}, &eventstore.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: t.rev, ActualExists: exists}
		}
		from = t.rev + 1 - uint64(len(events))
	default:
		r, _ := expected.Revision()
		from = r + 1
	}
	if exists && from+uint64(len(events))-1 <= t.rev {
		if res, ok, err := s.alreadyStored(ctx, stream, subject, from, events); err != nil || ok {
			return res, err
		}
	}
	return eventstore.AppendResult{}, &eventstore.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: t.rev, ActualExists: exists}
}

func (s *Store) alreadyStored(ctx context.Context, stream, subject string, from uint64, events []eventstore.EventData) (eventstore.AppendResult, bool, error) {
	stored, err := s.readStream(ctx, stream, subject, from, len(events))
	if err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
		return eventstore.AppendResult{}, false, err
	}
	if len(stored) != len(events) {
		return eventstore.AppendResult{}, false, nil
	}
	for i := range events {
		if stored[i].ID != events[i].ID {
			return eventstore.AppendResult{}, false, nil
		}
	}
	last := stored[len(stored)-1]
	return eventstore.AppendResult{LastRevision: last.Revision, LastPosition: last.Position, Duplicate: true}, true, nil
}

// publish seals the events after t and writes them as ONE message (one
// commit) with the expected-sequence check.
func (s *Store) publish(ctx context.Context, stream, subject string, events []eventstore.EventData, t tail, exists bool) (eventstore.AppendResult, error) {
	now := s.cfg.Now().UTC()
	var rev, expectSeq uint64
	prev := eventstore.GenesisHash
	if exists {
		rev, expectSeq, prev = t.rev+1, t.seq, t.hash
	}
	sealed := make([]eventstore.RecordedEvent, len(events))
	for i, ed := range events {
		re := &sealed[i]
		*re = eventstore.RecordedEvent{EventData: ed, Stream: stream, Revision: rev + uint64(i), RecordedAt: now}
		eventstore.Seal(prev, re)
		prev = re.Hash
	}
	last := sealed[len(sealed)-1]
	msg, err := EncodeCommit(subject, sealed)
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("%w: %w", eventstore.ErrInvalidAppend, err)
	}
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(expectSeq, 10))

	ack, err := s.js.PublishMsg(ctx, msg)
	if err != nil {
		if isConflict(err) {
			return eventstore.AppendResult{}, err
		}
		if errors.Is(err, nats.ErrMaxPayload) {
			// One command is one message: it must fit the server's max_payload.
			return eventstore.AppendResult{}, fmt.Errorf("%w: %d events encode to %d bytes, more than the server's max payload of %d bytes",
				eventstore.ErrInvalidAppend, len(events), len(msg.Data), s.nc.MaxPayload())
		}
		return eventstore.AppendResult{}, fmt.Errorf("jetstream: append to %s: %w: %w", stream, eventstore.ErrUnavailable, err)
	}
	if ack.Duplicate {
		// De-duplicated by Nats-Msg-Id: an earlier attempt stored it.
		s.forget(stream)
		res, ok, err := s.alreadyStored(ctx, stream, subject, rev, events)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		if !ok {
			return eventstore.AppendResult{}, fmt.Errorf("%w: %s", eventstore.ErrIDAlreadyStored, events[0].ID)
		}
		return res, nil
	}
	s.remember(stream, tail{rev: last.Revision, seq: ack.Sequence, hash: last.Hash, id: last.ID})
	return eventstore.AppendResult{LastRevision: last.Revision, LastPosition: Position(ack.Sequence, len(events)-1)}, nil
}

// isConflict: the expected-sequence check failed (10071 on one replica,
// 10164 on replicated streams).
func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
		return true
	}
	return false
}

// tail returns the last known point of a stream, from the cache or the server.
func (s *Store) tail(ctx context.Context, stream, subject string) (t tail, exists, cached bool, err error) {
	s.mu.Lock()
	t, ok := s.tails[stream]
	s.mu.Unlock()
	if ok {
		return t, true, true, nil
	}
	m, err := s.stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return tail{}, false, false, nil
	}
	if err != nil {
		return tail{}, false, false, fmt.Errorf("jetstream: read tail of %s: %w: %w", stream, eventstore.ErrUnavailable, err)
	}
	evs, err := Decode(m.Subject, m.Sequence, m.Header, m.Data)
	if err != nil {
		return tail{}, false, false, err
	}
	t = tailOf(m.Sequence, evs)
	s.remember(stream, t)
	return t, true, false, nil
}

// tailOf is the tail after the message at seq holding evs.
func tailOf(seq uint64, evs []eventstore.RecordedEvent) tail {
	e := evs[len(evs)-1]
	return tail{rev: e.Revision, seq: seq, hash: e.Hash, id: e.ID}
}

const maxTails = 100_000

func (s *Store) remember(stream string, t tail) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.tails[stream]; ok && old.rev > t.rev {
		return
	}
	if len(s.tails) >= maxTails {
		clear(s.tails) // crude but bounded; tails are only a cache
	}
	s.tails[stream] = t
}

func (s *Store) forget(stream string) {
	s.mu.Lock()
	delete(s.tails, stream)
	s.mu.Unlock()
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, limit int) ([]eventstore.RecordedEvent, error) {
	subject, err := Subject(s.service, stream)
	if err != nil {
		return nil, err
	}
	return s.readStream(ctx, stream, subject, from, limit)
}

// readStream walks the subject with direct gets ("next message on this
// subject at or after sequence n"), one message (one commit) at a time,
// starting after the cached tail when that lies before from.
func (s *Store) readStream(ctx context.Context, stream, subject string, from uint64, limit int) ([]eventstore.RecordedEvent, error) {
	seq, next := uint64(1), uint64(0) // next: the revision the next message must start at
	s.mu.Lock()
	t, hinted := s.tails[stream]
	s.mu.Unlock()
	if hinted && t.rev < from {
		// Every event after the tail's message has a revision > t.rev.
		seq, next = t.seq+1, t.rev+1
	}
	var out []eventstore.RecordedEvent
	var lastRead tail
	read := false
	found := hinted && t.rev < from
	for limit <= 0 || len(out) < limit {
		m, err := s.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("jetstream: read %s: %w: %w", stream, eventstore.ErrUnavailable, err)
		}
		found = true
		evs, err := Decode(m.Subject, m.Sequence, m.Header, m.Data)
		if err != nil {
			return nil, err
		}
		if evs[0].Revision != next {
			// A message of this subject the server cannot return (the stream
			// refuses deletes): never fold past it as if it were not there.
			return nil, fmt.Errorf("jetstream: read %s: revision %d follows %d: %w", stream, evs[0].Revision, int64(next)-1, eventstore.ErrUnreadable)
		}
		next = evs[len(evs)-1].Revision + 1
		for _, e := range evs {
			if e.Revision >= from && (limit <= 0 || len(out) < limit) {
				out = append(out, e)
			}
		}
		// The tail is the whole message's last event, even when the limit
		// cut the message: a tail is always a message boundary.
		lastRead, read = tailOf(m.Sequence, evs), true
		seq = m.Sequence + 1
	}
	if !found {
		return nil, eventstore.ErrStreamNotFound
	}
	if read {
		s.remember(stream, lastRead)
	}
	return out, nil
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
	it, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("jetstream: subscribe: %w: %w", eventstore.ErrUnavailable, err)
	}
	sub := &subscription{it: it, from: from, ch: make(chan result, 64), done: make(chan struct{})}
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
		evs, err := DecodeMsg(m)
		if err != nil {
			if !sub.send(result{err: err}) {
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
