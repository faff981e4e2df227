package domain

import (
	"maps"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/money"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
)

// PayoutsAggregate is the payout runs' aggregate type; PayoutsID its one
// instance: every run goes through stream "payouts-global", so runs are
// serialised (in the process by the command handler, across processes by
// optimistic concurrency) and two runs can never pay the same money.
const (
	PayoutsAggregate = "payouts"
	PayoutsID        = "global"
)

// Payouts is the state of the payout runs.
type Payouts struct {
	// Paid is what each account was paid so far: account -> currency -> minor.
	Paid map[string]map[string]int64
	// Batches by id. A batch never changes once created, so clones share them.
	Batches map[string]*Batch
}

// Batch is a payout run's result.
type Batch struct {
	ID, RequestID string
	Lines         []PayoutLine
	Totals        []money.Money
	CreateTime    time.Time
	RequestedBy   string
}

// PayoutLine is what one account got.
type PayoutLine struct {
	Payee, Account string
	Amount         money.Money
}

// BatchID is the batch a RunPayouts request id creates.
func BatchID(requestID string) string { return "b" + es.DeriveID("payout-batch", requestID) }

// RunPayouts pays every payable account whose balance reaches the minimum.
type RunPayouts struct {
	RequestID string
	// Credited is, per payable account and currency, the sum of every
	// posting on it except payouts, as the balance projection had it when
	// the run started. What an account may be paid is Credited − Paid.
	// The projection may lag other processes' newest postings; the state's
	// own Paid never lags, so a payout is never paid twice, and a lagging
	// credit only means it is paid next time.
	Credited    map[string]map[string]int64
	MinPayout   MinPayout
	RequestedBy string
	Time        time.Time
}

// DecidePayouts decides a run. A request id seen before decides nothing
// (the batch stands).
func DecidePayouts(s Payouts, c RunPayouts) ([]proto.Message, error) {
	id := BatchID(c.RequestID)
	if _, ok := s.Batches[id]; ok {
		return nil, nil
	}
	ev := &payoutsv1.PayoutBatchCreated{BatchId: id, RequestId: c.RequestID, CreateTime: timestamppb.New(c.Time), RequestedBy: c.RequestedBy}
	kind := payoutsv1.TransactionKind_TRANSACTION_KIND_PAYOUT
	b := newTxn(kind, TransactionID(kind, id), "", "", Cause{EventID: c.RequestID, Type: CauseRunPayouts}, id, c.Time,
		"payout batch %s", id)
	totals := map[string]int64{}
	for _, acct := range slices.Sorted(maps.Keys(c.Credited)) {
		if !Payable(acct) {
			continue
		}
		for _, cur := range slices.Sorted(maps.Keys(c.Credited[acct])) {
			due, ok := money.SubMinor(c.Credited[acct][cur], s.Paid[acct][cur])
			if !ok {
				return nil, overflow("payout run %s: %s was credited %d and paid %d %s; what it is due does not fit in int64 minor units",
					c.RequestID, acct, c.Credited[acct][cur], s.Paid[acct][cur], cur)
			}
			if due <= 0 || due < c.MinPayout.For(cur) {
				continue // negative balances are recovered from later earnings, never paid
			}
			ev.Lines = append(ev.Lines, &payoutsv1.PayoutLine{Payee: strings.TrimSuffix(acct, ":"+string(Available)), Account: acct,
				Amount: money.Money{Currency: cur, Minor: due}.ToProto()})
			b.add(acct, cur, -due)
			if totals[cur], ok = money.AddMinor(totals[cur], due); !ok {
				return nil, overflow("payout run %s: the batch total in %s would exceed int64 minor units", c.RequestID, cur)
			}
		}
	}
	for _, cur := range slices.Sorted(maps.Keys(totals)) {
		ev.Totals = append(ev.Totals, money.Money{Currency: cur, Minor: totals[cur]}.ToProto())
		b.add(PayoutsSent, cur, totals[cur])
	}
	t, err := b.build()
	if err != nil {
		return nil, err
	}
	out := []proto.Message{ev}
	if t != nil {
		out = append(out, t)
	}
	return out, nil
}

// EvolvePayouts applies one event.
func EvolvePayouts(s Payouts, e proto.Message) Payouts {
	ev, ok := e.(*payoutsv1.PayoutBatchCreated)
	if !ok {
		return s
	}
	if s.Paid == nil {
		s.Paid = map[string]map[string]int64{}
	}
	if s.Batches == nil {
		s.Batches = map[string]*Batch{}
	}
	b := BatchFromProto(ev)
	for _, l := range b.Lines {
		if s.Paid[l.Account] == nil {
			s.Paid[l.Account] = map[string]int64{}
		}
		// Cannot overflow: DecidePayouts paid credited − paid, so the
		// new paid is what was credited, an int64.
		s.Paid[l.Account][l.Amount.Currency] += l.Amount.Minor
	}
	s.Batches[b.ID] = b
	return s
}

