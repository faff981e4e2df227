package fulfilment_test

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/money"
	"github.com/custody/custody/pkg/personal"
	"github.com/custody/custody/pkg/platform/platformtest"
	"github.com/custody/custody/pkg/server/servertest"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	"github.com/custody/custody/services/fulfilment"
	"github.com/custody/custody/services/fulfilment/domain"
)

// TestEndToEnd is the delivery-trust path through gRPC: OrderConfirmed (fed
// as the order service would) → FulfilmentRequested → the vendor lists and
// ships with packing evidence → carrier scans, late, duplicated and out of
// order → DELIVERED with proof → FulfilmentDelivered{with_proof}.
func TestEndToEnd(t *testing.T) {
	e := shared
	confirmedAt := e.clock.Now()
	vendor, buyer, orderID, fid := e.sell(t, lineQty{"sku-mug", 2}, lineQty{"sku-tee", 1})

	// FulfilmentRequested carries the vendor's lines and the ship-by deadline.
	req := eventsOf[*fulfilmentv1.FulfilmentRequested](t, e, fid)
	if len(req) != 1 {
		t.Fatalf("%d FulfilmentRequested", len(req))
	}
	want := &fulfilmentv1.FulfilmentRequested{FulfilmentId: fid, OrderId: orderID, VendorId: vendor, BuyerId: buyer,
		Lines:           []*fulfilmentv1.ShippedLine{{LineId: "1", SkuId: "sku-mug", Quantity: 2}, {LineId: "2", SkuId: "sku-tee", Quantity: 1}},
		ShippingAddress: address(), ShipByTime: timestamppb.New(confirmedAt.Add(sharedHandlingTime)), RequestTime: req[0].GetRequestTime()}
	// The address's personal fields are stored sealed under the buyer's key
	// (issue 16); the answers reveal them (the list below).
	stored := proto.Clone(req[0]).(*fulfilmentv1.FulfilmentRequested)
	sealed := stored.GetShippingAddress()
	for _, v := range append([]string{sealed.GetRecipientName(), sealed.GetPostalCode()}, sealed.GetAddressLines()...) {
		if !personal.IsToken(v) {
			t.Errorf("stored address holds %q, want a token", v)
		}
	}
	stored.ShippingAddress = address()
	if diff := cmp.Diff(want, stored, protocmp.Transform()); diff != "" {
		t.Fatalf("FulfilmentRequested (-want +got):\n%s", diff)
	}

	// The vendor sees it in its list, with the address revealed.
	vc := e.as(t, "vendor:"+vendor)
	list, err := vc.ListFulfilments(t.Context(), &fulfilmentv1.ListFulfilmentsRequest{VendorId: vendor})
	if err != nil || len(list.GetFulfilments()) != 1 || list.GetFulfilments()[0].GetState() != stateRequested {
		t.Fatalf("list: %v, %v", list, err)
	}
	if a := list.GetFulfilments()[0].GetShippingAddress(); !proto.Equal(a, address()) {
		t.Fatalf("listed address %v, want %v", a, address())
	}

	// Ship in two boxes, one line each, by SKU id for the tee.
	number := upsNumber()
	e.clock.Advance(2 * time.Hour)
	shipAt := e.clock.Now()
	mugs := box(line("1", 2))
	mugs.Evidence.PhotoSha256 = append(mugs.Evidence.PhotoSha256, doorstep)
	tee := box(&fulfilmentv1.ShippedLine{SkuId: "sku-tee", Quantity: 1})
	tee.Evidence.Units[0].SerialNumber, tee.Evidence.Units[0].LotNumber = "", "LOT-2030-03"
	sr := shipReq(fid, "ups", "1z "+number[2:], mugs, tee) // spaces and case are normalised
	shipped, err := vc.ShipFulfilment(t.Context(), sr)
	if err != nil {
		t.Fatal(err)
	}
	if shipped.GetShipmentId() != "s1" || shipped.GetFulfilment().GetState() != stateShipped {
		t.Fatalf("shipped: %v", shipped)
	}
	evs := eventsOf[*fulfilmentv1.FulfilmentShipped](t, e, fid)
	if len(evs) != 1 {
		t.Fatalf("%d FulfilmentShipped", len(evs))
	}
	fs := evs[0]
	if fs.GetTrackingNumber() != number || fs.GetCarrier() != "ups" || !fs.GetFullyShipped() || fs.GetOrderId() != orderID ||
		!fs.GetShipTime().AsTime().Equal(shipAt) || !fs.GetExpectedDeliveryTime().AsTime().Equal(shipAt.Add(5*day)) ||
		len(fs.GetPackages()) != 2 || fs.GetPackages()[1].GetPackageId() != "2" {
		t.Fatalf("FulfilmentShipped %v", fs)
	}
	// The catalog needs SKU and quantity per shipped line.
	if diff := cmp.Diff([]*fulfilmentv1.ShippedLine{{LineId: "1", SkuId: "sku-mug", Quantity: 2}, {LineId: "2", SkuId: "sku-tee", Quantity: 1}},
		fs.GetLines(), protocmp.Transform()); diff != "" {
		t.Fatalf("shipped lines (-want +got):\n%s", diff)
	}
	if u := fs.GetPackages()[1].GetEvidence().GetUnits()[0]; u.GetLineId() != "2" || u.GetSkuId() != "sku-tee" || u.GetLotNumber() != "LOT-2030-03" {
		t.Fatalf("packed unit %v", u)
	}
	// The same request again is the same shipment, nothing new stored.
	again, err := vc.ShipFulfilment(t.Context(), sr)
	if err != nil || again.GetShipmentId() != "s1" || len(e.events(t, fid)) != 2 {
		t.Fatalf("repeat: %v, %v, %d events", again, err, len(e.events(t, fid)))
	}

	// Carrier scans: out of order, a duplicate, a late IN_TRANSIT after
	// DELIVERED.
	cc := e.as(t, "carrier:ups")
	post := func(id string, st fulfilmentv1.TrackingStatus, at time.Time, proof *fulfilmentv1.ProofOfDelivery) *fulfilmentv1.RecordTrackingEventResponse {
		t.Helper()
		r, err := cc.RecordTrackingEvent(t.Context(), scanReq("ups", number, id, st, at, proof))
		if err != nil {
			t.Fatalf("scan %s: %v", id, err)
		}
		return r
	}
	pod := &fulfilmentv1.ProofOfDelivery{RecipientName: "A. Lovelace", SignatureSha256: signature, PhotoSha256: doorstep, Location: "52.517,13.389"}
	e.clock.Advance(2 * day) // the carrier's feed arrives late, in a burst
	post("u-2", domain.InTransit, shipAt.Add(10*time.Hour), nil)
	post("u-1", domain.PickedUp, shipAt.Add(time.Hour), nil)
	if r := post("u-1", domain.PickedUp, shipAt.Add(time.Hour), nil); !r.GetDuplicate() {
		t.Fatalf("duplicate scan not reported: %v", r)
	}
	post("u-3", domain.OutForDelivery, shipAt.Add(40*time.Hour), nil)
	r := post("u-4", domain.Delivered, shipAt.Add(44*time.Hour), pod)
	if r.GetFulfilmentState() != stateDelivered || r.GetShipmentStatus() != domain.Delivered || r.GetShipmentId() != "s1" || r.GetFulfilmentId() != fid {
		t.Fatalf("delivered scan: %v", r)
	}
	if r := post("u-5", domain.InTransit, shipAt.Add(45*time.Hour), nil); r.GetFulfilmentState() != stateDelivered || r.GetShipmentStatus() != domain.Delivered {
		t.Fatalf("a late IN_TRANSIT moved the state back: %v", r)
	}

	// FulfilmentDelivered, once, with proof.
	dv := eventsOf[*fulfilmentv1.FulfilmentDelivered](t, e, fid)
	wantDv := &fulfilmentv1.FulfilmentDelivered{FulfilmentId: fid, OrderId: orderID, VendorId: vendor, BuyerId: buyer,
		DeliverTime: timestamppb.New(shipAt.Add(44 * time.Hour)), WithProof: true, CarrierEventIds: []string{"u-4"}}
	if len(dv) != 1 {
		t.Fatalf("%d FulfilmentDelivered", len(dv))
	}
	if diff := cmp.Diff(wantDv, dv[0], protocmp.Transform()); diff != "" {
		t.Fatalf("FulfilmentDelivered (-want +got):\n%s", diff)
	}

	// The vendor's view: the full, deduplicated history in occur order.
	got, err := vc.GetFulfilment(t.Context(), &fulfilmentv1.GetFulfilmentRequest{FulfilmentId: fid})
	if err != nil {
		t.Fatal(err)
	}
	f := got.GetFulfilment()
	sh := f.GetShipments()[0]
	var ids []string
	for _, te := range sh.GetTrackingEvents() {
		ids = append(ids, te.GetCarrierEventId())
	}
	if f.GetState() != stateDelivered || !f.GetDelivery().GetWithProof() || f.GetDelivery().GetConfirmedByBuyer() ||
		!sh.GetDeliveredWithProof() || sh.GetProof().GetRecipientName() != "A. Lovelace" || sh.GetStatus() != domain.Delivered ||
		fmt.Sprint(ids) != "[u-1 u-2 u-3 u-4 u-5]" || sh.GetTrackingEventCount() != 5 || len(f.GetUnshippedLines()) != 0 {
		t.Fatalf("fulfilment %v", f)
	}
	// Events: requested, shipped, five scans, delivered.
	if n := len(e.events(t, fid)); n != 8 {
		t.Fatalf("%d events, want 8", n)
	}
}

