package platform

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/kv"
)

// Rebuilding read models (`custody rebuild`). The modules are built on
// read-only stores and their projections, new and empty, are folded from
// their sources' whole histories, every hash chain verified on the way.
//
// Each source store is read once, however many modules fold it: the order
// service's events feed the order read model, trust's custody record and
// the audit index, and each module used to read and decode them again. The
// sources are read in parallel, one goroutine each, which decodes every
// message once and verifies the hash chains. Behind it, one goroutine per
// module that folds the source applies each event to that module's
// projections of it, in order: folding, not reading, is most of the work
// (the read models decode payloads and build indexes, about three quarters
// of the CPU in a profile), so the reader of a source that feeds three
// modules must not fold them one after the other. Every projection still
// sees its source's events in order, as from the runtime's feeds
// (feed.go); modules share nothing, and projections of different sources
// are folded concurrently in `custody run` too, so the read models allow
// it. A JetStream store is read with its Scan (an ordered consumer, pulls
// of a thousand messages); another backend page by page with ReadAll.

// RebuildReport says what a rebuild did for one module.
type RebuildReport struct {
	Module      string
	Events      uint64 // events folded, over every source store
	Streams     int    // streams whose hash chains were verified
	Projections []string
	// Elapsed is from the start of the reading until the module's last
	// source was read (the sources are read together).
	Elapsed time.Duration
	// Broken lists the first broken link of each stream that failed
	// verification (empty when every chain is valid).
	Broken []string
	// Unreadable lists the records of its sources that could not be read
	// (damage); each projection that takes it is told (Projection.Skipped)
	// and the rebuild goes on behind it.
	Unreadable []string
}

// Rebuilt is what RebuildModules did.
type Rebuilt struct {
	Modules []RebuildReport // in the order given
	Sources []string        // the stores read, each once
	// Events read from the sources, each counted once however many
	// modules fold it.
	Events  uint64
	Elapsed time.Duration // the reading and folding, sources in parallel
}

// maxListed caps the broken links and unreadable records listed per module.
const maxListed = 20

// Rebuild builds m on read-only stores and folds every event of the stores
// feeding its projections into them, new and empty, verifying each
// stream's hash chain on the way, and reports progress to w. It writes
// nothing anywhere and starts none of the module's reactions or workers.
func Rebuild(ctx context.Context, d Deps, m Module, w io.Writer) (RebuildReport, error) {
	r, err := RebuildModules(ctx, d, []Module{m}, w)
	if len(r.Modules) == 0 {
		return RebuildReport{Module: m.Name}, err
	}
	return r.Modules[0], err
}

