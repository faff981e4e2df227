package domain_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/order/domain"
)

// TestPartOutcomeProperties drives the order with random sequences of
// what happens to its parts — confirmation, shipments, deliveries,
// cancelled units and parts (by the buyer, a vendor, fulfilment's ship-by
// policy, the whole order), trust's refunds with lines, payouts'
// settlements, address changes — and checks after every step, against an
// independent model of the rules:
//
//   - a command is refused exactly when the model says it must be
//     (a shipped or cancelled part's lines, more units than are left, a
//     pending order's lines, a shipped part's ship-by cancellation);
//   - refunded_total is the sum of every refund recorded (cancelled units
//     of a captured order and trust's refunds), and each event's
//     refunded_total says so;
//   - each part's refunded money and each line's cancelled and refunded
//     units are the model's;
//   - the order's status and each part's state are those the model's own
//     reading of the tables gives;
//   - OrderDelivered and OrderCompleted are each recorded once, when due.
func TestPartOutcomeProperties(t *testing.T) {
	seeds, steps := 400, 40
	if testing.Short() {
		seeds = 50
	}
	seen := map[string]int{}
	for seed := range seeds {
		s := newPartSim(t, uint64(seed))
		for range steps {
			s.step()
			if t.Failed() {
				t.Fatalf("seed %d, after step %d:\n%s", seed, len(s.log), strings.Join(s.log, "\n"))
			}
		}
		for k, v := range s.seen {
			seen[k] += v
		}
	}
	// The generator must keep reaching every status and refusal.
	for _, want := range []string{"confirmed", "shipped", "delivered", "cancelled", "refunded", "completed", "pending",
		"refused", "OrderLinesCancelled", "OrderPartCancelled", "OrderCancelled", "OrderCompleted", "OrderDelivered"} {
		if seen[want] == 0 {
			t.Errorf("no sequence reached %s", want)
		}
	}
	t.Logf("reached: %v", seen)
}

type partSim struct {
	t    *testing.T
	rng  *rand.Rand
	o    domain.Order
	m    pModel
	log  []string
	seen map[string]int
	n    int
}

// pModel is the model's own view of the order.
type pModel struct {
	confirmed bool
	lines     []*pLine
	parts     map[string]*pPart
	vendors   []string
	refunded  int64
	delivered bool // OrderDelivered recorded
	completed bool // OrderCompleted recorded
}

type pLine struct {
	id, vendor               string
	qty, price               int64
	cancelled, refundedUnits int64
}

type pPart struct {
	shipped, delivered, cancelled, settled bool
	refunded                               int64
	subtotal                               int64
}

func newPartSim(t *testing.T, seed uint64) *partSim {
	rng := rand.New(rand.NewPCG(seed, 0x0de3))
	s := &partSim{t: t, rng: rng, seen: map[string]int{}, m: pModel{parts: map[string]*pPart{}}}
	var lines []domain.Line
	nv := 1 + rng.IntN(3)
	for v := range nv {
		vendor := fmt.Sprintf("v%d", v+1)
		s.m.vendors = append(s.m.vendors, vendor)
		s.m.parts[vendor] = &pPart{}
		for range 1 + rng.IntN(3) {
			id := fmt.Sprint(len(lines) + 1)
			qty, price := 1+rng.Int64N(5), 1+rng.Int64N(1000)
			lines = append(lines, domain.Line{LineID: id, SKUID: "sku-" + id, ProductID: "p" + id, VendorID: vendor, Title: "t",
				Quantity: qty, UnitPrice: eur(price), LineTotal: eur(qty * price)})
			s.m.lines = append(s.m.lines, &pLine{id: id, vendor: vendor, qty: qty, price: price})
			s.m.parts[vendor].subtotal += qty * price
		}
	}
	total := int64(0)
	for _, l := range lines {
		total += l.LineTotal.Minor
	}
	s.apply(domain.PlaceOrder{BuyerID: "b1", Lines: lines, Address: addr, Payment: domain.Payment{PSPReference: "psp", Amount: eur(total)}, Time: t0}, true)
	return s
}

