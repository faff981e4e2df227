package domain

import (
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
)

// Session is a creator's livestream shopping session. Its pin history is
// what attribution is decided on: an order placed while a product was
// pinned (between PinnedAt and UnpinnedAt) credits the creator.
type Session struct {
	ID        string
	Started   bool
	CreatorID string
	Title     string
	StartedAt time.Time
	Ended     bool
	EndedAt   time.Time
	Pins      []Pin // in pin order
}

// Pin is one period during which a product was pinned.
type Pin struct {
	ProductID     string
	VendorID      string
	CommissionBps int32
	PinnedAt      time.Time
	UnpinnedAt    time.Time // zero while pinned
}

// Pinned reports whether the pin is still open.
func (p Pin) Pinned() bool { return p.UnpinnedAt.IsZero() }

// openPin returns the index of productID's open pin, or -1.
func (s Session) openPin(productID string) int {
	return slices.IndexFunc(s.Pins, func(p Pin) bool { return p.ProductID == productID && p.Pinned() })
}

// CloneSession deep-copies s.
func CloneSession(s Session) Session {
	s.Pins = slices.Clone(s.Pins)
	return s
}

// SessionCommand is a command to a live session.
type SessionCommand interface{ command[Session] }

// StartSession starts a session.
type StartSession struct {
	CreatorID string
	Title     string
	Now       time.Time
}

// PinProduct pins a product; the caller copies the product's vendor and
// current commission rate into it.
type PinProduct struct {
	ProductID     string
	VendorID      string
	CommissionBps int32
	// Archived: the product is archived (the caller read it); a new pin
	// is refused, a repeat of one made before is answered as such.
	Archived bool
	Now      time.Time
}

// UnpinProduct unpins a pinned product.
type UnpinProduct struct {
	ProductID string
	Now       time.Time
}

// EndSession ends the session, unpinning whatever is pinned.
type EndSession struct {
	Now time.Time
}

// Sessions is the live-session aggregate: started once; every other
// command needs a session that started and has not ended.
var Sessions = createdBy[Session, SessionCommand, StartSession]("session", func(id string) Session { return Session{ID: id} }, evolveSession, CloneSession)

func (s Session) created() (string, bool) { return s.ID, s.Started }

func (s Session) closed() error {
	if s.Ended {
		return refuse(ErrSessionEnded, "live session %s has ended", s.ID)
	}
	return nil
}

func (c StartSession) decide(s Session) ([]proto.Message, error) {
	if !CreatorIDPattern.MatchString(c.CreatorID) {
		return nil, invalid("creator_id", "must be 1-128 letters, digits, '.', '-' or '_'")
	}
	return []proto.Message{&catalogv1.LiveSessionStarted{
		SessionId: s.ID, CreatorId: c.CreatorID, Title: c.Title, StartTime: timestamppb.New(c.Now),
	}}, nil
}

func (c PinProduct) decide(s Session) ([]proto.Message, error) {
	if c.Archived {
		return nil, refuse(ErrProductArchived, "product %s is archived: it takes no new pins", c.ProductID)
	}
	if s.openPin(c.ProductID) >= 0 {
		return nil, refuse(ErrAlreadyPinned, "product %s is already pinned in session %s", c.ProductID, s.ID)
	}
	if c.CommissionBps < 0 || c.CommissionBps > MaxBps {
		return nil, invalid("commission_bps", "must be between 0 and %d basis points", MaxBps)
	}
	return []proto.Message{&catalogv1.ProductPinned{
		SessionId: s.ID, ProductId: c.ProductID, VendorId: c.VendorID, CommissionBps: c.CommissionBps,
		PinTime: timestamppb.New(c.Now),
	}}, nil
}

func (c UnpinProduct) decide(s Session) ([]proto.Message, error) {
	if s.openPin(c.ProductID) < 0 {
		return nil, refuse(ErrNotPinned, "product %s is not pinned in session %s", c.ProductID, s.ID)
	}
	return []proto.Message{&catalogv1.ProductUnpinned{SessionId: s.ID, ProductId: c.ProductID, UnpinTime: timestamppb.New(c.Now)}}, nil
}

func (c EndSession) decide(s Session) ([]proto.Message, error) {
	var evs []proto.Message
	for _, p := range s.Pins {
		if p.Pinned() {
			evs = append(evs, &catalogv1.ProductUnpinned{SessionId: s.ID, ProductId: p.ProductID, UnpinTime: timestamppb.New(c.Now)})
		}
	}
	return append(evs, &catalogv1.LiveSessionEnded{SessionId: s.ID, EndTime: timestamppb.New(c.Now)}), nil
}

func evolveSession(s Session, e proto.Message) Session {
	switch e := e.(type) {
	case *catalogv1.LiveSessionStarted:
		s.Started = true
		s.CreatorID, s.Title = e.GetCreatorId(), e.GetTitle()
		s.StartedAt = e.GetStartTime().AsTime()
	case *catalogv1.ProductPinned:
		s.Pins = append(s.Pins, Pin{
			ProductID: e.GetProductId(), VendorID: e.GetVendorId(), CommissionBps: e.GetCommissionBps(),
			PinnedAt: e.GetPinTime().AsTime(),
		})
	case *catalogv1.ProductUnpinned:
		if i := s.openPin(e.GetProductId()); i >= 0 {
			s.Pins[i].UnpinnedAt = e.GetUnpinTime().AsTime()
		}
	case *catalogv1.LiveSessionEnded:
		s.Ended = true
		s.EndedAt = e.GetEndTime().AsTime()
	}
	return s
}
