package domain

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
)

// Page sizes of a timeline.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Cursor is the timeline key of the last event of a page (keyset paging:
// events indexed meanwhile neither repeat nor get skipped, wherever they
// fall).
type Cursor struct {
	At       time.Time
	Service  string
	Position uint64
}

func cursorOf(e *Entry) Cursor {
	return Cursor{At: e.Event.RecordedAt, Service: e.Service, Position: e.Event.Position}
}

// after reports whether e comes after the cursor in timeline order.
func (c Cursor) after(e *Entry) bool {
	return before(&Entry{Service: c.Service, Event: EventRef{RecordedAt: c.At, Position: c.Position}}, e)
}

// TimelinePage is one page of an order's timeline.
type TimelinePage struct {
	Entries []*Entry
	// Next is the cursor of the next page; nil on the last one.
	Next *Cursor
	// Total is the number of the order's events (every page).
	Total int
}

// Page returns up to size entries after the cursor (nil: from the start).
// size 0 means DefaultPageSize; larger than MaxPageSize means MaxPageSize.
func Page(entries []*Entry, after *Cursor, size int) TimelinePage {
	switch {
	case size <= 0:
		size = DefaultPageSize
	case size > MaxPageSize:
		size = MaxPageSize
	}
	p := TimelinePage{Total: len(entries)}
	start := 0
	if after != nil {
		for start < len(entries) && !after.after(entries[start]) {
			start++
		}
	}
	end := min(start+size, len(entries))
	p.Entries = entries[start:end]
	if end < len(entries) {
		c := cursorOf(entries[end-1])
		p.Next = &c
	}
	return p
}

// ErrBadPageToken: a page token that this service did not issue for this
// order.
var ErrBadPageToken = errors.New("not a page token of this order's timeline")

const tokenVersion = "1"

// EncodeToken makes the opaque page token of a cursor, bound to the order.
func EncodeToken(orderID string, c Cursor) string {
	raw := strings.Join([]string{tokenVersion, orderID, strconv.FormatInt(c.At.UnixNano(), 10), c.Service,
		strconv.FormatUint(c.Position, 10)}, "\x00")
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// DecodeToken reads a page token issued for orderID.
func DecodeToken(orderID, tok string) (Cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return Cursor{}, ErrBadPageToken
	}
	parts := strings.Split(string(raw), "\x00")
	if len(parts) != 5 || parts[0] != tokenVersion || parts[1] != orderID {
		return Cursor{}, ErrBadPageToken
	}
	nanos, err1 := strconv.ParseInt(parts[2], 10, 64)
	pos, err2 := strconv.ParseUint(parts[4], 10, 64)
	if err1 != nil || err2 != nil {
		return Cursor{}, ErrBadPageToken
	}
	return Cursor{At: time.Unix(0, nanos).UTC(), Service: parts[3], Position: pos}, nil
}

// TimelineEvent is a stored event as the timeline shows it.
type TimelineEvent struct {
	Service       string
	Stream        string
	Revision      uint64
	Position      uint64
	EventID       string
	Type          string
	RecordedAt    time.Time
	Actor         string
	CorrelationID string
	CausationID   string
	// PayloadJSON is the payload as compact JSON with proto field names;
	// empty when it cannot be decoded (PayloadError says why, RawPayload
	// holds the bytes).
	PayloadJSON  string
	PayloadError string
	RawPayload   []byte
	Hash         string // hex
	PrevHash     string // hex
}

// Reveal turns the personal fields of a payload into what a person may be
// shown (pkg/personal's Codec.Reveal: tokens to their values, "[erased]"
// after an erasure). The stored payload holds tokens only.
type Reveal func(proto.Message) (proto.Message, error)

// Render shows a stored event of service: envelope, chain link and
// payload as JSON, its personal fields revealed with reveal (nil: as
// stored). The hashes are those of the stored bytes, tokens and all. A
// payload whose personal fields cannot be revealed is shown as stored,
// with PayloadError saying why.
func Render(service string, ev eventstore.RecordedEvent, reveal Reveal) TimelineEvent {
	t := TimelineEvent{
		Service: service, Stream: ev.Stream, Revision: ev.Revision, Position: ev.Position, EventID: ev.ID,
		Type: ev.Type, RecordedAt: ev.RecordedAt, Actor: ev.Metadata.Actor, CorrelationID: ev.Metadata.CorrelationID,
		CausationID: ev.Metadata.CausationID, Hash: hex.EncodeToString(ev.Hash), PrevHash: hex.EncodeToString(ev.PrevHash),
	}
	js, err := PayloadJSON(ev, reveal)
	if err != nil {
		t.PayloadError = err.Error()
	}
	t.PayloadJSON = js
	if t.PayloadJSON == "" {
		t.RawPayload = ev.Data
	}
	return t
}

// Unread shows an indexed event that its store cannot return now (it was
// readable when indexed): what the index knows of it, and why.
func Unread(e *Entry, cause error) TimelineEvent {
	return TimelineEvent{Service: e.Service, Stream: e.Event.Stream, Revision: e.Event.Revision, Position: e.Event.Position,
		Type: e.Event.Type, RecordedAt: e.Event.RecordedAt, PayloadError: "the store cannot return this event now: " + cause.Error()}
}

// PayloadJSON decodes a stored payload (by its type, from the proto
// registry), reveals its personal fields with reveal (nil: as stored) and
// renders it as compact JSON with proto field names. When revealing fails,
// the JSON is that of the payload as stored, and the error says why.
func PayloadJSON(ev eventstore.RecordedEvent, reveal Reveal) (string, error) {
	d, err := es.Decode(ev)
	if err != nil {
		return "", DescribeDecodeError(ev.Type, err)
	}
	payload, revealErr := d.Payload, error(nil)
	if reveal != nil {
		if r, err := reveal(d.Payload); err != nil {
			revealErr = fmt.Errorf("personal fields shown as stored (sealed): %w", err)
		} else {
			payload = r
		}
	}
	js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(payload)
	if err != nil {
		return "", fmt.Errorf("rendering %s as JSON: %w", ev.Type, err)
	}
	// protojson varies its whitespace on purpose; the timeline is stable.
	var b bytes.Buffer
	if err := json.Compact(&b, js); err != nil {
		return string(js), revealErr
	}
	return b.String(), revealErr
}

// DecodePayload decodes a stored event's payload for the index: nil when it
// cannot be decoded.
func DecodePayload(rec eventstore.RecordedEvent) proto.Message {
	ev, err := es.Decode(rec)
	if err != nil {
		return nil
	}
	return ev.Payload
}

// DescribeDecodeError is the PayloadError for a payload es.Decode refused.
func DescribeDecodeError(typ string, err error) error {
	if errors.Is(err, es.ErrUnknownEventType) {
		return fmt.Errorf("%s %s is not linked into the audit service", UnknownTypePrefix, typ)
	}
	return err
}
