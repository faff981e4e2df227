package domain_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/es/estest"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	"github.com/custody/custody/services/catalog/domain"
)

func TestSession(t *testing.T) {
	started := &catalogv1.LiveSessionStarted{SessionId: "s1", CreatorId: "c1", Title: "Drop", StartTime: timestamppb.New(t0)}
	pinned := func(p string, at int) *catalogv1.ProductPinned {
		return &catalogv1.ProductPinned{SessionId: "s1", ProductId: p, VendorId: "v1", CommissionBps: 1000, PinTime: timestamppb.New(t0.Add(secs(at)))}
	}
	unpinned := func(p string, at int) *catalogv1.ProductUnpinned {
		return &catalogv1.ProductUnpinned{SessionId: "s1", ProductId: p, UnpinTime: timestamppb.New(t0.Add(secs(at)))}
	}
	ended := &catalogv1.LiveSessionEnded{SessionId: "s1", EndTime: timestamppb.New(t2)}
	pin := func(p string) domain.PinProduct {
		return domain.PinProduct{ProductID: p, VendorID: "v1", CommissionBps: 1000, Now: t1}
	}
	estest.Run(t, domain.Sessions, "s1", []estest.Case[domain.SessionCommand]{
		{Name: "start", When: domain.StartSession{CreatorID: "c1", Title: "Drop", Now: t0}, Then: []proto.Message{started}},
		{Name: "start again", Given: []proto.Message{started}, When: domain.StartSession{CreatorID: "c1"}, Err: &domain.ExistsError{Resource: "session", ID: "s1"}},
		{Name: "pin", Given: []proto.Message{started}, When: pin("pa"), Then: []proto.Message{pinned("pa", 60)}},
		{Name: "pin twice", Given: []proto.Message{started, pinned("pa", 60)}, When: pin("pa"), Err: domain.ErrAlreadyPinned},
		{Name: "pin again after unpin", Given: []proto.Message{started, pinned("pa", 10), unpinned("pa", 20)}, When: pin("pa"),
			Then: []proto.Message{pinned("pa", 60)}},
		{Name: "pin in a session that never started", When: pin("pa"), Err: &domain.NotFoundError{Resource: "session", ID: "s1"}},
		{Name: "unpin", Given: []proto.Message{started, pinned("pa", 10)}, When: domain.UnpinProduct{ProductID: "pa", Now: t1},
			Then: []proto.Message{unpinned("pa", 60)}},
		{Name: "unpin what is not pinned", Given: []proto.Message{started}, When: domain.UnpinProduct{ProductID: "pa"}, Err: domain.ErrNotPinned},
		{Name: "end unpins everything pinned", Given: []proto.Message{started, pinned("pa", 10), pinned("pb", 20), unpinned("pa", 30)},
			When: domain.EndSession{Now: t2}, Then: []proto.Message{unpinned("pb", 120), ended}},
		{Name: "pin after the end", Given: []proto.Message{started, ended}, When: pin("pa"), Err: domain.ErrSessionEnded},
		{Name: "end twice", Given: []proto.Message{started, ended}, When: domain.EndSession{Now: t2}, Err: domain.ErrSessionEnded},
	})

	s := domain.Sessions.Fold("s1", nil)
	for _, e := range []proto.Message{started, pinned("pa", 10), unpinned("pa", 30), pinned("pa", 40), pinned("pb", 50)} {
		s = domain.Sessions.Evolve(s, e)
	}
	if len(s.Pins) != 3 || s.Pins[0].Pinned() || !s.Pins[0].UnpinnedAt.Equal(t0.Add(secs(30))) || !s.Pins[1].Pinned() || !s.Pins[1].PinnedAt.Equal(t0.Add(secs(40))) {
		t.Fatalf("pins %+v", s.Pins)
	}
}

// secs converts seconds for the tables above.
func secs(n int) time.Duration { return time.Duration(n) * time.Second }
