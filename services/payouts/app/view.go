package app

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/deadline"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/kv"
	"github.com/custody/custody/pkg/lru"
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
// open and close (from any process's events), after the event's batch is
// committed, so that the service's stored scheduler (deadline.NewStored)
// keeps in step the ones it holds. The view keeps every open one in its
// space by due time (d/, Next): after a restart the scheduler reads the
// earliest from there, Attach tells nothing. (A rebuild tells a scheduler
// that never runs: they go nowhere.)
type Deadlines interface {
	WindowOpen(orderID, vendorID string, closeAt time.Time)
	WindowDone(orderID, vendorID string)
	ReserveHeld(orderID, vendorID string, releaseAt time.Time)
	ReserveDone(orderID, vendorID string)
}

// LedgerView is the read side: balances, the entries of every account and
// order, and what each payable account was credited and paid, folded from
// every event of the payouts store (so it sees what any process wrote),
// and the return windows and reserves still open, with their deadlines.
//
// It keeps nothing in the heap that grows with the events: its state lives
// in its space of the process's read-model store (platform.Stored,
// pkg/kv), each event's changes written with the event's position in one
// batch:
//
//	b/<account>          per currency: balance, and what a payable account was credited and paid
//	x/<seq>              a transaction whose entries are numbered from seq on, one per
//	                     posting: its position, each posting's balance after, and the
//	                     TransactionPosted (the event's protobuf bytes, as stored)
//	a/<account><seq>     an entry in its account's list: its posting's index, amount,
//	                     post time and currency (what a statement sums)
//	o/<order><seq>       a transaction of the order (x/<seq>), empty
//	t/<transaction id>   a transaction seen (empty)
//	w/<order><vendor>    an open return window: its close time
//	r/<order><vendor>    a held reserve: its release time
//	d/<time><w/ or r/ key> an open window or held reserve by due time (empty):
//	                     where the scheduler reads the deadlines it does not hold
//	z                    the first transaction refused for overflow: reason, message
//
// <account>, <order> are uvarint-length-prefixed, <seq> big-endian uint64:
// the whole ledger is x/ in key order, an account's entries a/<account>,
// an order's the transactions o/<order> names. Values are hand-encoded
// varints (ledgerstore.go). A transaction of n postings writes x/, o/ and
// n a/ keys, its accounts' b/ keys and t/. <time> in d/ is kv.TimeKey's
// (deadline.Index), so the d/ keys sort by due time; the deadline's key is
// its w/ or r/ key, which names the part (DeadlinePart). Opening, moving or
// closing one writes its w/ or r/ key and its d/ key in the event's batch
// (the d/ key to delete is found from the w/ or r/ value).
type LedgerView struct {
	pos       *projection.Position
	deadlines Deadlines
	log       *slog.Logger

	space atomic.Pointer[kv.Space] // set by Attach, before any event

	// The accounts used last, as the space has them: Apply writes through
	// them, so the accounts of every order (the platform's, the buyers')
	// are not read and decoded again at every posting.
	accounts *lru.Cache[string, accountState]

	// mu orders a commit against reads: a query sees every change of an
	// event or none.
	mu       sync.RWMutex
	next     uint64 // the next entry's Seq
	overflow error  // the first transaction refused because a sum would overflow
}

// accountCacheSize bounds LedgerView.accounts: the platform's and buyers'
// accounts and those of the vendors and creators of the orders in flight
// (an account is about a hundred bytes).
const accountCacheSize = 4096

// part is one vendor's part of an order: what a return window or a
// reserve belongs to.
type part struct{ orderID, vendorID string }

// NewLedgerView returns a view with no space yet (Attach gives it one);
// deadlines may be nil.
func NewLedgerView(deadlines Deadlines, log *slog.Logger) *LedgerView {
	if log == nil {
		log = slog.Default()
	}
	return &LedgerView{pos: projection.New(), deadlines: deadlines, log: log,
		accounts: lru.New[string, accountState](accountCacheSize)}
}

// Version names the shape of what the view stores (platform.Stored); bump
// it when the keys or the encoding of the values change.
//
// ledger-kv-2: the d/ keys (kv-1 had none).
func (v *LedgerView) Version() string { return "ledger-kv-2" }

