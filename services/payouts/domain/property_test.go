package domain_test

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/money"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	"github.com/custody/custody/services/payouts/domain"
)

// The property tests drive the two aggregates with random sequences of
// orders, deliveries, claims, refunds, cancellations, tier changes, the
// passing of time (which fires return-window and reserve deadlines) and
// payout runs, replaying earlier commands at random, and check after every
// step:
//
//   - every transaction balances per currency, and no transaction id is
//     ever posted twice;
//   - money in = money out + balances (−buyers:payments = buyers:refunds +
//     payouts:sent + every internal account), so all balances sum to zero;
//   - custody accounts (escrow, pending, held, reserve) never go negative,
//     and each equals what the aggregates say is in that stage;
//   - an independent model of the rules (its own split arithmetic) agrees
//     on every party's holdings: vendor pending+held+available+reserve+paid
//     is the vendor's share of its delivered lines' unrefunded amounts, and
//     likewise for creators' commission and the platform's fee;
//   - a payout pays exactly an account's available balance, only when it
//     reaches the minimum, and after it the account's total paid is at most
//     what it has earned (released) net of every refund so far;
//   - a line cancellation (OrderLinesCancelled) returns exactly the
//     cancelled amount of each line, capped by what it has left, reverses
//     the model's split of it, and closes the parts with nothing left: so
//     the commission and fee follow the lines that remain;
//   - replaying any earlier command (any event redelivered, any deadline
//     fired again, any RunPayouts request repeated) decides nothing;
//   - at the end, once everything has settled and been paid, each party
//     has exactly its final share, to the minor unit.
func TestLedgerProperties(t *testing.T) {
	seeds, steps := 300, 120
	if testing.Short() {
		seeds = 40
	}
	seen := map[string]int{}
	for seed := range seeds {
		s := newSim(t, uint64(seed))
		s.seen = seen
		for range steps {
			s.step()
			if t.Failed() {
				t.Fatalf("seed %d, after step %d:\n%s", seed, s.steps, strings.Join(s.log, "\n"))
			}
		}
		s.settle()
		for a, m := range s.bal {
			for _, b := range m {
				if b < 0 && domain.Payable(a) {
					seen["negative available balance"]++
				}
			}
		}
		if t.Failed() {
			t.Fatalf("seed %d, settling:\n%s", seed, strings.Join(s.log, "\n"))
		}
	}
	// The generator must keep reaching every path.
	for k, name := range payoutsv1.TransactionKind_name {
		if k != 0 && seen[name] == 0 {
			t.Errorf("no sequence posted a %s", name)
		}
	}
	for _, k := range []string{"units cancelled", "line cancelled in full", "part closed by a line cancellation", "line cancelled after delivery"} {
		if seen[k] == 0 {
			t.Errorf("no sequence had a %s", k)
		}
	}
	if seen["negative available balance"] == 0 {
		t.Error("no sequence clawed back more than was available")
	}
	t.Logf("transactions posted: %v", seen)
}

var (
	simVendors  = []string{"v1", "v2", "v3"}
	simCreators = []string{"c1", "c2"}
	simTiers    = []string{domain.TierGold, domain.TierSilver, domain.TierStandard, domain.TierWatch, "unheard-of"}
)

type sim struct {
	t      *testing.T
	rng    *rand.Rand
	policy domain.Policy
	now    time.Time
	steps  int
	log    []string

	ledgers map[string]domain.Ledger
	payouts domain.Payouts
	bal     domain.Balances
	txns    map[string]bool
	tiers   map[string]string
	// history holds commands that booked something, for replay.
	history []simCmd

	model  map[string]*mOrder
	nextID int
	seen   map[string]int // transactions by kind, across seeds
}

type simCmd struct {
	orderID string // "" for a payout run
	cmd     domain.Command
	run     domain.RunPayouts
}

// mOrder is the model's own view of an order.
type mOrder struct {
	id    string
	lines []*mLine
	parts map[string]*mPart
}

type mLine struct {
	id, vendor, creator string
	total, refunded     int64
	commBps, feeBps     int64
}

type mPart struct {
	delivered, released, cancelled, windowClosed bool
	closeTime                                    time.Time
	claims                                       map[string]bool
}

func newSim(t *testing.T, seed uint64) *sim {
	rng := rand.New(rand.NewPCG(seed, 0x9a11))
	p := domain.DefaultPolicy()
	p.PlatformFeeBps = []int64{0, 500, 333, 2500, 10000}[rng.IntN(5)]
	p.MinPayout = domain.MinPayout{Default: []int64{0, 1, 500, 5000}[rng.IntN(4)], PerCurrency: map[string]int64{"JPY": 3}}
	return &sim{t: t, rng: rng, policy: p, now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		ledgers: map[string]domain.Ledger{}, bal: domain.Balances{}, txns: map[string]bool{}, tiers: map[string]string{},
		model: map[string]*mOrder{}, seen: map[string]int{}}
}

