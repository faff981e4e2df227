package jetstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/pkg/eventstore"
)

// Reading a whole stream. Two readers need every message of a stream, in
// order: a writer's Open, which checks and indexes them (integrity.go), and
// `custody rebuild`, which folds them into read models (Scan). Both read
// them the same way, eachMsg: one ordered consumer, pulled scanBatch
// messages at a time, rather than one direct get per message as ReadAll
// does. A pull is one round trip for a thousand messages. Each pull
// re-creates the ordered consumer on the server, but continuous pulls
// (Messages) read no faster in `custody probe --read`, and a pull that
// comes back empty says that the server has nothing more without waiting
// for a timeout (docs/benchmarks.md, "Rebuild at disk speed").
//
// An ordered consumer passes over sequences the server cannot return
// without a word, and the stream refuses deletes: so the sequences must
// arrive consecutively, and a run that does not is damage, never skipped.

// scanBatch is how many messages one pull asks for. Bigger pulls were no
// faster on the embedded server, and pulls of 5,000 sometimes stalled for
// seconds.
const scanBatch = 1000

// An empty pull before the last message is tried again, waiting up to
// emptyPullWait, at most maxEmptyPulls times in a row, while the server
// still returns the next message on its own (eachMsg).
const (
	maxEmptyPulls = 5
	emptyPullWait = time.Second
)

// eachMsg reads the messages of the stream from sequence 1 to last, in
// order, and hands each to msg. A run of sequences that does not arrive
// goes to gap (from, to inclusive), in its place in the order; when the
// server delivers nothing more before last, the rest is such a run. An
// error from msg or gap ends the read and is returned; what (e.g. "scan")
// names the reader in the errors of the read itself.
func (s *Store) eachMsg(ctx context.Context, what string, last uint64,
	msg func(seq uint64, m jetstream.Msg) error, gap func(from, to uint64) error) error {
	if last == 0 {
		return nil
	}
	cons, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return fmt.Errorf("jetstream: %s %s: %w: %w", what, s.name, eventstore.ErrUnavailable, err)
	}
	next := uint64(1)
	emptyPulls := 0
	for next <= last {
		var batch jetstream.MessageBatch
		if emptyPulls == 0 {
			batch, err = cons.FetchNoWait(scanBatch)
		} else {
			batch, err = cons.Fetch(scanBatch, jetstream.FetchMaxWait(emptyPullWait))
		}
		if err != nil {
			return fmt.Errorf("jetstream: %s %s: %w: %w", what, s.name, eventstore.ErrUnavailable, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("jetstream: %s %s: %w", what, s.name, err)
			}
			seq := md.Sequence.Stream
			if seq > last {
				break
			}
			if seq > next {
				if err := gap(next, seq-1); err != nil {
					return err
				}
			}
			next = seq + 1
			if err := msg(seq, m); err != nil {
				return err
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("jetstream: %s %s: %w: %w", what, s.name, eventstore.ErrUnavailable, err)
		}
		if n > 0 {
			emptyPulls = 0
			continue
		}
		// Nothing came. Usually the server has nothing more to give (the
		// rest cannot be read); but a pull can also come back empty on a
		// busy server while the rest is there, and calling that damage
		// would refuse a healthy store. If the server returns the next
		// message when asked for it alone, pull again, waiting this time.
		if emptyPulls++; emptyPulls > maxEmptyPulls {
			break
		}
		if _, err := s.stream.GetMsg(ctx, next); err != nil {
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				break // the rest cannot be read
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	if next <= last {
		return gap(next, last)
	}
	return nil
}

// Scan reads the whole stream as it stands when Scan is called, in order,
// for a reader that wants all of it at once (`custody rebuild`): each
// message is decoded once and fn gets its events together, pos being the
// position of the first. A message that cannot be read — a sequence the
// server does not return, or a body that does not decode — comes to fn as
// err, wrapping eventstore.ErrUnreadable and naming the message(s), with
// pos the position of the last such message (index 0) and no events; Scan
// then goes on behind it, so that one damaged record does not hide the rest
// of the stream. An error fn returns ends Scan and is returned.
//
// Scan does not check hash chains: the reader does (the store's index is
// not involved, so a read-only store scans too).
func (s *Store) Scan(ctx context.Context, fn func(pos uint64, evs []eventstore.RecordedEvent, err error) error) error {
	last, err := s.lastSeq(ctx)
	if err != nil {
		return fmt.Errorf("jetstream: read %s: %w: %w", s.name, eventstore.ErrUnavailable, err)
	}
	return s.eachMsg(ctx, "read", last, func(seq uint64, m jetstream.Msg) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		evs, err := Decode(m.Subject(), seq, m.Headers(), m.Data())
		if err != nil {
			return fn(Position(seq, 0), nil, fmt.Errorf("jetstream: %s: %w", s.name, err))
		}
		return fn(evs[0].Position, evs, nil)
	}, func(from, to uint64) error {
		d := missing(from, to)
		return fn(Position(to, 0), nil, fmt.Errorf("jetstream: %s %s: %w", s.name, d, eventstore.ErrUnreadable))
	})
}
