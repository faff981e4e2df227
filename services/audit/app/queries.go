package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/services/audit/domain"
)

// TimelineQuery asks for one page of an order's timeline.
type TimelineQuery struct {
	OrderID   string
	PageSize  int
	PageToken string
	Allow     Allow
}

// Timeline is one page of an order's timeline.
type Timeline struct {
	Events        []domain.TimelineEvent
	NextPageToken string
	// Streams are every stream of the order, "service/stream", sorted.
	Streams []string
	Total   int
}

// Timeline returns one page of every event of an order, from every
// service, in timeline order (recorded time, service, position). A page
// token this service did not issue for the order is a *fault.InvalidError
// on page_token.
func (s *Service) Timeline(ctx context.Context, q TimelineQuery) (Timeline, error) {
	var after *domain.Cursor
	if q.PageToken != "" {
		c, err := domain.DecodeToken(q.OrderID, q.PageToken)
		if err != nil {
			var v fault.Violations
			v.Add("page_token", "%v", err)
			return Timeline{}, v.Err()
		}
		after = &c
	}
	v, err := s.order(ctx, q.OrderID, q.Allow)
	if err != nil {
		return Timeline{}, err
	}
	page := domain.Page(v.Entries, after, q.PageSize)
	out := Timeline{Total: page.Total}
	shown, err := s.read(ctx, page.Entries)
	if err != nil {
		return Timeline{}, err
	}
	out.Events = shown
	if page.Next != nil {
		out.NextPageToken = domain.EncodeToken(q.OrderID, *page.Next)
	}
	for _, r := range v.Streams() {
		out.Streams = append(out.Streams, r.String())
	}
	return out, nil
}

// read reads the events entries stand for from their stores (the index
// keeps where they are, not what they hold) and renders them, their
// personal fields revealed, in the entries' order. An event its store
// cannot return now is shown with why; a store that cannot answer fails
// the read.
func (s *Service) read(ctx context.Context, entries []*domain.Entry) ([]domain.TimelineEvent, error) {
	got, err := s.fetch(ctx, entries)
	if err != nil {
		return nil, err
	}
	reveal := s.revealer(ctx)
	out := make([]domain.TimelineEvent, len(entries))
	for i, e := range entries {
		if got[i].ok {
			out[i] = domain.Render(e.Service, got[i].ev, reveal)
		} else {
			out[i] = domain.Unread(e, got[i].cause)
		}
	}
	return out, nil
}

// fetched is an indexed event as its store returns it now: ok, or why not.
type fetched struct {
	ev    eventstore.RecordedEvent
	ok    bool
	cause error
}

// fetch reads the events entries stand for from their stores, in the
// entries' order: one read for a stretch of a stream, one per event of a
// long stream. An event its store cannot return now is fetched with why; a
// store that cannot answer fails the fetch.
func (s *Service) fetch(ctx context.Context, entries []*domain.Entry) ([]fetched, error) {
	byStream := map[domain.StreamRef][]int{}
	for i, e := range entries {
		byStream[e.Ref()] = append(byStream[e.Ref()], i)
	}
	out := make([]fetched, len(entries))
	for ref, idx := range byStream {
		st, err := s.store(ctx, ref.Service)
		if err != nil {
			return nil, err
		}
		if st == nil {
			return nil, fmt.Errorf("%w: %s events are not open", eventstore.ErrUnavailable, ref.Service)
		}
		lo, hi := entries[idx[0]].Event.Revision, entries[idx[0]].Event.Revision
		for _, i := range idx {
			lo, hi = min(lo, entries[i].Event.Revision), max(hi, entries[i].Event.Revision)
		}
		got := map[uint64]eventstore.RecordedEvent{}
		var cause error
		if span := hi - lo + 1; span <= uint64(2*len(idx)) {
			// Most of a stretch of the stream: one read.
			evs, err := st.ReadStream(ctx, ref.Stream, lo, int(span))
			cause = err
			for _, ev := range evs {
				got[ev.Revision] = ev
			}
		} else {
			// A few events of a long stream (a product's stock): one each.
			for _, i := range idx {
				evs, err := st.ReadStream(ctx, ref.Stream, entries[i].Event.Revision, 1)
				if err != nil {
					cause = err
					continue
				}
				for _, ev := range evs {
					got[ev.Revision] = ev
				}
			}
		}
		if errors.Is(cause, eventstore.ErrUnavailable) || ctx.Err() != nil {
			return nil, cmp.Or(ctx.Err(), cause)
		}
		for _, i := range idx {
			rev := entries[i].Event.Revision
			ev, ok := got[rev]
			switch {
			case ok:
				out[i] = fetched{ev: ev, ok: true}
			case cause != nil:
				out[i] = fetched{cause: cause}
			default:
				out[i] = fetched{cause: fmt.Errorf("revision %d is missing", rev)}
			}
		}
	}
	return out, nil
}

// Verify re-reads every stream the order's events are in from the stores
// and checks their hash chains from revision 0 (a stream shared by many
// orders, such as a product's stock, is checked whole: it is one chain),
// against the hashes the index saw too.
func (s *Service) Verify(ctx context.Context, orderID string, allow Allow) (domain.Verification, error) {
	v, err := s.order(ctx, orderID, allow)
	if err != nil {
		return domain.Verification{}, err
	}
	var checks []domain.StreamCheck
	for _, ref := range v.Streams() {
		c, _, err := s.check(ctx, ref)
		if err != nil {
			return domain.Verification{}, err
		}
		checks = append(checks, c)
	}
	gaps, err := s.storeGaps(ctx)
	if err != nil {
		return domain.Verification{}, err
	}
	return domain.Verify(checks, gaps), nil
}

