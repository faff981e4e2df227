package apierr_test

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/auth"
)

func TestCallerOf(t *testing.T) {
	t.Parallel()
	access := auth.Access{"Ship": auth.Allow(auth.Vendor)}
	for _, tt := range []struct {
		name   string
		caller *auth.Caller
		rpc    string
		code   codes.Code
		reason string
	}{
		{"known", &auth.Caller{Subject: "v", Roles: []auth.Role{{Kind: auth.Vendor, ID: "v1"}}}, "Ship", codes.OK, ""},
		{"no identity", nil, "Ship", codes.Unauthenticated, ""},
		{"no roles", &auth.Caller{Subject: "v"}, "Ship", codes.Unauthenticated, ""},
		{"no row", &auth.Caller{Subject: "v", Roles: []auth.Role{{Kind: auth.Support}}}, "Drop", codes.PermissionDenied, "PERMISSION_DENIED"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			if tt.caller != nil {
				ctx = auth.WithCaller(ctx, *tt.caller)
			}
			c, rule, err := apierr.CallerOf(ctx, access, tt.rpc)
			if status.Code(err) != tt.code || apierr.Reason(err) != tt.reason {
				t.Fatalf("err = %v (reason %q), want %v (reason %q)", err, apierr.Reason(err), tt.code, tt.reason)
			}
			if err == nil && (c.Subject != "v" || len(rule.Kinds()) != 1) {
				t.Fatalf("caller %v, rule %v", c, rule.Kinds())
			}
		})
	}
}
