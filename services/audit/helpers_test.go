package audit_test

import (
	"testing"
	"time"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/platform/platformtest"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	"github.com/custody/custody/services/audit"
	"github.com/custody/custody/services/audit/internal/story"
)

// The service tests run the audit module alone in a platform under test,
// as `custody run --target=audit` against an embedded NATS, with real gRPC
// and tokens. The other services do not run: the tests play their part by
// appending the events they would store (internal/story) to their streams.

var t0 = time.Date(2030, 3, 1, 12, 0, 0, 0, time.UTC)

// services are the stores the audit service indexes.
var services = []string{"catalog", "order", "fulfilment", "trust", "payouts"}

// startAudit runs the audit module on a fake clock at t0, with its data in
// dir (a fresh one when ""); the services named have their (empty) streams
// before it starts.
func startAudit(t *testing.T, dir string, create ...string) (*platformtest.Platform, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(t0)
	p := platformtest.Start(t, platformtest.Options{Clock: clk, Dir: dir, Streams: create},
		audit.NewModule(audit.Options{FreshnessWait: 5 * time.Second}))
	return p, clk
}

// startWithStory runs the audit module on data in dir (fresh when "") and
// writes order o1's story into the services' streams.
func startWithStory(t *testing.T, dir string) (*platformtest.Platform, story.Story) {
	t.Helper()
	p, clk := startAudit(t, dir, services...)
	s := story.New(t0, "o1")
	write(t, p, clk, s, s.Events)
	return p, s
}

// write appends story events to the services' streams (creating them), as
// those services would, at the story's times.
func write(t *testing.T, p *platformtest.Platform, clk *clock.Fake, s story.Story, events []story.Event) {
	t.Helper()
	stores := map[string]eventstore.Store{}
	for _, ev := range events {
		stores[ev.Service] = p.Store(t, ev.Service)
	}
	if err := s.Write(t.Context(), stores, clk, events); err != nil {
		t.Fatal(err)
	}
}

// as is an audit client whose calls carry a token with role ("": none).
func as(t *testing.T, p *platformtest.Platform, role string) auditv1.AuditServiceClient {
	t.Helper()
	return platformtest.As(t, p, auditv1.NewAuditServiceClient, role)
}
