// Package apierr builds gRPC status errors with google.rpc error details.
//
// Services map their domain errors to these at the edge (the grpcapi
// package), once, so clients get a stable code plus machine-readable
// details: field violations for bad input, a reason for a forbidden state
// transition, the resource that was missing or already there. The checks
// of request fields that several edges share (request_id, paging,
// required ids, enums, timestamps) and the authorization of the caller
// against a service's access table (CallerOf, Authorize) live here too, as
// does the fingerprint of a request (Fingerprint, AIP-155), which leaves
// personal fields out: a request_id reused with a request that differs
// only in them is taken as a retry.
//
//	var v apierr.Violations
//	v.Add("lines[0].quantity", "must be > 0")
//	if err := v.Err(); err != nil {
//		return nil, err
//	}
package apierr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
)

// Domain is the ErrorInfo domain of every error this package builds.
const Domain = "custody"

// FieldViolation names one bad request field, AIP-style ("lines[0].quantity").
type FieldViolation struct {
	Field       string
	Description string
}

// InvalidArgument returns an InvalidArgument status carrying a
// google.rpc.BadRequest with the violations; the message names them all.
func InvalidArgument(violations ...FieldViolation) error {
	br := &errdetails.BadRequest{}
	parts := make([]string, 0, len(violations))
	for _, v := range violations {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field:       v.Field,
			Description: v.Description,
		})
		parts = append(parts, v.Field+": "+v.Description)
	}
	msg := "invalid argument"
	if len(parts) > 0 {
		msg += ": " + strings.Join(parts, "; ")
	}
	return withDetails(codes.InvalidArgument, msg, br)
}

// FailedPrecondition reports that the resource's state forbids the request
// (shipping a cancelled order). reason is a stable UPPER_SNAKE_CASE code
// such as "ORDER_CANCELLED"; it is sent as ErrorInfo.reason and as the type
// of a PreconditionFailure violation.
func FailedPrecondition(reason, msg string) error {
	return withDetails(codes.FailedPrecondition, msg,
		&errdetails.ErrorInfo{Reason: reason, Domain: Domain},
		&errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{
			{Type: reason, Description: msg},
		}},
	)
}

// NotFound reports that resource (a type such as "order") named name does not exist.
func NotFound(resource, name string) error {
	return withDetails(codes.NotFound, fmt.Sprintf("%s %q not found", resource, name),
		&errdetails.ResourceInfo{ResourceType: resource, ResourceName: name, Description: "not found"})
}

// AlreadyExists reports that resource named name already exists.
func AlreadyExists(resource, name string) error {
	return withDetails(codes.AlreadyExists, fmt.Sprintf("%s %q already exists", resource, name),
		&errdetails.ResourceInfo{ResourceType: resource, ResourceName: name, Description: "already exists"})
}

// PermissionDenied reports that the authenticated caller may not do this.
func PermissionDenied(msg string) error {
	return withDetails(codes.PermissionDenied, msg,
		&errdetails.ErrorInfo{Reason: "PERMISSION_DENIED", Domain: Domain})
}

// Aborted reports a concurrency conflict that survived retries; the client
// may retry the whole request.
func Aborted(msg string) error {
	return withDetails(codes.Aborted, msg,
		&errdetails.ErrorInfo{Reason: "CONCURRENCY_CONFLICT", Domain: Domain})
}

// Unavailable reports that a dependency (the event store, NATS) is down;
// the client may retry later.
func Unavailable(msg string) error {
	return status.Error(codes.Unavailable, msg)
}

func withDetails(c codes.Code, msg string, details ...protoadapt.MessageV1) error {
	st, err := status.New(c, msg).WithDetails(details...)
	if err != nil {
		// Only fails for unmarshalable details, which ours never are.
		return status.Error(c, msg)
	}
	return st.Err()
}

// Violations accumulates field violations while validating a request.
// The zero value is ready to use.
type Violations []FieldViolation

// Add records that field is invalid for the given reason.
func (v *Violations) Add(field, description string) {
	*v = append(*v, FieldViolation{Field: field, Description: description})
}

