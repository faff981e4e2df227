package app

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	"github.com/custody/custody/services/audit/domain"
)

// ParkedRecord is one record of the dead-letter stream: as the API shows it,
// and the event whose handler failed (nil when the message does not decode).
type ParkedRecord struct {
	Parked *auditv1.ParkedEvent
	Event  *eventstore.RecordedEvent
}

// ErrParkedNotFound: no dead-letter record matches (NotFound).
var ErrParkedNotFound = errors.New("no such parked event")

// DeadLetters is the dead-letter stream as redrives use it; the module
// wires it to pkg/bus, so the app knows no transport.
type DeadLetters struct {
	// Get returns record seq (an error wrapping ErrParkedNotFound if none).
	Get func(ctx context.Context, seq uint64) (ParkedRecord, error)
	// Find returns consumer's newest record of eventID (ErrParkedNotFound).
	Find func(ctx context.Context, consumer, eventID string) (ParkedRecord, error)
	// HandBack hands record seq back to its consumer, once: false when it
	// had been handed back before.
	HandBack func(ctx context.Context, rec ParkedRecord, id, actor string) (bool, error)
}

// RedriveCommand hands a parked event back to its consumer.
type RedriveCommand struct {
	RequestID   string
	Fingerprint string
	Actor       string
	// The record: Sequence, or Consumer and EventID.
	Consumer string
	EventID  string
	Sequence uint64
	Reason   string
}

// Redriven is a redrive's answer: the record as it stands, and whether it
// had been handed back before (nothing was done now).
type Redriven struct {
	Record          ParkedRecord
	AlreadyRedriven bool
}

// EnableRedrives gives the service its store's handler of redrives and the
// dead-letter stream; without them Redrive answers Unavailable.
func (s *Service) EnableRedrives(h *es.Handler[domain.Redrive, domain.RedriveParked], dl DeadLetters) {
	s.redrives, s.deadLetters = h, dl
}

// ErrRedriveUnavailable: this process cannot redrive (a read-only run, or
// no dead-letter stream).
var ErrRedriveUnavailable = errors.New("redrive is not available in this process")

// Redrive records the redrive as a ParkedEventRedriven event in the audit's
// store (once per record: the aggregate redrive-<consumer>-<sequence>), then
// hands the record back. The record is handed back on every call, not only
// the first, so that a retry after a crash between the two completes it;
// the dead-letter side hands a record back at most once.
func (s *Service) Redrive(ctx context.Context, c RedriveCommand) (Redriven, error) {
	if s.redrives == nil || s.deadLetters.Get == nil {
		return Redriven{}, ErrRedriveUnavailable
	}
	var rec ParkedRecord
	var err error
	if c.Sequence != 0 {
		rec, err = s.deadLetters.Get(ctx, c.Sequence)
		if err == nil && c.Consumer != "" && rec.Parked.GetConsumer() != c.Consumer {
			err = ErrParkedNotFound
		}
		if err == nil && c.EventID != "" && rec.Parked.GetEventId() != c.EventID {
			err = ErrParkedNotFound
		}
	} else {
		rec, err = s.deadLetters.Find(ctx, c.Consumer, c.EventID)
	}
	if errors.Is(err, ErrParkedNotFound) {
		id := c.Consumer + "/" + c.EventID
		if c.Sequence != 0 {
			id = "#" + strconv.FormatUint(c.Sequence, 10)
		}
		return Redriven{}, &fault.NotFoundError{Resource: "parked event", ID: id}
	}
	if err != nil {
		return Redriven{}, err
	}
	p := rec.Parked
	ev := &auditv1.ParkedEventRedriven{
		Consumer: p.GetConsumer(), DeadLetterSequence: p.GetDeadLetterSequence(), EventId: p.GetEventId(),
		EventType: p.GetEventType(), SourceService: p.GetSourceService(), OriginalSubject: p.GetOriginalSubject(),
		OriginalSequence: p.GetOriginalSequence(), OrderId: s.orderOf(rec.Event), Reason: c.Reason,
		Cause: p.GetCause(), ParkedReason: p.GetReason(),
	}
	res, err := s.redrives.Handle(ctx, es.Command[domain.RedriveParked]{
		AggregateID: domain.RedriveID(p.GetConsumer(), p.GetDeadLetterSequence()), ID: c.RequestID,
		Body: domain.RedriveParked{Event: ev},
		Meta: es.Meta{CorrelationID: c.RequestID, Actor: c.Actor, RequestFingerprint: c.Fingerprint},
	})
	if err != nil {
		return Redriven{}, err
	}
	// Decided nothing and not a repeat of the request that did: another
	// request handed it back before.
	already := !res.Duplicate && len(res.Events) == 0
	if _, err := s.deadLetters.HandBack(ctx, rec, c.RequestID, c.Actor); err != nil {
		return Redriven{}, fmt.Errorf("handing back %s #%d: %w", p.GetConsumer(), p.GetDeadLetterSequence(), err)
	}
	if rec, err = s.deadLetters.Get(ctx, p.GetDeadLetterSequence()); err != nil {
		return Redriven{}, err
	}
	return Redriven{Record: rec, AlreadyRedriven: already}, nil
}

// orderOf is the order the index files ev under ("" if none, or ev nil).
func (s *Service) orderOf(ev *eventstore.RecordedEvent) string {
	if ev == nil {
		return ""
	}
	refs := domain.RefsOf(ev.Stream, domain.DecodePayload(*ev))
	s.mu.RLock()
	defer s.mu.RUnlock()
	o, err := s.idx.orderOf(refs)
	if err != nil {
		s.log.Error("reading the audit index", "err", err)
	}
	return o
}
