// Package apierrtest checks a service's error mapping at its gRPC edge
// (its toStatus): the service's own codes, which its test lists, and the
// shared vocabulary every service must answer alike (apierr.FromError).
package apierrtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
)

// Case is an error and the status an edge must answer it with.
type Case struct {
	Err    error
	Code   codes.Code
	Reason string // the ErrorInfo reason; "" when the status carries none
}

// invalid is bad input naming one field, as domains and validators return it.
func invalid() error {
	var v fault.Violations
	v.Add("lines[2].quantity", "must be at least %d", 1)
	return v.Err()
}

// Shared are the errors every service answers alike, whatever its own
// codes: the fault kinds, a conflict that survived retries, a request_id
// reused for a different request, a store that
// is down, the request's context ending, a status built at the edge, and
// the unforeseen (Internal, never Unknown).
func Shared() []Case {
	return []Case{
		{invalid(), codes.InvalidArgument, ""},
		{fmt.Errorf("wrapped: %w", invalid()), codes.InvalidArgument, ""},
		{fmt.Errorf("wrapped: %w", fault.Precondition("SOME_RULE", "the state forbids it")), codes.FailedPrecondition, "SOME_RULE"},
		{fmt.Errorf("wrapped: %w", &fault.NotFoundError{Resource: "thing", ID: "t1"}), codes.NotFound, ""},
		{&fault.ExistsError{Resource: "thing", ID: "t1"}, codes.AlreadyExists, ""},
		{fmt.Errorf("x: %w", es.ErrConflict), codes.Aborted, "CONCURRENCY_CONFLICT"},
		{fmt.Errorf("x: %w", &es.ReusedError{Stream: "thing-t1", CommandID: "c1"}), codes.InvalidArgument, ""},
		{fmt.Errorf("x: %w: boom", eventstore.ErrUnavailable), codes.Unavailable, ""},
		{context.DeadlineExceeded, codes.DeadlineExceeded, ""},
		{context.Canceled, codes.Canceled, ""},
		{apierr.PermissionDenied("no"), codes.PermissionDenied, "PERMISSION_DENIED"},
		{errors.New("something unforeseen"), codes.Internal, ""},
	}
}

// ToStatus checks that toStatus answers each of cases, then each Shared
// case, with its code and reason, and that bad input keeps its field
// violations, as does a request_id reused for a different request.
func ToStatus(t *testing.T, toStatus func(context.Context, error) error, cases ...Case) {
	t.Helper()
	for _, c := range slices.Concat(cases, Shared()) {
		got := toStatus(t.Context(), c.Err)
		if status.Code(got) != c.Code || apierr.Reason(got) != c.Reason {
			t.Errorf("toStatus(%v) = %v (reason %q), want %v (reason %q)", c.Err, status.Code(got), apierr.Reason(got), c.Code, c.Reason)
		}
	}
	fvs := apierr.FieldViolations(toStatus(t.Context(), fmt.Errorf("wrapped: %w", invalid())))
	if len(fvs) != 1 || fvs[0] != (apierr.FieldViolation{Field: "lines[2].quantity", Description: "must be at least 1"}) {
		t.Errorf("field violations %v, want lines[2].quantity", fvs)
	}
	fvs = apierr.FieldViolations(toStatus(t.Context(), fmt.Errorf("wrapped: %w", &es.ReusedError{Stream: "thing-t1", CommandID: "c1"})))
	if len(fvs) != 1 || fvs[0] != apierr.RequestReused {
		t.Errorf("a reused request_id: field violations %v, want %v", fvs, apierr.RequestReused)
	}
}
