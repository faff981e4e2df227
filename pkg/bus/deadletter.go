package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/custody/custody/pkg/eventstore"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
)

// DeadLetterStream holds every parked message, on subjects
// custody.deadletter.<consumer>.<source service>.
const DeadLetterStream = "CUSTODY_DEADLETTER"

const deadLetterPrefix = "custody.deadletter."

// Headers added to a parked message; its original headers and body are kept
// (except the Nats-* publish controls, see park).
const (
	HeaderDeadLetterReason           = "Custody-Dead-Letter-Reason"
	HeaderDeadLetterCause            = "Custody-Dead-Letter-Cause"
	HeaderDeadLetterConsumer         = "Custody-Dead-Letter-Consumer"
	HeaderDeadLetterDeliveries       = "Custody-Dead-Letter-Deliveries"
	HeaderDeadLetterOriginalSubject  = "Custody-Dead-Letter-Original-Subject"
	HeaderDeadLetterOriginalSequence = "Custody-Dead-Letter-Original-Sequence"
	HeaderDeadLetterOriginalStream   = "Custody-Dead-Letter-Original-Stream"
	// HeaderDeadLetterEventID, HeaderDeadLetterEventType and
	// HeaderDeadLetterEventIndex name the event whose handler failed and its
	// index in the message: a parked message is a whole commit, which may
	// hold several events of several streams (the others may have been
	// handled; their handlers are idempotent).
	HeaderDeadLetterEventID    = "Custody-Dead-Letter-Event-Id"
	HeaderDeadLetterEventType  = "Custody-Dead-Letter-Event-Type"
	HeaderDeadLetterEventIndex = "Custody-Dead-Letter-Event-Index"
	// HeaderDeadLetterRedriveOf is set on a message parked again after a
	// redrive: the dead-letter sequence it was handed back from.
	HeaderDeadLetterRedriveOf = "Custody-Dead-Letter-Redrive-Of"
)

// Why a message was parked (HeaderDeadLetterCause).
const (
	// CauseMaxDeliver: the handler still failed on the last allowed delivery.
	CauseMaxDeliver = "max_deliver"
	// CausePermanent: the handler returned an error marked with fault.Permanent.
	CausePermanent = "permanent"
	// CauseUndecodable: the message is not a Custody event.
	CauseUndecodable = "undecodable"
)

// DeadLetterSubject is where consumer parks messages of service's stream.
func DeadLetterSubject(consumer, service string) string {
	return deadLetterPrefix + consumer + "." + service
}

// DeadLetterStreamConfig is the stream of parked messages.
func DeadLetterStreamConfig(replicas int) jetstream.StreamConfig {
	return keptStream(DeadLetterStream, "Custody events that bus consumers could not handle", deadLetterPrefix, replicas)
}

// keptStream is the configuration of the bus's own streams (dead letters,
// redrives): every subject under prefix, on file, kept until deleted.
func keptStream(name, description, prefix string, replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        name,
		Description: description,
		Subjects:    []string{prefix + ">"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Replicas:    max(replicas, 1),
		Duplicates:  2 * time.Minute,
		MaxMsgs:     -1,
		MaxBytes:    -1,
	}
}

// EnsureDeadLetterStream creates or updates the dead-letter stream.
// Subscribe calls it; it is idempotent.
func EnsureDeadLetterStream(ctx context.Context, js jetstream.JetStream, replicas int) error {
	if _, err := js.CreateOrUpdateStream(ctx, DeadLetterStreamConfig(replicas)); err != nil {
		return fmt.Errorf("bus: dead-letter stream: %w", err)
	}
	return nil
}

// park copies msg (the whole commit) to the dead-letter stream and, once the
// server has stored the copy, terminates msg. evs[failed] is the event whose
// handler failed (evs is nil when the message does not decode). If the copy
// cannot be stored the message is nak'ed and will be parked (or handled) on a
// later delivery: never dropped.
func (c *Consumer) park(ctx context.Context, msg jetstream.Msg, md *jetstream.MsgMetadata, evs []eventstore.RecordedEvent, failed int, cause string, reason error) {
	log := c.log.With("subject", msg.Subject(), "seq", md.Sequence.Stream, "delivery", md.NumDelivered, "cause", cause)
	_, err := c.publishParked(ctx, parking{
		header: msg.Headers(), data: msg.Data(), subject: msg.Subject(), stream: md.Stream,
		seq: md.Sequence.Stream, deliveries: md.NumDelivered,
		// De-duplicates a re-park after a lost Term; distinct per consumer,
		// so two consumers parking the same event both keep their copy.
		msgID: c.cfg.Name + ":" + md.Stream + ":" + strconv.FormatUint(md.Sequence.Stream, 10),
	}, evs, failed, cause, reason, log)
	if err != nil {
		log.ErrorContext(ctx, "bus: cannot park message; will retry", "reason", reason, "err", err)
		c.retry(ctx, msg, md, log)
		return
	}
	if err := msg.TermWithReason(cause); err != nil {
		// Redelivered later; the re-park is de-duplicated by its message id.
		log.WarnContext(ctx, "bus: parked message not terminated", "err", err)
	}
}