func (s *partSim) now() time.Time { s.n++; return t0.Add(time.Duration(s.n) * time.Minute) }

// apply decides c, and evolves its events; ok is whether the model says
// it must be accepted.
func (s *partSim) apply(c domain.Command, ok bool) []proto.Message {
	s.t.Helper()
	events, err := domain.Decide(s.o, c)
	s.log = append(s.log, fmt.Sprintf("%T %+v -> %d events, err %v", c, c, len(events), err))
	if (err == nil) != ok {
		s.t.Errorf("%T: err %v, model says accepted: %v", c, err, ok)
		return nil
	}
	if err != nil {
		s.seen["refused"]++
		return nil
	}
	for _, e := range events {
		s.seen[string(e.ProtoReflect().Descriptor().Name())]++
		s.o = domain.Evolve(s.o, e)
		switch e := e.(type) {
		case *orderv1.OrderLinesCancelled:
			s.checkTotal(e.GetRefundedTotal().GetAmountMinor())
		case *orderv1.OrderPartCancelled:
			s.checkTotal(e.GetRefundedTotal().GetAmountMinor())
		case *orderv1.OrderRefunded:
			s.checkTotal(e.GetRefundedTotal().GetAmountMinor())
		}
	}
	return events
}

// checkTotal: an event's refunded_total is the order's after it.
func (s *partSim) checkTotal(total int64) {
	if total != s.o.Refunded.Minor {
		s.t.Errorf("event refunded_total %d, order's %d", total, s.o.Refunded.Minor)
	}
}

func (s *partSim) vendor() string { return s.m.vendors[s.rng.IntN(len(s.m.vendors))] }

func (m *pModel) allCancelled() bool {
	for _, p := range m.parts {
		if !p.cancelled {
			return false
		}
	}
	return true
}

func (m *pModel) anyShipped() bool {
	for _, p := range m.parts {
		if p.shipped {
			return true
		}
	}
	return false
}

func (m *pModel) open(l *pLine) int64 { return l.qty - l.cancelled }

// cancelPart cancels what is left of vendor's part, refunding it when the
// order was captured.
func (m *pModel) cancelPart(vendor string) {
	p := m.parts[vendor]
	p.cancelled = true
	for _, l := range m.lines {
		if l.vendor == vendor {
			if m.confirmed {
				p.refunded += m.open(l) * l.price
				m.refunded += m.open(l) * l.price
			}
			l.cancelled = l.qty
		}
	}
}

