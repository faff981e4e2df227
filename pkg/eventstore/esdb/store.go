// Package esdb is an eventstore.Store over EventStoreDB / KurrentDB, through
// the gRPC client github.com/EventStore/EventStore-Client-Go/v4.
//
// # Layout
//
// A Store is scoped to one service. The port's stream "<aggregate>-<id>" is
// the EventStoreDB stream "<service>-<aggregate>-<id>" (see StreamName), so
// one server can hold several services. The port's event ids are arbitrary
// strings, EventStoreDB's are UUIDs: each id is mapped to a name-based
// (SHA-1, version 5) UUID in a fixed name-space (see EventUUID), and the id
// itself is kept in the event's metadata. An event is stored with the
// payload as its data (content type binary), the proto full name as its
// event type, and a JSON metadata document carrying id, correlation,
// causation, actor, traceparent, tracestate, request_fingerprint (when
// set), recorded_at (unix nanoseconds), prev_hash and hash (hex). The hash chain is computed by the store before
// the append, exactly as the other backends do (eventstore.Seal), so a
// history read from EventStoreDB verifies with eventstore.VerifyChain.
//
// # Appends
//
// To seal an event the store must know the hash of the stream's last event:
// it remembers the tail (revision, position, hash, id) of every stream it
// touched and reads the stream's last event backwards when it does not know
// it. Every append is sent with the exact expected revision it was sealed
// against (NoStream or that revision, never Any), so no other writer can slip
// in between and break the chain; an append with the port's Any is retried on
// a conflict (MaxConflictRetries) after reloading the tail.
//
// EventStoreDB accepts the same event ids appended again after the same
// expected revision as a success that writes nothing, and says nothing about
// it. So every append is confirmed by reading back its last event: the
// metadata names the append call that wrote it, which tells a fresh write
// from a retry the server absorbed (reported as Duplicate), and the read
// gives the event's exact $all position. On a wrong-expected-version answer
// the store looks for its own ids right after the expected revision (as the
// jetstream backend does) before reporting a conflict. An append thus costs
// two round trips (append, confirm), three when the tail is not known.
//
// # Positions
//
// The port's Position is the event's commit position in EventStoreDB's
// transaction log ($all). Every event written by a plain append is committed
// by itself, so its commit position is unique, and positions increase
// strictly in $all order; but they are byte offsets, NOT consecutive
// numbers: the next event's position is larger by at least the size of the
// previous record. Readers must not compute "position + 1"; they follow
// $all, which has no gaps a reader can skip past. ReadAll and SubscribeAll
// start at an exact event position (or 0 or 1 for the beginning); "last
// position + 1" is accepted too. Events of legacy explicit transactions
// (written by old TCP clients, never by this store) share a commit position.
// ReadStream reports the positions the server gives with stream reads
// (KurrentDB's source gives them for every self-committed event); where a
// server gives none, they are 0 there, and only $all reads carry them.
//
// ReadAll and SubscribeAll read $all restricted to the prefix "<service>-"
// and skip EventStoreDB's system events (types starting with "$"). ReadAll
// filters on the client, because the Go client offers no server-side filter
// for reads; SubscribeAll filters on the server. Both need read access to
// $all (an admin user, or an $all ACL that grants it). An event under the
// prefix that this package did not write is reported as an error, not
// skipped.
//
// # Immutability
//
// EventStoreDB can delete (truncate) and tombstone streams. The store never
// does; preventing others from doing it is the server's job: give the
// service's user no delete ($d) and no metadata write ($mw) rights (for
// example through $userStreamAcl) and connect as that user.
//
// # Relay
//
// Relay forwards the service's events from $all to NATS JetStream subjects
// custody.<service>.<aggregate>.<id>, with the headers and Nats-Msg-Id the
// jetstream backend writes, so that the rest of the system (pkg/bus, the
// projections) runs unchanged on top of an EventStoreDB service.
package esdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody/custody/pkg/eventstore"
)

