package grpcapi

import (
	"maps"
	"slices"
	"strconv"

	"github.com/custody/custody/pkg/money"
	"github.com/custody/custody/pkg/protoconv"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	"github.com/custody/custody/services/payouts/app"
	"github.com/custody/custody/services/payouts/domain"
)

func minor(cur string, m int64) *money.Money { return &money.Money{Currency: cur, Minor: m} }

func balanceProto(b app.OwnerBalance) *payoutsv1.Balance {
	return &payoutsv1.Balance{CurrencyCode: b.Currency,
		Escrow: minor(b.Currency, b.Escrow).ToProto(), Pending: minor(b.Currency, b.Pending).ToProto(),
		Held: minor(b.Currency, b.Held).ToProto(), Available: minor(b.Currency, b.Available).ToProto(),
		Reserve: minor(b.Currency, b.Reserve).ToProto(), PaidOut: minor(b.Currency, b.Paid).ToProto()}
}

func entryProto(e app.Entry) *payoutsv1.LedgerEntry {
	return &payoutsv1.LedgerEntry{
		EntryId: e.TxnID + "-" + itoa(e.Index), TransactionId: e.TxnID, Kind: e.Kind, Account: e.Account,
		Amount: e.Amount.ToProto(), BalanceAfter: e.BalanceAfter.ToProto(), OrderId: e.OrderID, VendorId: e.VendorID,
		CauseEventId: e.CauseEventID, CauseType: e.CauseType, Reference: e.Reference, Memo: e.Memo,
		PostTime: protoconv.Timestamp(e.PostTime), Position: e.Position,
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func batchProto(b *domain.Batch) *payoutsv1.PayoutBatch {
	out := &payoutsv1.PayoutBatch{BatchId: b.ID, RequestId: b.RequestID, CreateTime: protoconv.Timestamp(b.CreateTime), RequestedBy: b.RequestedBy}
	for _, l := range b.Lines {
		out.Lines = append(out.Lines, &payoutsv1.PayoutLine{Payee: l.Payee, Account: l.Account, Amount: l.Amount.ToProto()})
	}
	for _, t := range b.Totals {
		out.Totals = append(out.Totals, t.ToProto())
	}
	return out
}

// ownBatch keeps only the lines of payees the caller is, and the totals
// of those; ok is false when none is.
func ownBatch(b *payoutsv1.PayoutBatch, mine func(payee string) bool) (*payoutsv1.PayoutBatch, bool) {
	out := &payoutsv1.PayoutBatch{BatchId: b.GetBatchId(), RequestId: b.GetRequestId(), CreateTime: b.GetCreateTime()}
	totals := map[string]int64{}
	for _, l := range b.GetLines() {
		if mine(l.GetPayee()) {
			out.Lines = append(out.Lines, l)
			// Positive parts of a batch total DecidePayouts checked: no overflow.
			totals[l.GetAmount().GetCurrencyCode()] += l.GetAmount().GetAmountMinor()
		}
	}
	for _, cur := range slices.Sorted(maps.Keys(totals)) {
		out.Totals = append(out.Totals, minor(cur, totals[cur]).ToProto())
	}
	return out, len(out.Lines) > 0
}

func settlementProto(s app.Settlement, mine func(vendorID string) bool) *payoutsv1.OrderSettlement {
	l := s.Ledger
	cur := l.Currency()
	out := &payoutsv1.OrderSettlement{OrderId: l.OrderID, BuyerId: l.BuyerID, Total: l.Total.ToProto(), Refunded: l.Refunded().ToProto(),
		CaptureTime: protoconv.Timestamp(l.CaptureTime), Revision: s.Revision}
	for _, p := range l.Parts {
		if !mine(p.VendorID) {
			continue
		}
		ps := &payoutsv1.PartSettlement{VendorId: p.VendorID, Stage: p.Stage(), Split: partSplit(cur, p),
			Refunded: p.Refunded(cur).ToProto(), Tier: p.Tier, DeliverTime: protoconv.Timestamp(p.DeliverTime), WindowCloseTime: protoconv.Timestamp(p.CloseTime),
			OpenClaimIds: p.OpenClaims(), ReleaseTime: protoconv.Timestamp(p.ReleaseTime), ReserveReleaseTime: protoconv.Timestamp(p.ReserveReleaseTime),
			ReserveReleased: p.ReserveReleased}
		if p.Released {
			ps.Reserve = p.Reserve.ToProto()
		}
		out.Parts = append(out.Parts, ps)
	}
	return out
}

// partSplit is the part's split as fixed at capture.
func partSplit(cur string, p domain.Part) *payoutsv1.PartSplit {
	out := &payoutsv1.PartSplit{VendorId: p.VendorID}
	var sub, comm, fee, vend int64
	for _, l := range p.Lines {
		s := l.Original()
		out.Lines = append(out.Lines, &payoutsv1.LineSplit{LineId: l.ID, CreatorId: l.CreatorID, LineTotal: l.Total.ToProto(),
			CommissionBps: int32(l.CommissionBps), Commission: s.Commission.ToProto(), FeeBps: int32(l.FeeBps), Fee: s.Fee.ToProto(),
			VendorShare: s.Vendor.ToProto()})
		sub, comm, fee, vend = sub+l.Total.Minor, comm+s.Commission.Minor, fee+s.Fee.Minor, vend+s.Vendor.Minor
	}
	out.Subtotal, out.Commission, out.Fee, out.VendorShare = minor(cur, sub).ToProto(), minor(cur, comm).ToProto(), minor(cur, fee).ToProto(), minor(cur, vend).ToProto()
	return out
}
