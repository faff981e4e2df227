package app

import (
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/money"
	"github.com/custody/custody/pkg/projection"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	"github.com/custody/custody/services/payouts/domain"
)

// Entry is one posting of a transaction, as the read side keeps it.
type Entry struct {
	// Seq numbers entries in posting order (0, 1, 2, …): page tokens.
	Seq          int
	Index        int // the posting's index in its transaction
	Position     uint64
	TxnID        string
	Kind         payoutsv1.TransactionKind
	Account      string
	Amount       money.Money
	BalanceAfter money.Money
	OrderID      string
	VendorID     string
	CauseEventID string
	CauseType    string
	Reference    string
	Memo         string
	PostTime     time.Time
}

// Deadlines is what the view tells as it sees return windows and reserves
// open and close (from any process's events), so that the service keeps
// exactly the open ones scheduled — also right after a restart, when the
// view replays the store from the start or, restored from its checkpoint,
// tells again every one still open (Load). (A rebuild schedules them on a
// scheduler that never runs: they go nowhere.)
type Deadlines interface {
	WindowOpen(orderID, vendorID string, closeAt time.Time)
	WindowDone(orderID, vendorID string)
	ReserveHeld(orderID, vendorID string, releaseAt time.Time)
	ReserveDone(orderID, vendorID string)
}

// LedgerView is the read side: balances, the entries of every account and
// order, and what each payable account was credited, folded from every
// event of the payouts store (so it sees what any process wrote). It keeps
// everything in memory; at start it is restored from its checkpoint (it is
// a platform.Checkpointer) or folded from position 1. It also keeps the
// return windows and reserves still open, with their deadlines, so that a
// restored view can schedule them again as a replay would.
type LedgerView struct {
	pos       *projection.Position
	deadlines Deadlines
	log       *slog.Logger

	mu        sync.RWMutex
	bal       domain.Balances
	entries   []*Entry
	byAccount map[string][]*Entry
	byOrder   map[string][]*Entry
	credited  map[string]map[string]int64 // payable account -> currency -> non-payout postings
	paid      map[string]map[string]int64 // payable account -> currency -> payouts
	txns      map[string]bool
	overflow  error              // the first transaction refused because a sum would overflow
	windows   map[part]time.Time // open return windows -> close time
	reserves  map[part]time.Time // held reserves -> release time
}

// part is one vendor's part of an order: what a return window or a
// reserve belongs to.
type part struct{ orderID, vendorID string }

// NewLedgerView returns an empty view; deadlines may be nil.
func NewLedgerView(deadlines Deadlines, log *slog.Logger) *LedgerView {
	if log == nil {
		log = slog.Default()
	}
	return &LedgerView{pos: projection.New(), deadlines: deadlines, log: log, bal: domain.Balances{},
		byAccount: map[string][]*Entry{}, byOrder: map[string][]*Entry{},
		credited: map[string]map[string]int64{}, paid: map[string]map[string]int64{}, txns: map[string]bool{},
		windows: map[part]time.Time{}, reserves: map[part]time.Time{}}
}

// Position is the payouts store position of the last event applied:
// reads wait on it (read-your-writes).
func (v *LedgerView) Position() *projection.Position { return v.pos }

