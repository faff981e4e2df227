package domain

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/custody/custody/pkg/eventstore"
)

// Field names that tie an event to an order. Every service's event
// contract uses them with the same meaning, so the index needs no list of
// event types: a new event type with an order_id is indexed without a change
// here.
const (
	fieldOrder      = "order_id"
	fieldFulfilment = "fulfilment_id"
	fieldClaim      = "claim_id"
	fieldReturn     = "return_id"
	fieldBuyer      = "buyer_id"
)

// refFields are the fields whose ids an order's events teach the index, so
// that later events naming only them are filed under the order too:
// fulfilment_id (FulfilmentRequested → TrackingEventRecorded), claim_id
// (ClaimOpened → …), return_id (ReturnAuthorised → …).
var refFields = []string{fieldFulfilment, fieldClaim, fieldReturn}

// Refs is what an event says about the order it belongs to.
type Refs struct {
	// OrderID is the event's order_id field, if it has a non-empty one.
	OrderID string
	// BuyerID is its buyer_id field, if any.
	BuyerID string
	// Keys are the ids it names ("fulfilment:<id>", "claim:<id>",
	// "return:<id>") and its stream's id ("stream:<id>"), in the order they
	// are tried.
	Keys []string
}

// RefsOf reads the linking fields of an event's payload (nil when the
// payload could not be decoded: then only the stream links it).
func RefsOf(stream string, payload proto.Message) Refs {
	var r Refs
	if payload != nil {
		m := payload.ProtoReflect()
		r.OrderID = stringField(m, fieldOrder)
		r.BuyerID = stringField(m, fieldBuyer)
		for _, f := range refFields {
			if id := stringField(m, protoreflect.Name(f)); id != "" {
				r.Keys = append(r.Keys, refKey(f, id))
			}
		}
	}
	if _, id, err := eventstore.SplitStream(stream); err == nil {
		r.Keys = append(r.Keys, streamKey(id))
	}
	return r
}

// stringField is the value of the top-level string field name, or "".
func stringField(m protoreflect.Message, name protoreflect.Name) string {
	fd := m.Descriptor().Fields().ByName(name)
	if fd == nil || fd.Kind() != protoreflect.StringKind || fd.IsList() || fd.IsMap() {
		return ""
	}
	return m.Get(fd).String()
}

func refKey(field, id string) string {
	switch field {
	case fieldFulfilment:
		return "fulfilment:" + id
	case fieldClaim:
		return "claim:" + id
	case fieldReturn:
		return "return:" + id
	}
	return field + ":" + id
}

func streamKey(id string) string { return "stream:" + id }

// StreamKey is the key of the streams named after id ("stream:<id>"): the
// first event filed under order id ties StreamKey(id) to it.
func StreamKey(id string) string { return streamKey(id) }

// Teaches returns the keys an event ties to its order once filed under it
// (see teaches).
func Teaches(payload proto.Message) []string { return teaches(payload) }

// teaches returns the keys that an event, once filed under an order, ties
// to that order: the ids it names, and the streams named after them.
func teaches(payload proto.Message) []string {
	if payload == nil {
		return nil
	}
	var keys []string
	m := payload.ProtoReflect()
	for _, f := range refFields {
		if id := stringField(m, protoreflect.Name(f)); id != "" {
			keys = append(keys, refKey(f, id), streamKey(id))
		}
	}
	return keys
}
