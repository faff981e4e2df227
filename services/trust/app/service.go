// Package app is the trust service's application layer: the claim commands
// (OpenClaim, RespondToClaim, …) run on the claims aggregate of each order,
// the queries (GetClaim and GetVendorTrust from the aggregates, ListClaims
// and ListVendorTrust from the read model), the read models (the custody
// record view that decisions are taken from, the read model of the trust
// store), the handlers that count vendors' facts, and the claims'
// deadlines. It starts nothing and knows no transport: the platform
// follows the read models, delivers the events to the handlers and runs
// the deadline scheduler (see the trust package).
//
// Consistency, in short:
//   - OpenClaim first catches the custody record up with every order and
//     fulfilment event stored at that moment (bounded by
//     Config.RecordWait); a record that cannot catch up answers
//     ErrRecordUnavailable rather than deciding from stale facts.
//   - Claim commands and GetClaim work on the order's claims aggregate
//     (strongly consistent); list RPCs wait (bounded) for the read model
//     to reach the trust stream's last position.
//   - Vendor trust is counted by the handlers of durable reactions (at
//     least once; the command id is derived from the counted event's id,
//     so nothing is counted twice) and read from the vendor's aggregate.
package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/custody/custody/pkg/deadline"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/projection"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	"github.com/custody/custody/services/trust/domain"
)

// Config tunes the service. Zero fields take the defaults.
type Config struct {
	// Policy: claim windows, deadlines, return refund rates.
	Policy domain.Policy
	// RecordWait bounds OpenClaim's wait for the custody record to catch
	// up with the order and fulfilment streams. Default 2s.
	RecordWait time.Duration
	// ReadWait bounds the list RPCs' wait for the read model. Default 2s.
	ReadWait time.Duration
	// DeadlinesHeld bounds the claim deadlines held in memory; the others
	// wait in the read model's store. Default deadline.DefaultHeld.
	DeadlinesHeld int
}

func (c Config) withDefaults() Config {
	c.Policy = c.Policy.WithDefaults()
	c.RecordWait, c.ReadWait = projection.WaitOrDefault(c.RecordWait), projection.WaitOrDefault(c.ReadWait)
	if c.DeadlinesHeld <= 0 {
		c.DeadlinesHeld = deadline.DefaultHeld
	}
	return c
}

// Deps is what the service runs on: the trust store, and the order and
// fulfilment services' (Open), whose last positions the custody record
// catches up with.
type Deps = projection.Deps

// Durable consumers of the service: the reactions' names.
const (
	// FulfilmentConsumer counts fulfilment facts into vendor trust.
	FulfilmentConsumer = "trust-on-fulfilment"
	// ClaimsConsumer counts the service's own claim facts into vendor trust.
	ClaimsConsumer = "trust-on-claims"
)

// FulfilmentEventTypes are the fulfilment events vendor trust counts.
var FulfilmentEventTypes = []string{
	"custody.fulfilment.v1.FulfilmentRequested",
	"custody.fulfilment.v1.FulfilmentShipped",
	"custody.fulfilment.v1.TrackingEventRecorded",
	"custody.fulfilment.v1.FulfilmentDelivered",
	"custody.fulfilment.v1.DeliveryFailed",
	"custody.fulfilment.v1.ShipByDeadlineMissed",
}

// ClaimEventTypes are the claim events vendor trust counts.
var ClaimEventTypes = projection.EventTypes(&trustv1.ClaimOpened{}, &trustv1.ClaimResponded{}, &trustv1.ClaimResolved{}, &trustv1.ClaimClosed{})

// Service is the trust service.
type Service struct {
	cfg       Config
	d         Deps
	claims    *es.Handler[domain.Case, domain.Command]
	trust     *es.Handler[domain.VendorTrust, domain.RecordFacts]
	record    *RecordView
	model     *ReadModel
	deadlines *deadline.Scheduler
}

