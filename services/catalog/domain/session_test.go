package domain_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

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
	runScenarios(t, domain.Sessions, "s1", []scenario[domain.SessionCommand]{
		{name: "start", when: domain.StartSession{CreatorID: "c1", Title: "Drop", Now: t0}, then: []proto.Message{started}},
		{name: "start again", given: []proto.Message{started}, when: domain.StartSession{CreatorID: "c1"}, err: &domain.ExistsError{Resource: "session", ID: "s1"}},
		{name: "pin", given: []proto.Message{started}, when: pin("pa"), then: []proto.Message{pinned("pa", 60)}},
		{name: "pin twice", given: []proto.Message{started, pinned("pa", 60)}, when: pin("pa"), err: domain.ErrAlreadyPinned},
		{name: "pin again after unpin", given: []proto.Message{started, pinned("pa", 10), unpinned("pa", 20)}, when: pin("pa"),
			then: []proto.Message{pinned("pa", 60)}},
		{name: "pin in a session that never started", when: pin("pa"), err: &domain.NotFoundError{Resource: "session", ID: "s1"}},
		{name: "unpin", given: []proto.Message{started, pinned("pa", 10)}, when: domain.UnpinProduct{ProductID: "pa", Now: t1},
			then: []proto.Message{unpinned("pa", 60)}},
		{name: "unpin what is not pinned", given: []proto.Message{started}, when: domain.UnpinProduct{ProductID: "pa"}, err: domain.ErrNotPinned},
		{name: "end unpins everything pinned", given: []proto.Message{started, pinned("pa", 10), pinned("pb", 20), unpinned("pa", 30)},
			when: domain.EndSession{Now: t2}, then: []proto.Message{unpinned("pb", 120), ended}},
		{name: "pin after the end", given: []proto.Message{started, ended}, when: pin("pa"), err: domain.ErrSessionEnded},
		{name: "end twice", given: []proto.Message{started, ended}, when: domain.EndSession{Now: t2}, err: domain.ErrSessionEnded},
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
