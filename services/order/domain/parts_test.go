package domain_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/es/estest"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/order/domain"
)

// Fixtures of the part commands, on the two-vendor order of placed(): v1
// has lines 1 (2 × 10.00) and 3 (1 × 0.99), v2 line 2 (3 × 5.00).
var (
	confirmedEv = func() *orderv1.OrderConfirmed {
		return &orderv1.OrderConfirmed{OrderId: "o1", BuyerId: "b1", Parts: placed().Parts, Lines: placed().Lines,
			Total: placed().Total, Payment: placed().Payment, ShippingAddress: addr, ConfirmTime: ts(time.Minute)}
	}
	shippedEv = func(v string) *orderv1.OrderPartShipped {
		return &orderv1.OrderPartShipped{OrderId: "o1", VendorId: v, ShipmentId: "s-" + v, ShipTime: ts(time.Hour)}
	}
	settledEv = func(v string) *orderv1.OrderPartSettled {
		return &orderv1.OrderPartSettled{OrderId: "o1", VendorId: v, SettleTime: ts(30 * 24 * time.Hour)}
	}
	settle = func(v string) domain.MarkPartSettled {
		return domain.MarkPartSettled{VendorID: v, Time: t0.Add(30 * 24 * time.Hour)}
	}
	deliveredAt = func(d time.Duration) *orderv1.OrderDelivered {
		return &orderv1.OrderDelivered{OrderId: "o1", DeliverTime: ts(d)}
	}
	completedAt = func(d time.Duration) *orderv1.OrderCompleted {
		return &orderv1.OrderCompleted{OrderId: "o1", CompleteTime: ts(d)}
	}
	lineCancelled = func(line, sku, product, vendor string, n, amount int64) *orderv1.CancelledLine {
		return &orderv1.CancelledLine{LineId: line, SkuId: sku, ProductId: product, VendorId: vendor, Quantity: n, Amount: eur(amount).ToProto()}
	}
)

const cancelAt = 2 * time.Hour

func cancelLines(lines ...domain.LineCancellation) domain.CancelOrderLines {
	return domain.CancelOrderLines{Lines: lines, Reason: "too many", By: "buyer:b1", Time: t0.Add(cancelAt)}
}

func linesCancelled(refund, total int64, closed []string, lines ...*orderv1.CancelledLine) *orderv1.OrderLinesCancelled {
	return &orderv1.OrderLinesCancelled{OrderId: "o1", Lines: lines, Refund: eur(refund).ToProto(), RefundedTotal: eur(total).ToProto(),
		ClosedVendorIds: closed, Reason: "too many", CancelledBy: "buyer:b1", CancelTime: ts(cancelAt), BuyerId: "b1"}
}

func shipBy(v string) domain.RecordPartCancelled {
	return domain.RecordPartCancelled{VendorID: v, FulfilmentID: "f-" + v, Reason: "ship-by deadline missed", By: "service:fulfilment", Time: t0.Add(cancelAt)}
}

func partCancelled(v string, refund, total int64) *orderv1.OrderPartCancelled {
	return &orderv1.OrderPartCancelled{OrderId: "o1", VendorId: v, FulfilmentId: "f-" + v, Reason: "ship-by deadline missed",
		CancelledBy: "service:fulfilment", Refund: eur(refund).ToProto(), RefundedTotal: eur(total).ToProto(), CancelTime: ts(cancelAt)}
}