func TestMultiVendorOrderIsOneFulfilmentPerPart(t *testing.T) {
	t.Parallel()
	e := shared
	v1, v2, buyer := uniq("v"), uniq("v"), uniq("b")
	orderID, lines, parts := e.placeOrder(t, buyer, part{v1, []lineQty{{"a", 1}, {"b", 2}}}, part{v2, []lineQty{{"c", 3}}})
	confirmed := &orderv1.OrderConfirmed{OrderId: orderID, BuyerId: buyer, Parts: parts, Lines: lines,
		ShippingAddress: address(), ConfirmTime: timestamppb.New(e.clock.Now())}
	e.emitOrder(t, orderID, confirmed)
	e.emitOrder(t, orderID, confirmed) // the order service re-publishing: a new event id
	f1 := e.waitState(t, fulfilmentID(orderID, v1), stateRequested)
	f2 := e.waitState(t, fulfilmentID(orderID, v2), stateRequested)
	e.Settled(t)
	if len(f1.GetLines()) != 2 || f1.GetLines()[1].GetSkuId() != "b" || len(f2.GetLines()) != 1 || f2.GetLines()[0].GetQuantity() != 3 {
		t.Fatalf("parts: %v\n%v", f1, f2)
	}
	for _, id := range []string{f1.GetFulfilmentId(), f2.GetFulfilmentId()} {
		if n := len(e.events(t, id)); n != 1 {
			t.Fatalf("%s has %d events after a redelivered OrderConfirmed", id, n)
		}
	}
	list, err := e.as(t, "support").ListFulfilments(t.Context(), &fulfilmentv1.ListFulfilmentsRequest{OrderId: orderID})
	if err != nil || len(list.GetFulfilments()) != 2 {
		t.Fatalf("order's fulfilments: %v, %v", list, err)
	}
	// The buyer lists its order's fulfilments too.
	list, err = e.as(t, "buyer:"+buyer).ListFulfilments(t.Context(), &fulfilmentv1.ListFulfilmentsRequest{OrderId: orderID})
	if err != nil || len(list.GetFulfilments()) != 2 {
		t.Fatalf("buyer's list: %v, %v", list, err)
	}
}

