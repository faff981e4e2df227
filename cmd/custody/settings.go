package main

import (
	"flag"
	"os"

	"github.com/custody/custody/services/fulfilment"
	"github.com/custody/custody/services/order"
	"github.com/custody/custody/services/payouts"
	"github.com/custody/custody/services/trust"
)

// setting is a service's tunable: a duration, a rate or a policy. Each is
// read by its service from the environment at start; the flag is a way to
// set the variable from the command line (flags win).
type setting struct{ flag, env, usage string }

func settings() []setting {
	out := []setting{
		{"attribution-window", order.EnvAttributionWindow, "how long after a creator touchpoint an order is attributed (order)"},
		{"fulfilment-handling-time", fulfilment.EnvHandlingTime, "ship-by deadline after confirmation"},
		{"fulfilment-ship-by-policy", fulfilment.EnvShipByPolicy, `when ship-by passes: "grace" (extend once, then cancel) or "cancel"`},
		{"fulfilment-ship-by-grace", fulfilment.EnvShipByGrace, "the grace period of the grace policy"},
		{"fulfilment-transit", fulfilment.EnvTransit, `transit time per carrier for the expected delivery, e.g. "dhl=72h,default=120h"`},
		{"trust-claim-window", trust.EnvClaimWindow, "how long after delivery a buyer may claim"},
		{"trust-changed-mind-window", trust.EnvChangedMindWindow, "how long after delivery a changed-mind return may be claimed"},
		{"trust-response-window", trust.EnvResponseWindow, "how long a vendor has to answer a claim before silence decides for the buyer"},
		{"trust-not-received-grace", trust.EnvNotReceivedGrace, "extra wait after the expected delivery before a not-received claim"},
		{"trust-changed-mind-damaged-bps", trust.EnvChangedMindDamagedBps, "refund rate (basis points) of a changed-mind return received damaged"},
	}
	for _, s := range payouts.Settings {
		out = append(out, setting{s.Flag, s.Env, s.Usage})
	}
	return out
}

// settingFlags declares one flag per setting on fs; a flag given sets its
// environment variable before the services start.
func settingFlags(fs *flag.FlagSet) {
	for _, s := range settings() {
		fs.Func(s.flag, s.usage+" (env "+s.env+")", func(v string) error { return os.Setenv(s.env, v) })
	}
}
