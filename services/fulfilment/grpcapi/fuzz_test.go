package grpcapi

import (
	"testing"

	"github.com/custody/custody/pkg/apierr/apierrtest"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
)

// FuzzValidateScan: carrier feeds are messy. Whatever bytes arrive as a
// scan, decoding and validating them never panics, and an accepted scan
// names its carrier event and a known status.
func FuzzValidateScan(f *testing.F) {
	seed := &fulfilmentv1.RecordTrackingEventRequest{Carrier: "dhl", TrackingNumber: "1234567890",
		CarrierEventId: "e1", Status: fulfilmentv1.TrackingStatus_TRACKING_STATUS_IN_TRANSIT}
	apierrtest.FuzzRequests(f, seed, func(t *testing.T, req *fulfilmentv1.RecordTrackingEventRequest) {
		if _, err := validateScan(req); err == nil {
			if req.GetCarrierEventId() == "" || req.GetStatus() == fulfilmentv1.TrackingStatus_TRACKING_STATUS_UNSPECIFIED {
				t.Fatalf("accepted a scan without an event id or status: %v", req)
			}
		}
	})
}
