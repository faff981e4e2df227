// Package auth is Custody's identity layer (docs/design.md §5).
//
// Callers present an EdDSA-signed JWT whose "roles" claim lists strings like
// "buyer:b-1", "vendor:v-7" or "support". Issuer mints such tokens, Verifier
// checks them, and the gRPC interceptors turn the bearer token on each call
// into a Caller in the context, which services consult for authorization
// (CallerFrom): each states who may call which of its RPCs in an Access
// table (Allow, Open), checked with Access.Allows. Keys are Ed25519, stored
// as PEM files in a data directory (LoadOrCreateKey) or mounted from
// secrets (LoadPublicKey, LoadPrivateKey).
package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Kind is the kind of a role.
type Kind string

// Role kinds. Buyer, Vendor, Creator and Carrier are scoped to one ID;
// Support, Platform and Service stand alone.
const (
	Buyer    Kind = "buyer"
	Vendor   Kind = "vendor"
	Creator  Kind = "creator"
	Carrier  Kind = "carrier"
	Support  Kind = "support"  // reads everything, decides claims
	Platform Kind = "platform" // finance and operations: fees, payout runs
	Service  Kind = "service"  // internal clients acting for a buyer
)

// Scoped reports whether roles of this kind carry an ID.
func (k Kind) Scoped() bool {
	switch k {
	case Buyer, Vendor, Creator, Carrier:
		return true
	}
	return false
}

func (k Kind) known() bool {
	switch k {
	case Buyer, Vendor, Creator, Carrier, Support, Platform, Service:
		return true
	}
	return false
}

// ErrInvalidRole is wrapped by every role parsing or validation error.
var ErrInvalidRole = errors.New("invalid role")

// maxIDLen bounds role IDs; they are resource IDs, not free text.
const maxIDLen = 128

// Role is one grant held by a caller, such as vendor:v-7.
type Role struct {
	Kind Kind
	ID   string // set for scoped kinds only
}

// ParseRole parses "kind:id" for scoped kinds or "kind" for the others.
// IDs are 1 to 128 characters of [A-Za-z0-9._-].
func ParseRole(s string) (Role, error) {
	kind, id, hasID := strings.Cut(s, ":")
	r := Role{Kind: Kind(kind), ID: id}
	if hasID && id == "" {
		return Role{}, fmt.Errorf("%w %q: empty id", ErrInvalidRole, s)
	}
	if err := r.Validate(); err != nil {
		return Role{}, err
	}
	return r, nil
}

// ParseRoles parses each string with ParseRole.
func ParseRoles(ss []string) ([]Role, error) {
	roles := make([]Role, 0, len(ss))
	for _, s := range ss {
		r, err := ParseRole(s)
		if err != nil {
			return nil, err
		}
		roles = append(roles, r)
	}
	return roles, nil
}

// Validate checks that the kind is known and the ID fits the kind.
func (r Role) Validate() error {
	switch {
	case !r.Kind.known():
		return fmt.Errorf("%w %q: unknown kind (want buyer, vendor, creator, carrier, support, platform or service)", ErrInvalidRole, r.String())
	case r.Kind.Scoped() && r.ID == "":
		return fmt.Errorf("%w %q: %s roles need an id, as in %s:<id>", ErrInvalidRole, r.String(), r.Kind, r.Kind)
	case !r.Kind.Scoped() && r.ID != "":
		return fmt.Errorf("%w %q: %s roles take no id", ErrInvalidRole, r.String(), r.Kind)
	case len(r.ID) > maxIDLen:
		return fmt.Errorf("%w: id longer than %d characters", ErrInvalidRole, maxIDLen)
	}
	for _, c := range r.ID {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%w %q: id may only contain letters, digits, '-', '_' and '.'", ErrInvalidRole, r.String())
		}
	}
	return nil
}

// ValidID reports whether id can be the id of a scoped role, such as a
// buyer's or a vendor's: 1 to 128 of [A-Za-z0-9._-]. Services check the
// buyer and vendor ids of requests against it at their edge.
func ValidID(id string) bool { return Role{Kind: Vendor, ID: id}.Validate() == nil }

// String returns the wire form, "kind:id" or "kind".
func (r Role) String() string {
	if r.ID == "" {
		return string(r.Kind)
	}
	return string(r.Kind) + ":" + r.ID
}

// Caller is the authenticated identity behind a request.
type Caller struct {
	Subject string // JWT sub: who the token was issued to
	Roles   []Role
}

// Has reports whether the caller holds any role of kind k.
func (c Caller) Has(k Kind) bool {
	return slices.ContainsFunc(c.Roles, func(r Role) bool { return r.Kind == k })
}

// Is reports whether the caller holds exactly the role k:id.
func (c Caller) Is(k Kind, id string) bool {
	return slices.Contains(c.Roles, Role{Kind: k, ID: id})
}

// IDsOf returns the IDs of the caller's roles of kind k, in token order.
func (c Caller) IDsOf(k Kind) []string {
	var ids []string
	for _, r := range c.Roles {
		if r.Kind == k {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

type callerKey struct{}

// WithCaller returns ctx carrying c. The interceptors use it; so can tests.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller stored in ctx, if any.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}
