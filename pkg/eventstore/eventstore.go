// Package eventstore is the port through which every Custody service keeps
// its events, with the semantics of EventStoreDB:
//
//   - Append writes a command's events to one stream atomically (all or none)
//     if the stream is at the expected revision (Any, NoStream or Exact);
//     otherwise it fails with a *WrongExpectedVersionError.
//   - Appending events whose ids are already stored at the stream's tail (a
//     retry after a lost acknowledgement) succeeds and writes nothing.
//   - Every event gets a per-stream Revision (0, 1, 2, …) and a store-wide
//     Position that orders all events of the store with no gaps a reader can
//     skip past.
//   - Nothing deletes or rewrites history. Each event carries a hash chained
//     to the previous event of its stream (see Hash and VerifyChain), so any
//     edit, drop or reordering is detected.
//
// A Store is scoped to one service (catalog, order, …); a stream name is
// "<aggregate>-<id>", e.g. "order-0f8c…". Backends live in sub-packages:
// jetstream (the default and production engine), esdb (EventStoreDB) and
// memory (domain tests only). The conformance sub-package holds the one test
// suite that every backend must pass.
package eventstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"
)

// Store is the event store port.
type Store interface {
	// Append appends events to stream atomically, checking expected first.
	Append(ctx context.Context, stream string, expected ExpectedRevision, events []EventData) (AppendResult, error)
	// ReadStream returns up to limit events of stream with revision >= from,
	// in revision order (limit <= 0 means all). A stream that does not exist
	// yields ErrStreamNotFound.
	ReadStream(ctx context.Context, stream string, from uint64, limit int) ([]RecordedEvent, error)
	// ReadAll returns up to limit events with Position >= from, in order.
	ReadAll(ctx context.Context, from uint64, limit int) ([]RecordedEvent, error)
	// SubscribeAll delivers every event with Position >= from, first those
	// already stored (catch-up) and then new ones as they are appended.
	SubscribeAll(ctx context.Context, from uint64) (Subscription, error)
	// Close releases the store's resources (not the server's).
	Close() error
}

// Subscription is a catch-up subscription over a store's global order.
type Subscription interface {
	// Next blocks until the next event, ctx is done or the subscription is
	// closed.
	Next(ctx context.Context) (RecordedEvent, error)
	Close() error
}

// ExpectedRevision is the optimistic-concurrency condition of an append.
type ExpectedRevision struct {
	kind     expectKind
	revision uint64
}

type expectKind uint8

const (
	expectAny expectKind = iota
	expectNoStream
	expectExact
)

var (
	// Any appends whatever the stream's current revision.
	Any = ExpectedRevision{kind: expectAny}
	// NoStream appends only if the stream has no events yet.
	NoStream = ExpectedRevision{kind: expectNoStream}
)

// Exact appends only if the stream's last event has revision r.
func Exact(r uint64) ExpectedRevision { return ExpectedRevision{kind: expectExact, revision: r} }

// IsAny, IsNoStream and Revision let backends inspect an ExpectedRevision.
func (e ExpectedRevision) IsAny() bool      { return e.kind == expectAny }
func (e ExpectedRevision) IsNoStream() bool { return e.kind == expectNoStream }

// Revision returns the exact revision expected, and whether there is one.
func (e ExpectedRevision) Revision() (uint64, bool) { return e.revision, e.kind == expectExact }

// Matches reports whether a stream whose state is (exists, last) satisfies e.
func (e ExpectedRevision) Matches(exists bool, last uint64) bool {
	switch e.kind {
	case expectNoStream:
		return !exists
	case expectExact:
		return exists && last == e.revision
	default:
		return true
	}
}

func (e ExpectedRevision) String() string {
	switch e.kind {
	case expectNoStream:
		return "no-stream"
	case expectExact:
		return fmt.Sprintf("%d", e.revision)
	default:
		return "any"
	}
}

