// Package app is the payouts service's application layer: the reactions
// to other services' events (order confirmed or cancelled, fulfilment
// delivered or cancelled, claims opened and closed, refunds issued), the
// return-window and reserve deadlines, payout runs, and the read side
// (balances, ledger entries, statements, vendors' trust tiers). It knows no
// transport: the platform's runtime folds the store into the read models,
// delivers the other services' events to the *Routes methods and runs
// the deadlines (the payouts package declares which).
//
// Consistency, in short:
//   - Every money movement is decided by an aggregate (one per order, one
//     for payout runs) and appended with the fact that explains it; the
//     command id derives from the causing event (or deadline, or request),
//     and the aggregate also refuses a cause it has booked, so redelivery,
//     replay and restarts change nothing.
//   - Events of different services arrive through different reactions, so
//     a delivery, claim or refund can overtake the OrderConfirmed it
//     depends on (a lagging reaction, a replay from scratch). A reaction
//     that finds its order not captured reads the order's own stream and,
//     if OrderConfirmed is there, captures first — with the very command
//     id the order reaction uses, so whichever comes second is a no-op.
//   - Reads (balances, entries, statements) first wait, bounded, for the
//     read side to reach the store's newest position: a caller sees its own
//     and every earlier write. RunPayouts requires it: it decides from the
//     balances at that position and refuses (Unavailable) rather than pay
//     from a stale view.
//   - The read side keeps every open return window and held reserve in
//     its store by due time; the deadline scheduler holds only the earliest
//     (Config.DeadlinesHeld) and reads the next ones from it as time moves
//     on, so a window that closed while the service was down releases
//     right after it comes back.
package app

import (
	"context"
	"time"

	"github.com/custody/custody/pkg/deadline"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/projection"
	"github.com/custody/custody/services/payouts/domain"
)

// Config tunes the service. Zero fields take the defaults.
type Config struct {
	// Policy holds the rates and durations (domain.DefaultPolicy).
	Policy domain.Policy
	// ReadWait bounds read-your-writes waits (read side, tier view) and
	// opening another service's events. Default 2s.
	ReadWait time.Duration
	// DeadlinesHeld bounds the return windows and reserves held in memory
	// by the deadline scheduler; the others wait in the read side's store.
	// Default deadline.DefaultHeld.
	DeadlinesHeld int
}

func (c Config) withDefaults() Config {
	if c.Policy.Tiers == nil {
		c.Policy = domain.DefaultPolicy()
	}
	c.ReadWait = projection.WaitOrDefault(c.ReadWait)
	if c.DeadlinesHeld <= 0 {
		c.DeadlinesHeld = deadline.DefaultHeld
	}
	return c
}

// Deps is what the service runs on: the payouts store, and the order and
// trust services' (Open): the order stream is read when a delivery, claim
// or refund overtakes its OrderConfirmed, the trust stream's position for
// read-your-writes on tiers.
type Deps = projection.Deps

// Reaction names (durable consumers of the upstream services' streams).
const (
	OrderConsumer      = "payouts-on-order"
	FulfilmentConsumer = "payouts-on-fulfilment"
	TrustConsumer      = "payouts-on-trust"
)

// TrustAggregates are the trust aggregates whose events payouts follows:
// claims (ClaimOpened, ClaimClosed, RefundIssued). Not vendor trust, which
// records facts at every step of every fulfilment; its tiers reach payouts
// through the tiers read model.
var TrustAggregates = []string{"claims"}

// Service is the payouts service.
type Service struct {
	cfg    Config
	d      Deps
	ledger *es.Handler[domain.Ledger, domain.Command]
	runs   *es.Handler[domain.Payouts, domain.RunPayouts]
	view   *LedgerView
	tiers  *TierView
	sched  *deadline.Scheduler
	orders *projection.Upstream
	trust  *projection.Upstream
}

// New returns a service. It starts nothing: the caller feeds View and
// Tiers, delivers events to the *Routes methods and runs RunDeadlines.
func New(cfg Config, d Deps) *Service {
	s := &Service{cfg: cfg.withDefaults(), d: d,
		ledger: es.NewHandler(domain.LedgerDecider, d.Store, d.Handlers),
		runs:   es.NewHandler(domain.PayoutsDecider, d.Store, d.Handlers),
		tiers:  NewTierView(),
		orders: projection.NewUpstream("order", d.Open), trust: projection.NewUpstream("trust", d.Open)}
	s.view = NewLedgerView(scheduler{s}, d.Logger.With("projection", "ledger"))
	s.sched = deadline.NewStored("payouts", d.Clock, d.Logger,
		deadline.Stored{Store: s.view, Fire: s.fire, Held: s.cfg.DeadlinesHeld})
	return s
}

// View is the read side, folded from the payouts store.
func (s *Service) View() *LedgerView { return s.view }

// Tiers is the vendors' trust tiers, folded from the trust store.
func (s *Service) Tiers() *TierView { return s.tiers }

// RunDeadlines closes return windows and releases reserves as they pass,
// until ctx ends. Run it once the read side has caught up with the store:
// it reads the open deadlines from there.
func (s *Service) RunDeadlines(ctx context.Context) {
	s.d.Logger.Info("payouts deadlines running", "position", s.view.pos.Last(), "deadlines_held", s.sched.Pending())
	s.sched.Run(ctx)
}

// catchUp waits (at most ReadWait) until the read side has applied every
// payouts event stored now, and reports whether it did. A read side that
// refused a transaction rather than overflow a balance (LedgerView.Err)
// answers that error: no read or run trusts it.
func (s *Service) catchUp(ctx context.Context) (bool, error) {
	ok, err := s.view.pos.CatchUp(ctx, s.cfg.ReadWait, s.d.Store)
	if err == nil {
		err = s.view.Err()
	}
	return ok, err
}
