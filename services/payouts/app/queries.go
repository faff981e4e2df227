package app

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/projection"
	"github.com/custody/custody/services/payouts/domain"
)

// ErrBehind: the read side could not catch up with the store in time, so
// a payout run would decide from stale balances. Clients retry
// (Unavailable).
var ErrBehind = errors.New("the payouts ledger's read side is behind the store")

// RunPayouts pays every payable account whose balance reaches the minimum,
// once per request id: a repeated request returns the batch it created.
func (s *Service) RunPayouts(ctx context.Context, requestID, requestedBy string) (*domain.Batch, error) {
	id := domain.BatchID(requestID)
	st, _, _, err := s.runs.Load(ctx, domain.PayoutsID)
	if err != nil {
		return nil, err
	}
	if b, ok := st.Batches[id]; ok {
		return b, nil
	}
	// Decide from every posting stored now: a clawback booked a moment ago
	// must reduce this run.
	ok, err := s.catchUp(ctx)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrBehind
	}
	res, err := s.runs.Handle(ctx, es.Command[domain.RunPayouts]{
		AggregateID: domain.PayoutsID, ID: es.DeriveID("run-payouts", requestID),
		Body: domain.RunPayouts{RequestID: requestID, Credited: s.view.Credited(), MinPayout: s.cfg.Policy.MinPayout,
			RequestedBy: requestedBy, Time: s.d.Clock.Now()},
		Meta: es.Meta{CorrelationID: id, Actor: requestedBy},
	})
	if err != nil {
		return nil, err
	}
	b, ok := res.State.Batches[id]
	if !ok {
		return nil, fmt.Errorf("payout batch %s missing after its run", id)
	}
	return b, nil
}

// PayoutBatch reads a batch.
func (s *Service) PayoutBatch(ctx context.Context, batchID string) (*domain.Batch, error) {
	st, _, _, err := s.runs.Load(ctx, domain.PayoutsID)
	if err != nil {
		return nil, err
	}
	b, ok := st.Batches[batchID]
	if !ok {
		return nil, &fault.NotFoundError{Resource: "payout batch", ID: batchID}
	}
	return b, nil
}

// Settlement is an order's ledger with its store revision.
type Settlement struct {
	Ledger   domain.Ledger
	Revision uint64
}

// OrderSettlement reads an order's ledger (strongly consistent).
func (s *Service) OrderSettlement(ctx context.Context, orderID string) (Settlement, error) {
	l, rev, _, err := s.ledger.Load(ctx, orderID)
	if err != nil {
		return Settlement{}, err
	}
	if !l.Captured {
		return Settlement{}, &fault.NotFoundError{Resource: "order settlement", ID: orderID}
	}
	return Settlement{Ledger: l, Revision: rev}, nil
}

// Balance returns an owner's balances, after letting the read side catch
// up (bounded) with the store.
func (s *Service) Balance(ctx context.Context, kind, id string) ([]OwnerBalance, []AccountBalance, error) {
	if _, err := s.catchUp(ctx); err != nil {
		return nil, nil, err
	}
	b, a := s.view.Owner(kind, id)
	return b, a, nil
}

// Page sizes of ListLedgerEntries.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// EntriesQuery pages through entries.
type EntriesQuery struct {
	Filter    EntryFilter
	PageSize  int
	PageToken string
}

// EntriesPage is one page.
type EntriesPage struct {
	Entries       []Entry
	NextPageToken string
}

// Entries lists entries, oldest first. Page tokens are bound to the
// filter and name the last entry returned (entries are never removed or
// reordered, so pages never shift).
func (s *Service) Entries(ctx context.Context, q EntriesQuery) (EntriesPage, error) {
	query := fmt.Sprintf("a=%s|o=%s", q.Filter.Account, q.Filter.OrderID)
	after := -1
	if q.PageToken != "" {
		last, err := projection.ParsePageToken(q.PageToken, query, "account or order", 1)
		if err != nil {
			return EntriesPage{}, err
		}
		if after, err = strconv.Atoi(last[0]); err != nil || after < 0 {
			var v domain.Violations
			v.Add("page_token", "not a page token of this service")
			return EntriesPage{}, v.Err()
		}
	}
	if _, err := s.catchUp(ctx); err != nil {
		return EntriesPage{}, err
	}
	entries, more := s.view.Entries(q.Filter, after, projection.PageSize(q.PageSize, DefaultPageSize, MaxPageSize))
	page := EntriesPage{Entries: entries}
	if more {
		page.NextPageToken = projection.PageToken(query, strconv.Itoa(entries[len(entries)-1].Seq))
	}
	return page, nil
}

// Statement is an account's entries over a period.
type Statement struct {
	Account    string
	Start, End time.Time
	Totals     []StatementTotal
	Entries    []Entry
}

// Statement lists an account's entries posted in [start, end) (zero start:
// from the first; zero end: every entry so far, and End says when that was).
func (s *Service) Statement(ctx context.Context, account string, start, end time.Time) (Statement, error) {
	if _, err := s.catchUp(ctx); err != nil {
		return Statement{}, err
	}
	until := end
	if end.IsZero() {
		end, until = s.d.Clock.Now(), time.Unix(1<<62, 0)
	}
	entries, totals, err := s.view.Statement(account, start, until)
	if err != nil {
		return Statement{}, err
	}
	return Statement{Account: account, Start: start, End: end, Totals: totals, Entries: entries}, nil
}
