// Package audit wires the audit service into a Custody process: Module
// opens every service's event store read-only, builds the order index
// (app.Service) and registers custody.audit.v1.AuditService.
//
// Layout: domain/ (the index, timeline order, chain verdicts, replay with
// the other services' deciders — all pure), app/ (following the stores,
// the three queries), grpcapi/ (validation, authorization, error mapping).
//
// The audit service owns no events and writes nothing. Services that never
// ran have no stream yet (`custody run --target=audit` alone): Start does
// not wait for them; it indexes each as soon as it appears and meanwhile
// serves what there is. Start does wait until the streams that exist are
// indexed, so the process reports ready only with a complete index.
package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"

	"github.com/custody/custody/pkg/bus"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/platform"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	"github.com/custody/custody/services/audit/app"
	"github.com/custody/custody/services/audit/grpcapi"
)

// Names the module uses in the process.
const (
	// Name is the module (target) name.
	Name = "audit"
	// ServiceName is the gRPC service this module registers.
	ServiceName = grpcapi.ServiceName
)

// EnvFreshnessWait overrides Options.FreshnessWait (a Go duration, e.g. "5s").
const EnvFreshnessWait = "CUSTODY_AUDIT_FRESHNESS_WAIT"

// Options configure the audit service. Zero fields take the defaults.
type Options struct {
	// FreshnessWait bounds how long a query waits for the index to reach
	// what the stores held when it arrived; past it the query answers
	// Unavailable rather than leave recent events out. Default 2s;
	// CUSTODY_AUDIT_FRESHNESS_WAIT overrides it in Module().
	FreshnessWait time.Duration
	// StartTimeout bounds how long Start indexes the existing events before
	// giving up. Default 5 minutes.
	StartTimeout time.Duration
	// Services whose stores are indexed. Default catalog, order,
	// fulfilment, trust, payouts.
	Services []string
}

// DefaultOptions are the defaults, with the environment applied.
func DefaultOptions() (Options, error) {
	o := Options{FreshnessWait: 2 * time.Second, StartTimeout: 5 * time.Minute}
	if s := os.Getenv(EnvFreshnessWait); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return o, fmt.Errorf("%s=%q: want a positive duration such as 2s", EnvFreshnessWait, s)
		}
		o.FreshnessWait = d
	}
	return o, nil
}

// Module is the audit service with DefaultOptions (so the environment
// applies; a malformed CUSTODY_AUDIT_FRESHNESS_WAIT fails Start).
func Module() platform.Module {
	return platform.Module{Name: Name, Projections: projections, Start: func(ctx context.Context, d platform.Deps) (platform.Running, error) {
		o, err := DefaultOptions()
		if err != nil {
			return platform.Running{}, err
		}
		return start(ctx, d, o)
	}}
}

// NewModule is the audit service with explicit options (tests, embedding).
func NewModule(o Options) platform.Module {
	return platform.Module{Name: Name, Projections: projections, Start: func(ctx context.Context, d platform.Deps) (platform.Running, error) {
		return start(ctx, d, o)
	}}
}

func start(ctx context.Context, d platform.Deps, o Options) (platform.Running, error) {
	if o.StartTimeout <= 0 {
		o.StartTimeout = 5 * time.Minute
	}
	svc := app.New(app.Config{Services: o.Services, FreshnessWait: o.FreshnessWait}, app.Deps{
		// Like Deps.OpenStoreOf, but without waiting: a store that does not
		// exist yet is looked for again in the background by app.Service.
		Open: func(ctx context.Context, service string) (app.Store, error) {
			st, err := esjs.Open(ctx, d.NATS, esjs.Config{Service: service, ReadOnly: true, Now: d.Clock.Now})
			if errors.Is(err, esjs.ErrNotCreatedYet) {
				return nil, fmt.Errorf("%w: %w", app.ErrNotCreatedYet, err)
			}
			if err != nil {
				return nil, err
			}
			return st, nil
		},
		Clock: d.Clock, Logger: d.Logger,
	})
	sctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	if err := svc.Start(sctx); err != nil {
		_ = svc.Stop(ctx)
		return platform.Running{}, fmt.Errorf("audit: %w", err)
	}
	api := grpcapi.New(svc, d.Logger)
	if d.JetStream != nil {
		api.Parked = func(ctx context.Context, consumer string) ([]bus.Parked, error) {
			return bus.ListParked(ctx, d.JetStream, consumer)
		}
	}
	return platform.Running{
		Register: func(r grpc.ServiceRegistrar) { auditv1.RegisterAuditServiceServer(r, api) },
		Services: []string{ServiceName},
		Stop:     svc.Stop,
	}, nil
}
