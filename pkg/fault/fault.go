// Package fault is the vocabulary of failures that Custody's domains and
// event handlers return, shared by every service so that each is mapped to
// a gRPC status once, at the edge (pkg/apierr.FromError), and to a parking
// decision once, in the consumer runtime (pkg/bus).
//
// It imports nothing but the standard library: domain packages use it and
// stay pure.
package fault

import (
	"errors"
	"fmt"
	"strings"
)

// Violation names one bad request field, AIP-style ("lines[0].quantity").
type Violation struct {
	Field       string
	Description string
}

// Violations accumulates violations; the zero value is ready to use.
type Violations []Violation

// Add records that field is invalid, with a formatted reason.
func (v *Violations) Add(field, format string, args ...any) {
	*v = append(*v, Violation{Field: field, Description: fmt.Sprintf(format, args...)})
}

// Err is nil without violations, else an *InvalidError.
func (v Violations) Err() error {
	if len(v) == 0 {
		return nil
	}
	return &InvalidError{Violations: v}
}

// InvalidError is bad input: every violated field with why
// (InvalidArgument at the edge).
type InvalidError struct {
	Violations []Violation
}

func (e *InvalidError) Error() string {
	parts := make([]string, 0, len(e.Violations))
	for _, v := range e.Violations {
		parts = append(parts, v.Field+": "+v.Description)
	}
	return "invalid argument: " + strings.Join(parts, "; ")
}

// PreconditionError is a command the resource's state forbids
// (FailedPrecondition at the edge).
type PreconditionError struct {
	// Reason is a stable UPPER_SNAKE_CASE code such as ORDER_SHIPPED.
	Reason  string
	Message string
}

func (e *PreconditionError) Error() string { return e.Message }

// Precondition returns a *PreconditionError with a formatted message.
func Precondition(reason, format string, args ...any) error {
	return &PreconditionError{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// NotFoundError: no resource of this kind has this id (NotFound).
type NotFoundError struct {
	Resource string // "order", "fulfilment", "tracking number"
	ID       string
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("%s %q not found", e.Resource, e.ID) }

// ExistsError: a resource with this id exists already (AlreadyExists).
type ExistsError struct {
	Resource string
	ID       string
}

func (e *ExistsError) Error() string { return fmt.Sprintf("%s %q already exists", e.Resource, e.ID) }

// IsA reports whether err is a failure like kind: a *PreconditionError
// with kind's Reason (whatever the message), or a *NotFoundError or
// *ExistsError of kind's Resource and, when kind names one, its ID — so
// IsA(err, &NotFoundError{Resource: "sku"}) matches any missing SKU. Other
// kinds are matched with errors.Is. It lets a domain keep sentinels such as
// ErrNoHold = &PreconditionError{Reason: "NO_HOLD", …} while every refusal
// carries its own message.
func IsA(err, kind error) bool {
	switch k := kind.(type) {
	case *PreconditionError:
		var e *PreconditionError
		return errors.As(err, &e) && e.Reason == k.Reason
	case *NotFoundError:
		var e *NotFoundError
		return errors.As(err, &e) && e.Resource == k.Resource && (k.ID == "" || e.ID == k.ID)
	case *ExistsError:
		var e *ExistsError
		return errors.As(err, &e) && e.Resource == k.Resource && (k.ID == "" || e.ID == k.ID)
	}
	return errors.Is(err, kind)
}

// Permanent marks an event handler's error that no retry can cure (a
// payload that does not decode, an event the handler cannot understand):
// the runtime parks the event at once instead of redelivering it.
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return "permanent: " + e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }
