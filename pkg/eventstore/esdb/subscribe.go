package esdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"

	"github.com/custody/custody/pkg/eventstore"
)

// SubscribeAll implements eventstore.Store with an EventStoreDB catch-up
// subscription to $all, filtered on the server to the service's stream
// prefix. It delivers every event of the service with Position >= from: those
// already stored, then new ones as they are appended. A dropped subscription
// (server restart, leader change, network) is resumed after the last event
// seen; if it cannot be resumed for about a minute, Next returns an error
// wrapping eventstore.ErrUnavailable.
func (s *Store) SubscribeAll(ctx context.Context, from uint64) (eventstore.Subscription, error) {
	if s.closed.Load() {
		return nil, eventstore.ErrClosed
	}
	var first []eventstore.RecordedEvent
	var after *esdb.Position // subscribe after this event; nil: from the start
	if from > 1 {
		// EventStoreDB subscribes *after* an exact event position. Find the
		// last event now: everything appended later is after it. If it is at
		// or past from, the first event at or past from is the start.
		last, err := s.lastInAll(ctx)
		if err != nil {
			return nil, err
		}
		if last != nil && last.Position.Commit >= from {
			ev, err := s.firstAtOrAfter(ctx, from)
			if err != nil {
				return nil, err
			}
			if ev == nil {
				return nil, fmt.Errorf("esdb: subscribe from %d: no event at or after it, though %d exists", from, last.Position.Commit)
			}
			e, ok, err := s.ours(ev)
			if err != nil {
				return nil, err
			}
			if ok {
				first = append(first, e)
			}
			p := ev.OriginalEvent().Position
			after = &p
		} else if last != nil {
			p := last.Position
			after = &p
		}
	}
	return s.subscribe(ctx, from, after, first)
}

// firstAtOrAfter is the first event of $all (any stream) whose position is
// from or later, or nil if there is none.
func (s *Store) firstAtOrAfter(ctx context.Context, from uint64) (*esdb.ResolvedEvent, error) {
	rs, ev, err := s.openAll(ctx, from)
	if err != nil || rs == nil {
		return nil, err
	}
	defer rs.Close()
	for ev.OriginalEvent() == nil || ev.OriginalEvent().Position.Commit < from {
		if ev, err = rs.Recv(); errors.Is(err, io.EOF) {
			return nil, nil
		} else if err != nil {
			return nil, s.mapErr(ctx, "read all", err)
		}
	}
	return ev, nil
}

// subscribe starts the subscription after the given event (nil: from the
// beginning of $all), delivering first before anything else.
func (s *Store) subscribe(ctx context.Context, from uint64, after *esdb.Position, first []eventstore.RecordedEvent) (*subscription, error) {
	// The subscription outlives ctx (as the port's subscriptions do); it
	// keeps ctx's values, and ends on Close.
	subCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	sub := &subscription{s: s, from: from, after: after, ctx: subCtx, cancel: cancel, ch: make(chan result, 64), done: make(chan struct{})}
	es, err := sub.open()
	if err != nil {
		cancel()
		return nil, err
	}
	go sub.pump(es, first)
	return sub, nil
}

type result struct {
	e   eventstore.RecordedEvent
	err error
}

type subscription struct {
	s      *Store
	from   uint64
	after  *esdb.Position // last event received from the server (owned by pump)
	ctx    context.Context
	cancel context.CancelFunc
	ch     chan result
	done   chan struct{}
	once   sync.Once
}

func (sub *subscription) open() (*esdb.Subscription, error) {
	var start esdb.AllPosition = esdb.Start{}
	if sub.after != nil {
		start = *sub.after
	}
	es, err := sub.s.client.SubscribeToAll(sub.ctx, esdb.SubscribeToAllOptions{
		From:   start,
		Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{sub.s.prefix}},
	})
	if err != nil {
		return nil, sub.s.mapErr(sub.ctx, "subscribe", err)
	}
	return es, nil
}