// Attach gives the view its space (platform.Stored): it finds where the
// entries end and the overflow refusal if any. It tells its Deadlines
// nothing: the scheduler reads the open ones from the space (Next).
func (v *LedgerView) Attach(s *kv.Space) error {
	var next uint64
	var ferr error
	err := s.Scan(prefixPosted, kv.PrefixEnd(prefixPosted), true, func(k, val []byte) bool {
		_, after, _, err := decodePosted(val)
		if err != nil || len(k) != len(prefixPosted)+8 {
			ferr = fmt.Errorf("ledger view: the last transaction: %w", kv.ErrCorrupt)
			return false
		}
		next = beUint64(k[len(prefixPosted):]) + uint64(len(after))
		return false
	})
	if err == nil {
		err = ferr
	}
	if err != nil {
		return fmt.Errorf("ledger view: %w", err)
	}
	var overflow error
	z, ok, err := s.Get(keyOverflow)
	if err != nil {
		return fmt.Errorf("ledger view: %w", err)
	}
	if ok {
		reason, msg, err := decodeOverflow(z)
		if err != nil {
			return err
		}
		overflow = &fault.PreconditionError{Reason: reason, Message: msg}
	}
	v.accounts.Clear()
	v.mu.Lock()
	v.next, v.overflow = next, overflow
	v.mu.Unlock()
	v.space.Store(s)
	return nil
}

// Next returns up to n open return windows and held reserves, by due
// time, after after (nil: from the first): the deadline scheduler's
// deadline.Store. A key is the window's or reserve's (DeadlinePart).
func (v *LedgerView) Next(after *deadline.Entry, n int) ([]deadline.Entry, error) {
	s := v.space.Load()
	if s == nil {
		return nil, errors.New("ledger view: not attached")
	}
	return dueIndex.Next(s, after, n)
}

// dueIndex is the open windows and held reserves by due time.
var dueIndex = deadline.Index{Prefix: []byte("d/")}

// DeadlineKey is the key of a part's return window (else its reserve) in
// the view's deadlines (Next): its w/ or r/ key.
func DeadlineKey(window bool, orderID, vendorID string) string {
	if window {
		return string(partKey(prefixWindow, part{orderID, vendorID}))
	}
	return string(partKey(prefixReserve, part{orderID, vendorID}))
}

// DeadlinePart reads a deadline key of the view (Next, DeadlineKey):
// whether it is a return window's (else a reserve's), and whose.
func DeadlinePart(key string) (window bool, orderID, vendorID string, ok bool) {
	k := []byte(key)
	switch {
	case bytes.HasPrefix(k, prefixWindow):
		window = true
	case !bytes.HasPrefix(k, prefixReserve):
		return false, "", "", false
	}
	r := kv.DecoderOf(k[2:])
	orderID = r.Str()
	vendorID = string(r.Rest())
	return window, orderID, vendorID, r.Err() == nil
}

// openDeadline sets the deadline k (a w/ or r/ key) to at in b: its value and its
// d/ key, the old d/ key deleted if it was open at another time.
func openDeadline(b *kv.Batch, k []byte, ts interface {
	GetSeconds() int64
	GetNanos() int32
}) {
	at := time.Unix(ts.GetSeconds(), int64(ts.GetNanos())).UTC()
	if old, ok := openAt(b, k); ok {
		if old.Equal(at) {
			return
		}
		must(dueIndex.Delete(b, string(k), old))
	}
	must(b.Set(k, appendTime(nil, ts.GetSeconds(), ts.GetNanos())))
	must(dueIndex.Set(b, string(k), at))
}

// closeDeadline deletes the deadline k (a w/ or r/ key) from b, with its
// d/ key, if it is open.
func closeDeadline(b *kv.Batch, k []byte) {
	if old, ok := openAt(b, k); ok {
		must(b.Delete(k))
		must(dueIndex.Delete(b, string(k), old))
	}
}

// openAt is the due time of the open deadline k as b has it.
func openAt(b *kv.Batch, k []byte) (time.Time, bool) {
	val, ok, err := b.Get(k)
	must(err)
	if !ok {
		return time.Time{}, false
	}
	d := kv.DecoderOf(val)
	at := readTime(&d)
	if d.Err() != nil {
		panic(fmt.Errorf("ledger view: deadline %q: %w", k, kv.ErrCorrupt))
	}
	return at, true
}

// Position is the payouts store position of the last event applied:
// reads wait on it (read-your-writes).
func (v *LedgerView) Position() *projection.Position { return v.pos }

