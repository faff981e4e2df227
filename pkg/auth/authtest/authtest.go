// Package authtest builds callers for tests of authorization: the identity
// the auth interceptors would put in a request's context, without a token.
package authtest

import (
	"context"
	"testing"

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
