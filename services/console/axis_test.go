package console

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
)

func TestScanAxisPlacesMarksByTime(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	at := func(h int) *timestamppb.Timestamp { return timestamppb.New(t0.Add(time.Duration(h) * time.Hour)) }
	scan := func(h int, s fulfilmentv1.TrackingStatus) *fulfilmentv1.TrackingEvent {
		return &fulfilmentv1.TrackingEvent{OccurTime: at(h), Status: s}
	}
	for _, tc := range []struct {
		name  string
		s     *fulfilmentv1.Shipment
		want  []axisMark // X, Kind, Label
		empty bool
	}{
		{
			name: "shipped, scanned, delivered before the expected day",
			s: &fulfilmentv1.Shipment{ShipTime: at(0), ExpectedDeliveryTime: at(40), TrackingEvents: []*fulfilmentv1.TrackingEvent{
				scan(10, fulfilmentv1.TrackingStatus_TRACKING_STATUS_PICKED_UP), scan(30, fulfilmentv1.TrackingStatus_TRACKING_STATUS_DELIVERED)}},
			want: []axisMark{{X: 40, Kind: "ship", Label: "shipped"}, {X: 270, Kind: "scan", Label: "picked up"},
				{X: 730, Kind: "delivered", Label: "delivered"}, {X: 960, Kind: "expected", Label: "expected"}},
		},
		{
			name: "a scan after the expected day stretches the axis",
			s: &fulfilmentv1.Shipment{ShipTime: at(0), ExpectedDeliveryTime: at(10), TrackingEvents: []*fulfilmentv1.TrackingEvent{
				scan(20, fulfilmentv1.TrackingStatus_TRACKING_STATUS_IN_TRANSIT)}},
			want: []axisMark{{X: 40, Kind: "ship", Label: "shipped"}, {X: 960, Kind: "scan", Label: "in transit"}, {X: 500, Kind: "expected", Label: "expected"}},
		},
		{
			name: "one instant sits in the middle",
			s:    &fulfilmentv1.Shipment{ShipTime: at(0)},
			want: []axisMark{{X: 500, Kind: "ship", Label: "shipped"}},
		},
		{name: "nothing to place", s: &fulfilmentv1.Shipment{}, empty: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := scanAxis(tc.s)
			if (v == nil) != tc.empty {
				t.Fatalf("axis %+v", v)
			}
			if v == nil {
				return
			}
			if len(v.Marks) != len(tc.want) {
				t.Fatalf("%d marks, want %d: %+v", len(v.Marks), len(tc.want), v.Marks)
			}
			for i, m := range v.Marks {
				w := tc.want[i]
				if m.X != w.X || m.Kind != w.Kind || m.Label != w.Label || m.Row != i%2 {
					t.Errorf("mark %d = %+v, want x %d %s %q row %d", i, m, w.X, w.Kind, w.Label, i%2)
				}
			}
		})
	}
}
