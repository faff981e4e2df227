package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/pkg/bus"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/eventstore/esdb"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/projection"
)

// The runtime's one policy for every reaction: a failed event is retried
// after 200ms, 1s, 2s, then every 5s, and parked after MaxDeliver
// deliveries (about a minute and a half: it outlasts a store hiccup).
var (
	reactionBackoff    = []time.Duration{200 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second}
	reactionMaxDeliver = 20
)

const (
	defaultConcurrency = 32
	// catchUpTimeout bounds how long a module's own projections may take
	// to catch up before the process serves.
	catchUpTimeout = 2 * time.Minute
)

// runtime runs the parts of one module: it follows the projections,
// subscribes the reactions, runs the workers and stops them all.
type runtime struct {
	module string
	d      Deps
	log    *slog.Logger
	parts  Parts

	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu          sync.Mutex
	projections []*followed
	reactions   []*subscribed
}

// followed is a projection and, once opened, its source store.
type followed struct {
	p        Projection
	pos      *projection.Position
	store    Store         // nil until the source's stream exists
	caughtUp chan struct{} // closed once it has caught up, in this run
	once     sync.Once
	applied  atomic.Uint64 // the last position folded (or restored) in this run
	// applying is held while an event is folded: a checkpoint is taken
	// between two events.
	applying sync.Mutex
	target   atomic.Uint64 // the source's newest position when it started
}

func (f *followed) markCaughtUp() {
	f.once.Do(func() {
		f.pos.MarkReady()
		close(f.caughtUp)
	})
}

// subscribed is a reaction and, once subscribed, its consumer.
type subscribed struct {
	r        Reaction
	consumer *bus.Consumer // nil until the source's stream exists
}