func (s *sim) logf(format string, args ...any) {
	s.log = append(s.log, fmt.Sprintf("%3d ", s.steps)+fmt.Sprintf(format, args...))
}

func (s *sim) step() {
	s.steps++
	switch r := s.rng.IntN(100); {
	case r < 18 || len(s.model) == 0:
		s.newOrder()
	case r < 32:
		s.deliver()
	case r < 40:
		s.openClaim()
	case r < 47:
		s.closeClaim()
	case r < 60:
		s.refund()
	case r < 64:
		s.cancel()
	case r < 68:
		s.cancelLines()
	case r < 71:
		v := simVendors[s.rng.IntN(len(simVendors))]
		s.tiers[v] = simTiers[s.rng.IntN(len(simTiers))]
		s.logf("tier %s = %s", v, s.tiers[v])
	case r < 82:
		s.advance(time.Duration(s.rng.IntN(6*24)) * time.Hour)
	case r < 92:
		s.runPayouts()
	default:
		s.replay()
	}
	s.check()
}

func (s *sim) pick(n int) int { return s.rng.IntN(n) }

// amount draws awkward amounts: tiny, odd, round and large.
func (s *sim) amount() int64 {
	switch s.rng.IntN(5) {
	case 0:
		return int64(s.rng.IntN(4)) // 0..3
	case 1:
		return []int64{99, 101, 333, 999, 1001, 3333, 9999}[s.rng.IntN(7)]
	case 2:
		return int64(s.rng.IntN(100)) * 100
	default:
		return 1 + s.rng.Int64N(250_000)
	}
}

func (s *sim) orderIDs() []string { return slices.Sorted(maps.Keys(s.model)) }

func (s *sim) randomPart() (*mOrder, string, bool) {
	if len(s.model) == 0 {
		return nil, "", false
	}
	ids := s.orderIDs()
	o := s.model[ids[s.pick(len(ids))]]
	vs := slices.Sorted(maps.Keys(o.parts))
	return o, vs[s.pick(len(vs))], true
}

func (s *sim) newOrder() {
	s.nextID++
	id := fmt.Sprintf("o%d", s.nextID)
	cur := []string{"EUR", "EUR", "JPY", "KWD"}[s.pick(4)]
	o := &mOrder{id: id, parts: map[string]*mPart{}}
	c := domain.Capture{Cause: domain.Cause{EventID: "ev-confirm-" + id, Type: "custody.order.v1.OrderConfirmed"},
		BuyerID: "b1", PSPReference: "psp-" + id, ConfirmTime: s.now, FeeBps: s.policy.PlatformFeeBps, Time: s.now}
	attributed := 0
	var total int64
	nv := 1 + s.pick(len(simVendors))
	for _, v := range s.rng.Perm(len(simVendors))[:nv] {
		for range 1 + s.pick(3) {
			l := &mLine{id: fmt.Sprint(len(o.lines) + 1), vendor: simVendors[v], total: s.amount()}
			cl := domain.CapturedLine{LineID: l.id, VendorID: l.vendor, Total: money.Money{Currency: cur, Minor: l.total}}
			switch s.pick(4) {
			case 0, 1: // the order attributed the line: the creator earns what it recorded
				cl.CreatorID = simCreators[s.pick(len(simCreators))]
				cl.CommissionBps = []int64{0, 1, 333, 1000, 2500, 9999, 10000}[s.pick(7)]
				l.creator, l.commBps = cl.CreatorID, cl.CommissionBps
				attributed++
			case 2: // a rate without a creator earns no one anything
				cl.CommissionBps = 1000
			}
			l.feeBps = min(s.policy.PlatformFeeBps, 10000-l.commBps)
			c.Lines = append(c.Lines, cl)
			o.lines = append(o.lines, l)
			o.parts[l.vendor] = &mPart{claims: map[string]bool{}}
			total += l.total
		}
	}
	c.Total = money.Money{Currency: cur, Minor: total}
	if s.pick(2) == 0 { // explicit parts, as OrderConfirmed carries them
		for _, v := range simVendors {
			if _, ok := o.parts[v]; ok {
				p := domain.CapturedPart{VendorID: v}
				for _, l := range o.lines {
					if l.vendor == v {
						p.LineIDs = append(p.LineIDs, l.id)
					}
				}
				c.Parts = append(c.Parts, p)
			}
		}
	}
	s.logf("order %s %s %d, %d lines, %d attributed", id, cur, total, len(o.lines), attributed)
	if !s.exec(id, c) {
		s.t.Errorf("capture of %s booked nothing", id)
	}
	s.model[id] = o
}