// Config configures a Store.
type Config struct {
	// URL is the EventStoreDB connection string, e.g.
	// "esdb://admin:changeit@localhost:2113?tls=false" or
	// "esdb+discover://…" for a cluster.
	URL string
	// Service owns the streams: "catalog", "order", …
	Service string
	// Now is the clock that stamps RecordedAt; nil means the wall clock.
	Now func() time.Time
	// MaxConflictRetries bounds how often an append with expected revision
	// Any is retried when another writer got in first. Default 16.
	MaxConflictRetries int
	// Logger receives the client library's own log lines (discovery,
	// reconnects, dropped streams) at Debug, and its warnings and errors at
	// Info: the store reports real failures through its results. Nil means
	// slog.Default().
	Logger *slog.Logger
}

// Store is the EventStoreDB event store of one service.
//
// Position is the event's commit position in EventStoreDB's $all:
// monotonically (strictly) increasing in the global order, but not
// contiguous — it is a byte offset in the transaction log, so positions jump
// by the size of each record. $all itself has no gaps a reader can skip
// past: reading or subscribing from a position yields every later event of
// the service in order.
type Store struct {
	client  *esdb.Client
	service string
	prefix  string // "<service>-"
	cfg     Config
	closed  atomic.Bool

	mu    sync.Mutex
	tails map[string]tail // port stream -> last known point; always true history
}

// tail is a point of a stream's history (its last event when remembered).
type tail struct {
	rev  uint64
	pos  uint64
	hash []byte
	id   string
}

var servicePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

// Open connects to EventStoreDB and returns the service's store. It checks
// that the server answers (a read of a stream that cannot exist), so a
// wrong address fails here, wrapped in eventstore.ErrUnavailable.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if !servicePattern.MatchString(cfg.Service) {
		return nil, fmt.Errorf("esdb: bad service name %q", cfg.Service)
	}
	if cfg.URL == "" {
		return nil, errors.New("esdb: no connection string")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxConflictRetries <= 0 {
		cfg.MaxConflictRetries = 16
	}
	conf, err := esdb.ParseConnectionString(cfg.URL)
	if err != nil {
		// The connection string may hold a password: do not echo it.
		return nil, fmt.Errorf("esdb: bad connection string: %w", err)
	}
	conf.Logger = clientLogger(cfg.Logger)
	client, err := esdb.NewClient(conf)
	if err != nil {
		return nil, fmt.Errorf("esdb: %w", err)
	}
	s := &Store{client: client, service: cfg.Service, prefix: cfg.Service + "-", cfg: cfg, tails: map[string]tail{}}
	if err := s.probe(ctx); err != nil {
		client.Close()
		return nil, err
	}
	return s, nil
}

var _ eventstore.Store = (*Store)(nil)

// Service is the service whose events this store holds.
func (s *Store) Service() string { return s.service }

// Client is the underlying EventStoreDB client (tests use it to try deletes).
func (s *Store) Client() *esdb.Client { return s.client }

// Close implements eventstore.Store: it closes the client connection.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.client.Close()
}

// clientLogger adapts the client library's logging to slog.
func clientLogger(l *slog.Logger) esdb.LoggingFunc {
	if l == nil {
		l = slog.Default()
	}
	l = l.With("component", "esdb-client")
	return func(level esdb.LogLevel, format string, args ...any) {
		lv := slog.LevelDebug
		if level == esdb.LogWarn || level == esdb.LogError {
			lv = slog.LevelInfo
		}
		if l.Enabled(context.Background(), lv) {
			l.Log(context.Background(), lv, fmt.Sprintf(format, args...))
		}
	}
}

