package order_test

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
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/order"
	"github.com/custody/custody/services/order/app"
)

// The tests run the real thing: an embedded nats-server with JetStream,
// the order module inside platform.Run (as `custody run --target=order`
// against an external NATS), real gRPC over loopback with minted tokens.
// The catalog service is not ours, so the tests play its part by appending
// its events (ProductCreated, StockReserved, …) to its stream themselves.

const waitFor = 20 * time.Second

var t0 = time.Date(2030, 3, 1, 12, 0, 0, 0, time.UTC)

// shared is one environment for the package's tests (they do not run in
// parallel and use their own buyers, vendors and products).
var shared *env

func TestMain(m *testing.M) {
	e, err := newEnv(true)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the test environment:", err)
		os.Exit(1)
	}
	shared = e
	code := m.Run()
	e.close()
	os.Exit(code)
}

type env struct {
	dir     string
	nats    *natsembed.Server
	nc      *nats.Conn
	clock   *clock.Fake
	catalog *esjs.Store // the catalog's stream, written by the tests
	orders  *esjs.Store // the order stream, read-only
	addr    string

	stop func() error // stops platform.Run

	mu      sync.Mutex
	clients map[string]orderv1.OrderServiceClient
	conns   []*grpc.ClientConn
}

// newEnv starts NATS and the order module; withCatalog creates the
// catalog's stream first (without it the module starts before the catalog).
func newEnv(withCatalog bool) (*env, error) {
	dir, err := os.MkdirTemp("", "custody-order-test-")
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
	e := &env{dir: dir, nats: srv, nc: nc, clock: clock.NewFake(t0), clients: map[string]orderv1.OrderServiceClient{}}
	if withCatalog {
		if err := e.createCatalog(context.Background()); err != nil {
			return nil, err
		}
	}
	if err := e.start(); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *env) createCatalog(ctx context.Context) error {
	st, err := esjs.Open(ctx, e.nc, esjs.Config{Service: "catalog", Now: e.clock.Now})
	e.catalog = st
	return err
}

// start runs the order module in platform.Run until stop.
func (e *env) start() error {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	cfg := platform.Config{
		Version: "test", DataDir: e.dir, GRPCAddr: "127.0.0.1:0", NATSURL: e.nats.ClientURL(),
		Clock: e.clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnReady: func(grpcAddr, _ string) { ready <- grpcAddr },
	}
	go func() {
		done <- platform.Run(ctx, cfg, []platform.Module{order.NewModule(order.Options{})})
	}()
	select {
	case e.addr = <-ready:
	case err := <-done:
		cancel()
		return fmt.Errorf("platform.Run ended: %w", err)
	case <-time.After(waitFor):
		cancel()
		return errors.New("order module not serving")
	}
	var once sync.Once
	var stopErr error
	e.stop = func() error {
		once.Do(func() { cancel(); stopErr = <-done })
		return stopErr
	}
	orders, err := esjs.Open(ctx, e.nc, esjs.Config{Service: "order", ReadOnly: true})
	e.orders = orders
	return err
}

