package esdb

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/custody/custody/pkg/eventstore"
)

// EventIDNamespace is the name-space of the name-based (SHA-1, version 5)
// UUIDs that stand for the port's event ids in EventStoreDB. It is fixed
// forever: changing it would make every retry of an old command look like a
// new event to the server.
var EventIDNamespace = uuid.MustParse("6f1c2a9e-3b7d-4c52-9a0e-5d8f41b2c7e3")

// EventUUID maps a port event id (any string of 1-64 bytes) to the UUID that
// EventStoreDB stores: the same id always gives the same UUID, so the
// server's own idempotency check recognises a retried append. The original
// id travels in the event's metadata.
func EventUUID(id string) uuid.UUID { return uuid.NewSHA1(EventIDNamespace, []byte(id)) }

// StreamName is the EventStoreDB stream that holds a port stream
// ("<aggregate>-<id>") of a service: "<service>-<aggregate>-<id>".
func StreamName(service, stream string) (string, error) {
	if !servicePattern.MatchString(service) {
		return "", fmt.Errorf("%w: bad service name %q", eventstore.ErrInvalidAppend, service)
	}
	if _, _, err := eventstore.SplitStream(stream); err != nil {
		return "", err
	}
	return service + "-" + stream, nil
}

// PortStream is the inverse of StreamName: it returns the port stream of an
// EventStoreDB stream name, and false when the name is not one of service's
// streams (another service's, a system stream, a foreign stream).
func PortStream(service, name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, service+"-")
	if !ok {
		return "", false
	}
	if _, _, err := eventstore.SplitStream(rest); err != nil {
		return "", false
	}
	return rest, true
}

// metadata is the JSON document stored as each event's user metadata. The
// payload (proto wire bytes) is the event's data, its type the event type.
type metadata struct {
	ID          string `json:"id"`
	Correlation string `json:"correlation,omitempty"`
	Causation   string `json:"causation,omitempty"`
	Actor       string `json:"actor,omitempty"`
	TraceParent string `json:"traceparent,omitempty"`
	TraceState  string `json:"tracestate,omitempty"`
	// Fingerprint is eventstore.Metadata.RequestFingerprint (absent in
	// events written before it existed, and in those no request caused).
	Fingerprint string `json:"request_fingerprint,omitempty"`
	RecordedAt  int64  `json:"recorded_at"` // unix nanoseconds
	PrevHash    string `json:"prev_hash"`   // hex
	Hash        string `json:"hash"`        // hex
	// Append identifies the append call that wrote the event (random, not
	// hashed). It is how the store tells its own fresh write from the
	// server silently accepting a retry of an earlier one.
	Append string `json:"append,omitempty"`
}

// EncodeEvent turns a sealed event into what is appended to EventStoreDB.
func EncodeEvent(e *eventstore.RecordedEvent) (esdb.EventData, error) {
	return encodeEvent(e, "")
}

func encodeEvent(e *eventstore.RecordedEvent, appendID string) (esdb.EventData, error) {
	for _, f := range []struct{ name, v string }{
		{"id", e.ID}, {"type", e.Type}, {"correlation id", e.Metadata.CorrelationID},
		{"causation id", e.Metadata.CausationID}, {"actor", e.Metadata.Actor},
		{"traceparent", e.Metadata.TraceParent}, {"tracestate", e.Metadata.TraceState},
		{"request fingerprint", e.Metadata.RequestFingerprint},
	} {
		// JSON (and protobuf strings) would silently replace invalid
		// UTF-8, and the stored event would no longer match its hash.
		if !utf8.ValidString(f.v) {
			return esdb.EventData{}, fmt.Errorf("%w: event %s: %s is not valid UTF-8", eventstore.ErrInvalidAppend, e.ID, f.name)
		}
	}
	md, err := json.Marshal(metadata{
		ID:          e.ID,
		Correlation: e.Metadata.CorrelationID,
		Causation:   e.Metadata.CausationID,
		Actor:       e.Metadata.Actor,
		TraceParent: e.Metadata.TraceParent,
		TraceState:  e.Metadata.TraceState,
		Fingerprint: e.Metadata.RequestFingerprint,
		RecordedAt:  e.RecordedAt.UnixNano(),
		PrevHash:    hex.EncodeToString(e.PrevHash),
		Hash:        hex.EncodeToString(e.Hash),
		Append:      appendID,
	})
	if err != nil {
		return esdb.EventData{}, fmt.Errorf("esdb: encode metadata of %s: %w", e.ID, err)
	}
	data := e.Data
	if data == nil {
		data = []byte{}
	}
	return esdb.EventData{
		EventID:     EventUUID(e.ID),
		EventType:   e.Type,
		ContentType: esdb.ContentTypeBinary,
		Data:        data,
		Metadata:    md,
	}, nil
}