func (s *Store) probe(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	// "<service>--probe" is not a valid port stream, so nobody writes it.
	rs, err := s.client.ReadStream(ctx, s.prefix+"-probe", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err == nil {
		defer rs.Close()
		_, err = rs.Recv()
	}
	if err == nil || errors.Is(err, io.EOF) || errorCode(err) == esdb.ErrorCodeResourceNotFound {
		return nil
	}
	return s.mapErr(ctx, "connect", err)
}

// Append implements eventstore.Store.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if err := eventstore.ValidateAppend(stream, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	if s.closed.Load() {
		return eventstore.AppendResult{}, eventstore.ErrClosed
	}
	name := s.prefix + stream
	last := events[len(events)-1].ID
	n := uint64(len(events))
	for attempt := 0; ; attempt++ {
		t, exists, cached, err := s.tail(ctx, stream, name)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		if expected.IsAny() && exists && t.id == last && t.rev+1 >= n {
			if res, ok, err := s.alreadyStored(ctx, stream, name, t.rev+1-n, events); err != nil || ok {
				return res, err
			}
		}
		if !expected.Matches(exists, t.rev) {
			if cached {
				s.forget(stream)
				continue // the cache may be stale; look again before deciding
			}
			return s.conflict(ctx, stream, name, expected, events, t, exists)
		}
		res, err := s.write(ctx, stream, name, events, t, exists)
		if err == nil {
			return res, nil
		}
		if !errors.Is(err, errConflict) {
			return eventstore.AppendResult{}, err
		}
		s.forget(stream)
		if expected.IsAny() && attempt < s.cfg.MaxConflictRetries {
			if err := jitter(ctx, attempt); err != nil {
				return eventstore.AppendResult{}, err
			}
			continue
		}
		t, exists, _, err = s.tail(ctx, stream, name)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		return s.conflict(ctx, stream, name, expected, events, t, exists)
	}
}

// errConflict is the server's wrong-expected-version answer to write, before
// the store has decided what it means.
var errConflict = errors.New("esdb: wrong expected version")

// jitter waits a little before an Any append is retried, so that writers
// colliding on one stream spread out.
func jitter(ctx context.Context, attempt int) error {
	d := time.Duration(mrand.Int64N(int64(time.Millisecond) * int64(min(attempt+1, 20))))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// write seals the events after t and appends them with the expected revision
// they were sealed against, then confirms the append by reading back its
// last event.
func (s *Store) write(ctx context.Context, stream, name string, events []eventstore.EventData, t tail, exists bool) (eventstore.AppendResult, error) {
	now := s.cfg.Now().UTC()
	var rev uint64
	prev := eventstore.GenesisHash
	var expect esdb.ExpectedRevision = esdb.NoStream{}
	if exists {
		rev, prev, expect = t.rev+1, t.hash, esdb.Revision(t.rev)
	}
	appendID := newAppendID()
	data := make([]esdb.EventData, len(events))
	var last eventstore.RecordedEvent
	for i, ed := range events {
		re := eventstore.RecordedEvent{EventData: ed, Stream: stream, Revision: rev + uint64(i), RecordedAt: now}
		eventstore.Seal(prev, &re)
		prev = re.Hash
		d, err := encodeEvent(&re, appendID)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		data[i] = d
		last = re
	}
	wr, err := s.client.AppendToStream(ctx, name, esdb.AppendToStreamOptions{ExpectedRevision: expect}, data...)
	if err != nil {
		if errorCode(err) == esdb.ErrorCodeWrongExpectedVersion {
			return eventstore.AppendResult{}, errConflict
		}
		return eventstore.AppendResult{}, s.mapErr(ctx, "append to "+stream, err)
	}
	stored, by, err := s.readAt(ctx, stream, name, last.Revision)
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("esdb: append to %s acknowledged but not confirmed (a retry is recognised): %w", stream, err)
	}
	if stored.ID != last.ID {
		return eventstore.AppendResult{}, fmt.Errorf("esdb: append to %s acknowledged, but revision %d holds event %s, not %s", stream, last.Revision, stored.ID, last.ID)
	}
	pos := stored.Position
	if pos == 0 {
		pos = wr.CommitPosition
	}
	if by != appendID {
		// The server found these ids right after the expected revision and
		// accepted the append without writing: an earlier attempt stored it.
		s.remember(stream, tail{rev: stored.Revision, pos: pos, hash: stored.Hash, id: stored.ID})
		return eventstore.AppendResult{LastRevision: stored.Revision, LastPosition: pos, Duplicate: true}, nil
	}
	s.remember(stream, tail{rev: last.Revision, pos: pos, hash: last.Hash, id: last.ID})
	return eventstore.AppendResult{LastRevision: last.Revision, LastPosition: pos}, nil
}

