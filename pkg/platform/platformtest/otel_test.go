package platformtest_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	_ "github.com/custody/custody/pkg/platform/platformtest"
)

// A platform's telemetry.Setup while other tests unregister their
// callbacks (a store closing, a consumer stopping) must not deadlock: with
// otel's global meter still delegating, SetMeterProvider and Unregister
// wait on each other's locks (it hung the trust service's tests in CI).
func TestSetMeterProviderWhileCallbacksUnregister(t *testing.T) {
	meter := otel.Meter("platformtest")
	gauge, err := meter.Int64ObservableGauge("gauge")
	if err != nil {
		t.Fatal(err)
	}
	regs := make([]metric.Registration, 100_000)
	for i := range regs {
		if regs[i], err = meter.RegisterCallback(func(context.Context, metric.Observer) error { return nil }, gauge); err != nil {
			t.Fatal(err)
		}
	}
	unregistered, set := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(unregistered)
		for i := len(regs) - 1; i >= 0; i-- {
			_ = regs[i].Unregister()
		}
	}()
	go func() {
		defer close(set)
		otel.SetMeterProvider(sdkmetric.NewMeterProvider())
	}()
	for _, done := range []chan struct{}{unregistered, set} {
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Fatal("SetMeterProvider and Unregister deadlocked")
		}
	}
}
