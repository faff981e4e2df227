package projection

import (
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
