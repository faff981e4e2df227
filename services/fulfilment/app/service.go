// Package app is the fulfilment service's application layer: the commands
// (ShipFulfilment, RecordScan, ConfirmReceipt), the queries (GetFulfilment
// from the aggregate, ListFulfilments and WatchFulfilments from a read
// model), the handler of the order service's events (OrderConfirmed → one
// fulfilment per vendor part, OrderCancelled → cancel what has not shipped)
// and the ship-by deadlines. It knows no transport: the platform folds the
// fulfilment store into the read model (ReadModel.Apply), hands it order
// events (OrderRoutes) and runs the deadline scheduler (Deadlines).
//
// Consistency, in short:
//   - Commands return once their events are durably stored. GetFulfilment
//     reads the aggregate (strongly consistent); ListFulfilments and a
//     watch's snapshot first wait (bounded by Config.ReadWait) until the
//     read model has reached the store's last position, so a vendor lists
//     what it just shipped.
//   - The read model is stored outside the heap (pkg/kv) and resumes at
//     start after the last event it stored, catching up before the process
//     serves. It keeps every pending ship-by deadline by due time; the
//     scheduler holds only the earliest (Config.DeadlinesHeld) and reads
//     the next ones from it as time moves on, so one that passed while the
//     service was down fires right after the restart. Firing is
//     idempotent: the command id is derived from the fulfilment and the
//     deadline.
//   - The order service's events reach OrderRoutes once its stream
//     exists; every RPC works before that.
package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/custody/custody/pkg/deadline"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/projection"
	"github.com/custody/custody/services/fulfilment/domain"
)

// Config tunes the service. Zero fields take the defaults.
type Config struct {
	// HandlingTime is how long a vendor has to ship after the order is
	// confirmed (ship-by = confirm time + HandlingTime), unless the vendor
	// set its own in the catalog (VendorTimes). Default 3 days.
	HandlingTime time.Duration
	// ShipByPolicy says what a missed deadline does. Its zero value cancels
	// at once; Options in the module default to a 1-day grace period.
	ShipByPolicy domain.ShipByPolicy
	// TransitTimes per carrier code; carriers not listed take
	// DefaultTransit. Expected delivery = ship time + transit time.
	TransitTimes   map[string]time.Duration
	DefaultTransit time.Duration
	// ReadWait bounds read-your-writes waits of ListFulfilments and watches.
	// Default 2s.
	ReadWait time.Duration
	// ReactionConcurrency: order events handled at once (different orders
	// side by side). Default (0): the platform's.
	ReactionConcurrency int
	// WatchBuffer: changes buffered per watch before a watcher that does
	// not keep up is cut off (it reconnects with its cursor). Default 1024.
	WatchBuffer int
	// DeadlinesHeld bounds the ship-by deadlines held in memory; the
	// others wait in the read model's store (deadline.NewStored). Default
	// deadline.DefaultHeld.
	DeadlinesHeld int
}

// Defaults.
const (
	DefaultHandlingTime = 3 * 24 * time.Hour
	DefaultTransit      = 5 * 24 * time.Hour
)

func (c Config) withDefaults() Config {
	if c.HandlingTime <= 0 {
		c.HandlingTime = DefaultHandlingTime
	}
	if c.DefaultTransit <= 0 {
		c.DefaultTransit = DefaultTransit
	}
	c.ReadWait = projection.WaitOrDefault(c.ReadWait)
	if c.WatchBuffer <= 0 {
		c.WatchBuffer = 1024
	}
	if c.DeadlinesHeld <= 0 {
		c.DeadlinesHeld = deadline.DefaultHeld
	}
	return c
}

// Transit returns the transit time of a carrier.
func (c Config) Transit(carrier string) time.Duration {
	if d, ok := c.TransitTimes[carrier]; ok && d > 0 {
		return d
	}
	return c.DefaultTransit
}

// Deps is what the service runs on: the fulfilment store, and the order
// service's, opened (Open) to read an order's OrderPlaced when the first
// OrderCancelled arrives.
type Deps = projection.Deps