// EventData is an event to append.
type EventData struct {
	// ID identifies the event; appending the same ID again is a no-op.
	// Callers derive it deterministically from the command that caused it.
	ID string
	// Type is the payload's proto full name, e.g. "custody.order.v1.OrderPlaced".
	Type string
	// Data is the encoded payload (proto wire format).
	Data     []byte
	Metadata Metadata
}

// Metadata is who did what, why, and under which trace.
type Metadata struct {
	CorrelationID string // the request or flow this event belongs to
	CausationID   string // the command or event that caused it
	Actor         string // who did it: "buyer:b1", "service:catalog", …
	TraceParent   string // W3C trace context; not part of the hash
	TraceState    string
	// RequestFingerprint is a hash of the request that caused the event
	// (its body without request_id, see pkg/apierr.Fingerprint): how the
	// command handler tells a retried request_id from one reused for a
	// different request (AIP-155). Empty for events not caused by a client
	// request and for events written before it existed.
	RequestFingerprint string
}

// RecordedEvent is an event as stored.
type RecordedEvent struct {
	EventData
	Stream     string
	Revision   uint64
	Position   uint64
	RecordedAt time.Time
	// PrevHash is the previous event's Hash (32 zero bytes for revision 0);
	// Hash = SHA-256(PrevHash || CanonicalBytes(event)).
	PrevHash []byte
	Hash     []byte
	// Shared, when set, is shared by the copies of the event handed to
	// several readers in turn (the read models of one feed): the first to
	// decode the payload keeps it there for the others (es.Decode). A
	// payload found there must not be changed.
	Shared *Shared
}

// Shared holds what readers of one event share; see RecordedEvent.Shared.
type Shared struct{ payload atomic.Value }

// Payload is what a reader kept (nil if none has).
func (s *Shared) Payload() any { return s.payload.Load() }

// Keep keeps a decoded payload for the readers after this one.
func (s *Shared) Keep(p any) { s.payload.Store(p) }

// AppendResult tells where an append landed.
type AppendResult struct {
	// LastRevision and LastPosition are those of the last appended event.
	LastRevision uint64
	LastPosition uint64
	// Duplicate is true when the events were already stored and nothing was
	// written.
	Duplicate bool
}

// Errors. Backends wrap them; callers test with errors.Is / errors.As.
var (
	ErrStreamNotFound = errors.New("eventstore: stream not found")
	ErrInvalidAppend  = errors.New("eventstore: invalid append")
	ErrClosed         = errors.New("eventstore: closed")
	ErrImmutable      = errors.New("eventstore: history is immutable")
	ErrWrongExpected  = errors.New("eventstore: wrong expected version")
	ErrUnavailable    = errors.New("eventstore: unavailable")
	ErrChainBroken    = errors.New("eventstore: hash chain broken")
	// ErrUnreadable: the store holds a record it cannot return (its own
	// checksum fails, say). Nothing may be folded past it as if it were not
	// there.
	ErrUnreadable = errors.New("eventstore: a stored record cannot be read")
	// ErrDamaged: the store was opened despite damage, for support to
	// inspect it, and takes no appends until it is repaired.
	ErrDamaged = errors.New("eventstore: the store is damaged and read-only")
)

// WrongExpectedVersionError reports an optimistic-concurrency conflict.
// errors.Is(err, ErrWrongExpected) holds.
type WrongExpectedVersionError struct {
	Stream   string
	Expected ExpectedRevision
	// Actual is the stream's last revision, if ActualExists.
	Actual       uint64
	ActualExists bool
}

func (e *WrongExpectedVersionError) Error() string {
	actual := "no stream"
	if e.ActualExists {
		actual = fmt.Sprintf("%d", e.Actual)
	}
	return fmt.Sprintf("eventstore: wrong expected version on %s: expected %s, actual %s", e.Stream, e.Expected, actual)
}

func (e *WrongExpectedVersionError) Is(target error) bool { return target == ErrWrongExpected }

// StreamName joins an aggregate type and id into a stream name.
func StreamName(aggregate, id string) string { return aggregate + "-" + id }