// Apply applies one event of the payouts store. A view without a space
// cannot apply anything: that is a wiring mistake, and it panics; so does
// a store that cannot be read or written (following cannot go on
// correctly).
func (v *LedgerView) Apply(rec eventstore.RecordedEvent) {
	defer v.pos.Advance(rec.Position)
	b := v.space.Load().Batch()
	defer b.Discard()
	ev, err := es.Decode(rec)
	if err != nil {
		v.log.Error("payouts view: skipping an event it cannot decode", "event", rec.ID, "err", err)
		v.commit(b, rec.Position, nil)
		return
	}
	var tell func(Deadlines)
	var done func() // after the commit, under mu
	switch e := ev.Payload.(type) {
	case *payoutsv1.TransactionPosted:
		done = v.post(b, rec, e)
	case *payoutsv1.ReturnWindowStarted:
		p, ts := part{e.GetOrderId(), e.GetVendorId()}, e.GetCloseTime()
		openDeadline(b, partKey(prefixWindow, p), ts)
		tell = func(d Deadlines) { d.WindowOpen(p.orderID, p.vendorID, ts.AsTime()) }
	case *payoutsv1.ReturnWindowClosed:
		p := part{e.GetOrderId(), e.GetVendorId()}
		closeDeadline(b, partKey(prefixWindow, p))
		tell = func(d Deadlines) { d.WindowDone(p.orderID, p.vendorID) }
	case *payoutsv1.FundsReleased:
		p, ts, held := part{e.GetOrderId(), e.GetVendorId()}, e.GetReserveReleaseTime(), e.GetReserve().GetAmountMinor() > 0
		closeDeadline(b, partKey(prefixWindow, p))
		if held {
			openDeadline(b, partKey(prefixReserve, p), ts)
		}
		tell = func(d Deadlines) {
			d.WindowDone(p.orderID, p.vendorID)
			if held {
				d.ReserveHeld(p.orderID, p.vendorID, ts.AsTime())
			}
		}
	case *payoutsv1.ReserveReleased:
		p := part{e.GetOrderId(), e.GetVendorId()}
		closeDeadline(b, partKey(prefixReserve, p))
		tell = func(d Deadlines) { d.ReserveDone(p.orderID, p.vendorID) }
	}
	v.commit(b, rec.Position, done)
	if tell != nil && v.deadlines != nil {
		tell(v.deadlines)
	}
}

// commit writes b with pos, then runs done (may be nil) before a read can
// see the commit.
func (v *LedgerView) commit(b *kv.Batch, pos uint64, done func()) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := b.Commit(pos); err != nil {
		panic(fmt.Errorf("payouts view: %w", err))
	}
	if done != nil {
		done()
	}
}

func must(err error) {
	if err != nil {
		panic(fmt.Errorf("payouts view: %w", err))
	}
}

// account is an account's state from the cache or r (then cached): a copy
// the caller may change.
func (v *LedgerView) account(r interface {
	Get([]byte) ([]byte, bool, error)
}, acct string) accountState {
	if a, ok := v.accounts.Get(acct); ok {
		return a.clone()
	}
	val, ok, err := r.Get(balanceKey(acct))
	must(err)
	a := accountState{}
	if ok {
		if a, err = decodeAccount(val); err != nil {
			panic(fmt.Errorf("payouts view: account %s: %w", acct, err))
		}
	}
	a.payable = domain.Payable(acct)
	v.accounts.Put(acct, a.clone())
	return a
}

