package jetstream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/lru"
)

// Group commit (docs/eventstore.md). The server makes each message durable
// on its own (an fsync per message, per stream), so the store carries many
// appends in one message: every aggregate type of a service writes to one
// subject, its partition, custody.<service>.<aggregate>.commits, through
// one writer per store. While the writer's message is being stored, new
// appends queue; the next message carries them all.
//
// Every message is published with Nats-Expected-Last-Subject-Sequence set
// to the partition's last message this store knows of. That fences writers:
// when another process (a second pod of the same service) has written to
// the partition since, the server refuses the message, the writer reads
// what the other wrote and decides each append again, so two conflicting
// appends to one stream are never both accepted.
//
// A message holds many streams, so the store keeps a per-stream index of its
// partitions: for each stream its last revision and hash (the tail the next
// append seals onto) and the messages that hold its events (index.go). The
// index is derived from the partition's messages and rebuilt by reading
// them (on first use of a partition, and incrementally before each read).

// partition is one aggregate type's subject and what this store knows of it.
type partition struct {
	subject string

	// syncMu serialises catching up; see Store.catchUp.
	syncMu sync.Mutex

	mu sync.Mutex // guards what follows
	// synced is the sequence of the last message of the subject folded into
	// idx (0: none yet).
	synced uint64
	idx    *index
	// syncsStarted and coveredFrom implement coalescing: see catchUp.
	syncsStarted uint64
	coveredFrom  uint64
	queue        []*pendingAppend
	writing      bool
}

// pendingAppend is one Append waiting for its message.
type pendingAppend struct {
	ctx      context.Context
	stream   string
	expected eventstore.ExpectedRevision
	events   []eventstore.EventData

	done chan struct{}
	res  eventstore.AppendResult
	err  error
	// Set while a message is being built: where the append's events are in it.
	at, n int
}

// partitionOf returns the partition that holds stream.
func (s *Store) partitionOf(stream string) (*partition, error) {
	agg, _, err := eventstore.SplitStream(stream)
	if err != nil {
		return nil, err
	}
	return s.partitionFor(PartitionSubject(s.service, agg))
}

// partitionFor returns the partition of subject, empty if new (with a kv
// store, its Space is emptied: see index.go). After Open's scan a new one
// counts as caught up: the scan read every message, so a partition it did
// not meet had none (Absent may answer at once).
func (s *Store) partitionFor(subject string) (*partition, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.partitions[subject]; ok {
		return p, nil
	}
	p := &partition{subject: subject, idx: newMemoryIndex()}
	if s.cfg.Index != nil {
		space, err := s.cfg.Index.Space("eventstore-index/" + s.indexName + "/" + subject)
		if err == nil {
			err = space.Reset(indexVersion)
		}
		if err != nil {
			return nil, fmt.Errorf("jetstream: index of %s: %w: %w", subject, eventstore.ErrUnavailable, err)
		}
		size := s.cfg.IndexCache
		if size <= 0 {
			size = DefaultIndexCache
		}
		p.idx = &index{space: space, hot: lru.New[string, *streamIndex](size), synced: &p.synced}
	}
	if s.scannedAll {
		p.syncsStarted, p.coveredFrom = 1, 1
	}
	s.partitions[subject] = p
	return p, nil
}

// Absent reports, from the index and without a round trip, that the store
// has not seen stream, once its partition has been caught up at least once
// (eventstore.Absence: true may be stale; appends are fenced).
func (s *Store) Absent(stream string) bool {
	p, err := s.partitionOf(stream)
	if err != nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.coveredFrom == 0 {
		return false
	}
	_, seen, err := p.idx.lookup(stream)
	return err == nil && !seen
}

// PartitionSubject is the subject the store writes an aggregate type's
// events to.
func PartitionSubject(service, aggregate string) string {
	return "custody." + service + "." + aggregate + ".commits"
}

// catchUp folds every message of p's subject that the server holds beyond
// what p has folded. Concurrent callers share one pass: a caller whose
// request began before a pass that has since finished started is served by
// it, so a burst of reads costs one round trip, not one each.
func (s *Store) catchUp(ctx context.Context, p *partition) error {
	p.mu.Lock()
	arrived := p.syncsStarted
	p.mu.Unlock()
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	p.mu.Lock()
	if p.coveredFrom > arrived {
		p.mu.Unlock()
		return nil // a pass that started after we arrived has finished
	}
	p.syncsStarted++
	pass := p.syncsStarted
	from := p.synced + 1
	p.mu.Unlock()
	for {
		m, err := s.stream.GetMsg(ctx, from, jetstream.WithGetMsgSubject(p.subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return fmt.Errorf("jetstream: read %s: %w: %w", p.subject, eventstore.ErrUnavailable, err)
		}
		evs, err := Decode(m.Subject, m.Sequence, m.Header, m.Data)
		if err != nil {
			return err
		}
		p.mu.Lock()
		err = p.fold(m.Sequence, evs)
		p.mu.Unlock()
		if err != nil {
			return err
		}
		from = m.Sequence + 1
	}
	p.mu.Lock()
	p.coveredFrom = pass
	p.mu.Unlock()
	return nil
}

// fold adds the message at seq, holding evs, to the index (p.mu held). A
// message already folded (the writer's own, read back) changes nothing. A
// stream whose revisions do not continue where the index has it means a
// record the server cannot return: never fold past it as if it were not
// there (the message is then not folded at all).
func (p *partition) fold(seq uint64, evs []eventstore.RecordedEvent) error {
	if seq <= p.synced {
		return nil
	}
	return p.foldMsg(seq, evs, func(_ int, e *eventstore.RecordedEvent, prev *streamIndex) error {
		want := uint64(0)
		if prev != nil {
			want = prev.rev + 1
		}
		if e.Revision != want {
			return fmt.Errorf("jetstream: %s: message %d holds %s at revision %d, where %d comes next: %w",
				p.subject, seq, e.Stream, e.Revision, want, eventstore.ErrUnreadable)
		}
		return nil
	})
}

// foldMsg adds the events evs of the message at seq to their streams'
// entries and makes seq the last folded message (p.mu held). visit sees
// each event with its stream's entry before it (nil: none yet); an error
// from it (or from the index) leaves the index as it was and is returned.
func (p *partition) foldMsg(seq uint64, evs []eventstore.RecordedEvent, visit func(i int, e *eventstore.RecordedEvent, prev *streamIndex) error) error {
	touched := make(map[string]*streamIndex, 4)
	var order []string // touched, in the message's order
	for i := range evs {
		e := &evs[i]
		si, seen := touched[e.Stream]
		if !seen {
			old, ok, err := p.idx.lookup(e.Stream)
			if err != nil {
				return fmt.Errorf("jetstream: %s: %w: %w", p.subject, eventstore.ErrUnavailable, err)
			}
			if ok {
				c := *old // the index keeps old as it is
				c.open = slices.Clip(c.open)
				si = &c
			}
		}
		if err := visit(i, e, si); err != nil {
			return err
		}
		if si == nil {
			si = &streamIndex{}
		}
		if !seen {
			si.open = append(si.open, msgRef{seq: seq, first: e.Revision})
			si.refs++
			order = append(order, e.Stream)
		}
		si.rev, si.hash, si.lastID = e.Revision, e.Hash, e.ID
		touched[e.Stream] = si
	}
	for _, stream := range order {
		if err := p.idx.store(stream, touched[stream]); err != nil {
			// Part of the message may be in the index: start it again.
			p.forget()
			return fmt.Errorf("jetstream: %s: %w: %w", p.subject, eventstore.ErrUnavailable, err)
		}
	}
	p.synced = seq
	return nil
}

// enqueue adds a to p's queue, starts p's writer if it is idle, and waits
// for a's outcome.
func (s *Store) enqueue(ctx context.Context, p *partition, a *pendingAppend) (eventstore.AppendResult, error) {
	a.done = make(chan struct{})
	p.mu.Lock()
	p.queue = append(p.queue, a)
	start := !p.writing
	p.writing = true
	p.mu.Unlock()
	if start {
		go s.write(p)
	}
	select {
	case <-a.done:
		return a.res, a.err
	case <-ctx.Done():
		// The append may still be stored; a retry with the same event ids
		// is then recognised as a duplicate.
		return eventstore.AppendResult{}, ctx.Err()
	}
}

// Limits of one message: positions keep 16 bits for the index in a commit,
// and a message must fit the server's max_payload (less room for headers).
// The writer also closes a message at batchBytes: every read of a stream
// fetches whole messages, and multi-megabyte ones overflowed the clients'
// pending buffers under a flash sale (nats: slow consumer, responses
// dropped); ten commits a message already give most of what the disk can
// do (docs/eventstore.md). One append larger than that still goes alone.
const (
	batchBytes = 64 << 10
	headerRoom = 4 << 10
	// perEventOverhead bounds what the envelope adds to an event's data.
	perEventOverhead = 512
)

func (s *Store) maxBody() int { return int(s.nc.MaxPayload()) - headerRoom }

func appendSize(events []eventstore.EventData) int {
	n := 0
	for _, e := range events {
		n += len(e.Data) + len(e.ID) + len(e.Type) + len(e.Metadata.CorrelationID) + len(e.Metadata.CausationID) +
			len(e.Metadata.Actor) + len(e.Metadata.TraceParent) + len(e.Metadata.TraceState) + len(e.Metadata.RequestFingerprint) + perEventOverhead
	}
	return n
}

// write is p's writer: it takes the queue as it stands, stores it as one
// message, and repeats until the queue is empty. Started from idle, it
// first waits Config.Linger for more appends to share the message: under
// load it never idles, so only a moderate rate pays the wait.
func (s *Store) write(p *partition) {
	if s.cfg.Linger > 0 {
		time.Sleep(s.cfg.Linger)
	}
	for {
		p.mu.Lock()
		var batch []*pendingAppend
		events, size := 0, 0
		for len(p.queue) > 0 {
			a := p.queue[0]
			n := appendSize(a.events)
			if len(batch) > 0 && (events+len(a.events) > MaxCommitEvents || size+n > min(batchBytes, s.maxBody())) {
				break
			}
			p.queue = p.queue[1:]
			if err := a.ctx.Err(); err != nil {
				a.err = err
				close(a.done)
				continue
			}
			batch = append(batch, a)
			events, size = events+len(a.events), size+n
		}
		if len(batch) == 0 {
			p.writing = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		s.commit(p, batch)
	}
}

// commit stores batch as one message, deciding each append against the
// index first. The index may be behind another writer's messages: the fence
// catches that for the appends it accepts, and an append it refuses is
// refused only after catching up.
func (s *Store) commit(p *partition, batch []*pendingAppend) {
	base := context.Background()
	if s.cfg.Gate != nil {
		base = s.cfg.Gate.Context()
	}
	ctx, cancel := context.WithTimeout(base, appendTimeout)
	defer cancel()
	fail := func(err error) {
		for _, a := range batch {
			a.err = err
			close(a.done)
		}
	}
	if err := s.gate(); err != nil {
		fail(err) // queued before the gate closed
		return
	}
	caughtUp := false
	for attempt := 0; ; attempt++ {
		sealed, expect, refused, err := s.plan(ctx, p, batch)
		if err != nil {
			fail(err)
			return
		}
		if refused && !caughtUp {
			if err := s.catchUp(ctx, p); err != nil {
				fail(err)
				return
			}
			caughtUp = true
			continue
		}
		live := batch[:0]
		for _, a := range batch {
			if a.n == 0 {
				close(a.done) // refused, or a retry already stored: nothing to write
				continue
			}
			live = append(live, a)
		}
		batch = live
		if len(batch) == 0 {
			return
		}
		s.batchSize.Record(ctx, int64(len(batch)), s.attrs)
		msg, err := EncodeCommit(p.subject, sealed)
		if err != nil {
			fail(fmt.Errorf("%w: %w", eventstore.ErrInvalidAppend, err))
			return
		}
		msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(expect, 10))
		ack, err := s.publish(ctx, msg)
		if isConflict(err) && attempt < maxFenceRetries {
			// Another writer got in first: read what it wrote, decide again.
			// On a replicated stream its message may be accepted before it
			// is readable; a short random pause lets it through.
			s.conflicts.Add(ctx, 1, s.attrs)
			if err := eventstore.ConflictPause(ctx, attempt); err != nil {
				fail(err)
				return
			}
			if err := s.catchUp(ctx, p); err != nil {
				fail(err)
				return
			}
			caughtUp = true
			continue
		}
		if err != nil {
			// The outcome may be unknown (a lost acknowledgement): the appends
			// fail, and a retry with the same ids finds them if they landed.
			fail(fmt.Errorf("jetstream: append to %s: %w: %w", p.subject, eventstore.ErrUnavailable, err))
			return
		}
		for i := range sealed {
			sealed[i].Position = Position(ack.Sequence, i)
		}
		p.mu.Lock()
		ferr := p.fold(ack.Sequence, sealed)
		p.mu.Unlock()
		s.wm.advance(ack.Sequence)
		if ferr != nil {
			// The fence admits our message right after what we folded, so
			// only a damaged index gets here: rebuild it on next use.
			s.reset(p)
		}
		for _, a := range batch {
			last := sealed[a.at+a.n-1]
			a.res = eventstore.AppendResult{LastRevision: last.Revision, LastPosition: last.Position}
			close(a.done)
		}
		return
	}
}

const (
	appendTimeout   = 30 * time.Second
	maxFenceRetries = 64
	// publishTimeout bounds the wait for one acknowledgement. A cluster
	// whose stream leader died never acknowledges what it was sent, while
	// a new leader is elected within seconds: the same message is sent
	// again until appendTimeout.
	publishTimeout = 5 * time.Second
)

// publish sends msg until the server acknowledges it, ctx ends, or it
// answers something else. It sends again when no acknowledgement came in
// time, or nobody answered (a stream between leaders). Resending the very
// same message is safe: if the first copy was stored, the fence refuses the
// second (a conflict, after which the writer finds its own events stored)
// or its Nats-Msg-Id makes it a duplicate of the stored one.
func (s *Store) publish(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	var unanswered time.Time // since when nobody answers
	for {
		pctx, cancel := context.WithTimeout(ctx, publishTimeout)
		ack, err := s.js.PublishMsg(pctx, msg)
		cancel()
		switch {
		case err == nil || ctx.Err() != nil:
			return ack, err
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse):
			if unanswered.IsZero() {
				unanswered = time.Now()
			} else if time.Since(unanswered) > publishTimeout {
				return nil, err // not an election: JetStream is not there
			}
			select {
			case <-ctx.Done():
				return nil, err
			case <-time.After(250 * time.Millisecond):
			}
		default:
			return ack, err
		}
	}
}

