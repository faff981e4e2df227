package projection_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/projection"
)

func TestEventTypes(t *testing.T) {
	t.Parallel()
	got := projection.EventTypes(&timestamppb.Timestamp{}, &durationpb.Duration{})
	if want := []string{"google.protobuf.Timestamp", "google.protobuf.Duration"}; !slices.Equal(got, want) {
		t.Fatalf("EventTypes = %v, want %v", got, want)
	}
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	var got []string // what the routes were handed
	failed := errors.New("a passing failure")
	routes := projection.Routes{
		projection.On(func(_ context.Context, rec eventstore.RecordedEvent, ev *timestamppb.Timestamp) error {
			got = append(got, fmt.Sprintf("timestamp %d of %s", ev.GetSeconds(), rec.Stream))
			return nil
		}),
		projection.On(func(_ context.Context, rec eventstore.RecordedEvent, ev *durationpb.Duration) error {
			got = append(got, fmt.Sprintf("duration %d of %s", ev.GetSeconds(), rec.Stream))
			if ev.GetSeconds() < 0 {
				return failed
			}
			return nil
		}),
	}
	if want := []string{"google.protobuf.Timestamp", "google.protobuf.Duration"}; !slices.Equal(routes.EventTypes(), want) {
		t.Fatalf("EventTypes = %v, want %v (the routes' order)", routes.EventTypes(), want)
	}
	encoded := func(m proto.Message) eventstore.RecordedEvent {
		ed, err := es.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		return eventstore.RecordedEvent{Stream: "s1", EventData: ed}
	}
	for _, tc := range []struct {
		name      string
		rec       eventstore.RecordedEvent
		handed    []string
		err       error // nil: none
		permanent bool
	}{
		{name: "first route", rec: encoded(&timestamppb.Timestamp{Seconds: 7}), handed: []string{"timestamp 7 of s1"}},
		{name: "second route", rec: encoded(&durationpb.Duration{Seconds: 3}), handed: []string{"duration 3 of s1"}},
		{name: "the route's error as it is", rec: encoded(&durationpb.Duration{Seconds: -1}), handed: []string{"duration -1 of s1"}, err: failed},
		{name: "another type is ignored", rec: encoded(wrapperspb.String("x"))},
		{name: "undecodable bytes are parked", rec: eventstore.RecordedEvent{Stream: "s1", EventData: eventstore.EventData{
			Type: "google.protobuf.Timestamp", Data: []byte{0xff}}}, permanent: true},
		{name: "an unknown type is parked", rec: eventstore.RecordedEvent{Stream: "s1", EventData: eventstore.EventData{
			Type: "custody.nope.v1.Unknown"}}, permanent: true},
	} {
		got = nil
		err := routes.Handle(t.Context(), tc.rec)
		switch {
		case !slices.Equal(got, tc.handed):
			t.Errorf("%s: handed %q, want %q", tc.name, got, tc.handed)
		case tc.permanent && !fault.IsPermanent(err):
			t.Errorf("%s: %v, want a permanent error", tc.name, err)
		case !tc.permanent && err != tc.err:
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	ed, err := es.Encode(&timestamppb.Timestamp{Seconds: 7})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := projection.Decode(eventstore.RecordedEvent{EventData: ed})
	if err != nil || ev.Payload.(*timestamppb.Timestamp).GetSeconds() != 7 {
		t.Fatalf("decoded %v, %v", ev, err)
	}
	if _, err := projection.Decode(eventstore.RecordedEvent{EventData: eventstore.EventData{Type: "custody.nope.v1.Unknown"}}); !fault.IsPermanent(err) {
		t.Fatalf("an event that cannot be decoded: %v, want a permanent error", err)
	}
}

func TestCausedBy(t *testing.T) {
	t.Parallel()
	rec := eventstore.RecordedEvent{EventData: eventstore.EventData{Metadata: eventstore.Metadata{CorrelationID: "flow-1"}}}
	if m := projection.CausedBy(rec, "o1", "service:order"); m != (es.Meta{CorrelationID: "flow-1", Actor: "service:order"}) {
		t.Fatalf("meta %+v", m)
	}
	if m := projection.CausedBy(eventstore.RecordedEvent{}, "o1", "service:order"); m.CorrelationID != "o1" {
		t.Fatalf("without a correlation: %+v", m)
	}
}
