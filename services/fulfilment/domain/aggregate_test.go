package domain_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/es/estest"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/fulfilment/domain"
)

var (
	t0   = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	addr = &typev1.Address{RecipientName: "Ada", AddressLines: []string{"1 Main St"}, Locality: "Berlin", CountryCode: "DE"}
	hash = strings.Repeat("ab", 32)
	sig  = strings.Repeat("cd", 32)
)

const fid = "f1"

func ts(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(t0.Add(d)) }

// The fulfilment: line 1 = 2 × sku-a, line 3 = 1 × sku-c.
func orderLines() []domain.Line {
	return []domain.Line{{LineID: "1", SKUID: "sku-a", Quantity: 2}, {LineID: "3", SKUID: "sku-c", Quantity: 1}}
}

func requested() *fulfilmentv1.FulfilmentRequested {
	return &fulfilmentv1.FulfilmentRequested{FulfilmentId: fid, OrderId: "o1", VendorId: "v1", BuyerId: "b1",
		Lines: domain.LinesProto(orderLines()), ShippingAddress: addr, ShipByTime: ts(72 * time.Hour), RequestTime: ts(0)}
}

// pkg is a package of the given lines with one serial-numbered unit per
// item (serials "sn-<line>-<prefix><n>").
func pkg(prefix string, lines ...domain.Line) domain.Package {
	p := domain.Package{Lines: lines, Photos: []string{hash}}
	for _, l := range lines {
		for n := range l.Quantity {
			p.Units = append(p.Units, domain.Unit{LineID: l.LineID, Serial: "sn-" + l.LineID + "-" + prefix + string(rune('0'+n))})
		}
	}
	return p
}

func ship(req, sid, number string, pkgs ...domain.Package) domain.ShipFulfilment {
	return domain.ShipFulfilment{RequestID: req, ShipmentID: sid, Carrier: "dhl", TrackingNumber: number, Packages: pkgs,
		Time: t0.Add(time.Hour), ExpectedDelivery: t0.Add(time.Hour + 5*24*time.Hour)}
}

// shipped is the event of ship(...) after resolution, for the whole order
// in one package.
func shippedAll() *fulfilmentv1.FulfilmentShipped {
	p := pkg("x", domain.Line{LineID: "1", Quantity: 2}, domain.Line{LineID: "3", Quantity: 1})
	p.PackageID = "1"
	p.Lines[0].SKUID, p.Lines[1].SKUID = "sku-a", "sku-c"
	for i := range p.Units {
		p.Units[i].SKUID = map[string]string{"1": "sku-a", "3": "sku-c"}[p.Units[i].LineID]
	}
	return &fulfilmentv1.FulfilmentShipped{FulfilmentId: fid, OrderId: "o1", VendorId: "v1", ShipmentId: "s1",
		Carrier: "dhl", TrackingNumber: "1234567890", Packages: domain.PackagesProto([]domain.Package{p}),
		Lines: domain.LinesProto(orderLines()), FullyShipped: true, ShipTime: ts(time.Hour),
		ExpectedDeliveryTime: ts(time.Hour + 5*24*time.Hour), RequestId: "r1"}
}

func scan(id string, status domain.TrackingStatus, at time.Duration, proof *domain.Proof) domain.RecordScan {
	return domain.RecordScan{Carrier: "dhl", TrackingNumber: "1234567890", Now: t0.Add(30 * 24 * time.Hour),
		Scan: domain.Scan{CarrierEventID: id, Status: status, OccurTime: t0.Add(at), Location: "Hub", Proof: proof}}
}

func recorded(id string, status domain.TrackingStatus, at time.Duration, proof *domain.Proof) *fulfilmentv1.TrackingEventRecorded {
	return &fulfilmentv1.TrackingEventRecorded{FulfilmentId: fid, ShipmentId: "s1", Carrier: "dhl", TrackingNumber: "1234567890",
		CarrierEventId: id, Status: status, OccurTime: ts(at), Location: "Hub", Proof: domain.ProofProto(proof), BuyerId: "b1"}
}

var pod = &domain.Proof{RecipientName: "Ada", SignatureSHA256: sig}