// post adds t's changes to b and returns what to do once b is committed.
func (v *LedgerView) post(b *kv.Batch, rec eventstore.RecordedEvent, t *payoutsv1.TransactionPosted) func() {
	id := t.GetTransactionId()
	_, seen, err := b.Get(txnKey(id))
	must(err)
	if seen {
		// Cannot happen (transaction ids derive from their cause, and the
		// aggregates book a cause once); if it ever did, counting it twice
		// would be worse than logging it.
		v.log.Error("payouts view: transaction posted twice; ignoring the repeat", "transaction", id)
		return nil
	}
	must(b.Set(txnKey(id), nil))
	payout := t.GetKind() == payoutsv1.TransactionKind_TRANSACTION_KIND_PAYOUT
	accts := make(map[string]*accountState, len(t.GetPostings()))
	for _, p := range t.GetPostings() {
		if _, ok := accts[p.GetAccount()]; !ok {
			a := v.account(b, p.GetAccount())
			accts[p.GetAccount()] = &a
		}
	}
	if err := fits(t, payout, accts); err != nil {
		// Far beyond any real ledger (each order is at most
		// money.MaxAmount), but a wrapped balance would be worse than none.
		v.log.Error("payouts view: a transaction would overflow a balance; it is not applied, and reads and payout runs are refused", "transaction", id, "err", err)
		v.mu.RLock()
		first := v.overflow == nil
		v.mu.RUnlock()
		if !first {
			return nil
		}
		var pe *fault.PreconditionError
		reason := domain.ErrOverflow.Reason
		if errors.As(err, &pe) {
			reason = pe.Reason
		}
		must(b.Set(keyOverflow, encodeOverflow(reason, err.Error())))
		return func() { v.overflow = err }
	}
	// fits checked these sums in this order: none overflows.
	v.mu.RLock()
	first := v.next
	v.mu.RUnlock()
	seq := first
	pt := t.GetPostTime()
	var ref []byte
	after := make([]int64, len(t.GetPostings()))
	for i, p := range t.GetPostings() {
		acct, cur, amt := p.GetAccount(), p.GetAmount().GetCurrencyCode(), p.GetAmount().GetAmountMinor()
		a := accts[acct]
		c := a.of(cur)
		c.balance += amt
		if a.payable {
			if payout {
				c.paid, c.hasPaid = c.paid-amt, true
			} else {
				c.credited, c.hasCredited = c.credited+amt, true
			}
		}
		after[i] = c.balance
		ref = appendAccountRef(ref[:0], i, amt, pt.GetSeconds(), pt.GetNanos(), cur)
		must(b.Set(binary8(listPrefix(prefixAccountEntry, acct), seq), ref))
		seq++
	}
	if seq > first { // a transaction without postings has no entries to list
		data := rec.Data
		if len(data) == 0 {
			var err error
			data, err = proto.MarshalOptions{Deterministic: true}.Marshal(t)
			must(err)
		}
		must(b.Set(postedKey(first), appendPosted(nil, rec.Position, after, data)))
		if id := t.GetOrderId(); id != "" {
			must(b.Set(binary8(listPrefix(prefixOrderEntry, id), first), nil))
		}
	}
	for acct, a := range accts {
		must(b.Set(balanceKey(acct), a.encode()))
	}
	return func() {
		v.next = seq
		for acct, a := range accts {
			v.accounts.Put(acct, *a)
		}
	}
}

