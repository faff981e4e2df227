// Package trust is the trust service as a module of a Custody process:
// Module declares its settings (flags), and its New opens the trust event
// store, builds the application without starting anything and returns its
// parts for the platform to run — custody.trust.v1.TrustService, the read
// models (claims and vendor trust, fed by the trust store; the custody
// record, fed by the order and fulfilment stores), the reactions that
// count vendors' facts (trust-on-fulfilment, trust-on-claims) and the
// claims' deadline scheduler.
//
// Layout: domain/ (the custody record, the claims aggregate of an order
// with its refund ledger, vendor trust and its scoring function — all
// pure), app/ (commands, queries, read models, event handlers, deadlines),
// grpcapi/ (validation, authorization, error mapping).
//
// The order and fulfilment streams may not exist yet when the trust
// service starts alone (`custody run --target=trust`): the platform follows
// them, and delivers the fulfilment events, as soon as they appear. Until
// the custody record has caught up, OpenClaim answers Unavailable; every
// other RPC works from the start.
package trust

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/grpc"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/platform"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	"github.com/custody/custody/services/trust/app"
	"github.com/custody/custody/services/trust/domain"
	"github.com/custody/custody/services/trust/grpcapi"
)

// Name is the module (target) name and the event store's service name.
const Name = "trust"

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

// DefaultOptions are the defaults: domain.DefaultPolicy, 2s waits.
func DefaultOptions() Options {
	return Options{Policy: domain.DefaultPolicy(), RecordWait: 2 * time.Second, ReadWait: 2 * time.Second}
}

// RegisterFlags declares the service's settings on fs, each defaulting to
// o's value; a malformed value fails the parse.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	p := &o.Policy
	fs.Var(platform.PositiveDuration(&p.ClaimWindow), "trust-claim-window", "how long after delivery a buyer may claim")
	fs.Var(platform.PositiveDuration(&p.ChangedMindWindow), "trust-changed-mind-window", "how long after delivery a changed-mind return may be claimed")
	fs.Var(platform.PositiveDuration(&p.ResponseWindow), "trust-response-window", "how long a vendor has to answer a claim before silence decides for the buyer")
	fs.Var(platform.NonNegativeDuration(&p.NotReceivedGrace), "trust-not-received-grace", "extra wait after the expected delivery before a not-received claim")
	fs.Var(&bps{&p.ChangedMindDamagedBps}, "trust-changed-mind-damaged-bps", "refund rate (basis points) of a changed-mind return received damaged (0 refunds nothing)")
}

// bps is a flag.Value setting a refund rate in basis points, 0..10000;
// 0 is domain.NoRefund (a zero rate in a Policy means "the default").
type bps struct{ to *int64 }

func (b *bps) String() string {
	if b == nil || b.to == nil || *b.to == domain.NoRefund {
		return "0"
	}
	return strconv.FormatInt(*b.to, 10)
}

func (b *bps) Set(s string) error {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v > 10000 {
		return fmt.Errorf("want basis points 0..10000")
	}
	if v == 0 {
		v = domain.NoRefund
	}
	*b.to = v
	return nil
}

// Module is the trust service with DefaultOptions, changed by its flags.
func Module() platform.Module { return defaultModule(nil) }

// NewModule is the trust service with explicit options (tests, embedding).
func NewModule(o Options) platform.Module { return platform.WithOptions(Name, o, handing(nil)) }

// defaultModule is Module whose build, if built is set, also hands it the
// application (tests look into the read models a rebuild folded).
func defaultModule(built func(*app.Service)) platform.Module {
	return platform.WithFlags(Name, DefaultOptions(), handing(built))
}

// handing builds the parts and, if built is set, hands it the application.
func handing(built func(*app.Service)) func(context.Context, platform.Deps, Options) (platform.Parts, error) {
	return func(ctx context.Context, d platform.Deps, o Options) (platform.Parts, error) {
		svc, parts, err := build(ctx, d, o)
		if err == nil && built != nil {
			built(svc)
		}
		return parts, err
	}
}

// build opens the trust store and builds the service and its parts,
// starting nothing.
func build(ctx context.Context, d platform.Deps, o Options) (*app.Service, platform.Parts, error) {
	deps, err := d.AppDeps(ctx, Name)
	if err != nil {
		return nil, platform.Parts{}, err
	}
	svc := app.New(app.Config{Policy: o.Policy, RecordWait: o.RecordWait, ReadWait: o.ReadWait}, deps)
	record, model := svc.Record(), svc.ReadModel()
	recordOf := func(source string) platform.Projection {
		return platform.Projection{Name: "custody record (" + source + "s)", Source: source, Position: record.Progress(source),
			Apply: func(e eventstore.RecordedEvent) { record.ApplyFrom(source, e) },
			// Each projection stores only the part its source builds, in a
			// space of its own.
			Stored: record.Part(source)}
	}
	api := grpcapi.New(svc, d.Logger)
	return svc, platform.Parts{
		Register: func(r grpc.ServiceRegistrar) { trustv1.RegisterTrustServiceServer(r, api) },
		Services: []string{trustv1.TrustService_ServiceDesc.ServiceName},
		Projections: []platform.Projection{
			// Stored outside the heap; it keeps the open claims' deadlines
			// by due time, where the scheduler reads the earliest.
			{Name: "claims and vendor trust", Source: Name, Apply: model.Apply, Position: model.Progress(), Stored: model},
			recordOf(app.OrderService),
			recordOf(app.FulfilmentService),
		},
		Reactions: []platform.Reaction{
			{Name: app.FulfilmentConsumer, Source: app.FulfilmentService, EventTypes: app.FulfilmentEventTypes, Handle: svc.HandleFulfilmentEvent},
			// The service reacts to its own claim events: a vendor's trust
			// is another aggregate, so it is counted after the claim's
			// command rather than inside it.
			{Name: app.ClaimsConsumer, Source: Name, EventTypes: app.ClaimEventTypes, Handle: svc.HandleClaimEvent,
				Aggregates: []string{domain.Claims.Aggregate}},
		},
		// The deadlines start once the claims read model has caught up;
		// the scheduler reads the earliest from it: one that passed while
		// the service was down fires at once.
		Workers: []func(context.Context){svc.Scheduler().Run},
	}, nil
}
