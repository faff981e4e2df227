package jetstream

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/pkg/eventstore"
)

// Every sequence accounted for (docs/eventstore.md, "Damage"). The stream
// refuses deletes and purges, so its messages are exactly 1..LastSeq, and
// every one of them must read back, decode, and continue its event
// streams' hash chains. A writer's Open checks that by reading the whole
// stream once (the same pass builds the per-stream index), and compares the
// stream's last sequence with the watermark it keeps outside the stream
// (watermark.go): the server forgets a lost tail after one restart, the
// watermark does not.

// DamageError is what Open answers for a service whose stream is damaged.
// errors.Is(err, eventstore.ErrUnreadable) holds.
type DamageError struct {
	Service string
	Damage  []eventstore.Damage
}

func (e *DamageError) Error() string {
	const shown = 5
	parts := make([]string, 0, shown+1)
	for i, d := range e.Damage {
		if i == shown {
			parts = append(parts, fmt.Sprintf("and %d more", len(e.Damage)-shown))
			break
		}
		parts = append(parts, d.String())
	}
	return fmt.Sprintf("jetstream: the %s service's events (stream %s) are damaged: %s", e.Service, StreamNameFor(e.Service), strings.Join(parts, "; "))
}

func (e *DamageError) Is(target error) bool { return target == eventstore.ErrUnreadable }

// Damage is what Open found wrong with the stream, and the damage earlier
// starts recorded: nil for a sound stream. A damaged store exists only when
// opened with Config.AllowDamaged, and refuses appends. A read-only store
// reports the damage the owner recorded.
func (s *Store) Damage(ctx context.Context) ([]eventstore.Damage, error) {
	if !s.cfg.ReadOnly {
		return s.damage, nil
	}
	wm, err := openWatermark(ctx, s.js, s.service, s.cfg.Replicas, true)
	if err != nil || wm == nil {
		return nil, err
	}
	d, _ := wm.recorded()
	return d, nil
}

// scan reads every message of the stream up to last (eachMsg, scan.go),
// in order, folding each into its partition's index and checking that no
// sequence is missing, every message decodes, and every event continues its
// stream's revisions and hash chain. What it cannot serve it returns as
// damage, and goes on behind it.
//
// Decoding a message and hashing its events is most of the work and needs
// nothing but the message, so scanWorkers do it side by side; the fold,
// which needs each stream's previous event, runs in order behind them.
func (s *Store) scan(ctx context.Context, last uint64) ([]eventstore.Damage, error) {
	jobs := make(chan *scanJob, scanBatch)  // to the workers
	order := make(chan *scanJob, scanBatch) // to the fold, in stream order
	var wg sync.WaitGroup
	for range scanWorkers {
		wg.Go(func() {
			for j := range jobs {
				j.check()
				close(j.done)
			}
		})
	}
	var damage []eventstore.Damage
	var foldErr error
	folded := make(chan struct{})
	go func() {
		defer close(folded)
		for j := range order {
			<-j.done
			if foldErr != nil {
				continue // drain
			}
			d, err := s.fold(j)
			damage, foldErr = append(damage, d...), err
		}
	}()
	err := s.eachMsg(ctx, "scan", last, func(seq uint64, m jetstream.Msg) error {
		j := &scanJob{seq: seq, subject: m.Subject(), data: m.Data(), done: make(chan struct{})}
		order <- j
		jobs <- j
		return nil
	}, func(from, to uint64) error {
		j := &scanJob{gap: missing(from, to), done: make(chan struct{})}
		close(j.done)
		order <- j
		return nil
	})
	close(jobs)
	close(order)
	wg.Wait()
	<-folded
	if err == nil {
		err = foldErr
	}
	if err != nil {
		return nil, err
	}
	return damage, nil
}

// scanWorkers decode and hash messages during a scan.
var scanWorkers = max(2, runtime.GOMAXPROCS(0))

// scanJob is one message of a scan (or a run of missing ones: gap).
type scanJob struct {
	seq     uint64
	subject string
	data    []byte
	gap     eventstore.Damage
	done    chan struct{} // closed once checked

	evs    []eventstore.RecordedEvent
	err    error
	sealed []bool // each event's content hashes to its recorded hash
}

// check decodes the message and hashes its events.
func (j *scanJob) check() {
	j.evs, j.err = Decode(j.subject, j.seq, nil, j.data)
	j.sealed = make([]bool, len(j.evs))
	for i := range j.evs {
		e := &j.evs[i]
		j.sealed[i] = bytes.Equal(eventstore.Hash(e.PrevHash, e), e.Hash)
	}
}