// Service is the fulfilment service.
type Service struct {
	cfg       Config
	d         Deps
	h         *es.Handler[domain.Fulfilment, domain.Command]
	tracking  *es.Handler[domain.Tracking, domain.ClaimTracking]
	rm        *ReadModel
	vendors   *VendorTimes
	deadlines *deadline.Scheduler
	orders    *projection.Upstream // opened by the first order lookup

	done     chan struct{} // closed by Stop: watches end
	stopOnce sync.Once
}

// New returns a service. It starts nothing: the caller folds the store into
// ReadModel, runs Deadlines and hands order events to OrderRoutes.
func New(cfg Config, d Deps) *Service {
	s := &Service{cfg: cfg.withDefaults(), d: d, done: make(chan struct{}),
		h:        es.NewHandler(domain.Decider, d.Store, d.Handlers),
		tracking: es.NewHandler(domain.Trackings, d.Store, d.Handlers),
		orders:   projection.NewUpstream("order", d.Open),
		vendors:  NewVendorTimes(),
	}
	s.rm = NewReadModel(s.trackDeadline)
	s.deadlines = deadline.NewStored("fulfilment", d.Clock, d.Logger,
		deadline.Stored{Store: s.rm, Fire: s.MissShipBy, Held: s.cfg.DeadlinesHeld})
	return s
}

// VendorTimes is the vendors' handling times, to be fed the catalog's
// events.
func (s *Service) VendorTimes() *VendorTimes { return s.vendors }

// Config is the service's configuration, defaults applied.
func (s *Service) Config() Config { return s.cfg }

// Stop ends open watches (ErrServiceStopping). Everything else the service
// does is run, and stopped, by its caller.
func (s *Service) Stop(context.Context) error {
	s.stopOnce.Do(func() { close(s.done) })
	return nil
}

// ReadModel is the fulfilments read model, fed with every event of the
// fulfilment store; applying an event also keeps the ship-by deadlines in
// step.
func (s *Service) ReadModel() *ReadModel { return s.rm }

// Deadlines is the ship-by scheduler; its Run fires them.
func (s *Service) Deadlines() *deadline.Scheduler { return s.deadlines }

// GetFulfilment reads a fulfilment from its aggregate.
func (s *Service) GetFulfilment(ctx context.Context, id string) (View, error) {
	f, rev, exists, err := s.h.Load(ctx, id)
	if err != nil {
		return View{}, err
	}
	if !exists || !f.Requested {
		return View{}, &fault.NotFoundError{Resource: "fulfilment", ID: id}
	}
	return View{Fulfilment: f, Revision: rev}, nil
}

// ListFulfilments lists fulfilments, newest first. It first lets the read
// model catch up with what is stored now (bounded by ReadWait; after that
// it answers from what it has).
func (s *Service) ListFulfilments(ctx context.Context, q ListQuery) (Page, error) {
	_, _ = s.rm.pos.CatchUp(ctx, s.cfg.ReadWait, s.d.Store) // then as far as it got
	return s.rm.List(q)
}

// OrderFulfilments returns the fulfilments of an order as projected (for
// authorization of a buyer listing its order).
func (s *Service) OrderFulfilments(ctx context.Context, orderID string) ([]View, error) {
	page, err := s.ListFulfilments(ctx, ListQuery{OrderID: orderID, PageSize: MaxPageSize})
	return page.Fulfilments, err
}

// Ship is a vendor's shipment as requested. Carrier and TrackingNumber are
// checked and normalised (domain.CheckTracking) by the caller.
type Ship struct {
	RequestID      string
	FulfilmentID   string
	Carrier        string
	TrackingNumber string
	Packages       []domain.Package
	Actor          string
	// Fingerprint identifies the request (apierr.Fingerprint): the same
	// RequestID with another fingerprint is refused (es.ErrRequestReused).
	Fingerprint string
}

// maxShipAttempts bounds how often ShipFulfilment prepares a shipment
// again after another shipment of the same fulfilment won a race.
const maxShipAttempts = 4

