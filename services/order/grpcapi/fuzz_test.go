package grpcapi

import (
	"testing"

	"github.com/custody/custody/pkg/apierr/apierrtest"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
)

// FuzzValidatePlace: whatever bytes a client sends as a PlaceOrder request,
// decoding and validating them never panics, and a request that validates
// has what an order needs.
func FuzzValidatePlace(f *testing.F) {
	seed := &orderv1.PlaceOrderRequest{RequestId: "r1", BuyerId: "b1",
		Lines: []*orderv1.LineRequest{{SkuId: "p1-a", Quantity: 2}}}
	apierrtest.FuzzRequests(f, seed, func(t *testing.T, req *orderv1.PlaceOrderRequest) {
		c, err := validatePlace(req)
		if err == nil && (req.GetRequestId() == "" || len(req.GetLines()) == 0 || c.BuyerID == "") {
			t.Fatalf("accepted an order without request id, lines or buyer: %v", req)
		}
	})
}

// FuzzValidateCancelLines: whatever a client sends as a CancelOrderLines
// request, validating it never panics, and a request that validates names
// exactly one of lines and vendor_id, with no negative quantity.
func FuzzValidateCancelLines(f *testing.F) {
	seed := &orderv1.CancelOrderLinesRequest{RequestId: "r1", OrderId: "o1",
		Lines: []*orderv1.LineCancellation{{LineId: "1", Quantity: 2}, {LineId: "2"}}}
	apierrtest.FuzzRequests(f, seed, func(t *testing.T, req *orderv1.CancelOrderLinesRequest) {
		lines, err := validateCancelLines(req)
		if err != nil {
			return
		}
		if (len(lines) == 0) == (req.GetVendorId() == "") {
			t.Fatalf("accepted neither or both of lines and vendor_id: %v", req)
		}
		for _, l := range lines {
			if l.Quantity < 0 || l.LineID == "" {
				t.Fatalf("accepted line %+v", l)
			}
		}
	})
}