// RebuildModules is Rebuild for several modules at once: it reads each
// source store once, all of them in parallel, and hands every event to
// every projection of every module that folds it (see the top of this
// file).
func RebuildModules(ctx context.Context, d Deps, modules []Module, w io.Writer) (Rebuilt, error) {
	d.ReadOnly = true
	var r Rebuilt
	var scratch *scratchStore // where stored read models fold, removed at the end
	bySource := map[string]*source{}
	var sources []*source
	for _, m := range modules {
		rep := RebuildReport{Module: m.Name}
		parts, err := m.New(ctx, d)
		if err != nil {
			return r, fmt.Errorf("%s: %w", m.Name, err)
		}
		if len(parts.Projections) == 0 {
			if len(modules) == 1 {
				return r, fmt.Errorf("%s keeps no read models to rebuild", m.Name)
			}
			// Among others (--target=all): a module that keeps none (the
			// console) has nothing to rebuild.
			continue
		}
		i := len(r.Modules)
		for _, p := range parts.Projections {
			if p.Stored != nil {
				if scratch == nil {
					if scratch, err = openScratch(); err != nil {
						return r, err
					}
					defer scratch.close()
				}
				if _, err := attachStored(d.Logger, scratch.db, checkpointName(m.Name, p.Name), p.Stored, math.MaxUint64); err != nil {
					return r, err
				}
			}
			src, ok := bySource[p.Source]
			if !ok {
				src = &source{name: p.Source}
				bySource[p.Source] = src
				sources = append(sources, src)
			}
			if n := len(src.modules); n == 0 || src.modules[n-1] != i {
				src.modules = append(src.modules, i)
				src.lanes = append(src.lanes, nil)
			}
			n := len(src.lanes) - 1
			src.lanes[n] = append(src.lanes[n], p)
			rep.Projections = append(rep.Projections, p.Name)
		}
		r.Modules = append(r.Modules, rep)
	}
	for _, src := range sources {
		st, err := d.OpenStoreOf(ctx, src.name)
		if err != nil {
			return r, err
		}
		last, err := st.LastPosition(ctx)
		if err != nil {
			return r, err
		}
		src.st, src.last = st, last
		r.Sources = append(r.Sources, src.name)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bar := startBar(w, sources)
	start := time.Now()
	var wg sync.WaitGroup
	for _, src := range sources {
		wg.Go(func() {
			src.err = src.read(ctx)
			src.elapsed = time.Since(start)
			src.done.Store(true)
			if src.err != nil {
				cancel() // the rebuild fails: stop the others
			}
		})
	}
	wg.Wait()
	bar.finish()
	r.Elapsed = time.Since(start)

	var errs []error
	for _, src := range sources {
		if src.err != nil && !errors.Is(src.err, context.Canceled) {
			errs = append(errs, fmt.Errorf("events of %s: %w", src.name, src.err))
		}
	}
	if len(errs) == 0 && ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	for _, src := range sources {
		r.Events += src.events.Load()
		for _, i := range src.modules {
			rep := &r.Modules[i]
			rep.Events += src.events.Load()
			rep.Streams += src.streams
			rep.Elapsed = max(rep.Elapsed, src.elapsed)
			rep.Broken = appendCapped(rep.Broken, src.broken)
			rep.Unreadable = appendCapped(rep.Unreadable, src.unreadable)
		}
	}
	return r, errors.Join(errs...)
}

func appendCapped(to, from []string) []string {
	return append(to, from[:min(len(from), max(maxListed-len(to), 0))]...)
}

// source is one store being read, and the projections it feeds.
type source struct {
	name    string
	st      Store
	last    uint64         // its last position when the rebuild began
	modules []int          // indexes of the modules that fold it
	lanes   [][]Projection // each of those modules' projections of it

	pos    atomic.Uint64 // the last position read, for the bar
	events atomic.Uint64
	done   atomic.Bool

	// Set by read, for the report.
	streams    int
	broken     []string
	unreadable []string
	elapsed    time.Duration
	err        error
}

// scanner is a store that hands out its whole history in bulk, a message's
// events at a time (the JetStream store's Scan).
type scanner interface {
	Scan(ctx context.Context, fn func(pos uint64, evs []eventstore.RecordedEvent, err error) error) error
}

// read folds every event of the source into its projections, in order,
// verifying each stream's hash chain, and returns once every projection has
// had every event.
func (s *source) read(ctx context.Context) error {
	lanes := make([]chan folding, len(s.lanes))
	var wg sync.WaitGroup
	for i, projections := range s.lanes {
		lanes[i] = make(chan folding, 256)
		wg.Go(func() {
			for f := range lanes[i] {
				f.into(projections)
			}
		})
	}
	defer wg.Wait()
	defer func() {
		for _, ch := range lanes {
			close(ch)
		}
	}()
	send := func(f folding) {
		for _, ch := range lanes {
			ch <- f
		}
	}

	prev := map[string][]byte{} // stream -> hash of its last event seen
	next := map[string]uint64{} // stream -> revision expected next
	defer func() { s.streams = len(prev) }()
	shared := 0 // read models that fold each event
	for _, projections := range s.lanes {
		shared += len(projections)
	}
	fold := func(evs []eventstore.RecordedEvent) {
		for i, e := range evs {
			if err := verifyNext(prev, next, e); err != nil && len(s.broken) < maxListed {
				s.broken = append(s.broken, err.Error())
			}
			if shared > 1 {
				evs[i].Shared = &eventstore.Shared{} // its payload is decoded once for all
			}
		}
		send(folding{events: evs})
		s.events.Add(uint64(len(evs)))
		s.pos.Store(evs[len(evs)-1].Position)
	}
	if sc, ok := s.st.(scanner); ok {
		return sc.Scan(ctx, func(pos uint64, evs []eventstore.RecordedEvent, err error) error {
			if err == nil {
				fold(evs)
				return nil
			}
			if !errors.Is(err, eventstore.ErrUnreadable) {
				return err
			}
			// Damage: named in the report, told to the projections that
			// record such gaps (the audit index), never passed over.
			if len(s.unreadable) < maxListed {
				s.unreadable = append(s.unreadable, err.Error())
			}
			send(folding{unreadable: pos})
			s.pos.Store(pos)
			return nil
		})
	}
	for from := uint64(1); ; {
		page, err := s.st.ReadAll(ctx, from, 1000)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		fold(page)
		from = page[len(page)-1].Position + 1
	}
}

// folding is what a module's lane is handed next: one message's events, or
// the position of a record that cannot be read.
type folding struct {
	events     []eventstore.RecordedEvent
	unreadable uint64
}

func (f folding) into(projections []Projection) {
	for _, e := range f.events {
		for _, p := range projections {
			p.Apply(e)
		}
	}
	if f.events == nil {
		for _, p := range projections {
			if p.Skipped != nil {
				p.Skipped(f.unreadable)
			}
		}
	}
}

// fraction is how far the read has got, 0 to 1.
func (s *source) fraction() float64 {
	if s.done.Load() || s.last == 0 {
		return 1
	}
	return min(float64(s.pos.Load())/float64(s.last), 1)
}

// verifyNext checks that e continues its stream's chain.
func verifyNext(prev map[string][]byte, next map[string]uint64, e eventstore.RecordedEvent) error {
	want := prev[e.Stream]
	if want == nil {
		want = eventstore.GenesisHash
	}
	broken := func(reason string) error {
		prev[e.Stream], next[e.Stream] = e.Hash, e.Revision+1
		return fmt.Errorf("%s revision %d (event %s): %s", e.Stream, e.Revision, e.ID, reason)
	}
	if e.Revision != next[e.Stream] {
		return broken(fmt.Sprintf("revision %d where %d was expected", e.Revision, next[e.Stream]))
	}
	if !bytes.Equal(e.PrevHash, want) {
		return broken("previous hash does not match")
	}
	if !bytes.Equal(e.Hash, eventstore.Hash(want, &e)) {
		return broken("content does not match its hash (edited)")
	}
	prev[e.Stream], next[e.Stream] = e.Hash, e.Revision+1
	return nil
}

// bar draws one line for the whole rebuild, redrawn in place every 100 ms
// while the sources are read together: the overall share done (each
// source's position against its last one when the rebuild began, the
// sources weighing alike), the events read, and each source's share.
type bar struct {
	w       io.Writer
	sources []*source
	stop    chan struct{}
	stopped chan struct{}
}

func startBar(w io.Writer, sources []*source) *bar {
	b := &bar{w: w, sources: sources, stop: make(chan struct{}), stopped: make(chan struct{})}
	go b.run()
	return b
}

func (b *bar) run() {
	defer close(b.stopped)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-b.stop:
			b.draw()
			fmt.Fprintln(b.w)
			return
		case <-tick.C:
			b.draw()
		}
	}
}

