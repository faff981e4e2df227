package payouts_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/natsembed"
	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/pkg/server"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/payouts"
	"github.com/custody/custody/services/payouts/app"
	"github.com/custody/custody/services/payouts/domain"
)

// The tests run the real thing: an embedded nats-server with JetStream,
// the payouts module inside platform.Run (as `custody run --target=payouts`
// against an external NATS), real gRPC over loopback with minted tokens,
// and a fake clock the tests move to close return windows and reserve
// holds. The order, fulfilment and trust services are not ours, so the
// tests play their part by appending their events to their streams.

const waitFor = 20 * time.Second

var t0 = time.Date(2030, 3, 1, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// shared is one environment for the package's tests: they do not run in
// parallel and use their own vendors, creators and orders. Tests that move
// the clock only ever move it forward.
var shared *env

func TestMain(m *testing.M) {
	e, err := newEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the test environment:", err)
		os.Exit(1)
	}
	shared = e
	code := m.Run()
	e.close()
	os.Exit(code)
}

// testOptions: the defaults, with a 5.00 minimum payout so a creator's
// commission is paid in the end-to-end story.
func testOptions() payouts.Options {
	p := domain.DefaultPolicy()
	p.MinPayout = domain.MinPayout{Default: 500}
	return payouts.Options{Policy: p}
}

type env struct {
	dir   string
	nats  *natsembed.Server
	nc    *nats.Conn
	clock *clock.Fake
	up    map[string]*esjs.Store // upstream streams, written by the tests
	own   *esjs.Store            // the payouts stream, read-only
	addr  string

	stop func() error

	mu      sync.Mutex
	clients map[string]payoutsv1.PayoutsServiceClient
	conns   []*grpc.ClientConn
}

func newEnv() (*env, error) {
	dir, err := os.MkdirTemp("", "custody-payouts-test-")
	if err != nil {
		return nil, err
	}
	srv, err := natsembed.Start(natsembed.Config{DataDir: filepath.Join(dir, "nats"), Listen: true, Host: "127.0.0.1"})
	if err != nil {
		return nil, err
	}
	nc, err := srv.Connect()
	if err != nil {
		return nil, err
	}
	e := &env{dir: dir, nats: srv, nc: nc, clock: clock.NewFake(t0), up: map[string]*esjs.Store{},
		clients: map[string]payoutsv1.PayoutsServiceClient{}}
	for _, svc := range []string{"order", "fulfilment", "trust"} {
		st, err := esjs.Open(context.Background(), nc, esjs.Config{Service: svc, Now: e.clock.Now})
		if err != nil {
			return nil, err
		}
		e.up[svc] = st
	}
	if err := e.start(); err != nil {
		return nil, err
	}
	return e, nil
}

// start runs the payouts module in platform.Run until stop.
func (e *env) start() error {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	cfg := platform.Config{
		Version: "test", DataDir: e.dir, GRPCAddr: "127.0.0.1:0", NATSURL: e.nats.ClientURL(),
		Clock: e.clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnReady: func(grpcAddr, _ string) { ready <- grpcAddr },
	}
	go func() { done <- platform.Run(ctx, cfg, []platform.Module{payouts.NewModule(testOptions())}) }()
	select {
	case e.addr = <-ready:
	case err := <-done:
		cancel()
		return fmt.Errorf("platform.Run ended: %w", err)
	case <-time.After(waitFor):
		cancel()
		return errors.New("payouts module not serving")
	}
	var once sync.Once
	var stopErr error
	e.stop = func() error {
		once.Do(func() { cancel(); stopErr = <-done })
		return stopErr
	}
	own, err := esjs.Open(ctx, e.nc, esjs.Config{Service: "payouts", ReadOnly: true})
	e.own = own
	return err
}

// restart stops the process and starts it again on the same NATS.
func (e *env) restart() error {
	if err := e.stop(); err != nil {
		return err
	}
	e.mu.Lock()
	for _, c := range e.conns {
		c.Close()
	}
	e.conns, e.clients = nil, map[string]payoutsv1.PayoutsServiceClient{}
	e.mu.Unlock()
	return e.start()
}

func (e *env) close() {
	if e.stop != nil {
		_ = e.stop()
	}
	for _, c := range e.conns {
		c.Close()
	}
	e.nc.Close()
	e.nats.Shutdown()
	os.RemoveAll(e.dir)
}