// resumeFor is how long a dropped subscription is retried before Next
// reports the failure.
const resumeFor = time.Minute

func (sub *subscription) pump(es *esdb.Subscription, first []eventstore.RecordedEvent) {
	defer close(sub.ch)
	defer func() { es.Close() }()
	for _, e := range first {
		if !sub.send(result{e: e}) {
			return
		}
	}
	for {
		ev := es.Recv()
		switch {
		case ev.EventAppeared != nil:
			r := ev.EventAppeared.Event
			if r == nil {
				continue
			}
			if sub.after != nil && !positionAfter(r.Position, *sub.after) {
				continue // already delivered (the start event, or a resumed subscription)
			}
			p := r.Position
			sub.after = &p
			e, ok, err := sub.s.ours(ev.EventAppeared)
			if err != nil {
				sub.send(result{err: err})
				return
			}
			if !ok || e.Position < sub.from {
				continue
			}
			if !sub.send(result{e: e}) {
				return
			}
		case ev.SubscriptionDropped != nil:
			if sub.isDone() {
				return
			}
			next, err := sub.resume(ev.SubscriptionDropped.Error)
			if err != nil {
				sub.send(result{err: err})
				return
			}
			if next == nil {
				return // closed while resuming
			}
			es.Close()
			es = next
		}
		// Checkpoints, caught-up and fell-behind notices need nothing.
	}
}

// resume reopens a dropped subscription after the last event received, with
// backoff, as long as the failure looks transient.
func (sub *subscription) resume(cause error) (*esdb.Subscription, error) {
	deadline := time.Now().Add(resumeFor)
	wait := 100 * time.Millisecond
	for {
		if !transient(cause) {
			return nil, sub.s.mapErr(context.Background(), "subscription dropped", cause)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("esdb: subscription dropped and not resumed for %v: %w: %w", resumeFor, eventstore.ErrUnavailable, cause)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-sub.done:
			t.Stop()
			return nil, nil
		}
		wait = min(2*wait, 5*time.Second)
		es, err := sub.open()
		if err == nil {
			return es, nil
		}
		cause = err
	}
}

// transient: worth resubscribing after.
func transient(err error) bool {
	switch errorCode(err) {
	case esdb.ErrorCodeAccessDenied, esdb.ErrorCodeUnauthenticated, esdb.ErrorCodeConnectionClosed,
		esdb.ErrorCodeUnsupportedFeature, esdb.ErrorCodeParsing:
		return false
	}
	if errors.Is(err, eventstore.ErrUnavailable) {
		return true
	}
	switch grpcCode(err) {
	case codes.PermissionDenied, codes.Unauthenticated, codes.InvalidArgument, codes.Unimplemented,
		codes.NotFound, codes.FailedPrecondition, codes.Canceled:
		return false
	}
	return true
}

// positionAfter orders $all positions: by commit, then prepare position.
func positionAfter(p, q esdb.Position) bool {
	return p.Commit > q.Commit || p.Commit == q.Commit && p.Prepare > q.Prepare
}

func (sub *subscription) isDone() bool {
	select {
	case <-sub.done:
		return true
	default:
		return false
	}
}

func (sub *subscription) send(r result) bool {
	select {
	case sub.ch <- r:
		return true
	case <-sub.done:
		return false
	}
}

// Next implements eventstore.Subscription.
func (sub *subscription) Next(ctx context.Context) (eventstore.RecordedEvent, error) {
	select {
	case r, ok := <-sub.ch:
		if !ok {
			return eventstore.RecordedEvent{}, eventstore.ErrClosed
		}
		return r.e, r.err
	case <-ctx.Done():
		return eventstore.RecordedEvent{}, ctx.Err()
	case <-sub.done:
		return eventstore.RecordedEvent{}, eventstore.ErrClosed
	}
}

// Close implements eventstore.Subscription.
func (sub *subscription) Close() error {
	sub.once.Do(func() {
		close(sub.done)
		sub.cancel()
	})
	return nil
}