func TestDecideParts(t *testing.T) {
	placedEv, confirmed := placed(), confirmedEv()
	line2 := func(n, amount int64) *orderv1.CancelledLine { return lineCancelled("2", "p2-b", "p2", "v2", n, amount) }
	v2Closed := linesCancelled(1500, 1500, []string{"v2"}, line2(3, 1500))
	byVendor := cancelLines()
	byVendor.VendorID = "v2"
	asVendor := func(c domain.CancelOrderLines, v string) domain.CancelOrderLines { c.Vendor = v; return c }
	orderCancelled := &orderv1.OrderCancelled{OrderId: "o1", Reason: "too many", CancelledBy: "buyer:b1", CancelTime: ts(cancelAt), ProductIds: []string{"p1", "p2", "p3"},
		BuyerId: "b1"}
	rejected := &orderv1.OrderRejected{OrderId: "o1", Reason: "sold out", SkuId: "p2-b", RejectTime: ts(time.Minute)}
	all := cancelLines(domain.LineCancellation{LineID: "1"}, domain.LineCancellation{LineID: "2"}, domain.LineCancellation{LineID: "3"})
	other := &typev1.Address{RecipientName: "Ada", AddressLines: []string{"2 Side St"}, Locality: "Berlin", CountryCode: "DE"}
	move := func(a *typev1.Address) domain.ChangeShippingAddress {
		return domain.ChangeShippingAddress{Address: a, By: "buyer:b1", Time: t0.Add(time.Hour)}
	}
	moved := &orderv1.OrderAddressChanged{OrderId: "o1", ShippingAddress: other, ChangedBy: "buyer:b1", ChangeTime: ts(time.Hour), BuyerId: "b1"}
	refundLines := domain.RecordRefund{RefundID: "r1", Amount: eur(1000), Time: t0.Add(72 * time.Hour),
		Lines: []domain.RefundLine{{LineID: "1", Quantity: 1, Amount: eur(1000)}}}
	refundedLines := refunded("r1", 1000, 1000, false)
	refundedLines.VendorId, refundedLines.Lines = "v1", []*orderv1.RefundedLine{{LineId: "1", Quantity: 1, Amount: eur(1000).ToProto()}}

	estest.Run(t, domain.Decider, "o1", []estest.Case[domain.Command]{
		// CancelOrderLines.
		{Name: "cancel one unit of a line", Given: []proto.Message{placedEv, confirmed},
			When: cancelLines(domain.LineCancellation{LineID: "1", Quantity: 1}),
			Then: []proto.Message{linesCancelled(1000, 1000, nil, lineCancelled("1", "p1-a", "p1", "v1", 1, 1000))}},
		{Name: "quantity 0 cancels every unit left and closes the part", Given: []proto.Message{placedEv, confirmed},
			When: cancelLines(domain.LineCancellation{LineID: "2"}), Then: []proto.Message{v2Closed}},
		{Name: "units left after an earlier cancellation", Given: []proto.Message{placedEv, confirmed, linesCancelled(500, 500, nil, line2(1, 500))},
			When: cancelLines(domain.LineCancellation{LineID: "2"}), Then: []proto.Message{linesCancelled(1000, 1500, []string{"v2"}, line2(2, 1000))}},
		{Name: "a vendor's whole part", Given: []proto.Message{placedEv, confirmed}, When: byVendor, Then: []proto.Message{v2Closed}},
		{Name: "a vendor cancels its own part", Given: []proto.Message{placedEv, confirmed}, When: asVendor(byVendor, "v2"), Then: []proto.Message{v2Closed}},
		{Name: "a vendor cancels its own line", Given: []proto.Message{placedEv, confirmed}, When: asVendor(cancelLines(domain.LineCancellation{LineID: "2"}), "v2"), Then: []proto.Message{v2Closed}},
		{Name: "everything left of an order that shipped nothing cancels it", Given: []proto.Message{placedEv, confirmed},
			When: all, Then: []proto.Message{orderCancelled}},
		{Name: "everything left after a part was cancelled cancels the order", Given: []proto.Message{placedEv, confirmed, partCancelled("v2", 1500, 1500)},
			When: cancelLines(domain.LineCancellation{LineID: "1"}, domain.LineCancellation{LineID: "3"}), Then: []proto.Message{orderCancelled}},
		{Name: "the last open part cancelled after the other was delivered", Given: []proto.Message{placedEv, confirmed, shippedEv("v1"), partDelivered("v1", true)},
			When: cancelLines(domain.LineCancellation{LineID: "2"}), Then: []proto.Message{v2Closed, deliveredAt(cancelAt)}},
		{Name: "the last open part cancelled after the other was settled", Given: []proto.Message{placedEv, confirmed, shippedEv("v1"), partDelivered("v1", true), settledEv("v1")},
			When: byVendor, Then: []proto.Message{v2Closed, deliveredAt(cancelAt), completedAt(cancelAt)}},
		{Name: "pending: nothing is reserved yet", Given: []proto.Message{placedEv}, When: byVendor, Err: estest.Precondition(domain.ReasonPending)},
		{Name: "rejected", Given: []proto.Message{placedEv, rejected}, When: byVendor, Err: estest.Precondition(domain.ReasonRejected)},
		{Name: "cancelled", Given: []proto.Message{placedEv, confirmed, orderCancelled}, When: byVendor, Err: estest.Precondition(domain.ReasonCancelled)},
		{Name: "a shipped line", Given: []proto.Message{placedEv, confirmed, shippedEv("v1")},
			When: cancelLines(domain.LineCancellation{LineID: "2"}, domain.LineCancellation{LineID: "3"}), Err: estest.Precondition(domain.ReasonShipped)},
		{Name: "a shipped part", Given: []proto.Message{placedEv, confirmed, shippedEv("v2")}, When: byVendor, Err: estest.Precondition(domain.ReasonShipped)},
		{Name: "a cancelled part", Given: []proto.Message{placedEv, confirmed, partCancelled("v2", 1500, 1500)}, When: byVendor, Err: estest.Precondition(domain.ReasonPartCancelled)},
		{Name: "a line of a cancelled part", Given: []proto.Message{placedEv, confirmed, v2Closed},
			When: cancelLines(domain.LineCancellation{LineID: "2", Quantity: 1}), Err: estest.Precondition(domain.ReasonPartCancelled)},
		{Name: "more units than are left", Given: []proto.Message{placedEv, confirmed, linesCancelled(500, 500, nil, line2(1, 500))},
			When: cancelLines(domain.LineCancellation{LineID: "1", Quantity: 1}, domain.LineCancellation{LineID: "2", Quantity: 3}), Err: estest.Invalid("lines[1].quantity")},
		{Name: "a negative quantity", Given: []proto.Message{placedEv, confirmed},
			When: cancelLines(domain.LineCancellation{LineID: "2", Quantity: -1}), Err: estest.Invalid("lines[0].quantity")},
		{Name: "an unknown line", Given: []proto.Message{placedEv, confirmed},
			When: cancelLines(domain.LineCancellation{LineID: "1"}, domain.LineCancellation{LineID: "9"}), Err: estest.Invalid("lines[1].line_id")},
		{Name: "a line twice", Given: []proto.Message{placedEv, confirmed},
			When: cancelLines(domain.LineCancellation{LineID: "1"}, domain.LineCancellation{LineID: "1"}), Err: estest.Invalid("lines[1].line_id")},
		{Name: "no lines and no vendor", Given: []proto.Message{placedEv, confirmed}, When: cancelLines(), Err: estest.Invalid("lines")},
		{Name: "an unknown vendor", Given: []proto.Message{placedEv, confirmed},
			When: domain.CancelOrderLines{VendorID: "v9"}, Err: estest.Invalid("vendor_id")},
		{Name: "a vendor cancels another's line", Given: []proto.Message{placedEv, confirmed},
			When: asVendor(cancelLines(domain.LineCancellation{LineID: "2"}), "v1"), Err: domain.ErrOtherVendor},
		{Name: "a vendor cancels another's part", Given: []proto.Message{placedEv, confirmed}, When: asVendor(byVendor, "v1"), Err: domain.ErrOtherVendor},
		{Name: "cancel lines of an unknown order", When: byVendor, Err: domain.ErrNotPlaced},

		// RecordPartCancelled (fulfilment's FulfilmentCancelled).
		{Name: "ship-by cancels one part, refunding it", Given: []proto.Message{placedEv, confirmed},
			When: shipBy("v2"), Then: []proto.Message{partCancelled("v2", 1500, 1500)}},
		{Name: "ship-by refunds what was left of the part", Given: []proto.Message{placedEv, confirmed, linesCancelled(500, 500, nil, line2(1, 500))},
			When: shipBy("v2"), Then: []proto.Message{partCancelled("v2", 1000, 1500)}},
		{Name: "ship-by on an order not captured refunds nothing", Given: []proto.Message{placedEv},
			When: shipBy("v2"), Then: []proto.Message{partCancelled("v2", 0, 0)}},
		{Name: "ship-by of the last open part after the other was delivered", Given: []proto.Message{placedEv, confirmed, shippedEv("v1"), partDelivered("v1", true)},
			When: shipBy("v2"), Then: []proto.Message{partCancelled("v2", 1500, 1500), deliveredAt(cancelAt)}},
		{Name: "ship-by of a part already cancelled decides nothing", Given: []proto.Message{placedEv, confirmed, v2Closed}, When: shipBy("v2")},
		{Name: "ship-by of a cancelled order decides nothing", Given: []proto.Message{placedEv, confirmed, orderCancelled}, When: shipBy("v2")},
		{Name: "ship-by of a shipped part is refused", Given: []proto.Message{placedEv, confirmed, shippedEv("v2")}, When: shipBy("v2"), Err: estest.Precondition(domain.ReasonShipped)},
		{Name: "ship-by of an unknown part", Given: []proto.Message{placedEv, confirmed}, When: shipBy("v9"), Err: estest.Precondition(domain.ReasonUnknown)},

		// MarkPartDelivered, MarkPartSettled.
		{Name: "the last kept part delivered", Given: []proto.Message{placedEv, confirmed, partCancelled("v2", 1500, 1500), shippedEv("v1")},
			When: delivered("v1", true), Then: []proto.Message{partDelivered("v1", true), deliveredAt(48 * time.Hour)}},
		{Name: "one part settled", Given: []proto.Message{placedEv, confirmed, shippedEv("v1"), shippedEv("v2"), partDelivered("v1", true), partDelivered("v2", true), deliveredAt(48 * time.Hour)},
			When: settle("v1"), Then: []proto.Message{settledEv("v1")}},
		{Name: "the last part settled completes the order", Given: []proto.Message{placedEv, confirmed, shippedEv("v1"), shippedEv("v2"), partDelivered("v1", true), partDelivered("v2", true), deliveredAt(48 * time.Hour), settledEv("v1")},
			When: settle("v2"), Then: []proto.Message{settledEv("v2"), completedAt(30 * 24 * time.Hour)}},
		{Name: "settled beside a cancelled part completes the order", Given: []proto.Message{placedEv, confirmed, partCancelled("v2", 1500, 1500), shippedEv("v1"), partDelivered("v1", true), deliveredAt(48 * time.Hour)},
			When: settle("v1"), Then: []proto.Message{settledEv("v1"), completedAt(30 * 24 * time.Hour)}},
		{Name: "settled before fulfilment's delivery reached the order", Given: []proto.Message{placedEv, confirmed, partCancelled("v2", 1500, 1500), shippedEv("v1")},
			When: settle("v1"), Then: []proto.Message{settledEv("v1"), deliveredAt(30 * 24 * time.Hour), completedAt(30 * 24 * time.Hour)}},
		{Name: "settled twice decides nothing", Given: []proto.Message{placedEv, confirmed, shippedEv("v1"), partDelivered("v1", true), settledEv("v1")}, When: settle("v1")},
		{Name: "a cancelled part is not settled", Given: []proto.Message{placedEv, confirmed, partCancelled("v2", 1500, 1500)}, When: settle("v2")},
		{Name: "settle an unknown part", Given: []proto.Message{placedEv, confirmed}, When: settle("v9"), Err: estest.Precondition(domain.ReasonUnknown)},

		// RecordRefund with lines.
		{Name: "a refund names its vendor and lines", Given: []proto.Message{placedEv, confirmed, shippedEv("v1")}, When: refundLines, Then: []proto.Message{refundedLines}},

		// ChangeShippingAddress.
		{Name: "change the address of a confirmed order", Given: []proto.Message{placedEv, confirmed}, When: move(other), Then: []proto.Message{moved}},
		{Name: "change the address of a pending order", Given: []proto.Message{placedEv}, When: move(other), Then: []proto.Message{moved}},
		{Name: "the same address decides nothing", Given: []proto.Message{placedEv, confirmed, moved}, When: move(other)},
		{Name: "a second change names the buyer too", Given: []proto.Message{placedEv, confirmed, moved}, When: move(addr),
			Then: []proto.Message{&orderv1.OrderAddressChanged{OrderId: "o1", ShippingAddress: addr, ChangedBy: "buyer:b1", ChangeTime: ts(time.Hour), BuyerId: "b1"}}},
		{Name: "change after a part shipped", Given: []proto.Message{placedEv, confirmed, shippedEv("v2")}, When: move(other), Err: estest.Precondition(domain.ReasonShipped)},
		{Name: "change a rejected order", Given: []proto.Message{placedEv, rejected}, When: move(other), Err: estest.Precondition(domain.ReasonRejected)},
		{Name: "change a cancelled order", Given: []proto.Message{placedEv, confirmed, orderCancelled}, When: move(other), Err: estest.Precondition(domain.ReasonCancelled)},
		{Name: "change an unknown order", When: move(other), Err: domain.ErrNotPlaced},
	})
}