// check reads a whole stream and verifies it. It returns the events it
// could read (all of them unless one is unreadable) with the verdict; an
// error only when the store cannot answer.
func (s *Service) check(ctx context.Context, ref domain.StreamRef) (domain.StreamCheck, []eventstore.RecordedEvent, error) {
	s.mu.RLock()
	seen, err := s.idx.seen(ref)
	s.mu.RUnlock()
	if err != nil {
		return domain.StreamCheck{}, nil, err
	}
	st, err := s.store(ctx, ref.Service)
	if err != nil {
		return domain.StreamCheck{}, nil, err
	}
	if st == nil {
		return domain.StreamCheck{}, nil, fmt.Errorf("%w: %s events are not open", eventstore.ErrUnavailable, ref.Service)
	}
	events, err := st.ReadStream(ctx, ref.Stream, 0, 0)
	switch {
	case err == nil:
		return domain.CheckStream(ref, events, seen), events, nil
	case errors.Is(err, eventstore.ErrStreamNotFound):
		return domain.CheckStream(ref, nil, seen), nil, nil
	case errors.Is(err, eventstore.ErrUnavailable), ctx.Err() != nil:
		return domain.StreamCheck{}, nil, err
	}
	// Some event of the stream cannot be read: find which, one at a time.
	good, cause := s.readUntilUnreadable(ctx, st, ref.Stream)
	if ctx.Err() != nil {
		return domain.StreamCheck{}, nil, ctx.Err()
	}
	return domain.Unreadable(ref, good, seen, cause), good, nil
}

func (s *Service) readUntilUnreadable(ctx context.Context, st Store, stream string) ([]eventstore.RecordedEvent, error) {
	var good []eventstore.RecordedEvent
	for {
		evs, err := st.ReadStream(ctx, stream, uint64(len(good)), 1)
		if err != nil {
			return good, err
		}
		if len(evs) == 0 || evs[0].Revision != uint64(len(good)) {
			return good, fmt.Errorf("revision %d is missing", len(good))
		}
		good = append(good, evs[0])
	}
}

// Replayed is an order replayed as of a moment, with the verdict on the
// chains of the streams folded.
type Replayed struct {
	domain.Snapshot
	// Chain verifies the streams folded (order, fulfilments, claims,
	// ledger), whole, as read for the replay.
	Chain domain.Verification
}

// Replay folds the order's aggregates — the order, its fulfilments, its
// claims and its ledger — as they stood at asOf (zero: now), re-read from
// the stores, with the owning services' deciders.
func (s *Service) Replay(ctx context.Context, orderID string, asOf time.Time, allow Allow) (Replayed, error) {
	v, err := s.order(ctx, orderID, allow)
	if err != nil {
		return Replayed{}, err
	}
	if asOf.IsZero() {
		asOf = s.clock.Now()
	}
	var checks []domain.StreamCheck
	read := func(ref domain.StreamRef) ([]es.Event, error) {
		if st, err := s.store(ctx, ref.Service); err != nil || st == nil {
			return nil, err // nil, nil: the service never ran, nothing of it to fold
		}
		c, recs, err := s.check(ctx, ref)
		if err != nil {
			return nil, err
		}
		if len(recs) > 0 || c.Broken != nil {
			checks = append(checks, c)
		}
		evs := make([]es.Event, 0, len(recs))
		for _, r := range recs {
			ev, err := es.Decode(r)
			if err != nil {
				continue // unknown type (Evolve would ignore it) or unreadable (the check says so)
			}
			evs = append(evs, ev)
		}
		return evs, nil
	}

	h := domain.Histories{Fulfilments: map[string][]es.Event{}}
	if h.Order, err = read(domain.OrderAggregate.Stream(orderID)); err != nil {
		return Replayed{}, err
	}
	ids := v.StreamsOf(domain.FulfilmentAggregate.Service, domain.FulfilmentAggregate.Name)
	ids = append(ids, domain.FulfilmentIDs(domain.FoldOrder(orderID, h.Order))...)
	tried := map[string]bool{}
	for _, id := range ids {
		if tried[id] {
			continue
		}
		tried[id] = true
		evs, err := read(domain.FulfilmentAggregate.Stream(id))
		if err != nil {
			return Replayed{}, err
		}
		if len(evs) > 0 {
			h.Fulfilments[id] = evs
		}
	}
	if h.Claims, err = read(domain.ClaimsAggregate.Stream(orderID)); err != nil {
		return Replayed{}, err
	}
	if h.Ledger, err = read(domain.LedgerAggregate.Stream(orderID)); err != nil {
		return Replayed{}, err
	}
	gaps, err := s.storeGaps(ctx)
	if err != nil {
		return Replayed{}, err
	}
	snap := domain.Replay(orderID, asOf, h)
	if snap.MoneyErr != nil {
		return Replayed{}, snap.MoneyErr
	}
	return Replayed{Snapshot: snap, Chain: domain.Verify(checks, gaps)}, nil
}
