package domain

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/money"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// The events are the public contract, so their messages (OrderLine,
// VendorPart, …) are shared with the API; these convert both ways.

// LinesProto converts lines to their wire form.
func LinesProto(lines []Line) []*orderv1.OrderLine {
	out := make([]*orderv1.OrderLine, 0, len(lines))
	for _, l := range lines {
		out = append(out, &orderv1.OrderLine{
			LineId: l.LineID, SkuId: l.SKUID, ProductId: l.ProductID, VendorId: l.VendorID, Title: l.Title,
			Quantity: l.Quantity, UnitPrice: l.UnitPrice.ToProto(), LineTotal: l.LineTotal.ToProto(),
			CreatorId: l.CreatorID, CommissionBps: l.CommissionBps,
			CancelledQuantity: l.CancelledQuantity, RefundedQuantity: l.RefundedQuantity,
		})
	}
	return out
}

// LinesFromProto converts lines from their wire form.
func LinesFromProto(ls []*orderv1.OrderLine) []Line {
	out := make([]Line, 0, len(ls))
	for _, l := range ls {
		out = append(out, Line{
			LineID: l.GetLineId(), SKUID: l.GetSkuId(), ProductID: l.GetProductId(), VendorID: l.GetVendorId(),
			Title: l.GetTitle(), Quantity: l.GetQuantity(), UnitPrice: moneyFrom(l.GetUnitPrice()),
			LineTotal: moneyFrom(l.GetLineTotal()), CreatorID: l.GetCreatorId(), CommissionBps: l.GetCommissionBps(),
			CancelledQuantity: l.GetCancelledQuantity(), RefundedQuantity: l.GetRefundedQuantity(),
		})
	}
	return out
}

// PartsProto converts parts to their wire form.
func PartsProto(parts []Part) []*orderv1.VendorPart {
	out := make([]*orderv1.VendorPart, 0, len(parts))
	for _, p := range parts {
		out = append(out, &orderv1.VendorPart{VendorId: p.VendorID, LineIds: append([]string(nil), p.LineIDs...), Subtotal: p.Subtotal.ToProto()})
	}
	return out
}

// PartsFromProto converts parts from their wire form.
func PartsFromProto(ps []*orderv1.VendorPart) []Part {
	out := make([]Part, 0, len(ps))
	for _, p := range ps {
		out = append(out, Part{VendorID: p.GetVendorId(), LineIDs: append([]string(nil), p.GetLineIds()...), Subtotal: moneyFrom(p.GetSubtotal())})
	}
	return out
}

// AttributionProto converts an attribution (nil: none) to its wire form.
func AttributionProto(a *Attribution) *orderv1.AttributionRecord {
	if a == nil {
		return nil
	}
	return &orderv1.AttributionRecord{
		AffiliateLinkId: a.AffiliateLinkID, LiveSessionId: a.LiveSessionID, CreatorId: a.CreatorID,
		TouchTime: timestamppb.New(a.TouchTime),
	}
}

// AttributionFromProto converts an attribution from its wire form.
func AttributionFromProto(a *orderv1.AttributionRecord) *Attribution {
	if a == nil {
		return nil
	}
	return &Attribution{AffiliateLinkID: a.GetAffiliateLinkId(), LiveSessionID: a.GetLiveSessionId(), CreatorID: a.GetCreatorId(), TouchTime: a.GetTouchTime().AsTime()}
}

// PaymentProto converts a payment to its wire form.
func PaymentProto(p Payment) *orderv1.Payment {
	return &orderv1.Payment{PspReference: p.PSPReference, Amount: p.Amount.ToProto()}
}

// moneyFrom reads stored money without validating it again: Evolve must be
// total, and what was stored was valid when decided.
func moneyFrom(m *typev1.Money) money.Money {
	return money.Money{Currency: m.GetCurrencyCode(), Minor: m.GetAmountMinor()}
}
