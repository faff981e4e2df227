package grpcapi

import (
	"testing"

	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
)

// ConfirmReceipt carries no request fingerprint because its request is its
// request_id and the fulfilment that scopes the command id (see
// Server.ConfirmReceipt): a field added to the request must be
// fingerprinted, or the same request_id with another body would be
// answered with the first result (AIP-155).
func TestConfirmReceiptRequestIsItsRequestIDAndFulfilment(t *testing.T) {
	fields := (&fulfilmentv1.ConfirmReceiptRequest{}).ProtoReflect().Descriptor().Fields()
	if fields.Len() != 2 || fields.ByName("request_id") == nil || fields.ByName("fulfilment_id") == nil {
		t.Fatalf("ConfirmReceiptRequest has %d fields: fingerprint the request in Server.ConfirmReceipt", fields.Len())
	}
}
