package platform

import (
	"context"
	"log/slog"
	"sync"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/projection"
)

// feeds shares one subscription per source service among the read models a
// process folds from it. In `custody run` the order service's events feed
// the order read model, the audit index and trust's custody record. Each
// read model had its own subscription. A message was then delivered, parsed
// and decoded once per read model. Now that happens once, and each event is
// applied to the read models in turn.
//
// A read model that starts after its source's feed has moved on first
// catches up on a subscription of its own, then joins the feed once it
// has applied everything the feed has. The feed applies an event only to
// members that do not have it yet, so the handover neither skips nor
// repeats an event. A read model restored from a checkpoint starts as one
// that has applied everything up to the checkpoint: the first member
// starts the subscription after its position, and one that starts behind
// the feed catches up alone from its position, as any late joiner.
type feeds struct {
	mu       sync.Mutex
	bySource map[string]*feed
}

func newFeeds() *feeds { return &feeds{bySource: map[string]*feed{}} }

// feed is one source's shared subscription and the read models on it.
type feed struct {
	source string
	log    *slog.Logger

	mu      sync.Mutex // held while an event is applied to the members
	members map[*member]bool
	pos     uint64             // the last position the feed has applied
	stop    context.CancelFunc // of the subscription; nil when none runs
}

// member is one read model on a feed.
type member struct {
	apply   func(eventstore.RecordedEvent)
	skipped func(pos uint64) // nil: it is not told about unreadable messages
	applied uint64           // the last position applied to it
	joined  bool
}

func (fs *feeds) feed(source string, log *slog.Logger) *feed {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f, ok := fs.bySource[source]
	if !ok {
		f = &feed{source: source, log: log.With("feed", source), members: map[*member]bool{}}
		fs.bySource[source] = f
	}
	return f
}

// follow folds st's events into m until ctx ends, on the source's shared
// subscription once m has caught up with it.
func (fs *feeds) follow(ctx context.Context, log *slog.Logger, source string, st projection.Source, m *member) {
	f := fs.feed(source, log)
	if !f.join(st, m) {
		// Behind the feed: catch up alone, and join as soon as m has what
		// the feed has applied.
		own, stop := context.WithCancel(ctx)
		apply := func(e eventstore.RecordedEvent) {
			if m.joined {
				return // an event the subscription had already delivered
			}
			m.apply(e)
			m.applied = e.Position
			if f.join(st, m) {
				stop()
			}
		}
		var skipped func(uint64)
		if m.skipped != nil {
			skipped = func(pos uint64) {
				if !m.joined {
					m.skipped(pos)
					m.applied = max(m.applied, pos)
				}
			}
		}
		projection.FollowSkipping(own, log, st, m.applied+1, apply, skipped)
		stop()
	}
	<-ctx.Done()
	f.leave(m)
}

// join adds m to the feed if m has applied everything the feed has, and
// starts the feed's subscription (on st) if none runs.
func (f *feed) join(st projection.Source, m *member) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m.applied < f.pos {
		return false
	}
	f.members[m], m.joined = true, true
	if f.stop == nil {
		// The subscription starts after what m has: a read model restored
		// from a checkpoint does not have the feed read what it holds.
		// Members with less catch up alone, as late joiners do.
		f.pos = max(f.pos, m.applied)
		ctx, stop := context.WithCancel(context.Background())
		f.stop = stop
		go projection.FollowSkipping(ctx, f.log, st, f.pos+1, f.apply, f.skipped)
	}
	return true
}

// leave takes m off the feed; the last to leave stops its subscription.
func (f *feed) leave(m *member) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.members[m] {
		return
	}
	delete(f.members, m)
	if len(f.members) == 0 && f.stop != nil {
		f.stop()
		f.stop = nil
	}
}

func (f *feed) apply(e eventstore.RecordedEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.members) > 1 {
		e.Shared = &eventstore.Shared{} // its payload is decoded once for all
	}
	for m := range f.members {
		if e.Position > m.applied {
			m.apply(e)
			m.applied = e.Position
		}
	}
	f.pos = max(f.pos, e.Position)
}

func (f *feed) skipped(pos uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for m := range f.members {
		if pos > m.applied && m.skipped != nil {
			m.skipped(pos)
		}
		m.applied = max(m.applied, pos)
	}
	f.pos = max(f.pos, pos)
}