// TestEvolveParts: what the part events leave in the order — units per
// line, money per part and in all, the parts' states and the reason.
func TestEvolveParts(t *testing.T) {
	o := fold([]proto.Message{placed(), confirmedEv(),
		linesCancelled(1000, 1000, nil, lineCancelled("1", "p1-a", "p1", "v1", 1, 1000)),
		partCancelled("v2", 1500, 2500), shippedEv("v1")})
	line := func(id string) domain.Line { l, _ := o.Line(id); return l }
	part := func(v string) domain.Part { p, _ := o.Part(v); return p }
	if line("1").CancelledQuantity != 1 || line("2").CancelledQuantity != 3 || line("3").CancelledQuantity != 0 {
		t.Fatalf("cancelled units: %+v", o.Lines)
	}
	if part("v1").Refunded != eur(1000) || part("v2").Refunded != eur(1500) || o.Refunded != eur(2500) {
		t.Fatalf("refunded: v1 %v, v2 %v, order %v", part("v1").Refunded, part("v2").Refunded, o.Refunded)
	}
	if p := part("v2"); !p.Cancelled || p.CancelReason != "ship-by deadline missed" || p.CancelledBy != "service:fulfilment" || domain.PartStateOf(p) != domain.PartCancelled {
		t.Fatalf("v2: %+v", p)
	}
	if o.Status != domain.StatusShipped || o.Reason != "" {
		t.Fatalf("status %v, reason %q", o.Status, o.Reason)
	}
	refund := refunded("r1", 1099, 3599, true)
	refund.VendorId, refund.Lines = "v1", []*orderv1.RefundedLine{{LineId: "1", Quantity: 1, Amount: eur(1000).ToProto()}, {LineId: "3", Quantity: 1, Amount: eur(99).ToProto()}}
	o = domain.Evolve(o, refund)
	if line("1").RefundedQuantity != 1 || line("3").RefundedQuantity != 1 || part("v1").Refunded != eur(2099) ||
		domain.PartStateOf(part("v1")) != domain.PartRefunded || o.Status != domain.StatusRefunded {
		t.Fatalf("after refund: %+v, status %v", o.Parts, o.Status)
	}

	// A single-vendor order whose part fulfilment cancels is cancelled,
	// with the part's reason.
	one := fold([]proto.Message{placed(), confirmedEv(), partCancelled("v2", 1500, 1500), partCancelled("v1", 2099, 3599)})
	if one.Status != domain.StatusCancelled || one.Reason != "ship-by deadline missed" || one.CancelledBy != "service:fulfilment" || one.Refunded != eur(3599) {
		t.Fatalf("every part cancelled: status %v, reason %q by %q, refunded %v", one.Status, one.Reason, one.CancelledBy, one.Refunded)
	}
	// A confirmed order cancelled whole had all its money back, a pending
	// one none (nothing was captured).
	cancelled := &orderv1.OrderCancelled{OrderId: "o1", Reason: "r", CancelledBy: "support", CancelTime: ts(time.Hour)}
	if c := fold([]proto.Message{placed(), confirmedEv(), cancelled}); c.Refunded != eur(3599) || c.Status != domain.StatusCancelled {
		t.Fatalf("confirmed, cancelled: %v %v", c.Status, c.Refunded)
	}
	if c := fold([]proto.Message{placed(), cancelled}); c.Refunded.Minor != 0 || c.Status != domain.StatusCancelled {
		t.Fatalf("pending, cancelled: %v %v", c.Status, c.Refunded)
	}
}