func TestPartialShipmentsInSeveralPackages(t *testing.T) {
	t.Parallel()
	e := shared
	vendor, _, _, fid := e.sell(t, lineQty{"a", 3}, lineQty{"b", 1})
	vc := e.as(t, "vendor:"+vendor)

	n1, n2 := dhlNumber(), dhlNumber()
	r1, err := vc.ShipFulfilment(t.Context(), shipReq(fid, "dhl", n1, box(line("1", 1)), box(line("1", 1))))
	if err != nil {
		t.Fatal(err)
	}
	f := r1.GetFulfilment()
	if r1.GetShipmentId() != "s1" || f.GetState() != statePartial ||
		fmt.Sprint(f.GetUnshippedLines()) != fmt.Sprint([]*fulfilmentv1.ShippedLine{{LineId: "1", SkuId: "a", Quantity: 1}, {LineId: "2", SkuId: "b", Quantity: 1}}) {
		t.Fatalf("after s1: %v", f)
	}
	// One more of line 1 than is left.
	_, err = vc.ShipFulfilment(t.Context(), shipReq(fid, "dhl", n2, box(line("1", 2), line("2", 1))))
	wantField(t, err, "packages[0].lines[0].quantity")

	r2, err := vc.ShipFulfilment(t.Context(), shipReq(fid, "dhl", n2, box(line("1", 1), line("2", 1))))
	if err != nil || r2.GetShipmentId() != "s2" || r2.GetFulfilment().GetState() != stateShipped {
		t.Fatalf("s2: %v, %v", r2, err)
	}
	ev := eventsOf[*fulfilmentv1.FulfilmentShipped](t, e, fid)
	if len(ev) != 2 || ev[0].GetFullyShipped() || !ev[1].GetFullyShipped() {
		t.Fatalf("shipped events %v", ev)
	}
	// Nothing left: another shipment is refused.
	_, err = vc.ShipFulfilment(t.Context(), shipReq(fid, "dhl", dhlNumber(), box(line("1", 1))))
	wantReason(t, err, "FULFILMENT_SHIPPED")

	// s1 delivered (with proof), s2 not yet: not delivered.
	cc := e.as(t, "carrier:dhl")
	at := e.clock.Now()
	if _, err := cc.RecordTrackingEvent(t.Context(), scanReq("dhl", n1, "d1", domain.Delivered, at, &fulfilmentv1.ProofOfDelivery{RecipientName: "Ada"})); err != nil {
		t.Fatal(err)
	}
	e.waitState(t, fid, stateShipped)
	// s2 delivered without proof: delivered, but not with proof.
	r, err := cc.RecordTrackingEvent(t.Context(), scanReq("dhl", n2, "d2", domain.Delivered, at.Add(time.Minute), nil))
	if err != nil || r.GetFulfilmentState() != stateDelivered {
		t.Fatalf("s2 delivered: %v, %v", r, err)
	}
	dv := eventsOf[*fulfilmentv1.FulfilmentDelivered](t, e, fid)
	if len(dv) != 1 || dv[0].GetWithProof() || !dv[0].GetDeliverTime().AsTime().Equal(at.Add(time.Minute)) ||
		fmt.Sprint(dv[0].GetCarrierEventIds()) != "[d1 d2]" {
		t.Fatalf("delivered %v", dv)
	}
}

