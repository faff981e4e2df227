package domain_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

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
		CarrierEventId: id, Status: status, OccurTime: ts(at), Location: "Hub", Proof: domain.ProofProto(proof)}
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

	tests := []struct {
		name   string
		given  []proto.Message
		when   domain.Command
		then   []proto.Message
		err    error  // errors.Is
		field  string // InvalidError naming this field
		reason string // PreconditionError reason
		inUse  bool   // TrackingInUseError
	}{
		{name: "request", when: domain.RequestFulfilment{OrderID: "o1", VendorID: "v1", BuyerID: "b1", Lines: orderLines(), Address: addr, ShipBy: t0.Add(3 * day), Time: t0},
			then: []proto.Message{requested()}},
		{name: "request again decides nothing", given: []proto.Message{requested()}, when: domain.RequestFulfilment{OrderID: "o1", VendorID: "v1"}},
		{name: "request without lines", when: domain.RequestFulfilment{OrderID: "o1", VendorID: "v1", BuyerID: "b1", ShipBy: t0}, field: "lines"},
		{name: "ship before request", when: ship("r1", "s1", "1234567890", whole), err: domain.ErrNotRequested},

		{name: "ship everything", given: []proto.Message{requested()}, when: ship("r1", "s1", "1234567890", whole), then: []proto.Message{shippedAll()}},
		{name: "ship by SKU ids, upper-case hash", given: []proto.Message{requested()}, when: ship("r1", "s1", "1234567890", bySKU), then: []proto.Message{shippedAll()}},
		{name: "ship part", given: []proto.Message{requested()}, when: ship("r1", "s1", "1234567890", pkg("x", l("1", 2))), then: []proto.Message{partial}},
		{name: "same request again decides nothing", given: []proto.Message{requested(), shippedAll()}, when: ship("r1", "s2", "0000000000", whole)},
		{name: "ship cancelled", given: []proto.Message{requested(), cancelled}, when: ship("r1", "s1", "1234567890", whole), reason: domain.ReasonCancelled},
		{name: "ship fully shipped", given: []proto.Message{requested(), shippedAll()}, when: ship("r2", "s2", "1111111111", whole), reason: domain.ReasonShipped},
		{name: "ship with a stale shipment id", given: []proto.Message{requested(), partial}, when: ship("r2", "s1", "1111111111", pkg("y", l("3", 1))), err: domain.ErrShipmentRace},
		{name: "tracking number of an earlier shipment", given: []proto.Message{requested(), partial}, when: ship("r2", "s2", "1234567890", pkg("y", l("3", 1))), inUse: true},
		{name: "no packages", given: []proto.Message{requested()}, when: ship("r1", "s1", "1234567890"), field: "packages"},
		{name: "unknown line", given: []proto.Message{requested()}, when: ship("r1", "s1", "1234567890", pkg("x", l("2", 1))), field: "packages[0].lines[0].line_id"},
		{name: "unknown SKU", given: []proto.Message{requested()}, when: ship("r1", "s1", "1234567890", domain.Package{Lines: []domain.Line{{SKUID: "sku-z", Quantity: 1}}, Photos: []string{hash}}), field: "packages[0].lines[0].sku_id"},
		{name: "line and SKU disagree", given: []proto.Message{requested()}, when: ship("r1", "s1", "1234567890", domain.Package{Lines: []domain.Line{{LineID: "1", SKUID: "sku-c", Quantity: 1}}, Photos: []string{hash}}), field: "packages[0].lines[0].line_id"},
		{name: "more than ordered", given: []proto.Message{requested()}, when: ship("r1", "s1", "1234567890", pkg("x", l("1", 3))), field: "packages[0].lines[0].quantity"},
		{name: "more than ordered over two packages", given: []proto.Message{requested()}, when: ship("r1", "s1", "1234567890", pkg("x", l("1", 2)), pkg("y", l("1", 1))), field: "packages[1].lines[0].quantity"},
		{name: "more than left after an earlier shipment", given: []proto.Message{requested(), partial}, when: ship("r2", "s2", "1111111111", pkg("y", l("1", 1))), field: "packages[0].lines[0].quantity"},
		{name: "zero quantity", given: []proto.Message{requested()}, when: ship("r1", "s1", "1234567890", domain.Package{Lines: []domain.Line{l("1", 0)}, Photos: []string{hash}}), field: "packages[0].lines[0].quantity"},
		{name: "line twice in a package", given: []proto.Message{requested()}, when: ship("r1", "s1", "1234567890", pkg("x", l("1", 1), l("1", 1))), field: "packages[0].lines[1]"},
		{name: "no photos", given: []proto.Message{requested()}, when: ship("r1", "s1", "1234567890", noPhotos), field: "packages[0].evidence.photo_sha256"},
		{name: "bad photo hash", given: []proto.Message{requested()}, when: ship("r1", "s1", "1234567890", badHash), field: "packages[0].evidence.photo_sha256[0]"},
		{name: "fewer units than items", given: []proto.Message{requested()}, when: ship("r1", "s1", "1234567890", fewUnits), field: "packages[0].evidence.units"},
		{name: "unit without serial or lot", given: []proto.Message{requested()}, when: ship("r1", "s1", "1234567890", noSerial), field: "packages[0].evidence.units[0]"},
		{name: "unit of a line not in the package", given: []proto.Message{requested()}, when: ship("r1", "s1", "1234567890", strayUnit), field: "packages[0].evidence.units[2].line_id"},
		{name: "serial packed before", given: []proto.Message{requested(), partialOne}, when: ship("r2", "s2", "1111111111", pkg("x", l("1", 1))), field: "packages[0].evidence.units[0].serial_number"},
		{name: "serial twice in one shipment", given: []proto.Message{requested()}, when: ship("r1", "s1", "1234567890", pkg("x", l("1", 1)), pkg("x", l("1", 1))), field: "packages[1].evidence.units[0].serial_number"},

		{name: "scan for an unknown tracking number", given: []proto.Message{requested(), shippedAll()}, when: func() domain.RecordScan {
			s := scan("e1", domain.InTransit, 2*time.Hour, nil)
			s.TrackingNumber = "0000000000"
			return s
		}(), err: domain.ErrUnknownTracking},
		{name: "scan before shipping", given: []proto.Message{requested()}, when: scan("e1", domain.InTransit, 2*time.Hour, nil), err: domain.ErrUnknownTracking},
		{name: "first scan", given: []proto.Message{requested(), shippedAll()}, when: scan("e1", domain.PickedUp, 2*time.Hour, nil), then: []proto.Message{recorded("e1", domain.PickedUp, 2*time.Hour, nil)}},
		{name: "duplicate scan decides nothing", given: []proto.Message{requested(), shippedAll(), recorded("e1", domain.PickedUp, 2*time.Hour, nil)}, when: scan("e1", domain.PickedUp, 2*time.Hour, nil)},
		{name: "duplicate id with other content decides nothing", given: []proto.Message{requested(), shippedAll(), recorded("e1", domain.PickedUp, 2*time.Hour, nil)}, when: scan("e1", domain.Delivered, 3*time.Hour, nil)},
		{name: "delivered with proof", given: []proto.Message{requested(), shippedAll(), recorded("e1", domain.PickedUp, 2*time.Hour, nil)}, when: scan("e2", domain.Delivered, 50*time.Hour, pod),
			then: []proto.Message{recorded("e2", domain.Delivered, 50*time.Hour, pod), delivered(50*time.Hour, true, "e2")}},
		{name: "delivered without proof", given: []proto.Message{requested(), shippedAll()}, when: scan("e2", domain.Delivered, 50*time.Hour, nil),
			then: []proto.Message{recorded("e2", domain.Delivered, 50*time.Hour, nil), delivered(50*time.Hour, false, "e2")}},
		{name: "late in-transit after delivered is only recorded", given: []proto.Message{requested(), shippedAll(), recorded("e2", domain.Delivered, 50*time.Hour, pod)}, when: scan("e3", domain.InTransit, 60*time.Hour, nil),
			then: []proto.Message{recorded("e3", domain.InTransit, 60*time.Hour, nil)}},
		{name: "lost fails the shipment", given: []proto.Message{requested(), shippedAll()}, when: scan("e4", domain.Lost, 90*time.Hour, nil),
			then: []proto.Message{recorded("e4", domain.Lost, 90*time.Hour, nil), &fulfilmentv1.DeliveryFailed{FulfilmentId: fid, OrderId: "o1", VendorId: "v1", ShipmentId: "s1", Status: domain.Lost, CarrierEventId: "e4", FailTime: ts(90 * time.Hour)}}},
		{name: "lost after delivered is only recorded", given: []proto.Message{requested(), shippedAll(), recorded("e2", domain.Delivered, 50*time.Hour, nil)}, when: scan("e4", domain.Lost, 90*time.Hour, nil),
			then: []proto.Message{recorded("e4", domain.Lost, 90*time.Hour, nil)}},
		{name: "returned after lost fails nothing more", given: []proto.Message{requested(), shippedAll(), recorded("e4", domain.Lost, 90*time.Hour, nil)}, when: scan("e5", domain.ReturnedToSender, 80*time.Hour, nil),
			then: []proto.Message{recorded("e5", domain.ReturnedToSender, 80*time.Hour, nil)}},
		{name: "delivered after lost delivers", given: []proto.Message{requested(), shippedAll(), recorded("e4", domain.Lost, 90*time.Hour, nil)}, when: scan("e2", domain.Delivered, 95*time.Hour, pod),
			then: []proto.Message{recorded("e2", domain.Delivered, 95*time.Hour, pod), delivered(95*time.Hour, true, "e2")}},
		{name: "partial shipment delivered is not the fulfilment delivered", given: []proto.Message{requested(), partial}, when: scan("e2", domain.Delivered, 50*time.Hour, pod),
			then: []proto.Message{recorded("e2", domain.Delivered, 50*time.Hour, pod)}},
		{name: "proof on a non-delivered scan", given: []proto.Message{requested(), shippedAll()}, when: scan("e1", domain.OutForDelivery, 2*time.Hour, pod), field: "proof"},
		{name: "unknown status", given: []proto.Message{requested(), shippedAll()}, when: scan("e1", domain.TrackingStatus(42), 2*time.Hour, nil), field: "status"},
		{name: "unspecified status", given: []proto.Message{requested(), shippedAll()}, when: scan("e1", 0, 2*time.Hour, nil), field: "status"},
		{name: "scan in the future", given: []proto.Message{requested(), shippedAll()}, when: scan("e1", domain.InTransit, 40*24*time.Hour, nil), field: "occur_time"},
		{name: "scan without event id", given: []proto.Message{requested(), shippedAll()}, when: scan("", domain.InTransit, time.Hour, nil), field: "carrier_event_id"},
		{name: "proof with a bad signature hash", given: []proto.Message{requested(), shippedAll()}, when: scan("e2", domain.Delivered, time.Hour, &domain.Proof{SignatureSHA256: "x"}), field: "proof.signature_sha256"},

		{name: "receipt before shipping", given: []proto.Message{requested()}, when: domain.ConfirmReceipt{Time: t0}, reason: domain.ReasonNotShipped},
		{name: "receipt of a part", given: []proto.Message{requested(), partial}, when: domain.ConfirmReceipt{Time: t0}, reason: domain.ReasonNotShipped},
		{name: "receipt delivers", given: []proto.Message{requested(), shippedAll()}, when: domain.ConfirmReceipt{Time: t0.Add(3 * day)},
			then: []proto.Message{&fulfilmentv1.ReceiptConfirmed{FulfilmentId: fid, OrderId: "o1", BuyerId: "b1", ConfirmTime: ts(3 * day)},
				&fulfilmentv1.FulfilmentDelivered{FulfilmentId: fid, OrderId: "o1", VendorId: "v1", BuyerId: "b1", DeliverTime: ts(3 * day), WithProof: true, ConfirmedByBuyer: true}}},
		{name: "receipt after the carrier delivered", given: []proto.Message{requested(), shippedAll(), recorded("e2", domain.Delivered, 50*time.Hour, nil)}, when: domain.ConfirmReceipt{Time: t0.Add(3 * day)},
			then: []proto.Message{&fulfilmentv1.ReceiptConfirmed{FulfilmentId: fid, OrderId: "o1", BuyerId: "b1", ConfirmTime: ts(3 * day)}}},
		{name: "receipt twice", given: []proto.Message{requested(), shippedAll(), &fulfilmentv1.ReceiptConfirmed{ConfirmTime: ts(day)}}, when: domain.ConfirmReceipt{Time: t0.Add(3 * day)}},
		{name: "receipt of a cancelled fulfilment", given: []proto.Message{requested(), cancelled}, when: domain.ConfirmReceipt{Time: t0}, reason: domain.ReasonCancelled},

		{name: "deadline with grace", given: []proto.Message{requested()}, when: domain.MissShipBy{Deadline: t0.Add(3 * day), Now: t0.Add(3 * day), Policy: grace}, then: []proto.Message{graceMissed}},
		{name: "deadline after grace cancels", given: []proto.Message{requested(), graceMissed}, when: domain.MissShipBy{Deadline: t0.Add(4 * day), Now: t0.Add(5 * day), Policy: grace},
			then: []proto.Message{&fulfilmentv1.ShipByDeadlineMissed{FulfilmentId: fid, OrderId: "o1", VendorId: "v1", ShipByTime: ts(4 * day), Action: "cancel"},
				&fulfilmentv1.FulfilmentCancelled{FulfilmentId: fid, OrderId: "o1", VendorId: "v1", Reason: domain.ReasonShipByMissed, CancelTime: ts(5 * day)}}},
		{name: "deadline with the cancel policy", given: []proto.Message{requested()}, when: domain.MissShipBy{Deadline: t0.Add(3 * day), Now: t0.Add(3 * day)},
			then: []proto.Message{&fulfilmentv1.ShipByDeadlineMissed{FulfilmentId: fid, OrderId: "o1", VendorId: "v1", ShipByTime: ts(3 * day), Action: "cancel"},
				&fulfilmentv1.FulfilmentCancelled{FulfilmentId: fid, OrderId: "o1", VendorId: "v1", Reason: domain.ReasonShipByMissed, CancelTime: ts(3 * day)}}},
		{name: "deadline of a partly shipped fulfilment is flagged", given: []proto.Message{requested(), partial}, when: domain.MissShipBy{Deadline: t0.Add(3 * day), Now: t0.Add(3 * day)},
			then: []proto.Message{&fulfilmentv1.ShipByDeadlineMissed{FulfilmentId: fid, OrderId: "o1", VendorId: "v1", ShipByTime: ts(3 * day), Action: "flag"}}},
		{name: "moved deadline decides nothing", given: []proto.Message{requested(), graceMissed}, when: domain.MissShipBy{Deadline: t0.Add(3 * day), Now: t0.Add(5 * day), Policy: grace}},
		{name: "deadline not yet due", given: []proto.Message{requested()}, when: domain.MissShipBy{Deadline: t0.Add(3 * day), Now: t0.Add(2 * day)}},
		{name: "deadline of a shipped fulfilment", given: []proto.Message{requested(), shippedAll()}, when: domain.MissShipBy{Deadline: t0.Add(3 * day), Now: t0.Add(3 * day)}},
		{name: "deadline of a cancelled fulfilment", given: []proto.Message{requested(), cancelled}, when: domain.MissShipBy{Deadline: t0.Add(3 * day), Now: t0.Add(3 * day)}},

		{name: "cancel", given: []proto.Message{requested()}, when: domain.CancelFulfilment{Reason: "order cancelled", Time: t0.Add(time.Hour)}, then: []proto.Message{cancelled}},
		{name: "cancel twice", given: []proto.Message{requested(), cancelled}, when: domain.CancelFulfilment{Reason: "again", Time: t0}},
		{name: "cancel after shipping", given: []proto.Message{requested(), partial}, when: domain.CancelFulfilment{Reason: "order cancelled", Time: t0}, reason: domain.ReasonShipped},
		{name: "cancel unknown", when: domain.CancelFulfilment{Reason: "x"}, err: domain.ErrNotRequested},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := domain.Decider.GivenWhenThen(fid, tt.given, tt.when)
			switch {
			case tt.err != nil:
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
			case tt.field != "":
				var inv *domain.InvalidError
				if !errors.As(err, &inv) || inv.Violations[0].Field != tt.field {
					t.Fatalf("err = %v, want an invalid %s", err, tt.field)
				}
			case tt.reason != "":
				var pre *domain.PreconditionError
				if !errors.As(err, &pre) || pre.Reason != tt.reason {
					t.Fatalf("err = %v, want precondition %s", err, tt.reason)
				}
			case tt.inUse:
				var iu *domain.TrackingInUseError
				if !errors.As(err, &iu) || !iu.SameFulfilment || iu.ShipmentID != "s1" {
					t.Fatalf("err = %v, want tracking in use by s1", err)
				}
			case err != nil:
				t.Fatalf("err = %v", err)
			}
			if diff := cmp.Diff(tt.then, got, protocmp.Transform()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
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