// New returns a service whose read models are empty: whoever runs it feeds
// them (ReadModel().Apply, Record().ApplyFrom) and runs Scheduler(). New
// starts nothing.
func New(cfg Config, d Deps) *Service {
	s := &Service{cfg: cfg.withDefaults(), d: d,
		claims: es.NewHandler(domain.Claims, d.Store, d.Handlers),
		trust:  es.NewHandler(domain.Trust, d.Store, d.Handlers),
		record: NewRecordView(d.Open)}
	// The read model keeps every open claim's deadline by due time and
	// tells the scheduler as it applies the claims' events; the scheduler
	// holds the earliest and reads the others from it as they come (one
	// that passed while the service was down first).
	s.model = NewReadModel(s.schedule)
	s.deadlines = deadline.NewStored("trust", d.Clock, d.Logger,
		deadline.Stored{Store: s.model, Fire: s.fire, Held: s.cfg.DeadlinesHeld})
	return s
}

// Policy is the policy in force.
func (s *Service) Policy() domain.Policy { return s.cfg.Policy }

// Record is the service's custody record view, fed by the order and
// fulfilment events.
func (s *Service) Record() *RecordView { return s.record }

// ReadModel is the service's projection of its own store; applying it
// schedules the claims' deadlines.
func (s *Service) ReadModel() *ReadModel { return s.model }

// Scheduler is the claims' deadline scheduler; its Run fires them.
func (s *Service) Scheduler() *deadline.Scheduler { return s.deadlines }

// OrderBuyer returns the buyer of an order the trust service has seen
// confirmed, after catching the record up.
func (s *Service) OrderBuyer(ctx context.Context, orderID string) (string, error) {
	if err := s.record.CatchUp(ctx, s.cfg.RecordWait); err != nil {
		return "", err
	}
	o, ok := s.record.Order(orderID)
	if !ok || o.ConfirmedEventID == "" {
		return "", &domain.NotFoundError{Resource: "order", ID: orderID}
	}
	return o.BuyerID, nil
}

// OpenClaim is a buyer's claim as requested.
type OpenClaim struct {
	RequestID string
	OrderID   string
	Reason    trustv1.ClaimReason
	Lines     []domain.LineRequest
	Evidence  *trustv1.Evidence
	// Actor is who asked, recorded with the events.
	Actor string
	// Fingerprint identifies the request (apierr.Fingerprint): the same
	// RequestID with another fingerprint is refused (es.ErrRequestReused).
	Fingerprint string
}

// OpenClaim opens (once per buyer, order and request id) and assesses a
// claim, deciding from the custody record as it stands now.
func (s *Service) OpenClaim(ctx context.Context, req OpenClaim) (ClaimView, error) {
	if err := s.record.CatchUp(ctx, s.cfg.RecordWait); err != nil {
		return ClaimView{}, err
	}
	o, ok := s.record.Order(req.OrderID)
	if !ok || o.ConfirmedEventID == "" {
		return ClaimView{}, &domain.NotFoundError{Resource: "order", ID: req.OrderID}
	}
	id := domain.ClaimID(o.BuyerID, req.OrderID, req.RequestID)
	// The same request again finds its claim as it is now; the request id
	// of another claim is refused (es.ErrRequestReused).
	found, err := s.claims.Lookup(ctx, req.OrderID, es.DeriveID("open", id), req.Fingerprint)
	if err != nil {
		return ClaimView{}, err
	}
	if c := found.State.Claim(id); c != nil {
		return ClaimView{Claim: *c, Revision: found.Revision}, nil
	}
	vendor := ""
	for _, l := range req.Lines {
		if ol, ok := o.Line(l.LineID); ok {
			vendor = ol.VendorID
			break
		}
	}
	rec, _ := s.record.Record(req.OrderID, vendor)
	res, err := s.claims.Handle(ctx, es.Command[domain.Command]{
		AggregateID: req.OrderID, ID: es.DeriveID("open", id),
		Body: domain.OpenClaim{ClaimID: id, Reason: req.Reason, Lines: req.Lines, Evidence: req.Evidence, Record: rec,
			Policy: s.cfg.Policy, Now: s.d.Clock.Now()},
		Meta: es.Meta{CorrelationID: req.OrderID, Actor: req.Actor, RequestFingerprint: req.Fingerprint},
	})
	if err != nil {
		return ClaimView{}, err
	}
	return claimOf(res.State, id, res.Revision)
}

