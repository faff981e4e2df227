package domain

import (
	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/fault"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
)

// ReasonAlreadyErased refuses erasing a buyer who was erased before
// (FailedPrecondition).
const ReasonAlreadyErased = "ALREADY_ERASED"

// Erasure is the audit's record of one buyer's erasure (stream
// erasure-<buyer_id>): who erased the buyer's personal data, when and why,
// and which orders it touched. It exists so that an erasure happens once
// and is itself on the record; the erasing is the destruction of the
// buyer's data key, which the app does after the event is stored.
type Erasure struct {
	BuyerID string
	Erased  *auditv1.BuyerErased // nil until erased
}

// EraseBuyer is the command: record the buyer's erasure as Event (the app
// fills in the orders, the key, who and when).
type EraseBuyer struct {
	Event *auditv1.BuyerErased
}

// Erasures decides erasures: the first records BuyerErased; any later one
// is refused ALREADY_ERASED (a repeat of the same request is answered
// before deciding, by its command id).
var Erasures = es.Decider[Erasure, EraseBuyer]{
	Aggregate: "erasure",
	Initial:   func(id string) Erasure { return Erasure{BuyerID: id} },
	Decide: func(s Erasure, c EraseBuyer) ([]proto.Message, error) {
		if s.Erased != nil {
			return nil, fault.Precondition(ReasonAlreadyErased, "buyer %s was erased at %s (%s)", s.BuyerID,
				s.Erased.GetEraseTime().AsTime().Format("2006-01-02T15:04:05Z07:00"), s.Erased.GetReason())
		}
		return []proto.Message{c.Event}, nil
	},
	Evolve: func(s Erasure, e proto.Message) Erasure {
		if ev, ok := e.(*auditv1.BuyerErased); ok {
			s.Erased = ev
		}
		return s
	},
}
