package projection_test

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

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