// Apply applies one event of the payouts store.
func (v *LedgerView) Apply(rec eventstore.RecordedEvent) {
	defer v.pos.Advance(rec.Position)
	ev, err := es.Decode(rec)
	if err != nil {
		v.log.Error("payouts view: skipping an event it cannot decode", "event", rec.ID, "err", err)
		return
	}
	switch e := ev.Payload.(type) {
	case *payoutsv1.TransactionPosted:
		v.post(rec.Position, e)
	case *payoutsv1.ReturnWindowStarted:
		p, at := part{e.GetOrderId(), e.GetVendorId()}, e.GetCloseTime().AsTime()
		v.track(v.windows, p, at, true)
		if v.deadlines != nil {
			v.deadlines.WindowOpen(p.orderID, p.vendorID, at)
		}
	case *payoutsv1.ReturnWindowClosed:
		p := part{e.GetOrderId(), e.GetVendorId()}
		v.track(v.windows, p, time.Time{}, false)
		if v.deadlines != nil {
			v.deadlines.WindowDone(p.orderID, p.vendorID)
		}
	case *payoutsv1.FundsReleased:
		p, at, held := part{e.GetOrderId(), e.GetVendorId()}, e.GetReserveReleaseTime().AsTime(), e.GetReserve().GetAmountMinor() > 0
		v.track(v.windows, p, time.Time{}, false)
		if held {
			v.track(v.reserves, p, at, true)
		}
		if v.deadlines != nil {
			v.deadlines.WindowDone(p.orderID, p.vendorID)
			if held {
				v.deadlines.ReserveHeld(p.orderID, p.vendorID, at)
			}
		}
	case *payoutsv1.ReserveReleased:
		p := part{e.GetOrderId(), e.GetVendorId()}
		v.track(v.reserves, p, time.Time{}, false)
		if v.deadlines != nil {
			v.deadlines.ReserveDone(p.orderID, p.vendorID)
		}
	}
}

// track notes p's deadline at in open (a window or a reserve opened, or
// moved), or forgets it (closed, released), as the scheduler does.
func (v *LedgerView) track(open map[part]time.Time, p part, at time.Time, opened bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if opened {
		open[p] = at
	} else {
		delete(open, p)
	}
}

func (v *LedgerView) post(pos uint64, t *payoutsv1.TransactionPosted) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.txns[t.GetTransactionId()] {
		// Cannot happen (transaction ids derive from their cause, and the
		// aggregates book a cause once); if it ever did, counting it twice
		// would be worse than logging it.
		v.log.Error("payouts view: transaction posted twice; ignoring the repeat", "transaction", t.GetTransactionId())
		return
	}
	v.txns[t.GetTransactionId()] = true
	payout := t.GetKind() == payoutsv1.TransactionKind_TRANSACTION_KIND_PAYOUT
	if err := v.fits(t, payout); err != nil {
		// Far beyond any real ledger (each order is at most
		// money.MaxAmount), but a wrapped balance would be worse than none.
		if v.overflow == nil {
			v.overflow = err
		}
		v.log.Error("payouts view: a transaction would overflow a balance; it is not applied, and reads and payout runs are refused", "transaction", t.GetTransactionId(), "err", err)
		return
	}
	// fits checked these sums in this order: none overflows.
	for i, p := range t.GetPostings() {
		acct, cur, amt := p.GetAccount(), p.GetAmount().GetCurrencyCode(), p.GetAmount().GetAmountMinor()
		if v.bal[acct] == nil {
			v.bal[acct] = map[string]int64{}
		}
		v.bal[acct][cur] += amt
		if domain.Payable(acct) {
			m := v.credited
			if payout {
				m, amt = v.paid, -amt
			}
			if m[acct] == nil {
				m[acct] = map[string]int64{}
			}
			m[acct][cur] += amt
		}
		e := &Entry{Seq: len(v.entries), Index: i, Position: pos, TxnID: t.GetTransactionId(), Kind: t.GetKind(), Account: acct,
			Amount: money.Money{Currency: cur, Minor: p.GetAmount().GetAmountMinor()}, BalanceAfter: money.Money{Currency: cur, Minor: v.bal[acct][cur]},
			OrderID: t.GetOrderId(), VendorID: t.GetVendorId(), CauseEventID: t.GetCauseEventId(), CauseType: t.GetCauseType(),
			Reference: t.GetReference(), Memo: t.GetMemo(), PostTime: t.GetPostTime().AsTime()}
		v.entries = append(v.entries, e)
		v.byAccount[acct] = append(v.byAccount[acct], e)
		if t.GetOrderId() != "" {
			v.byOrder[t.GetOrderId()] = append(v.byOrder[t.GetOrderId()], e)
		}
	}
}

