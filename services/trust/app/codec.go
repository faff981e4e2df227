package app

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/money"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	"github.com/custody/custody/services/trust/domain"
)

// The stored read models' values are a hand binary encoding: varints,
// length-prefixed strings and lists, times as seconds and nanoseconds
// since 1970 (a zero time as one byte), money as currency and minor units,
// and the event messages a claim keeps as their protobuf wire bytes. A
// value starts with a version byte; its shape is part of each read
// model's Version.

// codecVersion is the first byte of every value, so a value of another
// shape is an error, not a silently wrong answer.
const codecVersion = 1

// errCorrupt is a value that does not decode.
var errCorrupt = errors.New("corrupt value")

type encoder struct{ b []byte }

func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string)  { e.uint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) bytes(b []byte) {
	e.uint(uint64(len(b)))
	e.b = append(e.b, b...)
}

func (e *encoder) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.b = append(e.b, 0)
		return
	}
	e.b = append(e.b, 1)
	e.int(t.Unix())
	e.uint(uint64(t.Nanosecond()))
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
	d.b = nil
}

func (d *decoder) uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// n reads a length or count, which cannot exceed what is left.
func (d *decoder) n() int {
	v := d.uint()
	if v > uint64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(v)
}

func (d *decoder) raw() []byte {
	n := d.n()
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string { return string(d.raw()) }

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail()
	return false
}

func (d *decoder) time() time.Time {
	switch d.byte() {
	case 0:
		return time.Time{}
	case 1:
		sec := d.int()
		nsec := d.uint()
		if nsec >= 1e9 {
			d.fail()
			return time.Time{}
		}
		return time.Unix(sec, int64(nsec)).UTC()
	}
	d.fail()
	return time.Time{}
}

func (e *encoder) strs(ss []string) {
	e.uint(uint64(len(ss)))
	for _, s := range ss {
		e.str(s)
	}
}

func (d *decoder) strs() []string {
	n := d.n()
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.str()
	}
	return out
}

func (e *encoder) money(m money.Money) {
	e.str(m.Currency)
	e.int(m.Minor)
}

func (d *decoder) money() money.Money { return money.Money{Currency: d.str(), Minor: d.int()} }

// begin starts a value.
func begin(size int) *encoder {
	e := &encoder{b: make([]byte, 0, size)}
	e.b = append(e.b, codecVersion)
	return e
}

// open starts reading a value.
func open(b []byte) *decoder {
	d := &decoder{b: b}
	if d.byte() != codecVersion {
		d.fail()
	}
	return d
}

// end is the error of a value read whole, or of one with bytes left over.
func (d *decoder) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = errCorrupt
	}
	return d.err
}

// count reads a list's length; nil-making callers read 0 as no list.
func (d *decoder) count() int { return d.n() }

// msg writes an optional message: absent, or its wire bytes.
func (e *encoder) msg(m proto.Message) error {
	if m == nil || !m.ProtoReflect().IsValid() {
		e.bool(false)
		return nil
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return err
	}
	e.bool(true)
	e.bytes(b)
	return nil
}

// msgs writes a list of messages.
func msgs[M proto.Message](e *encoder, ms []M) error {
	e.uint(uint64(len(ms)))
	for _, m := range ms {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			return err
		}
		e.bytes(b)
	}
	return nil
}

// readMsg reads an optional message (nil when absent).
func readMsg[M interface {
	proto.Message
	*T
}, T any](d *decoder) M {
	if !d.bool() {
		return nil
	}
	m := M(new(T))
	if err := proto.Unmarshal(d.raw(), m); err != nil && d.err == nil {
		d.err = err
	}
	return m
}

// readMsgs reads a list of messages (nil when empty).
func readMsgs[M interface {
	proto.Message
	*T
}, T any](d *decoder) []M {
	n := d.count()
	if n == 0 {
		return nil
	}
	out := make([]M, n)
	for i := range out {
		out[i] = M(new(T))
		if err := proto.Unmarshal(d.raw(), out[i]); err != nil && d.err == nil {
			d.err = err
		}
	}
	return out
}

// The custody record's order facts.

func encodeOrder(o domain.OrderFacts) []byte {
	e := begin(128)
	e.str(o.OrderID)
	e.str(o.BuyerID)
	e.money(o.Captured)
	e.uint(uint64(len(o.Lines)))
	for _, l := range o.Lines {
		e.str(l.LineID)
		e.str(l.SKUID)
		e.str(l.VendorID)
		e.int(l.Quantity)
		e.money(l.UnitPrice)
		e.money(l.LineTotal)
	}
	e.str(o.ConfirmedEventID)
	e.str(o.CancelledEventID)
	return e.b
}