func claimOf(cs domain.Case, id string, rev uint64) (ClaimView, error) {
	c := cs.Claim(id)
	if c == nil {
		return ClaimView{}, &domain.NotFoundError{Resource: "claim", ID: id}
	}
	return ClaimView{Claim: *c, Revision: rev}, nil
}

// GetClaim reads a claim from its order's aggregate.
func (s *Service) GetClaim(ctx context.Context, claimID string) (ClaimView, error) {
	orderID, ok := domain.OrderOfClaim(claimID)
	if !ok {
		return ClaimView{}, &domain.NotFoundError{Resource: "claim", ID: claimID}
	}
	cs, rev, _, err := s.claims.Load(ctx, orderID)
	if err != nil {
		return ClaimView{}, err
	}
	return claimOf(cs, claimID, rev)
}

// Call identifies one command on a claim: the RPC (which with the claim
// and the request id makes the command id) and who asked.
type Call struct {
	RPC       string
	ClaimID   string
	RequestID string
	Actor     string
	// Fingerprint identifies the request (apierr.Fingerprint): the same
	// RequestID with another fingerprint is refused (es.ErrRequestReused).
	Fingerprint string
}

// Act runs a claim command built by body (which gets the time and the
// policy) and returns the claim after it. The same call again changes
// nothing and returns the claim as it is.
func (s *Service) Act(ctx context.Context, call Call, body func(now time.Time, p domain.Policy) domain.Command) (ClaimView, error) {
	orderID, ok := domain.OrderOfClaim(call.ClaimID)
	if !ok {
		return ClaimView{}, &domain.NotFoundError{Resource: "claim", ID: call.ClaimID}
	}
	res, err := s.claims.Handle(ctx, es.Command[domain.Command]{
		AggregateID: orderID, ID: es.DeriveID(call.RPC, call.ClaimID, call.RequestID),
		Body: body(s.d.Clock.Now(), s.cfg.Policy),
		Meta: es.Meta{CorrelationID: orderID, Actor: call.Actor, RequestFingerprint: call.Fingerprint},
	})
	if err != nil {
		return ClaimView{}, err
	}
	return claimOf(res.State, call.ClaimID, res.Revision)
}

// ListClaims lists claims, newest first, after letting the read model
// catch up with the claims stored now (bounded by ReadWait).
func (s *Service) ListClaims(ctx context.Context, q ClaimQuery) (ClaimPage, error) {
	s.catchUpModel(ctx)
	return s.model.Claims(q)
}

// GetVendorTrust reads a vendor's trust from its aggregate. A vendor with
// no history has the starting score.
func (s *Service) GetVendorTrust(ctx context.Context, vendorID string) (domain.VendorTrust, error) {
	v, rev, _, err := s.trust.Load(ctx, domain.TrustAggregateID(vendorID))
	if err != nil {
		return domain.VendorTrust{}, err
	}
	v.VendorID, v.Revision = vendorID, rev
	return v, nil
}

// ListVendorTrust lists vendors' trust by vendor id.
func (s *Service) ListVendorTrust(ctx context.Context, q VendorQuery) (VendorPage, error) {
	s.catchUpModel(ctx)
	return s.model.Vendors(q)
}

// catchUpModel lets the read model catch up with the claims stored now
// (bounded by ReadWait; after that it answers from what it has).
func (s *Service) catchUpModel(ctx context.Context) {
	_, _ = s.model.pos.CatchUp(ctx, s.cfg.ReadWait, s.d.Store)
}

