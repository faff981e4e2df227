package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The bench's account of the server's work comes from two scrapes of its
// /metrics: series summed by name, and by outcome where they have one.
func TestBenchReportsTheServersWork(t *testing.T) {
	t.Parallel()
	var scrapes atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		k := float64(scrapes.Add(1) - 1) // 0 before the run, 1 after
		fmt.Fprintf(w, `# HELP go_memstats_mallocs_total Total number of heap objects allocated.
# TYPE go_memstats_mallocs_total counter
go_memstats_mallocs_total %g
go_memstats_alloc_bytes_total %g
process_cpu_seconds_total %g
custody_bus_handled_total{consumer="a",otel_scope_name="bus",outcome="ok"} %g
custody_bus_handled_total{consumer="b",otel_scope_name="bus",outcome="ok"} %g
custody_bus_handled_total{consumer="a",otel_scope_name="bus",outcome="skipped"} %g
custody_bus_handled_total{consumer="a",otel_scope_name="bus",outcome="retry"} %g
custody_other_total{last_outcome="skipped"} 1
`, 1000+k*1500, 5000+k*20480, 2+k*0.5, 10+k*30, 5+k*10, 7+k*30, 4*k)
	}))
	defer srv.Close()
	admin := strings.TrimPrefix(srv.URL, "http://")

	before, err := scrape(admin)
	if err != nil {
		t.Fatal(err)
	}
	if got := before[`custody_bus_handled_total`]; got != 22 {
		t.Errorf("custody_bus_handled_total summed over its series = %g, want 22", got)
	}
	if got := before[`custody_bus_handled_total{outcome="ok"}`]; got != 15 {
		t.Errorf(`custody_bus_handled_total{outcome="ok"} = %g, want 15`, got)
	}
	if _, ok := before[`custody_other_total{outcome="skipped"}`]; ok {
		t.Error(`a label named last_outcome was read as outcome`)
	}
	after, err := scrape(admin)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	serverSample{metrics: before}.report(&out, serverSample{metrics: after}, 10, time.Second)
	for _, want := range []string{
		"server CPU: 0.5 s over 1.0 s (0.50 cores), 50.00 ms per order",
		"server allocations: 150 per order, 2.0 KB per order",
		"reactions: 7.0 events per order, 3.0 of them dropped",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