func decodeOrder(b []byte) (domain.OrderFacts, error) {
	d := open(b)
	o := domain.OrderFacts{OrderID: d.str(), BuyerID: d.str(), Captured: d.money()}
	if n := d.count(); n > 0 {
		o.Lines = make([]domain.OrderLine, n)
		for i := range o.Lines {
			o.Lines[i] = domain.OrderLine{LineID: d.str(), SKUID: d.str(), VendorID: d.str(), Quantity: d.int(),
				UnitPrice: d.money(), LineTotal: d.money()}
		}
	}
	o.ConfirmedEventID = d.str()
	o.CancelledEventID = d.str()
	return o, d.end()
}

// The custody record's fulfilments.

func encodeFulfilment(f *domain.Fulfilment) []byte {
	e := begin(256)
	e.str(f.FulfilmentID)
	e.str(f.OrderID)
	e.str(f.VendorID)
	e.str(f.BuyerID)
	e.time(f.ShipBy)
	e.str(f.RequestedEventID)
	e.strs(f.MissedEventIDs)
	e.str(f.CancelledEventID)
	e.uint(uint64(len(f.Shipments)))
	for _, s := range f.Shipments {
		e.str(s.ShipmentID)
		e.str(s.EventID)
		e.str(s.Carrier)
		e.str(s.TrackingNumber)
		e.uint(uint64(len(s.Lines)))
		for _, l := range s.Lines {
			e.str(l.LineID)
			e.int(l.Quantity)
		}
		e.uint(uint64(len(s.Units)))
		for _, u := range s.Units {
			e.str(u.LineID)
			e.str(u.SerialNumber)
			e.str(u.LotNumber)
		}
		e.int(int64(s.Photos))
		e.time(s.ShipTime)
		e.time(s.ExpectedDelivery)
		e.uint(uint64(len(s.Scans)))
		for _, sc := range s.Scans {
			e.str(sc.EventID)
			e.str(sc.CarrierEventID)
			e.int(int64(sc.Status))
			e.time(sc.OccurTime)
			e.bool(sc.WithProof)
		}
		e.bool(s.Failure != nil)
		if s.Failure != nil {
			e.str(s.Failure.EventID)
			e.int(int64(s.Failure.Status))
			e.time(s.Failure.Time)
		}
	}
	e.bool(f.Delivery != nil)
	if d := f.Delivery; d != nil {
		e.str(d.EventID)
		e.time(d.Time)
		e.bool(d.WithProof)
		e.bool(d.ByBuyer)
		e.strs(d.CarrierEventIDs)
	}
	e.bool(f.Receipt != nil)
	if r := f.Receipt; r != nil {
		e.str(r.EventID)
		e.time(r.Time)
	}
	return e.b
}

func decodeFulfilment(b []byte) (domain.Fulfilment, error) {
	d := open(b)
	f := domain.Fulfilment{FulfilmentID: d.str(), OrderID: d.str(), VendorID: d.str(), BuyerID: d.str(), ShipBy: d.time(),
		RequestedEventID: d.str(), MissedEventIDs: d.strs(), CancelledEventID: d.str()}
	if n := d.count(); n > 0 {
		f.Shipments = make([]domain.Shipment, n)
		for i := range f.Shipments {
			s := &f.Shipments[i]
			s.ShipmentID, s.EventID, s.Carrier, s.TrackingNumber = d.str(), d.str(), d.str(), d.str()
			if n := d.count(); n > 0 {
				s.Lines = make([]domain.ShippedLine, n)
				for j := range s.Lines {
					s.Lines[j] = domain.ShippedLine{LineID: d.str(), Quantity: d.int()}
				}
			}
			if n := d.count(); n > 0 {
				s.Units = make([]domain.PackedUnit, n)
				for j := range s.Units {
					s.Units[j] = domain.PackedUnit{LineID: d.str(), SerialNumber: d.str(), LotNumber: d.str()}
				}
			}
			s.Photos = int(d.int())
			s.ShipTime = d.time()
			s.ExpectedDelivery = d.time()
			if n := d.count(); n > 0 {
				s.Scans = make([]domain.Scan, n)
				for j := range s.Scans {
					s.Scans[j] = domain.Scan{EventID: d.str(), CarrierEventID: d.str(), Status: fulfilmentv1.TrackingStatus(d.int()),
						OccurTime: d.time(), WithProof: d.bool()}
				}
			}
			if d.bool() {
				s.Failure = &domain.Failure{EventID: d.str(), Status: fulfilmentv1.TrackingStatus(d.int()), Time: d.time()}
			}
		}
	}
	if d.bool() {
		f.Delivery = &domain.Delivery{EventID: d.str(), Time: d.time(), WithProof: d.bool(), ByBuyer: d.bool(), CarrierEventIDs: d.strs()}
	}
	if d.bool() {
		f.Receipt = &domain.Receipt{EventID: d.str(), Time: d.time()}
	}
	return f, d.end()
}

// The claims of an order (a claims aggregate's state, with its revision).