func (s *sim) deliver() {
	o, v, ok := s.randomPart()
	if !ok {
		return
	}
	p := o.parts[v]
	name, tp := s.policy.Tier(s.tiers[v])
	at := s.now.Add(-time.Duration(s.pick(48)) * time.Hour)
	window := s.policy.ReturnWindow + tp.WindowExtension
	s.logf("deliver %s/%s tier %s", o.id, v, name)
	booked := s.exec(o.id, domain.Deliver{Cause: domain.Cause{EventID: "ev-delivered-" + o.id + v}, VendorID: v, FulfilmentID: "f-" + o.id + v,
		DeliverTime: at, Tier: name, Window: window, Time: s.now})
	want := !p.delivered && !p.cancelled
	if booked != want {
		s.t.Errorf("deliver %s/%s booked=%v, want %v", o.id, v, booked, want)
	}
	if want {
		p.delivered, p.closeTime = true, at.Add(window)
	}
}

func (s *sim) openClaim() {
	o, v, ok := s.randomPart()
	if !ok {
		return
	}
	p := o.parts[v]
	id := fmt.Sprintf("cl%d", s.steps)
	s.logf("claim %s opened on %s/%s", id, o.id, v)
	booked := s.exec(o.id, domain.OpenClaim{Cause: domain.Cause{EventID: "ev-open-" + id}, ClaimID: id, VendorID: v,
		Amount: money.Money{Currency: s.ledgers[o.id].Currency(), Minor: 1}, Time: s.now})
	want := !p.released && !p.cancelled
	if booked != want {
		s.t.Errorf("claim %s booked=%v, want %v", id, booked, want)
	}
	if want {
		p.claims[id] = true
	}
}

func (s *sim) closeClaim() {
	type claim struct {
		o     *mOrder
		v, id string
	}
	var open []claim
	for _, id := range s.orderIDs() {
		o := s.model[id]
		for _, v := range slices.Sorted(maps.Keys(o.parts)) {
			for _, c := range slices.Sorted(maps.Keys(o.parts[v].claims)) {
				if o.parts[v].claims[c] {
					open = append(open, claim{o, v, c})
				}
			}
		}
	}
	if len(open) == 0 {
		return
	}
	c := open[s.pick(len(open))]
	p := c.o.parts[c.v]
	name, tp := s.policy.Tier(s.tiers[c.v])
	s.logf("claim %s closed on %s/%s", c.id, c.o.id, c.v)
	s.exec(c.o.id, domain.CloseClaim{Cause: domain.Cause{EventID: "ev-close-" + c.id}, ClaimID: c.id, VendorID: c.v, Outcome: "rejected",
		Release: domain.ReleaseTerms{Tier: name, ReserveBps: tp.ReserveBps, ReserveHold: s.policy.ReserveHold}, Time: s.now})
	delete(p.claims, c.id)
	if p.windowClosed && len(p.claims) == 0 && !p.released && !p.cancelled {
		p.released = true
	}
}

func (s *sim) refund() {
	o, v, ok := s.randomPart()
	if !ok {
		return
	}
	var left int64
	var idx []int
	for i, l := range o.lines {
		if l.vendor == v {
			left += l.total - l.refunded
			idx = append(idx, i)
		}
	}
	cur := s.ledgers[o.id].Currency()
	amount := 1 + s.rng.Int64N(max(left, 1)+max(left/4, 2))
	id := fmt.Sprintf("r%d", s.steps)
	c := domain.Refund{Cause: domain.Cause{EventID: "ev-refund-" + id, Type: "custody.trust.v1.RefundIssued"}, RefundID: id,
		VendorID: v, Amount: money.Money{Currency: cur, Minor: amount}, Time: s.now}
	if s.pick(2) == 0 && amount <= left { // name the lines, sometimes inconsistently
		rest := amount
		for _, i := range idx {
			l := o.lines[i]
			take := min(rest, l.total-l.refunded)
			if take > 0 {
				c.Lines = append(c.Lines, domain.LineAmount{LineID: l.id, Amount: money.Money{Currency: cur, Minor: take}})
				rest -= take
			}
		}
		if s.pick(4) == 0 && len(c.Lines) > 0 {
			c.Lines[0].Amount.Minor++
		}
	}
	s.logf("refund %s %d on %s/%s (unrefunded %d, %d lines named)", id, amount, o.id, v, left, len(c.Lines))
	events := s.execEvents(o.id, c)
	var ra *payoutsv1.RefundApplied
	for _, e := range events {
		if x, ok := e.(*payoutsv1.RefundApplied); ok {
			ra = x
		}
	}
	if ra == nil {
		s.t.Errorf("refund %s booked nothing", id)
		return
	}
	want := min(amount, left)
	if o.parts[v].cancelled {
		want = 0
	}
	if got := ra.GetAmount().GetAmountMinor(); got != want || ra.GetUncovered().GetAmountMinor() != amount-want {
		s.t.Errorf("refund %s applied %d uncovered %d, want %d and %d", id, got, ra.GetUncovered().GetAmountMinor(), want, amount-want)
	}
	var sum int64
	for _, lr := range ra.GetLines() {
		i := slices.IndexFunc(o.lines, func(l *mLine) bool { return l.id == lr.GetLineId() })
		if i < 0 || o.lines[i].vendor != v {
			s.t.Errorf("refund %s on line %s of another part", id, lr.GetLineId())
			continue
		}
		l := o.lines[i]
		r := lr.GetAmount().GetAmountMinor()
		if r <= 0 || r > l.total-l.refunded {
			s.t.Errorf("refund %s puts %d on line %s with %d unrefunded", id, r, l.id, l.total-l.refunded)
		}
		// The reversal is the model's split before minus after.
		bc, bf, bv := modelSplit(l, l.total-l.refunded)
		ac, af, av := modelSplit(l, l.total-l.refunded-r)
		if lr.GetCommission().GetAmountMinor() != bc-ac || lr.GetFee().GetAmountMinor() != bf-af || lr.GetVendorShare().GetAmountMinor() != bv-av {
			s.t.Errorf("refund %s line %s reverses %v, model says %d/%d/%d", id, l.id, lr, bc-ac, bf-af, bv-av)
		}
		l.refunded += r
		sum += r
	}
	if sum != ra.GetAmount().GetAmountMinor() {
		s.t.Errorf("refund %s lines sum to %d, applied %d", id, sum, ra.GetAmount().GetAmountMinor())
	}
}