func delivered(at time.Duration, withProof bool, ids ...string) *fulfilmentv1.FulfilmentDelivered {
	return &fulfilmentv1.FulfilmentDelivered{FulfilmentId: fid, OrderId: "o1", VendorId: "v1", BuyerId: "b1",
		DeliverTime: ts(at), WithProof: withProof, CarrierEventIds: ids}
}

func TestDecide(t *testing.T) {
	day := 24 * time.Hour
	l := func(id string, q int64) domain.Line { return domain.Line{LineID: id, Quantity: q} }
	whole := pkg("x", l("1", 2), l("3", 1))
	cancelled := &fulfilmentv1.FulfilmentCancelled{FulfilmentId: fid, OrderId: "o1", VendorId: "v1", Reason: "order cancelled", CancelTime: ts(time.Hour)}
	partial := shippedAll()
	partial.Lines = domain.LinesProto([]domain.Line{{LineID: "1", SKUID: "sku-a", Quantity: 2}})
	partial.Packages = partial.Packages[:1]
	partial.Packages[0].Lines = partial.Lines
	partial.Packages[0].Evidence.Units = partial.Packages[0].Evidence.Units[:2]
	partial.FullyShipped = false

	badHash := whole
	badHash.Photos = []string{"nothex"}
	noPhotos := whole
	noPhotos.Photos = nil
	fewUnits := pkg("x", l("1", 2), l("3", 1))
	fewUnits.Units = fewUnits.Units[1:]
	noSerial := pkg("x", l("1", 2), l("3", 1))
	noSerial.Units[0].Serial = ""
	partialOne := proto.Clone(partial).(*fulfilmentv1.FulfilmentShipped)
	partialOne.Lines[0].Quantity = 1
	partialOne.Packages[0].Lines[0].Quantity = 1
	partialOne.Packages[0].Evidence.Units = partialOne.Packages[0].Evidence.Units[:1]
	strayUnit := pkg("x", l("1", 2))
	strayUnit.Units = append(strayUnit.Units, domain.Unit{LineID: "3", Serial: "z"})
	bySKU := domain.Package{Lines: []domain.Line{{SKUID: "sku-a", Quantity: 2}, {SKUID: "sku-c", Quantity: 1}}, Photos: []string{strings.ToUpper(hash)},
		Units: []domain.Unit{{SKUID: "sku-a", Serial: "sn-1-x0"}, {SKUID: "sku-a", Serial: "sn-1-x1"}, {LineID: "3", Serial: "sn-3-x0"}}}

	graceMissed := &fulfilmentv1.ShipByDeadlineMissed{FulfilmentId: fid, OrderId: "o1", VendorId: "v1", ShipByTime: ts(3 * day), Action: "grace", GraceUntilTime: ts(4 * day)}
	grace := domain.ShipByPolicy{Grace: day}

	estest.Run(t, domain.Decider, fid, []estest.Case[domain.Command]{
		{Name: "request", When: domain.RequestFulfilment{OrderID: "o1", VendorID: "v1", BuyerID: "b1", Lines: orderLines(), Address: addr, ShipBy: t0.Add(3 * day), Time: t0},
			Then: []proto.Message{requested()}},
		{Name: "request again decides nothing", Given: []proto.Message{requested()}, When: domain.RequestFulfilment{OrderID: "o1", VendorID: "v1"}},
		{Name: "request without lines", When: domain.RequestFulfilment{OrderID: "o1", VendorID: "v1", BuyerID: "b1", ShipBy: t0}, Err: estest.Invalid("lines")},
		{Name: "ship before request", When: ship("r1", "s1", "1234567890", whole), Err: domain.ErrNotRequested},

		{Name: "ship everything", Given: []proto.Message{requested()}, When: ship("r1", "s1", "1234567890", whole), Then: []proto.Message{shippedAll()}},
		{Name: "ship by SKU ids, upper-case hash", Given: []proto.Message{requested()}, When: ship("r1", "s1", "1234567890", bySKU), Then: []proto.Message{shippedAll()}},
		{Name: "ship part", Given: []proto.Message{requested()}, When: ship("r1", "s1", "1234567890", pkg("x", l("1", 2))), Then: []proto.Message{partial}},
		{Name: "same request again decides nothing", Given: []proto.Message{requested(), shippedAll()}, When: ship("r1", "s2", "0000000000", whole)},
		{Name: "ship cancelled", Given: []proto.Message{requested(), cancelled}, When: ship("r1", "s1", "1234567890", whole), Err: estest.Precondition(domain.ReasonCancelled)},
		{Name: "ship fully shipped", Given: []proto.Message{requested(), shippedAll()}, When: ship("r2", "s2", "1111111111", whole), Err: estest.Precondition(domain.ReasonShipped)},
		{Name: "ship with a stale shipment id", Given: []proto.Message{requested(), partial}, When: ship("r2", "s1", "1111111111", pkg("y", l("3", 1))), Err: domain.ErrShipmentRace},
		{Name: "tracking number of an earlier shipment", Given: []proto.Message{requested(), partial}, When: ship("r2", "s2", "1234567890", pkg("y", l("3", 1))), Err: &domain.TrackingInUseError{Carrier: "dhl", TrackingNumber: "1234567890", FulfilmentID: fid, ShipmentID: "s1", SameFulfilment: true}},
		{Name: "no packages", Given: []proto.Message{requested()}, When: ship("r1", "s1", "1234567890"), Err: estest.Invalid("packages")},
		{Name: "unknown line", Given: []proto.Message{requested()}, When: ship("r1", "s1", "1234567890", pkg("x", l("2", 1))), Err: estest.Invalid("packages[0].lines[0].line_id", "packages[0].evidence.units[0].line_id")},
		{Name: "unknown SKU", Given: []proto.Message{requested()}, When: ship("r1", "s1", "1234567890", domain.Package{Lines: []domain.Line{{SKUID: "sku-z", Quantity: 1}}, Photos: []string{hash}}), Err: estest.Invalid("packages[0].lines[0].sku_id")},
		{Name: "line and SKU disagree", Given: []proto.Message{requested()}, When: ship("r1", "s1", "1234567890", domain.Package{Lines: []domain.Line{{LineID: "1", SKUID: "sku-c", Quantity: 1}}, Photos: []string{hash}}), Err: estest.Invalid("packages[0].lines[0].line_id")},
		{Name: "more than ordered", Given: []proto.Message{requested()}, When: ship("r1", "s1", "1234567890", pkg("x", l("1", 3))), Err: estest.Invalid("packages[0].lines[0].quantity")},
		{Name: "more than ordered over two packages", Given: []proto.Message{requested()}, When: ship("r1", "s1", "1234567890", pkg("x", l("1", 2)), pkg("y", l("1", 1))), Err: estest.Invalid("packages[1].lines[0].quantity")},
		{Name: "more than left after an earlier shipment", Given: []proto.Message{requested(), partial}, When: ship("r2", "s2", "1111111111", pkg("y", l("1", 1))), Err: estest.Invalid("packages[0].lines[0].quantity")},
		{Name: "zero quantity", Given: []proto.Message{requested()}, When: ship("r1", "s1", "1234567890", domain.Package{Lines: []domain.Line{l("1", 0)}, Photos: []string{hash}}), Err: estest.Invalid("packages[0].lines[0].quantity")},
		{Name: "line twice in a package", Given: []proto.Message{requested()}, When: ship("r1", "s1", "1234567890", pkg("x", l("1", 1), l("1", 1))), Err: estest.Invalid("packages[0].lines[1]", "packages[0].evidence.units[1].serial_number")},
		{Name: "no photos", Given: []proto.Message{requested()}, When: ship("r1", "s1", "1234567890", noPhotos), Err: estest.Invalid("packages[0].evidence.photo_sha256")},
		{Name: "bad photo hash", Given: []proto.Message{requested()}, When: ship("r1", "s1", "1234567890", badHash), Err: estest.Invalid("packages[0].evidence.photo_sha256[0]")},
		{Name: "fewer units than items", Given: []proto.Message{requested()}, When: ship("r1", "s1", "1234567890", fewUnits), Err: estest.Invalid("packages[0].evidence.units")},
		{Name: "unit without serial or lot", Given: []proto.Message{requested()}, When: ship("r1", "s1", "1234567890", noSerial), Err: estest.Invalid("packages[0].evidence.units[0]", "packages[0].evidence.units")},
		{Name: "unit of a line not in the package", Given: []proto.Message{requested()}, When: ship("r1", "s1", "1234567890", strayUnit), Err: estest.Invalid("packages[0].evidence.units[2].line_id")},
		{Name: "serial packed before", Given: []proto.Message{requested(), partialOne}, When: ship("r2", "s2", "1111111111", pkg("x", l("1", 1))), Err: estest.Invalid("packages[0].evidence.units[0].serial_number", "packages[0].evidence.units")},
		{Name: "serial twice in one shipment", Given: []proto.Message{requested()}, When: ship("r1", "s1", "1234567890", pkg("x", l("1", 1)), pkg("x", l("1", 1))), Err: estest.Invalid("packages[1].evidence.units[0].serial_number", "packages[1].evidence.units")},

		{Name: "scan for an unknown tracking number", Given: []proto.Message{requested(), shippedAll()}, When: func() domain.RecordScan {
			s := scan("e1", domain.InTransit, 2*time.Hour, nil)
			s.TrackingNumber = "0000000000"
			return s
		}(), Err: domain.ErrUnknownTracking},
		{Name: "scan before shipping", Given: []proto.Message{requested()}, When: scan("e1", domain.InTransit, 2*time.Hour, nil), Err: domain.ErrUnknownTracking},
		{Name: "first scan", Given: []proto.Message{requested(), shippedAll()}, When: scan("e1", domain.PickedUp, 2*time.Hour, nil), Then: []proto.Message{recorded("e1", domain.PickedUp, 2*time.Hour, nil)}},
		{Name: "duplicate scan decides nothing", Given: []proto.Message{requested(), shippedAll(), recorded("e1", domain.PickedUp, 2*time.Hour, nil)}, When: scan("e1", domain.PickedUp, 2*time.Hour, nil)},
		{Name: "duplicate id with other content decides nothing", Given: []proto.Message{requested(), shippedAll(), recorded("e1", domain.PickedUp, 2*time.Hour, nil)}, When: scan("e1", domain.Delivered, 3*time.Hour, nil)},
		{Name: "delivered with proof", Given: []proto.Message{requested(), shippedAll(), recorded("e1", domain.PickedUp, 2*time.Hour, nil)}, When: scan("e2", domain.Delivered, 50*time.Hour, pod),
			Then: []proto.Message{recorded("e2", domain.Delivered, 50*time.Hour, pod), delivered(50*time.Hour, true, "e2")}},
		{Name: "delivered without proof", Given: []proto.Message{requested(), shippedAll()}, When: scan("e2", domain.Delivered, 50*time.Hour, nil),
			Then: []proto.Message{recorded("e2", domain.Delivered, 50*time.Hour, nil), delivered(50*time.Hour, false, "e2")}},
		{Name: "late in-transit after delivered is only recorded", Given: []proto.Message{requested(), shippedAll(), recorded("e2", domain.Delivered, 50*time.Hour, pod)}, When: scan("e3", domain.InTransit, 60*time.Hour, nil),
			Then: []proto.Message{recorded("e3", domain.InTransit, 60*time.Hour, nil)}},
		{Name: "lost fails the shipment", Given: []proto.Message{requested(), shippedAll()}, When: scan("e4", domain.Lost, 90*time.Hour, nil),
			Then: []proto.Message{recorded("e4", domain.Lost, 90*time.Hour, nil), &fulfilmentv1.DeliveryFailed{FulfilmentId: fid, OrderId: "o1", VendorId: "v1", ShipmentId: "s1", Status: domain.Lost, CarrierEventId: "e4", FailTime: ts(90 * time.Hour)}}},
		{Name: "lost after delivered is only recorded", Given: []proto.Message{requested(), shippedAll(), recorded("e2", domain.Delivered, 50*time.Hour, nil)}, When: scan("e4", domain.Lost, 90*time.Hour, nil),
			Then: []proto.Message{recorded("e4", domain.Lost, 90*time.Hour, nil)}},
		{Name: "returned after lost fails nothing more", Given: []proto.Message{requested(), shippedAll(), recorded("e4", domain.Lost, 90*time.Hour, nil)}, When: scan("e5", domain.ReturnedToSender, 80*time.Hour, nil),
			Then: []proto.Message{recorded("e5", domain.ReturnedToSender, 80*time.Hour, nil)}},
		{Name: "delivered after lost delivers", Given: []proto.Message{requested(), shippedAll(), recorded("e4", domain.Lost, 90*time.Hour, nil)}, When: scan("e2", domain.Delivered, 95*time.Hour, pod),
			Then: []proto.Message{recorded("e2", domain.Delivered, 95*time.Hour, pod), delivered(95*time.Hour, true, "e2")}},
		{Name: "partial shipment delivered is not the fulfilment delivered", Given: []proto.Message{requested(), partial}, When: scan("e2", domain.Delivered, 50*time.Hour, pod),
			Then: []proto.Message{recorded("e2", domain.Delivered, 50*time.Hour, pod)}},
		{Name: "proof on a non-delivered scan", Given: []proto.Message{requested(), shippedAll()}, When: scan("e1", domain.OutForDelivery, 2*time.Hour, pod), Err: estest.Invalid("proof")},
		{Name: "unknown status", Given: []proto.Message{requested(), shippedAll()}, When: scan("e1", domain.TrackingStatus(42), 2*time.Hour, nil), Err: estest.Invalid("status")},
		{Name: "unspecified status", Given: []proto.Message{requested(), shippedAll()}, When: scan("e1", 0, 2*time.Hour, nil), Err: estest.Invalid("status")},
		{Name: "scan in the future", Given: []proto.Message{requested(), shippedAll()}, When: scan("e1", domain.InTransit, 40*24*time.Hour, nil), Err: estest.Invalid("occur_time")},
		{Name: "scan without event id", Given: []proto.Message{requested(), shippedAll()}, When: scan("", domain.InTransit, time.Hour, nil), Err: estest.Invalid("carrier_event_id")},
		{Name: "proof with a bad signature hash", Given: []proto.Message{requested(), shippedAll()}, When: scan("e2", domain.Delivered, time.Hour, &domain.Proof{SignatureSHA256: "x"}), Err: estest.Invalid("proof.signature_sha256")},

		{Name: "receipt before shipping", Given: []proto.Message{requested()}, When: domain.ConfirmReceipt{Time: t0}, Err: estest.Precondition(domain.ReasonNotShipped)},
		{Name: "receipt of a part", Given: []proto.Message{requested(), partial}, When: domain.ConfirmReceipt{Time: t0}, Err: estest.Precondition(domain.ReasonNotShipped)},
		{Name: "receipt delivers", Given: []proto.Message{requested(), shippedAll()}, When: domain.ConfirmReceipt{Time: t0.Add(3 * day)},
			Then: []proto.Message{&fulfilmentv1.ReceiptConfirmed{FulfilmentId: fid, OrderId: "o1", BuyerId: "b1", ConfirmTime: ts(3 * day)},
				&fulfilmentv1.FulfilmentDelivered{FulfilmentId: fid, OrderId: "o1", VendorId: "v1", BuyerId: "b1", DeliverTime: ts(3 * day), WithProof: true, ConfirmedByBuyer: true}}},
		{Name: "receipt after the carrier delivered", Given: []proto.Message{requested(), shippedAll(), recorded("e2", domain.Delivered, 50*time.Hour, nil)}, When: domain.ConfirmReceipt{Time: t0.Add(3 * day)},
			Then: []proto.Message{&fulfilmentv1.ReceiptConfirmed{FulfilmentId: fid, OrderId: "o1", BuyerId: "b1", ConfirmTime: ts(3 * day)}}},
		{Name: "receipt twice", Given: []proto.Message{requested(), shippedAll(), &fulfilmentv1.ReceiptConfirmed{ConfirmTime: ts(day)}}, When: domain.ConfirmReceipt{Time: t0.Add(3 * day)}},
		{Name: "receipt of a cancelled fulfilment", Given: []proto.Message{requested(), cancelled}, When: domain.ConfirmReceipt{Time: t0}, Err: estest.Precondition(domain.ReasonCancelled)},

		{Name: "deadline with grace", Given: []proto.Message{requested()}, When: domain.MissShipBy{Deadline: t0.Add(3 * day), Now: t0.Add(3 * day), Policy: grace}, Then: []proto.Message{graceMissed}},
		{Name: "deadline after grace cancels", Given: []proto.Message{requested(), graceMissed}, When: domain.MissShipBy{Deadline: t0.Add(4 * day), Now: t0.Add(5 * day), Policy: grace},
			Then: []proto.Message{&fulfilmentv1.ShipByDeadlineMissed{FulfilmentId: fid, OrderId: "o1", VendorId: "v1", ShipByTime: ts(4 * day), Action: "cancel"},
				&fulfilmentv1.FulfilmentCancelled{FulfilmentId: fid, OrderId: "o1", VendorId: "v1", Reason: domain.ReasonShipByMissed, CancelTime: ts(5 * day)}}},
		{Name: "deadline with the cancel policy", Given: []proto.Message{requested()}, When: domain.MissShipBy{Deadline: t0.Add(3 * day), Now: t0.Add(3 * day)},
			Then: []proto.Message{&fulfilmentv1.ShipByDeadlineMissed{FulfilmentId: fid, OrderId: "o1", VendorId: "v1", ShipByTime: ts(3 * day), Action: "cancel"},
				&fulfilmentv1.FulfilmentCancelled{FulfilmentId: fid, OrderId: "o1", VendorId: "v1", Reason: domain.ReasonShipByMissed, CancelTime: ts(3 * day)}}},
		{Name: "deadline of a partly shipped fulfilment is flagged", Given: []proto.Message{requested(), partial}, When: domain.MissShipBy{Deadline: t0.Add(3 * day), Now: t0.Add(3 * day)},
			Then: []proto.Message{&fulfilmentv1.ShipByDeadlineMissed{FulfilmentId: fid, OrderId: "o1", VendorId: "v1", ShipByTime: ts(3 * day), Action: "flag"}}},
		{Name: "moved deadline decides nothing", Given: []proto.Message{requested(), graceMissed}, When: domain.MissShipBy{Deadline: t0.Add(3 * day), Now: t0.Add(5 * day), Policy: grace}},
		{Name: "deadline not yet due", Given: []proto.Message{requested()}, When: domain.MissShipBy{Deadline: t0.Add(3 * day), Now: t0.Add(2 * day)}},
		{Name: "deadline of a shipped fulfilment", Given: []proto.Message{requested(), shippedAll()}, When: domain.MissShipBy{Deadline: t0.Add(3 * day), Now: t0.Add(3 * day)}},
		{Name: "deadline of a cancelled fulfilment", Given: []proto.Message{requested(), cancelled}, When: domain.MissShipBy{Deadline: t0.Add(3 * day), Now: t0.Add(3 * day)}},

		{Name: "cancel", Given: []proto.Message{requested()}, When: domain.CancelFulfilment{Reason: "order cancelled", Time: t0.Add(time.Hour)}, Then: []proto.Message{cancelled}},
		{Name: "cancel twice", Given: []proto.Message{requested(), cancelled}, When: domain.CancelFulfilment{Reason: "again", Time: t0}},
		{Name: "cancel after shipping", Given: []proto.Message{requested(), partial}, When: domain.CancelFulfilment{Reason: "order cancelled", Time: t0}, Err: estest.Precondition(domain.ReasonShipped)},
		{Name: "cancel unknown", When: domain.CancelFulfilment{Reason: "x"}, Err: domain.ErrNotRequested},

		{Name: "remove a unit", Given: []proto.Message{requested()}, When: domain.RemoveLines{Lines: []domain.Line{{LineID: "1", SKUID: "sku-a", Quantity: 1}}, Reason: "buyer", Time: t0.Add(time.Hour)},
			Then: []proto.Message{removed(false, domain.Line{LineID: "1", SKUID: "sku-a", Quantity: 1})}},
		{Name: "remove a line", Given: []proto.Message{requested()}, When: domain.RemoveLines{Lines: []domain.Line{{LineID: "3", Quantity: 1}}, Reason: "buyer", Time: t0.Add(time.Hour)},
			Then: []proto.Message{removed(false, domain.Line{LineID: "3", SKUID: "sku-c", Quantity: 1})}},
		{Name: "remove every unit closes", Given: []proto.Message{requested(), removed(false, domain.Line{LineID: "3", SKUID: "sku-c", Quantity: 1})},
			When: domain.RemoveLines{Lines: []domain.Line{{LineID: "1", Quantity: 2}}, Reason: "buyer", Time: t0.Add(time.Hour)},
			Then: []proto.Message{removed(true, domain.Line{LineID: "1", SKUID: "sku-a", Quantity: 2})}},
		{Name: "units shipped meanwhile are not removed", Given: []proto.Message{requested(), partial},
			When: domain.RemoveLines{Lines: []domain.Line{{LineID: "1", Quantity: 2}, {LineID: "3", Quantity: 1}}, Reason: "buyer", Time: t0.Add(time.Hour)},
			Then: []proto.Message{removed(false, domain.Line{LineID: "3", SKUID: "sku-c", Quantity: 1})}},
		{Name: "remove what shipped decides nothing", Given: []proto.Message{requested(), shippedAll()}, When: domain.RemoveLines{Lines: []domain.Line{{LineID: "1", Quantity: 2}}}},
		{Name: "remove more than is left removes what is left", Given: []proto.Message{requested(), removed(false, domain.Line{LineID: "1", SKUID: "sku-a", Quantity: 1})},
			When: domain.RemoveLines{Lines: []domain.Line{{LineID: "1", Quantity: 2}}, Reason: "buyer", Time: t0.Add(time.Hour)},
			Then: []proto.Message{removed(false, domain.Line{LineID: "1", SKUID: "sku-a", Quantity: 1})}},
		{Name: "remove from a cancelled fulfilment decides nothing", Given: []proto.Message{requested(), cancelled}, When: domain.RemoveLines{Lines: []domain.Line{{LineID: "1", Quantity: 1}}}},
		{Name: "ship a removed line", Given: []proto.Message{requested(), removed(false, domain.Line{LineID: "3", SKUID: "sku-c", Quantity: 1})}, When: ship("r1", "s1", "1234567890", whole),
			Err: estest.Invalid("packages[0].lines[1].line_id", "packages[0].evidence.units[2].line_id")},
		{Name: "ship a closed fulfilment", Given: []proto.Message{requested(), removed(true, domain.Line{LineID: "1", SKUID: "sku-a", Quantity: 2}, domain.Line{LineID: "3", SKUID: "sku-c", Quantity: 1})},
			When: ship("r1", "s1", "1234567890", whole), Err: estest.Precondition(domain.ReasonCancelled)},
		{Name: "the deadline of a closed fulfilment", Given: []proto.Message{requested(), removed(true, domain.Line{LineID: "1", SKUID: "sku-a", Quantity: 2}, domain.Line{LineID: "3", SKUID: "sku-c", Quantity: 1})},
			When: domain.MissShipBy{Deadline: t0.Add(3 * day), Now: t0.Add(3 * day)}},
		{Name: "what is left ships in full", Given: []proto.Message{requested(), removed(false, domain.Line{LineID: "3", SKUID: "sku-c", Quantity: 1})},
			When: ship("r1", "s1", "1234567890", pkg("x", l("1", 2))), Then: []proto.Message{func() proto.Message {
				e := proto.Clone(partial).(*fulfilmentv1.FulfilmentShipped)
				e.FullyShipped = true
				return e
			}()}},

		{Name: "change the address", Given: []proto.Message{requested()}, When: domain.ChangeAddress{Address: moved, Time: t0.Add(time.Hour)},
			Then: []proto.Message{&fulfilmentv1.FulfilmentAddressChanged{FulfilmentId: fid, OrderId: "o1", VendorId: "v1", ShippingAddress: moved, ChangeTime: ts(time.Hour), BuyerId: "b1"}}},
		{Name: "the same address decides nothing", Given: []proto.Message{requested()}, When: domain.ChangeAddress{Address: addr, Time: t0}},
		{Name: "a second change names the buyer too", Given: []proto.Message{requested(), &fulfilmentv1.FulfilmentAddressChanged{FulfilmentId: fid, ShippingAddress: moved, BuyerId: "b1"}},
			When: domain.ChangeAddress{Address: addr, Time: t0.Add(2 * time.Hour)},
			Then: []proto.Message{&fulfilmentv1.FulfilmentAddressChanged{FulfilmentId: fid, OrderId: "o1", VendorId: "v1", ShippingAddress: addr, ChangeTime: ts(2 * time.Hour), BuyerId: "b1"}}},
		{Name: "change the address after a shipment", Given: []proto.Message{requested(), partial}, When: domain.ChangeAddress{Address: moved, Time: t0}, Err: estest.Precondition(domain.ReasonShipped)},
		{Name: "change the address of a cancelled fulfilment", Given: []proto.Message{requested(), cancelled}, When: domain.ChangeAddress{Address: moved, Time: t0}, Err: estest.Precondition(domain.ReasonCancelled)},
	})
}

