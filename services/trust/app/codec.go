package app

import (
	"errors"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/kv"
	"github.com/custody/custody/pkg/money"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	"github.com/custody/custody/services/trust/domain"
)

// The read models' values are in the stored read models' binary encoding
// (pkg/kv, codec.go), money as currency and minor units, the event
// messages a claim keeps as their protobuf wire bytes. Their shape is part
// of each read model's Version.

// codecVersion is the first byte of every value, so a value of another
// shape is an error, not a silently wrong answer.
const codecVersion = 1

type encoder struct{ kv.Encoder }

type decoder struct{ kv.Decoder }

func (e *encoder) money(m money.Money) {
	e.Str(m.Currency)
	e.Int(m.Minor)
}

func (d *decoder) money() money.Money { return money.Money{Currency: d.Str(), Minor: d.Int()} }

// begin starts a value.
func begin(size int) *encoder { return &encoder{kv.NewEncoder(codecVersion, size)} }

// open starts reading a value.
func open(b []byte) *decoder { return &decoder{kv.NewDecoder(b, codecVersion)} }

// msg writes an optional message: absent, or its wire bytes.
func (e *encoder) msg(m proto.Message) error {
	if m == nil || !m.ProtoReflect().IsValid() {
		e.Bool(false)
		return nil
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return err
	}
	e.Bool(true)
	e.Bytes(b)
	return nil
}

// msgs writes a list of messages.
func msgs[M proto.Message](e *encoder, ms []M) error {
	e.Uint(uint64(len(ms)))
	for _, m := range ms {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			return err
		}
		e.Bytes(b)
	}
	return nil
}

// readMsg reads an optional message (nil when absent).
func readMsg[M interface {
	proto.Message
	*T
}, T any](d *decoder) M {
	if !d.Bool() {
		return nil
	}
	m := M(new(T))
	if err := proto.Unmarshal(d.Raw(), m); err != nil {
		d.Fail(err)
	}
	return m
}

// readMsgs reads a list of messages (nil when empty).
func readMsgs[M interface {
	proto.Message
	*T
}, T any](d *decoder) []M {
	n := d.N()
	if n == 0 {
		return nil
	}
	out := make([]M, n)
	for i := range out {
		out[i] = M(new(T))
		if err := proto.Unmarshal(d.Raw(), out[i]); err != nil {
			d.Fail(err)
		}
	}
	return out
}

// The custody record's order facts.

func encodeOrder(o domain.OrderFacts) []byte {
	e := begin(128)
	e.Str(o.OrderID)
	e.Str(o.BuyerID)
	e.money(o.Captured)
	e.Uint(uint64(len(o.Lines)))
	for _, l := range o.Lines {
		e.Str(l.LineID)
		e.Str(l.SKUID)
		e.Str(l.VendorID)
		e.Int(l.Quantity)
		e.money(l.UnitPrice)
		e.money(l.LineTotal)
		e.Int(l.Cancelled)
	}
	e.Str(o.ConfirmedEventID)
	e.Str(o.CancelledEventID)
	e.Uint(uint64(len(o.LinesCancelledEventIDs)))
	for _, id := range o.LinesCancelledEventIDs {
		e.Str(id)
	}
	return e.B
}

func decodeOrder(b []byte) (domain.OrderFacts, error) {
	d := open(b)
	o := domain.OrderFacts{OrderID: d.Str(), BuyerID: d.Str(), Captured: d.money()}
	if n := d.N(); n > 0 {
		o.Lines = make([]domain.OrderLine, n)
		for i := range o.Lines {
			o.Lines[i] = domain.OrderLine{LineID: d.Str(), SKUID: d.Str(), VendorID: d.Str(), Quantity: d.Int(),
				UnitPrice: d.money(), LineTotal: d.money(), Cancelled: d.Int()}
		}
	}
	o.ConfirmedEventID = d.Str()
	o.CancelledEventID = d.Str()
	if n := d.N(); n > 0 {
		o.LinesCancelledEventIDs = make([]string, n)
		for i := range o.LinesCancelledEventIDs {
			o.LinesCancelledEventIDs[i] = d.Str()
		}
	}
	return o, d.End()
}

// The custody record's fulfilments.

