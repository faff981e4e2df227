package app_test

import (
	"fmt"
	"log/slog"
	"testing"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/kv"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	"github.com/custody/custody/services/payouts/app"
	"github.com/custody/custody/services/payouts/domain"
)

// BenchmarkLedgerViewApply folds one order's capture (buyer, vendor
// escrow, creator, platform) per op into a stored view, over 500 vendors.
func BenchmarkLedgerViewApply(b *testing.B) {
	db, err := kv.Open(b.TempDir(), kv.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s, err := db.Space("payouts/ledger")
	if err != nil {
		b.Fatal(err)
	}
	v := app.NewLedgerView(nil, slog.New(slog.DiscardHandler))
	if err := v.Attach(s); err != nil {
		b.Fatal(err)
	}
	const capture = payoutsv1.TransactionKind_TRANSACTION_KIND_CAPTURE
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		vendor := fmt.Sprint("v", i%500)
		t := txn(fmt.Sprint("capture-o", i), capture, fmt.Sprint("o", i), vendor, i, domain.BuyerPayments, int64(-10000),
			"vendor:"+vendor+":escrow", int64(8500), "creator:c"+vendor+":pending", int64(1000), "platform:pending", int64(500))
		ed, err := es.Encode(t)
		if err != nil {
			b.Fatal(err)
		}
		v.Apply(eventstore.RecordedEvent{EventData: ed, Stream: "orderledger-o", Position: uint64(i + 1), Revision: 1})
	}
}
