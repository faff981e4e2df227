package main

import (
	"bytes"
	"fmt"
	"regexp"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/custody/custody/pkg/platform/platformtest"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
)

// `custody rebuild` of every service reads each store once, for all the
// modules that fold it, and reports for each module what rebuilding that
// module alone reports: the same events and streams, every chain verified.
// The raw read of the same stores (`custody probe --read`, once the server
// is stopped) counts the same events.
func TestRebuildOfAllAgreesWithEachAlone(t *testing.T) {
	t.Parallel()
	p := platformtest.Start(t, platformtest.Options{}, modules()...)
	cat := catalogv1.NewCatalogServiceClient(p.Conn(t, "platform", "service"))
	prod := createProduct(t, cat, "v-rebuild", 10, 900)
	orders := orderv1.NewOrderServiceClient(p.Conn(t, "buyer:rb"))
	for i := range 5 {
		r, err := orders.PlaceOrder(t.Context(), &orderv1.PlaceOrderRequest{
			RequestId: fmt.Sprintf("rebuild-%d", i), BuyerId: "rb",
			Lines:           []*orderv1.LineRequest{{SkuId: prod.GetSkus()[0].GetSkuId(), Quantity: 1}},
			ShippingAddress: address, Payment: &orderv1.Payment{PspReference: fmt.Sprintf("psp-rb-%d", i), Amount: eur(900)},
			WaitTimeout: durationpb.New(20 * time.Second),
		})
		if err != nil || r.GetOrder().GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED {
			t.Fatalf("order %d: %v %v", i, r.GetOrder().GetState(), err)
		}
	}
	p.Settled(t)
	p.Stop(t) // NATS keeps running: rebuild reads it by URL
	url := p.NATS.ConnectedUrl()

	rebuild := func(target string) string {
		var out, errOut bytes.Buffer
		if err := run([]string{"rebuild", "--nats-url", url, "--target", target}, &out, &errOut); err != nil {
			t.Fatalf("rebuild --target=%s: %v\n%s%s", target, err, out.String(), errOut.String())
		}
		return out.String()
	}
	line := regexp.MustCompile(`(?m)^(\w+): (\d+) events, (\d+) streams in .*\n(\w+): every hash chain verified$`)
	type counts struct{ events, streams string }
	reports := func(out string) map[string]counts {
		m := map[string]counts{}
		for _, g := range line.FindAllStringSubmatch(out, -1) {
			if g[1] == g[4] {
				m[g[1]] = counts{g[2], g[3]}
			}
		}
		return m
	}

	// The console keeps no read models: nothing to rebuild.
	var folding []string
	for _, m := range modules() {
		if m.Name != "console" {
			folding = append(folding, m.Name)
		}
	}
	all := rebuild("all")
	together := reports(all)
	if len(together) != len(folding) {
		t.Fatalf("%d of %d modules reported verified:\n%s", len(together), len(folding), all)
	}
	read := regexp.MustCompile(`read (\d+) events from 6 stores .*: \d+ events/s`).FindStringSubmatch(all)
	if read == nil || together["audit"].events != read[1] {
		t.Fatalf("want every store read once, the audit folding all of them:\n%s", all)
	}
	for _, name := range folding {
		alone, ok := reports(rebuild(name))[name]
		if !ok || alone != together[name] {
			t.Errorf("%s: %+v alone, %+v together", name, alone, together[name])
		}
	}

	p.Close()
	var out, errOut bytes.Buffer
	if err := run([]string{"probe", "--read", "--data-dir", p.DataDir}, &out, &errOut); err != nil {
		t.Fatalf("probe --read: %v\n%s", err, errOut.String())
	}
	raw := regexp.MustCompile(`\d+ messages, (\d+) events in \S+: \d+ messages/s, \d+ events/s`).FindStringSubmatch(out.String())
	if raw == nil || raw[1] != read[1] {
		t.Fatalf("probe --read counted other events than rebuild read (%s):\n%s", read[1], out.String())
	}
}