func encodeFulfilment(f *domain.Fulfilment) []byte {
	e := begin(256)
	e.Str(f.FulfilmentID)
	e.Str(f.OrderID)
	e.Str(f.VendorID)
	e.Str(f.BuyerID)
	e.Time(f.ShipBy)
	e.Str(f.RequestedEventID)
	e.Strs(f.MissedEventIDs)
	e.Str(f.CancelledEventID)
	e.Uint(uint64(len(f.Shipments)))
	for _, s := range f.Shipments {
		e.Str(s.ShipmentID)
		e.Str(s.EventID)
		e.Str(s.Carrier)
		e.Str(s.TrackingNumber)
		e.Uint(uint64(len(s.Lines)))
		for _, l := range s.Lines {
			e.Str(l.LineID)
			e.Int(l.Quantity)
		}
		e.Uint(uint64(len(s.Units)))
		for _, u := range s.Units {
			e.Str(u.LineID)
			e.Str(u.SerialNumber)
			e.Str(u.LotNumber)
		}
		e.Int(int64(s.Photos))
		e.Time(s.ShipTime)
		e.Time(s.ExpectedDelivery)
		e.Uint(uint64(len(s.Scans)))
		for _, sc := range s.Scans {
			e.Str(sc.EventID)
			e.Str(sc.CarrierEventID)
			e.Int(int64(sc.Status))
			e.Time(sc.OccurTime)
			e.Bool(sc.WithProof)
		}
		e.Bool(s.Failure != nil)
		if s.Failure != nil {
			e.Str(s.Failure.EventID)
			e.Int(int64(s.Failure.Status))
			e.Time(s.Failure.Time)
		}
	}
	e.Bool(f.Delivery != nil)
	if d := f.Delivery; d != nil {
		e.Str(d.EventID)
		e.Time(d.Time)
		e.Bool(d.WithProof)
		e.Bool(d.ByBuyer)
		e.Strs(d.CarrierEventIDs)
	}
	e.Bool(f.Receipt != nil)
	if r := f.Receipt; r != nil {
		e.Str(r.EventID)
		e.Time(r.Time)
	}
	return e.B
}

func decodeFulfilment(b []byte) (domain.Fulfilment, error) {
	d := open(b)
	f := domain.Fulfilment{FulfilmentID: d.Str(), OrderID: d.Str(), VendorID: d.Str(), BuyerID: d.Str(), ShipBy: d.Time(),
		RequestedEventID: d.Str(), MissedEventIDs: d.Strs(), CancelledEventID: d.Str()}
	if n := d.N(); n > 0 {
		f.Shipments = make([]domain.Shipment, n)
		for i := range f.Shipments {
			s := &f.Shipments[i]
			s.ShipmentID, s.EventID, s.Carrier, s.TrackingNumber = d.Str(), d.Str(), d.Str(), d.Str()
			if n := d.N(); n > 0 {
				s.Lines = make([]domain.ShippedLine, n)
				for j := range s.Lines {
					s.Lines[j] = domain.ShippedLine{LineID: d.Str(), Quantity: d.Int()}
				}
			}
			if n := d.N(); n > 0 {
				s.Units = make([]domain.PackedUnit, n)
				for j := range s.Units {
					s.Units[j] = domain.PackedUnit{LineID: d.Str(), SerialNumber: d.Str(), LotNumber: d.Str()}
				}
			}
			s.Photos = int(d.Int())
			s.ShipTime = d.Time()
			s.ExpectedDelivery = d.Time()
			if n := d.N(); n > 0 {
				s.Scans = make([]domain.Scan, n)
				for j := range s.Scans {
					s.Scans[j] = domain.Scan{EventID: d.Str(), CarrierEventID: d.Str(), Status: fulfilmentv1.TrackingStatus(d.Int()),
						OccurTime: d.Time(), WithProof: d.Bool()}
				}
			}
			if d.Bool() {
				s.Failure = &domain.Failure{EventID: d.Str(), Status: fulfilmentv1.TrackingStatus(d.Int()), Time: d.Time()}
			}
		}
	}
	if d.Bool() {
		f.Delivery = &domain.Delivery{EventID: d.Str(), Time: d.Time(), WithProof: d.Bool(), ByBuyer: d.Bool(), CarrierEventIDs: d.Strs()}
	}
	if d.Bool() {
		f.Receipt = &domain.Receipt{EventID: d.Str(), Time: d.Time()}
	}
	return f, d.End()
}

// The claims of an order (a claims aggregate's state, with its revision).

