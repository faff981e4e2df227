package app

import (
	"encoding/gob"
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/money"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	"github.com/custody/custody/services/trust/domain"
)

// The read models' checkpoints (platform.Checkpointer), gob-encoded.
//
// ReadModel saves every order's case, the claims' places in the indexes
// (as claim IDs in their order) and every vendor's trust. A claim keeps
// the event messages it was folded from; gob cannot be trusted with
// generated protobuf structs, so they are saved as their wire encoding.
//
// Loading a ReadModel calls its change hook with every restored case, as
// folding them would have: the service's hook schedules the open claims'
// deadlines, which would otherwise be lost with the events the checkpoint
// replaces. The runtime loads before the deadline scheduler runs.

type savedClaims struct {
	Cases    []savedCase
	Refs     []savedRef
	ByOrder  map[string][]string
	ByBuyer  map[string][]string
	ByVendor map[string][]string
	All      []string
	Vendors  map[string]domain.VendorTrust
}

type savedRef struct {
	ID, OrderID string
	Open        time.Time
}

type savedCase struct {
	OrderID      string
	Captured     money.Money
	Refunded     money.Money
	LineRefunded map[string]int64
	RefundCount  int
	Claims       []savedClaim
	Revision     uint64
}

// savedClaim is a domain.Claim; its messages are proto wire bytes (an
// optional one is a list of none or one).
type savedClaim struct {
	ID, OrderID, FulfilmentID, VendorID, BuyerID string
	Reason                                       trustv1.ClaimReason
	Lines                                        []domain.ClaimLine
	Evidence                                     [][]byte
	Claimed                                      money.Money
	State                                        domain.State
	OpenTime, DueAt                              time.Time
	Assessments, Responses, Escalations          [][]byte
	Offer                                        money.Money
	Resolution                                   [][]byte
	CounterfeitConfirmed                         bool
	ReturnAuthorised                             [][]byte
	ReturnShipped                                [][]byte
	ReturnReceived                               [][]byte
	Refunds                                      [][]byte
	Refunded                                     money.Money
	Closed                                       [][]byte
	UpdateTime                                   time.Time
	Revision                                     uint64
}

// Version names the checkpoint's shape; bump it when savedClaims,
// domain.Case, domain.Claim or domain.VendorTrust changes.
func (m *ReadModel) Version() string { return "claims-1" }

// Save writes the read model's state.
func (m *ReadModel) Save(w io.Writer) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := savedClaims{Cases: make([]savedCase, 0, len(m.cases)), Refs: make([]savedRef, 0, len(m.claims)),
		ByOrder: refIDs(m.byOrder), ByBuyer: refIDs(m.byBuyer), ByVendor: refIDs(m.byVendor), All: idsOf(m.all),
		Vendors: make(map[string]domain.VendorTrust, len(m.vendors))}
	for _, cs := range m.cases {
		sc, err := saveCase(cs)
		if err != nil {
			return err
		}
		s.Cases = append(s.Cases, sc)
	}
	for _, r := range m.claims {
		s.Refs = append(s.Refs, savedRef{ID: r.id, OrderID: r.orderID, Open: r.open})
	}
	for id, v := range m.vendors {
		s.Vendors[id] = *v
	}
	return gob.NewEncoder(w).Encode(&s)
}

