package esdb

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/eventstore/jetstream"
)

// HeaderPosition carries, on a relayed message, the event's position in
// EventStoreDB ($all commit position). The relay resumes after the last one
// in the JetStream stream; consumers see the JetStream position (sequence
// << 16 | index) as the event's position, exactly as with the jetstream
// backend.
const HeaderPosition = "Custody-Esdb-Position"

// RelayOption configures Relay.
type RelayOption func(*relayConfig)

type relayConfig struct{ replicas int }

// WithReplicas sets the replicas of the JetStream stream the relay creates
// (1 on a single server, 3 on a production cluster). Default 1.
func WithReplicas(n int) RelayOption { return func(c *relayConfig) { c.replicas = n } }

// Relay forwards the service's events from EventStoreDB's $all to NATS
// JetStream, so the rest of the system (pkg/bus consumers, projections) runs
// unchanged on top of an EventStoreDB service: each event becomes a message
// on custody.<service>.<aggregate>.<id> in the stream CUSTODY_<SERVICE>
// (created or updated with jetstream.StreamConfig) in the jetstream
// backend's format — a commit (jetstream.EncodeCommit) of that one event,
// with Nats-Msg-Id = event id, so jetstream.Decode and pkg/bus read it —
// plus HeaderPosition. (EventStoreDB's $all does not tell which events were
// appended together, so a relayed command of several events arrives as
// several one-event commits, in order.)
//
// Where it starts: after the last event already relayed into the JetStream
// stream (the stream is its own checkpoint), or, when the stream holds no
// relayed event yet, at from (0: the beginning). Events are published one at
// a time, in $all order, each waiting for JetStream's acknowledgement; then
// checkpoint (if not nil) is called with the event's EventStoreDB position —
// an error from it stops the relay. A crash between the publish and its
// acknowledgement makes the next run publish that event again, which
// JetStream drops as a duplicate within its de-duplication window
// (Nats-Msg-Id); two relays of one service must not run at once.
//
// Relay runs until ctx is done (it then returns ctx's error) or something
// fails; run it under a supervisor that restarts it.
func Relay(ctx context.Context, store *Store, nc *nats.Conn, from uint64, checkpoint func(pos uint64) error, opts ...RelayOption) error {
	cfg := relayConfig{replicas: 1}
	for _, o := range opts {
		o(&cfg)
	}
	js, err := natsjs.New(nc)
	if err != nil {
		return fmt.Errorf("esdb relay: %w", err)
	}
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig(store.service, cfg.replicas))
	if err != nil {
		return fmt.Errorf("esdb relay: create stream for %s: %w: %w", store.service, eventstore.ErrUnavailable, err)
	}
	resume, err := lastRelayed(ctx, st)
	if err != nil {
		return err
	}
	var sub eventstore.Subscription
	if resume > 0 {
		p := esdb.Position{Commit: resume, Prepare: resume}
		sub, err = store.subscribe(ctx, resume+1, &p, nil)
	} else {
		sub, err = store.SubscribeAll(ctx, from)
	}
	if err != nil {
		return fmt.Errorf("esdb relay: %w", err)
	}
	defer sub.Close()
	return forward(ctx, sub, js, store.service, checkpoint)
}

// RelayedUpTo is the EventStoreDB position of the last event Relay has
// forwarded into service's JetStream stream: where a restarted relay
// resumes. 0 when it has forwarded none (or the stream does not exist).
func RelayedUpTo(ctx context.Context, nc *nats.Conn, service string) (uint64, error) {
	js, err := natsjs.New(nc)
	if err != nil {
		return 0, fmt.Errorf("esdb relay: %w", err)
	}
	st, err := js.Stream(ctx, jetstream.StreamNameFor(service))
	if errors.Is(err, natsjs.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("esdb relay: %w: %w", eventstore.ErrUnavailable, err)
	}
	return lastRelayed(ctx, st)
}

// lastRelayed is the EventStoreDB position of the last event in the
// JetStream stream, or 0 if it holds none that the relay wrote.
func lastRelayed(ctx context.Context, st natsjs.Stream) (uint64, error) {
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("esdb relay: stream info: %w: %w", eventstore.ErrUnavailable, err)
	}
	if info.State.LastSeq == 0 {
		return 0, nil
	}
	m, err := st.GetMsg(ctx, info.State.LastSeq)
	if errors.Is(err, natsjs.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("esdb relay: read last message: %w: %w", eventstore.ErrUnavailable, err)
	}
	v := m.Header.Get(HeaderPosition)
	if v == "" {
		return 0, nil
	}
	pos, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("esdb relay: last message has a bad %s %q", HeaderPosition, v)
	}
	return pos, nil
}

// forward publishes every event of sub to JetStream, in order.
func forward(ctx context.Context, sub eventstore.Subscription, js natsjs.JetStream, service string, checkpoint func(uint64) error) error {
	for {
		e, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("esdb relay: %w", err)
		}
		subject, err := jetstream.Subject(service, e.Stream)
		if err != nil {
			return fmt.Errorf("esdb relay: event %s: %w", e.ID, err)
		}
		m, err := EncodeMsg(subject, &e)
		if err != nil {
			return fmt.Errorf("esdb relay: %w", err)
		}
		m.Header.Set(HeaderPosition, strconv.FormatUint(e.Position, 10))
		if _, err := js.PublishMsg(ctx, m); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("esdb relay: publish %s: %w: %w", e.ID, eventstore.ErrUnavailable, err)
		}
		if checkpoint != nil {
			if err := checkpoint(e.Position); err != nil {
				return fmt.Errorf("esdb relay: checkpoint %d: %w", e.Position, err)
			}
		}
	}
}

// EncodeMsg builds the NATS message for one event in the jetstream
// backend's format: a commit of that event (jetstream.EncodeCommit), so
// jetstream.Decode gives the event back (with the JetStream position as its
// position), and Nats-Msg-Id = event id, so a relay that resumes from an
// older checkpoint does not publish it twice.
func EncodeMsg(subject string, e *eventstore.RecordedEvent) (*nats.Msg, error) {
	m, err := jetstream.EncodeCommit(subject, []eventstore.RecordedEvent{*e})
	if err != nil {
		return nil, err
	}
	m.Header.Set(natsjs.MsgIDHeader, e.ID)
	return m, nil
}