var moved = &typev1.Address{RecipientName: "Ada", AddressLines: []string{"9 New Road"}, Locality: "Berlin", CountryCode: "DE"}

// removed is the FulfilmentLinesRemoved of the buyer's cancellation of
// lines at t0+1h.
func removed(closed bool, lines ...domain.Line) *fulfilmentv1.FulfilmentLinesRemoved {
	return &fulfilmentv1.FulfilmentLinesRemoved{FulfilmentId: fid, OrderId: "o1", VendorId: "v1", Lines: domain.LinesProto(lines),
		Closed: closed, Reason: "buyer", RemoveTime: ts(time.Hour)}
}

func TestLotNumbersMayRepeat(t *testing.T) {
	p := domain.Package{Lines: []domain.Line{{LineID: "1", Quantity: 2}, {LineID: "3", Quantity: 1}}, Photos: []string{hash},
		Units: []domain.Unit{{LineID: "1", Lot: "LOT-7"}, {LineID: "1", Lot: "LOT-7"}, {LineID: "3", Serial: "c1", Lot: "LOT-9"}}}
	evs, err := domain.Decider.GivenWhenThen(fid, []proto.Message{requested()}, ship("r1", "s1", "1234567890", p))
	if err != nil || len(evs) != 1 {
		t.Fatalf("%v %v", evs, err)
	}
}

