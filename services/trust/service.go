// Package trust wires the trust service into a Custody process: Module
// opens the trust event store, starts the application (read model, custody
// record view, vendor-trust consumers, claim deadlines) and registers
// custody.trust.v1.TrustService.
//
// Layout: domain/ (the custody record, the claims aggregate of an order
// with its refund ledger, vendor trust and its scoring function — all
// pure), app/ (commands, queries, projections, reactions, deadlines),
// grpcapi/ (validation, authorization, error mapping).
//
// The order and fulfilment streams may not exist yet when the trust
// service starts alone (`custody run --target=trust`). Start does not wait
// for them: the custody record view and the fulfilment consumer start in
// the background as soon as they appear. Until the record has caught up,
// OpenClaim answers Unavailable; every other RPC works from the start.
package trust

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"google.golang.org/grpc"

	"github.com/custody/custody/pkg/platform"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	"github.com/custody/custody/services/trust/app"
	"github.com/custody/custody/services/trust/domain"
	"github.com/custody/custody/services/trust/grpcapi"
)

// Environment variables read by Module (DefaultOptions).
const (
	// EnvClaimWindow: how long after delivery a claim may be opened (Go
	// duration, default 720h).
	EnvClaimWindow = "CUSTODY_TRUST_CLAIM_WINDOW"
	// EnvChangedMindWindow: how long after delivery a change of mind may be
	// claimed (default 336h).
	EnvChangedMindWindow = "CUSTODY_TRUST_CHANGED_MIND_WINDOW"
	// EnvResponseWindow: how long a vendor has to respond (default 48h).
	EnvResponseWindow = "CUSTODY_TRUST_RESPONSE_WINDOW"
	// EnvNotReceivedGrace: how long after the expected delivery a
	// not-received claim is first accepted (default 0s).
	EnvNotReceivedGrace = "CUSTODY_TRUST_NOT_RECEIVED_GRACE"
	// EnvChangedMindDamagedBps: refund (bps) of a changed-mind return that
	// comes back damaged (default 5000; 0 refunds nothing).
	EnvChangedMindDamagedBps = "CUSTODY_TRUST_CHANGED_MIND_DAMAGED_BPS"
)

// Options configure the trust service. Zero fields take the defaults.
type Options struct {
	// Policy: claim windows, deadlines and return refund rates; zero
	// fields take domain.DefaultPolicy's.
	Policy domain.Policy
	// RecordWait bounds OpenClaim's wait for the custody record to catch
	// up with the order and fulfilment events. Default 2s.
	RecordWait time.Duration
	// ReadWait bounds the list RPCs' wait for the read model. Default 2s.
	ReadWait time.Duration
}

// DefaultOptions are the defaults, with the environment applied.
func DefaultOptions() (Options, error) {
	o := Options{Policy: domain.DefaultPolicy(), RecordWait: 2 * time.Second, ReadWait: 2 * time.Second}
	for _, d := range []struct {
		env string
		to  *time.Duration
		min time.Duration
	}{
		{EnvClaimWindow, &o.Policy.ClaimWindow, time.Nanosecond},
		{EnvChangedMindWindow, &o.Policy.ChangedMindWindow, time.Nanosecond},
		{EnvResponseWindow, &o.Policy.ResponseWindow, time.Nanosecond},
		{EnvNotReceivedGrace, &o.Policy.NotReceivedGrace, 0},
	} {
		s := os.Getenv(d.env)
		if s == "" {
			continue
		}
		v, err := time.ParseDuration(s)
		if err != nil || v < d.min {
			return o, fmt.Errorf("%s=%q: want a duration such as 48h", d.env, s)
		}
		*d.to = v
	}
	if s := os.Getenv(EnvChangedMindDamagedBps); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 || v > 10000 {
			return o, fmt.Errorf("%s=%q: want basis points 0..10000", EnvChangedMindDamagedBps, s)
		}
		o.Policy.ChangedMindDamagedBps = v
		if v == 0 {
			o.Policy.ChangedMindDamagedBps = domain.NoRefund
		}
	}
	return o, nil
}

// Name is the module (target) name and the event store's service name.
const Name = "trust"

// Module is the trust service with DefaultOptions (so the environment
// applies; a malformed variable fails Start).
func Module() platform.Module {
	return platform.Module{Name: Name, Projections: projections, Start: func(ctx context.Context, d platform.Deps) (platform.Running, error) {
		o, err := DefaultOptions()
		if err != nil {
			return platform.Running{}, err
		}
		return start(ctx, d, o)
	}}
}

// NewModule is the trust service with explicit options (tests, embedding).
func NewModule(o Options) platform.Module {
	return platform.Module{Name: Name, Projections: projections, Start: func(ctx context.Context, d platform.Deps) (platform.Running, error) {
		return start(ctx, d, o)
	}}
}

func start(ctx context.Context, d platform.Deps, o Options) (platform.Running, error) {
	store, err := d.OpenStore(ctx, Name)
	if err != nil {
		return platform.Running{}, err
	}
	svc := app.New(app.Config{Policy: o.Policy, RecordWait: o.RecordWait, ReadWait: o.ReadWait},
		app.Deps{
			Store: store,
			OpenUpstream: func(ctx context.Context, service string) (app.Store, error) {
				st, err := d.OpenStoreOf(ctx, service)
				if err != nil {
					return nil, err
				}
				return st, nil
			},
			JetStream: d.JetStream, Replicas: d.Replicas, Clock: d.Clock, Logger: d.Logger,
		})
	if err := svc.Start(ctx); err != nil {
		return platform.Running{}, fmt.Errorf("trust: %w", err)
	}
	api := grpcapi.New(svc, d.Logger)
	return platform.Running{
		Register: func(r grpc.ServiceRegistrar) { trustv1.RegisterTrustServiceServer(r, api) },
		Services: []string{trustv1.TrustService_ServiceDesc.ServiceName},
		Stop:     svc.Stop,
	}, nil
}