// ShipFulfilment records a shipment: it checks it against the fulfilment,
// claims the tracking number (unique per carrier), then records the
// shipment. The same request again returns the shipment it made; the same
// request id for another shipment is refused (es.ErrRequestReused) before
// anything is claimed.
func (s *Service) ShipFulfilment(ctx context.Context, req Ship) (View, string, error) {
	tid := domain.TrackingID(req.Carrier, req.TrackingNumber)
	cmdID := es.DeriveID("ship", req.FulfilmentID, req.RequestID)
	for range maxShipAttempts {
		found, err := s.h.Lookup(ctx, req.FulfilmentID, cmdID, req.Fingerprint)
		if err != nil {
			return View{}, "", err
		}
		f := found.State
		if !found.Exists || !f.Requested {
			return View{}, "", &fault.NotFoundError{Resource: "fulfilment", ID: req.FulfilmentID}
		}
		if sh, ok := f.ShipmentByRequest(req.RequestID); ok {
			v, err := s.GetFulfilment(ctx, req.FulfilmentID)
			return v, sh.ID, err
		}
		now := s.d.Clock.Now()
		sid := f.NextShipmentID()
		cmd := domain.ShipFulfilment{RequestID: req.RequestID, ShipmentID: sid, Carrier: req.Carrier,
			TrackingNumber: req.TrackingNumber, Packages: req.Packages, Time: now, ExpectedDelivery: now.Add(s.cfg.Transit(req.Carrier))}
		// Decide once without storing anything: bad input and a forbidden
		// state are refused before the tracking number is claimed.
		if _, err := domain.Decide(f, cmd); err != nil {
			return View{}, "", err
		}
		if err := s.claim(ctx, f, tid, sid, req); err != nil {
			return View{}, "", err
		}
		res, err := s.h.Handle(ctx, es.Command[domain.Command]{
			AggregateID: req.FulfilmentID, ID: cmdID, Body: cmd,
			Meta: es.Meta{CorrelationID: f.OrderID, Actor: req.Actor, RequestFingerprint: req.Fingerprint},
		})
		if errors.Is(err, domain.ErrShipmentRace) {
			continue // another shipment took sid: prepare again
		}
		if err != nil {
			return View{}, "", err
		}
		if sh, ok := res.State.ShipmentByRequest(req.RequestID); ok {
			sid = sh.ID
		}
		return View{Fulfilment: res.State, Revision: res.Revision}, sid, nil
	}
	return View{}, "", fmt.Errorf("shipping %s: %w", req.FulfilmentID, es.ErrConflict)
}

// claim claims the tracking number for shipment sid of f. A claim left by
// an earlier attempt of f that lost a race (its shipment id now names a
// shipment with another tracking number) is taken over.
func (s *Service) claim(ctx context.Context, f domain.Fulfilment, tid, sid string, req Ship) error {
	t, _, _, err := s.tracking.Load(ctx, tid)
	if err != nil {
		return err
	}
	replaces := ""
	if t.Claimed && t.FulfilmentID == f.ID && t.ShipmentID != sid {
		if sh, ok := f.Shipment(t.ShipmentID); ok && (sh.Carrier != req.Carrier || sh.TrackingNumber != req.TrackingNumber) {
			replaces = t.ShipmentID
		}
	}
	res, err := s.tracking.Handle(ctx, es.Command[domain.ClaimTracking]{
		AggregateID: tid, ID: es.DeriveID("claim", f.ID, sid, replaces),
		Body: domain.ClaimTracking{Carrier: req.Carrier, TrackingNumber: req.TrackingNumber, FulfilmentID: f.ID,
			ShipmentID: sid, VendorID: f.VendorID, OrderID: f.OrderID, Replaces: replaces},
		Meta: es.Meta{CorrelationID: f.OrderID, Actor: req.Actor},
	})
	if err != nil {
		return err
	}
	if got := res.State; got.FulfilmentID != f.ID || got.ShipmentID != sid {
		// A duplicate command id of a claim that was later replaced.
		return &domain.TrackingInUseError{Carrier: req.Carrier, TrackingNumber: req.TrackingNumber,
			FulfilmentID: got.FulfilmentID, ShipmentID: got.ShipmentID, SameFulfilment: got.FulfilmentID == f.ID}
	}
	return nil
}

