package platformtest

import (
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody/custody/pkg/apierr"
)

// What a client is answered, as the API contract (docs/design.md §4) says
// it is: a code, the ErrorInfo reason of a refusal, the fields of bad input.

// WantCode fails t unless err is a status with code c.
func WantCode(t testing.TB, err error, c codes.Code) {
	t.Helper()
	if status.Code(err) != c {
		t.Fatalf("err = %v, want %v", err, c)
	}
}

// WantReason fails t unless err is a status with code c and reason.
func WantReason(t testing.TB, err error, c codes.Code, reason string) {
	t.Helper()
	WantCode(t, err, c)
	if got := apierr.Reason(err); got != reason {
		t.Fatalf("err = %v: reason %q, want %s", err, got, reason)
	}
}

// WantField fails t unless err is InvalidArgument with a violation of
// field (among others).
func WantField(t testing.TB, err error, field string) {
	t.Helper()
	WantCode(t, err, codes.InvalidArgument)
	var fields []string
	for _, fv := range apierr.FieldViolations(err) {
		fields = append(fields, fv.Field)
	}
	if !slices.Contains(fields, field) {
		t.Fatalf("violations %v (%v) do not name %s", fields, err, field)
	}
}

// WritesNothing runs do and fails t if service's store moved meanwhile:
// what a refused request must not do.
func (p *Platform) WritesNothing(t testing.TB, service string, do func()) {
	t.Helper()
	before := p.LastPosition(t, service)
	do()
	if after := p.LastPosition(t, service); after != before {
		t.Fatalf("a refused request wrote: the store moved from position %d to %d", before, after)
	}
}

// WantRefused fails t unless call is refused as bad input naming field
// (WantField) and writes nothing to service's store.
func (p *Platform) WantRefused(t testing.TB, service, field string, call func() error) {
	t.Helper()
	p.WritesNothing(t, service, func() { WantField(t, call(), field) })
}
