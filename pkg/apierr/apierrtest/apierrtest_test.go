package apierrtest_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/apierr/apierrtest"
)

// The shared cases are what apierr.FromError answers, so an edge that
// maps nothing of its own passes them.
func TestSharedIsFromError(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	apierrtest.ToStatus(t, func(ctx context.Context, err error) error { return apierr.FromError(ctx, log, err) })
}