func newAppendID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// conflict reports a wrong expected version, unless the events are already
// stored right after the expected revision (a retry of an append whose
// acknowledgement was lost), in which case the append is a success.
func (s *Store) conflict(ctx context.Context, stream, name string, expected eventstore.ExpectedRevision, events []eventstore.EventData, t tail, exists bool) (eventstore.AppendResult, error) {
	wrong := &eventstore.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: t.rev, ActualExists: exists}
	n := uint64(len(events))
	var from uint64
	switch {
	case expected.IsNoStream():
		from = 0
	case expected.IsAny():
		if t.rev+1 < n {
			return eventstore.AppendResult{}, wrong
		}
		from = t.rev + 1 - n
	default:
		r, _ := expected.Revision()
		from = r + 1
	}
	if exists && from+n-1 <= t.rev {
		if res, ok, err := s.alreadyStored(ctx, stream, name, from, events); err != nil || ok {
			return res, err
		}
	}
	return eventstore.AppendResult{}, wrong
}

func (s *Store) alreadyStored(ctx context.Context, stream, name string, from uint64, events []eventstore.EventData) (eventstore.AppendResult, bool, error) {
	stored, err := s.readStream(ctx, stream, name, from, len(events))
	if err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
		return eventstore.AppendResult{}, false, err
	}
	res, ok := eventstore.StoredAlready(stored, events)
	return res, ok, nil
}

// tail returns the last known point of a stream, from the cache or by
// reading the stream's last event backwards.
func (s *Store) tail(ctx context.Context, stream, name string) (t tail, exists, cached bool, err error) {
	s.mu.Lock()
	t, ok := s.tails[stream]
	s.mu.Unlock()
	if ok {
		return t, true, true, nil
	}
	rs, err := s.client.ReadStream(ctx, name, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		return tail{}, false, false, s.mapErr(ctx, "read tail of "+stream, err)
	}
	defer rs.Close()
	ev, err := rs.Recv()
	if errors.Is(err, io.EOF) || errorCode(err) == esdb.ErrorCodeResourceNotFound {
		return tail{}, false, false, nil
	}
	if err != nil {
		return tail{}, false, false, s.mapErr(ctx, "read tail of "+stream, err)
	}
	if ev.Event == nil || isSystemEvent(ev.Event) {
		return tail{}, false, false, fmt.Errorf("esdb: the last event of %s is not a Custody event (stream deleted or written by something else?)", name)
	}
	e, _, err := decodeEvent(s.service, ev.Event)
	if err != nil {
		return tail{}, false, false, err
	}
	t = tail{rev: e.Revision, pos: e.Position, hash: e.Hash, id: e.ID}
	s.remember(stream, t)
	return t, true, false, nil
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

// readAt reads the event at revision rev, and the append call that wrote it.
func (s *Store) readAt(ctx context.Context, stream, name string, rev uint64) (eventstore.RecordedEvent, string, error) {
	rs, err := s.client.ReadStream(ctx, name, esdb.ReadStreamOptions{Direction: esdb.Forwards, From: esdb.Revision(rev)}, 1)
	if err != nil {
		return eventstore.RecordedEvent{}, "", s.mapErr(ctx, "read "+stream, err)
	}
	defer rs.Close()
	ev, err := rs.Recv()
	if errors.Is(err, io.EOF) {
		return eventstore.RecordedEvent{}, "", fmt.Errorf("esdb: %s has no revision %d", stream, rev)
	}
	if err != nil {
		return eventstore.RecordedEvent{}, "", s.mapErr(ctx, "read "+stream, err)
	}
	if ev.Event == nil || ev.Event.EventNumber != rev {
		return eventstore.RecordedEvent{}, "", fmt.Errorf("esdb: %s: reading revision %d gave something else", stream, rev)
	}
	return decodeEvent(s.service, ev.Event)
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, limit int) ([]eventstore.RecordedEvent, error) {
	name, err := StreamName(s.service, stream)
	if err != nil {
		return nil, err
	}
	return s.readStream(ctx, stream, name, from, limit)
}

func (s *Store) readStream(ctx context.Context, stream, name string, from uint64, limit int) ([]eventstore.RecordedEvent, error) {
	if s.closed.Load() {
		return nil, eventstore.ErrClosed
	}
	count := uint64(math.MaxInt64)
	if limit > 0 {
		count = uint64(limit)
	}
	rs, err := s.client.ReadStream(ctx, name, esdb.ReadStreamOptions{Direction: esdb.Forwards, From: esdb.Revision(from)}, count)
	if err != nil {
		return nil, s.mapErr(ctx, "read "+stream, err)
	}
	defer rs.Close()
	var out []eventstore.RecordedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, s.mapErr(ctx, "read "+stream, err)
		}
		if ev.Event == nil || isSystemEvent(ev.Event) {
			continue
		}
		e, _, err := decodeEvent(s.service, ev.Event)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if n := len(out); n > 0 {
		l := out[n-1]
		s.remember(stream, tail{rev: l.Revision, pos: l.Position, hash: l.Hash, id: l.ID})
	}
	return out, nil
}