// reset forgets p's index; the next use rebuilds it.
func (s *Store) reset(p *partition) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.forget()
}

// forget empties p's index (p.mu held); the next use rebuilds it.
func (p *partition) forget() {
	p.synced, p.coveredFrom, p.syncsStarted = 0, 0, 0
	_ = p.idx.reset() // a kv that cannot be emptied fails the rebuild's fold instead
}

// plan decides every append of batch against the index, seals the accepted
// ones onto their streams' tails (an append that follows another of the
// same stream in the batch seals onto that one) and returns their events in
// message order, and the sequence the message must follow. A refused append
// gets its error (and refused reports that one was), a retry of one already
// stored its result; both get n = 0.
func (s *Store) plan(ctx context.Context, p *partition, batch []*pendingAppend) (sealed []eventstore.RecordedEvent, expect uint64, refused bool, err error) {
	now := s.cfg.Now().UTC()
	p.mu.Lock()
	defer p.mu.Unlock()
	type tail struct {
		exists bool
		rev    uint64
		hash   []byte
		lastID string
	}
	tails := make(map[string]tail, len(batch))
	events := 0
	for _, a := range batch {
		events += len(a.events)
	}
	sealed = make([]eventstore.RecordedEvent, 0, events)
	tailOf := func(stream string) (tail, error) {
		if t, ok := tails[stream]; ok {
			return t, nil
		}
		si, ok, err := p.idx.lookup(stream)
		if !ok {
			return tail{}, err
		}
		return tail{exists: true, rev: si.rev, hash: si.hash, lastID: si.lastID}, nil
	}
	for _, a := range batch {
		a.at, a.n, a.err, a.res = len(sealed), 0, nil, eventstore.AppendResult{}
		t, err := tailOf(a.stream)
		if err != nil {
			return nil, 0, false, fmt.Errorf("jetstream: %s: %w: %w", p.subject, eventstore.ErrUnavailable, err)
		}
		n := uint64(len(a.events))
		if _, inBatch := tails[a.stream]; !inBatch {
			// A retry of an append already stored (its acknowledgement lost):
			// its ids stand where the expected revision put them.
			if from, ok := retryFrom(a.expected, t.exists, t.rev, t.lastID, a.events); ok && t.exists && from+n-1 <= t.rev {
				res, stored, err := s.storedAt(ctx, p, a.stream, from, a.events)
				if err != nil {
					return nil, 0, false, err
				}
				if stored {
					a.res = res
					continue
				}
			}
		}
		if !a.expected.Matches(t.exists, t.rev) {
			a.err = &eventstore.WrongExpectedVersionError{Stream: a.stream, Expected: a.expected, Actual: t.rev, ActualExists: t.exists}
			refused = true
			continue
		}
		rev, prev := uint64(0), eventstore.GenesisHash
		if t.exists {
			rev, prev = t.rev+1, t.hash
		}
		for i, ed := range a.events {
			re := eventstore.RecordedEvent{EventData: ed, Stream: a.stream, Revision: rev + uint64(i), RecordedAt: now}
			eventstore.Seal(prev, &re)
			prev = re.Hash
			sealed = append(sealed, re)
		}
		last := sealed[len(sealed)-1]
		tails[a.stream] = tail{exists: true, rev: last.Revision, hash: last.Hash, lastID: last.ID}
		a.n = len(a.events)
	}
	return sealed, p.synced, refused, nil
}