// Addf is Add with a formatted description.
func (v *Violations) Addf(field, format string, args ...any) {
	v.Add(field, fmt.Sprintf(format, args...))
}

// Err returns nil when nothing was added, else an InvalidArgument status.
func (v Violations) Err() error {
	if len(v) == 0 {
		return nil
	}
	return InvalidArgument(v...)
}

// FieldViolations returns the BadRequest field violations carried by a
// status error (as received by a client), or nil.
func FieldViolations(err error) []FieldViolation {
	var out []FieldViolation
	for _, d := range details(err) {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				out = append(out, FieldViolation{Field: fv.GetField(), Description: fv.GetDescription()})
			}
		}
	}
	return out
}

// Reason returns the ErrorInfo reason carried by a status error, or "".
func Reason(err error) string {
	for _, d := range details(err) {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei.GetReason()
		}
	}
	return ""
}

func details(err error) []any {
	if err == nil {
		return nil
	}
	st, _ := status.FromError(err) // also finds statuses wrapped with %w
	return st.Details()
}

// FromError maps an error from a service's application layer to a gRPC
// status, once, at the edge. What every service shares is mapped here: a
// status passes through (validation and authorization in grpcapi already
// built one), a request_id reused for a different request
// (es.ErrRequestReused) becomes InvalidArgument on request_id
// (RequestReused), the fault package's kinds become InvalidArgument,
// FailedPrecondition, NotFound and AlreadyExists with their details, a
// conflict that survived the handler's retries becomes Aborted, a dead
// store Unavailable, and the context's end DeadlineExceeded or Canceled.
// Anything else is logged with the request's context and answered as
// Internal, without the error's text. A service with codes of its own maps
// them first and calls FromError for the rest.
func FromError(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
		return err
	}
	var (
		invalid  *fault.InvalidError
		rule     *fault.PreconditionError
		missing  *fault.NotFoundError
		existing *fault.ExistsError
	)
	switch {
	case errors.As(err, &invalid):
		vs := make([]FieldViolation, len(invalid.Violations))
		for i, v := range invalid.Violations {
			vs[i] = FieldViolation{Field: v.Field, Description: v.Description}
		}
		return InvalidArgument(vs...)
	case errors.As(err, &rule):
		return FailedPrecondition(rule.Reason, rule.Message)
	case errors.As(err, &missing):
		return NotFound(missing.Resource, missing.ID)
	case errors.As(err, &existing):
		return AlreadyExists(existing.Resource, existing.ID)
	case errors.Is(err, es.ErrRequestReused):
		return InvalidArgument(RequestReused)
	case errors.Is(err, es.ErrConflict):
		return Aborted("the resource was changed concurrently; retry the request")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request cancelled")
	case errors.Is(err, eventstore.ErrUnavailable), errors.Is(err, eventstore.ErrClosed):
		return Unavailable("the event store is unavailable; retry later")
	case errors.Is(err, eventstore.ErrDamaged):
		return FailedPrecondition("STORE_DAMAGED", "the event store is damaged and takes no writes until it is repaired")
	case errors.Is(err, eventstore.ErrUnreadable), errors.Is(err, eventstore.ErrChainBroken):
		// Named, so that support can find the record: the text carries
		// stream, revision or message and event id, never payload.
		log.ErrorContext(ctx, "stored history cannot be served", "err", err)
		return status.Error(codes.DataLoss, "stored history cannot be read: "+err.Error())
	}
	log.ErrorContext(ctx, "unexpected error", "err", err)
	return status.Error(codes.Internal, "internal error")
}

// Edge is what every service's gRPC server holds: the application it
// serves and the logger that FromError reports unforeseen errors to. A
// server embeds it beside its generated Unimplemented… type.
type Edge[A any] struct {
	App A
	Log *slog.Logger
}

// NewEdge is the edge of app.
func NewEdge[A any](app A, log *slog.Logger) Edge[A] { return Edge[A]{App: app, Log: log} }