// missing is damage to messages the server does not return.
func missing(from, to uint64) eventstore.Damage {
	d := eventstore.Damage{Seq: from, Reason: "the server cannot return it (checksum failed, or the record is gone)"}
	if to > from {
		d.Last = to
		d.Reason = "the server cannot return them (checksums failed, or the records are gone)"
	}
	return d
}

// fold adds a checked message to the index and returns what is wrong with
// it. Damaged events are folded too, as stored: a stream whose revisions
// jump makes its reads fail as unreadable, and the events after an edited
// one still chain onto the hash it recorded. An error is the index's own
// (a kv store that cannot be read or written): the scan stops.
func (s *Store) fold(j *scanJob) ([]eventstore.Damage, error) {
	switch {
	case j.gap.Reason != "":
		return []eventstore.Damage{j.gap}, nil
	case j.err != nil:
		return []eventstore.Damage{{Seq: j.seq, Reason: j.err.Error()}}, nil
	}
	var damage []eventstore.Damage
	p, err := s.partitionFor(j.subject)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	err = p.foldMsg(j.seq, j.evs, func(i int, e *eventstore.RecordedEvent, si *streamIndex) error {
		bad := func(reason string, args ...any) {
			damage = append(damage, eventstore.Damage{Seq: j.seq, Stream: e.Stream, Revision: e.Revision, EventID: e.ID, Reason: fmt.Sprintf(reason, args...)})
		}
		want, prev := uint64(0), eventstore.GenesisHash
		if si != nil {
			want, prev = si.rev+1, si.hash
		}
		switch {
		case e.Revision != want:
			bad("revision %d where %d comes next: the events between are missing", e.Revision, want)
		case !bytes.Equal(e.PrevHash, prev):
			bad("its previous hash is not the hash of revision %d", want-1)
		case !j.sealed[i]:
			bad("its content does not hash to its recorded hash (edited)")
		}
		return nil
	})
	return damage, err
}

// check accounts for every sequence of the stream (see the comment at the
// top of this file) and returns the damage found, and the stream's last
// sequence.
func (s *Store) check(ctx context.Context, wm *watermark) ([]eventstore.Damage, uint64, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("jetstream: stream %s: %w: %w", s.name, eventstore.ErrUnavailable, err)
	}
	st := info.State
	var damage []eventstore.Damage
	if st.Lost != nil && (len(st.Lost.Msgs) > 0 || st.Lost.Bytes > 0) {
		if len(st.Lost.Msgs) == 0 {
			damage = append(damage, eventstore.Damage{Reason: fmt.Sprintf("the server discarded %d bytes it could not read", st.Lost.Bytes)})
		}
		for _, seq := range st.Lost.Msgs {
			damage = append(damage, eventstore.Damage{Seq: seq, Reason: "the server discarded it: it could not read it"})
		}
	}
	if st.Msgs > 0 && st.FirstSeq > 1 {
		damage = append(damage, missing(1, st.FirstSeq-1))
	}
	scanned, err := s.scan(ctx, st.LastSeq)
	if err != nil {
		return nil, 0, err
	}
	damage = append(damage, scanned...)
	if w := wm.lastSeq(); w > st.LastSeq {
		d := missing(st.LastSeq+1, w)
		d.Reason = fmt.Sprintf("the stream ends at %d, but %d had been stored (the watermark); the tail is lost", st.LastSeq, w)
		damage = append(damage, d)
	}
	s.mu.Lock()
	s.scannedAll = true
	for _, p := range s.partitions {
		p.mu.Lock()
		p.syncsStarted, p.coveredFrom = 1, 1
		if err == nil {
			err = p.idx.commit()
		}
		p.mu.Unlock()
	}
	s.mu.Unlock()
	if err != nil {
		return nil, 0, fmt.Errorf("jetstream: index of %s: %w: %w", s.name, eventstore.ErrUnavailable, err)
	}
	return mergeDamage(damage), st.LastSeq, nil
}

// mergeDamage sorts damage by sequence and drops repeats.
func mergeDamage(ds []eventstore.Damage) []eventstore.Damage {
	slices.SortStableFunc(ds, func(a, b eventstore.Damage) int {
		return cmp.Or(cmp.Compare(a.Seq, b.Seq), cmp.Compare(a.Last, b.Last))
	})
	return slices.Compact(ds)
}