// parking is a commit to copy to the dead-letter stream: its headers and
// body, where it came from, and the copy's de-duplication id.
type parking struct {
	header      nats.Header
	data        []byte
	subject     string // the original subject, stream and sequence
	stream      string
	seq         uint64
	deliveries  uint64
	msgID       string
	redriveOf   uint64 // the dead-letter sequence this redriven copy was handed back from (0: none)
	skipHeaders []string
}

// publishParked stores p on the dead-letter stream, counts and logs it, and
// returns the copy's dead-letter sequence.
func (c *Consumer) publishParked(ctx context.Context, p parking, evs []eventstore.RecordedEvent, failed int, cause string, reason error, log *slog.Logger) (uint64, error) {
	var ev *eventstore.RecordedEvent
	if failed >= 0 && failed < len(evs) {
		ev = &evs[failed]
		log = log.With("event_id", ev.ID, "event_type", ev.Type, "stream", ev.Stream, "index", failed, "events", len(evs))
	}
	dl := nats.NewMsg(DeadLetterSubject(c.cfg.Name, c.cfg.SourceService))
	for k, v := range p.header {
		// Nats-* headers steer a publish (Nats-Expected-Last-Subject-Sequence,
		// batch ids, …); copied, they would make this publish fail or be
		// taken for something it is not.
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "nats-") || slices.ContainsFunc(p.skipHeaders, func(pfx string) bool { return strings.HasPrefix(lk, pfx) }) {
			continue
		}
		dl.Header[k] = slices.Clone(v) // raw keys: keep lower-case traceparent
	}
	if ev != nil {
		dl.Header.Set(HeaderDeadLetterEventID, headerValue(ev.ID, 256))
		dl.Header.Set(HeaderDeadLetterEventType, headerValue(ev.Type, 256))
		dl.Header.Set(HeaderDeadLetterEventIndex, strconv.Itoa(failed))
	} else if id := p.header.Get(jetstream.MsgIDHeader); id != "" {
		dl.Header.Set(HeaderDeadLetterEventID, id)
	}
	dl.Header.Set(HeaderDeadLetterReason, headerValue(reason.Error(), 2048))
	dl.Header.Set(HeaderDeadLetterCause, cause)
	dl.Header.Set(HeaderDeadLetterConsumer, c.cfg.Name)
	dl.Header.Set(HeaderDeadLetterDeliveries, strconv.FormatUint(p.deliveries, 10))
	dl.Header.Set(HeaderDeadLetterOriginalSubject, p.subject)
	dl.Header.Set(HeaderDeadLetterOriginalSequence, strconv.FormatUint(p.seq, 10))
	dl.Header.Set(HeaderDeadLetterOriginalStream, p.stream)
	if p.redriveOf != 0 {
		dl.Header.Set(HeaderDeadLetterRedriveOf, strconv.FormatUint(p.redriveOf, 10))
	}
	dl.Header.Set(jetstream.MsgIDHeader, p.msgID)
	dl.Data = p.data

	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	ack, err := c.js.PublishMsg(pctx, dl, jetstream.WithExpectStream(DeadLetterStream))
	cancel()
	if err != nil {
		return 0, err
	}
	c.m.parked.Add(ctx, 1, metric.WithAttributes(
		attribute.String("consumer", c.cfg.Name), attribute.String("cause", cause)))
	c.m.handled.Add(ctx, 1, metric.WithAttributes(
		attribute.String("consumer", c.cfg.Name), attribute.String("outcome", "parked")))
	log.ErrorContext(ctx, "bus: message parked on dead-letter stream", "reason", reason,
		"dead_letter_subject", dl.Subject, "dead_letter_sequence", ack.Sequence)
	return ack.Sequence, nil
}

