package app_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/custody/custody/services/payouts/app"
)

// newLedgerView is a ledger view ready to fold.
func newLedgerView(t *testing.T, d app.Deadlines, log *slog.Logger) *app.LedgerView {
	t.Helper()
	return app.NewLedgerView(d, log)
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
