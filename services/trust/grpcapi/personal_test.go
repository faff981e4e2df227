package grpcapi

import (
	"log/slog"
	"testing"

	"github.com/custody/custody/pkg/apierr/apierrtest"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
)

// Evidence the validators refuse is refused by field: the error, which the
// call log prints, never repeats the buyer's or the vendor's words.
func TestRefusedWordsAreNotRepeated(t *testing.T) {
	s := New(nil, slog.New(slog.DiscardHandler))
	evidence := &trustv1.Evidence{Text: "it arrived broken; call me on +4915112345678"}
	apierrtest.KeepsPersonalOut(t, &trustv1.OpenClaimRequest{RequestId: "r1", OrderId: "o1", Reason: trustv1.ClaimReason_CLAIM_REASON_DAMAGED,
		Lines: []*trustv1.ClaimLineRequest{{LineId: "1", Quantity: 1}}, Evidence: evidence},
		func(r *trustv1.OpenClaimRequest) error { _, err := validateOpen(r); return err }, s.toStatus)
	apierrtest.KeepsPersonalOut(t, &trustv1.RespondToClaimRequest{RequestId: "r1", ClaimId: "c1", Response: trustv1.VendorResponse_VENDOR_RESPONSE_CONTEST, Evidence: evidence},
		func(r *trustv1.RespondToClaimRequest) error { _, err := validateRespond(r); return err }, s.toStatus)
	// A withdrawal's reason is the buyer's own words too.
	apierrtest.KeepsPersonalOut(t, &trustv1.WithdrawClaimRequest{RequestId: "r1", ClaimId: "c1", Reason: "moved house"},
		validateWithdraw, s.toStatus, "reason")
}
