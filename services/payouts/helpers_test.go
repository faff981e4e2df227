package payouts_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/platform/platformtest"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/payouts"
	"github.com/custody/custody/services/payouts/domain"
)

// The tests run the payouts module in a real process (platformtest: an
// embedded NATS with JetStream, platform.Run, gRPC over loopback with
// minted tokens) on a fake clock the tests move to close return windows and
// reserve holds. The order, fulfilment and trust services are not ours:
// the tests play their part by emitting their events into their streams.

var t0 = time.Date(2030, 3, 1, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// The package's tests share one platform and never run in parallel: they
// move its clock (only ever forward). Each uses its own vendors, creators
// and orders (platformtest.ID).
var (
	p     *platformtest.Platform
	clk   = clock.NewFake(t0)
	tried = &failures{ids: &sync.Map{}}
)

func TestMain(m *testing.M) {
	platformtest.Main(m, platformtest.Options{
		Clock: clk, Logger: slog.New(tried),
		// The upstream streams exist from the start, as in a whole process.
		Streams: []string{"order", "fulfilment", "trust"},
	}, func(shared *platformtest.Platform) { p = shared }, payouts.NewModule(testOptions()))
}

// testOptions: the defaults, with a 5.00 minimum payout so a creator's
// commission is paid in the end-to-end story.
func testOptions() payouts.Options {
	o := payouts.DefaultOptions()
	o.Policy.MinPayout = domain.MinPayout{Default: 500}
	return o
}

// failures is a log handler that remembers the events a reaction failed on
// (and will retry), so that a test can tell an event was tried.
type failures struct {
	attrs []slog.Attr
	ids   *sync.Map
}

func (f *failures) Enabled(context.Context, slog.Level) bool { return true }

func (f *failures) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "bus: handler failed; will retry" {
		return nil
	}
	attrs := slices.Clone(f.attrs)
	r.Attrs(func(a slog.Attr) bool { attrs = append(attrs, a); return true })
	for _, a := range attrs {
		if a.Key == "event_id" {
			f.ids.Store(a.Value.String(), true)
		}
	}
	return nil
}

func (f *failures) WithAttrs(as []slog.Attr) slog.Handler {
	return &failures{attrs: append(slices.Clone(f.attrs), as...), ids: f.ids}
}

func (f *failures) WithGroup(string) slog.Handler { return f }

// waitTried waits until a reaction has tried, and failed on, each event.
func waitTried(t testing.TB, recs ...eventstore.RecordedEvent) {
	t.Helper()
	for _, r := range recs {
		platformtest.Until(t, "a reaction to try "+r.Type, func() bool { _, ok := tried.ids.Load(r.ID); return ok })
	}
}

// as is a payouts client whose calls carry a token with role ("": none).
func as(t testing.TB, role string) payoutsv1.PayoutsServiceClient {
	t.Helper()
	return platformtest.As(t, p, payoutsv1.NewPayoutsServiceClient, role)
}

// id is a fresh id with prefix, so tests sharing the platform never meet.
func id(prefix string) string { return platformtest.ID(prefix) }

// ledgerEvents returns the decoded events of an order's ledger stream.
func ledgerEvents(t testing.TB, orderID string) []proto.Message {
	t.Helper()
	return p.Events(t, payouts.Name, domain.LedgerAggregate+"-"+orderID)
}

func eur(minor int64) *typev1.Money { return &typev1.Money{CurrencyCode: "EUR", AmountMinor: minor} }

// line is an OrderLine; creator "" for a line the order did not attribute.
func line(id, vendor string, qty, unit int64, creator string, bps int32) *orderv1.OrderLine {
	return &orderv1.OrderLine{LineId: id, SkuId: "sku-" + id, ProductId: "p-" + id, VendorId: vendor, Title: "item " + id,
		Quantity: qty, UnitPrice: eur(unit), LineTotal: eur(qty * unit), CreatorId: creator, CommissionBps: bps}
}

// confirmed builds the OrderConfirmed of an order of lines (parts by
// vendor), attributed to creator (if not "") through a touch an hour ago.
func confirmed(orderID, creator string, lines ...*orderv1.OrderLine) *orderv1.OrderConfirmed {
	oc := &orderv1.OrderConfirmed{OrderId: orderID, BuyerId: "buyer-" + orderID, Lines: lines,
		Payment: &orderv1.Payment{PspReference: "psp-" + orderID}, ConfirmTime: timestamppb.New(clk.Now())}
	var total int64
	for _, l := range lines {
		total += l.GetLineTotal().GetAmountMinor()
		var part *orderv1.VendorPart
		for _, vp := range oc.Parts {
			if vp.GetVendorId() == l.GetVendorId() {
				part = vp
			}
		}
		if part == nil {
			part = &orderv1.VendorPart{VendorId: l.GetVendorId(), Subtotal: eur(0)}
			oc.Parts = append(oc.Parts, part)
		}
		part.LineIds = append(part.LineIds, l.GetLineId())
		part.Subtotal.AmountMinor += l.GetLineTotal().GetAmountMinor()
	}
	oc.Total = eur(total)
	oc.Payment.Amount = eur(total)
	if creator != "" {
		oc.Attribution = &orderv1.AttributionRecord{AffiliateLinkId: "link-" + creator, CreatorId: creator,
			TouchTime: timestamppb.New(clk.Now().Add(-time.Hour))}
	}
	return oc
}

