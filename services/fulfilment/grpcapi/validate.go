package grpcapi

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/auth"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/money"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	"github.com/custody/custody/services/fulfilment/app"
	"github.com/custody/custody/services/fulfilment/domain"
)

// Field limits.
const (
	maxLines = 100  // per package
	maxUnits = 5000 // per package
)

// checkStreamID checks a fulfilment or order id, which are stream ids.
func checkStreamID(v *fault.Violations, field, id string) {
	apierr.Require(v, field, id, eventstore.ValidID(id), "not a valid id: 1-128 letters, digits, '_' or '-'")
}

// checkVendorID checks a vendor id, which is a role id.
func checkVendorID(v *fault.Violations, id string) {
	apierr.Require(v, "vendor_id", id, auth.ValidID(id), "1-128 characters of letters, digits, '.', '_' and '-'")
}

func validateShip(req *fulfilmentv1.ShipFulfilmentRequest) (app.Ship, error) {
	var v fault.Violations
	apierr.RequestID(&v, req.GetRequestId())
	checkStreamID(&v, "fulfilment_id", req.GetFulfilmentId())
	number := domain.CheckTracking(&v, "carrier", req.GetCarrier(), "tracking_number", req.GetTrackingNumber())
	switch n := len(req.GetPackages()); {
	case n == 0:
		v.Add("packages", "a shipment has at least one package")
	case n > domain.MaxPackages:
		v.Add("packages", "at most %d packages per shipment, got %d", domain.MaxPackages, n)
	}
	for i, p := range req.GetPackages() {
		if len(p.GetLines()) > maxLines {
			v.Add("packages["+strconv.Itoa(i)+"].lines", "at most %d lines per package", maxLines)
		}
		for j, l := range p.GetLines() {
			// No order line has more (pkg/money): a bound that keeps the
			// shipment's sums of quantities far from overflow.
			if l.GetQuantity() > money.MaxLineQuantity {
				v.Add(fmt.Sprintf("packages[%d].lines[%d].quantity", i, j), "at most %d (the most an order line has), got %d", money.MaxLineQuantity, l.GetQuantity())
			}
		}
		if len(p.GetEvidence().GetUnits()) > maxUnits {
			v.Add("packages["+strconv.Itoa(i)+"].evidence.units", "at most %d units per package", maxUnits)
		}
	}
	if err := v.Err(); err != nil {
		return app.Ship{}, err
	}
	// What the lines and units must be depends on the fulfilment: the
	// domain checks that (domain.CheckShipment) with the same field paths.
	return app.Ship{RequestID: req.GetRequestId(), FulfilmentID: req.GetFulfilmentId(), Carrier: req.GetCarrier(),
		TrackingNumber: number, Packages: domain.PackagesFromProto(req.GetPackages())}, nil
}

func validateScan(req *fulfilmentv1.RecordTrackingEventRequest) (app.Scan, error) {
	var v fault.Violations
	if id := req.GetRequestId(); id != "" { // optional: a scan is idempotent by carrier_event_id anyway
		apierr.RequestID(&v, id)
	}
	number := domain.CheckTracking(&v, "carrier", req.GetCarrier(), "tracking_number", req.GetTrackingNumber())
	scan := domain.Scan{CarrierEventID: req.GetCarrierEventId(), Status: req.GetStatus(),
		Location: strings.TrimSpace(req.GetLocation()), Description: strings.TrimSpace(req.GetDescription())}
	scan.OccurTime = apierr.Timestamp(&v, "occur_time", req.GetOccurTime())
	if p := domain.ProofFromProto(req.GetProof()); p != nil {
		p.SignatureSHA256, p.PhotoSHA256 = domain.NormaliseHash(p.SignatureSHA256), domain.NormaliseHash(p.PhotoSHA256)
		scan.Proof = p
	}
	v = append(v, domain.CheckScan(scan, timeZero)...)
	if err := v.Err(); err != nil {
		return app.Scan{}, err
	}
	return app.Scan{Carrier: req.GetCarrier(), TrackingNumber: number, Scan: scan}, nil
}

func validateReceipt(req *fulfilmentv1.ConfirmReceiptRequest) error {
	var v fault.Violations
	apierr.RequestID(&v, req.GetRequestId())
	checkStreamID(&v, "fulfilment_id", req.GetFulfilmentId())
	return v.Err()
}

func validateGet(req *fulfilmentv1.GetFulfilmentRequest) error {
	var v fault.Violations
	checkStreamID(&v, "fulfilment_id", req.GetFulfilmentId())
	return v.Err()
}

func validateList(req *fulfilmentv1.ListFulfilmentsRequest) (app.ListQuery, error) {
	var v fault.Violations
	if req.GetVendorId() == "" && req.GetOrderId() == "" {
		v.Add("vendor_id", "give vendor_id or order_id (or both)")
	}
	if req.GetVendorId() != "" {
		checkVendorID(&v, req.GetVendorId())
	}
	if req.GetOrderId() != "" {
		checkStreamID(&v, "order_id", req.GetOrderId())
	}
	status := apierr.Known(&v, "state", statuses, req.GetState())
	apierr.Paging(&v, req.GetPageSize(), req.GetPageToken())
	return app.ListQuery{VendorID: req.GetVendorId(), OrderID: req.GetOrderId(), Status: status,
		PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken()}, v.Err()
}

// validateWatch returns the cursor to resume from (nil: start with a
// snapshot).
func validateWatch(req *fulfilmentv1.WatchFulfilmentsRequest) (*uint64, error) {
	var v fault.Violations
	checkVendorID(&v, req.GetVendorId())
	var from *uint64
	if c := req.GetCursor(); c != "" {
		n, err := strconv.ParseUint(c, 10, 64)
		if err != nil {
			v.Add("cursor", "not a cursor of this service (use one from a WatchFulfilmentsResponse)")
		} else {
			from = &n
		}
	}
	return from, v.Err()
}