// restart stops the process (if running) and starts it again on the same
// NATS and data.
func (e *env) restart() error {
	if err := e.stop(); err != nil {
		return err
	}
	e.mu.Lock()
	for _, c := range e.conns {
		c.Close()
	}
	e.conns, e.clients = nil, map[string]orderv1.OrderServiceClient{}
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
func (e *env) as(t testing.TB, role string) orderv1.OrderServiceClient {
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
	c := orderv1.NewOrderServiceClient(conn)
	e.clients[role] = c
	return c
}

var seq atomic.Int64

// uniq returns a fresh id with prefix, so tests sharing the env never meet.
func uniq(prefix string) string { return fmt.Sprintf("%s%d", prefix, seq.Add(1)) }

// emit appends catalog events to one catalog stream, as the catalog would.
func (e *env) emit(t testing.TB, stream string, msgs ...proto.Message) []eventstore.RecordedEvent {
	t.Helper()
	var evs []eventstore.EventData
	for _, m := range msgs {
		ed, err := es.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		ed.ID = uniq("ev-")
		ed.Metadata = eventstore.Metadata{Actor: "service:catalog"}
		evs = append(evs, ed)
	}
	res, err := e.catalog.Append(t.Context(), stream, eventstore.Any, evs)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := e.catalog.ReadStream(t.Context(), stream, res.LastRevision+1-uint64(len(evs)), 0)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

type sku struct {
	code     string
	currency string
	price    int64
}

// product creates a product of vendor with SKUs; their ids are
// "<product>-<code>".
func (e *env) product(t testing.TB, vendor string, commissionBps int32, skus ...sku) string {
	t.Helper()
	pid := uniq("p")
	pc := &catalogv1.ProductCreated{ProductId: pid, VendorId: vendor, Title: "Product " + pid,
		AffiliateCommissionBps: commissionBps, CreateTime: timestamppb.New(e.clock.Now())}
	for _, s := range skus {
		pc.Skus = append(pc.Skus, &catalogv1.SkuCreated{SkuId: pid + "-" + s.code, Code: s.code, Title: pid + " " + s.code,
			Price: &typev1.Money{CurrencyCode: s.currency, AmountMinor: s.price}, InitialStock: 100})
	}
	e.emit(t, "product-"+pid, pc)
	return pid
}

func (e *env) link(t testing.TB, creator, product, vendor string, bps int32) string {
	t.Helper()
	id := uniq("l")
	e.emit(t, "link-"+id, &catalogv1.AffiliateLinkCreated{LinkId: id, CreatorId: creator, ProductId: product,
		VendorId: vendor, CommissionBps: bps, CreateTime: timestamppb.New(e.clock.Now())})
	return id
}

func (e *env) session(t testing.TB, creator string, start time.Time) string {
	t.Helper()
	id := uniq("s")
	e.emit(t, "session-"+id, &catalogv1.LiveSessionStarted{SessionId: id, CreatorId: creator, Title: "live", StartTime: timestamppb.New(start)})
	return id
}

func (e *env) pin(t testing.TB, session, product string, bps int32, at time.Time) {
	t.Helper()
	e.emit(t, "session-"+session, &catalogv1.ProductPinned{SessionId: session, ProductId: product, CommissionBps: bps, PinTime: timestamppb.New(at)})
}

func (e *env) unpin(t testing.TB, session, product string, at time.Time) {
	t.Helper()
	e.emit(t, "session-"+session, &catalogv1.ProductUnpinned{SessionId: session, ProductId: product, UnpinTime: timestamppb.New(at)})
}

func (e *env) reserved(t testing.TB, orderID string) {
	t.Helper()
	e.emit(t, "reservation-"+orderID, &catalogv1.StockReserved{OrderId: orderID, ReserveTime: timestamppb.New(e.clock.Now())})
}

func (e *env) reservationFailed(t testing.TB, orderID, sku string) string {
	t.Helper()
	reason := fmt.Sprintf("sku %s: 2 requested, 0 available", sku)
	e.emit(t, "reservation-"+orderID, &catalogv1.StockReservationFailed{OrderId: orderID, SkuId: sku, Requested: 2, Available: 0,
		Reason: reason, FailTime: timestamppb.New(e.clock.Now())})
	return reason
}

// sagaSettled waits until the saga's consumer has handled every catalog
// event stored so far.
func (e *env) sagaSettled(t testing.TB) {
	t.Helper()
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	// Compare stream sequences, not event positions (a position may pack
	// an index within a message).
	st, err := js.Stream(t.Context(), esjs.StreamNameFor("catalog"))
	if err != nil {
		t.Fatal(err)
	}
	si, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	last := si.State.LastSeq
	eventually(t, func() error {
		c, err := js.Consumer(t.Context(), esjs.StreamNameFor("catalog"), app.SagaConsumer)
		if err != nil {
			return err
		}
		info, err := c.Info(t.Context())
		if err != nil {
			return err
		}
		if info.AckFloor.Stream < last || info.NumAckPending > 0 {
			return fmt.Errorf("saga consumer acked up to %d of %d, %d pending", info.AckFloor.Stream, last, info.NumAckPending)
		}
		return nil
	})
}

// orderEvents returns the decoded events of an order's stream.
func (e *env) orderEvents(t testing.TB, orderID string) []proto.Message {
	t.Helper()
	recs, err := e.orders.ReadStream(t.Context(), "order-"+orderID, 0, 0)
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

func (e *env) lastOrderPosition(t testing.TB) uint64 {
	t.Helper()
	p, err := e.orders.LastPosition(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

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

func address() *typev1.Address {
	return &typev1.Address{RecipientName: "Ada Lovelace", AddressLines: []string{"Unter den Linden 1"}, Locality: "Berlin", PostalCode: "10117", CountryCode: "DE"}
}

// placeRequest is a valid request for buyer; amount must be the total.
func placeRequest(buyer string, amount *typev1.Money, lines ...*orderv1.LineRequest) *orderv1.PlaceOrderRequest {
	return &orderv1.PlaceOrderRequest{RequestId: uniq("req-"), BuyerId: buyer, Lines: lines, ShippingAddress: address(),
		Payment: &orderv1.Payment{PspReference: uniq("psp-"), Amount: amount}}
}

func line(skuID string, qty int64) *orderv1.LineRequest {
	return &orderv1.LineRequest{SkuId: skuID, Quantity: qty}
}

// stateOf polls GetOrder (as support) until the order reaches want.
func (e *env) waitState(t testing.TB, orderID string, want orderv1.OrderState) *orderv1.Order {
	t.Helper()
	var got *orderv1.Order
	eventually(t, func() error {
		resp, err := e.as(t, "support").GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: orderID})
		if err != nil {
			return err
		}
		if got = resp.GetOrder(); got.GetState() != want {
			return fmt.Errorf("order %s is %s, want %s", orderID, got.GetState(), want)
		}
		return nil
	})
	return got
}
