package trust_test

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
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/trust"
	"github.com/custody/custody/services/trust/app"
)

// The tests run the real thing: an embedded nats-server with JetStream,
// the trust module inside platform.Run (as `custody run --target=trust`
// against an external NATS), real gRPC over loopback with minted tokens.
// The order and fulfilment services are not ours, so the tests play their
// part by appending their events (OrderConfirmed, FulfilmentShipped,
// TrackingEventRecorded, …) to their streams themselves. Time is a fake
// clock the tests move.

const waitFor = 20 * time.Second

var t0 = time.Date(2030, 3, 1, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// shared is one environment for the package's tests (they do not run in
// parallel and use their own buyers, vendors and orders).
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

type env struct {
	dir        string
	nats       *natsembed.Server
	nc         *nats.Conn
	clock      *clock.Fake
	orders     *esjs.Store // the order service's stream, written by the tests
	fulfilment *esjs.Store // the fulfilment service's stream, written by the tests
	trust      *esjs.Store // the trust stream, read-only
	proc       *process
}

// process is one running trust process.
type process struct {
	dir  string
	addr string
	stop func() error

	mu      sync.Mutex
	clients map[string]trustv1.TrustServiceClient
	conns   []*grpc.ClientConn
}

func newEnv() (*env, error) {
	dir, err := os.MkdirTemp("", "custody-trust-test-")
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
	e := &env{dir: dir, nats: srv, nc: nc, clock: clock.NewFake(t0)}
	ctx := context.Background()
	if e.orders, err = esjs.Open(ctx, nc, esjs.Config{Service: "order", Now: e.clock.Now}); err != nil {
		return nil, err
	}
	if e.fulfilment, err = esjs.Open(ctx, nc, esjs.Config{Service: "fulfilment", Now: e.clock.Now}); err != nil {
		return nil, err
	}
	if e.proc, err = e.startProcess(filepath.Join(dir, "p1")); err != nil {
		return nil, err
	}
	if e.trust, err = esjs.Open(ctx, nc, esjs.Config{Service: "trust", ReadOnly: true}); err != nil {
		return nil, err
	}
	return e, nil
}

// startProcess runs the trust module in platform.Run (its own data dir:
// its own token key) until stop.
func (e *env) startProcess(dir string) (*process, error) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	cfg := platform.Config{
		Version: "test", DataDir: dir, GRPCAddr: "127.0.0.1:0", NATSURL: e.nats.ClientURL(),
		Clock: e.clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnReady: func(grpcAddr, _ string) { ready <- grpcAddr },
	}
	go func() {
		done <- platform.Run(ctx, cfg, []platform.Module{trust.NewModule(trust.Options{})})
	}()
	p := &process{dir: dir, clients: map[string]trustv1.TrustServiceClient{}}
	select {
	case p.addr = <-ready:
	case err := <-done:
		cancel()
		return nil, fmt.Errorf("platform.Run ended: %w", err)
	case <-time.After(waitFor):
		cancel()
		return nil, errors.New("trust module not serving")
	}
	var once sync.Once
	var stopErr error
	p.stop = func() error {
		once.Do(func() {
			cancel()
			stopErr = <-done
			p.mu.Lock()
			for _, c := range p.conns {
				c.Close()
			}
			p.conns, p.clients = nil, map[string]trustv1.TrustServiceClient{}
			p.mu.Unlock()
		})
		return stopErr
	}
	return p, nil
}

// restart stops the process and starts it again on the same NATS and data.
func (e *env) restart(t testing.TB) {
	t.Helper()
	if err := e.proc.stop(); err != nil {
		t.Fatal(err)
	}
	p, err := e.startProcess(e.proc.dir)
	if err != nil {
		t.Fatal(err)
	}
	e.proc = p
}

func (e *env) close() {
	if e.proc != nil {
		_ = e.proc.stop()
	}
	e.nc.Close()
	e.nats.Shutdown()
	os.RemoveAll(e.dir)
}

// as returns a client of the main process whose calls carry a token with
// role ("" for none).
func (e *env) as(t testing.TB, role string) trustv1.TrustServiceClient { return e.proc.as(t, role) }