// ReadAll implements eventstore.Store. It reads $all from the position and
// keeps the service's events (see the package documentation).
func (s *Store) ReadAll(ctx context.Context, from uint64, limit int) ([]eventstore.RecordedEvent, error) {
	if s.closed.Load() {
		return nil, eventstore.ErrClosed
	}
	rs, first, err := s.openAll(ctx, from)
	if err != nil {
		return nil, err
	}
	if rs == nil {
		return nil, nil
	}
	defer rs.Close()
	var out []eventstore.RecordedEvent
	for ev := first; limit <= 0 || len(out) < limit; {
		if e, ok, err := s.ours(ev); err != nil {
			return nil, err
		} else if ok && e.Position >= from {
			out = append(out, e)
		}
		if ev, err = rs.Recv(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, s.mapErr(ctx, "read all", err)
		}
	}
	return out, nil
}

// ours decodes an event of $all if it is one of the service's.
func (s *Store) ours(ev *esdb.ResolvedEvent) (eventstore.RecordedEvent, bool, error) {
	r := ev.Event
	if r == nil || isSystemEvent(r) {
		return eventstore.RecordedEvent{}, false, nil
	}
	if _, ok := PortStream(s.service, r.StreamID); !ok {
		return eventstore.RecordedEvent{}, false, nil
	}
	e, _, err := decodeEvent(s.service, r)
	if err != nil {
		return eventstore.RecordedEvent{}, false, err
	}
	return e, true, nil
}

// openAll opens a forward read of $all that yields every event at position
// from or later (and maybe a few before it: the caller filters), with its
// first event already received. It returns a nil stream when there is no
// such event.
//
// The server reads $all from an exact record position. from is tried as it
// is (0 and 1 mean the beginning); when the server rejects it as not a
// record position, from-1 is tried, which covers the "last position + 1"
// idiom of resuming readers.
func (s *Store) openAll(ctx context.Context, from uint64) (*esdb.ReadStream, *esdb.ResolvedEvent, error) {
	starts := []esdb.AllPosition{esdb.Start{}}
	if from > 1 {
		starts = []esdb.AllPosition{esdb.Position{Commit: from, Prepare: from}, esdb.Position{Commit: from - 1, Prepare: from - 1}}
	}
	var err error
	for _, start := range starts {
		var rs *esdb.ReadStream
		rs, err = s.client.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Forwards, From: start}, math.MaxInt64)
		if err != nil {
			if invalidPosition(err) {
				continue
			}
			return nil, nil, s.mapErr(ctx, "read all", err)
		}
		var first *esdb.ResolvedEvent
		first, err = rs.Recv()
		if errors.Is(err, io.EOF) {
			rs.Close()
			return nil, nil, nil
		}
		if err != nil {
			rs.Close()
			if invalidPosition(err) {
				continue
			}
			return nil, nil, s.mapErr(ctx, "read all", err)
		}
		return rs, first, nil
	}
	return nil, nil, fmt.Errorf("esdb: read all from %d: not an event position: %w", from, err)
}