func TestStatusAndDelivery(t *testing.T) {
	day := 24 * time.Hour
	second := &fulfilmentv1.FulfilmentShipped{FulfilmentId: fid, ShipmentId: "s2", Carrier: "ups", TrackingNumber: "1Z999AA10123456784",
		Lines: domain.LinesProto([]domain.Line{{LineID: "3", SKUID: "sku-c", Quantity: 1}}), ShipTime: ts(2 * time.Hour), FullyShipped: true}
	first := shippedAll()
	first.Lines = domain.LinesProto([]domain.Line{{LineID: "1", SKUID: "sku-a", Quantity: 2}})
	first.FullyShipped = false
	f := domain.Decider.Fold(fid, nil)
	steps := []struct {
		event proto.Message
		want  domain.Status
	}{
		{requested(), domain.StatusRequested},
		{first, domain.StatusPartiallyShipped},
		{recorded("a1", domain.Delivered, day, pod), domain.StatusPartiallyShipped},
		{second, domain.StatusShipped},
		{&fulfilmentv1.TrackingEventRecorded{ShipmentId: "s2", CarrierEventId: "b1", Status: domain.ReturnedToSender, OccurTime: ts(2 * day)}, domain.StatusDeliveryFailed},
		{&fulfilmentv1.TrackingEventRecorded{ShipmentId: "s2", CarrierEventId: "b2", Status: domain.Delivered, OccurTime: ts(3 * day)}, domain.StatusDelivered},
	}
	for i, s := range steps {
		f = domain.Evolve(f, s.event)
		if got := f.Status(); got != s.want {
			t.Fatalf("step %d: status %v, want %v", i, got, s.want)
		}
	}
	d, ok := f.Delivery()
	if !ok || !d.Time.Equal(t0.Add(3*day)) || d.WithProof || d.ConfirmedByBuyer || strings.Join(d.CarrierEventIDs, ",") != "a1,b2" {
		t.Fatalf("delivery %+v", d)
	}
	// A proof arriving later for s2 makes the delivery one with proof.
	f = domain.Evolve(f, &fulfilmentv1.TrackingEventRecorded{ShipmentId: "s2", CarrierEventId: "b3", Status: domain.Delivered, OccurTime: ts(3*day + time.Minute), Proof: domain.ProofProto(pod)})
	if d, _ := f.Delivery(); !d.WithProof || strings.Join(d.CarrierEventIDs, ",") != "a1,b2,b3" {
		t.Fatalf("delivery after late proof %+v", d)
	}
	if p := f.Shipments[1].Progress(); p.Status != domain.Delivered || p.Delivery.CarrierEventID != "b2" || p.ProofScan != "b3" {
		t.Fatalf("progress %+v", p)
	}
	if f.DeadlinePending() || f.CanShip() {
		t.Fatal("a delivered fulfilment has no deadline")
	}
}
