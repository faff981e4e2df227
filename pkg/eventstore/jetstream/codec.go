package jetstream

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/pkg/eventstore"
)

// Message headers that carry an event's envelope. The payload is the
// message body. traceparent/tracestate are lower-case, as W3C wants them.
const (
	HeaderType        = "Custody-Type"
	HeaderRevision    = "Custody-Revision"
	HeaderRecordedAt  = "Custody-Recorded-At" // unix nanoseconds
	HeaderCorrelation = "Custody-Correlation-Id"
	HeaderCausation   = "Custody-Causation-Id"
	HeaderActor       = "Custody-Actor"
	HeaderPrevHash    = "Custody-Prev-Hash" // hex
	HeaderHash        = "Custody-Hash"      // hex
	HeaderTraceParent = "traceparent"
	HeaderTraceState  = "tracestate"
)

// Subject is where a service's stream is stored: custody.<service>.<aggregate>.<id>.
func Subject(service, stream string) (string, error) {
	agg, id, err := eventstore.SplitStream(stream)
	if err != nil {
		return "", err
	}
	return "custody." + service + "." + agg + "." + id, nil
}

// StreamFromSubject is the inverse of Subject.
func StreamFromSubject(subject string) (service, stream string, err error) {
	parts := strings.Split(subject, ".")
	if len(parts) != 4 || parts[0] != "custody" {
		return "", "", fmt.Errorf("jetstream: %q is not an event subject", subject)
	}
	return parts[1], eventstore.StreamName(parts[2], parts[3]), nil
}

// encode builds the message for a sealed event.
func encode(subject string, e *eventstore.RecordedEvent) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = e.Data
	h := m.Header
	h.Set(jetstream.MsgIDHeader, e.ID)
	h.Set(HeaderType, e.Type)
	h.Set(HeaderRevision, strconv.FormatUint(e.Revision, 10))
	h.Set(HeaderRecordedAt, strconv.FormatInt(e.RecordedAt.UnixNano(), 10))
	setIf(h, HeaderCorrelation, e.Metadata.CorrelationID)
	setIf(h, HeaderCausation, e.Metadata.CausationID)
	setIf(h, HeaderActor, e.Metadata.Actor)
	if e.Metadata.TraceParent != "" {
		h[HeaderTraceParent] = []string{e.Metadata.TraceParent}
	}
	if e.Metadata.TraceState != "" {
		h[HeaderTraceState] = []string{e.Metadata.TraceState}
	}
	h.Set(HeaderPrevHash, hex.EncodeToString(e.PrevHash))
	h.Set(HeaderHash, hex.EncodeToString(e.Hash))
	return m
}

func setIf(h nats.Header, k, v string) {
	if v != "" {
		h.Set(k, v)
	}
}

// Decode turns a stored message back into the event it holds. Consumers of
// another service's stream (pkg/bus) use it too.
func Decode(subject string, seq uint64, h nats.Header, data []byte) (eventstore.RecordedEvent, error) {
	_, stream, err := StreamFromSubject(subject)
	if err != nil {
		return eventstore.RecordedEvent{}, err
	}
	e := eventstore.RecordedEvent{Stream: stream, Position: seq}
	e.ID = h.Get(jetstream.MsgIDHeader)
	e.Type = h.Get(HeaderType)
	e.Data = data
	e.Metadata = eventstore.Metadata{
		CorrelationID: h.Get(HeaderCorrelation),
		CausationID:   h.Get(HeaderCausation),
		Actor:         h.Get(HeaderActor),
		TraceParent:   first(h[HeaderTraceParent]),
		TraceState:    first(h[HeaderTraceState]),
	}
	if e.ID == "" || e.Type == "" {
		return e, fmt.Errorf("jetstream: message %d on %s has no event id or type", seq, subject)
	}
	if e.Revision, err = strconv.ParseUint(h.Get(HeaderRevision), 10, 64); err != nil {
		return e, fmt.Errorf("jetstream: message %d: bad revision: %w", seq, err)
	}
	ns, err := strconv.ParseInt(h.Get(HeaderRecordedAt), 10, 64)
	if err != nil {
		return e, fmt.Errorf("jetstream: message %d: bad recorded time: %w", seq, err)
	}
	e.RecordedAt = time.Unix(0, ns).UTC()
	if e.PrevHash, err = hex.DecodeString(h.Get(HeaderPrevHash)); err != nil {
		return e, fmt.Errorf("jetstream: message %d: bad previous hash: %w", seq, err)
	}
	if e.Hash, err = hex.DecodeString(h.Get(HeaderHash)); err != nil {
		return e, fmt.Errorf("jetstream: message %d: bad hash: %w", seq, err)
	}
	return e, nil
}

// DecodeMsg decodes a message delivered by a JetStream consumer.
func DecodeMsg(m jetstream.Msg) (eventstore.RecordedEvent, error) {
	md, err := m.Metadata()
	if err != nil {
		return eventstore.RecordedEvent{}, fmt.Errorf("jetstream: message metadata: %w", err)
	}
	return Decode(m.Subject(), md.Sequence.Stream, m.Headers(), m.Data())
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}