func (s *sim) cancel() {
	o, v, ok := s.randomPart()
	if !ok {
		return
	}
	if s.pick(2) == 0 {
		v = "" // the whole order
	}
	s.logf("cancel %s part %q", o.id, v)
	s.exec(o.id, domain.Cancel{Cause: domain.Cause{EventID: fmt.Sprintf("ev-cancel-%d", s.steps)}, VendorID: v, Reason: "test", Time: s.now})
	for pv, p := range o.parts {
		if (v == "" || pv == v) && !p.delivered && !p.cancelled {
			p.cancelled = true
			for _, l := range o.lines {
				if l.vendor == pv {
					l.refunded = l.total
				}
			}
		}
	}
}

// cancelLines cancels units of some lines of an order (OrderLinesCancelled):
// of undelivered parts mostly, sometimes of a delivered one (its
// OrderLinesCancelled booked after the delivery); part of a line's units,
// all of them, or more than it has left; the parts left with nothing are
// closed.
func (s *sim) cancelLines() {
	if len(s.model) == 0 {
		return
	}
	ids := s.orderIDs()
	o := s.model[ids[s.pick(len(ids))]]
	cur := s.ledgers[o.id].Currency()
	id := fmt.Sprintf("lc%d", s.steps)
	c := domain.CancelLines{Cause: domain.Cause{EventID: "ev-" + id, Type: "custody.order.v1.OrderLinesCancelled"}, CancellationID: "ev-" + id,
		Reason: "test", Time: s.now}
	want := map[string]int64{} // line -> what the model expects returned
	for _, l := range o.lines {
		p := o.parts[l.vendor]
		if s.pick(3) != 0 || (p.delivered && s.pick(4) != 0) {
			continue
		}
		left := l.total - l.refunded
		var amount int64
		switch s.pick(4) {
		case 0: // every unit
			amount = max(left, 1)
		case 1: // more than it has left (a cancellation the ledger saw partly already)
			amount = left + 1 + s.rng.Int64N(100)
		default:
			amount = 1 + s.rng.Int64N(max(left, 1))
		}
		c.Lines = append(c.Lines, domain.CancelledLine{LineID: l.id, VendorID: l.vendor, Amount: money.Money{Currency: cur, Minor: amount}})
		if !p.cancelled {
			want[l.id] = min(amount, left)
		}
	}
	if len(c.Lines) == 0 {
		return
	}
	// The parts with nothing left after it, not delivered, are closed.
	for _, v := range slices.Sorted(maps.Keys(o.parts)) {
		closed := true
		for _, l := range o.lines {
			if l.vendor == v && l.total-l.refunded-want[l.id] > 0 {
				closed = false
			}
		}
		if closed && !o.parts[v].delivered && !o.parts[v].cancelled {
			c.ClosedVendorIDs = append(c.ClosedVendorIDs, v)
		}
	}
	s.logf("cancel lines %s of %s: %v, closed %v", id, o.id, c.Lines, c.ClosedVendorIDs)
	events := s.execEvents(o.id, c)
	got := map[string]int64{}
	for _, e := range events {
		ra, ok := e.(*payoutsv1.RefundApplied)
		if !ok {
			continue
		}
		for _, lr := range ra.GetLines() {
			i := slices.IndexFunc(o.lines, func(l *mLine) bool { return l.id == lr.GetLineId() })
			if i < 0 || o.lines[i].vendor != ra.GetVendorId() {
				s.t.Errorf("cancellation %s on line %s of another part", id, lr.GetLineId())
				continue
			}
			l := o.lines[i]
			r := lr.GetAmount().GetAmountMinor()
			bc, bf, bv := modelSplit(l, l.total-l.refunded)
			ac, af, av := modelSplit(l, l.total-l.refunded-r)
			if lr.GetCommission().GetAmountMinor() != bc-ac || lr.GetFee().GetAmountMinor() != bf-af || lr.GetVendorShare().GetAmountMinor() != bv-av {
				s.t.Errorf("cancellation %s line %s reverses %v, model says %d/%d/%d", id, l.id, lr, bc-ac, bf-af, bv-av)
			}
			got[l.id] += r
		}
	}
	for _, l := range o.lines {
		if got[l.id] != want[l.id] {
			s.t.Errorf("cancellation %s returned %d of line %s, want %d", id, got[l.id], l.id, want[l.id])
		}
		if want[l.id] > 0 {
			s.seen["units cancelled"]++
			if l.refunded+want[l.id] == l.total {
				s.seen["line cancelled in full"]++
			}
			if o.parts[l.vendor].delivered {
				s.seen["line cancelled after delivery"]++
			}
		}
		l.refunded += want[l.id]
	}
	for _, v := range c.ClosedVendorIDs {
		o.parts[v].cancelled = true
		s.seen["part closed by a line cancellation"]++
	}
}

