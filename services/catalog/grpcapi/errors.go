package grpcapi

import (
	"context"
	"errors"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/services/catalog/domain"
)

// toStatus maps an error of the catalog to its gRPC status, the one place
// where errors become codes: a stock shortage, the catalog's own kind, is
// FailedPrecondition INSUFFICIENT_STOCK; everything else (validation and
// authorization statuses, the shared fault kinds, conflicts, a dead store,
// the unforeseen) is mapped by apierr.FromError — never Unknown.
func (s *Server) toStatus(ctx context.Context, err error) error {
	var short *domain.InsufficientStockError
	if errors.As(err, &short) {
		return apierr.FailedPrecondition("INSUFFICIENT_STOCK", short.Error())
	}
	return apierr.FromError(ctx, s.Log, err)
}
