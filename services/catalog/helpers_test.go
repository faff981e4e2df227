package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/pkg/server"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/catalog"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// proc is a real Custody process running the catalog module: embedded
// NATS with JetStream, gRPC on a loopback port. A probe module hands the
// test the process's dependencies so it can play the order service on the
// same NATS.
type proc struct {
	dir   string
	addr  string
	deps  platform.Deps
	clock *clock.Fake
	stop  func()
}

func startProc(t *testing.T, dir string, clk *clock.Fake) *proc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	deps := make(chan platform.Deps, 1)
	probe := platform.Module{Name: "probe", Start: func(_ context.Context, d platform.Deps) (platform.Running, error) {
		deps <- d
		return platform.Running{}, nil
	}}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	cfg := platform.Config{
		DataDir: dir, GRPCAddr: "127.0.0.1:0", Clock: clk,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnReady: func(grpcAddr, _ string) { ready <- grpcAddr },
	}
	go func() { done <- platform.Run(ctx, cfg, []platform.Module{catalog.Module(), probe}) }()
	p := &proc{dir: dir, clock: clk}
	select {
	case p.addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("process ended before serving: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("process not serving after 60s")
	}
	p.deps = <-deps
	stopped := false
	p.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("process ended with %v", err)
		}
	}
	t.Cleanup(p.stop)
	return p
}

// client returns a CatalogService client holding a token for roles.
func (p *proc) client(t *testing.T, roles ...string) catalogv1.CatalogServiceClient {
	t.Helper()
	tok := ""
	if len(roles) > 0 {
		var err error
		if tok, err = platform.MintToken(p.dir, "", "", roles, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := server.Dial(p.addr, tok)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return catalogv1.NewCatalogServiceClient(conn)
}

// store opens a service's event store on the process's NATS (the catalog's
// to inspect it, the order service's to publish order events into it).
func (p *proc) store(t *testing.T, service string) *esjs.Store {
	t.Helper()
	st, err := esjs.Open(t.Context(), p.deps.NATS, esjs.Config{Service: service, Now: p.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (p *proc) position(t *testing.T) uint64 {
	t.Helper()
	pos, err := p.store(t, "catalog").LastPosition(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

// events returns the types of a catalog stream's events.
func (p *proc) events(t *testing.T, stream string) []string {
	t.Helper()
	recs, err := p.store(t, "catalog").ReadStream(t.Context(), stream, 0, 0)
	if err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.Type)
	}
	return out
}

// publishOrderEvent appends an order event to the order service's stream.
func (p *proc) publishOrderEvent(t *testing.T, orderID, kind string, m proto.Message) {
	t.Helper()
	ed, err := es.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	ed.ID = es.DeriveID("order", orderID, kind)
	ed.Metadata = eventstore.Metadata{CorrelationID: orderID, Actor: "service:order"}
	if _, err := p.store(t, "order").Append(t.Context(), "order-"+orderID, eventstore.Any, []eventstore.EventData{ed}); err != nil {
		t.Fatal(err)
	}
}

func eur(minor int64) *typev1.Money { return &typev1.Money{CurrencyCode: "EUR", AmountMinor: minor} }

// ledger returns available/reserved/sold per SKU code.
func ledger(t *testing.T, c catalogv1.CatalogServiceClient, productID string) map[string][3]int64 {
	t.Helper()
	resp, err := c.GetProduct(t.Context(), &catalogv1.GetProductRequest{ProductId: productID})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][3]int64{}
	for _, k := range resp.GetProduct().GetSkus() {
		out[k.GetCode()] = [3]int64{k.GetAvailable(), k.GetReserved(), k.GetSold()}
	}
	return out
}

// eventually retries check until it passes or 20s have gone by.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wantCode fails unless err has code c.
func wantCode(t *testing.T, err error, c codes.Code) {
	t.Helper()
	if status.Code(err) != c {
		t.Fatalf("err = %v, want %v", err, c)
	}
}

// wantField fails unless err is InvalidArgument with a violation of field.
func wantField(t *testing.T, err error, field string) {
	t.Helper()
	wantCode(t, err, codes.InvalidArgument)
	var fields []string
	for _, v := range apierr.FieldViolations(err) {
		fields = append(fields, v.Field)
	}
	if !slices.Contains(fields, field) {
		t.Fatalf("violations on %v, want %q (%v)", fields, field, err)
	}
}

func sameTime(ts interface{ AsTime() time.Time }, want time.Time) error {
	if got := ts.AsTime(); !got.Equal(want) {
		return fmt.Errorf("time %v, want %v", got, want)
	}
	return nil
}