func TestShipValidation(t *testing.T) {
	e := shared
	vendor, _, _, fid := e.sell(t, lineQty{"a", 2}, lineQty{"b", 1})
	vc := e.as(t, "vendor:"+vendor)
	number := dhlNumber()
	valid := func() *fulfilmentv1.ShipFulfilmentRequest {
		return shipReq(fid, "dhl", number, box(line("1", 2), line("2", 1)))
	}
	tests := []platformtest.BadRequest[*fulfilmentv1.ShipFulfilmentRequest]{
		{Name: "missing request id", Change: func(r *fulfilmentv1.ShipFulfilmentRequest) { r.RequestId = "" }, Field: "request_id"},
		{Name: "unknown carrier", Change: func(r *fulfilmentv1.ShipFulfilmentRequest) { r.Carrier = "pigeon" }, Field: "carrier"},
		{Name: "malformed tracking number", Change: func(r *fulfilmentv1.ShipFulfilmentRequest) { r.TrackingNumber = "12345" }, Field: "tracking_number"},
		{Name: "tracking number of another carrier's format", Change: func(r *fulfilmentv1.ShipFulfilmentRequest) { r.Carrier = "ups" }, Field: "tracking_number"},
		{Name: "no packages", Change: func(r *fulfilmentv1.ShipFulfilmentRequest) { r.Packages = nil }, Field: "packages"},
		{Name: "line not in the order", Change: func(r *fulfilmentv1.ShipFulfilmentRequest) { r.Packages = []*fulfilmentv1.Package{box(line("9", 1))} }, Field: "packages[0].lines[0].line_id"},
		{Name: "SKU not in the order", Change: func(r *fulfilmentv1.ShipFulfilmentRequest) {
			r.Packages = []*fulfilmentv1.Package{box(&fulfilmentv1.ShippedLine{SkuId: "zz", Quantity: 1})}
		}, Field: "packages[0].lines[0].sku_id"},
		{Name: "more than ordered", Change: func(r *fulfilmentv1.ShipFulfilmentRequest) { r.Packages = []*fulfilmentv1.Package{box(line("1", 3))} }, Field: "packages[0].lines[0].quantity"},
		{Name: "zero quantity", Change: func(r *fulfilmentv1.ShipFulfilmentRequest) { r.Packages[0].Lines[1].Quantity = 0 }, Field: "packages[0].lines[1].quantity"},
		{Name: "quantity of int64's limit", Change: func(r *fulfilmentv1.ShipFulfilmentRequest) { r.Packages[0].Lines[1].Quantity = math.MaxInt64 }, Field: "packages[0].lines[1].quantity"},
		// Refused at the edge, before the fulfilment is looked up (else NotFound).
		{Name: "quantity beyond the bound of an unknown fulfilment", Change: func(r *fulfilmentv1.ShipFulfilmentRequest) {
			r.FulfilmentId, r.Packages[0].Lines[0].Quantity = "f-nope", money.MaxLineQuantity+1
		}, Field: "packages[0].lines[0].quantity"},
		{Name: "no photos", Change: func(r *fulfilmentv1.ShipFulfilmentRequest) { r.Packages[0].Evidence.PhotoSha256 = nil }, Field: "packages[0].evidence.photo_sha256"},
		{Name: "photo not a hash", Change: func(r *fulfilmentv1.ShipFulfilmentRequest) {
			r.Packages[0].Evidence.PhotoSha256 = []string{"IMG_0001.jpg"}
		}, Field: "packages[0].evidence.photo_sha256[0]"},
		{Name: "a unit missing", Change: func(r *fulfilmentv1.ShipFulfilmentRequest) {
			r.Packages[0].Evidence.Units = r.Packages[0].Evidence.Units[1:]
		}, Field: "packages[0].evidence.units"},
		{Name: "unit without serial or lot", Change: func(r *fulfilmentv1.ShipFulfilmentRequest) { r.Packages[0].Evidence.Units[2].SerialNumber = "" }, Field: "packages[0].evidence.units[2]"},
		{Name: "serial twice", Change: func(r *fulfilmentv1.ShipFulfilmentRequest) {
			r.Packages[0].Evidence.Units[1].SerialNumber = r.Packages[0].Evidence.Units[0].GetSerialNumber()
		}, Field: "packages[0].evidence.units[1].serial_number"},
		{Name: "duplicate package ids", Change: func(r *fulfilmentv1.ShipFulfilmentRequest) {
			r.Packages = []*fulfilmentv1.Package{box(line("1", 2)), box(line("2", 1))}
			r.Packages[0].PackageId, r.Packages[1].PackageId = "A", "A"
		}, Field: "packages[1].package_id"},
	}
	for _, tt := range tests {
		t.Run(tt.Name, func(t *testing.T) {
			e.WantRefused(t, fulfilment.Name, tt.Field, platformtest.Call(vc.ShipFulfilment, t.Context(), tt.Of(valid)))
		})
	}
	// Bytes no Go client can send: refused as bad input, not Internal.
	t.Run("tracking number not UTF-8", func(t *testing.T) {
		e.WantRefused(t, fulfilment.Name, "tracking_number", servertest.CallInvalidUTF8(vc.ShipFulfilment, t.Context(), valid(), "tracking_number"))
	})
	// The valid request works, and the tracking number was not burnt by
	// the refused ones.
	sent := valid()
	shipped, err := vc.ShipFulfilment(t.Context(), sent)
	if err != nil {
		t.Fatal(err)
	}
	// Again, it is the same shipment; its request id with another body is
	// refused (AIP-155) and claims nothing: no tracking number, no shipment.
	if again, err := vc.ShipFulfilment(t.Context(), sent); err != nil || !proto.Equal(again, shipped) {
		t.Fatalf("the same request again: %v, %v; want %v", again, err, shipped)
	}
	for name, change := range map[string]func(*fulfilmentv1.ShipFulfilmentRequest){
		"another tracking number": func(r *fulfilmentv1.ShipFulfilmentRequest) { r.TrackingNumber = dhlNumber() },
		"another serial number": func(r *fulfilmentv1.ShipFulfilmentRequest) {
			r.Packages[0].Evidence.Units[0].SerialNumber = uniq("SN-")
		},
	} {
		t.Run("request id reused with "+name, func(t *testing.T) {
			reused := proto.Clone(sent).(*fulfilmentv1.ShipFulfilmentRequest)
			change(reused)
			e.WantRefused(t, fulfilment.Name, "request_id", platformtest.Call(vc.ShipFulfilment, t.Context(), reused))
		})
	}
	if _, err := vc.ShipFulfilment(t.Context(), shipReq("f-nope", "dhl", dhlNumber(), box(line("1", 1)))); err == nil {
		t.Fatal("shipping an unknown fulfilment worked")
	} else {
		wantCode(t, err, codes.NotFound)
	}
}

