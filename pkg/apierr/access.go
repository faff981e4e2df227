package apierr

import (
	"context"
	"fmt"
	"strings"

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

// Authorize checks that the caller in ctx may call rpc on a resource of
// owners (none: on every resource; see auth.Access.Allows) and returns the
// caller. Besides what CallerOf refuses, a caller the row does not let in
// is PermissionDenied, told which roles it lets in.
func Authorize(ctx context.Context, access auth.Access, rpc string, owners ...auth.Role) (auth.Caller, error) {
	c, rule, err := CallerOf(ctx, access, rpc)
	if err != nil || access.Allows(c, rpc, owners...) {
		return c, err
	}
	what := "every resource"
	if len(owners) > 0 {
		what = "this resource"
	}
	return c, PermissionDenied(fmt.Sprintf("%s on %s requires one of the roles %s", rpc, what, strings.Join(rule.Roles("<its own id>"), ", ")))
}