// Scan is a carrier scan as posted. Carrier and TrackingNumber are
// normalised by the caller.
type Scan struct {
	Carrier        string
	TrackingNumber string
	Scan           domain.Scan
	Actor          string
	// RequestID is optional. Without it the command id is the scan's
	// (carrier, tracking number, carrier event id); with it the request id's
	// (carrier, request id), so that the same request id for another scan is
	// refused (es.ErrRequestReused) — the scan's own id still makes a scan
	// posted twice under two request ids a duplicate.
	RequestID string
	// Fingerprint identifies the request (apierr.Fingerprint).
	Fingerprint string
}

// ScanResult says what a scan did.
type ScanResult struct {
	FulfilmentID   string
	ShipmentID     string
	Duplicate      bool
	ShipmentStatus domain.TrackingStatus
	Status         domain.Status
}

// RecordScan records a carrier scan on the shipment that claimed the
// tracking number. It is idempotent by carrier event id.
func (s *Service) RecordScan(ctx context.Context, req Scan) (ScanResult, error) {
	tid := domain.TrackingID(req.Carrier, req.TrackingNumber)
	t, _, _, err := s.tracking.Load(ctx, tid)
	if err != nil {
		return ScanResult{}, err
	}
	notFound := &fault.NotFoundError{Resource: "tracking number", ID: req.Carrier + " " + req.TrackingNumber}
	if !t.Claimed {
		return ScanResult{}, notFound
	}
	id := es.DeriveID("scan", req.Carrier, req.TrackingNumber, req.Scan.CarrierEventID)
	if req.RequestID != "" {
		id = es.DeriveID("scan-request", req.Carrier, req.RequestID)
	}
	res, err := s.h.Handle(ctx, es.Command[domain.Command]{
		AggregateID: t.FulfilmentID, ID: id,
		Body: domain.RecordScan{Carrier: req.Carrier, TrackingNumber: req.TrackingNumber, Scan: req.Scan, Now: s.d.Clock.Now()},
		Meta: es.Meta{CorrelationID: t.OrderID, Actor: req.Actor, RequestFingerprint: req.Fingerprint},
	})
	switch {
	case errors.Is(err, domain.ErrUnknownTracking), errors.Is(err, domain.ErrNotRequested):
		// Claimed by a shipment that was never recorded (it lost a race).
		return ScanResult{}, notFound
	case err != nil:
		return ScanResult{}, err
	}
	f := res.State
	out := ScanResult{FulfilmentID: f.ID, Duplicate: res.Duplicate || len(res.Events) == 0, Status: f.Status()}
	if i, ok := f.ShipmentByTracking(req.Carrier, req.TrackingNumber); ok {
		out.ShipmentID, out.ShipmentStatus = f.Shipments[i].ID, f.Shipments[i].Progress().Status
	}
	return out, nil
}

// ConfirmReceipt records the buyer's confirmation. The same request id
// again changes nothing; so does confirming twice.
func (s *Service) ConfirmReceipt(ctx context.Context, fulfilmentID, requestID, actor string) (View, error) {
	f, err := s.GetFulfilment(ctx, fulfilmentID)
	if err != nil {
		return View{}, err
	}
	res, err := s.h.Handle(ctx, es.Command[domain.Command]{
		AggregateID: fulfilmentID, ID: es.DeriveID("receipt", fulfilmentID, requestID),
		Body: domain.ConfirmReceipt{Time: s.d.Clock.Now()},
		Meta: es.Meta{CorrelationID: f.Fulfilment.OrderID, Actor: actor},
	})
	if err != nil {
		return View{}, err
	}
	return View{Fulfilment: res.State, Revision: res.Revision}, nil
}