// BatchFromProto reads a PayoutBatchCreated.
func BatchFromProto(ev *payoutsv1.PayoutBatchCreated) *Batch {
	b := &Batch{ID: ev.GetBatchId(), RequestID: ev.GetRequestId(), CreateTime: ev.GetCreateTime().AsTime(), RequestedBy: ev.GetRequestedBy()}
	for _, l := range ev.GetLines() {
		b.Lines = append(b.Lines, PayoutLine{Payee: l.GetPayee(), Account: l.GetAccount(), Amount: moneyOf(l.GetAmount())})
	}
	for _, t := range ev.GetTotals() {
		b.Totals = append(b.Totals, moneyOf(t))
	}
	return b
}

// Proto is the PayoutBatchCreated that created b (BatchFromProto's inverse).
func (b *Batch) Proto() *payoutsv1.PayoutBatchCreated {
	ev := &payoutsv1.PayoutBatchCreated{BatchId: b.ID, RequestId: b.RequestID, CreateTime: timestamppb.New(b.CreateTime), RequestedBy: b.RequestedBy}
	for _, l := range b.Lines {
		ev.Lines = append(ev.Lines, &payoutsv1.PayoutLine{Payee: l.Payee, Account: l.Account, Amount: l.Amount.ToProto()})
	}
	for _, t := range b.Totals {
		ev.Totals = append(ev.Totals, t.ToProto())
	}
	return ev
}

// Clone copies what Evolve changes in place.
func (s Payouts) Clone() Payouts {
	c := Payouts{Paid: make(map[string]map[string]int64, len(s.Paid)), Batches: maps.Clone(s.Batches)}
	for a, m := range s.Paid {
		c.Paid[a] = maps.Clone(m)
	}
	return c
}

// PayoutsDecider is the payouts aggregate. It lives as long as the
// platform, a run after another, so it is snapshotted (PayoutsSnapshots).
var PayoutsDecider = es.Decider[Payouts, RunPayouts]{
	Aggregate: PayoutsAggregate,
	Initial:   func(string) Payouts { return Payouts{} },
	Decide:    DecidePayouts,
	Evolve:    EvolvePayouts,
	Clone:     Payouts.Clone,
	Snapshot:  PayoutsSnapshots,
}

// PayoutsSnapshots encodes the payout runs' state for snapshots as a
// custody.payouts.v1.PayoutsSnapshot: every batch, in batch id order, as
// the PayoutBatchCreated that created it. Decoding folds them with
// EvolvePayouts, so what each account was paid is summed again exactly as
// a replay sums it (the TransactionPosted events beside them change
// nothing here). Change Version when Payouts or EvolvePayouts changes
// meaning.
var PayoutsSnapshots = &es.SnapshotCodec[Payouts]{
	Version: "1",
	Encode: func(s Payouts) ([]byte, error) {
		m := &payoutsv1.PayoutsSnapshot{}
		for _, id := range slices.Sorted(maps.Keys(s.Batches)) {
			m.Batches = append(m.Batches, s.Batches[id].Proto())
		}
		return proto.MarshalOptions{Deterministic: true}.Marshal(m)
	},
	Decode: func(_ string, data []byte) (Payouts, error) {
		var m payoutsv1.PayoutsSnapshot
		if err := proto.Unmarshal(data, &m); err != nil {
			return Payouts{}, err
		}
		s := Payouts{}
		for _, b := range m.GetBatches() {
			s = EvolvePayouts(s, b)
		}
		return s, nil
	},
}

// Balances is a fold of transactions: account -> currency -> minor. Audit
// folds an order's transactions with it; property tests use it to check
// the ledger.
type Balances map[string]map[string]int64

// Apply folds one transaction in, all or nothing: if any balance it
// touches would leave int64 it changes nothing and returns ErrOverflow
// naming the account, so no balance ever wraps.
func (b Balances) Apply(t *payoutsv1.TransactionPosted) error {
	next, err := b.After(t)
	if err != nil {
		return err
	}
	for _, p := range t.GetPostings() {
		a, c := p.GetAccount(), p.GetAmount().GetCurrencyCode()
		if b[a] == nil {
			b[a] = map[string]int64{}
		}
		b[a][c] = next[a+"|"+c]
	}
	return nil
}

// After returns the balances t would leave on the accounts it touches
// ("<account>|<currency>" -> minor), without changing b, or ErrOverflow.
func (b Balances) After(t *payoutsv1.TransactionPosted) (map[string]int64, error) {
	next := make(map[string]int64, len(t.GetPostings()))
	for _, p := range t.GetPostings() {
		a, c, amt := p.GetAccount(), p.GetAmount().GetCurrencyCode(), p.GetAmount().GetAmountMinor()
		key := a + "|" + c
		cur, seen := next[key]
		if !seen {
			cur = b[a][c]
		}
		sum, ok := money.AddMinor(cur, amt)
		if !ok {
			return nil, overflow("%s %s: %s would hold %d + %d %s, beyond int64 minor units; the transaction is not applied",
				t.GetKind(), t.GetTransactionId(), a, cur, amt, c)
		}
		next[key] = sum
	}
	return next, nil
}

// Of is an account's balance in a currency.
func (b Balances) Of(account, currency string) int64 { return b[account][currency] }
