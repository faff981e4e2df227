// Package audit wires the audit service into a Custody process: the module
// declares one projection per service it indexes (the order index, fed
// from that service's store, and stored in the process's read-model store:
// one platform.Stored space per store) and registers
// custody.audit.v1.AuditService; the platform's runtime follows the stores.
//
// Layout: domain/ (the index, timeline order, chain verdicts, replay with
// the other services' deciders — all pure), app/ (the stored index, its
// feeds, the queries, redrives, erasures and exports), grpcapi/ (validation,
// authorization, error mapping; the AuditService and PrivacyService servers).
//
// It also registers custody.audit.v1.PrivacyService (EraseBuyer,
// ExportBuyerData): a buyer's erasure destroys their data key, so every
// personal field of their events reads "[erased]", and an export copies
// their orders' personal fields, revealed.
//
// The audit service writes two kinds of event, in its own store
// (CUSTODY_AUDIT), which is indexed like the others: ParkedEventRedriven,
// when support hands a parked event back to its consumer
// (RedriveParkedEvent), and BuyerErased, when the platform erases a buyer;
// a reaction on that store (ErasureConsumer) destroys the key of every
// BuyerErased, should the process have stopped between the two.
// The other stores it indexes are not its own, so the process serves while the index is being
// built, and a service that never ran (`custody run --target=audit` alone)
// is indexed as soon as its stream appears. Queries make up for it: each
// waits until the index holds what the stores held when it arrived, or
// answers Unavailable — never a silently incomplete trail.
package audit

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/bus"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/platform"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	"github.com/custody/custody/services/audit/app"
	"github.com/custody/custody/services/audit/domain"
	"github.com/custody/custody/services/audit/grpcapi"
)

// Names the module uses in the process.
const (
	// Name is the module (target) name.
	Name = "audit"
	// ServiceName is the gRPC service this module registers.
	ServiceName = grpcapi.ServiceName
	// PrivacyServiceName is the other: buyers' erasure and access
	// requests.
	PrivacyServiceName = grpcapi.PrivacyServiceName
	// ErasureConsumer destroys the data key of every BuyerErased the
	// audit's store holds (a crash between the two leaves the key).
	ErasureConsumer = "audit-on-audit"
)

// Options configure the audit service. Zero fields take the defaults.
type Options struct {
	// FreshnessWait bounds how long a query waits for the index to reach
	// what the stores held when it arrived; past it the query answers
	// Unavailable rather than leave recent events out. Default 2s
	// (--audit-freshness-wait).
	FreshnessWait time.Duration
	// Services whose stores are indexed. Default catalog, order,
	// fulfilment, trust, payouts.
	Services []string
}

// DefaultOptions are the defaults.
func DefaultOptions() Options {
	return Options{FreshnessWait: 2 * time.Second}
}

// RegisterFlags declares the settings on fs, with o's values as defaults;
// a bad value fails at parse time.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.Var(platform.PositiveDuration(&o.FreshnessWait), "audit-freshness-wait",
		"how long an audit query waits for the index to catch up with the stores before answering Unavailable")
}

// Module is the audit service with DefaultOptions, as its flags set them.
func Module() platform.Module { return platform.WithFlags(Name, DefaultOptions(), parts) }

// NewModule is the audit service with explicit options (tests, embedding).
func NewModule(o Options) platform.Module { return platform.WithOptions(Name, o, parts) }

// parts builds the index and its API; nothing runs until the runtime
// follows the projections.
func parts(ctx context.Context, d platform.Deps, o Options) (platform.Parts, error) {
	services := o.Services
	if len(services) == 0 {
		services = app.DefaultServices
	}
	var store platform.Store
	var handlers es.Options
	if d.ReadOnly {
		// custody rebuild: the audit's own store is indexed if it exists
		// (it does not before the first redrive of a data directory made
		// by an older binary, and rebuild must not wait for it).
		if st, err := d.OpenStoreIfCreated(ctx, Name); err == nil {
			_ = st.Close()
		} else {
			services = slices.DeleteFunc(slices.Clone(services), func(s string) bool { return s == Name })
		}
	} else if slices.Contains(services, Name) {
		deps, err := d.AppDeps(ctx, Name)
		if err != nil {
			return platform.Parts{}, err
		}
		store, handlers = deps.Store, deps.Handlers
	}
	svc := app.New(app.Config{Services: services, FreshnessWait: o.FreshnessWait},
		app.Deps{Open: openIfCreated(d), Clock: d.Clock, Logger: d.Logger, Personal: d.Personal})
	api := grpcapi.New(svc, d.Logger)
	privacy := grpcapi.NewPrivacy(svc, d.Logger)
	if d.JetStream != nil {
		api.Parked = listParked(d.JetStream)
		if store != nil {
			svc.EnableRedrives(es.NewHandler(domain.Redrives, store, handlers), deadLetters(d.JetStream, d.Replicas))
		}
	}
	var reactions []platform.Reaction
	if store != nil && d.Personal != nil {
		svc.EnableErasures(es.NewHandler(domain.Erasures, store, handlers))
		reactions = append(reactions, platform.Reaction{Name: ErasureConsumer, Source: Name, EventTypes: app.ErasureEventTypes,
			Aggregates: []string{domain.Erasures.Aggregate}, Handle: svc.HandleBuyerErased, Concurrency: 4})
	}
	var projections []platform.Projection
	for _, f := range svc.Feeds() {
		projections = append(projections, platform.Projection{Name: "order index (" + f.Service + ")", Source: f.Service,
			Apply: f.Apply, Position: f.Position, Skipped: f.Skipped, Stored: f.Stored})
	}
	return platform.Parts{
		Register: func(r grpc.ServiceRegistrar) {
			auditv1.RegisterAuditServiceServer(r, api)
			auditv1.RegisterPrivacyServiceServer(r, privacy)
		},
		Services:    []string{ServiceName, PrivacyServiceName},
		Projections: projections,
		Reactions:   reactions,
		Stop: func(ctx context.Context) error {
			err := svc.Close(ctx)
			if store != nil {
				err = errors.Join(err, store.Close())
			}
			return err
		},
	}, nil
}

