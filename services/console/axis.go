package console

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
)

// A shipment's scans on a time axis: an SVG drawn with attributes only
// (positions are x attributes, not inline styles), so the strict
// Content-Security-Policy needs no 'unsafe-inline'.

// axisWidth is the SVG's user width; marks sit between axisPad and
// axisWidth-axisPad.
const (
	axisWidth = 1000
	axisPad   = 40
)

// axisMark is one point of the axis.
type axisMark struct {
	X     int    // 0..axisWidth
	Row   int    // 0 or 1: labels of neighbouring marks alternate rows
	Kind  string // "ship", "scan", "delivered", "expected" (a CSS class)
	Label string // what the mark is ("picked up")
	When  *timestamppb.Timestamp
}

// axisView is a shipment's axis: from its ship time to its last scan or
// its expected delivery, whichever is later.
type axisView struct {
	Marks    []axisMark
	From, To *timestamppb.Timestamp
}

// scanAxis places the shipment's ship time, carrier scans and expected
// delivery on one axis; nil when there is nothing to place.
func scanAxis(s *fulfilmentv1.Shipment) *axisView {
	type point struct {
		t           time.Time
		kind, label string
	}
	var pts []point
	if s.GetShipTime() != nil {
		pts = append(pts, point{s.GetShipTime().AsTime(), "ship", "shipped"})
	}
	for _, e := range s.GetTrackingEvents() {
		if e.GetOccurTime() == nil {
			continue
		}
		kind := "scan"
		if e.GetStatus() == fulfilmentv1.TrackingStatus_TRACKING_STATUS_DELIVERED {
			kind = "delivered"
		}
		pts = append(pts, point{e.GetOccurTime().AsTime(), kind, enumName(e.GetStatus())})
	}
	if s.GetExpectedDeliveryTime() != nil {
		pts = append(pts, point{s.GetExpectedDeliveryTime().AsTime(), "expected", "expected"})
	}
	if len(pts) == 0 {
		return nil
	}
	from, to := pts[0].t, pts[0].t
	for _, p := range pts {
		if p.t.Before(from) {
			from = p.t
		}
		if p.t.After(to) {
			to = p.t
		}
	}
	span := to.Sub(from)
	v := &axisView{From: timestamppb.New(from), To: timestamppb.New(to)}
	for i, p := range pts {
		x := axisWidth / 2
		if span > 0 {
			x = axisPad + int(float64(axisWidth-2*axisPad)*float64(p.t.Sub(from))/float64(span))
		}
		v.Marks = append(v.Marks, axisMark{X: x, Row: i % 2, Kind: p.kind, Label: p.label, When: timestamppb.New(p.t)})
	}
	return v
}