// as returns a client whose calls carry a token with role ("" for none).
func (e *env) as(t testing.TB, role string) payoutsv1.PayoutsServiceClient {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.clients[role]; ok {
		return c
	}
	tok := ""
	if role != "" {
		var err error
		if tok, err = platform.MintToken(e.dir, "", "", []string{role}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := server.Dial(e.addr, tok)
	if err != nil {
		t.Fatal(err)
	}
	e.conns = append(e.conns, conn)
	c := payoutsv1.NewPayoutsServiceClient(conn)
	e.clients[role] = c
	return c
}

var seq atomic.Int64

// uniq returns a fresh id with prefix, so tests sharing the env never meet.
func uniq(prefix string) string { return fmt.Sprintf("%s%d", prefix, seq.Add(1)) }

// emit appends events to an upstream service's stream, as that service
// would, and returns them as stored.
func (e *env) emit(t testing.TB, service, stream string, msgs ...proto.Message) []eventstore.RecordedEvent {
	t.Helper()
	var evs []eventstore.EventData
	for _, m := range msgs {
		ed, err := es.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		ed.ID = uniq("ev-")
		ed.Metadata = eventstore.Metadata{Actor: "service:" + service}
		evs = append(evs, ed)
	}
	st := e.up[service]
	res, err := st.Append(t.Context(), stream, eventstore.Any, evs)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := st.ReadStream(t.Context(), stream, res.LastRevision+1-uint64(len(evs)), 0)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// settled waits until the payouts consumers have handled every upstream
// event stored so far.
func (e *env) settled(t testing.TB) {
	t.Helper()
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	for svc, name := range map[string]string{"order": app.OrderConsumer, "fulfilment": app.FulfilmentConsumer, "trust": app.TrustConsumer} {
		pos, err := e.up[svc].LastPosition(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		last, _ := esjs.SplitPosition(pos)
		eventually(t, func() error {
			c, err := js.Consumer(t.Context(), esjs.StreamNameFor(svc), name)
			if err != nil {
				return err
			}
			info, err := c.Info(t.Context())
			if err != nil {
				return err
			}
			if info.AckFloor.Stream < last || info.NumAckPending > 0 {
				return fmt.Errorf("%s acked up to %d of %d, %d pending", name, info.AckFloor.Stream, last, info.NumAckPending)
			}
			return nil
		})
	}
}

// tried waits until a consumer has been handed every event of its stream
// stored so far (handled or not).
func (e *env) tried(t testing.TB, svc, consumer string) {
	t.Helper()
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	pos, err := e.up[svc].LastPosition(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	last, _ := esjs.SplitPosition(pos)
	eventually(t, func() error {
		c, err := js.Consumer(t.Context(), esjs.StreamNameFor(svc), consumer)
		if err != nil {
			return err
		}
		info, err := c.Info(t.Context())
		if err != nil {
			return err
		}
		if info.Delivered.Stream < last {
			return fmt.Errorf("%s delivered up to %d of %d", consumer, info.Delivered.Stream, last)
		}
		return nil
	})
}

// ownPosition is the payouts stream's last position.
func (e *env) ownPosition(t testing.TB) uint64 {
	t.Helper()
	p, err := e.own.LastPosition(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ledgerEvents returns the decoded events of an order's ledger stream.
func (e *env) ledgerEvents(t testing.TB, orderID string) []proto.Message {
	t.Helper()
	recs, err := e.own.ReadStream(t.Context(), domain.LedgerAggregate+"-"+orderID, 0, 0)
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []proto.Message
	for _, r := range recs {
		ev, err := es.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev.Payload)
	}
	return out
}

// advance moves the fake clock.
func (e *env) advance(d time.Duration) { e.clock.Advance(d) }

// eventually retries f until it succeeds or the deadline passes.
func eventually(t testing.TB, f func() error) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %v", waitFor, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func eur(minor int64) *typev1.Money { return &typev1.Money{CurrencyCode: "EUR", AmountMinor: minor} }

// line is an OrderLine; creator "" for an unattributed line.
func line(id, vendor string, qty, unit int64, creator string, bps int32) *orderv1.OrderLine {
	return &orderv1.OrderLine{LineId: id, SkuId: "sku-" + id, ProductId: "p-" + id, VendorId: vendor, Title: "item " + id,
		Quantity: qty, UnitPrice: eur(unit), LineTotal: eur(qty * unit), CreatorId: creator, CommissionBps: bps}
}

// confirmed builds the OrderConfirmed of an order of lines (parts by vendor).
func (e *env) confirmed(orderID, creator string, lines ...*orderv1.OrderLine) *orderv1.OrderConfirmed {
	oc := &orderv1.OrderConfirmed{OrderId: orderID, BuyerId: "buyer-" + orderID, Lines: lines,
		Payment: &orderv1.Payment{PspReference: "psp-" + orderID}, ConfirmTime: timestamppb.New(e.clock.Now())}
	var total int64
	for _, l := range lines {
		total += l.GetLineTotal().GetAmountMinor()
		var part *orderv1.VendorPart
		for _, p := range oc.Parts {
			if p.GetVendorId() == l.GetVendorId() {
				part = p
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
			TouchTime: timestamppb.New(e.clock.Now().Add(-time.Hour))}
	}
	return oc
}

func (e *env) confirm(t testing.TB, oc *orderv1.OrderConfirmed) []eventstore.RecordedEvent {
	t.Helper()
	return e.emit(t, "order", "order-"+oc.GetOrderId(), oc)
}

func (e *env) deliver(t testing.TB, orderID, vendor string) {
	t.Helper()
	f := "f" + es.DeriveID(orderID, vendor)[:16]
	e.emit(t, "fulfilment", "fulfilment-"+f,
		&fulfilmentv1.FulfilmentShipped{FulfilmentId: f, OrderId: orderID, VendorId: vendor, ShipmentId: "s1", Carrier: "dhl",
			TrackingNumber: uniq("trk"), FullyShipped: true, ShipTime: timestamppb.New(e.clock.Now())},
		&fulfilmentv1.FulfilmentDelivered{FulfilmentId: f, OrderId: orderID, VendorId: vendor, BuyerId: "buyer-" + orderID,
			DeliverTime: timestamppb.New(e.clock.Now()), WithProof: true})
}

func (e *env) claimOpened(t testing.TB, claimID, orderID, vendor string, amount int64) {
	t.Helper()
	e.emit(t, "trust", "claim-"+claimID, &trustv1.ClaimOpened{ClaimId: claimID, OrderId: orderID, VendorId: vendor,
		Reason: trustv1.ClaimReason_CLAIM_REASON_DAMAGED, ClaimedAmount: eur(amount), OpenTime: timestamppb.New(e.clock.Now())})
}

func (e *env) claimClosed(t testing.TB, claimID, orderID, vendor, outcome string) {
	t.Helper()
	e.emit(t, "trust", "claim-"+claimID, &trustv1.ClaimClosed{ClaimId: claimID, OrderId: orderID, VendorId: vendor,
		Outcome: outcome, CloseTime: timestamppb.New(e.clock.Now())})
}

func (e *env) refunded(t testing.TB, refundID, orderID, vendor string, amount int64, lines ...*trustv1.ClaimLine) []eventstore.RecordedEvent {
	t.Helper()
	return e.emit(t, "trust", "refunds-"+orderID, &trustv1.RefundIssued{RefundId: refundID, OrderId: orderID, VendorId: vendor,
		Amount: eur(amount), Lines: lines, RefundTime: timestamppb.New(e.clock.Now())})
}

func (e *env) tier(t testing.TB, vendor, tier string) {
	t.Helper()
	e.emit(t, "trust", "vendortrust-"+vendor, &trustv1.TrustScoreChanged{VendorId: vendor, Tier: tier, Score: 100,
		ChangeTime: timestamppb.New(e.clock.Now())})
}

// balance reads an owner's balance in EUR as support.
func (e *env) balance(t testing.TB, owner string) *payoutsv1.Balance {
	t.Helper()
	resp, err := e.as(t, "support").GetBalance(t.Context(), &payoutsv1.GetBalanceRequest{Owner: owner})
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
func (e *env) waitBalance(t testing.TB, owner string, want bal) {
	t.Helper()
	eventually(t, func() error {
		if got := balOf(e.balance(t, owner)); got != want {
			return fmt.Errorf("%s: %+v, want %+v", owner, got, want)
		}
		return nil
	})
}

// settlement reads an order's settlement as support.
func (e *env) settlement(t testing.TB, orderID string) *payoutsv1.OrderSettlement {
	t.Helper()
	resp, err := e.as(t, "support").GetOrderSettlement(t.Context(), &payoutsv1.GetOrderSettlementRequest{OrderId: orderID})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetSettlement()
}

// waitStage polls until an order's part is in stage.
func (e *env) waitStage(t testing.TB, orderID, vendor string, stage payoutsv1.FundsStage) *payoutsv1.PartSettlement {
	t.Helper()
	var got *payoutsv1.PartSettlement
	eventually(t, func() error {
		resp, err := e.as(t, "support").GetOrderSettlement(t.Context(), &payoutsv1.GetOrderSettlementRequest{OrderId: orderID})
		if err != nil {
			return err
		}
		for _, p := range resp.GetSettlement().GetParts() {
			if p.GetVendorId() == vendor {
				if got = p; p.GetStage() == stage {
					return nil
				}
				return fmt.Errorf("%s/%s is %s, want %s", orderID, vendor, p.GetStage(), stage)
			}
		}
		return fmt.Errorf("%s has no part for %s", orderID, vendor)
	})
	return got
}
