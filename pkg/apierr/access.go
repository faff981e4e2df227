package apierr

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody/custody/pkg/auth"
)

// CallerOf returns the caller of rpc and the rule access has for it, for
// a service that answers these before deciding: a call without an
// identity (the auth interceptor lets none through but its exempt
// methods) is Unauthenticated, and an RPC missing from the table is
// PermissionDenied to everyone.
func CallerOf(ctx context.Context, access auth.Access, rpc string) (auth.Caller, auth.Rule, error) {
	c, ok := auth.CallerFrom(ctx)
	if !ok || len(c.Roles) == 0 {
		return c, auth.Rule{}, status.Error(codes.Unauthenticated, "no caller identity")
	}
	rule, ok := access[rpc]
	if !ok {
		return c, rule, PermissionDenied(rpc + " is not open to any caller")
	}
	return c, rule, nil
}
