package platform

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/eventstore"
)

// RebuildReport says what a rebuild did for one module.
type RebuildReport struct {
	Module      string
	Events      uint64 // events read, over every source store
	Streams     int    // streams whose hash chains were verified
	Projections []string
	Elapsed     time.Duration
	// Broken lists the first broken link of each stream that failed
	// verification (empty when every chain is valid).
	Broken []string
}

// Rebuild builds m on read-only stores and folds every event of the stores
// feeding its projections into them, new and empty, verifying each
// stream's hash chain on the way, and reports progress to w. It writes
// nothing anywhere and starts none of the module's reactions or workers.
func Rebuild(ctx context.Context, d Deps, m Module, w io.Writer) (RebuildReport, error) {
	rep := RebuildReport{Module: m.Name}
	d.ReadOnly = true
	parts, err := m.New(ctx, d)
	if err != nil {
		return rep, err
	}
	projections := parts.Projections
	if len(projections) == 0 {
		return rep, fmt.Errorf("%s keeps no read models to rebuild", m.Name)
	}
	bySource := map[string][]Projection{}
	var sources []string
	for _, p := range projections {
		if _, ok := bySource[p.Source]; !ok {
			sources = append(sources, p.Source)
		}
		bySource[p.Source] = append(bySource[p.Source], p)
		rep.Projections = append(rep.Projections, p.Name)
	}
	start := time.Now()
	for _, src := range sources {
		st, err := d.OpenStoreOf(ctx, src)
		if err != nil {
			return rep, err
		}
		last, err := st.LastPosition(ctx)
		if err != nil {
			return rep, err
		}
		prev := map[string][]byte{} // stream -> hash of its last event seen
		next := map[string]uint64{} // stream -> revision expected next
		bar := progress{w: w, label: fmt.Sprintf("%s ← %s events", m.Name, src), total: last}
		var n uint64 // this source's events
		for from := uint64(1); ; {
			page, err := st.ReadAll(ctx, from, 1000)
			if err != nil {
				return rep, err
			}
			if len(page) == 0 {
				break
			}
			for _, e := range page {
				if err := verifyNext(prev, next, e); err != nil && len(rep.Broken) < 20 {
					rep.Broken = append(rep.Broken, err.Error())
				}
				for _, p := range bySource[src] {
					p.Apply(e)
				}
				n++
			}
			from = page[len(page)-1].Position + 1
			bar.show(page[len(page)-1].Position, n)
		}
		bar.done(n)
		rep.Events += n
		rep.Streams += len(prev)
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
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

// progress draws a one-line bar, redrawn in place.
type progress struct {
	w     io.Writer
	label string
	total uint64
	shown time.Time
	start time.Time
}

func (p *progress) show(pos, events uint64) {
	if p.start.IsZero() {
		p.start = time.Now()
	}
	if time.Since(p.shown) < 100*time.Millisecond {
		return
	}
	p.shown = time.Now()
	frac := 1.0
	if p.total > 0 {
		frac = min(float64(pos)/float64(p.total), 1)
	}
	const width = 30
	n := int(frac * width)
	fmt.Fprintf(p.w, "\r%s [%s%s] %3.0f%% %d events", p.label, strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100, events)
}

func (p *progress) done(events uint64) {
	p.shown = time.Time{}
	p.show(p.total, events)
	fmt.Fprintln(p.w)
}

// RebuildTargets runs Rebuild for the modules cfg.Targets selects, on the
// embedded NATS in cfg.DataDir (stop `custody run` first: the data
// directory has one owner) or on cfg.NATSURL, and prints a summary line per
// module with the events per second.
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
	failed := 0
	for _, m := range modules {
		rep, err := Rebuild(ctx, d, m, w)
		if err != nil {
			return fmt.Errorf("rebuild %s: %w", m.Name, err)
		}
		rate := float64(rep.Events) / max(rep.Elapsed.Seconds(), 1e-9)
		fmt.Fprintf(w, "%s: %d events, %d streams in %s (%.0f events/s) → %s\n",
			m.Name, rep.Events, rep.Streams, rep.Elapsed.Round(time.Millisecond), rate, strings.Join(rep.Projections, "; "))
		if len(rep.Broken) > 0 {
			failed++
			fmt.Fprintf(w, "%s: HASH CHAIN BROKEN:\n  %s\n", m.Name, strings.Join(rep.Broken, "\n  "))
		} else {
			fmt.Fprintf(w, "%s: every hash chain verified\n", m.Name)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d module(s) read broken hash chains", failed)
	}
	return nil
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