func encodeCase(cs *domain.Case) ([]byte, error) {
	e := begin(512)
	e.str(cs.OrderID)
	e.money(cs.Captured)
	e.money(cs.Refunded)
	keys := make([]string, 0, len(cs.LineRefunded))
	for k := range cs.LineRefunded {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	e.uint(uint64(len(keys)))
	for _, k := range keys {
		e.str(k)
		e.int(cs.LineRefunded[k])
	}
	e.int(int64(cs.RefundCount))
	e.uint(cs.Revision)
	e.uint(uint64(len(cs.Claims)))
	for _, c := range cs.Claims {
		if err := encodeClaim(e, c); err != nil {
			return nil, fmt.Errorf("claim %s: %w", c.ID, err)
		}
	}
	return e.b, nil
}

func encodeClaim(e *encoder, c *domain.Claim) error {
	e.str(c.ID)
	e.str(c.OrderID)
	e.str(c.FulfilmentID)
	e.str(c.VendorID)
	e.str(c.BuyerID)
	e.int(int64(c.Reason))
	e.uint(uint64(len(c.Lines)))
	for _, l := range c.Lines {
		e.str(l.LineID)
		e.str(l.SKUID)
		e.int(l.Quantity)
		e.money(l.Amount)
	}
	e.money(c.Claimed)
	e.int(int64(c.State))
	e.time(c.OpenTime)
	e.time(c.DueAt)
	e.money(c.Offer)
	e.bool(c.CounterfeitConfirmed)
	e.money(c.Refunded)
	e.time(c.UpdateTime)
	e.uint(c.Revision)
	return errors.Join(e.msg(c.Evidence), msgs(e, c.Assessments), msgs(e, c.Responses), msgs(e, c.Escalations),
		e.msg(c.Resolution), e.msg(c.ReturnAuthorised), e.msg(c.ReturnShipped), e.msg(c.ReturnReceived),
		msgs(e, c.Refunds), e.msg(c.Closed))
}

func decodeCase(b []byte) (domain.Case, error) {
	d := open(b)
	cs := domain.Case{OrderID: d.str(), Captured: d.money(), Refunded: d.money(), LineRefunded: map[string]int64{}}
	for range d.count() {
		k := d.str()
		cs.LineRefunded[k] = d.int()
	}
	cs.RefundCount = int(d.int())
	cs.Revision = d.uint()
	if n := d.count(); n > 0 {
		cs.Claims = make([]*domain.Claim, n)
		for i := range cs.Claims {
			cs.Claims[i] = decodeClaim(d)
		}
	}
	return cs, d.end()
}

func decodeClaim(d *decoder) *domain.Claim {
	c := &domain.Claim{ID: d.str(), OrderID: d.str(), FulfilmentID: d.str(), VendorID: d.str(), BuyerID: d.str(),
		Reason: trustv1.ClaimReason(d.int())}
	if n := d.count(); n > 0 {
		c.Lines = make([]domain.ClaimLine, n)
		for i := range c.Lines {
			c.Lines[i] = domain.ClaimLine{LineID: d.str(), SKUID: d.str(), Quantity: d.int(), Amount: d.money()}
		}
	}
	c.Claimed = d.money()
	c.State = domain.State(d.int())
	c.OpenTime = d.time()
	c.DueAt = d.time()
	c.Offer = d.money()
	c.CounterfeitConfirmed = d.bool()
	c.Refunded = d.money()
	c.UpdateTime = d.time()
	c.Revision = d.uint()
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
	e.str(v.ID)
	e.str(v.VendorID)
	c := v.Counts
	for _, n := range []int64{c.Fulfilments, c.ShippedOnTime, c.DeadlinesMissed, c.TrackedShipments, c.Shipments, c.Delivered,
		c.DeliveryFailures, c.Claims, c.ClaimsLost, c.CounterfeitsConfirmed, c.Responses, c.ResponseSeconds} {
		e.int(n)
	}
	e.int(int64(v.Score))
	e.str(string(v.Tier))
	b := v.Breakdown
	for _, n := range []int64{b.OnTime, b.Tracking, b.Delivery, b.Claims, b.Response, b.CounterfeitPenalty} {
		e.int(n)
	}
	e.time(v.UpdateTime)
	e.uint(v.Revision)
	return e.b
}

func decodeVendor(b []byte) (domain.VendorTrust, error) {
	d := open(b)
	v := domain.VendorTrust{ID: d.str(), VendorID: d.str()}
	c := &v.Counts
	for _, n := range []*int64{&c.Fulfilments, &c.ShippedOnTime, &c.DeadlinesMissed, &c.TrackedShipments, &c.Shipments, &c.Delivered,
		&c.DeliveryFailures, &c.Claims, &c.ClaimsLost, &c.CounterfeitsConfirmed, &c.Responses, &c.ResponseSeconds} {
		*n = d.int()
	}
	v.Score = int32(d.int())
	v.Tier = domain.Tier(d.str())
	bd := &v.Breakdown
	for _, n := range []*int64{&bd.OnTime, &bd.Tracking, &bd.Delivery, &bd.Claims, &bd.Response, &bd.CounterfeitPenalty} {
		*n = d.int()
	}
	v.UpdateTime = d.time()
	v.Revision = d.uint()
	return v, d.end()
}
