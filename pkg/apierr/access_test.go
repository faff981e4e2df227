package apierr_test

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/auth"
	"github.com/custody/custody/pkg/auth/authtest"
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

func TestAuthorize(t *testing.T) {
	t.Parallel()
	access := auth.Access{"Ship": auth.Allow(auth.Vendor, auth.Service), "Browse": auth.Open}
	v1 := auth.Role{Kind: auth.Vendor, ID: "v1"}
	for _, tt := range []struct {
		name   string
		roles  []string // nil: no identity
		rpc    string
		owners []auth.Role
		code   codes.Code
		msg    string
	}{
		{"owner", []string{"vendor:v1"}, "Ship", []auth.Role{v1}, codes.OK, ""},
		{"another owner", []string{"vendor:v2"}, "Ship", []auth.Role{v1}, codes.PermissionDenied,
			"Ship on this resource requires one of the roles vendor:<its own id>, service"},
		{"same id, other kind", []string{"creator:v1"}, "Ship", []auth.Role{v1}, codes.PermissionDenied, ""},
		{"unscoped", []string{"service"}, "Ship", nil, codes.OK, ""},
		{"every resource", []string{"vendor:v1"}, "Ship", nil, codes.PermissionDenied,
			"Ship on every resource requires one of the roles vendor:<its own id>, service"},
		{"open", []string{"buyer:b1"}, "Browse", nil, codes.OK, ""},
		{"no identity", nil, "Browse", nil, codes.Unauthenticated, ""},
		{"no row", []string{"service"}, "Drop", nil, codes.PermissionDenied, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			if tt.roles != nil {
				ctx = authtest.Context(t, "someone", tt.roles...)
			}
			c, err := apierr.Authorize(ctx, access, tt.rpc, tt.owners...)
			if status.Code(err) != tt.code || (tt.msg != "" && status.Convert(err).Message() != tt.msg) {
				t.Fatalf("err = %v, want %v %q", err, tt.code, tt.msg)
			}
			if tt.roles != nil && c.Subject != "someone" {
				t.Errorf("caller %v", c)
			}
		})
	}
}