// schedule (the read model's hook, after the event's batch is committed)
// keeps the scheduler in step with a case: a deadline per open claim that
// waits on time (held if among the earliest), none for the others.
func (s *Service) schedule(cs domain.Case) {
	for _, c := range cs.Claims {
		key := DeadlineKey(cs.OrderID, c.ID)
		if !WaitsOnTime(c) {
			s.deadlines.Cancel(key)
			continue
		}
		if at, ok := s.deadlines.When(key); ok && at.Equal(c.DueAt) {
			continue
		}
		s.deadlines.Schedule(key, c.DueAt, nil)
	}
}

// fire runs the deadline key due at (the scheduler's Stored.Fire): the
// claim's step as the read model has it now expires, if it still waits
// until at (a claim that moved on or closed meanwhile is the read model's
// to tell the scheduler).
func (s *Service) fire(ctx context.Context, key string, at time.Time) error {
	c, ok, err := s.model.Waiting(key)
	if err != nil || !ok || !WaitsOnTime(&c) || !c.DueAt.Equal(at) {
		return err
	}
	return s.expire(ctx, c.ID, c.State, at)
}

// expire runs a claim's deadline; the command id is derived from the
// deadline, so firing twice (after a crash, or in two processes) acts once.
func (s *Service) expire(ctx context.Context, claimID string, state domain.State, due time.Time) error {
	orderID, _ := domain.OrderOfClaim(claimID)
	_, err := s.claims.Handle(ctx, es.Command[domain.Command]{
		AggregateID: orderID, ID: es.DeriveID("expire", claimID, state.String(), due.UTC().Format(time.RFC3339Nano)),
		Body: domain.Expire{ClaimID: claimID, State: state, DueAt: due, Now: s.d.Clock.Now()},
		Meta: es.Meta{CorrelationID: orderID, Actor: domain.DecidedByRules},
	})
	if err != nil {
		s.d.Logger.Warn("claim deadline", "claim_id", claimID, "state", state, "err", err)
	}
	return err
}

// HandleFulfilmentEvent counts what a fulfilment event says about its
// vendor (reaction trust-on-fulfilment). It first waits for the custody
// record to have applied the event: "first scan of the shipment" and "on
// time" are read from it.
func (s *Service) HandleFulfilmentEvent(ctx context.Context, rec eventstore.RecordedEvent) error {
	ev, err := projection.Decode(rec)
	if err != nil {
		return err
	}
	if err := s.record.WaitFor(ctx, FulfilmentService, rec.Position, 20*time.Second); err != nil {
		return err
	}
	vendor, delta, ok := s.record.FulfilmentFacts(ev)
	if !ok {
		return nil
	}
	return s.count(ctx, rec, vendor, delta)
}

// HandleClaimEvent counts what one of the service's own claim events says
// about the vendor (reaction trust-on-claims).
func (s *Service) HandleClaimEvent(ctx context.Context, rec eventstore.RecordedEvent) error {
	ev, err := projection.Decode(rec)
	if err != nil {
		return err
	}
	vendor, delta, ok := domain.ClaimFacts(ev.Payload)
	if !ok {
		return nil
	}
	return s.count(ctx, rec, vendor, delta)
}

func (s *Service) count(ctx context.Context, rec eventstore.RecordedEvent, vendor string, delta domain.Counts) error {
	if vendor == "" {
		return nil
	}
	_, err := s.trust.Handle(ctx, es.Command[domain.RecordFacts]{
		AggregateID: domain.TrustAggregateID(vendor), ID: es.DeriveID("facts", rec.ID),
		Body: domain.RecordFacts{VendorID: vendor, Delta: delta, CauseEventID: rec.ID, CauseType: rec.Type, Now: s.d.Clock.Now()},
		Meta: projection.CausedBy(rec, vendor, domain.DecidedByRules),
	})
	if errors.Is(err, es.ErrBadCommand) {
		return fault.Permanent(fmt.Errorf("vendor %q: %w", vendor, err))
	}
	return err
}
