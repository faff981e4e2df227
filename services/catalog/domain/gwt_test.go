package domain_test

import "time"

// The aggregates' given/when/then tables run with pkg/es/estest; these are
// the moments they share.
var (
	t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 = t0.Add(time.Minute)
	t2 = t0.Add(2 * time.Minute)
)