func confirm(t testing.TB, oc *orderv1.OrderConfirmed) []eventstore.RecordedEvent {
	t.Helper()
	return p.Emit(t, "order", "order-"+oc.GetOrderId(), oc)
}

func deliver(t testing.TB, orderID, vendor string) []eventstore.RecordedEvent {
	t.Helper()
	f := "f" + es.DeriveID(orderID, vendor)[:16]
	return p.Emit(t, "fulfilment", "fulfilment-"+f,
		&fulfilmentv1.FulfilmentShipped{FulfilmentId: f, OrderId: orderID, VendorId: vendor, ShipmentId: "s1", Carrier: "dhl",
			TrackingNumber: id("trk"), FullyShipped: true, ShipTime: timestamppb.New(clk.Now())},
		&fulfilmentv1.FulfilmentDelivered{FulfilmentId: f, OrderId: orderID, VendorId: vendor, BuyerId: "buyer-" + orderID,
			DeliverTime: timestamppb.New(clk.Now()), WithProof: true})
}

func claimOpened(t testing.TB, claimID, orderID, vendor string, amount int64) []eventstore.RecordedEvent {
	t.Helper()
	return p.Emit(t, "trust", "claims-"+orderID, &trustv1.ClaimOpened{ClaimId: claimID, OrderId: orderID, VendorId: vendor,
		Reason: trustv1.ClaimReason_CLAIM_REASON_DAMAGED, ClaimedAmount: eur(amount), OpenTime: timestamppb.New(clk.Now())})
}

func claimClosed(t testing.TB, claimID, orderID, vendor, outcome string) {
	t.Helper()
	p.Emit(t, "trust", "claims-"+orderID, &trustv1.ClaimClosed{ClaimId: claimID, OrderId: orderID, VendorId: vendor,
		Outcome: outcome, CloseTime: timestamppb.New(clk.Now())})
}

func refunded(t testing.TB, refundID, orderID, vendor string, amount int64, lines ...*trustv1.ClaimLine) []eventstore.RecordedEvent {
	t.Helper()
	return p.Emit(t, "trust", "claims-"+orderID, &trustv1.RefundIssued{RefundId: refundID, OrderId: orderID, VendorId: vendor,
		Amount: eur(amount), Lines: lines, RefundTime: timestamppb.New(clk.Now())})
}

func tier(t testing.TB, vendor, tier string) {
	t.Helper()
	p.Emit(t, "trust", "vendortrust-"+vendor, &trustv1.TrustScoreChanged{VendorId: vendor, Tier: tier, Score: 100,
		ChangeTime: timestamppb.New(clk.Now())})
}

// balance reads an owner's balance in EUR as support.
func balance(t testing.TB, owner string) *payoutsv1.Balance {
	t.Helper()
	resp, err := as(t, "support").GetBalance(t.Context(), &payoutsv1.GetBalanceRequest{Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range resp.GetBalances() {
		if b.GetCurrencyCode() == "EUR" {
			return b
		}
	}
	return &payoutsv1.Balance{CurrencyCode: "EUR"}
}

// bal is a Balance in minor units, for comparisons.
type bal struct{ escrow, pending, held, available, reserve, paid int64 }

func balOf(b *payoutsv1.Balance) bal {
	return bal{b.GetEscrow().GetAmountMinor(), b.GetPending().GetAmountMinor(), b.GetHeld().GetAmountMinor(),
		b.GetAvailable().GetAmountMinor(), b.GetReserve().GetAmountMinor(), b.GetPaidOut().GetAmountMinor()}
}

// waitBalance polls an owner's balance until it is want.
func waitBalance(t testing.TB, owner string, want bal) {
	t.Helper()
	platformtest.Eventually(t, owner+"'s balance", func() error {
		if got := balOf(balance(t, owner)); got != want {
			return fmt.Errorf("%s: %+v, want %+v", owner, got, want)
		}
		return nil
	})
}

// settlement reads an order's settlement as support.
func settlement(t testing.TB, orderID string) *payoutsv1.OrderSettlement {
	t.Helper()
	resp, err := as(t, "support").GetOrderSettlement(t.Context(), &payoutsv1.GetOrderSettlementRequest{OrderId: orderID})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetSettlement()
}

// waitStage polls until an order's part is in stage.
func waitStage(t testing.TB, orderID, vendor string, stage payoutsv1.FundsStage) *payoutsv1.PartSettlement {
	t.Helper()
	return platformtest.Await(t, orderID+"/"+vendor+" "+stage.String(), func() (*payoutsv1.PartSettlement, error) {
		resp, err := as(t, "support").GetOrderSettlement(t.Context(), &payoutsv1.GetOrderSettlementRequest{OrderId: orderID})
		for _, part := range resp.GetSettlement().GetParts() {
			if part.GetVendorId() == vendor {
				return part, err
			}
		}
		return nil, errors.Join(err, fmt.Errorf("%s has no part for %s", orderID, vendor))
	}, func(part *payoutsv1.PartSettlement) error {
		if part.GetStage() != stage {
			return fmt.Errorf("%s/%s is %s, want %s", orderID, vendor, part.GetStage(), stage)
		}
		return nil
	})
}

// paidTo is what a batch paid a payee.
func paidTo(b *payoutsv1.PayoutBatch, payee string) int64 {
	var sum int64
	for _, l := range b.GetLines() {
		if l.GetPayee() == payee {
			sum += l.GetAmount().GetAmountMinor()
		}
	}
	return sum
}