func (s *partSim) step() {
	m := &s.m
	v := s.vendor()
	p := m.parts[v]
	switch r := s.rng.IntN(100); {
	case r < 10: // the saga confirms
		s.apply(domain.ConfirmOrder{Time: s.now()}, true)
		if !m.allCancelled() {
			m.confirmed = true
		}
	case r < 28: // fulfilment ships
		// A shipment is a fact: recorded even on a part cancelled meanwhile.
		ok := p.shipped || m.confirmed || m.allCancelled()
		s.apply(domain.MarkPartShipped{VendorID: v, ShipmentID: "s", Time: s.now()}, ok)
		p.shipped = p.shipped || ok
	case r < 40: // fulfilment delivers what shipped
		if p.shipped && !p.cancelled {
			s.apply(domain.MarkPartDelivered{VendorID: v, FulfilmentID: "f", Time: s.now()}, true)
			p.delivered = true
		}
	case r < 52: // the buyer, a vendor or support cancels lines or a part
		s.cancelLines(v)
	case r < 57: // fulfilment's ship-by policy cancels a part
		ok := p.cancelled || !p.shipped
		s.apply(domain.RecordPartCancelled{VendorID: v, FulfilmentID: "f", Reason: "ship-by", By: "service:fulfilment", Time: s.now()}, ok)
		if ok && !p.cancelled {
			m.cancelPart(v)
		}
	case r < 75: // trust refunds units of a shipped part
		var lines []domain.RefundLine
		amount := int64(0)
		for _, l := range m.lines {
			if left := m.open(l) - l.refundedUnits; l.vendor == v && left > 0 && s.rng.IntN(2) == 0 {
				n := 1 + s.rng.Int64N(left)
				lines = append(lines, domain.RefundLine{LineID: l.id, Quantity: n, Amount: eur(n * l.price)})
				amount += n * l.price
				l.refundedUnits += n
			}
		}
		if !p.shipped || p.cancelled || amount == 0 {
			for _, rl := range lines { // not sent: undo
				for _, l := range m.lines {
					if l.id == rl.LineID {
						l.refundedUnits -= rl.Quantity
					}
				}
			}
			return
		}
		s.apply(domain.RecordRefund{RefundID: fmt.Sprintf("r%d", s.n), Amount: eur(amount), VendorID: v, Lines: lines, Time: s.now()}, true)
		p.refunded += amount
		m.refunded += amount
	case r < 88: // payouts settles a delivered part (or one whose delivery the order has not heard of yet)
		if p.shipped && !p.cancelled && (p.delivered || s.rng.IntN(4) == 0) {
			s.apply(domain.MarkPartSettled{VendorID: v, Time: s.now()}, true)
			p.settled, p.delivered = true, true
		}
	case r < 97: // the buyer moves
		a := proto.Clone(addr).(*typev1.Address)
		a.AddressLines = []string{fmt.Sprintf("%d Main St", s.n)}
		s.apply(domain.ChangeShippingAddress{Address: a, By: "buyer:b1", Time: s.now()}, !m.allCancelled() && !m.anyShipped())
	default: // the whole order is cancelled
		ok := m.allCancelled() || !m.anyShipped()
		s.apply(domain.CancelOrder{Reason: "whole", By: "support", Time: s.now()}, ok)
		if ok {
			for _, vendor := range m.vendors {
				if !m.parts[vendor].cancelled {
					m.cancelPart(vendor)
				}
			}
		}
	}
	s.check()
}

// cancelLines cancels random units of random lines, or a whole part.
func (s *partSim) cancelLines(v string) {
	m := &s.m
	c := domain.CancelOrderLines{Reason: "r", By: "buyer:b1", Time: s.now()}
	want := map[string]int64{}
	ok := m.confirmed && !m.allCancelled()
	if s.rng.IntN(4) == 0 {
		c.VendorID = v
		p := m.parts[v]
		ok = ok && !p.cancelled && !p.shipped
		for _, l := range m.lines {
			if l.vendor == v {
				want[l.id] = m.open(l)
			}
		}
	} else {
		for _, l := range m.lines {
			if s.rng.IntN(3) != 0 {
				continue
			}
			n := s.rng.Int64N(m.open(l) + 2) // sometimes one too many
			c.Lines = append(c.Lines, domain.LineCancellation{LineID: l.id, Quantity: n})
			p := m.parts[l.vendor]
			if n == 0 {
				n = m.open(l)
			}
			ok = ok && !p.cancelled && !p.shipped && m.open(l) > 0 && n <= m.open(l)
			want[l.id] = n
		}
		ok = ok && len(c.Lines) > 0
	}
	s.apply(c, ok)
	if !ok {
		return
	}
	for _, l := range m.lines {
		n := want[l.id]
		l.cancelled += n
		m.parts[l.vendor].refunded += n * l.price
		m.refunded += n * l.price
	}
	for _, vendor := range m.vendors {
		left := int64(0)
		for _, l := range m.lines {
			if l.vendor == vendor {
				left += m.open(l)
			}
		}
		if left == 0 {
			m.parts[vendor].cancelled = true
		}
	}
}

