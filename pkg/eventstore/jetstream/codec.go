package jetstream

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/eventstore"
	eventstorev1 "github.com/custody/custody/proto/custody/eventstore/v1"
)

// Every JetStream message of a service's stream is a commit of one or more
// appends (group commit: the appends of many aggregates that waited for the
// same write), its body a custody.eventstore.v1.Commit
// (proto/custody/eventstore/v1/commit.proto). The body is authoritative; the
// headers below repeat what tools that do not decode bodies want to see (the
// NATS CLI, the dead-letter listing), all taken from the FIRST event of the
// commit. traceparent/tracestate are lower-case, as W3C wants them.
const (
	// HeaderType is the first event's type.
	HeaderType = "Custody-Type"
	// HeaderTypes lists every event's type in order, comma-separated (only on
	// commits of more than one event, all of one stream).
	HeaderTypes = "Custody-Types"
	// HeaderRevision is the first event's revision, decimal.
	HeaderRevision = "Custody-Revision"
	// HeaderCount is the number of events in the commit, decimal.
	HeaderCount = "Custody-Count"
	// HeaderTraceParent and HeaderTraceState: the first event's trace context.
	HeaderTraceParent = "traceparent"
	HeaderTraceState  = "tracestate"
)

// Positions. An event's global Position is the stream sequence of its
// message shifted left by PositionIndexBits, plus the event's index in the
// commit: positions increase monotonically in the stream's order, but they
// are not dense (the first event of the store is at 1<<16, not 1).
const (
	PositionIndexBits = 16
	// MaxCommitEvents is the most events one append (one message) may hold.
	MaxCommitEvents = 1<<PositionIndexBits - 1
)

// Position is the global position of event index of the message at stream
// sequence seq.
func Position(seq uint64, index int) uint64 { return seq<<PositionIndexBits | uint64(index) }

// SplitPosition is the inverse of Position: the message's stream sequence and
// the event's index in it.
func SplitPosition(pos uint64) (seq uint64, index int) {
	return pos >> PositionIndexBits, int(pos & MaxCommitEvents)
}

// Subject is the subject of one stream's own messages,
// custody.<service>.<aggregate>.<id>: the esdb relay publishes there. The
// store itself writes to its partitions' subjects (PartitionSubject).
func Subject(service, stream string) (string, error) {
	agg, id, err := eventstore.SplitStream(stream)
	if err != nil {
		return "", err
	}
	return "custody." + service + "." + agg + "." + id, nil
}

// AggregateSubjects is the filter that selects every message of one
// aggregate type of a service, whichever backend wrote it: a consumer that
// reacts to orders only asks the server for custody.order.order.>.
func AggregateSubjects(service, aggregate string) string {
	return "custody." + service + "." + aggregate + ".>"
}

// StreamFromSubject is the stream a message of the esdb relay belongs to
// (the inverse of Subject). A message of the store names each event's
// stream in its body.
func StreamFromSubject(subject string) (service, stream string, err error) {
	parts := strings.Split(subject, ".")
	if len(parts) != 4 || parts[0] != "custody" {
		return "", "", fmt.Errorf("jetstream: %q is not an event subject", subject)
	}
	return parts[1], eventstore.StreamName(parts[2], parts[3]), nil
}

// validateCommit checks what this backend needs beyond
// eventstore.ValidateAppend: at most MaxCommitEvents events (the index must
// fit in a position), and valid UTF-8 in every string of the envelope (proto
// strings must be, and a replaced character would no longer match the hash).
func validateCommit(events []eventstore.EventData) error {
	if len(events) > MaxCommitEvents {
		return fmt.Errorf("%w: %d events in one append; at most %d", eventstore.ErrInvalidAppend, len(events), MaxCommitEvents)
	}
	for i, e := range events {
		for _, f := range []struct{ name, v string }{
			{"id", e.ID}, {"type", e.Type}, {"correlation id", e.Metadata.CorrelationID},
			{"causation id", e.Metadata.CausationID}, {"actor", e.Metadata.Actor},
			{"traceparent", e.Metadata.TraceParent}, {"tracestate", e.Metadata.TraceState},
			{"request fingerprint", e.Metadata.RequestFingerprint},
		} {
			if !utf8.ValidString(f.v) {
				return fmt.Errorf("%w: event %d: %s is not valid UTF-8", eventstore.ErrInvalidAppend, i, f.name)
			}
		}
	}
	return nil
}

