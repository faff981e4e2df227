package telemetry

import (
	"context"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// InjectNATS writes the trace context of ctx (traceparent, tracestate,
// baggage) into h under lowercase keys. h must be non-nil (nats.NewMsg
// leaves Header nil; set msg.Header = nats.Header{} first).
func InjectNATS(ctx context.Context, h nats.Header) {
	if h == nil {
		return
	}
	otel.GetTextMapPropagator().Inject(ctx, natsCarrier(h))
}

// ExtractNATS returns ctx with the remote trace context found in h, so a
// consumer's span continues the producer's trace.
func ExtractNATS(ctx context.Context, h nats.Header) context.Context {
	return otel.GetTextMapPropagator().Extract(ctx, natsCarrier(h))
}

// InjectMap writes the trace context of ctx into m (event metadata).
// m must be non-nil.
func InjectMap(ctx context.Context, m map[string]string) {
	if m == nil {
		return
	}
	otel.GetTextMapPropagator().Inject(ctx, propagation.MapCarrier(m))
}

// ExtractMap returns ctx with the remote trace context found in m.
func ExtractMap(ctx context.Context, m map[string]string) context.Context {
	return otel.GetTextMapPropagator().Extract(ctx, propagation.MapCarrier(m))
}

// natsCarrier adapts nats.Header, whose keys are case-sensitive, without the
// canonicalisation propagation.HeaderCarrier applies ("Traceparent"). It
// writes lowercase keys as W3C specifies and reads any casing.
type natsCarrier nats.Header

func (c natsCarrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	for k, v := range c {
		if strings.EqualFold(k, key) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

func (c natsCarrier) Set(key, value string) {
	lower := strings.ToLower(key)
	for k := range c {
		if k != lower && strings.EqualFold(k, key) {
			delete(c, k) // no stale differently-cased duplicate
		}
	}
	c[lower] = []string{value}
}

func (c natsCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