// advance moves the clock and fires due deadlines, as the scheduler would.
func (s *sim) advance(d time.Duration) {
	s.now = s.now.Add(d)
	s.logf("advance %s to %s", d, s.now.Format(time.DateTime))
	for _, id := range s.orderIDs() {
		l := s.ledgers[id]
		o := s.model[id]
		for _, p := range l.Parts {
			mp := o.parts[p.VendorID]
			name, tp := s.policy.Tier(s.tiers[p.VendorID])
			if p.Delivered && !p.WindowClosed && !p.Released && !p.Cancelled && !s.now.Before(p.CloseTime) {
				if !mp.delivered || !mp.closeTime.Equal(p.CloseTime) {
					s.t.Errorf("%s/%s: model delivered=%v close %s, ledger close %s", id, p.VendorID, mp.delivered, mp.closeTime, p.CloseTime)
				}
				s.logf("window of %s/%s closes", id, p.VendorID)
				s.exec(id, domain.CloseWindow{Cause: domain.Cause{EventID: "window/" + id + "/" + p.VendorID, Type: domain.CauseReturnWindow},
					VendorID: p.VendorID, Release: domain.ReleaseTerms{Tier: name, ReserveBps: tp.ReserveBps, ReserveHold: s.policy.ReserveHold}, Time: s.now})
				mp.windowClosed = true
				if len(mp.claims) == 0 {
					mp.released = true
				}
			}
			if p.Released && !p.ReserveReleased && p.Reserve.Minor > 0 && !s.now.Before(p.ReserveReleaseTime) {
				s.logf("reserve of %s/%s released", id, p.VendorID)
				if !s.exec(id, domain.ReleaseReserve{Cause: domain.Cause{EventID: "reserve/" + id + "/" + p.VendorID, Type: domain.CauseReserveHold},
					VendorID: p.VendorID, Time: s.now}) {
					s.t.Errorf("reserve release of %s/%s booked nothing", id, p.VendorID)
				}
			}
		}
	}
}

// credited is what the balance projection would hand a run: every payable
// account's postings except payouts.
func (s *sim) credited() map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	for acct, byCur := range s.bal {
		if !domain.Payable(acct) {
			continue
		}
		out[acct] = map[string]int64{}
		for cur, b := range byCur {
			out[acct][cur] = b + s.payouts.Paid[acct][cur]
		}
	}
	return out
}