// Load replaces the state of an empty read model with what Save wrote and
// hands the change hook every restored case; on error it leaves the read
// model as it was and calls nothing.
func (m *ReadModel) Load(r io.Reader) error {
	var s savedClaims
	if err := gob.NewDecoder(r).Decode(&s); err != nil {
		return err
	}
	cases := make(map[string]*domain.Case, len(s.Cases))
	for _, sc := range s.Cases {
		cs, err := loadCase(sc)
		if err != nil {
			return err
		}
		cases[cs.OrderID] = &cs
	}
	claims := make(map[string]*claimRef, len(s.Refs))
	for _, r := range s.Refs {
		if cs, ok := cases[r.OrderID]; !ok || cs.Claim(r.ID) == nil {
			return fmt.Errorf("checkpoint indexes claim %q of order %q, which it does not hold", r.ID, r.OrderID)
		}
		claims[r.ID] = &claimRef{id: r.ID, orderID: r.OrderID, open: r.Open}
	}
	byOrder, err := refsOf(s.ByOrder, claims)
	if err != nil {
		return err
	}
	byBuyer, err := refsOf(s.ByBuyer, claims)
	if err != nil {
		return err
	}
	byVendor, err := refsOf(s.ByVendor, claims)
	if err != nil {
		return err
	}
	all, err := refList(s.All, claims)
	if err != nil {
		return err
	}
	vendors := make(map[string]*domain.VendorTrust, len(s.Vendors))
	for id, v := range s.Vendors {
		vendors[id] = &v
	}
	var snapshots []domain.Case
	if m.onCase != nil {
		for _, cs := range cases {
			snapshots = append(snapshots, cs.Clone())
		}
	}
	m.mu.Lock()
	m.cases, m.claims, m.byOrder, m.byBuyer, m.byVendor, m.all, m.vendors = cases, claims, byOrder, byBuyer, byVendor, all, vendors
	m.mu.Unlock()
	for _, cs := range snapshots {
		m.onCase(cs)
	}
	return nil
}

func saveCase(cs *domain.Case) (savedCase, error) {
	sc := savedCase{OrderID: cs.OrderID, Captured: cs.Captured, Refunded: cs.Refunded, LineRefunded: cs.LineRefunded,
		RefundCount: cs.RefundCount, Revision: cs.Revision, Claims: make([]savedClaim, 0, len(cs.Claims))}
	for _, c := range cs.Claims {
		s := savedClaim{ID: c.ID, OrderID: c.OrderID, FulfilmentID: c.FulfilmentID, VendorID: c.VendorID, BuyerID: c.BuyerID,
			Reason: c.Reason, Lines: c.Lines, Claimed: c.Claimed, State: c.State, OpenTime: c.OpenTime, DueAt: c.DueAt,
			Offer: c.Offer, CounterfeitConfirmed: c.CounterfeitConfirmed, Refunded: c.Refunded, UpdateTime: c.UpdateTime,
			Revision: c.Revision}
		var err error
		marshal := func(to *[][]byte, ms ...proto.Message) {
			for _, msg := range ms {
				if err != nil {
					return
				}
				var b []byte
				b, err = proto.MarshalOptions{Deterministic: true}.Marshal(msg)
				*to = append(*to, b)
			}
		}
		marshal(&s.Evidence, optional(c.Evidence)...)
		marshal(&s.Assessments, messages(c.Assessments)...)
		marshal(&s.Responses, messages(c.Responses)...)
		marshal(&s.Escalations, messages(c.Escalations)...)
		marshal(&s.Resolution, optional(c.Resolution)...)
		marshal(&s.ReturnAuthorised, optional(c.ReturnAuthorised)...)
		marshal(&s.ReturnShipped, optional(c.ReturnShipped)...)
		marshal(&s.ReturnReceived, optional(c.ReturnReceived)...)
		marshal(&s.Refunds, messages(c.Refunds)...)
		marshal(&s.Closed, optional(c.Closed)...)
		if err != nil {
			return savedCase{}, fmt.Errorf("claim %q: %w", c.ID, err)
		}
		sc.Claims = append(sc.Claims, s)
	}
	return sc, nil
}

