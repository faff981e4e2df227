package grpcapi

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/services/catalog/domain"
)

// toStatus maps every error the catalog returns to its gRPC status: the one
// place where domain and app errors become codes. Bad input is
// InvalidArgument with field violations, a refused state change
// FailedPrecondition with a reason, infrastructure trouble Unavailable or
// Aborted, and anything unforeseen Internal — never Unknown.
func toStatus(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
		return err // already a status (validation, authorization)
	}
	var (
		invalid *domain.ValidationError
		missing *domain.NotFoundError
		exists  *domain.ExistsError
		short   *domain.InsufficientStockError
		rule    *domain.RuleError
	)
	switch {
	case errors.As(err, &invalid):
		vs := make([]apierr.FieldViolation, len(invalid.Violations))
		for i, v := range invalid.Violations {
			vs[i] = apierr.FieldViolation{Field: v.Field, Description: v.Description}
		}
		return apierr.InvalidArgument(vs...)
	case errors.As(err, &missing):
		return apierr.NotFound(missing.Resource, missing.ID)
	case errors.As(err, &exists):
		return apierr.AlreadyExists(exists.Resource, exists.ID)
	case errors.As(err, &short):
		return apierr.FailedPrecondition("INSUFFICIENT_STOCK", short.Error())
	case errors.As(err, &rule):
		return apierr.FailedPrecondition(rule.Reason, rule.Message)
	case errors.Is(err, es.ErrConflict):
		return apierr.Aborted("the resource was changed concurrently; retry the request")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request cancelled")
	case errors.Is(err, eventstore.ErrUnavailable), errors.Is(err, eventstore.ErrClosed):
		return apierr.Unavailable("the catalog's event store is unavailable; retry later")
	}
	log.ErrorContext(ctx, "catalog: unexpected error", "err", err)
	return status.Error(codes.Internal, "internal error")
}