// DecodeEvent turns an event read from EventStoreDB back into the port's
// RecordedEvent. The event must belong to service (see StreamName) and carry
// the metadata EncodeEvent wrote; its UUID must be the one its id maps to.
// Position is the event's commit position in $all, or 0 when the server did
// not report one.
func DecodeEvent(service string, r *esdb.RecordedEvent) (eventstore.RecordedEvent, error) {
	e, _, err := decodeEvent(service, r)
	return e, err
}

func decodeEvent(service string, r *esdb.RecordedEvent) (eventstore.RecordedEvent, string, error) {
	stream, ok := PortStream(service, r.StreamID)
	if !ok {
		return eventstore.RecordedEvent{}, "", fmt.Errorf("esdb: event %d of %q is not an event of service %s", r.EventNumber, r.StreamID, service)
	}
	fail := func(format string, args ...any) (eventstore.RecordedEvent, string, error) {
		return eventstore.RecordedEvent{}, "", fmt.Errorf("esdb: event %d of %s: %s", r.EventNumber, r.StreamID, fmt.Sprintf(format, args...))
	}
	var md metadata
	if err := json.Unmarshal(r.UserMetadata, &md); err != nil {
		return fail("bad metadata: %v", err)
	}
	if md.ID == "" || r.EventType == "" {
		return fail("no event id or type")
	}
	if EventUUID(md.ID) != r.EventID {
		return fail("uuid %s is not the one id %q maps to", r.EventID, md.ID)
	}
	e := eventstore.RecordedEvent{
		EventData: eventstore.EventData{
			ID:   md.ID,
			Type: r.EventType,
			Data: r.Data,
			Metadata: eventstore.Metadata{
				CorrelationID:      md.Correlation,
				CausationID:        md.Causation,
				Actor:              md.Actor,
				TraceParent:        md.TraceParent,
				TraceState:         md.TraceState,
				RequestFingerprint: md.Fingerprint,
			},
		},
		Stream:     stream,
		Revision:   r.EventNumber,
		Position:   commitPosition(r.Position),
		RecordedAt: time.Unix(0, md.RecordedAt).UTC(),
	}
	var err error
	if e.PrevHash, err = hex.DecodeString(md.PrevHash); err != nil {
		return fail("bad previous hash: %v", err)
	}
	if e.Hash, err = hex.DecodeString(md.Hash); err != nil {
		return fail("bad hash: %v", err)
	}
	return e, md.Append, nil
}

// commitPosition is the port's Position of an event: its commit position,
// or 0 where the server does not know it (it reports all ones then).
func commitPosition(p esdb.Position) uint64 {
	if p.Commit == math.MaxUint64 {
		return 0
	}
	return p.Commit
}

// isSystemEvent: event types that start with "$" are EventStoreDB's own
// (stream metadata, tombstones, links, projections' emitted events).
func isSystemEvent(r *esdb.RecordedEvent) bool { return strings.HasPrefix(r.EventType, "$") }
