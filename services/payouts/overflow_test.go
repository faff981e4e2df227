package payouts_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"

	"github.com/custody/custody/pkg/bus"
	"github.com/custody/custody/pkg/platform/platformtest"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	"github.com/custody/custody/services/payouts/app"
)

// The reported order — a SKU listed at 2^63-1 before prices were bounded,
// confirmed — is not booked: its OrderConfirmed is parked at once with a
// reason naming the total, and the vendor's escrow keeps what it held
// instead of wrapping to −9223372036854768309.
func TestOrderBeyondTheBoundIsParked(t *testing.T) {
	vendor := id("v")
	confirm(t, confirmed(id("o"), "", line("1", vendor, 1, 7499, "", 0)))
	waitBalance(t, "vendor:"+vendor, bal{escrow: 7499})

	huge := id("o")
	recs := confirm(t, confirmed(huge, "", line("1", vendor, 1, math.MaxInt64, "", 0)))
	js, err := jetstream.New(p.NATS)
	if err != nil {
		t.Fatal(err)
	}
	platformtest.Eventually(t, "the order parked", func() error {
		parked, err := bus.ListParked(t.Context(), js, app.OrderConsumer)
		if err != nil {
			return err
		}
		for _, pk := range parked {
			if pk.EventID == recs[0].ID {
				if !strings.Contains(pk.Reason, "total.amount_minor") {
					return fmt.Errorf("parked for %q", pk.Reason)
				}
				return nil
			}
		}
		return fmt.Errorf("not parked")
	})
	if got := balOf(balance(t, "vendor:"+vendor)); got != (bal{escrow: 7499}) {
		t.Fatalf("vendor's balance %+v, want only the 74.99 in escrow", got)
	}
	_, err = as(t, "support").GetOrderSettlement(t.Context(), &payoutsv1.GetOrderSettlementRequest{OrderId: huge})
	platformtest.WantCode(t, err, codes.NotFound)
}