// retryFrom is where an append's events would stand if it were a retry of
// an append already stored: right after the expected revision, or, for
// Any, at the stream's tail (when the tail's last id is the append's last).
func retryFrom(expected eventstore.ExpectedRevision, exists bool, rev uint64, lastID string, events []eventstore.EventData) (uint64, bool) {
	n := uint64(len(events))
	switch {
	case expected.IsNoStream():
		return 0, true
	case expected.IsAny():
		if !exists || lastID != events[len(events)-1].ID || rev+1 < n {
			return 0, false
		}
		return rev + 1 - n, true
	default:
		r, _ := expected.Revision()
		if expected.Matches(exists, rev) {
			return 0, false // nothing stored after the expected revision: not a retry
		}
		return r + 1, true
	}
}

// storedAt reports whether stream holds events' ids at revisions from on
// (p.mu held; it reads messages the index names).
func (s *Store) storedAt(ctx context.Context, p *partition, stream string, from uint64, events []eventstore.EventData) (eventstore.AppendResult, bool, error) {
	var got []eventstore.RecordedEvent
	si, ok, err := p.idx.lookup(stream)
	if err != nil || !ok {
		return eventstore.AppendResult{}, false, err
	}
	refs, err := p.idx.refsFrom(stream, si, from)
	if err != nil {
		return eventstore.AppendResult{}, false, err
	}
	for _, ref := range refs {
		if len(got) >= len(events) {
			break
		}
		evs, err := s.readMsg(ctx, ref.seq)
		if err != nil {
			return eventstore.AppendResult{}, false, fmt.Errorf("jetstream: read %s: %w", stream, err)
		}
		for _, e := range evs {
			if e.Stream == stream && e.Revision >= from && len(got) < len(events) {
				got = append(got, e)
			}
		}
	}
	res, ok := eventstore.StoredAlready(got, events)
	return res, ok, nil
}

// isConflict: the fence failed, another message is the partition's last
// (10071 on one replica, 10164 on replicated streams).
func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
		return true
	}
	return false
}
