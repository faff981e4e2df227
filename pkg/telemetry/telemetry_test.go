package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/custody/custody/pkg/telemetry"
)

func setup(t *testing.T) *telemetry.Telemetry {
	t.Helper()
	tel, err := telemetry.Setup(t.Context(), telemetry.Config{ServiceName: "custody-test", Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tel.Shutdown(context.Background()) })
	return tel
}

func TestPropagation(t *testing.T) {
	setup(t)
	ctx, span := otel.Tracer("test").Start(t.Context(), "publish")
	defer span.End()
	// With no exporter nothing is recorded, but the context is real.
	if span.IsRecording() || !span.SpanContext().IsValid() {
		t.Fatalf("span recording %v, context %v: want a valid, unrecorded span", span.IsRecording(), span.SpanContext())
	}
	member, _ := baggage.NewMember("tenant", "t1")
	bag, _ := baggage.New(member)
	ctx = baggage.ContextWithBaggage(ctx, bag)

	tests := []struct {
		name   string
		inject func(ctx context.Context) (keys []string, extract func(context.Context) context.Context)
	}{
		{"nats header", func(ctx context.Context) ([]string, func(context.Context) context.Context) {
			msg := nats.NewMsg("orders.placed")
			msg.Header = nats.Header{"Nats-Msg-Id": {"m1"}}
			telemetry.InjectNATS(ctx, msg.Header)
			return slices.Collect(maps.Keys(msg.Header)), func(ctx context.Context) context.Context { return telemetry.ExtractNATS(ctx, msg.Header) }
		}},
		{"metadata map", func(ctx context.Context) ([]string, func(context.Context) context.Context) {
			m := map[string]string{"event_type": "OrderPlaced"}
			telemetry.InjectMap(ctx, m)
			return slices.Collect(maps.Keys(m)), func(ctx context.Context) context.Context { return telemetry.ExtractMap(ctx, m) }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks, extract := tt.inject(ctx)
			for _, want := range []string{"traceparent", "baggage"} {
				if !slices.Contains(ks, want) {
					t.Errorf("keys %v lack lowercase %q", ks, want)
				}
			}
			for _, k := range ks {
				if strings.EqualFold(k, "traceparent") && k != "traceparent" {
					t.Errorf("non-lowercase key %q", k)
				}
			}
			got := extract(t.Context())
			sc := trace.SpanContextFromContext(got)
			if sc.TraceID() != span.SpanContext().TraceID() || sc.SpanID() != span.SpanContext().SpanID() || !sc.IsRemote() {
				t.Fatalf("extracted %v, want remote child of %v", sc, span.SpanContext())
			}
			if v := baggage.FromContext(got).Member("tenant").Value(); v != "t1" {
				t.Fatalf("baggage tenant = %q, want t1", v)
			}
		})
	}
}

func TestExtractNATSAnyCase(t *testing.T) {
	setup(t)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		name   string
		header nats.Header
		want   string
	}{
		{"lowercase", nats.Header{"traceparent": {tp}}, "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"canonical", nats.Header{"Traceparent": {tp}}, "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"absent", nats.Header{}, "00000000000000000000000000000000"},
		{"nil", nil, "00000000000000000000000000000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := trace.SpanContextFromContext(telemetry.ExtractNATS(t.Context(), tt.header))
			if got := sc.TraceID().String(); got != tt.want {
				t.Fatalf("trace id = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestLogger(t *testing.T) {
	setup(t)
	ctx, span := otel.Tracer("test").Start(t.Context(), "op")
	defer span.End()
	traceID := span.SpanContext().TraceID().String()

	tests := []struct {
		name      string
		json      bool
		ctx       context.Context
		wantTrace bool
	}{
		{"json in span", true, ctx, true},
		{"text in span", false, ctx, true},
		{"json without span", true, t.Context(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := telemetry.NewLogger(&buf, slog.LevelInfo, tt.json).With("service", "order")
			log.DebugContext(tt.ctx, "dropped below level")
			log.InfoContext(tt.ctx, "order placed", "order_id", "o-1")
			out := buf.String()
			if strings.Contains(out, "dropped") {
				t.Fatalf("debug record written at info level: %s", out)
			}
			if got := strings.Contains(out, traceID); got != tt.wantTrace {
				t.Fatalf("output contains trace id = %v, want %v: %s", got, tt.wantTrace, out)
			}
			if tt.json {
				var rec map[string]any
				if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
					t.Fatal(err)
				}
				if tt.wantTrace && (rec["trace_id"] != traceID || rec["span_id"] != span.SpanContext().SpanID().String()) {
					t.Fatalf("record = %v", rec)
				}
				if rec["service"] != "order" {
					t.Fatalf("With attrs lost: %v", rec)
				}
			}
		})
	}
}

func TestMetricsHandler(t *testing.T) {
	tel := setup(t)
	counter, err := otel.Meter("custody/test").Int64Counter("custody_test_commands", metric.WithDescription("commands handled"))
	if err != nil {
		t.Fatal(err)
	}
	counter.Add(t.Context(), 3)

	srv := httptest.NewServer(tel.MetricsHandler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"custody_test_commands_total", "go_goroutines", `service_name="custody-test"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestOTLPExport runs a real OTLP/gRPC trace receiver on loopback and checks
// spans reach it when OTEL_EXPORTER_OTLP_ENDPOINT is set.
func TestOTLPExport(t *testing.T) {
	rcv := &traceReceiver{}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, rcv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	defer srv.Stop()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+lis.Addr().String())
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")

	tel, err := telemetry.Setup(t.Context(), telemetry.Config{ServiceName: "custody-otlp", Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("test").Start(t.Context(), "PlaceOrder")
	span.End()
	// Shutdown flushes. The metric exporter fails against this trace-only
	// receiver; that is expected and the trace must arrive regardless.
	_ = tel.Shutdown(t.Context())
	if got := rcv.spanNames(); !slices.Contains(got, "PlaceOrder") {
		t.Fatalf("receiver got spans %v, want PlaceOrder", got)
	}
}

type traceReceiver struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	names []string
}

func (r *traceReceiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.names = append(r.names, s.GetName())
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (r *traceReceiver) spanNames() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.names...)
}
