package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/custody/custody/pkg/eventstore"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/fault"
)

// Redrive: a parked message handed back to its consumer.
//
// RequestRedrive publishes a copy of the dead-letter record (its headers and
// body: the original commit) to custody.redrive.<consumer>.<dead-letter
// sequence>.requested in the stream CUSTODY_REDRIVE. Every Consumer reads its
// own requests through a second durable consumer of the same name on that
// stream, decodes the commit as it was first delivered (the original subject
// and sequence, so the events are exactly those the handler saw), runs the
// handler on its events once more, and records the outcome on
// custody.redrive.<consumer>.<dead-letter sequence>.outcome: handled, or
// parked again (the handler still failed: permanently, or on MaxDeliver
// redeliveries of the request) under a new dead-letter sequence. Handlers
// are idempotent by event id, so a redriven event whose effects had in fact
// happened changes nothing.
//
// A dead-letter record is redriven at most once: the request is published
// only if its subject holds nothing yet (expected last subject sequence 0),
// so two redrives of one record, at once or years apart, hand it back once.
// A record parked again is a new record, which may be redriven in turn.
const RedriveStream = "CUSTODY_REDRIVE"

const redrivePrefix = "custody.redrive."

// Headers of a redrive request and its outcome.
const (
	HeaderRedriveDeadLetterSequence = "Custody-Redrive-Dead-Letter-Sequence"
	HeaderRedriveID                 = "Custody-Redrive-Id"
	HeaderRedriveActor              = "Custody-Redrive-Actor"
	HeaderRedriveOutcome            = "Custody-Redrive-Outcome"
	HeaderRedriveReason             = "Custody-Redrive-Reason"
	HeaderRedriveParkedAs           = "Custody-Redrive-Parked-As"
)

// Outcomes of a redrive.
const (
	// RedriveHandled: the handler handled every event of the commit.
	RedriveHandled = "handled"
	// RedriveParkedAgain: it failed again and the commit is parked anew.
	RedriveParkedAgain = "parked"
)

// ErrParkedNotFound: no dead-letter record has that sequence (or event id).
var ErrParkedNotFound = errors.New("bus: no such parked message")

// Redrive is what became of a dead-letter record handed back.
type Redrive struct {
	RequestedAt time.Time
	ID          string // the requester's id for it (e.g. its command id)
	Actor       string
	// Outcome is "" while the consumer has not handled it yet, else
	// RedriveHandled or RedriveParkedAgain.
	Outcome   string
	OutcomeAt time.Time
	// Reason is why it was parked again; ParkedAgainAs the new record.
	Reason        string
	ParkedAgainAs uint64
}

// RedriveStreamConfig is the stream of redrive requests and outcomes.
func RedriveStreamConfig(replicas int) jetstream.StreamConfig {
	return keptStream(RedriveStream, "Custody parked events handed back to their consumers, and what became of them", redrivePrefix, replicas)
}

// EnsureRedriveStream creates or updates the redrive stream; idempotent.
func EnsureRedriveStream(ctx context.Context, js jetstream.JetStream, replicas int) error {
	if _, err := js.CreateOrUpdateStream(ctx, RedriveStreamConfig(replicas)); err != nil {
		return fmt.Errorf("bus: redrive stream: %w", err)
	}
	return nil
}

func redriveSubject(consumer string, dlSeq uint64, what string) string {
	return redrivePrefix + consumer + "." + strconv.FormatUint(dlSeq, 10) + "." + what
}

// GetParked returns the dead-letter record seq, with its redrive if any;
// ErrParkedNotFound if there is none.
func GetParked(ctx context.Context, js jetstream.JetStream, seq uint64) (Parked, error) {
	st, err := js.Stream(ctx, DeadLetterStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return Parked{}, ErrParkedNotFound
	}
	if err != nil {
		return Parked{}, fmt.Errorf("bus: dead-letter stream: %w", err)
	}
	m, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) || (err == nil && !strings.HasPrefix(m.Subject, deadLetterPrefix)) {
		return Parked{}, ErrParkedNotFound
	}
	if err != nil {
		return Parked{}, fmt.Errorf("bus: read dead-letter stream: %w", err)
	}
	p := parsed(m)
	rs, err := readRedrives(ctx, js, p.Consumer)
	if err != nil {
		return Parked{}, err
	}
	p.Redrive = rs[redriveKey{p.Consumer, p.Sequence}]
	return p, nil
}

// FindParked returns the newest dead-letter record of consumer whose failed
// event is eventID; ErrParkedNotFound if there is none.
func FindParked(ctx context.Context, js jetstream.JetStream, consumer, eventID string) (Parked, error) {
	ps, err := ListParked(ctx, js, consumer)
	if err != nil {
		return Parked{}, err
	}
	for i := len(ps) - 1; i >= 0; i-- {
		if ps[i].EventID == eventID {
			return ps[i], nil
		}
	}
	return Parked{}, ErrParkedNotFound
}