// fits reports whether t can be folded in without a balance, or a payable
// account's credited or paid sum, leaving int64: nil, or ErrOverflow
// naming the first that would. accts are the accounts t posts to.
func fits(t *payoutsv1.TransactionPosted, payout bool, accts map[string]*accountState) error {
	bal := make(domain.Balances, len(accts))
	for acct, a := range accts {
		m := make(map[string]int64, len(a.curs))
		for _, c := range a.curs {
			m[c.currency] = c.balance
		}
		bal[acct] = m
	}
	if _, err := bal.After(t); err != nil {
		return err
	}
	what := "credited"
	if payout {
		what = "paid"
	}
	sums := map[string]int64{}
	for _, p := range t.GetPostings() {
		acct, cur, amt := p.GetAccount(), p.GetAmount().GetCurrencyCode(), p.GetAmount().GetAmountMinor()
		if !accts[acct].payable {
			continue
		}
		key := acct + "|" + cur
		sum, seen := sums[key]
		if !seen {
			c := accts[acct].get(cur)
			sum = c.credited
			if payout {
				sum = c.paid
			}
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

// eachAccount calls fn with every account the view has, in id order.
// The caller holds mu.
func (v *LedgerView) eachAccount(fn func(acct string, a accountState)) {
	s := v.space.Load()
	if s == nil {
		return
	}
	var ferr error
	err := s.Scan(prefixBalance, kv.PrefixEnd(prefixBalance), false, func(k, val []byte) bool {
		a, err := decodeAccount(val)
		if err != nil {
			ferr = fmt.Errorf("account %s: %w", k[len(prefixBalance):], err)
			return false
		}
		fn(string(k[len(prefixBalance):]), a)
		return true
	})
	if err == nil {
		err = ferr
	}
	must(err)
}

// Credited is, per payable account and currency, the sum of its postings
// other than payouts: what RunPayouts hands the payouts aggregate.
func (v *LedgerView) Credited() map[string]map[string]int64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := map[string]map[string]int64{}
	v.eachAccount(func(acct string, a accountState) {
		for _, c := range a.curs {
			if !c.hasCredited {
				continue
			}
			if out[acct] == nil {
				out[acct] = map[string]int64{}
			}
			out[acct][c.currency] = c.credited
		}
	})
	return out
}

// Balances is a copy of every balance.
func (v *LedgerView) Balances() domain.Balances {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := domain.Balances{}
	v.eachAccount(func(acct string, a accountState) {
		m := make(map[string]int64, len(a.curs))
		for _, c := range a.curs {
			m[c.currency] = c.balance
		}
		out[acct] = m
	})
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
	s := v.space.Load()
	byCur := perCurrency[OwnerBalance]{newSum: func(cur string) *OwnerBalance { return &OwnerBalance{Currency: cur} }}
	// Each field below sums one account (an owner has one account per
	// bucket, and only its available account is paid), so these += cannot
	// overflow: they copy a checked balance.
	var accounts []AccountBalance
	for _, b := range domain.Buckets(kind) {
		if s == nil {
			break
		}
		acct := owner + ":" + b
		val, ok, err := s.Get(balanceKey(acct))
		must(err)
		if !ok {
			continue
		}
		a, err := decodeAccount(val)
		if err != nil {
			panic(fmt.Errorf("payouts view: account %s: %w", acct, err))
		}
		for _, c := range a.curs { // sorted by currency
			amt := c.balance
			accounts = append(accounts, AccountBalance{Account: acct, Balance: money.Money{Currency: c.currency, Minor: amt}})
			ob := byCur.get(c.currency)
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
		for _, c := range a.curs {
			if c.hasPaid {
				byCur.get(c.currency).Paid += c.paid
			}
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

// transactions reads the transactions of one query's entries, keeping
// the last one read (an entry's neighbours are often of the same
// transaction).
type transactions struct {
	s     *kv.Space
	first uint64 // the last one read: its first entry's seq, its event's position
	pos   uint64
	after []int64
	txn   *payoutsv1.TransactionPosted
}

// read reads the transaction whose entries start at first.
func (r *transactions) read(first uint64) error {
	if r.txn != nil && r.first == first {
		return nil
	}
	val, ok, err := r.s.Get(postedKey(first))
	if err == nil && !ok {
		err = fmt.Errorf("ledger view: the transaction of entry %d is missing", first)
	}
	if err != nil {
		return err
	}
	return r.decode(first, val)
}

// decode decodes val, the transaction whose entries start at first.
func (r *transactions) decode(first uint64, val []byte) error {
	pos, after, data, err := decodePosted(val)
	if err != nil {
		return err
	}
	t := &payoutsv1.TransactionPosted{}
	if err := proto.Unmarshal(data, t); err != nil {
		return fmt.Errorf("ledger view: the transaction at position %d: %w", pos, err)
	}
	if len(t.GetPostings()) != len(after) {
		return fmt.Errorf("ledger view: the transaction at position %d: %w", pos, kv.ErrCorrupt)
	}
	r.first, r.pos, r.after, r.txn = first, pos, after, t
	return nil
}

// entry is entry first+index of the transaction read last.
func (r *transactions) entry(index int) Entry {
	t := r.txn
	p := t.GetPostings()[index]
	cur := p.GetAmount().GetCurrencyCode()
	return Entry{Seq: int(r.first) + index, Index: index, Position: r.pos, TxnID: t.GetTransactionId(), Kind: t.GetKind(), Account: p.GetAccount(),
		Amount: money.Money{Currency: cur, Minor: p.GetAmount().GetAmountMinor()}, BalanceAfter: money.Money{Currency: cur, Minor: r.after[index]},
		OrderID: t.GetOrderId(), VendorID: t.GetVendorId(), CauseEventID: t.GetCauseEventId(), CauseType: t.GetCauseType(),
		Reference: t.GetReference(), Memo: t.GetMemo(), PostTime: t.GetPostTime().AsTime()}
}

// scanAccount calls fn with the seq and ref of every entry of account
// from seq from on, in posting order, until fn returns false or an error.
func scanAccount(s *kv.Space, account string, from uint64, fn func(seq uint64, ref accountRef) (bool, error)) error {
	prefix := listPrefix(prefixAccountEntry, account)
	var ferr error
	err := s.Scan(binary8(prefix, from), kv.PrefixEnd(prefix), false, func(k, val []byte) bool {
		ref, err := decodeAccountRef(val)
		if err != nil || len(k) != len(prefix)+8 || ref.index > beUint64(k[len(prefix):]) {
			ferr = fmt.Errorf("ledger view: entry %q: %w", k, kv.ErrCorrupt)
			return false
		}
		more, err := fn(beUint64(k[len(prefix):]), ref)
		ferr = err
		return more && err == nil
	})
	if err == nil {
		err = ferr
	}
	return err
}

// Entries returns up to limit entries matching f with Seq > after (after
// -1: from the start), in posting order, and whether more follow.
func (v *LedgerView) Entries(f EntryFilter, after, limit int) ([]Entry, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	s := v.space.Load()
	if s == nil {
		return nil, false
	}
	from := uint64(after + 1)
	var out []Entry
	more := false
	// take keeps e if it matches; false: the page is full.
	take := func(e Entry) bool {
		if f.OrderID != "" && e.OrderID != f.OrderID {
			return true
		}
		if len(out) == limit {
			more = true
			return false
		}
		out = append(out, e)
		return true
	}
	r := transactions{s: s}
	var err error
	switch {
	case f.Account != "":
		err = scanAccount(s, f.Account, from, func(seq uint64, ref accountRef) (bool, error) {
			if err := r.read(seq - ref.index); err != nil {
				return false, err
			}
			if int(ref.index) >= len(r.after) {
				return false, fmt.Errorf("ledger view: entry %d: %w", seq, kv.ErrCorrupt)
			}
			return take(r.entry(int(ref.index))), nil
		})
	case f.OrderID != "":
		// An order has a few transactions: its list is read whole.
		prefix := listPrefix(prefixOrderEntry, f.OrderID)
		var ferr error
		err = s.Scan(prefix, kv.PrefixEnd(prefix), false, func(k, _ []byte) bool {
			if len(k) != len(prefix)+8 {
				ferr = fmt.Errorf("ledger view: order entry %q: %w", k, kv.ErrCorrupt)
				return false
			}
			if ferr = r.read(beUint64(k[len(prefix):])); ferr != nil {
				return false
			}
			return takeFrom(&r, from, take)
		})
		if err == nil {
			err = ferr
		}
	default:
		// The transaction holding entry from: the last to start at or
		// before it.
		start := uint64(0)
		err = s.Scan(prefixPosted, binary8(prefixPosted, from+1), true, func(k, _ []byte) bool {
			if len(k) == len(prefixPosted)+8 {
				start = beUint64(k[len(prefixPosted):])
			}
			return false
		})
		if err != nil {
			break
		}
		var ferr error
		err = s.Scan(binary8(prefixPosted, start), kv.PrefixEnd(prefixPosted), false, func(k, val []byte) bool {
			if len(k) != len(prefixPosted)+8 {
				ferr = fmt.Errorf("ledger view: transaction %q: %w", k, kv.ErrCorrupt)
				return false
			}
			if ferr = r.decode(beUint64(k[len(prefixPosted):]), val); ferr != nil {
				return false
			}
			return takeFrom(&r, from, take)
		})
		if err == nil {
			err = ferr
		}
	}
	must(err)
	return out, more
}

// takeFrom hands take the entries of the transaction r read last from
// entry from on, and reports whether take wants more.
func takeFrom(r *transactions, from uint64, take func(Entry) bool) bool {
	for i := range r.after {
		if r.first+uint64(i) < from {
			continue
		}
		if !take(r.entry(i)) {
			return false
		}
	}
	return true
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
	s := v.space.Load()
	if s == nil {
		return nil, nil, nil
	}
	r := transactions{s: s}
	var tooMuch error
	err := scanAccount(s, account, 0, func(seq uint64, ref accountRef) (bool, error) {
		t := totals.get(ref.currency)
		sum, amt := &t.Opening, ref.amount
		switch {
		case ref.postTime.Before(start):
		case !ref.postTime.Before(end):
			return true, nil
		default:
			if amt > 0 {
				sum = &t.Credits
			} else {
				sum = &t.Debits
			}
			if err := r.read(seq - ref.index); err != nil {
				return false, err
			}
			if int(ref.index) >= len(r.after) {
				return false, fmt.Errorf("ledger view: entry %d: %w", seq, kv.ErrCorrupt)
			}
			out = append(out, r.entry(int(ref.index)))
		}
		var ok bool
		if *sum, ok = money.AddMinor(*sum, amt); !ok {
			tooMuch = tooLong(ref.currency)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return nil, nil, err
	}
	if tooMuch != nil {
		return nil, nil, tooMuch
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
