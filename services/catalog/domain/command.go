package domain

import (
	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/es"
)

// command is what every command of the catalog's aggregates is: it carries
// its own decision on the aggregate's state S. The compiler then checks
// that each command type has one, and no decider switches over its
// command types.
type command[S any] interface {
	decide(S) ([]proto.Message, error)
}

// decides is the Decide of an aggregate whose commands need no common
// check first (a reservation exists from its first command on).
func decides[S any, C command[S]](s S, c C) ([]proto.Message, error) {
	return c.decide(s)
}

// entity is the state of an aggregate that one command creates: a vendor,
// a product, an affiliate link, a live session.
type entity interface {
	// created is the aggregate's id and whether it was created.
	created() (id string, ok bool)
}

// closer is an entity that can close (a live session that ended): closed
// is then why it takes no more commands, else nil.
type closer interface {
	closed() error
}

// createdBy is the decider of an entity (aggregate names its stream and
// the resource in its errors) that commands of type New create. It keeps
// the rule they all follow: New is refused with an ExistsError once the
// entity exists, and every other command with a NotFoundError until it
// does, or with the entity's closed error once it has closed. Then the
// command decides.
func createdBy[S entity, C, New command[S]](aggregate string, initial func(id string) S, evolve func(S, proto.Message) S, clone func(S) S) es.Decider[S, C] {
	decide := func(s S, c C) ([]proto.Message, error) {
		id, exists := s.created()
		_, creates := any(c).(New)
		var err error
		switch cl, closes := any(s).(closer); {
		case creates && exists:
			err = &ExistsError{Resource: aggregate, ID: id}
		case !creates && !exists:
			err = &NotFoundError{Resource: aggregate, ID: id}
		case !creates && closes:
			err = cl.closed()
		}
		if err != nil {
			return nil, err
		}
		return c.decide(s)
	}
	return es.Decider[S, C]{Aggregate: aggregate, Initial: initial, Decide: decide, Evolve: evolve, Clone: clone}
}