func (s *sim) runPayouts() {
	s.nextID++
	req := fmt.Sprintf("run-%d", s.nextID)
	before := domain.Balances{}
	for a, m := range s.bal {
		before[a] = maps.Clone(m)
	}
	run := domain.RunPayouts{RequestID: req, Credited: s.credited(), MinPayout: s.policy.MinPayout, RequestedBy: "platform", Time: s.now}
	events, err := domain.DecidePayouts(s.payouts, run)
	if err != nil {
		s.t.Errorf("run %s: %v", req, err)
		return
	}
	s.apply(events)
	for _, e := range events {
		s.payouts = domain.EvolvePayouts(s.payouts, e)
	}
	s.history = append(s.history, simCmd{run: run})
	b := s.payouts.Batches[domain.BatchID(req)]
	s.logf("run %s paid %d lines", req, len(b.Lines))
	paid := map[string]bool{}
	for _, l := range b.Lines {
		paid[l.Account+"|"+l.Amount.Currency] = true
		had := before.Of(l.Account, l.Amount.Currency)
		if l.Amount.Minor != had || had < s.policy.MinPayout.For(l.Amount.Currency) {
			s.t.Errorf("run %s paid %s %s, its available balance was %d (minimum %d)", req, l.Account, l.Amount, had, s.policy.MinPayout.For(l.Amount.Currency))
		}
		if got := s.bal.Of(l.Account, l.Amount.Currency); got != 0 {
			s.t.Errorf("after paying %s it holds %d", l.Account, got)
		}
		earned := s.earnedReleased(l.Account, l.Amount.Currency)
		if total := s.payouts.Paid[l.Account][l.Amount.Currency]; total > earned {
			s.t.Errorf("%s paid %d in all, earned only %d net of refunds", l.Account, total, earned)
		}
	}
	for acct, byCur := range before {
		for cur, had := range byCur {
			if domain.Payable(acct) && !paid[acct+"|"+cur] && had >= s.policy.MinPayout.For(cur) {
				s.t.Errorf("run %s left %s with %d %s unpaid", req, acct, had, cur)
			}
		}
	}
}

func (s *sim) replay() {
	if len(s.history) == 0 {
		return
	}
	h := s.history[s.pick(len(s.history))]
	if h.orderID == "" {
		run := h.run
		run.Credited, run.Time = s.credited(), s.now // later, with more money about: still nothing
		events, err := domain.DecidePayouts(s.payouts, run)
		if err != nil || len(events) > 0 {
			s.t.Errorf("replayed run %s decided %v, %v", run.RequestID, events, err)
		}
		s.logf("replayed run %s", run.RequestID)
		return
	}
	events, err := domain.DecideLedger(s.ledgers[h.orderID], h.cmd)
	s.logf("replayed %T on %s", h.cmd, h.orderID)
	if err != nil || len(events) > 0 {
		s.t.Errorf("replayed %T %+v on %s decided %v, %v", h.cmd, h.cmd, h.orderID, events, err)
	}
}

// exec decides and applies a ledger command; it reports whether it booked
// anything.
func (s *sim) exec(orderID string, c domain.Command) bool { return len(s.execEvents(orderID, c)) > 0 }

func (s *sim) execEvents(orderID string, c domain.Command) []proto.Message {
	l, ok := s.ledgers[orderID]
	if !ok {
		l = domain.LedgerDecider.Initial(orderID)
	}
	events, err := domain.DecideLedger(l, c)
	if err != nil {
		var u *domain.UnknownPartError
		if !errors.As(err, &u) && !errors.Is(err, domain.ErrTooEarly) {
			s.t.Errorf("%T on %s: %v", c, orderID, err)
		}
		return nil
	}
	s.apply(events)
	for _, e := range events {
		l = domain.EvolveLedger(l, e)
	}
	s.ledgers[orderID] = l
	if len(events) > 0 {
		s.history = append(s.history, simCmd{orderID: orderID, cmd: c})
	}
	return events
}

func (s *sim) apply(events []proto.Message) {
	for _, e := range events {
		t, ok := e.(*payoutsv1.TransactionPosted)
		if !ok {
			continue
		}
		if err := domain.CheckBalanced(t); err != nil {
			s.t.Error(err)
		}
		if s.txns[t.GetTransactionId()] {
			s.t.Errorf("transaction %s (%s) posted twice", t.GetTransactionId(), t.GetKind())
		}
		s.txns[t.GetTransactionId()] = true
		s.seen[t.GetKind().String()]++
		if t.GetCauseEventId() == "" || t.GetKind() == payoutsv1.TransactionKind_TRANSACTION_KIND_UNSPECIFIED {
			s.t.Errorf("transaction %s has no cause or kind", t.GetTransactionId())
		}
		s.bal.Apply(t)
	}
}

// modelSplit is the model's own arithmetic: floor the commission and the
// fee, the vendor gets the rest.
func modelSplit(l *mLine, x int64) (comm, fee, vendor int64) {
	if l.creator != "" {
		comm = x * l.commBps / 10000
	}
	fee = x * l.feeBps / 10000
	return comm, fee, x - comm - fee
}

// earnedReleased is what an account's owner has earned on released parts,
// net of every refund: the bound on what it may have been paid.
func (s *sim) earnedReleased(account, cur string) int64 {
	var sum int64
	for _, id := range s.orderIDs() {
		o := s.model[id]
		if s.ledgers[id].Currency() != cur {
			continue
		}
		for _, l := range o.lines {
			if !o.parts[l.vendor].released {
				continue
			}
			c, _, v := modelSplit(l, l.total-l.refunded)
			switch account {
			case domain.VendorAccount(l.vendor, domain.Available):
				sum += v
			case domain.CreatorAccount(l.creator, domain.Available):
				sum += c
			}
		}
	}
	return sum
}

