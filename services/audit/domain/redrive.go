package domain

import (
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/es"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
)

// Redrive is the audit's one aggregate: a dead-letter record handed back to
// its consumer (stream redrive-<consumer>-<dead-letter sequence>). It exists
// to record who handed it back, when and why, and to hand it back once.
type Redrive struct {
	ID       string
	Redriven *auditv1.ParkedEventRedriven // nil until handed back
}

// RedriveParked is the command: hand the record back, recording Event.
type RedriveParked struct {
	Event *auditv1.ParkedEventRedriven
}

// RedriveID is the aggregate id of consumer's dead-letter record seq.
func RedriveID(consumer string, seq uint64) string {
	return consumer + "-" + strconv.FormatUint(seq, 10)
}

// Redrives decides redrives: the first hands the record back
// (ParkedEventRedriven); any later one, whoever asks, decides nothing (the
// caller says "already handed back").
var Redrives = es.Decider[Redrive, RedriveParked]{
	Aggregate: "redrive",
	Initial:   func(id string) Redrive { return Redrive{ID: id} },
	Decide: func(s Redrive, c RedriveParked) ([]proto.Message, error) {
		if s.Redriven != nil {
			return nil, nil
		}
		return []proto.Message{c.Event}, nil
	},
	Evolve: func(s Redrive, e proto.Message) Redrive {
		if ev, ok := e.(*auditv1.ParkedEventRedriven); ok {
			s.Redriven = ev
		}
		return s
	},
}
