package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/services/fulfilment/domain"
)

// WatchKind says what a WatchMessage is.
type WatchKind int

// Watch message kinds.
const (
	// KindSnapshot: a fulfilment as it is at the snapshot's cursor.
	KindSnapshot WatchKind = iota + 1
	// KindSnapshotComplete: the snapshot is complete; changes follow.
	KindSnapshotComplete
	// KindChange: a fulfilment changed.
	KindChange
)

// WatchMessage is one message of a watch. Cursor is a position in the
// fulfilment store: a watch resumed from it delivers what follows.
type WatchMessage struct {
	Kind      WatchKind
	Cursor    uint64
	EventType string
	View      View
}

// ErrServiceStopping ends watches when the service stops.
var ErrServiceStopping = errors.New("the fulfilment service is stopping")

// BehindError ends a watch whose client did not keep up with the changes;
// resuming from Cursor (the last one sent) loses nothing.
type BehindError struct{ Cursor uint64 }

func (e *BehindError) Error() string {
	return fmt.Sprintf("the watch fell behind the changes; resume it with cursor %d", e.Cursor)
}

// CursorError: a cursor that this store never handed out.
type CursorError struct{ Cursor, Last uint64 }

func (e *CursorError) Error() string {
	return fmt.Sprintf("cursor %d is beyond the newest change (%d): not a cursor of this service", e.Cursor, e.Last)
}

// Watch streams vendorID's fulfilments to send until ctx ends, send fails,
// the service stops or the client falls behind.
//
// Without a cursor (from == nil) it first sends every current fulfilment of
// the vendor (KindSnapshot, newest first) and KindSnapshotComplete, all with
// the cursor at which the snapshot was taken; then every change after it.
// With a cursor it sends every change after it: first those already stored
// (replayed from the store, each with the fulfilment as it was after that
// change), then live ones. Changes come in store order, one message per
// event of the vendor's fulfilments, so a client that resumes with the last
// cursor it received misses nothing and sees nothing twice.
func (s *Service) Watch(ctx context.Context, vendorID string, from *uint64, send func(WatchMessage) error) error {
	last, err := s.d.Store.LastPosition(ctx)
	if err != nil {
		return err
	}
	target := last
	if from != nil {
		if *from > last {
			return &CursorError{Cursor: *from, Last: last}
		}
		target = *from
	}
	if !s.rm.pos.Reach(ctx, s.cfg.ReadWait, target) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: the fulfilment read model is behind the store", eventstore.ErrUnavailable)
	}
	w, at, snap, err := s.rm.subscribe(vendorID, s.cfg.WatchBuffer, from == nil)
	if err != nil {
		return err
	}
	defer s.rm.unsubscribe(vendorID, w)
	cursor := at
	if from == nil {
		for _, v := range snap {
			if err := send(WatchMessage{Kind: KindSnapshot, Cursor: at, View: v}); err != nil {
				return err
			}
		}
		if err := send(WatchMessage{Kind: KindSnapshotComplete, Cursor: at}); err != nil {
			return err
		}
	} else {
		cursor = *from
		if err := s.replay(ctx, vendorID, *from+1, at, func(m WatchMessage) error {
			cursor = m.Cursor
			return send(m)
		}); err != nil {
			return err
		}
		cursor = max(cursor, at)
	}
	for {
		select {
		case c, ok := <-w.ch:
			if !ok {
				return &BehindError{Cursor: cursor}
			}
			if err := send(WatchMessage{Kind: KindChange, Cursor: c.Position, EventType: c.EventType, View: c.View}); err != nil {
				return err
			}
			cursor = c.Position
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return ErrServiceStopping
		}
	}
}

// replay sends the changes of vendorID's fulfilments stored at positions
// from..to, each with the fulfilment as it was right after it.
func (s *Service) replay(ctx context.Context, vendorID string, from, to uint64, send func(WatchMessage) error) error {
	const batch = 256
	views := map[string]*View{} // the vendor's fulfilments seen so far
	others := map[string]bool{} // other vendors' fulfilments
	for pos := from; pos <= to; {
		recs, err := s.d.Store.ReadAll(ctx, pos, batch)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			return nil
		}
		for _, rec := range recs {
			if rec.Position > to {
				return nil
			}
			pos = rec.Position + 1
			agg, id, err := eventstore.SplitStream(rec.Stream)
			if err != nil || agg != domain.Decider.Aggregate || others[id] {
				continue
			}
			v := views[id]
			if v == nil || v.Revision+1 != rec.Revision {
				f, mine, err := s.foldUntil(ctx, rec.Stream, id, vendorID, rec.Revision)
				if err != nil {
					return err
				}
				if !mine {
					others[id] = true
					continue
				}
				v = &View{Fulfilment: f, Revision: rec.Revision}
			} else {
				ev, err := es.Decode(rec)
				if err != nil {
					return err
				}
				v = &View{Fulfilment: domain.Evolve(v.Fulfilment, ev.Payload), Revision: rec.Revision}
			}
			views[id] = v
			if err := send(WatchMessage{Kind: KindChange, Cursor: rec.Position, EventType: rec.Type, View: *v}); err != nil {
				return err
			}
		}
	}
	return nil
}

// foldUntil rebuilds a fulfilment as it was at revision rev, if it belongs
// to vendorID (mine); the first event (FulfilmentRequested) tells whose it
// is, so other vendors' fulfilments cost one read.
func (s *Service) foldUntil(ctx context.Context, stream, id, vendorID string, rev uint64) (domain.Fulfilment, bool, error) {
	first, err := s.d.Store.ReadStream(ctx, stream, 0, 1)
	if err != nil {
		return domain.Fulfilment{}, false, err
	}
	if len(first) == 0 {
		return domain.Fulfilment{}, false, nil
	}
	ev, err := es.Decode(first[0])
	if err != nil {
		return domain.Fulfilment{}, false, err
	}
	f := domain.Evolve(domain.Decider.Initial(id), ev.Payload)
	if f.VendorID != vendorID {
		return domain.Fulfilment{}, false, nil
	}
	if rev == 0 {
		return f, true, nil
	}
	recs, err := s.d.Store.ReadStream(ctx, stream, 1, int(rev))
	if err != nil {
		return domain.Fulfilment{}, false, err
	}
	for _, r := range recs {
		ev, err := es.Decode(r)
		if err != nil {
			return domain.Fulfilment{}, false, err
		}
		f = domain.Evolve(f, ev.Payload)
	}
	return f, true, nil
}