// check compares the order with the model.
func (s *partSim) check() {
	t, m, o := s.t, &s.m, s.o
	t.Helper()
	if o.Refunded.Minor != m.refunded {
		t.Errorf("refunded_total %d, refunds recorded %d", o.Refunded.Minor, m.refunded)
	}
	for _, l := range m.lines {
		ol, _ := o.Line(l.id)
		if ol.CancelledQuantity != l.cancelled || ol.RefundedQuantity != l.refundedUnits {
			t.Errorf("line %s: cancelled %d refunded %d units, model %d %d", l.id, ol.CancelledQuantity, ol.RefundedQuantity, l.cancelled, l.refundedUnits)
		}
	}
	for _, v := range m.vendors {
		p, op := m.parts[v], must(o.Part(v))
		if op.Refunded.Minor != p.refunded {
			t.Errorf("part %s: refunded %d, model %d", v, op.Refunded.Minor, p.refunded)
		}
		if got, want := domain.PartStateOf(op), p.state(); got != want {
			t.Errorf("part %s: %v, model %v", v, got, want)
		}
	}
	s.seen[o.Status.String()]++
	if want := m.status(); o.Status != want {
		t.Errorf("status %v, model %v", o.Status, want)
	}
	kept := slices.ContainsFunc(m.vendors, func(v string) bool { return !m.parts[v].cancelled })
	anyDelivered := slices.ContainsFunc(m.vendors, func(v string) bool { return m.parts[v].delivered })
	m.delivered = m.delivered || anyDelivered && m.every(func(p *pPart) bool { return p.cancelled || p.delivered || p.lost() })
	m.completed = m.completed || kept && m.every(func(p *pPart) bool { return p.cancelled || p.settled || p.lost() })
	if o.AllDelivered != m.delivered || o.Completed != m.completed {
		t.Errorf("OrderDelivered %v OrderCompleted %v recorded, model %v %v", o.AllDelivered, o.Completed, m.delivered, m.completed)
	}
	if s.seen["OrderDelivered"] > 1 || s.seen["OrderCompleted"] > 1 {
		t.Errorf("OrderDelivered %d times, OrderCompleted %d times", s.seen["OrderDelivered"], s.seen["OrderCompleted"])
	}
}

func must[T any](v T, _ bool) T { return v }

func (m *pModel) every(f func(*pPart) bool) bool {
	for _, p := range m.parts {
		if !f(p) {
			return false
		}
	}
	return true
}

// lost: shipped, never delivered, refunded in full (nothing to settle).
func (p *pPart) lost() bool {
	return p.shipped && !p.delivered && !p.cancelled && p.refunded == p.subtotal
}

// state is the part's state as the README's table reads.
func (p *pPart) state() domain.PartState {
	switch {
	case p.cancelled:
		return domain.PartCancelled
	case p.settled:
		return domain.PartSettled
	case p.shipped && p.refunded == p.subtotal:
		return domain.PartRefunded
	case p.delivered:
		return domain.PartDelivered
	case p.shipped:
		return domain.PartShipped
	}
	return domain.PartOpen
}

// status is the order's status as the README's table reads.
func (m *pModel) status() domain.Status {
	total := int64(0)
	for _, p := range m.parts {
		total += p.subtotal
	}
	switch {
	case m.allCancelled():
		return domain.StatusCancelled
	case !m.confirmed:
		return domain.StatusPending
	case m.anyShipped() && m.refunded == total:
		return domain.StatusRefunded
	case m.every(func(p *pPart) bool { return p.cancelled || p.settled || p.lost() }):
		return domain.StatusCompleted
	case m.every(func(p *pPart) bool { return p.cancelled || p.delivered || p.lost() }):
		return domain.StatusDelivered
	case m.every(func(p *pPart) bool { return p.cancelled || p.shipped }):
		return domain.StatusShipped
	}
	return domain.StatusConfirmed
}