func (p *process) as(t testing.TB, role string) trustv1.TrustServiceClient {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[role]; ok {
		return c
	}
	tok := ""
	if role != "" {
		var err error
		if tok, err = platform.MintToken(p.dir, "", role, []string{role}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := server.Dial(p.addr, tok)
	if err != nil {
		t.Fatal(err)
	}
	p.conns = append(p.conns, conn)
	c := trustv1.NewTrustServiceClient(conn)
	p.clients[role] = c
	return c
}

var seq atomic.Int64

// uniq returns a fresh id with prefix, so tests sharing the env never meet.
func uniq(prefix string) string { return fmt.Sprintf("%s%d", prefix, seq.Add(1)) }

// emit appends events to one stream of an upstream service, as that
// service would, and returns their store ids.
func (e *env) emit(t testing.TB, store *esjs.Store, stream string, msgs ...proto.Message) []string {
	t.Helper()
	var evs []eventstore.EventData
	for _, m := range msgs {
		ed, err := es.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		ed.ID = uniq("ev")
		ed.Metadata = eventstore.Metadata{Actor: "service:" + store.Service()}
		evs = append(evs, ed)
	}
	if _, err := store.Append(t.Context(), stream, eventstore.Any, evs); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(evs))
	for i, ed := range evs {
		ids[i] = ed.ID
	}
	return ids
}

func eur(minor int64) *typev1.Money { return &typev1.Money{CurrencyCode: "EUR", AmountMinor: minor} }

func (e *env) now() *timestamppb.Timestamp { return timestamppb.New(e.clock.Now()) }

// sale is one order of one buyer from one vendor, as the upstream services
// recorded it, with the ids of their events.
type sale struct {
	orderID, buyer, vendor, fulfilmentID string
	lines                                []*orderv1.OrderLine
	confirmedID, requestedID             string
	shipments                            map[string]*shipment
}

type shipment struct {
	id, tracking string
	eventID      string
	scanIDs      []string
}

// orderLine is quantity × unit price (EUR minor units) of a fresh SKU.
type orderLine struct {
	qty, unit int64
}

// confirm records an order confirmed with lines "1", "2", … of vendor and
// its fulfilment requested (ship by +2 days).
func (e *env) confirm(t testing.TB, buyer, vendor string, ls ...orderLine) *sale {
	t.Helper()
	s := &sale{orderID: uniq("o"), buyer: buyer, vendor: vendor, shipments: map[string]*shipment{}}
	s.fulfilmentID = "f" + s.orderID
	var total int64
	var lineIDs []string
	var shipped []*fulfilmentv1.ShippedLine
	for i, l := range ls {
		id := fmt.Sprint(i + 1)
		s.lines = append(s.lines, &orderv1.OrderLine{LineId: id, SkuId: uniq("sku"), VendorId: vendor, Quantity: l.qty,
			UnitPrice: eur(l.unit), LineTotal: eur(l.qty * l.unit)})
		total += l.qty * l.unit
		lineIDs = append(lineIDs, id)
		shipped = append(shipped, &fulfilmentv1.ShippedLine{LineId: id, Quantity: l.qty})
	}
	s.confirmedID = e.emit(t, e.orders, "order-"+s.orderID, &orderv1.OrderConfirmed{OrderId: s.orderID, BuyerId: buyer,
		Parts: []*orderv1.VendorPart{{VendorId: vendor, LineIds: lineIDs, Subtotal: eur(total)}}, Lines: s.lines,
		Total: eur(total), ConfirmTime: e.now()})[0]
	s.requestedID = e.emit(t, e.fulfilment, "fulfilment-"+s.fulfilmentID, &fulfilmentv1.FulfilmentRequested{
		FulfilmentId: s.fulfilmentID, OrderId: s.orderID, VendorId: vendor, BuyerId: buyer, Lines: shipped,
		ShipByTime: timestamppb.New(e.clock.Now().Add(2 * day)), RequestTime: e.now()})[0]
	return s
}

func (s *sale) captured() int64 {
	var total int64
	for _, l := range s.lines {
		total += l.GetLineTotal().GetAmountMinor()
	}
	return total
}

// ship ships every line in one shipment, expected in 3 days; serials are
// packed per line ("line id" → serials).
func (e *env) ship(t testing.TB, s *sale, serials map[string][]string) *shipment {
	t.Helper()
	sh := &shipment{id: fmt.Sprintf("s%d", len(s.shipments)+1), tracking: uniq("TRK")}
	ev := &fulfilmentv1.PackingEvidence{PhotoSha256: []string{fmt.Sprintf("%064x", seq.Add(1))}}
	var lines []*fulfilmentv1.ShippedLine
	for _, l := range s.lines {
		lines = append(lines, &fulfilmentv1.ShippedLine{LineId: l.GetLineId(), SkuId: l.GetSkuId(), Quantity: l.GetQuantity()})
		for _, sn := range serials[l.GetLineId()] {
			ev.Units = append(ev.Units, &fulfilmentv1.PackedUnit{LineId: l.GetLineId(), SerialNumber: sn})
		}
	}
	sh.eventID = e.emit(t, e.fulfilment, "fulfilment-"+s.fulfilmentID, &fulfilmentv1.FulfilmentShipped{
		FulfilmentId: s.fulfilmentID, OrderId: s.orderID, VendorId: s.vendor, ShipmentId: sh.id, Carrier: "dhl",
		TrackingNumber: sh.tracking, Packages: []*fulfilmentv1.Package{{PackageId: "1", Lines: lines, Evidence: ev}},
		Lines: lines, FullyShipped: true, ShipTime: e.now(), ExpectedDeliveryTime: timestamppb.New(e.clock.Now().Add(3 * day))})[0]
	s.shipments[sh.id] = sh
	return sh
}

// scan records a carrier scan of a shipment, now.
func (e *env) scan(t testing.TB, s *sale, sh *shipment, st fulfilmentv1.TrackingStatus, proof *fulfilmentv1.ProofOfDelivery) string {
	t.Helper()
	id := e.emit(t, e.fulfilment, "fulfilment-"+s.fulfilmentID, &fulfilmentv1.TrackingEventRecorded{
		FulfilmentId: s.fulfilmentID, ShipmentId: sh.id, Carrier: "dhl", TrackingNumber: sh.tracking,
		CarrierEventId: uniq("c"), Status: st, OccurTime: e.now(), Proof: proof})[0]
	sh.scanIDs = append(sh.scanIDs, id)
	return id
}

// deliver scans the shipment DELIVERED (with proof or not) and records the
// fulfilment delivered; it returns the scan's and the delivery's event ids.
func (e *env) deliver(t testing.TB, s *sale, sh *shipment, withProof bool) (string, string) {
	t.Helper()
	var proof *fulfilmentv1.ProofOfDelivery
	if withProof {
		proof = &fulfilmentv1.ProofOfDelivery{RecipientName: "A. Buyer", PhotoSha256: fmt.Sprintf("%064x", seq.Add(1))}
	}
	scanID := e.scan(t, s, sh, fulfilmentv1.TrackingStatus_TRACKING_STATUS_DELIVERED, proof)
	id := e.emit(t, e.fulfilment, "fulfilment-"+s.fulfilmentID, &fulfilmentv1.FulfilmentDelivered{FulfilmentId: s.fulfilmentID,
		OrderId: s.orderID, VendorId: s.vendor, BuyerId: s.buyer, DeliverTime: e.now(), WithProof: withProof})[0]
	return scanID, id
}

// delivered is a whole clean sale: confirmed, shipped, scanned, delivered
// with proof.
func (e *env) delivered(t testing.TB, buyer, vendor string, serials map[string][]string, ls ...orderLine) *sale {
	t.Helper()
	s := e.confirm(t, buyer, vendor, ls...)
	sh := e.ship(t, s, serials)
	e.scan(t, s, sh, fulfilmentv1.TrackingStatus_TRACKING_STATUS_PICKED_UP, nil)
	e.deliver(t, s, sh, true)
	return s
}

// settled waits until both vendor-trust consumers have handled every event
// stored so far.
func (e *env) settled(t testing.TB) {
	t.Helper()
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, func() error {
		for _, c := range []struct{ stream, name string }{
			{esjs.StreamNameFor("fulfilment"), app.FulfilmentConsumer},
			{esjs.StreamNameFor("trust"), app.ClaimsConsumer},
		} {
			cons, err := js.Consumer(t.Context(), c.stream, c.name)
			if err != nil {
				return err
			}
			info, err := cons.Info(t.Context())
			if err != nil {
				return err
			}
			if info.NumPending > 0 || info.NumAckPending > 0 {
				return fmt.Errorf("consumer %s: %d pending, %d unacked", c.name, info.NumPending, info.NumAckPending)
			}
		}
		return nil
	})
}

// claimEvents returns the decoded events of an order's claims stream.
func (e *env) claimEvents(t testing.TB, orderID string) []proto.Message {
	t.Helper()
	recs, err := e.trust.ReadStream(t.Context(), "claims-"+orderID, 0, 0)
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

func eventNames(evs []proto.Message) []string {
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		out = append(out, string(e.ProtoReflect().Descriptor().Name()))
	}
	return out
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
