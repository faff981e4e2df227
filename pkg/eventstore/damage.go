package eventstore

import (
	"context"
	"fmt"
	"strings"
)

// Damage is stored history that a store cannot serve as written: records
// it cannot return, that do not decode, or whose hash chain fails.
type Damage struct {
	// Seq through Last (inclusive; Last is 0 for one record) are the
	// records concerned, numbered as the backend stores them (JetStream:
	// message sequences of the service's stream). Seq is 0 when the backend
	// could not say which records it discarded.
	Seq, Last uint64
	// Stream, Revision and EventID name the event, when the record could
	// be decoded.
	Stream   string
	Revision uint64
	EventID  string
	Reason   string
}

func (d Damage) String() string {
	var b strings.Builder
	switch {
	case d.Seq == 0:
		b.WriteString("records not known")
	case d.Last > d.Seq:
		fmt.Fprintf(&b, "messages %d-%d", d.Seq, d.Last)
	default:
		fmt.Fprintf(&b, "message %d", d.Seq)
	}
	if d.Stream != "" {
		fmt.Fprintf(&b, " (%s revision %d, event %s)", d.Stream, d.Revision, d.EventID)
	}
	return b.String() + ": " + d.Reason
}

// DamageReporter is a store that checks its stored history (the JetStream
// store does, when its owner opens it) and tells what it found damaged.
type DamageReporter interface {
	// Damage is empty for a sound store.
	Damage(ctx context.Context) ([]Damage, error)
}
