package domain

import "google.golang.org/protobuf/proto"

// command is what every command of the catalog's aggregates is: it carries
// its own decision on the aggregate's state S. The compiler then checks
// that each command type has one, and no decider switches over its
// command types.
type command[S any] interface {
	decide(S) ([]proto.Message, error)
}

// decides is the Decide of an aggregate whose commands need no common
// check first (Products and Sessions check whether the aggregate exists).
func decides[S any, C command[S]](s S, c C) ([]proto.Message, error) {
	return c.decide(s)
}
