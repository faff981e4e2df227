package payouts

import (
	"log/slog"
	"time"

	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/services/payouts/app"
)

// projections are the payouts read models, empty, for `custody rebuild`.
// A rebuild schedules nothing: its deadlines go nowhere.
func projections() []platform.Projection {
	return []platform.Projection{
		{Name: "ledger balances and entries", Source: Name, Apply: app.NewLedgerView(noDeadlines{}, slog.New(slog.DiscardHandler)).Apply},
		{Name: "vendor trust tiers", Source: "trust", Apply: app.NewTierView().Apply},
	}
}

type noDeadlines struct{}

func (noDeadlines) WindowOpen(string, string, time.Time)  {}
func (noDeadlines) WindowDone(string, string)             {}
func (noDeadlines) ReserveHeld(string, string, time.Time) {}
func (noDeadlines) ReserveDone(string, string)            {}