// openIfCreated opens a service's events for queries: a service that has
// not created its stream yet is reported as app.ErrNotCreatedYet at once
// (a query must not wait for a service that may never run).
func openIfCreated(d platform.Deps) func(ctx context.Context, service string) (app.Store, error) {
	return func(ctx context.Context, service string) (app.Store, error) {
		st, err := d.OpenStoreIfCreated(ctx, service)
		if errors.Is(err, platform.ErrNotCreatedYet) {
			return nil, fmt.Errorf("%s: %w", service, app.ErrNotCreatedYet)
		}
		return st, err
	}
}

// listParked reads the dead-letter stream for ListParkedEvents.
func listParked(js jetstream.JetStream) func(ctx context.Context, consumer string) ([]*auditv1.ParkedEvent, error) {
	return func(ctx context.Context, consumer string) ([]*auditv1.ParkedEvent, error) {
		ps, err := bus.ListParked(ctx, js, consumer)
		if err != nil {
			return nil, err
		}
		out := make([]*auditv1.ParkedEvent, 0, len(ps))
		for _, p := range ps {
			out = append(out, parkedProto(p))
		}
		return out, nil
	}
}

// deadLetters is the dead-letter stream as the app's redrives use it.
func deadLetters(js jetstream.JetStream, replicas int) app.DeadLetters {
	record := func(p bus.Parked, err error) (app.ParkedRecord, error) {
		if errors.Is(err, bus.ErrParkedNotFound) {
			return app.ParkedRecord{}, app.ErrParkedNotFound
		}
		if err != nil {
			return app.ParkedRecord{}, err
		}
		return app.ParkedRecord{Parked: parkedProto(p), Event: p.Event}, nil
	}
	return app.DeadLetters{
		Get: func(ctx context.Context, seq uint64) (app.ParkedRecord, error) {
			return record(bus.GetParked(ctx, js, seq))
		},
		Find: func(ctx context.Context, consumer, eventID string) (app.ParkedRecord, error) {
			return record(bus.FindParked(ctx, js, consumer, eventID))
		},
		HandBack: func(ctx context.Context, rec app.ParkedRecord, id, actor string) (bool, error) {
			p, err := bus.GetParked(ctx, js, rec.Parked.GetDeadLetterSequence())
			if err != nil {
				return false, err
			}
			return bus.RequestRedrive(ctx, js, p, id, actor, replicas)
		},
	}
}

// parkedProto is a dead-letter record as the API shows it.
func parkedProto(p bus.Parked) *auditv1.ParkedEvent {
	out := &auditv1.ParkedEvent{
		Consumer: p.Consumer, SourceService: p.SourceService, Cause: p.Cause, Reason: p.Reason,
		Deliveries: p.Deliveries, EventId: p.EventID, EventType: p.EventType,
		OriginalSubject: p.OriginalSubject, OriginalSequence: p.OriginalSequence, ParkTime: timestamppb.New(p.ParkedAt),
		DeadLetterSequence: p.Sequence, RedriveOf: p.RedriveOf,
	}
	if r := p.Redrive; r != nil {
		rd := &auditv1.ParkedEventRedrive{Actor: r.Actor, Reason: r.Reason, ParkedAgainSequence: r.ParkedAgainAs,
			Outcome: auditv1.RedriveOutcome_REDRIVE_OUTCOME_PENDING}
		if !r.RequestedAt.IsZero() {
			rd.RequestTime = timestamppb.New(r.RequestedAt)
		}
		switch r.Outcome {
		case bus.RedriveHandled:
			rd.Outcome = auditv1.RedriveOutcome_REDRIVE_OUTCOME_HANDLED
		case bus.RedriveParkedAgain:
			rd.Outcome = auditv1.RedriveOutcome_REDRIVE_OUTCOME_PARKED_AGAIN
		}
		if !r.OutcomeAt.IsZero() {
			rd.OutcomeTime = timestamppb.New(r.OutcomeAt)
		}
		out.Redrive = rd
	}
	return out
}
