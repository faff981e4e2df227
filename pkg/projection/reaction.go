package projection

import (
	"context"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
)

// What a service's reactions (its handlers of events, declared to the
// platform's runtime) share: how they name the events they want, read the
// event delivered and record the commands it causes.

// EventTypes is the es.EventType of each message: a reaction's event types.
func EventTypes(ms ...proto.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = es.EventType(m)
	}
	return out
}

// Route is how a reaction handles the events of one type; On makes one.
type Route struct {
	eventType string
	handle    func(context.Context, eventstore.RecordedEvent, proto.Message) error
}

// On routes the events whose payload is a T to fn.
func On[T proto.Message](fn func(ctx context.Context, rec eventstore.RecordedEvent, ev T) error) Route {
	var zero T // a nil message still names its type
	return Route{eventType: es.EventType(zero), handle: func(ctx context.Context, rec eventstore.RecordedEvent, m proto.Message) error {
		return fn(ctx, rec, m.(T))
	}}
}

// Routes are a reaction's routes, one per event type: the event types it
// asks for and how it handles each, declared once so that they cannot
// disagree.
type Routes []Route

// EventTypes are the routes' event types, in order.
func (rs Routes) EventTypes() []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.eventType
	}
	return out
}

// Handle decodes rec (see Decode) and hands it to the route of its type.
// An event of a type no route names is ignored.
func (rs Routes) Handle(ctx context.Context, rec eventstore.RecordedEvent) error {
	ev, err := Decode(rec)
	if err != nil {
		return err
	}
	t := es.EventType(ev.Payload)
	for _, r := range rs {
		if r.eventType == t {
			return r.handle(ctx, rec, ev.Payload)
		}
	}
	return nil
}

// Decode decodes an event delivered to a reaction. An event that cannot
// be decoded is fault.Permanent: no retry will read it, so the runtime
// parks it.
func Decode(rec eventstore.RecordedEvent) (es.Event, error) {
	ev, err := es.Decode(rec)
	if err != nil {
		return es.Event{}, fault.Permanent(err)
	}
	return ev, nil
}

// CausedBy is the meta of a command that rec causes, issued by actor: it
// keeps rec's correlation id, so that one flow has one id across services,
// or, when rec carries none, takes fallback (the id of what the flow is
// about, such as the order).
func CausedBy(rec eventstore.RecordedEvent, fallback, actor string) es.Meta {
	corr := rec.Metadata.CorrelationID
	if corr == "" {
		corr = fallback
	}
	return es.Meta{CorrelationID: corr, Actor: actor}
}