func TestTrackingNumbersAreUniquePerCarrier(t *testing.T) {
	e := shared
	vendor := uniq("v")
	o1 := e.confirmOrder(t, uniq("b"), part{vendor, []lineQty{{"a", 1}, {"b", 1}}})
	o2 := e.confirmOrder(t, uniq("b"), part{vendor, []lineQty{{"a", 1}}})
	f1, f2 := fulfilmentID(o1, vendor), fulfilmentID(o2, vendor)
	vc := e.as(t, "vendor:"+vendor)
	number := dhlNumber()
	if _, err := vc.ShipFulfilment(t.Context(), shipReq(f1, "dhl", number, box(line("1", 1)))); err != nil {
		t.Fatal(err)
	}
	e.WritesNothing(t, fulfilment.Name, func() {
		_, err := vc.ShipFulfilment(t.Context(), shipReq(f2, "dhl", number, box(line("1", 1))))
		wantCode(t, err, codes.AlreadyExists)
		// The same fulfilment's next shipment may not reuse it either.
		_, err = vc.ShipFulfilment(t.Context(), shipReq(f1, "dhl", number, box(line("2", 1))))
		wantCode(t, err, codes.AlreadyExists)
	})
	// Scans of the number go to f1 only.
	r, err := e.as(t, "carrier:dhl").RecordTrackingEvent(t.Context(), scanReq("dhl", number, "x1", domain.PickedUp, e.clock.Now(), nil))
	if err != nil || r.GetFulfilmentId() != f1 || r.GetShipmentId() != "s1" {
		t.Fatalf("scan: %v, %v", r, err)
	}

	// Concurrent shipments of one fulfilment with distinct numbers: each
	// gets its own shipment id, none is lost.
	o3 := e.confirmOrder(t, uniq("b"), part{vendor, []lineQty{{"a", 4}}})
	f3 := fulfilmentID(o3, vendor)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := vc.ShipFulfilment(t.Context(), shipReq(f3, "dhl", dhlNumber(), box(line("1", 1))))
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	f := e.waitState(t, f3, stateShipped)
	var sids []string
	for _, s := range f.GetShipments() {
		sids = append(sids, s.GetShipmentId())
	}
	if fmt.Sprint(sids) != "[s1 s2 s3 s4]" {
		t.Fatalf("shipments %v", sids)
	}
}

