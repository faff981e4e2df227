package app

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/kv"
	"github.com/custody/custody/pkg/money"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/order/domain"
)

// The read model's orders are stored in the stored read models' binary
// encoding (pkg/kv, codec.go), the address as its protobuf wire bytes:
// about a fifth of the JSON they were (orders-kv-2: 187 bytes against 900
// in TestStoredOrderRoundTrip), which every event of an order rewrote and
// every compaction copied again.

// orderCodec is the first byte of every stored order.
const orderCodec = 1

type orderEncoder struct{ kv.Encoder }

func (e *orderEncoder) money(m money.Money) { e.Str(m.Currency); e.Int(m.Minor) }

type orderDecoder struct{ kv.Decoder }

func (d *orderDecoder) money() money.Money { return money.Money{Currency: d.Str(), Minor: d.Int()} }

// encodeOrder is so's stored value.
func encodeOrder(so storedOrder) ([]byte, error) {
	o := &so.Order
	e := orderEncoder{kv.NewEncoder(orderCodec, 384)}
	e.Uint(so.Revision)
	e.Str(o.ID)
	e.Int(int64(o.Status))
	e.Str(o.BuyerID)
	e.Uint(uint64(len(o.Lines)))
	for _, l := range o.Lines {
		e.Str(l.LineID)
		e.Str(l.SKUID)
		e.Str(l.ProductID)
		e.Str(l.VendorID)
		e.Str(l.Title)
		e.Int(l.Quantity)
		e.money(l.UnitPrice)
		e.money(l.LineTotal)
		e.Str(l.CreatorID)
		e.Int(int64(l.CommissionBps))
		e.Int(l.CancelledQuantity)
		e.Int(l.RefundedQuantity)
	}
	e.Uint(uint64(len(o.Parts)))
	for _, p := range o.Parts {
		e.Str(p.VendorID)
		e.Strs(p.LineIDs)
		e.money(p.Subtotal)
		e.Bool(p.Shipped)
		e.Str(p.ShipmentID)
		e.Bool(p.Delivered)
		e.Bool(p.Cancelled)
		e.Str(p.CancelReason)
		e.Str(p.CancelledBy)
		e.money(p.Refunded)
		e.Bool(p.Settled)
	}
	e.money(o.Total)
	e.Bool(o.Address != nil)
	if o.Address != nil {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(o.Address)
		if err != nil {
			return nil, fmt.Errorf("order %s: address: %w", o.ID, err)
		}
		e.Bytes(b)
	}
	e.Bool(o.Attribution != nil)
	if a := o.Attribution; a != nil {
		e.Str(a.AffiliateLinkID)
		e.Str(a.LiveSessionID)
		e.Str(a.CreatorID)
		e.Time(a.TouchTime)
	}
	e.Str(o.Payment.PSPReference)
	e.money(o.Payment.Amount)
	e.Str(o.Reason)
	e.Str(o.RejectedSKU)
	e.Str(o.CancelledBy)
	e.Time(o.PlaceTime)
	e.Time(o.UpdateTime)
	e.money(o.Refunded)
	e.Strs(o.RefundIDs)
	e.Int(int64(o.Saga))
	e.Bool(o.AllDelivered)
	e.Bool(o.Completed)
	return e.B, nil
}

// decodeOrder reads what encodeOrder wrote.
func decodeOrder(b []byte) (storedOrder, error) {
	d := orderDecoder{kv.NewDecoder(b, orderCodec)}
	var so storedOrder
	o := &so.Order
	so.Revision = d.Uint()
	o.ID = d.Str()
	o.Status = domain.Status(d.Int())
	o.BuyerID = d.Str()
	if n := d.N(); n > 0 {
		o.Lines = make([]domain.Line, n)
		for i := range o.Lines {
			l := &o.Lines[i]
			l.LineID, l.SKUID, l.ProductID, l.VendorID, l.Title = d.Str(), d.Str(), d.Str(), d.Str(), d.Str()
			l.Quantity = d.Int()
			l.UnitPrice, l.LineTotal = d.money(), d.money()
			l.CreatorID = d.Str()
			l.CommissionBps = int32(d.Int())
			l.CancelledQuantity, l.RefundedQuantity = d.Int(), d.Int()
		}
	}
	if n := d.N(); n > 0 {
		o.Parts = make([]domain.Part, n)
		for i := range o.Parts {
			p := &o.Parts[i]
			p.VendorID = d.Str()
			p.LineIDs = d.Strs()
			p.Subtotal = d.money()
			p.Shipped = d.Bool()
			p.ShipmentID = d.Str()
			p.Delivered = d.Bool()
			p.Cancelled, p.CancelReason, p.CancelledBy = d.Bool(), d.Str(), d.Str()
			p.Refunded = d.money()
			p.Settled = d.Bool()
		}
	}
	o.Total = d.money()
	if d.Bool() {
		o.Address = &typev1.Address{}
		if err := proto.Unmarshal(d.Raw(), o.Address); err != nil {
			d.Fail(err)
		}
	}
	if d.Bool() {
		o.Attribution = &domain.Attribution{AffiliateLinkID: d.Str(), LiveSessionID: d.Str(), CreatorID: d.Str(), TouchTime: d.Time()}
	}
	o.Payment = domain.Payment{PSPReference: d.Str(), Amount: d.money()}
	o.Reason, o.RejectedSKU, o.CancelledBy = d.Str(), d.Str(), d.Str()
	o.PlaceTime, o.UpdateTime = d.Time(), d.Time()
	o.Refunded = d.money()
	o.RefundIDs = d.Strs()
	o.Saga = domain.Status(d.Int())
	o.AllDelivered, o.Completed = d.Bool(), d.Bool()
	if err := d.End(); err != nil {
		return storedOrder{}, err
	}
	return so, nil
}