// EncodeCommit builds the message that stores events (sealed; of one or more
// streams, each stream's in revision order with consecutive revisions) as
// one commit on subject. The esdb relay publishes with it too, so consumers
// read both backends alike. It sets no Nats-Expected-* header. It fails if a
// string is not valid UTF-8 or there are no events or too many.
func EncodeCommit(subject string, events []eventstore.RecordedEvent) (*nats.Msg, error) {
	if len(events) == 0 || len(events) > MaxCommitEvents {
		return nil, fmt.Errorf("jetstream: a commit holds 1 to %d events, not %d", MaxCommitEvents, len(events))
	}
	c := &eventstorev1.Commit{Events: make([]*eventstorev1.Event, len(events))}
	for i := range events {
		e := &events[i]
		c.Events[i] = &eventstorev1.Event{
			Id:                 e.ID,
			Type:               e.Type,
			Data:               e.Data,
			Revision:           e.Revision,
			RecordedAtUnixNano: e.RecordedAt.UnixNano(),
			CorrelationId:      e.Metadata.CorrelationID,
			CausationId:        e.Metadata.CausationID,
			Actor:              e.Metadata.Actor,
			Traceparent:        e.Metadata.TraceParent,
			Tracestate:         e.Metadata.TraceState,
			PrevHash:           e.PrevHash,
			Hash:               e.Hash,
			Stream:             e.Stream,
			RequestFingerprint: e.Metadata.RequestFingerprint,
		}
	}
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("jetstream: encode commit of %s: %w", events[0].ID, err)
	}
	m := nats.NewMsg(subject)
	m.Data = body
	h := m.Header
	first := &events[0]
	setHeader(h, HeaderType, first.Type)
	if len(events) > 1 && events[len(events)-1].Stream == first.Stream {
		types := make([]string, len(events))
		for i := range events {
			types[i] = events[i].Type
		}
		setHeader(h, HeaderTypes, strings.Join(types, ","))
	}
	h.Set(HeaderRevision, strconv.FormatUint(first.Revision, 10))
	h.Set(HeaderCount, strconv.Itoa(len(events)))
	setHeader(h, HeaderTraceParent, first.Metadata.TraceParent)
	setHeader(h, HeaderTraceState, first.Metadata.TraceState)
	return m, nil
}

// setHeader sets k (under its exact spelling, so traceparent stays lower
// case) unless v is empty or cannot travel in a NATS header line. Headers are
// informational except Nats-Msg-Id, and an id that cannot be a header only
// loses server-side de-duplication: retries are still recognised by reading
// the stream.
func setHeader(h nats.Header, k, v string) {
	if v == "" || strings.ContainsAny(v, "\r\n") {
		return
	}
	h[k] = []string{v}
}

// Decode turns a stored message (one commit) back into its events, in
// order, with their global positions. Consumers of another service's stream
// (pkg/bus) use it too. It never panics on arbitrary input; a message that
// is not a well-formed commit is an error.
//
// Its errors wrap eventstore.ErrUnreadable: stored bytes that are not a
// well-formed commit are damage.
func Decode(subject string, seq uint64, h nats.Header, data []byte) ([]eventstore.RecordedEvent, error) {
	_ = h // the body is authoritative; the headers only repeat parts of it
	evs, err := decode(subject, seq, data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", eventstore.ErrUnreadable, err)
	}
	return evs, nil
}

func decode(subject string, seq uint64, data []byte) ([]eventstore.RecordedEvent, error) {
	var c eventstorev1.Commit
	if err := proto.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("jetstream: message %d on %s is not a commit: %w", seq, subject, err)
	}
	n := len(c.Events)
	if n == 0 {
		return nil, fmt.Errorf("jetstream: message %d on %s holds no events", seq, subject)
	}
	if n > MaxCommitEvents {
		return nil, fmt.Errorf("jetstream: message %d on %s holds %d events, more than %d", seq, subject, n, MaxCommitEvents)
	}
	out := make([]eventstore.RecordedEvent, n)
	next := map[string]uint64{} // each stream's revision the next event of it must have
	for i, pe := range c.Events {
		if pe.GetId() == "" || pe.GetType() == "" {
			return nil, fmt.Errorf("jetstream: message %d on %s: event %d has no event id or type", seq, subject, i)
		}
		stream := pe.GetStream()
		if stream == "" {
			_, s, err := StreamFromSubject(subject)
			if err != nil {
				return nil, fmt.Errorf("jetstream: message %d: event %d names no stream: %w", seq, i, err)
			}
			stream = s
		}
		if _, _, err := eventstore.SplitStream(stream); err != nil {
			return nil, fmt.Errorf("jetstream: message %d on %s: event %d: %w", seq, subject, i, err)
		}
		if want, ok := next[stream]; ok && pe.GetRevision() != want {
			return nil, fmt.Errorf("jetstream: message %d on %s: event %d of %s has revision %d, want %d", seq, subject, i, stream, pe.GetRevision(), want)
		}
		if pe.GetRevision() == ^uint64(0) {
			return nil, fmt.Errorf("jetstream: message %d on %s: revisions overflow", seq, subject)
		}
		next[stream] = pe.GetRevision() + 1
		out[i] = eventstore.RecordedEvent{
			EventData: eventstore.EventData{
				ID:   pe.GetId(),
				Type: pe.GetType(),
				Data: pe.GetData(),
				Metadata: eventstore.Metadata{
					CorrelationID:      pe.GetCorrelationId(),
					CausationID:        pe.GetCausationId(),
					Actor:              pe.GetActor(),
					TraceParent:        pe.GetTraceparent(),
					TraceState:         pe.GetTracestate(),
					RequestFingerprint: pe.GetRequestFingerprint(),
				},
			},
			Stream:     stream,
			Revision:   pe.GetRevision(),
			Position:   Position(seq, i),
			RecordedAt: time.Unix(0, pe.GetRecordedAtUnixNano()).UTC(),
			PrevHash:   pe.GetPrevHash(),
			Hash:       pe.GetHash(),
		}
	}
	return out, nil
}

// DecodeMsg decodes a message delivered by a JetStream consumer.
func DecodeMsg(m jetstream.Msg) ([]eventstore.RecordedEvent, error) {
	md, err := m.Metadata()
	if err != nil {
		return nil, fmt.Errorf("jetstream: message metadata: %w", err)
	}
	return Decode(m.Subject(), md.Sequence.Stream, m.Headers(), m.Data())
}