func TestScanRules(t *testing.T) {
	e := shared
	vendor := uniq("v")
	orderID := e.confirmOrder(t, uniq("b"), part{vendor, []lineQty{{"a", 1}}})
	fid := fulfilmentID(orderID, vendor)
	number := dhlNumber()
	if _, err := e.as(t, "vendor:"+vendor).ShipFulfilment(t.Context(), shipReq(fid, "dhl", number, box(line("1", 1)))); err != nil {
		t.Fatal(err)
	}
	cc := e.as(t, "carrier:dhl")
	now := e.clock.Now()
	tests := []struct {
		name  string
		req   *fulfilmentv1.RecordTrackingEventRequest
		code  codes.Code
		field string
	}{
		{"unknown tracking number", scanReq("dhl", dhlNumber(), "e1", domain.InTransit, now, nil), codes.NotFound, ""},
		{"unknown status", scanReq("dhl", number, "e1", fulfilmentv1.TrackingStatus(77), now, nil), codes.InvalidArgument, "status"},
		{"unspecified status", scanReq("dhl", number, "e1", 0, now, nil), codes.InvalidArgument, "status"},
		{"no event id", scanReq("dhl", number, "", domain.InTransit, now, nil), codes.InvalidArgument, "carrier_event_id"},
		{"no occur time", func() *fulfilmentv1.RecordTrackingEventRequest {
			r := scanReq("dhl", number, "e1", domain.InTransit, now, nil)
			r.OccurTime = nil
			return r
		}(), codes.InvalidArgument, "occur_time"},
		{"far in the future", scanReq("dhl", number, "e1", domain.InTransit, now.Add(3*time.Hour), nil), codes.InvalidArgument, "occur_time"},
		{"proof on a non-delivered scan", scanReq("dhl", number, "e1", domain.OutForDelivery, now, &fulfilmentv1.ProofOfDelivery{RecipientName: "x"}), codes.InvalidArgument, "proof"},
		{"malformed signature hash", scanReq("dhl", number, "e1", domain.Delivered, now, &fulfilmentv1.ProofOfDelivery{SignatureSha256: "abc"}), codes.InvalidArgument, "proof.signature_sha256"},
		{"malformed tracking number", scanReq("dhl", "xx", "e1", domain.InTransit, now, nil), codes.InvalidArgument, "tracking_number"},
		{"unknown carrier", scanReq("owl", number, "e1", domain.InTransit, now, nil), codes.InvalidArgument, "carrier"},
		{"another carrier's number", scanReq("ups", upsNumber(), "e1", domain.InTransit, now, nil), codes.PermissionDenied, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.WritesNothing(t, fulfilment.Name, func() {
				_, err := cc.RecordTrackingEvent(t.Context(), tt.req)
				if tt.field != "" {
					wantField(t, err, tt.field)
				} else {
					wantCode(t, err, tt.code)
				}
			})
		})
	}
	// The ups carrier may not post for a dhl number, even with a dhl request.
	_, err := e.as(t, "carrier:ups").RecordTrackingEvent(t.Context(), scanReq("dhl", number, "e1", domain.InTransit, now, nil))
	wantCode(t, err, codes.PermissionDenied)
	// A service (carrier integration) may.
	if _, err := e.as(t, "service").RecordTrackingEvent(t.Context(), scanReq("dhl", number, "e1", domain.InTransit, now, nil)); err != nil {
		t.Fatal(err)
	}
	// LOST fails the delivery; a DELIVERED found later still delivers.
	if r, err := cc.RecordTrackingEvent(t.Context(), scanReq("dhl", number, "e2", domain.Lost, now.Add(time.Minute), nil)); err != nil || r.GetFulfilmentState() != stateFailed {
		t.Fatalf("lost: %v, %v", r, err)
	}
	if len(eventsOf[*fulfilmentv1.DeliveryFailed](t, e, fid)) != 1 {
		t.Fatal("no DeliveryFailed")
	}
	if r, err := cc.RecordTrackingEvent(t.Context(), scanReq("dhl", number, "e3", domain.Delivered, now.Add(2*time.Minute), nil)); err != nil || r.GetFulfilmentState() != stateDelivered {
		t.Fatalf("delivered after lost: %v, %v", r, err)
	}
	// A request id names one scan: sent again, the scan is a duplicate; for
	// another scan it is refused (AIP-155) and records nothing.
	scan := scanReq("dhl", number, "e4", domain.InTransit, now.Add(time.Minute), nil)
	scan.RequestId = uniq("scan-")
	for i, wantDuplicate := range []bool{false, true} {
		if r, err := cc.RecordTrackingEvent(t.Context(), scan); err != nil || r.GetDuplicate() != wantDuplicate || r.GetFulfilmentId() != fid {
			t.Fatalf("scan with a request id, #%d: %v, %v", i, r, err)
		}
	}
	other := proto.Clone(scan).(*fulfilmentv1.RecordTrackingEventRequest)
	other.CarrierEventId = "e5"
	e.WantRefused(t, fulfilment.Name, "request_id", platformtest.Call(cc.RecordTrackingEvent, t.Context(), other))
	// Under a request id of its own the other scan is recorded, and the
	// first scan under a new request id is still a duplicate (by its
	// carrier event id).
	other.RequestId = uniq("scan-")
	if r, err := cc.RecordTrackingEvent(t.Context(), other); err != nil || r.GetDuplicate() {
		t.Fatalf("the other scan under its own request id: %v, %v", r, err)
	}
	scan.RequestId = uniq("scan-")
	if r, err := cc.RecordTrackingEvent(t.Context(), scan); err != nil || !r.GetDuplicate() {
		t.Fatalf("the first scan under a new request id: %v, %v", r, err)
	}
}

