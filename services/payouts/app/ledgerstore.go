package app

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/custody/custody/pkg/kv"
)

// The ledger view's keys in its space (see LedgerView). <account>, <order>
// and <vendor> are length-prefixed (uvarint), so no list's prefix is the
// prefix of another's; <seq> is big-endian, so keys sort in posting order.
var (
	prefixBalance      = []byte("b/") // b/<account>: accountState
	prefixPosted       = []byte("x/") // x/<seq of its first entry>: posted
	prefixAccountEntry = []byte("a/") // a/<account><seq>: accountRef
	prefixOrderEntry   = []byte("o/") // o/<order><seq of its first entry>: empty
	prefixTxn          = []byte("t/") // t/<transaction id>: empty
	prefixWindow       = []byte("w/") // w/<order><vendor>: close time
	prefixReserve      = []byte("r/") // r/<order><vendor>: release time
	keyOverflow        = []byte("z")  // reason, message
)

func appendString(k []byte, s string) []byte {
	return append(binary.AppendUvarint(k, uint64(len(s))), s...)
}

func key(prefix []byte, n int) []byte { return slices.Grow(slices.Clip(prefix), n) }

func balanceKey(account string) []byte { return append(key(prefixBalance, len(account)), account...) }

// listPrefix is the prefix of the entries of an account's or an order's
// list.
func listPrefix(prefix []byte, owner string) []byte {
	return appendString(key(prefix, len(owner)+10), owner)
}

func postedKey(firstSeq uint64) []byte { return binary8(prefixPosted, firstSeq) }

func txnKey(id string) []byte { return append(key(prefixTxn, len(id)), id...) }

func partKey(prefix []byte, p part) []byte {
	return append(appendString(key(prefix, len(p.orderID)+len(p.vendorID)+2), p.orderID), p.vendorID...)
}

// readTime reads what appendTime wrote.
func readTime(d *kv.Decoder) time.Time {
	sec := d.Int()
	return time.Unix(sec, int64(d.Uint())).UTC()
}

// appendTime encodes t as protobuf's Timestamp does: seconds, nanos.
func appendTime(b []byte, sec int64, nanos int32) []byte {
	return binary.AppendUvarint(binary.AppendVarint(b, sec), uint64(nanos))
}

// posted is the value of x/<seq>: a transaction folded in, whose
// entries are numbered from seq on, one per posting: the position of its
// event, each posting's balance after, and the TransactionPosted itself
// (the event's bytes as stored, last).
func appendPosted(b []byte, pos uint64, balanceAfter []int64, txn []byte) []byte {
	b = binary.AppendUvarint(b, pos)
	b = binary.AppendUvarint(b, uint64(len(balanceAfter)))
	for _, v := range balanceAfter {
		b = binary.AppendVarint(b, v)
	}
	return append(b, txn...)
}

// decodePosted decodes the head of a posted value: the position, the
// balances after, and the TransactionPosted's bytes (aliasing v).
func decodePosted(v []byte) (pos uint64, balanceAfter []int64, txn []byte, err error) {
	r := kv.DecoderOf(v)
	pos = r.Uint()
	balanceAfter = make([]int64, r.N())
	for i := range balanceAfter {
		balanceAfter[i] = r.Int()
	}
	if err := r.Err(); err != nil {
		return 0, nil, nil, fmt.Errorf("ledger transaction: %w", err)
	}
	return pos, balanceAfter, r.Rest(), nil
}

// accountRef is the value of a/<account><seq>: which posting of its
// transaction the entry is (so the transaction is x/<seq - index>), and
// what a statement sums without reading the transaction: the amount, the
// post time and the currency.
type accountRef struct {
	index    uint64
	amount   int64
	postTime time.Time
	currency string
}

func appendAccountRef(b []byte, index int, amount int64, postSec int64, postNanos int32, currency string) []byte {
	b = binary.AppendUvarint(b, uint64(index))
	b = binary.AppendVarint(b, amount)
	b = appendTime(b, postSec, postNanos)
	return append(b, currency...)
}

func decodeAccountRef(v []byte) (accountRef, error) {
	r := kv.DecoderOf(v)
	e := accountRef{index: r.Uint(), amount: r.Int(), postTime: readTime(&r)}
	e.currency = string(r.Rest())
	if err := r.Err(); err != nil {
		return accountRef{}, fmt.Errorf("ledger entry: %w", err)
	}
	return e, nil
}

// accountState is one account as the view keeps it: per currency (sorted)
// its balance and, for a payable account, what it was credited (its
// postings other than payouts) and paid.
type accountState struct {
	payable bool // domain.Payable: not stored, known from the account's id
	curs    []currencyState
}

type currencyState struct {
	currency             string
	balance              int64
	credited, paid       int64
	hasCredited, hasPaid bool // credited or paid in this currency at all
}

// Flags of a stored currencyState.
const (
	flagCredited = 1 << iota
	flagPaid
)

// of is cur's state, added (zero) if the account has none yet.
func (a *accountState) of(cur string) *currencyState {
	i, found := slices.BinarySearchFunc(a.curs, cur, func(c currencyState, cur string) int { return cmp.Compare(c.currency, cur) })
	if !found {
		a.curs = slices.Insert(a.curs, i, currencyState{currency: cur})
	}
	return &a.curs[i]
}

// get is cur's state, zero if none.
func (a accountState) get(cur string) currencyState {
	i, found := slices.BinarySearchFunc(a.curs, cur, func(c currencyState, cur string) int { return cmp.Compare(c.currency, cur) })
	if !found {
		return currencyState{}
	}
	return a.curs[i]
}

func (a accountState) encode() []byte {
	b := make([]byte, 0, 24*len(a.curs))
	for _, c := range a.curs {
		b = appendString(b, c.currency)
		b = binary.AppendVarint(b, c.balance)
		var flags byte
		if c.hasCredited {
			flags |= flagCredited
		}
		if c.hasPaid {
			flags |= flagPaid
		}
		b = append(b, flags)
		if c.hasCredited {
			b = binary.AppendVarint(b, c.credited)
		}
		if c.hasPaid {
			b = binary.AppendVarint(b, c.paid)
		}
	}
	return b
}

func decodeAccount(v []byte) (accountState, error) {
	r := kv.DecoderOf(v)
	var a accountState
	for len(r.Rest()) > 0 {
		c := currencyState{currency: r.Str(), balance: r.Int()}
		flags := r.Byte()
		if flags&flagCredited != 0 {
			c.hasCredited, c.credited = true, r.Int()
		}
		if flags&flagPaid != 0 {
			c.hasPaid, c.paid = true, r.Int()
		}
		a.curs = append(a.curs, c)
	}
	if err := r.Err(); err != nil {
		return accountState{}, fmt.Errorf("ledger balance: %w", err)
	}
	return a, nil
}

func (a accountState) clone() accountState {
	return accountState{payable: a.payable, curs: slices.Clone(a.curs)}
}

func encodeOverflow(reason, message string) []byte {
	return append(appendString(nil, reason), message...)
}

func decodeOverflow(v []byte) (reason, message string, err error) {
	r := kv.DecoderOf(v)
	reason = r.Str()
	if err := r.Err(); err != nil {
		return "", "", fmt.Errorf("ledger overflow refusal: %w", err)
	}
	return reason, string(r.Rest()), nil
}

// binary8 is prefix followed by n, big-endian (a new slice).
func binary8(prefix []byte, n uint64) []byte {
	return binary.BigEndian.AppendUint64(slices.Clip(prefix), n)
}

func beUint64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }
