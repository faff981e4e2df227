package grpcapi

import (
	"regexp"
	"strings"
	"time"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/auth"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/money"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/order/app"
	"github.com/custody/custody/services/order/domain"
)

var countryPattern = regexp.MustCompile(`^[A-Z]{2}$`)

// Field limits.
const (
	maxText      = 256
	maxReason    = 1024
	maxAddrLines = 5
)

// noLocality lists city-states whose addresses have no separate city.
var noLocality = map[string]bool{"SG": true, "MC": true, "VA": true, "HK": true, "MO": true, "GI": true}

func validatePlace(req *orderv1.PlaceOrderRequest) (app.PlaceOrder, error) {
	var v fault.Violations
	apierr.RequestID(&v, req.GetRequestId())
	checkID(&v, "buyer_id", req.GetBuyerId())

	lines := make([]domain.LineRequest, 0, len(req.GetLines()))
	for _, l := range req.GetLines() {
		lines = append(lines, domain.LineRequest{SKUID: l.GetSkuId(), Quantity: l.GetQuantity()})
	}
	v = append(v, domain.CheckLineRequests(lines)...)
	checkAddress(&v, req.GetShippingAddress())

	var pay domain.Payment
	if p := req.GetPayment(); p == nil {
		v.Add("payment", "required: the payment authorisation")
	} else {
		pay.PSPReference = p.GetPspReference()
		checkText(&v, "payment.psp_reference", p.GetPspReference(), maxText)
		switch a := p.GetAmount(); {
		case a == nil:
			v.Add("payment.amount", "required")
		default:
			m, err := money.FromProto(a)
			if err != nil {
				v.Add("payment.amount.currency_code", "%v", err)
			} else if m.Minor <= 0 || m.Minor > money.MaxAmount {
				v.Add("payment.amount.amount_minor", "must be 1..%d minor units (the largest order total), got %d", int64(money.MaxAmount), m.Minor)
			}
			pay.Amount = m
		}
	}

	var attr *app.AttributionRequest
	if a := req.GetAttribution(); a != nil {
		attr = &app.AttributionRequest{}
		switch src := a.GetSource().(type) {
		case *orderv1.Attribution_AffiliateLinkId:
			attr.AffiliateLinkID = src.AffiliateLinkId
			checkText(&v, "attribution.affiliate_link_id", src.AffiliateLinkId, maxText)
		case *orderv1.Attribution_LiveSessionId:
			attr.LiveSessionID = src.LiveSessionId
			checkText(&v, "attribution.live_session_id", src.LiveSessionId, maxText)
		default:
			v.Add("attribution", "name an affiliate_link_id or a live_session_id (or leave attribution unset)")
		}
		attr.TouchTime = apierr.Timestamp(&v, "attribution.touch_time", a.GetTouchTime())
	}

	var wait time.Duration
	if w := req.GetWaitTimeout(); w != nil {
		if err := w.CheckValid(); err != nil {
			v.Add("wait_timeout", "%v", err)
		} else if wait = w.AsDuration(); wait < 0 {
			v.Add("wait_timeout", "must not be negative")
		}
	}
	if err := v.Err(); err != nil {
		return app.PlaceOrder{}, err
	}
	return app.PlaceOrder{RequestID: req.GetRequestId(), BuyerID: req.GetBuyerId(), Lines: lines,
		Address: req.GetShippingAddress(), Attribution: attr, Payment: pay, Wait: wait}, nil
}

func checkAddress(v *fault.Violations, a *typev1.Address) {
	const f = "shipping_address"
	if a == nil {
		v.Add(f, "required")
		return
	}
	checkText(v, f+".recipient_name", a.GetRecipientName(), maxText)
	switch n := len(a.GetAddressLines()); {
	case n == 0:
		v.Add(f+".address_lines", "at least one address line is required")
	case n > maxAddrLines:
		v.Add(f+".address_lines", "at most %d lines", maxAddrLines)
	default:
		for i, l := range a.GetAddressLines() {
			checkText(v, f+".address_lines["+itoa(i)+"]", l, maxText)
		}
	}
	if !countryPattern.MatchString(a.GetCountryCode()) {
		v.Add(f+".country_code", "required: a two-letter upper-case ISO 3166-1 code such as \"DE\"")
	}
	if a.GetLocality() == "" && !noLocality[a.GetCountryCode()] {
		v.Add(f+".locality", "required")
	} else if len(a.GetLocality()) > maxText {
		v.Add(f+".locality", "at most %d characters", maxText)
	}
	for field, s := range map[string]string{"phone": a.GetPhone(), "region": a.GetRegion(), "postal_code": a.GetPostalCode()} {
		if len(s) > maxText {
			v.Add(f+"."+field, "at most %d characters", maxText)
		}
	}
}

// checkID checks a buyer or vendor id, which are role ids.
func checkID(v *fault.Violations, field, id string) {
	apierr.Require(v, field, id, auth.ValidID(id), "1-128 characters of letters, digits, '.', '_' and '-'")
}

// checkOrderID checks an order id, which is a stream id.
func checkOrderID(v *fault.Violations, id string) {
	apierr.Require(v, "order_id", id, eventstore.ValidID(id), "not an order id")
}

