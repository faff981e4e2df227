package app_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/custody/custody/pkg/kv"
	"github.com/custody/custody/services/payouts/app"
)

// ledgerSpace is the ledger view's space in a read-model store in dir,
// closed when the test ends (or by the caller, to reopen it).
func ledgerSpace(t *testing.T, dir string) (*kv.Space, *kv.DB) {
	t.Helper()
	db, err := kv.Open(dir, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	s, err := db.Space("payouts/ledger balances and entries")
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

// attachedLedger is a ledger view with its space in dir, told to d.
func attachedLedger(t *testing.T, dir string, d app.Deadlines) (*app.LedgerView, *kv.DB) {
	t.Helper()
	s, db := ledgerSpace(t, dir)
	v := app.NewLedgerView(d, slog.New(slog.DiscardHandler))
	if err := v.Attach(s); err != nil {
		t.Fatal(err)
	}
	return v, db
}

// newLedgerView is a ledger view ready to fold, in a store of its own.
func newLedgerView(t *testing.T, d app.Deadlines, _ *slog.Logger) *app.LedgerView {
	t.Helper()
	v, _ := attachedLedger(t, t.TempDir(), d)
	return v
}

// firstDiff shows where got and want part.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			return fmt.Sprintf("line %d:\n got %s\nwant %s", i+1, g[i], w[i])
		}
	}
	return fmt.Sprintf("%d lines, want %d", len(g), len(w))
}