// lastInAll is the last event of $all (any stream), or nil when $all is empty.
func (s *Store) lastInAll(ctx context.Context) (*esdb.RecordedEvent, error) {
	rs, err := s.client.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		return nil, s.mapErr(ctx, "read end of all", err)
	}
	defer rs.Close()
	ev, err := rs.Recv()
	if errors.Is(err, io.EOF) {
		return nil, nil
	}
	if err != nil {
		return nil, s.mapErr(ctx, "read end of all", err)
	}
	return ev.OriginalEvent(), nil
}

// errorCode is the client's error code of err (Unknown if it has none).
func errorCode(err error) esdb.ErrorCode {
	var e *esdb.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return esdb.ErrorCodeUnknown
}

// grpcCode is the gRPC status code inside err, if any.
func grpcCode(err error) codes.Code {
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return se.GRPCStatus().Code()
	}
	return codes.Unknown
}

func invalidPosition(err error) bool { return grpcCode(err) == codes.InvalidArgument }

// mapErr turns a client error into the port's errors: a missing or deleted
// stream is ErrStreamNotFound, a wrong expected version a
// *WrongExpectedVersionError (without the actual revision, which the server
// does not report in a structured way), and connection trouble, timeouts and
// a busy or leaderless server wrap ErrUnavailable. Access and
// authentication failures are neither: they need an operator.
func (s *Store) mapErr(ctx context.Context, op string, err error) error {
	if ctx != nil && ctx.Err() != nil {
		return fmt.Errorf("esdb: %s: %w", op, ctx.Err())
	}
	return mapError(op, err)
}

func mapError(op string, err error) error {
	switch errorCode(err) {
	case esdb.ErrorCodeResourceNotFound:
		return fmt.Errorf("%w (esdb: %s: %v)", eventstore.ErrStreamNotFound, op, err)
	case esdb.ErrorCodeStreamDeleted:
		return fmt.Errorf("%w: deleted behind the store's back (esdb: %s: %v)", eventstore.ErrStreamNotFound, op, err)
	case esdb.ErrorCodeWrongExpectedVersion:
		return fmt.Errorf("esdb: %s: %w", op, &eventstore.WrongExpectedVersionError{})
	case esdb.ErrorCodeAccessDenied, esdb.ErrorCodeUnauthenticated:
		return fmt.Errorf("esdb: %s: %w", op, err)
	case esdb.ErrorCodeUnsupportedFeature, esdb.ErrorCodeParsing, esdb.ErrorCodeInternalClient:
		return fmt.Errorf("esdb: %s: %w", op, err)
	}
	switch grpcCode(err) {
	case codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated, codes.Unimplemented, codes.FailedPrecondition:
		return fmt.Errorf("esdb: %s: %w", op, err)
	}
	return fmt.Errorf("esdb: %s: %w: %w", op, eventstore.ErrUnavailable, err)
}

// LastPosition is the position of the service's newest event (0 when it
// has none): projections wait until they have caught up with it. $all is
// read backwards from its end to the first of the service's events, so
// its cost grows with what other services wrote since.
func (s *Store) LastPosition(ctx context.Context) (uint64, error) {
	if s.closed.Load() {
		return 0, eventstore.ErrClosed
	}
	rs, err := s.client.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, math.MaxInt64)
	if err != nil {
		return 0, s.mapErr(ctx, "read end of all", err)
	}
	defer rs.Close()
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return 0, nil
		}
		if err != nil {
			return 0, s.mapErr(ctx, "read end of all", err)
		}
		r := ev.Event
		if r == nil || isSystemEvent(r) {
			continue
		}
		if _, ok := PortStream(s.service, r.StreamID); ok {
			return commitPosition(r.Position), nil
		}
	}
}
