package console_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/pkg/bus"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/platform/platformtest"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
)

var redriveAction = regexp.MustCompile(`action="/parked/(\d+)/redrive"`)

// TestRedriveFromTheParkedPage: a consumer parks a vendor's registration
// (its handler fails for good); support redrives it from the parked page
// once the handler is fixed — a form without the CSRF token changes
// nothing, the form sent twice (a double click) hands the event back once —
// and the page shows it handled.
func TestRedriveFromTheParkedPage(t *testing.T) {
	const consumer, vendor = "test-console-redrive", "v-console-redrive"
	js, err := jetstream.New(shared.NATS)
	if err != nil {
		t.Fatal(err)
	}
	var fixed atomic.Bool
	var calls atomic.Int32
	c, err := bus.Subscribe(t.Context(), js, bus.Config{Name: consumer, SourceService: "catalog",
		EventTypes: []string{"custody.catalog.v1.VendorRegistered"}},
		func(_ context.Context, e eventstore.RecordedEvent) error {
			if !bytes.Contains(e.Data, []byte(vendor)) {
				return nil
			}
			calls.Add(1)
			if !fixed.Load() {
				return fault.Permanent(errors.New("cannot <script>handle</script> this vendor"))
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	cat := platformtest.Client(t, shared, catalogv1.NewCatalogServiceClient, "platform")
	if _, err := cat.RegisterVendor(t.Context(), &catalogv1.RegisterVendorRequest{RequestId: "reg-" + vendor, VendorId: vendor,
		DisplayName: "Redrive Co", CountryCode: "DE"}); err != nil {
		t.Fatal(err)
	}

	b := signedIn(t, "support")
	path := "/parked?consumer=" + consumer
	var p page
	platformtest.Eventually(t, "the parked event on the page", func() error {
		if p = b.get(path); !redriveAction.MatchString(p.Body) {
			return fmt.Errorf("no redrive form yet (%d)", p.Code)
		}
		return nil
	})
	contains(t, p, "VendorRegistered", "permanent", "cannot &lt;script&gt;handle&lt;/script&gt; this vendor")
	seq := redriveAction.FindStringSubmatch(p.Body)[1]
	form := url.Values{"csrf": {p.field(t, "csrf")}, "request_id": {p.field(t, "request_id")}, "consumer": {consumer}, "reason": {"handler fixed"}}

	noCSRF := url.Values{"request_id": form["request_id"], "consumer": form["consumer"], "reason": form["reason"]}
	if r := b.post("/parked/"+seq+"/redrive", noCSRF); r.Code != http.StatusForbidden {
		t.Fatalf("a redrive without the CSRF token: %d", r.Code)
	}
	if r := b.post("/parked/"+seq+"/redrive", url.Values{"csrf": form["csrf"], "request_id": form["request_id"]}); r.Code != http.StatusBadRequest {
		t.Fatalf("a redrive without a reason: %d", r.Code)
	}
	if p := b.get(path); !redriveAction.MatchString(p.Body) || strings.Contains(p.Body, "redriven at") {
		t.Fatalf("a refused redrive changed the page:\n%s", p.Body)
	}

	fixed.Store(true)
	for range 2 { // a double click
		r := b.post("/parked/"+seq+"/redrive", form)
		if r.Code != http.StatusSeeOther || r.Header.Get("Location") != "/parked?redriven="+seq+"#p"+seq {
			t.Fatalf("redrive: %d %q\n%s", r.Code, r.Header.Get("Location"), r.Body)
		}
	}
	platformtest.Eventually(t, "the redrive handled on the page", func() error {
		if p = b.get(path); !strings.Contains(p.Body, "<strong>handled</strong>") {
			return errors.New("not handled yet")
		}
		return nil
	})
	contains(t, p, "redriven at", "support")
	if redriveAction.MatchString(p.Body) {
		t.Fatalf("the handled event still offers a redrive:\n%s", p.Body)
	}
	shared.Settled(t)
	if n := calls.Load(); n != 2 {
		t.Fatalf("the handler ran %d times for the vendor; want 2 (parked, then redriven once)", n)
	}
}
