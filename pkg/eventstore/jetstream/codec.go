package jetstream

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protowire"
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
	return DecodeSelected(subject, seq, h, data, nil)
}

// DecodeSelected is Decode for a reader that wants only some of a commit's
// events: those whose type want declines (want nil: every one) are checked
// like the others but left zero in the result, but for their Position, and
// cost no allocation.
func DecodeSelected(subject string, seq uint64, h nats.Header, data []byte, want func(typ []byte) bool) ([]eventstore.RecordedEvent, error) {
	_ = h // the body is authoritative; the headers only repeat parts of it
	evs, err := decode(subject, seq, data, want)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", eventstore.ErrUnreadable, err)
	}
	return evs, nil
}

func decode(subject string, seq uint64, data []byte, want func(typ []byte) bool) ([]eventstore.RecordedEvent, error) {
	n, err := countEvents(data)
	if err != nil {
		return nil, fmt.Errorf("jetstream: message %d on %s is not a commit: %w", seq, subject, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("jetstream: message %d on %s holds no events", seq, subject)
	}
	if n > MaxCommitEvents {
		return nil, fmt.Errorf("jetstream: message %d on %s holds %d events, more than %d", seq, subject, n, MaxCommitEvents)
	}
	out := make([]eventstore.RecordedEvent, n)
	var next revisions // each stream's revision the next event of it must have
	i := 0
	for b := data; len(b) > 0; {
		num, typ, l := protowire.ConsumeTag(b)
		b = b[l:] // countEvents checked every field
		l = protowire.ConsumeFieldValue(num, typ, b)
		if num != 1 || typ != protowire.BytesType {
			b = b[l:]
			continue
		}
		raw, _ := protowire.ConsumeBytes(b)
		b = b[l:]
		var pe wireEvent
		if err := pe.parse(raw); err != nil {
			return nil, fmt.Errorf("jetstream: message %d on %s is not a commit: event %d: %w", seq, subject, i, err)
		}
		if len(pe.id) == 0 || len(pe.typ) == 0 {
			return nil, fmt.Errorf("jetstream: message %d on %s: event %d has no event id or type", seq, subject, i)
		}
		stream, name := pe.stream, ""
		if len(stream) == 0 { // the esdb relay's messages: one stream, named by the subject
			_, s, err := StreamFromSubject(subject)
			if err != nil {
				return nil, fmt.Errorf("jetstream: message %d: event %d names no stream: %w", seq, i, err)
			}
			stream, name = []byte(s), s
		}
		if !eventstore.ValidStream(stream) {
			_, _, err := eventstore.SplitStream(string(stream))
			return nil, fmt.Errorf("jetstream: message %d on %s: event %d: %w", seq, subject, i, err)
		}
		if rev, ok := next.get(stream); ok && pe.revision != rev {
			return nil, fmt.Errorf("jetstream: message %d on %s: event %d of %s has revision %d, want %d", seq, subject, i, stream, pe.revision, rev)
		}
		if pe.revision == ^uint64(0) {
			return nil, fmt.Errorf("jetstream: message %d on %s: revisions overflow", seq, subject)
		}
		next.set(stream, pe.revision+1)
		out[i].Position = Position(seq, i)
		if want == nil || want(pe.typ) {
			if name == "" {
				name = string(stream)
			}
			out[i] = pe.event(name, Position(seq, i))
		}
		i++
	}
	return out, nil
}

// wireEvent is one custody.eventstore.v1.Event of a commit, its fields
// still pointing into the message: decoding a commit by hand (protowire)
// allocates only what the caller keeps, where proto.Unmarshal made an Event
// of every one (a tenth of the allocations under load), and a consumer
// that wants few of a commit's events copies only those.
type wireEvent struct {
	id, typ, data, corr, cause, actor, tp, ts, prev, hash, stream, fp []byte
	revision                                                          uint64
	recordedAt                                                        int64
}

// parse reads one Event as proto.Unmarshal does: the last of a repeated
// field wins, a field of another wire type than its own is unknown and
// skipped like every unknown field, strings must be valid UTF-8.
func (e *wireEvent) parse(b []byte) error {
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
		if typ == protowire.VarintType && (num == 4 || num == 5) {
			v, l := protowire.ConsumeVarint(b)
			if l < 0 {
				return protowire.ParseError(l)
			}
			b = b[l:]
			if num == 4 {
				e.revision = v
			} else {
				e.recordedAt = int64(v)
			}
			continue
		}
		var field *[]byte
		text := true
		if typ == protowire.BytesType {
			switch num {
			case 1:
				field = &e.id
			case 2:
				field = &e.typ
			case 3:
				field, text = &e.data, false
			case 6:
				field = &e.corr
			case 7:
				field = &e.cause
			case 8:
				field = &e.actor
			case 9:
				field = &e.tp
			case 10:
				field = &e.ts
			case 11:
				field, text = &e.prev, false
			case 12:
				field, text = &e.hash, false
			case 13:
				field = &e.stream
			case 14:
				field = &e.fp
			}
		}
		if field == nil {
			l = protowire.ConsumeFieldValue(num, typ, b)
			if l < 0 {
				return protowire.ParseError(l)
			}
			b = b[l:]
			continue
		}
		v, l := protowire.ConsumeBytes(b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
		if text && !utf8.Valid(v) {
			return fmt.Errorf("field %d: invalid UTF-8", num)
		}
		*field = v
	}
	return nil
}

// event copies the event out of the message in two allocations: its text
// fields are substrings of one string, its byte fields slices of one
// buffer, each capped at its own end (appending to one copies it).
func (e *wireEvent) event(stream string, pos uint64) eventstore.RecordedEvent {
	fields := [...][]byte{e.id, e.typ, e.corr, e.cause, e.actor, e.tp, e.ts, e.fp}
	n := 0
	for _, f := range fields {
		n += len(f)
	}
	var b strings.Builder
	b.Grow(n)
	for _, f := range fields {
		b.Write(f)
	}
	all := b.String()
	var text [len(fields)]string
	for i, f := range fields {
		text[i], all = all[:len(f)], all[len(f):]
	}
	bin := make([]byte, 0, len(e.data)+len(e.prev)+len(e.hash))
	part := func(v []byte) []byte {
		if len(v) == 0 {
			return nil // as proto.Unmarshal leaves it
		}
		n := len(bin)
		bin = append(bin, v...)
		return bin[n:len(bin):len(bin)]
	}
	return eventstore.RecordedEvent{
		EventData: eventstore.EventData{
			ID:   text[0],
			Type: text[1],
			Data: part(e.data),
			Metadata: eventstore.Metadata{
				CorrelationID:      text[2],
				CausationID:        text[3],
				Actor:              text[4],
				TraceParent:        text[5],
				TraceState:         text[6],
				RequestFingerprint: text[7],
			},
		},
		Stream:     stream,
		Revision:   e.revision,
		Position:   pos,
		RecordedAt: time.Unix(0, e.recordedAt).UTC(),
		PrevHash:   part(e.prev),
		Hash:       part(e.hash),
	}
}

// countEvents checks that data is a well-formed message and counts its
// events (field 1, length-delimited).
func countEvents(data []byte) (int, error) {
	n := 0
	for b := data; len(b) > 0; {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return 0, protowire.ParseError(l)
		}
		b = b[l:]
		l = protowire.ConsumeFieldValue(num, typ, b)
		if l < 0 {
			return 0, protowire.ParseError(l)
		}
		b = b[l:]
		if num == 1 && typ == protowire.BytesType {
			n++
		}
	}
	return n, nil
}

