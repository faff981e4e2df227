package fulfilment_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
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
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/fulfilment"
	"github.com/custody/custody/services/fulfilment/app"
)

// The tests run the real thing: an embedded nats-server with JetStream,
// the fulfilment module inside platform.Run (as `custody run
// --target=fulfilment` against an external NATS), real gRPC over loopback
// with minted tokens. The order service is not ours, so the tests play its
// part by appending its events (OrderPlaced, OrderConfirmed,
// OrderCancelled) to its stream themselves.

const waitFor = 20 * time.Second

var t0 = time.Date(2030, 3, 1, 12, 0, 0, 0, time.UTC)

// shared is one environment for the package's tests that need no special
// options (they do not run in parallel and use their own buyers, vendors
// and tracking numbers).
var shared *env

func TestMain(m *testing.M) {
	e, err := newEnv(fulfilment.Options{}, true)
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
	dir    string
	nats   *natsembed.Server
	nc     *nats.Conn
	clock  *clock.Fake
	opts   fulfilment.Options
	orders *esjs.Store // the order stream, written by the tests
	store  *esjs.Store // the fulfilment stream, read-only
	addr   string

	stop func() error // stops platform.Run

	mu      sync.Mutex
	clients map[string]fulfilmentv1.FulfilmentServiceClient
	conns   []*grpc.ClientConn
}

// newEnv starts NATS and the fulfilment module; withOrders creates the
// order service's stream first (without it the module starts before the
// order service).
func newEnv(opts fulfilment.Options, withOrders bool) (*env, error) {
	dir, err := os.MkdirTemp("", "custody-fulfilment-test-")
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
	e := &env{dir: dir, nats: srv, nc: nc, clock: clock.NewFake(t0), opts: opts, clients: map[string]fulfilmentv1.FulfilmentServiceClient{}}
	if withOrders {
		if err := e.createOrders(context.Background()); err != nil {
			return nil, err
		}
	}
	if err := e.start(); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *env) createOrders(ctx context.Context) error {
	st, err := esjs.Open(ctx, e.nc, esjs.Config{Service: "order", Now: e.clock.Now})
	e.orders = st
	return err
}

// start runs the fulfilment module in platform.Run until stop.
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
		done <- platform.Run(ctx, cfg, []platform.Module{fulfilment.NewModule(e.opts)})
	}()
	select {
	case e.addr = <-ready:
	case err := <-done:
		cancel()
		return fmt.Errorf("platform.Run ended: %w", err)
	case <-time.After(waitFor):
		cancel()
		return errors.New("fulfilment module not serving")
	}
	var once sync.Once
	var stopErr error
	e.stop = func() error {
		once.Do(func() { cancel(); stopErr = <-done })
		return stopErr
	}
	st, err := esjs.Open(ctx, e.nc, esjs.Config{Service: "fulfilment", ReadOnly: true})
	e.store = st
	return err
}

