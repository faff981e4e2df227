package platform

import (
	"errors"
	"flag"
	"strconv"
	"time"
)

// PositiveDuration is a flag.Value that sets *d to a duration above zero
// ("72h"); anything else fails the parse. A module's RegisterFlags
// declares its duration settings with it.
func PositiveDuration(d *time.Duration) flag.Value { return &duration{d: d} }

// NonNegativeDuration is PositiveDuration that also takes zero ("0s").
func NonNegativeDuration(d *time.Duration) flag.Value { return &duration{d: d, zero: true} }

type duration struct {
	d    *time.Duration
	zero bool // zero is a valid setting
}

func (v *duration) String() string {
	if v == nil || v.d == nil { // the flag package's zero value, for its defaults
		return ""
	}
	return v.d.String()
}

func (v *duration) Set(s string) error {
	d, err := time.ParseDuration(s)
	switch {
	case v.zero && (err != nil || d < 0):
		return errors.New("want a duration such as 48h, or 0s")
	case !v.zero && (err != nil || d <= 0):
		return errors.New("want a duration above zero, such as 48h")
	}
	*v.d = d
	return nil
}

// PositiveInt is a flag.Value that sets *n to a count above zero; anything
// else fails the parse.
func PositiveInt(n *int) flag.Value { return &count{n: n} }

type count struct{ n *int }

func (v *count) String() string {
	if v == nil || v.n == nil {
		return ""
	}
	return strconv.Itoa(*v.n)
}

func (v *count) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return errors.New("want a number above zero")
	}
	*v.n = n
	return nil
}