// revisions is the next revision of each stream met in a commit: a short
// list on the stack (a commit holds few streams) that becomes a map past 16
// of them, so a hostile message cannot make it quadratic.
type revisions struct {
	list [16]streamRevision
	n    int
	m    map[string]uint64
}

type streamRevision struct {
	stream []byte
	next   uint64
}

func (r *revisions) get(stream []byte) (uint64, bool) {
	if r.m != nil {
		v, ok := r.m[string(stream)]
		return v, ok
	}
	for _, sr := range r.list[:r.n] {
		if bytes.Equal(sr.stream, stream) {
			return sr.next, true
		}
	}
	return 0, false
}

func (r *revisions) set(stream []byte, next uint64) {
	if r.m != nil {
		r.m[string(stream)] = next
		return
	}
	for i := range r.list[:r.n] {
		if bytes.Equal(r.list[i].stream, stream) {
			r.list[i].next = next
			return
		}
	}
	if r.n < len(r.list) {
		r.list[r.n] = streamRevision{stream, next}
		r.n++
		return
	}
	r.m = make(map[string]uint64, 2*r.n)
	for _, sr := range r.list {
		r.m[string(sr.stream)] = sr.next
	}
	r.m[string(stream)] = next
}

// DecodeMsg decodes a message delivered by a JetStream consumer.
func DecodeMsg(m jetstream.Msg) ([]eventstore.RecordedEvent, error) {
	md, err := m.Metadata()
	if err != nil {
		return nil, fmt.Errorf("jetstream: message metadata: %w", err)
	}
	return Decode(m.Subject(), md.Sequence.Stream, m.Headers(), m.Data())
}