// finish draws the final state and ends the line.
func (b *bar) finish() {
	close(b.stop)
	<-b.stopped
}

func (b *bar) draw() {
	var events uint64
	frac := 1.0
	each := make([]string, len(b.sources))
	if len(b.sources) > 0 {
		frac = 0
	}
	for i, s := range b.sources {
		f := s.fraction()
		frac += f / float64(len(b.sources))
		events += s.events.Load()
		each[i] = fmt.Sprintf("%s %.0f%%", s.name, f*100)
	}
	const width = 30
	n := int(frac * width)
	fmt.Fprintf(b.w, "\rrebuild [%s%s] %3.0f%% %d events (%s)", strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100, events, strings.Join(each, ", "))
}

// RebuildTargets rebuilds the modules cfg.Targets selects together
// (RebuildModules), on the embedded NATS in cfg.DataDir (stop `custody
// run` first: the data directory has one owner) or on cfg.NATSURL, and
// prints the events read per second and a summary line per module.
func RebuildTargets(ctx context.Context, cfg Config, all []Module, w io.Writer) error {
	modules, err := Select(all, cfg.Targets)
	if err != nil {
		return err
	}
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	nc, desc, _, stop, err := connectNATS(cfg)
	if err != nil {
		return err
	}
	defer stop()
	defer nc.Close()
	if err := cfg.Store.Validate(); err != nil {
		return err
	}
	d := Deps{Logger: cfg.Logger, NATS: nc, Clock: cfg.Clock, Replicas: max(cfg.Replicas, 1), Backend: cfg.Store}
	if d.Clock == nil {
		d.Clock = clock.Real()
	}
	fmt.Fprintf(w, "rebuilding from NATS (%s)\n", desc)
	r, err := RebuildModules(ctx, d, modules, w)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	var folded uint64
	for _, rep := range r.Modules {
		folded += rep.Events
	}
	fmt.Fprintf(w, "read %d events from %d stores (%s) in %s: %.0f events/s; %d folded into %d modules (%.0f/s)\n",
		r.Events, len(r.Sources), strings.Join(r.Sources, ", "), r.Elapsed.Round(time.Millisecond), perSecond(r.Events, r.Elapsed),
		folded, len(r.Modules), perSecond(folded, r.Elapsed))
	failed := 0
	for _, rep := range r.Modules {
		fmt.Fprintf(w, "%s: %d events, %d streams in %s (%.0f events/s) → %s\n",
			rep.Module, rep.Events, rep.Streams, rep.Elapsed.Round(time.Millisecond), perSecond(rep.Events, rep.Elapsed), strings.Join(rep.Projections, "; "))
		if len(rep.Unreadable) > 0 {
			fmt.Fprintf(w, "%s: UNREADABLE RECORDS (damage; read models rebuilt without them):\n  %s\n", rep.Module, strings.Join(rep.Unreadable, "\n  "))
		}
		if len(rep.Broken) > 0 {
			fmt.Fprintf(w, "%s: HASH CHAIN BROKEN:\n  %s\n", rep.Module, strings.Join(rep.Broken, "\n  "))
		}
		if len(rep.Unreadable)+len(rep.Broken) > 0 {
			failed++
		} else {
			fmt.Fprintf(w, "%s: every hash chain verified\n", rep.Module)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d module(s) read damaged records or broken hash chains", failed)
	}
	return nil
}

func perSecond(n uint64, d time.Duration) float64 { return float64(n) / max(d.Seconds(), 1e-9) }

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// scratchStore is a read-model store in a temporary directory: rebuilding
// writes nothing where the process keeps its read models.
type scratchStore struct {
	dir string
	db  *kv.DB
}

func openScratch() (*scratchStore, error) {
	dir, err := os.MkdirTemp("", "custody-rebuild-readmodels-")
	if err != nil {
		return nil, err
	}
	// A batch job's memory: a larger cache and memtables than a server's
	// (64 MiB measured fastest on a 40,000-order store: 43k events/s
	// against 32k with 4 MiB, 33k with 256 MiB, whose flushes stall).
	db, err := kv.Open(dir, kv.Options{Scratch: true, CacheBytes: 256 << 20, MemTableBytes: 64 << 20})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return &scratchStore{dir: dir, db: db}, nil
}

func (s *scratchStore) close() {
	_ = s.db.Close()
	_ = os.RemoveAll(s.dir)
}