// Parked is a message on the dead-letter stream.
type Parked struct {
	// Sequence is the message's position in the dead-letter stream.
	Sequence uint64
	ParkedAt time.Time
	// Subject is custody.deadletter.<consumer>.<source service>.
	Subject          string
	Consumer         string
	SourceService    string
	Cause            string // CauseMaxDeliver, CausePermanent or CauseUndecodable
	Reason           string // the last error
	Deliveries       uint64
	OriginalStream   string
	OriginalSubject  string
	OriginalSequence uint64
	// EventID and EventType name the event whose handler failed (for an
	// undecodable message: its Nats-Msg-Id and Custody-Type headers, if any).
	EventID   string
	EventType string
	// EventIndex is that event's index in the parked commit.
	EventIndex int
	// Event is the event whose handler failed, or nil if the message does
	// not decode; Events are all the events of the parked commit, of one or
	// more streams. Events of other streams may have been handled, and
	// events of Event's stream before it; those after it were not.
	Event  *eventstore.RecordedEvent
	Events []eventstore.RecordedEvent
	// RedriveOf is, for a message parked again after a redrive, the
	// sequence of the dead-letter record it was handed back from (0: none).
	RedriveOf uint64
	// Redrive is what became of this record's redrive; nil if it was not
	// redriven (see RequestRedrive).
	Redrive *Redrive
	// Header and Data are the message as parked.
	Header nats.Header
	Data   []byte
}

// ListParked returns the messages consumer has parked, oldest first; an
// empty consumer lists those of every consumer.
func ListParked(ctx context.Context, js jetstream.JetStream, consumer string) ([]Parked, error) {
	filter := deadLetterPrefix + ">"
	if consumer != "" {
		if !namePattern.MatchString(consumer) {
			return nil, fmt.Errorf("bus: bad consumer name %q", consumer)
		}
		filter = deadLetterPrefix + consumer + ".*"
	}
	st, err := js.Stream(ctx, DeadLetterStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bus: dead-letter stream: %w", err)
	}
	var out []Parked
	for seq := uint64(1); ; {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("bus: read dead-letter stream: %w", err)
		}
		out = append(out, parsed(m))
		seq = m.Sequence + 1
	}
	if len(out) == 0 {
		return out, nil
	}
	redrives, err := readRedrives(ctx, js, consumer)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Redrive = redrives[redriveKey{out[i].Consumer, out[i].Sequence}]
	}
	return out, nil
}

func parsed(m *jetstream.RawStreamMsg) Parked {
	h := m.Header
	p := Parked{
		Sequence:        m.Sequence,
		ParkedAt:        m.Time,
		Subject:         m.Subject,
		Consumer:        h.Get(HeaderDeadLetterConsumer),
		Cause:           h.Get(HeaderDeadLetterCause),
		Reason:          h.Get(HeaderDeadLetterReason),
		OriginalStream:  h.Get(HeaderDeadLetterOriginalStream),
		OriginalSubject: h.Get(HeaderDeadLetterOriginalSubject),
		EventID:         h.Get(HeaderDeadLetterEventID),
		EventType:       h.Get(esjs.HeaderType),
		Header:          h,
		Data:            m.Data,
	}
	if rest, ok := strings.CutPrefix(m.Subject, deadLetterPrefix); ok {
		if _, svc, ok := strings.Cut(rest, "."); ok {
			p.SourceService = svc
		}
	}
	p.Deliveries, _ = strconv.ParseUint(h.Get(HeaderDeadLetterDeliveries), 10, 64)
	p.OriginalSequence, _ = strconv.ParseUint(h.Get(HeaderDeadLetterOriginalSequence), 10, 64)
	if t := h.Get(HeaderDeadLetterEventType); t != "" {
		p.EventType = t
	}
	p.EventIndex, _ = strconv.Atoi(h.Get(HeaderDeadLetterEventIndex))
	p.RedriveOf, _ = strconv.ParseUint(h.Get(HeaderDeadLetterRedriveOf), 10, 64)

	if evs, err := esjs.Decode(p.OriginalSubject, p.OriginalSequence, h, m.Data); err == nil {
		p.Events = evs
		i := p.EventIndex
		if i < 0 || i >= len(evs) || (p.EventID != "" && evs[i].ID != p.EventID) {
			i = slices.IndexFunc(evs, func(e eventstore.RecordedEvent) bool { return e.ID == p.EventID })
		}
		if i >= 0 {
			p.EventIndex = i
			p.Event = &p.Events[i]
		}
	}
	return p
}