func checkText(v *fault.Violations, field, s string, limit int) {
	switch {
	case strings.TrimSpace(s) == "":
		v.Add(field, "required")
	case len(s) > limit:
		v.Add(field, "at most %d characters", limit)
	}
}

// validateList checks ListOrders' filters. Every filter given narrows the
// list, so any combination is a query, but for a tracking number without
// its carrier (or the other way round) and a place time range that is
// empty. Whether the caller may list without its own id is authorization's.
func validateList(req *orderv1.ListOrdersRequest) (app.ListQuery, error) {
	var v fault.Violations
	for _, f := range []struct{ field, id string }{{"buyer_id", req.GetBuyerId()}, {"vendor_id", req.GetVendorId()}, {"creator_id", req.GetCreatorId()}} {
		if f.id != "" {
			checkID(&v, f.field, f.id)
		}
	}
	if len(req.GetPspReference()) > maxText {
		v.Add("psp_reference", "at most %d characters", maxText)
	}
	switch carrier, number := req.GetCarrier(), req.GetTrackingNumber(); {
	case carrier != "" && number == "":
		v.Add("tracking_number", "required with carrier: give both carrier and tracking_number, or neither")
	case carrier == "" && number != "":
		v.Add("carrier", "required with tracking_number: give both carrier and tracking_number, or neither")
	case len(carrier) > maxText:
		v.Add("carrier", "at most %d characters", maxText)
	case len(number) > maxText:
		v.Add("tracking_number", "at most %d characters", maxText)
	}
	from := apierr.Timestamp(&v, "place_time_from", req.GetPlaceTimeFrom())
	to := apierr.Timestamp(&v, "place_time_to", req.GetPlaceTimeTo())
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		v.Add("place_time_to", "must be after place_time_from (from is inclusive, to exclusive), got %s to %s",
			from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	}
	status := apierr.Known(&v, "state", statuses, req.GetState())
	apierr.Paging(&v, req.GetPageSize(), req.GetPageToken())
	return app.ListQuery{BuyerID: req.GetBuyerId(), VendorID: req.GetVendorId(), CreatorID: req.GetCreatorId(),
		PSPReference: req.GetPspReference(), Carrier: req.GetCarrier(), TrackingNumber: req.GetTrackingNumber(),
		From: from, To: to, Status: status, PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken()}, v.Err()
}

func validateCancel(req *orderv1.CancelOrderRequest) error {
	var v fault.Violations
	apierr.RequestID(&v, req.GetRequestId())
	checkOrderID(&v, req.GetOrderId())
	if len(req.GetReason()) > maxReason {
		v.Add("reason", "at most %d characters", maxReason)
	}
	return v.Err()
}

func validateGet(req *orderv1.GetOrderRequest) error {
	var v fault.Violations
	checkOrderID(&v, req.GetOrderId())
	return v.Err()
}

// validateCancelLines checks CancelOrderLines' shape: exactly one of lines
// (each a line id once, with a quantity of 0 for every unit left, or
// more) and vendor_id. Whether the lines exist and have that many units
// left is the order's to say.
func validateCancelLines(req *orderv1.CancelOrderLinesRequest) ([]domain.LineCancellation, error) {
	var v fault.Violations
	apierr.RequestID(&v, req.GetRequestId())
	checkOrderID(&v, req.GetOrderId())
	switch n := len(req.GetLines()); {
	case n > 0 && req.GetVendorId() != "":
		v.Add("vendor_id", "give lines or vendor_id, not both")
	case n == 0 && req.GetVendorId() == "":
		v.Add("lines", "required: the lines to cancel, or a vendor_id for the vendor's whole part")
	case n > domain.MaxLines:
		v.Add("lines", "at most %d lines", domain.MaxLines)
	case req.GetVendorId() != "":
		checkID(&v, "vendor_id", req.GetVendorId())
	}
	lines := make([]domain.LineCancellation, 0, len(req.GetLines()))
	seen := map[string]bool{}
	for i, l := range req.GetLines() {
		f := "lines[" + itoa(i) + "]"
		checkText(&v, f+".line_id", l.GetLineId(), maxText)
		if seen[l.GetLineId()] && l.GetLineId() != "" {
			v.Add(f+".line_id", "line %q is named twice", l.GetLineId())
		}
		seen[l.GetLineId()] = true
		if q := l.GetQuantity(); q < 0 || q > domain.MaxQuantity {
			v.Add(f+".quantity", "must be 0 (every unit left) to %d, got %d", int64(domain.MaxQuantity), q)
		}
		lines = append(lines, domain.LineCancellation{LineID: l.GetLineId(), Quantity: l.GetQuantity()})
	}
	if len(req.GetReason()) > maxReason {
		v.Add("reason", "at most %d characters", maxReason)
	}
	return lines, v.Err()
}

// validateChangeAddress checks ChangeShippingAddress: the address as
// PlaceOrder checks it.
func validateChangeAddress(req *orderv1.ChangeShippingAddressRequest) error {
	var v fault.Violations
	apierr.RequestID(&v, req.GetRequestId())
	checkOrderID(&v, req.GetOrderId())
	checkAddress(&v, req.GetShippingAddress())
	return v.Err()
}