// startModule builds m and starts its parts: it returns once the module's
// own projections have caught up (bounded by ctx and catchUpTimeout);
// everything else keeps starting in the background.
func startModule(ctx context.Context, m Module, d Deps) (*runtime, error) {
	parts, err := m.New(ctx, d)
	if err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	rt := &runtime{module: m.Name, d: d, log: d.Logger, parts: parts, cancel: cancel}
	var own []*followed
	for _, p := range parts.Projections {
		f := &followed{p: p, pos: p.Position, caughtUp: make(chan struct{})}
		if f.pos == nil {
			f.pos = projection.New()
		}
		rt.projections = append(rt.projections, f)
		if p.Source == m.Name {
			own = append(own, f)
		}
		rt.wg.Go(func() { rt.follow(bg, f) })
	}
	if d.Backend.esdb() && !d.ReadOnly {
		// The module's events reach the other services through NATS: its
		// relay counts as one of its own projections, caught up before it
		// serves and waited for by Settled.
		f := &followed{p: Projection{Name: "relay of " + m.Name + " events to NATS", Source: m.Name},
			pos: projection.New(), caughtUp: make(chan struct{})}
		rt.projections = append(rt.projections, f)
		own = append(own, f)
		rt.wg.Go(func() { rt.relay(bg, f) })
	}
	wctx, wcancel := context.WithTimeout(ctx, catchUpTimeout)
	defer wcancel()
	for _, f := range own {
		select {
		case <-f.caughtUp:
		case <-wctx.Done():
			_ = rt.stop(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("%s: read model %q did not catch up with the %s events: at position %d of %d after %s: %w",
				m.Name, f.p.Name, f.p.Source, f.applied.Load(), f.target.Load(), catchUpTimeout, wctx.Err())
		}
	}
	if d.damaged.has(m.Name) {
		// Its store takes no writes: reacting or firing deadlines would
		// only fail (and park events); they resume once it is repaired.
		d.Logger.Warn("serving read-only: the module's event store is damaged; reactions and deadlines do not run", "module", m.Name)
		return rt, nil
	}
	for _, r := range parts.Reactions {
		s := &subscribed{r: r}
		rt.reactions = append(rt.reactions, s)
		rt.wg.Go(func() { rt.subscribe(bg, s) })
	}
	for _, w := range parts.Workers {
		rt.wg.Go(func() { w(bg) })
	}
	return rt, nil
}

// follow opens the projection's source (waiting for its stream), notes
// the position to catch up with, and folds every event into it.
func (rt *runtime) follow(ctx context.Context, f *followed) {
	log := rt.log.With("projection", f.p.Name, "source", f.p.Source)
	st, err := rt.d.OpenStoreOf(ctx, f.p.Source)
	for err != nil {
		if ctx.Err() != nil {
			return
		}
		log.Warn("opening the source's events; will retry", "err", err)
		projection.NewBackoff().Sleep(ctx)
		st, err = rt.d.OpenStoreOf(ctx, f.p.Source)
	}
	var target uint64
	for b := projection.NewBackoff(); ; b.Sleep(ctx) {
		if target, err = st.LastPosition(ctx); err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		log.Warn("reading the source's last position; will retry", "err", err)
	}
	rt.mu.Lock()
	f.store = st
	rt.mu.Unlock()
	f.target.Store(target)
	// A checkpoint restores the read model and where it stands.
	var from uint64
	name := checkpointName(rt.module, f.p.Name)
	checkpointed := f.p.Checkpoint != nil && rt.d.checkpoints != nil && !rt.d.ReadOnly
	if checkpointed {
		from = rt.d.checkpoints.load(ctx, log, name, f.p.Checkpoint, target)
		f.pos.Advance(from)
		f.applied.Store(from)
	}
	if f.p.Stored != nil {
		for b := projection.NewBackoff(); ; b.Sleep(ctx) {
			if from, err = attachStored(log, rt.d.readModels, name, f.p.Stored, target); err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			log.Error("opening the stored read model; will retry", "err", err)
		}
		f.pos.Advance(from)
		f.applied.Store(from)
	}
	if from >= target {
		f.markCaughtUp()
	}
	apply := func(e eventstore.RecordedEvent) {
		f.applying.Lock()
		f.p.Apply(e)
		f.pos.Advance(e.Position)
		f.applied.Store(e.Position)
		f.applying.Unlock()
		if e.Position >= target {
			f.markCaughtUp()
		}
	}
	var skipped func(uint64)
	if f.p.Skipped != nil {
		skipped = func(pos uint64) {
			f.applying.Lock()
			f.p.Skipped(pos)
			f.pos.Advance(pos)
			f.applied.Store(pos)
			f.applying.Unlock()
			if pos >= target {
				f.markCaughtUp()
			}
		}
	}
	if checkpointed {
		rt.wg.Go(func() { rt.keepCheckpointed(ctx, log, f, name, from) })
	}
	rt.d.feeds.follow(ctx, log, f.p.Source, st, &member{apply: apply, skipped: skipped, applied: from})
}

// relay forwards the module's own events from EventStoreDB into its
// JetStream stream (esdb.Relay, which resumes after what it forwarded
// before), restarting it after a failure, and tracks how far it got in f.
func (rt *runtime) relay(ctx context.Context, f *followed) {
	log := rt.log.With("relay", f.p.Source)
	var st Store
	var target, done uint64
	for b := projection.NewBackoff(); ctx.Err() == nil; b.Sleep(ctx) {
		var err error
		if st == nil {
			if st, err = rt.d.OpenStore(ctx, f.p.Source); err != nil {
				st = nil
				log.Warn("opening the event store; will retry", "err", err)
				continue
			}
		}
		if target, err = st.LastPosition(ctx); err == nil {
			done, err = esdb.RelayedUpTo(ctx, rt.d.NATS, f.p.Source)
		}
		if err == nil {
			break
		}
		log.Warn("reading where the relay stands; will retry", "err", err)
	}
	src, ok := st.(*esdb.Store)
	if ctx.Err() != nil || !ok {
		return
	}
	rt.mu.Lock()
	f.store = st
	rt.mu.Unlock()
	progress := func(pos uint64) error {
		f.pos.Advance(pos)
		f.applied.Store(pos)
		if pos >= target {
			f.markCaughtUp()
		}
		return nil
	}
	_ = progress(done)
	for b := projection.NewBackoff(); ctx.Err() == nil; b.Sleep(ctx) {
		err := esdb.Relay(ctx, src, rt.d.NATS, 0, progress, esdb.WithReplicas(rt.d.Replicas))
		if ctx.Err() == nil {
			log.Warn("relaying events to NATS; will restart", "err", err)
		}
	}
}

// subscribe starts the reaction's durable consumer once its source's
// stream exists, and stops it when ctx ends.
func (rt *runtime) subscribe(ctx context.Context, s *subscribed) {
	log := rt.log.With("reaction", s.r.Name, "source", s.r.Source)
	if rt.d.JetStream == nil {
		log.Warn("no JetStream: the reaction does not run")
		return
	}
	waiting := false
	for b := projection.NewBackoff(); ctx.Err() == nil; b.Sleep(ctx) {
		c, err := bus.Subscribe(ctx, rt.d.JetStream, bus.Config{
			Name: s.r.Name, SourceService: s.r.Source, EventTypes: s.r.EventTypes, FilterSubjects: s.r.subjects(),
			Concurrency: cmp(s.r.Concurrency, defaultConcurrency), OrderBy: s.r.OrderBy,
			Backoff: reactionBackoff, MaxDeliver: reactionMaxDeliver,
			Replicas: rt.d.Replicas, Logger: rt.log,
		}, s.r.Handle)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			if !waiting {
				log.Info("waiting for the source's event stream")
				waiting = true
			}
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("subscribing; will retry", "err", err)
			}
			continue
		}
		rt.mu.Lock()
		s.consumer = c
		rt.mu.Unlock()
		log.Info("reacting")
		<-ctx.Done()
		c.Stop()
		return
	}
}