func loadCase(sc savedCase) (domain.Case, error) {
	cs := domain.Case{OrderID: sc.OrderID, Captured: sc.Captured, Refunded: sc.Refunded, LineRefunded: map[string]int64{},
		RefundCount: sc.RefundCount, Revision: sc.Revision}
	for k, v := range sc.LineRefunded {
		cs.LineRefunded[k] = v
	}
	for _, s := range sc.Claims {
		c := &domain.Claim{ID: s.ID, OrderID: s.OrderID, FulfilmentID: s.FulfilmentID, VendorID: s.VendorID, BuyerID: s.BuyerID,
			Reason: s.Reason, Lines: s.Lines, Claimed: s.Claimed, State: s.State, OpenTime: s.OpenTime, DueAt: s.DueAt,
			Offer: s.Offer, CounterfeitConfirmed: s.CounterfeitConfirmed, Refunded: s.Refunded, UpdateTime: s.UpdateTime,
			Revision: s.Revision}
		var err error
		one := func(bs [][]byte) [][]byte {
			if len(bs) > 1 && err == nil {
				err = fmt.Errorf("%d messages where one at most is kept", len(bs))
			}
			return bs
		}
		c.Evidence = last(unmarshal[*trustv1.Evidence](one(s.Evidence), &err))
		c.Assessments = unmarshal[*trustv1.ClaimAssessed](s.Assessments, &err)
		c.Responses = unmarshal[*trustv1.ClaimResponded](s.Responses, &err)
		c.Escalations = unmarshal[*trustv1.ClaimEscalated](s.Escalations, &err)
		c.Resolution = last(unmarshal[*trustv1.ClaimResolved](one(s.Resolution), &err))
		c.ReturnAuthorised = last(unmarshal[*trustv1.ReturnAuthorised](one(s.ReturnAuthorised), &err))
		c.ReturnShipped = last(unmarshal[*trustv1.ReturnShipped](one(s.ReturnShipped), &err))
		c.ReturnReceived = last(unmarshal[*trustv1.ReturnReceived](one(s.ReturnReceived), &err))
		c.Refunds = unmarshal[*trustv1.RefundIssued](s.Refunds, &err)
		c.Closed = last(unmarshal[*trustv1.ClaimClosed](one(s.Closed), &err))
		if err != nil {
			return domain.Case{}, fmt.Errorf("checkpoint's claim %q: %w", s.ID, err)
		}
		cs.Claims = append(cs.Claims, c)
	}
	return cs, nil
}

// optional is m as a list of none (nil) or one message.
func optional[M proto.Message](m M) []proto.Message {
	if !m.ProtoReflect().IsValid() {
		return nil
	}
	return []proto.Message{m}
}

func messages[M proto.Message](ms []M) []proto.Message {
	out := make([]proto.Message, len(ms))
	for i, m := range ms {
		out[i] = m
	}
	return out
}

// unmarshal decodes the messages bs (nil for none), noting the first
// error in err.
func unmarshal[M interface {
	proto.Message
	*T
}, T any](bs [][]byte, err *error) []M {
	if len(bs) == 0 {
		return nil
	}
	out := make([]M, len(bs))
	for i, b := range bs {
		out[i] = M(new(T))
		if *err == nil {
			*err = proto.Unmarshal(b, out[i])
		}
	}
	return out
}

// last is the last of ms, or nil.
func last[M any](ms []M) M {
	var m M
	if len(ms) > 0 {
		m = ms[len(ms)-1]
	}
	return m
}

func idsOf(refs []*claimRef) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.id
	}
	return out
}

func refIDs(lists map[string][]*claimRef) map[string][]string {
	out := make(map[string][]string, len(lists))
	for k, l := range lists {
		out[k] = idsOf(l)
	}
	return out
}

func refList(ids []string, claims map[string]*claimRef) ([]*claimRef, error) {
	out := make([]*claimRef, len(ids))
	for i, id := range ids {
		r, ok := claims[id]
		if !ok {
			return nil, fmt.Errorf("checkpoint lists claim %q, which it does not hold", id)
		}
		out[i] = r
	}
	return out, nil
}

func refsOf(lists map[string][]string, claims map[string]*claimRef) (map[string][]*claimRef, error) {
	out := make(map[string][]*claimRef, len(lists))
	for k, ids := range lists {
		l, err := refList(ids, claims)
		if err != nil {
			return nil, err
		}
		out[k] = l
	}
	return out, nil
}
