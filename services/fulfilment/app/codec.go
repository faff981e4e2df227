package app

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/fulfilment/domain"
)

// The read model's values are a hand binary encoding of View: varints,
// length-prefixed strings and lists, times as seconds and nanoseconds
// since 1970 (a zero time as one byte), the address as its protobuf wire
// bytes. It is a few hundred bytes a fulfilment and costs no reflection;
// its shape is part of the read model's Version.

// codecVersion is the first byte of every value, so a value of another
// shape is an error, not a silently wrong view.
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

func (e *encoder) lines(ls []domain.Line) {
	e.uint(uint64(len(ls)))
	for _, l := range ls {
		e.str(l.LineID)
		e.str(l.SKUID)
		e.int(l.Quantity)
	}
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

func (d *decoder) lines() []domain.Line {
	n := d.n()
	if n == 0 {
		return nil
	}
	out := make([]domain.Line, n)
	for i := range out {
		out[i] = domain.Line{LineID: d.str(), SKUID: d.str(), Quantity: d.int()}
	}
	return out
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

// encodeView is v's stored value, and its address's wire bytes: addr if
// given (the same address encoded before), else encoded now.
func encodeView(v View, addr []byte) ([]byte, []byte, error) {
	f := &v.Fulfilment
	e := encoder{b: make([]byte, 0, 256)}
	e.b = append(e.b, codecVersion)
	e.uint(v.Revision)
	e.str(f.ID)
	e.bool(f.Requested)
	e.str(f.OrderID)
	e.str(f.VendorID)
	e.str(f.BuyerID)
	e.lines(f.Lines)
	if f.Address == nil {
		addr = nil
		e.bool(false)
	} else {
		if addr == nil {
			var err error
			if addr, err = (proto.MarshalOptions{Deterministic: true}).Marshal(f.Address); err != nil {
				return nil, nil, fmt.Errorf("fulfilment %s: address: %w", f.ID, err)
			}
		}
		e.bool(true)
		e.bytes(addr)
	}
	e.time(f.ShipBy)
	e.time(f.RequestTime)
	e.bool(f.ShipByMissed)
	e.bool(f.GraceUsed)
	e.bool(f.DeadlineClosed)
	e.uint(uint64(len(f.Shipments)))
	for _, s := range f.Shipments {
		e.str(s.ID)
		e.str(s.RequestID)
		e.str(s.Carrier)
		e.str(s.TrackingNumber)
		e.uint(uint64(len(s.Packages)))
		for _, p := range s.Packages {
			e.str(p.PackageID)
			e.lines(p.Lines)
			e.uint(uint64(len(p.Photos)))
			for _, ph := range p.Photos {
				e.str(ph)
			}
			e.uint(uint64(len(p.Units)))
			for _, u := range p.Units {
				e.str(u.LineID)
				e.str(u.SKUID)
				e.str(u.Serial)
				e.str(u.Lot)
			}
		}
		e.lines(s.Lines)
		e.time(s.ShipTime)
		e.time(s.ExpectedDelivery)
		e.uint(uint64(len(s.Scans)))
		for _, sc := range s.Scans {
			e.str(sc.CarrierEventID)
			e.int(int64(sc.Status))
			e.time(sc.OccurTime)
			e.str(sc.Location)
			e.str(sc.Description)
			if sc.Proof == nil {
				e.bool(false)
			} else {
				e.bool(true)
				e.str(sc.Proof.RecipientName)
				e.str(sc.Proof.SignatureSHA256)
				e.str(sc.Proof.PhotoSHA256)
				e.str(sc.Proof.Location)
			}
		}
	}
	e.time(f.ReceiptTime)
	e.bool(f.Cancelled)
	e.str(f.CancelReason)
	e.time(f.CancelTime)
	return e.b, addr, nil
}

// decodeView reads what encodeView wrote, and returns the address's wire
// bytes with it.
func decodeView(b []byte) (View, []byte, error) {
	d := decoder{b: b}
	if d.byte() != codecVersion {
		return View{}, nil, errCorrupt
	}
	var addr []byte
	var v View
	v.Revision = d.uint()
	f := &v.Fulfilment
	f.ID = d.str()
	f.Requested = d.bool()
	f.OrderID = d.str()
	f.VendorID = d.str()
	f.BuyerID = d.str()
	f.Lines = d.lines()
	if d.bool() {
		a := &typev1.Address{}
		addr = d.raw()
		if err := proto.Unmarshal(addr, a); err != nil && d.err == nil {
			d.err = err
		}
		f.Address = a
	}
	f.ShipBy = d.time()
	f.RequestTime = d.time()
	f.ShipByMissed = d.bool()
	f.GraceUsed = d.bool()
	f.DeadlineClosed = d.bool()
	if n := d.n(); n > 0 {
		f.Shipments = make([]domain.Shipment, n)
		for i := range f.Shipments {
			s := &f.Shipments[i]
			s.ID, s.RequestID, s.Carrier, s.TrackingNumber = d.str(), d.str(), d.str(), d.str()
			if n := d.n(); n > 0 {
				s.Packages = make([]domain.Package, n)
				for j := range s.Packages {
					p := &s.Packages[j]
					p.PackageID = d.str()
					p.Lines = d.lines()
					p.Photos = d.strs()
					if n := d.n(); n > 0 {
						p.Units = make([]domain.Unit, n)
						for k := range p.Units {
							p.Units[k] = domain.Unit{LineID: d.str(), SKUID: d.str(), Serial: d.str(), Lot: d.str()}
						}
					}
				}
			}
			s.Lines = d.lines()
			s.ShipTime = d.time()
			s.ExpectedDelivery = d.time()
			if n := d.n(); n > 0 {
				s.Scans = make([]domain.Scan, n)
				for j := range s.Scans {
					sc := &s.Scans[j]
					sc.CarrierEventID = d.str()
					sc.Status = domain.TrackingStatus(d.int())
					sc.OccurTime = d.time()
					sc.Location = d.str()
					sc.Description = d.str()
					if d.bool() {
						sc.Proof = &domain.Proof{RecipientName: d.str(), SignatureSHA256: d.str(), PhotoSHA256: d.str(), Location: d.str()}
					}
				}
			}
		}
	}
	f.ReceiptTime = d.time()
	f.Cancelled = d.bool()
	f.CancelReason = d.str()
	f.CancelTime = d.time()
	if d.err == nil && len(d.b) != 0 {
		d.err = errCorrupt
	}
	if d.err != nil {
		return View{}, nil, d.err
	}
	return v, addr, nil
}