func cmp(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// stop stops the projections, reactions and workers, waits for them
// (bounded by ctx), then calls the module's own Stop.
func (rt *runtime) stop(ctx context.Context) error {
	rt.cancel()
	done := make(chan struct{})
	go func() { rt.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("stopping %s: %w", rt.module, ctx.Err())
	}
	if rt.parts.Stop != nil {
		return rt.parts.Stop(ctx)
	}
	return nil
}

// settled reports whether every projection has applied everything its
// source holds and every reaction has handled everything delivered to it;
// what is not settled is named in the error. A source whose stream does not
// exist yet counts as settled: there is nothing to fold.
func (rt *runtime) settled(ctx context.Context) error {
	rt.mu.Lock()
	projections, reactions := rt.projections, rt.reactions
	rt.mu.Unlock()
	for _, f := range projections {
		rt.mu.Lock()
		st := f.store
		rt.mu.Unlock()
		if st == nil {
			if rt.sourceExists(ctx, f.p.Source) {
				return fmt.Errorf("projection %q: not following %s yet", f.p.Name, f.p.Source)
			}
			continue
		}
		last, err := st.LastPosition(ctx)
		if err != nil {
			return fmt.Errorf("projection %q: %w", f.p.Name, err)
		}
		if pos := f.applied.Load(); pos < last {
			return fmt.Errorf("projection %q at %d of %d", f.p.Name, pos, last)
		}
	}
	for _, s := range reactions {
		rt.mu.Lock()
		c := s.consumer
		rt.mu.Unlock()
		if c == nil {
			if rt.d.JetStream != nil && rt.sourceExists(ctx, s.r.Source) {
				return fmt.Errorf("reaction %q: not subscribed yet", s.r.Name)
			}
			continue
		}
		// Stream sequences, not the consumer's pending count: the server
		// raises that count a moment after an append is acknowledged.
		last, err := rt.lastSeq(ctx, s.r)
		if err != nil {
			return fmt.Errorf("reaction %q: %w", s.r.Name, err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			return fmt.Errorf("reaction %q: %w", s.r.Name, err)
		}
		if info.AckFloor.Stream < last || info.NumAckPending > 0 {
			return fmt.Errorf("reaction %q: acknowledged up to %d of %d, %d unacknowledged", s.r.Name, info.AckFloor.Stream, last, info.NumAckPending)
		}
		if n, err := c.RedrivesPending(ctx); err != nil || n > 0 {
			return fmt.Errorf("reaction %q: %d parked events handed back and not handled yet (%v)", s.r.Name, n, err)
		}
	}
	return nil
}

// subjects are the subjects of r's aggregates in its source's stream (nil:
// all of them).
func (r Reaction) subjects() []string {
	var out []string
	for _, a := range r.Aggregates {
		out = append(out, esjs.AggregateSubjects(r.Source, a))
	}
	return out
}

// lastSeq is the sequence of the last message of r's source stream that r
// consumes (its subjects', when it has some).
func (rt *runtime) lastSeq(ctx context.Context, r Reaction) (uint64, error) {
	stream, err := rt.d.JetStream.Stream(ctx, esjs.StreamNameFor(r.Source))
	if err != nil {
		return 0, err
	}
	if len(r.Aggregates) == 0 {
		si, err := stream.Info(ctx)
		if err != nil {
			return 0, err
		}
		return si.State.LastSeq, nil
	}
	var last uint64
	for _, subj := range r.subjects() {
		m, err := stream.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		last = max(last, m.Sequence)
	}
	return last, nil
}

func (rt *runtime) sourceExists(ctx context.Context, service string) bool {
	st, err := rt.d.OpenStoreIfCreated(ctx, service)
	if err != nil {
		return !errors.Is(err, ErrNotCreatedYet)
	}
	_ = st.Close()
	return true
}