// RequestRedrive hands the dead-letter record p back to its consumer (see
// RedriveStream): id and actor say who asked, for the record. It returns
// false, and publishes nothing, when p was redriven before (by anyone).
func RequestRedrive(ctx context.Context, js jetstream.JetStream, p Parked, id, actor string, replicas int) (bool, error) {
	if !namePattern.MatchString(p.Consumer) || p.Sequence == 0 {
		return false, fmt.Errorf("bus: redrive of %q #%d: %w", p.Consumer, p.Sequence, ErrParkedNotFound)
	}
	if err := EnsureRedriveStream(ctx, js, replicas); err != nil {
		return false, err
	}
	m := nats.NewMsg(redriveSubject(p.Consumer, p.Sequence, "requested"))
	for k, v := range p.Header {
		if strings.HasPrefix(strings.ToLower(k), "nats-") {
			continue
		}
		m.Header[k] = v
	}
	m.Header.Set(HeaderRedriveDeadLetterSequence, strconv.FormatUint(p.Sequence, 10))
	m.Header.Set(HeaderRedriveID, headerValue(id, 256))
	m.Header.Set(HeaderRedriveActor, headerValue(actor, 256))
	m.Header.Set(jetstream.MsgIDHeader, "redrive:"+p.Consumer+":"+strconv.FormatUint(p.Sequence, 10))
	m.Data = p.Data
	ack, err := js.PublishMsg(ctx, m, jetstream.WithExpectStream(RedriveStream), jetstream.WithExpectLastSequencePerSubject(0))
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("bus: redrive request: %w", err)
	}
	return !ack.Duplicate, nil
}

type redriveKey struct {
	consumer string
	seq      uint64
}

// readRedrives reads the redrive stream: every redrive of consumer (every
// consumer: ""), by dead-letter record.
func readRedrives(ctx context.Context, js jetstream.JetStream, consumer string) (map[redriveKey]*Redrive, error) {
	out := map[redriveKey]*Redrive{}
	st, err := js.Stream(ctx, RedriveStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bus: redrive stream: %w", err)
	}
	filter := redrivePrefix + ">"
	if consumer != "" {
		filter = redrivePrefix + consumer + ".>"
	}
	for seq := uint64(1); ; {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("bus: read redrive stream: %w", err)
		}
		seq = m.Sequence + 1
		parts := strings.Split(strings.TrimPrefix(m.Subject, redrivePrefix), ".")
		if len(parts) != 3 {
			continue
		}
		dl, err := strconv.ParseUint(parts[1], 10, 64)
		if err != nil {
			continue
		}
		k := redriveKey{parts[0], dl}
		r := out[k]
		if r == nil {
			r = &Redrive{}
			out[k] = r
		}
		switch parts[2] {
		case "requested":
			r.RequestedAt, r.ID, r.Actor = m.Time, m.Header.Get(HeaderRedriveID), m.Header.Get(HeaderRedriveActor)
		case "outcome":
			r.Outcome, r.OutcomeAt, r.Reason = m.Header.Get(HeaderRedriveOutcome), m.Time, m.Header.Get(HeaderRedriveReason)
			r.ParkedAgainAs, _ = strconv.ParseUint(m.Header.Get(HeaderRedriveParkedAs), 10, 64)
		}
	}
}

// subscribeRedrives starts the consumer's reader of its redrive requests: a
// durable consumer of the same name on the redrive stream.
func (c *Consumer) subscribeRedrives(ctx context.Context) error {
	if err := EnsureRedriveStream(ctx, c.js, c.cfg.Replicas); err != nil {
		return err
	}
	cons, err := c.js.CreateOrUpdateConsumer(ctx, RedriveStream, jetstream.ConsumerConfig{
		Durable:       c.cfg.Name,
		Description:   "Custody bus consumer " + c.cfg.Name + ": its parked events handed back",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.cfg.AckWait,
		MaxDeliver:    -1,
		FilterSubject: redrivePrefix + c.cfg.Name + ".*.requested",
	})
	if err != nil {
		return fmt.Errorf("bus: redrive consumer %s: %w", c.cfg.Name, err)
	}
	c.redriveCons = cons
	c.redriveCC, err = cons.Consume(c.redrive, jetstream.PullMaxMessages(1), jetstream.PullExpiry(pullExpiry),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			c.log.Warn("bus: consume redrives", "err", err)
		}))
	if err != nil {
		return fmt.Errorf("bus: consume redrives %s: %w", c.cfg.Name, err)
	}
	return nil
}

// RedrivesPending is how many redrive requests the consumer has not
// finished with (delivered and not acknowledged, or not delivered yet).
func (c *Consumer) RedrivesPending(ctx context.Context) (uint64, error) {
	if c.redriveCons == nil {
		return 0, nil
	}
	info, err := c.redriveCons.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}