// fits reports whether t can be folded in without a balance, or a payable
// account's credited or paid sum, leaving int64: nil, or ErrOverflow
// naming the first that would.
func (v *LedgerView) fits(t *payoutsv1.TransactionPosted, payout bool) error {
	if _, err := v.bal.After(t); err != nil {
		return err
	}
	m, what := v.credited, "credited"
	if payout {
		m, what = v.paid, "paid"
	}
	sums := map[string]int64{}
	for _, p := range t.GetPostings() {
		acct, cur, amt := p.GetAccount(), p.GetAmount().GetCurrencyCode(), p.GetAmount().GetAmountMinor()
		if !domain.Payable(acct) {
			continue
		}
		key := acct + "|" + cur
		sum, seen := sums[key]
		if !seen {
			sum = m[acct][cur]
		}
		ok := true
		if payout {
			amt, ok = money.SubMinor(0, amt)
		}
		if ok {
			sum, ok = money.AddMinor(sum, amt)
		}
		if !ok {
			return fault.Precondition(domain.ErrOverflow.Reason, "%s %s: what %s was %s would exceed int64 minor units; the transaction is not applied",
				t.GetKind(), t.GetTransactionId(), acct, what)
		}
		sums[key] = sum
	}
	return nil
}

// Err is nil, or why the view refused a transaction (ErrOverflow: a sum
// would have left int64). The view is then incomplete, so reads of
// balances, entries and statements, and payout runs, answer this error
// instead of numbers that leave a stored transaction out.
func (v *LedgerView) Err() error {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.overflow
}

// Credited is, per payable account and currency, the sum of its postings
// other than payouts: what RunPayouts hands the payouts aggregate.
func (v *LedgerView) Credited() map[string]map[string]int64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make(map[string]map[string]int64, len(v.credited))
	for a, m := range v.credited {
		out[a] = maps.Clone(m)
	}
	return out
}

// Balances is a copy of every balance.
func (v *LedgerView) Balances() domain.Balances {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make(domain.Balances, len(v.bal))
	for a, m := range v.bal {
		out[a] = maps.Clone(m)
	}
	return out
}

// OwnerBalance is an owner's balances in one currency.
type OwnerBalance struct {
	Currency                                        string
	Escrow, Pending, Held, Available, Reserve, Paid int64
}

// AccountBalance is one account's balance in one currency.
type AccountBalance struct {
	Account string
	Balance money.Money
}

