package outcomes_test

import (
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/custody/custody/pkg/telemetry/outcomes"
)

func TestOf(t *testing.T) {
	o := outcomes.New(attribute.String("consumer", "c1"))
	for _, outcome := range []string{"ok", "error", "ok"} {
		set := metric.NewAddConfig([]metric.AddOption{o.Of(outcome)}).Attributes()
		if v, _ := set.Value("outcome"); v.AsString() != outcome || set.Len() != 2 {
			t.Fatalf("Of(%q) = %v", outcome, set.ToSlice())
		}
		if v, _ := set.Value("consumer"); v.AsString() != "c1" {
			t.Fatalf("Of(%q) lost the base: %v", outcome, set.ToSlice())
		}
	}
}