func encodeCase(cs *domain.Case) ([]byte, error) {
	e := begin(512)
	e.Str(cs.OrderID)
	e.money(cs.Captured)
	e.money(cs.Refunded)
	keys := make([]string, 0, len(cs.LineRefunded))
	for k := range cs.LineRefunded {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	e.Uint(uint64(len(keys)))
	for _, k := range keys {
		e.Str(k)
		e.Int(cs.LineRefunded[k])
	}
	e.Int(int64(cs.RefundCount))
	e.Uint(cs.Revision)
	e.Uint(uint64(len(cs.Claims)))
	for _, c := range cs.Claims {
		if err := encodeClaim(e, c); err != nil {
			return nil, fmt.Errorf("claim %s: %w", c.ID, err)
		}
	}
	return e.B, nil
}

func encodeClaim(e *encoder, c *domain.Claim) error {
	e.Str(c.ID)
	e.Str(c.OrderID)
	e.Str(c.FulfilmentID)
	e.Str(c.VendorID)
	e.Str(c.BuyerID)
	e.Int(int64(c.Reason))
	e.Uint(uint64(len(c.Lines)))
	for _, l := range c.Lines {
		e.Str(l.LineID)
		e.Str(l.SKUID)
		e.Int(l.Quantity)
		e.money(l.Amount)
	}
	e.money(c.Claimed)
	e.Int(int64(c.State))
	e.Time(c.OpenTime)
	e.Time(c.DueAt)
	e.money(c.Offer)
	e.Bool(c.CounterfeitConfirmed)
	e.money(c.Refunded)
	e.Time(c.UpdateTime)
	e.Uint(c.Revision)
	return errors.Join(e.msg(c.Evidence), msgs(e, c.Assessments), msgs(e, c.Responses), msgs(e, c.Escalations),
		e.msg(c.Resolution), e.msg(c.ReturnAuthorised), e.msg(c.ReturnShipped), e.msg(c.ReturnReceived),
		msgs(e, c.Refunds), e.msg(c.Closed))
}

func decodeCase(b []byte) (domain.Case, error) {
	d := open(b)
	cs := domain.Case{OrderID: d.Str(), Captured: d.money(), Refunded: d.money(), LineRefunded: map[string]int64{}}
	for range d.N() {
		k := d.Str()
		cs.LineRefunded[k] = d.Int()
	}
	cs.RefundCount = int(d.Int())
	cs.Revision = d.Uint()
	if n := d.N(); n > 0 {
		cs.Claims = make([]*domain.Claim, n)
		for i := range cs.Claims {
			cs.Claims[i] = decodeClaim(d)
		}
	}
	return cs, d.End()
}

func decodeClaim(d *decoder) *domain.Claim {
	c := &domain.Claim{ID: d.Str(), OrderID: d.Str(), FulfilmentID: d.Str(), VendorID: d.Str(), BuyerID: d.Str(),
		Reason: trustv1.ClaimReason(d.Int())}
	if n := d.N(); n > 0 {
		c.Lines = make([]domain.ClaimLine, n)
		for i := range c.Lines {
			c.Lines[i] = domain.ClaimLine{LineID: d.Str(), SKUID: d.Str(), Quantity: d.Int(), Amount: d.money()}
		}
	}
	c.Claimed = d.money()
	c.State = domain.State(d.Int())
	c.OpenTime = d.Time()
	c.DueAt = d.Time()
	c.Offer = d.money()
	c.CounterfeitConfirmed = d.Bool()
	c.Refunded = d.money()
	c.UpdateTime = d.Time()
	c.Revision = d.Uint()
	c.Evidence = readMsg[*trustv1.Evidence](d)
	c.Assessments = readMsgs[*trustv1.ClaimAssessed](d)
	c.Responses = readMsgs[*trustv1.ClaimResponded](d)
	c.Escalations = readMsgs[*trustv1.ClaimEscalated](d)
	c.Resolution = readMsg[*trustv1.ClaimResolved](d)
	c.ReturnAuthorised = readMsg[*trustv1.ReturnAuthorised](d)
	c.ReturnShipped = readMsg[*trustv1.ReturnShipped](d)
	c.ReturnReceived = readMsg[*trustv1.ReturnReceived](d)
	c.Refunds = readMsgs[*trustv1.RefundIssued](d)
	c.Closed = readMsg[*trustv1.ClaimClosed](d)
	return c
}

// A vendor's trust.

func encodeVendor(v *domain.VendorTrust) []byte {
	e := begin(128)
	e.Str(v.ID)
	e.Str(v.VendorID)
	c := v.Counts
	for _, n := range []int64{c.Fulfilments, c.ShippedOnTime, c.DeadlinesMissed, c.TrackedShipments, c.Shipments, c.Delivered,
		c.DeliveryFailures, c.Claims, c.ClaimsLost, c.CounterfeitsConfirmed, c.Responses, c.ResponseSeconds} {
		e.Int(n)
	}
	e.Int(int64(v.Score))
	e.Str(string(v.Tier))
	b := v.Breakdown
	for _, n := range []int64{b.OnTime, b.Tracking, b.Delivery, b.Claims, b.Response, b.CounterfeitPenalty} {
		e.Int(n)
	}
	e.Time(v.UpdateTime)
	e.Uint(v.Revision)
	return e.B
}

func decodeVendor(b []byte) (domain.VendorTrust, error) {
	d := open(b)
	v := domain.VendorTrust{ID: d.Str(), VendorID: d.Str()}
	c := &v.Counts
	for _, n := range []*int64{&c.Fulfilments, &c.ShippedOnTime, &c.DeadlinesMissed, &c.TrackedShipments, &c.Shipments, &c.Delivered,
		&c.DeliveryFailures, &c.Claims, &c.ClaimsLost, &c.CounterfeitsConfirmed, &c.Responses, &c.ResponseSeconds} {
		*n = d.Int()
	}
	v.Score = int32(d.Int())
	v.Tier = domain.Tier(d.Str())
	bd := &v.Breakdown
	for _, n := range []*int64{&bd.OnTime, &bd.Tracking, &bd.Delivery, &bd.Claims, &bd.Response, &bd.CounterfeitPenalty} {
		*n = d.Int()
	}
	v.UpdateTime = d.Time()
	v.Revision = d.Uint()
	return v, d.End()
}