// redrive handles one redrive request: the parked commit's events go to the
// handler again, one after the other, and the outcome is recorded before
// the request is acknowledged (a crash in between hands the events over
// once more, to an idempotent handler).
func (c *Consumer) redrive(msg jetstream.Msg) {
	ctx := c.base
	if c.stopped.Load() {
		_ = msg.Nak()
		return
	}
	md, err := msg.Metadata()
	if err != nil {
		c.log.Error("bus: redrive without JetStream metadata", "subject", msg.Subject(), "err", err)
		return
	}
	h := msg.Headers()
	dlSeq, _ := strconv.ParseUint(h.Get(HeaderRedriveDeadLetterSequence), 10, 64)
	subject := h.Get(HeaderDeadLetterOriginalSubject)
	seq, _ := strconv.ParseUint(h.Get(HeaderDeadLetterOriginalSequence), 10, 64)
	log := c.log.With("dead_letter_sequence", dlSeq, "subject", subject, "seq", seq, "delivery", md.NumDelivered)

	failed, cause, reason := -1, "", error(nil)
	evs, err := esjs.DecodeSelected(subject, seq, h, msg.Data(), c.wants)
	if err != nil {
		cause, reason = CauseUndecodable, err
	} else {
		for i := range evs {
			if evs[i].ID == "" { // a type the consumer does not want
				continue
			}
			if err := msg.InProgress(); err != nil {
				log.Debug("bus: cannot extend the redrive's ack deadline", "err", err)
			}
			if err := c.handleRedriven(evs[i], subject, md.NumDelivered); err != nil {
				failed, reason = i, err
				cause = CausePermanent
				if !fault.IsPermanent(err) {
					cause = CauseMaxDeliver
				}
				break
			}
		}
	}
	outcome := nats.NewMsg(redriveSubject(c.cfg.Name, dlSeq, "outcome"))
	outcome.Header.Set(jetstream.MsgIDHeader, "redrive-outcome:"+c.cfg.Name+":"+strconv.FormatUint(dlSeq, 10))
	if reason == nil {
		outcome.Header.Set(HeaderRedriveOutcome, RedriveHandled)
	} else {
		if cause == CauseMaxDeliver && md.NumDelivered < uint64(c.cfg.MaxDeliver) {
			log.WarnContext(ctx, "bus: redriven event failed; will retry", "err", reason)
			c.retry(ctx, msg, md, log)
			return
		}
		parkedAs, err := c.publishParked(ctx, parking{
			header: h, data: msg.Data(), subject: subject, stream: h.Get(HeaderDeadLetterOriginalStream), seq: seq,
			deliveries: md.NumDelivered, redriveOf: dlSeq,
			msgID:       c.cfg.Name + ":redrive:" + strconv.FormatUint(dlSeq, 10),
			skipHeaders: []string{"custody-dead-letter-", "custody-redrive-"},
		}, evs, failed, cause, reason, log)
		if err != nil {
			log.ErrorContext(ctx, "bus: cannot park a redriven message again; will retry", "reason", reason, "err", err)
			c.retry(ctx, msg, md, log)
			return
		}
		outcome.Header.Set(HeaderRedriveOutcome, RedriveParkedAgain)
		outcome.Header.Set(HeaderRedriveReason, headerValue(reason.Error(), 2048))
		outcome.Header.Set(HeaderRedriveParkedAs, strconv.FormatUint(parkedAs, 10))
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = c.js.PublishMsg(pctx, outcome, jetstream.WithExpectStream(RedriveStream))
	cancel()
	if err != nil {
		log.WarnContext(ctx, "bus: cannot record a redrive's outcome; will retry", "err", err)
		c.retry(ctx, msg, md, log)
		return
	}
	log.InfoContext(ctx, "bus: parked message redriven", "outcome", outcome.Header.Get(HeaderRedriveOutcome))
	c.ack(ctx, msg, func() *slog.Logger { return log })
}

// handleRedriven runs one redriven event through the handler, in a consumer
// span whose parent is the producer's trace.
func (c *Consumer) handleRedriven(ev eventstore.RecordedEvent, subject string, delivery uint64) error {
	pctx := otel.GetTextMapPropagator().Extract(c.base, propagation.MapCarrier{
		"traceparent": ev.Metadata.TraceParent,
		"tracestate":  ev.Metadata.TraceState,
	})
	sctx, span := c.tracer.Start(pctx, c.cfg.Name+" redrive "+ev.Type, trace.WithSpanKind(trace.SpanKindConsumer))
	defer span.End()
	hctx, cancel := context.WithTimeout(sctx, c.cfg.AckWait)
	defer cancel()
	err := c.call(hctx, ev)
	if err == nil {
		c.count(sctx, "ok")
		return nil
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
	c.log.DebugContext(sctx, "bus: redriven event failed", "subject", subject, "delivery", delivery, "event_id", ev.ID, "err", err)
	return err
}