// SplitStream splits "<aggregate>-<id>" and validates both parts: the
// aggregate is lower-case [a-z0-9_], the id [A-Za-z0-9_-] (they become NATS
// subject tokens and EventStoreDB stream names).
func SplitStream(stream string) (aggregate, id string, err error) {
	if !ValidStream(stream) {
		return "", "", fmt.Errorf("%w: bad stream name %q (want <aggregate>-<id>)", ErrInvalidAppend, stream)
	}
	aggregate, id, _ = strings.Cut(stream, "-")
	return aggregate, id, nil
}

// ValidStream reports whether SplitStream accepts stream; for bytes too, so
// that a decoder can check a name it has not copied out of a message.
func ValidStream[S ~string | ~[]byte](stream S) bool {
	for i := 0; i < len(stream); i++ {
		if stream[i] == '-' {
			return validAggregate(stream[:i]) && validID(stream[i+1:])
		}
	}
	return false
}

// SplitStream runs for every event decoded, so validAggregate and validID
// check the parts of a stream name with byte loops rather than regexps
// (which cost 4% of the platform's CPU). Every allowed character is ASCII,
// so byte lengths are character lengths and any non-ASCII byte is
// rejected, as the regexps of FuzzSplitStreamMatchesPattern do.

// validAggregate reports whether s matches ^[a-z][a-z0-9_]{0,39}$: a
// lower-case letter, then up to 39 lower-case letters, digits or '_'.
func validAggregate[S ~string | ~[]byte](s S) bool {
	if len(s) == 0 || len(s) > 40 || !isLower(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLower(c) && !isDigit(c) && c != '_' {
			return false
		}
	}
	return true
}

// validID reports whether s matches ^[A-Za-z0-9_-]{1,128}$.
func validID[S ~string | ~[]byte](s S) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isLower(c) && !isUpper(c) && !isDigit(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func isLower(c byte) bool { return 'a' <= c && c <= 'z' }
func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// ValidateAppend checks what every backend checks before writing.
func ValidateAppend(stream string, events []EventData) error {
	if _, _, err := SplitStream(stream); err != nil {
		return err
	}
	if len(events) == 0 {
		return fmt.Errorf("%w: no events", ErrInvalidAppend)
	}
	seen := make(map[string]bool, len(events))
	for i, e := range events {
		switch {
		case e.ID == "" || len(e.ID) > 64:
			return fmt.Errorf("%w: event %d: id must be 1-64 bytes", ErrInvalidAppend, i)
		case e.Type == "":
			return fmt.Errorf("%w: event %d: type is required", ErrInvalidAppend, i)
		case seen[e.ID]:
			return fmt.Errorf("%w: event %d: id %s repeated in one append", ErrInvalidAppend, i, e.ID)
		}
		seen[e.ID] = true
	}
	return nil
}

// StoredAlready reports whether stored (a stream's events read from where a
// retried append's would stand) are that append's events, by id and in
// order, and if so the append's result: a Duplicate success. Backends use
// it to recognise a retry after a lost acknowledgement.
func StoredAlready(stored []RecordedEvent, events []EventData) (AppendResult, bool) {
	if len(stored) != len(events) || len(events) == 0 {
		return AppendResult{}, false
	}
	for i := range events {
		if stored[i].ID != events[i].ID {
			return AppendResult{}, false
		}
	}
	last := stored[len(stored)-1]
	return AppendResult{LastRevision: last.Revision, LastPosition: last.Position, Duplicate: true}, true
}

// ConflictPause waits a little before retry attempt n (0-based) after a
// concurrency conflict: a random pause up to 1, 2, 4 … 64 ms. On a
// replicated stream the write that beat us may be accepted by the leader
// before it is readable, so retrying at once only meets it again.
func ConflictPause(ctx context.Context, attempt int) error {
	ceiling := time.Millisecond << min(attempt, 6)
	t := time.NewTimer(rand.N(ceiling) + time.Millisecond/10)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