func (s *sim) check() {
	t := s.t
	// Balanced, and money in = money out + balances, per currency.
	totals := map[string]int64{}
	internal := map[string]int64{}
	for acct, byCur := range s.bal {
		for cur, b := range byCur {
			totals[cur] += b
			if acct != domain.BuyerPayments && acct != domain.BuyerRefunds && acct != domain.PayoutsSent {
				internal[cur] += b
			}
		}
	}
	for cur, sum := range totals {
		if sum != 0 {
			t.Errorf("balances in %s sum to %d", cur, sum)
		}
		in := -s.bal.Of(domain.BuyerPayments, cur)
		out := s.bal.Of(domain.BuyerRefunds, cur) + s.bal.Of(domain.PayoutsSent, cur)
		if in != out+internal[cur] {
			t.Errorf("%s: money in %d != out %d + balances %d", cur, in, out, internal[cur])
		}
	}

	// What the model expects each account to hold.
	want := domain.Balances{}
	add := func(acct, cur string, m int64) {
		if want[acct] == nil {
			want[acct] = map[string]int64{}
		}
		want[acct][cur] += m
	}
	holdings := map[string]map[string]int64{} // owner -> cur -> everything it holds or was paid
	hold := func(owner, cur string, m int64) {
		if holdings[owner] == nil {
			holdings[owner] = map[string]int64{}
		}
		holdings[owner][cur] += m
	}
	for _, id := range s.orderIDs() {
		o, l := s.model[id], s.ledgers[id]
		cur := l.Currency()
		add(domain.BuyerPayments, cur, -l.Total.Minor)
		for _, p := range l.Parts {
			mp := o.parts[p.VendorID]
			stage := p.Stage()
			wantStage := payoutsv1.FundsStage_FUNDS_STAGE_ESCROW
			switch {
			case mp.cancelled:
				wantStage = payoutsv1.FundsStage_FUNDS_STAGE_CANCELLED
			case mp.released:
				wantStage = payoutsv1.FundsStage_FUNDS_STAGE_RELEASED
			case mp.delivered && len(mp.claims) > 0:
				wantStage = payoutsv1.FundsStage_FUNDS_STAGE_HELD
			case mp.delivered:
				wantStage = payoutsv1.FundsStage_FUNDS_STAGE_PENDING
			}
			if stage != wantStage {
				t.Errorf("%s/%s is %s, the model says %s", id, p.VendorID, stage, wantStage)
			}
			for _, ml := range o.lines {
				if ml.vendor != p.VendorID {
					continue
				}
				x := ml.total - ml.refunded
				add(domain.BuyerRefunds, cur, ml.refunded)
				comm, fee, vendor := modelSplit(ml, x)
				switch stage {
				case payoutsv1.FundsStage_FUNDS_STAGE_ESCROW:
					add(domain.VendorAccount(p.VendorID, domain.Escrow), cur, x)
				case payoutsv1.FundsStage_FUNDS_STAGE_PENDING, payoutsv1.FundsStage_FUNDS_STAGE_HELD:
					b := domain.Pending
					if stage == payoutsv1.FundsStage_FUNDS_STAGE_HELD {
						b = domain.Held
					}
					add(domain.VendorAccount(p.VendorID, b), cur, vendor)
					if ml.creator != "" {
						add(domain.CreatorAccount(ml.creator, domain.Pending), cur, comm)
					}
					add(domain.PlatformPending, cur, fee)
				}
				if stage != payoutsv1.FundsStage_FUNDS_STAGE_ESCROW && stage != payoutsv1.FundsStage_FUNDS_STAGE_CANCELLED {
					hold("vendor:"+p.VendorID, cur, vendor)
					if ml.creator != "" {
						hold("creator:"+ml.creator, cur, comm)
					}
					hold("platform", cur, fee)
				}
			}
			if stage == payoutsv1.FundsStage_FUNDS_STAGE_RELEASED && !p.ReserveReleased {
				add(domain.VendorAccount(p.VendorID, domain.Reserve), cur, p.Reserve.Minor)
			}
		}
	}
	// Custody accounts: exactly what the model expects, never negative.
	for acct, byCur := range s.bal {
		a, err := domain.ParseAccount(acct)
		if err != nil {
			t.Errorf("account %q: %v", acct, err)
			continue
		}
		custody := a.Bucket != "available" && a.Bucket != "fees" && a.Bucket != "sent"
		for cur, b := range byCur {
			if custody && b != want.Of(acct, cur) {
				t.Errorf("%s holds %d %s, the model says %d", acct, b, cur, want.Of(acct, cur))
			}
			if custody && acct != domain.BuyerPayments && b < 0 {
				t.Errorf("%s is negative: %d %s", acct, b, cur)
			}
		}
	}
	for acct, byCur := range want {
		for cur, m := range byCur {
			if m != 0 && s.bal.Of(acct, cur) != m {
				t.Errorf("%s holds %d %s, the model says %d", acct, s.bal.Of(acct, cur), cur, m)
			}
		}
	}
	// Every party's holdings (all its accounts, plus what it was paid) are
	// its model share of delivered, unrefunded money.
	got := map[string]map[string]int64{}
	for acct, byCur := range s.bal {
		a, _ := domain.ParseAccount(acct)
		if a.Kind != domain.OwnerVendor && a.Kind != domain.OwnerCreator && a.Kind != domain.OwnerPlatform || a.Bucket == "escrow" {
			continue
		}
		for cur, b := range byCur {
			if got[a.Owner()] == nil {
				got[a.Owner()] = map[string]int64{}
			}
			got[a.Owner()][cur] += b + s.payouts.Paid[acct][cur]
		}
	}
	for _, owner := range slices.Sorted(maps.Keys(holdings)) {
		for cur, m := range holdings[owner] {
			if got[owner][cur] != m {
				t.Errorf("%s holds %d %s in all, the model says %d", owner, got[owner][cur], cur, m)
			}
		}
	}
	for owner, byCur := range got {
		for cur, m := range byCur {
			if m != holdings[owner][cur] {
				t.Errorf("%s holds %d %s in all, the model says %d", owner, m, cur, holdings[owner][cur])
			}
		}
	}
}