// Owner returns an owner's balances per currency (sorted) and its
// accounts (by account, then currency).
func (v *LedgerView) Owner(kind, id string) ([]OwnerBalance, []AccountBalance) {
	owner := kind
	if id != "" {
		owner += ":" + id
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	byCur := perCurrency[OwnerBalance]{newSum: func(cur string) *OwnerBalance { return &OwnerBalance{Currency: cur} }}
	// Each field below sums one account (an owner has one account per
	// bucket, and only its available account is paid), so these += cannot
	// overflow: they copy a checked balance.
	var accounts []AccountBalance
	for _, b := range domain.Buckets(kind) {
		acct := owner + ":" + b
		for _, cur := range slices.Sorted(maps.Keys(v.bal[acct])) {
			amt := v.bal[acct][cur]
			accounts = append(accounts, AccountBalance{Account: acct, Balance: money.Money{Currency: cur, Minor: amt}})
			ob := byCur.get(cur)
			switch b {
			case "escrow":
				ob.Escrow += amt
			case "pending":
				ob.Pending += amt
			case "held":
				ob.Held += amt
			case "available", "fees":
				ob.Available += amt
			case "reserve":
				ob.Reserve += amt
			}
		}
		for cur, paid := range v.paid[acct] {
			byCur.get(cur).Paid += paid
		}
	}
	return byCur.list(), accounts
}

// perCurrency sums per currency: one T, made by newSum, for each currency
// met.
type perCurrency[T any] struct {
	newSum func(cur string) *T
	m      map[string]*T
}

func (p *perCurrency[T]) get(cur string) *T {
	if p.m[cur] == nil {
		if p.m == nil {
			p.m = map[string]*T{}
		}
		p.m[cur] = p.newSum(cur)
	}
	return p.m[cur]
}

// list lists the sums by currency.
func (p *perCurrency[T]) list() []T {
	out := make([]T, 0, len(p.m))
	for _, cur := range slices.Sorted(maps.Keys(p.m)) {
		out = append(out, *p.m[cur])
	}
	return out
}

// EntryFilter selects entries; empty fields select all.
type EntryFilter struct {
	Account string
	OrderID string
}

// Entries returns up to limit entries matching f with Seq > after (after
// -1: from the start), in posting order, and whether more follow.
func (v *LedgerView) Entries(f EntryFilter, after, limit int) ([]Entry, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	list := v.entries
	switch {
	case f.Account != "":
		list = v.byAccount[f.Account]
	case f.OrderID != "":
		list = v.byOrder[f.OrderID]
	}
	start, _ := slices.BinarySearchFunc(list, after+1, func(e *Entry, seq int) int { return e.Seq - seq })
	found, more := projection.Take(slices.Values(list[start:]), limit, func(e *Entry) bool { return f.OrderID == "" || e.OrderID == f.OrderID })
	var out []Entry
	for _, e := range found {
		out = append(out, *e)
	}
	return out, more
}

// StatementTotal sums a statement in one currency.
type StatementTotal struct {
	Currency                          string
	Opening, Credits, Debits, Closing int64
}

// Statement returns an account's entries posted in [start, end) (a zero
// start: from the first) and the totals per currency. The opening and
// closing balances are balances, which fit; the credits or the debits of a
// long period might not (money in and out again, many times over): then it
// answers an *InvalidError naming start_time, asking for a shorter period,
// rather than a wrapped sum (InvalidArgument at the edge).
func (v *LedgerView) Statement(account string, start, end time.Time) ([]Entry, []StatementTotal, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	totals := perCurrency[StatementTotal]{newSum: func(cur string) *StatementTotal { return &StatementTotal{Currency: cur} }}
	var out []Entry
	for _, e := range v.byAccount[account] {
		t := totals.get(e.Amount.Currency)
		sum, amt := &t.Opening, e.Amount.Minor
		switch {
		case e.PostTime.Before(start):
		case !e.PostTime.Before(end):
			continue
		case amt > 0:
			sum = &t.Credits
			out = append(out, *e)
		default:
			sum = &t.Debits
			out = append(out, *e)
		}
		var ok bool
		if *sum, ok = money.AddMinor(*sum, amt); !ok {
			return nil, nil, tooLong(e.Amount.Currency)
		}
	}
	for cur, t := range totals.m {
		// Credits (>= 0) plus debits (<= 0) cannot overflow; the opening
		// added to them is checked.
		var ok bool
		if t.Closing, ok = money.AddMinor(t.Opening, t.Credits+t.Debits); !ok {
			return nil, nil, tooLong(cur)
		}
	}
	return out, totals.list(), nil
}

// tooLong is the answer to a statement whose sums in cur overflow.
func tooLong(cur string) error {
	var v domain.Violations
	v.Add("start_time", "the statement's sums in %s exceed int64 minor units: ask for a shorter period", cur)
	return v.Err()
}

// The view's checkpoint (platform.Checkpointer): every entry in posting
// order (byAccount and byOrder are rebuilt from them), the balances, what
// each payable account was credited and paid, the transactions seen, the
// overflow refusal if any, and the open return windows and held reserves
// with their deadlines, gob-encoded.
type savedLedger struct {
	Entries  []Entry
	Balances domain.Balances
	Credited map[string]map[string]int64
	Paid     map[string]map[string]int64
	Txns     []string
	Overflow *fault.PreconditionError // nil: none
	Windows  []savedDeadline
	Reserves []savedDeadline
}

type savedDeadline struct {
	OrderID, VendorID string
	At                time.Time
}

// Version names the checkpoint's shape; bump it when savedLedger, Entry or
// what Apply keeps changes.
func (v *LedgerView) Version() string { return "ledger-1" }

// Save writes the view's state.
func (v *LedgerView) Save(w io.Writer) error {
	v.mu.RLock()
	defer v.mu.RUnlock()
	s := savedLedger{Entries: make([]Entry, len(v.entries)), Balances: v.bal, Credited: v.credited, Paid: v.paid,
		Txns: slices.Collect(maps.Keys(v.txns)), Windows: deadlinesOf(v.windows), Reserves: deadlinesOf(v.reserves)}
	for i, e := range v.entries {
		s.Entries[i] = *e
	}
	if v.overflow != nil {
		// fits and Balances.After refuse with a *fault.PreconditionError.
		s.Overflow = &fault.PreconditionError{Reason: domain.ErrOverflow.Reason, Message: v.overflow.Error()}
		var pe *fault.PreconditionError
		if errors.As(v.overflow, &pe) {
			s.Overflow.Reason = pe.Reason
		}
	}
	return gob.NewEncoder(w).Encode(&s)
}

// Load replaces the state of an empty view with what Save wrote, then
// tells its Deadlines every return window and reserve still open, as a
// replay would have; on error it leaves the view as it was and tells
// nothing.
func (v *LedgerView) Load(r io.Reader) error {
	var s savedLedger
	if err := gob.NewDecoder(r).Decode(&s); err != nil {
		return err
	}
	entries := make([]*Entry, len(s.Entries))
	byAccount, byOrder := map[string][]*Entry{}, map[string][]*Entry{}
	for i := range s.Entries {
		e := &s.Entries[i]
		if e.Seq != i {
			return fmt.Errorf("checkpoint entry %d has sequence number %d", i, e.Seq)
		}
		entries[i] = e
		byAccount[e.Account] = append(byAccount[e.Account], e)
		if e.OrderID != "" {
			byOrder[e.OrderID] = append(byOrder[e.OrderID], e)
		}
	}
	txns := make(map[string]bool, len(s.Txns))
	for _, id := range s.Txns {
		txns[id] = true
	}
	var overflow error
	if s.Overflow != nil {
		overflow = s.Overflow
	}
	windows, reserves := deadlineMap(s.Windows), deadlineMap(s.Reserves)
	v.mu.Lock()
	v.bal, v.entries, v.byAccount, v.byOrder = nonNil(s.Balances), entries, byAccount, byOrder
	v.credited, v.paid, v.txns, v.overflow = nonNil(s.Credited), nonNil(s.Paid), txns, overflow
	v.windows, v.reserves = windows, reserves
	v.mu.Unlock()
	if v.deadlines != nil {
		for _, d := range s.Windows {
			v.deadlines.WindowOpen(d.OrderID, d.VendorID, d.At)
		}
		for _, d := range s.Reserves {
			v.deadlines.ReserveHeld(d.OrderID, d.VendorID, d.At)
		}
	}
	return nil
}

func deadlinesOf(open map[part]time.Time) []savedDeadline {
	out := make([]savedDeadline, 0, len(open))
	for p, at := range open {
		out = append(out, savedDeadline{OrderID: p.orderID, VendorID: p.vendorID, At: at})
	}
	return out
}

func deadlineMap(list []savedDeadline) map[part]time.Time {
	out := make(map[part]time.Time, len(list))
	for _, d := range list {
		out[part{d.OrderID, d.VendorID}] = d.At
	}
	return out
}

// nonNil is m, or an empty map if gob decoded none (it omits empty maps).
func nonNil[M ~map[string]map[string]int64](m M) M {
	if m == nil {
		return M{}
	}
	return m
}
