package fulfilment_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/apierr"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	"github.com/custody/custody/services/fulfilment/domain"
)

const day = 24 * time.Hour

var (
	photo     = strings.Repeat("a1", 32)
	signature = strings.Repeat("5e", 32)
	doorstep  = strings.Repeat("d0", 32)
)

func fulfilmentID(orderID, vendorID string) string { return domain.FulfilmentID(orderID, vendorID) }

func line(id string, qty int64) *fulfilmentv1.ShippedLine {
	return &fulfilmentv1.ShippedLine{LineId: id, Quantity: qty}
}

// box is a package of lines with a packing photo and one serial-numbered
// unit per item.
func box(lines ...*fulfilmentv1.ShippedLine) *fulfilmentv1.Package {
	p := &fulfilmentv1.Package{Lines: lines, Evidence: &fulfilmentv1.PackingEvidence{PhotoSha256: []string{photo}}}
	for _, l := range lines {
		for range l.GetQuantity() {
			p.Evidence.Units = append(p.Evidence.Units, &fulfilmentv1.PackedUnit{LineId: l.GetLineId(), SkuId: l.GetSkuId(), SerialNumber: uniq("SN-")})
		}
	}
	return p
}

func shipReq(fid, carrier, number string, pkgs ...*fulfilmentv1.Package) *fulfilmentv1.ShipFulfilmentRequest {
	return &fulfilmentv1.ShipFulfilmentRequest{RequestId: uniq("req-"), FulfilmentId: fid, Carrier: carrier, TrackingNumber: number, Packages: pkgs}
}

func scanReq(carrier, number, eventID string, st fulfilmentv1.TrackingStatus, at time.Time, proof *fulfilmentv1.ProofOfDelivery) *fulfilmentv1.RecordTrackingEventRequest {
	return &fulfilmentv1.RecordTrackingEventRequest{Carrier: carrier, TrackingNumber: number, CarrierEventId: eventID, Status: st,
		OccurTime: timestamppb.New(at), Location: "Berlin hub", Proof: proof}
}

const (
	infoReceived   = fulfilmentv1.TrackingStatus_TRACKING_STATUS_INFO_RECEIVED
	pickedUp       = fulfilmentv1.TrackingStatus_TRACKING_STATUS_PICKED_UP
	inTransit      = fulfilmentv1.TrackingStatus_TRACKING_STATUS_IN_TRANSIT
	outForDelivery = fulfilmentv1.TrackingStatus_TRACKING_STATUS_OUT_FOR_DELIVERY
	delivered      = fulfilmentv1.TrackingStatus_TRACKING_STATUS_DELIVERED
	lost           = fulfilmentv1.TrackingStatus_TRACKING_STATUS_LOST

	stateRequested = fulfilmentv1.FulfilmentState_FULFILMENT_STATE_REQUESTED
	statePartial   = fulfilmentv1.FulfilmentState_FULFILMENT_STATE_PARTIALLY_SHIPPED
	stateShipped   = fulfilmentv1.FulfilmentState_FULFILMENT_STATE_SHIPPED
	stateDelivered = fulfilmentv1.FulfilmentState_FULFILMENT_STATE_DELIVERED
	stateFailed    = fulfilmentv1.FulfilmentState_FULFILMENT_STATE_DELIVERY_FAILED
	stateCancelled = fulfilmentv1.FulfilmentState_FULFILMENT_STATE_CANCELLED
)

// wantCode fails unless err has code c.
func wantCode(t testing.TB, err error, c codes.Code) {
	t.Helper()
	if status.Code(err) != c {
		t.Fatalf("err = %v, want %v", err, c)
	}
}

// wantField fails unless err is InvalidArgument naming field.
func wantField(t testing.TB, err error, field string) {
	t.Helper()
	wantCode(t, err, codes.InvalidArgument)
	var fields []string
	for _, fv := range apierr.FieldViolations(err) {
		fields = append(fields, fv.Field)
	}
	if !slices.Contains(fields, field) {
		t.Fatalf("violations %v (%v) do not name %s", fields, err, field)
	}
}

// wantReason fails unless err is FailedPrecondition with reason.
func wantReason(t testing.TB, err error, reason string) {
	t.Helper()
	wantCode(t, err, codes.FailedPrecondition)
	if got := apierr.Reason(err); got != reason {
		t.Fatalf("err %v: reason %q, want %s", err, got, reason)
	}
}

var errNotYet = errors.New("not yet")