func TestCancelledOrderCancelsOpenFulfilments(t *testing.T) {
	e := shared
	v1, v2, buyer := uniq("v"), uniq("v"), uniq("b")
	orderID := e.confirmOrder(t, buyer, part{v1, []lineQty{{"a", 1}}}, part{v2, []lineQty{{"b", 1}}})
	f1, f2 := fulfilmentID(orderID, v1), fulfilmentID(orderID, v2)
	e.cancelOrder(t, orderID)
	got := e.waitState(t, f1, stateCancelled)
	e.waitState(t, f2, stateCancelled)
	// Who cancelled, not the buyer's words: those are sealed under the
	// buyer's key on the order's event and not copied here.
	if got.GetCancelReason() != "order cancelled by buyer:x" || got.GetCancelTime() == nil {
		t.Fatalf("cancelled %v", got)
	}
	e.WritesNothing(t, fulfilment.Name, func() {
		_, err := e.as(t, "vendor:"+v1).ShipFulfilment(t.Context(), shipReq(f1, "dhl", dhlNumber(), box(line("1", 1))))
		wantReason(t, err, "FULFILMENT_CANCELLED")
	})
	// Cancelling again (redelivery, a second OrderCancelled) changes nothing.
	e.cancelOrder(t, orderID)
	e.Settled(t)
	if n := len(eventsOf[*fulfilmentv1.FulfilmentCancelled](t, e, f1)); n != 1 {
		t.Fatalf("%d FulfilmentCancelled", n)
	}
	// An order cancelled while pending (never confirmed) has nothing to cancel.
	pending, _, _ := e.placeOrder(t, buyer, part{v1, []lineQty{{"a", 1}}})
	e.cancelOrder(t, pending)
	e.Settled(t)
	if evs := e.events(t, fulfilmentID(pending, v1)); len(evs) != 0 {
		t.Fatalf("pending order: %v", evs)
	}
	// A part that shipped before the cancellation arrived stands.
	o2 := e.confirmOrder(t, buyer, part{v1, []lineQty{{"a", 1}}})
	f := fulfilmentID(o2, v1)
	if _, err := e.as(t, "vendor:"+v1).ShipFulfilment(t.Context(), shipReq(f, "dhl", dhlNumber(), box(line("1", 1)))); err != nil {
		t.Fatal(err)
	}
	e.cancelOrder(t, o2)
	e.Settled(t)
	e.waitState(t, f, stateShipped)
}