// outcome is what happens to one part in TestDeriveStatus, as commands.
type outcome byte

// The outcomes of a part: O open, S shipped, D delivered, C cancelled by
// fulfilment, R delivered and refunded in full, T settled.
const outcomes = "OSDCRTN"

func (x outcome) commands(v string, subtotal int64) []domain.Command {
	ship := domain.MarkPartShipped{VendorID: v, ShipmentID: "s-" + v, Time: t0.Add(time.Hour)}
	deliver := delivered(v, true)
	switch x {
	case 'S':
		return []domain.Command{ship}
	case 'D':
		return []domain.Command{ship, deliver}
	case 'C':
		return []domain.Command{shipBy(v)}
	case 'R':
		return []domain.Command{ship, deliver, domain.RecordRefund{RefundID: "r-" + v, Amount: eur(subtotal), VendorID: v, Time: t0.Add(72 * time.Hour)}}
	case 'T':
		return []domain.Command{ship, deliver, settle(v)}
	case 'N': // never delivered; refunded in full on a not-received claim
		return []domain.Command{ship, domain.RecordRefund{RefundID: "r-" + v, Amount: eur(subtotal), VendorID: v, Time: t0.Add(144 * time.Hour)}}
	}
	return nil
}

// TestDeriveStatus: every combination of the two parts' outcomes, decided
// and evolved, gives the status of DeriveStatus's table and each part the
// state of PartStateOf's.
func TestDeriveStatus(t *testing.T) {
	// Row: v1's outcome, column: v2's (in the order of outcomes).
	want := map[string][7]domain.Status{
		"O": {domain.StatusConfirmed, domain.StatusConfirmed, domain.StatusConfirmed, domain.StatusConfirmed, domain.StatusConfirmed, domain.StatusConfirmed, domain.StatusConfirmed},
		"S": {domain.StatusConfirmed, domain.StatusShipped, domain.StatusShipped, domain.StatusShipped, domain.StatusShipped, domain.StatusShipped, domain.StatusShipped},
		"D": {domain.StatusConfirmed, domain.StatusShipped, domain.StatusDelivered, domain.StatusDelivered, domain.StatusDelivered, domain.StatusDelivered, domain.StatusDelivered},
		"C": {domain.StatusConfirmed, domain.StatusShipped, domain.StatusDelivered, domain.StatusCancelled, domain.StatusRefunded, domain.StatusCompleted, domain.StatusRefunded},
		"R": {domain.StatusConfirmed, domain.StatusShipped, domain.StatusDelivered, domain.StatusRefunded, domain.StatusRefunded, domain.StatusDelivered, domain.StatusRefunded},
		"T": {domain.StatusConfirmed, domain.StatusShipped, domain.StatusDelivered, domain.StatusCompleted, domain.StatusDelivered, domain.StatusCompleted, domain.StatusCompleted},
		"N": {domain.StatusConfirmed, domain.StatusShipped, domain.StatusDelivered, domain.StatusRefunded, domain.StatusRefunded, domain.StatusCompleted, domain.StatusRefunded},
	}
	partState := map[byte]domain.PartState{'O': domain.PartOpen, 'S': domain.PartShipped, 'D': domain.PartDelivered,
		'C': domain.PartCancelled, 'R': domain.PartRefunded, 'T': domain.PartSettled, 'N': domain.PartRefunded}
	for i := range len(outcomes) {
		for j := range len(outcomes) {
			a, b := outcomes[i], outcomes[j]
			t.Run(string([]byte{a, b}), func(t *testing.T) {
				cmds := append([]domain.Command{place(), domain.ConfirmOrder{Time: t0.Add(time.Minute)}}, outcome(a).commands("v1", 2099)...)
				o := decideAll(t, append(cmds, outcome(b).commands("v2", 1500)...)...)
				if w := want[string(a)][j]; o.Status != w || domain.DeriveStatus(o) != w {
					t.Errorf("status %v, want %v", o.Status, w)
				}
				for k, x := range []byte{a, b} {
					if got := domain.PartStateOf(o.Parts[k]); got != partState[x] {
						t.Errorf("part %s: %v, want %v", o.Parts[k].VendorID, got, partState[x])
					}
				}
			})
		}
	}
	for _, tc := range []struct {
		name string
		cmds []domain.Command
		want domain.Status
	}{
		{"placed", []domain.Command{place()}, domain.StatusPending},
		{"rejected", []domain.Command{place(), domain.RejectOrder{SKUID: "p2-b", Time: t0}}, domain.StatusRejected},
		{"cancelled while pending", []domain.Command{place(), domain.CancelOrder{Time: t0}}, domain.StatusCancelled},
		{"a part cancelled while pending", []domain.Command{place(), shipBy("v1")}, domain.StatusPending},
		{"cancelled whole", []domain.Command{place(), domain.ConfirmOrder{Time: t0}, domain.CancelOrder{Time: t0}}, domain.StatusCancelled},
		{"refunded in full before shipping", []domain.Command{place(), domain.ConfirmOrder{Time: t0}, refund("r1", 3599)}, domain.StatusConfirmed},
	} {
		if o := decideAll(t, tc.cmds...); o.Status != tc.want {
			t.Errorf("%s: status %v, want %v", tc.name, o.Status, tc.want)
		}
	}
}

// decideAll decides and evolves cmds in turn on order o1.
func decideAll(t *testing.T, cmds ...domain.Command) domain.Order {
	t.Helper()
	o := domain.Decider.Initial("o1")
	for _, c := range cmds {
		events, err := domain.Decide(o, c)
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		for _, e := range events {
			o = domain.Evolve(o, e)
		}
	}
	return o
}

// fold evolves events onto order o1.
func fold(events []proto.Message) domain.Order {
	o := domain.Decider.Initial("o1")
	for _, e := range events {
		o = domain.Evolve(o, e)
	}
	return o
}