// settle delivers everything left, closes every claim, lets every window
// and reserve hold pass and pays out with a minimum of one minor unit:
// then each party has exactly its final share.
func (s *sim) settle() {
	s.policy.MinPayout = domain.MinPayout{Default: 1}
	for _, id := range s.orderIDs() {
		o := s.model[id]
		for _, v := range slices.Sorted(maps.Keys(o.parts)) {
			p := o.parts[v]
			if !p.delivered && !p.cancelled {
				name, tp := s.policy.Tier(s.tiers[v])
				s.exec(id, domain.Deliver{Cause: domain.Cause{EventID: "settle-deliver"}, VendorID: v, Tier: name,
					Window: s.policy.ReturnWindow + tp.WindowExtension, Time: s.now})
				p.delivered, p.closeTime = true, s.now.Add(s.policy.ReturnWindow+tp.WindowExtension)
			}
			for _, c := range slices.Sorted(maps.Keys(p.claims)) {
				name, tp := s.policy.Tier(s.tiers[v])
				s.exec(id, domain.CloseClaim{Cause: domain.Cause{EventID: "settle-close"}, ClaimID: c, VendorID: v,
					Release: domain.ReleaseTerms{Tier: name, ReserveBps: tp.ReserveBps, ReserveHold: s.policy.ReserveHold}, Time: s.now})
				delete(p.claims, c)
				if p.windowClosed && !p.released && !p.cancelled {
					p.released = true
				}
			}
		}
	}
	s.check()
	s.advance(40 * 24 * time.Hour)
	s.advance(40 * 24 * time.Hour) // reserves of parts released by the first
	s.check()
	s.runPayouts()
	s.check()
	final := map[string]map[string]int64{}
	for _, id := range s.orderIDs() {
		cur := s.ledgers[id].Currency()
		for _, l := range s.model[id].lines {
			if s.model[id].parts[l.vendor].cancelled {
				continue
			}
			c, f, v := modelSplit(l, l.total-l.refunded)
			for owner, m := range map[string]int64{"vendor:" + l.vendor + ":available": v, "creator:" + l.creator + ":available": c, domain.PlatformFees: f} {
				if final[owner] == nil {
					final[owner] = map[string]int64{}
				}
				final[owner][cur] += m
			}
		}
	}
	for acct, byCur := range final {
		for cur, m := range byCur {
			if acct == "creator::available" {
				continue
			}
			got := s.bal.Of(acct, cur) + s.payouts.Paid[acct][cur]
			if got != m {
				s.t.Errorf("settled: %s has %d %s (paid %d), its share is %d", acct, got, cur, s.payouts.Paid[acct][cur], m)
			}
			if b := s.bal.Of(acct, cur); domain.Payable(acct) && b > 0 {
				s.t.Errorf("settled: %s still holds %d %s after paying out", acct, b, cur)
			}
		}
	}
	for acct, byCur := range s.bal {
		a, _ := domain.ParseAccount(acct)
		if a.Bucket == "escrow" || a.Bucket == "pending" || a.Bucket == "held" || a.Bucket == "reserve" {
			for cur, b := range byCur {
				if b != 0 {
					s.t.Errorf("settled: %s still holds %d %s", acct, b, cur)
				}
			}
		}
	}
}
