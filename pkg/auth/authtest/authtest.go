// Package authtest builds callers for tests of authorization (the
// identity the auth interceptors would put in a request's context, without
// a token) and checks a service's access table (Check).
package authtest

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/custody/custody/pkg/auth"
)

// Caller is the caller whose token was issued to subject with roles
// ("buyer:b1", "support"); a malformed role fails the test.
func Caller(t testing.TB, subject string, roles ...string) auth.Caller {
	t.Helper()
	rs, err := auth.ParseRoles(roles)
	if err != nil {
		t.Fatal(err)
	}
	return auth.Caller{Subject: subject, Roles: rs}
}

// Context is t's context carrying Caller(t, subject, roles...).
func Context(t testing.TB, subject string, roles ...string) context.Context {
	t.Helper()
	return auth.WithCaller(t.Context(), Caller(t, subject, roles...))
}

// Nobody names a caller without roles in a Case.
const Nobody = ""

// Case is what a service's access test expects of one RPC called on a
// resource of Owners, the roles it belongs to ("vendor:v1 buyer:b1"; ""
// for a call on every resource): each caller In is let in and each caller
// Out refused. A caller is named by its roles, separated by spaces
// ("buyer:b9 vendor:v1"), or Nobody.
type Case struct {
	RPC     string
	Owners  string
	In, Out []string
}

// Check tests a service's access table: it has a row for every RPC of
// desc and none for any other (auth.Access.Covers), and each case holds
// (auth.Access.Allows).
func Check(t *testing.T, access auth.Access, desc *grpc.ServiceDesc, cases ...Case) {
	t.Helper()
	if err := access.Covers(desc); err != nil {
		t.Error(err)
	}
	for _, c := range cases {
		owners, err := auth.ParseRoles(strings.Fields(c.Owners))
		if err != nil {
			t.Fatal(err)
		}
		for want, callers := range map[bool][]string{true: c.In, false: c.Out} {
			for _, roles := range callers {
				caller := auth.Caller{}
				if roles != Nobody {
					caller = Caller(t, "someone", strings.Fields(roles)...)
				}
				if got := access.Allows(caller, c.RPC, owners...); got != want {
					t.Errorf("%s on %q by %q: let in %v, want %v", c.RPC, c.Owners, roles, got, want)
				}
			}
		}
	}
}
