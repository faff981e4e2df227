package grpcapi

import (
	"testing"

	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
)

// RunPayouts carries no request fingerprint because its request is its
// request_id alone (see Server.RunPayouts): a field added to the request
// must be fingerprinted, or the same request_id with another body would be
// answered with the first batch (AIP-155).
func TestRunPayoutsRequestIsItsRequestID(t *testing.T) {
	fields := (&payoutsv1.RunPayoutsRequest{}).ProtoReflect().Descriptor().Fields()
	if fields.Len() != 1 || fields.Get(0).Name() != "request_id" {
		t.Fatalf("RunPayoutsRequest has %d fields: fingerprint the request in Server.RunPayouts", fields.Len())
	}
}
