package app

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/kv"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/fulfilment/domain"
)

// The read model's values are View in the stored read models' binary
// encoding (pkg/kv, codec.go), the address as its protobuf wire bytes: a
// few hundred bytes a fulfilment. Their shape is part of the read model's
// Version.

// codecVersion is the first byte of every value, so a value of another
// shape is an error, not a silently wrong view.
const codecVersion = 1

type encoder struct{ kv.Encoder }

type decoder struct{ kv.Decoder }

func (e *encoder) lines(ls []domain.Line) {
	e.Uint(uint64(len(ls)))
	for _, l := range ls {
		e.Str(l.LineID)
		e.Str(l.SKUID)
		e.Int(l.Quantity)
	}
}

func (d *decoder) lines() []domain.Line {
	n := d.N()
	if n == 0 {
		return nil
	}
	out := make([]domain.Line, n)
	for i := range out {
		out[i] = domain.Line{LineID: d.Str(), SKUID: d.Str(), Quantity: d.Int()}
	}
	return out
}

// encodeView is v's stored value, and its address's wire bytes: addr if
// given (the same address encoded before), else encoded now.
func encodeView(v View, addr []byte) ([]byte, []byte, error) {
	f := &v.Fulfilment
	e := encoder{kv.NewEncoder(codecVersion, 256)}
	e.Uint(v.Revision)
	e.Str(f.ID)
	e.Bool(f.Requested)
	e.Str(f.OrderID)
	e.Str(f.VendorID)
	e.Str(f.BuyerID)
	e.lines(f.Lines)
	if f.Address == nil {
		addr = nil
		e.Bool(false)
	} else {
		if addr == nil {
			var err error
			if addr, err = (proto.MarshalOptions{Deterministic: true}).Marshal(f.Address); err != nil {
				return nil, nil, fmt.Errorf("fulfilment %s: address: %w", f.ID, err)
			}
		}
		e.Bool(true)
		e.Bytes(addr)
	}
	e.Time(f.ShipBy)
	e.Time(f.RequestTime)
	e.Bool(f.ShipByMissed)
	e.Bool(f.GraceUsed)
	e.Bool(f.DeadlineClosed)
	e.Uint(uint64(len(f.Shipments)))
	for _, s := range f.Shipments {
		e.Str(s.ID)
		e.Str(s.RequestID)
		e.Str(s.Carrier)
		e.Str(s.TrackingNumber)
		e.Uint(uint64(len(s.Packages)))
		for _, p := range s.Packages {
			e.Str(p.PackageID)
			e.lines(p.Lines)
			e.Uint(uint64(len(p.Photos)))
			for _, ph := range p.Photos {
				e.Str(ph)
			}
			e.Uint(uint64(len(p.Units)))
			for _, u := range p.Units {
				e.Str(u.LineID)
				e.Str(u.SKUID)
				e.Str(u.Serial)
				e.Str(u.Lot)
			}
		}
		e.lines(s.Lines)
		e.Time(s.ShipTime)
		e.Time(s.ExpectedDelivery)
		e.Uint(uint64(len(s.Scans)))
		for _, sc := range s.Scans {
			e.Str(sc.CarrierEventID)
			e.Int(int64(sc.Status))
			e.Time(sc.OccurTime)
			e.Str(sc.Location)
			e.Str(sc.Description)
			if sc.Proof == nil {
				e.Bool(false)
			} else {
				e.Bool(true)
				e.Str(sc.Proof.RecipientName)
				e.Str(sc.Proof.SignatureSHA256)
				e.Str(sc.Proof.PhotoSHA256)
				e.Str(sc.Proof.Location)
			}
		}
	}
	e.Time(f.ReceiptTime)
	e.Bool(f.Cancelled)
	e.Str(f.CancelReason)
	e.Time(f.CancelTime)
	return e.B, addr, nil
}

// decodeView reads what encodeView wrote, and returns the address's wire
// bytes with it.
func decodeView(b []byte) (View, []byte, error) {
	d := decoder{kv.NewDecoder(b, codecVersion)}
	var addr []byte
	var v View
	v.Revision = d.Uint()
	f := &v.Fulfilment
	f.ID = d.Str()
	f.Requested = d.Bool()
	f.OrderID = d.Str()
	f.VendorID = d.Str()
	f.BuyerID = d.Str()
	f.Lines = d.lines()
	if d.Bool() {
		a := &typev1.Address{}
		addr = d.Raw()
		if err := proto.Unmarshal(addr, a); err != nil {
			d.Fail(err)
		}
		f.Address = a
	}
	f.ShipBy = d.Time()
	f.RequestTime = d.Time()
	f.ShipByMissed = d.Bool()
	f.GraceUsed = d.Bool()
	f.DeadlineClosed = d.Bool()
	if n := d.N(); n > 0 {
		f.Shipments = make([]domain.Shipment, n)
		for i := range f.Shipments {
			s := &f.Shipments[i]
			s.ID, s.RequestID, s.Carrier, s.TrackingNumber = d.Str(), d.Str(), d.Str(), d.Str()
			if n := d.N(); n > 0 {
				s.Packages = make([]domain.Package, n)
				for j := range s.Packages {
					p := &s.Packages[j]
					p.PackageID = d.Str()
					p.Lines = d.lines()
					p.Photos = d.Strs()
					if n := d.N(); n > 0 {
						p.Units = make([]domain.Unit, n)
						for k := range p.Units {
							p.Units[k] = domain.Unit{LineID: d.Str(), SKUID: d.Str(), Serial: d.Str(), Lot: d.Str()}
						}
					}
				}
			}
			s.Lines = d.lines()
			s.ShipTime = d.Time()
			s.ExpectedDelivery = d.Time()
			if n := d.N(); n > 0 {
				s.Scans = make([]domain.Scan, n)
				for j := range s.Scans {
					sc := &s.Scans[j]
					sc.CarrierEventID = d.Str()
					sc.Status = domain.TrackingStatus(d.Int())
					sc.OccurTime = d.Time()
					sc.Location = d.Str()
					sc.Description = d.Str()
					if d.Bool() {
						sc.Proof = &domain.Proof{RecipientName: d.Str(), SignatureSHA256: d.Str(), PhotoSHA256: d.Str(), Location: d.Str()}
					}
				}
			}
		}
	}
	f.ReceiptTime = d.Time()
	f.Cancelled = d.Bool()
	f.CancelReason = d.Str()
	f.CancelTime = d.Time()
	if err := d.End(); err != nil {
		return View{}, nil, err
	}
	return v, addr, nil
}
