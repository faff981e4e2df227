package grpcapi

import (
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/apierr/apierrtest"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
)

// A scan the validators refuse is refused by field: the error, which the
// call log prints, never repeats the place, the carrier's text or who took
// the parcel.
func TestRefusedScanIsNotRepeated(t *testing.T) {
	t.Parallel()
	s := New(nil, slog.New(slog.DiscardHandler))
	scan := &fulfilmentv1.RecordTrackingEventRequest{Carrier: "dhl", TrackingNumber: "1234567890", CarrierEventId: "e1",
		Status: fulfilmentv1.TrackingStatus_TRACKING_STATUS_DELIVERED, OccurTime: timestamppb.Now(),
		Location: "Unter den Linden 1", Description: "left with the neighbour, Ada",
		Proof: &fulfilmentv1.ProofOfDelivery{RecipientName: "Ada", SignatureSha256: strings.Repeat("ab", 32), Location: "door"}}
	apierrtest.KeepsPersonalOut(t, scan, func(r *fulfilmentv1.RecordTrackingEventRequest) error { _, err := validateScan(r); return err },
		s.toStatus, "location", "description")
}