func TestConfirmReceipt(t *testing.T) {
	t.Parallel()
	e := shared
	vendor, buyer, _, fid := e.sell(t, lineQty{"a", 1})
	bc := e.as(t, "buyer:"+buyer)
	req := &fulfilmentv1.ConfirmReceiptRequest{RequestId: uniq("req-"), FulfilmentId: fid}
	_, err := bc.ConfirmReceipt(t.Context(), req)
	wantReason(t, err, "FULFILMENT_NOT_SHIPPED")
	if _, err := e.as(t, "vendor:"+vendor).ShipFulfilment(t.Context(), shipReq(fid, "dhl", dhlNumber(), box(line("1", 1)))); err != nil {
		t.Fatal(err)
	}
	_, err = e.as(t, "buyer:"+uniq("b")).ConfirmReceipt(t.Context(), req)
	wantCode(t, err, codes.PermissionDenied)
	_, err = e.as(t, "vendor:"+vendor).ConfirmReceipt(t.Context(), req)
	wantCode(t, err, codes.PermissionDenied)

	resp, err := bc.ConfirmReceipt(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	f := resp.GetFulfilment()
	if f.GetState() != stateDelivered || !f.GetDelivery().GetConfirmedByBuyer() || !f.GetDelivery().GetWithProof() || f.GetReceiptConfirmTime() == nil {
		t.Fatalf("after receipt: %v", f)
	}
	again, err := bc.ConfirmReceipt(t.Context(), &fulfilmentv1.ConfirmReceiptRequest{RequestId: uniq("req-"), FulfilmentId: fid})
	if err != nil || !proto.Equal(again.GetFulfilment(), f) {
		t.Fatalf("second confirmation: %v, %v", again, err)
	}
	dv := eventsOf[*fulfilmentv1.FulfilmentDelivered](t, e, fid)
	if len(dv) != 1 || !dv[0].GetConfirmedByBuyer() || !dv[0].GetWithProof() || len(eventsOf[*fulfilmentv1.ReceiptConfirmed](t, e, fid)) != 1 {
		t.Fatalf("events %v", e.events(t, fid))
	}
}

func TestListFulfilments(t *testing.T) {
	e := shared
	vendor := uniq("v")
	var orders []string
	for range 5 {
		orders = append(orders, e.confirmOrder(t, uniq("b"), part{vendor, []lineQty{{"a", 1}}}))
		e.clock.Advance(time.Second)
	}
	vc := e.as(t, "vendor:"+vendor)
	if _, err := vc.ShipFulfilment(t.Context(), shipReq(fulfilmentID(orders[1], vendor), "dhl", dhlNumber(), box(line("1", 1)))); err != nil {
		t.Fatal(err)
	}
	var seen []string
	token := ""
	for page := 0; ; page++ {
		resp, err := vc.ListFulfilments(t.Context(), &fulfilmentv1.ListFulfilmentsRequest{VendorId: vendor, PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range resp.GetFulfilments() {
			seen = append(seen, f.GetOrderId())
			if len(f.GetShipments()) > 0 && f.GetShipments()[0].GetTrackingEvents() != nil {
				t.Fatal("lists carry no tracking history")
			}
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
		if page > 5 {
			t.Fatal("paging does not end")
		}
	}
	want := slices.Clone(orders)
	slices.Reverse(want)
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("listed %v, want newest first %v", seen, want)
	}
	shipped, err := vc.ListFulfilments(t.Context(), &fulfilmentv1.ListFulfilmentsRequest{VendorId: vendor, State: stateShipped})
	if err != nil || len(shipped.GetFulfilments()) != 1 || shipped.GetFulfilments()[0].GetOrderId() != orders[1] {
		t.Fatalf("shipped: %v, %v", shipped, err)
	}
	one, err := vc.ListFulfilments(t.Context(), &fulfilmentv1.ListFulfilmentsRequest{VendorId: vendor, OrderId: orders[3]})
	if err != nil || len(one.GetFulfilments()) != 1 {
		t.Fatalf("by vendor and order: %v, %v", one, err)
	}
	_, err = vc.ListFulfilments(t.Context(), &fulfilmentv1.ListFulfilmentsRequest{VendorId: vendor, PageToken: "garbage"})
	wantField(t, err, "page_token")
	first, _ := vc.ListFulfilments(t.Context(), &fulfilmentv1.ListFulfilmentsRequest{VendorId: vendor, PageSize: 1})
	_, err = vc.ListFulfilments(t.Context(), &fulfilmentv1.ListFulfilmentsRequest{VendorId: vendor, State: stateShipped, PageToken: first.GetNextPageToken()})
	wantField(t, err, "page_token")
	_, err = vc.ListFulfilments(t.Context(), &fulfilmentv1.ListFulfilmentsRequest{})
	wantField(t, err, "vendor_id")
	_, err = vc.ListFulfilments(t.Context(), &fulfilmentv1.ListFulfilmentsRequest{VendorId: vendor, State: 42})
	wantField(t, err, "state")
}

func TestAccessControl(t *testing.T) {
	t.Parallel()
	e := shared
	vendor, buyer, orderID, fid := e.sell(t, lineQty{"a", 1})
	get := func(role string) error {
		_, err := e.as(t, role).GetFulfilment(t.Context(), &fulfilmentv1.GetFulfilmentRequest{FulfilmentId: fid})
		return err
	}
	for role, want := range map[string]codes.Code{
		"vendor:" + vendor: codes.OK, "buyer:" + buyer: codes.OK, "support": codes.OK, "platform": codes.OK, "service": codes.OK,
		"vendor:" + uniq("v"): codes.PermissionDenied, "buyer:" + uniq("b"): codes.PermissionDenied,
		"carrier:dhl": codes.PermissionDenied, "creator:c1": codes.PermissionDenied, "": codes.Unauthenticated,
	} {
		t.Run("GetFulfilment as "+role, func(t *testing.T) { wantCode(t, get(role), want) })
	}
	ship := func(role string) error {
		_, err := e.as(t, role).ShipFulfilment(t.Context(), shipReq(fid, "dhl", dhlNumber(), box(line("1", 1))))
		return err
	}
	for _, role := range []string{"vendor:" + uniq("v"), "buyer:" + buyer, "support", "platform", "carrier:dhl"} {
		wantCode(t, ship(role), codes.PermissionDenied)
	}
	_, err := e.as(t, "vendor:"+uniq("v")).ListFulfilments(t.Context(), &fulfilmentv1.ListFulfilmentsRequest{VendorId: vendor})
	wantCode(t, err, codes.PermissionDenied)
	_, err = e.as(t, "vendor:"+vendor).ListFulfilments(t.Context(), &fulfilmentv1.ListFulfilmentsRequest{OrderId: orderID})
	wantCode(t, err, codes.PermissionDenied)
	_, err = e.as(t, "buyer:"+uniq("b")).ListFulfilments(t.Context(), &fulfilmentv1.ListFulfilmentsRequest{OrderId: orderID})
	wantCode(t, err, codes.PermissionDenied)
	// A missing fulfilment is NotFound for everyone.
	_, err = e.as(t, "vendor:"+vendor).GetFulfilment(t.Context(), &fulfilmentv1.GetFulfilmentRequest{FulfilmentId: "f000000000000000000000000"})
	wantCode(t, err, codes.NotFound)
	// A service acting for the vendor may ship.
	if err := ship("service"); err != nil {
		t.Fatal(err)
	}
}