// shutdown stops the process; restart starts it again on the same NATS and
// data.
func (e *env) shutdown() error {
	if err := e.stop(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.conns {
		c.Close()
	}
	e.conns, e.clients = nil, map[string]fulfilmentv1.FulfilmentServiceClient{}
	return nil
}

func (e *env) restart() error {
	if err := e.shutdown(); err != nil {
		return err
	}
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

// conn returns a new connection whose calls carry a token with roles.
func (e *env) conn(t testing.TB, roles ...string) *grpc.ClientConn {
	t.Helper()
	tok := ""
	if len(roles) > 0 {
		var err error
		if tok, err = platform.MintToken(e.dir, "", "", roles, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := server.Dial(e.addr, tok)
	if err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	e.conns = append(e.conns, conn)
	e.mu.Unlock()
	return conn
}

// as returns a client whose calls carry a token with role ("" for none).
func (e *env) as(t testing.TB, role string) fulfilmentv1.FulfilmentServiceClient {
	t.Helper()
	e.mu.Lock()
	c, ok := e.clients[role]
	e.mu.Unlock()
	if ok {
		return c
	}
	var roles []string
	if role != "" {
		roles = strings.Split(role, ",")
	}
	c = fulfilmentv1.NewFulfilmentServiceClient(e.conn(t, roles...))
	e.mu.Lock()
	e.clients[role] = c
	e.mu.Unlock()
	return c
}

var seq atomic.Int64

// uniq returns a fresh id with prefix, so tests sharing the env never meet.
func uniq(prefix string) string { return fmt.Sprintf("%s%d", prefix, seq.Add(1)) }

// trackingSeq makes tracking numbers unique across the tests of a run.
var trackingSeq atomic.Int64

// dhlNumber is a fresh DHL tracking number (10 digits).
func dhlNumber() string { return fmt.Sprintf("%010d", 1_000_000_000+trackingSeq.Add(1)) }

// upsNumber is a fresh UPS tracking number ("1Z" + 16).
func upsNumber() string { return fmt.Sprintf("1Z%016d", trackingSeq.Add(1)) }

// emitOrder appends order events to one order's stream, as the order
// service would.
func (e *env) emitOrder(t testing.TB, orderID string, msgs ...proto.Message) {
	t.Helper()
	var evs []eventstore.EventData
	for _, m := range msgs {
		ed, err := es.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		ed.ID = uniq("ev-")
		ed.Metadata = eventstore.Metadata{Actor: "service:order", CorrelationID: orderID}
		evs = append(evs, ed)
	}
	if _, err := e.orders.Append(t.Context(), "order-"+orderID, eventstore.Any, evs); err != nil {
		t.Fatal(err)
	}
}

// part is one vendor's lines of an order: sku → quantity, in order.
type part struct {
	vendor string
	lines  []lineQty
}

type lineQty struct {
	sku string
	qty int64
}

func address() *typev1.Address {
	return &typev1.Address{RecipientName: "Ada Lovelace", AddressLines: []string{"Unter den Linden 1"}, Locality: "Berlin", PostalCode: "10117", CountryCode: "DE"}
}

// placeOrder appends an OrderPlaced for buyer with the parts (line ids
// "1", "2", … across parts) and returns the order id and its lines.
func (e *env) placeOrder(t testing.TB, buyer string, parts ...part) (string, []*orderv1.OrderLine, []*orderv1.VendorPart) {
	t.Helper()
	orderID := uniq("o")
	var lines []*orderv1.OrderLine
	var vparts []*orderv1.VendorPart
	n := 0
	for _, p := range parts {
		vp := &orderv1.VendorPart{VendorId: p.vendor}
		for _, l := range p.lines {
			n++
			id := fmt.Sprint(n)
			lines = append(lines, &orderv1.OrderLine{LineId: id, SkuId: l.sku, VendorId: p.vendor, Quantity: l.qty,
				UnitPrice: &typev1.Money{CurrencyCode: "EUR", AmountMinor: 100}, LineTotal: &typev1.Money{CurrencyCode: "EUR", AmountMinor: 100 * l.qty}})
			vp.LineIds = append(vp.LineIds, id)
		}
		vparts = append(vparts, vp)
	}
	e.emitOrder(t, orderID, &orderv1.OrderPlaced{OrderId: orderID, BuyerId: buyer, Lines: lines, Parts: vparts,
		ShippingAddress: address(), PlaceTime: timestamppb.New(e.clock.Now())})
	return orderID, lines, vparts
}

// confirmOrder places and confirms an order (what the order service does
// once the catalog reserved it) and waits for its fulfilments; it returns
// the order id.
func (e *env) confirmOrder(t testing.TB, buyer string, parts ...part) string {
	t.Helper()
	orderID, lines, vparts := e.placeOrder(t, buyer, parts...)
	e.emitOrder(t, orderID, &orderv1.OrderConfirmed{OrderId: orderID, BuyerId: buyer, Parts: vparts, Lines: lines,
		ShippingAddress: address(), ConfirmTime: timestamppb.New(e.clock.Now())})
	for _, p := range parts {
		e.waitState(t, fulfilmentID(orderID, p.vendor), fulfilmentv1.FulfilmentState_FULFILMENT_STATE_REQUESTED)
	}
	return orderID
}

func (e *env) cancelOrder(t testing.TB, orderID string) {
	t.Helper()
	e.emitOrder(t, orderID, &orderv1.OrderCancelled{OrderId: orderID, Reason: "changed my mind", CancelledBy: "buyer:x", CancelTime: timestamppb.New(e.clock.Now())})
}

// waitState polls GetFulfilment (as support) until the fulfilment exists
// and is in want (UNSPECIFIED: any state).
func (e *env) waitState(t testing.TB, id string, want fulfilmentv1.FulfilmentState) *fulfilmentv1.Fulfilment {
	t.Helper()
	var got *fulfilmentv1.Fulfilment
	eventually(t, func() error {
		resp, err := e.as(t, "support").GetFulfilment(t.Context(), &fulfilmentv1.GetFulfilmentRequest{FulfilmentId: id})
		if err != nil {
			return err
		}
		got = resp.GetFulfilment()
		if want != fulfilmentv1.FulfilmentState_FULFILMENT_STATE_UNSPECIFIED && got.GetState() != want {
			return fmt.Errorf("fulfilment %s is %s, want %s", id, got.GetState(), want)
		}
		return nil
	})
	return got
}

// events returns the decoded events of a fulfilment's stream.
func (e *env) events(t testing.TB, id string) []proto.Message {
	t.Helper()
	recs, err := e.store.ReadStream(t.Context(), "fulfilment-"+id, 0, 0)
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

// eventsOf returns the events of type T of a fulfilment.
func eventsOf[T proto.Message](t testing.TB, e *env, id string) []T {
	t.Helper()
	var out []T
	for _, m := range e.events(t, id) {
		if v, ok := m.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func (e *env) lastPosition(t testing.TB) uint64 {
	t.Helper()
	p, err := e.store.LastPosition(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// consumerSettled waits until the consumer of order events has handled
// every order event stored so far.
func (e *env) consumerSettled(t testing.TB) {
	t.Helper()
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	info, err := e.orders.JetStream().Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	last := info.State.LastSeq // the consumer acks stream sequences, not positions
	eventually(t, func() error {
		c, err := js.Consumer(t.Context(), esjs.StreamNameFor("order"), app.OrderConsumer)
		if err != nil {
			return err
		}
		info, err := c.Info(t.Context())
		if err != nil {
			return err
		}
		if info.AckFloor.Stream < last || info.NumAckPending > 0 {
			return fmt.Errorf("consumer acked up to %d of %d, %d pending", info.AckFloor.Stream, last, info.NumAckPending)
		}
		return nil
	})
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
